"""Small matplotlib helpers shared by the experiments."""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import numpy as np

from .analysis.stats import bootstrap_ci


def figure(nrows: int = 1, ncols: int = 1, size: tuple[float, float] = (4.5, 3.4), **kw):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False, **kw)
    return fig, axes


# One colour per rule for every plot of the package (names as parse_rule writes them, parameters ignored;
# sgd / gd / bptt are backprop, so they share bp's colour).
RULE_COLORS: dict[str, str] = {
    "bp": "#1f77b4", "sgd": "#1f77b4", "gd": "#1f77b4", "bptt": "#1f77b4",
    "bp+oja": "#ff7f0e", "bptt+oja": "#ff7f0e", "bp+sanger": "#aec7e8",
    "fa": "#2ca02c", "fa+oja": "#98df8a", "fa+sanger": "#bcbd22",
    "dfa": "#17becf", "kp": "#9467bd", "wm": "#8c564b", "sam": "#d62728", "curl": "#e377c2",
    "randomnn": "#7f7f7f", "random_nn": "#7f7f7f", "adam": "#393b79", "meta": "#f7b6d2",
    "oja": "#ffbb78", "sanger": "#c49c94", "hebb": "#dbdb8d",
}
_FALLBACK = ("#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363",
             "#9c9ede", "#cedb9c", "#e7ba52", "#e7969c", "#de9ed6")


def rule_name(spec: str) -> str:
    """A rule spec without its parameters, lower case: "BP(lr=0.05)+oja(lr=1e-3)" -> "bp+oja"."""
    return re.sub(r"\([^()]*\)", "", spec).replace(" ", "").lower()


def rule_color(spec: str) -> str:
    """The colour of rule ``spec`` in every plot of the package (``RULE_COLORS``; another rule gets a fixed
    colour from its name's CRC32, the same in every run)."""
    name = rule_name(spec)
    return RULE_COLORS.get(name) or _FALLBACK[zlib.crc32(name.encode()) % len(_FALLBACK)]


def spread_label(label: str, n: int | str, spread: str = "SD", level: float | None = None) -> str:
    """A legend entry that states what the error bars are and over how many runs: "relu (mean +- SD, n=5)",
    "bp (mean, 98% CI, n=20)" with ``level``; "(n=1)" alone for one run (no spread to show)."""
    if n == 1:
        return f"{label} (n=1)"
    what = f"mean, {level * 100:g}% CI" if level is not None else f"mean +- {spread}"
    return f"{label} ({what}, n={n})"


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


def accuracy_panel(ax, curves: dict, xlabel: str, ylabel: str, title: str, color=rule_color) -> None:
    """One learning curve per rule (``curves[rule] = {"samples", "accuracy": (seeds, evals)}``), mean and 98%
    bootstrap band over seeds; ``color(rule)`` picks each line's colour (default: the rule's own colour)."""
    for spec, c in curves.items():
        curve_with_ci(ax, np.asarray(c["samples"]), np.asarray(c["accuracy"]), label=spec, color=color(spec))
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
