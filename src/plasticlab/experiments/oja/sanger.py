"""oja-sanger: Sanger's rule in place of Oja's, with BP (10 layers) and with FA (5 layers) (Oja paper S6).

Sanger: Delta W_l = eta_oja (h_l h_{l-1}^T - LT(h_l h_l^T) W_l). The paper tunes the rates by meta-learning on
5-way EMNIST tasks; here all rules share the same (grid-searched) eta and eta_oja and learn online on the
configured data set, so the comparison is Sanger vs Oja at equal rates.

Measurements (claims in ``plasticlab.claims.oja``): ``depth=<d>/<rule>/final_accuracy`` per seed (fraction of
the n_test validation images) and ``chance_accuracy`` (1/K per seed), the reference of the "learns" claims.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...settings import setting
from .common import (HIDDEN, RULE_SPECS, OjaFFConfig, chance_level, check_depths, config_copy, load_data,
                          plot_accuracy, run_compare, seed_finals)
from ..base import Experiment, RunContext, register


@dataclass
class OjaSangerConfig(OjaFFConfig):
    bp_rules: tuple[str, ...] = setting(("bp", "bp+oja", "bp+sanger"), choices=RULE_SPECS,
                                        doc="rules trained on the bp_depth net (replace rules)")
    fa_rules: tuple[str, ...] = setting(("fa", "fa+oja", "fa+sanger"), choices=RULE_SPECS,
                                        doc="rules trained on the fa_depth net (replace rules)")
    bp_depth: int = setting(10, choices=tuple(HIDDEN), doc="weight layers of the BP comparison: 5 or 10")
    fa_depth: int = setting(5, choices=tuple(HIDDEN), doc="weight layers of the FA comparison: 5 or 10")

    def validate(self) -> None:
        super().validate()
        check_depths(self, "bp_depth", "fa_depth")


def run(cfg: OjaSangerConfig, ctx: RunContext) -> dict:
    data = load_data(cfg.dataset, ctx.data_dir, cfg.n_train, cfg.n_test, cfg.data_seed)
    bp = run_compare(config_copy(cfg, depth=cfg.bp_depth), ctx, cfg.bp_rules, tag="bp-", data=data)
    fa = run_compare(config_copy(cfg, depth=cfg.fa_depth), ctx, cfg.fa_rules, tag="fa-", data=data)
    measurements: dict[str, list] = {"chance_accuracy": chance_level(data.n_classes, cfg.seeds)}
    for res, depth in ((bp, cfg.bp_depth), (fa, cfg.fa_depth)):
        for spec, v in seed_finals(res["rows"]).items():
            measurements[f"depth={depth}/{spec}/final_accuracy"] = v
    return {"rows": bp["rows"] + fa["rows"], "bp": bp, "fa": fa, "measurements": measurements}


def plot(results: dict, out: Path) -> None:
    c = results["config"]
    plot_accuracy(results["bp"]["curves"], out, f"S6: BP, {c['bp_depth']} layers", "figS6_bp.png",
                  results["bp"].get("n_classes"))
    plot_accuracy(results["fa"]["curves"], out, f"S6: FA, {c['fa_depth']} layers", "figS6_fa.png",
                  results["fa"].get("n_classes"))


register(Experiment("oja-sanger", "Oja paper S6: Sanger's rule instead of Oja's with BP and with FA",
                    OjaSangerConfig, run, plot, paper="oja",
                    quick={"dataset": "digits", "n_train": 300, "n_test": 300, "seeds": 2, "evals": 2, "bp_depth": 5}))
