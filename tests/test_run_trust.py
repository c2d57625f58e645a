"""Runs you can trust: cache keys cover the config, presentation-only changes reuse, divergence keeps what finished,
a run folder has one writer."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from plasticlab.cli import app
from plasticlab.experiments.base import RunFolderLock, config_dict, fingerprint, prepare, run_experiment

runner = CliRunner()
_TINY_SET = {"epochs": "0.3", "seeds": "2", "rules": "[bp,fa]", "evals_per_epoch": "1"}


def tiny(**changes: str) -> list[str]:
    """A few-second quickstart run; ``changes`` replace or add settings."""
    sets = {**_TINY_SET, **changes}
    return ["run", "quickstart", "--quick", "--no-plots"] + [a for k, v in sets.items() for a in ("--set", f"{k}={v}")]


TINY = tiny()


def _results(out):
    return json.loads((out / "results.json").read_text())


def test_stale_units_are_never_reused_under_another_config(tmp_path):
    """Issue scenario: run lr=0.02, delete config.json, run lr=0.005 in the same folder: everything recomputes."""
    out = tmp_path / "D"
    first = runner.invoke(app, [*tiny(lr="0.02"), "--out", str(out)])
    assert first.exit_code == 0, first.output
    rows_a = _results(out)["rows"]
    (out / "config.json").unlink()
    second = runner.invoke(app, [*tiny(lr="0.005"), "--out", str(out)])
    assert second.exit_code == 0, second.output
    res = _results(out)
    assert res["meta"]["units_reused"] == 0 and res["meta"]["units_computed"] == 2
    assert res["config"]["lr"] == 0.005
    acc_a = [r["test_accuracy"] for r in rows_a]
    acc_b = [r["test_accuracy"] for r in res["rows"]]
    assert acc_a != acc_b
    # the lr=0.02 units are still there but belong to another fingerprint; going back to lr=0.02 reuses them
    (out / "config.json").unlink()
    third = runner.invoke(app, [*tiny(lr="0.02"), "--out", str(out)])
    assert third.exit_code == 0 and _results(out)["meta"]["units_reused"] == 2
    assert _results(out)["rows"] == rows_a


def test_fingerprint_covers_result_fields_only():
    _, cfg = prepare("sam-table1", quick=True)
    _, other = prepare("sam-table1", quick=True, overrides={"on_divergence": "record"})
    _, lr = prepare("sam-table1", quick=True, overrides={"sam_lr": "0.2"})
    base = fingerprint("sam-table1", config_dict(cfg), type(cfg))
    assert base == fingerprint("sam-table1", config_dict(other), type(other))
    assert base != fingerprint("sam-table1", config_dict(lr), type(lr))
    assert base != fingerprint("sam-width", config_dict(cfg), type(cfg))
    # an experiment whose code changed what the same settings produce raises its results_version: no unit of the
    # older code is read; version 1 leaves older run folders' fingerprints as they were
    assert base == fingerprint("sam-table1", config_dict(cfg), type(cfg), results_version=1)
    assert base != fingerprint("sam-table1", config_dict(cfg), type(cfg), results_version=2)


def test_a_raised_results_version_recomputes_every_unit(tmp_path, monkeypatch):
    from plasticlab.experiments.base import get_experiment

    tiny = {"cs": (0.5,), "alphas": (0.0,), "total": 12, "n_train": 20, "epochs": 5, "seeds": 2,
            "example_epochs": 5, "example_total": 12}
    first = run_experiment("curl-fig9", tmp_path, overrides=tiny, progress=False, plots=False)
    assert first["meta"]["units_computed"] == 3
    exp = get_experiment("curl-fig9")
    monkeypatch.setattr(exp, "results_version", exp.results_version + 1)
    again = run_experiment("curl-fig9", tmp_path, overrides=tiny, progress=False, plots=False)
    assert again["meta"]["units_reused"] == 0 and again["meta"]["units_computed"] == 3


def test_unit_file_with_another_fingerprint_or_truncated_is_not_read(tmp_path):
    out = tmp_path / "D"
    assert runner.invoke(app, [*TINY, "--out", str(out)]).exit_code == 0
    rows = _results(out)["rows"]
    units = sorted((out / "units").glob("*.json"))
    assert len(units) == 2
    doc = json.loads(units[0].read_text())
    doc["fingerprint"] = "0" * 64
    doc["result"]["rows"][0]["test_accuracy"] = -1.0  # would show if the file were read
    units[0].write_text(json.dumps(doc))
    units[1].write_text(units[1].read_text()[:40])  # truncated
    res = runner.invoke(app, [*TINY, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "unreadable" in res.output and units[1].name in res.output
    again = _results(out)
    assert again["meta"]["units_computed"] == 2 and again["rows"] == rows


def test_second_process_on_a_locked_folder_exits_2_naming_the_pid(tmp_path):
    out = tmp_path / "D"
    with RunFolderLock(out):
        res = runner.invoke(app, [*TINY, "--out", str(out)])
    assert res.exit_code == 2
    assert f"pid {os.getpid()}" in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not (out / "results.json").exists()
    assert runner.invoke(app, [*TINY, "--out", str(out)]).exit_code == 0  # released


def test_divergence_without_record_mode_keeps_finished_units(tmp_path):
    """quickstart has no on_divergence: the finished rule's rows and the diverged rule's curves are still saved."""
    out = tmp_path / "D"
    res = runner.invoke(app, [*tiny(rules="[bp,bp(lr=50)]", epochs="1", evals_per_epoch="4", activation="relu"), "--out", str(out)])
    assert res.exit_code == 2
    assert "diverged" in res.stderr and "results.json" in res.stderr and "new folder" in res.stderr
    payload = _results(out)
    assert payload["run_status"] == "diverged" and payload["finished_units"] == ["rule=bp"]
    assert {r.get("rule") for r in payload["rows"] if r.get("unit") == "rule=bp"} == {"bp"}
    failed = payload["failed_unit"]
    assert failed["unit"] == "rule=bp(lr=50)" and failed["seed"] in (0, 1) and failed["layer"] >= 1
    assert failed["partial_curves"]["samples"][0] == 0
    assert (out / "results.csv").exists() and (out / "divergence.png").stat().st_size > 1000


@pytest.mark.slow
def test_on_divergence_change_reuses_every_finished_unit(tmp_path):
    """SAM diverges under on_divergence=stop; the printed command resumes in the same folder with record, reusing
    the finished SGD unit and computing only the diverged one."""
    out = tmp_path / "S"
    args = ["run", "sam-table1", "--quick", "--no-plots", "--out", str(out), "--set", "methods=[sgd,sam]",
            "--set", "epochs=1", "--set", "sam_lr=5", "--set", "on_divergence=stop"]
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    payload = _results(out)
    assert payload["run_status"] == "diverged" and payload["finished_units"] == ["digits/sgd"]
    resume = payload["resume"]
    assert resume in res.stderr and resume.endswith("--set on_divergence=record")
    sgd_rows = [r for r in payload["rows"] if r.get("method") == "sgd"]
    res = runner.invoke(app, resume.split()[1:] + ["--no-plots"])
    assert res.exit_code == 0, res.output
    done = _results(out)
    assert done["run_status"] == "finished" and done["config"]["on_divergence"] == "record"
    assert done["meta"]["units_reused"] == 1 and done["meta"]["units_computed"] == 1
    assert [{k: v for k, v in r.items() if k != "unit"} for r in sgd_rows] == \
        [r for r in done["rows"] if r.get("method") == "sgd"]
    assert {r["status"] for r in done["rows"] if r.get("method") == "sam"} == {"diverged"}
    # and back to stop: still nothing recomputed (both units finished, on_divergence is presentation-only)
    res = runner.invoke(app, args)
    assert res.exit_code == 0 and _results(out)["meta"]["units_computed"] == 0


def test_a_resumed_run_reports_what_its_units_cost_when_computed(tmp_path):
    """meta.units_wall_seconds / units_cpu_seconds sum every unit's cost as it was computed, so a run finished by
    resuming (all units reused) still reports its real cost; the ledger record copies both."""
    from plasticlab.experiments import run_experiment

    over = {"seeds": 2, "n": 4, "exact_scales": ()}
    first = run_experiment("curl-ei", tmp_path / "r", quick=True, progress=False, plots=False, overrides=over)["meta"]
    again = run_experiment("curl-ei", tmp_path / "r", quick=True, progress=False, plots=False, overrides=over)["meta"]
    assert first["units_computed"] == 2 and again["units_reused"] == 2 and again["units_computed"] == 0
    assert first["units_wall_seconds"] > 0 and first["units_cpu_seconds"] > 0
    assert again["units_wall_seconds"] == pytest.approx(first["units_wall_seconds"])
    assert again["units_cpu_seconds"] == pytest.approx(first["units_cpu_seconds"])
    assert first["reused_wall_seconds"] == 0 and again["reused_wall_seconds"] == pytest.approx(
        first["units_wall_seconds"])


def test_the_ledger_counts_a_runs_work_outside_its_units_and_the_units_of_earlier_invocations():
    """A record's cost is its last invocation's time plus its reused units' (meta-fig6 spends most of its time
    outside units: 2,630 s wall with 517 s in units); older records without the reused sum: the larger one."""
    from plasticlab.ledger import run_seconds

    assert run_seconds({"wall_seconds": 2630.0, "units_wall_seconds": 517.0, "reused_wall_seconds": 0.0}, "wall") == 2630
    assert run_seconds({"wall_seconds": 100.0, "units_wall_seconds": 900.0, "reused_wall_seconds": 850.0},
                       "wall") == 950
    assert run_seconds({"cpu_seconds": 1964.0, "units_cpu_seconds": 314.0}, "cpu") == 1964  # an older record
    assert run_seconds({"cpu_seconds": 60.0, "units_cpu_seconds": 9000.0}, "cpu") == 9000  # resumed, older
    assert run_seconds({}, "cpu") is None


def test_release_compiled_code_frees_every_executable():
    """A long process (reproduce, a sweep worker, this suite) frees its compiled code between experiments: XLA maps
    about 15 memory regions per compiled scan while JAX's caches hold it, and past vm.max_map_count (65,530) the
    next compilation segfaults."""
    import jax
    import jax.extend.backend
    import jax.numpy as jnp

    from plasticlab.experiments.base import release_compiled_code

    def scanned_step(k: int):
        def body(W, x):
            h = jnp.tanh(W @ x) * k
            return W + 0.01 * jnp.outer(h, x), h.sum()
        return jax.jit(lambda W, xs: jax.lax.scan(body, W, xs))

    backend = jax.extend.backend.get_backend()
    release_compiled_code()
    before = len(backend.live_executables())
    for k in range(40):
        scanned_step(k)(jnp.ones((5 + k, 5 + k)), jnp.ones((3, 5 + k)))[0].block_until_ready()  # 40 shapes
    compiled = len(backend.live_executables()) - before
    release_compiled_code()
    left = len(backend.live_executables()) - before
    assert compiled >= 40, f"40 jitted scans left only {compiled} live executables: this test measures nothing"
    assert left <= 0, f"release_compiled_code left {left} of {compiled} compiled executables alive"


def test_environment_records_whether_the_tree_had_uncommitted_changes(monkeypatch):
    """A run started from a tree with uncommitted changes says so (git_dirty), so a ledger record's commit is not
    taken for the code that ran."""
    import subprocess
    import types

    from plasticlab.experiments import base

    def fake(status: str):
        def run(cmd, **kw):
            out = "abc123\n" if "rev-parse" in cmd else status
            return types.SimpleNamespace(stdout=out, returncode=0)
        return run

    monkeypatch.setattr(subprocess, "run", fake(" M src/plasticlab/training.py\n"))
    info = base.environment_info()
    assert info["git_commit"] == "abc123" and info["git_dirty"] is True
    monkeypatch.setattr(subprocess, "run", fake(""))
    assert base.environment_info()["git_dirty"] is False


def test_an_interrupted_run_keeps_its_finished_units_and_says_how_to_resume(tmp_path):
    """Ctrl-C (or SIGTERM under the CLI) during the second unit: the first unit stays on disk, the run prints
    what it keeps and the command that resumes, and the rerun computes only the unit that was interrupted."""
    import io
    from dataclasses import dataclass

    from rich.console import Console

    from plasticlab.experiments.base import Experiment, RunContext, register
    from plasticlab.settings import setting

    stop = {"now": True}

    @dataclass
    class Cfg:
        seeds: int = setting(2, ge=1, le=10, doc="seeds")

    def run(cfg: Cfg, ctx: RunContext) -> dict:
        a = ctx.unit("first", lambda: 1.0)

        def second() -> float:
            if stop["now"]:
                raise KeyboardInterrupt
            return 2.0
        return {"rows": [{"a": a, "b": ctx.unit("second", second)}]}

    register(Experiment("interrupt-test-3f9a", "interrupted run", Cfg, run, None))
    buf = io.StringIO()
    with pytest.raises(KeyboardInterrupt):
        run_experiment("interrupt-test-3f9a", tmp_path / "r", progress=False, plots=False,
                       console=Console(file=buf, width=400))
    said = buf.getvalue()
    assert "interrupted: 1 unit(s) finished in this invocation, 1 in all, are kept in" in said
    assert f"plasticlab run --config {tmp_path / 'r' / 'config.json'}" in said
    stop["now"] = False
    res = run_experiment("interrupt-test-3f9a", tmp_path / "r", progress=False, plots=False)
    assert res["meta"]["units_reused"] == 1 and res["meta"]["units_computed"] == 1 and res["rows"] == [{"a": 1.0, "b": 2.0}]
