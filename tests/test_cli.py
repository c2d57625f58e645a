"""The command line: listing, running, resuming, errors that teach."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from plasticlab.cli import app

runner = CliRunner()
FAST = ["--set", "epochs=0.5", "--set", "seeds=2", "--set", "rules=bp,kp", "--set", "evals_per_epoch=1"]


def test_list_shows_quickstart():
    res = runner.invoke(app, ["list"])
    assert res.exit_code == 0 and "quickstart" in res.output


def test_rules_and_datasets_commands():
    assert "Kolen-Pollack" in runner.invoke(app, ["rules"]).output
    assert "digits" in runner.invoke(app, ["datasets"]).output


def test_run_writes_results_and_resumes(tmp_path):
    out = tmp_path / "run"
    res = runner.invoke(app, ["run", "quickstart", "--out", str(out), *FAST])
    assert res.exit_code == 0, res.output
    results = json.loads((out / "results.json").read_text())
    assert results["experiment"] == "quickstart" and results["config"]["seeds"] == 2
    assert {r["rule"] for r in results["rows"]} == {"bp", "kp"} and len(results["rows"]) == 4
    assert all(0.0 <= r["test_accuracy"] <= 1.0 for r in results["rows"])
    assert (out / "config.json").exists() and (out / "learning_curves.png").stat().st_size > 1000
    assert results["meta"]["units_computed"] == 2
    said = " ".join(res.output.split())
    assert "98% bootstrap CI over seeds" in said and "of an earlier invocation" not in said  # the CI level
    # rerun: every unit is read back, same numbers, and the console says which units were reused
    res = runner.invoke(app, ["run", "quickstart", "--out", str(out), *FAST])
    again = json.loads((out / "results.json").read_text())
    assert again["meta"]["units_reused"] == 2 and again["meta"]["units_computed"] == 0
    assert again["meta"]["reused_units"] == ["rule=bp", "rule=kp"]
    assert "reused 2 finished unit(s)" in " ".join(res.output.split()) and "rule=bp, rule=kp" in res.output
    assert again["rows"] == results["rows"]
    # a different config in the same folder is refused, naming what differs
    res = runner.invoke(app, ["run", "quickstart", "--out", str(out), *FAST, "--set", "lr=0.5"])
    assert res.exit_code == 2 and "lr" in res.output
    # --config repeats the run exactly
    res = runner.invoke(app, ["run", "--config", str(out / "config.json")])
    assert res.exit_code == 0, res.output
    assert json.loads((out / "results.json").read_text())["rows"] == results["rows"]


def test_bad_input_lists_choices(tmp_path):
    res = runner.invoke(app, ["run", "nope", "--out", str(tmp_path / "a")])
    assert res.exit_code == 2 and "quickstart" in res.output
    res = runner.invoke(app, ["run", "quickstart", "--out", str(tmp_path / "b"), "--set", "colour=red"])
    assert res.exit_code == 2 and "valid keys" in res.output and "epochs" in res.output
    res = runner.invoke(app, ["run", "quickstart", "--out", str(tmp_path / "c"), *FAST, "--set", "rules=bp,zz"])
    assert res.exit_code == 2 and "unknown rule" in res.output
    res = runner.invoke(app, ["run", "quickstart", "--out", str(tmp_path / "d"), "--set", "seeds=many"])
    assert res.exit_code == 2 and "not an integer" in res.output and "seeds=" in res.output


def test_every_command_keeps_compiled_programs_in_the_cache_folder(tmp_path, monkeypatch):
    """The CLI turns the persistent compilation cache on before any command; PLASTICLAB_JAX_CACHE picks its
    folder (empty: off), a JAX_COMPILATION_CACHE_DIR of the user's own wins, else $PLASTICLAB_CACHE/jax."""
    import plasticlab.compile_cache as CC

    calls = []
    monkeypatch.setattr(CC, "enable", lambda: calls.append(1))
    assert runner.invoke(app, ["list"]).exit_code == 0 and calls == [1]

    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.setenv("PLASTICLAB_JAX_CACHE", str(tmp_path / "mine"))
    assert CC.cache_dir() == tmp_path / "mine"
    monkeypatch.setenv("PLASTICLAB_JAX_CACHE", "")
    assert CC.cache_dir() is None
    monkeypatch.delenv("PLASTICLAB_JAX_CACHE")
    monkeypatch.setenv("PLASTICLAB_CACHE", str(tmp_path / "base"))
    assert CC.cache_dir() == tmp_path / "base" / "jax"
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "jax-own"))
    assert CC.cache_dir() == tmp_path / "jax-own"
