"""meta-sanger: Sanger's rule vs Oja's rule as a meta-learned partner of BP and FA (Oja paper, supplement S6).

For each feedback pathway (BP: B = W^T; FA: fixed random B) three rules are meta-trained
from theta_0 = 1e-3 (the rest 0) on N-way K-shot tasks:

    pg:         Delta W = theta_0 F_0                         (a meta-learned learning rate)
    pg+oja:     Delta W = theta_0 F_0 + theta_2 F_2           (Oja's subspace term)
    pg+sanger:  Delta W = theta_0 F_0 + theta_7 F_7           (Sanger's term, LT(h h^T))

and compared on held-out tasks, together with plain BP / FA whose learning rate is picked
from a grid on meta-train tasks. S6 reports that Sanger's term brings no gain over BP / FA
alone while Oja's does. Each meta-trained rule is evaluated with its final theta (rule ``pg``, ``pg+oja``,
``pg+sanger``) and with the theta of best validation accuracy (``<rule>@val``: scored every
``select_every`` episodes on ``n_val_tasks`` meta-train selection tasks, those of the learning-rate grid).
The paper's claims (``plasticlab.claims.meta``) read the final theta, per held-out task. Each rule's inner loop
computes only its own terms (the BP / FA baselines: the pseudo-gradient alone): Sanger's term, a prefix sum over
a layer's rows, costs 3-4x the rest of a BP step, so one loop with all three terms and the unused ones frozen at 0
(as until 2026-12-06, ``results_version`` 1) made every rule pay for it. Coefficients are reported over all
three terms (0 for a term a rule lacks).
Paper setting: 50 training and 10 query samples per class, 500 episodes; BP trains the 10-layer net
(``hidden_bp``, 784-400-300-250-200-170-130-100-70-40-N: oja-fig1's widths, the paper's are lost) and FA the
5-layer net (``hidden``, 784-170-130-100-70-N), as in S6 and oja-sanger.
"""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import numpy as np

from ...analysis.stats import bootstrap_ci, summarize
from ...plotting import figure, mark_chance, save
from ...rules.meta import Theta, init_theta
from ...settings import setting
from ..oja.common import HIDDEN
from . import common as mc
from ..base import Experiment, RunContext, register

TERMS = ("pseudo_grad", "oja", "sanger")
VARIANTS = {"pg": ("pseudo_grad",), "pg+oja": ("pseudo_grad", "oja"), "pg+sanger": ("pseudo_grad", "sanger")}
BASELINE = "pg"  # the BP / FA baselines (learning rate from the grid) run on the pseudo-gradient's loop
FEEDBACK = mc.PATHWAYS
HELDOUT_SEED = mc.HELDOUT_SEED


@mc.meta_config
class MetaSangerConfig(mc.MetaConfig):
    """Oja vs Sanger as meta-learned terms next to BP and FA; ``seeds`` meta-training runs per cell."""

    k_shot: int = mc.with_default(mc.MetaConfig.k_shot, 50)
    feedback: tuple[str, ...] = setting(("bp", "fa"), choices=tuple(FEEDBACK),
                                        doc="feedback pathways: bp (B = W^T) and / or fa (fixed random B)")
    variants: tuple[str, ...] = setting(("pg", "pg+oja", "pg+sanger"), choices=tuple(VARIANTS),
                                        doc="meta-trained rules: pg (pseudo-gradient), pg+oja, pg+sanger")
    n_episodes: int = mc.with_default(mc.MetaConfig.n_episodes, 500)
    # meta-fig6's rate: at the paper's 1e-3, FA's pg+oja collapsed to chance after episode 350 on the validation
    # tasks (the S6 record of 2026-12-06), as meta-fig6 did (docs/meta.md, "Collapse of meta-training")
    lr_meta: float = mc.with_default(mc.MetaConfig.lr_meta, 3e-4)
    hidden_bp: tuple[int, ...] = setting(HIDDEN[10], ge=1, le=100_000,
                                         doc="hidden widths of BP's net (the paper's S6: 10 layers); FA's net is "
                                             "`hidden` (5 layers)")


def build_learners(cfg: MetaSangerConfig, n_features: int, n_outputs: int) -> dict[tuple[str, str], mc.MetaLearner]:
    """One meta-learner per (feedback pathway, rule) with that rule's terms only, on the pathway's net: BP's
    ``hidden_bp``, FA's ``hidden`` (learners with the same widths and terms are one object, compiled once)."""
    widths = {fb: tuple(cfg.hidden_bp if fb == "bp" else cfg.hidden) for fb in cfg.feedback}
    built: dict[tuple, mc.MetaLearner] = {}
    out = {}
    for fb in cfg.feedback:
        for v in dict.fromkeys((BASELINE, *cfg.variants)):
            key = (widths[fb], VARIANTS[v])
            if key not in built:
                built[key] = mc.MetaLearner(mc.build_loop(n_features, widths[fb], n_outputs, VARIANTS[v], (),
                                                          cfg.beta, max_growth=cfg.max_growth),
                                            cfg.lr_meta, cfg.clip, head=cfg.head)
            out[fb, v] = built[key]
    return out


