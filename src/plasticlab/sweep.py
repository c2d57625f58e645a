"""Parameter sweeps over any registered experiment, locally in parallel processes or on a Ray cluster.

A sweep is a list of *cells*; each cell is a dict of config overrides and runs as one
``run_experiment(...)`` into ``OUT/cells/<cell-id>/`` (for example ``OUT/cells/lr=0.01,seeds=2``)::

    from plasticlab.sweep import run_sweep
    table = run_sweep("quickstart", {"lr": [0.01, 0.02], "rules": [["bp"], ["kp"]]}, "runs/my-sweep", quick=True)

A grid given as ``dict[key, list]`` is the cartesian product of its lists; a ``list[dict]`` is used as is.
Results of all cells are gathered into one table (every results row plus the cell's override columns):
``OUT/sweep.csv`` (and ``OUT/sweep.parquet`` when pyarrow is installed); ``OUT/sweep.json`` records the grid
and each cell's status.

Resuming: a cell whose ``results.json`` exists (and records no divergence) is not run again, and an unfinished cell resumes from the
unit cache of its run directory, so rerunning the same sweep after a crash or Ctrl-C loses nothing finished.
A failing cell does not stop the others; once all have finished a :class:`SweepError` names the failing
cells with their tracebacks (also in ``OUT/cells/<cell-id>/error.txt``).

Worker processes end with the sweep, however it ends: Ctrl-C stops them, and if the sweep process is killed
(even with SIGKILL) each local worker ends within about a second (Linux ``PR_SET_PDEATHSIG`` plus a watchdog
thread polling the parent pid). Every file is written atomically (temporary file + rename), so a killed
sweep leaves no half-written ``results.json``, unit or table; at most a stray ``*.tmp<pid>`` file.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing
import os
import re
import signal
import sys
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd
from rich.markup import escape

from .settings import _show
from .experiments.base import (REGISTRY, ConfigError, Experiment, RunFolderLock, split_items, config_clash,
                               config_dict, prepare, write_json)

EXECUTORS = ("local", "ray", "serial")

__all__ = ["Cell", "SweepError", "EXECUTORS", "run_sweep", "expand_grid", "parse_sweep", "load_grid_file",
           "cell_id", "combine_cells", "load_sweep_table", "summarize_sweep"]


class SweepError(RuntimeError):
    """One or more cells failed; ``failures`` maps cell id -> traceback, ``table`` holds the finished cells."""

    def __init__(self, failures: dict[str, str], table: pd.DataFrame, out: Path):
        self.failures, self.table, self.out = failures, table, Path(out)
        #: cell id -> its error.txt (the path ``_run_cell`` wrote), None where the file is missing
        self.error_files: dict[str, Path | None] = {}
        lines = [f"{len(failures)} sweep cell(s) failed (the other cells finished; rerun the same command to "
                 "retry only the failed cells):"]
        for cid, tb in failures.items():
            last = [ln for ln in tb.strip().splitlines() if ln.strip()][-1:] or ["?"]
            path = self.out / "cells" / _dirname(cid) / "error.txt"
            self.error_files[cid] = path if path.is_file() else None
            where = f"full traceback: {path}" if path.is_file() else "traceback not saved: error.txt is missing"
            lines.append(f"  {cid}: {last[0]}  ({where})")
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class Cell:
    """One point of the grid: its stable id and its config overrides."""

    id: str
    overrides: dict

    @property
    def dirname(self) -> str:
        return _dirname(self.id)


# ----------------------------------------------------------------------------- grids

def parse_sweep(items: Iterable[str]) -> dict[str, list[str]]:
    """``['lr=0.01,0.1', 'rules=[bp,fa],[kp]']`` -> ``{'lr': ['0.01', '0.1'], 'rules': ['[bp,fa]', '[kp]']}``.

    Values are separated by commas; brackets group a value that itself holds commas (tuple settings).
    The strings are parsed by the config field's type when the cell runs.
    """
    grid: dict[str, list[str]] = {}
    for it in items:
        if "=" not in it:
            raise ConfigError(f"--sweep expects key=v1,v2,..., got {it!r} (example: --sweep lr=0.01,0.02)")
        key, vals = (s.strip() for s in it.split("=", 1))
        values = [v for v in split_items(vals) if v]  # commas outside brackets and quotes separate values
        if not key or not values:
            raise ConfigError(f"--sweep {it!r}: give a key and at least one value (example: --sweep lr=0.01,0.02)")
        if key in grid:
            raise ConfigError(f"--sweep {key!r} given twice; list all its values once: --sweep {key}=v1,v2")
        grid[key] = values
    return grid


def expand_grid(grid: dict[str, Sequence] | Sequence[dict] | None) -> list[dict]:
    """A dict of lists -> the cartesian product (first key varies slowest); a list of dicts -> itself."""
    if grid is None:
        return [{}]
    if isinstance(grid, dict):
        for k, v in grid.items():
            if isinstance(v, (str, bytes)) or not isinstance(v, Sequence):
                raise ConfigError(f"grid key {k!r} must map to a list of values, got {v!r}")
            if len(v) == 0:
                raise ConfigError(f"grid key {k!r} has no values")
        keys = list(grid)
        return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]
    cells = list(grid)
    for c in cells:
        if not isinstance(c, dict):
            raise ConfigError(f"a list grid must hold dicts of overrides, got {c!r}")
    return [dict(c) for c in cells] or [{}]


def combine_cells(a: list[dict], b: list[dict]) -> list[dict]:
    """Every cell of ``a`` merged with every cell of ``b`` (a key may not appear in both)."""
    out = []
    for x in a:
        for y in b:
            both = set(x) & set(y)
            if both:
                raise ConfigError(f"setting(s) {', '.join(sorted(both))} swept twice (in --grid and --sweep)")
            out.append({**x, **y})
    return out


def load_grid_file(path: str | Path) -> tuple[list[dict], dict]:
    """Read a TOML sweep file -> (cells, base overrides).

    ``[grid]`` (key = [values...]) gives the cartesian product; ``[[cells]]`` tables give explicit cells; both
    together give every cell combined with every grid point. An optional ``[set]`` table holds overrides
    shared by all cells::

        [set]
        epochs = 0.5
        [grid]
        lr = [0.01, 0.02]
        rules = [["bp"], ["kp"]]
    """
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise ConfigError("reading a TOML grid on Python 3.10 needs tomli: pip install tomli") from None
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"grid file {path} does not exist") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"grid file {path} is not valid TOML: {err}") from None
    unknown = set(doc) - {"grid", "cells", "set", "experiment"}
    if unknown:
        raise ConfigError(f"grid file {path}: unknown top-level entries {sorted(unknown)}; "
                          "use [grid] (product), [[cells]] (list) and [set] (shared overrides)")
    if "grid" not in doc and "cells" not in doc:
        raise ConfigError(f"grid file {path} has neither [grid] nor [[cells]]")
    cells = expand_grid(doc["cells"]) if "cells" in doc else [{}]
    if "grid" in doc:
        cells = combine_cells(cells, expand_grid(doc["grid"]))
    return cells, dict(doc.get("set", {}))


def cell_id(overrides: dict) -> str:
    """Readable, stable id of a cell: ``lr=0.01,seeds=2`` (keys in grid order); ``default`` for no override."""
    if not overrides:
        return "default"
    return ",".join(f"{k}={_show(v, quote=False)}" for k, v in overrides.items())


def _dirname(cid: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.=,+\[\]-]+", "_", cid)
    if safe != cid or len(safe) > 120:
        safe = f"{safe[:100]}-{hashlib.sha1(cid.encode()).hexdigest()[:8]}"
    return safe


def _normalize(v: Any) -> Any:
    """TOML/JSON lists -> tuples, so a tuple config field stays a tuple."""
    if isinstance(v, list):
        return tuple(_normalize(x) for x in v)
    return v


# ----------------------------------------------------------------------------- workers

def _ensure_registered(name: str, exp: Experiment | None) -> None:
    from .experiments import discover

    discover()
    if name not in REGISTRY and exp is not None:
        REGISTRY[name] = exp


def _run_cell(name: str, exp: Experiment | None, out: str, quick: bool, seeds: int | None, overrides: dict,
              data_dir: str | None, return_files: bool = False, plots: bool = True) -> dict:
    """Run one cell (in a worker process); never raises: failures come back as a traceback string.

    With ``return_files`` the cell folder's files come back too (``{"files": {relpath: bytes}}``), so a
    cell run on another machine of a Ray cluster lands in the driver's ``out`` folder.
    """
    import matplotlib

    matplotlib.use("Agg")
    from . import compile_cache
    from .experiments.base import release_compiled_code, run_experiment

    if os.environ.get(compile_cache.ENV):  # a sweep started by the command line shares its compilation cache
        compile_cache.enable()
    cell_dir = Path(out)
    t0 = time.time()
    try:
        _ensure_registered(name, exp)
        run_experiment(name, cell_dir, quick=quick, seeds=seeds, overrides=overrides, data_dir=data_dir,
                       progress=False, console=None, plots=plots)
    except Exception:  # noqa: BLE001 - reported to the parent with the traceback
        tb = traceback.format_exc()
        _write_error(cell_dir, tb)
        res = {"ok": False, "error": tb, "seconds": time.time() - t0}
    else:
        (cell_dir / "error.txt").unlink(missing_ok=True)
        res = {"ok": True, "seconds": time.time() - t0}
    finally:
        release_compiled_code()  # a worker runs many cells
    if return_files:  # finished files only: no temporary files, no lock of this machine's run folder
        res["files"] = {p.relative_to(cell_dir).as_posix(): p.read_bytes()
                        for p in sorted(cell_dir.rglob("*"))
                        if p.is_file() and ".tmp" not in p.name and p.name != ".lock"}
    return res


def _write_bytes(path: Path, data: bytes) -> None:
    """Atomic write (temporary file + rename); the temporary file is removed if the write fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_error(cell_dir: str | Path, tb: str) -> None:
    """A failed cell's traceback -> CELL/error.txt (the path :class:`SweepError` prints)."""
    _write_bytes(Path(cell_dir) / "error.txt", tb.encode())


