"""oja-rnn-grid: the leak and the rates of Fig. 5's RNN chosen on validation, and the PEV diagnosis.

Every cell trains the delayed-MNIST RNN of ``oja-fig5`` (``delayed.py``) at the paper's 18,000 online trials with
20 seeds, on the training images minus a held-out validation set (the test split is never read):

1. BPTT and BPTT+Oja (eta_oja = ``eta_oja``) over the grid ``alphas`` x ``etas``, the same eta for both rules;
2. at the chosen leak, BPTT+Oja at its chosen eta over ``eta_ojas`` (the Oja rate).

The choice (a coordinate search, stated): the leak alpha* maximises BPTT's mean final validation accuracy (the
network is the baseline's); each rule's eta* maximises its own at alpha*; then BPTT+Oja's eta_oja* maximises its
accuracy at (alpha*, eta*). Per cell it records the final validation accuracy and PEV (omega^2) per seed, the
delay PEV (t > t_stim, mean over neurons) and the PEV per time step at every evaluation over training.

Measurements (per seed): ``alpha=<a>/eta=<e>/<rule>/{val_accuracy,pev_delay}`` for the grid,
``alpha=<a>/eta=<e>/eta_oja=<o>/bptt+oja/...`` for the Oja-rate cells, ``chosen/<rule>/...`` at each rule's chosen
setting, and ``max_gap/<rule>/pev_delay`` at the cell where BPTT+Oja's delay PEV is furthest above BPTT's (same
alpha and eta, so seeds pair). Claims: ``plasticlab.claims.oja`` (``oja.fig5*.grid.*``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...data import search_context
from ...settings import SettingError, setting
from ...training import DivergenceError
from .common import ci, load_data
from .delayed import RULES, pev_delay, rnn_setting, train_delayed_rnn
from ..base import Experiment, RunContext, register


@dataclass
class OjaRnnGridConfig:
    """The Fig. 5 RNN over leak x rate (and the Oja rate), scored on a validation split of the training images."""

    dataset: str = rnn_setting("dataset", "mnist")
    n_train: int = setting(60000, ge=2, le=10_000_000, doc="training images, a fixed random subset (data_seed) of "
                                                           "the training split (n_val of them held out)")
    n_val: int = setting(1000, ge=1, le=10_000_000, doc="validation trials held out of the n_train images (accuracy "
                                                        "and PEV are scored on them)")
    n_samples: int = rnn_setting("n_samples", 18000)
    n_hidden: int = rnn_setting("n_hidden", 64)
    t_total: int = rnn_setting("t_total", 50)
    t_stim: int = rnn_setting("t_stim", 5)
    alphas: tuple[float, ...] = setting((0.05, 0.1, 0.2), gt=0, le=1, doc="leaks alpha of the grid, in (0, 1]")
    etas: tuple[float, ...] = setting((0.0025, 0.005, 0.01, 0.02), gt=0,
                                      doc="learning rates eta of the grid (the same for both rules in a cell)")
    eta_oja: float = setting(0.003, gt=0, doc="Oja rate of BPTT+Oja in the alpha x eta grid")
    eta_ojas: tuple[float, ...] = setting((0.001, 0.003, 0.01), gt=0,
                                          doc="Oja rates tried at BPTT+Oja's chosen (alpha, eta)")
    evals: int = setting(6, ge=1, le=10_000, doc="evaluations over training (PEV per time step at each)")
    seeds: int = rnn_setting("seeds", 20, ge=2)  # the claims need 2 seeds per cell
    data_seed: int = rnn_setting("data_seed", 0)

    def validate(self) -> None:
        if self.t_stim >= self.t_total:
            raise SettingError("t_stim", self.t_stim, f"an integer from 1 to t_total - 1 = {self.t_total - 1}",
                               "the delay (t > t_stim) would be empty")
        if self.n_val >= self.n_train:
            raise SettingError("n_val", self.n_val, f"fewer than n_train = {self.n_train}",
                               "no training images would be left")


def key(alpha: float, eta: float, eta_oja: float | None = None) -> str:
    """The cell's measurement prefix: ``alpha=0.05/eta=0.01`` (``/eta_oja=0.003`` for an Oja-rate cell)."""
    return f"alpha={alpha:g}/eta={eta:g}" + ("" if eta_oja is None else f"/eta_oja={eta_oja:g}")


