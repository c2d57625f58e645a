"""sam-lr-search: the paper's search over 64 (overall learning rate, weight decay) combinations, then (SAM) over the
rate ratios.

Stage 1: all cells of the (lr, decay) grid at the fixed ratios (and all seeds) train at once under one jit/vmap;
diverging cells are recorded as diverged (with step and matrix) instead of stopping the search. Stage 2 (SAM
only): at the best (lr, decay), eta_W = eta_Wbar = lr and every (eta_V, eta_Vbar) / lr of ``v_ratios`` x
``vbar_ratios`` (App. C.4: eta_Vbar "usually four times that of W"; Fig. S2: best "when eta_V is the smallest").
Both stages select on ``Dataset.validation_split`` of the training data inside ``search_context``, so reading the
test split there raises; the chosen setting is then trained once on the whole training split and scored on the
test split, outside the search. The claims (``plasticlab.claims.sam``) read the stage-2 scores per seed.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...claims import sam as K
from ...data import search_context
from ...plotting import figure, save
from ...settings import setting
from . import common as C
from .common import sam_setting
from ..base import Experiment, RunContext, register
from .common import hyper_from

SEARCH = "sam-lr-search"


@dataclass
class SamLrSearchConfig:
    """Grid = lrs x decays (8 x 8 = 64 by default) for ``method`` (sam or a baseline: sgd, fa, wm, kp)."""

    dataset: str = sam_setting("dataset", "mnist", doc="data set (any with class labels or binary label vectors); "
                                                         "searched on a validation part of its training split")
    method: str = setting("sam", choices=C.METHODS, doc="rule whose rates are searched")
    lrs: tuple[float, ...] = setting((0.003, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5), gt=0,
                                     doc="overall learning rates of the grid (for SAM: eta_X = lr * ratio_X)")
    decays: tuple[float, ...] = setting((0.0, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2), ge=0,
                                        doc="weight decays of the grid (sam and kp only; the others run decay 0)")
    hidden: tuple[int, ...] = sam_setting("hidden", (200, 200, 200))
    loss: str = sam_setting("loss", "cross_entropy")
    epochs: float = sam_setting("epochs", 3.0, doc="passes over the training part (may be fractional)")
    batch_size: int = sam_setting("batch_size", 256)
    seeds: int = sam_setting("seeds", 1, doc="independent seeds per cell, run together under vmap")
    n_train: int | None = sam_setting("n_train", 20000, doc="random subset of the training split, before the "
                                                            "validation part is taken (None: all)")
    val_fraction: float = sam_setting("val_fraction", 0.2, doc="fraction of the (subset) training split held out for "
                                                                "validation (at least 1 sample)")
    sam_ratios: tuple[float, ...] = sam_setting("sam_ratios", C.Hyper.sam_ratios,
                                                doc="SAM's rate ratios of (W, Wbar, V, Vbar) in stage 1, exactly 4")
    vbar_ratios: tuple[float, ...] = setting((1.0, 2.0, 4.0, 8.0), gt=0, allow_empty=True,
                                             doc="stage 2 (sam): eta_Vbar / eta_W tried; empty: no stage 2")
    v_ratios: tuple[float, ...] = setting((0.25, 1.0, 4.0), gt=0, allow_empty=True,
                                          doc="stage 2 (sam): eta_V / eta_W tried; empty: no stage 2 (the final "
                                              "training keeps sam_ratios)")
    sam_decay_scaling: str = sam_setting("sam_decay_scaling", "none")
    sam_vbar_scale: float = sam_setting("sam_vbar_scale", 1.0)
    use_bias: bool = sam_setting("use_bias", False)
    normalize: str = sam_setting("normalize", "none")
    lr_schedule: str = sam_setting("lr_schedule", "constant")
    lr_warmup: float = sam_setting("lr_warmup", 0.0)

    def validate(self) -> None:
        C.check_ratios(self.sam_ratios)


def _score_rows(res, grid, data, method, metric, **extra) -> list[dict]:
    fin = res.final(C.metric_name(data)) * 100
    return [{"dataset": data.name, "method": method, "lr": lr, "decay": dec, **extra, "seed": s,
             metric: (None if not np.isfinite(fin[c, i]) else float(fin[c, i])), "status": res.seed_status(s, c)}
            for c, (lr, dec) in enumerate(grid) for i, s in enumerate(res.seeds)]


def _train(cfg, data, hp, grid, ratios=None):
    has_decay = cfg.method in ("sam", "kp")
    if ratios is not None:
        hp = C.Hyper(**{**hp.__dict__, "sam_ratios": tuple(ratios)})
    net = C.make_net(data, tuple(cfg.hidden), use_bias=cfg.use_bias)
    rule = C.make_rule(cfg.method, hp, decay_scaling=cfg.sam_decay_scaling,
                       vbar_scale=cfg.sam_vbar_scale)  # sam_kw: ignored by baselines
    tr = C.make_trainer(net, rule, C.loss_for(data, cfg.loss))
    return C.train_grid(tr, data, lrs=[g[0] for g in grid], decays=[g[1] for g in grid] if has_decay else None,
                        seeds=cfg.seeds, epochs=cfg.epochs, batch_size=cfg.batch_size, evals=1,
                        on_divergence="record", lr_schedule=cfg.lr_schedule, lr_warmup=cfg.lr_warmup)


def _best(rows: list[dict], metric: str, key) -> tuple | None:
    """The cell with the best mean score among those where every seed finished (a cell that lost a seed sits on
    the edge of stability, where its surviving seeds' mean flatters it); None when no cell kept all its seeds."""
    scores: dict = {}
    for r in rows:
        scores.setdefault(key(r), []).append(r[metric])
    whole = {k: v for k, v in scores.items() if all(x is not None for x in v)}
    return max(whole, key=lambda k: np.mean(whole[k])) if whole else None


def ratio_measurements(rows: list[dict], metric: str, chance: float | None = None) -> dict[str, list[float]]:
    """Per seed, from the stage-2 rows (eta_W = eta_Wbar = 1, ``v`` and ``vbar`` the other two ratios): log2 of
    the best cell's eta_Vbar / eta_W, and the best validation score over the cells where eta_V is (not) strictly
    the smallest rate and where eta_Vbar is (not) strictly the largest. A seed whose every cell of a group diverged
    scores ``chance`` there (an accuracy: 100 / K, what a network with non-finite outputs is worth; Fig. S2's
    point is that such settings fail), NaN without it."""
    fail = math.nan if chance is None else float(chance)
    seeds = sorted({r["seed"] for r in rows})
    out: dict[str, list[float]] = {}
    groups = {K.LR_V_SMALLEST: lambda r: r["v"] < min(1.0, r["vbar"]),
              K.LR_V_NOT_SMALLEST: lambda r: not r["v"] < min(1.0, r["vbar"]),
              K.LR_VBAR_LARGEST: lambda r: r["vbar"] > max(1.0, r["v"]),
              K.LR_VBAR_NOT_LARGEST: lambda r: not r["vbar"] > max(1.0, r["v"])}
    for name, sel in groups.items():
        if any(sel(r) for r in rows):
            out[name] = [max((r[metric] for r in rows if r["seed"] == s and sel(r) and r[metric] is not None),
                             default=fail) for s in seeds]
    best = []
    for s in seeds:
        fin = [r for r in rows if r["seed"] == s and r[metric] is not None]
        best.append(math.log2(max(fin, key=lambda r: r[metric])["vbar"]) if fin else math.nan)
    out[K.LR_BEST_LOG2_VBAR_W] = best
    return out


def run(cfg: SamLrSearchConfig, ctx: RunContext) -> dict:
    full, unavailable = C.load_or_unavailable(cfg, ctx, n_train=cfg.n_train, normalize=cfg.normalize)
    if full is None:
        return unavailable
    data = full.validation_split(cfg.val_fraction, seed=0)
    hp = hyper_from(cfg)
    metric = C.metric_name(full).replace("test_", "val_")
    has_decay = cfg.method in ("sam", "kp")
    grid = list(itertools.product(cfg.lrs, cfg.decays if has_decay else (0.0,)))
    ratio_grid = list(itertools.product(cfg.v_ratios, cfg.vbar_ratios)) if cfg.method == "sam" else []

    with search_context(SEARCH):  # from here to the choice, a read of a test split raises TestSplitRead
        ctx.log(f"searching {len(grid)} (lr, decay) cells for {cfg.method} on {data.name} (validation split)")
        rows = ctx.unit("grid", lambda: _score_rows(_train(cfg, data, hp, grid), grid, data, cfg.method, metric))
        best = _best(rows, metric, lambda r: (r["lr"], r["decay"]))
        ratio_rows = []
        if best is not None:
            for v, vb in ratio_grid:
                label = f"ratios/lr={best[0]:g}/decay={best[1]:g}/v={v:g}/vbar={vb:g}"
                ctx.log(f"stage 2: eta_V = {v:g} eta_W, eta_Vbar = {vb:g} eta_W")
                ratio_rows += ctx.unit(label, lambda v=v, vb=vb: _score_rows(
                    _train(cfg, data, hp, [best], ratios=(1.0, 1.0, v, vb)), [best], data, cfg.method, metric,
                    v=v, vbar=vb))
        best_ratio = _best(ratio_rows, metric, lambda r: (r["v"], r["vbar"])) if ratio_rows else None
    n_div = len({(r["lr"], r["decay"]) for r in rows if r["status"] != "ok"})
    ctx.log(f"grid: lrs={list(cfg.lrs)} decays={list(cfg.decays) if has_decay else [0.0]}; {n_div} of {len(grid)} "
            "cells diverged; best " + (f"lr={best[0]:g} decay={best[1]:g}" if best else "none")
            + (f"; best ratios eta_V = {best_ratio[0]:g}, eta_Vbar = {best_ratio[1]:g} (x eta_W)" if best_ratio else ""))

    def mean_of(sel, key, metric=metric):
        vals = [r[metric] for r in sel if key(r) and r[metric] is not None]
        return float(np.mean(vals)) if vals else None

    best_row = None
    if best is not None:
        ratios = (1.0, 1.0, *best_ratio) if best_ratio else tuple(cfg.sam_ratios)
        best_row = {"lr": best[0], "decay": best[1], "ratios": list(ratios),
                    metric: mean_of(ratio_rows, lambda r: (r["v"], r["vbar"]) == best_ratio) if best_ratio
                    else mean_of(rows, lambda r: (r["lr"], r["decay"]) == best)}
        # the choice is made: train it once on the whole training split and read the test split (outside the search)
        res = ctx.unit(f"final/lr={best[0]:g}/decay={best[1]:g}/ratios={','.join(f'{x:g}' for x in ratios)}",
                       lambda: _score_rows(_train(cfg, full, hp, [best], ratios=ratios if cfg.method == "sam"
                                                  else None), [best], full, cfg.method, C.metric_name(full)))
        best_row[C.metric_name(full)] = mean_of(res, lambda r: True, C.metric_name(full))
    chance = 100 / full.n_classes if "accuracy" in metric else None
    measurements = ratio_measurements(ratio_rows, metric, chance) if ratio_rows else {}
    return {"rows": rows, "ratio_rows": ratio_rows,
            "grid": {"lrs": list(cfg.lrs), "decays": list(cfg.decays) if has_decay else [0.0],
                     "ratios": list(cfg.sam_ratios), "cells": len(grid), "diverged": n_div,
                     "ratio_cells": [list(g) for g in ratio_grid]},
            "best": best_row, "metric": metric, "measurements": measurements}


def plot(results: dict, out: Path) -> None:
    if "grid" not in results:
        return
    g, metric = results["grid"], results["metric"]
    m = np.full((len(g["lrs"]), len(g["decays"])), np.nan)
    for r in results["rows"]:
        if r.get(metric) is not None:
            m[g["lrs"].index(r["lr"]), g["decays"].index(r["decay"])] = r[metric]
    fig, ax = figure(size=(5, 4))
    ax = ax[0, 0]
    im = ax.imshow(m, origin="lower", aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(g["decays"])), [f"{d:g}" for d in g["decays"]], rotation=45, fontsize=7)
    ax.set_yticks(range(len(g["lrs"])), [f"{v:g}" for v in g["lrs"]], fontsize=7)
    ax.set_xlabel("weight decay")
    ax.set_ylabel("overall learning rate")
    ax.set_title(f"{metric} (blank: diverged)")
    fig.colorbar(im, ax=ax)
    save(fig, out / "lr_grid.png")


register(Experiment("sam-lr-search", "the paper's 64-cell search over overall learning rate x weight decay (grid "
                    "vmapped), then over SAM's rate ratios, on a validation split", SamLrSearchConfig, run, plot, paper="sam",
                    quick={"dataset": "digits", "lrs": (0.03, 0.1, 0.3), "decays": (1e-4, 1e-3), "epochs": 2.0,
                           "batch_size": 64, "n_train": None, "hidden": (64, 64, 64), "seeds": 2,
                           "vbar_ratios": (1.0, 4.0), "v_ratios": (0.25, 1.0)}))
