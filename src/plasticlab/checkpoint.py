"""Resumable ``fit`` calls: the state of a training run inside a unit, kept on disk while it trains.

A run folder keeps every *finished* unit (``RunContext.unit``); a unit that trains for hours would still start
over after an interruption. ``fit(checkpoint=...)`` closes that gap: at most every ``every`` seconds, after a
compiled call, it writes one ``.npz`` file holding

    the step reached, the batched ``TrainState`` (weights, rule and optimizer state, keys of every seed and
    cell), the step metrics of the evaluation interval so far, the divergence flags, the ``History`` (curves,
    logged steps, divergence records) and the state of ``until`` (``state_dict`` / ``load_state_dict``),

and once more when the run ends or is interrupted (Ctrl-C, SIGTERM). A later identical call resumes from that
step and returns the same numbers as an uninterrupted run, bit for bit (the data order and the noise keys are
functions of the seed and the global step; the initial state of ``keep_init`` is drawn again from the seeds).
A file written for another call (other seeds, cells, steps, evaluation points, shapes or data: its
``signature``) is ignored with a warning and the run starts over.

Inside ``RunContext.unit`` (``unit_checkpoints``), ``fit(checkpoint=True)`` takes the next file of the unit's
scratch folder (``fit-0.npz``, ``fit-1.npz``, ... in call order; the folder is keyed by the run's settings like
the unit's own file), and the files are deleted once the unit is written. Only calls whose ``callback``,
``on_eval`` and ``evaluate`` keep no state between evaluations may checkpoint (their state is not saved).
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import io
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

CHECKPOINT_SECONDS = 60.0  # the longest a resumed run can lose (plus one compiled call)

_SCOPE: contextvars.ContextVar[dict | None] = contextvars.ContextVar("plasticlab_unit_checkpoints", default=None)


@contextlib.contextmanager
def unit_checkpoints(folder: Path | None, unit: str = "", on_write: Callable[[], None] | None = None):
    """Inside this block, ``fit(checkpoint=True)`` keeps its resumable state in ``folder`` (``fit-<n>.npz`` for
    the n-th such call, counted from 0; the files name ``unit``) and calls ``on_write()`` after each file is
    written (``RunContext.unit``: the unit's time so far, so a resumed unit's cost counts the work it kept even
    when its process was killed). ``RunContext.unit`` opens one around every unit."""
    token = _SCOPE.set(None if folder is None else {"folder": Path(folder), "count": 0, "unit": unit,
                                                    "on_write": on_write})
    try:
        yield
    finally:
        _SCOPE.reset(token)


def checkpoint_path(checkpoint: bool | str | Path | None) -> tuple[Path | None, dict]:
    """The file of a ``fit(checkpoint=...)`` call and the ``FitCheckpoint`` options of its unit (``unit``,
    ``on_write``): a path as given (no unit); True: the next file of the enclosing ``unit_checkpoints`` (None
    outside one); False / None: none."""
    if checkpoint is None or checkpoint is False:
        return None, {}
    if checkpoint is True:
        scope = _SCOPE.get()
        if scope is None:
            return None, {}
        scope["count"] += 1
        return scope["folder"] / f"fit-{scope['count'] - 1}.npz", {"unit": scope["unit"],
                                                                   "on_write": scope["on_write"]}
    return Path(checkpoint), {}


def read_meta(path: Path) -> dict | None:
    """The description of a checkpoint file (step, total_steps, unit, written, samples, ...), None if unreadable."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return json.loads(str(z["meta"]))
    except (OSError, ValueError, KeyError):
        return None


def clear_unit_checkpoints(folder: Path) -> None:
    """Delete the ``fit`` checkpoints of a finished unit (and its scratch folder when that leaves it empty)."""
    for f in [*folder.glob("fit-*.npz"), folder / "spent.json"]:
        f.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.rmdir()


