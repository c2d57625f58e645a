"""oja-fig1: online MNIST, 5-layer and 10-layer softplus nets, BP vs BP+Oja (Oja paper Fig. 1a-b).

Validation accuracy against the number of training samples seen (one online pass, batch 1),
mean and 98% bootstrap CI over the seeds (all seeds of a rule run as one vmapped computation).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..settings import setting
from ._oja_common import (HIDDEN, OjaFFConfig, above, check_depths, ci, ci_text, config_copy, final_rows, load_data,
                          rule_color, separated, train_rule)
from .base import Experiment, RunContext, paper_entry, register, verdict


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
    checks = {}
    for d, f in final.items():
        if "bp" in f and "bp+oja" in f:
            checks[f"depth{d}_bp+oja_above_bp_nonoverlapping"] = separated(f["bp+oja"], f["bp"])
    return {"rows": rows, "curves": curves, "final": final, "checks": checks, "paper": paper_rows(final),
            "n_train_used": int(len(data.x_train)), "n_test_used": int(len(data.x_test))}


def paper_rows(final: dict[str, dict]) -> list[dict]:
    """Fig. 1 beside ours: 10 layers BP+Oja clearly above BP (98% CIs apart), 5 layers BP+Oja slightly below BP
    (lower mean, CIs overlapping), and BP worse at 10 layers than at 5."""
    deep, shallow = final.get("10", {}), final.get("5", {})
    boost, boost_note = above(deep, "bp+oja", "bp") if deep else ("10 layers not run", "-")
    if {"bp", "bp+oja"} <= set(shallow):
        b, o = shallow["bp"], shallow["bp+oja"]
        slightly: bool | str = float(o["mean"]) < float(b["mean"]) and not separated(b, o)
        slight_note = f"final accuracy bp {ci_text(b)}, bp+oja {ci_text(o)} (98% CI)"
    else:
        slightly, slight_note = ("5 layers not run" if not shallow else "bp or bp+oja not run"), "-"
    if "bp" in deep and "bp" in shallow:
        drop: bool | str = float(deep["bp"]["mean"]) < float(shallow["bp"]["mean"])
        drop_note = f"BP final accuracy 5 layers {ci_text(shallow['bp'])}, 10 layers {ci_text(deep['bp'])}"
    else:
        drop, drop_note = "BP not run at both 5 and 10 layers", "-"
    return [
        paper_entry("10 layers: BP+Oja clearly above BP (98% CIs apart)", "yes", verdict(boost), where="Fig. 1b",
                    note=boost_note),
        paper_entry("5 layers: BP+Oja slightly below BP (lower mean, CIs overlap)", "yes", verdict(slightly),
                    where="Fig. 1a", note=slight_note),
        paper_entry("BP accuracy drops from 5 to 10 layers", "yes", verdict(drop), where="Fig. 1a-b", note=drop_note),
    ]


def plot(results: dict, out: Path) -> None:
    from ..plotting import curve_with_ci, figure, save

    curves = results["curves"]
    fig, axes = figure(1, len(curves), size=(4.6, 3.6))
    for ax, (depth, cs) in zip(axes[0], curves.items()):
        for spec, c in cs.items():
            curve_with_ci(ax, np.asarray(c["samples"]), np.asarray(c["accuracy"]), label=spec, color=rule_color(spec))
        ax.set_xlabel("training samples seen (online, batch 1)")
        ax.set_ylabel("validation accuracy")
        ax.set_title(f"{results['config']['dataset']}, {depth} layers")
        ax.legend()
    save(fig, out / "fig1_accuracy.png")


register(Experiment("oja-fig1", "Oja paper Fig. 1: online 5- and 10-layer nets, BP vs BP+Oja, validation accuracy",
                    OjaFig1Config, run, plot, paper="oja",
                    quick={"dataset": "digits", "n_train": 600, "n_test": 400, "seeds": 3, "evals": 4}))