def _cell(cfg: OjaRnnGridConfig, data, spec: str, alpha: float, eta: float, eta_oja: float) -> dict:
    """One cell and rule: final validation accuracy and delay PEV per seed, PEV per time step over training (seed
    mean); a divergence is kept as the cell's status (its values NaN)."""
    try:
        r = train_delayed_rnn(data, spec, alpha=alpha, t_total=cfg.t_total, t_stim=cfg.t_stim,
                              n_hidden=cfg.n_hidden, seeds=cfg.seeds, n_samples=cfg.n_samples, eta=eta,
                              eta_oja=eta_oja, evals=cfg.evals, pev_over_training=True)
    except DivergenceError as err:
        nan = [float("nan")] * cfg.seeds
        return {"status": f"diverged: {err}", "val_accuracy": nan, "pev_delay": nan}
    pev = np.asarray(r["pev"])  # (seeds, T, H)
    return {"status": "ok", "samples": r["samples"], "val_accuracy": np.asarray(r["accuracy"])[:, -1].tolist(),
            "pev_delay": pev_delay(pev, cfg.t_stim).tolist(), "pev_time_final": ci(pev.mean(-1)),
            "pev_time_over_training": np.asarray(r["pev_time_over_training"]).mean(0).tolist()}  # (evals + 1, T)


def _mean_accuracy(cells: dict, name: str) -> float:
    """Mean final validation accuracy of cell ``name`` over its seeds; -inf for a diverged cell."""
    v = np.asarray(cells[name]["val_accuracy"], float)
    return float(np.nanmean(v)) if np.isfinite(v).any() else -np.inf


def run(cfg: OjaRnnGridConfig, ctx: RunContext) -> dict:
    full = load_data(cfg.dataset, ctx.data_dir, cfg.n_train, 1, cfg.data_seed)
    with search_context("oja-rnn-grid"):
        data = full.validation_split(cfg.n_val / len(full.x_train), cfg.data_seed)
        return _run(cfg, ctx, data)


