"""hebb-fig6 (Fig. 6): the smoothing and bump measurements against plain loops, the held-out jump on flat and
bumped curves, the claims on paper-like and contradicting synthetic runs (through the experiment's own
measurement code), the two-sided ``Depends`` claim, the settings it refuses, and a tiny quick run that measures
every input of its claims and draws distinct panels; another activation feeds no claim."""

from __future__ import annotations

import numpy as np
import pytest

from plasticlab.claims import Depends, claims_for, judge_all
from plasticlab.claims import hebb as HC
from plasticlab.experiments.hebb import fig6 as F
from plasticlab.settings import SettingError, validate

TINY = {"n_train": 256, "n_test": 64, "hidden": (8, 8), "epochs": 6.0, "batch_size": 32, "log_every": 2,
        "window": 8, "seeds": 2}  # 48 steps, 24 logs, windows of 4 logs; the default init scales, gammas and lrs


def _loop_bump(a: np.ndarray, steps: np.ndarray, m: int) -> dict:
    """The module docstring's definitions, one run and one window at a time."""
    K = len(a)
    S = [a[k - m + 1:k + 1].mean() for k in range(m - 1, K)]
    k_star = int(np.argmax(S))
    half = {}
    for p in (0, 1):  # p = 0: the odd logs k = 1, 3, ... (index 0, 2, ...)
        half[p] = [np.mean([a[j] for j in range(k - m + 1, k + 1) if j % 2 == p]) for k in range(m - 1, K)]
    pick_odd, pick_even = int(np.argmax(half[0])), int(np.argmax(half[1]))
    held = ((half[1][pick_odd] - half[1][0]) + (half[0][pick_even] - half[0][0])) / 2
    return {"early": S[0], "peak": S[k_star], "jump": S[k_star] - S[0], "jump_heldout": held,
            "peak_step": steps[k_star + m - 1], "k": k_star + m - 1}


def test_smoothing_and_bump_equal_plain_loops():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(4, 23))
    steps = 3 * np.arange(1, 24)
    for m in (2, 3, 4, 7):
        got = F.bump(a, steps, m)
        want = [_loop_bump(r, steps, m) for r in a]
        for key in ("early", "peak", "jump", "jump_heldout", "peak_step", "k"):
            assert got[key].tolist() == pytest.approx([w[key] for w in want]), (m, key)
        s = F.windowed_mean(a, m)
        assert s.shape == (4, 23 - m + 1) and s[:, 0] == pytest.approx(a[:, :m].mean(1))
    keep = np.arange(23) % 3 == 0
    loop = [[a[r, i:i + 6][keep[i:i + 6]].mean() for i in range(18)] for r in range(4)]
    np.testing.assert_allclose(F.windowed_mean(a, 6, keep), loop)
    a[2, 5] = np.nan  # a run with a non-finite log has no values
    got = F.bump(a, steps, 4)
    assert np.isnan(got["jump"][2]) and np.isnan(got["jump_heldout"][2]) and np.isnan(got["peak_step"][2])
    assert np.isfinite(got["jump"][[0, 1, 3]]).all()
    with pytest.raises(ValueError, match="logs >= m"):
        F.bump(a[:, :3], steps[:3], 4)


def test_heldout_jump_is_unbiased_without_a_rise_and_finds_a_bump():
    """On flat noisy curves the peak minus the early value is positive in every run, the held-out jump averages
    0; on a bump much larger than the noise both are the bump's height."""
    rng = np.random.default_rng(0)
    steps = 5 * np.arange(1, 201)
    flat = F.bump(rng.normal(0.1, 0.05, size=(400, 200)), steps, 40)
    assert (flat["jump"] >= 0).all() and (flat["jump"] > 0).mean() > 0.9
    se = flat["jump_heldout"].std() / np.sqrt(400)
    assert abs(flat["jump_heldout"].mean()) < 3 * se < 0.5 * flat["jump"].mean()
    t = np.arange(1, 201)
    bumped = F.bump(0.1 + 0.3 * np.exp(-((t - 100) / 30.0) ** 2) + rng.normal(0, 0.05, size=(100, 200)), steps, 40)
    assert bumped["jump_heldout"].mean() == pytest.approx(bumped["jump"].mean(), abs=0.02)
    assert bumped["jump_heldout"].mean() > 0.2
    # the trailing window lags a symmetric bump by half a window: peak near log 100 + 20
    assert 5 * 110 < np.median(bumped["peak_step"]) < 5 * 130


