"""hebb-neurons: per-neuron Hebbian alignment of the full update and of the learning signal over time (Figs. 19-20)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...plotting import figure
from ...rules.hebb_optim import train
from ...settings import setting
from . import common as H
from .common import sce_data, spec_for, sre_data
from ..base import Experiment, RunContext, paper_entry, register, verdict

FULL_UPDATE_TOL = 0.1  # "the full weight update alignment approaches zero near stationarity" (Fig. 15)
TASKS = ("sre", "sce")


@dataclass
class HebbNeuronsConfig:
    """Per-neuron alignment of layer ``layer`` for each gamma (SRE by default; ``task="sce"`` for Fig. 20)."""

    task: str = setting("sre", choices=TASKS, doc='"sre": teacher-student regression (32-d, MSE); "sce": '
                                                  'classification of ``dataset`` (cross-entropy)')
    dataset: str = setting("cifar10", choices=H.sce_datasets,
                           doc='data set of task "sce" (any with integer class labels; unused for "sre")')
    activation: str = setting("tanh", kind="activation", doc="hidden activation")
    gammas: tuple[float, ...] = setting((0.05, 0.0), ge=0, doc="weight decays, one image each (include 0 and a "
                                                                "gamma > 0 for the paper's comparisons)")
    seeds: int = setting(1, ge=1, le=1000, doc="seeds per gamma, run together under vmap")
    n_train: int = setting(20000, ge=1, le=10_000_000, doc="training samples (sce: a random subset)")
    n_val: int = setting(2000, ge=1, le=10_000_000, doc="validation samples (sce: a random test subset)")
    hidden: tuple[int, ...] = setting((128, 128), ge=1, le=H.MAX_WIDTH, doc="hidden widths of the MLP")
    epochs: float = setting(50.0, gt=0, le=H.MAX_EPOCHS, doc="passes over the training set (may be fractional)")
    batch_size: int = setting(256, ge=1, le=100_000, doc="minibatch size (<= n_train)")
    lr: float = setting(0.01, gt=0, doc="SGD learning rate")
    layer: int = setting(2, ge=1, le=1000, doc="1-based MLP layer whose neurons are imaged (<= len(hidden) + 1)")
    n_neurons: int = setting(30, ge=1, le=H.MAX_WIDTH, doc="neurons kept (the first ones of the layer)")
    log_every: int = setting(5, ge=1, le=100_000, doc="steps between alignment logs (image columns)")

    def validate(self) -> None:
        H.check_batch(self.n_train, self.batch_size)
        H.check_layer(self.layer, self.hidden)


def _unit(cfg: HebbNeuronsConfig, data_dir) -> dict:
    if cfg.task == "sre":
        x, y, xv, yv = sre_data(cfg.n_train, cfg.n_val, 32, cfg.hidden)
        sizes, loss = (32, *cfg.hidden, 32), "mse"
    elif cfg.task == "sce":
        x, y, xv, yv, nc = sce_data(cfg.dataset, data_dir, cfg.n_train, cfg.n_val)
        sizes, loss = (x.shape[1], *cfg.hidden, nc), "cross_entropy"
    else:
        raise ValueError(f"task must be 'sre' or 'sce', got {cfg.task!r}")
    spec = spec_for("sgd", sizes, loss=loss, activation=cfg.activation, batch_size=cfg.batch_size,
                    neuron_layer=cfg.layer)
    seeds = np.tile(np.arange(cfg.seeds), len(cfg.gammas))
    gam = np.repeat(np.asarray(cfg.gammas, np.float32), cfg.seeds)
    n_steps = int(round(cfg.epochs * len(x) / cfg.batch_size))
    out = train(spec, x, y, xv, yv, seeds=seeds, hp={"gamma": gam, "lr": cfg.lr}, n_steps=n_steps,
                log_every=cfg.log_every, n_evals=10)
    k = min(cfg.n_neurons, out["neuron"].shape[-1])
    nf, ns = out["neuron_full"][..., :k], out["neuron"][..., :k]
    half = nf.shape[1] // 2
    flips = np.mean(np.diff(np.sign(nf[:, half:]), axis=1) != 0, axis=(1, 2))
    return {"steps": out["step"].tolist(), "gamma": gam.tolist(), "seed": seeds.tolist(),
            "neuron_full": nf.tolist(), "neuron_signal": ns.tolist(),
            "layer_signal": out["align"][..., cfg.layer - 1].tolist(),
            "layer_full": out["align_full"][..., cfg.layer - 1].tolist(),
            "frac_hebbian_full_late": np.mean(nf[:, half:] > 0, axis=(1, 2)).tolist(),
            "sign_flip_rate_late": flips.tolist(),
            "mean_abs_full_late": np.mean(np.abs(nf[:, half:]), axis=(1, 2)).tolist(),
            "mean_layer_full_late": np.mean(out["align_full"][:, half:, cfg.layer - 1], 1).tolist(),
            "mean_layer_signal_late": np.mean(out["align"][:, half:, cfg.layer - 1], 1).tolist()}


def run(cfg: HebbNeuronsConfig, ctx: RunContext) -> dict:
    res = ctx.unit("all", lambda: _unit(cfg, ctx.data_dir))
    rows = [{"gamma": g, "seed": s, "frac_hebbian_full_late": f, "sign_flip_rate_late": fl,
             "mean_abs_neuron_full_late": ma, "layer_full_late": lf, "layer_signal_late": ls}
            for g, s, f, fl, ma, lf, ls in zip(res["gamma"], res["seed"], res["frac_hebbian_full_late"],
                                               res["sign_flip_rate_late"], res["mean_abs_full_late"],
                                               res["mean_layer_full_late"], res["mean_layer_signal_late"])]
    for r in rows:
        ctx.log(f"gamma={r['gamma']:g}: late per-neuron |cos(full update, Hebb)| = {r['mean_abs_neuron_full_late']:.3f},"
                f" sign flips/log = {r['sign_flip_rate_late']:.3f}, layer cos(full) = {r['layer_full_late']:.3f}, "
                f"layer cos(signal) = {r['layer_signal_late']:.3f}")
    return {"rows": rows, **res, "paper": paper_rows(rows, cfg)}


def paper_rows(rows: list[dict], cfg: HebbNeuronsConfig) -> list[dict]:
    """Figs. 15, 19-20 beside ours (late half of training, seed means, largest gamma vs gamma = 0): neurons flip
    between Hebbian and anti-Hebbian more often with weight decay, the layer's full update averages to zero, the
    learning signal is more Hebbian with weight decay, and the share of anti-Hebbian neuron updates grows."""
    def at(g: float, key: str) -> float:  # the runs store gamma as float32: 0.05 -> 0.05000000074505806
        return float(np.mean([r[key] for r in rows if np.isclose(r["gamma"], g, rtol=1e-6, atol=0.0)]))

    g_hi = max(cfg.gammas)
    where = f"({cfg.task.upper()}, layer {cfg.layer}, {cfg.seeds} seed(s))"
    full = paper_entry(f"layer's full-update alignment late in training at gamma = {g_hi:g} (about 0 near "
                       "stationarity)", 0.0, at(g_hi, "layer_full_late"), tolerance=FULL_UPDATE_TOL,
                       where=f"Fig. 15 {where}", note=f"gamma = 0: {at(0.0, 'layer_full_late'):.3f}"
                       if 0.0 in cfg.gammas else "-")
    claims = [("with weight decay neurons oscillate more between Hebbian and anti-Hebbian (sign flips per log)",
               "sign_flip_rate_late", True, "Fig. 19"),
              ("learning signal more Hebbian with weight decay (layer cos(signal, Hebb))", "layer_signal_late",
               True, "Figs. 15, 19"),
              ("more anti-Hebbian neuron updates with weight decay (share of Hebbian ones lower)",
               "frac_hebbian_full_late", False, "Sec. 5, Fig. 20")]
    out = [full]
    for quantity, key, higher, fig in claims:
        if 0.0 not in cfg.gammas or g_hi <= 0.0:
            out.append(paper_entry(quantity, "yes", "needs gamma = 0 and a gamma > 0", where=f"{fig} {where}",
                                   note=f"gammas run: {', '.join(f'{g:g}' for g in cfg.gammas)}"))
            continue
        hi, zero = at(g_hi, key), at(0.0, key)
        out.append(paper_entry(f"{quantity}, gamma = {g_hi:g} vs 0", "yes", verdict(hi > zero if higher else hi < zero),
                               where=f"{fig} {where}", note=f"{key}: gamma {g_hi:g} {hi:.3f}, gamma 0 {zero:.3f}"))
    return out


def plot(results: dict, out: Path) -> None:
    n = len(results["gamma"])
    fig, ax = figure(2, n, size=(5.5, 3.0))
    steps = results["steps"]
    for i in range(n):
        for r, key in enumerate(("neuron_full", "neuron_signal")):
            a = np.asarray(results[key][i]).T
            im = ax[r, i].imshow(a, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest",
                                 extent=(steps[0], steps[-1], a.shape[0], 0))
            ax[r, i].set_title(f"gamma={results['gamma'][i]:g}: {'full update' if r == 0 else 'learning signal'}",
                               fontsize=8)
            ax[r, i].set_xlabel("step")
            ax[r, i].set_ylabel("neuron")
    fig.colorbar(im, ax=ax.ravel().tolist(), label="cos with Hebbian update")
    fig.savefig(out / "neurons_alignment.png", dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)


register(Experiment("hebb-neurons", "Per-neuron alignment over time as an image, with and without weight decay "
                    "(Figs. 19-20)", HebbNeuronsConfig, run, plot, paper="hebb",
                    quick={"n_train": 2048, "n_val": 256, "hidden": (32, 32), "epochs": 10.0, "batch_size": 64,
                           "lr": 0.05, "log_every": 2, "n_neurons": 16}))
