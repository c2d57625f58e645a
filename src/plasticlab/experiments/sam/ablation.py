"""sam-ablation: W always plastic, every subset of {Wbar, V, Vbar} plastic, plus a linear net by SGD (Fig. 2).

The paper's claims (App. C.4, CIFAR-10; ``plasticlab.claims.sam``) read ``results["measurements"]``: per plastic
subset (and the linear net) the final test score (%) of every seed, filed as ``<data set>/plastic=<subset>/
<metric>``, and the per-seed difference W alone minus the linear net (the variants share seeds: data order and
initial draws).
"""

from __future__ import annotations

from pathlib import Path

from ...claims import sam as K
from ...settings import setting
from . import common as C
from .common import sam_setting
from ..base import Experiment, RunContext, register
from .common import hyper_from


LINEAR = "linear (SGD)"  # the label of the linear net trained by SGD


@C.sam_variant_config
class SamAblationConfig(C.SamVariantConfig):
    """The paper ablates on CIFAR-10 (frozen matrices keep their random initial values)."""

    dataset: str = sam_setting("dataset", "cifar10", doc="data set (any with class labels or binary label vectors; "
                                                           "the paper's: cifar10)")
    epochs: float = sam_setting("epochs", 20.0)
    seeds: int = sam_setting("seeds", 5, doc="independent seeds per variant, run together under vmap")
    evals: int = sam_setting("evals", 10)
    sgd_lr: float = sam_setting("sgd_lr", C.Hyper.sgd_lr, doc="learning rate of the linear net trained by SGD")
    linear_baseline: bool = setting(True, doc="also train the linear net (same widths) by SGD")


def run(cfg: SamAblationConfig, ctx: RunContext) -> dict:
    data, unavailable = C.load_or_unavailable(cfg, ctx, hint=" (try --set dataset=mnist)")
    if data is None:
        return unavailable
    metric = C.metric_name(data)
    trainers = {p: lambda p=p: C.sam_trainer(cfg, data, plastic=p) for p in K.plastic_subsets()}
    if cfg.linear_baseline:  # the same widths without activations, trained by SGD
        trainers[LINEAR] = lambda: C.make_trainer(C.make_net(data, tuple(cfg.hidden), activation="linear",
                                                             use_bias=cfg.use_bias),
                                                  C.make_rule("sgd", hyper_from(cfg)), C.loss_for(data, cfg.loss))
    rows, curves, summary = C.train_variants(ctx, data, cfg, metric, "plastic", trainers)
    ref = K.stand_in(data.name, K.ABLATION_DATASET, ctx.quick)
    return {"rows": rows, "curves": curves, "summary": summary, "metric": metric, "n_classes": int(data.n_classes),
            "measurements": measurements(rows, metric, ref),
            "stand_in": {ref: data.name} if ref != data.name else {}}


def measurements(rows: list[dict], metric: str, dataset: str) -> dict[str, list[float]]:
    """Per seed: every variant's final score, and W alone minus the linear net (when both ran)."""
    out = {K.ab(dataset, k, metric): C.per_seed(rows, metric, plastic=k)
           for k in dict.fromkeys(r["plastic"] for r in rows)}
    w, lin = out.get(K.ab(dataset, "W", metric)), out.get(K.ab(dataset, LINEAR, metric))
    if w is not None and lin is not None and len(w) == len(lin):
        out[K.ab_w_minus_linear(dataset, metric)] = [a - b for a, b in zip(w, lin)]
    return out


def plot(results: dict, out: Path) -> None:
    C.plot_variants(results, out / "ablation.png", "plastic matrices (the rest frozen at their random init)",
                    size=(6, 4), dashed=(LINEAR,), legend_fontsize=7)


register(Experiment("sam-ablation", "SAM with W plastic and every subset of {Wbar, V, Vbar} plastic, plus a linear "
                    "net (SAM paper, Fig. 2)", SamAblationConfig, run, plot, paper="sam",
                    quick={"dataset": "digits", "seeds": 2, "epochs": 3.0, "batch_size": 64, "evals": 1,
                           "search_lrs": (0.1, 0.3), "search_epochs": 1.0,
                           "hidden": (64, 64, 64)}))
