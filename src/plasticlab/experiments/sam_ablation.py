"""sam-ablation: W always plastic, every subset of {Wbar, V, Vbar} plastic, plus a linear net by SGD (Fig. 2).

The paper's claims (App. C.4, CIFAR-10; ``plasticlab.claims.sam``) read ``results["measurements"]``: per plastic
subset (and the linear net) the final test score (%) of every seed, filed as ``<data set>/plastic=<subset>/
<metric>``, and the per-seed difference W alone minus the linear net (the variants share seeds: data order and
initial draws).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..claims import sam as K
from ..plotting import curve_with_ci, figure, save
from ..settings import setting
from . import _sam_common as C
from ._sam_common import sam_setting
from .base import Experiment, RunContext, register
from .sam_table1 import hyper_from


def plastic_subsets() -> list[tuple[str, ...]]:
    """('W',), ('W','Wbar'), ... ('W','Wbar','V','Vbar'): W plus every subset of the other three."""
    others = ("Wbar", "V", "Vbar")
    return [("W",) + s for k in range(4) for s in itertools.combinations(others, k)]


@dataclass
class SamAblationConfig:
    """The paper ablates on CIFAR-10 (frozen matrices keep their random initial values)."""

    dataset: str = sam_setting("dataset", "cifar10", doc="data set (any with class labels or binary label vectors; "
                                                           "the paper's: cifar10)")
    hidden: tuple[int, ...] = sam_setting("hidden", (200, 200, 200))
    loss: str = sam_setting("loss", "cross_entropy")
    epochs: float = sam_setting("epochs", 20.0)
    batch_size: int = sam_setting("batch_size", 256)
    seeds: int = sam_setting("seeds", 5, doc="independent seeds per variant, run together under vmap")
    evals: int = sam_setting("evals", 10)
    n_train: int | None = sam_setting("n_train", None)
    n_test: int | None = sam_setting("n_test", None)
    sgd_lr: float = sam_setting("sgd_lr", C.Hyper.sgd_lr, doc="learning rate of the linear net trained by SGD")
    sam_lr: float = sam_setting("sam_lr", C.Hyper.sam_lr)
    sam_decay: float = sam_setting("sam_decay", C.Hyper.sam_decay)
    sam_ratios: tuple[float, ...] = sam_setting("sam_ratios", C.Hyper.sam_ratios)
    linear_baseline: bool = setting(True, doc="also train the linear net (same widths) by SGD")
    on_divergence: str = sam_setting("on_divergence", "record")

    def validate(self) -> None:
        C.check_ratios(self.sam_ratios)


def run(cfg: SamAblationConfig, ctx: RunContext) -> dict:
    data, reason = C.data_or_reason(cfg.dataset, ctx.data_dir, n_train=cfg.n_train, n_test=cfg.n_test)
    if data is None:
        ctx.log(f"{cfg.dataset}: {reason} (try --set dataset=mnist)", style="yellow")
        return {"rows": [{"dataset": cfg.dataset, "status": reason}], "measurements": {}}
    hp = hyper_from(cfg)
    metric = C.metric_name(data)
    loss = C.loss_for(data, cfg.loss)
    variants = [("+".join(p), "sam", p) for p in plastic_subsets()]
    if cfg.linear_baseline:
        variants.append(("linear (SGD)", "linear", None))
    rows, curves = [], {}
    for label, kind, plastic in variants:
        def unit(kind=kind, plastic=plastic, label=label):
            if kind == "linear":
                net = C.make_net(data, tuple(cfg.hidden), activation="linear")
                rule = C.make_rule("sgd", hp)
            else:
                net = C.make_net(data, tuple(cfg.hidden))
                rule = C.make_rule("sam", hp, plastic=plastic)
            return C.train_variant(C.make_trainer(net, rule, loss), data, cfg, metric, "plastic", label)

        ctx.log(f"plastic: {label}")
        res = ctx.unit(f"plastic={label}", unit)
        rows += res["rows"]
        curves[label] = {"samples": res["samples"], "curve": res["curve"]}
    summary = [{"plastic": k, f"{metric}_mean": float(np.nanmean(C.as_floats([r[metric] for r in rows if r["plastic"] == k])))}
               for k in curves]
    ctx.log(f"final {metric} (mean over seeds): " + ", ".join(f"{r['plastic']}: {r[metric + '_mean']:.2f}" for r in summary))
    ref = K.stand_in(data.name, K.ABLATION_DATASET, ctx.quick)
    return {"rows": rows, "curves": curves, "summary": summary, "metric": metric,
            "measurements": measurements(rows, metric, ref),
            "stand_in": {ref: data.name} if ref != data.name else {}}


def measurements(rows: list[dict], metric: str, dataset: str) -> dict[str, list[float]]:
    """Per seed: every variant's final score, and W alone minus the linear net (when both ran)."""
    out = {K.ab(dataset, k, metric): C.per_seed(rows, metric, plastic=k)
           for k in dict.fromkeys(r["plastic"] for r in rows)}
    w, lin = out.get(K.ab(dataset, "W", metric)), out.get(K.ab(dataset, "linear (SGD)", metric))
    if w is not None and lin is not None and len(w) == len(lin):
        out[K.ab_w_minus_linear(dataset, metric)] = [a - b for a, b in zip(w, lin)]
    return out


def plot(results: dict, out: Path) -> None:
    if "curves" not in results:
        return
    fig, ax = figure(size=(6, 4))
    ax = ax[0, 0]
    for label, c in results["curves"].items():
        curve_with_ci(ax, np.asarray(c["samples"]), np.asarray(c["curve"], float), label=label,
                      linestyle="--" if label.startswith("linear") else "-")
    ax.set_xlabel("training samples")
    ax.set_ylabel(results.get("metric", "test_accuracy") + " (x100)")
    ax.set_title("plastic matrices (the rest frozen at their random init)")
    ax.legend(fontsize=7)
    save(fig, out / "ablation.png")


register(Experiment("sam-ablation", "SAM with W plastic and every subset of {Wbar, V, Vbar} plastic, plus a linear "
                    "net (SAM paper, Fig. 2)", SamAblationConfig, run, plot, paper="sam",
                    quick={"dataset": "digits", "seeds": 2, "epochs": 3.0, "batch_size": 64, "evals": 1,
                           "hidden": (64, 64, 64)}))
