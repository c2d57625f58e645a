"""sam-table1: SGD, FA, WM, KP and SAM on the paper's seven data sets (Table 1), ours beside the paper's.

The paper's claims (every Table 1 cell with its SD; SAM outperforming FA, WM and KP on every data set and SGD on
six of seven) are declared in ``plasticlab.claims.sam`` and judged on ``results["measurements"]``: per data set and
method, the final test score (%) of every seed (NaN: diverged), filed as ``<data set>/<method>/<metric>``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...claims.sam import stand_in, t1
from ...plotting import curve_with_ci, figure, rule_color, save
from ...settings import setting
from . import common as C
from .common import sam_setting
from ..base import Experiment, RunContext, register


@C.sam_config
class SamTable1Config(C.SamConfig):
    """5-layer MLP input-200-200-200-output, ReLU, batch 256, plain SGD on every rule's update.

    Multi-label ChestMNIST is trained with binary cross-entropy and scored by macro ROC AUC x 100
    (the paper's ~73 only fits an AUC); every other data set by test accuracy x 100.
    """

    datasets: tuple[str, ...] = setting(("mnist", "fashion_mnist", "cifar10", "svhn", "stl10", "pathmnist",
                                          "chestmnist"), choices=C.datasets,
                                         doc="data sets, one table block each (any with class labels or binary "
                                             "label vectors; an unavailable one gets an 'unavailable' row)")
    methods: tuple[str, ...] = setting(C.METHODS, choices=C.METHODS, doc="learning rules compared")
    epochs: float = sam_setting("epochs", 30.0)
    seeds: int = sam_setting("seeds", 5, doc="independent seeds per method, run together under vmap")
    evals: int = sam_setting("evals", 10)
    # the baselines' rates were chosen on a validation split (12,000 of the 60,000 training images, 10 epochs, one
    # seed, the same 8 rates 0.03-0.5 per method; reproductions/sam/sam-table1.json): SGD 0.5, FA 0.3, WM 0.3,
    # KP 0.5. At WM's rate 2 of 5 seeds diverge over 30 epochs (on_divergence="record" keeps the others).
    sgd_lr: float = sam_setting("sgd_lr", 0.5)
    fa_lr: float = setting(0.3, gt=0, doc="feedback-alignment learning rate (chosen on validation)")
    wm_lr: float = setting(0.3, gt=0, doc="weight-mirror learning rate of W (chosen on validation)")
    wm_mirror_lr: float = setting(C.Hyper.wm_mirror_lr, gt=0,
                                  doc="weight-mirror rate of the feedback matrices B (also their decay per step)")
    kp_lr: float = setting(0.5, gt=0, doc="Kolen-Pollack learning rate (chosen on validation)")
    kp_decay: float = setting(C.Hyper.kp_decay, ge=0, le=1,
                              doc="Kolen-Pollack weight decay: fraction of W and B removed per step (0: none)")
    # SAM's rate and decay (sam-stability's safe choice) and the rest of the training setting: ``SamConfig``
    down_activation: str = setting("identity", choices=C.DOWN_ACTIVATIONS,
                                   doc="SAM's downstream gain D_d (relu_jacobian needs width_ratio 1)")
    width_ratio: float = setting(1.0, gt=0, le=1000, doc="SAM's downstream / upstream hidden width")
    on_divergence: str = sam_setting("on_divergence", "record",
                                     doc='"stop": raise at the first diverged seed; "record": NaN the diverged seeds '
                                         'and keep the others (a finished unit is the same either way)')

    def validate(self) -> None:
        super().validate()
        C.check_down_widths(self.hidden, self.width_ratio, self.down_activation, "width_ratio", "down_activation")




def train_method(cfg, data, method: str, hp: C.Hyper, **sam_kw) -> dict:
    """One method on one data set for all seeds (vmapped); rows carry the metric x 100."""
    net = C.make_net(data, tuple(cfg.hidden), use_bias=cfg.use_bias)
    rule = C.make_rule(method, hp, **sam_kw)
    tr = C.make_trainer(net, rule, C.loss_for(data, cfg.loss))
    res = C.train_at_own_rate(tr, data, cfg)
    metric = C.metric_name(data)
    curve = res.curves[metric][0] * 100.0
    bad = res.seed_diverged[0]  # with on_divergence="record": the diverged seeds (NaN), the others kept
    rows = [{"dataset": data.name, "method": method, "seed": s, metric: float(curve[i, -1]),
             "status": "diverged" if bad[i] else "ok"} for i, s in enumerate(res.seeds)]
    status = "ok" if res.diverged[0] is None else f"{int(bad.sum())} of {len(bad)} seeds diverged; {res.diverged[0]}"
    return {"rows": rows, "samples": res.samples, "curve": curve.tolist(), "metric": metric, "status": status}


def run(cfg: SamTable1Config, ctx: RunContext) -> dict:
    hp = C.hyper_from(cfg)
    sam_kw = {"down_activation": cfg.down_activation, "width_ratio": cfg.width_ratio, **C.sam_kwargs(cfg)}
    rows, table, curves, n_classes = [], [], {}, {}
    for name in cfg.datasets:
        data, reason = C.data_or_reason(name, ctx.data_dir, n_train=cfg.n_train, n_test=cfg.n_test,
                                          normalize=cfg.normalize)
        if data is None:
            ctx.log(f"{name}: {reason}", style="yellow")
            rows.append({"dataset": name, "method": "all", "status": reason})
            table.append({"dataset": name, "method": "all", "status": reason})
            continue
        n_classes[name] = int(data.n_classes)
        for m in cfg.methods:
            ctx.log(f"{name}: training {m} ({cfg.seeds} seeds, {cfg.epochs:g} epochs)")
            res = ctx.unit(f"{name}/{m}", lambda: train_method(cfg, data, m, hp, **sam_kw))
            rows += res["rows"]
            curves[f"{name}/{m}"] = {"samples": res["samples"], "curve": res["curve"], "metric": res["metric"]}
            vals = np.asarray([r[res["metric"]] for r in res["rows"] if r["status"] == "ok"], float)
            paper = C.PAPER_TABLE1.get(name, {}).get(m)
            table.append({"dataset": name, "method": m, "metric": res["metric"],  # mean/std over finished seeds
                          "ours_mean": float(np.mean(vals)) if len(vals) else float("nan"),
                          "ours_std": float(np.std(vals)) if len(vals) else float("nan"), "n": len(vals),
                          "paper_mean": paper[0] if paper else None, "paper_std": paper[1] if paper else None,
                          "status": res.get("status", res["rows"][0]["status"])})  # units of older runs
    _print_table(ctx, table)
    meas, stood_in = measurements(rows, ctx.quick)
    return {"rows": rows, "table": table, "curves": curves, "measurements": meas, "stand_in": stood_in,
            "n_classes": n_classes, "paper_table1": C.PAPER_TABLE1,
            "metric_note": "accuracy x 100; chestmnist: macro ROC AUC x 100 (the paper's ~73 fits an AUC)"}


# on a --quick run the bundled 8x8 digits stand in for MNIST (their values are filed under "mnist/...")
STAND_IN = {"digits": "mnist"}


def measurements(rows: list[dict], quick: bool = False) -> tuple[dict[str, list[float]], dict[str, str]]:
    """(per data set and method the final score of every seed, NaN for a diverged one; {paper data set: the data
    set standing in for it}). Data sets that could not be loaded have no measurements (their claims: "not
    measured")."""
    out, stood_in = {}, {}
    for name in dict.fromkeys(r["dataset"] for r in rows if r["method"] != "all"):
        ref = stand_in(name, STAND_IN.get(name, name), quick)
        if ref != name:
            stood_in[ref] = name
        for m in dict.fromkeys(r["method"] for r in rows if r["dataset"] == name):
            mine = [r for r in rows if r["dataset"] == name and r["method"] == m]
            metric = next(k for k in ("test_accuracy", "test_auc") if k in mine[0])
            out[t1(ref, m, metric)] = C.per_seed(mine, metric)
    return out, stood_in


def _print_table(ctx: RunContext, table: list[dict]) -> None:
    if ctx.console is None:
        return
    from rich.table import Table

    t = Table("data set", "method", "metric", "ours (mean +- std)", "paper (mean +- std)", "status",
              title="sam-table1: ours vs the paper's Table 1")
    for r in table:
        if r["method"] == "all":
            t.add_row(r["dataset"], "-", "-", "-", "-", r["status"])
            continue
        paper = f"{r['paper_mean']:.2f} +- {r['paper_std']:.2f}" if r["paper_mean"] is not None else "-"
        t.add_row(r["dataset"], r["method"], r["metric"], f"{r['ours_mean']:.2f} +- {r['ours_std']:.2f} (n={r['n']})",
                  paper, r["status"].split(" (sample")[0])  # the full message is in results.json
    ctx.console.print(t)


def plot(results: dict, out: Path) -> None:
    curves = results.get("curves", {})
    names = sorted({k.split("/")[0] for k in curves})
    if not names:
        return
    fig, axes = figure(1, len(names), size=(4.5, 3.4))
    for ax, ds in zip(axes[0], names):
        zoom = ax.inset_axes([0.42, 0.1, 0.53, 0.45])  # the end, where the methods differ by tenths of a point
        for key, c in curves.items():
            if key.startswith(ds + "/"):
                method = key.split("/")[1]
                curve, samples = np.asarray(c["curve"], float), np.asarray(c["samples"], float)
                curve_with_ci(ax, samples, curve, label=method, color=rule_color(method))
                late = slice(max(0, len(samples) - max(2, round(0.4 * len(samples)))), None)  # >= 2 points
                curve_with_ci(zoom, samples[late], curve[:, late], color=rule_color(method))
                ax.set_ylabel(c["metric"] + " (x100)")
        zoom.set_title("end of training (zoom)", fontsize=7)
        zoom.tick_params(labelsize=6)
        ax.set_xlabel("training samples")
        ax.set_title(ds)
        ax.legend(loc="upper left", fontsize=7)
        C.mark_accuracy_chance(ax, ax.get_ylabel(), results.get("n_classes", {}).get(ds))
    save(fig, out / "table1_curves.png")


register(Experiment("sam-table1", "SGD, FA, WM, KP and SAM on seven vision data sets (SAM paper, Table 1)",
                    SamTable1Config, run, plot, paper="sam",
                    quick={"datasets": ("digits",), "seeds": 2, "epochs": 8.0, "batch_size": 64, "evals": 2,
                           "sgd_lr": 0.1, "sam_lr": 0.05}))
