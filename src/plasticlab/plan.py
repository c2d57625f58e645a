"""Cost plans: what a run will cost on this machine, before running it.

For an experiment at the requested settings, the planner runs it twice, shortened along its *length* setting
(the one its run time grows with linearly: samples, epochs, episodes or training-set size; every other setting,
the number of seeds included, as requested), each time in a fresh process exactly as ``plasticlab run`` would,
and fits

    T(x) = a + b x        (CPU seconds; peak resident memory too when x is the training-set size, else the
                           larger calibration run's memory)

through the two points (a: start-up, data loading, compilation and fixed parts such as example runs; b: the
cost per unit of length; a run that trains until it converges, at most ``max_epochs``, is planned at that cap,
the worst case). The two lengths are 1/32 and 1/16 of the requested one; when the longer run costs
less than 50% more CPU time than the shorter (fixed costs and noise dominate, so b is not resolved), the pair
1/8, 1/4 is tried, then 1/2, 1 (only when the estimate so far is under 5 CPU-minutes: an expensive run whose
fixed costs dominate keeps the estimate of the shorter pair). The estimate at the requested length x is T(x); wall time is
T(x) times the longer calibration run's wall / CPU ratio (CPU time is the steadier clock on a shared machine). Calibrations are cached per machine,
code version and settings (``~/.cache/plasticlab/plans.json``), so a second plan is instant. Experiments
without a length setting (analytic figures that take seconds) are run once at full size and measured.

A plan written into a run folder (``plan.json``) is kept by ``plasticlab ledger --record``, next to the run's
actual wall and CPU time, so the estimator's error is visible in the ledger.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

LENGTH_KEYS = ("n_samples", "max_epochs", "epochs", "n_episodes", "n_train")
# a cap (train until converged, at most this long) is planned at the cap, the worst case; its shortened
# calibration runs shorten the minimum length too, so that they train exactly the shortened cap
CAPPED = {"max_epochs": "epochs"}
FRACTIONS = ((1 / 32, 1 / 16), (1 / 8, 1 / 4), (1 / 2, 1.0))  # tried in turn (see ``plan``)
CHEAP = 300.0  # CPU seconds: below this estimate, an unresolved plan may calibrate at the full length itself
RESOLVED = 0.5  # accept a pair of calibration runs once the longer costs >= 50% more CPU time than the shorter


@dataclass
class Plan:
    """The cost estimate of one experiment at one size (times in seconds, memory in MiB)."""

    experiment: str
    length_key: str | None
    length: float | None
    calibrated_at: list[float]
    units: int | None
    wall_seconds: float
    cpu_seconds: float
    peak_rss_mib: float
    calibration_seconds: float
    machine: str
    cached: bool = False
    config: dict | None = None  # the settings planned for (``ledger --record`` pairs a plan with its own run only)

    def fits(self, budget_seconds: float | None) -> bool | None:
        return None if budget_seconds is None else self.wall_seconds <= budget_seconds

    def to_dict(self) -> dict:
        return asdict(self)


def parse_budget(text: str | None) -> float | None:
    """'90s', '30m', '2h', '1.5h' or plain seconds -> seconds (None for no budget)."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smh]?)\s*", str(text))
    if not m:
        from .experiments.base import ConfigError

        raise ConfigError(f"--budget={text!r}: allowed: a duration such as 90s, 30m, 2h or 1.5h")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def machine_id() -> str:
    """What the estimate is valid for: CPU count, processor, platform, JAX and plasticlab versions."""
    import jax

    from . import __version__

    proc = platform.processor() or platform.machine()
    return f"{os.cpu_count()} cpus {proc} {platform.system()} jax {jax.__version__} plasticlab {__version__}"


def _code_version() -> str:
    """A hash of the package's source, so a calibration is redone when the code changes."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.py")):
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def _cache_path() -> Path:
    base = Path(os.environ.get("PLASTICLAB_CACHE", Path.home() / ".cache" / "plasticlab"))
    return base / "plans.json"


def _measure(experiment: str, overrides: dict[str, Any], quick: bool, data_dir: str | Path | None,
             seeds: int | None) -> dict:
    """Run the experiment once in a fresh process (as ``plasticlab run`` does): the run's wall and CPU seconds
