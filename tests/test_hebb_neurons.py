"""hebb-neurons (Figs. 15, 19-20): the initialisation scale of Fig. 20, the sign-flip count against a plain loop,
the settings it refuses, and tiny quick runs that measure every input of its claims (in Fig. 19's setting) and
none in another setting."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from plasticlab.claims import Numeric, claims_for
from plasticlab.claims import hebb as HC
from plasticlab.experiments.hebb import neurons as N
from plasticlab.experiments.hebb.common import spec_for
from plasticlab.rules.hebb_optim import HebbSpec, init_params, trainer
from plasticlab.settings import SettingError, validate

TINY = {"n_train": 256, "n_val": 64, "hidden": (8, 8), "epochs": 2.0, "batch_size": 32, "log_every": 2,
        "n_neurons": 8, "seeds": 2}  # 16 steps, 8 logs; the default gammas (the claims' cells)


def test_init_scale_multiplies_the_initial_weights_exactly():
    """Seed s draws the same weights at every init_scale, times the scale (a power of 2: exact in float)."""
    sizes = (6, 5, 4, 3)
    key = jax.random.PRNGKey(3)
    one = trainer(spec_for("sgd", sizes, neuron_layer=0)).init(key).params.W
    half = trainer(spec_for("sgd", sizes, neuron_layer=0, init_scale=0.5)).init(key).params.W
    assert len(one) == len(half) == 3
    for w1, w5 in zip(one, half):
        assert np.asarray(w1).std() > 0
        np.testing.assert_array_equal(np.asarray(w5), 0.5 * np.asarray(w1))
    assert trainer(spec_for("sgd", sizes, neuron_layer=0, init_scale=0.5)).init_scale == 0.5
    # init_params (the teacher's weights, Fig. 2's images) applies the same scale
    direct = init_params(spec_for("sgd", sizes, neuron_layer=0, init_scale=0.5), key).W
    for w1, w5 in zip(init_params(spec_for("sgd", sizes, neuron_layer=0), key).W, direct):
        np.testing.assert_array_equal(np.asarray(w5), 0.5 * np.asarray(w1))


@pytest.mark.parametrize("scale", [0.0, -1.0])
def test_hebbspec_refuses_a_non_positive_init_scale(scale):
    with pytest.raises(ValueError, match="init_scale"):
        HebbSpec(init_scale=scale)


def _loop_flip_rate(a: np.ndarray) -> list[float]:
    """Per run: sign changes between consecutive logs, counted neuron by neuron, over (logs - 1) x neurons."""
    out = []
    for run in a:
        flips = 0
        for i in range(run.shape[1]):
            for t in range(run.shape[0] - 1):
                before = int(run[t, i] > 0) - int(run[t, i] < 0)
                after = int(run[t + 1, i] > 0) - int(run[t + 1, i] < 0)
                flips += before != after
        out.append(flips / ((run.shape[0] - 1) * run.shape[1]))
    return out


def test_sign_flip_rate_and_hebbian_share_equal_plain_counts():
    a = np.array([[[0.5, -0.2], [-0.1, -0.3], [0.2, 0.0], [0.4, 0.1]],  # neuron 0: +,-,+,+ (2 flips); 1: -,-,0,+ (2)
                  [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6], [0.7, 0.8]]])  # no flips
    rate = N.sign_flip_rate(a)
    assert rate.tolist() == pytest.approx([4 / 6, 0.0])
    assert rate.tolist() == pytest.approx(_loop_flip_rate(a))
    rng = np.random.default_rng(0)
    b = rng.normal(size=(3, 7, 5))
    assert N.sign_flip_rate(b).tolist() == pytest.approx(_loop_flip_rate(b))
    assert N.frac_hebbian(a).tolist() == pytest.approx([4 / 8, 1.0])
    assert N.frac_hebbian(b).tolist() == pytest.approx([float(np.sum(r > 0)) / r.size for r in b])
    a[1, 2, 0] = np.nan  # a run whose alignment turned non-finite has no value
    assert np.isnan(N.sign_flip_rate(a)[1]) and np.isnan(N.frac_hebbian(a)[1])
    assert N.sign_flip_rate(a)[0] == pytest.approx(4 / 6)
    with pytest.raises(ValueError, match="logs >= 2"):
        N.sign_flip_rate(a[:, :1])


@pytest.mark.parametrize("change,key", [({"init_scale": 0.0}, "init_scale"), ({"gammas": (0.05, 0.05)}, "gammas"),
                                        ({"log_every": 5, "epochs": 1.0, "n_train": 256, "batch_size": 32},
                                         "log_every"),
                                        ({"epochs": 0.05, "n_train": 64, "batch_size": 1}, "epochs"),
                                        ({"layer": 4, "hidden": (8, 8)}, "layer")])
def test_bad_settings_are_refused_naming_the_key(change, key):
    with pytest.raises(SettingError, match=f"^{key}="):
        validate(N.HebbNeuronsConfig(**change))


def test_tiny_quick_run_measures_every_claim_input(tmp_path):
    """One value per seed for each claim input, equal to the rows and to the late half of the logged curves (the
    sign flips recomputed from seed 0's image); the Numeric claim is "not comparable" on a quick run."""
    from plasticlab.experiments import run_experiment

    res = run_experiment("hebb-neurons", tmp_path, quick=True, overrides=TINY, progress=False, plots=False)
    m = res["measurements"]
    inputs = {n for c in claims_for("hebb-neurons") for n in c.inputs()}
    assert len(inputs) == 7 and inputs <= set(m)
    assert set(HC.NEURONS_GAMMAS) == set(res["config"]["gammas"])
    half = len(res["steps"]) // 2
    for r, (g, s) in enumerate(zip(res["gamma"], res["seed"])):
        row = next(x for x in res["rows"] if (x["gamma"], x["seed"]) == (g, s))
        for key in N.LATE:
            assert m[HC.neurons_late(g, key)][s] == row[key]
        assert row["layer_full_late"] == pytest.approx(np.mean(res["layer_full"][r][half:]), rel=1e-6)
        assert row["layer_signal_late"] == pytest.approx(np.mean(res["layer_signal"][r][half:]), rel=1e-6)
    assert all(len(v) == TINY["seeds"] for v in m.values())
    for img in res["images"]:
        nf = np.asarray(img["neuron_full"])
        assert nf.shape == (len(res["steps"]), TINY["n_neurons"]) and img["seed"] == 0
        got = m[HC.neurons_late(img["gamma"], "sign_flip_rate_late")][0]
        assert got == pytest.approx(_loop_flip_rate(nf[None, half:])[0])
    verdicts = {r["claim"]: r["verdict"] for r in res["claims"]}
    assert set(verdicts) == {c.id for c in claims_for("hebb-neurons")}
    for c in claims_for("hebb-neurons"):
        assert verdicts[c.id] in (("not comparable",) if isinstance(c, Numeric) else ("agrees", "differs"))


def test_a_run_in_another_setting_feeds_no_claim(tmp_path):
    """Fig. 20's initialisation (0.5x) files its measurements under its own setting: the claims (Fig. 19's
    setting) say "not measured"."""
    from plasticlab.experiments import run_experiment

    res = run_experiment("hebb-neurons", tmp_path, quick=True, overrides={**TINY, "init_scale": 0.5},
                         progress=False, plots=False)
    pre = HC.neurons_setting("sre", "tanh", 2, 0.5)
    assert pre and all(k.startswith(f"neurons/{pre}") for k in res["measurements"])
    assert {r["verdict"] for r in res["claims"]} == {"not measured"}
