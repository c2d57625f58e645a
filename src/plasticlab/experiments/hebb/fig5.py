"""hebb-fig5: validation loss against Hebbian alignment over the gamma x sigma grid (Fig. 5)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from ...claims.hebb import BEST_FRACTION, FIG5_BEST, FIG5_REST, fig5_gamma_loss, fig5_sigma_loss, grid_setting
from ...plotting import figure, save
from ..base import Experiment, RunContext, register
from .grid import HebbFig4Config, grid_unit


@dataclass
class HebbFig5Config(HebbFig4Config):
    """Same grid as hebb-fig4 (each cell one run per seed); plots loss vs alignment. Its units are hebb-fig4's
    (``units_of``): a hebb-fig4 run folder's ``units/*.json`` copied into this run's ``units/`` are reused when
    the configs agree."""


def run(cfg: HebbFig5Config, ctx: RunContext) -> dict:
    units = [ctx.unit(f"seed={s}", lambda: grid_unit(cfg, s)) for s in range(cfg.seeds)]
    rows = [{"gamma": g, "sigma": s, "seed": k, "alignment": float(u["align"][i][j]),
             "val_loss": float(u["val_loss"][i][j])}
            for k, u in enumerate(units) for i, g in enumerate(cfg.gammas) for j, s in enumerate(cfg.sigmas)]
    ok = [r for r in rows if np.isfinite(r["alignment"]) and np.isfinite(r["val_loss"])]
    a = np.array([r["alignment"] for r in ok])
    v = np.array([r["val_loss"] for r in ok])
    best = ok[int(np.argmin(v))]
    rho = spearmanr(np.abs(a), v).statistic if len(ok) > 2 else float("nan")
    ctx.log(f"best validation loss {best['val_loss']:.4g} at gamma={best['gamma']:g}, sigma={best['sigma']:g}, "
            f"alignment {best['alignment']:.3f}; Spearman(|alignment|, val loss) = {rho:.3f}")
    return {"rows": rows, "best": best, "spearman_abs_alignment_vs_loss": float(rho),
            "val_loss": np.mean([u["val_loss"] for u in units], 0).tolist(),
            "measurements": measurements(cfg, ok)}


def measurements(cfg: HebbFig5Config, ok: list[dict]) -> dict[str, list]:
    """Inputs of the Fig. 5 claims from the finite cells (seed x gamma x sigma): |alignment| of the lowest-loss
    fifth of the cells (at least 2) and of the others; every cell's validation loss per gamma row and per sigma
    column."""
    order = sorted(ok, key=lambda r: r["val_loss"])
    n_best = min(max(2, int(round(BEST_FRACTION * len(order)))), max(0, len(order) - 2))
    out: dict[str, list] = {FIG5_BEST: [abs(r["alignment"]) for r in order[:n_best]],
                            FIG5_REST: [abs(r["alignment"]) for r in order[n_best:]]}
    for g in cfg.gammas:
        out[fig5_gamma_loss(g)] = [r["val_loss"] for r in ok if r["gamma"] == g]
    for s in cfg.sigmas:
        out[fig5_sigma_loss(s)] = [r["val_loss"] for r in ok if r["sigma"] == s]
    pre = grid_setting(cfg.rule, cfg.noise)  # another rule or noise never feeds the Fig. 5 claims
    return {pre + k: v for k, v in out.items()}


def plot(results: dict, out: Path) -> None:
    cfg = results["config"]
    rows = results["rows"]
    fig, ax = figure(1, 2, size=(4.6, 3.8))
    im = ax[0, 0].imshow(np.log10(np.asarray(results["val_loss"], float)), origin="lower", aspect="auto",
                         cmap="viridis")
    ax[0, 0].set_xticks(range(len(cfg["sigmas"])), [f"{v:g}" for v in cfg["sigmas"]], rotation=60, fontsize=6)
    ax[0, 0].set_yticks(range(len(cfg["gammas"])), [f"{v:g}" for v in cfg["gammas"]], fontsize=6)
    ax[0, 0].set_xlabel("sigma")
    ax[0, 0].set_ylabel("gamma")
    ax[0, 0].set_title(f"mean of n = {cfg['seeds']} seed(s) per cell; right: every seed", fontsize=8)
    fig.colorbar(im, ax=ax[0, 0], label="log10 validation loss")
    sc = ax[0, 1].scatter([r["alignment"] for r in rows], [r["val_loss"] for r in rows],
                          c=np.log10([r["gamma"] for r in rows]), cmap="plasma", s=14)
    fig.colorbar(sc, ax=ax[0, 1], label="log10 gamma")
    ax[0, 1].set_yscale("log")
    ax[0, 1].set_xlabel("Hebbian alignment")
    ax[0, 1].set_ylabel("validation loss")
    save(fig, out / "fig5_loss_vs_alignment.png")


register(Experiment("hebb-fig5", "Validation loss against Hebbian alignment on the gamma x sigma grid (Fig. 5)",
                    HebbFig5Config, run, plot, paper="hebb", units_of="hebb-fig4",
                    quick={"n_train": 1024, "n_val": 256, "d": 16, "hidden": (32, 32), "epochs": 12.0,
                           "batch_size": 64, "log_every": 8, "window": 40,
                           "lr": 0.2, "max_epochs": None}))  # the default gamma x sigma grid: the cells the claims name
