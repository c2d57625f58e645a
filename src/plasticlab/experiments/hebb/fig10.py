"""hebb-fig10: the Hebbian alignment of the linear (MLP) layers of a CNN against the standard SCE MLP, across
weight decay (Fig. 10 right; with ``backbone=resnet`` the ResNet run of Fig. 11).

Two models, both trained by SGD (lr 0.01, batch 256, 50 epochs, mean cross-entropy, no MLP biases, coupled
weight decay gamma on every parameter, ``hebb_optim.train`` through ``training.fit``):

    mlp:  x (flat pixels) -> MLP d_0-128-128-n_classes (the SCE, ``hidden``)
    cnn:  x -> ConvFront (3x3 convs, padding 1, channels 32, 64, 128, each followed by the activation and 2x2
          max pooling; ``networks.conv_front``) -> flatten h_0 (2048 on 32 x 32 images) -> MLP
          2048-512-256-n_classes (``cnn_hidden``)

with the same activation f (``activation``, the SCE's tanh) in the MLPs' hidden layers and after every conv. The
front is trained by backprop through it (``FrontMLP``'s pullback); the rules and the alignment see the MLP layers.
One unit per model: its gamma x seed runs are one vmapped ``fit`` grid; seed k draws the data order (the same
in both models: the pairs of the claims) and the initial weights. Every ``log_every`` steps, for every MLP layer
l, on the step's batch,

    A_l = cos(g_l, H_l),   g_l = -dL/dW_l (the learning signal),   H_l = <y_l h_{l-1}^T> (the Hebbian update),

(``StepAlignment``), and per run the final alignment is the mean of the A_l logged in the last ``window`` = 200
steps ("the mean of the alignment of the second MLP layer for the final 200 steps of the run").

Measurements (``claims.hebb.fig10_alignment``): per (model, gamma, layer) every seed's final alignment, in seed
order (None where non-finite); the model is "mlp" and the backbone ("cnn", or "resnet": a ResNet run feeds no
claim). The claims (``hebb.fig10.*``) read layer 2 of the default gamma grid.

Images: the flat inputs are reshaped with the data set's ``image_shape`` (H, W, C) and zero-padded to
``image_size`` (28 x 28 MNIST -> 32 x 32, so that the first linear width is the paper's 2048; the standardised
border pixels of MNIST are 0 anyway). CIFAR-10 (the paper's) is not offline: ``--set dataset=mnist --data-dir
/work/shared/data/mnist`` is the MNIST stand-in; ``--quick`` runs the bundled 8x8 digits (three poolings: 1 x 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...claims.hebb import FIG10_GAMMAS, FIG10_LAYER, FIG10_WINDOW, fig10_alignment
from ...data import load_dataset
from ...networks.conv_front import BACKBONES, ConvFront
from ...plotting import figure, save, spread_label
from ...settings import SettingError, setting
from . import common as H
from .common import hebb_setting, mean_sd, run_grid, safe_float, spec_for, standardised
from ..base import Experiment, RunContext, register

MAX_CHANNELS = 4096


@dataclass
class HebbFig10Config:
    """SCE: the standard MLP 2 x 128 and a CNN (3 conv layers + MLP 2048-512-256), SGD, every gamma x seed."""

    dataset: str = hebb_setting("dataset", "cifar10", doc="SCE data set of images (any with integer class labels "
                                                         "and an image shape; inputs standardised); CIFAR-10 (the "
                                                         "paper's) is not offline: mnist with --data-dir is the "
                                                         "stand-in")
    n_train: int | None = hebb_setting("n_train", None)
    n_test: int | None = hebb_setting("n_test", 2000)
    gammas: tuple[float, ...] = hebb_setting("gammas", FIG10_GAMMAS)
    hidden: tuple[int, ...] = hebb_setting("hidden", (128, 128), doc="hidden widths of the standard MLP (at least "
                                                                      "two: layer 2 maps hidden layer 1 to 2)")
    backbone: str = setting("cnn", choices=BACKBONES,
                            doc="front of the second model: 'cnn' (Fig. 10: 3x3 conv + activation + 2x2 max pool per "
                                "channel count) or 'resnet' (Fig. 11: a basic residual block + 2x2 max pool per "
                                "channel count; its runs feed no claim)")
    channels: tuple[int, ...] = setting((32, 64, 128), ge=1, le=MAX_CHANNELS,
                                        doc="output channels of the conv stages (each: 3x3 conv, padding 1, the "
                                            "activation, 2x2 max pooling)")
    cnn_hidden: tuple[int, ...] = setting((512, 256), ge=1, le=H.MAX_WIDTH,
                                          doc="hidden widths of the CNN's MLP (its input: the flattened conv output, "
                                              "2048 on 32 x 32 images; at least two)")
    image_size: int | None = setting(32, ge=1, le=1024,
                                     doc="zero-pad the images to this side (MNIST 28 -> 32, the paper's CIFAR-10 "
                                         "size: the first linear width is then 2048; None, or not above the "
                                         "image's side: no padding)")
    activation: str = setting("tanh", kind="activation",
                              doc="activation of the MLPs' hidden layers and after every conv (the SCE's tanh)")
    seeds: int = hebb_setting("seeds", 10, doc="seeds per cell, run together under vmap (the claims pair them: at "
                                               "least 2)")
    epochs: float = hebb_setting("epochs", 50.0, doc="passes over the training set (may be fractional; the SCE's 50)")
    batch_size: int = hebb_setting("batch_size", 256)
    lr: float = hebb_setting("lr", 0.01)
    log_every: int = hebb_setting("log_every", 10)
    window: int = hebb_setting("window", FIG10_WINDOW, doc="final alignment: mean over the logs of the last this "
                                                           "many steps (Fig. 10: 200)")
    max_runs: int | None = setting(None, ge=1, le=100_000, affects_result=False,
                                   doc="gamma x seed runs trained at once under vmap (the same numbers either way); "
                                       "None: as many as fit in half the memory available (the CNN at batch 256 "
                                       "keeps about 0.47 GiB per run: all 40 at once were killed on a 24 GiB "
                                       "machine)")

    def validate(self) -> None:
        H.check_batch(self.n_train, self.batch_size)
        for key in ("hidden", "cnn_hidden"):
            if len(getattr(self, key)) < FIG10_LAYER:
                raise SettingError(key, getattr(self, key), f"at least {FIG10_LAYER} hidden widths",
                                   f"layer {FIG10_LAYER} must map hidden layer 1 to hidden layer 2")
        if len(set(self.gammas)) != len(self.gammas):
            raise SettingError("gammas", self.gammas, "distinct values", "a value appears twice")


def _data(cfg: HebbFig10Config, data_dir) -> tuple:
    """((x, y, x_val, y_val), n_classes, the ConvFront) of the run; refuses a data set without images."""
    ds = load_dataset(cfg.dataset, data_dir)
    shape = ds.image_shape
    if shape is None or len(shape) not in (2, 3):
        raise SettingError("dataset", cfg.dataset, "a data set of images (with an image shape)",
                           "the CNN needs to know the images' height, width and channels")
    shape = (*shape, 1) if len(shape) == 2 else tuple(shape)
    size = max(shape[:2])
    pad = max(0, (cfg.image_size - size) // 2) if cfg.image_size is not None else 0
    front = ConvFront(tuple(int(s) for s in shape), tuple(cfg.channels), pad, cfg.activation, cfg.backbone)
    x, y, xv, yv, n_classes = standardised(ds, cfg.n_train, cfg.n_test)
    return (x, y, xv, yv), n_classes, front


RUN_BYTES_PER_FLOAT = 2 * 4  # float32, and the backward pass's own temporaries about as large as the stored ones


def available_bytes() -> int | None:
    """Memory a run can use: the accelerator's limit where JAX reports one, else the host's available memory
    (Linux ``MemAvailable``; None where unknown)."""
    import jax

    stats = jax.devices()[0].memory_stats() if hasattr(jax.devices()[0], "memory_stats") else None
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def runs_at_once(cfg: HebbFig10Config, front: ConvFront, available: int | None) -> tuple[int, float]:
    """(runs vmapped at once, estimated GiB per run): ``max_runs``, else as many of the gamma x seed runs as fit
    in half of ``available`` bytes at ``front.stored_floats`` x batch x ``RUN_BYTES_PER_FLOAT`` each (the paper's
    CNN at batch 256: 0.47 GiB estimated per run; measured, 8 runs at once peaked at 5.0 GiB resident and in
    groups of 2 at 2.4 GiB), all at once where the memory is unknown."""
    per_run = front.stored_floats * cfg.batch_size * RUN_BYTES_PER_FLOAT
    runs = len(cfg.gammas) * cfg.seeds
    if cfg.max_runs is not None:
        return min(cfg.max_runs, runs), per_run / 2**30
    if available is None:
        return runs, per_run / 2**30
    return max(1, min(runs, int(available / 2 // per_run))), per_run / 2**30


def _unit(cfg: HebbFig10Config, model: str, data: tuple, n_classes: int, front: ConvFront,
          max_runs: int | None = None) -> dict:
    x = data[0]
    H.check_batch(len(x), cfg.batch_size)
    if model == "mlp":
        spec = spec_for("sgd", (x.shape[1], *cfg.hidden, n_classes), loss="cross_entropy", activation=cfg.activation,
                        batch_size=cfg.batch_size, neuron_layer=0)
    else:
        spec = spec_for("sgd", (front.width, *cfg.cnn_hidden, n_classes), loss="cross_entropy",
                        activation=cfg.activation, batch_size=cfg.batch_size, neuron_layer=0, conv=front)
    res = run_grid(spec, data, seeds=list(range(cfg.seeds)), epochs=cfg.epochs, log_every=cfg.log_every,
                   window=cfg.window, n_evals=1, hp={"gamma": np.asarray(cfg.gammas), "lr": cfg.lr},
                   max_runs=max_runs)
    rows = [{"model": model, "gamma": cfg.gammas[c], "seed": s, "layer": l + 1, "alignment": safe_float(a[l]),
             "val_acc": safe_float(acc), "collapsed": bool(col)}
            for c, s, a, acc, col in zip(res["cell"], res["seed"], res["align"], res["val_acc"], res["collapsed"])
            for l in range(len(a))]
    return {"rows": rows, "n_steps": res["n_steps"], "widths": list(spec.sizes)}


def run(cfg: HebbFig10Config, ctx: RunContext) -> dict:
    data, n_classes, front = _data(cfg, ctx.data_dir)  # once, before any unit: the loader's DataError if absent
    note = "" if cfg.dataset == "cifar10" else f"{cfg.dataset} standing in for CIFAR-10"
    side = front.image_shape[0] + 2 * front.pad
    ctx.log(f"SCE{' (' + note + ')' if note else ''}: mlp {list(cfg.hidden)} vs {cfg.backbone} {list(cfg.channels)} "
            f"on {side} x {side} images (pad {front.pad}) -> {front.width} -> {list(cfg.cnn_hidden)}; gammas "
            f"{list(cfg.gammas)} x {cfg.seeds} seeds, {cfg.epochs:g} epochs, final {cfg.window} steps")
    at_once, gib = runs_at_once(cfg, front, available_bytes())
    n_runs = len(cfg.gammas) * cfg.seeds
    if at_once < n_runs:
        ctx.log(f"the {cfg.backbone}'s {n_runs} runs train in groups of {at_once} (about {gib:.2f} GiB per run"
                + (f", max_runs={cfg.max_runs}" if cfg.max_runs is not None else ", half the memory available")
                + "; the same numbers as all at once)")
    models = ("mlp", cfg.backbone)
    rows, widths, n_steps = [], {}, 0
    for model in models:
        unit = ctx.unit(f"model={model}", lambda: _unit(cfg, model, data, n_classes, front,
                                                        at_once if model != "mlp" else cfg.max_runs))
        rows += unit["rows"]
        widths[model] = unit["widths"]
        n_steps = unit["n_steps"]
    summary = summarize(rows)
    ctx.log(f"final-window alignment of layer {FIG10_LAYER} (mean +- SD over seeds), validation accuracy:")
    for s in summary:
        if s["layer"] == FIG10_LAYER:
            ctx.log(f"  {s['model']:6s} gamma={s['gamma']:<7g} {H.fmt(s['alignment_mean'])} +- "
                    f"{H.fmt(s['alignment_sd'])}  acc {H.fmt(s['val_acc'])}  ({s['collapsed']} collapsed)")
    return {"rows": rows, "summary": summary, "measurements": measurements(rows), "widths": widths,
            "front": {"image_side": side, "pad": front.pad, "width": front.width}, "n_steps": n_steps,
            "n_classes": int(n_classes), "dataset_note": note or "CIFAR-10 (the paper's)"}


def summarize(rows: list[dict]) -> list[dict]:
    """Per (model, gamma, layer): mean and SD (ddof 0) over the seeds of the final alignment (collapsed and
    non-finite seeds left out), the mean validation accuracy and the number of collapsed seeds."""
    out = []
    for key in dict.fromkeys((r["model"], r["gamma"], r["layer"]) for r in rows):
        rr = [r for r in rows if (r["model"], r["gamma"], r["layer"]) == key]
        m, sd = mean_sd([r["alignment"] for r in rr if r["alignment"] is not None and not r["collapsed"]])
        acc, _ = mean_sd([r["val_acc"] for r in rr if r["val_acc"] is not None])
        out.append({"model": key[0], "gamma": key[1], "layer": key[2], "alignment_mean": safe_float(m),
                    "alignment_sd": safe_float(sd), "val_acc": safe_float(acc), "n": len(rr),
                    "collapsed": sum(r["collapsed"] for r in rr)})
    return out


def measurements(rows: list[dict]) -> dict[str, list]:
    """Per (model, gamma, layer): every seed's final alignment in seed order (None for a collapsed or non-finite
    seed), named by ``fig10_alignment``."""
    out: dict[str, list] = {}
    for r in sorted(rows, key=lambda r: r["seed"]):
        a = None if r["collapsed"] else r["alignment"]
        out.setdefault(fig10_alignment(r["model"], r["gamma"], r["layer"]), []).append(a)
    return out


# ----------------------------------------------------------------------------- plot

STYLE = {"mlp": ("tab:blue", "o"), "cnn": ("tab:red", "s"), "resnet": ("tab:green", "^")}


def plot(results: dict, out: Path) -> None:
    cfg = results["config"]
    n = cfg["seeds"]
    xs = np.arange(len(cfg["gammas"]))
    models = list(dict.fromkeys(s["model"] for s in results["summary"]))
    fig, ax = figure(1, 1 + len(models), size=(4.2, 3.4))

    def series(model: str, layer: int) -> tuple[np.ndarray, np.ndarray]:
        ss = {s["gamma"]: s for s in results["summary"] if s["model"] == model and s["layer"] == layer}
        m = [np.nan if ss.get(g, {}).get("alignment_mean") is None else ss[g]["alignment_mean"] for g in cfg["gammas"]]
        sd = [0.0 if ss.get(g, {}).get("alignment_sd") is None else ss[g]["alignment_sd"] for g in cfg["gammas"]]
        return np.asarray(m, float), np.asarray(sd, float)

    widths = results.get("widths", {})
    for model in models:
        color, marker = STYLE.get(model, ("tab:gray", "D"))
        m, sd = series(model, FIG10_LAYER)
        w = widths.get(model)
        name = f"{model} ({w[FIG10_LAYER - 1]}->{w[FIG10_LAYER]})" if w else model
        ax[0, 0].errorbar(xs, m, sd, color=color, marker=marker, capsize=3, label=spread_label(name, n))
    ax[0, 0].set_title(f"layer {FIG10_LAYER}: standard MLP vs {models[-1]} MLP", fontsize=8)
    for j, model in enumerate(models, start=1):
        layers = sorted({s["layer"] for s in results["summary"] if s["model"] == model})
        for l in layers:
            m, sd = series(model, l)
            ax[0, j].errorbar(xs, m, sd, marker="o", capsize=2, label=spread_label(f"layer {l}", n))
        ax[0, j].set_title(f"{model}: every MLP layer", fontsize=8)
    for a in ax[0]:
        a.set_xticks(xs, [f"{g:g}" for g in cfg["gammas"]], fontsize=7)
        a.axhline(0, color="k", lw=0.5)
        a.set_xlabel("weight decay gamma", fontsize=7)
        a.set_ylabel(f"Hebbian alignment of the learning signal\n(mean over the final {cfg['window']} steps)",
                     fontsize=7)
        a.tick_params(labelsize=7)
        a.legend(fontsize=6)
    fig.suptitle(f"Fig. 10 right: MLP vs {models[-1].upper()} linear layers (SCE, SGD, mean +- SD over n={n} seeds; "
                 f"{results.get('dataset_note', cfg['dataset'])})", fontsize=8)
    save(fig, out / "fig10_cnn_vs_mlp.png")


register(Experiment("hebb-fig10", "Hebbian alignment of the linear layers of a CNN (3 conv + max-pool layers, MLP "
                    "2048-512-256) against the standard SCE MLP across weight decay, per layer (Fig. 10 right; "
                    "backbone=resnet: Fig. 11)",
                    HebbFig10Config, run, plot, paper="hebb",
                    quick={"dataset": "digits", "n_test": None, "seeds": 2, "hidden": (32, 32),
                           "channels": (8, 16, 32), "cnn_hidden": (32, 32), "image_size": None, "epochs": 8.0,
                           "batch_size": 64, "lr": 0.05, "log_every": 4, "window": 40}))