def signature(**parts: Any) -> str:
    """A digest of what makes a ``fit`` call's numbers: arrays by their shape, dtype and bytes, the rest by
    ``repr``."""
    h = hashlib.sha256()
    for name in sorted(parts):
        h.update(name.encode())
        for leaf in jax.tree.leaves(parts[name]):
            if isinstance(leaf, (np.ndarray, jax.Array)):
                a = np.ascontiguousarray(np.asarray(leaf))
                h.update(f"{a.shape}{a.dtype}".encode())
                h.update(a.tobytes())
            else:
                h.update(repr(leaf).encode())
    return h.hexdigest()


def _flat(tree: dict, prefix: str) -> dict[str, np.ndarray]:
    """Nested dicts of arrays as {"prefix/a/b": array}."""
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}/{k}"))
        else:
            out[f"{prefix}/{k}"] = np.asarray(v)
    return out


def _nest(flat: dict[str, np.ndarray]) -> dict:
    """The inverse of ``_flat`` (without the prefix)."""
    out: dict = {}
    for path, v in flat.items():
        *parents, leaf = path.split("/")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = v
    return out


class FitCheckpoint:
    """One ``fit`` call's resumable state in ``path`` (see the module docstring)."""

    def __init__(self, path: Path, signature: str, every: float = CHECKPOINT_SECONDS, total_steps: int = 0,
                 unit: str = "", on_write: Callable[[], None] | None = None) -> None:
        self.path, self.signature, self.every = Path(path), signature, float(every)
        self.total_steps, self.unit = int(total_steps), unit  # for ``plasticlab status``
        self.on_write = on_write
        self.last_write = self.started = time.monotonic()
        self.earlier_wall = 0.0  # wall seconds this call trained in earlier invocations (from the file it resumed)
        self.wall_from = 0  # the step from which call_wall counts (a file of an older version kept no wall)
        self.pending: dict | None = None  # the latest point offered and not yet written

    def offer(self, state: Any, step: int, outs: list, bad: np.ndarray | None, hist: Any, until: Any,
              finished: bool = False) -> None:
        """The run reached ``step`` after a compiled call: keep it, and write it when ``every`` seconds have
        passed since the last write (always when ``finished``). ``hist`` may be appended to later: the lengths
        of its lists are noted now."""
        self.pending = {"state": state, "step": int(step), "outs": list(outs), "finished": bool(finished),
                        "bad": None if bad is None else np.array(bad), "hist": hist,
                        "counts": (len(hist.samples), len(hist.log_steps),
                                   {k: len(v) for k, v in hist.curves.items()},
                                   {k: len(v) for k, v in hist.logs.items()}, len(hist.divergences)),
                        "diverged": list(hist.diverged),
                        "until": dict(until.state_dict()) if hasattr(until, "state_dict") else {}}
        if finished or time.monotonic() - self.last_write >= self.every:
            self.flush()

    def flush(self) -> None:
        """Write the pending point (e.g. on an interruption), atomically: a crash while writing keeps the
        previous file."""
        p, self.pending = self.pending, None
        if p is None:
            return
        hist = p["hist"]
        n_samples, n_logs, n_curves, n_log_lists, n_div = p["counts"]
        arrays = {f"state/{i}": np.asarray(a) for i, a in enumerate(jax.tree.leaves(p["state"]))}
        for j, out in enumerate(p["outs"]):
            arrays |= _flat(out, f"outs/{j}")
        for k, n in n_curves.items():
            arrays |= {f"curve/{k}/{j}": np.asarray(v) for j, v in enumerate(hist.curves[k][:n])}
        for k, n in n_log_lists.items():
            arrays |= {f"log/{k}/{j}": np.asarray(v) for j, v in enumerate(hist.logs[k][:n])}
        if p["bad"] is not None:
            arrays["bad"] = p["bad"]
        arrays |= {f"until/{k}": np.asarray(v) for k, v in p["until"].items() if v is not None}
        meta = {"signature": self.signature, "step": p["step"], "finished": p["finished"],
                "total_steps": self.total_steps, "unit": self.unit, "written": time.time(),
                "call_wall": self.earlier_wall + time.monotonic() - self.started, "wall_from": self.wall_from,
                "n_outs": len(p["outs"]), "samples": [int(s) for s in hist.samples[:n_samples]],
                "log_steps": [int(s) for s in hist.log_steps[:n_logs]], "curves": n_curves, "logs": n_log_lists,
                "diverged": p["diverged"], "divergences": hist.divergences[:n_div],
                "until_none": [k for k, v in p["until"].items() if v is None]}
        buf = io.BytesIO()
        np.savez(buf, meta=np.asarray(json.dumps(meta)), **arrays)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_bytes(buf.getvalue())
        os.replace(tmp, self.path)
        self.last_write = time.monotonic()
        if self.on_write is not None:
            self.on_write()

    def load(self, template: Any, hist: Any, until: Any) -> dict | None:
        """Restore a run from the file, if there is one written for this call: ``hist`` (and ``until``'s state)
        in place; returns {"state", "start" (the step reached), "outs", "bad", "finished"} (None: start from
        step 0)."""
        if not self.path.exists():
            return None
        try:
            with np.load(self.path, allow_pickle=False) as z:
                files = {k: z[k] for k in z.files}
            meta = json.loads(str(files.pop("meta")))
        except (OSError, ValueError, KeyError) as err:
            warnings.warn(f"checkpoint {self.path} is unreadable ({err}); training from step 0", stacklevel=3)
            return None
        if meta.get("signature") != self.signature:
            warnings.warn(f"checkpoint {self.path} was written by another fit call (other seeds, cells, steps, "
                          "shapes or data); training from step 0", stacklevel=3)
            return None
        state = _restore(template, files, "state")
        # the wall this call trained so far and the step it counts from; a file of an older version kept neither:
        # count from its step
        known = "call_wall" in meta and "wall_from" in meta
        self.earlier_wall = float(meta["call_wall"]) if known else 0.0
        self.wall_from, self.started = int(meta["wall_from"]) if known else int(meta["step"]), time.monotonic()
        hist.samples[:] = meta["samples"]
        hist.log_steps[:] = meta["log_steps"]
        hist.curves.clear()
        hist.curves.update({k: [files[f"curve/{k}/{j}"] for j in range(n)] for k, n in meta["curves"].items()})
        hist.logs.clear()
        hist.logs.update({k: [files[f"log/{k}/{j}"] for j in range(n)] for k, n in meta["logs"].items()})
        hist.diverged[:] = meta["diverged"]
        hist.divergences[:] = meta["divergences"]
        if hasattr(until, "load_state_dict"):
            saved = {k[len("until/"):]: v for k, v in files.items() if k.startswith("until/")}
            until.load_state_dict(saved | {k: None for k in meta["until_none"]})
        outs = [_nest({k[len(f"outs/{j}/"):]: v for k, v in files.items() if k.startswith(f"outs/{j}/")})
                for j in range(meta["n_outs"])]
        return {"state": state, "start": int(meta["step"]), "outs": outs, "bad": files.get("bad"),
                "finished": bool(meta["finished"])}


def _restore(template: Any, files: dict[str, np.ndarray], prefix: str) -> Any:
    """The pytree ``template`` with its leaves read from ``files[prefix/i]`` (same shapes and dtypes)."""
    leaves, treedef = jax.tree.flatten(template)
    got = [files[f"{prefix}/{i}"] for i in range(len(leaves))]
    for i, (a, b) in enumerate(zip(leaves, got)):
        if np.shape(a) != b.shape or np.asarray(a).dtype != b.dtype:
            raise ValueError(f"checkpoint leaf {prefix}/{i} is {b.shape} {b.dtype}, the run's is "
                             f"{np.shape(a)} {np.asarray(a).dtype}")
    return jax.tree.unflatten(treedef, [jnp.asarray(b) for b in got])

