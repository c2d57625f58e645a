"""Smoke and sanity tests of the curl-descent experiments at tiny sizes."""

from __future__ import annotations

import re

import numpy as np
import pytest

from plasticlab.experiments import ConfigError, run_experiment
from plasticlab.experiments import curl_fig2, curl_fig3, curl_fig4, curl_fig5, curl_fig10
from plasticlab.experiments.base import prepare
from plasticlab.experiments.curl_ei import paper_rows as curl_ei_paper
from plasticlab.report import paper_table, write_report


def assert_paper_rows(res: dict) -> list[dict]:
    """results["paper"] is a non-empty list of filled rows and its paper-vs-ours table has no empty cell."""
    rows = res["paper"]
    assert isinstance(rows, list) and 2 <= len(rows) <= 5
    for r in rows:
        for k in ("quantity", "paper", "ours", "where", "note"):
            assert r[k] not in (None, ""), (k, r)
    table = paper_table(rows)
    columns = {k for r in table for k in r}
    for r in table:
        for c in columns:
            assert r.get(c) not in (None, ""), (c, r)
    return table


def verdicts(rows: list[dict]) -> dict[str, str]:
    """quantity -> ours, for the qualitative rows."""
    return {r["quantity"]: r["ours"] for r in rows if isinstance(r["ours"], str)}


def test_fig1_toy_curl_escapes_saddle_faster_and_plots(tmp_path):
    res = run_experiment("curl-fig1", tmp_path / "f1", quick=True, progress=False)
    rows = {(r["w1_0"], r["w2_0"], r["rule"]): r for r in res["rows"]}
    # near the stable manifold of the origin saddle (w1 = -w2), curl flow reaches the solution first
    assert rows[(1.3, -1.25, "curl")]["time_to_tol"] < rows[(1.3, -1.25, "gd")]["time_to_tol"]
    # inside the circle w1^2 + w2^2 < s curl flow keeps oscillating around the origin (a centre)
    assert rows[(0.5, 0.4, "curl")]["final_loss"] > 0.1 and rows[(0.5, 0.4, "gd")]["final_loss"] < 1e-8
    assert (tmp_path / "f1" / "fig1_toy.png").exists()
    # paper vs ours: every Fig. 1 claim is met by the default inits (the ascent comes from the init (1.5, 0.3))
    table = assert_paper_rows(res)
    assert all(not r["off"] for r in table), [r for r in table if r["off"]]
    assert all(r["ours"] == "yes" for r in table if r["paper"] == "yes")
    # the same rows in the Markdown report: a table with no empty cell
    write_report([tmp_path / "f1"], tmp_path / "rep")
    md = (tmp_path / "rep" / "report.md").read_text()
    part = re.search(r"### paper vs ours[^\n]*\n(.*?)(?:\n###|\Z)", md, re.S).group(1)
    lines = [ln for ln in part.splitlines() if ln.startswith("|") and not ln.startswith("|---")]
    assert len(lines) == 1 + len(table)
    cells = [[c.strip() for c in re.split(r"(?<!\\)\|", ln.strip())[1:-1]] for ln in lines]  # unescaped |
    assert all(len(row) == len(cells[0]) and all(row) for row in cells), cells


def test_ei_curl_vanishes_only_without_input_to_inhibitory_neurons(tmp_path):
    res = run_experiment("curl-ei", tmp_path / "ei", overrides={"n": 5, "n_inputs": 8, "seeds": 1,
                                                                 "inhibitory_fractions": (0.0, 0.4),
                                                                 "antihebbian_fractions": (0.0, 0.3)},
                         progress=False, plots=False)
    s = {(r["network"], r["fraction"], r["inputs"]): r["curl_first_order"] for r in res["summary"]}
    assert s[("E-I", 0.0, "all")] < 1e-6
    assert s[("E-I", 0.4, "all")] > 0.05
    assert s[("E-I", 0.4, "excitatory_only")] < 1e-6
    assert s[("Hebb/anti-Hebb", 0.0, "all")] < 1e-6 and s[("Hebb/anti-Hebb", 0.3, "all")] > 0.05
    assert max(r["analytic_vs_autograd"] for r in res["rows"] if r["network"] == "E-I") < 1e-5
    table = assert_paper_rows(res)
    assert [r["ours"] for r in table] == ["yes"] * 5
    # without anti-Hebbian synapses the mixed-sign claim cannot be checked: a reason, not a verdict
    rows = curl_ei_paper([r for r in res["summary"] if not (r["network"] == "Hebb/anti-Hebb" and r["fraction"] > 0)])
    assert next(r["ours"] for r in rows if r["quantity"].startswith("mixed")).startswith("not run")
    # a curl share on an all-excitatory network would contradict the paper
    bad = [{**r, "curl_first_order_max": 0.2} if r["fraction"] == 0 else r for r in res["summary"]]
    assert curl_ei_paper(bad)[0]["ours"] == "no"


