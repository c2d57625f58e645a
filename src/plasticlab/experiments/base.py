"""Experiments declared as data: a config dataclass, a run function and a plot function.

An experiment module registers itself::

    @dataclass
    class MyConfig:
        seeds: int = 20
        lr: float = 0.01

    def run(cfg: MyConfig, ctx: RunContext) -> dict:
        rows = []
        for lr in ...:
            rows += ctx.unit(f"lr={lr}", lambda: train_and_measure(...))   # cached in the run dir
        return {"rows": rows, "curves": {...}}

    def plot(results: dict, out: Path) -> None: ...   # writes out/*.png from results.json's content

    register(Experiment("my-exp", "one line", MyConfig, run, plot, quick={"seeds": 2}, paper="oja"))

``run_experiment`` writes DIR/config.json, calls ``run``, writes DIR/results.json
({"experiment", "config", "rows", ...extras}) and DIR/results.csv, then the plots.
Each ``ctx.unit`` result is saved in DIR/units/ as soon as it finishes, so rerunning
the same command after a crash or Ctrl-C skips every finished unit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import platform
import re
import subprocess
import sys
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np


class ConfigError(ValueError):
    """A bad experiment name, override or run directory; the message lists the valid choices."""


@dataclass
class Experiment:
    name: str
    description: str
    config: type
    run: Callable[[Any, "RunContext"], dict]
    plot: Callable[[dict, Path], None] | None = None
    quick: dict = field(default_factory=dict)
    paper: str | None = None


REGISTRY: dict[str, Experiment] = {}


def paper_entry(quantity: str, paper: Any, ours: Any, *, tolerance: float | None = None, **extra: Any) -> dict:
    """One row of an experiment's paper-vs-ours table (``results["paper"]`` is a list of these).

    ``paper`` / ``ours``: numbers (the report shows ``diff = ours - paper`` and flags ``|diff| > tolerance``,
    default 10% of ``|paper|``) or short qualitative verdicts in the same words (e.g. ``"yes"`` / ``"no"``,
    ``"W+Vbar > W"``; the report shows ``agrees`` / ``differs``). ``ours`` must always be filled: when the
    quantity could not be measured say why (``"diverged"``, ``"not run: no CIFAR-10 offline"``).
    ``extra`` (e.g. ``where="Table 1"``, ``note=...``) becomes further columns.
    """
    if ours is None or (isinstance(ours, float) and math.isnan(ours)):
        raise ValueError(f"paper_entry {quantity!r}: 'ours' is empty; give the value or say why it is missing")
    row = {"quantity": quantity, "paper": _plain(paper), "ours": _plain(ours)}
    if tolerance is not None:
        row["tolerance"] = float(tolerance)
    row.update({k: _plain(v) for k, v in extra.items()})
    return row


def verdict(holds: bool | str) -> str:
    """A checked claim in the report's words: ``"yes"`` / ``"no"``, or ``holds`` itself when it is the reason the
    claim could not be checked in this run (e.g. ``"fa not run"``, ``"diverged at step 18"``)."""
    return holds if isinstance(holds, str) else ("yes" if holds else "no")


def _plain(v: Any) -> Any:
    """NumPy scalars to Python numbers (JSON-able), everything else unchanged."""
    return v.item() if isinstance(v, np.generic) else v


def register(exp: Experiment) -> Experiment:
    if exp.name in REGISTRY and REGISTRY[exp.name].run is not exp.run:
        raise ValueError(f"experiment {exp.name!r} registered twice")
    REGISTRY[exp.name] = exp
    return exp


def get_experiment(name: str) -> Experiment:
    from . import discover

    discover()
    if name not in REGISTRY:
        raise ConfigError(f"unknown experiment {name!r}; choose one of: {', '.join(sorted(REGISTRY))} "
                          "(`plasticlab list` describes them)")
    return REGISTRY[name]


# ----------------------------------------------------------------------------- config overrides

def _convert(text: str, tp: Any, key: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if text.lower() in ("none", "null") and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(text, inner[0], key)
    if origin in (tuple, list):
        inner = args[0] if args else str
        items = [s for s in (p.strip() for p in text.strip("()[]").split(",")) if s]
        vals = [_convert(s, inner, key) for s in items]
        return tuple(vals) if origin is tuple else vals
    if tp is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"--set {key}={text}: expected true or false")
    if tp in (int, float):
        try:
            v = float(text)
            return int(v) if tp is int and v == int(v) else tp(v)
        except ValueError:
            raise ConfigError(f"--set {key}={text}: expected a number ({tp.__name__})") from None
    if tp is dict:
        return json.loads(text)
    return text


def apply_overrides(cfg: Any, overrides: dict[str, Any]) -> Any:
    """Return a copy of ``cfg`` with fields replaced; string values are parsed by the field's type."""
    hints = typing.get_type_hints(type(cfg))
    names = [f.name for f in dataclasses.fields(cfg)]
    new = {}
    for key, val in overrides.items():
        if key not in names:
            raise ConfigError(f"unknown setting {key!r} for {type(cfg).__name__}; valid keys: {', '.join(names)}")
        new[key] = _convert(val, hints[key], key) if isinstance(val, str) else val
    return dataclasses.replace(cfg, **new)


def parse_set(items: list[str]) -> dict[str, str]:
    """['a=1', 'b=x,y'] -> {'a': '1', 'b': 'x,y'}."""
    out = {}
    for it in items:
        if "=" not in it:
            raise ConfigError(f"--set expects key=value, got {it!r}")
        k, v = it.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def config_dict(cfg: Any) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=_json_default))


# ----------------------------------------------------------------------------- run directory

