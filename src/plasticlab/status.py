"""``plasticlab status DIR``: where a run folder stands, without touching it.

Read from the folder alone: the experiment and its settings (``config.json``), whether a process holds it now
(``.lock``), its finished units and what they cost (``units/``; units written under other settings or by other
code are counted apart: they are never read), the training checkpoints of the unit in progress (``scratch/``:
the step reached of the run's steps, or meta-training's episode, and when it was written), the cost plan if one
was made (``plan.json``) and whether ``results.json`` is written.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from pathlib import Path

from .checkpoint import read_meta
from .experiments.base import ConfigError, fingerprint, get_experiment, unit_slot


def holder(folder: Path) -> int | None:
    """The pid of the process that holds ``folder``'s lock now, else None (the lock is only tested)."""
    import fcntl

    path = folder / ".lock"
    if not path.exists():
        return None
    with open(path) as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = fh.read().strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    return None


def run_status(folder: Path) -> dict:
    """What ``plasticlab status`` prints, as a dict (see the module docstring)."""
    folder = Path(folder)
    try:
        saved = json.loads((folder / "config.json").read_text())
        name, cdict = saved["experiment"], saved["config"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(f"{folder}: not a run folder (no readable config.json with an experiment and its "
                          "config)") from None
    exp = get_experiment(name)
    fp = fingerprint(exp.units_of or name, cdict, exp.config, exp.results_version)
    units, stale = [], 0
    for path in sorted((folder / "units").glob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            stale += 1
            continue
        if doc.get("fingerprint") != fp:
            stale += 1
            continue
        units.append({"unit": doc.get("key"), "wall": doc.get("seconds"), "cpu": doc.get("cpu_seconds"),
                      "written": path.stat().st_mtime})
    units.sort(key=lambda u: u["written"])
    in_progress = []
    for scratch in sorted((folder / "scratch").glob("*")):
        files = sorted(scratch.glob("fit-*.npz"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0))
        metas = [m for m in (read_meta(f) for f in files) if m is not None]
        label = re.sub(r"-[0-9a-f]{16}$", "", scratch.name)  # the unit's label as made safe for a file name
        episodes = sorted(scratch.glob("ckpt_*.npz"))  # meta-training's own checkpoints (meta_learning)
        if episodes:
            in_progress.append({"unit": label, "episode":
                                int(re.sub(r"\D", "", episodes[-1].stem)), "episodes": cdict.get("n_episodes"),
                                "written": episodes[-1].stat().st_mtime, "pace": _pace(episodes)})
        if not metas:
            continue
        unit = metas[-1].get("unit") or label
        if scratch.name != unit_slot(fp, unit):
            continue  # a checkpoint of other settings or code: never read
        last = metas[-1]
        spent = scratch / "spent.json"
        in_progress.append({"unit": unit, "call": len(metas) - 1, "step": last.get("step"),
                            "total_steps": last.get("total_steps"), "call_wall": last.get("call_wall"),
                            "wall_from": last.get("wall_from"),
                            "written": last.get("written"),
                            "spent": json.loads(spent.read_text()) if spent.exists() else None})
    plan = None
    if (folder / "plan.json").exists():
        try:
            plan = json.loads((folder / "plan.json").read_text())
        except (OSError, ValueError):
            plan = None
    results = None
    if (folder / "results.json").exists():
        try:
            results = json.loads((folder / "results.json").read_text()).get("run_status", "written")
        except (OSError, ValueError):
            results = "unreadable"
    return {"folder": str(folder), "experiment": name, "quick": bool(saved.get("quick")), "pid": holder(folder),
            "units": units, "stale_units": stale, "in_progress": in_progress, "plan": plan, "results": results}


def _pace(checkpoints: list[Path]) -> float | None:
    """Seconds per meta-training episode: the median over the last (up to) four gaps between successive
    checkpoints' write times (a gap that spans a stop is longer; the median ignores one); None with one file."""
    marks = [(int(re.sub(r"\D", "", p.stem)), p.stat().st_mtime) for p in checkpoints[-5:]]
    rates = [(t1 - t0) / (e1 - e0) for (e0, t0), (e1, t1) in zip(marks, marks[1:]) if e1 > e0]
    return float(statistics.median(rates)) if rates else None


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.1f} min"


def calls_left(p: dict) -> float | None:
    """Wall seconds the training call in progress still needs at its pace so far: the wall it trained (over
    every invocation, compilation included) x steps to go / steps done in that wall (those since ``wall_from``
    when it resumed a file of an older version, which kept no wall); None before its first step or without
    the figures."""
    step, total, wall, start = p.get("step"), p.get("total_steps"), p.get("call_wall"), p.get("wall_from")
    if not step or not total or wall is None or start is None or step >= total or step <= start:
        return None
    return wall * (total - step) / (step - start)


def describe(st: dict, now: float | None = None) -> list[str]:
    """``run_status`` as the lines ``plasticlab status`` prints."""
    now = time.time() if now is None else now
    state = (f"running (pid {st['pid']})" if st["pid"] else
             {"finished": "finished", None: "stopped"}.get(st["results"], f"stopped ({st['results']})"))
    lines = [f"{st['folder']}: {st['experiment']}{' --quick' if st['quick'] else ''}, {state}"]
    units = st["units"]
    cpus = [u["cpu"] for u in units]
    total = f" of {st['plan']['units']}" if st["plan"] and st["plan"].get("units") else ""
    lines.append(f"  finished units: {len(units)}{total} (wall {_duration(sum(u['wall'] or 0 for u in units))}, "
                 f"CPU {_duration(None if None in cpus else sum(cpus))})"
                 + (f": {', '.join(str(u['unit']) for u in units[-6:])}" if units else "")
                 + (f" (the last 6 of {len(units)} written)" if len(units) > 6 else ""))
    if st["stale_units"]:
        lines.append(f"  {st['stale_units']} unit file(s) of other settings or code (never read)")
    for p in st["in_progress"]:
        if "episode" in p:
            if p["episodes"] and p["episode"] >= p["episodes"]:
                continue  # finished meta-training (its evaluation units may still be to do)
            of = f" of {p['episodes']:,}" if p["episodes"] else ""
            left = (f"; about {_duration(p['pace'] * (p['episodes'] - p['episode']))} to go at its recent pace"
                    if p.get("pace") and p["episodes"] else "")
            lines.append(f"  in progress: {p['unit']}: meta-training checkpoint at episode {p['episode']:,}{of}, "
                         f"written {_duration(now - p['written'])} ago{left}")
            continue
        frac = (f" ({100 * p['step'] / p['total_steps']:.0f}%)" if p.get("total_steps") else "")
        age = "" if p.get("written") is None else f", written {_duration(now - p['written'])} ago"
        kept = f"; {_duration(p['spent']['wall'])} of the unit's work kept" if p.get("spent") else ""
        of = f" of {p['total_steps']:,}" if p.get("total_steps") else ""
        left = calls_left(p)
        left = "" if left is None else f"; this call has about {_duration(left)} to go at its pace so far"
        lines.append(f"  in progress: {p['unit']}: training call {p['call'] + 1} at step {p['step']:,}{of}{frac}"
                     f"{age}{kept}{left}")
    if st["plan"]:
        lines.append(f"  plan: {st['plan'].get('units') or '?'} units, estimated wall "
                     f"{_duration(st['plan'].get('wall_seconds'))}, CPU {_duration(st['plan'].get('cpu_seconds'))}")
    lines.append("  results.json: " + ("not written yet" if st["results"] is None else st["results"]))
    return lines
