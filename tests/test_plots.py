"""Every experiment's plots, drawn from its golden --quick results (tests/golden/): they draw without error, no two
panels of a figure share a title, no labelled curve runs off its panel (a zoom belongs in an inset that draws
only the zoomed part), every panel with error bars or bands says what they are and over how many runs, and every
accuracy panel marks chance level without zooming noise at chance into a trend."""

from __future__ import annotations

import collections
import json
import re
from pathlib import Path

import numpy as np
import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"
NAMES = sorted(p.stem for p in GOLDEN.glob("*.json"))


def _figures_of(name: str, out: Path, monkeypatch) -> list:
    """The figures ``plot`` saves for the golden results of ``name`` (captured, not written)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from plasticlab.experiments import discover

    exp = discover()[name]
    if exp.plot is None:
        return []
    figs: list = []
    monkeypatch.setattr(Figure, "savefig", lambda fig, fname, *a, **k: figs.append((Path(fname).name, fig)))
    exp.plot(json.loads((GOLDEN / f"{name}.json").read_text()), out)
    return figs


def _off_panel(ax) -> list[str]:
    """Labelled curves of ``ax`` with points outside its x or y limits."""
    (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
    bad = []
    for line in ax.get_lines():
        if line.get_label().startswith("_"):  # unlabelled: guides, trajectories of a phase portrait
            continue
        transform = line.get_transform()  # axhline / axvline draw one coordinate in axes units
        in_data = next((kinds for t, kinds in ((ax.transData, (True, True)), (ax.get_yaxis_transform(), (False, True)),
                                               (ax.get_xaxis_transform(), (True, False))) if transform == t),
                       (False, False))
        x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
        ok = np.isfinite(x) & np.isfinite(y)
        tol_x, tol_y = 1e-9 * max(abs(x0), abs(x1), 1.0), 1e-9 * max(abs(y0), abs(y1), 1.0)
        out = np.zeros(int(ok.sum()), bool)
        if in_data[0]:
            out |= (x[ok] < x0 - tol_x) | (x[ok] > x1 + tol_x)
        if in_data[1]:
            out |= (y[ok] < y0 - tol_y) | (y[ok] > y1 + tol_y)
        if out.any():
            bad.append(f"{ax.get_title()!r}: {line.get_label()} ({out.mean():.0%} of its points)")
    return bad


def _spread_unstated(ax) -> str | None:
    """What ``ax`` misses when it draws error bars or bands (``fill_between``) without naming their kind (CI, SD,
    SE(M)) and the number of runs (n=..., "k seeds"; "n=1" alone for one run) in its legend, title, axis or tick labels; None when it says both
    or draws neither."""
    from matplotlib.collections import PolyCollection
    from matplotlib.container import ErrorbarContainer

    if not any(isinstance(c, PolyCollection) for c in ax.collections) and not any(
            isinstance(c, ErrorbarContainer) for c in ax.containers):
        return None
    fig = ax.get_figure()
    legend = ax.get_legend()
    texts = [t.get_text() for t in (legend.get_texts() if legend else [])] + [ax.get_title(), ax.get_xlabel(),
                                                                              ax.get_ylabel()]
    texts += [t.get_text() for t in ax.get_xticklabels() + ax.texts]
    texts += [fig._suptitle.get_text()] if fig._suptitle is not None else []
    text = " ".join(texts)
    if re.search(r"\bn=1\b", text):  # one run: no spread to name
        return None
    missing = [what for what, pattern in (("the spread's kind (CI, SD, SE)", r"\bCI\b|\bSD\b|\bSEM?\b"),
                                          ("n", r"\bn ?= ?\d|\d+ (finished )?(seeds|runs)"))
               if not re.search(pattern, text)]
    return f"{ax.get_title()!r} does not state {' or '.join(missing)}" if missing else None


def _chance_unmarked(ax, context: float = 0.25) -> str | None:
    """What an accuracy panel (y label with "accuracy"; "x100" in it: accuracies x 100) of ``ax`` misses: a line or
    text naming chance, and, when all its data (lines but the chance line and error-bar caps, scatter points, bar
    tops) lie within ``context`` x scale of the chance line, a y-span of at least that much (else noise at chance
    is zoomed into a trend); None when it has both or is no accuracy panel."""
    from matplotlib.collections import PathCollection
    from matplotlib.container import ErrorbarContainer
    from matplotlib.patches import Rectangle

    label = ax.get_ylabel().lower()
    if "accuracy" not in label:
        return None
    scale = 100.0 if "x100" in label else 1.0
    chance = [l for l in ax.get_lines() if "chance" in l.get_label().lower()]
    if not chance and not any("chance" in t.get_text().lower() for t in ax.texts):
        return f"{ax.get_title()!r}: accuracy panel without chance level"
    if not chance:  # a note "chance ... (below axis)": the data are far from it
        return None
    level = float(np.asarray(chance[0].get_ydata(), float)[0])
    caps = [c for e in ax.containers if isinstance(e, ErrorbarContainer) for c in e.lines[1]]
    ys = [np.asarray(l.get_ydata(), float) for l in ax.get_lines() if l not in chance and l not in caps]
    ys += [np.asarray(c.get_offsets(), float).reshape(-1, 2)[:, 1] for c in ax.collections
           if isinstance(c, PathCollection)]
    ys += [np.asarray([p.get_y() + p.get_height()]) for p in ax.patches if isinstance(p, Rectangle)]
    y = np.concatenate(ys) if ys else np.zeros(0)
    y = y[np.isfinite(y)]
    y0, y1 = sorted(ax.get_ylim())
    if np.all(np.abs(y - level) <= context * scale) and y1 - y0 < context * scale - 1e-9:
        return f"{ax.get_title()!r}: noise at chance zoomed to a y-span of {y1 - y0:.3g}"
    return None


@pytest.mark.parametrize("name", NAMES)
def test_plots_draw_with_distinct_titles_and_every_curve_on_its_panel(name, tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    figs = _figures_of(name, tmp_path, monkeypatch)
    try:
        for fname, fig in figs:
            titles = collections.Counter(ax.get_title() for ax in fig.axes if ax.get_title())
            assert not [t for t, n in titles.items() if n > 1], f"{name} {fname}: panels share a title {titles}"
            off = [b for ax in fig.axes for b in _off_panel(ax)]
            assert not off, f"{name} {fname}: curves run off the panel: {off}"
            unstated = [u for ax in fig.axes if (u := _spread_unstated(ax))]
            assert not unstated, f"{name} {fname}: error bars without their kind and n: {unstated}"
            chance = [c for ax in fig.axes if (c := _chance_unmarked(ax))]
            assert not chance, f"{name} {fname}: accuracy panels without chance level or zooming it: {chance}"
    finally:
        for _, fig in figs:
            plt.close(fig)


def test_the_off_panel_check_finds_a_zoomed_axis():
    """The check above can fail: a curve cut by set_ylim is found."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [10.0, 90.0, 95.0], label="rule")
    assert not _off_panel(ax)
    ax.axhline(50.0, label="chance")
    ax.set_ylim(85, 100)
    assert _off_panel(ax) == ["'': rule (33% of its points)", "'': chance (100% of its points)"]
    plt.close(fig)