def _run(cfg: OjaRnnGridConfig, ctx: RunContext, data) -> dict:
    cells: dict[str, dict] = {}

    def cell(spec: str, alpha: float, eta: float, eta_oja: float | None = None) -> str:
        name = f"{key(alpha, eta, eta_oja)}/{spec}"
        if name not in cells:
            cells[name] = ctx.unit(name, lambda: _cell(cfg, data, spec, alpha, eta,
                                                        cfg.eta_oja if eta_oja is None else eta_oja))
            r = cells[name]
            ctx.log(f"{name}: " + (f"val. acc. {np.nanmean(r['val_accuracy']):.3f}, delay PEV "
                                   f"{np.nanmean(r['pev_delay']):.3f}" if r["status"] == "ok" else r["status"]))
        return name

    for alpha in cfg.alphas:
        for eta in cfg.etas:
            for spec in RULES:
                cell(spec, alpha, eta)
    alpha = max(cfg.alphas, key=lambda a: max(_mean_accuracy(cells, f"{key(a, e)}/bptt") for e in cfg.etas))
    eta = {spec: max(cfg.etas, key=lambda e, s=spec: _mean_accuracy(cells, f"{key(alpha, e)}/{s}")) for spec in RULES}
    for o in cfg.eta_ojas:  # the grid's own Oja rate is that cell again
        same = f"{key(alpha, eta['bptt+oja'])}/bptt+oja"
        cells[f"{key(alpha, eta['bptt+oja'], o)}/bptt+oja"] = cells[
            same if o == cfg.eta_oja else cell("bptt+oja", alpha, eta["bptt+oja"], o)]
    eta_oja = max(cfg.eta_ojas, key=lambda o: _mean_accuracy(cells, f"{key(alpha, eta['bptt+oja'], o)}/bptt+oja"))
    chosen = {"bptt": f"{key(alpha, eta['bptt'])}/bptt",
              "bptt+oja": f"{key(alpha, eta['bptt+oja'], eta_oja)}/bptt+oja"}
    ctx.log(f"chosen on validation: alpha {alpha:g}; BPTT eta {eta['bptt']:g}; BPTT+Oja eta {eta['bptt+oja']:g}, "
            f"eta_oja {eta_oja:g}")

    # the paired (same alpha, eta, seeds) cell where BPTT+Oja's delay PEV is furthest above BPTT's
    pairs = [(n, n.rsplit("/eta_oja=", 1)[0].replace("/bptt+oja", "") + "/bptt") for n in cells
             if n.endswith("/bptt+oja")]
    gaps = {n: float(np.nanmean(np.asarray(cells[n]["pev_delay"], float) - np.asarray(cells[b]["pev_delay"], float)))
            for n, b in pairs if np.isfinite(np.asarray(cells[n]["pev_delay"], float)
                                             - np.asarray(cells[b]["pev_delay"], float)).any()}
    max_gap = max(gaps, key=gaps.get) if gaps else None
    m: dict[str, list] = {f"{n}/{q}": cells[n][q] for n in cells for q in ("val_accuracy", "pev_delay")}
    for spec, n in chosen.items():
        for q in ("val_accuracy", "pev_delay"):
            m[f"chosen/{spec}/{q}"] = cells[n][q]
    if max_gap is not None:
        m["max_gap/bptt+oja/pev_delay"] = cells[max_gap]["pev_delay"]
        m["max_gap/bptt/pev_delay"] = cells[dict(pairs)[max_gap]]["pev_delay"]
    rows = [{"cell": n.rsplit("/", 1)[0], "rule": n.rsplit("/", 1)[1], "seed": s, "val_accuracy": a, "pev_delay": p,
             "status": c["status"]}
            for n, c in cells.items() for s, (a, p) in enumerate(zip(c["val_accuracy"], c["pev_delay"]))]
    return {"rows": rows, "cells": cells, "measurements": m, "n_classes": int(data.n_classes),
            "chosen": {"alpha": alpha, "eta": eta, "eta_oja": eta_oja, "cells": chosen,
                       "max_gap_cell": max_gap, "pev_gaps": gaps}}


