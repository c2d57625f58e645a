"""The gamma x sigma grid shared by hebb-fig4 (alignment phase diagram, SGD and weight noise), hebb-fig5 (loss vs
alignment), hebb-fig13 (Adam) and hebb-fig14 (input noise): the config, one seed's grid unit, the boundary fit,
the measurements and the phase-diagram run and plot."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from ...rules.hebb_optim import RULES
from ...settings import setting
from . import common as H
from ...claims.hebb import (BOUNDARY_GAMMA, BOUNDARY_SIGMA, FIG4_GAMMAS, FIG4_SIGMAS, PAPER_EXPONENT, cell,
                            grid_setting)
from ...plotting import figure, save
from ..base import Experiment, RunContext
from .common import run_grid, spec_for, sre_data


NOISES = ("weight", "input")


@dataclass
class HebbFig4Config(H.UntilStationary):
    """SGD on the SRE with weight noise sigma injected before every step (``noise="input"``: input noise)."""

    gammas: tuple[float, ...] = setting(FIG4_GAMMAS, gt=0,
                                        doc="weight decays, increasing (> 0: the boundary is fitted in log gamma)")
    sigmas: tuple[float, ...] = setting(FIG4_SIGMAS, gt=0,
                                        doc="noise standard deviations, increasing (> 0: read on a log scale; the "
                                            "smallest stands for noise-free)")
    noise: str = setting("weight", choices=NOISES, doc='"weight": noise sigma on the weights before every step; '
                                                       '"input": on the inputs')
    noise_mode: str = setting("perturbed", choices=H.NOISE_MODES,
                              doc='"perturbed": only the learning signal sees the noisy weights; "persistent": '
                                  'the noise stays in the weights')
    rule: str = setting("sgd", choices=RULES, doc="learning rule (with its Table 1 clipping and biases)")
    seeds: int = setting(1, ge=1, le=1000, doc="seeds per cell (one vmapped grid run each)")
    n_train: int = setting(20000, ge=1, le=10_000_000, doc="SRE training samples")
    n_val: int = setting(2000, ge=1, le=10_000_000, doc="SRE validation samples")
    teacher_init: str = H.hebb_setting("teacher_init", H.TEACHER_INIT)
    d: int = setting(32, ge=1, le=H.MAX_WIDTH, doc="SRE input and output dimension")
    hidden: tuple[int, ...] = setting((128, 128), ge=1, le=H.MAX_WIDTH,
                                      doc="hidden widths of the student (and of the teacher)")
    epochs: float = H.hebb_setting("epochs", 25.0)
    batch_size: int = setting(256, ge=1, le=100_000, doc="minibatch size (<= n_train)")
    lr: float = setting(0.1, gt=0, doc="learning rate")
    layer: int = setting(2, ge=1, le=1000, doc="1-based MLP layer whose alignment is mapped (<= len(hidden) + 1)")
    log_every: int = setting(10, ge=1, le=100_000, doc="steps between alignment logs")
    window: int = setting(100, ge=1, le=H.MAX_STEPS, doc="final alignment: mean over the logs of the last this "
                                                        "many steps")
    fit_max_loss_ratio: float = setting(0.5, gt=0, doc="fit only gamma rows whose noise-free val. loss < ratio * "
                                                       "grid maximum (> 1: every row)")

    def validate(self) -> None:
        H.check_increasing("gammas", self.gammas)
        H.check_increasing("sigmas", self.sigmas)
        H.check_batch(self.n_train, self.batch_size)
        H.check_layer(self.layer, self.hidden)
        self.check_convergence()


def grid_unit(cfg, seed: int) -> dict:
    """All gamma x sigma cells of one seed in one vmapped run."""
    if cfg.noise not in NOISES:
        raise ValueError(f"noise must be 'weight' or 'input', got {cfg.noise!r}")
    data = sre_data(cfg.n_train, cfg.n_val, cfg.d, cfg.hidden, teacher_init=cfg.teacher_init)
    G, S = np.meshgrid(np.asarray(cfg.gammas, float), np.asarray(cfg.sigmas, float), indexing="ij")
    spec = spec_for(cfg.rule, (cfg.d, *cfg.hidden, cfg.d), batch_size=cfg.batch_size, neuron_layer=0,
                    noise_mode=cfg.noise_mode)
    key = "sigma" if cfg.noise == "weight" else "input_noise"
    res = run_grid(spec, data, seeds=[seed], epochs=cfg.epochs, log_every=cfg.log_every, window=cfg.window,
                   hp={"gamma": G.ravel(), key: S.ravel(), "lr": cfg.lr}, layer=cfg.layer, **cfg.until())
    a = np.asarray(res["align"], float)[:, cfg.layer - 1].reshape(G.shape)
    return {"align": a.tolist(), "val_loss": np.asarray(res["val_loss"], float).reshape(G.shape).tolist(),
            "collapsed": np.asarray(res["collapsed"]).reshape(G.shape).tolist(), "n_steps": res["n_steps"],
            "stationary_epoch": res.get("stationary_epoch"), "epochs_run": (res.get("epochs_run") or [None])[0]}


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

    pre = grid_setting(cfg.rule, cfg.noise)  # another rule or noise never feeds the Fig. 4-5 claims
    out: dict[str, list] = {}
    for i, g in enumerate(cfg.gammas):
        for j, s in enumerate(cfg.sigmas):
            out[pre + cell(g, s)] = [fin(u["align"][i][j]) for u in units]
            out[pre + cell(g, s, "val_loss")] = [fin(u["val_loss"][i][j]) for u in units]
    return out


def boundary_measurements(cfg, units: list[dict], keep: np.ndarray) -> dict[str, list]:
    """The boundary points of every seed's grid (learned gamma rows only): matched lists of sigma* and gamma, the
    inputs of the exponent claim (one point per seed and row that crosses zero)."""
    sig, gam = [], []
    for u in units:
        for g, s in zero_crossings(np.asarray(cfg.gammas)[keep], cfg.sigmas, np.asarray(u["align"], float)[keep]):
            sig.append(s)
            gam.append(g)
    pre = grid_setting(cfg.rule, cfg.noise)
    return {pre + BOUNDARY_SIGMA: sig, pre + BOUNDARY_GAMMA: gam}


def run_phase(cfg: HebbFig4Config, ctx: RunContext) -> dict:
    """The phase diagram of ``cfg``'s grid: every seed's grid unit, the boundary fit and the measurements."""
    units = [ctx.unit(f"seed={s}", lambda: grid_unit(cfg, s)) for s in range(cfg.seeds)]
    align = np.mean([u["align"] for u in units], axis=0)
    val = np.mean([u["val_loss"] for u in units], axis=0)
    keep = learned_rows(val, cfg.fit_max_loss_ratio)
    pts = zero_crossings(np.asarray(cfg.gammas)[keep], cfg.sigmas, align[keep])
    fit = fit_boundary(pts)
    fit["excluded_gammas"] = [g for g, k in zip(cfg.gammas, keep) if not k]
    ctx.log(f"zero-alignment boundary points (gamma, sigma*): {[(f'{g:g}', f'{s:.3g}') for g, s in pts]}")
    ctx.log(f"fit gamma ~ sigma^p: p = {fit['exponent']} (paper: {PAPER_EXPONENT:g})")
    stationary = [u.get("stationary_epoch") for u in units]
    if stationary[0] is not None:
        n_held = sum(e is not None for st in stationary for e in st)
        ctx.log(f"stationary: {n_held}/{sum(len(st) for st in stationary)} cells, after "
                f"{', '.join(format(u['epochs_run'], 'g') for u in units)} epochs (seeds)")
    rows = [{"gamma": g, "sigma": s, "seed": k, "alignment": float(units[k]["align"][i][j]),
             "val_loss": float(units[k]["val_loss"][i][j]), "collapsed": bool(units[k]["collapsed"][i][j])}
            for k in range(cfg.seeds) for i, g in enumerate(cfg.gammas) for j, s in enumerate(cfg.sigmas)]
    return {"rows": rows, "align": align.tolist(), "val_loss": val.tolist(), "boundary_points": pts, "fit": fit,
            "n_steps": units[0]["n_steps"], "stationary_epoch": [u.get("stationary_epoch") for u in units],
            "epochs_run": [u.get("epochs_run") for u in units],
            "measurements": {**grid_measurements(cfg, units), **boundary_measurements(cfg, units, keep)}}


def plot_phase(results: dict, out: Path, name: str = "fig4_phase_diagram.png") -> None:
    """Heatmap with the fitted boundary, and the two slices (varying noise, varying weight decay)."""
    from matplotlib.ticker import NullFormatter

    cfg = results["config"]
    g, s = np.asarray(cfg["gammas"]), np.asarray(cfg["sigmas"])
    a = np.asarray(results["align"], float)
    fig, ax = figure(1, 3, size=(4.6, 3.8))
    lim = np.nanmax(np.abs(a)) if np.isfinite(a).any() else 1.0
    im = ax[0, 0].imshow(a, origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax[0, 0].set_xticks(range(len(s)), [f"{v:g}" for v in s], rotation=60, fontsize=6)
    ax[0, 0].set_yticks(range(len(g)), [f"{v:g}" for v in g], fontsize=6)
    ax[0, 0].set_title(f"{cfg['rule']}, layer {cfg['layer']}, mean of n = {cfg['seeds']} seed(s) per cell", fontsize=8)
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
    for axis, values in ((ax[0, 1], s), (ax[0, 2], g)):  # the grid's own values, not log-axis minor labels
        axis.set_xticks(values, [f"{v:g}" for v in values], rotation=60, fontsize=6)
        axis.xaxis.set_minor_formatter(NullFormatter())
    save(fig, out / name)


def phase_variant(name: str, module: str, rule: str, noise: str, gammas: tuple[float, ...],
                  sigmas: tuple[float, ...], lr: float, lr_doc: str) -> type:
    """The config of a figure that repeats Fig. 4's grid (same network, data, epochs and convergence) in another
    setting: ``rule`` and ``noise`` and the figure's own default ranges (the cells its claims name)."""
    cls = dataclasses.make_dataclass(name, [
        ("gammas", tuple[float, ...], setting(tuple(gammas), gt=0, doc="weight decays, increasing (the claims "
                                                                        "name the cells of the default grid)")),
        ("sigmas", tuple[float, ...], setting(tuple(sigmas), gt=0, doc="noise standard deviations, increasing")),
        ("noise", str, setting(noise, choices=NOISES, doc='"weight": noise sigma on the weights before every step; '
                                                          '"input": on the inputs')),
        ("rule", str, setting(rule, choices=RULES, doc="learning rule (with its Table 1 clipping and biases)")),
        ("lr", float, setting(lr, gt=0, doc=lr_doc))], bases=(HebbFig4Config,))
    cls.__module__ = module
    cls.__doc__ = f"hebb-fig4's grid with {rule} and {noise} noise over this figure's ranges."
    return cls


def phase_experiment(name: str, figure_name: str, config: type, description: str) -> Experiment:
    """The experiment of a ``phase_variant`` config: ``run_phase``, ``plot_phase`` to <figure_name>_phase_diagram.png,
    and hebb-fig4's quick size."""
    plot = partial(plot_phase, name=f"{figure_name}_phase_diagram.png")
    return Experiment(name, description, config, run_phase, plot,
                      paper="hebb", quick={"n_train": 1024, "n_val": 256, "d": 16, "hidden": (32, 32), "epochs": 12.0,
                                           "batch_size": 64, "log_every": 8, "window": 40, "max_epochs": None})
