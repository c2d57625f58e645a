"""Phase-diagram machinery and configs shared by curl-fig3 (hidden-layer flips), curl-fig4 / -fig4b (readout flips)
and their tanh versions curl-fig6 / -fig8 / -fig9."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np

from ...analysis.curl_theory import boundary_curve
from ...plotting import figure, save
from ...settings import setting
from .common import (aggregate, finite_median, grid_matrix, phase_cell_group, phase_measurements,
                     side_of_boundary, trajectory)
from ..base import Experiment, RunContext, register


@dataclass
class CurlPhaseConfig:
    """Grid over compression ratio c = M/N and the fraction alpha of flipped neurons (sweepable tuples)."""

    cs: tuple[float, ...] = setting((0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.25, 1.5), gt=0,
                                    doc="compression ratios c = M/N of the grid (one vmapped batch each)")
    alphas: tuple[float, ...] = setting((0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9), ge=0, le=1,
                                        doc="fractions alpha_h of flipped input neurons of the grid (nested flips)")
    total: int = setting(220, ge=2, le=100_000, doc="neurons M + N of every network (paper: 220)")
    n_train: int = setting(250, ge=1, le=10_000_000, doc="training samples (full batch; paper: 250)")
    epochs: int = setting(10000, ge=1, le=10_000_000, doc="full-batch epochs (paper: 1e5); q averages the "
                                                          "second half")
    lr: float = setting(0.1, gt=0, doc="learning rate (of the mean gradient over the training set)")
    activation: str = setting("linear", kind="activation",
                              doc="activation of student and teacher (the theory's boundary is for linear nets)")
    rescale: bool = setting(True, doc="bring W1, W2 back to their initial Frobenius norms after every step")
    seeds: int = setting(4, ge=1, le=1000, doc="seeds per cell (teacher, data and initial student), vmapped")
    seed: int = setting(0, ge=0, le=2**32 - 1, doc="base seed (JAX PRNG key)")
    example_c: float = setting(0.8, gt=0, doc="compression ratio of the example trajectories (curl and GD)")
    example_alpha: float = setting(0.6, ge=0, le=1, doc="alpha_h of the curl example")
    example_epochs: int = setting(4000, ge=1, le=10_000_000, doc="epochs of the example trajectories")


@dataclass
class CurlReadoutConfig(CurlPhaseConfig):
    """The readout grid (alpha_r) of Fig. 4 / 8: its own c and alpha ranges and example cell."""

    cs: tuple[float, ...] = setting((0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.25, 1.5, 2.0, 3.0), gt=0,
                                    doc="compression ratios c = M/N of the grid (one vmapped batch each)")
    alphas: tuple[float, ...] = setting((0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8), ge=0, le=1,
                                        doc="fractions alpha_r of flipped hidden neurons of the grid (nested flips)")
    example_c: float = setting(1.0, gt=0, doc="compression ratio of the example trajectories (curl and GD)")
    example_alpha: float = setting(0.6, ge=0, le=1, doc="alpha_r of the curl example")


@dataclass
class CurlNearSolutionConfig(CurlReadoutConfig):
    """Students started next to the teacher (Fig. 4b / 8b): the paper's 1e-15 perturbation in float64, 20 seeds."""

    seeds: int = setting(20, ge=1, le=1000, doc="seeds per cell (teacher, data and initial student), vmapped "
                                                 "(paper: 20)")
    near_solution: float = setting(1e-15, ge=0, doc="relative noise of the start at the teacher's weights "
                                                    "(W = W* (1 + eps N(0, 1)); paper: 1e-15)")
    x64: bool = setting(True, doc="simulate in float64 (a 1e-15 perturbation is below float32's resolution)")


def run_phase(cfg: CurlPhaseConfig, ctx: RunContext, layer: str, near_solution: float | None = None) -> dict:
    """The grid (and its two example trajectories) in float64 when ``cfg.x64`` is set, else float32."""
    with jax.enable_x64(bool(getattr(cfg, "x64", False))):
        return _run_phase(cfg, ctx, layer, near_solution)


def _run_phase(cfg: CurlPhaseConfig, ctx: RunContext, layer: str, near_solution: float | None) -> dict:
    rows, curves = [], {}
    for c in cfg.cs:
        ctx.log(f"c = {c}: {len(cfg.alphas)} alphas x {cfg.seeds} seeds, vmapped")
        res = ctx.unit(f"{layer}-c={c}", lambda c=c: phase_cell_group(
            c, cfg.alphas, layer, cfg.total, cfg.seeds, cfg.n_train, cfg.epochs, cfg.lr, cfg.activation,
            cfg.rescale, cfg.seed, near_solution=near_solution))
        rows += res["rows"]
        curves[str(c)] = res["curves"]
    cells = aggregate(rows)
    for r in cells:
        r["theory_side"] = side_of_boundary(r["c"], r["alpha"], layer)
    bc = np.linspace(min(cfg.cs), max(cfg.cs), 200)
    examples = {}
    # the same c for both examples (one compiled shape): curl beyond the boundary vs gradient descent
    for name, (c, a) in {"unstable": (cfg.example_c, cfg.example_alpha), "gd": (cfg.example_c, 0.0)}.items():
        examples[name] = ctx.unit(f"{layer}-trajectory-{name}-c={c}-a={a}", lambda c=c, a=a: trajectory(
            c, a, layer, getattr(cfg, "example_total", None) or cfg.total, cfg.n_train, cfg.example_epochs, cfg.lr,
            cfg.activation, cfg.rescale, cfg.seed, near_solution=near_solution))
    summary = phase_summary(cells, layer)
    ex_cells = ((cfg.example_c, cfg.example_alpha), (cfg.example_c, 0.0))
    for k, v in summary.items():
        ctx.log(f"{k}: {v}")
    return {"rows": rows, "cells": cells, "curves": curves, "examples": examples, "summary": cells,
            "phase_summary": summary,
            "measurements": phase_measurements(rows, layer, ex_cells, random_init=near_solution is None),
            "boundary": {"c": bc.tolist(), "alpha": boundary_curve(bc, layer).tolist()}, "layer": layer}


