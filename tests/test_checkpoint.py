"""Resumable fit calls (plasticlab.checkpoint): an interrupted run resumes from its file and returns the numbers of
an uninterrupted run, bit for bit; a file of another call is never used; a unit's files live and die with it."""

from __future__ import annotations

import json

import numpy as np
import pytest

import plasticlab as pl
from plasticlab.analysis.convergence import Stationarity
from plasticlab.checkpoint import FitCheckpoint, read_meta, unit_checkpoints
from plasticlab.experiments.base import RunContext


def _setup(digits):
    d = digits.subset(n_train=300, n_test=100)
    grid = [pl.Trainer(pl.MLP((64, 20, 10), activation="tanh"), pl.parse_rule(f"fa(lr={lr})+oja(lr=0.001)"))
            for lr in (0.05, 30.0)]  # the second cell diverges: its flags and messages must survive a resume
    kw = dict(n_samples=600, batch_size=5, eval_every=100, x_eval=d.x_test, y_eval=d.y_test, progress=False,
              log_every=3, call_steps=7, on_divergence="record", keep_init=True)
    return d, grid, kw


class _Stop:
    """An ``until`` that raises KeyboardInterrupt (as Ctrl-C or SIGTERM would) at its ``at``-th evaluation
    and otherwise defers to a stationarity watch (whose own state must survive the resume)."""

    def __init__(self, at: int | None, watch):
        self.at, self.watch, self.calls = at, watch, 0

    def __call__(self, hist) -> bool:
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return self.watch(hist)

    def state_dict(self):
        return self.watch.state_dict()

    def load_state_dict(self, state):
        self.watch.load_state_dict(state)


def _same(a: pl.History, b: pl.History) -> None:
    assert a.samples == b.samples and a.log_steps == b.log_steps
    assert set(a.curves) == set(b.curves) and set(a.logs) == set(b.logs)
    for key in a.curves:
        np.testing.assert_array_equal(a.array(key), b.array(key), err_msg=key)
    for key in a.logs:
        np.testing.assert_array_equal(a.logged(key), b.logged(key), err_msg=key)
    assert a.diverged == b.diverged and a.divergences == b.divergences
    np.testing.assert_array_equal(a.seed_diverged, b.seed_diverged)
    for x, y in zip(a.final_state.params.W + a.init_state.params.W, b.final_state.params.W + b.init_state.params.W):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("every", [0.0, 1e9])  # a file after every call / only the one written on interruption
def test_an_interrupted_fit_resumes_to_the_numbers_of_an_uninterrupted_one(digits, tmp_path, every):
    d, grid, kw = _setup(digits)
    crit = Stationarity(window=2, loss_rtol=1e-9, atol=1e-9, norm_rtol=1e-9, loss_key="eval_loss",
                        atol_keys=(), rtol_keys=())
    plain_watch = crit.watch(5)
    whole = pl.fit(grid, d.x_train, d.y_train, seeds=[0, 3], until=plain_watch, **kw)
    assert whole.divergences and whole.diverged[1] is not None and whole.diverged[0] is None

    path = tmp_path / "fit.npz"
    with pytest.raises(KeyboardInterrupt):
        pl.fit(grid, d.x_train, d.y_train, seeds=[0, 3], until=_Stop(4, crit.watch(5)), checkpoint=path,
               checkpoint_every=every, **kw)
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
    # the 4th evaluation (step 80) was interrupted: the file holds the last call before it (the calls are cut at
    # every 5 steps), with the evaluations at samples 0, 100, 200 and 300
    assert not meta["finished"] and meta["step"] == 75 and meta["samples"] == [0, 100, 200, 300]
    again = _Stop(None, crit.watch(5))
    resumed = pl.fit(grid, d.x_train, d.y_train, seeds=[0, 3], until=again, checkpoint=path,
                     checkpoint_every=every, **kw)
    _same(whole, resumed)
    np.testing.assert_array_equal(again.watch.first_step, plain_watch.first_step)
    assert again.calls == len(whole.samples) - 4  # the evaluations before the interruption are not redone

    # a finished file: the same call returns the run without training (no evaluation asked for)
    done = _Stop(None, crit.watch(5))
    _same(whole, pl.fit(grid, d.x_train, d.y_train, seeds=[0, 3], until=done, checkpoint=path, **kw))
    assert done.calls == 0


