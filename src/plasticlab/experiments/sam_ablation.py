"""sam-ablation: W always plastic, every subset of {Wbar, V, Vbar} plastic, plus a linear net by SGD (Fig. 2)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..plotting import curve_with_ci, figure, save
from . import _sam_common as C
from .base import Experiment, RunContext, register


from .sam_table1 import hyper_from


def plastic_subsets() -> list[tuple[str, ...]]:
    """('W',), ('W','Wbar'), ... ('W','Wbar','V','Vbar'): W plus every subset of the other three."""
    others = ("Wbar", "V", "Vbar")
    return [("W",) + s for k in range(4) for s in itertools.combinations(others, k)]


@dataclass
class SamAblationConfig:
    """The paper ablates on CIFAR-10 (frozen matrices keep their random initial values)."""

    dataset: str = "cifar10"
    hidden: tuple[int, ...] = (200, 200, 200)
    loss: str = "cross_entropy"
    epochs: float = 20.0
    batch_size: int = 256
    seeds: int = 5
    evals: int = 10
    n_train: int | None = None
    n_test: int | None = None
    sgd_lr: float = C.Hyper.sgd_lr
    sam_lr: float = C.Hyper.sam_lr
    sam_decay: float = C.Hyper.sam_decay
    sam_ratios: tuple[float, ...] = C.Hyper.sam_ratios
    linear_baseline: bool = True
    on_divergence: str = "record"


def run(cfg: SamAblationConfig, ctx: RunContext) -> dict:
    data, reason = C.data_or_reason(cfg.dataset, ctx.data_dir, n_train=cfg.n_train, n_test=cfg.n_test)
    if data is None:
        ctx.log(f"[yellow]{cfg.dataset}: {reason} (try --set dataset=mnist)[/yellow]")
        return {"rows": [{"dataset": cfg.dataset, "status": reason}]}
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
    return {"rows": rows, "curves": curves, "summary": summary, "metric": metric}


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
                    quick={"dataset": "digits", "seeds": 1, "epochs": 3.0, "batch_size": 64, "evals": 1,
                           "hidden": (64, 64, 64)}))
