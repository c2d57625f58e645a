"""oja-lr-search: grid search of the error-term rate eta and the Oja rate eta_oja (the paper picks both by grid search).

Every (depth, rule, eta, eta_oja) cell is one ``ctx.unit`` (resumable) with all seeds vmapped. The search runs inside
``search_context("oja-lr-search")`` on ``data.validation_split(val_fraction, data_seed)``: each cell trains on the
rest of the ``n_train`` training samples and is scored by its final accuracy on the held-out ``val_fraction`` of
them (mean over seeds, 98% bootstrap CI); the test split is never read there (a read raises ``TestSplitRead``).
Diverged cells score NaN and are reported. After the choice, each (depth, rule)'s best cell is trained once more on all
``n_train`` samples and its final accuracy on the ``n_test`` test samples is read, outside the search: those
per-seed test accuracies are the ``measurements`` the paper's claims read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...data import search_context
from ...settings import setting
from ...training import DivergenceError
from .common import HIDDEN, OjaFFConfig, check_depths, ci, config_copy, ff_setting, load_data, train_rule
from ..base import Experiment, RunContext, register


@dataclass
class OjaLRSearchConfig(OjaFFConfig):
    """Grid over eta (all rules) and eta_oja (rules with a Hebbian term)."""

    etas: tuple[float, ...] = setting((0.01, 0.03, 0.1), gt=0, doc="grid of the error term's learning rate "
                                                                 "(replaces eta and eta_per_rule)")
    eta_ojas: tuple[float, ...] = setting((3e-4, 1e-3, 3e-3), gt=0, doc="grid of the Oja / Sanger term's learning "
                                                                     "rate, for rules with +oja / +sanger "
                                                                     "(replaces eta_oja)")
    depths: tuple[int, ...] = setting((10,), choices=tuple(HIDDEN),
                                      doc="network depths (weight layers) searched, each 5 or 10; replaces depth")
    n_train: int = ff_setting("n_train", 1500)
    n_test: int = ff_setting("n_test", 1000)
    seeds: int = ff_setting("seeds", 4)
    evals: int = ff_setting("evals", 4)
    val_fraction: float = setting(0.2, gt=0, lt=1, doc="fraction of the n_train training samples held out as the "
                                                      "validation split the grid is scored on (the rest trains)")

    def validate(self) -> None:
        super().validate()
        check_depths(self, "depths")


def _measure(spec: str, depth: int, what: str) -> str:
    return f"depth={depth}/{spec}/{what}"


def run(cfg: OjaLRSearchConfig, ctx: RunContext) -> dict:
    data = load_data(cfg.dataset, ctx.data_dir, cfg.n_train, cfg.n_test, cfg.data_seed)
    with search_context("oja-lr-search"):
        val = data.validation_split(cfg.val_fraction, cfg.data_seed)
        rows, best = [], {}
        for depth in cfg.depths:
            r, b = _search(config_copy(cfg, depth=depth), ctx, val)
            rows += r
            best.update({f"depth={depth}/{spec}": row for spec, row in b.items()})
    # the choice is made: read the test split once, for each best cell trained on all n_train samples
    measurements: dict[str, list] = {}
    test = {}
    for key, b in best.items():
        depth, spec = b["depth"], b["rule"]
        c = config_copy(cfg, depth=depth, eta=b["eta"], eta_oja=b["eta_oja"], eta_per_rule={})
        res = ctx.unit(f"test/depth={depth}/{spec}-eta={b['eta']}-oja={b['eta_oja']}",
                       lambda c=c, spec=spec: _final_accuracy(c, data, spec))
        acc = [float("nan") if a is None else float(a) for a in res["accuracy"]]
        test[key] = {"depth": depth, "rule": spec, "eta": b["eta"], "eta_oja": b["eta_oja"], "test_accuracy": acc,
                     "diverged": res["diverged"]}
        measurements[_measure(spec, depth, "test_accuracy")] = acc
        ctx.log(f"depth {depth} {spec:10s} chosen eta={b['eta']:g} eta_oja={b['eta_oja']:g}: test accuracy "
                f"{np.nanmean(acc):.3f} (validation {b['final_accuracy_mean']:.3f})")
    for depth in cfg.depths:
        heb = [r for r in rows if "+" in r["rule"] and r["depth"] == depth]
        if heb:
            measurements[f"depth={depth}/hebbian/diverged_cell_fraction"] = [
                float(np.mean([r["diverged"] for r in heb]))]
    return {"rows": rows, "best": best, "test": test, "measurements": measurements,
            "rates": {f"{b['depth']}/{cfg.init}/{b['rule']}": [b["eta"], b["eta_oja"]] for b in best.values()},
            "n_train_search": int(len(val.x_train)), "n_validation": int(len(val.x_test)),
            "n_test_used": int(len(data.x_test))}


def _final_accuracy(cfg: OjaLRSearchConfig, data, spec: str) -> dict:
    """Per-seed final accuracy of ``spec`` trained on ``data`` (NaN and the message if it diverged)."""
    try:
        r = train_rule(cfg, data, spec, probe=False)
        return {"accuracy": np.asarray(r["accuracy"])[:, -1].tolist(), "diverged": False}
    except DivergenceError as err:
        return {"accuracy": [float("nan")] * cfg.seeds, "diverged": True, "error": str(err)}


def _search(cfg: OjaLRSearchConfig, ctx: RunContext, data) -> tuple[list[dict], dict]:
    """Score every cell at depth ``cfg.depth`` on ``data`` (a validation split: its x_test holds training samples
    held out)."""
    rows, best = [], {}
    for spec in cfg.rules:
        for eta in cfg.etas:
            for eo in (cfg.eta_ojas if "+" in spec else (0.0,)):
                c = config_copy(cfg, eta=eta, eta_oja=eo, eta_per_rule={})
                res = ctx.unit(f"val/depth={cfg.depth}/{spec}-eta={eta}-oja={eo}",
                               lambda c=c, spec=spec: _final_accuracy(c, data, spec))
                acc = np.asarray([np.nan if a is None else a for a in res["accuracy"]], float)
                s = ci(acc) if np.all(np.isfinite(acc)) else {"mean": float("nan"), "lo": None, "hi": None}
                ctx.log(f"depth {cfg.depth} {spec:10s} eta={eta:<7g} eta_oja={eo:<7g} final validation acc "
                        f"{s['mean']:.3f}")
                row = {"rule": spec, "eta": eta, "eta_oja": eo, "depth": cfg.depth, "dataset": cfg.dataset,
                       "split": "validation", "final_accuracy_mean": s["mean"], "ci_low": s["lo"], "ci_high": s["hi"],
                       "diverged": res["diverged"]}
                rows.append(row)
                if np.isfinite(s["mean"]) and s["mean"] > best.get(spec, {}).get("final_accuracy_mean", -1):
                    best[spec] = row
    return rows, best


def plot(results: dict, out: Path) -> None:
    from ...plotting import figure, save

    panels = sorted({(r["depth"], r["rule"]) for r in results["rows"]})
    fig, axes = figure(1, len(panels), size=(4.2, 3.4))
    for ax, (depth, spec) in zip(axes[0], panels):
        rs = [r for r in results["rows"] if r["rule"] == spec and r["depth"] == depth]
        etas = sorted({r["eta"] for r in rs})
        eos = sorted({r["eta_oja"] for r in rs})
        grid = np.full((len(eos), len(etas)), np.nan)
        for r in rs:
            v = r["final_accuracy_mean"]
            grid[eos.index(r["eta_oja"]), etas.index(r["eta"])] = np.nan if v is None else v
        im = ax.imshow(grid, origin="lower", vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(etas)), [f"{e:g}" for e in etas])
        ax.set_yticks(range(len(eos)), [f"{e:g}" for e in eos])
        for (i, j), v in np.ndenumerate(grid):
            ax.text(j, i, "div" if np.isnan(v) else f"{v:.2f}", ha="center", va="center", color="w", fontsize=8)
        ax.set_xlabel("eta")
        ax.set_ylabel("eta_oja")
        ax.set_title(f"{spec}, {depth} layers")
    fig.colorbar(im, ax=axes[0, -1])
    save(fig, out / "lr_grid.png")


register(Experiment("oja-lr-search", "Oja paper: grid search of eta and eta_oja (final validation accuracy, 98% CI)",
                    OjaLRSearchConfig, run, plot, paper="oja",
                    quick={"dataset": "digits", "n_train": 300, "n_test": 300, "seeds": 2, "etas": (0.03,),
                           "eta_ojas": (1e-3,), "evals": 2, "depths": (5,)}))
