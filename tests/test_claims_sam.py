"""The SAM paper's claims: quick runs measure every input; the rate search never reads a test split (that each claim
can agree and can fail: test_claims.py's mutation test of every claim)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from plasticlab.claims import Greater, Numeric, Trend, claims_for
from plasticlab.claims import sam as K

CLAIMS = claims_for(paper="sam")
EXPERIMENTS = ("sam-table1", "sam-lr-search", "sam-analysis", "sam-ablation", "sam-width", "sam-scalar-error",
               "sam-modulation", "sam-local-losses")
DIAGNOSES = ("sam-stability", "sam-gap", "sam-deep")  # our diagnosis experiments: they measure, the paper states nothing there


def test_every_sam_experiment_has_claims():
    from plasticlab.experiments import discover

    assert {c.experiment for c in CLAIMS} == set(EXPERIMENTS)
    assert {n for n, e in discover().items() if e.paper == "sam"} == set(EXPERIMENTS) | set(DIAGNOSES)


def test_table1_every_cell_with_its_sd():
    """One Numeric per Table 1 cell (7 data sets x 5 methods) with the paper's mean and SD, no tolerance."""
    cells = {c.measure: c for c in CLAIMS if isinstance(c, Numeric) and c.experiment == "sam-table1"}
    assert len(cells) == 35
    for ds, row in K.TABLE1.items():
        for m, (v, sd) in row.items():
            c = cells[K.t1(ds, m)]
            assert (c.value, c.spread, c.tolerance) == (v, sd, None)
    assert cells[K.t1("chestmnist", "sam")].measure == "chestmnist/sam/test_auc"
    assert K.TABLE1["mnist"]["sam"] == (98.85, 0.10) and K.TABLE1["stl10"]["wm"] == (39.48, 0.19)


def test_table1_outperformance_claims():
    """SAM > FA, WM, KP on all seven data sets; SAM > SGD on six (ChestMNIST is the paper's exception)."""
    rel = {(c.a, c.b) for c in CLAIMS if isinstance(c, Greater) and c.experiment == "sam-table1"}
    want = {(K.t1(ds, "sam"), K.t1(ds, b)) for ds in K.TABLE1 for b in ("fa", "wm", "kp")}
    want |= {(K.t1(ds, "sam"), K.t1(ds, "sgd")) for ds in K.TABLE1 if ds != "chestmnist"}
    assert rel == want
    assert all(c.paired for c in CLAIMS if isinstance(c, Greater))
    # the paper's own numbers hold for every Greater of Table 1
    for c in CLAIMS:
        if isinstance(c, Greater) and c.experiment == "sam-table1":
            ds, _, _ = c.a.split("/")
            assert K.TABLE1[ds]["sam"][0] > K.TABLE1[ds][c.b.split("/")[1]][0]


def test_numeric_tolerances_have_reasons():
    for c in CLAIMS:
        if isinstance(c, Numeric) and c.tolerance is not None:
            assert c.spread is None and len(c.tolerance_reason) > 20, c.id


def test_greater_differs_when_sam_only_ties():
    """"Outperforms" needs the paired CI above 0: SAM equal to SGD up to noise is "differs", not "agrees"."""
    c = next(c for c in CLAIMS if c.id == "sam.table1.mnist.sam_gt_sgd")
    tie = {c.a: [98.4, 98.5, 98.45, 98.44, 98.42], c.b: [98.45, 98.44, 98.4, 98.5, 98.43]}
    assert c.judge(tie).status == "differs"
    assert c.judge({c.a: [98.9, 98.8], c.b: [float("nan"), 98.4]}).status == "not measured"  # one seed left


def test_trend_claims_read_one_value_per_fraction():
    for c in CLAIMS:
        if isinstance(c, Trend) and c.experiment == "sam-analysis":
            assert c.xs == K.AN_FRACS and c.direction == "decreasing"


# ----------------------------------------------------------------------------- quick runs


def _run(tmp_path, name, overrides=None, **kw):
    from plasticlab.experiments import run_experiment

    return run_experiment(name, tmp_path / name, quick=True, progress=False, plots=False,
                          overrides=overrides or {}, **kw)


def _check_claim_rows(res, name):
    rows = {r["claim"]: r for r in res["claims"]}
    mine = claims_for(name)
    assert set(rows) == {c.id for c in mine}
    for c in mine:
        for m in c.inputs():
            assert m in res["measurements"], (c.id, m)
        if isinstance(c, Numeric):
            assert rows[c.id]["verdict"] in ("not comparable", "not measured"), c.id
        else:
            assert rows[c.id]["verdict"] in ("agrees", "differs", "not measured"), c.id
    return rows