def _write_back(cell_dir: Path, files: dict[str, bytes]) -> None:
    """Write the files a remote worker sent back that this machine lacks (results.json last)."""
    for rel in sorted(files, key=lambda r: r == "results.json"):
        path = cell_dir / rel
        if not path.exists() or rel == "error.txt":
            _write_bytes(path, files[rel])


# ----------------------------------------------------------------------------- the sweep

def _cell_finished(cell_dir: Path) -> bool:
    """A cell is finished when its results.json exists and does not record a divergence (a diverged cell's
    results.json keeps what finished, but the cell is retried)."""
    path = cell_dir / "results.json"
    if not path.exists():
        return False
    try:
        return json.loads(path.read_text()).get("run_status") != "diverged"
    except (OSError, ValueError, AttributeError):
        return False


def _check_cell_dir(cell_dir: Path, name: str, cdict: dict, cid: str, cfg_type: type | None = None) -> None:
    clash = config_clash(cell_dir, name, cdict, cfg_type)
    if clash:
        raise ConfigError(f"cell {cid}: {cell_dir} holds {clash}; the shared settings (--quick, --seeds, --set) "
                          "must match the earlier sweep in this folder: choose another --out, or delete the "
                          "folder to start over")


def _table_value(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v)
    if isinstance(v, dict):
        return json.dumps(v)
    return v


