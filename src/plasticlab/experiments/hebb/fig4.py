"""hebb-fig4: gamma x sigma phase diagram of the Hebbian alignment (SGD on SRE), boundary gamma ~ sigma^p (Fig. 4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...plotting import figure, save
from ...claims.hebb import BOUNDARY_GAMMA, BOUNDARY_SIGMA, PAPER_EXPONENT, cell
from ..base import Experiment, RunContext, register
from .grid import HebbFig4Config, grid_unit


def zero_crossings(gammas, sigmas, align) -> list[tuple[float, float]]:
    """(gamma, sigma*) where the alignment of row gamma first turns negative as sigma grows (log-linear interp)."""
    out = []
    ls = np.log(np.asarray(sigmas, float))
    for g, row in zip(gammas, np.asarray(align, float)):
        for j in range(len(row) - 1):
            a0, a1 = row[j], row[j + 1]
            if np.isfinite(a0) and np.isfinite(a1) and a0 > 0 >= a1:
                out.append((float(g), float(np.exp(ls[j] + (ls[j + 1] - ls[j]) * a0 / (a0 - a1)))))
                break
    return out


def learned_rows(val_loss, ratio: float = 0.5) -> np.ndarray:
    """Rows (gammas) whose noise-free cell learned the task: validation loss below ``ratio`` times the grid's
    worst (about the constant predictor's); rows that weight decay alone has (half) collapsed are left out."""
    v = np.asarray(val_loss, float)
    return v[:, 0] < ratio * np.nanmax(v)


def fit_boundary(points: list[tuple[float, float]]) -> dict:
    """Least-squares fit log gamma = log c + p log sigma* (the paper predicts p = 2)."""
    if len(points) < 2:
        return {"exponent": None, "log_c": None, "n_points": len(points)}
    g, s = np.log(np.array(points)).T
    p, c = np.polyfit(s, g, 1)
    return {"exponent": float(p), "log_c": float(c), "n_points": len(points)}


def grid_measurements(cfg, units: list[dict]) -> dict[str, list]:
    """Per gamma x sigma cell: every seed's alignment and validation loss (None where non-finite)."""
    def fin(v):
        v = float(v)
        return v if np.isfinite(v) else None

    out: dict[str, list] = {}
    for i, g in enumerate(cfg.gammas):
        for j, s in enumerate(cfg.sigmas):
            out[cell(g, s)] = [fin(u["align"][i][j]) for u in units]
            out[cell(g, s, "val_loss")] = [fin(u["val_loss"][i][j]) for u in units]
    return out


def boundary_measurements(cfg, units: list[dict], keep: np.ndarray) -> dict[str, list]:
    """The boundary points of every seed's grid (learned gamma rows only): matched lists of sigma* and gamma, the
    inputs of the exponent claim (one point per seed and row that crosses zero)."""
    sig, gam = [], []
    for u in units:
        for g, s in zero_crossings(np.asarray(cfg.gammas)[keep], cfg.sigmas, np.asarray(u["align"], float)[keep]):
            sig.append(s)
            gam.append(g)
    return {BOUNDARY_SIGMA: sig, BOUNDARY_GAMMA: gam}


def run(cfg: HebbFig4Config, ctx: RunContext) -> dict:
    units = [ctx.unit(f"seed={s}", lambda: grid_unit(cfg, s)) for s in range(cfg.seeds)]
    align = np.mean([u["align"] for u in units], axis=0)
    val = np.mean([u["val_loss"] for u in units], axis=0)
    keep = learned_rows(val, cfg.fit_max_loss_ratio)
    pts = zero_crossings(np.asarray(cfg.gammas)[keep], cfg.sigmas, align[keep])
    fit = fit_boundary(pts)
    fit["excluded_gammas"] = [g for g, k in zip(cfg.gammas, keep) if not k]
    ctx.log(f"zero-alignment boundary points (gamma, sigma*): {[(f'{g:g}', f'{s:.3g}') for g, s in pts]}")
    ctx.log(f"fit gamma ~ sigma^p: p = {fit['exponent']} (paper: {PAPER_EXPONENT:g})")
    rows = [{"gamma": g, "sigma": s, "seed": k, "alignment": float(units[k]["align"][i][j]),
             "val_loss": float(units[k]["val_loss"][i][j]), "collapsed": bool(units[k]["collapsed"][i][j])}
            for k in range(cfg.seeds) for i, g in enumerate(cfg.gammas) for j, s in enumerate(cfg.sigmas)]
    return {"rows": rows, "align": align.tolist(), "val_loss": val.tolist(), "boundary_points": pts, "fit": fit,
            "n_steps": units[0]["n_steps"],
            "measurements": {**grid_measurements(cfg, units), **boundary_measurements(cfg, units, keep)}}


def plot(results: dict, out: Path) -> None:
    cfg = results["config"]
    g, s = np.asarray(cfg["gammas"]), np.asarray(cfg["sigmas"])
    a = np.asarray(results["align"], float)
    fig, ax = figure(1, 3, size=(4.6, 3.8))
    lim = np.nanmax(np.abs(a)) if np.isfinite(a).any() else 1.0
    im = ax[0, 0].imshow(a, origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax[0, 0].set_xticks(range(len(s)), [f"{v:.2g}" for v in s], rotation=60, fontsize=6)
    ax[0, 0].set_yticks(range(len(g)), [f"{v:.2g}" for v in g], fontsize=6)
    ax[0, 0].set_xlabel(f"{cfg['noise']} noise sigma")
    ax[0, 0].set_ylabel("weight decay gamma")
    fig.colorbar(im, ax=ax[0, 0], label="Hebbian alignment")
    fit = results["fit"]
    if fit["exponent"] is not None:
        ls = np.log(s)
        gg = np.exp(fit["log_c"] + fit["exponent"] * ls)
        # map to pixel coordinates (index space, log-linear)
        gi = np.interp(np.log(gg), np.log(g), np.arange(len(g)), left=np.nan, right=np.nan)
        ax[0, 0].plot(np.arange(len(s)), gi, "k--", lw=1, label=f"gamma ~ sigma^{fit['exponent']:.2f}")
        ax[0, 0].legend(fontsize=6, loc="upper left")
    for i, gv in enumerate(g):
        ax[0, 1].semilogx(s, a[i], marker="o", label=f"gamma={gv:g}")
    ax[0, 1].axhline(0, color="k", lw=0.5)
    ax[0, 1].set_xlabel("sigma")
    ax[0, 1].set_title("varying noise")
    ax[0, 1].legend(fontsize=5)
    for j, sv in enumerate(s):
        ax[0, 2].semilogx(g, a[:, j], marker="o", label=f"sigma={sv:g}")
    ax[0, 2].axhline(0, color="k", lw=0.5)
    ax[0, 2].set_xlabel("gamma")
    ax[0, 2].set_title("varying weight decay")
    ax[0, 2].legend(fontsize=5)
    save(fig, out / "fig4_phase_diagram.png")


register(Experiment("hebb-fig4", "gamma x sigma heatmap of the Hebbian alignment (SGD, SRE) with the fitted "
                    "gamma ~ sigma^p boundary and the two slices (Fig. 4)", HebbFig4Config, run, plot,
                    paper="hebb",
                    quick={"n_train": 1024, "n_val": 256, "d": 16, "hidden": (32, 32), "epochs": 12.0,
                           "batch_size": 64, "log_every": 8, "window": 40,
                           "lr": 0.2}))  # the default gamma x sigma grid: the cells the claims name
