"""hebb-fig6: the initial Hebbian alignment bump of an SCE with ReLU, against the initialisation scale, the
learning rate and the weight decay, with layer 2's weight norm (Fig. 6, section 5 "Initial Hebbian alignment
bump").

The SCE (MLP d_0-128-128-n_classes, ``activation`` hidden layers (ReLU, as Fig. 6), no biases, mean
cross-entropy, batch 256) starts from the default init U(-1, 1) / sqrt(fan_in) times the init scale s
(``init_scales``, Fig. 6: 0.5x, 1x, 2x) and is trained by SGD with coupled weight decay gamma
(``hebb_optim.train`` through ``training.fit``) at every learning rate (``lrs``: Fig. 6's eta = 0.001 and the
SCE's default 0.01, for "a higher learning rate makes this process happen faster"). One unit per (s, lr): its
gamma x seed runs are one vmapped ``fit`` grid; seed k draws the same initial weights (times s) and data order in
every unit. Every ``log_every`` = e steps, at the logged steps t_k = k e (k = 1..K), with W = W_2 and, on the
step's batch, h_a = h_1 (input of layer 2) and h_b = y_2 (its pre-activation):

    H      = <h_b h_a^T>                       (the Hebbian update, mean over the batch)
    g      = -dL/dW                            (the learning signal)
    U      = -lr (dL/dW + gamma W)             (the full update SGD applied)
    A_k    = cos(U, H),   G_k = cos(g, H),   N_k = ||W||_F after the step      (``StepAlignment``)

Smoothing (the paper's "window=200", in steps): the trailing mean over the m = w / e logs of the last
w = ``window`` steps,

    S(k) = (1/m) sum_{j=k-m+1..k} A_j                 for k >= m (full windows only)

and, per run (the same for G with the prefix ``signal_``):

    early      = S(m)                                 (the mean over the first window, steps 1..w)
    peak       = max_{k >= m} S(k),   k* = the first k attaining it,   peak_step = t_{k*}
    jump       = peak - early
    norm_start = N_1 (the first log, e steps after the initial weights),   norm_peak = N_{k*}
    norm_decreased = 1 if norm_peak < norm_start else 0

``jump`` is >= 0 by construction and > 0 for any noisy curve, a flat one too, so the claims read a held-out
jump instead: with S^odd and S^even the same trailing means taken over the odd and over the even logs of each
window only, k^odd = argmax_{k >= m} S^odd(k) and k^even likewise,

    jump_heldout = ( [S^even(k^odd) - S^even(m)] + [S^odd(k^even) - S^odd(m)] ) / 2

(the peak is chosen on one half of the logs and measured on the other, whose batch noise is independent of the
choice: its mean is 0 for a curve without a rise, and near ``jump`` for a rise much larger than the noise).

Measurements (``claims.hebb.fig6_run``): per (s, gamma, lr) and quantity, every seed's value in seed order (None
where non-finite). The claims (``claims.hebb``, ``hebb.fig6.*``) are judged in Fig. 6's setting, ReLU; a run with
another activation files its measurements under that activation's name (``fig6_setting``) and leaves them
"not measured". Fig. 6 uses CIFAR-10, which is not available offline: ``--set dataset=mnist --data-dir
/work/shared/data/mnist`` is the MNIST stand-in (the data set is not part of the measurement names, as in
hebb-fig2 and hebb-neurons), ``--quick`` uses the bundled 8x8 digits.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...claims.hebb import FIG6_GAMMAS, FIG6_INITS, FIG6_LRS, FIG6_WINDOW, fig6_run, fig6_setting
from ...plotting import figure, save, spread_label
from ...rules.hebb_optim import train
from ...settings import SettingError, setting
from . import common as H
from .common import hebb_setting, mean_sd, n_steps, safe_float, sce_data, spec_for
from ..base import Experiment, RunContext, register

LAYER = 2  # Fig. 6's layer (1-based): W_2 maps hidden layer 1 to hidden layer 2
MEASURED = ("early", "peak", "jump", "jump_heldout", "peak_step", "signal_early", "signal_peak", "signal_jump",
            "signal_jump_heldout", "signal_peak_step", "norm_start", "norm_peak", "norm_decreased")
MAX_POINTS = 400  # points per stored curve (the plot's resolution)
TITLES = {"full": "full update", "signal": "learning signal", "norm": "weight norm"}  # the plot's rows


@dataclass
class HebbFig6Config:
    """SCE, MLP 2 x 128 ReLU, SGD: init scale x weight decay x learning rate x seed (Fig. 6: lr 0.001)."""

    dataset: str = hebb_setting("dataset", "cifar10", doc="SCE data set (any with integer class labels; inputs "
                                                         "standardised); CIFAR-10 (the paper's) is not offline: "
                                                         "mnist with --data-dir is the stand-in")
    n_train: int | None = hebb_setting("n_train", None)
    n_test: int | None = hebb_setting("n_test", 2000)
    activation: str = setting("relu", kind="activation", doc="hidden activation (Fig. 6: ReLU; the claims are "
                                                              "judged for relu only)")
    hidden: tuple[int, ...] = hebb_setting("hidden", (128, 128), doc="hidden widths of the MLP (at least two: "
                                                                      "layer 2 maps hidden layer 1 to hidden "
                                                                      "layer 2)")
    init_scales: tuple[float, ...] = setting(FIG6_INITS, gt=0, le=100,
                                             doc="factors multiplying the default init U(-1, 1) / sqrt(fan_in) of "
                                                 "every weight (Fig. 6: 0.5x, 1x, 2x)")
    gammas: tuple[float, ...] = hebb_setting("gammas", FIG6_GAMMAS,
                                             doc="weight decays (coupled L2; 0: none); 0.05 is Fig. 20 left's "
                                                 "(SCE, ReLU, 0.5x, lr 0.001)")
    lrs: tuple[float, ...] = setting(FIG6_LRS, gt=0, le=10,
                                     doc="SGD learning rates (Fig. 6: 0.001; 0.01, the SCE default, for 'a higher "
                                         "learning rate makes this process happen faster')")
    seeds: int = hebb_setting("seeds", 10, doc="seeds per cell, run together under vmap (the claims pair them: at "
                                               "least 2)")
    epochs: float = hebb_setting("epochs", 50.0, doc="passes over the training set (may be fractional; the SCE's "
                                                     "50)")
    batch_size: int = hebb_setting("batch_size", 256)
    log_every: int = hebb_setting("log_every", 5, doc="steps between alignment logs (a divisor of window)")
    window: int = setting(FIG6_WINDOW, ge=2, le=H.MAX_STEPS,
                          doc="trailing smoothing window in steps (Fig. 6: 200); a multiple of log_every holding "
                              "at least 2 logs")

    def validate(self) -> None:
        H.check_batch(self.n_train, self.batch_size)
        if len(self.hidden) < 2:
            raise SettingError("hidden", self.hidden, "at least two hidden widths",
                               "layer 2 must map hidden layer 1 to hidden layer 2")
        for key in ("init_scales", "gammas", "lrs"):
            values = getattr(self, key)
            if len(set(values)) != len(values):
                raise SettingError(key, values, "distinct values", "a value appears twice")
        if self.window % self.log_every or self.window // self.log_every < 2:
            raise SettingError("window", self.window, f"a multiple of log_every ({self.log_every}) holding at least "
                                                      "2 logs", "the smoothing windows are whole numbers of logs")
        if self.n_train is not None:
            check_length(self.epochs, self.n_train, self.batch_size, self.window, self.log_every)


def check_length(epochs: float, n_train: int, batch_size: int, window: int, log_every: int) -> int:
    """The logged steps of a run (whole logs: K log_every <= the steps), refusing a run shorter than one window."""
    steps = n_steps(epochs, n_train, batch_size)
    logged = steps // log_every * log_every
    if logged < window:
        raise SettingError("epochs", epochs, f"at least {window * batch_size / n_train:.3g} (one window of {window} "
                                             f"steps at {n_train} samples, batch {batch_size})",
                           f"{steps} steps hold no full smoothing window")
    return logged


# ----------------------------------------------------------------------------- the measurements

def windowed_mean(a: np.ndarray, m: int, keep: np.ndarray | None = None) -> np.ndarray:
    """Trailing means over m logs: (runs, K) -> (runs, K - m + 1), entry i the mean of logs i..i+m-1 (0-based);
    with ``keep`` (K,) bool, over the kept logs of each window only."""
    a = np.asarray(a, float)
    w = np.ones(a.shape[-1]) if keep is None else np.asarray(keep, float)
    z = np.zeros(a.shape[:-1] + (1,))
    cs = np.concatenate([z, np.cumsum(a * w, -1)], -1)
    cn = np.concatenate([[0.0], np.cumsum(w)])
    with np.errstate(invalid="ignore", divide="ignore"):
        return (cs[..., m:] - cs[..., :-m]) / (cn[m:] - cn[:-m])


def _argmax(s: np.ndarray) -> np.ndarray:
    """Per run, the first index of the largest finite entry (0 for a run with none)."""
    s = np.where(np.isfinite(s), s, -np.inf)
    return np.argmax(s, axis=1)


def heldout_jump(a: np.ndarray, m: int) -> np.ndarray:
    """Per run, the held-out jump of the trailing means (module docstring): the peak window chosen on the odd logs
    and measured on the even ones, and the other way round, each minus its first window, averaged."""
    a = np.asarray(a, float)
    odd = np.arange(a.shape[-1]) % 2 == 0  # logs k = 1, 3, 5, ... (1-based)
    rows = np.arange(a.shape[0])
    halves = []
    for pick, measure in ((odd, ~odd), (~odd, odd)):
        k = _argmax(windowed_mean(a, m, pick))
        s = windowed_mean(a, m, measure)
        halves.append(s[rows, k] - s[:, 0])
    out = (halves[0] + halves[1]) / 2
    return np.where(np.isfinite(a).all(-1), out, np.nan)


def bump(a: np.ndarray, steps: np.ndarray, m: int, prefix: str = "") -> dict[str, np.ndarray]:
    """Per run (rows of ``a``: (runs, K) alignments at ``steps``): early, peak, jump, jump_heldout, peak_step and
    the log index of the peak (``k``), keys prefixed with ``prefix``; NaN for a run with a non-finite log."""
    a = np.asarray(a, float)
    if a.ndim != 2 or a.shape[1] < m or m < 2:
        raise ValueError(f"expected (runs, logs >= m) with m >= 2, got shape {a.shape} and m={m}")
    ok = np.isfinite(a).all(-1)
    s = windowed_mean(a, m)
    k = _argmax(s)
    rows = np.arange(a.shape[0])
    early, peak = s[:, 0], s[rows, k]
    out = {"early": early, "peak": peak, "jump": peak - early, "jump_heldout": heldout_jump(a, m),
           "peak_step": np.asarray(steps, float)[k + m - 1], "k": k + m - 1}
    return {prefix + key: (v if key == "k" else np.where(ok, v, np.nan)) for key, v in out.items()}


def per_run(full: np.ndarray, signal: np.ndarray, norm: np.ndarray, steps: np.ndarray, m: int) -> dict:
    """Every quantity of ``MEASURED`` per run, from layer 2's logged cos(U, H), cos(g, H) and ||W_2||_F."""
    norm = np.asarray(norm, float)
    f = bump(full, steps, m)
    out = {k: v for k, v in f.items() if k != "k"}
    out.update({k: v for k, v in bump(signal, steps, m, "signal_").items() if k != "signal_k"})
    ok = np.isfinite(out["peak"]) & np.isfinite(norm).all(-1)
    start, at_peak = norm[:, 0], norm[np.arange(norm.shape[0]), f["k"]]
    out.update(norm_start=np.where(ok, start, np.nan), norm_peak=np.where(ok, at_peak, np.nan),
               norm_decreased=np.where(ok, (at_peak < start).astype(float), np.nan))
    return out


