"""The Hebbian-alignment paper's claims (plasticlab.claims.hebb): Table 1 is covered cell by cell, and quick runs
measure every input their claims read (that each claim can fail: test_claims.py's mutation test of every claim)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from plasticlab.claims import Exponent, Greater, Numeric, Trend, claims_for
from plasticlab.claims import hebb as HC

HEBB = claims_for(paper="hebb")


def test_every_table1_cell_is_a_numeric_claim_with_the_papers_mean_and_sd():
    by_id = {c.id: c for c in claims_for("hebb-table1")}
    n_cells = 0
    for (model, rule), cells in HC.PAPER_TABLE1.items():
        for g, ref in zip(HC.TABLE1_GAMMAS, cells):
            if ref is None:  # "-": the weights collapsed, a claim about the weight norm instead
                c = by_id[f"hebb.table1.{model}.{rule}.gamma={g:g}.collapse"]
                assert isinstance(c, Numeric) and c.value == 0.0 and c.tolerance_reason
                assert c.measure == HC.t1_weight_ratio(model, rule, g)
                continue
            n_cells += 1
            c = by_id[f"hebb.table1.{model}.{rule}.gamma={g:g}"]
            assert isinstance(c, Numeric) and c.tolerance is None
            assert c.value == ref[0]
            assert c.spread == (ref[1] if ref[1] > 0 else HC.SD_FLOOR)
            assert c.measure == HC.t1_alignment(model, rule, g)
        trend = by_id[f"hebb.table1.{model}.{rule}.rises_with_gamma"]
        assert isinstance(trend, Trend) and trend.direction == "increasing"
        assert trend.measures == tuple(HC.t1_alignment(model, rule, g)
                                       for g, ref in zip(HC.TABLE1_GAMMAS, cells) if ref is not None)
    assert n_cells == 30  # 8 rows x 4 columns, less Adam's two collapsed cells
    assert sum(c.id.endswith(".collapse") for c in by_id.values()) == 2


def test_table1_numeric_uses_the_papers_sd_and_the_rounding_floor():
    c = {c.id: c for c in HEBB}["hebb.table1.mlp.sgd.gamma=0.005"]  # paper 0.59 +- 0.01
    name = c.measure
    near = {name: [0.60, 0.61, 0.60, 0.59, 0.61]}  # |diff| ~0.012 < 2 sqrt(0.01^2 + se^2)
    far = {name: [0.67, 0.66, 0.68, 0.67, 0.67]}  # our SGD at paper size (docs/hebb.md): differs
    assert c.judge(near).status == "agrees"
    assert c.judge(far).status == "differs"
    assert c.judge(near, quick=True).status == "not comparable"
    z = {c.id: c for c in HEBB}["hebb.table1.mlp.randomnn.gamma=0"]  # 0.00 +- 0.00 printed
    assert z.spread == HC.SD_FLOOR
    assert z.judge({z.measure: [0.004, 0.006, 0.005]}).status == "agrees"
    assert z.judge({z.measure: [0.22, 0.21, 0.23]}).status == "differs"  # our RandomNN (docs/hebb.md)


def test_boundary_exponent_claim_reads_the_papers_quadratic():
    c = {c.id: c for c in HEBB}["hebb.fig4.boundary_exponent"]
    assert isinstance(c, Exponent) and c.exponent == 2.0 and c.spread == 0.0
    g = np.array([1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2])
    quad = {HC.BOUNDARY_GAMMA: g.tolist(), HC.BOUNDARY_SIGMA: np.sqrt(g / 3.0).tolist()}
    lin = {HC.BOUNDARY_GAMMA: g.tolist(), HC.BOUNDARY_SIGMA: (g * 5.0).tolist()}
    assert c.judge(quad).status == "agrees"
    assert c.judge(lin).status == "differs"


def test_fig5_measurements_split_cells_by_loss():
    from plasticlab.experiments.hebb.fig5 import HebbFig5Config, measurements

    cfg = HebbFig5Config(gammas=(1e-3, 2e-3), sigmas=(0.01, 0.1, 0.2), seeds=1)
    ok = [{"gamma": g, "sigma": s, "seed": 0, "alignment": a, "val_loss": v}
          for (g, s), a, v in zip([(g, s) for g in cfg.gammas for s in cfg.sigmas] * 2,
                                  [0.01, -0.6, 0.7, -0.02, 0.5, -0.4] * 2, [0.1, 0.5, 0.6, 0.11, 0.4, 0.7] * 2)]
    m = measurements(cfg, ok)
    assert sorted(m[HC.FIG5_BEST]) == pytest.approx([0.01, 0.01])  # the 2 lowest losses of 12 cells
    assert len(m[HC.FIG5_REST]) == 10
    assert len(m[HC.fig5_gamma_loss(1e-3)]) == 6 and len(m[HC.fig5_sigma_loss(0.1)]) == 4
    c = {c.id: c for c in HEBB}["hebb.fig5.best_loss_near_zero_alignment"]
    assert isinstance(c, Greater) and c.a == HC.FIG5_REST and c.b == HC.FIG5_BEST
    assert c.judge(m).status == "agrees"


def _inputs(experiment: str) -> set[str]:
    return {n for c in claims_for(experiment) for n in c.inputs()}


def test_quick_table1_measures_every_claim_input(tmp_path):
    """A quick run (every transformer rule, fewer epochs) writes each Table 1 claim's measurement, one value per
    seed, and the claim rows; the numeric ones are "not comparable" on a quick run."""
    from plasticlab.experiments import run_experiment

    res = run_experiment("hebb-table1", tmp_path, quick=True, progress=False, plots=False,
                         overrides={"transformer_rules": ("adam", "sgd", "dfa", "randomnn"), "epochs": 2.0,
                                    "max_epochs": None,  # exactly 2 epochs: the criterion has its own tests
                                    "n_train": 128, "n_val": 32, "batch_size": 32, "d": 8, "hidden": (8, 8),
                                    "seq_length": 4, "seq_vocab": 4, "seq_heads": 2, "log_every": 2, "window": 4})
    m = res["measurements"]
    assert _inputs("hebb-table1") <= set(m)
    seeds = res["config"]["seeds"]
    assert all(len(v) == seeds for v in m.values())
    # the measurement is the run's per-seed alignment, None only for a collapsed seed
    r0 = next(r for r in res["rows"] if r["model"] == "mlp" and r["rule"] == "sgd" and r["gamma"] == 5e-3)
    v = m[HC.t1_alignment("mlp", "sgd", 5e-3)][r0["seed"]]
    assert (v is None) if r0["collapsed"] else v == pytest.approx(r0["alignment"])
    rows = {r["claim"]: r for r in res["claims"]}
    assert set(rows) == {c.id for c in claims_for("hebb-table1")}
    for c in claims_for("hebb-table1"):
        if isinstance(c, Numeric):
            assert rows[c.id]["verdict"] in ("not comparable", "not measured"), rows[c.id]
        else:
            assert rows[c.id]["verdict"] in ("agrees", "differs"), rows[c.id]
    assert "paper" not in res  # the claims are the single source


def test_a_table1_run_of_the_adamw_diagnosis_feeds_no_claim(tmp_path):
    """AdamW (decoupled decay) is not a rule of the paper's table: its rows and measurements carry its own name,
    train at lr_adam, and every Table 1 claim reads "not measured"."""
    from plasticlab.experiments import run_experiment

    res = run_experiment("hebb-table1", tmp_path, quick=True, progress=False, plots=False,
                         overrides={"models": ("mlp",), "rules": ("adamw",), "epochs": 1.0, "max_epochs": None,
                                    "n_train": 64, "n_val": 16, "batch_size": 32, "d": 4, "hidden": (4,),
                                    "log_every": 1, "window": 2, "lr_adam": 0.02})
    assert {r["rule"] for r in res["rows"]} == {"adamw"}
    assert all(k.startswith("mlp/adamw/") for k in res["measurements"])
    assert {s["paper"] for s in res["summary"]} == {"n/a"}
    assert {r["verdict"] for r in res["claims"]} == {"not measured"}


@pytest.mark.parametrize("name,gammas,sigmas", [("hebb-fig4", HC.FIG4_GAMMAS, HC.FIG4_SIGMAS),
                                                 ("hebb-fig5", HC.FIG4_GAMMAS, HC.FIG4_SIGMAS),
                                                 ("hebb-fig13", HC.FIG13_GAMMAS, HC.FIG13_SIGMAS),
                                                 ("hebb-fig14", HC.FIG14_GAMMAS, HC.FIG14_SIGMAS)])
def test_tiny_grid_run_on_the_default_grid_measures_every_claim_input(tmp_path, name, gammas, sigmas):
    from plasticlab.experiments import run_experiment

    tiny = {"n_train": 256, "n_val": 64, "d": 8, "hidden": (8, 8), "epochs": 2.0, "batch_size": 32,
            "log_every": 4, "window": 8, "gammas": gammas, "sigmas": sigmas}  # the default grid: the claims' cells
    res = run_experiment(name, tmp_path, quick=True, overrides=tiny, progress=False, plots=False)
    assert _inputs(name) <= set(res["measurements"])
    rows = res["claims"]
    assert {r["claim"] for r in rows} == {c.id for c in claims_for(name)}
    assert all(r["verdict"] in ("agrees", "differs", "not measured") for r in rows)


@pytest.mark.parametrize("setting", [{"rule": "adam", "lr": 0.01}, {"noise": "input"}])
def test_a_grid_in_another_setting_feeds_no_fig4_or_fig5_claim(tmp_path, setting):
    """hebb-fig4 with Adam or with input noise files its measurements under the setting's prefix, so the Fig. 4
    claims (SGD, weight noise) say "not measured" instead of judging another experiment."""
    from plasticlab.experiments import run_experiment

    tiny = {"n_train": 256, "n_val": 64, "d": 8, "hidden": (8, 8), "epochs": 2.0, "batch_size": 32,
            "log_every": 4, "window": 8, "lr": 0.2, "gammas": HC.FIG4_GAMMAS, "sigmas": HC.FIG4_SIGMAS}
    res = run_experiment("hebb-fig4", tmp_path, quick=True, overrides={**tiny, **setting}, progress=False,
                         plots=False)
    pre = HC.grid_setting(res["config"]["rule"], res["config"]["noise"])
    assert pre and all(k.startswith(pre) for k in res["measurements"])
    assert {r["verdict"] for r in res["claims"]} == {"not measured"}


def test_theory_quick_run_measures_eq26_and_lemma1(tmp_path):
    from plasticlab.experiments import run_experiment

    res = run_experiment("hebb-theory", tmp_path, quick=True, progress=False, plots=False,
                         overrides={"gammas": (5e-3,), "n_train": 128, "hidden": (16, 16), "d": 8,
                                    "gd_steps": 200, "lbfgs_iters": 200})
    m = res["measurements"]
    assert _inputs("hebb-theory") <= set(m)
    assert len(m[HC.THEORY_EQ26_RATIOS]) == len(res["rows"]) == 3  # one gamma x one seed x 3 layers
    for r, ratio in zip(res["rows"], m[HC.THEORY_LEMMA1_RATIOS]):
        assert ratio == pytest.approx(r["C_measured"] / r["C_closed_form"])
    # the claims read the worst case, as the paper's "at a stationary point" is every one
    assert m[HC.THEORY_LEMMA1] == pytest.approx([max(abs(r["C_measured"] / r["C_closed_form"] - 1)
                                                     for r in res["rows"])])
    assert len(m[HC.THEORY_EQ26]) == 1 and math.isfinite(m[HC.THEORY_EQ26][0])
    verdicts = {r["claim"]: r["verdict"] for r in res["claims"]}
    assert {v for k, v in verdicts.items() if k != "hebb.theory.c_positive"} == {"not comparable"}  # numbers
    assert m[HC.THEORY_MIN_C] == [min(r["C_measured"] for r in res["rows"])]
    assert verdicts["hebb.theory.c_positive"] == ("agrees" if m[HC.THEORY_MIN_C][0] > 0 else "differs")  # relational


def test_sweeps_and_fig3_measurements_name_their_claims_inputs():
    """Rows as the default configs produce them (synthetic values) give every input of the hebb-sweeps and
    hebb-fig3 claims; pooled lists pair by (gamma, seed)."""
    from plasticlab.experiments.hebb import fig3 as hebb_fig3
    from plasticlab.experiments.hebb import sweeps as hebb_sweeps

    cfg = hebb_sweeps.HebbSweepsConfig()
    rows, summary = [], []
    for sweep in cfg.sweeps:
        for value in hebb_sweeps._values(cfg, sweep):
            for g in cfg.gammas:
                for s in range(2):
                    rows.append({"sweep": sweep, "value": value, "gamma": g, "seed": s, "alignment": 0.1 * s,
                                 "val_acc": 0.5, "collapsed": False})
                summary.append({"sweep": sweep, "value": value, "gamma": g, "alignment_mean": 0.05,
                                "alignment_sd": 0.05, "val_acc": 0.5})
    m = hebb_sweeps.measurements(rows, summary)
    assert _inputs("hebb-sweeps") <= set(m)
    assert len(m[HC.sweep_alignment("regularizer", "none")]) == len(cfg.gammas) * 2
    assert m[HC.sweep_alignment("regularizer", "none")] == m[HC.sweep_alignment("regularizer", "batchnorm")]

    f3 = hebb_fig3.HebbFig3Config()
    rows3 = [{"activation": a, "depth": len(h) + 1, "gamma": g, "seed": 0, "layer": l, "alignment": 0.0}
             for a, h in [(a, f3.hidden) for a in f3.activations] + [("tanh", f3.deep_hidden)]
             for g in f3.gammas for l in range(1, len(h) + 2)]
    assert _inputs("hebb-fig3") <= set(hebb_fig3.measurements(rows3))


def test_table1_ledger_markdown_lays_the_record_out_as_the_papers_table(tmp_path):
    """A record whose SGD cells at gamma = 5e-4 hold the paper's value and at 5e-3 a contradicting one: the table
    shows each cell's mean +- SD (n), the paper's value and the re-judged verdicts; a cell whose seeds all
    collapsed says so; unrecorded cells say not run."""
    import json

    from plasticlab.experiments.hebb.table1 import ledger_markdown
    from plasticlab.ledger import _summary

    vals = {HC.t1_alignment("mlp", "sgd", 5e-4): [0.17, 0.16, 0.18], HC.t1_alignment("mlp", "sgd", 5e-3): [0.9] * 3,
            HC.t1_stationary_epoch("mlp", "sgd", 5e-3): [120.0, None, 130.0],
            HC.t1_alignment("mlp", "adam", 5e-3): [None, None, None],  # every seed collapsed
            HC.t1_weight_ratio("mlp", "adam", 5e-3): [0.0, 0.001, 0.0]}
    rec = {"experiment": "hebb-table1", "paper": "hebb", "size": "test", "wall_seconds": 1.0, "cpu_seconds": 2.0,
           "measurements": {k: _summary(v) for k, v in vals.items()}, "claims": []}
    (tmp_path / "hebb").mkdir()
    (tmp_path / "hebb" / "hebb-table1.json").write_text(json.dumps(rec))
    table = ledger_markdown(tmp_path)
    sgd = next(line for line in table.splitlines() if line.startswith("| Regression MLP | SGD |"))
    cells = [c.strip() for c in sgd.strip("|").split("|")[2:]]
    assert cells[2] == "0.17 +- 0.01 (n=3)<br>paper 0.17 +- 0.01<br>agrees"
    assert cells[3] == "0.90 +- 0.00 (n=3)<br>paper 0.59 +- 0.01<br>differs; stationary 2/3"
    assert cells[0].startswith("not run<br>paper -0.10 +- 0.01<br>")
    adam = next(line for line in table.splitlines() if line.startswith("| Regression MLP | Adam |"))
    assert adam.strip("|").split("|")[5].strip().startswith("collapsed (3/3 seeds)<br>paper collapsed<br>")
    assert "No committed record" in ledger_markdown(tmp_path / "empty")
