"""hebb-fig2: the direction of layer 2's learning signal and of its Hebbian update, after the first epoch and at
the end of training, with and without weight decay (SCE, Figs. 2 and 17).

The SCE (MLP d_0-128-128-n_classes, tanh hidden layers, no biases, mean cross-entropy, SGD with coupled weight
decay gamma, batch 256, lr eta = 0.1) is trained by ``run_grid`` (``hebb_optim.train`` through ``training.fit``)
for every gamma x seed: at least ``epochs``, then until every run is stationary or ``max_epochs`` ("the end of
training", docs/hebb.md "At convergence"). A second ``run_grid`` call trains the same runs for exactly one epoch
(round(n_train / batch_size) steps): seed s draws the same initial weights and data order in both calls, so its
weights are those of the long run after its first epoch (tests/test_hebb_fig2.py checks this against ``fit``).

At both points, with the run's weights W and the fixed probe batch (x_b, t_b), b = 1..B: the *first*
``probe_size`` samples of the (standardised, ``n_train``-subset) training set, in the data set's order,

    h_1 = tanh(W_1 x),   y_2 = W_2 h_1,   h_2 = tanh(y_2),   y_3 = W_3 h_2
    L(W) = -(1/B) sum_b log softmax(y_3(x_b))_{t_b}          (the training loss, *without* gamma/2 ||W||^2)
    G = -dL/dW_2                                              (``jax.grad``: the learning signal, no decay term)
    H = <y_2 h_1^T> = (1/B) sum_b y_2(x_b) h_1(x_b)^T         (``analysis.hebbian_alignment.hebbian_update``)
    alignment = cos(G, H) = <G, H>_F / (||G||_F ||H||_F)     (``analysis.hebbian_alignment.cosine``)

The decay term is left out on purpose: at convergence the full update -lr (dL/dW_2 + gamma W_2) averages to
zero, and what the paper aligns with the Hebbian update is the learning signal -grad_W l (eq. 4).

Per (gamma, point, seed) the alignment is a row and a measurement; for the first seed the images are the
top-left ``subset`` x ``subset`` entries of G / ||G||_F and H / ||H||_F (rows: post-synaptic neurons of layer 2,
"Dimension 1"; columns: pre-synaptic neurons of layer 1, "Dimension 2"). Each row also keeps the training-time
alignment of layer 2 that ``run_grid`` logs (the mean over the final ``window`` steps of the per-step cosines on
the training batches), for comparison with the probe batch's.

The paper's data set is CIFAR-10, not available offline: ``--set dataset=mnist --data-dir ...`` is the MNIST
stand-in, ``--quick`` uses the bundled 8x8 digits.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ...analysis.hebbian_alignment import cosine, hebbian_update
from ...claims.hebb import FIG2_GAMMAS, FIG2_POINTS, fig2_alignment
from ...networks.mlp import Params
from ...plotting import figure, save
from ...rules.hebb_optim import HebbSpec, forward, trainer
from ...settings import SettingError, setting
from . import common as H
from .common import hebb_setting, mean_sd, run_grid, safe_float, sce_data, spec_for
from ..base import Experiment, RunContext, register

LAYER = 2  # the paper's "second layer of an SCE" (1-based): W_2, h_a = h_1, h_b = y_2
POINT_NAMES = {"epoch1": "after epoch 1", "end": "end of training"}


@dataclass
class HebbFig2Config(H.UntilStationary):
    """SCE: MLP 2x128 tanh trained by SGD with cross-entropy (paper: CIFAR-10, lr 0.1, batch 256)."""

    dataset: str = hebb_setting("dataset", "cifar10")
    n_train: int | None = hebb_setting("n_train", None)
    n_test: int | None = hebb_setting("n_test", None)
    gammas: tuple[float, ...] = hebb_setting("gammas", FIG2_GAMMAS,
                                             doc="weight decays (coupled L2, as torch's weight_decay; 0: none); "
                                                 "Fig. 2: 0.05 and 0")
    hidden: tuple[int, ...] = hebb_setting("hidden", (128, 128), doc="hidden widths of the MLP (at least two: "
                                                                      "layer 2 maps hidden layer 1 to hidden "
                                                                      "layer 2)")
    seeds: int = hebb_setting("seeds", 10)
    epochs: float = hebb_setting("epochs", 50.0)
    batch_size: int = hebb_setting("batch_size", 256)
    lr: float = hebb_setting("lr", 0.1, doc="SGD learning rate (Figs. 2 and 17: eta = 0.1)")
    log_every: int = hebb_setting("log_every", 10)
    window: int = hebb_setting("window", 100)
    probe_size: int = setting(256, ge=1, le=100_000,
                              doc="samples of the fixed batch G and H are measured on: the first probe_size "
                                  "training samples (<= the training samples)")
    subset: int = setting(20, ge=1, le=H.MAX_WIDTH,
                          doc="side of the top-left square of G and H drawn as images (Fig. 2: 20 x 20; <= both "
                              "hidden widths)")

    def validate(self) -> None:
        H.check_batch(self.n_train, self.batch_size)
        H.check_batch(self.n_train, self.probe_size, key="probe_size")
        self.check_convergence()
        if len(self.hidden) < 2:
            raise SettingError("hidden", self.hidden, "at least two hidden widths",
                               "layer 2 must map hidden layer 1 to hidden layer 2")
        if self.subset > min(self.hidden[:2]):
            raise SettingError("subset", self.subset, f"<= {min(self.hidden[:2])} (the smaller side of layer 2's "
                                                      f"{self.hidden[1]} x {self.hidden[0]} weights)")
        if len(set(self.gammas)) != len(self.gammas):
            raise SettingError("gammas", self.gammas, "distinct values", "a value appears twice")


# ----------------------------------------------------------------------------- the measurement

@functools.partial(jax.jit, static_argnums=0)
def signal_and_hebbian(spec: HebbSpec, W: tuple[jax.Array, ...], x: jax.Array,
                       t: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(G, H) of layer ``LAYER`` (module docstring): G = -dL/dW_2 of the training loss without the decay term,
    H = <y_2 h_1^T>, both (d_2, d_1), on the batch (x, t) at the weights W (no biases: the SGD spec has none)."""
    tr = trainer(spec)  # the network and loss the runs were trained with

    def loss(w: jax.Array) -> jax.Array:
        params = Params(W[:LAYER - 1] + (w,) + W[LAYER:])
        return tr.loss.value(tr.net.forward(params, x), t)

    G = -jax.grad(loss)(W[LAYER - 1])
    h_a, y_b, _ = forward(spec, Params(tuple(W)), x)[1][LAYER - 1]
    return G, hebbian_update(y_b, h_a)