def test_a_file_of_another_call_is_not_used(digits, tmp_path):
    d, grid, kw = _setup(digits)
    path = tmp_path / "fit.npz"
    pl.fit(grid, d.x_train, d.y_train, seeds=[0, 3], checkpoint=path, **kw)
    whole = pl.fit(grid, d.x_train, d.y_train, seeds=[0, 1], **kw)
    with pytest.warns(UserWarning, match="another fit call"):
        other = pl.fit(grid, d.x_train, d.y_train, seeds=[0, 1], checkpoint=path, **kw)
    _same(whole, other)
    with pytest.warns(UserWarning, match="another fit call"):  # other data, same shapes
        pl.fit(grid, d.x_train[::-1], d.y_train[::-1], seeds=[0, 1], checkpoint=path, **kw)
    path.write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="unreadable"):
        _same(whole, pl.fit(grid, d.x_train, d.y_train, seeds=[0, 1], checkpoint=path, **kw))


def test_a_units_fit_files_are_numbered_kept_on_interruption_and_deleted_with_the_unit(digits, tmp_path):
    d, grid, kw = _setup(digits)
    ctx = RunContext(tmp_path / "run", None, progress=False, fingerprint="f", name="t")
    scratch = ctx._scratch_path("u")
    seen = []

    def work(interrupt: bool):
        pl.fit(grid[0], d.x_train, d.y_train, seeds=[0], checkpoint=True, **kw)
        seen.append(sorted(p.name for p in scratch.glob("*")))  # spent.json comes with each file: kept after SIGKILL
        hist = pl.fit(grid[0], d.x_train, d.y_train, seeds=[1], checkpoint=True,
                      until=_Stop(3 if interrupt else None, Stationarity().watch(5)), **kw)
        return {"acc": float(hist.final("eval_accuracy")[0])}

    with pytest.raises(KeyboardInterrupt):
        ctx.unit("u", lambda: work(True))
    assert seen == [["fit-0.npz", "spent.json"]] and ctx.checkpointed == "u"  # named in the run's "interrupted" line
    assert sorted(p.name for p in scratch.iterdir()) == ["fit-0.npz", "fit-1.npz", "spent.json"]
    spent = json.loads((scratch / "spent.json").read_text())
    ctx2 = RunContext(tmp_path / "run", None, progress=False, fingerprint="f", name="t")
    res = ctx2.unit("u", lambda: work(False))
    assert not scratch.exists()  # the unit is written: its checkpoints are gone
    assert ctx2.unit_seconds["u"][0] >= spent["wall"]  # the cost counts the interrupted invocation
    fresh = RunContext(tmp_path / "fresh", None, progress=False, fingerprint="f", name="t")
    assert fresh.unit("u", lambda: work(False)) == res

    with unit_checkpoints(None):  # outside a unit, checkpoint=True keeps nothing
        pl.fit(grid[0], d.x_train, d.y_train, seeds=[0], checkpoint=True, **kw)
    assert not list(tmp_path.glob("**/fit-*.npz"))


def test_a_checkpoint_is_written_only_every_so_often(tmp_path):
    hist = pl.History([0])
    ck = FitCheckpoint(tmp_path / "c.npz", "sig", every=1e9)
    ck.offer({"w": np.zeros(2)}, 3, [], None, hist, None)
    assert not ck.path.exists() and ck.pending is not None
    ck.flush()
    assert ck.path.exists() and ck.pending is None
    loaded_by = FitCheckpoint(tmp_path / "c.npz", "sig")
    loaded = loaded_by.load({"w": np.ones(2)}, pl.History([0]), None)
    assert loaded["start"] == 3 and not loaded["finished"]
    np.testing.assert_array_equal(loaded["state"]["w"], np.zeros(2))
    # the wall the call trained carries over to the invocation that resumes it (status's time to go)
    first = read_meta(ck.path)["call_wall"]
    assert first > 0 and loaded_by.earlier_wall == first
    loaded_by.offer({"w": np.zeros(2)}, 6, [], None, pl.History([0]), None, finished=True)
    assert read_meta(ck.path)["call_wall"] >= first and read_meta(ck.path)["wall_from"] == 0
    with np.load(ck.path) as z:  # a file of an older version, without the wall: counting starts at its step
        files = {k: z[k] for k in z.files}
    meta = json.loads(str(files.pop("meta")))
    meta.pop("wall_from")
    np.savez(ck.path, meta=np.asarray(json.dumps(meta | {"finished": False})), **files)
    older = FitCheckpoint(ck.path, "sig")
    older.load({"w": np.ones(2)}, pl.History([0]), None)
    assert older.wall_from == 6 and older.earlier_wall == 0.0


