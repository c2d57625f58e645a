"""oja-sanger: Sanger's rule in place of Oja's, with BP (10 layers) and with FA (5 layers) (Oja paper S6).

Sanger: Delta W_l = eta_oja (h_l h_{l-1}^T - LT(h_l h_l^T) W_l). The paper tunes the rates by meta-learning on
5-way EMNIST tasks; here all rules share the same (grid-searched) eta and eta_oja and learn online on the
configured data set, so the comparison is Sanger vs Oja at equal rates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..settings import setting
from ._oja_common import (HIDDEN, RULE_SPECS, OjaFFConfig, above, check_depths, config_copy, load_data, plot_accuracy,
                          run_compare)
from .base import Experiment, RunContext, paper_entry, register, verdict


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
    return {"rows": bp["rows"] + fa["rows"], "bp": bp, "fa": fa,
            "paper": paper_rows(bp["final"], fa["final"], cfg)}


def paper_rows(bp: dict, fa: dict, cfg: OjaSangerConfig) -> list[dict]:
    """S6 beside ours: Sanger gives no improvement over BP or FA alone (its final-accuracy CI not above theirs),
    unlike Oja (BP+Oja / FA+Oja above BP+Sanger / FA+Sanger)."""
    rows = []
    for final, base, depth in ((bp, "bp", cfg.bp_depth), (fa, "fa", cfg.fa_depth)):
        name = base.upper()
        gain, gain_note = above(final, f"{base}+sanger", base)
        oja, oja_note = above(final, f"{base}+oja", f"{base}+sanger", separate=False)
        rows += [paper_entry(f"{name} ({depth} layers): Sanger gives no improvement over {name} alone "
                             "(CI not above)", "yes", verdict(gain if isinstance(gain, str) else not gain),
                             where="S6", note=gain_note),
                 paper_entry(f"{name} ({depth} layers): Oja does better than Sanger ({name}+Oja mean above "
                             f"{name}+Sanger)", "yes", verdict(oja), where="S6", note=oja_note)]
    return rows


def plot(results: dict, out: Path) -> None:
    c = results["config"]
    plot_accuracy(results["bp"]["curves"], out, f"S6: BP, {c['bp_depth']} layers", "figS6_bp.png")
    plot_accuracy(results["fa"]["curves"], out, f"S6: FA, {c['fa_depth']} layers", "figS6_fa.png")


register(Experiment("oja-sanger", "Oja paper S6: Sanger's rule instead of Oja's with BP and with FA",
                    OjaSangerConfig, run, plot, paper="oja",
                    quick={"dataset": "digits", "n_train": 300, "n_test": 300, "seeds": 2, "evals": 2, "bp_depth": 5}))
