"""oja-fig1: online MNIST, 5-layer and 10-layer softplus nets, BP vs BP+Oja (Oja paper Fig. 1a-b).

Validation accuracy against the number of training samples seen (one online pass, batch 1),
mean and 98% bootstrap CI over the seeds (all seeds of a rule run as one vmapped computation).
Measurements: ``depth=<d>/<rule>/final_accuracy`` per seed (claims in ``plasticlab.claims.oja``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...settings import setting
from .common import (HIDDEN, OjaFFConfig, check_depths, ci, config_copy, final_rows, load_data, rule_color,
                          seed_finals, train_rule)
from ..base import Experiment, RunContext, register


@dataclass
class OjaFig1Config(OjaFFConfig):
    depths: tuple[int, ...] = setting((5, 10), choices=tuple(HIDDEN),
                                      doc="network depths (weight layers) trained, each 5 or 10; replaces depth")

    def validate(self) -> None:
        super().validate()
        check_depths(self, "depths")


def run(cfg: OjaFig1Config, ctx: RunContext) -> dict:
    data = load_data(cfg.dataset, ctx.data_dir, cfg.n_train, cfg.n_test, cfg.data_seed)
    rows, curves, final = [], {}, {}
    for depth in cfg.depths:
        c = config_copy(cfg, depth=depth)
        curves[str(depth)], final[str(depth)] = {}, {}
        for spec in cfg.rules:
            ctx.log(f"depth {depth}: {spec} ({cfg.seeds} seeds vmapped, {len(data.x_train)} samples)")
            res = ctx.unit(f"depth={depth}-rule={spec}", lambda c=c, spec=spec: train_rule(c, data, spec, probe=False))
            acc = np.asarray(res["accuracy"])
            curves[str(depth)][spec] = {"samples": res["samples"], "accuracy": res["accuracy"], "ci": ci(acc)}
            final[str(depth)][spec] = ci(acc[:, -1])
            rows += final_rows(res, spec, c)
            ctx.log(f"  final validation accuracy {final[str(depth)][spec]['mean']:.3f} "
                    f"[{final[str(depth)][spec]['lo']:.3f}, {final[str(depth)][spec]['hi']:.3f}]")
    measurements = {f"depth={d}/{spec}/final_accuracy": v for d in cfg.depths
                    for spec, v in seed_finals([r for r in rows if r["depth"] == d]).items()}
    return {"rows": rows, "curves": curves, "final": final, "measurements": measurements,
            "n_train_used": int(len(data.x_train)), "n_test_used": int(len(data.x_test)),
            "n_classes": int(data.n_classes)}


def plot(results: dict, out: Path) -> None:
    from ...plotting import accuracy_panel, figure, save

    curves, k = results["curves"], results.get("n_classes")  # absent from older runs: no chance line
    fig, axes = figure(1, len(curves), size=(4.6, 3.6))
    for ax, (depth, cs) in zip(axes[0], curves.items()):
        accuracy_panel(ax, cs, "training samples seen (online, batch 1)", "validation accuracy",
                       f"{results['config']['dataset']}, {depth} layers", color=rule_color, chance=k and 1 / k)
    save(fig, out / "fig1_accuracy.png")


register(Experiment("oja-fig1", "Oja paper Fig. 1: online 5- and 10-layer nets, BP vs BP+Oja, validation accuracy",
                    OjaFig1Config, run, plot, paper="oja",
                    quick={"dataset": "digits", "n_train": 600, "n_test": 400, "seeds": 3, "evals": 4}))