def probe(spec: HebbSpec, params: dict, x: np.ndarray, t: np.ndarray, subset: int) -> list[dict]:
    """Per run of ``params`` (``run_grid``'s final weights, leading run axis): cos(G, H) and the top-left
    ``subset`` x ``subset`` entries of G / ||G||_F and H / ||H||_F."""
    if "b" in params:
        raise ValueError("the probe is for an MLP without biases (the SCE's SGD spec)")
    xb, tb = jnp.asarray(x, jnp.float32), jnp.asarray(t)
    out = []
    for r in range(np.shape(params["W"][0])[0]):
        G, Hb = signal_and_hebbian(spec, tuple(jnp.asarray(w[r]) for w in params["W"]), xb, tb)
        g, h = np.asarray(G, float), np.asarray(Hb, float)
        out.append({"alignment": safe_float(cosine(G, Hb)),
                    "signal": (g / np.linalg.norm(g))[:subset, :subset],
                    "hebbian": (h / np.linalg.norm(h))[:subset, :subset]})
    return out


# ----------------------------------------------------------------------------- training

def _data(cfg: HebbFig2Config, data_dir) -> tuple:
    x, y, xv, yv, n_classes = sce_data(cfg.dataset, data_dir, cfg.n_train, cfg.n_test)
    if cfg.probe_size > len(x) or cfg.batch_size > len(x):
        key = "probe_size" if cfg.probe_size > len(x) else "batch_size"
        raise SettingError(key, getattr(cfg, key), f"<= the {len(x)} training samples of {cfg.dataset}")
    spec = spec_for("sgd", (x.shape[1], *cfg.hidden, n_classes), loss="cross_entropy", batch_size=cfg.batch_size,
                    neuron_layer=0)
    return spec, (x, y, xv, yv)


