"""Cost plans (plasticlab.plan): the estimator against measured runs, the CLI, the ledger's estimate field."""

import json

import pytest
from typer.testing import CliRunner

from plasticlab import plan as P
from plasticlab.cli import app
from plasticlab.experiments.base import ConfigError


def test_budget_parsing_and_refusal():
    assert P.parse_budget("90s") == 90 and P.parse_budget("30m") == 1800 and P.parse_budget("1.5h") == 5400
    assert P.parse_budget("12") == 12 and P.parse_budget(None) is None
    with pytest.raises(ConfigError, match="--budget='soon'"):
        P.parse_budget("soon")


def test_a_capped_run_is_planned_at_its_cap_and_calibrated_at_fixed_shortened_lengths():
    """hebb-table1 trains until stationary, at most max_epochs: the plan's length is the cap (the worst case), and
    a shortened calibration run lowers the minimum epochs with it, so that it trains exactly that long."""
    from plasticlab.experiments.base import prepare
    from plasticlab.plan import _capped, length_of

    _, cfg = prepare("hebb-table1", overrides={"max_epochs": 400.0})
    assert length_of(cfg) == ("max_epochs", 400.0)
    assert _capped(cfg, "max_epochs", 12.5) == {"epochs": 12.5}  # below the paper's 50
    assert _capped(cfg, "max_epochs", 200.0) == {"epochs": 50.0}
    _, fixed = prepare("hebb-table1", overrides={"max_epochs": None})
    assert length_of(fixed) == ("epochs", 50.0) and _capped(fixed, "epochs", 10.0) == {}


def test_line_extrapolation_and_its_noise_fallback():
    assert P._line(1, 10, 2, 12, 11) == pytest.approx(30)          # a = 8, b = 2
    assert P._line(1, 10, 2, 9, 4) == pytest.approx(20)            # shrinking pair (noise): proportional to x
    assert P._shorten(3000, 1 / 32) == 94 and P._shorten(30.0, 1 / 32) == 0.938 and P._shorten(10, 1 / 32) == 2


def test_the_calibration_walks_to_longer_pairs_until_the_growing_part_is_resolved(tmp_path, monkeypatch):
    """``plan``'s walk over the fraction pairs, on a fake run whose CPU time is a + b x: with fixed costs that
    hide b at the shortest pair it goes on to the next pair, stops at the first resolved one, keeps the shorter
    pair's estimate of an expensive run rather than run it in full, and a second plan is read from the cache."""
    monkeypatch.setenv("PLASTICLAB_CACHE", str(tmp_path / "cache"))
    calls: list[float] = []

    def fake(fixed: float, per_unit: float):
        def measure(experiment, overrides, quick, data_dir, seeds):
            x = overrides["n_samples"]
            calls.append(x)
            cpu = fixed + per_unit * x
            return {"ok": True, "wall": 2 * cpu, "cpu": cpu, "rss_mib": 100.0, "units": 1, "error": None}
        return measure

    monkeypatch.setattr(P, "_measure", fake(fixed=10.0, per_unit=0.02))   # resolved at 1/8, 1/4 of 6400
    lines: list[str] = []
    est = P.plan("oja-fig5", quick=True, overrides={"n_samples": 6400}, report=lines.append)
    assert calls == [200, 400, 800, 1600] and est.calibrated_at == [800, 1600]
    assert lines[:2] == ["oja-fig5: calibration run at n_samples=200 of 6400 ...",  # a line before and after each
                         "oja-fig5: calibration run at n_samples=200 of 6400: 28 s wall, 14 CPU-s"] and len(lines) == 8
    assert est.cpu_seconds == pytest.approx(10 + 128) and est.wall_seconds == pytest.approx(2 * 138)
    calls.clear()
    again = P.plan("oja-fig5", quick=True, overrides={"n_samples": 6400})
    assert calls == [] and again.cached and again.cpu_seconds == est.cpu_seconds
    longer = P.plan("oja-fig5", quick=True, overrides={"n_samples": 12800})  # the length is not part of the key:
    assert calls == [] and longer.cpu_seconds == pytest.approx(10 + 256)    # the same line, read further out

    monkeypatch.setenv("PLASTICLAB_CACHE", str(tmp_path / "cache2"))
    monkeypatch.setattr(P, "_measure", fake(fixed=1000.0, per_unit=0.01))  # never resolved, expensive: no full run
    est = P.plan("oja-fig5", quick=True, overrides={"n_samples": 6000})
    assert calls == [188, 375, 750, 1500] and est.calibrated_at == [750, 1500]
    calls.clear()
    monkeypatch.setenv("PLASTICLAB_CACHE", str(tmp_path / "cache3"))
    monkeypatch.setattr(P, "_measure", fake(fixed=5.0, per_unit=0.0001))   # never resolved, cheap: up to the full run
    P.plan("oja-fig5", quick=True, overrides={"n_samples": 5000})
    assert calls == [156, 312, 625, 1250, 2500, 5000]