def over_all_terms(terms: tuple[str, ...], w) -> np.ndarray:
    """A rule's coefficients (last axis: ``terms``) spread over ``TERMS``, 0 for the terms it lacks."""
    w = np.asarray(w, float)
    full = np.zeros((*w.shape[:-1], len(TERMS)))
    for i, t in enumerate(terms):
        full[..., TERMS.index(t)] = w[..., i]
    return full


def run(cfg: MetaSangerConfig, ctx: RunContext) -> dict:
    train_s, test_s, data = mc.make_samplers(cfg.dataset, ctx.data_dir, cfg.n_way, cfg.k_shot, cfg.n_query,
                                             cfg.split_mode)
    learners = build_learners(cfg, data.n_features, mc.n_outputs(cfg.head, cfg.n_way, data.n_classes))
    for fb in cfg.feedback:
        ctx.log(f"meta-sanger: {train_s}; {fb.upper()} net {learners[fb, BASELINE].loop.net.sizes}")
    ev = dict(n_tasks=cfg.n_eval_tasks, seed=HELDOUT_SEED, batch=cfg.eval_batch)
    rows, curves, final, select, selected = [], {}, {}, {}, {}

    def add_rows(fb, rule, seed, res, lr=float("nan")):
        rows.extend({"feedback": fb, "rule": rule, "dataset": cfg.dataset, "seed": seed, "task": i, "lr": lr,
                     "query_accuracy": a} for i, a in enumerate(res["accuracy"]))

    def heldout(learner, theta, sym):
        _, acc = mc.evaluate_rule(learner, theta, test_s, sym=sym, **ev)
        return {"accuracy": acc.tolist()}

    for fb in cfg.feedback:
        sym, base = FEEDBACK[fb], learners[fb, BASELINE]
        select[fb] = ctx.unit(f"{fb}/select-lr", lambda: mc.select_lr(
            base, train_s, cfg.lr_grid, sym=sym, n_tasks=cfg.n_select_tasks, seed=HELDOUT_SEED,
            batch=cfg.eval_batch))
        lr = select[fb]["best_lr"]
        add_rows(fb, "grid-lr", -1, ctx.unit(f"{fb}/heldout/grid-lr",
                                             lambda: heldout(base, mc.pseudo_grad_theta(base.loop, lr), sym)), lr)
        for v in cfg.variants:
            learner, terms = learners[fb, v], VARIANTS[v]
            for seed in range(cfg.seeds):
                key = f"{fb}/{v}/seed={seed}"
                ctx.log(f"meta-training {key}: {cfg.n_episodes} episodes")
                validate = mc.validator(learner, train_s, n_tasks=cfg.n_val_tasks, sym=sym, seed=HELDOUT_SEED,
                                        batch=cfg.eval_batch) if cfg.select_every else None
                hist = ctx.unit(f"{key}/meta-train", lambda: mc.meta_train(
                    learner, train_s, init_theta(terms, (), cfg.theta0), n_episodes=cfg.n_episodes, sym=sym,
                    seed=seed, ckpt_dir=ctx.scratch_dir(f"{key}/meta-train"),
                    ckpt_every=cfg.ckpt_every, log=ctx.log, validate=validate, select_every=cfg.select_every))
                theta = Theta(jnp.asarray(hist["final_theta_w"], jnp.float32), jnp.zeros(0, jnp.float32))
                add_rows(fb, v, seed, ctx.unit(f"{key}/heldout", lambda: heldout(learner, theta, sym)))
                final[key] = mc.theta_table(TERMS, over_all_terms(terms, hist["final_theta_w"]))
                if "selected_theta_w" in hist:
                    sel = Theta(jnp.asarray(hist["selected_theta_w"], jnp.float32), jnp.zeros(0, jnp.float32))
                    add_rows(fb, f"{v}@val", seed, ctx.unit(f"{key}/heldout-val", lambda: heldout(learner, sel, sym)))
                    selected[key] = {"episode": hist["selected_episode"], "val_accuracy": hist["selected_val_accuracy"],
                                     "theta": mc.theta_table(TERMS, over_all_terms(terms, hist["selected_theta_w"]))}
                curves[key] = {k: hist.get(k, []) for k in ("episode", "accuracy", "val_episode", "val_accuracy")}
                curves[key]["theta_w"] = over_all_terms(terms, hist["theta_w"]).tolist()
                ctx.log(f"  {key}: final theta {final[key]}")
    summary = summarize(rows, ["feedback", "rule"], "query_accuracy")
    for s in summary:
        ctx.log(f"{s['feedback']} {s['rule']}: held-out query accuracy {s['query_accuracy_mean']:.4f} "
                f"[{s['query_accuracy_ci_low']:.4f}, {s['query_accuracy_ci_high']:.4f}]")
    return {"rows": rows, "summary": summary, "final_theta": final, "selected_theta": selected,
            "lr_selection": select, "curves": curves, "measurements": sanger_measurements(rows, cfg),
            "nets": {fb: [int(n) for n in learners[fb, BASELINE].loop.net.sizes] for fb in cfg.feedback}}


