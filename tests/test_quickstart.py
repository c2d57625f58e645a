"""The main job: BP and KP learn the bundled digits to >= 90% with the quickstart's defaults."""

from __future__ import annotations

from plasticlab.experiments import run_experiment


def test_quickstart_bp_and_kp_reach_90_percent(tmp_path):
    res = run_experiment("quickstart", tmp_path, overrides={"rules": "bp,kp"}, progress=False)
    by_rule = {s["rule"]: s for s in res["summary"]}
    assert by_rule["bp"]["test_accuracy_mean"] >= 0.90, by_rule
    assert by_rule["kp"]["test_accuracy_mean"] >= 0.90, by_rule
    assert by_rule["bp"]["n"] == 5
