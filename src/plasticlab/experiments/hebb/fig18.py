"""hebb-fig18: networks trained by Hebbian rules instead of SGD, and the alignment of their update with the
supervised gradient (SCE, Fig. 18).

The SCE network (MLP d_0-128-128-n_classes, tanh hidden layers, no biases, cross-entropy on the outputs) learns
by an unsupervised rule in *every* layer (the output layer included; no label reaches the weights). For layer l
with input h_a = h_{l-1} (presynaptic activation), pre-activation y_b = W_l h_a and h_b = f(y_b) (the
identity for the output layer), the postsynaptic signal is

    p = y_b   (pre-activation versions: ``hebb_pre``, ``oja_pre``)
    p = h_b   (post-activation versions: ``hebb_post``, ``oja_post``)

and, with <.> the mean over the batch,

    Normalized Hebbian:  Delta W_l = lr <p h_a^T>,   then  W_l <- S(W_l + Delta W_l)
    Oja:                 Delta W_l = lr <p (h_a - W_l^T p)^T>,   W_l <- W_l + Delta W_l

    S(W)_ij = (W_ij - m_i) / (s_i + 1e-8) * c,   m_i = mean_j W_ij,  s_i = SD_j W_ij   (weight standardisation:
              each row, the incoming weights of one neuron, to zero mean and SD c; c = 1 (``ws_scale="unit"``,
              Qiao et al.'s weight standardisation) or c = 1/sqrt(d_in) (``"fan_in"``: unit row norm))

At every ``log_every``-th step, at the weights W the step started from and on its batch (x, t), the step
metric ``SGDAlignment`` measures for every layer

    G_l = dLoss/dW_l = jax.grad of the mean cross-entropy over the batch
    sgd_align[l]      = cos(Delta W_l, -G_l)      (the Hebbian rule's update: what Fig. 18 plots, layer 2)
    sgd_align_full[l] = cos(U_l, -G_l)            (U: the change applied, standardisation included)

Per run: the mean (and SD) of sgd_align[2] over the logs of the final ``window`` steps (the paper's
200-iteration window), the same in consecutive windows of ``window`` steps for the curves, and the final
validation accuracy. A reference network trained by SGD (backprop, lr ``sgd_lr``, the same seeds: the same
initial weights and data order) gives the accuracy that "performs poorly" is judged against.

The paper's data set is CIFAR-10, which is not available offline; ``--set dataset=mnist --data-dir ...`` is
the MNIST stand-in, ``--quick`` uses the bundled 8x8 digits.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ...analysis.hebbian_alignment import cosine
from ...claims.hebb import FIG18_LRS, FIG18_SGD_ACC, FIG18_VARIANTS, fig18_accuracy, fig18_alignment
from ...losses import get_loss
from ...networks.mlp import MLP, Params
from ...plotting import figure, mark_chance, save, spread_label
from ...rules.base import Rule, layer_selected
from ...rules.feedback import BP
from ...rules.hebb_optim import FAST_COMPILE
from ...rules.hebbian import Hebb, Oja
from ...settings import SettingError, setting
from ...training import Trainer, fit, fit_steps, identity_optimizer
from . import common as H
from .common import hebb_setting, mean_sd, safe_float, sce_data
from ..base import Experiment, RunContext, register

WS_SCALES = ("unit", "fan_in")
WS_EPS = 1e-8
INIT = "uniform_fanin"  # the SCE's initialisation (hebb_optim.HebbSpec: U(-1, 1) / sqrt(fan_in), torch's Linear)
N_EVALS = 10  # validation evaluations over a run (the accuracy curve)
NAMES = {"hebb_pre": "Normalized Hebbian (pre)", "hebb_post": "Normalized Hebbian (post)",
         "oja_pre": "Oja (pre)", "oja_post": "Oja (post)", "sgd": "SGD reference"}


# ----------------------------------------------------------------------------- rules on the pre-activation

def _pre_activation_update(rule: Hebb | Oja, params: Params, sig) -> Params:
    """``rule``'s layer deltas with the pre-activation y_l in place of h_l: lr * layer_delta(W_l, h_{l-1}, y_l)."""
    h, y = sig.fwd.h, sig.fwd.y
    dW = tuple(rule.lr * rule.layer_delta(w, h[l - 1], y[l - 1]) if layer_selected(rule.layers, l)
               else jnp.zeros_like(w) for l, w in enumerate(params.W, start=1))
    db = None if params.b is None else tuple(jnp.zeros_like(b) for b in params.b)
    return Params(dW, db)


