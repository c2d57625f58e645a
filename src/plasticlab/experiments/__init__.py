"""Experiments: one package per paper (``oja``, ``meta``, ``sam``, ``hebb``, ``curl``), one module per figure or
table, found automatically.

Each experiment module calls ``register(Experiment(...))`` at import time; shared pieces of a paper live in
``<paper>/common.py`` (its base settings and helpers) or a named shared module (``curl/phase.py``,
``curl/speed.py``, ``hebb/grid.py``) that registers nothing. No experiment module imports another.
``discover()`` imports them all.
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import REGISTRY, ConfigError, Experiment, RunContext, get_experiment, register, run_experiment

_DISCOVERED = False


def discover() -> dict[str, Experiment]:
    """Import every experiment module of this package and return the registry."""
    global _DISCOVERED
    if not _DISCOVERED:
        for mod in pkgutil.walk_packages(__path__, prefix=f"{__name__}."):
            if not mod.ispkg and mod.name.rsplit(".", 1)[-1] != "base":
                importlib.import_module(mod.name)
        _DISCOVERED = True
    return REGISTRY


__all__ = ["REGISTRY", "ConfigError", "Experiment", "RunContext", "discover", "get_experiment", "register",
           "run_experiment"]
