"""sam-deep's trace against independent NumPy computations on the stored matrices (synthetic batch, digits)."""

from __future__ import annotations

from types import SimpleNamespace

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import plasticlab as pl
from plasticlab.experiments.sam import common as C
from plasticlab.experiments.sam import deep as D
from plasticlab.rules.sam import SAM
from plasticlab.training import Trainer

SIZES = (7, 6, 5, 5, 4)


def _state(seed=0, **kw):
    net = pl.MLP(SIZES, activation="relu", use_bias=True)
    rule = SAM(lr=0.3, decay=1e-3, down_widths=(8, 3, 6), vbar_scale=0.7, decay_scaling="rate", **kw)
    tr = Trainer(net, rule, init_method="kaiming")
    st = tr.init(jax.random.PRNGKey(seed))
    kx = jax.random.PRNGKey(50 + seed)
    x = jax.random.normal(kx, (11, SIZES[0]))
    t = jnp.arange(11) % SIZES[-1]
    return tr, st, x, t


def _relu(u):
    return np.maximum(u, 0.0)


def test_probe_matches_numpy_on_the_stored_matrices():
    tr, st, x, t = _state()
    got = {k: float(v) for k, v in eqx.filter_jit(D.trace_probe)(tr, st, x, t).items()}
    W = [np.asarray(w, np.float64) for w in st.params.W]
    b = [np.asarray(v, np.float64) for v in st.params.b]
    fb = st.rule_state
    Wbar = [np.asarray(m, np.float64) for m in fb.Wbar]
    Vbar = [np.asarray(m, np.float64) for m in fb.Vbar]
    n = len(W)
    # forward, softmax error, downstream pass (identity D_d), W's postsynaptic factor, all in NumPy
    a, u = [np.asarray(x, np.float64)], []
    for k in range(n):
        u.append(a[-1] @ W[k].T + b[k])
        a.append(_relu(u[-1]) if k < n - 1 else u[-1])
    p = np.exp(a[-1] - a[-1].max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    hbar = {n: -(p - np.eye(SIZES[-1])[np.asarray(t)])}
    for k in range(n - 1, 0, -1):
        hbar[k] = hbar[k + 1] @ Wbar[k].T
    rms = lambda m: np.sqrt(np.mean(np.sum(m * m, axis=1)))  # noqa: E731
    for k in range(n):
        df = (u[k] > 0).astype(float) if k < n - 1 else np.ones_like(u[k])
        post = df * (hbar[k + 1] @ Vbar[k].T)
        dW = 0.3 * post.T @ a[k] / len(x)
        hebb = a[k + 1].T @ a[k]
        assert got[f"W_fro_{k}"] == pytest.approx(np.linalg.norm(W[k]), rel=1e-5)
        assert got[f"W_spec_{k}"] == pytest.approx(np.linalg.svd(W[k], compute_uv=False)[0], rel=1e-4)
        assert got[f"act_{k}"] == pytest.approx(rms(a[k]), rel=1e-5)
        assert got[f"hbar_{k + 1}"] == pytest.approx(rms(hbar[k + 1]), rel=1e-5)
        assert got[f"err_{k}"] == pytest.approx(rms(post), rel=1e-5)
        assert got[f"W_rel_update_{k}"] == pytest.approx(np.linalg.norm(dW) / np.linalg.norm(W[k]), rel=1e-4)
        assert got[f"cos_hebb_{k}"] == pytest.approx(np.sum(dW * hebb) / np.linalg.norm(dW) / np.linalg.norm(hebb),
                                                     abs=1e-5)
        if k < n - 1:
            assert got[f"Vbar_fro_{k}"] == pytest.approx(np.linalg.norm(Vbar[k]), rel=1e-5)
            assert got[f"h_top_{k}"] == pytest.approx(np.linalg.eigvalsh(Vbar[k] @ Vbar[k].T)[-1], rel=1e-4)
        else:
            assert f"h_top_{k}" not in got  # the output level's Vbar is the fixed identity
        if k >= 1:
            assert got[f"Wbar_fro_{k}"] == pytest.approx(np.linalg.norm(Wbar[k]), rel=1e-5)
    # cos with -dLoss/dW: the output layer's SAM update is the output error's outer product, so cos = 1 there
    assert got[f"cos_sgd_{n - 1}"] == pytest.approx(1.0, abs=1e-5)


def test_first_departures_and_hebbian_onset():
    steps = [0, 5, 10, 15]
    curves = {"act_0": np.array([[2.0, 2.1, 7.0, 9.0]]), "W_fro_1": np.array([[10.0, 10.0, 10.0, 40.0]]),
              "Vbar_fro_0": np.array([[5.0, 1.0, 1.0, 1.0]]), "loss": np.array([[2.3, 9.0, 9.0, 9.0]]),
              "cos_hebb_0": np.array([[0.0, 0.2, 0.6, 0.9]]), "cos_hebb_1": np.array([[0.0, 0.9, 0.9, 0.9]])}
    dep = D.first_departures(steps, curves, 0, 3.0)
    assert [(d["quantity"], d["layer"], d["step"]) for d in dep] == [("Vbar_fro", 1, 5), ("act", 1, 10),
                                                                      ("W_fro", 2, 15)]
    assert dep[0]["ratio"] == pytest.approx(0.2)
    # layer 2 is the output layer here (two cos_hebb keys): left out, so layer 1 at step 10
    assert D.hebbian_onset(steps, curves, 0) == "layer 1 at step 10 (cos 0.60)"


def test_trace_reads_each_seeds_state_and_cuts_a_diverged_seed():
    """On digits at a rate far too high: the first point is each seed's initial state (``Trainer.init`` with
    PRNGKey(seed), norms in NumPy), the scheduled effective rate is lr x warm-up factor x lambda_max(H), and a seed's
    trace is finite before its divergence step and NaN from it on."""
    data = C.load("digits", None, normalize="center").validation_split(0.2, seed=0)
    cfg = SimpleNamespace(hidden=(10,) * 4, loss="cross_entropy", epochs=2.0, batch_size=32, seeds=2, sam_lr=0.1,
                          sam_decay=8e-4, sam_ratios=(1.0, 1.0, 0.25, 4.0), sam_decay_scaling="rate",
                          sam_vbar_scale=0.7, use_bias=True, lr_schedule="constant", lr_warmup=0.15, trace_every=3,
                          max_steps=60)
    out = D.trace(cfg, data, cfg.hidden, 50.0, 8e-4)
    steps = np.asarray(out["steps"])
    assert list(steps[:3]) == [0, 3, 6]
    total = D.n_steps_of(cfg, data)
    assert out["rate_factor"][1] == pytest.approx(min(1.0, 4 / (0.15 * total)))
    np.testing.assert_allclose(out["curves"]["top_rate_0"], 50.0 * np.asarray(out["rate_factor"])
                               * out["curves"]["h_top_0"], rtol=1e-6)
    tr = D.trainer_for(cfg, data, cfg.hidden, 50.0, 8e-4)
    for s in range(2):
        st = tr.init(jax.random.PRNGKey(s))
        assert out["curves"]["W_fro_0"][s, 0] == pytest.approx(np.linalg.norm(np.asarray(st.params.W[0])), rel=1e-5)
        v = np.asarray(st.rule_state.Vbar[1], np.float64)
        assert out["curves"]["h_top_1"][s, 0] == pytest.approx(np.linalg.eigvalsh(v @ v.T)[-1], rel=1e-4)
    assert len(out["divergences"]) == 2
    for d in out["divergences"]:
        v = out["curves"]["W_fro_0"][d["seed"]]
        assert np.all(np.isfinite(v[steps < d["step"]])) and np.all(np.isnan(v[steps >= d["step"]]))
