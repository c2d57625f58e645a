"""quickstart: BP, FA, DFA, KP, WM and BP+Oja side by side on the bundled 8x8 digits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..analysis.stats import summarize
from ..data import load_dataset
from ..networks import MLP
from ..plotting import accuracy_panel, figure, save
from ..rules import parse_rule
from ..settings import setting
from ..training import Trainer, fit
from .oja.common import classification_datasets
from .base import Experiment, RunContext, register


@dataclass
class QuickstartConfig:
    """Online (batch 1) learning of a 64-100-100-10 tanh net on the digits, one rule at a time."""

    dataset: str = setting("digits", choices=classification_datasets,
                           doc="classification data set (cross-entropy on integer labels, accuracy reported)")
    rules: tuple[str, ...] = setting(("bp", "fa", "dfa", "kp", "wm", "bp+oja"), kind="rule",
                                     doc="rules compared, one unit each; bp, fa, dfa, kp and wm default to lr, "
                                         "oja and sanger to oja_lr, kp's decay to kp_decay")
    hidden: tuple[int, ...] = setting((100, 100), ge=1, le=100_000, doc="hidden layer widths")
    activation: str = setting("tanh", kind="activation", doc="hidden-layer activation")
    lr: float = setting(0.02, gt=0, doc="learning rate of bp, fa, dfa, kp and wm (unless a rule string sets it)")
    oja_lr: float = setting(0.002, gt=0, doc="learning rate of oja and sanger terms (unless a rule string sets it)")
    kp_decay: float = setting(1e-4, ge=0, le=1, doc="kp's (Kolen-Pollack) decay: fraction of W and B removed "
                                                     "per step; 0: none")
    epochs: float = setting(6.0, gt=0, le=1000, doc="passes over the training split (fractions allowed)")
    batch_size: int = setting(1, ge=1, le=100_000, doc="samples per update (1: online)")
    seeds: int = setting(5, ge=1, le=1000, doc="independent seeds, run together under vmap")
    evals_per_epoch: int = setting(2, ge=1, le=10_000, doc="test-set evaluations per pass over the training split")


def _train_rule(cfg: QuickstartConfig, spec: str, data, progress: bool = False) -> dict:
    net = MLP((data.n_features, *cfg.hidden, data.n_outputs), activation=cfg.activation)
    rule = parse_rule(spec, bp={"lr": cfg.lr}, fa={"lr": cfg.lr}, dfa={"lr": cfg.lr},
                      kp={"lr": cfg.lr, "decay": cfg.kp_decay}, wm={"lr": cfg.lr}, oja={"lr": cfg.oja_lr},
                      sanger={"lr": cfg.oja_lr})
    n = len(data.x_train)
    hist = fit(Trainer(net, rule), data.x_train, data.y_train, seeds=cfg.seeds, epochs=cfg.epochs,
               batch_size=cfg.batch_size, eval_every=max(1, n // cfg.evals_per_epoch),
               x_eval=data.x_test, y_eval=data.y_test, progress=progress)
    acc = hist.array("eval_accuracy")
    return {"samples": hist.samples, "accuracy": acc.tolist(),
            "rows": [{"rule": spec, "dataset": cfg.dataset, "seed": s, "test_accuracy": float(a)}
                     for s, a in zip(hist.seeds, acc[:, -1])]}


def run(cfg: QuickstartConfig, ctx: RunContext) -> dict:
    data = load_dataset(cfg.dataset, ctx.data_dir)
    rows, curves = [], {}
    for spec in cfg.rules:
        ctx.log(f"training {spec} ({cfg.seeds} seeds, vmapped)")
        res = ctx.unit(f"rule={spec}", lambda: _train_rule(cfg, spec, data, ctx.progress))
        rows += res["rows"]
        curves[spec] = {"samples": res["samples"], "accuracy": res["accuracy"]}
    summary = summarize(rows, ["rule"], "test_accuracy")
    return {"rows": rows, "summary": summary, "curves": curves, "n_classes": int(data.n_classes)}


def plot(results: dict, out: Path) -> None:
    fig, ax = figure(size=(6, 4))
    k = results.get("n_classes")  # absent from results of older runs: no chance line
    accuracy_panel(ax[0, 0], results["curves"], "training samples seen (online)", "test accuracy",
                   f"{results['config']['dataset']}: mean and 98% bootstrap CI over seeds", chance=k and 1 / k)
    save(fig, out / "learning_curves.png")


register(Experiment("quickstart", "BP, FA, DFA, KP, WM and BP+Oja compared online on the bundled 8x8 digits",
                    QuickstartConfig, run, plot, quick={"seeds": 3, "epochs": 2.0}))
