"""The common container for data sets and the registry of loaders."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np


class DataError(RuntimeError):
    """A data set is missing, corrupt or unknown; the message says how to fix it."""


class TestSplitRead(RuntimeError):
    """A hyperparameter search read a test split (it must select on a validation split of the training data)."""


_SEARCHES: list[str] = []  # names of the searches running now (innermost last)


@contextlib.contextmanager
def search_context(name: str):
    """Inside, reading ``x_test`` / ``y_test`` of any Dataset that is not a validation split raises
    :class:`TestSplitRead`: a search selects on ``Dataset.validation_split`` and the test split is read once,
    after the choice, outside the search."""
    _SEARCHES.append(name)
    try:
        yield
    finally:
        _SEARCHES.pop()


@dataclass
class Dataset:
    """A supervised data set held in memory as NumPy arrays.

    x_*: float32 of shape (n, d), features flattened and scaled (images to [0, 1]).
    y_*: int32 class labels of shape (n,), or float32 of shape (n, k) for
    regression / multi-label targets (see ``task``).
    task: "classification", "multilabel" or "regression".
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    task: str = "classification"
    image_shape: tuple[int, ...] | None = None
    meta: dict = field(default_factory=dict)

    def __getattribute__(self, attr: str):
        if attr in ("x_test", "y_test") and _SEARCHES and not object.__getattribute__(self, "meta").get("validation_of"):
            raise TestSplitRead(f"search {_SEARCHES[-1]!r} read {attr} of data set "
                                f"{object.__getattribute__(self, 'name')!r}: select on a validation split of the "
                                "training data (Dataset.validation_split) and read the test split after the choice")
        return object.__getattribute__(self, attr)

    def validation_split(self, fraction: float = 0.1, seed: int = 0) -> "Dataset":
        """The training split cut in two: ``x_train`` the rest, ``x_test`` a random ``fraction`` held out for
        validation (fixed by ``seed``). The test split is not in it (a search may use it freely)."""
        if not 0 < fraction < 1:
            raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
        n = len(self.x_train)
        n_val = max(1, int(round(fraction * n)))
        idx = np.random.default_rng(seed).permutation(n)
        val, rest = np.sort(idx[:n_val]), np.sort(idx[n_val:])
        return Dataset(self.name, self.x_train[rest], self.y_train[rest], self.x_train[val], self.y_train[val],
                       self.n_classes, self.task, self.image_shape,
                       {**self.meta, "validation_of": self.name, "validation_fraction": fraction,
                        "validation_seed": seed})

    @property
    def is_validation(self) -> bool:
        """Whether the ``test`` split of this Dataset is a validation split carved from training data."""
        return bool(self.meta.get("validation_of"))

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_outputs(self) -> int:
        """Width of the network's output layer for this data set."""
        if self.task == "classification":
            return self.n_classes
        return int(self.y_train.shape[1])

    def subset(self, n_train: int | None = None, n_test: int | None = None, seed: int = 0) -> "Dataset":
        """A random subset of the training and/or test split (fixed by ``seed``)."""
        rng = np.random.default_rng(seed)
        xtr, ytr, xte, yte = self.x_train, self.y_train, self.x_test, self.y_test
        if n_train is not None and n_train < len(xtr):
            idx = np.sort(rng.choice(len(xtr), n_train, replace=False))
            xtr, ytr = xtr[idx], ytr[idx]
        if n_test is not None and n_test < len(xte):
            idx = np.sort(rng.choice(len(xte), n_test, replace=False))
            xte, yte = xte[idx], yte[idx]
        return Dataset(self.name, xtr, ytr, xte, yte, self.n_classes, self.task, self.image_shape, dict(self.meta))

    def standardized(self, per_feature: bool = False, eps: float = 1e-8) -> "Dataset":
        """x <- (x - mu) / sigma with the *training* split's mean and standard deviation (one scalar each, as
        torchvision's ``Normalize`` with data-set statistics; or one per feature), applied to both splits."""
        axis = 0 if per_feature else None
        mu = self.x_train.mean(axis=axis, dtype=np.float64)
        sd = self.x_train.std(axis=axis, dtype=np.float64) + eps
        return self._map_inputs(lambda x: (x - mu) / sd, standardized="per feature" if per_feature
                                else f"mean {float(np.mean(mu)):.4g}, std {float(np.mean(sd)):.4g}")

    def centered(self) -> "Dataset":
        """x <- x - mu with the *training* split's mean image (one mean per feature, scale unchanged), applied to
        both splits: removes the large mean direction of non-negative pixels from the input's second moment."""
        mu = self.x_train.mean(axis=0, dtype=np.float64)
        return self._map_inputs(lambda x: x - mu, centered="per feature (training mean)")

    def _map_inputs(self, f: Callable[[np.ndarray], np.ndarray], **meta: str) -> "Dataset":
        """A copy with f applied to both splits' inputs (as float32) and ``meta`` added to the metadata."""
        return replace(self, x_train=f(self.x_train).astype(np.float32), x_test=f(self.x_test).astype(np.float32),
                       meta={**self.meta, **meta})

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={self.x_train.shape}, test={self.x_test.shape}, "
                f"n_classes={self.n_classes}, task={self.task!r})")


Loader = Callable[..., Dataset]
_LOADERS: dict[str, tuple[Loader, str]] = {}


def register_dataset(name: str, description: str) -> Callable[[Loader], Loader]:
    """Decorator: register ``fn(data_dir: Path | None, **kwargs) -> Dataset`` under ``name``."""

    def deco(fn: Loader) -> Loader:
        _LOADERS[name] = (fn, description)
        return fn

    return deco


def available_datasets() -> dict[str, str]:
    """Name -> one-line description of every registered data set."""
    return {k: v[1] for k, v in sorted(_LOADERS.items())}


def default_data_dir() -> Path:
    """``$PLASTICLAB_DATA`` if set, else ``~/.cache/plasticlab``."""
    env = os.environ.get("PLASTICLAB_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "plasticlab"


def load_dataset(name: str, data_dir: str | Path | None = None, **kwargs) -> Dataset:
    """Load a registered data set by name.

    ``data_dir`` (or ``$PLASTICLAB_DATA``) is searched first; loaders for
    downloadable data sets fetch missing files from the canonical source into it,
    verifying checksums.
    """
    if name not in _LOADERS:
        raise DataError(f"unknown data set {name!r}; choose one of: {', '.join(sorted(_LOADERS))}")
    fn = _LOADERS[name][0]
    return fn(Path(data_dir).expanduser() if data_dir is not None else None, **kwargs)