def test_the_spread_check_finds_unlabelled_error_bars():
    """The check above can fail: error bars whose legend says neither the kind nor n are found; stating both passes."""
    import matplotlib.pyplot as plt

    from plasticlab.plotting import spread_label

    fig, ax = plt.subplots()
    ax.errorbar([1, 2], [0.5, 0.6], yerr=[0.1, 0.1], label="relu")
    ax.legend()
    assert _spread_unstated(ax) == "'' does not state the spread's kind (CI, SD, SE) or n"
    ax.get_legend().remove()
    ax.errorbar([1, 2], [0.4, 0.5], yerr=[0.1, 0.1], label=spread_label("tanh", 5, level=0.98))
    ax.legend()
    assert _spread_unstated(ax) is None and spread_label("tanh", 5) == "tanh (mean +- SD, n=5)"
    plt.close(fig)


def test_the_chance_check_finds_noise_at_chance_zoomed_into_a_trend():
    """The check above can fail: an accuracy panel of noise at chance 1/10 without a chance mark is found, so is
    one with a chance line but the noise zoomed; ``mark_chance`` passes, and notes chance below a panel far above it."""
    import matplotlib.pyplot as plt

    from plasticlab.plotting import mark_chance

    def noise_panel():
        fig, ax = plt.subplots()
        ax.plot([0, 1, 2, 3], [0.094, 0.113, 0.1, 0.105], label="bp")
        ax.set(ylabel="validation accuracy", title="naive init")
        ax.legend()
        return fig, ax

    fig, ax = noise_panel()
    assert _chance_unmarked(ax) == "'naive init': accuracy panel without chance level"
    ax.axhline(0.1, label="chance")
    assert _chance_unmarked(ax).startswith("'naive init': noise at chance zoomed to a y-span of 0.0")
    plt.close(fig)
    fig, ax = noise_panel()
    mark_chance(ax, 0.1)
    assert _chance_unmarked(ax) is None and not _off_panel(ax)
    assert ax.get_ylim() == (0.0, 0.35) and "chance (1/10)" in [t.get_text() for t in ax.get_legend().get_texts()]
    plt.close(fig)
    fig, ax = plt.subplots()  # far above chance (x100): the axis is not stretched, a note says where chance is
    ax.plot([1, 2], [78.0, 88.0], label="sam")
    ax.set(ylabel="test_accuracy (x100)")
    ylim = ax.get_ylim()
    mark_chance(ax, 10.0, scale=100)
    assert ax.get_ylim() == ylim and [t.get_text() for t in ax.texts] == ["chance 10% (below axis)"]
    assert _chance_unmarked(ax) is None and not _off_panel(ax)
    plt.close(fig)