def _gather(cells: list[Cell], out: Path) -> pd.DataFrame:
    """Every finished cell's rows, in grid order, after the cell id and its override columns."""
    frames = []
    for cell in cells:
        res_path = out / "cells" / cell.dirname / "results.json"
        if not _cell_finished(res_path.parent):
            continue
        res = json.loads(res_path.read_text())
        rows = pd.DataFrame(res.get("rows") or [{}])
        cols = {"cell" if "cell" not in rows.columns else "sweep.cell": cell.id}
        for key in cell.overrides:
            col = key if key not in rows.columns else f"sweep.{key}"
            cols[col] = _table_value(res["config"].get(key, cell.overrides[key]))
        front = pd.DataFrame({k: [v] * len(rows) for k, v in cols.items()})
        frames.append(pd.concat([front, rows.reset_index(drop=True)], axis=1))
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)


def _write_tables(df: pd.DataFrame, out: Path) -> None:
    tmp = out / f"sweep.csv.tmp{os.getpid()}"
    try:
        df.to_csv(tmp, index=False)
        tmp.replace(out / "sweep.csv")
    finally:
        tmp.unlink(missing_ok=True)
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return
    try:
        tmp = out / f"sweep.parquet.tmp{os.getpid()}"
        df.to_parquet(tmp, index=False)
        tmp.replace(out / "sweep.parquet")
    except Exception:  # mixed-type columns that parquet cannot store: the CSV is the reference table
        (out / f"sweep.parquet.tmp{os.getpid()}").unlink(missing_ok=True)
        (out / "sweep.parquet").unlink(missing_ok=True)  # never leave a stale table next to the new CSV