class PreHebb(Hebb):
    """Plain Hebbian rule on the pre-activation y_l = W_l h_{l-1} (+ b_l) instead of h_l = f(y_l).

    Equation:
        Delta W_l = lr <y_l h_{l-1}^T>     for l in ``layers``
        Delta b_l = 0

    Parameters:
        lr: learning rate of the Hebbian term.
        layers: 1-based indices of the layers l whose W_l learn by this rule (None: every layer).
    """

    def update(self, net, params, state, sig, key):
        return _pre_activation_update(self, params, sig), state


class PreOja(Oja):
    """Oja's subspace rule on the pre-activation y_l = W_l h_{l-1} (+ b_l) (the linear neuron of Oja 1982).

    Equation:
        Delta W_l = lr <y_l (h_{l-1} - W_l^T y_l)^T>     for l in ``layers``
        Delta b_l = 0

    Parameters:
        lr: learning rate of the Oja term.
        layers: 1-based indices of the layers l whose W_l learn by this rule (None: every layer).
    """

    def update(self, net, params, state, sig, key):
        return _pre_activation_update(self, params, sig), state


# variant -> (rule class, weight standardisation after every step)
VARIANTS: dict[str, tuple[type[Rule], bool]] = {"hebb_pre": (PreHebb, True), "hebb_post": (Hebb, True),
                                               "oja_pre": (PreOja, False), "oja_post": (Oja, False)}
assert tuple(VARIANTS) == FIG18_VARIANTS


# ----------------------------------------------------------------------------- weight standardisation

def standardize_rows(w: jax.Array, scale: str = "unit") -> jax.Array:
    """S(W): every row to zero mean and SD c (c = 1 for "unit", 1/sqrt(d_in) for "fan_in"); module docstring."""
    if scale not in WS_SCALES:
        raise ValueError(f"scale must be one of {WS_SCALES}, got {scale!r}")
    c = 1.0 if scale == "unit" else 1.0 / np.sqrt(w.shape[-1])
    m = jnp.mean(w, axis=-1, keepdims=True)
    s = jnp.std(w, axis=-1, keepdims=True)
    return (w - m) / (s + WS_EPS) * c


def weight_standardization(scale: str = "unit") -> optax.GradientTransformation:
    """u <- S(W + u) - W for every weight matrix (ndim >= 2; biases keep u): after this update the weights are
    the standardised S(W + u) (``standardize_rows``)."""
    if scale not in WS_SCALES:
        raise ValueError(f"scale must be one of {WS_SCALES}, got {scale!r}")

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("weight_standardization needs the parameters: call update(updates, state, params)")
        return jax.tree.map(lambda u, w: standardize_rows(w + u, scale) - w if w.ndim >= 2 else u,
                            updates, params), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


@functools.cache
def standardized_optimizer(scale: str = "unit") -> optax.GradientTransformation:
    """W <- S(W + Delta W): the identity step (u = -g = Delta W) followed by ``weight_standardization`` (one
    shared object per scale, so that trainers built apart compare equal and form one ``fit`` grid)."""
    return optax.chain(identity_optimizer(), weight_standardization(scale))


# ----------------------------------------------------------------------------- the step metric

@dataclass(frozen=True)
class SGDAlignment:
    """A ``Trainer.step_metrics``: the alignment of a step's update with the supervised gradient ("SGD alignment").

    With W = W' - U the weights the step started from (W' after the step, U the change the optimiser applied;
    exact up to float rounding) and G_l = dLoss/dW_l = ``jax.grad`` of the trainer's loss on the step's batch
    (x, t) at W:
        sgd_align[l]      = cos(Delta W_l, -G_l)   (the rule's update, before decay / optimiser / standardisation)
        sgd_align_full[l] = cos(U_l, -G_l)
        kept[l]           = ||U_l|| / ||Delta W_l||
        sgd_align_removed[l] = cos(Delta W_l - U_l, -G_l)   (0 where nothing is removed: no standardisation)
        wnorm[l]          = ||W'_l||_F
    (For the networks of this module: no weight noise, no forward_train, so the step's signals are at W.)
    """

    def __call__(self, trainer: Trainer, sig, deltas: Params, updates: Params, params: Params,
                 mask: Params | None = None) -> dict:
        before = jax.tree.map(jnp.subtract, params, updates)
        grads = jax.grad(lambda p: trainer.loss.value(trainer.net.forward(p, sig.x), sig.t))(before)
        return {"sgd_align": jnp.stack([cosine(d, -g) for d, g in zip(deltas.W, grads.W)]),
                "sgd_align_full": jnp.stack([cosine(u, -g) for u, g in zip(updates.W, grads.W)]),
                "kept": jnp.stack([jnp.linalg.norm(u) / jnp.linalg.norm(d) for d, u in zip(deltas.W, updates.W)]),
                "sgd_align_removed": jnp.stack([cosine(d - u, -g) for d, u, g in zip(deltas.W, updates.W, grads.W)]),
                "wnorm": jnp.stack([jnp.linalg.norm(w) for w in params.W])}


