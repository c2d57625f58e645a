"""oja-fig3: naive initialisation W ~ N(0, 0.01^2), 5-layer net, BP vs BP+Oja (Oja paper Fig. 3 and S1).

Validation accuracy over one online pass (Fig. 3) and, per layer over training (S1), on a fixed probe set:
the step sizes of both terms of eq. 4 (mean per-sample ||eta e_l h_{l-1}^T||_F and
||eta_oja h_l (h_{l-1} - W_l^T h_l)^T||_F), the residual (eq. 5) and the error norm mean ||e_l||.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .common import (OjaFFConfig, chance_level, ff_setting, final_probe, plot_accuracy, plot_layer_curves,
                          run_compare, seed_finals)
from ..base import Experiment, RunContext, register


@dataclass
class OjaFig3Config(OjaFFConfig):
    depth: int = ff_setting("depth", 5)
    init: str = ff_setting("init", "naive")
    n_train: int = ff_setting("n_train", 5000)


def run(cfg: OjaFig3Config, ctx: RunContext) -> dict:
    res = run_compare(cfg, ctx)
    chance = 1.0 / res["n_classes"]
    return {**res, "chance": chance, "measurements": fig3_measurements(res, cfg)}


def fig3_measurements(res: dict, cfg: OjaFig3Config) -> dict:
    """Per seed, under ``depth=<d>/init=<init>/<rule>/``: final_accuracy, norm_last_hidden (final mean ||h_{L-1}||
    on the probe set) and step_bp_l<l> (final mean ||eta e_l h_{l-1}^T||, l = 1..L); and chance_accuracy."""
    m: dict[str, list] = {"chance_accuracy": chance_level(res["n_classes"], cfg.seeds)}
    p = f"depth={cfg.depth}/init={cfg.init}"
    for spec, v in seed_finals(res["rows"]).items():
        m[f"{p}/{spec}/final_accuracy"] = v
    for spec, c in res["curves"].items():
        n_layers = np.asarray(c["step_bp"]).shape[-1]
        m[f"{p}/{spec}/norm_last_hidden"] = final_probe(res["curves"], spec, "norm", n_layers - 1)
        for l in range(n_layers):
            m[f"{p}/{spec}/step_bp_l{l + 1}"] = final_probe(res["curves"], spec, "step_bp", l)
    return m


def plot(results: dict, out: Path) -> None:
    c = results["curves"]
    plot_accuracy(c, out, f"Fig. 3: naive init N(0, 0.01^2), {results['config']['depth']} layers", "fig3_accuracy.png",
                  results.get("n_classes"))
    plot_layer_curves(c, "step_bp", out, "S1 backprop step size", "mean ||eta e h^T||", fname="figS1_step_bp.png")
    heb = {k: v for k, v in c.items() if "+" in k}  # the Oja term acts on the hidden layers (oja_layers)
    n_heb = None if results["config"].get("oja_layers") == "all" else results["config"]["depth"] - 1
    if heb:
        plot_layer_curves(heb, "step_oja", out, "S1 Oja step size", "mean ||eta_oja h (h - W^T h)^T||",
                          fname="figS1_step_oja.png", n_layers=n_heb)
    plot_layer_curves(c, "residual", out, "S1 residual", "residual (eq. 5)", fname="figS1_residual.png")
    plot_layer_curves(c, "err_norm", out, "S1 error norm", "mean ||e_l||", fname="figS1_error_norm.png")


register(Experiment("oja-fig3", "Oja paper Fig. 3/S1: naive N(0,0.01^2) init, BP vs BP+Oja, step sizes/residuals/errors",
                    OjaFig3Config, run, plot, paper="oja",
                    quick={"dataset": "digits", "n_train": 800, "n_test": 400, "seeds": 3, "evals": 4}))
