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

from ._oja_common import OjaFFConfig, ff_setting, plot_accuracy, plot_final_per_layer, plot_layer_curves, run_compare
from .base import Experiment, RunContext, paper_entry, register, verdict


@dataclass
class OjaFig6aConfig(OjaFFConfig):
    depth: int = ff_setting("depth", 5)
    rules: tuple[str, ...] = ff_setting("rules", ("fa", "fa+oja"))


def run(cfg: OjaFig6aConfig, ctx: RunContext) -> dict:
    res = run_compare(cfg, ctx)
    return {**res, "paper": paper_rows(res["curves"])}


def paper_rows(curves: dict) -> list[dict]:
    """Fig. 6a beside ours (final mean ||h_l||, l = 0..L): FA's norms blow up downstream (output above the input),
    FA+Oja's stay bounded (every layer within a factor 2 of the input) and end far below FA's."""
    claims = ["FA: activation norms grow with depth (output layer's norm above the input's)",
              "FA+Oja: norms stay bounded (every layer within a factor 2 of the input's)",
              "FA+Oja's output-layer norm below FA's"]
    if not {"fa", "fa+oja"} <= set(curves):
        return [paper_entry(q, "yes", "fa or fa+oja not run", where="Fig. 6a", note="-") for q in claims]
    nf, no = (np.asarray(curves[s]["norm_final_ci"]["mean"], float) for s in ("fa", "fa+oja"))
    ratio = no[1:] / no[0]
    holds = [nf[-1] > nf[0], bool(np.all((ratio > 0.5) & (ratio < 2.0))), no[-1] < nf[-1]]
    note = (f"mean ||h_l|| l=0..{len(nf) - 1}: fa {', '.join(f'{v:.3g}' for v in nf)}; "
            f"fa+oja {', '.join(f'{v:.3g}' for v in no)}")
    return [paper_entry(q, "yes", verdict(bool(h)), where="Fig. 6a / S3g-h", note=note)
            for q, h in zip(claims, holds)]


def plot(results: dict, out: Path) -> None:
    c = results["curves"]
    plot_final_per_layer(c, "norm", out, "Fig. 6a: activation norm after training", "mean ||h_l||",
                         "fig6a_norms.png")
    plot_layer_curves(c, "norm", out, "S3 activation norm", "mean ||h_l||", fname="figS3_fa_norms.png")
    plot_accuracy(c, out, "FA vs FA+Oja", "fig6a_accuracy.png")


register(Experiment("oja-fig6a", "Oja paper Fig. 6a: FA vs FA+Oja activation norms per layer",
                    OjaFig6aConfig, run, plot, paper="oja",
                    quick={"dataset": "digits", "n_train": 800, "n_test": 400, "seeds": 3, "evals": 4}))