def _curve(v: np.ndarray) -> dict:
    """Mean and SD over the runs (rows) of ``v``, at every log (None where no run is finite)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        m, sd = np.nanmean(v, 0), np.nanstd(v, 0)
    return {"mean": [safe_float(x) for x in m], "sd": [safe_float(x) for x in sd]}


# ----------------------------------------------------------------------------- training

def _data(cfg: HebbFig6Config, data_dir) -> tuple:
    x, y, xv, yv, n_classes = sce_data(cfg.dataset, data_dir, cfg.n_train, cfg.n_test)
    H.check_batch(len(x), cfg.batch_size)
    logged = check_length(cfg.epochs, len(x), cfg.batch_size, cfg.window, cfg.log_every)
    return (x, y, xv, yv), n_classes, logged


def _unit(cfg: HebbFig6Config, scale: float, lr: float, data_dir) -> dict:
    (x, y, xv, yv), n_classes, logged = _data(cfg, data_dir)
    spec = spec_for("sgd", (x.shape[1], *cfg.hidden, n_classes), loss="cross_entropy", activation=cfg.activation,
                    batch_size=cfg.batch_size, neuron_layer=0, init_scale=scale)
    seeds = np.tile(np.arange(cfg.seeds), len(cfg.gammas))
    gammas = [g for g in cfg.gammas for _ in range(cfg.seeds)]
    out = train(spec, x, y, xv, yv, seeds=seeds, hp={"gamma": np.asarray(gammas, np.float32), "lr": lr},
                n_steps=logged, log_every=cfg.log_every, n_evals=1)
    steps = np.asarray(out["step"])
    m = cfg.window // cfg.log_every
    full, signal = out["align_full"][..., LAYER - 1], out["align"][..., LAYER - 1]
    norm = out["wnorm"][..., LAYER - 1]
    meas = per_run(full, signal, norm, steps, m)
    acc = out["val_acc"][:, -1] if "val_acc" in out else np.full(len(seeds), np.nan)
    rows = [{"init_scale": scale, "gamma": g, "lr": lr, "seed": int(s),
             **{k: safe_float(v[r]) for k, v in meas.items()}, "val_acc": safe_float(acc[r])}
            for r, (g, s) in enumerate(zip(gammas, seeds))]
    stride = max(1, -(-len(steps) // MAX_POINTS))
    smooth_full, smooth_signal = windowed_mean(full, m), windowed_mean(signal, m)
    curves = []
    for g in cfg.gammas:
        sel = np.asarray([gg == g for gg in gammas])
        curves.append({"init_scale": scale, "gamma": g, "lr": lr,
                       "smooth_steps": steps[m - 1:][::stride].tolist(),
                       "full": _curve(smooth_full[sel][:, ::stride]), "signal": _curve(smooth_signal[sel][:, ::stride]),
                       "norm_steps": steps[::stride].tolist(), "norm": _curve(norm[sel][:, ::stride])})
    return {"rows": rows, "curves": curves, "n_steps": int(steps[-1]), "n_classes": int(n_classes)}


def run(cfg: HebbFig6Config, ctx: RunContext) -> dict:
    _, n_classes, logged = _data(cfg, ctx.data_dir)  # fail early: the loader's DataError if absent, too short a run
    note = "" if cfg.dataset == "cifar10" else f" ({cfg.dataset} standing in for CIFAR-10)"
    ctx.log(f"SCE{note}, {cfg.activation}, layer {LAYER}: init scales {list(cfg.init_scales)} x gammas "
            f"{list(cfg.gammas)} x lrs {list(cfg.lrs)} x {cfg.seeds} seeds, {logged} steps, {cfg.window}-step "
            "trailing mean")
    rows, curves = [], []
    for lr in cfg.lrs:
        for s in cfg.init_scales:
            unit = ctx.unit(f"init={s:g},lr={lr:g}", lambda: _unit(cfg, s, lr, ctx.data_dir))
            rows += unit["rows"]
            curves += unit["curves"]
    summary = summarize(rows)
    ctx.log("smoothed cos(full update, Hebbian update) of layer 2, mean +- SD over seeds: early -> peak "
            "(held-out jump) at step; ||W_2||_F first log -> at the peak (seeds whose norm fell)")
    for r in summary:
        ctx.log(f"lr={r['lr']:<6g} gamma={r['gamma']:<5g} init x{r['init_scale']:<4g} "
                f"{H.fmt(r['early'])} -> {H.fmt(r['peak'])} (jump {H.fmt(r['jump_heldout'])} +- "
                f"{H.fmt(r['jump_heldout_sd'])}) at step {r['peak_step']:.0f} +- {r['peak_step_sd']:.0f}; "
                f"signal jump {H.fmt(r['signal_jump_heldout'])}; norm {H.fmt(r['norm_start'])} -> "
                f"{H.fmt(r['norm_peak'])} ({r['norm_decreased']}/{r['n']} fell); acc {H.fmt(r['val_acc'])}")
    return {"rows": rows, "summary": summary, "curves": curves, "measurements": measurements(cfg, rows),
            "n_steps": logged, "n_classes": int(n_classes),
            "dataset_note": note.strip(" ()") or "CIFAR-10 (the paper's)"}


def summarize(rows: list[dict]) -> list[dict]:
    """Per (lr, gamma, init scale): means over seeds (SD for the jump and peak step), the number of seeds whose
    norm fell over the jump phase, and the number of seeds."""
    out = []
    for key in dict.fromkeys((r["lr"], r["gamma"], r["init_scale"]) for r in rows):
        rr = [r for r in rows if (r["lr"], r["gamma"], r["init_scale"]) == key]

        def ms(k: str) -> tuple[float | None, float | None]:
            m, sd = mean_sd([r[k] for r in rr if r[k] is not None])
            return safe_float(m), safe_float(sd)

        entry = {"lr": key[0], "gamma": key[1], "init_scale": key[2], "n": len(rr),
                 "norm_decreased": sum(r["norm_decreased"] == 1.0 for r in rr)}
        for k in ("early", "peak", "jump", "jump_heldout", "peak_step", "signal_jump_heldout", "signal_peak_step",
                  "norm_start", "norm_peak", "val_acc"):
            entry[k], sd = ms(k)
            if k in ("jump_heldout", "peak_step"):
                entry[k + "_sd"] = sd
        out.append(entry)
    return out


def measurements(cfg: HebbFig6Config, rows: list[dict]) -> dict[str, list]:
    """Per (init scale, gamma, lr) and quantity of ``MEASURED``: every seed's value, in seed order (None where
    non-finite), named by ``fig6_run`` in the run's setting (``fig6_setting``)."""
    where = fig6_setting(cfg.activation)
    out: dict[str, list] = {}
    for r in sorted(rows, key=lambda r: r["seed"]):
        for key in MEASURED:
            out.setdefault(fig6_run(r["init_scale"], r["gamma"], r["lr"], key, where), []).append(r[key])
    return out