def plot(results: dict, out: Path) -> None:
    from ...plotting import figure, mark_chance, rule_color, save

    cfg, cells, chosen = results["config"], results["cells"], results["chosen"]
    alphas, etas = cfg["alphas"], cfg["etas"]
    fig, axes = figure(2, 2, size=(4.2, 3.4))
    quantities = (("val_accuracy", "validation accuracy"), ("pev_delay", "delay PEV"))
    grids = {(q, spec): np.array([[np.nanmean(np.asarray(cells[f"{key(a, e)}/{spec}"][q], float)) for e in etas]
                                  for a in alphas]) for q, _ in quantities for spec in RULES}
    for j, spec in enumerate(RULES):
        for i, (q, label) in enumerate(quantities):
            grid, both = grids[q, spec], np.concatenate([grids[q, s].ravel() for s in RULES])
            ax = axes[i, j]
            h = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis",  # one scale per row: comparable
                          vmin=np.nanmin(both), vmax=np.nanmax(both))
            for (r, c), v in np.ndenumerate(grid):
                ax.text(c, r, "div." if not np.isfinite(v) else f"{v:.3f}", ha="center", va="center", fontsize=7,
                        color="w")
            if chosen["alpha"] in alphas:
                ax.scatter([etas.index(chosen["eta"][spec])], [alphas.index(chosen["alpha"])], marker="s", s=300,
                           facecolors="none", edgecolors="r", lw=1.5)
            ax.set(xticks=range(len(etas)), xticklabels=[f"{e:g}" for e in etas], yticks=range(len(alphas)),
                   yticklabels=[f"{a:g}" for a in alphas], xlabel="eta", ylabel="alpha",
                   title=f"{spec}: {label}\n(mean of {cfg['seeds']} seeds; red box: chosen)")
            ax.title.set_fontsize(8)
            fig.colorbar(h, ax=ax)
    save(fig, out / "rnn_grid.png")

    fig, axes = figure(1, 3, size=(4.2, 3.4))
    over = {spec: np.asarray(cells[chosen["cells"][spec]].get("pev_time_over_training", [[np.nan]]), float)
            for spec in RULES}  # (evals + 1, T) each
    top = max([float(np.nanmax(p)) for p in over.values() if np.isfinite(p).any()], default=1.0)
    for ax, spec in zip(axes[0], RULES):
        c, p = cells[chosen["cells"][spec]], over[spec]
        s = np.asarray(c.get("samples", [0]), float)
        step = (s[-1] - s[0]) / max(len(s) - 1, 1) or 1.0
        h = ax.imshow(p.T, origin="lower", aspect="auto", cmap="magma", vmin=0, vmax=top,  # one scale for both
                      extent=(s[0] - step / 2, s[-1] + step / 2, 0.5, p.shape[1] + 0.5))
        ax.axhline(cfg["t_stim"] + 0.5, color="w", lw=0.8)
        ax.set(xlabel="training trials", ylabel="time step (white: end of stimulus)",
               title=f"{spec}, {chosen['cells'][spec].rsplit('/', 1)[0]}:\nPEV (mean over neurons, {cfg['seeds']} "
                     f"seeds)")
        ax.title.set_fontsize(8)
        fig.colorbar(h, ax=ax)
    ax = axes[0, 2]
    for spec in RULES:
        c = cells[chosen["cells"][spec]]
        if "pev_time_final" not in c:
            continue
        f = c["pev_time_final"]
        t = np.arange(1, len(f["mean"]) + 1)
        ax.plot(t, f["mean"], color=rule_color(spec), label=f"{spec} (98% CI, n={cfg['seeds']})")
        ax.fill_between(t, f["lo"], f["hi"], color=rule_color(spec), alpha=0.2)
    ax.axvline(cfg["t_stim"] + 0.5, color="k", lw=0.5)
    ax.set(xlabel="time step", ylabel="mean PEV over neurons", title="end of training, chosen settings")
    ax.legend(fontsize=7)
    save(fig, out / "rnn_grid_pev.png")

    fig, axes = figure(1, 2, size=(3.6, 3.0))
    base = cells[chosen["cells"]["bptt"]]
    os_ = cfg["eta_ojas"]
    for ax, (q, label) in zip(axes[0], (("val_accuracy", "validation accuracy"), ("pev_delay", "delay PEV"))):
        lo_hi = [ci(np.asarray(cells[f"{key(chosen['alpha'], chosen['eta']['bptt+oja'], o)}/bptt+oja"][q], float))
                 for o in os_]
        mean = [x["mean"] for x in lo_hi]
        ax.errorbar(os_, mean, yerr=[np.subtract(mean, [x["lo"] for x in lo_hi]),
                                     np.subtract([x["hi"] for x in lo_hi], mean)], marker="o",
                    color=rule_color("bptt+oja"), label=f"bptt+oja (98% CI, n={cfg['seeds']})")
        ax.axhline(np.nanmean(base[q]), color=rule_color("bptt"), ls="--", label="bptt at its chosen eta")
        ax.set(xscale="log", xlabel="eta_oja", ylabel=label,
               title=f"{label}\n(alpha {chosen['alpha']:g}, eta {chosen['eta']['bptt+oja']:g})")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7)
        if q == "val_accuracy" and results.get("n_classes"):
            mark_chance(ax, 1 / results["n_classes"])
    save(fig, out / "rnn_grid_eta_oja.png")


register(Experiment("oja-rnn-grid", "Oja paper Fig. 5 diagnosis: the RNN's leak and rates chosen on validation "
                    "(alpha x eta grid, then the Oja rate), PEV per time step over training", OjaRnnGridConfig, run,
                    plot, paper="oja",
                    quick={"dataset": "digits", "n_train": 600, "n_val": 200, "n_samples": 300, "seeds": 2,
                           "evals": 2, "t_total": 12, "t_stim": 3, "alphas": (0.1, 0.2), "etas": (0.01, 0.02),
                           "eta_ojas": (0.003, 0.01)}))