def test_quick_table1_measures_every_claim_input(tmp_path):
    """--quick sam-table1 (digits standing in for MNIST): every MNIST claim's input per seed; numeric claims
    "not comparable"; the other data sets' claims "not measured"."""
    res = _run(tmp_path, "sam-table1", {"epochs": 2.0, "hidden": (16, 16)})
    assert res["stand_in"] == {"mnist": "digits"}
    rows = {r["claim"]: r for r in res["claims"]}
    assert set(rows) == {c.id for c in claims_for("sam-table1")}
    for c in claims_for("sam-table1"):
        ds = c.inputs()[0].split("/")[0]
        if ds == "mnist":
            assert all(m in res["measurements"] and len(res["measurements"][m]) == 2 for m in c.inputs())
            want = ("not comparable",) if isinstance(c, Numeric) else ("agrees", "differs")
            assert rows[c.id]["verdict"] in want, c.id
        else:
            assert rows[c.id]["verdict"] == "not measured"
    # the measurements are the rows' per-seed finals (seed order)
    for m in ("sgd", "sam"):
        want = [r["test_accuracy"] for r in sorted(res["rows"], key=lambda r: r["seed"]) if r["method"] == m]
        assert res["measurements"][K.t1("mnist", m)] == pytest.approx(want)
    assert "paper" not in res


def test_quick_analysis_measures_every_claim_input(tmp_path):
    res = _run(tmp_path, "sam-analysis", {"epochs": 1.0, "evals": 4, "hidden": (16, 16)})
    rows = _check_claim_rows(res, "sam-analysis")
    assert all(r["verdict"] != "not measured" for r in rows.values())
    m, cur = res["measurements"], {k: np.asarray(v, float) for k, v in res["curves"].items()}
    n = len(res["before"]) // 2
    cos = np.stack([np.nanmean(cur[f"cos_sgd_{k}"][:, 1:], axis=1) for k in range(n)]).min(0)
    assert m[K.AN_COS_SGD] == pytest.approx(cos.tolist())
    assert m[K.an_at(0.0, "dvbar_norm")] == pytest.approx(np.mean([cur[f"dvbar_norm_{k}"][:, 0]
                                                                   for k in range(n - 1)], 0).tolist())
    assert m[K.an_at(1.0, "loss")] == pytest.approx(cur["loss"][:, -1].tolist())
    assert max(abs(v) for v in m[K.AN_COS_RANDOM]) < 0.2  # a random direction: chance level, near 0
    assert "paper" not in res and "psd_everywhere" not in res
    first = min(r["seed"] for r in res["rows"])
    for r in res["rows"]:  # the probe's largest / mean eigenvalue of H against numpy on the stored final H (seed 0)
        if r["seed"] == first:
            H = np.asarray(res["after"][f"VbarVbarT_{r['layer'] - 1}"])
            assert r["h_max_eig_final"] == pytest.approx(np.linalg.eigvalsh(H)[-1], rel=1e-3)
            assert r["h_mean_eig_final"] == pytest.approx(np.trace(H) / len(H), rel=1e-3)


def test_quick_scalar_error_judges_its_claims(tmp_path):
    res = _run(tmp_path, "sam-scalar-error", {"epochs": 1.0, "hidden": (16, 16)})
    rows = _check_claim_rows(res, "sam-scalar-error")
    for c in claims_for("sam-scalar-error"):  # judged even where a mode diverged (norm can, quick): at chance
        assert rows[c.id]["verdict"] in ("agrees", "differs")
        dead = sum(v is None or not np.isfinite(v) for v in res["measurements"][c.b])
        assert (f"{dead} of" in rows[c.id]["detail"]) if dead else "diverged" not in rows[c.id]["detail"]
    assert res["measurements"][K.se("vector")] == pytest.approx(
        [r["test_accuracy"] for r in sorted(res["rows"], key=lambda r: r["seed"]) if r["feedback"] == "vector"])
    # every mode got the same validation search (the same rates, one trial each) and trained at its own choice
    searches = {mode: c["search"] for mode, c in res["curves"].items()}
    assert len(searches) == 3 and all(s["lrs"] == [0.1, 0.3] and len(s["val"]) == 2 for s in searches.values())
    assert all(r["lr"] == searches[r["feedback"]]["lr"] for r in res["rows"])


