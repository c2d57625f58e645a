"""sam-width: downstream/upstream width ratio sweep (1x to 8x, upstream width 200) for several forward-pathway
activations (Fig. S1d) and, optionally, several downstream gains D_d.

Fig. S1d's caption: "We use different activation functions in the forward pathway" (``activations``: relu, tanh,
leaky_relu; D_u is each one's derivative) with D_d = I, the paper's default. SPEC.md reads the figure as a sweep of
D_d instead; ``down_activations`` sweeps D_d too (every forward activation x every D_d). With D_d = relu or
leaky_relu, eq. 9 and 11's Hebbian terms have non-negative factors at every hidden level (a >= 0 after a ReLU,
D_d hbar >= 0), so Wbar and Vbar grow without a sign-balanced error and SAM diverges at every rate that learns
(docs/sam.md, "The width sweep").

The paper's claims (Fig. S1d on CIFAR-10: accuracy rises with the ratio for every forward activation; App. C.2 on
CIFAR-10, SVHN, STL10: best at 5-8x; ``plasticlab.claims.sam``) read ``results["measurements"]``: the final test
score (%) of every seed per (forward activation, D_d, ratio), ``claims.sam.wd``, and per seed and variant the
ratio that scored best, ``claims.sam.wd_best``.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from ...claims import sam as K
from ...plotting import figure, save, spread_label
from ...networks import ACTIVATIONS
from ...settings import SettingError, setting
from . import common as C
from .common import sam_setting
from ..base import Experiment, RunContext, register

FORWARD = tuple(ACTIVATIONS)  # SAM's D_u in the forward pathway: the activation's derivative


@C.sam_variant_config
class SamWidthConfig(C.SamVariantConfig):
    """SAM with downstream hidden widths ratio * 200, forward activations and downstream gains D_d."""

    dataset: str = sam_setting("dataset", "mnist", doc="data set (any with class labels or binary label vectors; "
                                                         "the paper's: cifar10, svhn, stl10)")
    ratios: tuple[float, ...] = setting((1.0, 2.0, 4.0, 6.0, 8.0), gt=0, le=1000,
                                        doc="downstream / upstream hidden width ratios swept")
    activations: tuple[str, ...] = setting(K.WIDTH_FORWARD, choices=FORWARD,
                                           doc="forward-pathway activations swept (Fig. S1d; D_u: the derivative)")
    down_activations: tuple[str, ...] = setting(("identity",), choices=C.DOWN_ACTIVATIONS,
                                                doc="downstream gains D_d swept for every forward activation "
                                                    "(relu_jacobian only with ratio 1 and a ReLU forward pathway)")
    hidden: tuple[int, ...] = sam_setting("hidden", (200, 200, 200), doc="upstream hidden widths")
    seeds: int = sam_setting("seeds", 3, doc="independent seeds per cell, run together under vmap")
    evals: int = sam_setting("evals", 5, doc="test-set evaluations over training (after the one at step 0)")

    def validate(self) -> None:
        super().validate()
        C.check_down_widths(self.hidden, self.ratios, self.down_activations, "ratios", "down_activations")
        if "relu_jacobian" in self.down_activations and set(self.activations) != {"relu"}:
            raise SettingError("down_activations", self.down_activations, "relu_jacobian only with activations=[relu]",
                               f"it is the forward ReLU's indicator; activations={list(self.activations)}")


def run(cfg: SamWidthConfig, ctx: RunContext) -> dict:
    data, unavailable = C.load_or_unavailable(cfg, ctx)
    if data is None:
        return unavailable
    metric = C.metric_name(data)
    rows = []
    for fwd, act, r in itertools.product(cfg.activations, cfg.down_activations, cfg.ratios):
        def unit(fwd=fwd, act=act, r=r):
            tr, search = C.at_chosen_rate(C.sam_trainer(cfg, data, fwd, down_activation=act, width_ratio=float(r)),
                                          data, cfg)
            res = C.train_at_own_rate(tr, data, cfg)
            fin = res.final(metric)[0] * 100
            return [{"dataset": data.name, "activation": fwd, "down_activation": act, "width_ratio": float(r),
                     "down_width": int(round(r * cfg.hidden[0])), "seed": s, "lr": float(tr.rule.lr),
                     "search": search, metric: float(v), "status": res.seed_status(s)}
                    for s, v in zip(res.seeds, fin)]

        ctx.log(f"width ratio {r:g}, forward {fwd}, D_d = {act}")
        rows += ctx.unit(f"{fwd}/D_d={act}/ratio={r:g}", unit)
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["activation"], r["down_activation"], r["width_ratio"]), []).append(r[metric])
    summary = [{"activation": f, "down_activation": a, "width_ratio": w,
                **dict(zip((f"{metric}_mean", f"{metric}_std", "n_finite"), C.finite_stats(v)))}
               for (f, a, w), v in groups.items()]
    ctx.log(f"{metric} by forward activation, D_d and width ratio: " + "; ".join(
        f"{s['activation']}/{s['down_activation']} x{s['width_ratio']:g}: {s[metric + '_mean']:.2f}"
        for s in summary))
    ref = K.stand_in(data.name, "cifar10", ctx.quick)
    return {"rows": rows, "summary": summary, "metric": metric, "n_classes": int(data.n_classes),
            "measurements": measurements(rows, metric, ref, cfg.down_activations, cfg.ratios, cfg.activations),
            "stand_in": {ref: data.name} if ref != data.name else {}}


def measurements(rows: list[dict], metric: str, dataset: str, acts, ratios,
                 forward=("relu",)) -> dict[str, list[float]]:
    """Per seed: the final score of every (forward activation, D_d, ratio) and, per (forward activation, D_d), the
    ratio with the best score (NaN when a seed has no finite score). Rows without "activation" are ReLU's."""
    out = {}
    for fwd in forward:
        for act in acts:
            per = {float(r): C.per_seed([x for x in rows if x.get("activation", "relu") == fwd], metric,
                                        down_activation=act, width_ratio=float(r)) for r in ratios}
            for r, v in per.items():
                out[K.wd(dataset, act, r, metric, forward=fwd)] = v
            n = min(len(v) for v in per.values()) if per else 0
            best = []
            for i in range(n):
                fin = {r: v[i] for r, v in per.items() if np.isfinite(v[i])}
                best.append(max(fin, key=fin.get) if fin else float("nan"))
            out[K.wd_best(dataset, act, forward=fwd)] = best
    return out


