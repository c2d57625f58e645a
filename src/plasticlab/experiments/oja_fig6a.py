"""oja-fig6a: feedback alignment with and without Oja's rule, activation norms per layer (Oja paper Fig. 6a, S3g-h).

5-layer net, online; FA's fixed random feedback B_{l+1} (Xavier) replaces W_{l+1}^T in the error chain.
Reports the activation norm mean ||h_l|| per layer after training (Fig. 6a) and over training (S3g-h),
and the validation accuracy. The paper's Fig. 6a is on EMNIST (``--set dataset=emnist_balanced``); the
default is MNIST, the data available offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ._oja_common import OjaFFConfig, plot_accuracy, plot_final_per_layer, plot_layer_curves, run_compare
from .base import Experiment, RunContext, register


@dataclass
class OjaFig6aConfig(OjaFFConfig):
    depth: int = 5
    rules: tuple[str, ...] = ("fa", "fa+oja")


def run(cfg: OjaFig6aConfig, ctx: RunContext) -> dict:
    res = run_compare(cfg, ctx)
    return {**res, "paper": "FA: activation norms grow with depth (explode); FA+Oja: norms stay bounded"}


def plot(results: dict, out: Path) -> None:
    c = results["curves"]
    plot_final_per_layer(c, "norm", out, "Fig. 6a: activation norm after training", "mean ||h_l||",
                         "fig6a_norms.png")
    plot_layer_curves(c, "norm", out, "S3 activation norm", "mean ||h_l||", fname="figS3_fa_norms.png")
    plot_accuracy(c, out, "FA vs FA+Oja", "fig6a_accuracy.png")


register(Experiment("oja-fig6a", "Oja paper Fig. 6a: FA vs FA+Oja activation norms per layer",
                    OjaFig6aConfig, run, plot, paper="oja",
                    quick={"dataset": "digits", "n_train": 800, "n_test": 400, "seeds": 3, "evals": 4}))