def phase_summary(cells: list[dict], layer: str) -> dict:
    """Median error and q on each side of the theoretical boundary (and for c > 0.3 above it)."""
    st = [r for r in cells if r["theory_side"] == "stable"]
    un = [r for r in cells if r["theory_side"] == "unstable"]
    un3 = [r for r in un if r["c"] > 0.3 and r["alpha"] > 0]
    def med(rs: list[dict], m: str) -> float:  # NaN when no cell has a finite value (e.g. an untracked peak)
        return finite_median(r[m] for r in rs)

    out = {"cells_stable": len(st), "cells_unstable": len(un),
           "median_error_stable": med(st, "test_error"), "median_error_unstable": med(un, "test_error"),
           "median_q_stable": med(st, "q"), "median_q_unstable_c>0.3": med(un3, "q"),
           "median_error_unstable_c>0.3": med(un3, "test_error"),
           # cells where "learned" (relative test error < 1e-3) coincides with the theory's stable side
           "agreement_with_theory": float(np.mean([(r["test_error"] < 1e-3) == (r["theory_side"] == "stable")
                                                   for r in cells])) if cells else float("nan")}
    if layer == "readout":
        out["median_peak_error_stable"] = med(st, "peak_test_error")
        out["median_peak_error_unstable"] = med(un, "peak_test_error")
    return out


def plot_phase(results: dict, out: Path, name: str) -> None:
    cfg = results["config"]
    cs, alphas = cfg["cs"], cfg["alphas"]
    layer = results["layer"]
    sym = "alpha_h" if layer == "hidden" else "alpha_r"
    metrics = [("test_error", "log10 test error"), ("q", "log10 order parameter q")]
    if layer == "readout":
        metrics.append(("peak_test_error", "log10 peak test error (max over seeds)"))
    fig, ax = figure(1, len(metrics), size=(4.6, 3.6))
    for k, (m, title) in enumerate(metrics):
        Z = np.log10(np.maximum(grid_matrix(results["cells"], cs, alphas, m), 1e-12))
        a = ax[0, k]
        im = a.pcolormesh(np.arange(len(cs)), np.arange(len(alphas)), Z, shading="nearest", cmap="magma")
        fig.colorbar(im, ax=a)
        bcx = np.interp(results["boundary"]["c"], cs, np.arange(len(cs)))
        bcy = np.interp(results["boundary"]["alpha"], alphas, np.arange(len(alphas)))
        a.plot(bcx, bcy, "c-", lw=2, label="theory boundary")
        a.set_xticks(range(len(cs)), [f"{c:g}" for c in cs], rotation=60)
        a.set_yticks(range(len(alphas)), [f"{x:g}" for x in alphas])
        a.set_xlabel("c = M/N")
        a.set_ylabel(sym)
        a.set_title(title, fontsize=9)
    ax[0, 0].legend(fontsize=7, loc="upper right")
    save(fig, out / f"{name}_phase.png")
    fig, ax = figure(1, 4, size=(4.2, 3.4))
    for name_ex, ex in results["examples"].items():
        ep = np.asarray(ex["epochs"])
        ax[0, 0].semilogy(ep, np.maximum(ex["test_error"], 1e-16), label=f"{name_ex} c={ex['c']}, {sym}={ex['alpha']}")
        ax[0, 2].plot(ex["autocorr_lag_epochs"], ex["autocorr"], label=name_ex)
        pcs = np.asarray(ex["pca"])
        ax[0, 3].plot(pcs[:, 0], pcs[:, 1], lw=0.8, label=name_ex)
    ex = results["examples"]["unstable"]
    ax[0, 1].plot(ex["epochs"], ex["weights"], lw=0.7)
    ax[0, 0].set_title("test error", fontsize=9)
    ax[0, 0].legend(fontsize=6)
    ax[0, 1].set_title("weights (unstable example)", fontsize=9)
    ax[0, 2].set_title("weight autocorrelation (2nd half)", fontsize=9)
    ax[0, 2].set_xlabel("lag (epochs)")
    ax[0, 3].set_title("PCA of the weight trajectory", fontsize=9)
    ax[0, 3].legend(fontsize=6)
    save(fig, out / f"{name}_dynamics.png")


def register_phase(name: str, description: str, config: type[CurlPhaseConfig], layer: str, quick: dict,
                   results_version: int = 1) -> None:
    """Register one phase-diagram experiment: ``run_phase`` with the flipped neurons in ``layer`` (students start
    next to the teacher when ``config`` has a ``near_solution`` setting), figures named after the experiment
    (curl-fig3: fig3_phase.png, fig3_dynamics.png); ``results_version``: ``Experiment.results_version``."""
    figures = name.removeprefix("curl-")

    def run(cfg: CurlPhaseConfig, ctx: RunContext) -> dict:
        return run_phase(cfg, ctx, layer, near_solution=getattr(cfg, "near_solution", None))

    def plot(results: dict, out: Path) -> None:
        plot_phase(results, out, figures)

    register(Experiment(name, description, config, run, plot, paper="curl", quick=quick,
                        results_version=results_version))
