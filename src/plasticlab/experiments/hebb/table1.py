"""hebb-table1: Hebbian alignment at convergence vs weight decay for SGD, Adam, DFA, RandomNN (paper Table 1)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...plotting import figure, save, spread_label
from ...rules.hebb_optim import RULES
from ...settings import SettingError, setting
from . import common as H
from ...claims.hebb import (COLLAPSE_RATIO, MODEL_NAMES, PAPER_TABLE1, RULE_NAMES, TABLE1_GAMMAS, t1_alignment,
                            t1_stationary_epoch, t1_weight_norm, t1_weight_ratio)
from .common import PAPER_LR, RULE_DEFAULTS, mean_sd, measured_layer, run_grid, safe_float, seq_data, spec_for, sre_data
from ..base import Experiment, RunContext, register

PAPER_GAMMAS = TABLE1_GAMMAS  # the columns of Table 1 (its values: plasticlab.claims.hebb)
MODELS = ("mlp", "transformer")
LR_OF = {"adamw": "adam"}  # a rule whose learning rate is another rule's setting


@dataclass
class HebbTable1Config(H.UntilStationary):
    """SRE (teacher-student regression, MLP 2x128 tanh) and its transformer variant, every rule x gamma."""

    models: tuple[str, ...] = setting(("mlp", "transformer"), choices=MODELS,
                                      doc='"mlp": the SRE MLP; "transformer": the sequence SRE (encoder + MLP head)')
    rules: tuple[str, ...] = setting(("adam", "sgd", "dfa", "randomnn"), choices=RULES,
                                     doc="learning rules (rates lr_<rule>, adamw: lr_adam; Table 1's clipping and "
                                         "biases); adamw (decoupled decay, not in the paper's table) is a diagnosis")
    transformer_rules: tuple[str, ...] | None = setting(None, choices=RULES,
                                                        doc="rules of the transformer model (None: same as rules)")
    gammas: tuple[float, ...] = setting((0.0, 5e-5, 5e-4, 5e-3), ge=0,
                                        doc="weight decays (coupled L2, as torch's weight_decay; 0: none)")
    seeds: int = setting(10, ge=1, le=1000, doc="independent seeds per cell, run together under vmap")
    n_train: int = setting(20000, ge=1, le=10_000_000, doc="SRE training samples (sequences for the transformer)")
    n_val: int = setting(2000, ge=1, le=10_000_000, doc="SRE validation samples")
    # the MLP's teacher, as the student (the paper: "same architecture, different random parameters"; the
    # transformer's is always a fresh copy of the student); xavier_normal until 2026-12-07 (docs/hebb.md)
    teacher_init: str = H.hebb_setting("teacher_init", H.TEACHER_INIT)
    d: int = setting(32, ge=1, le=H.MAX_WIDTH,
                     doc="SRE input and output dimension; the transformer's width and feed-forward width")
    hidden: tuple[int, ...] = setting((128, 128), ge=1, le=H.MAX_WIDTH,
                                      doc="hidden widths of the MLP (the transformer's head), student and teacher")
    seq_vocab: int = setting(16, ge=1, le=100_000, doc="transformer: token vocabulary size")
    seq_length: int = setting(32, ge=1, le=10_000, doc="transformer: tokens per sequence")
    seq_heads: int = setting(4, ge=1, le=H.MAX_WIDTH, doc="transformer: attention heads (must divide d)")
    seq_layers: int = setting(2, ge=1, le=1000, doc="transformer: encoder layers")
    epochs: float = H.hebb_setting("epochs", 50.0)
    transformer_epochs: float | None = setting(None, gt=0, le=H.MAX_EPOCHS,
                                               doc="epochs of the transformer model (None: same as epochs)")
    batch_size: int = setting(256, ge=1, le=100_000, doc="minibatch size (<= n_train)")
    lr_sgd: float = setting(PAPER_LR["sgd"], gt=0, doc="SGD learning rate")
    lr_adam: float = setting(PAPER_LR["adam"], gt=0, doc="Adam (and AdamW) learning rate")
    lr_dfa: float = setting(PAPER_LR["dfa"], gt=0, doc="DFA learning rate")
    lr_randomnn: float = setting(PAPER_LR["randomnn"], gt=0, doc="RandomNN learning rate")
    randomnn_clip: float | None = setting(RULE_DEFAULTS["randomnn"]["clip"], gt=0,
                                          doc="RandomNN: global-norm clip of the signal of all layers together "
                                              "(paper: 1; None: none, each layer's signal keeps norm <= 1 from "
                                              "p(W*))")
    log_every: int = setting(10, ge=1, le=100_000, doc="steps between alignment logs")
    window: int = setting(100, ge=1, le=H.MAX_STEPS, doc="final alignment: mean over the logs of the last this "
                                                        "many steps")

    def validate(self) -> None:
        H.check_batch(self.n_train, self.batch_size)
        self.check_convergence()
        if "transformer" in self.models and self.d % self.seq_heads:
            raise SettingError("seq_heads", self.seq_heads, f"a divisor of the transformer width d={self.d}")


def _unit(cfg: HebbTable1Config, model: str, rule: str) -> dict:
    seq = (cfg.seq_vocab, cfg.seq_length, cfg.d, cfg.seq_heads, cfg.seq_layers, cfg.d) if model == "transformer" \
        else None
    data = seq_data(cfg.n_train, cfg.n_val, seq, cfg.hidden, cfg.d) if seq else \
        sre_data(cfg.n_train, cfg.n_val, cfg.d, cfg.hidden, teacher_init=cfg.teacher_init)
    layer = measured_layer(rule)
    spec = spec_for(rule, (cfg.d, *cfg.hidden, cfg.d), seq=seq, batch_size=cfg.batch_size, neuron_layer=0,
                    **({"clip": cfg.randomnn_clip} if rule == "randomnn" else {}))
    epochs = cfg.transformer_epochs if (seq and cfg.transformer_epochs is not None) else cfg.epochs
    res = run_grid(spec, data, seeds=list(range(cfg.seeds)), epochs=epochs, log_every=cfg.log_every,
                   window=cfg.window, layer=layer,
                   hp={"gamma": np.asarray(cfg.gammas), "lr": getattr(cfg, f"lr_{LR_OF.get(rule, rule)}")},
                   **cfg.until())
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.min(np.asarray(res["final_wnorm"], float) / np.asarray(res["init_wnorm"], float), axis=1)
    n_runs = len(res["cell"])
    rows = [{"model": model, "rule": rule, "gamma": cfg.gammas[c], "seed": s, "layer": layer,
             "alignment": safe_float(a[layer - 1]), "alignment_all_layers": safe_float(aa),
             "val_loss": safe_float(v), "collapsed": bool(col), "weight_norm_ratio": safe_float(wr),
             "smallest_weight_norm": safe_float(np.min(fw)), "epochs_run": er, "stationary_epoch": se,
             "stationary": st}
            for c, s, a, aa, v, col, wr, fw, er, se, st in zip(
                res["cell"], res["seed"], res["align"], res["align_all"], res["val_loss"], res["collapsed"], ratio,
                res["final_wnorm"], res.get("epochs_run", [epochs] * n_runs),
                res.get("stationary_epoch", [None] * n_runs), res.get("stationary", [None] * n_runs))]
    return {"rows": rows, "n_steps": res["n_steps"], "steps": res["steps"], "align_curve": res["align_curve"]}


def run(cfg: HebbTable1Config, ctx: RunContext) -> dict:
    rows, curves, summary = [], {}, []
    for model in cfg.models:
        for rule in (cfg.transformer_rules if model == "transformer" and cfg.transformer_rules is not None
                     else cfg.rules):
            ctx.log(f"{model} / {rule}: {len(cfg.gammas)} gammas x {cfg.seeds} seeds (vmapped)")
            res = ctx.unit(f"model={model},rule={rule}", lambda: _unit(cfg, model, rule))
            rows += res["rows"]
            curves[f"{model}/{rule}"] = {"steps": res["steps"], "align": res["align_curve"]}
            for gi, g in enumerate(cfg.gammas):
                rr = [r for r in res["rows"] if r["gamma"] == g]
                n_col = sum(r["collapsed"] for r in rr)
                m, sd = mean_sd([r["alignment"] for r in rr if not r["collapsed"] and r["alignment"] is not None])
                paper = PAPER_TABLE1.get((model, rule))
                ref = paper[PAPER_GAMMAS.index(g)] if paper is not None and g in PAPER_GAMMAS else "n/a"
                n_st = sum(bool(r["stationary"]) for r in rr)
                summary.append({"model": model, "rule": rule, "gamma": g, "alignment_mean": safe_float(m),
                                "alignment_sd": safe_float(sd), "collapsed": f"{n_col}/{len(rr)}",
                                "stationary": "n/a" if rr[0]["stationary"] is None else f"{n_st}/{len(rr)}",
                                "epochs": rr[0]["epochs_run"],
                                "cell": "collapsed" if n_col > len(rr) / 2 else f"{m:.2f} +/- {sd:.2f}",
                                "paper": "collapsed" if ref is None else
                                (ref if ref == "n/a" else f"{ref[0]:.2f} +/- {ref[1]:.2f}")})
    for s in summary:
        ctx.log(f"{s['model']:11s} {s['rule']:8s} gamma={s['gamma']:<7g} ours {s['cell']:>16s}   paper "
                f"{s['paper']:>14s}   stationary {s['stationary']} after {s['epochs']:g} epochs")
    return {"rows": rows, "summary": summary, "curves": curves, "measurements": measurements(rows)}


def measurements(rows: list[dict]) -> dict[str, list]:
    """Per (model, rule, gamma): every seed's alignment (None for a collapsed or non-finite seed) and smallest
    final / early layer-norm ratio, the inputs of the Table 1 claims (plasticlab.claims.hebb)."""
    out: dict[str, list] = {}
    for r in rows:
        a = None if r["collapsed"] else r["alignment"]
        out.setdefault(t1_alignment(r["model"], r["rule"], r["gamma"]), []).append(a)
        out.setdefault(t1_weight_ratio(r["model"], r["rule"], r["gamma"]), []).append(r.get("weight_norm_ratio"))
        out.setdefault(t1_weight_norm(r["model"], r["rule"], r["gamma"]), []).append(r.get("smallest_weight_norm"))
        out.setdefault(t1_stationary_epoch(r["model"], r["rule"], r["gamma"]), []).append(r.get("stationary_epoch"))
    return out


def ledger_markdown(root: str | Path | None = None) -> str:
    """Table 1 laid out as the paper prints it, from the committed ledger record (``reproductions/hebb``): per
    model, rule and gamma our mean +- SD over the recorded seeds (n), the paper's value, the claim's verdict
    (re-judged from the record, as ``plasticlab ledger``) and how many seeds were stationary within the cap."""
    from ...ledger import NOT_RUN, ledger_rows, load_records

    rec = load_records(root).get("hebb-table1")
    if rec is None:
        return "No committed record of hebb-table1 yet (`plasticlab run hebb-table1`, then `plasticlab ledger " \
               "--record`).\n"
    verdicts = {r["claim"]: r["verdict"] for r in ledger_rows(root, paper="hebb")}
    meas = rec.get("measurements", {})
    lines = [f"Record: {rec.get('size', 'paper')}; {rec.get('wall_seconds') or 0:.0f} s wall, "
             f"{rec.get('cpu_seconds') or 0:.0f} s CPU. Each cell: ours (mean +- SD over n seeds; SD with ddof 1), "
             "the paper's (mean +- SD, n = 10), the verdict, and the seeds stationary within the cap.", "",
             "| model | rule | " + " | ".join(f"gamma = {g:g}" for g in TABLE1_GAMMAS) + " |",
             "|---|---|" + "---|" * len(TABLE1_GAMMAS)]
    for (model, rule), cells in PAPER_TABLE1.items():
        row = []
        for g, ref in zip(TABLE1_GAMMAS, cells):
            m = meas.get(t1_alignment(model, rule, g)) or {}
            ratios = (meas.get(t1_weight_ratio(model, rule, g)) or {}).get("values") or []
            n_collapsed = sum(r is not None and r < COLLAPSE_RATIO for r in ratios)
            ours = f"{m['mean']:.2f} +- {m['sd'] if m['sd'] is not None else float('nan'):.2f} (n={m['n']})" \
                if m.get("n") else f"collapsed ({n_collapsed}/{len(ratios)} seeds)" if n_collapsed else "not run"
            stationary = meas.get(t1_stationary_epoch(model, rule, g)) or {}
            held = f"; stationary {stationary['n']}/{len(stationary['values'])}" if stationary.get("values") else ""
            claim = f"hebb.table1.{model}.{rule}.gamma={g:g}" + (".collapse" if ref is None else "")
            paper = "collapsed" if ref is None else f"{ref[0]:.2f} +- {ref[1]:.2f}"
            row.append(f"{ours}<br>paper {paper}<br>{verdicts.get(claim, NOT_RUN)}{held}")
        lines.append(f"| {MODEL_NAMES[model]} | {RULE_NAMES[rule]} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def plot(results: dict, out: Path) -> None:
    cfg = results["config"]
    models = cfg["models"]
    fig, axes = figure(1, len(models), size=(5, 3.6))
    for ax, model in zip(axes[0], models):
        for rule in dict.fromkeys(s["rule"] for s in results["summary"] if s["model"] == model):
            ss = [s for s in results["summary"] if s["model"] == model and s["rule"] == rule]
            xs = np.arange(len(ss))
            m = np.array([np.nan if s["alignment_mean"] is None or s["cell"] == "collapsed" else s["alignment_mean"]
                          for s in ss])
            sd = np.array([0.0 if s["alignment_sd"] is None else s["alignment_sd"] for s in ss])
            ax.errorbar(xs, m, yerr=sd, marker="o", capsize=3, label=spread_label(rule, cfg["seeds"]))
        ax.set_xticks(np.arange(len(cfg["gammas"])), [f"{g:g}" for g in cfg["gammas"]])
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xlabel("weight decay gamma")
        ax.set_ylabel("Hebbian alignment (final window)")
        ax.set_title(f"{model} (layer 2; DFA layer 1)")
        ax.legend(fontsize=7)
    save(fig, out / "table1_alignment.png")


register(Experiment("hebb-table1", "Hebbian alignment vs weight decay for SGD/Adam/DFA/RandomNN on SRE MLP and "
                    "transformer (Table 1)", HebbTable1Config, run, plot, paper="hebb",
                    quick={"seeds": 2, "n_train": 1024, "n_val": 256, "hidden": (32, 32), "d": 16, "seq_length": 8,
                           "seq_vocab": 8, "epochs": 8.0, "transformer_rules": ("sgd",), "batch_size": 64, "log_every": 8, "window": 40,
                           "max_epochs": 16.0, "eval_epochs": 2.0}))
