"""hebb-sweeps: alignment vs weight decay while varying batch size, learning rate, model scale, sparsity,
frozen fraction and other regularisers (L1, batch norm, dropout) (SCE; paper Figs. 7-12, 16)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..plotting import figure, save
from ..settings import setting
from . import _hebb_common as H
from ._hebb_common import MIN_RISE, fmt, hebb_setting, mean_sd, rises, run_grid, safe_float, sce_data, spec_for
from .base import Experiment, RunContext, paper_entry, register, verdict

SWEEPS = ("batch", "lr", "scale", "sparsity", "frozen", "regularizer")
REGULARIZERS = ("none", "l1", "batchnorm", "dropout")


@dataclass
class HebbSweepsConfig:
    """Each sweep value is trained at every gamma (SGD, cross-entropy, MLP; alignment of layer 2)."""

    dataset: str = hebb_setting("dataset", "cifar10")
    n_train: int | None = hebb_setting("n_train", None)
    n_test: int | None = hebb_setting("n_test", None)
    sweeps: tuple[str, ...] = setting(SWEEPS, choices=SWEEPS, doc="which sweeps to run")
    gammas: tuple[float, ...] = hebb_setting("gammas", (0.0, 5e-4, 5e-3, 5e-2),
                                             doc="weight decays every sweep value is trained at (0: none)")
    hidden: tuple[int, ...] = hebb_setting("hidden", (128, 128),
                                           doc="hidden widths of the MLP (the scale sweep replaces every width)")
    activation: str = setting("tanh", kind="activation", doc="hidden activation")
    batch_sizes: tuple[int, ...] = setting((32, 64, 256, 1024), ge=1, le=100_000,
                                           doc="batch sweep: minibatch sizes (same samples seen; logs rescaled)")
    lrs: tuple[float, ...] = setting((0.001, 0.01, 0.1), gt=0, doc="lr sweep: learning rates")
    widths: tuple[int, ...] = setting((64, 128, 512), ge=1, le=H.MAX_WIDTH, doc="scale sweep: the hidden width")
    sparsities: tuple[float, ...] = setting((0.0, 0.5, 0.9), ge=0, lt=1,
                                            doc="sparsity sweep: fraction of MLP weights pruned to 0 at the start")
    frozen_fractions: tuple[float, ...] = setting((0.0, 0.25, 0.5, 0.75), ge=0, lt=1,
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
        if "batch" in self.sweeps:
            H.check_batch(self.n_train, self.batch_sizes, "batch_sizes")


def _unit(cfg: HebbSweepsConfig, sweep: str, value, data) -> dict:
    x, y, xv, yv, n_classes = data
    hidden, batch, lr, kw, hp = tuple(cfg.hidden), cfg.batch_size, cfg.lr, {}, {}
    if sweep == "batch":
        batch = int(value)
    elif sweep == "lr":
        lr = float(value)
    elif sweep == "scale":
        hidden = (int(value),) * len(cfg.hidden)
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
    spec = spec_for("sgd", (x.shape[1], *hidden, n_classes), loss="cross_entropy", activation=cfg.activation,
                    batch_size=batch, neuron_layer=0, **kw)
    # same number of samples for every batch size; log roughly as often in samples
    log_every = max(1, cfg.log_every * cfg.batch_size // batch) if sweep == "batch" else cfg.log_every
    window = cfg.window * cfg.batch_size // batch if sweep == "batch" else cfg.window
    res = run_grid(spec, (x, y, xv, yv), seeds=list(range(cfg.seeds)), epochs=cfg.epochs, log_every=log_every,
                   window=window, hp={"gamma": np.asarray(cfg.gammas), "lr": lr, **hp})
    return {"rows": [{"sweep": sweep, "value": value, "gamma": cfg.gammas[c], "seed": s,
                      "alignment": safe_float(a[1] if len(a) > 1 else a[0]), "val_acc": safe_float(acc),
                      "collapsed": bool(col)}
                     for c, s, a, acc, col in zip(res["cell"], res["seed"], res["align"], res["val_acc"],
                                                  res["collapsed"])]}


def _values(cfg: HebbSweepsConfig, sweep: str):
    return {"batch": cfg.batch_sizes, "lr": cfg.lrs, "scale": cfg.widths, "sparsity": cfg.sparsities,
            "frozen": cfg.frozen_fractions, "regularizer": cfg.regularizers}[sweep]


def run(cfg: HebbSweepsConfig, ctx: RunContext) -> dict:
    data = sce_data(cfg.dataset, ctx.data_dir, cfg.n_train, cfg.n_test)
    rows, summary = [], []
    for sweep in cfg.sweeps:
        for value in _values(cfg, sweep):
            ctx.log(f"{sweep}={value}")
            res = ctx.unit(f"{sweep}={value}", lambda: _unit(cfg, sweep, value, data))
            rows += res["rows"]
            for g in cfg.gammas:
                rr = [r for r in res["rows"] if r["gamma"] == g]
                m, sd = mean_sd([r["alignment"] for r in rr if r["alignment"] is not None])
                acc, _ = mean_sd([r["val_acc"] for r in rr if r["val_acc"] is not None])
                summary.append({"sweep": sweep, "value": value, "gamma": g, "alignment_mean": safe_float(m),
                                "alignment_sd": safe_float(sd), "val_acc": safe_float(acc)})
                ctx.log(f"  gamma={g:<7g} alignment {m:.3f} +/- {sd:.3f}  val acc {acc:.3f}")
    return {"rows": rows, "summary": summary, "paper": paper_rows(summary, cfg)}


def _by_gamma(summary: list[dict], sweep: str, value) -> dict[float, float | None]:
    return {s["gamma"]: s["alignment_mean"] for s in summary if s["sweep"] == sweep and s["value"] == value}


def _mean(by_gamma: dict[float, float | None]) -> float | None:
    """Mean alignment over the gammas (None when a value is missing)."""
    v = list(by_gamma.values())
    return float(np.mean(v)) if v and None not in v else None


def baseline(summary: list[dict], cfg: HebbSweepsConfig) -> tuple[str, dict[float, float | None]] | None:
    """The unregularised default network's alignment per gamma, from whichever sweep ran that exact config."""
    width = cfg.hidden[0] if len(set(cfg.hidden)) == 1 else None
    for sweep, value in (("regularizer", "none"), ("sparsity", 0.0), ("frozen", 0.0), ("batch", cfg.batch_size),
                         ("lr", cfg.lr), ("scale", width)):
        ref = _by_gamma(summary, sweep, value)
        if ref:
            return f"{sweep}={value}", ref
    return None


