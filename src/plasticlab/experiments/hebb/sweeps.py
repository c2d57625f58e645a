"""hebb-sweeps: alignment vs weight decay while varying batch size, learning rate, model scale, sparsity,
frozen fraction and other regularisers (L1, batch norm, dropout) (SCE; paper Figs. 7-12, 16).

Every sweep value is one unit (10 seeds x every gamma). The sweeps share their baseline (batch = ``batch_size``,
lr = ``lr``, width = ``hidden``, sparsity 0, frozen 0, no extra regulariser): the values that train exactly that
(up to six of them) are trained once, at the first, and the others take its runs (same seeds: pairs hold).

With pruned (sparsity) or frozen weights each run also reports the alignment over the weights that learn,
cos(M * g, M * H) with the update mask M (``alignment_learning``; no claim): the paper does not say whether
its Figs. 10 and 12 measure every weight or these only."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...plotting import figure, save, spread_label
from ...settings import SettingError, setting
from . import common as H
from ...claims.hebb import (BEST_FRACTION, SWEEP_BEST, SWEEP_FROZEN, SWEEP_GAMMAS, SWEEP_MODEL_LAYERS,
                           SWEEP_MODEL_PARAMS, SWEEP_REST, SWEEP_SPARSITIES, sweep_alignment)
from .common import hebb_setting, mean_sd, run_grid, safe_float, sce_data, spec_for
from ..base import Experiment, RunContext, register

SWEEPS = ("batch", "lr", "scale", "sparsity", "frozen", "regularizer")
REGULARIZERS = ("none", "l1", "batchnorm", "dropout")


@dataclass
class HebbSweepsConfig(H.UntilStationary):
    """Each sweep value is trained at every gamma (SGD, cross-entropy, MLP; alignment of layer 2)."""

    dataset: str = hebb_setting("dataset", "cifar10")
    n_train: int | None = hebb_setting("n_train", None)
    n_test: int | None = hebb_setting("n_test", None)
    sweeps: tuple[str, ...] = setting(SWEEPS, choices=SWEEPS, doc="which sweeps to run")
    gammas: tuple[float, ...] = hebb_setting("gammas", SWEEP_GAMMAS,
                                             doc="weight decays every sweep value is trained at (0: none)")
    hidden: tuple[int, ...] = hebb_setting("hidden", (128, 128),
                                           doc="hidden widths of the MLP (the scale sweep replaces them)")
    activation: str = setting("tanh", kind="activation", doc="hidden activation")
    batch_sizes: tuple[int, ...] = setting((32, 64, 256, 1024), ge=1, le=100_000,
                                           doc="batch sweep: minibatch sizes (same samples seen; logs rescaled)")
    lrs: tuple[float, ...] = setting((0.001, 0.01, 0.1), gt=0, doc="lr sweep: learning rates")
    model_params: tuple[float, ...] = setting(SWEEP_MODEL_PARAMS, ge=100, le=1e9,
                                              doc="scale sweep: target parameter counts t (Fig. 9: 1M, 10M, 50M)")
    model_layers: tuple[int, ...] = setting(SWEEP_MODEL_LAYERS, ge=3, le=50,
                                            doc="scale sweep: total layers of each model_params entry (Fig. 9: 3, "
                                                "7, 9); every hidden width from eq. 19")
    sparsities: tuple[float, ...] = setting(SWEEP_SPARSITIES, ge=0, lt=1,
                                            doc="sparsity sweep: fraction of MLP weights pruned to 0 at the start")
    frozen_fractions: tuple[float, ...] = setting(SWEEP_FROZEN, ge=0, lt=1,
                                                  doc="frozen sweep: fraction of MLP weights kept at their init")
    regularizers: tuple[str, ...] = setting(("none", "l1", "batchnorm", "dropout"), choices=REGULARIZERS,
                                            doc="regularizer sweep: extra regularisation besides weight decay")
    l1: float = setting(1e-4, ge=0, doc="L1 strength of the l1 regularizer run (0: off)")
    dropout: float = setting(0.5, ge=0, lt=1,
                             doc="drop probability of the dropout regularizer run (on the hidden activations)")
    seeds: int = hebb_setting("seeds", 10)
    epochs: float = hebb_setting("epochs", 50.0)
    batch_size: int = hebb_setting("batch_size", 256, doc="minibatch size of every sweep but the batch sweep")
    lr: float = hebb_setting("lr", 0.01, doc="SGD learning rate of every sweep but the lr sweep")
    log_every: int = hebb_setting("log_every", 10, doc="steps between alignment logs (at batch_size)")
    window: int = hebb_setting("window", 100, doc="final alignment: mean over the logs of the last this many steps "
                                                  "(at batch_size)")

    def validate(self) -> None:
        H.check_batch(self.n_train, self.batch_size)
        if "scale" in self.sweeps and len(self.model_layers) != len(self.model_params):
            raise SettingError("model_layers", list(self.model_layers),
                               f"one total layer count per model_params entry ({len(self.model_params)})")
        if len(set(self.model_params)) != len(self.model_params):
            raise SettingError("model_params", list(self.model_params), "distinct parameter counts")
        self.check_convergence()
        if "batch" in self.sweeps:
            H.check_batch(self.n_train, self.batch_sizes, "batch_sizes")


def model_hidden(params: float, layers: int, n_in: int, n_out: int) -> tuple[int, ...]:
    """Hidden widths of Fig. 9's model with about ``params`` weights and ``layers`` layers (appendix C.1.3, eq. 19):
    every hidden layer has width h, so t = (i + o) h + n h^2 with n = layers - 2 square layers, and

        h = (-(i + o) + sqrt((i + o)^2 + 4 n t)) / (2 n),   rounded to the nearest integer

    (eq. 19 writes it out for t = 1e6, 1e7, 5e7 with n = 1, 5, 7; i, o: the data's input and output sizes)."""
    n, io = layers - 2, n_in + n_out
    if n < 1:
        raise ValueError(f"a model of Fig. 9 has at least 3 layers (one hidden-to-hidden), got {layers}")
    h = (-io + np.sqrt(io * io + 4.0 * n * params)) / (2.0 * n)
    return (max(1, int(round(h))),) * (layers - 1)


def _training(cfg: HebbSweepsConfig, sweep: str, value, n_features: int, n_classes: int) -> tuple:
    """What sweep value ``value`` trains: (spec, lr, extra hyper-parameters, log_every, window). Values that train
    the same thing (the baseline: batch = batch_size, lr = lr, width = hidden, sparsity 0, frozen 0, no extra
    regulariser) give equal tuples, and ``run`` trains them once."""
    hidden, batch, lr, kw, hp = tuple(cfg.hidden), cfg.batch_size, cfg.lr, {}, {}
    if sweep == "batch":
        batch = int(value)
    elif sweep == "lr":
        lr = float(value)
    elif sweep == "scale":
        layers = cfg.model_layers[list(cfg.model_params).index(value)]
        hidden = model_hidden(value, layers, n_features, n_classes)
    elif sweep == "sparsity":
        kw["sparsity"] = float(value)
    elif sweep == "frozen":
        kw["frozen"] = float(value)
    elif sweep == "regularizer":
        if value == "l1":
            hp["l1"] = cfg.l1
        elif value == "batchnorm":
            kw["batchnorm"] = True
        elif value == "dropout":
            kw["dropout"] = cfg.dropout
        elif value != "none":
            raise ValueError(f"unknown regularizer {value!r}; choose none, l1, batchnorm, dropout")
    else:
        raise ValueError(f"unknown sweep {sweep!r}; choose from {SWEEPS}")
    spec = spec_for("sgd", (n_features, *hidden, n_classes), loss="cross_entropy", activation=cfg.activation,
                    batch_size=batch, neuron_layer=0, **kw)
    # same number of samples for every batch size; log roughly as often in samples
    log_every = max(1, cfg.log_every * cfg.batch_size // batch) if sweep == "batch" else cfg.log_every
    window = cfg.window * cfg.batch_size // batch if sweep == "batch" else cfg.window
    return spec, lr, tuple(sorted(hp.items())), log_every, window


def _unit(cfg: HebbSweepsConfig, training: tuple, data) -> dict:
    """Train ``training`` (``_training``'s tuple) at every gamma x seed; one row per run (sweep and value: None)."""
    x, y, xv, yv, n_classes = data
    spec, lr, hp, log_every, window = training
    res = run_grid(spec, (x, y, xv, yv), seeds=list(range(cfg.seeds)), epochs=cfg.epochs, log_every=log_every,
                   window=window, hp={"gamma": np.asarray(cfg.gammas), "lr": lr, **dict(hp)}, **cfg.until())
    learning = res.get("align_learning", [None] * len(res["cell"]))
    return {"rows": [{"sweep": None, "value": None, "gamma": cfg.gammas[c], "seed": s,
                      "alignment": safe_float(a[1] if len(a) > 1 else a[0]), "val_acc": safe_float(acc),
                      "collapsed": bool(col)}
                     | ({} if al is None else {"alignment_learning": safe_float(al[1] if len(al) > 1 else al[0])})
                     for c, s, a, acc, col, al in zip(res["cell"], res["seed"], res["align"], res["val_acc"],
                                                      res["collapsed"], learning)]}


def _values(cfg: HebbSweepsConfig, sweep: str):
    return {"batch": cfg.batch_sizes, "lr": cfg.lrs, "scale": cfg.model_params, "sparsity": cfg.sparsities,
            "frozen": cfg.frozen_fractions, "regularizer": cfg.regularizers}[sweep]


def run(cfg: HebbSweepsConfig, ctx: RunContext) -> dict:
    data = sce_data(cfg.dataset, ctx.data_dir, cfg.n_train, cfg.n_test)
    rows, summary = [], []
    trained: dict[tuple, tuple[str, dict]] = {}  # training -> (the first sweep value that trained it, its result)
    for sweep in cfg.sweeps:
        for value in _values(cfg, sweep):
            training = _training(cfg, sweep, value, data[0].shape[1], data[4])
            first = None
            if training in trained:
                first, res = trained[training]
                ctx.log(f"{sweep}={value}: the same training as {first} (its runs, not trained again)")
            else:
                ctx.log(f"{sweep}={value}" + (f" (hidden widths {list(training[0].sizes[1:-1])})"
                                               if sweep == "scale" else ""))
                res = ctx.unit(f"{sweep}={value}", lambda: _unit(cfg, training, data))
                trained[training] = (f"{sweep}={value}", res)
            res = {"rows": [r | {"sweep": sweep, "value": value} for r in res["rows"]]}
            rows += res["rows"]
            for g in cfg.gammas:
                rr = [r for r in res["rows"] if r["gamma"] == g]
                m, sd = mean_sd([r["alignment"] for r in rr if r["alignment"] is not None])
                acc, _ = mean_sd([r["val_acc"] for r in rr if r["val_acc"] is not None])
                summary.append({"sweep": sweep, "value": value, "gamma": g, "alignment_mean": safe_float(m),
                                "alignment_sd": safe_float(sd), "val_acc": safe_float(acc), "same_as": first})
                learning = [r["alignment_learning"] for r in rr if r.get("alignment_learning") is not None]
                ml, sdl = mean_sd(learning) if learning else (None, None)
                if learning:
                    summary[-1] |= {"alignment_learning_mean": safe_float(ml), "alignment_learning_sd": safe_float(sdl)}
                ctx.log(f"  gamma={g:<7g} alignment {m:.3f} +/- {sd:.3f}  val acc {acc:.3f}"
                        + (f"  (weights that learn: {ml:.3f} +/- {sdl:.3f})" if learning else ""))
    return {"rows": rows, "summary": summary, "measurements": measurements(rows, summary)}


def measurements(rows: list[dict], summary: list[dict]) -> dict[str, list]:
    """Per (sweep, value, gamma) every seed's layer-2 alignment, the same pooled over gammas (gamma-major, so two
    values' lists pair by gamma and seed), and the |alignment| of the best-accuracy fifth of the batch and lr
    sweep cells (seed means per gamma) and of the others; a cell whose training another value already did
    (``same_as``: the baseline in both sweeps) counts once. Runs with pruned or frozen weights add their
    alignment over the weights that learn per (sweep, value, gamma) (``metric="alignment_learning"``)."""
    out: dict[str, list] = {}
    for r in rows:
        a = None if r["collapsed"] else r["alignment"]
        out.setdefault(sweep_alignment(r["sweep"], r["value"], r["gamma"]), []).append(a)
        out.setdefault(sweep_alignment(r["sweep"], r["value"]), []).append(a)
        if "alignment_learning" in r:  # no claim: the diagnosis of the frozen sweep (docs/hebb.md)
            out.setdefault(sweep_alignment(r["sweep"], r["value"], r["gamma"], "alignment_learning"), []).append(
                None if r["collapsed"] else r["alignment_learning"])
    cells = sorted((s for s in summary if s["sweep"] in ("batch", "lr") and not s.get("same_as")
                    and s["val_acc"] is not None and s["alignment_mean"] is not None), key=lambda s: -s["val_acc"])
    if cells:
        n_best = min(max(2, int(round(BEST_FRACTION * len(cells)))), max(0, len(cells) - 2))
        out[SWEEP_BEST] = [abs(s["alignment_mean"]) for s in cells[:n_best]]
        out[SWEEP_REST] = [abs(s["alignment_mean"]) for s in cells[n_best:]]
    return out


def plot(results: dict, out: Path) -> None:
    cfg = results["config"]
    sweeps = list(dict.fromkeys(s["sweep"] for s in results["summary"]))
    fig, ax = figure(1, max(1, len(sweeps)), size=(3.8, 3.4))
    xs = np.arange(len(cfg["gammas"]))
    for a, sweep in zip(ax[0], sweeps):
        for value in dict.fromkeys(s["value"] for s in results["summary"] if s["sweep"] == sweep):
            ss = [s for s in results["summary"] if s["sweep"] == sweep and s["value"] == value]
            line = a.errorbar(xs, [np.nan if s["alignment_mean"] is None else s["alignment_mean"] for s in ss],
                              [s["alignment_sd"] or 0 for s in ss], marker="o", capsize=2,
                              label=spread_label(value if isinstance(value, str) else f"{value:g}", cfg["seeds"]))
            if any(s.get("alignment_learning_mean") is not None for s in ss):
                a.plot(xs, [np.nan if s.get("alignment_learning_mean") is None else s["alignment_learning_mean"]
                            for s in ss], ls="--", marker="x", color=line[0].get_color(),
                       label=f"{value}, weights that learn (mean, n={cfg['seeds']})")
        a.set_xticks(xs, [f"{g:g}" for g in cfg["gammas"]], fontsize=6)
        a.axhline(0, color="k", lw=0.5)
        a.set_title(sweep)
        a.set_xlabel("gamma")
        a.legend(fontsize=6)
    ax[0, 0].set_ylabel("Hebbian alignment (layer 2)")
    save(fig, out / "sweeps.png")


register(Experiment("hebb-sweeps", "Alignment vs weight decay across batch size, learning rate, model scale, "
                    "sparsity, frozen fraction and L1/batch-norm/dropout (SCE, Figs. 7-12, 16)",
                    HebbSweepsConfig, run, plot, paper="hebb",
                    quick={"dataset": "digits", "seeds": 1, "hidden": (32, 32), "gammas": (0.0, 5e-3, 5e-2),
                           "batch_sizes": (32, 64), "lrs": (0.05,), "model_params": (2e3, 5e3),
                           "model_layers": (3, 4), "sparsities": (0.0, 0.5),
                           "frozen_fractions": (0.5,), "regularizers": ("l1", "batchnorm", "dropout"),
                           "epochs": 6.0, "batch_size": 64, "lr": 0.05, "log_every": 7, "window": 30,
                           "max_epochs": None}))