# ----------------------------------------------------------------------------- plot

def _band(ax, steps, c: dict, label: str, color) -> None:
    m = np.asarray([np.nan if v is None else v for v in c["mean"]], float)
    sd = np.asarray([np.nan if v is None else v for v in c["sd"]], float)
    ax.plot(steps, m, color=color, label=label, lw=1.2)
    ax.fill_between(steps, m - sd, m + sd, color=color, alpha=0.2, linewidth=0)


def plot(results: dict, out: Path) -> None:
    cfg = results["config"]
    cols = [(lr, g) for lr in cfg["lrs"] for g in cfg["gammas"]]
    fig, ax = figure(3, len(cols), size=(4.0, 2.9))
    colors = {s: c for s, c in zip(cfg["init_scales"], ("tab:blue", "tab:orange", "tab:green", "tab:red",
                                                        "tab:purple", "tab:brown", "tab:pink", "tab:gray"))}
    n, w = cfg["seeds"], cfg["window"]
    what = {"full": f"cos(full update U_2, Hebbian H_2), {w}-step mean",
            "signal": f"cos(learning signal g_2, H_2), {w}-step mean", "norm": "||W_2||_F"}
    for j, (lr, g) in enumerate(cols):
        for c in results["curves"]:
            if (c["lr"], c["gamma"]) != (lr, g):
                continue
            s = c["init_scale"]
            label = spread_label(f"init {s:g}x", n)
            color = colors.get(s)
            _band(ax[0, j], c["smooth_steps"], c["full"], label, color)
            _band(ax[1, j], c["smooth_steps"], c["signal"], label, color)
            _band(ax[2, j], c["norm_steps"], c["norm"], label, color)
        for i, key in enumerate(("full", "signal", "norm")):
            a = ax[i, j]
            if key != "norm":
                a.axhline(0, color="k", lw=0.5)
            a.set_title(f"lr={lr:g}, gamma={g:g}: {TITLES[key]}", fontsize=8)
            a.set_xlabel("step", fontsize=7)
            a.set_ylabel(what[key], fontsize=6)
            a.tick_params(labelsize=6)
            if a.get_legend_handles_labels()[0]:
                a.legend(fontsize=5)
    fig.suptitle(f"Initialization scale vs. Hebbian alignment of the weight update (mean +- SD over n={n} seeds of "
                 f"the {w}-step trailing mean) & weight norm; SCE, {cfg['activation']}, layer {LAYER}, "
                 f"{results.get('dataset_note', cfg['dataset'])}", fontsize=8)
    save(fig, out / "fig6_alignment_bump.png")


register(Experiment("hebb-fig6", "Initial Hebbian alignment bump of a ReLU SCE: smoothed cos(full update, Hebbian "
                    "update) of layer 2 and its weight norm over steps, per init scale (0.5x, 1x, 2x), weight decay "
                    "and learning rate (Fig. 6)",
                    HebbFig6Config, run, plot, paper="hebb",
                    quick={"dataset": "digits", "n_train": 1024, "n_test": 256, "seeds": 2, "hidden": (32, 32),
                           "epochs": 12.0, "batch_size": 32, "log_every": 2, "window": 40}))