def test_ablation_and_width_measurements_from_rows():
    """The per-seed inputs of the ablation and width claims, from rows (one seed diverged: NaN)."""
    from plasticlab.experiments.sam import ablation as sam_ablation
    from plasticlab.experiments.sam import width as sam_width

    rows = [{"plastic": p, "seed": s, "test_accuracy": v, "status": "ok"}
            for p, vals in (("W", (40.0, 41.0)), ("W+Vbar", (46.0, None)), ("linear (SGD)", (39.0, 40.5)))
            for s, v in enumerate(vals)]
    m = sam_ablation.measurements(rows, "test_accuracy", "cifar10")
    assert m[K.ab("cifar10", "W")] == [40.0, 41.0]
    assert m[K.ab("cifar10", "W+Vbar")][0] == 46.0 and math.isnan(m[K.ab("cifar10", "W+Vbar")][1])
    assert m[K.ab_w_minus_linear("cifar10")] == pytest.approx([1.0, 0.5])
    rows = [{"down_activation": "identity", "width_ratio": r, "seed": s, "test_accuracy": v, "status": "ok"}
            for r, vals in ((1.0, (50.0, 52.0)), (4.0, (53.0, 51.0)), (8.0, (55.0, 50.0))) for s, v in enumerate(vals)]
    m = sam_width.measurements(rows, "test_accuracy", "svhn", ("identity",), (1.0, 4.0, 8.0))  # ReLU forward
    assert m[K.wd_best("svhn", "identity")] == [8.0, 1.0]
    assert m[K.wd("svhn", "identity", 4.0)] == [53.0, 51.0]


def test_lr_search_ratio_measurements():
    """Best log2(eta_Vbar / eta_W) per seed and the best score with eta_V (not) smallest / eta_Vbar (not) largest."""
    from plasticlab.experiments.sam.lr_search import ratio_measurements

    vals = {(0.25, 1.0): (50, 40), (0.25, 4.0): (60, 41), (1.0, 1.0): (45, 55), (1.0, 4.0): (47, None)}
    rows = [{"v": v, "vbar": vb, "seed": s, "val_accuracy": x} for (v, vb), xs in vals.items()
            for s, x in enumerate(xs)]
    m = ratio_measurements(rows, "val_accuracy")
    assert m[K.LR_BEST_LOG2_VBAR_W] == [2.0, 0.0]
    assert m[K.LR_V_SMALLEST] == [60, 41] and m[K.LR_V_NOT_SMALLEST] == [47, 55]
    assert m[K.LR_VBAR_LARGEST] == [60, 41] and m[K.LR_VBAR_NOT_LARGEST] == [50, 55]
    # a seed whose every cell of a group diverged: chance when it is an accuracy, else NaN (not measured)
    gone = [dict(r, val_accuracy=None) if r["v"] == 1.0 and r["seed"] == 1 else r for r in rows]
    assert ratio_measurements(gone, "val_accuracy", chance=10.0)[K.LR_V_NOT_SMALLEST] == [47, 10.0]
    assert math.isnan(ratio_measurements(gone, "val_accuracy")[K.LR_V_NOT_SMALLEST][1])


def test_lr_search_rows_name_each_seeds_own_divergence():
    """A search row's status is its own seed's: "ok" for a seed that finished in a cell where another diverged."""
    from types import SimpleNamespace

    from plasticlab.experiments.sam.common import GridResult
    from plasticlab.experiments.sam.lr_search import _score_rows

    acc = np.array([[[0.9], [np.nan]], [[0.8], [0.81]]])  # fractions (cells, seeds, evals): seed 1 of cell 0 diverged
    res = GridResult([0.1, 0.01], [0.0, 0.0], [3, 4], [100], {"test_accuracy": acc},
                     ["diverged at step 7: W of layer 2 became non-finite or exceeded 1e6", None],
                     seed_diverged=np.array([[False, True], [False, False]]),
                     divergences=[{"cell": 0, "seed": 4, "step": 7, "matrix": "W of layer 2"}])
    rows = _score_rows(res, [(0.1, 0.0), (0.01, 0.0)], SimpleNamespace(name="mnist", task="classification"),
                       "sam", "val_accuracy")
    status = {(r["lr"], r["seed"]): r["status"] for r in rows}
    assert status == {(0.1, 3): "ok", (0.1, 4): "diverged at step 7: W of layer 2 became non-finite or exceeded 1e6",
                      (0.01, 3): "ok", (0.01, 4): "ok"}
    assert [r["val_accuracy"] for r in rows] == [pytest.approx(90.0), None, pytest.approx(80.0), pytest.approx(81.0)]


