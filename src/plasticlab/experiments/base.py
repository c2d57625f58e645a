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
import difflib
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
    # raised by hand when a code change alters what the same settings produce, so that no finished unit of the
    # older code is reused (the unit cache is keyed by the settings and the package version only)
    results_version: int = 1
    # the experiment whose units this one computes (same config class, same unit labels and functions, e.g.
    # hebb-fig5 of hebb-fig4): the unit cache is keyed by that name, so that one's unit files can be copied in
    units_of: str | None = None


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

def split_items(text: str) -> list[str]:
    """Split on commas outside brackets, parentheses and quotes: 'bp(lr=1,x=2),fa' -> ['bp(lr=1,x=2)', 'fa']."""
    parts, depth, cur, quote = [], 0, "", None
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0 and quote is None:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts]


def _enclosed(text: str, open_: str, close: str) -> bool:
    """Whether ``text`` is one bracket pair around everything: '[a,(b)]' yes, '(a)+(b)' no."""
    if not (text.startswith(open_) and text.endswith(close)):
        return False
    depth = 0
    for i, ch in enumerate(text):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth == 0 and i < len(text) - 1:
            return False
    return True


def _convert(text: str, tp: Any, key: str, allowed: str) -> Any:
    """A --set string as a value of type ``tp``; the value is range-checked later by ``settings.validate``."""
    from ..settings import SettingError, strip_optional

    text = text.strip()
    tp, optional = strip_optional(tp)
    if optional and text.lower() in ("none", "null"):
        return None
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (tuple, list):
        inner = args[0] if args else str
        body = text
        if _enclosed(body, "[", "]") or (inner is not str and _enclosed(body, "(", ")")):
            body = body[1:-1].strip()
        items = split_items(body) if body else []
        if items and items[-1] == "":  # one trailing comma is allowed: 'bp(lr=0.05),'
            items = items[:-1]
        if any(it == "" for it in items):
            raise SettingError(key, text, allowed, "an entry is empty")
        vals = [_convert(s, inner, key, allowed) for s in items]
        return tuple(vals) if origin is tuple else vals
    if tp is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise SettingError(key, text, allowed, "not true/false")
    if tp is int:
        try:
            return int(text)
        except ValueError:
            pass
        try:
            v = float(text)
        except ValueError:
            raise SettingError(key, text, allowed, "not an integer") from None
        if math.isfinite(v) and v.is_integer() and abs(v) < 2 ** 63:
            return int(v)  # 1e4 -> 10000
        raise SettingError(key, text, allowed, "not an integer")
    if tp is float:
        try:
            return float(text)
        except ValueError:
            raise SettingError(key, text, allowed, "not a number") from None
    if tp is dict:
        try:
            val = json.loads(text)
        except json.JSONDecodeError as err:
            raise SettingError(key, text, allowed, f"not valid JSON ({err.msg} at position {err.pos + 1})") from None
        if not isinstance(val, dict):
            raise SettingError(key, text, allowed, "not a JSON object")
        return val
    return text


def _coerce(val: Any, tp: Any) -> Any:
    """A parsed value (from JSON, TOML or Python) in the field's container type: lists -> tuples, int -> float."""
    from ..settings import strip_optional

    tp, optional = strip_optional(tp)
    if val is None and optional:
        return None
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (tuple, list) and isinstance(val, (list, tuple)):
        inner = args[0] if args else Any
        vals = [_coerce(v, inner) for v in val]
        return tuple(vals) if origin is tuple else vals
    if tp is float and isinstance(val, int) and not isinstance(val, bool):
        return float(val)
    return val


def apply_overrides(cfg: Any, overrides: dict[str, Any], source: str = "--set") -> Any:
    """Return a copy of ``cfg`` with fields replaced; string values are parsed by the field's type.

    Unknown keys and unparsable strings raise :class:`ConfigError` naming ``source``, the key and the value.
    Ranges and choices are checked by :func:`validate_config` once every override is in.
    """
    from ..settings import SettingError, describe

    hints = typing.get_type_hints(type(cfg))
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    new = {}
    for key, val in overrides.items():
        if key not in fields:
            near = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ConfigError(f"{source}: unknown setting {key!r} for {type(cfg).__name__}{hint}; valid keys: "
                              f"{', '.join(fields)}")
        try:
            new[key] = (_convert(val, hints[key], key, describe(fields[key], hints[key])) if isinstance(val, str)
                        else _coerce(val, hints[key]))
        except SettingError as err:
            raise ConfigError(f"{_where(source)}{err}") from None
    return dataclasses.replace(cfg, **new)


