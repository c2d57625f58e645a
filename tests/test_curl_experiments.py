"""Smoke and sanity tests of the curl-descent experiments at tiny sizes."""

from __future__ import annotations

import numpy as np
import pytest

from plasticlab.experiments import ConfigError, run_experiment


def test_fig1_toy_curl_escapes_saddle_faster_and_plots(tmp_path):
    res = run_experiment("curl-fig1", tmp_path / "f1", quick=True, progress=False)
    rows = {(r["w1_0"], r["w2_0"], r["rule"]): r for r in res["rows"]}
    # near the stable manifold of the origin saddle (w1 = -w2), curl flow reaches the solution first
    assert rows[(1.3, -1.25, "curl")]["time_to_tol"] < rows[(1.3, -1.25, "gd")]["time_to_tol"]
    # inside the circle w1^2 + w2^2 < s curl flow keeps oscillating around the origin (a centre)
    assert rows[(0.5, 0.4, "curl")]["final_loss"] > 0.1 and rows[(0.5, 0.4, "gd")]["final_loss"] < 1e-8
    assert (tmp_path / "f1" / "fig1_toy.png").exists()


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
