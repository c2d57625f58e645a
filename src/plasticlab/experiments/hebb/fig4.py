"""hebb-fig4: gamma x sigma phase diagram of the Hebbian alignment (SGD on SRE), boundary gamma ~ sigma^p (Fig. 4)."""

from __future__ import annotations

from pathlib import Path

from ..base import Experiment, RunContext, register
from .grid import (HebbFig4Config, boundary_measurements, fit_boundary, grid_measurements,  # noqa: F401
                   learned_rows, plot_phase, run_phase, zero_crossings)


def run(cfg: HebbFig4Config, ctx: RunContext) -> dict:
    return run_phase(cfg, ctx)


def plot(results: dict, out: Path) -> None:
    plot_phase(results, out, "fig4_phase_diagram.png")


register(Experiment("hebb-fig4", "gamma x sigma heatmap of the Hebbian alignment (SGD, SRE) with the fitted "
                    "gamma ~ sigma^p boundary and the two slices (Fig. 4)", HebbFig4Config, run, plot,
                    paper="hebb",
                    quick={"n_train": 1024, "n_val": 256, "d": 16, "hidden": (32, 32), "epochs": 12.0,
                           "batch_size": 64, "log_every": 8, "window": 40,
                           "lr": 0.2, "max_epochs": None}))  # the default gamma x sigma grid: the cells the claims name
