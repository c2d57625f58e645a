"""oja-fig4: activation norms per layer after and over training, BP vs BP+Oja (Oja paper Fig. 4 and S3a-f).

Scenarios ``depth:init``: the 10-layer net (Fig. 4, S3e-f), the 5-layer net (S3a-b) and the 5-layer net with
naive init (S3c-d). The norm is mean ||h_l|| over a fixed probe set of test samples, l = 0 (input) .. L.
Batch normalisation, which the paper discusses as the engineered alternative, is not implemented here (see
docs/oja.md): the comparison is BP vs BP+Oja.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...networks import INITS
from ...settings import setting
from .common import (HIDDEN, OjaFFConfig, config_copy, load_data, plot_final_per_layer, plot_layer_curves,
                          run_compare)
from ..base import Experiment, RunContext, register

WHERE = {"10:xavier": "Fig. 4 / S3e-f", "5:xavier": "S3a-b", "5:naive": "S3c-d"}


def scenario_choices() -> tuple[str, ...]:
    """Every 'depth:init' the run accepts: a depth of HIDDEN and an initialisation of INITS."""
    return tuple(f"{d}:{i}" for d in HIDDEN for i in INITS)


@dataclass
class OjaFig4Config(OjaFFConfig):
    scenarios: tuple[str, ...] = setting(("10:xavier", "5:xavier", "5:naive"), choices=scenario_choices,
                                         doc="networks compared, each 'depth:init' (weight layers 5 or 10, an "
                                             "initialisation); replace depth and init")


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
    return {"rows": rows, "scenarios": scen, "measurements": fig4_measurements(scen)}


def fig4_measurements(scen: dict) -> dict:
    """Per seed and scenario ``<depth>:<init>``: ``<sc>/<rule>/norm_drift`` (``norm_drift`` of the final norms)."""
    m: dict[str, list] = {}
    for sc, r in scen.items():
        for spec, c in r["curves"].items():
            n = np.asarray(c["norm"], float)[:, -1, :]
            m[f"{sc}/{spec}/norm_drift"] = [norm_drift(v) for v in n]
    return m


def norm_drift(norms) -> float:
    """How far the hidden layers' norms drift from the input's: mean_l |log(||h_l|| / ||h_0||)|, l = 1..L-1."""
    n = np.asarray(norms, float)
    return float(np.mean(np.abs(np.log(n[1:-1] / n[0]))))


def plot(results: dict, out: Path) -> None:
    for sc, r in results["scenarios"].items():
        tag = sc.replace(":", "_")
        plot_final_per_layer(r["curves"], "norm", out, f"Fig. 4: activation norm after training ({sc})",
                             "mean ||h_l||", f"fig4_norms_{tag}.png", n=results["config"]["seeds"])
        plot_layer_curves(r["curves"], "norm", out, f"S3 ({sc})", "mean ||h_l||", fname=f"figS3_norms_{tag}.png")


register(Experiment("oja-fig4", "Oja paper Fig. 4/S3: activation norms per layer after and over training",
                    OjaFig4Config, run, plot, paper="oja",
                    quick={"dataset": "digits", "n_train": 600, "n_test": 300, "seeds": 3, "evals": 3,
                           "scenarios": ("10:xavier", "5:naive")}))
