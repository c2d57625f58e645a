"""Embedded data sets: scikit-learn's bundled 8x8 digits and synthetic teacher-student tasks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Dataset, register_dataset


@register_dataset("digits", "scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes; no download)")
def load_digits(data_dir: Path | None = None, test_fraction: float = 0.25, seed: int = 0) -> Dataset:
    """The 8x8 digits shipped with scikit-learn, pixels scaled to [0, 1], a fixed stratified split."""
    from sklearn.datasets import load_digits as _load
    from sklearn.model_selection import train_test_split

    d = _load()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int32)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    return Dataset("digits", xtr, ytr, xte, yte, 10, image_shape=(8, 8, 1))


TEACHER_INITS = ("xavier_normal", "uniform_fanin")


def teacher_student(n_train: int = 20000, n_test: int = 2000, d_in: int = 32, d_out: int = 32,
                    hidden: tuple[int, ...] = (128, 128), activation: str = "tanh", noise: float = 0.0,
                    classification: bool = False, seed: int = 0, init: str = "xavier_normal") -> Dataset:
    """Inputs x ~ N(0, I_d_in) labelled by a random teacher MLP without biases, its weights
    W_l ~ N(0, 2 / (fan_in + fan_out)) (``init`` "xavier_normal") or U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    ("uniform_fanin": torch's default Linear init, a fresh copy of a student initialised so).

    Regression targets are the teacher's outputs (+ ``noise`` * N(0, 1)); with
    ``classification`` the label is the argmax of the teacher's output.
    """
    from ..networks.activations import get_activation

    if init not in TEACHER_INITS:
        raise ValueError(f"init {init!r}: not a teacher init; allowed: {', '.join(TEACHER_INITS)}")
    rng = np.random.default_rng(seed)
    sizes = (d_in, *hidden, d_out)
    Ws = [rng.normal(0.0, np.sqrt(2.0 / (i + o)), size=(o, i)) if init == "xavier_normal" else
          rng.uniform(-1.0 / np.sqrt(i), 1.0 / np.sqrt(i), size=(o, i)) for i, o in zip(sizes[:-1], sizes[1:])]
    f = get_activation(activation).f

    def teacher(x: np.ndarray) -> np.ndarray:
        h = x
        for l, w in enumerate(Ws):
            h = h @ w.T
            if l < len(Ws) - 1:
                h = np.asarray(f(h))
        return h

    x = rng.normal(size=(n_train + n_test, d_in)).astype(np.float32)
    out = teacher(x)
    if classification:
        y = np.argmax(out, axis=1).astype(np.int32)
        task, n_classes = "classification", d_out
    else:
        y = (out + noise * rng.normal(size=out.shape)).astype(np.float32)
        task, n_classes = "regression", 0
    return Dataset("teacher_student", x[:n_train], y[:n_train], x[n_train:], y[n_train:], n_classes, task,
                   meta={"teacher_weights": Ws, "sizes": sizes})


@register_dataset("teacher_regression", "synthetic teacher-student regression: 32-d Gaussian inputs, 2x128 tanh teacher")
def _teacher_regression(data_dir: Path | None = None, **kwargs) -> Dataset:
    return teacher_student(**kwargs)


@register_dataset("teacher_classification", "synthetic teacher-student classification: argmax of a random tanh teacher")
def _teacher_classification(data_dir: Path | None = None, **kwargs) -> Dataset:
    kwargs.setdefault("d_out", 10)
    return teacher_student(classification=True, **kwargs)
