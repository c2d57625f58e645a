"""curl-fig4: readout-layer flips (alpha_r): test error, q and peak error over (c, alpha_r) (Fig. 4).

Same grid machinery as curl-fig3; students start at the teacher's weights perturbed by a relative
``near_solution`` noise (the paper uses 1e-15 in float64; we run float32, so 1e-6), which makes the peak
error over learning reveal whether the solution manifold is unstable (ascend, then re-descend).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..settings import setting
from ._curl_common import claim, fmt, measured
from .base import Experiment, RunContext, register
from .curl_fig3 import CurlPhaseConfig, example_note, plot_phase, run_phase


@dataclass
class CurlReadoutConfig(CurlPhaseConfig):
    cs: tuple[float, ...] = setting((0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.25, 1.5, 2.0, 3.0), gt=0,
                                    doc="compression ratios c = M/N of the grid (one vmapped batch each)")
    alphas: tuple[float, ...] = setting((0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8), ge=0, le=1,
                                        doc="fractions alpha_r of flipped hidden neurons of the grid (nested flips)")
    example_c: float = setting(1.0, gt=0, doc="compression ratio of the example trajectories (curl and GD)")
    example_alpha: float = setting(0.6, ge=0, le=1, doc="alpha_r of the curl example")
    near_solution: float = setting(1e-6, ge=0, doc="relative noise of the start at the teacher's weights "
                                                   "(W = W* (1 + eps N(0, 1)); paper: 1e-15 in float64)")


def run(cfg: CurlReadoutConfig, ctx: RunContext) -> dict:
    res = run_phase(cfg, ctx, "readout", near_solution=cfg.near_solution)
    return {**res, "paper": paper_rows(res["phase_summary"], res["examples"]["unstable"], cfg.near_solution)}


def paper_rows(summary: dict, example: dict, near_solution: float) -> list[dict]:
    """Fig. 4 beside ours: error -> 0 below the alpha_r boundary, low error even beyond it, the manifold left
    beyond it (error peak from a start next to the teacher), and the spike-then-re-descend example."""
    e_st, e_un = summary["median_error_stable"], summary["median_error_unstable"]
    p_st, p_un = summary["median_peak_error_stable"], summary["median_peak_error_unstable"]
    n = f"{summary['cells_stable']} stable / {summary['cells_unstable']} unstable cells (theory)"
    te = np.asarray(example["test_error"], float)
    peak = float(np.nanmax(te))
    spike = bool(peak > 100 * max(te[0], 1e-30) and te[-1] < peak / 2)
    left: bool | str
    if not (np.isfinite(p_st) and np.isfinite(p_un)):
        left = "peak error not measured on both sides of the boundary"
    else:
        left = bool(p_un > 1e-3 and p_st < 1e-6)
    return [
        claim("below the boundary the test error converges to 0 (median relative error < 1e-3)",
              measured(e_st, lambda v: v < 1e-3, "no cell below the boundary in this grid"),
              where="Fig. 4a", note=f"median relative test error below the boundary {fmt(e_st)}; {n}"),
        claim("low test error even beyond the boundary (median relative error < 0.1)",
              measured(e_un, lambda v: v < 0.1, "no cell beyond the boundary in this grid"),
              where="Fig. 4a", note=f"median relative test error beyond the boundary {fmt(e_un)}"),
        claim(f"the manifold is unstable beyond the boundary: started at the teacher plus {near_solution:g} relative "
              "noise, the error rises (median peak > 1e-3 beyond, < 1e-6 below)", left, where="Fig. 4b",
              note=f"median peak relative test error below {fmt(p_st)}, beyond {fmt(p_un)}"),
        claim("beyond the boundary the error spikes, then re-descends (peak > 100 x start, final < peak / 2)",
              spike, where="Fig. 4b inset (paper: c = 1, alpha_r = 0.6)", note=example_note(example, "readout")),
    ]


def plot(results: dict, out: Path) -> None:
    plot_phase(results, out, "fig4")


register(Experiment("curl-fig4", "curl descent, readout flips: test error, q and peak error over (c, alpha_r) "
                    "with the stability boundary; students start next to the teacher",
                    CurlReadoutConfig, run, plot, paper="curl",
                    quick={"cs": (0.2, 1.0), "alphas": (0.0, 0.1, 0.6), "total": 50, "epochs": 1000,
                           "seeds": 2, "example_epochs": 500}))
