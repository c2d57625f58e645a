"""oja-fig4: activation norms per layer after and over training, BP vs BP+Oja (Oja paper Fig. 4 and S3a-f).

Scenarios ``depth:init``: the 10-layer net (Fig. 4, S3e-f), the 5-layer net (S3a-b) and the 5-layer net with
naive init (S3c-d). The norm is mean ||h_l|| over a fixed probe set of test samples, l = 0 (input) .. L.
Batch normalisation, which the paper discusses as the engineered alternative, is not implemented here (see
docs/oja.md): the comparison is BP vs BP+Oja.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ._oja_common import (OjaFFConfig, config_copy, load_data, plot_final_per_layer, plot_layer_curves, run_compare)
from .base import Experiment, RunContext, register


@dataclass
class OjaFig4Config(OjaFFConfig):
    scenarios: tuple[str, ...] = ("10:xavier", "5:xavier", "5:naive")


def _parse(sc: str) -> tuple[int, str]:
    try:
        d, init = sc.split(":")
        return int(d), init
    except ValueError:
        raise ValueError(f"scenario {sc!r} must read 'depth:init', e.g. '10:xavier' or '5:naive'") from None


def run(cfg: OjaFig4Config, ctx: RunContext) -> dict:
    data = load_data(cfg.dataset, ctx.data_dir, cfg.n_train, cfg.n_test, cfg.data_seed)
    rows, scen = [], {}
    for sc in cfg.scenarios:
        depth, init = _parse(sc)
        r = run_compare(config_copy(cfg, depth=depth), ctx, init=init, data=data)
        rows += r["rows"]
        scen[sc] = r
    return {"rows": rows, "scenarios": scen,
            "paper": "BP: norms shrink or drift with depth; BP+Oja keeps them close to the input norm (Fig. 4, S3)"}


def plot(results: dict, out: Path) -> None:
    for sc, r in results["scenarios"].items():
        tag = sc.replace(":", "_")
        plot_final_per_layer(r["curves"], "norm", out, f"Fig. 4: activation norm after training ({sc})",
                             "mean ||h_l||", f"fig4_norms_{tag}.png")
        plot_layer_curves(r["curves"], "norm", out, f"S3 ({sc})", "mean ||h_l||", fname=f"figS3_norms_{tag}.png")


register(Experiment("oja-fig4", "Oja paper Fig. 4/S3: activation norms per layer after and over training",
                    OjaFig4Config, run, plot, paper="oja",
                    quick={"dataset": "digits", "n_train": 600, "n_test": 300, "seeds": 3, "evals": 3,
                           "scenarios": ("10:xavier", "5:naive")}))