def test_per_run_reads_the_norm_at_the_first_log_and_at_the_peak():
    steps = 2 * np.arange(1, 9)
    full = np.array([[0.0, 0.0, 0.1, 0.5, 0.9, 0.2, 0.0, 0.0], [0.3, 0.2, 0.1, 0.0, 0.0, 0.0, 0.0, 0.1]])
    norm = np.array([[5.0, 4.9, 4.8, 4.7, 4.6, 4.5, 4.4, 4.3], [1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7]])
    got = F.per_run(full, -full, norm, steps, 2)
    # run 0: windows of 2 logs peak at logs 4-5 (0.7): step 10, norm 4.6; run 1: the first window (0.25)
    assert got["peak_step"].tolist() == [10.0, 4.0] and got["peak"].tolist() == pytest.approx([0.7, 0.25])
    assert got["norm_start"].tolist() == [5.0, 1.0] and got["norm_peak"].tolist() == [4.6, 1.1]
    assert got["norm_decreased"].tolist() == [1.0, 0.0]
    assert got["signal_peak"].tolist() == pytest.approx([0.0, 0.0]) and set(got) == set(F.MEASURED)


# ----------------------------------------------------------------------------- the claims on synthetic runs

def _synthetic_rows(amp=None, t_peak=None, norm_slope=None, seeds: int = 10) -> list[dict]:
    """Runs shaped like the paper's (defaults) or with one feature changed: smoothed-to-be alignments base + amp
    x a Gaussian bump at t_peak (steps) + noise (SD 0.05 per log, drawn per (gamma, seed): the same at every init
    scale and rate, as the same seed's data order), ||W_2|| = init x 6.5 x (1 + norm_slope t), measured by the
    experiment's ``per_run``."""
    amp = amp or (lambda s: {0.5: 0.4, 1.0: 0.3, 2.0: 0.2}[s])  # the jump depends on the init scale
    t_peak = t_peak or (lambda s, lr: 1000.0 / s * (0.001 / lr) ** 0.5)  # later at small init and at low lr
    norm_slope = norm_slope or (lambda g: -1e-4 if g > 0 else 0.0)  # decays with weight decay
    steps = 5 * np.arange(1, 601)
    rows = []
    for gamma in HC.FIG6_GAMMAS:
        noise = np.random.default_rng(int(gamma * 1000)).normal(0, 0.05, size=(seeds, 600))
        for s in HC.FIG6_INITS:
            for lr in HC.FIG6_LRS:
                shape = np.exp(-((steps - t_peak(s, lr)) / 150.0) ** 2)
                a = (-0.2 if gamma else 0.0) + amp(s) * shape + noise
                norm = s * 6.5 * (1 + norm_slope(gamma) * steps) + 1e-3 * noise
                meas = F.per_run(a, a + 0.2 * (gamma > 0), np.broadcast_to(norm, a.shape), steps, 40)
                rows += [{"init_scale": s, "gamma": gamma, "lr": lr, "seed": k, **{q: float(v[k]) for q, v in
                                                                                    meas.items()}}
                         for k in range(seeds)]
    return rows


def _verdicts(rows: list[dict], activation: str = "relu") -> dict[str, str]:
    cfg = F.HebbFig6Config(activation=activation)
    return {r["claim"]: r["verdict"] for r in judge_all("hebb-fig6", F.measurements(cfg, rows))}


def _ids(kind: str) -> set[str]:
    return {c.id for c in claims_for("hebb-fig6") if c.id.endswith(kind)}


def test_claims_agree_with_paper_like_runs():
    verdicts = _verdicts(_synthetic_rows())
    assert len(verdicts) == 22 and set(verdicts.values()) == {"agrees"}, verdicts


@pytest.mark.parametrize("change,broken", [
    ({"amp": lambda s: 0.0}, ("jump", "signal_jump", "jump_depends_on_init")),  # no bump at all
    ({"amp": lambda s: 0.3}, ("jump_depends_on_init",)),  # a bump whose size does not depend on the init
    ({"norm_slope": lambda g: 1e-4}, ("norm_decreases",)),  # the norm grows during the rise
    ({"t_peak": lambda s, lr: 1000.0 / s}, ("faster_at_higher_lr",)),  # the rate does not change the timing
    # neither the timing nor the size depends on the init scale (the same curve at every scale)
    ({"t_peak": lambda s, lr: 1000.0 * (0.001 / lr) ** 0.5, "amp": lambda s: 0.3},
     ("longer_at_small_init", "jump_depends_on_init")),
])
def test_claims_differ_on_contradicting_runs_and_only_those(change, broken):
    """Each contradiction of a statement makes exactly that statement's claims differ; the others still agree
    (a flat curve says nothing about timing, so those claims are not asserted there)."""
    verdicts = _verdicts(_synthetic_rows(**change))
    hit = set().union(*(_ids(b) for b in broken))
    assert hit and all(verdicts[i] == "differs" for i in hit), {i: verdicts[i] for i in hit}
    rest = {i: v for i, v in verdicts.items() if i not in hit}
    if "amp" in change and change["amp"](1.0) == 0.0:
        rest = {i: v for i, v in rest.items() if not i.endswith(("faster_at_higher_lr", "longer_at_small_init"))}
    assert set(rest.values()) == {"agrees"}, rest


