"""The persistent JAX compilation cache of the command line.

Compiling the jitted steps and scans is a large part of a small run (``plasticlab run meta-sanger --quick``:
22 s cold, 10 s with its programs cached, measured on 2 cores). ``plasticlab`` commands therefore keep
compiled programs on disk, so that a rerun, a resumed run or the next run with the same shapes skips the
compilation. A cached executable is the same program (JAX keys it by the HLO, the compile options, the
device and the JAX version), so results do not depend on the cache.

Where: ``$PLASTICLAB_JAX_CACHE`` if set (an empty value turns the cache off), else ``$PLASTICLAB_CACHE/jax``
(default ``~/.cache/plasticlab/jax``). A ``JAX_COMPILATION_CACHE_DIR`` of your own is left as it is. Programs
that compile in under ``MIN_COMPILE_SECONDS`` are not stored; the folder is kept under ``MAX_BYTES`` (least
recently used programs go first). The planner's calibration runs turn it off, so that a plan estimates a cold
run (``plasticlab.plan``).
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = "PLASTICLAB_JAX_CACHE"
MIN_COMPILE_SECONDS = 0.5
MAX_BYTES = 2 * 1024 ** 3


def cache_dir() -> Path | None:
    """The folder the command line caches compiled programs in, or None when the cache is off."""
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return Path(os.environ["JAX_COMPILATION_CACHE_DIR"])
    value = os.environ.get(ENV)
    if value is not None:
        return Path(value).expanduser() if value else None
    return Path(os.environ.get("PLASTICLAB_CACHE", Path.home() / ".cache" / "plasticlab")) / "jax"


def enable() -> Path | None:
    """Turn the cache on for this process and the ``plasticlab`` processes it starts; returns its folder."""
    path = cache_dir()
    if path is None or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return path  # off, or the user's own JAX setting (JAX read it at import)
    import jax

    os.environ[ENV] = str(path)  # processes started from here (a sweep's workers, ``sweep._run_cell``) use it too
    if jax.config.jax_compilation_cache_dir == str(path):
        return path  # already on here, with its owner's settings (e.g. the test suite's)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    return path
