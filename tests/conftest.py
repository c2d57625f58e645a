"""Shared test fixtures."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("PLASTICLAB_OFFLINE", "1")
CACHE_ENV = "PLASTICLAB_TEST_JAX_CACHE"
_made_cache: str | None = None


def pytest_configure(config) -> None:
    """One JAX compilation cache for the session, shared by both xdist workers (they inherit the controller's
    environment): compilation dominates the small runs of this suite, and many tests compile the same programs.
    A cached executable is the same program (the key is the HLO, the compile options and the JAX version), so
    the numbers are those of an uncached run. The folder is new each session, so CI times a cold start; set
    PLASTICLAB_TEST_JAX_CACHE to a folder of your own to keep it between sessions, or to an empty string for no
    cache. The ``plasticlab`` commands that tests start as subprocesses (test_kill's) use it too
    (``PLASTICLAB_JAX_CACHE``, so that no test writes to ~/.cache); the planner's calibration runs never do."""
    global _made_cache
    if CACHE_ENV not in os.environ:
        _made_cache = os.environ[CACHE_ENV] = tempfile.mkdtemp(prefix="plasticlab-jax-cache-")
    os.environ["PLASTICLAB_JAX_CACHE"] = os.environ[CACHE_ENV]
    if not os.environ[CACHE_ENV]:
        return
    import jax

    jax.config.update("jax_compilation_cache_dir", os.environ[CACHE_ENV])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def pytest_unconfigure(config) -> None:
    if _made_cache is not None and not hasattr(config, "workerinput"):  # the controller made it: remove it
        shutil.rmtree(_made_cache, ignore_errors=True)

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real MNIST files in ../shared/data/mnist (skips the test when they are absent)."""
    if not (SHARED_MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"real MNIST not found at {SHARED_MNIST} (the shared data folder beside the repo)")
    return SHARED_MNIST


@pytest.fixture(scope="session")
def digits():
    from plasticlab.data import load_dataset

    return load_dataset("digits")


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_code_after_each_module():
    """A test process runs many modules: without this their compiled executables pass vm.max_map_count."""
    yield
    from plasticlab.experiments.base import release_compiled_code

    release_compiled_code()