def _where(source: str) -> str:
    """'--set' -> '--set ' (reads '--set lr=-1: ...'); 'config file X' -> 'config file X: '."""
    return source + (" " if source.startswith("--") else ": ")


def validate_config(cfg: Any, sources: dict[str, str] | None = None, name: str | None = None) -> None:
    """Check every setting of ``cfg`` (types, ranges, choices, rule strings); raise :class:`ConfigError` whose one
    line names where the bad value came from (``sources[key]``), the key, the value and what is allowed."""
    from ..settings import SettingError, validate

    try:
        validate(cfg)
    except SettingError as err:
        sources = sources or {}
        where = sources.get(err.key, f"the default of {name or type(cfg).__name__}")
        if err.key not in sources and sources:  # a cross-field check failed on a default: say what was set
            where += f" (with {', '.join(sorted(sources))} set)"
        raise ConfigError(f"{_where(where)}{err}") from None


def parse_set(items: list[str]) -> dict[str, str]:
    """['a=1', 'b=x,y'] -> {'a': '1', 'b': 'x,y'}; a later item of the same key wins."""
    out = {}
    for it in items:
        if "=" not in it:
            raise ConfigError(f"--set expects key=value, got {it!r}")
        k, v = it.split("=", 1)
        if not k.strip():
            raise ConfigError(f"--set expects key=value, got {it!r} (no key)")
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


def release_compiled_code() -> None:
    """Free JAX's compiled executables; called between experiments that share one process.

    XLA maps a few memory regions per compiled executable (about 15 for a scanned training step) and keeps them
    while JAX's caches hold it. A process that runs many experiments (``reproduce``, a sweep worker, the test
    suite) compiles thousands of executables and passes Linux's ``vm.max_map_count`` (65,530 by default), where
    the next compilation segfaults. The next experiment compiles its own steps again anyway.
    """
    import gc

    import jax

    jax.clear_caches()
    gc.collect()


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
        # uncommitted changes to tracked files: the commit alone does not name the code that ran
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                                capture_output=True, text=True, timeout=5)
        info["git_dirty"] = bool(status.stdout.strip()) if info["git_commit"] and status.returncode == 0 else None
    except Exception:  # pragma: no cover
        info["git_commit"] = info["git_dirty"] = None
    info["lock_sha256"] = lock_hash()
    return info


def lock_hash() -> str | None:
    """SHA-256 of the checkout's requirements.lock (the exact versions, ``tools/lock.py``), None without one."""
    lock = Path(__file__).resolve().parents[3] / "requirements.lock"
    return hashlib.sha256(lock.read_bytes()).hexdigest() if lock.is_file() else None


def fingerprint(name: str, cdict: dict, cfg_type: type | None = None, results_version: int = 1) -> str:
    """Hash of what determines a run's results: the experiment, its result-affecting settings (all but those
    declared ``affects_result=False``), the package version and the experiment's ``results_version`` (left out
    while it is 1, so older run folders keep their fingerprints). Every unit's cache key includes it."""
    from .. import __version__
    from ..settings import result_fields

    keep = result_fields(cfg_type) if cfg_type is not None else list(cdict)
    doc = {"experiment": name, "config": {k: cdict[k] for k in sorted(keep) if k in cdict}, "plasticlab": __version__}
    if results_version != 1:
        doc["results_version"] = results_version
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=_json_default).encode()).hexdigest()


def unit_slot(fingerprint: str, key: str) -> str:
    """The file-system name of unit ``key`` of a run: its label made safe, plus the hash of the run's fingerprint
    and the label (unit files and scratch folders)."""
    safe = re.sub(r"[^A-Za-z0-9_.=,+-]+", "_", key)[:100]
    digest = hashlib.sha256(f"{fingerprint}\0{key}".encode()).hexdigest()
    return f"{safe}-{digest[:16]}"


