"""meta-sanger-scan: how adaptation on meta-sanger's tasks depends on a fixed Oja or Sanger coefficient (a diagnosis
of supplement S6, not a figure of the paper).

For each feedback pathway (BP: B = W^T on the 10-layer net; FA: fixed random B on the 5-layer net) the inner loop

    Delta W = lr F_0 + c F_j        F_0 = -e_l h_{l-1}^T (pseudo-gradient),  F_j = Oja's or Sanger's term

adapts on meta-sanger's N-way K-shot tasks, with lr picked from ``lr_grid`` for F_0 alone (as meta-sanger's
baseline) and c swept over ``coefficients`` (c = 0: the baseline itself). Every c is scored on meta-train
selection tasks (validation: mean query accuracy and median query loss); the held-out tasks are read once per
term, at the c of best validation accuracy, and for c = 0. Meta-learning moves every coefficient by about the
outer loop's Adam rate ``lr_meta`` per episode; the scan shows which coefficients that noise reaches and what
they do to adaptation, i.e. whether a term can be meta-learned at that rate at all. Nothing is meta-trained, so
the config has none of the outer loop's settings (``TaskConfig``, not ``MetaConfig``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...analysis.stats import bootstrap_ci
from ...plotting import figure, mark_chance, save
from ...rules.meta import Theta
from ...settings import SettingError, setting
from ..base import Experiment, RunContext, register
from ..oja.common import HIDDEN
from . import common as mc

SCAN_TERMS = ("oja", "sanger")


@mc.task_config
class MetaSangerScanConfig(mc.TaskConfig):
    """meta-sanger's tasks and nets, with fixed Oja / Sanger coefficients instead of meta-learned ones."""

    k_shot: int = mc.with_default(mc.TaskConfig.k_shot, 50)
    feedback: tuple[str, ...] = setting(("bp", "fa"), choices=tuple(mc.PATHWAYS),
                                        doc="feedback pathways: bp (B = W^T) and / or fa (fixed random B)")
    terms: tuple[str, ...] = setting(SCAN_TERMS, choices=SCAN_TERMS, doc="terms whose coefficient is swept")
    coefficients: tuple[float, ...] = setting((0.0, 1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2), ge=0, le=1.0,
                                              doc="coefficients c of the term (0: the pseudo-gradient alone)")
    hidden_bp: tuple[int, ...] = setting(HIDDEN[10], ge=1, le=100_000,
                                         doc="hidden widths of BP's net (S6: 10 layers); FA's net is `hidden`")

    def validate(self) -> None:
        super().validate()
        if 0.0 not in self.coefficients:
            raise SettingError("coefficients", list(self.coefficients), "a list that includes 0 (the baseline)")


def _theta(loop, lr: float, term: str, c: float) -> Theta:
    """The baseline's theta (pseudo-gradient at ``lr``, fixed B) with ``term``'s coefficient set to c."""
    base = mc.pseudo_grad_theta(loop, lr)
    return base._replace(w=base.w.at[loop.terms.index(term)].set(c))


def run(cfg: MetaSangerScanConfig, ctx: RunContext) -> dict:
    train_s, test_s, data = mc.make_samplers(cfg.dataset, ctx.data_dir, cfg.n_way, cfg.k_shot, cfg.n_query,
                                             cfg.split_mode)
    n_out = mc.n_outputs(cfg.head, cfg.n_way, data.n_classes)
    seed = mc.HELDOUT_SEED
    scan, heldout, chosen, lrs = [], [], {}, {}
    for fb in cfg.feedback:
        sym = mc.PATHWAYS[fb]
        widths = tuple(cfg.hidden_bp if fb == "bp" else cfg.hidden)
        learners = {t: mc.MetaLearner(mc.build_loop(data.n_features, widths, n_out, ("pseudo_grad", t), (), cfg.beta,
                                                    max_growth=cfg.max_growth), head=cfg.head)
                    for t in cfg.terms}
        first = learners[cfg.terms[0]]
        sel = ctx.unit(f"{fb}/select-lr", lambda: mc.select_lr(first, train_s, cfg.lr_grid, sym=sym,
                                                               n_tasks=cfg.n_select_tasks, seed=seed,
                                                               batch=cfg.eval_batch))
        lrs[fb] = lr = float(sel["best_lr"])
        ctx.log(f"meta-sanger-scan {fb.upper()}: net {first.loop.net.sizes}, lr {lr:g} (of {list(cfg.lr_grid)})")

        def score(term, c, sampler, purpose, start, n_tasks):
            loss, acc = mc.evaluate_rule(learners[term], _theta(learners[term].loop, lr, term, c), sampler,
                                         n_tasks=n_tasks, sym=sym, seed=seed, purpose=purpose, start=start,
                                         batch=cfg.eval_batch)
            return {"accuracy": acc.tolist(), "loss": loss.tolist()}

        base = ctx.unit(f"{fb}/base/c=0/heldout",  # BP / FA itself: no choice involved
                        lambda: score(cfg.terms[0], 0.0, test_s, mc.HELDOUT, 0, cfg.n_eval_tasks))
        heldout.append({"feedback": fb, "term": "none", "coefficient": 0.0, **base})
        for term in cfg.terms:
            for c in cfg.coefficients:
                if c == 0 and term != cfg.terms[0]:  # the baseline is the same loop for every term
                    res = next(r for r in scan if r["feedback"] == fb and r["coefficient"] == 0)
                    res = {"accuracy": res["accuracy"], "loss": res["loss"]}
                else:
                    res = ctx.unit(f"{fb}/{term}/c={c:g}/validation",
                                   lambda: score(term, c, train_s, mc.SELECT, mc.SELECT_START, cfg.n_select_tasks))
                scan.append({"feedback": fb, "term": term, "coefficient": float(c), **res})
                ctx.log(f"  {fb}/{term} c={c:g}: validation accuracy {np.mean(res['accuracy']):.3f}, median query "
                        f"loss {np.median(res['loss']):.3g}")
            rows = [r for r in scan if r["feedback"] == fb and r["term"] == term]
            best = max(rows, key=lambda r: np.mean(r["accuracy"]))["coefficient"]
            chosen[f"{fb}/{term}"] = best
            if best:  # held-out read once, at the chosen c (c = 0 is the baseline above)
                res = ctx.unit(f"{fb}/{term}/c={best:g}/heldout",
                               lambda: score(term, best, test_s, mc.HELDOUT, 0, cfg.n_eval_tasks))
                heldout.append({"feedback": fb, "term": term, "coefficient": float(best), **res})
    rows = [{"feedback": r["feedback"], "term": r["term"], "coefficient": r["coefficient"], "tasks": split,
             "chosen": split == "held-out" or chosen.get(f"{r['feedback']}/{r['term']}") == r["coefficient"],
             "query_accuracy": float(np.mean(r["accuracy"])), "median_query_loss": float(np.median(r["loss"])),
             "n_tasks": len(r["accuracy"])}
            for split, group in (("validation", scan), ("held-out", heldout)) for r in group]
    return {"rows": rows, "scan": scan, "heldout": heldout, "chosen_coefficient": chosen, "lr": lrs,
            "measurements": scan_measurements(scan, heldout, chosen)}