(as results.json records them), the process's peak resident memory, the work units."""
    with tempfile.TemporaryDirectory(prefix="plasticlab-plan-") as tmp:
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "plasticlab.cli", "run", experiment, "--out", str(out), "--no-plots"]
        cmd += ["--quick"] if quick else []
        cmd += ["--data-dir", str(data_dir)] if data_dir is not None else []
        cmd += ["--seeds", str(seeds)] if seeds is not None else []
        for k, v in overrides.items():
            cmd += ["--set", f"{k}={_as_setting(v)}"]
        code = ("import resource, subprocess, sys, json, time; t = time.perf_counter(); "
                "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True); "
                "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
                "print(json.dumps({'rc': r.returncode, 'wall': time.perf_counter() - t, "
                "'cpu': u.ru_utime + u.ru_stime, 'rss_kib': u.ru_maxrss, 'err': r.stderr[-2000:]}))")
        # a cold run: no compiled program read from (or written to) the command line's compilation cache
        env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
        env.update({"COLUMNS": "200", "PLASTICLAB_JAX_CACHE": ""})
        m = json.loads(_run_in_own_group([sys.executable, "-c", code, *cmd], env).strip().splitlines()[-1])
        meta = {}
        if m["rc"] == 0 and (out / "results.json").exists():
            meta = json.loads((out / "results.json").read_text()).get("meta", {})
        # the run's own clock (as results.json and the ledger record it: start-up and imports excluded), else
        # the whole process's
        return {"ok": m["rc"] == 0, "wall": meta.get("seconds", m["wall"]), "cpu": meta.get("cpu_seconds", m["cpu"]),
                "rss_mib": m["rss_kib"] / 1024, "units": meta.get("units_computed"),
                "error": _failure(m["rc"], m["err"], m["rss_kib"] / 1024)}


def _failure(rc: int, stderr: str, rss_mib: float) -> str:
    """Why a calibration run failed, in one line: its last line of stderr, or the signal that ended it (SIGKILL
    with nothing said: most likely the kernel's out-of-memory killer, with the peak memory reached)."""
    if rc == 0:
        return ""
    said = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    if rc < 0:
        import signal

        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        why = f"killed by {name}" + (f" at {rss_mib:,.0f} MiB resident, most likely out of memory"
                                     if -rc == signal.SIGKILL else "")
        return f"{why}: {said}" if said else why
    return said or f"exit status {rc}"


def _run_in_own_group(cmd: list[str], env: dict[str, str]) -> str:
    """Run ``cmd`` in a new process group and return its stdout; the group (the calibration run included) is
    killed whenever this returns early: on an exception, Ctrl-C or SIGTERM (e.g. ``timeout plasticlab run
    --plan``), so that no calibration run outlives the plan that started it."""
    import signal
    import threading

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)

    def _terminate(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)  # unwinds through the ``finally`` below

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main else None
    try:
        out, _ = proc.communicate()
        return out
    finally:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        if in_main:
            signal.signal(signal.SIGTERM, previous)


def _as_setting(value: Any) -> str:
    """A value as ``--set key=`` takes it (JSON objects for dicts, [a,b] for lists)."""
    from .settings import _show

    return json.dumps(value) if isinstance(value, dict) else _show(value, quote=False)