class RunContext:
    """Handed to an experiment's ``run``: where to write, where data lives, and the unit cache.

    A unit is cached under its label *and* the run's :func:`fingerprint`, so a unit file written under another
    config or package version is never read (its file name differs, and the fingerprint stored inside is checked).
    """

    def __init__(self, out: Path, data_dir: Path | None, quick: bool = False, progress: bool = True,
                 console: Any = None, fingerprint: str = "", name: str = ""):
        self.out, self.data_dir, self.quick, self.progress, self.name = out, data_dir, quick, progress, name
        self.units_dir = out / "units"
        self.units_dir.mkdir(parents=True, exist_ok=True)
        self.console = console
        self.fingerprint = fingerprint
        self.reused: list[str] = []
        self.computed: list[str] = []
        self.finished: list[tuple[str, Any]] = []  # (label, result) of every unit, in order
        self.failed: dict | None = None  # the unit that raised DivergenceError, with its partial curves
        self.checkpointed: str | None = None  # an interrupted unit whose training checkpoints were kept
        # (wall, CPU seconds) each unit took when it was computed, this invocation or an earlier one (CPU: None
        # for units written before it was kept): a resumed run's cost is their sum, not this invocation's time
        self.unit_seconds: dict[str, tuple[float, float | None]] = {}

    def units_cost(self) -> dict[str, float | None]:
        """Wall and CPU seconds of every unit of the run, summed over the invocations that computed them, and of
        the units read from earlier invocations alone (``reused_*``; CPU: None when an older unit lacks it)."""
        def total(keys) -> dict[str, float | None]:
            cpus = [self.unit_seconds[k][1] for k in keys]
            return {"wall": sum(self.unit_seconds[k][0] for k in keys), "cpu": None if None in cpus else sum(cpus)}

        every, reused = total(self.unit_seconds), total([k for k in set(self.reused) if k in self.unit_seconds])
        return {"units_wall_seconds": every["wall"], "units_cpu_seconds": every["cpu"],
                "reused_wall_seconds": reused["wall"], "reused_cpu_seconds": reused["cpu"]}

    def log(self, msg: str, style: str | None = None) -> None:
        """Print ``msg`` verbatim (rule specs and lists keep their brackets), in ``style`` (e.g. "yellow")."""
        if self.console is not None:
            self.console.print(msg, markup=False, highlight=False, style=style)

    def _slot(self, key: str) -> str:
        return unit_slot(self.fingerprint, key)

    def _unit_path(self, key: str) -> Path:
        return self.units_dir / f"{self._slot(key)}.json"

    def _scratch_path(self, key: str) -> Path:
        return self.out / "scratch" / self._slot(key)

    def scratch_dir(self, key: str) -> Path:
        """A folder for a unit's own resumable state (e.g. checkpoints), keyed like the unit's cache file; a
        unit's ``fit(checkpoint=True)`` files go to the folder of the unit's own key (deleted when it is
        written)."""
        path = self._scratch_path(key)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _read_unit(self, path: Path, key: str) -> tuple[bool, Any]:
        try:
            doc = json.loads(path.read_text())
            ok = doc.get("fingerprint") == self.fingerprint and doc.get("key") == key and "result" in doc
        except (OSError, ValueError, AttributeError) as err:
            bad = path.with_name(path.name + ".unreadable")
            path.replace(bad)
            self.log(f"warning: unit file {path} is unreadable ({err}); moved to {bad.name} and recomputing {key!r}")
            return False, None
        if ok:
            self.unit_seconds[key] = (float(doc.get("seconds", 0.0)), doc.get("cpu_seconds"))
        return (True, doc["result"]) if ok else (False, None)

    def has_unit(self, key: str) -> bool:
        """Whether unit ``key`` is already finished in this folder under this run's settings."""
        path = self._unit_path(key)
        return path.exists() and self._read_unit(path, key)[0]

    def unit(self, key: str, fn: Callable[[], Any]) -> Any:
        """Result of ``fn()`` for this unit of work, computed once and kept in DIR/units/.

        The result must be JSON-serialisable (NumPy arrays are turned into lists). A unit that diverges is
        recorded in ``self.failed`` (with the curves it had) before the error propagates.
        """
        from ..checkpoint import clear_unit_checkpoints, unit_checkpoints
        from ..interrupt import raise_if_requested
        from ..training import DivergenceError, unit_progress

        raise_if_requested()
        path = self._unit_path(key)
        if path.exists():
            found, res = self._read_unit(path, key)
            if found:
                self.reused.append(key)
                self.finished.append((key, res))
                return res
        scratch = self._scratch_path(key)
        spent = scratch / "spent.json"  # wall and CPU seconds of the unit up to its last training checkpoint
        before = json.loads(spent.read_text()) if spent.exists() and any(scratch.glob("fit-*.npz")) else {}
        t0, cpu0 = time.time(), time.process_time()

        def so_far() -> dict[str, float]:
            return {"wall": before.get("wall", 0.0) + time.time() - t0,
                    "cpu": before.get("cpu", 0.0) + time.process_time() - cpu0}

        try:
            with unit_progress(f"{self.name} {key}" if self.progress and self.name else self.progress), \
                    unit_checkpoints(scratch, key, on_write=lambda: write_json(spent, so_far())):
                res = fn()
        except BaseException as err:
            if isinstance(err, DivergenceError):
                self.failed = {"unit": key, "status": "diverged", "message": str(err), "seed": err.seed,
                               "step": err.step, "layer": err.layer,
                               "partial_curves": partial_curves(err.history)}
            if any(scratch.glob("fit-*.npz")):  # work kept for the next invocation (its cost: spent.json)
                self.checkpointed = key
            raise
        wall, cpu = so_far().values()
        write_json(path, {"key": key, "fingerprint": self.fingerprint, "seconds": wall, "cpu_seconds": cpu,
                          "result": res})
        self.unit_seconds[key] = (wall, cpu)
        clear_unit_checkpoints(scratch)
        self.computed.append(key)
        res = json.loads(path.read_text())["result"]
        self.finished.append((key, res))
        return res