def scan_measurements(scan: list[dict], heldout: list[dict], chosen: dict) -> dict:
    """Per-task values: ``<fb>/<term>/c=<c>/val_accuracy`` and ``.../val_loss`` for every scanned c;
    ``<fb>/base/heldout_accuracy`` (c = 0) and ``<fb>/<term>/heldout_accuracy`` at the chosen c."""
    m: dict[str, list] = {}
    for r in scan:
        m[f"{r['feedback']}/{r['term']}/c={r['coefficient']:g}/val_accuracy"] = r["accuracy"]
        m[f"{r['feedback']}/{r['term']}/c={r['coefficient']:g}/val_loss"] = r["loss"]
    for h in heldout:
        name = "base" if h["coefficient"] == 0 else h["term"]
        m[f"{h['feedback']}/{name}/heldout_accuracy"] = h["accuracy"]
    for key, c in chosen.items():
        m[f"{key}/chosen_coefficient"] = [c]
    return m


def plot(results: dict, out: Path) -> None:
    scan = results["scan"]
    fbs = list(dict.fromkeys(r["feedback"] for r in scan))
    fig, ax = figure(2, len(fbs), size=(4.4, 3.2))
    for j, fb in enumerate(fbs):
        for i, term in enumerate(dict.fromkeys(r["term"] for r in scan)):
            rows = sorted((r for r in scan if r["feedback"] == fb and r["term"] == term),
                          key=lambda r: r["coefficient"])
            x = [max(r["coefficient"], 1e-6) for r in rows]  # c = 0 drawn at 1e-6 on the log axis
            ci = np.array([bootstrap_ci(np.asarray(r["accuracy"])) for r in rows])
            ax[0, j].errorbar(x, ci[:, 0], yerr=[ci[:, 0] - ci[:, 1], ci[:, 2] - ci[:, 0]], marker="o", capsize=3,
                              color=f"C{i}", label=f"{term} (n={len(rows[0]['accuracy'])} tasks)")
            ax[1, j].plot(x, [np.median(r["loss"]) for r in rows], marker="o", color=f"C{i}", label=term)
        ax[0, j].set(xscale="log", xlabel="coefficient c (0 drawn at 1e-6)", ylabel="validation query accuracy",
                     title=f"{fb.upper()}, lr {results['lr'][fb]:g}: accuracy (98% CI)")
        mark_chance(ax[0, j], 1 / results["config"]["n_way"])
        ax[1, j].set(xscale="log", yscale="log", xlabel="coefficient c (0 drawn at 1e-6)",
                     ylabel="median query loss", title=f"{fb.upper()}: query loss")
        ax[0, j].legend(fontsize=7)
    save(fig, out / "meta_sanger_scan.png")


register(Experiment(
    "meta-sanger-scan", "diagnosis of S6: adaptation vs a fixed Oja or Sanger coefficient on meta-sanger's tasks",
    MetaSangerScanConfig, run, plot, paper="meta",
    quick={"dataset": "digits", "hidden": (32, 24), "hidden_bp": (32, 28, 24), "k_shot": 10, "n_query": 5,
           "n_select_tasks": 10, "n_eval_tasks": 10, "eval_batch": 10, "lr_grid": (0.03, 0.1, 0.3),
           "coefficients": (0.0, 1e-3, 1e-2)}))