def test_depends_is_two_sided_and_needs_two_seeds():
    c = next(c for c in claims_for("hebb-fig6") if isinstance(c, Depends))
    base = [0.30, 0.32, 0.29, 0.31, 0.30]
    assert c.judge({c.a: [b + 0.1 for b in base], c.b: base}).status == "agrees"
    assert c.judge({c.a: [b - 0.1 for b in base], c.b: base}).status == "agrees"  # either direction
    assert c.judge({c.a: [0.31, 0.29, 0.32, 0.30, 0.30], c.b: base}).status == "differs"
    assert c.judge({c.a: [0.4], c.b: [0.3]}).status == "not measured"
    assert c.judge({c.a: base}).status == "not measured"
    assert "two-sided" in c.judge({c.a: base, c.b: base}).detail


def test_another_activation_feeds_no_claim():
    """A tanh run files its measurements under "fig6/tanh/...": every claim (ReLU, Fig. 6) is "not measured"."""
    rows = _synthetic_rows()
    m = F.measurements(F.HebbFig6Config(activation="tanh"), rows)
    assert m and all(k.startswith("fig6/tanh/") for k in m)
    assert set(_verdicts(rows, "tanh").values()) == {"not measured"}


# ----------------------------------------------------------------------------- settings and a tiny run

@pytest.mark.parametrize("change,key", [
    ({"window": 7}, "window"), ({"window": 5, "log_every": 5}, "window"), ({"lrs": (0.001, 0.001)}, "lrs"),
    ({"init_scales": (0.5, 0.5)}, "init_scales"), ({"init_scales": (0.0, 1.0)}, "init_scales"),
    ({"gammas": (0.05, 0.05)}, "gammas"), ({"hidden": (32,)}, "hidden"),
    ({"n_train": 512, "epochs": 0.5}, "epochs"), ({"n_train": 100, "batch_size": 256}, "batch_size"),
    ({"activation": "nope"}, "activation"),
])
def test_bad_settings_are_refused_naming_the_key(change, key):
    with pytest.raises(SettingError, match=f"^{key}=") as info:
        validate(F.HebbFig6Config(**change))
    assert "\n" not in str(info.value) and "allowed:" in str(info.value)


def test_tiny_quick_run_measures_every_claim_input(tmp_path, monkeypatch):
    """Every claim input has one value per seed, equal to the rows; the rows obey the definitions; every claim
    is judged (no Numeric: agrees or differs, never "not comparable"); one figure, 12 panels, distinct titles,
    the number of seeds in the legends."""
    from plasticlab.experiments import run_experiment

    figs = []
    monkeypatch.setattr(F, "save", lambda fig, path: figs.append((fig, path)))
    res = run_experiment("hebb-fig6", tmp_path, quick=True, overrides=TINY, progress=False, plots=True)
    m = res["measurements"]
    inputs = {n for c in claims_for("hebb-fig6") for n in c.inputs()}
    assert len(inputs) == 6 + 3 + 6 + 12 and inputs <= set(m)  # jumps, signal jumps, norms, peak steps
    assert len(res["rows"]) == 3 * 2 * 2 * TINY["seeds"] and all(len(v) == TINY["seeds"] for v in m.values())
    for r in res["rows"]:
        name = HC.fig6_run(r["init_scale"], r["gamma"], r["lr"], "jump_heldout")
        assert m[name][r["seed"]] == r["jump_heldout"]
        assert r["jump"] == pytest.approx(r["peak"] - r["early"]) and r["jump"] >= 0
        assert r["peak_step"] % TINY["log_every"] == 0 and TINY["window"] <= r["peak_step"] <= res["n_steps"]
        assert r["norm_decreased"] == float(r["norm_peak"] < r["norm_start"])
        if r["gamma"] == 0:  # U = -lr g: the full update's cosine is the learning signal's
            assert r["jump_heldout"] == pytest.approx(r["signal_jump_heldout"], abs=1e-5)
    assert res["n_steps"] == 48 and len(res["curves"]) == 3 * 2 * 2
    verdicts = {r["claim"]: r["verdict"] for r in res["claims"]}
    assert set(verdicts) == {c.id for c in claims_for("hebb-fig6")}
    assert set(verdicts.values()) <= {"agrees", "differs"}
    (fig, path), = figs
    titles = [a.get_title() for a in fig.axes if a.get_title()]
    assert len(titles) == 12 and len(set(titles)) == 12 and path.name == "fig6_alignment_bump.png"
    legends = [t.get_text() for a in fig.axes if a.get_legend() for t in a.get_legend().get_texts()]
    assert legends and all(f"n={TINY['seeds']}" in t and "SD" in t for t in legends)
