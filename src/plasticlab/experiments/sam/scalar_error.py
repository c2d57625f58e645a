"""sam-scalar-error: SAM with each hidden level's feedback vector replaced by its mean or norm (Methods).

The paper's claim ("collapsing the vector signal substantially degrades learning", no data set named;
``plasticlab.claims.sam``) reads ``results["measurements"]``: the final test score (%) of every seed per feedback
mode, filed as ``feedback=<mode>/<metric>`` (the modes share seeds: data order and initial draws).
"""

from __future__ import annotations

from pathlib import Path

from ...claims import sam as K
from ...settings import setting
from . import common as C
from .common import sam_setting
from ..base import Experiment, RunContext, register

MODES = ("vector", "mean", "norm")  # "vector": SAM as is; the others: SAM's scalar_error


@C.sam_variant_config
class SamScalarErrorConfig(C.SamVariantConfig):
    """modes: "vector" (SAM as is), "mean" (hbar_k -> mean(hbar_k) 1), "norm" (hbar_k -> ||hbar_k||/sqrt(dbar_k) 1).

    The output error hbar_n stays a vector (it is where the error is computed); every hidden level
    of the downstream stream carries one number per sample, broadcast to its neurons.
    """

    dataset: str = sam_setting("dataset", "mnist")
    modes: tuple[str, ...] = setting(("vector", "mean", "norm"), choices=MODES,
                                     doc="feedback of the hidden downstream levels, one variant each")
    seeds: int = sam_setting("seeds", 3, doc="independent seeds per mode, run together under vmap")
    on_divergence: str = sam_setting("on_divergence", "record",
                                     doc='"stop": raise at the first diverged mode; "record": report it and go on '
                                         '(a finished unit is the same either way)')


def run(cfg: SamScalarErrorConfig, ctx: RunContext) -> dict:
    data, unavailable = C.load_or_unavailable(cfg, ctx)
    if data is None:
        return unavailable
    metric = C.metric_name(data)
    trainers = {mode: lambda mode=mode: C.sam_trainer(cfg, data, scalar_error=None if mode == "vector" else mode)
                for mode in cfg.modes}
    rows, curves, summary = C.train_variants(ctx, data, cfg, metric, "feedback", trainers)
    return {"rows": rows, "curves": curves, "summary": summary, "metric": metric, "n_classes": int(data.n_classes),
            "measurements": {K.se(m, metric): C.per_seed(rows, metric, feedback=m) for m in curves}}


def plot(results: dict, out: Path) -> None:
    C.plot_variants(results, out / "scalar_error.png", "vector vs scalar feedback", size=(5, 3.6))


register(Experiment("sam-scalar-error", "SAM with the feedback vector replaced by its per-layer mean or norm "
                    "(SAM paper, scalar-error ablation)", SamScalarErrorConfig, run, plot, paper="sam",
                    quick={"dataset": "digits", "seeds": 2, "epochs": 3.0, "batch_size": 64, "evals": 1,
                           "search_lrs": (0.1, 0.3), "search_epochs": 1.0,
                           "hidden": (64, 64, 64)}))