def load_sweep_table(out: str | Path) -> pd.DataFrame:
    """The gathered table of a sweep folder (``OUT/sweep.csv``)."""
    path = Path(out) / "sweep.csv"
    if not path.exists():
        raise ConfigError(f"{out} has no sweep.csv; run `plasticlab sweep EXPERIMENT --out {out} ...` first")
    return pd.read_csv(path)


def summarize_sweep(df: pd.DataFrame, keys: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean of every numeric result column per cell (and per text column such as 'rule'), with the row count n."""
    if df.empty:
        return df
    skip = {"seed", "seeds"}
    keys = list(keys) if keys is not None else []
    text = [c for c in df.columns if c not in keys and c not in ("cell", "sweep.cell")
            and not pd.api.types.is_numeric_dtype(df[c])]
    by = [c for c in ("cell", "sweep.cell") if c in df.columns] + keys + text
    num = [c for c in df.columns if c not in by and c not in skip and pd.api.types.is_numeric_dtype(df[c])]
    g = df.groupby(by, sort=False, dropna=False)
    res = g[num].mean() if num else g.size().to_frame("n").iloc[:, :0]
    res.insert(0, "n" if "n" not in res.columns else "n_rows", g.size())
    return res.reset_index()


def _prepare_cells(name: str, cells_in: list[dict], *, quick: bool, seeds: int | None,
                   base: dict) -> list[tuple[Cell, dict, dict]]:
    """(cell, all its overrides, its final config dict) per cell; bad keys or values raise ConfigError now."""
    seen: dict[str, dict] = {}
    prepared = []
    for raw in cells_in:
        ov = {k: _normalize(v) for k, v in raw.items()}
        cid = cell_id(ov)
        if cid in seen:
            raise ConfigError(f"cell {cid} appears twice in the grid")
        both = set(ov) & set(base)
        if both:
            raise ConfigError(f"setting(s) {', '.join(sorted(both))} given both as --set and in the sweep grid")
        seen[cid] = ov
        merged = {**base, **ov}
        try:  # validates keys and values
            _, cfg = prepare(name, quick=quick, seeds=seeds, overrides=merged)
        except ConfigError as err:
            if "unknown experiment" in str(err):
                raise
            raise ConfigError(f"sweep cell {cid}: {err}") from None
        prepared.append((Cell(cid, ov), merged, config_dict(cfg)))
    return prepared


def run_sweep(experiment: str, grid: dict[str, list] | list[dict] | None, out: str | Path, *, quick: bool = False,
              seeds: int | None = None, base_overrides: dict[str, Any] | None = None,
              data_dir: str | Path | None = None, executor: str = "local", workers: int | None = None,
              address: str | None = None, console: Any = None, plots: bool = True) -> pd.DataFrame:
    """Run every cell of ``grid`` as one ``run_experiment`` into ``out/cells/<cell-id>/``; return the table.

    ``executor``: ``"local"`` (a pool of ``workers`` spawned processes, default ``min(cpu_count, 2)``),
    ``"ray"`` (``ray.init(address=address)``; a local Ray instance with ``workers`` CPUs when ``address`` is
    None) or ``"serial"`` (one after the other in this process, for debugging). Finished cells are reused.
    ``plots=False`` skips each cell's figures. ``console`` (a rich Console) gets one line per cell; cell ids
    are printed verbatim (no rich markup).
    Raises :class:`SweepError` after all other cells finished when any cell failed, and ``ConfigError`` for
    an unknown experiment, setting or value before anything runs.
    """
    from .experiments import get_experiment

    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {executor!r}; choose one of: {', '.join(EXECUTORS)}")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    exp = get_experiment(experiment)
    out = Path(out)
    base = dict(base_overrides or {})
    prepared = _prepare_cells(experiment, expand_grid(grid), quick=quick, seeds=seeds, base=base)
    for cell, _, cdict in prepared:
        _check_cell_dir(out / "cells" / cell.dirname, experiment, cdict, cell.id, exp.config)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file, not a folder; choose a folder path")
    with RunFolderLock(out):  # one sweep process per folder; each cell's run also locks its own folder
        return _run_cells(experiment, exp, grid, out, prepared, quick=quick, seeds=seeds, base=base,
                          data_dir=data_dir, executor=executor, workers=workers, address=address, console=console,
                          plots=plots)


def _run_cells(experiment: str, exp: Experiment, grid: Any, out: Path, prepared: list, *, quick: bool,
               seeds: int | None, base: dict, data_dir: Any, executor: str, workers: int | None, address: str | None,
               console: Any, plots: bool) -> pd.DataFrame:
    """The body of :func:`run_sweep`, run while the sweep folder is locked."""
    cells = [p[0] for p in prepared]

    status: dict[str, dict] = {}
    todo = []
    for cell, merged, _ in prepared:
        if _cell_finished(out / "cells" / cell.dirname):
            status[cell.id] = {"status": "reused"}
        else:
            status[cell.id] = {"status": "pending"}
            todo.append((cell, merged))

    def save_status() -> None:
        write_json(out / "sweep.json", {
            "experiment": experiment, "quick": quick, "seeds": seeds, "base_overrides": base,
            "grid": grid if isinstance(grid, dict) else list(grid or []), "executor": executor,
            "cells": [{"id": c.id, "dir": f"cells/{c.dirname}", "overrides": c.overrides, **status[c.id]}
                      for c in cells]})

    def log(msg: str) -> None:  # rich markup: text from cell ids, paths and errors goes through escape()
        if console is not None:
            console.print(msg, soft_wrap=True)

    out.mkdir(parents=True, exist_ok=True)
    save_status()
    n_reused = len(cells) - len(todo)
    log(escape(f"sweep {experiment}: {len(cells)} cells ({n_reused} already finished, {len(todo)} to run, "
               f"executor {executor}) -> {out}"))
    failures: dict[str, str] = {}
    done_count = [0]

    def finished(cell: Cell, res: dict) -> None:
        done_count[0] += 1
        if res["ok"]:
            (out / "cells" / cell.dirname / "error.txt").unlink(missing_ok=True)
            status[cell.id] = {"status": "done", "seconds": round(res["seconds"], 2)}
            log(escape(f"  [{done_count[0]}/{len(todo)}] {cell.id}: done in {res['seconds']:.1f} s"))
        else:
            status[cell.id] = {"status": "failed", "seconds": round(res["seconds"], 2),
                               "error": f"cells/{cell.dirname}/error.txt"}
            failures[cell.id] = res["error"]
            last = [ln for ln in res["error"].strip().splitlines() if ln.strip()][-1:] or ["?"]
            log(escape(f"  [{done_count[0]}/{len(todo)}] {cell.id}: ") + "[red]FAILED[/red] " + escape(last[0]))
        save_status()

    args = [(experiment, cell, str(out / "cells" / cell.dirname), quick, seeds, merged,
             str(data_dir) if data_dir is not None else None) for cell, merged in todo]
    if todo:
        # experiments outside plasticlab.experiments (e.g. registered by a script) travel to the workers
        ship = None if _discoverable(experiment) else exp
        if executor == "serial":
            for name, cell, cdir, q, s, ov, dd in args:
                finished(cell, _run_cell(name, ship, cdir, q, s, ov, dd, plots=plots))
        elif executor == "local":
            _run_local(args, ship, workers, finished, plots)
        else:
            _run_ray(args, ship, workers, address, finished, plots)

    table = _gather(cells, out)
    _write_tables(table, out)
    save_status()
    if failures:
        raise SweepError(failures, table, out)
    return table


def _discoverable(name: str) -> bool:
    exp = REGISTRY.get(name)
    mod = getattr(exp.run, "__module__", "") if exp is not None else ""
    return mod.startswith("plasticlab.experiments.")


def _default_workers(workers: int | None, n: int) -> int:
    if workers is None:
        workers = min(os.cpu_count() or 1, 2)
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    return max(1, min(workers, n))


def _run_local(args: list, ship: Experiment | None, workers: int | None, finished, plots: bool = True) -> None:
    import pickle

    if ship is not None:
        try:
            pickle.dumps(ship)
        except Exception as err:
            raise ConfigError(f"experiment {ship.name!r} cannot be sent to worker processes ({err}); define its "
                              "config class, run and plot functions at module level, or use executor='serial'") \
                from None
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=_default_workers(workers, len(args)), mp_context=ctx,
                               initializer=_init_worker, initargs=(os.getpid(),))
    futures: dict[Future, Cell] = {}
    try:
        for name, cell, cdir, q, s, ov, dd in args:
            futures[pool.submit(_run_cell, name, ship, cdir, q, s, ov, dd, False, plots)] = cell
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                try:
                    res = fut.result()
                except BaseException:  # noqa: BLE001 - a worker process died (e.g. killed for memory)
                    res = {"ok": False, "error": traceback.format_exc(), "seconds": 0.0}
                    _write_error(next(a[2] for a in args if a[1] is futures[fut]), res["error"])
                finished(futures[fut], res)
    except KeyboardInterrupt:  # stop the workers now; finished cells and units are on disk already
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _init_worker(parent_pid: int) -> None:
    """Pool initializer: leave Ctrl-C to the parent, and end when the parent ends, however it ends."""
    _ignore_sigint()
    _exit_with_parent(parent_pid)


def _ignore_sigint() -> None:
    """Workers leave Ctrl-C to the parent, which stops them (so no half-handled interrupt in a worker)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _exit_with_parent(parent_pid: int, poll_s: float = 0.5, pdeathsig: bool = True) -> None:
    """End this (worker) process when process ``parent_pid``, its parent, dies, even of SIGKILL.

    On Linux the kernel sends SIGKILL on the parent's death (``PR_SET_PDEATHSIG``; strictly, on the end of
    the parent *thread* that started this process: the sweep's thread, which outlives the pool). Everywhere,
    a daemon thread also polls ``os.getppid()`` every ``poll_s`` seconds and calls ``os._exit`` once this
    process was re-parented; that also covers a parent that died before ``prctl`` ran. Files are written
    atomically, so dying at any point leaves at most a stray temporary file. (``pdeathsig=False``: the
    watchdog thread alone, as on other systems; for tests.)
    """
    if pdeathsig and sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: the watchdog thread alone
            pass
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="plasticlab-exit-with-parent", daemon=True).start()


