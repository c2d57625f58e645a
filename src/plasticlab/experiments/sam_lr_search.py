"""sam-lr-search: the paper's search over 64 (overall learning rate, weight decay) combinations, fixed ratios.

All cells of the grid (and all seeds) train at once under one jit/vmap; diverging cells are
recorded as diverged (with step and matrix) instead of stopping the search. The best cell by
final validation metric is reported. Validation is a held-out part of the training set
(``val_fraction``), so the test set stays untouched by the search.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import Dataset
from ..plotting import figure, save
from . import _sam_common as C
from .base import Experiment, RunContext, register
from .sam_table1 import hyper_from


@dataclass
class SamLrSearchConfig:
    """Grid = lrs x decays (8 x 8 = 64 by default) for ``method`` (sam or a baseline: sgd, fa, wm, kp)."""

    dataset: str = "mnist"
    method: str = "sam"
    lrs: tuple[float, ...] = (0.003, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)
    decays: tuple[float, ...] = (0.0, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
    hidden: tuple[int, ...] = (200, 200, 200)
    loss: str = "cross_entropy"
    epochs: float = 3.0
    batch_size: int = 256
    seeds: int = 1
    n_train: int | None = 20000
    val_fraction: float = 0.2
    sam_ratios: tuple[float, ...] = C.Hyper.sam_ratios


def _split(data: Dataset, frac: float, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(data.x_train))
    n_val = max(1, int(round(frac * len(idx))))
    va, tr = np.sort(idx[:n_val]), np.sort(idx[n_val:])
    return Dataset(data.name, data.x_train[tr], data.y_train[tr], data.x_train[va], data.y_train[va],
                   data.n_classes, data.task, data.image_shape, dict(data.meta, split="train/validation"))


def run(cfg: SamLrSearchConfig, ctx: RunContext) -> dict:
    data, reason = C.data_or_reason(cfg.dataset, ctx.data_dir, n_train=cfg.n_train)
    if data is None:
        ctx.log(f"[yellow]{cfg.dataset}: {reason}[/yellow]")
        return {"rows": [{"dataset": cfg.dataset, "status": reason}]}
    data = _split(data, cfg.val_fraction)
    hp = hyper_from(cfg)
    metric = C.metric_name(data).replace("test_", "val_")
    has_decay = cfg.method in ("sam", "kp")
    grid = list(itertools.product(cfg.lrs, cfg.decays if has_decay else (0.0,)))

    def unit():
        net = C.make_net(data, tuple(cfg.hidden))
        rule = C.make_rule(cfg.method, hp)
        tr = C.make_trainer(net, rule, C.loss_for(data, cfg.loss))
        res = C.train_grid(tr, data, lrs=[g[0] for g in grid], decays=[g[1] for g in grid] if has_decay else None,
                           seeds=cfg.seeds, epochs=cfg.epochs, batch_size=cfg.batch_size, evals=1,
                           on_divergence="record")
        fin = res.final(C.metric_name(data)) * 100
        return [{"dataset": data.name, "method": cfg.method, "lr": lr, "decay": dec, "seed": s,
                 metric: (None if res.diverged[c] else float(fin[c, i])), "status": res.diverged[c] or "ok"}
                for c, (lr, dec) in enumerate(grid) for i, s in enumerate(res.seeds)]

    ctx.log(f"searching {len(grid)} (lr, decay) cells for {cfg.method} on {data.name}")
    rows = ctx.unit("grid", unit)
    means = {}
    for r in rows:
        if r[metric] is not None:
            means.setdefault((r["lr"], r["decay"]), []).append(r[metric])
    best = max(means, key=lambda k: np.mean(means[k])) if means else None
    n_div = len({(r["lr"], r["decay"]) for r in rows if r["status"] != "ok"})
    ctx.log(f"grid: lrs={list(cfg.lrs)} decays={list(cfg.decays) if has_decay else [0.0]} "
            f"ratios(W,Wbar,V,Vbar)={list(cfg.sam_ratios)}; {n_div} of {len(grid)} cells diverged; best "
            + (f"lr={best[0]:g} decay={best[1]:g} with {metric} {np.mean(means[best]):.2f}" if best else "none"))
    return {"rows": rows, "grid": {"lrs": list(cfg.lrs), "decays": list(cfg.decays) if has_decay else [0.0],
                                   "ratios": list(cfg.sam_ratios), "cells": len(grid)},
            "best": {"lr": best[0], "decay": best[1], metric: float(np.mean(means[best]))} if best else None,
            "metric": metric}


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


register(Experiment("sam-lr-search", "the paper's 64-cell search over overall learning rate x weight decay at fixed "
                    "rate ratios (grid vmapped)", SamLrSearchConfig, run, plot, paper="sam",
                    quick={"dataset": "digits", "lrs": (0.03, 0.1, 0.3), "decays": (1e-4, 1e-3), "epochs": 2.0,
                           "batch_size": 64, "n_train": None, "hidden": (64, 64, 64)}))