def test_calibration_runs_are_cold_runs_without_the_compilation_cache(monkeypatch):
    """A calibration run neither reads nor writes the command line's compilation cache (a plan estimates a
    cold run: a warm second calibration would shrink the line's slope)."""
    seen = {}

    def fake(cmd, env):
        seen.update(env)
        return json.dumps({"rc": 1, "wall": 1.0, "cpu": 1.0, "rss_kib": 1024, "err": "stopped"})

    monkeypatch.setattr(P, "_run_in_own_group", fake)
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "/somewhere")
    monkeypatch.setenv("PLASTICLAB_JAX_CACHE", "/elsewhere")
    assert not P._measure("quickstart", {}, True, None, None)["ok"]
    assert seen["PLASTICLAB_JAX_CACHE"] == "" and "JAX_COMPILATION_CACHE_DIR" not in seen


def test_a_failed_calibration_says_why_an_out_of_memory_kill_included(monkeypatch):
    """A calibration run that fails names its reason on the progress line and in the refusal: its last line of
    stderr, or, killed by SIGKILL with nothing said (the kernel's out-of-memory killer), the signal and the peak
    memory reached."""
    def killed(cmd, env):
        return json.dumps({"rc": -9, "wall": 300.0, "cpu": 500.0, "rss_kib": 20_480_000, "err": ""})

    monkeypatch.setattr(P, "_run_in_own_group", killed)
    why = P._measure("quickstart", {}, True, None, None)["error"]
    assert why == "killed by SIGKILL at 20,000 MiB resident, most likely out of memory"
    assert P._failure(1, "Traceback ...\nValueError: bad\n", 10.0) == "ValueError: bad"
    assert P._failure(-15, "", 10.0) == "killed by SIGTERM" and P._failure(2, "", 10.0) == "exit status 2"
    lines = []
    with pytest.raises(ConfigError, match="most likely out of memory"):
        P.plan("quickstart", quick=True, use_cache=False, report=lines.append)
    assert lines[1].endswith("failed (killed by SIGKILL at 20,000 MiB resident, most likely out of memory)")


@pytest.mark.slow
@pytest.mark.parametrize("experiment,key,length,other", [("oja-fig5", "n_samples", 6000, {}),
                                                         ("curl-fig10", "epochs", 2400, {}),
                                                         ("quickstart", "epochs", 8.0, {"rules": ["bp", "fa"]})])
def test_estimate_is_within_2x_of_the_measured_run(tmp_path, monkeypatch, experiment, key, length, other):
    """The estimator's own procedure on small configs, from 1/4 of the length up: calibrated at 1/4 and 1/2 of the
    length (fresh processes, as shipped) and read at the full length, or, when that pair's difference is lost in
    the fixed costs, calibrated at 1/2 and 1 as the planner does for cheap runs. Either way the estimate of the
    run's wall and CPU time is within a factor 2 of the same run measured afterwards. (A single pair was tried to
    shorten the suite; on a loaded machine quickstart's fixed-cost-dominated pair then extrapolated its noise to
    2x. The walk itself is tested above on a fake run.)"""
    monkeypatch.setenv("PLASTICLAB_CACHE", str(tmp_path / "cache"))
    fractions = ((0.25, 0.5), (0.5, 1.0))
    est = P.plan(experiment, quick=True, overrides={**other, key: length}, fractions=fractions)
    assert est.length_key == key and est.length == length
    assert est.calibrated_at in ([length / 4, length / 2], [length / 2, length]), est.calibrated_at
    actual = P._measure(experiment, {**other, key: length}, True, None, None)
    assert actual["ok"], actual["error"]
    for k in ("wall", "cpu"):
        ratio = actual[k] / getattr(est, f"{k}_seconds")
        assert 0.5 <= ratio <= 2.0, (experiment, k, actual[k], getattr(est, f"{k}_seconds"))


