"""hebb-fig5: validation loss against Hebbian alignment over the gamma x sigma grid (Fig. 5)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from ..plotting import figure, save
from .base import Experiment, RunContext, paper_entry, register, verdict
from .hebb_fig4 import HebbFig4Config, grid_unit


@dataclass
class HebbFig5Config(HebbFig4Config):
    """Same grid as hebb-fig4 (each cell one run per seed); plots loss vs alignment."""


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
            "paper": paper_rows(cfg, ok, best, float(rho))}


def paper_rows(cfg: HebbFig5Config, ok: list[dict], best: dict, rho: float) -> list[dict]:
    """Fig. 5 beside ours: the best cell is neither Hebbian nor anti-Hebbian (|alignment| below the grid's median),
    the loss is lowest at the smallest gamma and sigma, and low |alignment| goes with low loss (Spearman > 0)."""
    where = f"Fig. 5 (SRE, {cfg.seeds} seed(s) per cell)"
    med = float(np.median(np.abs([r["alignment"] for r in ok])))
    corner = best["gamma"] == min(cfg.gammas) and best["sigma"] == min(cfg.sigmas)
    return [
        paper_entry("best validation loss where alignment is weak (|alignment| of the best cell below the grid's "
                    "median)", "yes", verdict(abs(best["alignment"]) < med), where=where,
                    note=f"best cell |alignment| {abs(best['alignment']):.3f}, median {med:.3f}"),
        paper_entry("validation loss falls as gamma and sigma get smaller (best at the smallest of both)", "yes",
                    verdict(bool(corner)), where=where,
                    note=f"best {best['val_loss']:.3g} at gamma={best['gamma']:g}, sigma={best['sigma']:g}"),
        paper_entry("low |alignment| goes with low validation loss (Spearman(|alignment|, loss) > 0)", "yes",
                    verdict(rho > 0 if np.isfinite(rho) else f"{len(ok)} finite cells, too few for a correlation"),
                    where=where, note=f"Spearman {rho:.3f} over {len(ok)} cells"),
    ]


def plot(results: dict, out: Path) -> None:
    cfg = results["config"]
    rows = results["rows"]
    fig, ax = figure(1, 2, size=(4.6, 3.8))
    im = ax[0, 0].imshow(np.log10(np.asarray(results["val_loss"], float)), origin="lower", aspect="auto",
                         cmap="viridis")
    ax[0, 0].set_xticks(range(len(cfg["sigmas"])), [f"{v:.2g}" for v in cfg["sigmas"]], rotation=60, fontsize=6)
    ax[0, 0].set_yticks(range(len(cfg["gammas"])), [f"{v:.2g}" for v in cfg["gammas"]], fontsize=6)
    ax[0, 0].set_xlabel("sigma")
    ax[0, 0].set_ylabel("gamma")
    fig.colorbar(im, ax=ax[0, 0], label="log10 validation loss")
    sc = ax[0, 1].scatter([r["alignment"] for r in rows], [r["val_loss"] for r in rows],
                          c=np.log10([r["gamma"] for r in rows]), cmap="plasma", s=14)
    fig.colorbar(sc, ax=ax[0, 1], label="log10 gamma")
    ax[0, 1].set_yscale("log")
    ax[0, 1].set_xlabel("Hebbian alignment")
    ax[0, 1].set_ylabel("validation loss")
    save(fig, out / "fig5_loss_vs_alignment.png")


register(Experiment("hebb-fig5", "Validation loss against Hebbian alignment on the gamma x sigma grid (Fig. 5)",
                    HebbFig5Config, run, plot, paper="hebb",
                    quick={"n_train": 1024, "n_val": 256, "d": 16, "hidden": (32, 32), "epochs": 12.0,
                           "batch_size": 64, "log_every": 8, "window": 40,
                           "gammas": (3e-3, 1e-2, 3e-2), "sigmas": (3e-3, 1e-2, 3e-2, 0.1, 0.3), "lr": 0.2}))