def test_lr_search_selects_on_validation_inside_search_context(tmp_path, monkeypatch):
    """The search runs inside search_context (a test-split read there raises TestSplitRead), trains on a
    validation split of the training data, and reads the test split once, after the choice."""
    import plasticlab.data.base as B
    from plasticlab.experiments.sam import common as C

    seen = []
    train_grid = C.train_grid

    def spy(trainer, data, **kw):
        seen.append((bool(B._SEARCHES), data.is_validation))
        return train_grid(trainer, data, **kw)

    monkeypatch.setattr(C, "train_grid", spy)
    res = _run(tmp_path, "sam-lr-search", {"lrs": (0.03, 0.1), "decays": (1e-4,), "epochs": 1.0,
                                           "hidden": (16, 16)})
    assert seen[:-1] and all(s == (True, True) for s in seen[:-1])  # the grid and every ratio cell
    assert seen[-1] == (False, False)  # the final fit, scored on the test split
    assert len(seen) == 1 + 4 + 1
    rows = _check_claim_rows(res, "sam-lr-search")
    assert all(r["verdict"] != "not measured" for r in rows.values())
    best = res["best"]
    assert best["test_accuracy"] is not None and best["val_accuracy"] is not None
    # the measured ratio is the best stage-2 cell's, per seed
    for s, got in enumerate(res["measurements"][K.LR_BEST_LOG2_VBAR_W]):
        mine = [r for r in res["ratio_rows"] if r["seed"] == s and r["val_accuracy"] is not None]
        assert got == math.log2(max(mine, key=lambda r: r["val_accuracy"])["vbar"])


def test_lr_search_without_stage_two_trains_the_given_ratios(tmp_path, monkeypatch):
    """Empty ``v_ratios``: no stage 2 (whose cells fix eta_Wbar = eta_W), so a search at other ratios (the 8 x 60
    net's 1 : 0.25 : 0.25 : 0.25) keeps them for the final fit; the ratio claims then say "not measured"."""
    from types import SimpleNamespace

    from plasticlab.experiments.sam import lr_search

    calls = []

    def fake_train(cfg, data, hp, grid, ratios=None):  # every cell and seed finishes, the larger lr scores higher
        calls.append((list(grid), ratios))
        final = np.asarray([[lr] * cfg.seeds for lr, _ in grid])
        return SimpleNamespace(final=lambda metric: final, diverged=[None] * len(grid), seeds=list(range(cfg.seeds)),
                               seed_status=lambda seed, cell: "ok")

    monkeypatch.setattr(lr_search, "_train", fake_train)
    res = _run(tmp_path, "sam-lr-search", {"lrs": (0.01, 0.03), "decays": (1e-4,), "v_ratios": (),
                                           "sam_ratios": (1.0, 0.25, 0.25, 0.25)})
    assert calls == [([(0.01, 1e-4), (0.03, 1e-4)], None), ([(0.03, 1e-4)], (1.0, 0.25, 0.25, 0.25))]
    assert res["ratio_rows"] == [] and res["grid"]["ratio_cells"] == []
    assert res["best"]["ratios"] == [1.0, 0.25, 0.25, 0.25] and res["best"]["lr"] == 0.03
    assert {r["verdict"] for r in res["claims"]} == {"not measured"}


def test_search_context_guards_the_test_split():
    """What the search relies on: inside the context the real test split raises, the validation split does not."""
    from plasticlab.data import TestSplitRead, load_dataset, search_context

    data = load_dataset("digits")
    val = data.validation_split(0.2, seed=0)
    with search_context("sam-lr-search"):
        assert len(val.x_test) == round(0.2 * len(data.x_train))
        with pytest.raises(TestSplitRead):
            data.x_test  # noqa: B018


def test_lr_search_best_cell_keeps_every_seed():
    """The search's choice is the best mean among cells where every seed finished: a cell whose one surviving
    seed scores highest (its others diverged) is not chosen."""
    from plasticlab.experiments.sam.lr_search import _best

    rows = [{"lr": 0.3, "seed": 0, "val": 97.4}, {"lr": 0.3, "seed": 1, "val": None},
            {"lr": 0.2, "seed": 0, "val": 97.2}, {"lr": 0.2, "seed": 1, "val": 97.3},
            {"lr": 0.1, "seed": 0, "val": 96.8}, {"lr": 0.1, "seed": 1, "val": 96.9}]
    assert _best(rows, "val", lambda r: r["lr"]) == 0.2
    assert _best([r for r in rows if r["lr"] == 0.3], "val", lambda r: r["lr"]) is None
