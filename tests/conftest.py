"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("PLASTICLAB_OFFLINE", "1")

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
