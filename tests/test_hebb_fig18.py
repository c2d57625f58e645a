"""hebb-fig18 (Fig. 18): the Hebbian variants against numpy transcriptions of their equations, the logged SGD
alignment against cos(update, -jax.grad), the windows, the settings it refuses and a tiny quick run that measures
every input of its claims."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticlab.claims import Greater, Numeric, claims_for
from plasticlab.claims import hebb as HC
from plasticlab.experiments.hebb import fig18 as F
from plasticlab.settings import SettingError

SIZES = (6, 5, 4, 3)  # d_0, two tanh hidden layers, 3 linear outputs
LR = 0.05


def _batch(n: int = 16, seed: int = 0) -> tuple[jax.Array, jax.Array]:
    rng = np.random.default_rng(seed)
    return (jnp.asarray(rng.normal(size=(n, SIZES[0])), jnp.float32),
            jnp.asarray(rng.integers(0, SIZES[-1], size=n), jnp.int32))


def _np_forward(W: list[np.ndarray], x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """h_0 = x, y_l = h_{l-1} W_l^T, h_l = tanh(y_l) (the last layer linear)."""
    h, y = [x], []
    for l, w in enumerate(W):
        y.append(h[-1] @ w.T)
        h.append(y[-1] if l == len(W) - 1 else np.tanh(y[-1]))
    return h, y


def _np_delta(variant: str, W: list[np.ndarray], x: np.ndarray, lr: float) -> list[np.ndarray]:
    """The module docstring's equations, sample by sample: p = y_b (pre) or h_b (post);
    Hebb: lr <p h_a^T>; Oja: lr <p (h_a - W^T p)^T>."""
    h, y = _np_forward(W, x)
    out = []
    for l, w in enumerate(W):
        post = y[l] if variant.endswith("_pre") else h[l + 1]
        pre = h[l]
        d = np.zeros_like(w)
        for b in range(x.shape[0]):
            p, a = post[b], pre[b]
            d += np.outer(p, a) if variant.startswith("hebb") else np.outer(p, a - w.T @ p)
        out.append(lr * d / x.shape[0])
    return out


def _np_standardize(w: np.ndarray, scale: str) -> np.ndarray:
    c = 1.0 if scale == "unit" else 1.0 / np.sqrt(w.shape[1])
    return np.stack([(r - r.mean()) / (np.sqrt(np.mean((r - r.mean()) ** 2)) + 1e-8) * c for r in w])


def _as_np(params) -> list[np.ndarray]:
    return [np.asarray(w, np.float64) for w in params.W]


@pytest.mark.parametrize("variant,scale", [("hebb_pre", "unit"), ("hebb_post", "unit"), ("hebb_pre", "fan_in"),
                                           ("hebb_post", "fan_in"), ("oja_pre", "unit"), ("oja_post", "unit")])
def test_each_variants_step_is_its_equation(variant, scale):
    """Delta W of the rule and the weights after one step (standardised for hebb_*) equal numpy's."""
    tr = F.hebbian_trainer(variant, SIZES, LR, ws_scale=scale)
    state = tr.init(jax.random.PRNGKey(3))
    x, t = _batch()
    W0 = _as_np(state.params)
    want_delta = _np_delta(variant, W0, np.asarray(x, np.float64), LR)
    sig = tr.signals(state.params, state.rule_state, x, t)
    delta, _ = tr.rule.update(tr.net, state.params, state.rule_state, sig, None)
    for got, want in zip(delta.W, want_delta):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-6)
    new, _ = tr.step(state, x, t)
    standardize = F.VARIANTS[variant][1]
    for l, (w, d) in enumerate(zip(W0, want_delta)):
        want = _np_standardize(w + d, scale) if standardize else w + d
        np.testing.assert_allclose(np.asarray(new.params.W[l]), want, rtol=1e-4, atol=1e-5)
    if standardize:  # every row: mean 0, SD c
        for w in new.params.W:
            w = np.asarray(w, np.float64)
            c = 1.0 if scale == "unit" else 1.0 / np.sqrt(w.shape[1])
            np.testing.assert_allclose(w.mean(1), 0.0, atol=1e-5)
            np.testing.assert_allclose(w.std(1), c, rtol=1e-4)


