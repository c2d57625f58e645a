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
from ..settings import setting
from . import _sam_common as C
from ._sam_common import sam_setting
from .base import Experiment, RunContext, paper_entry, register, verdict
from .sam_table1 import hyper_from


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
    val_fraction: float = setting(0.2, gt=0, lt=1, doc="fraction of the (subset) training split held out for "
                                                      "validation (at least 1 sample)")
    sam_ratios: tuple[float, ...] = sam_setting("sam_ratios", C.Hyper.sam_ratios,
                                                doc="SAM's fixed rate ratios of (W, Wbar, V, Vbar), exactly 4")
    sam_decay_scaling: str = sam_setting("sam_decay_scaling", "none")
    sam_vbar_scale: float = sam_setting("sam_vbar_scale", 1.0)
    use_bias: bool = sam_setting("use_bias", False)
    normalize: str = sam_setting("normalize", "none")
    lr_schedule: str = sam_setting("lr_schedule", "constant")
    lr_warmup: float = sam_setting("lr_warmup", 0.0)

    def validate(self) -> None:
        C.check_ratios(self.sam_ratios)


def _split(data: Dataset, frac: float, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(data.x_train))
    n_val = max(1, int(round(frac * len(idx))))
    va, tr = np.sort(idx[:n_val]), np.sort(idx[n_val:])
    return Dataset(data.name, data.x_train[tr], data.y_train[tr], data.x_train[va], data.y_train[va],
                   data.n_classes, data.task, data.image_shape, dict(data.meta, split="train/validation"))


def run(cfg: SamLrSearchConfig, ctx: RunContext) -> dict:
    data, reason = C.data_or_reason(cfg.dataset, ctx.data_dir, n_train=cfg.n_train, normalize=cfg.normalize)
    if data is None:
        ctx.log(f"[yellow]{cfg.dataset}: {reason}[/yellow]")
        return {"rows": [{"dataset": cfg.dataset, "status": reason}],
                "paper": paper_rows(cfg.method, 0, 0, None, "", tuple(cfg.sam_ratios), unavailable=reason)}
    data = _split(data, cfg.val_fraction)
    hp = hyper_from(cfg)
    metric = C.metric_name(data).replace("test_", "val_")
    has_decay = cfg.method in ("sam", "kp")
    grid = list(itertools.product(cfg.lrs, cfg.decays if has_decay else (0.0,)))

    def unit():
        net = C.make_net(data, tuple(cfg.hidden), use_bias=cfg.use_bias)
        rule = C.make_rule(cfg.method, hp, decay_scaling=cfg.sam_decay_scaling,
                           vbar_scale=cfg.sam_vbar_scale)  # sam_kw: ignored by baselines
        tr = C.make_trainer(net, rule, C.loss_for(data, cfg.loss))
        res = C.train_grid(tr, data, lrs=[g[0] for g in grid], decays=[g[1] for g in grid] if has_decay else None,
                           seeds=cfg.seeds, epochs=cfg.epochs, batch_size=cfg.batch_size, evals=1,
                           on_divergence="record", lr_schedule=cfg.lr_schedule, lr_warmup=cfg.lr_warmup)
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
    best_row = {"lr": best[0], "decay": best[1], metric: float(np.mean(means[best]))} if best else None
    return {"rows": rows, "grid": {"lrs": list(cfg.lrs), "decays": list(cfg.decays) if has_decay else [0.0],
                                   "ratios": list(cfg.sam_ratios), "cells": len(grid)},
            "best": best_row, "metric": metric,
            "paper": paper_rows(cfg.method, len(grid), n_div, best_row, metric, tuple(cfg.sam_ratios))}


def paper_rows(method: str, cells: int, n_diverged: int, best: dict | None, metric: str,
               ratios: tuple[float, ...], unavailable: str | None = None) -> list[dict]:
    """App. A / C.4 and Fig. S2 beside ours: 64 (rate, decay) combinations searched at fixed rate ratios, eta_Vbar
    about 4 x eta_W, eta_V the smallest rate (Fig. S2: the best performance is when eta_V is smallest).

    Our search keeps the ratios fixed, as the paper's did; the ratio rows state our setting, Fig. S2's
    variation of the individual rates is not rerun.
    """
    eta = dict(zip(("W", "Wbar", "V", "Vbar"), ratios))
    if method != "sam":
        ratio_vbar_w: float | str = f"not a SAM search (method={method})"
        v_smallest = ratio_vbar_w
    else:
        ratio_vbar_w = eta["Vbar"] / eta["W"]
        v_smallest = verdict(eta["V"] < min(v for k, v in eta.items() if k != "V"))
    if unavailable is not None:
        search = f"not run: {unavailable}"
    else:
        search = f"{n_diverged} of {cells} cells diverged; best " + (
            f"lr {best['lr']:g}, decay {best['decay']:g} ({metric} {best[metric]:.1f})" if best else "none")
    rates = "fixed ratios (W, Wbar, V, Vbar) = (" + ", ".join(f"{v:g}" for v in ratios) + ")"
    return [
        paper_entry("learning-rate combinations searched", 64, cells if unavailable is None else "not run",
                    tolerance=0, where="App. A", note="ours: overall rate x weight decay at fixed ratios; " + search),
        paper_entry("eta_Vbar / eta_W", 4.0, ratio_vbar_w, tolerance=0.5,
                    where="App. C.4 (Vbar 'usually four times that of W')", note=rates),
        paper_entry("eta_V the smallest of the four rates", "yes", v_smallest,
                    where="Fig. S2 (best when eta_V is smallest)", note=rates + "; Fig. S2's rate variation not rerun"),
    ]


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
