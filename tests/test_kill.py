"""SIGKILL a run or a sweep at several points, rerun it: same results, and no process of the sweep survives.

The commands run as subprocesses (``python -m plasticlab.cli``) with a tiny quickstart config. They share one
JAX compilation cache (a temporary folder) so that only the first process compiles; a cached executable is
the same program, so the numbers are those of an uncached run.
"""

from __future__ import annotations

import inspect
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the Linux process table")

TINY = ["--quick", "--set", "epochs=0.05", "--no-plots"]
N_UNITS = 5  # killed after units 1 and 2: three units of margin for a loaded machine to notice the second
RUN = ["run", "quickstart", *TINY, "--set", "seeds=2", "--set", "rules=[bp,fa,kp,dfa,wm]"]  # N_UNITS units
SWEEP = ["sweep", "quickstart", *TINY, "--set", "rules=[bp]", "--sweep", "lr=0.01,0.02", "--sweep", "seeds=1,2",
         "--workers", "2"]  # 2 x 2 cells of one unit each
DEADLINE_S = 300.0  # for anything that waits on a command (normally seconds)
EXIT_S = 5.0  # how long the sweep's processes may take to end after the parent was killed


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    cache = tmp_path_factory.mktemp("jax-cache")
    return {**os.environ, "JAX_COMPILATION_CACHE_DIR": str(cache), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
            "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0", "COLUMNS": "200"}


# ----------------------------------------------------------------------------- processes

class Command:
    """A ``plasticlab`` command in a subprocess; its output goes to a log file (no pipe to fill up)."""

    def __init__(self, args: list[str], env: dict, log: Path, nice: int = 0):
        """``nice``: run the command at this lower priority, so that on a loaded machine this (polling) test process
        is scheduled first and notices what the command wrote before the command gets much further."""
        self.args, self.log = args, log
        self.fh = open(log, "w")
        prefix = ["nice", "-n", str(nice)] if nice else []  # nice execs the command: the same pid
        self.proc = subprocess.Popen([*prefix, sys.executable, "-m", "plasticlab.cli", *args], env=env,
                                     stdout=self.fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)

    def output(self) -> str:
        self.fh.flush()
        return self.log.read_text()

    def wait_for(self, what: str, cond) -> None:
        """Poll ``cond()`` until true; fail at once if the command ended first, or after DEADLINE_S."""
        end = time.monotonic() + DEADLINE_S
        while not cond():
            rc = self.proc.poll()
            if rc is not None:
                if cond():
                    return
                pytest.fail(f"{' '.join(self.args)} ended (rc {rc}) before {what}:\n{self.output()}")
            if time.monotonic() > end:
                pytest.fail(f"no {what} after {DEADLINE_S} s:\n{self.output()}")
            time.sleep(0.05)

    def finish(self) -> str:
        try:
            rc = self.proc.wait(DEADLINE_S)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"{' '.join(self.args)} did not finish in {DEADLINE_S} s:\n{self.output()}")
        assert rc == 0, f"{' '.join(self.args)} exited with {rc}:\n{self.output()}"
        return self.output()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        try:
            self.proc.wait(DEADLINE_S)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.fh.close()


def _procs() -> dict[int, tuple[str, int, int, str]]:
    """pid -> (state, ppid, start time, command line) of every process, from /proc."""
    table = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        table[int(d.name)] = (fields[0], int(fields[1]), int(fields[19]), cmd)
    return table


def _descendants(root: int, table: dict) -> dict[int, tuple[int, str]]:
    """pid -> (start time, command line) of every process below ``root``."""
    found, todo = {}, [root]
    while todo:
        parent = todo.pop()
        for pid, (_, ppid, start, cmd) in table.items():
            if ppid == parent and pid not in found:
                found[pid] = (start, cmd)
                todo.append(pid)
    return found


def _running(known: dict[int, tuple[int, str]]) -> dict[int, str]:
    """The processes of ``known`` still running: same pid and start time, not a zombie."""
    table = _procs()
    return {pid: cmd for pid, (start, cmd) in known.items()
            if pid in table and table[pid][0] != "Z" and table[pid][2] == start}


