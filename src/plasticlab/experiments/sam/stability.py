"""sam-stability: SAM's edge of stability over (learning rate, weight decay), many seeds per cell, and a default
chosen with a safety margin, all on a validation split.

Every cell (lr, gamma) of ``lrs`` x ``decays`` trains ``seeds`` seeds of the sam-table1 setting (``SamConfig``) on
``Dataset.validation_split(val_fraction)`` of the training data. Per seed: the final validation accuracy, or, for a
diverged seed, the first step and the first matrix that became non-finite or exceeded 1e6 (``History.divergences``);
per finished seed the peak over the probes and hidden levels k of lr x lambda_max(H[k]) (H = Vbar Vbar^T; with the
nominal rate lr, the effective rate of W's sharpest direction, Theorem 1). A cell is *safe* when every seed finishes there and at the
next rate >= ``margin`` x lr of the grid (same gamma); the default is the safe cell with the best mean validation
accuracy. It is then trained once on the whole training split and scored on the test split, after the choice.
"""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import numpy as np

from ...data import search_context
from ...plotting import figure, save
from ...settings import setting
from ...training import fit_steps
from . import common as C
from .analysis import _on_host
from .common import sam_setting
from ..base import Experiment, RunContext, register

SEARCH = "sam-stability"


@C.sam_config
class SamStabilityConfig(C.SamConfig):
    """The sam-table1 setting for SAM (784-200-200-200-10, batch 256, 30 epochs, 15% warm-up) over a rate x decay grid."""

    dataset: str = sam_setting("dataset", "mnist")
    lrs: tuple[float, ...] = setting((0.144, 0.173, 0.207, 0.249, 0.3), gt=0,
                                     doc="overall rates of the grid (x1.2 apart, so that the margin test reads the "
                                         "next one)")
    decays: tuple[float, ...] = setting((4e-4, 8e-4, 1.6e-3), ge=0, doc="weight decays gamma of the grid")
    epochs: float = sam_setting("epochs", 30.0)
    seeds: int = sam_setting("seeds", 10, doc="independent seeds per cell, run together under vmap")
    evals: int = sam_setting("evals", 10)
    val_fraction: float = sam_setting("val_fraction", 0.2)
    margin: float = setting(1.2, ge=1, doc="a safe cell also has every seed finite at the next rate >= margin x lr")
    on_divergence: str = sam_setting("on_divergence", "record", choices=("record",),
                                     doc='"record" (the only choice: a diverged seed is what this measures)')


def probe(tr, state, x, t) -> dict:
    """Per hidden level k: lr x lambda_max(H[k]), H = Vbar[k] Vbar[k]^T (the nominal rate times H's largest
    eigenvalue: the effective rate along W's sharpest direction), and the probe loss."""
    fb = state.rule_state
    out = {"loss": tr.loss.value(tr.net.forward(state.params, x), t)}
    for k in range(tr.net.n_layers - 1):
        H = fb.Vbar[k] @ fb.Vbar[k].T
        out[f"top_rate_{k}"] = tr.rule.lr * _on_host(np.linalg.eigvalsh, H, 2)[..., -1]
    return out


def _cell(cfg: SamStabilityConfig, val, lr: float, decay: float) -> list[dict]:
    tr = C.sam_trainer(cfg, val)
    res = C.train_grid(tr, val, lrs=[lr], decays=[decay], seeds=cfg.seeds, epochs=cfg.epochs,
                       batch_size=cfg.batch_size, evals=cfg.evals, on_divergence="record", probe=probe,
                       lr_schedule=cfg.lr_schedule, lr_warmup=cfg.lr_warmup)
    total = fit_steps(len(val.x_train), cfg.batch_size, cfg.epochs)
    div = {r["seed"]: r for r in res.divergences}
    tops = np.stack([res.curves[k][0] for k in res.curves if k.startswith("top_rate_")])  # (levels, seeds, probes)
    rows = []
    for i, s in enumerate(res.seeds):
        d = div.get(s)
        rows.append({"lr": lr, "decay": decay, "seed": s,
                     "val_accuracy": None if d else float(res.curves["test_accuracy"][0, i, -1] * 100),
                     "status": "diverged" if d else "ok", "step": d["step"] if d else None,
                     "fraction_of_training": d["step"] / total if d else None, "matrix": d["matrix"] if d else None,
                     "peak_top_rate": None if d else float(np.nanmax(tops[:, i])),
                     "warmup_end_step": int(round(cfg.lr_warmup * total))})
    return rows


def safe_cells(rows: list[dict], lrs, decays, margin: float) -> dict[tuple[float, float], bool]:
    """Per cell: every seed finished there and at the smallest grid rate >= margin x lr (times 0.99, for grids
    rounded to three digits) with the same decay; False where no such rate is in the grid."""
    finished = {(lr, d): all(r["status"] == "ok" for r in rows if (r["lr"], r["decay"]) == (lr, d))
                for lr, d in itertools.product(lrs, decays)}
    out = {}
    for lr, d in finished:
        higher = sorted(v for v in lrs if v >= 0.99 * margin * lr)
        out[(lr, d)] = finished[(lr, d)] and bool(higher) and finished[(higher[0], d)]
    return out