def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"cannot store {type(o).__name__} in JSON")


def _clean(o: Any) -> Any:
    """Replace NaN/inf by None so results.json is strict JSON."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    return o


def write_json(path: Path, obj: Any) -> None:
    """Atomic JSON write (temp file + rename): a crash never leaves a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(_clean(json.loads(json.dumps(obj, default=_json_default))), indent=1))
    tmp.replace(path)


def environment_info() -> dict:
    """Versions, device and git commit, recorded with every run."""
    import jax

    from .. import __version__

    info = {"plasticlab": __version__, "python": platform.python_version(), "jax": jax.__version__,
            "platform": platform.platform(), "device": str(jax.devices()[0]), "argv": sys.argv}
    try:
        import jaxlib

        info["jaxlib"] = jaxlib.__version__
    except Exception:  # pragma: no cover
        pass
    try:
        here = Path(__file__).resolve().parent
        info["git_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                                            timeout=5).stdout.strip() or None
    except Exception:  # pragma: no cover
        info["git_commit"] = None
    return info


class RunContext:
    """Handed to an experiment's ``run``: where to write, where data lives, and the unit cache."""

    def __init__(self, out: Path, data_dir: Path | None, quick: bool = False, progress: bool = True,
                 console: Any = None):
        self.out, self.data_dir, self.quick, self.progress = out, data_dir, quick, progress
        self.units_dir = out / "units"
        self.units_dir.mkdir(parents=True, exist_ok=True)
        self.console = console
        self.reused: list[str] = []
        self.computed: list[str] = []

    def log(self, msg: str) -> None:
        if self.console is not None:
            self.console.print(msg)

    def _unit_path(self, key: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.=,+-]+", "_", key)[:120]
        return self.units_dir / f"{safe}-{hashlib.sha1(key.encode()).hexdigest()[:8]}.json"

    def unit(self, key: str, fn: Callable[[], Any]) -> Any:
        """Result of ``fn()`` for this unit of work, computed once and kept in DIR/units/.

        The result must be JSON-serialisable (NumPy arrays are turned into lists).
        """
        path = self._unit_path(key)
        if path.exists():
            self.reused.append(key)
            return json.loads(path.read_text())["result"]
        t0 = time.time()
        res = fn()
        write_json(path, {"key": key, "seconds": time.time() - t0, "result": res})
        self.computed.append(key)
        return json.loads(path.read_text())["result"]


def default_out(name: str, quick: bool) -> Path:
    return Path("runs") / (name + ("-quick" if quick else ""))


def prepare(name: str, *, quick: bool = False, seeds: int | None = None, overrides: dict[str, Any] | None = None,
            config: dict | None = None) -> tuple[Experiment, Any]:
    """The experiment and its final config (defaults <- quick <- config file <- seeds <- overrides)."""
    exp = get_experiment(name)
    cfg = exp.config()
    if quick:
        cfg = apply_overrides(cfg, exp.quick)
    if config:
        cfg = apply_overrides(cfg, config)
    if seeds is not None:
        if "seeds" not in {f.name for f in dataclasses.fields(cfg)}:
            raise ConfigError(f"experiment {name!r} has no 'seeds' setting")
        cfg = apply_overrides(cfg, {"seeds": seeds})
    return exp, apply_overrides(cfg, overrides or {})


def config_clash(run_dir: Path, name: str, cdict: dict) -> str | None:
    """None if ``run_dir`` is new or holds a run of ``name`` with config ``cdict``, else what differs (for errors)."""
    cfg_path = Path(run_dir) / "config.json"
    if not cfg_path.exists():
        return None
    old = json.loads(cfg_path.read_text())
    if old.get("experiment") == name and old.get("config") == cdict:
        return None
    before = old.get("config", {})
    changed = sorted(k for k in set(cdict) | set(before) if cdict.get(k) != before.get(k))
    return (f"a run of {old.get('experiment')!r} with a different config "
            f"(differs in: {', '.join(changed) or 'experiment'})")


def run_experiment(name: str, out: str | Path | None = None, *, quick: bool = False, seeds: int | None = None,
                   overrides: dict[str, Any] | None = None, data_dir: str | Path | None = None,
                   config: dict | None = None, progress: bool = True, console: Any = None, plots: bool = True) -> dict:
    """Run (or resume) one experiment into ``out`` and return the content of results.json."""
    exp, cfg = prepare(name, quick=quick, seeds=seeds, overrides=overrides, config=config)
    out = Path(out) if out is not None else default_out(name, quick)
    cdict = config_dict(cfg)
    cfg_path = out / "config.json"
    clash = config_clash(out, name, cdict)
    if clash:
        raise ConfigError(f"{out} holds {clash}; choose another --out, or delete the folder to start over")
    write_json(cfg_path, {"experiment": name, "quick": quick, "config": cdict, "environment": environment_info()})
    ctx = RunContext(out, Path(data_dir) if data_dir is not None else None, quick, progress, console)
    t0 = time.time()
    result = exp.run(cfg, ctx)
    if "rows" not in result:
        raise RuntimeError(f"experiment {name!r} returned no 'rows'")
    payload = {"experiment": name, "config": cdict, **result,
               "meta": {"seconds": time.time() - t0, "units_reused": len(ctx.reused), "units_computed": len(ctx.computed)}}
    write_json(out / "results.json", payload)
    payload = json.loads((out / "results.json").read_text())
    if payload["rows"]:
        import pandas as pd

        pd.DataFrame(payload["rows"]).to_csv(out / "results.csv", index=False)
    if plots and exp.plot is not None:
        import matplotlib

        matplotlib.use("Agg")
        exp.plot(payload, out)
    return payload
