"""Small matplotlib helpers shared by the experiments."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .analysis.stats import bootstrap_ci


def figure(nrows: int = 1, ncols: int = 1, size: tuple[float, float] = (4.5, 3.4), **kw):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False, **kw)
    return fig, axes


def curve_with_ci(ax, x, values, label: str | None = None, level: float = 0.98, n_resamples: int = 500, **kw) -> None:
    """Mean curve over seeds (rows of ``values``) with its bootstrap confidence band; the legend entry states both
    ("bp (mean, 98% CI, n=5)"; "(n=1)" for one seed, no band) unless ``label`` already names a CI."""
    v = np.asarray(values, dtype=float)
    if v.ndim == 1:
        v = v[None]
    if label is not None and "CI" not in label:
        label += f" (mean, {level * 100:g}% CI, n={v.shape[0]})" if v.shape[0] > 1 else " (n=1)"
    mean, lo, hi = bootstrap_ci(v, level, n_resamples, axis=0)
    (line,) = ax.plot(x, mean, label=label, **kw)
    if v.shape[0] > 1:
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)


def accuracy_panel(ax, curves: dict, xlabel: str, ylabel: str, title: str, color=None) -> None:
    """One learning curve per rule (``curves[rule] = {"samples", "accuracy": (seeds, evals)}``), mean and 98%
    bootstrap band over seeds; ``color(rule)`` picks each line's colour (None: the default cycle)."""
    for spec, c in curves.items():
        curve_with_ci(ax, np.asarray(c["samples"]), np.asarray(c["accuracy"]), label=spec,
                      **({"color": color(spec)} if color else {}))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()


def save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
