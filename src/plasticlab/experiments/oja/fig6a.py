"""oja-fig6a: feedback alignment with and without Oja's rule, activation norms per layer (Oja paper Fig. 6a, S3g-h).

5-layer net, online; FA's fixed random feedback B_{l+1} (Xavier) replaces W_{l+1}^T in the error chain.
Reports the activation norm mean ||h_l|| per layer after training (Fig. 6a) and over training (S3g-h),
and the validation accuracy. The paper's Fig. 6a is on EMNIST (``--set dataset=emnist_balanced``); the
default is MNIST, the data available offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .common import (OjaFFConfig, ff_setting, plot_accuracy, plot_final_per_layer, plot_layer_curves, run_compare,
                          seed_finals)
from ..base import Experiment, RunContext, register


@dataclass
class OjaFig6aConfig(OjaFFConfig):
    depth: int = ff_setting("depth", 5)
    rules: tuple[str, ...] = ff_setting("rules", ("fa", "fa+oja"))


NORM_FACTOR = 2.0  # "bounded": every layer's norm within this factor of the input's


def run(cfg: OjaFig6aConfig, ctx: RunContext) -> dict:
    res = run_compare(cfg, ctx)
    return {**res, "measurements": fig6a_measurements(res, cfg)}


def fig6a_measurements(res: dict, cfg: OjaFig6aConfig) -> dict:
    """Per seed, under ``depth=<d>/<rule>/``: norm_input and norm_output (final mean ||h_0||, ||h_L|| on the probe
    set), max_abs_log2_norm_ratio (max over l = 1..L of |log2(||h_l|| / ||h_0||)|) and final_accuracy; and
    log2_norm_factor (log2 NORM_FACTOR per seed, the reference of the "bounded" claim)."""
    m: dict[str, list] = {"log2_norm_factor": [float(np.log2(NORM_FACTOR))] * cfg.seeds}
    for spec, v in seed_finals(res["rows"]).items():
        m[f"depth={cfg.depth}/{spec}/final_accuracy"] = v
    for spec, c in res["curves"].items():
        n = np.asarray(c["norm"], float)[:, -1, :]  # (seeds, L + 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.abs(np.log2(n[:, 1:] / n[:, :1])).max(1)
        p = f"depth={cfg.depth}/{spec}"
        m[f"{p}/norm_input"], m[f"{p}/norm_output"] = n[:, 0].tolist(), n[:, -1].tolist()
        m[f"{p}/max_abs_log2_norm_ratio"] = [float(v) if np.isfinite(v) else float("nan") for v in ratio]
    return m


def plot(results: dict, out: Path) -> None:
    c = results["curves"]
    plot_final_per_layer(c, "norm", out, "Fig. 6a: activation norm after training", "mean ||h_l||",
                         "fig6a_norms.png", n=results["config"]["seeds"])
    plot_layer_curves(c, "norm", out, "S3 activation norm", "mean ||h_l||", fname="figS3_fa_norms.png")
    plot_accuracy(c, out, "FA vs FA+Oja", "fig6a_accuracy.png", results.get("n_classes"))


register(Experiment("oja-fig6a", "Oja paper Fig. 6a: FA vs FA+Oja activation norms per layer",
                    OjaFig6aConfig, run, plot, paper="oja",
                    quick={"dataset": "digits", "n_train": 800, "n_test": 400, "seeds": 3, "evals": 4}))