def partial_curves(hist: Any) -> dict | None:
    """The curves a diverged unit had (a ``History``: (seeds, evals) per curve; a SAM ``GridResult``: (cells,
    seeds, evals), given here per seed of the first cell), as JSON-able lists; None without any."""
    if hist is None or not getattr(hist, "samples", None):
        return None
    curves = {}
    for k in getattr(hist, "curves", {}) or {}:
        arr = hist.array(k) if hasattr(hist, "array") else np.asarray(hist.curves[k], dtype=float)
        arr = np.asarray(arr, dtype=float)
        if arr.ndim == 3:
            arr = arr[0]
        if arr.ndim == 2 and arr.shape[1] == len(hist.samples):
            curves[k] = arr.tolist()
    return {"seeds": [int(s) for s in hist.seeds], "samples": [int(n) for n in hist.samples], "curves": curves}


class RunLocked(ConfigError):
    """Another process holds the run folder."""


class RunFolderLock:
    """An exclusive ``flock`` on DIR/.lock for as long as a process writes DIR (the kernel drops it if the process
    dies, however it dies). A second process gets :class:`RunLocked` naming the holder's pid."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._fh = None

    def __enter__(self) -> "RunFolderLock":
        import fcntl

        self.folder.mkdir(parents=True, exist_ok=True)
        fh = open(self.folder / ".lock", "a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            raise RunLocked(f"{self.folder} is in use by another plasticlab process (pid {holder}); wait for it to "
                            "finish, or choose another --out") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh
        return self

    def __exit__(self, *exc: Any) -> None:
        import fcntl

        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


def default_out(name: str, quick: bool) -> Path:
    return Path("runs") / (name + ("-quick" if quick else ""))


def prepare(name: str, *, quick: bool = False, seeds: int | None = None, overrides: dict[str, Any] | None = None,
            config: dict | None = None, config_source: str = "--config") -> tuple[Experiment, Any]:
    """The experiment and its final, validated config (defaults <- quick <- config file <- seeds <- overrides).

    Raises :class:`ConfigError` (one line naming the source, the key, the value and what is allowed) before any
    work: unknown keys, unparsable values, wrong types, out-of-range values, unknown choices, bad rule strings.
    """
    exp = get_experiment(name)
    cfg = exp.config()
    sources: dict[str, str] = {}
    layers = [(quick and exp.quick, f"the --quick settings of {name}"), (config, config_source),
              (None if seeds is None else {"seeds": seeds}, "--seeds"), (overrides, "--set")]
    for layer, source in layers:
        if not layer:
            continue
        if source == "--seeds" and "seeds" not in {f.name for f in dataclasses.fields(cfg)}:
            raise ConfigError(f"--seeds {seeds}: experiment {name!r} has no 'seeds' setting")
        cfg = apply_overrides(cfg, layer, source)
        sources.update({k: source for k in layer})
    validate_config(cfg, sources, name)
    return exp, cfg


def config_clash(run_dir: Path, name: str, cdict: dict, cfg_type: type | None = None) -> str | None:
    """None if ``run_dir`` is new or holds a run of ``name`` whose result-affecting settings equal ``cdict``'s,
    else what differs (for errors). Presentation-only settings (``affects_result=False``) may differ."""
    cfg_path = Path(run_dir) / "config.json"
    if not cfg_path.exists():
        return None
    try:
        old = json.loads(cfg_path.read_text())
        if not isinstance(old, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as err:
        return f"an unreadable config.json ({err})"
    if old.get("experiment") != name:
        return f"a run of a different experiment ({old.get('experiment')!r}, not {name!r})"
    if old.get("config") == cdict:
        return None
    from ..settings import result_fields

    keys = result_fields(cfg_type) if cfg_type is not None else sorted(set(cdict) | set(old.get("config", {})))
    before = old.get("config", {})
    changed = [k for k in keys if cdict.get(k) != before.get(k)]
    if not changed:
        return None
    shown = ", ".join(f"{k}: {before.get(k)!r} -> {cdict.get(k)!r}" for k in changed[:4])
    more = f" and {len(changed) - 4} more" if len(changed) > 4 else ""
    return f"a run of {name!r} with different settings ({shown}{more})"


def _check_out(out: Path) -> None:
    """Refuse an --out that is a file or cannot be created or written, before any work."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file, not a folder; choose a folder path")
    probe = out
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise ConfigError(f"--out {out}: {probe} is a file, so the folder cannot be created there")
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {out}: {probe} is not writable")