def plot(results: dict, out: Path) -> None:
    if "summary" not in results:
        return
    metric = results.get("metric", "test_accuracy")
    fig, ax = figure(size=(5, 3.6))
    ax = ax[0, 0]
    def variant(r: dict) -> tuple[str, str]:
        return r.get("activation", "relu"), r["down_activation"]

    for fwd, act in dict.fromkeys(variant(r) for r in results["summary"]):
        ss = [r for r in results["summary"] if variant(r) == (fwd, act)]
        pts = sorted((r["width_ratio"], r[f"{metric}_mean"], r[f"{metric}_std"]) for r in ss)
        x, m, s = (np.asarray(v, dtype=float) for v in zip(*pts))
        n = sorted({int(r["n_finite"]) for r in ss})
        ax.errorbar(x, m, yerr=s, marker="o", capsize=3,
                    label=spread_label(f"forward {fwd}, D_d = {act}",
                                       n[0] if len(n) == 1 else f"{n[0]}-{n[-1]} finished seeds"))
    ax.set_xlabel("downstream / upstream width")
    ax.set_ylabel(metric + " (x100; diverged runs left out)")
    ax.legend()
    C.mark_accuracy_chance(ax, metric, results.get("n_classes"))
    save(fig, out / "width_sweep.png")


register(Experiment("sam-width", "SAM with downstream widths 1x-8x the upstream's, several forward activations "
                    "and D_d (SAM paper, Fig. S1d)",
                    SamWidthConfig, run, plot, paper="sam",
                    quick={"dataset": "digits", "ratios": (1.0, 2.0), "activations": ("relu", "tanh"),
                           "down_activations": ("identity",),
                           "seeds": 2, "epochs": 4.0, "batch_size": 64, "evals": 1,
                           "search_lrs": (0.1, 0.3), "search_epochs": 1.0, "hidden": (64, 64, 64)}))