def first_epoch(spec: HebbSpec, data, seeds: list[int], gammas, lr: float) -> dict:
    """``run_grid`` for exactly one epoch: n1 = round(n_train / batch_size) steps (one log at step n1, one
    evaluation), the weights of the long run's seeds after their first n1 steps."""
    n1 = max(1, int(round(len(data[0]) / spec.batch_size)))
    return run_grid(spec, data, seeds=seeds, hp={"gamma": np.asarray(gammas), "lr": lr}, epochs=1.0,
                    log_every=n1, n_evals=1, window=n1, max_epochs=None)


def to_end(spec: HebbSpec, data, seeds: list[int], gammas, lr: float, cfg: HebbFig2Config) -> dict:
    """``run_grid`` to the end of training: at least ``epochs``, then until stationary or ``max_epochs``."""
    return run_grid(spec, data, seeds=seeds, hp={"gamma": np.asarray(gammas), "lr": lr}, epochs=cfg.epochs,
                    log_every=cfg.log_every, window=cfg.window, **cfg.until())


def _unit(cfg: HebbFig2Config, point: str, data_dir) -> dict:
    spec, data = _data(cfg, data_dir)
    seeds = list(range(cfg.seeds))
    res = (first_epoch(spec, data, seeds, cfg.gammas, cfg.lr) if point == "epoch1"
           else to_end(spec, data, seeds, cfg.gammas, cfg.lr, cfg))
    x, y = data[0][:cfg.probe_size], data[1][:cfg.probe_size]
    measured = probe(spec, res["params"], x, y, cfg.subset)
    rows, images = [], []
    for r, (c, s, m) in enumerate(zip(res["cell"], res["seed"], measured)):
        rows.append({"gamma": cfg.gammas[c], "point": point, "seed": s, "alignment": m["alignment"],
                     "train_alignment": safe_float(res["align"][r][LAYER - 1]),
                     "val_acc": safe_float(res["val_acc"][r]), "collapsed": bool(res["collapsed"][r]),
                     "epochs_run": res["epochs_run"][r] if "epochs_run" in res else round(
                         res["steps"][-1] * spec.batch_size / len(data[0]), 2),
                     "stationary": res["stationary"][r] if "stationary" in res else None})
        if s == seeds[0]:
            ok = np.isfinite(m["signal"]).all() and np.isfinite(m["hebbian"]).all()
            images.append({"gamma": cfg.gammas[c], "point": point, "seed": s, "alignment": m["alignment"],
                           "signal": m["signal"].tolist() if ok else None,
                           "hebbian": m["hebbian"].tolist() if ok else None})
    return {"rows": rows, "images": images, "n_steps": res["n_steps"]}


def run(cfg: HebbFig2Config, ctx: RunContext) -> dict:
    _data(cfg, ctx.data_dir)  # fail early: the loader's DataError if absent, a probe or batch too large
    note = "" if cfg.dataset == "cifar10" else f" ({cfg.dataset} standing in for CIFAR-10)"
    rows, images = [], []
    for point in FIG2_POINTS:
        ctx.log(f"SCE{note}, {POINT_NAMES[point]}: gammas {list(cfg.gammas)} x {cfg.seeds} seeds, lr {cfg.lr:g}")
        unit = ctx.unit(f"point={point}", lambda: _unit(cfg, point, ctx.data_dir))
        rows += unit["rows"]
        images += unit["images"]
    summary = summarize(rows)
    ctx.log(f"layer {LAYER}: cos(-dLoss/dW, <y h^T>) on the first {cfg.probe_size} training samples, mean +- SD "
            "over seeds (training-time window mean)")
    for s in summary:
        ctx.log(f"gamma={s['gamma']:<6g} {POINT_NAMES[s['point']]:16s} {H.fmt(s['alignment_mean'])} +- "
                f"{H.fmt(s['alignment_sd'])} ({H.fmt(s['train_alignment'])}), acc {H.fmt(s['val_acc'])}")
    return {"rows": rows, "summary": summary, "images": images, "measurements": measurements(rows),
            "dataset_note": note.strip(" ()") or "CIFAR-10 (the paper's)"}