def _run_ray(args: list, ship: Experiment | None, workers: int | None, address: str | None, finished,
             plots: bool = True) -> None:
    """Run the cells as Ray tasks; each returns its cell folder's files, written here (results.json last).

    If this process is killed: a local Ray that the sweep started (``address=None``) goes with it, since Ray
    starts its raylet, GCS and other processes fate-shared with the driver (``PR_SET_PDEATHSIG`` on Linux) and
    its workers end with their raylet. On a cluster (``address`` given) Ray ends the dead driver's job and
    with it the tasks of this sweep. Files on this machine are written atomically either way.
    """
    try:
        import ray
    except ImportError:
        raise ConfigError('executor "ray" needs Ray: pip install "plasticlab[ray]"') from None
    started = False
    if not ray.is_initialized():
        if address is None:  # a local Ray instance just for this sweep
            ray.init(address="local", num_cpus=_default_workers(workers, len(args)), include_dashboard=False,
                     log_to_driver=False)
        else:
            try:
                ray.init(address=address, log_to_driver=False)
            except ConnectionError as err:
                raise ConfigError(f"cannot connect to the Ray cluster at {address!r} ({err}); on a node of the "
                                  "cluster (started with `ray start --head`) use --address auto, or leave "
                                  "--address out to run on a local Ray") from None
        started = True
    refs: dict = {}
    try:
        if ship is not None:  # send a script-registered experiment's module by value
            mod = sys.modules.get(ship.run.__module__)
            if mod is not None and mod.__name__ != "__main__":
                ray.cloudpickle.register_pickle_by_value(mod)
        remote = ray.remote(num_cpus=1, max_retries=0)(_run_cell)
        refs = {remote.remote(name, ship, cdir, q, s, ov, dd, True, plots): (cell, cdir)
                for name, cell, cdir, q, s, ov, dd in args}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                cell, cdir = refs[ref]
                try:
                    res = ray.get(ref)
                except Exception:  # noqa: BLE001 - the worker died
                    res = {"ok": False, "error": traceback.format_exc(), "seconds": 0.0}
                    _write_error(cdir, res["error"])
                _write_back(Path(cdir), res.pop("files", {}))
                finished(cell, res)
    except KeyboardInterrupt:
        for ref in refs:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started:
            ray.shutdown()
