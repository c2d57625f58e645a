"""Few-shot episodes (N-way K-shot tasks) drawn from a ``Dataset``, for meta-learning plasticity rules.

An episode draws N classes, relabels them 0..N-1 in a random order, and takes
K support ("training") samples and Q query samples per class, all distinct:

    support: x (N*K, d), y (N*K,)  shuffled, presented online one sample at a time
    query:   x (N*Q, d), y (N*Q,)  fixed for the episode; it scores the adapted network

Episode ``i`` of a sampler depends only on (seed, split, i), so episodes are
reproducible and can be drawn in any order or batch (``sampler.batch(start, n)``).

Meta-train and meta-test tasks are kept apart in one of two ways (``split_mode``):

- "samples": all classes, meta-train episodes from the data set's training
  split and held-out ("test") episodes from its test split;
- "classes": the classes are partitioned (``heldout_classes``, the last
  classes by default) and both sides sample from the training split's images of
  their own classes; held-out episodes may also use the test split's images.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from .base import DataError, Dataset


class Episode(NamedTuple):
    """One task (or a batch of tasks with a leading axis): support and query sets, labels in 0..N-1."""

    x_support: np.ndarray
    y_support: np.ndarray
    x_query: np.ndarray
    y_query: np.ndarray
    classes: np.ndarray  # original class label of episode class 0..N-1


SPLITS = ("train", "test")
SPLIT_MODES = ("samples", "classes")


class EpisodeSampler:
    """Reproducible N-way K-shot episodes from ``data``.

    ``split``: "train" (meta-training tasks) or "test" (held-out tasks).
    ``split_mode``: "samples" or "classes" (see the module docstring).
    ``heldout_classes``: with "classes", the original labels reserved for "test";
    default: the last ``max(n_way, n_classes // 3)`` classes.
    """

    def __init__(self, data: Dataset, n_way: int = 5, k_shot: int = 20, n_query: int = 10, *, split: str = "train",
                 split_mode: str = "samples", heldout_classes: Sequence[int] | None = None, seed: int = 0):
        if data.task != "classification":
            raise DataError(f"episodes need a classification data set, {data.name!r} is {data.task!r}")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if split_mode not in SPLIT_MODES:
            raise ValueError(f"split_mode must be one of {SPLIT_MODES}, got {split_mode!r}")
        if n_way < 2 or k_shot < 1 or n_query < 1:
            raise ValueError(f"need n_way >= 2, k_shot >= 1 and n_query >= 1, got {n_way}, {k_shot}, {n_query}")
        self.data, self.n_way, self.k_shot, self.n_query = data, int(n_way), int(k_shot), int(n_query)
        self.split, self.split_mode, self.seed = split, split_mode, int(seed)
        all_classes = np.arange(data.n_classes)
        if split_mode == "classes":
            held = (np.asarray(sorted(heldout_classes), int) if heldout_classes is not None
                    else all_classes[-max(n_way, data.n_classes // 3):])
            if np.any((held < 0) | (held >= data.n_classes)):
                raise ValueError(f"heldout_classes must lie in 0..{data.n_classes - 1}, got {list(held)}")
            classes = held if split == "test" else np.setdiff1d(all_classes, held)
            x, y = data.x_train, data.y_train
            if split == "test":  # held-out classes: every image of theirs may be used
                x, y = np.concatenate([data.x_train, data.x_test]), np.concatenate([data.y_train, data.y_test])
        else:
            classes = all_classes
            x, y = (data.x_train, data.y_train) if split == "train" else (data.x_test, data.y_test)
        self.x = np.asarray(x, np.float32)
        y = np.asarray(y)
        self.by_class = {int(c): np.flatnonzero(y == c) for c in classes}
        need = self.k_shot + self.n_query
        self.classes = np.asarray([c for c in classes if len(self.by_class[int(c)]) >= need], int)
        if len(self.classes) < self.n_way:
            raise DataError(f"{data.name!r} ({split} split, split_mode={split_mode!r}) has only {len(self.classes)} "
                            f"classes with >= {need} samples (k_shot + n_query); a {self.n_way}-way task needs "
                            f"{self.n_way}. Lower n_way, k_shot or n_query, or change the class split.")

    @property
    def n_support(self) -> int:
        return self.n_way * self.k_shot

    def episode(self, i: int) -> Episode:
        """Episode number ``i`` (deterministic in seed, split and i)."""
        rng = np.random.default_rng([self.seed, SPLITS.index(self.split), int(i)])
        cls = rng.choice(self.classes, self.n_way, replace=False)
        xs, ys, xq, yq = [], [], [], []
        for new, c in enumerate(cls):
            idx = rng.choice(self.by_class[int(c)], self.k_shot + self.n_query, replace=False)
            xs.append(idx[:self.k_shot])
            xq.append(idx[self.k_shot:])
            ys += [new] * self.k_shot
            yq += [new] * self.n_query
        s_idx, q_idx = np.concatenate(xs), np.concatenate(xq)
        perm = rng.permutation(len(s_idx))  # online order of the support samples
        return Episode(self.x[s_idx[perm]], np.asarray(ys, np.int32)[perm], self.x[q_idx], np.asarray(yq, np.int32),
                       cls.astype(np.int32))

    def batch(self, start: int, n: int) -> Episode:
        """Episodes start .. start+n-1 stacked along a leading axis."""
        eps = [self.episode(i) for i in range(start, start + n)]
        return Episode(*(np.stack(a) for a in zip(*eps)))

    def __repr__(self) -> str:
        return (f"EpisodeSampler({self.data.name!r}, {self.n_way}-way {self.k_shot}-shot, {self.n_query} query/class, "
                f"split={self.split!r}, split_mode={self.split_mode!r}, classes={self.classes.tolist()})")
