"""oja-rnn-grid: the choice on validation, the Oja-rate cells, divergence kept per cell, the claims' inputs."""

from __future__ import annotations

import numpy as np
import pytest

from plasticlab.claims import claims_for
from plasticlab.claims.oja import GRID_COMPARISONS
from plasticlab.experiments import run_experiment
from plasticlab.experiments.oja.rnn_grid import OjaRnnGridConfig, key
from plasticlab.experiments.base import ConfigError

TINY = {"dataset": "digits", "n_train": 300, "n_val": 100, "n_samples": 60, "seeds": 2, "evals": 2,
        "t_total": 6, "t_stim": 2, "alphas": (0.1, 0.3), "etas": (0.01, 0.05), "eta_oja": 0.003,
        "eta_ojas": (0.003, 0.03)}


def _mean(cells, name):
    return np.nanmean(np.asarray(cells[name]["val_accuracy"], float))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid")
    return out, run_experiment("oja-rnn-grid", out, overrides=TINY, progress=False, plots=False)


def test_choice_is_the_stated_coordinate_search(tiny):
    _, res = tiny
    cells, ch = res["cells"], res["chosen"]
    best_bptt = {a: max(_mean(cells, f"{key(a, e)}/bptt") for e in TINY["etas"]) for a in TINY["alphas"]}
    assert ch["alpha"] == max(best_bptt, key=best_bptt.get)
    for spec in ("bptt", "bptt+oja"):
        accs = {e: _mean(cells, f"{key(ch['alpha'], e)}/{spec}") for e in TINY["etas"]}
        assert ch["eta"][spec] == max(accs, key=accs.get)
    oja = {o: _mean(cells, f"{key(ch['alpha'], ch['eta']['bptt+oja'], o)}/bptt+oja") for o in TINY["eta_ojas"]}
    assert ch["eta_oja"] == max(oja, key=oja.get)
    m = res["measurements"]
    assert m["chosen/bptt/val_accuracy"] == cells[ch["cells"]["bptt"]]["val_accuracy"]
    # the grid's own Oja rate is its grid cell again: 2 x 2 x 2 grid units + 1 other Oja rate
    assert res["meta"]["units_computed"] == 9
    assert (cells[f"{key(ch['alpha'], ch['eta']['bptt+oja'], 0.003)}/bptt+oja"]
            == cells[f"{key(ch['alpha'], ch['eta']['bptt+oja'])}/bptt+oja"])


def test_max_gap_cell_pairs_the_rules_at_one_setting(tiny):
    _, res = tiny
    gaps, m = res["chosen"]["pev_gaps"], res["measurements"]
    top = res["chosen"]["max_gap_cell"]
    assert gaps[top] == max(gaps.values())
    setting = top.rsplit("/eta_oja=", 1)[0].removesuffix("/bptt+oja")
    assert m["max_gap/bptt/pev_delay"] == m[f"{setting}/bptt/pev_delay"]
    assert np.nanmean(np.subtract(m["max_gap/bptt+oja/pev_delay"], m["max_gap/bptt/pev_delay"])) == pytest.approx(
        gaps[top])
    assert {i for c in claims_for("oja-rnn-grid") for i in c.inputs()} <= set(m)
    assert {r["claim"] for r in res["claims"]} == {c.id for c in claims_for("oja-rnn-grid")}


def test_pev_over_training_has_every_evaluation(tiny):
    _, res = tiny
    c = res["cells"][res["chosen"]["cells"]["bptt"]]
    assert np.asarray(c["pev_time_over_training"]).shape == (TINY["evals"] + 1, TINY["t_total"])
    # the last evaluation's PEV is the final network's (the final PEV curve's seed mean)
    np.testing.assert_allclose(np.asarray(c["pev_time_over_training"])[-1], c["pev_time_final"]["mean"], rtol=1e-5)


def test_a_diverging_cell_is_kept_and_never_chosen(tmp_path):
    over = {**TINY, "alphas": (0.3,), "etas": (0.01, 1e4), "eta_ojas": (0.003,)}
    res = run_experiment("oja-rnn-grid", tmp_path, overrides=over, progress=False, plots=False)
    bad = res["cells"][f"{key(0.3, 1e4)}/bptt"]
    assert bad["status"].startswith("diverged") and np.isnan(np.asarray(bad["val_accuracy"], float)).all()
    assert res["chosen"]["eta"] == {"bptt": 0.01, "bptt+oja": 0.01}


def test_default_grid_has_the_claimed_number_of_comparisons():
    cfg = OjaRnnGridConfig()
    extra = len([o for o in cfg.eta_ojas if o != cfg.eta_oja])
    assert len(cfg.alphas) * len(cfg.etas) + extra == GRID_COMPARISONS


@pytest.mark.parametrize("bad", [{"t_stim": 6}, {"n_val": 300}])
def test_bad_settings_refused_before_any_work(tmp_path, bad):
    with pytest.raises(ConfigError, match=f"{next(iter(bad))}={next(iter(bad.values()))}"):
        run_experiment("oja-rnn-grid", tmp_path, overrides={**TINY, **bad}, progress=False, plots=False)
    assert not (tmp_path / "units").exists() or not any((tmp_path / "units").iterdir())