def sanger_measurements(rows: list[dict], cfg: MetaSangerConfig) -> dict:
    """Inputs of the S6 claims (``plasticlab.claims.meta``), one value per held-out task (tasks are the paired unit:
    every rule adapts on the same tasks from the same initial weights): ``<fb>/<rule>/heldout_accuracy`` for
    ``grid-lr`` and each meta-trained rule with its final theta (mean over the meta-training seeds), and
    ``chance_accuracy`` (1 / n_way per task)."""
    m: dict[str, list] = {"chance_accuracy": [1.0 / cfg.n_way] * cfg.n_eval_tasks}
    for fb in cfg.feedback:
        for rule in ("grid-lr", *cfg.variants):
            per_task = np.full(cfg.n_eval_tasks, np.nan)
            got: dict[int, list[float]] = {}
            for r in rows:
                if r["feedback"] == fb and r["rule"] == rule:
                    got.setdefault(int(r["task"]), []).append(float(r["query_accuracy"]))
            for t, v in got.items():
                per_task[t] = np.mean(v)
            m[f"{fb}/{rule}/heldout_accuracy"] = per_task.tolist()
    return m


def plot(results: dict, out: Path) -> None:
    rows = results["rows"]
    fbs = sorted({r["feedback"] for r in rows})
    fig, ax = figure(1, len(fbs) + 1, size=(4.2, 3.4))
    for j, fb in enumerate(fbs):
        names = [n for n in ("grid-lr", "pg", "pg+oja", "pg+sanger", "pg@val", "pg+oja@val", "pg+sanger@val")
                 if any(r["rule"] == n and r["feedback"] == fb for r in rows)]
        for i, n in enumerate(names):
            v = np.asarray([r["query_accuracy"] for r in rows if r["rule"] == n and r["feedback"] == fb])
            m, lo, hi = bootstrap_ci(v)
            ax[0, j].bar(i, m, yerr=[[m - lo], [hi - m]], color=f"C{i}", capsize=4)
        ax[0, j].set_xticks(range(len(names)), [f"{n} (n={sum(r['rule'] == n and r['feedback'] == fb for r in rows)})"
                                                for n in names], fontsize=8)
        ax[0, j].set(title=f"{fb.upper()}: held-out accuracy (98% CI)", ylabel="query accuracy")
        mark_chance(ax[0, j], 1 / results["config"]["n_way"])  # an N-way task: one of N labels
    for key, c in results["curves"].items():
        th = np.asarray(c["theta_w"])
        for i, t in enumerate(TERMS):
            if np.any(th[:, i] != th[0, i]):
                ax[0, -1].plot(c["episode"], th[:, i], label=f"{key.rsplit('/seed', 1)[0]}: {t}")
    ax[0, -1].set(xlabel="episode", ylabel="theta", title="coefficients during meta-training")
    ax[0, -1].legend(fontsize=6)
    save(fig, out / "meta_sanger.png")


register(Experiment(
    "meta-sanger", "Sanger's vs Oja's term meta-learned next to BP and FA (Oja paper supplement S6)",
    MetaSangerConfig, run, plot, paper="meta", results_version=2,  # 2: each rule's loop has only its own terms
    quick={"dataset": "digits", "hidden": (32, 24), "hidden_bp": (32, 28, 24), "k_shot": 10, "n_query": 5,
           "n_episodes": 20, "lr_meta": 1e-3, "ckpt_every": 10, "n_select_tasks": 10, "n_val_tasks": 10,
           "select_every": 10, "n_eval_tasks": 10, "eval_batch": 10, "lr_grid": (0.03, 0.1, 0.3)}))