def test_fig3_tiny_grid_stable_vs_unstable(tmp_path):
    over = {"cs": (1.0,), "alphas": (0.0, 0.6), "total": 16, "epochs": 400, "seeds": 1, "example_epochs": 40,
            "example_c": 1.0}
    res = run_experiment("curl-fig3", tmp_path / "f3", overrides=over, progress=False, plots=False)
    cells = {(r["c"], r["alpha"]): r for r in res["cells"]}
    assert cells[(1.0, 0.0)]["test_error"] < 1e-2           # GD learns (not fully converged in 400 epochs)
    assert cells[(1.0, 0.6)]["theory_side"] == "unstable"    # beyond the boundary: no convergence, fluctuations
    assert cells[(1.0, 0.6)]["test_error"] > 0.05
    assert cells[(1.0, 0.6)]["q"] > 100 * cells[(1.0, 0.0)]["q"]
    assert len(res["examples"]["unstable"]["autocorr"]) > 2
    with pytest.raises(ConfigError, match="unknown setting"):
        run_experiment("curl-fig3", tmp_path / "bad", overrides={"alpha": 0.1})
    assert np.isfinite(res["phase_summary"]["agreement_with_theory"])
    table = assert_paper_rows(res)
    assert table[1]["quantity"].startswith("above the boundary") and table[1]["ours"] == "yes"
    # computed from the summary: a learned unstable side turns the verdict, an empty side gives a reason
    summ = dict(res["phase_summary"], **{"median_error_unstable_c>0.3": 1e-5, "median_error_stable": float("nan")})
    below, above = curl_fig3.paper_rows(summ, res["examples"]["unstable"])[:2]
    assert above["ours"] == "no" and below["ours"].startswith("no cell below the boundary")


def test_fig2_and_fig4_paper_rows_follow_the_results():
    """paper rows of curl-fig2 / curl-fig4 from hand-made results (no simulation): numbers from the theory,
    verdicts that change with the results."""
    cs = np.geomspace(0.05, 3.0, 8)
    from plasticlab.analysis.curl_theory import boundary_curve

    out = {"c": cs.tolist(), "boundary_hidden": boundary_curve(cs, "hidden").tolist(),
           "boundary_readout": boundary_curve(cs, "readout").tolist()}
    checks = [{"layer": "hidden", "c": 0.5, "size": 400, "sampled_alpha": 0.05, "theory_alpha": 0.047,
               "abs_diff": 0.003}]
    table = assert_paper_rows({"paper": curl_fig2.paper_rows(out, checks)})
    num = {r["quantity"]: r for r in table if not isinstance(r["ours"], str)}
    assert abs(num["alpha_h boundary: compression ratio c where alpha*_h(c) = 0.5"]["ours"] - 0.31) < 0.01
    assert all(not r["off"] for r in table)
    rising = dict(out, boundary_readout=out["boundary_readout"][::-1])
    assert "no" in verdicts(curl_fig2.paper_rows(rising, [{**checks[0], "abs_diff": 0.2}])).values()

    summary = {"cells_stable": 3, "cells_unstable": 3, "median_error_stable": 1e-12, "median_error_unstable": 0.02,
               "median_peak_error_stable": 1e-11, "median_peak_error_unstable": 1.5}
    example = {"c": 1.0, "alpha": 0.6, "epochs": [0, 10, 20], "test_error": [1e-12, 0.8, 1e-3],
               "autocorr": [1.0, 0.2]}
    table = assert_paper_rows({"paper": curl_fig4.paper_rows(summary, example, 1e-6)})
    assert [r["ours"] for r in table] == ["yes"] * 4
    stuck = dict(example, test_error=[1e-12, 0.8, 0.8])
    assert curl_fig4.paper_rows(dict(summary, median_error_unstable=0.5), stuck, 1e-6)[1]["ours"] == "no"
    assert curl_fig4.paper_rows(summary, stuck, 1e-6)[3]["ours"] == "no"