def hebbian_trainer(variant: str, sizes: tuple[int, ...], lr: float, activation: str = "tanh",
                    ws_scale: str = "unit") -> Trainer:
    """The Trainer of one Hebbian run (module docstring): every layer learns by ``variant`` at rate ``lr``."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {tuple(VARIANTS)}")
    cls, standardize = VARIANTS[variant]
    return Trainer(MLP(tuple(sizes), activation=activation), cls(lr=lr), loss=get_loss("cross_entropy"),
                   optimizer=standardized_optimizer(ws_scale) if standardize else identity_optimizer(),
                   init_method=INIT, step_metrics=SGDAlignment())


def sgd_trainer(sizes: tuple[int, ...], lr: float, activation: str = "tanh") -> Trainer:
    """The SGD reference: Delta W = -lr dLoss/dW (backprop, ``BP``) on the same network and initialisation."""
    return Trainer(MLP(tuple(sizes), activation=activation), BP(lr=lr), loss=get_loss("cross_entropy"),
                   init_method=INIT, step_metrics=SGDAlignment())


# ----------------------------------------------------------------------------- config

@dataclass
class HebbFig18Config:
    """SCE network (MLP 2x128 tanh, cross-entropy; paper: CIFAR-10, batch 256, 50 epochs) trained by Hebbian rules."""

    dataset: str = hebb_setting("dataset", "cifar10")
    n_train: int | None = hebb_setting("n_train", None)
    n_test: int | None = hebb_setting("n_test", None)
    hidden: tuple[int, ...] = hebb_setting("hidden", (128, 128))
    activation: str = setting("tanh", kind="activation", doc="hidden activation (the output layer is linear)")
    rules: tuple[str, ...] = setting(FIG18_VARIANTS, choices=FIG18_VARIANTS,
                                     doc="Hebbian variants, every layer learning by it: hebb_pre / hebb_post: "
                                         "Delta W = lr <p h_a^T> then every row of W standardised; oja_pre / "
                                         "oja_post: Delta W = lr <p (h_a - W^T p)^T>; p = the pre-activation "
                                         "W h_a (pre) or f(W h_a) (post)")
    lrs: tuple[float, ...] = setting(FIG18_LRS, gt=0, le=1.0,
                                     doc="learning rates of the Hebbian rules (the paper's two are not printed; "
                                         "the defaults: the largest power of 10 at which every variant stays "
                                         "finite on standardised MNIST pixels (oja_pre diverges at 0.1 within "
                                         "4 steps), and 10 times smaller)")
    ws_scale: str = setting("unit", choices=WS_SCALES,
                            doc='SD of every row after the weight standardisation of hebb_*: "unit" (weight '
                                'standardisation, SD 1) or "fan_in" (SD 1/sqrt(d_in): rows of norm 1)')
    sgd_lr: float = setting(0.01, gt=0, le=10.0, doc="learning rate of the SGD-trained reference network "
                                                     "(the paper's SCE: 0.01)")
    seeds: int = hebb_setting("seeds", 10, doc="seeds; every seed runs every variant and learning rate (vmapped) "
                                               "and the SGD reference, with the same initial weights and data "
                                               "order")
    epochs: float = hebb_setting("epochs", 50.0, doc="passes over the training set (may be fractional)")
    batch_size: int = hebb_setting("batch_size", 256)
    window: int = hebb_setting("window", 200, doc="steps of the averaging window: the final alignment is the "
                                                  "mean over the logs of the last this many steps (the paper's "
                                                  "200-iteration window); the curves use consecutive windows")
    log_every: int = hebb_setting("log_every", 5, doc="steps between alignment logs (each costs a backprop "
                                                      "gradient)")

    def validate(self) -> None:
        H.check_batch(self.n_train, self.batch_size)
        for key in ("rules", "lrs"):
            values = getattr(self, key)
            if len(set(values)) != len(values):
                raise SettingError(key, values, "distinct values", "a value appears twice")
        if self.window < self.log_every:
            raise SettingError("window", self.window, f">= log_every ({self.log_every})",
                               "no log would fall in the window")
        if self.n_train is not None:
            check_steps(self, self.n_train)


def n_steps(cfg: HebbFig18Config, n_train: int) -> int:
    """Steps of every run: ``fit``'s count (``training.fit_steps``)."""
    return fit_steps(n_train, cfg.batch_size, cfg.epochs)