def test_status_reads_a_run_folder_without_touching_it(digits, tmp_path):
    import os

    from typer.testing import CliRunner

    from plasticlab.cli import app
    from plasticlab.experiments.base import (RunFolderLock, config_dict, fingerprint, get_experiment,
                                             write_json)
    from plasticlab.status import calls_left, describe, run_status

    d, grid, kw = _setup(digits)
    exp = get_experiment("quickstart")
    cdict = config_dict(exp.config())
    out = tmp_path / "run"
    out.mkdir()
    write_json(out / "config.json", {"experiment": "quickstart", "quick": False, "config": cdict})
    ctx = RunContext(out, None, progress=False, fingerprint=fingerprint("quickstart", cdict, exp.config,
                                                                         exp.results_version), name="quickstart")
    ctx.unit("done", lambda: {"x": 1})
    RunContext(out, None, progress=False, fingerprint="older code", name="quickstart").unit("old", lambda: 1)
    with pytest.raises(KeyboardInterrupt):
        ctx.unit("training", lambda: pl.fit(grid[0], d.x_train, d.y_train, seeds=[0], checkpoint=True,
                                            until=_Stop(3, Stationarity().watch(5)), **kw))
    with RunFolderLock(out):
        before = {p.relative_to(out): p.stat().st_mtime for p in out.rglob("*")}
        st = run_status(out)
        lines = describe(st)
        assert {p.relative_to(out): p.stat().st_mtime for p in out.rglob("*")} == before  # nothing written
    assert st["pid"] == os.getpid() and run_status(out)["pid"] is None  # held, then released
    assert [u["unit"] for u in st["units"]] == ["done"] and st["stale_units"] == 1
    (p,) = st["in_progress"]
    assert p["unit"] == "training" and p["step"] == 55 and p["total_steps"] == 120  # interrupted in evaluation 3
    assert lines[0].endswith(f"quickstart, running (pid {os.getpid()})")
    assert "in progress: training: training call 1 at step 55 of 120 (46%)" in "\n".join(lines)
    assert p["call_wall"] > 0 and "this call has about" in "\n".join(lines)
    assert calls_left({"step": 25, "total_steps": 100, "call_wall": 10.0, "wall_from": 0}) == 30.0  # 0.4 s a step
    assert calls_left({"step": 0, "total_steps": 100, "call_wall": 1.0, "wall_from": 0}) is None
    assert calls_left({"step": 5, "total_steps": 100}) is None  # an older version's checkpoint
    # resumed from an older version's file at step 50: the wall counts the 25 steps since
    assert calls_left({"step": 75, "total_steps": 100, "call_wall": 10.0, "wall_from": 50}) == 10.0
    assert "1 unit file(s) of other settings or code" in "\n".join(lines)
    assert "results.json: not written yet" in lines[-1]

    res = CliRunner().invoke(app, ["status", str(tmp_path), str(out)])  # a bad path first: the run still prints
    assert res.exit_code == 2 and "not a run folder" in res.output and "quickstart, stopped" in res.output


def test_status_paces_meta_training_by_its_checkpoints_write_times(tmp_path):
    """Seconds per episode: the median of the last four gaps between checkpoints (one gap spanning a stop is
    ignored), from which status says the time to go."""
    import os

    from plasticlab.status import _pace

    files = []
    for episode, written in [(25, 0.0), (50, 100.0), (75, 200.0), (100, 5000.0), (125, 5100.0), (150, 5200.0)]:
        f = tmp_path / f"ckpt_{episode:06d}.npz"
        f.write_bytes(b"")
        os.utime(f, (written, written))
        files.append(f)
    assert _pace(files) == 4.0  # gaps of the last five files: 100, 4800 (a stop), 100, 100 s per 25 episodes
    assert _pace(files[:1]) is None
