"""Sweeps: the gathered table, resuming after a failure, Ray, grid parsing and the CLI."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from plasticlab.experiments.base import ConfigError, Experiment, RunContext, register
from plasticlab.sweep import (SweepError, cell_id, combine_cells, expand_grid, load_grid_file, parse_sweep,
                              run_sweep)

NAME = "sweeptest-tiny-3f9a"


@dataclass
class TinyConfig:
    a: float = 1.0
    b: int = 1
    seeds: int = 2
    tags: tuple[str, ...] = ("x",)
    fail_file: str = ""
    diverge_file: str = ""


def _value(a: float, b: int, seed: int) -> float:
    """What the tiny experiment measures: an independent formula the test recomputes."""
    return 10.0 * a + b + 0.5 * seed


def tiny_run(cfg: TinyConfig, ctx: RunContext) -> dict:
    if cfg.fail_file and Path(cfg.fail_file).exists() and cfg.a == 0.5 and cfg.b == 2:
        raise RuntimeError("injected failure for cell a=0.5,b=2")
    rows = []
    for s in range(cfg.seeds):
        rows += ctx.unit(f"seed={s}", lambda s=s: _tiny_unit(cfg, s))
    return {"rows": rows}


def _tiny_unit(cfg: TinyConfig, s: int) -> list[dict]:
    if cfg.diverge_file and Path(cfg.diverge_file).exists() and cfg.a == 0.5 and s == 1:
        from plasticlab.training import DivergenceError

        raise DivergenceError("injected divergence at step 3", step=3, layer=1, seed=s)
    return [{"seed": s, "tag": "+".join(cfg.tags), "value": _value(cfg.a, cfg.b, s)}]


register(Experiment(NAME, "tiny experiment for the sweep tests", TinyConfig, tiny_run, None))


def _expected(A, B, seeds):
    return pd.DataFrame([{"a": a, "b": b, "seed": s, "value": _value(a, b, s)}
                         for a in A for b in B for s in range(seeds)])


def _mtimes(out: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*/results.json")}


# ----------------------------------------------------------------------------- grid helpers

def test_parse_sweep_and_cell_ids():
    grid = parse_sweep(["lr=0.01,0.1", "rules=[bp,fa],[kp]", "seeds=2"])
    assert grid == {"lr": ["0.01", "0.1"], "rules": ["[bp,fa]", "[kp]"], "seeds": ["2"]}
    cells = expand_grid(grid)
    assert len(cells) == 4 and cells[0] == {"lr": "0.01", "rules": "[bp,fa]", "seeds": "2"}
    assert cell_id({"lr": 0.01, "seeds": 2}) == "lr=0.01,seeds=2"
    assert cell_id({"rules": ("bp", "fa")}) == "rules=[bp,fa]"
    with pytest.raises(ConfigError, match="key=v1"):
        parse_sweep(["lr"])
    with pytest.raises(ConfigError, match="twice"):
        combine_cells([{"a": 1}], [{"a": 2}])


def test_grid_file(tmp_path):
    f = tmp_path / "g.toml"
    f.write_text('[set]\nseeds = 1\n[grid]\na = [0.5, 1.0]\nb = [1, 2, 3]\n')
    cells, base = load_grid_file(f)
    assert base == {"seeds": 1} and len(cells) == 6 and cells[-1] == {"a": 1.0, "b": 3}
    f.write_text('[[cells]]\na = 0.5\n[[cells]]\na = 2.0\nb = 4\ntags = ["p", "q"]\n')
    cells, base = load_grid_file(f)
    assert cells == [{"a": 0.5}, {"a": 2.0, "b": 4, "tags": ["p", "q"]}] and base == {}
    f.write_text("[grod]\na = [1]\n")
    with pytest.raises(ConfigError, match="unknown top-level"):
        load_grid_file(f)


# ----------------------------------------------------------------------------- sweeps

def test_sweep_table_resume_and_failure(tmp_path):
    """2 x 3 grid in spawned processes; one cell fails on the first attempt; the rerun runs only that cell."""
    out, flag = tmp_path / "sw", tmp_path / "fail.flag"
    flag.write_text("1")
    A, B = [0.5, 1.0], [1, 2, 3]
    with pytest.raises(SweepError) as info:
        run_sweep(NAME, {"a": A, "b": B}, out, base_overrides={"fail_file": str(flag)}, workers=2)
    assert list(info.value.failures) == ["a=0.5,b=2"]
    assert "injected failure" in info.value.failures["a=0.5,b=2"]
    assert "injected failure" in (out / "cells" / "a=0.5,b=2" / "error.txt").read_text()
    status = {c["id"]: c["status"] for c in json.loads((out / "sweep.json").read_text())["cells"]}
    assert status["a=0.5,b=2"] == "failed" and sum(v == "done" for v in status.values()) == 5
    before = _mtimes(out)
    assert len(before) == 5 and "a=0.5,b=2" not in before

    flag.unlink()  # the rerun (in this process, to save the workers' start-up) runs only the failed cell
    table = run_sweep(NAME, {"a": A, "b": B}, out, base_overrides={"fail_file": str(flag)}, executor="serial")
    assert {k: v for k, v in _mtimes(out).items() if k in before} == before  # finished cells untouched
    status = {c["id"]: c["status"] for c in json.loads((out / "sweep.json").read_text())["cells"]}
    assert status.pop("a=0.5,b=2") == "done" and set(status.values()) == {"reused"}
    assert not (out / "cells" / "a=0.5,b=2" / "error.txt").exists()

    exp = _expected(A, B, 2)
    pd.testing.assert_frame_equal(table[["a", "b", "seed", "value"]], exp, check_dtype=False)
    assert list(table["cell"].unique()) == [f"a={a},b={b}" for a in A for b in B]
    assert (table["tag"] == "x").all()
    csv = pd.read_csv(out / "sweep.csv")
    pd.testing.assert_frame_equal(csv[["a", "b", "seed", "value"]], exp, check_dtype=False)
    pytest.importorskip("pyarrow")
    pd.testing.assert_frame_equal(pd.read_parquet(out / "sweep.parquet")[["a", "b", "value"]],
                                  exp[["a", "b", "value"]], check_dtype=False)


def test_sweep_errors_before_running(tmp_path):
    with pytest.raises(ConfigError, match="unknown setting 'nope'"):
        run_sweep(NAME, {"nope": [1]}, tmp_path / "x", executor="serial")
    with pytest.raises(ConfigError, match="expected a number|not a number"):  # base.py's wording, old | new
        run_sweep(NAME, {"a": ["abc"]}, tmp_path / "x", executor="serial")
    with pytest.raises(ConfigError, match="unknown experiment"):
        run_sweep("no-such-experiment-xyz", {"a": [1]}, tmp_path / "x")
    with pytest.raises(ConfigError, match="executor"):
        run_sweep(NAME, {"a": [1]}, tmp_path / "x", executor="slurm")
    run_sweep(NAME, {"a": [1.0]}, tmp_path / "y", executor="serial", seeds=1)
    # same folder, other shared settings (base.py's wording, old | new)
    with pytest.raises(ConfigError, match=r"differs in: seeds|different settings \(seeds"):
        run_sweep(NAME, {"a": [1.0]}, tmp_path / "y", executor="serial", seeds=3)


def test_sweep_list_of_cells_with_tuple_values(tmp_path):
    cells = [{"a": 0.5, "tags": ["p", "q"]}, {"a": 2.0, "b": 4}]
    table = run_sweep(NAME, cells, tmp_path / "c", executor="serial", seeds=1)
    assert sorted(p.name for p in (tmp_path / "c" / "cells").iterdir()) == ["a=0.5,tags=[p,q]", "a=2.0,b=4"]
    assert table["value"].tolist() == [_value(0.5, 1, 0), _value(2.0, 4, 0)]
    assert table["tag"].tolist() == ["p+q", "x"]
    assert table["tags"].tolist()[0] == "p,q"


@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")
def test_ray_executor_same_table(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    A, B = [0.5, 1.0], [1, 2, 3]
    local = run_sweep(NAME, {"a": A, "b": B}, tmp_path / "serial", executor="serial")
    # Ray starts its workers at nice 15: next to the other pytest worker (nice 0) they would get a few % of a core
    monkeypatch.setenv("RAY_worker_niceness", "0")
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        remote = run_sweep(NAME, {"a": A, "b": B}, tmp_path / "ray", executor="ray")
        # `plasticlab compare` as a sweep on a Ray worker: the same leaderboard as in this process
        cmp_grid = {"rules": [["bp", "fa"]], "budget": [1], "seeds": [1], "epochs": [0.2], "evals": [1]}
        cmp_remote = run_sweep("compare", cmp_grid, tmp_path / "ray-compare", quick=True, executor="ray")
    finally:
        ray.shutdown()
    pd.testing.assert_frame_equal(remote, local)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "ray" / "sweep.csv"),
                                  pd.read_csv(tmp_path / "serial" / "sweep.csv"))
    cmp_local = run_sweep("compare", cmp_grid, tmp_path / "serial-compare", quick=True, executor="serial")
    assert len(cmp_remote) == 2 and set(cmp_remote["rule"]) == {"bp", "fa"}
    pd.testing.assert_frame_equal(cmp_remote, cmp_local)


def test_remote_cell_files_come_back(tmp_path):
    """A cell run on another machine (Ray cluster) returns its files; the driver writes what it lacks."""
    from plasticlab.sweep import _run_cell, _write_back

    res = _run_cell(NAME, None, str(tmp_path / "remote"), False, 1, {"a": 2.0}, None, True)
    assert res["ok"] and {"config.json", "results.json", "results.csv"} <= set(res["files"])
    assert any(k.startswith("units/") for k in res["files"])
    _write_back(tmp_path / "driver", res["files"])
    for rel, data in res["files"].items():
        assert (tmp_path / "driver" / rel).read_bytes() == data
    assert json.loads((tmp_path / "driver" / "results.json").read_text())["rows"][0]["value"] == _value(2.0, 1, 0)


def test_ray_missing_gives_install_hint(tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(ConfigError, match=r'pip install "plasticlab\[ray\]"'):
        run_sweep(NAME, {"a": [1.0]}, tmp_path / "r", executor="ray")


# ----------------------------------------------------------------------------- CLI

def test_cli_sweep(tmp_path):
    from plasticlab.cli import app

    runner = CliRunner()
    out = tmp_path / "cli"
    res = runner.invoke(app, ["sweep", NAME, "--sweep", "a=0.5,1.0", "--sweep", "tags=[p,q],[r]", "--seeds", "1",
                              "--executor", "serial", "--out", str(out)])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(out / "sweep.csv")
    assert df["cell"].tolist() == ["a=0.5,tags=[p,q]", "a=0.5,tags=[r]", "a=1.0,tags=[p,q]", "a=1.0,tags=[r]"]
    assert df["tag"].tolist() == ["p+q", "r", "p+q", "r"]
    assert df["value"].tolist() == [_value(a, 1, 0) for a in (0.5, 0.5, 1.0, 1.0)]
    assert "mean per cell" in res.output

    grid = tmp_path / "g.toml"
    grid.write_text("[set]\nseeds = 1\n[grid]\nb = [5, 6]\n")
    res = runner.invoke(app, ["sweep", NAME, "--grid", str(grid), "--sweep", "a=3.0", "--executor", "serial",
                              "--out", str(tmp_path / "g")])
    assert res.exit_code == 0, res.output
    assert pd.read_csv(tmp_path / "g" / "sweep.csv")["value"].tolist() == [_value(3.0, 5, 0), _value(3.0, 6, 0)]

    res = runner.invoke(app, ["sweep", NAME, "--sweep", "nope=1,2", "--out", str(tmp_path / "bad")])
    assert res.exit_code == 2 and "unknown setting 'nope'" in res.output
    res = runner.invoke(app, ["sweep", NAME, "--out", str(tmp_path / "bad")])
    assert res.exit_code == 2 and "nothing to sweep" in res.output

    flag = tmp_path / "flag"
    flag.write_text("1")
    res = runner.invoke(app, ["sweep", NAME, "--sweep", "a=0.5", "--sweep", "b=1,2", "--set", f"fail_file={flag}",
                              "--executor", "serial", "--out", str(tmp_path / "f")])
    assert res.exit_code == 2 and "a=0.5,b=2" in res.output and "injected failure" in res.output
    assert (tmp_path / "f" / "cells" / "a=0.5,b=1" / "results.json").exists()
    assert np.isclose(pd.read_csv(tmp_path / "f" / "sweep.csv")["value"], [_value(0.5, 1, s) for s in (0, 1)]).all()


def test_summarize_sweep_means_per_cell_and_text_column():
    from plasticlab.sweep import summarize_sweep

    df = pd.DataFrame({"cell": ["a=1"] * 3 + ["a=2"] * 2, "a": [1, 1, 1, 2, 2],
                       "rule": ["bp", "bp", "kp", "bp", "bp"], "seed": [0, 1, 0, 0, 1],
                       "acc": [0.5, 0.7, 0.2, 0.9, 0.8]})
    s = summarize_sweep(df, ["a"])
    assert list(s.columns) == ["cell", "a", "rule", "n", "acc"]  # seed is not averaged
    assert s[["a", "rule", "n"]].values.tolist() == [[1, "bp", 2], [1, "kp", 1], [2, "bp", 2]]
    assert s["acc"].tolist() == pytest.approx([np.mean([0.5, 0.7]), 0.2, np.mean([0.9, 0.8])])


def test_cli_prints_cell_ids_and_error_paths_verbatim(tmp_path, monkeypatch):
    """Ids with brackets are no rich markup, and every printed error.txt path exists, also for an id that
    the folder name rewrites (here its '/', so the folder name gets a hash)."""
    import re

    from rich.console import Console

    from plasticlab import commands
    from plasticlab.cli import app
    from plasticlab.sweep import _dirname

    monkeypatch.setattr(commands, "console", Console(width=250))  # no table column folding in the check
    monkeypatch.chdir(tmp_path)  # a relative --out, as typed: the printed paths are relative to it
    flag = tmp_path / "flag"
    flag.write_text("1")
    res = CliRunner().invoke(app, ["sweep", NAME, "--sweep", "a=0.5", "--sweep", "b=1,2", "--sweep",
                                   "tags=[p,q],[x/y]", "--seeds", "1", "--set", f"fail_file={flag}",
                                   "--executor", "serial", "--out", "sw"])
    assert res.exit_code == 2, res.output
    ok, bad = ["a=0.5,b=1,tags=[p,q]", "a=0.5,b=1,tags=[x/y]"], ["a=0.5,b=2,tags=[p,q]", "a=0.5,b=2,tags=[x/y]"]
    assert _dirname(bad[1]) != bad[1]  # the rewritten (hashed) folder name is covered
    lines = res.output.splitlines()
    for cid in ok:
        assert any(f"] {cid}: done in" in ln for ln in lines), res.output
        assert any(ln.startswith(f"│ {cid} ") for ln in lines), res.output  # the summary table
    for cid in bad:
        assert any(f"] {cid}: FAILED RuntimeError: injected failure" in ln for ln in lines), res.output
    printed = dict(re.findall(r"^  (\S+): RuntimeError: .*\(full traceback: (.+)\)$", res.output, re.M))
    assert sorted(printed) == bad, res.output
    for cid, path in printed.items():
        assert Path(path) == Path("sw") / "cells" / _dirname(cid) / "error.txt"
        assert "injected failure" in Path(path).read_text()

    with pytest.raises(SweepError) as info:  # the exception names the same files
        run_sweep(NAME, {"a": [0.5], "b": [1, 2], "tags": [["p", "q"], ["x/y"]]}, "sw", seeds=1,
                  base_overrides={"fail_file": str(flag)}, executor="serial")
    assert {cid: p.as_posix() for cid, p in info.value.error_files.items()} == printed
    assert all(f"(full traceback: {p})" in str(info.value) for p in printed.values())


def test_diverged_cell_is_retried_not_reused(tmp_path):
    """A cell that diverged keeps its finished units in results.json, but the next sweep reruns it."""
    out, flag = tmp_path / "sw", tmp_path / "diverge"
    flag.write_text("1")
    with pytest.raises(SweepError, match="a=0.5"):
        run_sweep(NAME, {"a": [0.5, 1.0]}, out, base_overrides={"diverge_file": str(flag)}, executor="serial")
    cell = json.loads((out / "cells" / "a=0.5" / "results.json").read_text())
    assert cell["run_status"] == "diverged" and cell["finished_units"] == ["seed=0"]
    flag.unlink()
    table = run_sweep(NAME, {"a": [0.5, 1.0]}, out, base_overrides={"diverge_file": str(flag)}, executor="serial")
    assert len(table) == 4 and sorted(table["value"]) == sorted(_value(a, 1, s) for a in (0.5, 1.0) for s in (0, 1))
    status = {c["id"]: c["status"] for c in json.loads((out / "sweep.json").read_text())["cells"]}
    assert status == {"a=0.5": "done", "a=1.0": "reused"}


def test_sweep_folder_is_locked(tmp_path):
    from plasticlab.experiments.base import RunFolderLock, RunLocked

    out = tmp_path / "sw"
    with RunFolderLock(out):
        with pytest.raises(RunLocked, match="pid"):
            run_sweep(NAME, {"a": [0.5]}, out, executor="serial")
    assert len(run_sweep(NAME, {"a": [0.5]}, out, executor="serial")) == 2