def check_steps(cfg: HebbFig18Config, n_train: int) -> None:
    """The run is at least one averaging window long (else "the last 200 steps" would be the whole run)."""
    steps = n_steps(cfg, n_train)
    if steps < cfg.window:
        raise SettingError("window", cfg.window, f"<= the steps of a run ({steps} = {cfg.epochs:g} epochs x "
                                                 f"{n_train} samples / batch {cfg.batch_size})")


# ----------------------------------------------------------------------------- run

def windows(values: np.ndarray, steps: np.ndarray, window: int, total: int) -> dict:
    """Mean and SD of ``values`` (..., logs) over the logs in consecutive windows of ``window`` steps,
    (0, window], (window, 2 window], ... up to ``total``, and over the final window (total - window, total]."""
    steps = np.asarray(steps)
    v = np.asarray(values, float)

    def stats(sel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        part = v[..., sel]
        with warnings.catch_warnings():  # a seed without finite logs (diverged): NaN, no warning
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(part, -1), np.nanstd(part, -1)

    edges = list(range(0, total, window)) + [total]
    sels = [(b, (steps > a) & (steps <= b)) for a, b in zip(edges, edges[1:])]
    ends = [b for b, sel in sels if sel.any()]  # windows without a log are left out
    blocks = [stats(sel) for _, sel in sels if sel.any()]
    fin = stats(steps > total - window)
    return {"end": ends, "mean": np.stack([m for m, _ in blocks], -1), "sd": np.stack([s for _, s in blocks], -1),
            "final_mean": fin[0], "final_sd": fin[1]}


def _fit(trainers: list[Trainer], data, cfg: HebbFig18Config, progress) -> tuple[dict, int]:
    """Train the grid of ``trainers`` (one cell each) for every seed; per cell and seed: logs, accuracy, flags."""
    x, y, xv, yv = data
    steps = n_steps(cfg, len(x))
    work = len(trainers) * cfg.seeds * steps * cfg.batch_size * sum(a * b for a, b in zip(trainers[0].net.sizes,
                                                                                          trainers[0].net.sizes[1:]))
    hist = fit(trainers, x, y, seeds=cfg.seeds, epochs=cfg.epochs, batch_size=cfg.batch_size, evals=N_EVALS,
               x_eval=xv, y_eval=yv, progress=progress, on_divergence="record", log_every=cfg.log_every,
               compiler_options=FAST_COMPILE if work < 5e10 else None)
    steps_logged = np.asarray(hist.log_steps)
    logged = {k: np.moveaxis(hist.logged(m), -1, 2)  # (cells, seeds, L, logs)
              for k, m in (("align", "sgd_align"), ("full", "sgd_align_full"), ("kept", "kept"),
                           ("removed", "sgd_align_removed"))}
    return {"steps": steps_logged, **logged,
            "val_acc": hist.final("eval_accuracy"), "diverged": np.asarray(hist.seed_diverged, bool),
            "messages": list(hist.diverged)}, steps


def _unit(cfg: HebbFig18Config, variant: str, data_dir, progress) -> dict:
    x, y, xv, yv, n_classes = sce_data(cfg.dataset, data_dir, cfg.n_train, cfg.n_test)
    check_steps(cfg, len(x))
    sizes = (x.shape[1], *cfg.hidden, n_classes)
    if variant == "sgd":
        trainers, lrs = [sgd_trainer(sizes, cfg.sgd_lr, cfg.activation)], [cfg.sgd_lr]
    else:
        trainers = [hebbian_trainer(variant, sizes, lr, cfg.activation, cfg.ws_scale) for lr in cfg.lrs]
        lrs = list(cfg.lrs)
    res, total = _fit(trainers, (x, y, xv, yv), cfg, progress and f"hebb-fig18 {variant}")
    # final-window statistics of each logged quantity, (cells, seeds, L[, windows]); the row field each fills
    wins = {k: windows(res[k], res["steps"], cfg.window, total) for k in ("align", "full", "kept", "removed")}
    win = wins["align"]
    fields = (("alignment", "align", "final_mean"), ("window_sd", "align", "final_sd"),
              ("alignment_full", "full", "final_mean"), ("kept", "kept", "final_mean"),
              ("alignment_removed", "removed", "final_mean"))
    rows, curves = [], []
    for c, lr in enumerate(lrs):
        for s in range(cfg.seeds):
            bad = bool(res["diverged"][c, s])
            for l in range(res["align"].shape[2]):
                rows.append({"variant": variant, "lr": lr, "seed": s, "layer": l + 1,
                             **{f: None if bad else safe_float(wins[k][stat][c, s, l]) for f, k, stat in fields},
                             "val_acc": None if bad else safe_float(res["val_acc"][c, s]), "diverged": bad})
        curves.append({"variant": variant, "lr": lr, "end": win["end"],
                       "mean": [[safe_float(v) for v in win["mean"][c, s, 1]] for s in range(cfg.seeds)],
                       "sd": [[safe_float(v) for v in win["sd"][c, s, 1]] for s in range(cfg.seeds)]})
    return {"rows": rows, "curves": curves, "n_steps": total,
            "diverged": [m for m in res["messages"] if m is not None]}


def run(cfg: HebbFig18Config, ctx: RunContext) -> dict:
    x, *_, n_classes = sce_data(cfg.dataset, ctx.data_dir, cfg.n_train, 10)  # fail early with the loader's DataError if absent
    check_steps(cfg, len(x))
    note = "" if cfg.dataset == "cifar10" else f" ({cfg.dataset} standing in for CIFAR-10)"
    ctx.log(f"SCE{note}: {len(cfg.rules)} Hebbian rules x lrs {list(cfg.lrs)} x {cfg.seeds} seeds, "
            f"{n_steps(cfg, len(x))} steps each; SGD reference at lr {cfg.sgd_lr:g}")
    rows, curves, diverged = [], [], []
    for variant in (*cfg.rules, "sgd"):
        unit = ctx.unit(f"variant={variant}", lambda: _unit(cfg, variant, ctx.data_dir, ctx.progress and not ctx.quick))
        rows += unit["rows"]
        curves += unit["curves"]
        diverged += unit["diverged"]
    summary = summarize(rows)
    ctx.log("layer 2, final window: SGD alignment mean +- SD over seeds (mean window SD), validation accuracy; the "
            "applied change U's alignment, ||U|| / ||dW|| and the alignment of the part dW - U the standardisation "
            "removed")
    for s in summary:
        ctx.log(f"{s['variant']:9s} lr={s['lr']:<6g} {_fmt(s['alignment_mean'])} +- {_fmt(s['alignment_sd'])} "
                f"({_fmt(s['window_sd'])}), acc {_fmt(s['val_acc'])}; applied change {_fmt(s['alignment_full'])} "
                f"(||U||/||dW|| {_fmt(s['kept'])}, removed part {_fmt(s['alignment_removed'])})"
                + (f", {s['n_diverged']} diverged" if s["n_diverged"] else ""))
    for msg in diverged:
        ctx.log(msg, style="yellow")
    return {"rows": rows, "summary": summary, "curves": curves, "measurements": measurements(rows),
            "dataset_note": note.strip(" ()") or "CIFAR-10 (the paper's)", "n_classes": int(n_classes)}


def _fmt(v: float | None) -> str:
    return "nan" if v is None else f"{v:.3f}"


def summarize(rows: list[dict], layer: int = 2) -> list[dict]:
    """Per (variant, lr), for ``layer`` (Fig. 18's layer 2; ``rows`` hold every layer): mean and SD over seeds of
    the final-window alignment, the mean window SD, the full-update alignment, the mean validation accuracy and
    the number of diverged seeds."""
    out = []
    for key in dict.fromkeys((r["variant"], r["lr"]) for r in rows if r["layer"] == layer):
        rr = [r for r in rows if (r["variant"], r["lr"], r["layer"]) == (*key, layer)]
        m, sd = mean_sd([r["alignment"] for r in rr if r["alignment"] is not None])
        out.append({"variant": key[0], "lr": key[1], "alignment_mean": safe_float(m),
                    "alignment_sd": safe_float(sd),
                    "window_sd": safe_float(mean_sd([r["window_sd"] for r in rr if r["window_sd"] is not None])[0]),
                    **{k: safe_float(mean_sd([r[k] for r in rr if r.get(k) is not None])[0])
                       for k in ("alignment_full", "kept", "alignment_removed")},
                    "val_acc": safe_float(mean_sd([r["val_acc"] for r in rr if r["val_acc"] is not None])[0]),
                    "n_diverged": sum(r["diverged"] for r in rr)})
    return out


def measurements(rows: list[dict]) -> dict[str, list]:
    """Per (variant, lr): every seed's final-window layer-2 alignment and validation accuracy (None: diverged);
    the SGD reference's per-seed accuracy."""
    out: dict[str, list] = {}
    for r in sorted((r for r in rows if r["layer"] == 2), key=lambda r: r["seed"]):
        if r["variant"] == "sgd":
            out.setdefault(FIG18_SGD_ACC, []).append(r["val_acc"])
        else:
            out.setdefault(fig18_alignment(r["variant"], r["lr"]), []).append(r["alignment"])
            out.setdefault(fig18_accuracy(r["variant"], r["lr"]), []).append(r["val_acc"])
    return out


# ----------------------------------------------------------------------------- plot

def plot(results: dict, out: Path) -> None:
    cfg = results["config"]
    lrs = cfg["lrs"]
    fig, ax = figure(1, len(lrs) + 1, size=(4.4, 3.4))
    top = 0.25  # symmetric y range: at least +-0.25, else the largest |mean +- SD| drawn
    for i, lr in enumerate(lrs):
        a = ax[0, i]
        for c in results["curves"]:
            if c["variant"] == "sgd" or c["lr"] != lr:
                continue
            m = np.asarray(c["mean"], dtype=float)  # (seeds, windows)
            sd = np.asarray(c["sd"], dtype=float)
            ok = np.isfinite(m).any(0)
            if not ok.any():
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mm, ss = np.nanmean(m, 0)[ok], np.nanmean(sd, 0)[ok]
            end = np.asarray(c["end"])[ok]
            line, = a.plot(end, mm, marker=".", label=spread_label(NAMES[c["variant"]], cfg["seeds"],
                                                                   spread=f"{cfg['window']}-step window SD"))
            a.fill_between(end, mm - ss, mm + ss, color=line.get_color(), alpha=0.2)
            top = max(top, float(np.nanmax(np.abs(np.concatenate([mm - ss, mm + ss])))) * 1.1)
        a.axhline(0, color="k", lw=0.5)
        a.set_xlabel("step (end of window)")
        a.set_ylabel("SGD alignment of layer 2, cos(dW, -grad)")
        a.set_title(f"lr = {lr:g} ({results.get('dataset_note', cfg['dataset'])})", fontsize=8)
        if a.get_legend_handles_labels()[0]:
            a.legend(fontsize=5)
    for a in ax[0, :-1]:
        a.set_ylim(-min(top, 1.05), min(top, 1.05))
    a = ax[0, -1]
    acc = results["summary"]
    labels = [f"{s['variant']}\n{'' if s['variant'] == 'sgd' else 'lr ' + format(s['lr'], 'g')}" for s in acc]
    vals = [s["val_acc"] if s["val_acc"] is not None else np.nan for s in acc]
    a.bar(np.arange(len(acc)), vals, color=["tab:gray" if s["variant"] == "sgd" else "tab:blue" for s in acc])
    a.set_xticks(np.arange(len(acc)), labels, fontsize=5, rotation=90)
    a.set_ylim(0, 1)
    a.set_ylabel(f"validation accuracy (mean, n={cfg['seeds']})")
    a.set_title("accuracy: Hebbian rules vs SGD", fontsize=8)
    if results.get("n_classes"):  # absent from older runs: no chance line
        mark_chance(a, 1 / results["n_classes"])
    save(fig, out / "fig18_sgd_alignment.png")


register(Experiment("hebb-fig18", "Networks trained by Normalized Hebbian / Oja rules (pre- and post-activation): "
                    "alignment of layer 2's update with the supervised gradient, and accuracy vs SGD (SCE, Fig. 18)",
                    HebbFig18Config, run, plot, paper="hebb",
                    quick={"dataset": "digits", "seeds": 2, "hidden": (32, 32), "epochs": 10.0, "batch_size": 64,
                           "sgd_lr": 0.05, "log_every": 2, "window": 40}))