def summarize(rows: list[dict]) -> list[dict]:
    """Per (gamma, point): mean and SD over seeds of the probe alignment, the mean training-time alignment and
    validation accuracy, and the number of collapsed seeds."""
    out = []
    for g, point in dict.fromkeys((r["gamma"], r["point"]) for r in rows):
        rr = [r for r in rows if (r["gamma"], r["point"]) == (g, point)]
        m, sd = mean_sd([r["alignment"] for r in rr if r["alignment"] is not None])
        out.append({"gamma": g, "point": point, "alignment_mean": safe_float(m), "alignment_sd": safe_float(sd),
                    "train_alignment": safe_float(mean_sd([r["train_alignment"] for r in rr
                                                           if r["train_alignment"] is not None])[0]),
                    "val_acc": safe_float(mean_sd([r["val_acc"] for r in rr if r["val_acc"] is not None])[0]),
                    "n_collapsed": sum(r["collapsed"] for r in rr)})
    return out


def measurements(rows: list[dict]) -> dict[str, list]:
    """Per (gamma, point): every seed's probe alignment, in seed order (None where non-finite)."""
    out: dict[str, list] = {}
    for r in sorted(rows, key=lambda r: r["seed"]):
        out.setdefault(fig2_alignment(r["gamma"], r["point"]), []).append(r["alignment"])
    return out


# ----------------------------------------------------------------------------- plot

def panels(gammas) -> list[tuple[float, str]]:
    """The image rows: the largest gamma after epoch 1 (Fig. 17 left), then every gamma at the end, largest
    first (Fig. 17 right / Fig. 2 left, Fig. 2 right)."""
    order = sorted(gammas, reverse=True)
    return [(order[0], "epoch1")] + [(g, "end") for g in order]


def plot(results: dict, out: Path) -> None:
    cfg = results["config"]
    imgs = {(i["gamma"], i["point"]): i for i in results["images"]}
    means = {(s["gamma"], s["point"]): s for s in results["summary"]}
    rows = [p for p in panels(cfg["gammas"]) if p in imgs]
    vals = [np.abs(np.asarray(imgs[p][k], float)).max() for p in rows for k in ("signal", "hebbian")
            if imgs[p][k] is not None]
    vmax = max(vals) if vals else 1.0
    # two image columns and a thin third one that becomes the shared colour bar
    fig, ax = figure(len(rows), 3, size=(2.5, 3.3), gridspec_kw={"width_ratios": [1, 1, 0.06]})
    gs = ax[0, 2].get_gridspec()
    for a in ax[:, 2]:
        a.remove()
    cax = fig.add_subplot(gs[:, 2])
    im = None
    ticks = np.arange(0, cfg["subset"], 5)
    for i, p in enumerate(rows):
        g, point = p
        rec, s = imgs[p], means[p]
        for j, (key, name) in enumerate((("signal", "learning signal -dL/dW2"), ("hebbian", "Hebbian <y2 h1^T>"))):
            a = ax[i, j]
            if rec[key] is not None:
                im = a.imshow(np.asarray(rec[key], float), cmap="RdBu_r", vmin=-vmax, vmax=vmax)
            a.set_title(f"{name}, gamma={g:g}, {POINT_NAMES[point]}\ncos(G, H) = {H.fmt(rec['alignment'])} (seed "
                        f"{rec['seed']}; mean of n={cfg['seeds']}: {H.fmt(s['alignment_mean'])})", fontsize=7)
            a.set_xticks(ticks)
            a.set_yticks(ticks)
            a.set_xlabel("dim 2: pre-synaptic (h1)", fontsize=6)
            a.set_ylabel("dim 1: post-synaptic (y2)", fontsize=6)
            a.tick_params(labelsize=6)
    if im is not None:
        fig.colorbar(im, cax=cax)
    cax.set_ylabel(f"entry / Frobenius norm of the whole layer (top-left {cfg['subset']}x{cfg['subset']} of "
                   f"layer 2; {results.get('dataset_note', cfg['dataset'])}, lr {cfg['lr']:g}, first "
                   f"{cfg['probe_size']} training samples)", fontsize=7)
    save(fig, out / "fig2_update_directions.png")


register(Experiment("hebb-fig2", "Directions of layer 2's learning signal and Hebbian update, after the first epoch "
                    "and at the end of training, with and without weight decay (SCE, Figs. 2 and 17)",
                    HebbFig2Config, run, plot, paper="hebb",
                    quick={"dataset": "digits", "seeds": 2, "hidden": (32, 32), "epochs": 20.0, "batch_size": 64,
                           "log_every": 7, "window": 40, "max_epochs": None}))
