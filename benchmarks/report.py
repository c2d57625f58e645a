"""Shared output of the benchmarks: each figure printed with its target, and kept for ``--json PATH``.

    fig = Figures("online_mlp")
    fig.add("speed-up over NumPy, 1 seed", 12.3, "x", target=8)      # prints and records "meets: True"
    fig.write(args.json)                                              # {"benchmark", "device", "jax", "figures"}
"""

from __future__ import annotations

import json
import platform
from pathlib import Path


class Figures:
    def __init__(self, benchmark: str):
        import jax

        self.doc = {"benchmark": benchmark, "device": str(jax.devices()[0]), "platform": jax.devices()[0].platform,
                    "jax": jax.__version__, "machine": platform.platform(), "figures": []}

    def add(self, name: str, value: float, unit: str, target: float | None = None, *, at_most: bool = False,
            note: str = "") -> None:
        """Record (and print) one figure; ``target`` is a lower bound (an upper bound with ``at_most``)."""
        meets = None if target is None else (value <= target if at_most else value >= target)
        self.doc["figures"].append({"name": name, "value": float(value), "unit": unit, "target": target,
                                    "target_kind": "<=" if at_most else ">=", "meets": meets, "note": note})
        goal = "" if target is None else f"  (target {'<=' if at_most else '>='} {target:g}{unit}: " \
                                         f"{'met' if meets else 'NOT met'})"
        print(f"  {name}: {value:.4g}{unit}{goal}" + (f"  [{note}]" if note else ""))

    def write(self, path: str | None) -> None:
        if path:
            Path(path).write_text(json.dumps(self.doc, indent=1))


def json_arg(parser) -> None:
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
