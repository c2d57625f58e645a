"""hebb-neurons: per-neuron Hebbian alignment of the full update and of the learning signal over time, with and
without weight decay (Figs. 15, 19-20).

The MLP (SRE by default: 32-128-128-32, tanh, no biases, mean squared error against a random tanh teacher;
``task="sce"``: the classification of ``dataset`` with cross-entropy) starts from the default init
U(-1, 1) / sqrt(fan_in) times ``init_scale`` and is trained by SGD with coupled weight decay gamma
(``hebb_optim.train``) for every gamma x seed, all runs vmapped; seed s draws the same initial weights and data
order at every gamma. Every ``log_every`` steps t, with W = W_l (l = ``layer``), its input h_a and
pre-activation h_b on the step's batch (``analysis.hebbian_alignment.StepAlignment``):

    H      = <h_b h_a^T>                                  (the Hebbian update, mean over the batch)
    g      = -dL/dW                                       (the learning signal)
    U      = -lr (dL/dW + gamma W)                        (the full update SGD applied)
    a_i(t) = cos(U[i, :], H[i, :]),  s_i(t) = cos(g[i, :], H[i, :])   per neuron i (row i of W)
    A(t)   = cos(U, H),              S(t)   = cos(g, H)               the whole layer

The images are a_i(t) and s_i(t) of the first ``n_neurons`` neurons of seed 0, one column per gamma. Over the
late half T of the logs (the last n - n // 2 of n logs) each run (gamma, seed) gets, with i < K = n_neurons and
t, t+1 consecutive logs in T:

    sign_flip_rate_late    = mean_{i, t} [sign a_i(t+1) != sign a_i(t)]     (``sign_flip_rate``)
    frac_hebbian_full_late = mean_{i, t} [a_i(t) > 0]                        (``frac_hebbian``)
    layer_full_late        = mean_t A(t),   layer_signal_late = mean_t S(t)

(None for a run whose alignments turned non-finite). They are the measurements of the paper's claims
(``plasticlab.claims.hebb``, ``neurons_late``): with weight decay (gamma = 0.05) the neurons flip sign more
often than without (Fig. 19), the learning signal is more Hebbian (Figs. 15, 19), fewer neuron updates are
Hebbian (section 5), and the layer's full-update alignment is near 0 (Fig. 15). The claims are judged in Fig. 19's
setting (SRE, tanh, layer 2, default init); a run in another one (Fig. 20: ``task=sce``, ReLU, ``init_scale``
0.5) files its measurements under that setting's name and leaves them "not measured".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...claims.hebb import NEURONS_GAMMAS, neurons_late, neurons_setting
from ...plotting import figure
from ...rules.hebb_optim import train
from ...settings import SettingError, setting
from . import common as H
from .common import mean_sd, n_steps, safe_float, sce_data, spec_for, sre_data
from ..base import Experiment, RunContext, register

TASKS = ("sre", "sce")
LATE = ("sign_flip_rate_late", "frac_hebbian_full_late", "layer_full_late", "layer_signal_late")  # measured
MIN_LOGS = 4  # the late half needs two consecutive logs for a sign flip


@dataclass
class HebbNeuronsConfig:
    """Per-neuron alignment of layer ``layer`` for each gamma (SRE by default; ``task="sce"`` for Fig. 20)."""

    task: str = setting("sre", choices=TASKS, doc='"sre": teacher-student regression (32-d, MSE); "sce": '
                                                  'classification of ``dataset`` (cross-entropy)')
    dataset: str = setting("cifar10", choices=H.sce_datasets,
                           doc='data set of task "sce" (any with integer class labels; unused for "sre")')
    activation: str = setting("tanh", kind="activation", doc="hidden activation")
    gammas: tuple[float, ...] = setting(NEURONS_GAMMAS, ge=0,
                                        doc="weight decays, one image each (Fig. 19: 0.05 and 0; the claims read "
                                            "these two)")
    seeds: int = setting(10, ge=1, le=1000, doc="seeds per gamma, run together under vmap (the claims pair them: "
                                                "at least 2)")
    n_train: int = setting(20000, ge=1, le=10_000_000, doc="training samples (sce: a random subset)")
    n_val: int = setting(2000, ge=1, le=10_000_000, doc="validation samples (sce: a random test subset)")
    teacher_init: str = H.hebb_setting("teacher_init", H.TEACHER_INIT)
    hidden: tuple[int, ...] = setting((128, 128), ge=1, le=H.MAX_WIDTH, doc="hidden widths of the MLP")
    epochs: float = setting(50.0, gt=0, le=H.MAX_EPOCHS, doc="passes over the training set (may be fractional)")
    batch_size: int = setting(256, ge=1, le=100_000, doc="minibatch size (<= n_train)")
    lr: float = setting(0.01, gt=0, doc="SGD learning rate")
    init_scale: float = setting(1.0, gt=0, doc="factor multiplying the default init U(-1, 1) / sqrt(fan_in) of "
                                               "every weight (Fig. 20 left: 0.5)")
    layer: int = setting(2, ge=1, le=1000, doc="1-based MLP layer whose neurons are imaged (<= len(hidden) + 1)")
    n_neurons: int = setting(30, ge=1, le=H.MAX_WIDTH, doc="neurons kept (the first ones of the layer)")
    log_every: int = setting(5, ge=1, le=100_000, doc="steps between alignment logs (image columns)")

    def validate(self) -> None:
        H.check_batch(self.n_train, self.batch_size)
        H.check_layer(self.layer, self.hidden)
        if len(set(self.gammas)) != len(self.gammas):
            raise SettingError("gammas", self.gammas, "distinct values", "a value appears twice")
        check_logs(n_steps(self.epochs, self.n_train, self.batch_size), self.log_every, self.epochs)


def check_logs(steps: int, log_every: int, epochs: float) -> None:
    """At least ``MIN_LOGS`` alignment logs, so that the late half holds two consecutive ones."""
    why = "the late half of training needs two consecutive logs"
    if steps < MIN_LOGS:
        raise SettingError("epochs", epochs, f"at least {MIN_LOGS} steps (epochs x n_train / batch_size)", why)
    if steps // log_every < MIN_LOGS:
        raise SettingError("log_every", log_every, f"<= {steps // MIN_LOGS} ({MIN_LOGS} logs in the {steps} steps)",
                           why)


def sign_flip_rate(a: np.ndarray) -> np.ndarray:
    """Per run, the share of (neuron i, consecutive logs t, t+1) with sign a[r, t+1, i] != sign a[r, t, i]
    (``np.sign``: an exact 0 is a sign of its own); ``a``: (runs, logs >= 2, neurons) -> (runs,), NaN for a run
    with a non-finite entry."""
    a = np.asarray(a, float)
    if a.ndim != 3 or a.shape[1] < 2:
        raise ValueError(f"expected (runs, logs >= 2, neurons), got shape {a.shape}")
    s = np.sign(a)
    return np.where(np.isfinite(a).all(axis=(1, 2)), np.mean(s[:, 1:] != s[:, :-1], axis=(1, 2)), np.nan)


def frac_hebbian(a: np.ndarray) -> np.ndarray:
    """Per run, the share of (log, neuron) entries with a > 0; (runs, logs, neurons) -> (runs,), NaN for a run
    with a non-finite entry."""
    a = np.asarray(a, float)
    return np.where(np.isfinite(a).all(axis=(1, 2)), np.mean(a > 0, axis=(1, 2)), np.nan)


def _unit(cfg: HebbNeuronsConfig, data_dir) -> dict:
    if cfg.task == "sre":
        x, y, xv, yv = sre_data(cfg.n_train, cfg.n_val, 32, cfg.hidden, teacher_init=cfg.teacher_init)
        sizes, loss = (32, *cfg.hidden, 32), "mse"
    elif cfg.task == "sce":
        x, y, xv, yv, nc = sce_data(cfg.dataset, data_dir, cfg.n_train, cfg.n_val)
        sizes, loss = (x.shape[1], *cfg.hidden, nc), "cross_entropy"
    else:
        raise ValueError(f"task must be 'sre' or 'sce', got {cfg.task!r}")
    H.check_batch(len(x), cfg.batch_size)
    steps = n_steps(cfg.epochs, len(x), cfg.batch_size)
    check_logs(steps, cfg.log_every, cfg.epochs)
    spec = spec_for("sgd", sizes, loss=loss, activation=cfg.activation, batch_size=cfg.batch_size,
                    neuron_layer=cfg.layer, init_scale=cfg.init_scale)
    seeds = np.tile(np.arange(cfg.seeds), len(cfg.gammas))
    gammas = [g for g in cfg.gammas for _ in range(cfg.seeds)]
    out = train(spec, x, y, xv, yv, seeds=seeds, hp={"gamma": np.asarray(gammas, np.float32), "lr": cfg.lr},
                n_steps=steps, log_every=cfg.log_every, n_evals=10)
    k = min(cfg.n_neurons, out["neuron"].shape[-1])
    nf, ns = out["neuron_full"][..., :k], out["neuron"][..., :k]
    late = slice(nf.shape[1] // 2, None)
    full, signal = out["align_full"][..., cfg.layer - 1], out["align"][..., cfg.layer - 1]
    per_run = {"sign_flip_rate_late": sign_flip_rate(nf[:, late]),
               "frac_hebbian_full_late": frac_hebbian(nf[:, late]),
               "mean_abs_neuron_full_late": np.mean(np.abs(nf[:, late]), axis=(1, 2)),
               "layer_full_late": np.mean(full[:, late], 1), "layer_signal_late": np.mean(signal[:, late], 1)}
    rows = [{"gamma": g, "seed": int(s), **{key: safe_float(v[r]) for key, v in per_run.items()}}
            for r, (g, s) in enumerate(zip(gammas, seeds))]
    first = [r for r, s in enumerate(seeds) if s == seeds[0]]
    images = [{"gamma": gammas[r], "seed": int(seeds[r]), "neuron_full": nf[r].tolist(),
               "neuron_signal": ns[r].tolist()} for r in first]
    return {"rows": rows, "images": images, "steps": out["step"].tolist(), "gamma": gammas,
            "seed": seeds.tolist(), "layer_full": full.tolist(), "layer_signal": signal.tolist()}


def measurements(cfg: HebbNeuronsConfig, rows: list[dict]) -> dict[str, list]:
    """Per gamma and late quantity (``LATE``): every seed's value, in seed order (None where non-finite), named
    by ``neurons_late`` in the run's setting (``neurons_setting``)."""
    where = neurons_setting(cfg.task, cfg.activation, cfg.layer, cfg.init_scale)
    out: dict[str, list] = {}
    for r in sorted(rows, key=lambda r: r["seed"]):
        for key in LATE:
            out.setdefault(neurons_late(r["gamma"], key, where), []).append(r[key])
    return out


