"""sam-scalar-error: SAM with each hidden level's feedback vector replaced by its mean or norm (Methods).

The paper's claim ("collapsing the vector signal substantially degrades learning", no data set named;
``plasticlab.claims.sam``) reads ``results["measurements"]``: the final test score (%) of every seed per feedback
mode, filed as ``feedback=<mode>/<metric>`` (the modes share seeds: data order and initial draws).
"""

from __future__ import annotations

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

MODES = ("vector", "mean", "norm")  # "vector": SAM as is; the others: SAM's scalar_error


@dataclass
class SamScalarErrorConfig:
    """modes: "vector" (SAM as is), "mean" (hbar_k -> mean(hbar_k) 1), "norm" (hbar_k -> ||hbar_k||/sqrt(dbar_k) 1).

    The output error hbar_n stays a vector (it is where the error is computed); every hidden level
    of the downstream stream carries one number per sample, broadcast to its neurons.
    """

    dataset: str = sam_setting("dataset", "mnist")
    modes: tuple[str, ...] = setting(("vector", "mean", "norm"), choices=MODES,
                                     doc="feedback of the hidden downstream levels, one variant each")
    hidden: tuple[int, ...] = sam_setting("hidden", (200, 200, 200))
    loss: str = sam_setting("loss", "cross_entropy")
    epochs: float = sam_setting("epochs", 10.0)
    batch_size: int = sam_setting("batch_size", 256)
    seeds: int = sam_setting("seeds", 3, doc="independent seeds per mode, run together under vmap")
    evals: int = sam_setting("evals", 5)
    n_train: int | None = sam_setting("n_train", None)
    n_test: int | None = sam_setting("n_test", None)
    sam_lr: float = sam_setting("sam_lr", C.Hyper.sam_lr)
    sam_decay: float = sam_setting("sam_decay", C.Hyper.sam_decay)
    sam_ratios: tuple[float, ...] = sam_setting("sam_ratios", C.Hyper.sam_ratios)
    on_divergence: str = sam_setting("on_divergence", "record",
                                     doc='"stop": raise at the first diverged mode; "record": report it and go on '
                                         '(a finished unit is the same either way)')

    def validate(self) -> None:
        C.check_ratios(self.sam_ratios)


def run(cfg: SamScalarErrorConfig, ctx: RunContext) -> dict:
    data, reason = C.data_or_reason(cfg.dataset, ctx.data_dir, n_train=cfg.n_train, n_test=cfg.n_test)
    if data is None:
        ctx.log(f"{cfg.dataset}: {reason}", style="yellow")
        return {"rows": [{"dataset": cfg.dataset, "status": reason}], "measurements": {}}
    hp = hyper_from(cfg)
    metric = C.metric_name(data)
    rows, curves = [], {}
    for mode in cfg.modes:
        def unit(mode=mode):
            net = C.make_net(data, tuple(cfg.hidden))
            rule = C.make_rule("sam", hp, scalar_error=None if mode == "vector" else mode)
            return C.train_variant(C.make_trainer(net, rule, C.loss_for(data, cfg.loss)), data, cfg, metric,
                                   "feedback", mode)

        ctx.log(f"feedback: {mode}")
        res = ctx.unit(f"feedback={mode}", unit)
        rows += res["rows"]
        curves[mode] = {"samples": res["samples"], "curve": res["curve"]}
    summary = [{"feedback": m, f"{metric}_mean": float(np.nanmean(C.as_floats([r[metric] for r in rows if r["feedback"] == m])))}
               for m in curves]
    ctx.log(f"final {metric} (mean over seeds): " + ", ".join(f"{r['feedback']}: {r[metric + '_mean']:.2f}" for r in summary))
    return {"rows": rows, "curves": curves, "summary": summary, "metric": metric,
            "measurements": {K.se(m, metric): C.per_seed(rows, metric, feedback=m) for m in curves}}


def plot(results: dict, out: Path) -> None:
    if "curves" not in results:
        return
    fig, ax = figure(size=(5, 3.6))
    ax = ax[0, 0]
    for mode, c in results["curves"].items():
        curve_with_ci(ax, np.asarray(c["samples"]), np.asarray(c["curve"], float), label=mode)
    ax.set_xlabel("training samples")
    ax.set_ylabel(results.get("metric", "test_accuracy") + " (x100)")
    ax.set_title("vector vs scalar feedback")
    ax.legend()
    save(fig, out / "scalar_error.png")


register(Experiment("sam-scalar-error", "SAM with the feedback vector replaced by its per-layer mean or norm "
                    "(SAM paper, scalar-error ablation)", SamScalarErrorConfig, run, plot, paper="sam",
                    quick={"dataset": "digits", "seeds": 2, "epochs": 3.0, "batch_size": 64, "evals": 1,
                           "hidden": (64, 64, 64)}))