def resume_command(name: str, out: Path, data_dir: Any, has_record: bool) -> str:
    """The command that resumes a diverged run in the same folder (keeping the seeds that finished)."""
    cmd = f"plasticlab run --config {out / 'config.json'}"
    if data_dir is not None:
        cmd += f" --data-dir {data_dir}"
    return cmd + (" --set on_divergence=record" if has_record else "")


def _rows_of(result: Any) -> list[dict]:
    if isinstance(result, dict) and isinstance(result.get("rows"), list):
        return [r for r in result["rows"] if isinstance(r, dict)]
    if isinstance(result, list) and all(isinstance(r, dict) for r in result):
        return list(result)
    return []


def _write_partial(out: Path, name: str, cdict: dict, ctx: RunContext, err: Exception, resume: str,
                   seconds: float) -> None:
    """After a divergence: results.json/.csv from every finished unit plus the failed one, and a plot of its
    partial curves, so nothing that finished is lost."""
    rows = [dict(r, unit=label) for label, res in ctx.finished for r in _rows_of(res)]
    failed = dict(ctx.failed or {"unit": None, "status": "diverged", "message": str(err)})
    failed["resume"] = resume
    rows.append({"unit": failed["unit"], "status": "diverged", "seed": failed.get("seed"),
                 "step": failed.get("step"), "layer": failed.get("layer")})
    payload = {"experiment": name, "config": cdict, "run_status": "diverged", "rows": rows, "failed_unit": failed,
               "finished_units": [label for label, _ in ctx.finished], "resume": resume,
               "meta": {"seconds": seconds, "units_reused": len(ctx.reused), "units_computed": len(ctx.computed)}}
    write_json(out / "results.json", payload)
    import pandas as pd

    pd.DataFrame(rows).to_csv(out / "results.csv", index=False)
    part = failed.get("partial_curves")
    if part and part.get("curves"):
        from ..plotting import figure, save

        keys = [k for k in part["curves"] if k.startswith("eval_")] or list(part["curves"])
        fig, axes = figure(1, len(keys), size=(4, 3))
        for ax, k in zip(axes[0], keys):
            arr = np.asarray(part["curves"][k], dtype=float)
            for seed, curve in zip(part["seeds"], arr):
                ax.plot(part["samples"], curve, label=f"seed {seed}")
            ax.set_xlabel("samples")
            ax.set_ylabel(k)
        axes[0][0].legend(fontsize=7)
        fig.suptitle(f"{failed['unit']}: curves up to the divergence (step {failed.get('step')}, "
                     f"seed {failed.get('seed')})", fontsize=9)
        save(fig, out / "divergence.png")