def paper_rows(summary: list[dict], cfg: HebbSweepsConfig) -> list[dict]:
    """Figs. 7-12, 16 beside ours: the best accuracy sits where alignment is weak (batch size and learning-rate
    sweeps), alignment rises with gamma at every width and every frozen fraction, rises with sparsity, and batch
    norm pulls it below the unregularised network's."""
    where = f"(paper CIFAR-10; ours {cfg.dataset}, {cfg.seeds} seed(s))"
    ran = {s["sweep"] for s in summary}
    rows = []
    cells = [s for s in summary if s["sweep"] in ("batch", "lr") and s["val_acc"] is not None
             and s["alignment_mean"] is not None]
    if cells:
        best = max(cells, key=lambda s: s["val_acc"])
        med = float(np.median([abs(s["alignment_mean"]) for s in cells]))
        crit: bool | str = abs(best["alignment_mean"]) < med
        note = (f"best accuracy {best['val_acc']:.3f} at {best['sweep']}={best['value']}, gamma={best['gamma']:g}: "
                f"|alignment| {abs(best['alignment_mean']):.3f}, median {med:.3f}")
    else:
        crit, note = "batch and lr sweeps not run", "-"
    rows.append(paper_entry("best accuracy between Hebbian and anti-Hebbian (|alignment| of the best cell below "
                            "the median; batch size and learning-rate sweeps)", "yes", verdict(crit),
                            where=f"Figs. 7-8 {where}", note=note))
    for sweep, values, quantity, fig in (
            ("scale", cfg.widths, f"alignment rises with gamma (by > {MIN_RISE}) at every model width", "Fig. 9"),
            ("frozen", cfg.frozen_fractions, f"trend persists with frozen weights: alignment rises with gamma "
                                               f"(by > {MIN_RISE}) at every frozen fraction", "Fig. 12")):
        res = {v: rises(_by_gamma(summary, sweep, v)) for v in values} if sweep in ran else {}
        reasons = [f"{sweep}={v}: {r}" for v, r in res.items() if isinstance(r, str)]
        holds: bool | str = reasons[0] if reasons else all(res.values())
        note = "; ".join(f"{sweep}={v}: " + " / ".join(fmt(a) for a in _by_gamma(summary, sweep, v).values())
                         for v in res)
        rows.append(paper_entry(quantity, "yes", verdict(holds if res else f"{sweep} sweep not run"),
                                where=f"{fig} {where}", note=note or "-"))
    sp = {v: _mean(_by_gamma(summary, "sparsity", v)) for v in cfg.sparsities} if "sparsity" in ran else {}
    if len(sp) < 2:
        denser: bool | str = "sparsity sweep not run" if not sp else "only one sparsity run"
    elif sp[min(sp)] is None or sp[max(sp)] is None:
        denser = "alignment missing at an end of the sparsity range"
    else:
        denser = sp[max(sp)] > sp[min(sp)]
    rows.append(paper_entry("alignment rises with sparsity (largest sparsity above the smallest, mean over gammas)",
                            "yes", verdict(denser), where=f"Fig. 10 {where}",
                            note="; ".join(f"sparsity {v:g}: {fmt(a)}" for v, a in sp.items()) or "-"))
    ref = baseline(summary, cfg)
    base = _mean(ref[1]) if ref else None
    bn = _mean(_by_gamma(summary, "regularizer", "batchnorm"))
    if bn is None or base is None:
        lower: bool | str = "batch-norm run missing" if bn is None else "no unregularised reference run"
    else:
        lower = bn < base
    others = "; ".join(f"{r} {fmt(_mean(_by_gamma(summary, 'regularizer', r)))}" for r in cfg.regularizers
                       if r != "batchnorm" and "regularizer" in ran)
    rows.append(paper_entry("batch norm has an anti-Hebbian effect (alignment below the unregularised network's, "
                            "mean over gammas)", "yes", verdict(lower), where=f"Fig. 16 {where}",
                            note=f"batchnorm {fmt(bn)}, reference ({ref[0] if ref else '-'}) {fmt(base)}"
                                 + (f"; {others}" if others else "")))
    return rows


def plot(results: dict, out: Path) -> None:
    cfg = results["config"]
    sweeps = list(dict.fromkeys(s["sweep"] for s in results["summary"]))
    fig, ax = figure(1, max(1, len(sweeps)), size=(3.8, 3.4))
    xs = np.arange(len(cfg["gammas"]))
    for a, sweep in zip(ax[0], sweeps):
        for value in dict.fromkeys(s["value"] for s in results["summary"] if s["sweep"] == sweep):
            ss = [s for s in results["summary"] if s["sweep"] == sweep and s["value"] == value]
            a.errorbar(xs, [np.nan if s["alignment_mean"] is None else s["alignment_mean"] for s in ss],
                       [s["alignment_sd"] or 0 for s in ss], marker="o", capsize=2, label=f"{value}")
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
                           "batch_sizes": (32, 64), "lrs": (0.05,), "widths": (16, 32), "sparsities": (0.0, 0.5),
                           "frozen_fractions": (0.5,), "regularizers": ("l1", "batchnorm", "dropout"),
                           "epochs": 6.0, "batch_size": 64, "lr": 0.05, "log_every": 7, "window": 30}))
