"""Golden quick results: record every experiment's ``--quick`` results, or check them against the record.

    python tools/golden.py record [EXPERIMENT ...]   # writes tests/golden/<experiment>.json
    python tools/golden.py check  [EXPERIMENT ...]   # reruns and compares (rel. 1e-6, abs. 1e-7)

With no experiment named, every registered experiment (about an hour on 2 cores).

The record keeps every number and string of results.json except timings and machine facts (``meta``); a
refactor that must not move numbers reruns ``check`` and is done when every experiment matches.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
import time
from pathlib import Path

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "golden"
VOLATILE = {"meta", "cpu_seconds", "wall_seconds", "seconds", "elapsed", "environment", "resume", "time_s",
            "wall_s", "cpu_s", "wall s"}
# ATOL: float32 round-off. A quantity that is 0 in exact arithmetic comes out at about 1e-8 and moves with the
# CPU (curl-ei's exact steady-state curl share: 2.1e-8 recorded, 2.4e-8 on an AMD EPYC), so 1e-9 failed there.
RTOL, ATOL = 1e-6, 1e-7


def strip(obj):
    """results.json without timings and machine facts."""
    if isinstance(obj, dict):
        return {k: strip(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [strip(v) for v in obj]
    return obj


def differences(a, b, path: str = "") -> list[str]:
    """Paths where ``a`` (golden) and ``b`` (new) differ beyond the tolerance."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}/{k}: only in golden" for k in a if k not in b]
        out += [f"{path}/{k}: only in new" for k in b if k not in a]
        for k in a:
            if k in b:
                out += differences(a[k], b[k], f"{path}/{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: length {len(a)} vs {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    num = (int, float)
    if isinstance(a, num) and isinstance(b, num) and not isinstance(a, bool) and not isinstance(b, bool):
        if math.isnan(a) and math.isnan(b):
            return []
        if a == b or abs(a - b) <= ATOL + RTOL * max(abs(a), abs(b)):
            return []
        return [f"{path}: {a!r} vs {b!r}"]
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


def run_quick(name: str) -> dict:
    from plasticlab.experiments import run_experiment

    with tempfile.TemporaryDirectory() as tmp:
        res = run_experiment(name, Path(tmp) / name, quick=True, progress=False, plots=False)
    return strip(json.loads(json.dumps(res, default=float)))


def main(argv: list[str]) -> int:
    from plasticlab.experiments import discover

    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    known = sorted(discover())
    mode, names = argv[0], argv[1:] or known
    if mode not in ("record", "check"):
        print(f"golden.py: mode={mode!r} is not allowed; use record or check (see --help)", file=sys.stderr)
        return 2
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"golden.py: experiment={unknown[0]!r} is not registered; choose from {', '.join(known)}",
              file=sys.stderr)
        return 2
    GOLDEN.mkdir(parents=True, exist_ok=True)
    bad = 0
    for name in names:
        t0 = time.perf_counter()
        res = run_quick(name)
        dt = time.perf_counter() - t0
        path = GOLDEN / f"{name}.json"
        if mode == "record":
            path.write_text(json.dumps(res, sort_keys=True, separators=(",", ":"), allow_nan=True) + "\n")
            print(f"{name:20s} recorded ({dt:.0f} s)", flush=True)
        else:
            diffs = differences(json.loads(path.read_text()), res)
            bad += bool(diffs)
            print(f"{name:20s} {'same' if not diffs else f'{len(diffs)} differences'} ({dt:.0f} s)", flush=True)
            for d in diffs[:10]:
                print("    " + d)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