def run_experiment(name: str, out: str | Path | None = None, *, quick: bool = False, seeds: int | None = None,
                   overrides: dict[str, Any] | None = None, data_dir: str | Path | None = None,
                   config: dict | None = None, progress: bool = True, console: Any = None, plots: bool = True,
                   config_source: str = "--config") -> dict:
    """Run (or resume) one experiment into ``out`` and return the content of results.json.

    Every setting is validated and the folder checked before anything is written. While it runs, the folder is
    locked (:class:`RunFolderLock`). If a unit diverges, results.json/.csv still hold every finished unit, the
    failed unit's status and partial curves, and the command that resumes it; the DivergenceError then
    propagates with that command in its message.
    """
    from ..training import DivergenceError

    exp, cfg = prepare(name, quick=quick, seeds=seeds, overrides=overrides, config=config,
                       config_source=config_source)
    out = Path(out) if out is not None else default_out(name, quick)
    _check_out(out)
    cdict = config_dict(cfg)
    clash = config_clash(out, name, cdict, exp.config)
    if clash:
        raise ConfigError(f"{out} holds {clash}; choose another --out, or delete the folder to start over")
    try:
        lock = RunFolderLock(out).__enter__()
    except OSError as err:
        raise ConfigError(f"--out {out}: cannot create the run folder ({err.strerror or err})") from None
    try:
        clash = config_clash(out, name, cdict, exp.config)  # again, now that no other process can write
        if clash:
            raise ConfigError(f"{out} holds {clash}; choose another --out, or delete the folder to start over")
        write_json(out / "config.json", {"experiment": name, "quick": quick, "config": cdict,
                                         "environment": environment_info()})
        ctx = RunContext(out, Path(data_dir) if data_dir is not None else None, quick, progress, console,
                         fingerprint(exp.units_of or name, cdict, exp.config, exp.results_version), name)
        t0, cpu0 = time.time(), time.process_time()
        try:
            result = exp.run(cfg, ctx)
        except DivergenceError as err:
            resume = resume_command(name, out, data_dir, "on_divergence" in cdict)
            _write_partial(out, name, cdict, ctx, err, resume, time.time() - t0)
            tail = (f" Everything that finished ({len(ctx.finished)} unit(s)) and the partial curves are in "
                    f"{out / 'results.json'}.")
            tail += (f" To keep the seeds that finished and resume in this folder: {resume}"
                     if "on_divergence" in cdict else " Change the setting in a new folder (--out) to rerun.")
            raise DivergenceError(str(err) + tail, step=err.step, layer=err.layer, seed=err.seed,
                                  history=err.history) from None
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM under the command line: say what is kept and how to go on
            ctx.log(f"interrupted: {len(ctx.computed)} unit(s) finished in this invocation, {len(ctx.finished)} in all, "
                    f"are kept in {out / 'units'}; the same command, or "
                    f"`{resume_command(name, out, data_dir, False)}`, resumes from them"
                    + (f" (and unit {ctx.checkpointed!r} from its training checkpoint in {out / 'scratch'})"
                       if ctx.checkpointed else ""), style="yellow")
            raise
        if "rows" not in result:
            raise RuntimeError(f"experiment {name!r} returned no 'rows'")
        from ..claims import claims_for, judge_all

        payload = {"experiment": name, "config": cdict, **result, "run_status": "finished",
                   "meta": {"seconds": time.time() - t0, "cpu_seconds": time.process_time() - cpu0,
                            "units_reused": len(ctx.reused), "units_computed": len(ctx.computed),
                            "reused_units": list(ctx.reused), **ctx.units_cost()}}
        if claims_for(name):  # the paper's claims judged on this run's measurements
            payload["claims"] = judge_all(name, result.get("measurements"), quick=quick,
                                          stand_in=result.get("stand_in"))
        write_json(out / "results.json", payload)
        payload = json.loads((out / "results.json").read_text())
        if payload["rows"]:
            import pandas as pd

            pd.DataFrame(payload["rows"]).to_csv(out / "results.csv", index=False)
        (out / "divergence.png").unlink(missing_ok=True)
        if plots and exp.plot is not None:
            import matplotlib

            matplotlib.use("Agg")
            exp.plot(payload, out)
        return payload
    finally:
        lock.__exit__()
