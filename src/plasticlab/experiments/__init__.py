"""Experiments: one module per paper figure or table, found automatically.

Each module in this package calls ``register(Experiment(...))`` at import time;
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
        for mod in pkgutil.iter_modules(__path__):
            if mod.name not in ("base",) and not mod.name.startswith("_"):
                importlib.import_module(f"{__name__}.{mod.name}")
        _DISCOVERED = True
    return REGISTRY


__all__ = ["REGISTRY", "ConfigError", "Experiment", "RunContext", "discover", "get_experiment", "register",
           "run_experiment"]