def _alive(known: dict[int, tuple[int, str]], mention: str) -> dict[int, str]:
    """:func:`_running` plus any other process (not this one) whose command line mentions ``mention``."""
    alive = _running(known)
    alive.update({pid: cmd for pid, (state, _, _, cmd) in _procs().items()
                  if mention in cmd and state != "Z" and pid != os.getpid()})
    return alive


def _units(run_dir: Path) -> list[Path]:
    return [p for p in (run_dir / "units").glob("*.json") if ".tmp" not in p.name] if run_dir.exists() else []


def _comparable(results: dict) -> dict:
    return {k: v for k, v in results.items() if k not in ("meta", "environment")}


# ----------------------------------------------------------------------------- the tests

def test_watchdog_alone_ends_a_worker_whose_parent_was_killed(tmp_path):
    """The portable fallback (no PR_SET_PDEATHSIG): the polling thread ends a re-parented worker."""
    from plasticlab import sweep

    ready = tmp_path / "ready"
    child = "\n".join([  # the very function the pool initializer calls, without importing plasticlab (jax)
        "import os, signal, sys, threading, time",
        f"PR_SET_PDEATHSIG = {sweep.PR_SET_PDEATHSIG}",
        inspect.getsource(sweep._exit_with_parent),
        "_exit_with_parent(os.getppid(), poll_s=0.2, pdeathsig=False)",
        f"open({str(ready)!r}, 'w').close()",
        "time.sleep(120)",
    ])
    parent = (f"import subprocess, sys, time; c = subprocess.Popen([sys.executable, '-c', {child!r}]); "
              "print(c.pid, flush=True); time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    child_pid = int(proc.stdout.readline())
    known = {child_pid: (_procs()[child_pid][2], "child")}
    try:
        end = time.monotonic() + 60
        while not ready.exists():
            assert time.monotonic() < end and _running(known), "the child did not start"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        end = time.monotonic() + EXIT_S
        while _running(known) and time.monotonic() < end:
            time.sleep(0.05)
        assert not _running(known), "the orphaned child kept running"
    finally:
        if _running(known):
            os.kill(child_pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()


def test_run_killed_twice_then_resumed_gives_the_same_results(tmp_path, env):
    """`plasticlab run` SIGTERMed after its first unit (it says what it keeps and how to resume) and SIGKILLed
    after its second, then rerun to the end."""
    ref_dir, run_dir = tmp_path / "ref", tmp_path / "killed"
    ref = Command([*RUN, "--out", str(ref_dir)], env, tmp_path / "ref.log")
    ref.finish()
    reference = json.loads((ref_dir / "results.json").read_text())
    assert len(reference["rows"]) == 2 * N_UNITS and len(_units(ref_dir)) == N_UNITS

    for n_units in (1, 2):  # kill once the n-th unit file is there
        cmd = Command([*RUN, "--out", str(run_dir)], env, tmp_path / f"kill{n_units}.log", nice=10)
        try:
            cmd.wait_for(f"unit file #{n_units} in {run_dir}/units", lambda: len(_units(run_dir)) >= n_units)
        finally:
            cmd.kill(signal.SIGTERM if n_units == 1 else signal.SIGKILL)  # SIGTERM waits for a jitted call
        assert not (run_dir / "results.json").exists(), \
            f"killed too late after unit #{n_units}: the run had finished ({len(_units(run_dir))} units):\n" \
            f"{cmd.log.read_text()[-2000:]}"
        if n_units == 2:
            assert cmd.proc.returncode == -signal.SIGKILL
        else:
            assert cmd.proc.returncode != 0 and "interrupted: " in cmd.log.read_text(), cmd.log.read_text()
    kept = len(_units(run_dir))
    assert 2 <= kept < N_UNITS

    out = Command([*RUN, "--out", str(run_dir)], env, tmp_path / "resume.log").finish()
    resumed = json.loads((run_dir / "results.json").read_text())
    assert resumed["rows"] == reference["rows"]  # exactly: same floats
    assert _comparable(resumed) == _comparable(reference)
    if "units_reused" in resumed.get("meta", {}):
        assert resumed["meta"]["units_reused"] == kept, out


def test_sweep_killed_leaves_no_process_and_resumes_to_the_same_table(tmp_path, env):
    """A 2 x 2 local sweep SIGKILLed while its cells run: its workers (and the spawn resource tracker) end
    within EXIT_S; the same command then finishes the sweep with the table of an uninterrupted sweep."""
    ref_dir, out = tmp_path / "ref", tmp_path / "killed"
    # the uninterrupted reference runs its cells one after the other in one process (saves the workers'
    # start-up; the local executor runs the very same run_experiment in its workers)
    Command([*SWEEP, "--executor", "serial", "--out", str(ref_dir)], env, tmp_path / "ref.log").finish()

    cmd = Command([*SWEEP, "--out", str(out)], env, tmp_path / "kill.log", nice=10)
    try:
        cmd.wait_for(f"a unit file in {out}/cells/*/units",
                     lambda: any(".tmp" not in p.name for p in out.glob("cells/*/units/*.json")))
        sweep_procs = _descendants(cmd.proc.pid, _procs())
    finally:
        cmd.kill()
    assert cmd.proc.returncode == -signal.SIGKILL
    workers = {pid: c for pid, (_, c) in sweep_procs.items() if "multiprocessing.spawn" in c}
    assert len(workers) == 2, f"expected the 2 spawned workers among {sweep_procs}"
    assert not (out / "sweep.csv").exists(), "killed too late: the sweep had finished"

    end = time.monotonic() + EXIT_S
    while _alive(sweep_procs, str(out)) and time.monotonic() < end:
        time.sleep(0.1)
    survivors = _alive(sweep_procs, str(out))
    for pid in survivors:  # do not leave them behind if the check fails
        os.kill(pid, signal.SIGKILL)
    assert not survivors, f"processes of the killed sweep still running after {EXIT_S} s: {survivors}"

    Command([*SWEEP, "--out", str(out)], env, tmp_path / "resume.log").finish()
    status = [c["status"] for c in json.loads((out / "sweep.json").read_text())["cells"]]
    assert set(status) <= {"done", "reused"} and len(status) == 4

    got, want = pd.read_csv(out / "sweep.csv"), pd.read_csv(ref_dir / "sweep.csv")
    assert list(got.columns) == list(want.columns)
    assert not [c for c in got.columns if "second" in c or "time" in c]  # no timing columns to leave out
    keys = [c for c in ("cell", "rule", "seed") if c in got.columns]
    assert len(got) == len(want) == 6  # seeds 1 + 2, twice
    pd.testing.assert_frame_equal(got.sort_values(keys).reset_index(drop=True),
                                  want.sort_values(keys).reset_index(drop=True), check_exact=True)


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_plan_leaves_no_calibration_run_behind(tmp_path, how):
    """``plasticlab run --plan`` calibrates in child processes (a wrapper that starts the run); stopping the plan
    (``timeout`` sends SIGTERM, Ctrl-C SIGINT) kills them too, rather than leaving a full-size calibration run
    holding the cores and memory."""
    ready = tmp_path / "started"
    marker = f"sleep {300 + how}.{os.getpid() % 1000:03d}"  # a command line no other process has
    script = ("from plasticlab.plan import _run_in_own_group; "
              f"_run_in_own_group(['sh', '-c', '{marker} & touch {ready}; wait'], dict())")
    parent = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + DEADLINE_S
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _alive({}, marker)
    parent.send_signal(how)
    parent.wait(timeout=DEADLINE_S)
    end = time.monotonic() + EXIT_S
    while _alive({}, marker) and time.monotonic() < end:
        time.sleep(0.05)
    assert not _alive({}, marker)