def _summary(rows: list[dict]) -> Callable[[str], str]:
    """key -> "mean +- SD" over ``rows`` of that key (non-finite values left out)."""
    def ms(key: str) -> str:
        m, sd = mean_sd([r[key] for r in rows if r[key] is not None])
        return f"{H.fmt(m)} +- {H.fmt(sd)}"

    return ms


def run(cfg: HebbNeuronsConfig, ctx: RunContext) -> dict:
    res = ctx.unit("all", lambda: _unit(cfg, ctx.data_dir))
    ctx.log(f"{cfg.task.upper()}, {cfg.activation}, init x{cfg.init_scale:g}, lr {cfg.lr:g}, layer {cfg.layer}, "
            f"late half of training, mean +- SD over {cfg.seeds} seed(s):")
    for g in cfg.gammas:
        ms = _summary([r for r in res["rows"] if r["gamma"] == g])
        ctx.log(f"gamma={g:g}: per-neuron sign flips/log {ms('sign_flip_rate_late')}, Hebbian share "
                f"{ms('frac_hebbian_full_late')}, |cos(full update, Hebb)| {ms('mean_abs_neuron_full_late')}; "
                f"layer cos(full) {ms('layer_full_late')}, cos(signal) {ms('layer_signal_late')}")
    return {**res, "measurements": measurements(cfg, res["rows"])}