def test_run_plan_writes_plan_json_and_the_ledger_keeps_it(tmp_path, monkeypatch):
    """`run --plan` prints the table and writes DIR/plan.json without running; a run into the same folder,
    recorded, carries the estimate and the actual/estimate ratio."""
    from plasticlab import ledger as L

    monkeypatch.setenv("PLASTICLAB_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["run", "curl-fig1", "--plan", "--budget", "1h", "--out", str(out)],
                             env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "curl-fig1" in res.output and "fits" in res.output and not (out / "results.json").exists()
    assert "curl-fig1: one run at full size (it has no length setting) ..." in res.output  # progress, to stderr
    plan = json.loads((out / "plan.json").read_text())
    assert plan["experiment"] == "curl-fig1" and plan["wall_seconds"] > 0
    bad = CliRunner().invoke(app, ["run", "curl-fig1", "--plan", "--budget", "soon", "--out", str(out)])
    assert bad.exit_code == 2 and "--budget" in bad.output
    assert CliRunner().invoke(app, ["run", "curl-fig1", "--out", str(out), "--no-plots"]).exit_code == 0
    rec = json.loads(L.record(out, tmp_path / "ledger").read_text())
    assert rec["estimate"]["wall_seconds"] == plan["wall_seconds"]
    assert rec["estimate"]["actual_over_estimate_wall"] > 0


def test_run_all_renders_its_figures_and_experiments_as_markdown():
    """benchmarks/run_all.py's table: every figure with its target and whether it was met; skipped experiments
    with their estimate."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "run_all.py"
    spec = importlib.util.spec_from_file_location("run_all", path)
    ra = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ra)
    doc = {"device": "TFRT_CPU_0", "jax": "0.x", "machine": "test", "date": "2026-12-02",
           "benchmarks": [{"benchmark": "curl_sim", "figures": [
               {"name": "ratio", "value": 5.5, "unit": "x", "target": 10, "target_kind": ">=", "meets": False},
               {"name": "speed", "value": 11000.0, "unit": " /s", "target": None, "target_kind": ">=", "meets": None}]},
               {"benchmark": "broken", "error": "ImportError: x", "figures": []}],
           "experiments": [{"paper": "meta", "experiment": "meta-fig6", "size": "full", "estimated_wall_seconds": 9000.0,
                            "status": "skipped: estimated 2.5 h > --max-minutes 15"},
                           {"paper": "oja", "experiment": "oja-fig5", "size": "full", "estimated_wall_seconds": 40.0,
                            "status": "ran", "wall_seconds": 37.0, "cpu_seconds": 47.0, "claims": {"agrees": 3}}]}
    md = ra.markdown(doc)
    assert "| curl_sim | ratio | 5.5x | >= 10x | **no** |" in md and "| broken | error | ImportError: x |" in md
    assert "skipped: estimated 2.5 h" in md and "| oja | oja-fig5 | full | 40 s | 37 s | 47 s | 3 agrees |" in md


def test_reproduce_set_applies_to_the_experiments_that_have_the_key_and_refuses_unknown_keys(tmp_path):
    from plasticlab.report import experiments_for, shared_overrides

    per = shared_overrides(experiments_for("sam"), {"dataset": "mnist", "datasets": "mnist"})
    assert per["sam-ablation"] == {"dataset": "mnist"} and per["sam-table1"] == {"datasets": "mnist"}
    res = CliRunner().invoke(app, ["reproduce", "curl", "--plan", "--set", "datsets=mnist", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "datsets" in res.output and "no experiment of this paper" in res.output
    assert not any(tmp_path.iterdir())  # refused before any work