def test_pre_and_post_differ_only_through_the_activation():
    """On the linear output layer y = h, so pre and post give the same Delta W there, and different ones in the
    tanh layers (the variants are not accidentally the same rule)."""
    x, t = _batch()
    deltas = {}
    for v in ("oja_pre", "oja_post"):
        tr = F.hebbian_trainer(v, SIZES, LR)
        st = tr.init(jax.random.PRNGKey(0))
        deltas[v] = tr.rule.update(tr.net, st.params, st.rule_state, tr.signals(st.params, st.rule_state, x, t),
                                   None)[0].W
    np.testing.assert_allclose(np.asarray(deltas["oja_pre"][-1]), np.asarray(deltas["oja_post"][-1]), rtol=1e-6)
    assert not np.allclose(np.asarray(deltas["oja_pre"][0]), np.asarray(deltas["oja_post"][0]), rtol=1e-3)


def _np_free_grad(W: list[np.ndarray], x: np.ndarray, t: np.ndarray) -> list[np.ndarray]:
    """dLoss/dW_l of the mean cross-entropy, by jax.grad of a forward pass written out here (not plasticlab's)."""

    def loss(ws):
        h = jnp.asarray(x)
        for l, w in enumerate(ws):
            h = h @ w.T if l == len(ws) - 1 else jnp.tanh(h @ w.T)
        logp = h - jax.scipy.special.logsumexp(h, axis=1, keepdims=True)
        return -jnp.mean(logp[jnp.arange(len(t)), jnp.asarray(t)])

    return [np.asarray(g, np.float64) for g in jax.grad(loss)([jnp.asarray(w, jnp.float32) for w in W])]


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel(), b.ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("variant", ["hebb_post", "oja_pre"])
def test_logged_alignment_is_the_cosine_with_the_negative_gradient(variant):
    """sgd_align[l] = cos(Delta W_l, -dLoss/dW_l) and sgd_align_full[l] = cos(W'_l - W_l, -dLoss/dW_l), at the
    weights the step started from; the SGD reference's own update gives 1."""
    tr = F.hebbian_trainer(variant, SIZES, LR)
    state = tr.init(jax.random.PRNGKey(1))
    x, t = _batch(seed=2)
    W0 = _as_np(state.params)
    G = _np_free_grad(W0, np.asarray(x), np.asarray(t))
    delta = _np_delta(variant, W0, np.asarray(x, np.float64), LR)
    new, metrics = tr.step(state, x, t, measure=True)
    got = np.asarray(metrics["logged"]["sgd_align"])
    got_full = np.asarray(metrics["logged"]["sgd_align_full"])
    W1 = _as_np(new.params)
    kept = np.asarray(metrics["logged"]["kept"])
    removed = np.asarray(metrics["logged"]["sgd_align_removed"])
    for l in range(len(W0)):
        assert got[l] == pytest.approx(_cos(delta[l], -G[l]), abs=2e-5)
        assert got_full[l] == pytest.approx(_cos(W1[l] - W0[l], -G[l]), abs=2e-4)
        U = W1[l] - W0[l]
        assert kept[l] == pytest.approx(np.linalg.norm(U) / np.linalg.norm(delta[l]), rel=2e-3)
        if variant == "hebb_post":  # the standardisation removes part of the update
            assert removed[l] == pytest.approx(_cos(delta[l] - U, -G[l]), abs=2e-3)
        else:  # nothing is removed
            assert kept[l] == pytest.approx(1.0, abs=1e-5) and removed[l] == 0.0
    assert np.all(np.abs(got) <= 1.0)
    sgd = F.sgd_trainer(SIZES, 0.1)
    st = sgd.init(jax.random.PRNGKey(1))
    _, m = sgd.step(st, x, t, measure=True)
    np.testing.assert_allclose(np.asarray(m["logged"]["sgd_align"]), 1.0, atol=1e-5)


def test_windows_average_the_logs_of_each_block_and_of_the_final_window():
    steps = np.arange(2, 21, 2)  # logs at steps 2, 4, ..., 20
    v = np.arange(10, dtype=float)[None]  # one run: 0..9
    w = F.windows(v, steps, window=8, total=20)
    assert w["end"] == [8, 16, 20]
    np.testing.assert_allclose(w["mean"][0], [np.mean([0, 1, 2, 3]), np.mean([4, 5, 6, 7]), np.mean([8, 9])])
    np.testing.assert_allclose(w["sd"][0, 0], np.std([0, 1, 2, 3]))
    # final window: steps 13..20 -> logs at 14, 16, 18, 20
    assert w["final_mean"][0] == pytest.approx(np.mean([6, 7, 8, 9]))
    assert w["final_sd"][0] == pytest.approx(np.std([6, 7, 8, 9]))


@pytest.mark.parametrize("change,key", [({"window": 4, "log_every": 5}, "window"),
                                        ({"lrs": (0.01, 0.01)}, "lrs"),
                                        ({"rules": ("oja_pre", "oja_pre")}, "rules"),
                                        ({"n_train": 512, "batch_size": 256, "epochs": 1.0, "window": 200}, "window"),
                                        ({"n_train": 100, "batch_size": 256}, "batch_size")])
