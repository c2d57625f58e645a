"""sam-width: downstream/upstream width ratio sweep (1x to 8x, upstream width 200) for several D_d (Fig. S1d)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..plotting import figure, save
from ..settings import setting
from . import _sam_common as C
from ._sam_common import sam_setting
from .base import Experiment, RunContext, paper_entry, register
from .sam_table1 import hyper_from

# Fig. S1d: "a wider downstream network improves the performance ... up to an overparametrization ratio of 7.5";
# App. C.2: best "when the parameter count of the downstream pathway is approximately 5 to 8 times" the upstream's.
PAPER_BEST_RATIO, BEST_RATIO_TOL = 7.5, 2.5


@dataclass
class SamWidthConfig:
    """SAM with downstream hidden widths ratio * 200 and downstream gains D_d (identity, relu, tanh, leaky_relu)."""

    dataset: str = sam_setting("dataset", "mnist", doc="data set (any with class labels or binary label vectors; "
                                                         "the paper's: cifar10, svhn, stl10)")
    ratios: tuple[float, ...] = setting((1.0, 2.0, 4.0, 6.0, 8.0), gt=0, le=1000,
                                        doc="downstream / upstream hidden width ratios swept")
    down_activations: tuple[str, ...] = setting(("identity", "relu", "tanh", "leaky_relu"),
                                                choices=C.DOWN_ACTIVATIONS,
                                                doc="downstream gains D_d swept (relu_jacobian only with ratio 1)")
    hidden: tuple[int, ...] = sam_setting("hidden", (200, 200, 200), doc="upstream hidden widths")
    loss: str = sam_setting("loss", "cross_entropy")
    epochs: float = sam_setting("epochs", 10.0)
    batch_size: int = sam_setting("batch_size", 256)
    seeds: int = sam_setting("seeds", 3, doc="independent seeds per cell, run together under vmap")
    evals: int = sam_setting("evals", 5, doc="test-set evaluations over training (after the one at step 0)")
    n_train: int | None = sam_setting("n_train", None)
    n_test: int | None = sam_setting("n_test", None)
    sam_lr: float = sam_setting("sam_lr", C.Hyper.sam_lr)
    sam_decay: float = sam_setting("sam_decay", C.Hyper.sam_decay)
    sam_ratios: tuple[float, ...] = sam_setting("sam_ratios", C.Hyper.sam_ratios)
    on_divergence: str = sam_setting("on_divergence", "record")

    def validate(self) -> None:
        C.check_ratios(self.sam_ratios)
        C.check_down_widths(self.hidden, self.ratios, self.down_activations, "ratios", "down_activations")


def run(cfg: SamWidthConfig, ctx: RunContext) -> dict:
    data, reason = C.data_or_reason(cfg.dataset, ctx.data_dir, n_train=cfg.n_train, n_test=cfg.n_test)
    if data is None:
        ctx.log(f"[yellow]{cfg.dataset}: {reason}[/yellow]")
        return {"rows": [{"dataset": cfg.dataset, "status": reason}],
                "paper": paper_rows([], "test_accuracy", cfg.dataset, cfg.down_activations, cfg.ratios,
                                    unavailable=reason)}
    hp = hyper_from(cfg)
    metric = C.metric_name(data)
    rows = []
    for act in cfg.down_activations:
        for r in cfg.ratios:
            def unit(act=act, r=r):
                net = C.make_net(data, tuple(cfg.hidden))
                rule = C.make_rule("sam", hp, down_activation=act, width_ratio=float(r))
                tr = C.make_trainer(net, rule, C.loss_for(data, cfg.loss))
                res = C.train_grid(tr, data, lrs=[rule.lr], seeds=cfg.seeds, epochs=cfg.epochs,
                                   batch_size=cfg.batch_size, evals=cfg.evals, on_divergence=cfg.on_divergence)
                fin = res.final(metric)[0] * 100
                return [{"dataset": data.name, "down_activation": act, "width_ratio": float(r),
                         "down_width": int(round(r * cfg.hidden[0])), "seed": s, metric: float(v),
                         "status": res.diverged[0] or "ok"} for s, v in zip(res.seeds, fin)]

            ctx.log(f"width ratio {r:g}, D_d = {act}")
            rows += ctx.unit(f"{act}/ratio={r:g}", unit)
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["down_activation"], r["width_ratio"]), []).append(r[metric])
    summary = [{"down_activation": a, "width_ratio": w, f"{metric}_mean": float(np.nanmean(C.as_floats(v))),
                f"{metric}_std": float(np.nanstd(C.as_floats(v))), "n_finite": int(np.isfinite(C.as_floats(v)).sum())}
               for (a, w), v in groups.items()]
    ctx.log(f"{metric} by D_d and width ratio: " + "; ".join(
        f"{s['down_activation']} x{s['width_ratio']:g}: {s[metric + '_mean']:.2f}" for s in summary))
    return {"rows": rows, "summary": summary, "metric": metric,
            "paper": paper_rows(rows, metric, data.name, cfg.down_activations, cfg.ratios)}


def paper_rows(rows: list[dict], metric: str, dataset: str, down_activations: tuple[str, ...],
               ratios: tuple[float, ...], unavailable: str | None = None) -> list[dict]:
    """Fig. S1d beside ours: the width ratio of the best final metric for each D_d (paper ~7.5, App. C.2 "5 to
    8"), and whether the widest downstream beats the narrowest for D_d = identity (the paper's default)."""
    ratios = sorted(float(r) for r in ratios)
    where = f"Fig. S1d, App. C.2 (paper: CIFAR-10, SVHN, STL10; ours: {dataset})"

    def scores(act: str) -> dict[float, float | str]:
        if unavailable is not None:
            return {r: f"{dataset} unavailable" for r in ratios}
        return {r: C.score_or_reason(rows, metric, f"D_d={act} at {r:g}x", down_activation=act, width_ratio=r)
                for r in ratios}

    def show(sc: dict[float, float | str]) -> str:
        return unavailable or f"final {metric} x100: " + ", ".join(
            dict.fromkeys(f"{r:g}x {v:.1f}" if isinstance(v, float) else v for r, v in sc.items()))

    out = []
    for act in down_activations:
        sc = scores(act)
        finite = {r: v for r, v in sc.items() if isinstance(v, float)}
        best = (max(finite, key=finite.get) if finite else f"{dataset} unavailable" if unavailable
                else f"no ratio finished ({next(iter(sc.values()))})" if sc else "no width ratio run")
        out.append(paper_entry(f"width ratio (downstream / upstream) of the best {metric}, D_d = {act}",
                               PAPER_BEST_RATIO, best, tolerance=BEST_RATIO_TOL, where=where,
                               note=show(sc)))
    act = "identity" if "identity" in down_activations else down_activations[0]
    sc = scores(act)
    widest = (C.verdict_on(lambda hi, lo: hi > lo, sc[ratios[-1]], sc[ratios[0]]) if len(ratios) > 1
              else "only one width ratio run")
    out.append(paper_entry(f"widest downstream ({ratios[-1]:g}x) beats the narrowest ({ratios[0]:g}x), D_d = {act}",
                           "yes", widest, where=where, note=show(sc)))
    return out


def plot(results: dict, out: Path) -> None:
    if "summary" not in results:
        return
    metric = results.get("metric", "test_accuracy")
    fig, ax = figure(size=(5, 3.6))
    ax = ax[0, 0]
    for act in dict.fromkeys(r["down_activation"] for r in results["summary"]):
        pts = sorted((r["width_ratio"], r[f"{metric}_mean"], r[f"{metric}_std"])
                     for r in results["summary"] if r["down_activation"] == act)
        x, m, s = (np.asarray(v, dtype=float) for v in zip(*pts))
        ax.errorbar(x, m, yerr=s, marker="o", capsize=3, label=f"D_d = {act}")
    ax.set_xlabel("downstream / upstream width")
    ax.set_ylabel(metric + " (x100; diverged runs left out)")
    ax.legend()
    save(fig, out / "width_sweep.png")


register(Experiment("sam-width", "SAM with downstream widths 1x-8x the upstream's, several D_d (SAM paper, Fig. S1d)",
                    SamWidthConfig, run, plot, paper="sam",
                    quick={"dataset": "digits", "ratios": (1.0, 2.0), "down_activations": ("identity", "relu"),
                           "seeds": 1, "epochs": 4.0, "batch_size": 64, "evals": 1, "hidden": (64, 64, 64)}))
