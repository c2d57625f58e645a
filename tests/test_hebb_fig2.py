"""hebb-fig2 (Figs. 2 and 17): the learning signal and Hebbian update against a numpy backprop and outer products,
the one-epoch run against the first epoch of a longer ``fit`` run, the settings it refuses and a tiny quick run
that measures every input of its claims and draws six distinct panels."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from plasticlab.claims import Numeric, claims_for
from plasticlab.claims import hebb as HC
from plasticlab.experiments.hebb import fig2 as F
from plasticlab.experiments.hebb.common import spec_for
from plasticlab.rules.hebb_optim import init_params, trainer
from plasticlab.settings import SettingError
from plasticlab.training import fit

SIZES = (6, 5, 4, 3)  # d_0, two tanh hidden layers, 3 classes


def _spec(batch_size: int = 16):
    return spec_for("sgd", SIZES, loss="cross_entropy", batch_size=batch_size, neuron_layer=0)


def _data(n: int = 100, n_val: int = 20, seed: int = 0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, SIZES[0])).astype(np.float32), rng.integers(0, SIZES[-1], n).astype(np.int32),
            rng.normal(size=(n_val, SIZES[0])).astype(np.float32), rng.integers(0, SIZES[-1], n_val).astype(np.int32))


def _np_loss(W: list[np.ndarray], x: np.ndarray, t: np.ndarray) -> float:
    """Mean cross-entropy of the tanh MLP (linear output), float64."""
    h1 = np.tanh(x @ W[0].T)
    h2 = np.tanh(h1 @ W[1].T)
    y3 = h2 @ W[2].T
    logp = y3 - y3.max(1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
    return float(-np.mean(logp[np.arange(len(t)), t]))


def _np_signal_and_hebbian(W: list[np.ndarray], x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """G = -dL/dW_2 by hand-written backprop; H = the mean over samples of outer(y_2, h_1)."""
    h1 = np.tanh(x @ W[0].T)
    y2 = h1 @ W[1].T
    h2 = np.tanh(y2)
    y3 = h2 @ W[2].T
    p = np.exp(y3 - y3.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    d3 = (p - np.eye(SIZES[-1])[t]) / len(t)  # dL/dy_3
    d2 = (d3 @ W[2]) * (1 - h2 ** 2)  # dL/dy_2
    G = -(d2.T @ h1)
    H = np.mean([np.outer(y2[b], h1[b]) for b in range(len(t))], axis=0)
    return G, H


def test_signal_and_hebbian_equal_numpy_backprop_and_outer_products():
    spec = _spec()
    W = init_params(spec, jax.random.PRNGKey(4)).W
    x, t = _data(16)[:2]
    G, H = F.signal_and_hebbian(spec, tuple(W), x, t)
    W64 = [np.asarray(w, np.float64) for w in W]
    x64 = x.astype(np.float64)
    G_np, H_np = _np_signal_and_hebbian(W64, x64, t)
    np.testing.assert_allclose(np.asarray(G), G_np, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.asarray(H), H_np, rtol=1e-4, atol=1e-6)
    # the hand-written backprop is the gradient: central finite differences of the numpy loss
    eps = 1e-6
    for i, j in [(0, 0), (3, 2), (1, 4)]:
        up = [w.copy() for w in W64]
        dn = [w.copy() for w in W64]
        up[1][i, j] += eps
        dn[1][i, j] -= eps
        fd = (_np_loss(up, x64, t) - _np_loss(dn, x64, t)) / (2 * eps)
        assert -fd == pytest.approx(G_np[i, j], rel=1e-5, abs=1e-9)
    # G is the learning signal the training logs (BP's delta, decay excluded), whatever the decay
    tr = trainer(spec, lr=0.1, gamma=0.05)
    state = tr.init(jax.random.PRNGKey(4))
    sig = tr.signals(state.params, state.rule_state, x, t)
    delta, _ = tr.rule.update(tr.net, state.params, state.rule_state, sig, None)
    G_state, _ = F.signal_and_hebbian(spec, tuple(state.params.W), x, t)
    np.testing.assert_allclose(np.asarray(delta.W[1]), np.asarray(G_state), rtol=1e-4, atol=1e-6)
    # probe: per run, the cosine and the normalised top-left squares
    params = {"W": [np.stack([np.asarray(w), 2 * np.asarray(w)]) for w in W]}
    got = F.probe(spec, params, x, t, subset=3)
    assert len(got) == 2 and got[0]["alignment"] != pytest.approx(got[1]["alignment"])
    want = float(np.sum(G_np * H_np) / (np.linalg.norm(G_np) * np.linalg.norm(H_np)))
    assert got[0]["alignment"] == pytest.approx(want, rel=1e-4)
    np.testing.assert_allclose(got[0]["signal"], (G_np / np.linalg.norm(G_np))[:3, :3], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got[0]["hebbian"], (H_np / np.linalg.norm(H_np))[:3, :3], rtol=1e-4, atol=1e-6)


def test_first_epoch_run_is_the_first_epoch_of_the_long_run():
    """``first_epoch`` (run_grid, 1 epoch) gives the weights a 3-epoch ``fit`` run of the same trainers and seeds
    holds after round(n / B) steps, and ``to_end`` (max_epochs None) those it holds at its end."""
    spec = _spec(16)
    data = _data(100)  # 6.25 steps per epoch: one epoch is 6 steps
    seeds, gammas, lr, n1, B = [0, 1], (0.0, 0.05), 0.1, 6, 16
    first = F.first_epoch(spec, data, seeds, gammas, lr)
    cfg = F.HebbFig2Config(epochs=3.0, max_epochs=None, batch_size=B, log_every=n1, window=n1, hidden=SIZES[1:3],
                           subset=2)
    end = F.to_end(spec, data, seeds, gammas, lr, cfg)
    seen: dict[int, list[np.ndarray]] = {}

    def keep(state, samples: int) -> dict:
        seen[samples] = [np.asarray(w) for w in state.params.W]  # (cells, seeds, out, in)
        return {}

    fit([trainer(spec, lr, g) for g in gammas], data[0], data[1], seeds=seeds, n_samples=3 * n1 * B,
        batch_size=B, eval_every=n1 * B, callback=keep, progress=False)
    assert {n1 * B, 3 * n1 * B} <= set(seen)
    for res, samples in ((first, n1 * B), (end, 3 * n1 * B)):
        for r, (c, s) in enumerate(zip(res["cell"], res["seed"])):
            for l in range(3):
                np.testing.assert_allclose(res["params"]["W"][l][r], seen[samples][l][c, seeds.index(s)],
                                           rtol=1e-5, atol=1e-6)
    # not vacuous: training moved the weights after the first epoch, and the decay makes the cells differ
    assert not np.allclose(first["params"]["W"][1], end["params"]["W"][1], atol=1e-4)
    assert not np.allclose(first["params"]["W"][1][0], first["params"]["W"][1][2], atol=1e-6)


@pytest.mark.parametrize("change,key", [({"hidden": (32,)}, "hidden"), ({"subset": 40, "hidden": (32, 32)}, "subset"),
                                        ({"n_train": 100, "probe_size": 256, "batch_size": 64}, "probe_size"),
                                        ({"gammas": (0.05, 0.05)}, "gammas"),
                                        ({"max_epochs": 10.0, "epochs": 20.0}, "max_epochs")])
def test_bad_settings_are_refused_naming_the_key(change, key):
    cfg = F.HebbFig2Config(**change)
    with pytest.raises(SettingError, match=f"^{key}="):
        cfg.validate()


def test_panels_are_figs_17_and_2():
    assert F.panels((0.0, 0.05)) == [(0.05, "epoch1"), (0.05, "end"), (0.0, "end")]


def test_tiny_quick_run_measures_every_claim_input(tmp_path, monkeypatch):
    """A tiny quick run writes every measurement the hebb-fig2 claims read (one value per seed, the rows'
    alignments), the claim rows, and a figure of six panels with distinct titles."""
    from plasticlab.experiments import run_experiment

    figs = []
    monkeypatch.setattr(F, "save", lambda fig, path: figs.append((fig, path)))
    tiny = {"n_train": 256, "n_test": 64, "hidden": (8, 8), "subset": 4, "probe_size": 64, "epochs": 2.0,
            "batch_size": 32, "log_every": 4, "window": 8}
    res = run_experiment("hebb-fig2", tmp_path, quick=True, overrides=tiny, progress=False, plots=True)
    m = res["measurements"]
    inputs = {n for c in claims_for("hebb-fig2") for n in c.inputs()}
    assert inputs and inputs <= set(m)
    seeds = res["config"]["seeds"]
    for g in HC.FIG2_GAMMAS:
        for point in HC.FIG2_POINTS:
            rows = sorted((r for r in res["rows"] if (r["gamma"], r["point"]) == (g, point)), key=lambda r: r["seed"])
            assert len(rows) == seeds
            assert m[HC.fig2_alignment(g, point)] == [r["alignment"] for r in rows]
            assert all(-1 <= v <= 1 for v in m[HC.fig2_alignment(g, point)])
    assert [r["epochs_run"] for r in res["rows"] if r["point"] == "epoch1"] == [1.0] * 2 * seeds
    assert len(res["images"]) == 4 and all(np.shape(i["signal"]) == np.shape(i["hebbian"]) == (4, 4)
                                           for i in res["images"])
    verdicts = {r["claim"]: r["verdict"] for r in res["claims"]}
    assert set(verdicts) == {c.id for c in claims_for("hebb-fig2")}
    for c in claims_for("hebb-fig2"):
        assert verdicts[c.id] in (("not comparable",) if isinstance(c, Numeric) else ("agrees", "differs"))
    (fig, path), = figs
    titles = [a.get_title() for a in fig.axes if a.get_title()]
    assert len(titles) == 6 and len(set(titles)) == 6 and path.name == "fig2_update_directions.png"