def test_bad_settings_are_refused_naming_the_key(change, key):
    cfg = F.HebbFig18Config(**change)
    with pytest.raises(SettingError, match=f"^{key}="):
        cfg.validate()


def test_quick_run_measures_every_claim_input(tmp_path):
    """A tiny quick run writes each claim's measurement (one value per seed, equal to the rows), the claim rows,
    and the SGD reference's alignment with itself is 1."""
    from plasticlab.experiments import run_experiment

    res = run_experiment("hebb-fig18", tmp_path, quick=True, progress=False, plots=False,
                         overrides={"hidden": (16, 16), "epochs": 4.0, "n_train": 512, "n_test": 128,
                                    "window": 16, "log_every": 4, "seeds": 2})
    m = res["measurements"]
    names = {n for c in claims_for("hebb-fig18") for n in c.inputs()}
    assert names <= set(m)
    assert all(len(m[n]) == 2 for n in names)
    for r in res["rows"]:
        if r["layer"] != 2 or r["variant"] == "sgd":
            continue
        assert m[HC.fig18_alignment(r["variant"], r["lr"])][r["seed"]] == r["alignment"]
        assert m[HC.fig18_accuracy(r["variant"], r["lr"])][r["seed"]] == r["val_acc"]
    sgd = [r for r in res["rows"] if r["variant"] == "sgd"]
    assert sgd and all(r["alignment"] == pytest.approx(1.0, abs=1e-5) for r in sgd)
    assert m[HC.FIG18_SGD_ACC] == [r["val_acc"] for r in sorted(sgd, key=lambda r: r["seed"]) if r["layer"] == 2]
    rows = {r["claim"]: r for r in res["claims"]}
    assert set(rows) == {c.id for c in claims_for("hebb-fig18")}
    for c in claims_for("hebb-fig18"):
        want = ("not comparable",) if isinstance(c, Numeric) else ("agrees", "differs")
        assert rows[c.id]["verdict"] in want, rows[c.id]
    assert len(res["curves"]) == len(HC.FIG18_VARIANTS) * len(HC.FIG18_LRS) + 1


def test_claims_cover_every_variant_and_learning_rate():
    by_id = {c.id: c for c in claims_for("hebb-fig18")}
    assert len(by_id) == 2 * len(HC.FIG18_VARIANTS) * len(HC.FIG18_LRS)
    for v in HC.FIG18_VARIANTS:
        for lr in HC.FIG18_LRS:
            near = by_id[f"hebb.fig18.{v}.lr={lr:g}.alignment_near_zero"]
            assert isinstance(near, Numeric) and near.value == 0.0 and near.tolerance == HC.FIG18_ZERO_TOL
            assert near.judge({near.measure: [0.03, -0.02, 0.05]}).status == "agrees"
            assert near.judge({near.measure: [-0.3, -0.28, -0.29]}).status == "differs"
            poor = by_id[f"hebb.fig18.{v}.lr={lr:g}.performs_poorly"]
            assert isinstance(poor, Greater) and poor.paired and poor.a == HC.FIG18_SGD_ACC
            assert poor.b == HC.fig18_accuracy(v, lr)
            sgd = [0.95, 0.96, 0.94]
            assert poor.judge({poor.a: sgd, poor.b: [0.10, 0.11, 0.09]}).status == "agrees"
            assert poor.judge({poor.a: sgd, poor.b: [0.90, 0.91, 0.89]}).status == "differs"  # within the margin


def test_a_diverged_seed_is_recorded_as_none_and_its_claim_is_not_measured():
    """Oja on the pre-activation at lr 1 blows up on standardised digits: the rows say so, the measurements hold
    None (not a number from the steps before), and the alignment claim reads no value."""
    cfg = F.HebbFig18Config(dataset="digits", hidden=(8, 8), lrs=(1.0,), seeds=2, epochs=1.0, batch_size=64,
                            window=8, log_every=2)
    unit = F._unit(cfg, "oja_pre", None, False)
    assert unit["rows"] and all(r["diverged"] and r["alignment"] is None and r["val_acc"] is None
                                for r in unit["rows"])
    assert unit["diverged"] and "diverged at step" in unit["diverged"][0]
    m = F.measurements(unit["rows"])
    assert m[HC.fig18_alignment("oja_pre", 1.0)] == [None, None]
    near = next(c for c in claims_for("hebb-fig18") if isinstance(c, Numeric))
    assert near.judge({near.measure: [None, None]}).status == "not measured"
