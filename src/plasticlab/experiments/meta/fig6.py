"""meta-fig6: meta-learned plasticity rules vs backprop and feedback alignment (Oja paper, Fig. 6b-d).

Per episode a fresh 5-layer softplus net (784-170-130-100-70-N, no biases, W and B Xavier)
adapts online to an N-way K-shot task by Delta W = sum_i theta_i F_i; the feedback B is
learned by its own terms (``feedback=plastic``, default), tied to W^T (``sym``) or fixed (``fixed``);
Adam (lr 3e-4; 1e-3, the paper's, collapses, docs/meta.md) on theta minimises the query cross-entropy after
adaptation (the meta-gradient
runs through the unrolled inner loop). Reported: the meta-training curves (query accuracy per
episode and the theta trajectories), and the held-out adaptation accuracy of the learned rule
(final theta; theta averaged over the last quarter of meta-training: "learned-avg"; and the theta
with the best validation accuracy, scored every ``select_every`` episodes on ``n_val_tasks`` fixed
meta-TRAIN tasks, the ones BP's / FA's learning rate is picked on: "learned-val")
vs BP (B = W^T) and FA (fixed random B), both with the pseudo-gradient only, the same tasks,
the same initial weights and the same number of steps, their learning rate picked from a grid
on meta-train tasks.

The paper uses EMNIST balanced; offline, run it with ``--set dataset=mnist --data-dir ../shared/data/mnist``.
Defaults that make ``feedback=plastic`` learn (docs/meta.md, "Failure mode"): the output head of the
authors' reference code (one unit per class of the data set, original labels: ``head=dataset``) and the
inner-loop divergence guard ``max_growth`` (see ``InnerLoop``); with ``head=task`` (N outputs) the
meta-gradient silences the network and meta-training stays at chance.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ...analysis.stats import bootstrap_ci, summarize
from ...plotting import figure, mark_chance, save
from ...rules.meta import DEFAULT_B_TERMS, DEFAULT_TERMS, TERMS, Theta, check_terms, init_theta
from ...settings import SettingError, setting
from . import common as mc
from ..base import Experiment, RunContext, register

HELDOUT_SEED = mc.HELDOUT_SEED
FEEDBACK = {"plastic": 0.0, "sym": 1.0, "fixed": 0.0}


@mc.meta_config
class MetaFig6Config(mc.MetaConfig):
    """Meta-learning of eq. 11 on N-way K-shot tasks; ``seeds`` independent meta-training runs."""

    feedback: str = setting("plastic", choices=tuple(FEEDBACK),
                            doc="plastic: B learns by b_terms; sym: B = W^T; fixed: B fixed random")
    terms: tuple[str, ...] = setting(DEFAULT_TERMS, choices=tuple(TERMS),
                                     doc="candidate terms F_i of W's update, each once; pseudo_grad needed (the "
                                         "BP / FA baselines)")
    b_terms: tuple[str, ...] = setting(DEFAULT_B_TERMS, choices=tuple(TERMS), allow_empty=True,
                                       doc="candidate terms G_j of B's update (feedback=plastic only), each once; "
                                           "empty: B fixed")
    lr_meta: float = mc.with_default(mc.MetaConfig.lr_meta, 3e-4)  # 1e-3 collapses (docs/meta.md, "Collapse")
    l1: float = setting(0.0, ge=0, doc="L1 penalty on theta (all but the pseudo-gradient's coefficient); 0: off")
    meta_batch: int = setting(1, ge=1, le=1000, doc="episodes per Adam step (vmapped), at most n_episodes")

    def validate(self) -> None:
        for key in ("terms", "b_terms"):
            value = getattr(self, key)
            if len(set(value)) != len(value):
                raise SettingError(key, value, "each term at most once", "a term repeats")
        if "pseudo_grad" not in self.terms:
            raise SettingError("terms", self.terms, "a list of terms that includes pseudo_grad",
                               "the BP / FA baselines and theta0 need the pseudo-gradient term")
        if self.meta_batch > self.n_episodes:
            raise SettingError("meta_batch", self.meta_batch, f"at most n_episodes={self.n_episodes}",
                               "no outer step would run")
        super().validate()


def _b_terms(cfg: MetaFig6Config) -> tuple[str, ...]:
    return tuple(cfg.b_terms) if cfg.feedback == "plastic" else ()


def _meta_runs(cfg: MetaFig6Config, ctx: RunContext, learner, train_s, seeds: list[int]) -> list[dict]:
    """The meta-training runs of ``seeds``, each resumable from its checkpoints: one seed alone, or several
    together in one vmapped outer step (``run`` chooses by device)."""
    theta0 = init_theta(cfg.terms, _b_terms(cfg), cfg.theta0)
    validate = mc.validator(learner, train_s, n_tasks=cfg.n_val_tasks, sym=FEEDBACK[cfg.feedback], seed=HELDOUT_SEED,
                            batch=cfg.eval_batch) if cfg.select_every else None
    kw = dict(n_episodes=cfg.n_episodes, meta_batch=cfg.meta_batch, sym=FEEDBACK[cfg.feedback],
              ckpt_every=cfg.ckpt_every, log=ctx.log, validate=validate, select_every=cfg.select_every)
    dirs = [ctx.scratch_dir(f"seed={s}/meta-train") for s in seeds]
    if len(seeds) == 1:
        return [mc.meta_train(learner, train_s, theta0, seed=seeds[0], ckpt_dir=dirs[0], **kw)]
    return mc.meta_train(learner, train_s, theta0, seed=seeds, ckpt_dir=dirs, **kw)


def run(cfg: MetaFig6Config, ctx: RunContext) -> dict:
    check_terms(cfg.terms)
    check_terms(cfg.b_terms, "feedback terms")
    train_s, test_s, data = mc.make_samplers(cfg.dataset, ctx.data_dir, cfg.n_way, cfg.k_shot, cfg.n_query,
                                             cfg.split_mode)
    loop = mc.build_loop(data.n_features, cfg.hidden, mc.n_outputs(cfg.head, cfg.n_way, data.n_classes), cfg.terms,
                         _b_terms(cfg), cfg.beta, max_growth=cfg.max_growth)
    learner = mc.MetaLearner(loop, cfg.lr_meta, cfg.clip, cfg.l1, cfg.head)
    ctx.log(f"meta-fig6: {train_s}; net {loop.net.sizes}; terms {cfg.terms}; feedback {cfg.feedback} "
            f"(terms {_b_terms(cfg)})")

    rows, runs = [], {}
    todo = [s for s in range(cfg.seeds) if not ctx.has_unit(f"seed={s}/meta-train")]
    # measured (benchmarks/meta_step.py): vmapped seeds are no faster on a CPU, so there the seeds train one after
    # another and each one's unit is kept (and timed) when it ends; on an accelerator they train together
    if jax.default_backend() == "cpu":
        if todo:
            ctx.log(f"meta-training seed(s) {todo} one after another: {cfg.n_episodes} episodes each")
        for seed in range(cfg.seeds):
            runs[seed] = ctx.unit(f"seed={seed}/meta-train",
                                  lambda: _meta_runs(cfg, ctx, learner, train_s, [seed])[0])
    else:
        if todo:
            ctx.log(f"meta-training seed(s) {todo} together: {cfg.n_episodes} episodes")
            fresh = dict(zip(todo, _meta_runs(cfg, ctx, learner, train_s, todo)))
        for seed in range(cfg.seeds):
            runs[seed] = ctx.unit(f"seed={seed}/meta-train", lambda: fresh[seed])

    ev = dict(n_tasks=cfg.n_eval_tasks, seed=HELDOUT_SEED, batch=cfg.eval_batch)
    select = {}
    for name, sym in (("bp", 1.0), ("fa", 0.0)):
        select[name] = ctx.unit(f"select-lr/{name}", lambda: mc.select_lr(
            learner, train_s, cfg.lr_grid, sym=sym, n_tasks=cfg.n_select_tasks, seed=HELDOUT_SEED,
            batch=cfg.eval_batch))
        ctx.log(f"{name}: lr grid (meta-train tasks) {select[name]['grid']} -> lr {select[name]['best_lr']}")

    def heldout(theta, sym):
        loss, acc = mc.evaluate_rule(learner, theta, test_s, sym=sym, **ev)
        return {"loss": loss.tolist(), "accuracy": acc.tolist()}

    base = {name: ctx.unit(f"heldout/{name}", lambda: heldout(mc.pseudo_grad_theta(loop, select[name]["best_lr"]), sym))
            for name, sym in (("bp", 1.0), ("fa", 0.0))}
    base["untrained"] = ctx.unit("heldout/untrained", lambda: heldout(init_theta(cfg.terms, _b_terms(cfg), cfg.theta0),
                                                                         FEEDBACK[cfg.feedback]))
    for name, res in base.items():
        lr = select[name]["best_lr"] if name in select else cfg.theta0
        rows += [{"rule": name, "dataset": cfg.dataset, "seed": -1, "task": i, "lr": lr, "query_accuracy": a,
                  "query_loss": l} for i, (a, l) in enumerate(zip(res["accuracy"], res["loss"]))]

    averaged, selected, comparisons = {}, {}, []
    for seed, hist in runs.items():
        theta = Theta(jnp.asarray(hist["final_theta_w"], jnp.float32), jnp.asarray(hist["final_theta_b"], jnp.float32))
        avg = _averaged_theta(hist)
        averaged[str(seed)] = {"w": mc.theta_table(cfg.terms, avg.w), "b": mc.theta_table(_b_terms(cfg), avg.b)}
        candidates = [("learned", theta, f"seed={seed}/heldout"), ("learned-avg", avg, f"seed={seed}/heldout-avg")]
        if "selected_theta_w" in hist:
            sel = Theta(jnp.asarray(hist["selected_theta_w"], jnp.float32),
                        jnp.asarray(hist["selected_theta_b"], jnp.float32))
            selected[str(seed)] = {"episode": hist["selected_episode"], "val_accuracy": hist["selected_val_accuracy"],
                                   "w": mc.theta_table(cfg.terms, sel.w), "b": mc.theta_table(_b_terms(cfg), sel.b)}
            ctx.log(f"seed {seed}: val-selected theta from episode {hist['selected_episode']} "
                    f"(validation accuracy {hist['selected_val_accuracy']:.3f}): {selected[str(seed)]['w']}; "
                    f"feedback {selected[str(seed)]['b']}")
            candidates.append(("learned-val", sel, f"seed={seed}/heldout-val"))
        for rule, th, key in candidates:
            res = ctx.unit(key, lambda: heldout(th, FEEDBACK[cfg.feedback]))
            rows += [{"rule": rule, "dataset": cfg.dataset, "seed": seed, "task": i, "lr": float("nan"),
                      "query_accuracy": a, "query_loss": l} for i, (a, l) in enumerate(zip(res["accuracy"], res["loss"]))]
            for name in ("bp", "fa"):
                diff = np.asarray(res["accuracy"]) - np.asarray(base[name]["accuracy"])
                m, lo, hi = bootstrap_ci(diff)
                comparisons.append({"seed": seed, "rule": rule, "vs": name, "mean_diff": float(m), "ci_low": float(lo),
                                    "ci_high": float(hi), "n_tasks": len(diff)})
    for c in comparisons:
        ctx.log(f"seed {c['seed']}: {c['rule']} - {c['vs']} = {c['mean_diff']:+.4f} [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}]")
    summary = summarize(rows, ["rule"], "query_accuracy")
    for s in summary:
        ctx.log(f"held-out query accuracy {s['rule']}: {s['query_accuracy_mean']:.4f} "
                f"[{s['query_accuracy_ci_low']:.4f}, {s['query_accuracy_ci_high']:.4f}] (n={s['n']})")
    final_theta = {str(seed): {"w": mc.theta_table(cfg.terms, h["final_theta_w"]),
                               "b": mc.theta_table(_b_terms(cfg), h["final_theta_b"])} for seed, h in runs.items()}
    for seed, t in final_theta.items():
        ctx.log(f"seed {seed} final theta: {t['w']}; feedback {t['b']}")
    curves = {str(seed): {k: h.get(k, []) for k in ("episode", "loss", "accuracy", "theta_w", "theta_b", "skipped",
                                                     "seconds", "val_episode", "val_accuracy", *mc.STAT_KEYS)}
              for seed, h in runs.items()}
    collapse = {str(seed): collapse_status(h["accuracy"], cfg.n_way) for seed, h in runs.items()}
    for seed, c in collapse.items():
        ctx.log(f"seed {seed}: meta-accuracy of the last {c['window']} episodes {c['meta_accuracy']:.3f} "
                f"({'collapsed' if c['collapsed'] else 'not collapsed'}: threshold {c['threshold']:.2f})")
    res = {"rows": rows, "summary": summary, "comparisons": comparisons, "lr_selection": select,
           "final_theta": final_theta, "averaged_theta": averaged, "selected_theta": selected, "curves": curves,
           "collapse": collapse, "collapse_rate": float(np.mean([c["collapsed"] for c in collapse.values()])),
           "terms": list(cfg.terms), "b_terms": list(_b_terms(cfg))}
    res["measurements"] = fig6_measurements(res, cfg)
    return res


COLLAPSE_WINDOW = 100  # episodes at the end of meta-training that decide "collapsed"
COLLAPSE_MARGIN = 0.1  # ... when their mean meta-accuracy is below chance 1/N + this


def collapse_status(accuracy, n_way: int) -> dict:
    """Whether a meta-training run ended collapsed: the mean meta-accuracy (query accuracy per episode, before the
    step's update) of its last ``COLLAPSE_WINDOW`` episodes is below chance 1/n_way + ``COLLAPSE_MARGIN``."""
    acc = np.asarray(accuracy, np.float64)
    if acc.size == 0:
        raise ValueError("collapse_status needs at least one episode's meta-accuracy")
    window = min(COLLAPSE_WINDOW, acc.size)
    m = float(np.mean(acc[-window:]))
    threshold = 1.0 / n_way + COLLAPSE_MARGIN
    return {"window": window, "meta_accuracy": m, "threshold": threshold, "collapsed": bool(m < threshold)}


def fig6_measurements(res: dict, cfg: MetaFig6Config) -> dict:
    """Inputs of the Fig. 6b-d claims (``plasticlab.claims.meta``).

    Per held-out task (the paired unit: same tasks, initial weights and steps for every rule):
    ``<rule>/heldout_accuracy`` for bp, fa, untrained and each learned theta (mean over meta-training seeds).
    Per meta-training seed: ``learned/meta_accuracy`` (mean query accuracy over the last quarter of meta-training),
    ``bp/select_accuracy`` (BP's grid-best mean query accuracy on the meta-train selection tasks, repeated per seed:
    the reference of Fig. 6d), ``learned/theta_oja`` (final Oja coefficient; absent without the term) and
    ``zero`` (0 per seed, its reference).
    Diagnostics of meta-training, per seed (no claim reads them): ``learned/collapsed`` (1 if the run ended collapsed,
    ``collapse_status``), ``learned/last_meta_accuracy`` (its mean meta-accuracy over the last ``COLLAPSE_WINDOW``
    episodes), ``learned/median_grad_norm`` and ``learned/max_grad_norm`` (the meta-gradient's norm before
    clipping), ``learned/guard_episode_fraction`` (share of episodes in which the guard rejected an update), and the
    final and validation-selected coefficients ``learned/final_<term>``, ``learned-val/<term>`` (``b:<term>`` for B).
    """
    rows = res["rows"]
    m: dict[str, list] = {}
    for rule in ("bp", "fa", "untrained", "learned", "learned-avg", "learned-val"):
        got: dict[int, list[float]] = {}
        for r in rows:
            if r["rule"] == rule:
                got.setdefault(int(r["task"]), []).append(float(r["query_accuracy"]))
        if got:
            m[f"{rule}/heldout_accuracy"] = [float(np.mean(got[t])) if t in got else float("nan")
                                             for t in range(cfg.n_eval_tasks)]
    curves = list(res["curves"].values())
    m["learned/meta_accuracy"] = [float(np.mean(c["accuracy"][-max(1, len(c["accuracy"]) // 4):])) for c in curves]
    m["bp/select_accuracy"] = [float(max(res["lr_selection"]["bp"]["grid"].values()))] * len(curves)
    m["zero"] = [0.0] * len(curves)
    if "oja" in res["terms"]:
        m["learned/theta_oja"] = [float(t["w"]["oja"]) for t in res["final_theta"].values()]
    if "collapse" in res:
        m["learned/collapsed"] = [float(c["collapsed"]) for c in res["collapse"].values()]
        m["learned/last_meta_accuracy"] = [float(c["meta_accuracy"]) for c in res["collapse"].values()]
    if all(c.get("grad_norm") for c in curves):
        m["learned/median_grad_norm"] = [float(np.nanmedian(c["grad_norm"])) for c in curves]
        m["learned/max_grad_norm"] = [float(np.nanmax(c["grad_norm"])) for c in curves]
        m["learned/guard_episode_fraction"] = [float(np.mean(np.asarray(c["rejected"]) > 0)) for c in curves]
    for kind, thetas in (("learned/final_", res["final_theta"]), ("learned-val/", res["selected_theta"])):
        if len(thetas) == len(curves):
            for part, prefix in (("w", ""), ("b", "b:")):
                for t in (res["terms"] if part == "w" else res["b_terms"]):
                    m[f"{kind}{prefix}{t}"] = [float(v[part][t]) for v in thetas.values()]
    return m


def _averaged_theta(hist: dict, frac: float = 0.25) -> Theta:
    """Mean of theta over the last ``frac`` of the outer steps (Polyak-Ruppert averaging of the noisy Adam iterates)."""
    n = max(1, int(round(frac * len(hist["theta_w"]))))
    w = np.mean(np.asarray(hist["theta_w"], np.float32)[-n:], axis=0)
    b = np.asarray(hist["theta_b"], np.float32)[-n:]
    b = np.mean(b, axis=0) if b.size else np.zeros(b.shape[1:], np.float32)
    return Theta(jnp.asarray(w, jnp.float32), jnp.asarray(b, jnp.float32))


def _smooth(v: np.ndarray, k: int) -> np.ndarray:
    k = max(1, min(k, len(v)))
    return np.convolve(v, np.ones(k) / k, mode="valid")


def plot(results: dict, out: Path) -> None:
    curves, terms, b_terms = results["curves"], results["terms"], results["b_terms"]
    fig, ax = figure(1, 5, size=(4.3, 3.4))
    base = {s["rule"]: s["query_accuracy_mean"] for s in results["summary"]}
    for seed, c in curves.items():
        ep, acc = np.asarray(c["episode"]), np.asarray(c["accuracy"])
        k = max(1, len(acc) // 20)
        line, = ax[0, 0].plot(ep[k - 1:], _smooth(acc, k), label=f"learned (seed {seed})")
        if c.get("val_episode"):
            ax[0, 0].plot(c["val_episode"], c["val_accuracy"], "o", ms=3, color=line.get_color(),
                          label=f"validation (seed {seed})")
        th = np.asarray(c["theta_w"])
        for i, t in enumerate(terms):
            ax[0, 1].plot(ep, th[:, i], label=t if seed == "0" else None, color=f"C{i}")
        tb = np.asarray(c["theta_b"])
        for i, t in enumerate(b_terms):
            ax[0, 2].plot(ep, tb[:, i], label=t if seed == "0" else None, color=f"C{i}")
        gn = np.asarray(c.get("grad_norm") or [], np.float64)
        if gn.size:
            line, = ax[0, 4].semilogy(ep, gn, lw=0.3, alpha=0.5)
            rej = np.asarray(c["rejected"]) > 0
            ax[0, 4].semilogy(ep[rej], gn[rej], "x", ms=3, color=line.get_color(),
                              label=f"guard hit (seed {seed})" if rej.any() else None)
    for name, ls in (("bp", "--"), ("fa", ":")):
        if name in base:
            ax[0, 0].axhline(base[name], ls=ls, color="k", label=f"{name} (held-out)")
    ax[0, 0].set(xlabel="episode", ylabel="query accuracy (moving avg.)", title="meta-accuracy")
    ax[0, 0].legend(fontsize=7)
    chance = 1 / results["config"]["n_way"]  # an N-way task: one of N labels
    mark_chance(ax[0, 0], chance)
    ax[0, 1].set(xlabel="episode", ylabel="theta", title="forward terms")
    ax[0, 1].legend(fontsize=7)
    ax[0, 2].set(xlabel="episode", ylabel="theta", title="feedback terms" if b_terms else "no feedback terms")
    if b_terms:
        ax[0, 2].legend(fontsize=7)
    rows = results["rows"]
    names = [n for n in ("untrained", "fa", "bp", "learned", "learned-avg", "learned-val")
             if any(r["rule"] == n for r in rows)]
    for j, n in enumerate(names):
        v = np.asarray([r["query_accuracy"] for r in rows if r["rule"] == n])
        m, lo, hi = bootstrap_ci(v)
        ax[0, 3].bar(j, m, yerr=[[m - lo], [hi - m]], color=f"C{j}", capsize=4)
    ax[0, 3].set_xticks(range(len(names)), [f"{n} (n={sum(r['rule'] == n for r in rows)})" for n in names], fontsize=8,
                        rotation=30)
    ax[0, 3].set(ylabel="held-out query accuracy", title="adaptation accuracy (98% CI)")
    mark_chance(ax[0, 3], chance)
    ax[0, 4].set(xlabel="episode", ylabel="meta-gradient norm (before clipping)", title="meta-gradient")
    if ax[0, 4].get_legend_handles_labels()[0]:
        ax[0, 4].legend(fontsize=7)
    save(fig, out / "meta_fig6.png")


register(Experiment(
    "meta-fig6", "meta-learned plasticity (eq. 11) vs BP and FA on 5-way few-shot tasks (Oja paper Fig. 6b-d)",
    MetaFig6Config, run, plot, paper="meta",
    quick={"dataset": "digits", "hidden": (32, 24), "k_shot": 10, "n_query": 5, "n_episodes": 100, "lr_meta": 1e-3,
           "ckpt_every": 25,
           "n_select_tasks": 10, "n_val_tasks": 10, "select_every": 25, "n_eval_tasks": 20, "eval_batch": 10,
           "lr_grid": (0.03, 0.1, 0.3)}))