def run(cfg: SamStabilityConfig, ctx: RunContext) -> dict:
    full, unavailable = C.load_or_unavailable(cfg, ctx)
    if full is None:
        return unavailable
    val = full.validation_split(cfg.val_fraction, seed=0)
    rows = []
    with search_context(SEARCH):  # from here to the choice, a read of a test split raises TestSplitRead
        for decay, lr in itertools.product(cfg.decays, cfg.lrs):
            ctx.log(f"lr {lr:g}, gamma {decay:g}: {cfg.seeds} seeds on the validation split")
            rows += ctx.unit(f"lr={lr:g}/decay={decay:g}", lambda lr=lr, decay=decay: _cell(cfg, val, lr, decay))
        safe = safe_cells(rows, cfg.lrs, cfg.decays, cfg.margin)
        cells = []
        for lr, d in itertools.product(cfg.lrs, cfg.decays):
            sel = [r for r in rows if (r["lr"], r["decay"]) == (lr, d)]
            acc = [r["val_accuracy"] for r in sel if r["val_accuracy"] is not None]
            peaks = [r["peak_top_rate"] for r in sel if r["peak_top_rate"] is not None]
            cells.append({"lr": lr, "decay": d, "finished": len(acc), "seeds": len(sel), "safe": safe[(lr, d)],
                          "val_accuracy_mean": float(np.mean(acc)) if acc else None,
                          "val_accuracy_std": float(np.std(acc)) if acc else None,
                          "peak_top_rate_max": float(np.max(peaks)) if peaks else None,
                          "divergence_steps": sorted(r["step"] for r in sel if r["step"] is not None),
                          "first_matrices": dict(Counter(r["matrix"] for r in sel if r["matrix"] is not None))})
        chosen = max((c for c in cells if c["safe"]), key=lambda c: c["val_accuracy_mean"], default=None)
    ctx.log(f"{sum(c['finished'] < c['seeds'] for c in cells)} of {len(cells)} cells lost a seed; default: "
            + (f"lr {chosen['lr']:g}, gamma {chosen['decay']:g} (validation {chosen['val_accuracy_mean']:.2f})"
               if chosen else "none safe"))
    test = None
    if chosen is not None:  # the choice is made: train it on the whole training split and read the test split once
        def final():
            tr = C.sam_trainer(cfg, full)
            res = C.train_grid(tr, full, lrs=[chosen["lr"]], decays=[chosen["decay"]], seeds=cfg.seeds,
                               epochs=cfg.epochs, batch_size=cfg.batch_size, evals=1, on_divergence="record",
                               lr_schedule=cfg.lr_schedule, lr_warmup=cfg.lr_warmup)
            acc = res.final("test_accuracy")[0] * 100
            return {"test_accuracy": [float(v) if np.isfinite(v) else None for v in acc]}

        test = ctx.unit(f"final/lr={chosen['lr']:g}/decay={chosen['decay']:g}", final)
    summary = [{"lr": c["lr"], "decay": c["decay"], "finished": f"{c['finished']}/{c['seeds']}", "safe": c["safe"],
                "val_accuracy": c["val_accuracy_mean"], "peak lr x lambda_max(H)": c["peak_top_rate_max"],
                "first divergence step": min(c["divergence_steps"], default=None)} for c in cells]
    return {"rows": rows, "cells": cells, "summary": summary, "chosen": chosen, "final": test,
            "grid": {"lrs": list(cfg.lrs), "decays": list(cfg.decays), "seeds": cfg.seeds, "margin": cfg.margin}}


def plot(results: dict, out: Path) -> None:
    if "cells" not in results:
        return
    g = results["grid"]
    frac = np.full((len(g["lrs"]), len(g["decays"])), np.nan)
    acc = np.full_like(frac, np.nan)
    for c in results["cells"]:
        i, j = g["lrs"].index(c["lr"]), g["decays"].index(c["decay"])
        frac[i, j] = c["finished"] / c["seeds"]
        acc[i, j] = c["val_accuracy_mean"] if c["val_accuracy_mean"] is not None else np.nan
    fig, axes = figure(1, 2, size=(4.6, 3.8))
    for ax, m, title, cmap in ((axes[0, 0], frac, f"seeds finished (of {g['seeds']})", "RdYlGn"),
                               (axes[0, 1], acc, "validation accuracy % (mean of finished seeds)", "viridis")):
        im = ax.imshow(m, origin="lower", aspect="auto", cmap=cmap)
        for i, j in itertools.product(range(m.shape[0]), range(m.shape[1])):
            if np.isfinite(m[i, j]):
                txt = f"{round(m[i, j] * g['seeds'])}" if m is frac else f"{m[i, j]:.2f}"
                ax.text(j, i, txt, ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(g["decays"])), [f"{d:g}" for d in g["decays"]], fontsize=7)
        ax.set_yticks(range(len(g["lrs"])), [f"{v:g}" for v in g["lrs"]], fontsize=7)
        ax.set_xlabel("weight decay gamma (rate-scaled)")
        ax.set_ylabel("overall learning rate")
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax)
    if results.get("chosen"):
        c = results["chosen"]
        axes[0, 1].scatter([g["decays"].index(c["decay"])], [g["lrs"].index(c["lr"])], s=300, facecolors="none",
                           edgecolors="red", label=f"default (safe at x{g['margin']:g} rate)")
        axes[0, 1].legend(fontsize=7, loc="upper right")
    save(fig, out / "stability.png")


register(Experiment(SEARCH, "SAM's edge of stability over learning rate x weight decay (seeds per cell, validation "
                    "split) and a default with a safety margin", SamStabilityConfig, run, plot, paper="sam",
                    quick={"dataset": "digits", "lrs": (0.1, 0.3), "decays": (4e-4,), "epochs": 3.0,
                           "batch_size": 64, "seeds": 3, "evals": 2, "hidden": (64, 64, 64), "margin": 3.0}))