def length_of(cfg: Any) -> tuple[str | None, float | None]:
    """The setting a run's time grows with linearly, and its requested value (None, None if it has none)."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(cfg)}
    for key in LENGTH_KEYS:
        if key in names and isinstance(getattr(cfg, key), (int, float)) and getattr(cfg, key):
            return key, getattr(cfg, key)
    return None, None


def _capped(cfg: Any, key: str, x: float) -> dict[str, Any]:
    """The minimum-length override that goes with a shortened cap (``CAPPED``), else none."""
    low = CAPPED.get(key)
    return {low: min(getattr(cfg, low), x)} if low is not None else {}


def _line(x1: float, y1: float, x2: float, y2: float, x: float) -> float:
    """y at x on the line through (x1, y1), (x2, y2); a non-increasing pair (noise) falls back to y2 x / x2."""
    if x2 == x1 or y2 <= y1:
        return max(y1, y2) * max(x / x2, 1.0)
    return y1 + (y2 - y1) * (x - x1) / (x2 - x1)


def plan(experiment: str, *, quick: bool = False, overrides: dict[str, Any] | None = None,
         data_dir: str | Path | None = None, seeds: int | None = None, use_cache: bool = True,
         fractions: tuple[tuple[float, float], ...] = FRACTIONS,
         report: Callable[[str], None] | None = None) -> Plan:
    """Estimate wall time, CPU time and peak memory of ``plasticlab run EXPERIMENT`` with these settings
    (``fractions``: the pairs of shortened lengths to calibrate at, tried in turn; see the module docstring;
    ``report``: called with one line before and after every calibration run)."""
    from .experiments.base import ConfigError, config_dict, prepare

    overrides = dict(overrides or {})
    exp, cfg = prepare(experiment, quick=quick, seeds=seeds, overrides=overrides)  # refuses bad settings first
    key, length = length_of(cfg)
    cdict = config_dict(cfg)
    ident = json.dumps({"experiment": experiment, "config": {k: v for k, v in cdict.items() if k != key},
                        "machine": machine_id(), "code": _code_version(), "data_dir": str(data_dir),
                        "fractions": fractions},
                       sort_keys=True, default=str)
    cache_file = _cache_path()
    cache = json.loads(cache_file.read_text()) if use_cache and cache_file.exists() else {}
    hit = cache.get(ident)
    t0 = time.perf_counter()
    if hit is None:
        if key is None:
            m = _reported(report, f"{experiment}: one run at full size (it has no length setting)",
                          lambda: _measure(experiment, overrides, quick, data_dir, seeds))
            if not m["ok"]:
                raise ConfigError(f"{experiment}: the calibration run failed: {m['error']}")
            hit = {"points": [[None, m["wall"], m["cpu"], m["rss_mib"]]] * 2, "units": m["units"]}
        else:
            hit, errors = None, []
            for i, (f1, f2) in enumerate(fractions):
                xs = [_shorten(length, f) for f in (f1, f2)]
                if xs[0] == xs[1]:
                    continue
                if hit is not None and max(fractions[i]) >= 1.0 and _line(
                        hit["points"][0][0], hit["points"][0][2], hit["points"][1][0], hit["points"][1][2],
                        float(length)) > CHEAP:
                    break  # fixed costs dominate an expensive run: keep the estimate rather than run it in full
                ms = [_reported(report, f"{experiment}: calibration run at {key}={x:g} of {length:g}",
                                lambda x=x: _measure(experiment, {**overrides, key: x, **_capped(cfg, key, x)},
                                                     quick, data_dir, seeds))
                      for x in xs]
                if all(m["ok"] for m in ms):
                    hit = {"points": [[x, m["wall"], m["cpu"], m["rss_mib"]] for x, m in zip(xs, ms)],
                           "units": ms[1]["units"]}
                    if ms[1]["cpu"] - ms[0]["cpu"] >= RESOLVED * ms[0]["cpu"]:
                        break  # the part that grows with the length stands out of the fixed costs and the noise
                else:
                    errors += [m["error"] for m in ms if not m["ok"]]
            if hit is None:
                raise ConfigError(f"{experiment}: no shortened calibration run finished ({key} from {length}): "
                                  + (errors[-1] if errors else "no usable lengths"))
        if use_cache:
            _store(cache_file, ident, hit)
        cached = False
    else:
        cached = True
    wall, cpu, rss = estimate(hit["points"], key, length)
    (x1, *_), (x2, *_) = hit["points"]
    return Plan(experiment, key, None if length is None else float(length), [x for x in (x1, x2) if x is not None],
                hit.get("units"), float(wall), float(cpu), float(rss), time.perf_counter() - t0, machine_id(), cached,
                json.loads(json.dumps(cdict, default=str)))


def _reported(report: Callable[[str], None] | None, what: str, measure: Callable[[], dict]) -> dict:
    """``measure()``, with a line to ``report`` before it and one with its cost after."""
    if report is not None:
        report(f"{what} ...")
    m = measure()
    if report is not None:
        report(f"{what}: {m['wall']:.0f} s wall, {m['cpu']:.0f} CPU-s" if m["ok"] else f"{what}: failed ({m['error']})")
    return m


def estimate(points: list, key: str | None, length: float | None) -> tuple[float, float, float]:
    """(wall, CPU, peak MiB) at ``length`` from two calibration points [x, wall, cpu, rss]: the line through the
    CPU times (less disturbed by other processes than the wall clock), turned into wall time by the longer run's
    wall / CPU ratio (its parallelism); memory grows with the training set (the data are held in memory), not
    with epochs or samples seen."""
    (x1, w1, c1, r1), (x2, w2, c2, r2) = points
    if key is None:
        return w2, c2, r2
    cpu = _line(x1, c1, x2, c2, float(length))
    rss = _line(x1, r1, x2, r2, float(length)) if key == "n_train" else max(r1, r2)
    return cpu * w2 / max(c2, 1e-9), cpu, rss


def _shorten(length: float, fraction: float) -> float | int:
    """length * fraction: an int of at least 2 for integer settings, a float of at least 0.05 otherwise."""
    if isinstance(length, int):
        return max(2, int(round(length * fraction)))
    return max(0.05, round(length * fraction, 3))


def _store(cache_file: Path, ident: str, hit: dict) -> None:
    """Add one calibration to the cache: re-read it first (other plans may have written since) and replace the
    file atomically."""
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        cache = json.loads(cache_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        cache = {}
    cache[ident] = hit
    tmp = cache_file.with_name(f".{cache_file.name}.{os.getpid()}")
    tmp.write_text(json.dumps(cache, indent=1))
    tmp.replace(cache_file)


def write(plan_: Plan, run_dir: Path) -> Path:
    """Keep the plan in the run folder (``plan.json``); ``ledger --record`` stores it beside the actual times."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "plan.json"
    path.write_text(json.dumps(plan_.to_dict(), indent=1))
    return path


def hours(seconds: float) -> str:
    """'42 s', '12.5 min' or '3.2 h'."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


__all__ = ["Plan", "plan", "estimate", "parse_budget", "write", "machine_id", "length_of", "hours"]