def test_fig5_and_fig10_paper_rows_from_paired_tests():
    """Speed claims from hand-made paired-test summaries: p thresholds (.01 tanh, .05 ReLU), the critical
    teacher scale, and reasons for sweeps that were not run."""
    def row(sweep, value, gd, curl, p):
        return {"sweep": sweep, "value": float(value), "gd_log10_error": gd, "curl_log10_error": curl, "p": p}

    summary = [row("n_train", 250, -0.3, -0.6, 0.2), row("n_train", 2000, -1.5, -1.9, 0.001),
               row("teacher_scale", 0.5, -0.7, -1.8, 0.001), row("teacher_scale", 4.0, -0.9, -0.9, 0.5)]
    cfg = curl_fig5.CurlSpeedConfig()
    table = assert_paper_rows({"paper": curl_fig5.paper_rows(summary, cfg)})
    assert [r["ours"][:7] for r in table] == ["yes", "yes", "not run", "yes", "not run"]
    slow = [row("n_train", 2000, -1.5, -1.9, 0.03)] + summary[2:]
    assert [r["ours"] for r in curl_fig5.paper_rows(slow, cfg)[:2]] == ["no", "no"]
    relu = curl_fig10.CurlReluConfig()
    rows = curl_fig10.paper_rows([row("n_train", 1400, -0.3, -0.5, 0.03), row("init_scale", 4.0, -0.3, -0.2, 0.3)],
                                 relu)
    assert [r["ours"] for r in assert_paper_rows({"paper": rows})] == ["yes", "yes", "no"]


def test_quick_speed_configs_measure_every_paper_row(tmp_path):
    """--quick of curl-fig5 / curl-fig10 has a point in every sweep a paper row needs (Fig. 5d-f, 10c), and
    run_speed makes exactly the comparisons ``sweep_points`` lists (tiny network, 5 epochs)."""
    for name, mod in (("curl-fig5", curl_fig5), ("curl-fig10", curl_fig10)):
        cfg = prepare(name, quick=True)[1]
        summary = [{"sweep": s, "value": v, "gd_log10_error": -1.0, "curl_log10_error": -1.5, "p": 1e-3}
                   for s, v in curl_fig5.sweep_points(cfg)]
        rows = assert_paper_rows({"paper": mod.paper_rows(summary, cfg)})
        assert not [r for r in rows if r["ours"].startswith("not run")], (name, rows)
    # a config without those sweeps gives reasons, so the check above can fail
    no_sweeps = {"init_scales": (), "teacher_scales": (), "flip_fractions": ()}
    bare = prepare("curl-fig5", quick=True, overrides=no_sweeps)[1]
    rows = curl_fig5.paper_rows([r for r in summary if r["sweep"] == "n_train"], bare)
    assert sum(r["ours"].startswith("not run") for r in rows) == 3
    over = {"M": 6, "N": 3, "n_trains": (20,), "base_n_train": 20, "init_scales": (2.0, 4.0), "teacher_scales": (1.0,),
            "flip_fractions": (0.7,), "n_test": 20, "seeds": 3, "epochs": 5}
    res = run_experiment("curl-fig5", tmp_path / "f5", overrides=over, progress=False, plots=False)
    cfg = prepare("curl-fig5", overrides=over)[1]
    assert [(r["sweep"], r["value"]) for r in res["summary"]] == curl_fig5.sweep_points(cfg)
    assert res["summary"][-1]["flipped"] == 2                    # round(0.7 * 3) readout weights flipped
