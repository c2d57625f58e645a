"""oja-fig5: leaky tanh RNN on delayed MNIST, BPTT vs BPTT+Oja on W_rec (Oja paper Fig. 5).

Each trial shows the flattened image as x_t for the first ``t_stim`` of ``t_total`` steps (the paper's RNN
receives 784-dimensional inputs), then x_t = 0; the class is read out from h_T. Online (batch 1) learning;
all seeds of a rule train together through the library driver (``networks.rnn.train_rnn``, i.e. ``training.fit``).
Reported: validation accuracy over training, PEV (bias-corrected omega^2 of a one-way ANOVA of each neuron's
activity on the digit class) per neuron and time step on the test trials, the largest real part of the
eigenvalues of W_rec over training and the imaginary parts of its final spectrum.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...data import search_context
from ...settings import SettingError, setting
from .common import ci, load_data
from .delayed import RULES, pev_delay, rnn_setting, train_delayed_rnn
from ..base import Experiment, RunContext, register


@dataclass
class OjaFig5Config:
    """Delayed classification with a 64-unit leaky RNN, one online step per trial."""

    dataset: str = rnn_setting("dataset", "mnist")
    n_train: int = setting(60000, ge=1, le=10_000_000, doc="training images, a fixed random subset (data_seed) of "
                                                           "the training split; the whole split if it is smaller")
    n_samples: int = rnn_setting("n_samples", 18000)
    n_test: int = setting(1000, ge=1, le=10_000_000, doc="test trials for accuracy and PEV, a fixed random subset "
                                                         "(data_seed) of the test split")
    n_hidden: int = rnn_setting("n_hidden", 64)
    alpha: float = setting(0.05, gt=0, le=1, doc="leak: h <- (1 - alpha) h + alpha tanh(u), in (0, 1] (the paper's "
                                                 "value is lost; 0.05: chosen on validation by oja-rnn-grid)")
    t_total: int = rnn_setting("t_total", 50)
    t_stim: int = rnn_setting("t_stim", 5)
    eta: float = setting(0.01, gt=0, doc="learning rate of both rules (those eta_per_rule does not name); 0.01: "
                                         "each rule's choice on validation (oja-rnn-grid)")
    eta_per_rule: dict = setting({}, doc="eta of single rules (keys among the rules' choices, values > 0); overrides "
                                         "eta")
    eta_oja: float = setting(0.01, gt=0, doc="learning rate of the Oja term on W_rec (rule bptt+oja); 0.01: chosen on "
                                             "validation (oja-rnn-grid)")
    rules: tuple[str, ...] = setting(RULES, choices=RULES, doc="rules compared, one unit each")
    evals: int = setting(20, ge=1, le=10_000, doc="evaluations over training (every n_samples // evals trials)")
    seeds: int = rnn_setting("seeds", 20)
    data_seed: int = rnn_setting("data_seed", 0)
    evaluate_on: str = setting("test", choices=("test", "validation"),
                               doc="test: score on n_test test images; validation: hold out n_test of the n_train "
                                   "training images, train on the rest and score on them (to choose rates; the "
                                   "test split is then never read)")

    def validate(self) -> None:
        bad = [k for k, v in self.eta_per_rule.items() if k not in RULES or isinstance(v, bool)
               or not isinstance(v, (int, float)) or not v > 0]
        if bad:
            raise SettingError("eta_per_rule", self.eta_per_rule, f"a JSON object mapping rules ({', '.join(RULES)}) "
                               "to learning rates > 0", f"bad entry {bad[0]!r}")
        if self.t_stim > self.t_total:
            raise SettingError("t_stim", self.t_stim, f"an integer from 1 to t_total={self.t_total}",
                               "the stimulus cannot outlast the trial")


def _train(cfg: OjaFig5Config, data, spec: str) -> dict:
    return train_delayed_rnn(data, spec, alpha=cfg.alpha, t_total=cfg.t_total, t_stim=cfg.t_stim,
                             n_hidden=cfg.n_hidden, seeds=cfg.seeds, n_samples=cfg.n_samples,
                             eta=float(cfg.eta_per_rule.get(spec, cfg.eta)), eta_oja=cfg.eta_oja, evals=cfg.evals)


def run(cfg: OjaFig5Config, ctx: RunContext) -> dict:
    if cfg.evaluate_on == "validation":
        full = load_data(cfg.dataset, ctx.data_dir, cfg.n_train, 1, cfg.data_seed)
        with search_context("oja-fig5 --set evaluate_on=validation"):
            data = full.validation_split(min(cfg.n_test, len(full.x_train) - 1) / len(full.x_train), cfg.data_seed)
            return _run(cfg, ctx, data)
    return _run(cfg, ctx, load_data(cfg.dataset, ctx.data_dir, cfg.n_train, cfg.n_test, cfg.data_seed))


def _run(cfg: OjaFig5Config, ctx: RunContext, data) -> dict:
    rows, out = [], {}
    for spec in cfg.rules:
        ctx.log(f"{spec}: {cfg.seeds} seeds vmapped, {cfg.n_samples} online trials of {cfg.t_total} steps")
        r = ctx.unit(f"rule={spec}", lambda spec=spec: _train(cfg, data, spec))
        acc, eig = np.asarray(r["accuracy"]), np.asarray(r["max_real_eig"])
        pev = np.asarray(r["pev"])
        out[spec] = {**r, "accuracy_ci": ci(acc), "final": ci(acc[:, -1]), "max_real_eig_ci": ci(eig),
                     "max_real_eig_final": ci(eig[:, -1]), "pev_time_ci": ci(pev.mean(-1)),
                     "pev_delay_mean": ci(pev_delay(pev, cfg.t_stim)),
                     "mean_abs_imag_final": ci(np.asarray(r["mean_abs_imag"])[:, -1])}
        for s in range(cfg.seeds):
            rows.append({"rule": spec, "dataset": cfg.dataset, "seed": s, "final_accuracy": float(acc[s, -1]),
                         "max_real_eig": float(eig[s, -1]), "pev_delay": float(pev_delay(pev, cfg.t_stim)[s]),
                         "mean_abs_imag": float(np.asarray(r["mean_abs_imag"])[s, -1])})
        ctx.log(f"  final accuracy {out[spec]['final']['mean']:.3f} [{out[spec]['final']['lo']:.3f}, "
                f"{out[spec]['final']['hi']:.3f}], max Re(eig) {out[spec]['max_real_eig_final']['mean']:.3f} "
                f"[{out[spec]['max_real_eig_final']['lo']:.3f}, {out[spec]['max_real_eig_final']['hi']:.3f}]")
    measurements = fig5_measurements(out, cfg)
    # PEV arrays are large: keep the seed mean only in results.json
    for r in out.values():
        r["pev_mean"] = np.asarray(r.pop("pev")).mean(0).tolist()
    return {"rows": rows, "rules": out, "measurements": measurements, "n_classes": int(data.n_classes)}


def fig5_measurements(out: dict, cfg: OjaFig5Config) -> dict:
    """Per seed, under ``<rule>/``: final_accuracy, max_real_eig (final max Re(eig W_rec)), max_real_eig_absdev
    (|that - its mean over seeds|: the seed-to-seed variability of Fig. 5d), mean_abs_imag (final mean |Im(eig)|)
    pev_delay (mean PEV over neurons and the delay steps t > t_stim) and pev_delay_drift (|mean PEV over neurons
    at the last step - at the first delay step|: how far the information moves over the delay)."""
    m: dict[str, list] = {}
    for spec, r in out.items():
        eig = np.asarray(r["max_real_eig"], float)[:, -1]
        m[f"{spec}/final_accuracy"] = np.asarray(r["accuracy"], float)[:, -1].tolist()
        m[f"{spec}/max_real_eig"] = eig.tolist()
        m[f"{spec}/max_real_eig_absdev"] = np.abs(eig - np.nanmean(eig)).tolist()
        m[f"{spec}/mean_abs_imag"] = np.asarray(r["mean_abs_imag"], float)[:, -1].tolist()
        m[f"{spec}/pev_delay"] = pev_delay(r["pev"], cfg.t_stim).tolist()
        per_step = np.asarray(r["pev"], float).mean(-1)  # (seeds, T): steps 1..T
        m[f"{spec}/pev_delay_drift"] = np.abs(per_step[:, -1] - per_step[:, cfg.t_stim]).tolist()
    return m


def plot(results: dict, out: Path) -> None:
    from ...plotting import curve_with_ci, figure, mark_chance, rule_color, save, spread_label

    rules = results["rules"]
    fig, axes = figure(1, 3, size=(4.4, 3.5))
    for spec, r in rules.items():
        s = np.asarray(r["samples"])
        curve_with_ci(axes[0, 0], s, np.asarray(r["accuracy"]), label=spec, color=rule_color(spec))
        curve_with_ci(axes[0, 1], s, np.asarray(r["max_real_eig"]), label=spec, color=rule_color(spec))
        im = np.asarray(r["eig_im_final"]).ravel()
        re = np.asarray(r["eig_re_final"]).ravel()
        axes[0, 2].scatter(re, im, s=3, alpha=0.4, color=rule_color(spec), label=spec)
    axes[0, 0].set(xlabel="training trials", ylabel="validation accuracy", title="Fig. 5b")
    axes[0, 1].axhline(1.0, color="k", lw=0.5)
    axes[0, 1].set(xlabel="training trials", ylabel="max Re(eig W_rec)", title="Fig. 5d")
    axes[0, 2].set(xlabel="Re(eig)", ylabel="Im(eig)", title="Fig. 5e: final spectra (all seeds)")
    for ax in axes[0]:
        ax.legend(fontsize=7)
    if results.get("n_classes"):  # absent from older runs: no chance line
        mark_chance(axes[0, 0], 1 / results["n_classes"])
    save(fig, out / "fig5_accuracy_eigs.png")
    fig, axes = figure(1, len(rules) + 1, size=(4.0, 3.4))
    for ax, (spec, r) in zip(axes[0], rules.items()):
        p = np.asarray(r["pev_mean"])  # (T, H)
        order = np.argsort(-p.mean(0))
        h = ax.imshow(p[:, order].T, aspect="auto", vmin=0, vmax=max(0.05, float(np.nanmax(p))), cmap="magma")
        ax.axvline(results["config"]["t_stim"] - 0.5, color="w", lw=0.8)
        ax.set(xlabel="time step", ylabel="neuron (sorted)", title=f"Fig. 5c PEV: {spec}")
        fig.colorbar(h, ax=ax)
    ax = axes[0, -1]
    for spec, r in rules.items():
        c = r["pev_time_ci"]
        t = np.arange(1, len(c["mean"]) + 1)
        ax.plot(t, c["mean"], color=rule_color(spec), label=spread_label(spec, results["config"]["seeds"], level=0.98))
        ax.fill_between(t, c["lo"], c["hi"], color=rule_color(spec), alpha=0.2)
    ax.set(xlabel="time step", ylabel="mean PEV over neurons", title="PEV over the trial")
    ax.legend(fontsize=7)
    save(fig, out / "fig5_pev.png")


register(Experiment("oja-fig5", "Oja paper Fig. 5: leaky RNN on delayed MNIST, BPTT vs BPTT+Oja (accuracy, PEV, "
                    "spectrum of W_rec)", OjaFig5Config, run, plot, paper="oja",
                    quick={"dataset": "digits", "n_train": 1000, "n_test": 300, "n_samples": 1500, "seeds": 3,
                           "eta": 0.02, "eta_per_rule": {}, "evals": 5, "t_total": 20}))
