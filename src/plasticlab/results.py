"""Reading a run folder back as pandas DataFrames: ``load_results(run_dir)``.

Every experiment writes DIR/results.json ({"experiment", "config", "rows", "curves", "measurements",
"claims", ...}); this module turns its tables into long-format DataFrames that are the same for every
experiment, so that a user can filter, group and plot any run without knowing its JSON layout::

    res = plasticlab.load_results("runs/oja-fig1")
    res.rows.groupby("rule")["final_accuracy"].mean()
    res.curves.query("metric == 'accuracy'")            # one row per (curve, metric, seed, x)
    res.claims[["claim", "paper", "ours", "verdict"]]     # the paper-vs-ours table
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from numbers import Number
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# keys that hold the x axis of the curves next to them (the first one present is used)
X_AXES = ("samples", "epochs", "steps", "episodes", "trials", "evals")


@dataclass
class RunResults:
    """The tables of one run folder.

    rows: results["rows"] (one row per seed / cell / variant, as the experiment defines them).
    curves: long format, columns curve (the path of keys above the metric, "/"-joined), metric, seed (None
        for a curve without seeds), x_name, x, value.
    measurements: what the paper's claims read, long format: name, index (the seed or entry), value.
    claims: the paper-vs-ours table: claim, where, statement, paper, ours, verdict, detail.
    config, experiment, status: the run's settings, name and ``run_status`` ("finished" or "diverged").
    raw: the whole results.json.
    """

    experiment: str
    status: str
    config: dict
    rows: pd.DataFrame
    curves: pd.DataFrame
    measurements: pd.DataFrame
    claims: pd.DataFrame
    raw: dict = field(repr=False, default_factory=dict)


def _numeric(values: Any) -> np.ndarray | None:
    """``values`` as a float array (None stands for NaN), or None if it is not a numeric (nested) list."""
    if not isinstance(values, list) or not values:
        return None
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        try:
            arr = np.asarray(_none_to_nan(values), dtype=float)
        except (TypeError, ValueError):
            return None
    return arr if arr.ndim in (1, 2) else None


def _none_to_nan(values: Any) -> Any:
    if isinstance(values, list):
        return [_none_to_nan(v) for v in values]
    return float("nan") if values is None else values


def _curve_rows(obj: Any, path: tuple[str, ...], out: list[dict]) -> None:
    """Append one row per point of every curve under ``obj``: a dict whose x axis (``X_AXES``) has n entries and
    whose other entries are (n,) or (seeds, n) numeric lists."""
    if not isinstance(obj, dict):
        return
    x_name = next((k for k in X_AXES if isinstance(obj.get(k), list)), None)
    x = _numeric(obj[x_name]) if x_name else None
    for key, value in obj.items():
        if key == x_name:
            continue
        arr = _numeric(value)
        if arr is not None and x is not None and x.ndim == 1 and arr.shape[-1] == len(x):
            seeds = [None] if arr.ndim == 1 else range(arr.shape[0])
            for s, row in zip(seeds, arr[None] if arr.ndim == 1 else arr):
                out.extend({"curve": "/".join(path), "metric": key, "seed": s, "x_name": x_name, "x": float(xv),
                            "value": float(v)} for xv, v in zip(x, row))
        elif isinstance(value, dict):
            _curve_rows(value, (*path, str(key)), out)


def _measurement_rows(measurements: dict) -> list[dict]:
    out = []
    for name, values in (measurements or {}).items():
        values = values if isinstance(values, list) else [values]
        out.extend({"name": name, "index": i, "value": float("nan") if v is None else v}
                   for i, v in enumerate(values) if v is None or isinstance(v, Number))
    return out


def load_results(run_dir: str | Path) -> RunResults:
    """The rows, curves, measurements and paper-vs-ours claims of the run folder ``run_dir`` as DataFrames.

    Raises FileNotFoundError (one line, naming the file) when ``run_dir`` holds no results.json.
    """
    path = Path(run_dir) / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: run_dir must be a plasticlab run folder "
                                "(the --out of `plasticlab run`)")
    raw = json.loads(path.read_text())
    curves: list[dict] = []
    _curve_rows(raw.get("curves"), (), curves)
    return RunResults(
        experiment=str(raw.get("experiment", "")), status=str(raw.get("run_status", "")),
        config=raw.get("config", {}),
        rows=pd.DataFrame(raw.get("rows") or []),
        curves=pd.DataFrame(curves, columns=["curve", "metric", "seed", "x_name", "x", "value"]),
        measurements=pd.DataFrame(_measurement_rows(raw.get("measurements")), columns=["name", "index", "value"]),
        claims=pd.DataFrame(raw.get("claims") or [],
                            columns=["claim", "where", "statement", "paper", "ours", "verdict", "detail"]),
        raw=raw)


__all__ = ["RunResults", "load_results"]