def plot(results: dict, out: Path) -> None:
    images = results["images"]
    n = len(images)
    fig, ax = figure(2, n, size=(5.5, 3.0))
    steps = results["steps"]
    im = None
    for i, rec in enumerate(images):
        for r, key in enumerate(("neuron_full", "neuron_signal")):
            a = np.asarray(rec[key], float).T
            im = ax[r, i].imshow(a, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest",
                                 extent=(steps[0], steps[-1], a.shape[0], 0))
            ax[r, i].set_title(f"gamma={rec['gamma']:g} (seed {rec['seed']}): "
                               f"{'full update' if r == 0 else 'learning signal'}", fontsize=8)
            ax[r, i].set_xlabel("step")
            ax[r, i].set_ylabel("neuron")
    if im is not None:
        fig.colorbar(im, ax=ax.ravel().tolist(), label="cos with Hebbian update")
    fig.savefig(out / "neurons_alignment.png", dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)


register(Experiment("hebb-neurons", "Per-neuron alignment over time as an image, with and without weight decay; "
                    "late-training sign flips, Hebbian share and layer alignments (Figs. 15, 19-20)",
                    HebbNeuronsConfig, run, plot, paper="hebb",
                    quick={"seeds": 3, "dataset": "digits", "n_train": 2048, "n_val": 256, "hidden": (32, 32),
                           "epochs": 10.0, "batch_size": 64, "lr": 0.05, "log_every": 2, "n_neurons": 16}))
