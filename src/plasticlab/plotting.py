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


def _drawn_y(ax) -> np.ndarray:
    """The y values ``ax`` shows in data units: its lines (horizontal guides included), scatter points and bar
    tops; not error bars or bands."""
    from matplotlib.collections import PathCollection
    from matplotlib.container import ErrorbarContainer
    from matplotlib.patches import Rectangle

    caps = {id(c) for e in ax.containers if isinstance(e, ErrorbarContainer) for c in e.lines[1]}
    ys = [np.asarray(l.get_ydata(), float).ravel() for l in ax.get_lines()
          if l.get_transform() in (ax.transData, ax.get_yaxis_transform()) and id(l) not in caps]
    ys += [np.asarray(c.get_offsets(), float).reshape(-1, 2)[:, 1] for c in ax.collections
           if isinstance(c, PathCollection)]
    ys += [np.asarray([p.get_y() + p.get_height()], float) for p in ax.patches if isinstance(p, Rectangle)]
    y = np.concatenate(ys) if ys else np.zeros(0)
    return y[np.isfinite(y)]


def _free_corner(ax) -> tuple[float, float, str, str]:
    """The corner of ``ax`` (x, y in axes units, ha, va) nearest the fewest drawn points (lines sampled along
    their segments, scatter points, bar tops) and not holding a legend placed there; lower right on ties."""
    from matplotlib.collections import PathCollection
    from matplotlib.patches import Rectangle

    ax.get_xlim()  # apply pending autoscaling before transforming
    to_axes = ax.transData + ax.transAxes.inverted()
    pts = [np.zeros((0, 2))]
    for l in ax.get_lines():
        if l.get_transform() == ax.transData:
            xy = to_axes.transform(np.column_stack([l.get_xdata(), l.get_ydata()]).astype(float))
            pts.append((xy[:-1] + np.linspace(0, 1, 20)[:, None, None] * np.diff(xy, axis=0)).reshape(-1, 2))
    pts += [to_axes.transform(np.asarray(c.get_offsets(), float)) for c in ax.collections
            if isinstance(c, PathCollection)]
    pts += [to_axes.transform([[p.get_x() + p.get_width() / 2, p.get_y() + p.get_height()]]) for p in ax.patches
            if isinstance(p, Rectangle)]
    xy = np.concatenate(pts)
    legend = getattr(ax.get_legend(), "_loc", 0)  # 1-4: upper right, upper left, lower left, lower right
    corners = [(0.98, 0.02, "right", "bottom", 4), (0.02, 0.02, "left", "bottom", 3),
               (0.98, 0.98, "right", "top", 1), (0.02, 0.98, "left", "top", 2)]
    busy = [np.sum((np.abs(xy[:, 0] - x) < 0.45) & (np.abs(xy[:, 1] - y) < 0.12)) + 1e6 * (legend == code)
            for x, y, _, _, code in corners]
    return corners[int(np.argmin(busy))][:4]


def mark_chance(ax, chance: float, *, scale: float = 1.0, context: float = 0.25) -> None:
    """Mark chance accuracy ``chance`` (1/K classes, in the panel's units: ``scale`` = 1, or 100 for x100) on
    ``ax``; call it once the panel's data (and legend, if any) are drawn.

    Rule: when every accuracy drawn (``_drawn_y``) lies within ``context * scale`` of chance, the panel shows
    chance-level noise: its y-limits widen to at least [chance - context*scale, chance + context*scale], clipped
    to [0, scale], so the noise is not magnified into a trend. Chance inside the y-limits then gets a dashed grey
    line "chance (1/K)" (added to the panel's legend, or written on the line when there is none); chance outside
    them (accuracies far from it, e.g. 77-89%) does not stretch the axis but gets a corner note
    "chance 10% (below axis)"."""
    y, width = _drawn_y(ax), context * scale
    lo, hi = ax.get_ylim()
    if np.all(np.abs(y - chance) <= width):
        lo, hi = min(lo, max(0.0, chance - width)), max(hi, min(scale, chance + width))
    ax.set_ylim(lo, hi)
    k = scale / chance if chance > 0 else 0.0
    name = f"1/{round(k)}" if k and abs(k - round(k)) < 1e-6 else f"{chance:g}"
    if lo <= chance <= hi:
        ax.axhline(chance, ls="--", lw=1, color="0.5", zorder=1, label=f"chance ({name})")
        legend = ax.get_legend()
        if legend is not None:  # rebuild it with the chance line, in the same size, place and columns
            ax.legend(fontsize=legend.get_texts()[0].get_fontsize() if legend.get_texts() else None,
                      loc=getattr(legend, "_loc", "best"), ncols=getattr(legend, "_ncols", 1))
        else:
            ax.text(0.01, chance, f"chance ({name})", transform=ax.get_yaxis_transform(), ha="left",
                    va="bottom", fontsize=7, color="0.3", zorder=5,
                    bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 1})
    else:
        x, y, ha, va = _free_corner(ax)
        ax.text(x, y, f"chance {100 * chance / scale:.3g}% ({'below' if chance < lo else 'above'} axis)",
                transform=ax.transAxes, ha=ha, va=va, fontsize=7, color="0.4")


def accuracy_panel(ax, curves: dict, xlabel: str, ylabel: str, title: str, color=rule_color,
                   chance: float | None = None) -> None:
    """One learning curve per rule (``curves[rule] = {"samples", "accuracy": (seeds, evals)}``), mean and 98%
    bootstrap band over seeds; ``color(rule)`` picks each line's colour (default: the rule's own colour);
    ``chance`` (1/K) is marked by ``mark_chance``."""
    for spec, c in curves.items():
        curve_with_ci(ax, np.asarray(c["samples"]), np.asarray(c["accuracy"]), label=spec, color=color(spec))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    if chance is not None:
        mark_chance(ax, chance)


def save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
