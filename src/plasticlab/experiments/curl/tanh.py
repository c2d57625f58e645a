"""curl-fig6, curl-fig8, curl-fig9: the phase diagrams and dynamics of tanh networks (Supplementary C, Figs. 6-9).

The same grids as curl-fig3 / curl-fig4 / curl-fig4b (``phase.py``) with tanh student and teacher, 10 seeds per
cell (Figs. 6, 8a) or 20 started next to the teacher (Fig. 8b), and example trajectories of a smaller network
(N_tot = 110) at the paper's cells: c = 0.8, alpha_h = 0.6 (Fig. 7, chaos) and c = 1, alpha_r = 0.6 (Fig. 9,
ascend then re-descend from a 1e-15 perturbation, float64). The boundary drawn is the linear theory's: the paper
finds the tanh boundaries "shifted to lower c values", which the claims read as more linear-stable cells failing
than linear-unstable cells learning.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...settings import setting
from .phase import CurlNearSolutionConfig, CurlPhaseConfig, CurlReadoutConfig, register_phase

_QUICK = {"cs": (0.2, 0.8), "alphas": (0.0, 0.3, 0.6), "total": 50, "epochs": 1000, "seeds": 2,
          "example_epochs": 500, "example_total": 50}


def _tanh(base: type, n_seeds: int, ex_c: float, ex_alpha: float) -> type:
    """``base`` with tanh units, ``n_seeds`` per cell and the paper's example network (110 neurons) at (ex_c,
    ex_alpha)."""

    @dataclass
    class Tanh(base):
        activation: str = setting("tanh", kind="activation", doc="activation of student and teacher (Supp. C: tanh)")
        seeds: int = setting(n_seeds, ge=1, le=1000, doc=f"seeds per cell, vmapped (paper: {n_seeds})")
        example_c: float = setting(ex_c, gt=0, doc="compression ratio of the example trajectories")
        example_alpha: float = setting(ex_alpha, ge=0, le=1, doc="flipped fraction of the curl example")
        example_total: int = setting(110, ge=2, le=100_000, doc="neurons M + N of the example network (paper: 110)")

    Tanh.__name__ = Tanh.__qualname__ = f"Tanh{base.__name__}"
    return Tanh


CurlTanhHiddenConfig = _tanh(CurlPhaseConfig, 10, 0.8, 0.6)
CurlTanhReadoutConfig = _tanh(CurlReadoutConfig, 10, 1.0, 0.6)
CurlTanhNearSolutionConfig = _tanh(CurlNearSolutionConfig, 20, 1.0, 0.6)

register_phase("curl-fig6", "tanh networks, hidden-layer flips: test error and q over (c, alpha_h) against the linear "
               "boundary (Supp. Fig. 6), chaos example at c = 0.8, alpha_h = 0.6 (Fig. 7)", CurlTanhHiddenConfig,
               "hidden", quick=_QUICK,
               results_version=2)  # 2: the peak error of tanh networks NaN (untracked) instead of 0
register_phase("curl-fig8", "tanh networks, readout flips from random initialisations: test error over (c, alpha_r) "
               "against the linear boundary (Supp. Fig. 8a)", CurlTanhReadoutConfig, "readout",
               quick={**_QUICK, "cs": (0.2, 1.0), "alphas": (0.0, 0.1, 0.6)}, results_version=2)
register_phase("curl-fig9", "tanh networks, readout flips next to the teacher (1e-15, float64): peak error over "
               "(c, alpha_r) (Supp. Fig. 8b), ascend-then-re-descend example at c = 1, alpha_r = 0.6 (Fig. 9)",
               CurlTanhNearSolutionConfig, "readout", quick={**_QUICK, "cs": (0.2, 1.0), "alphas": (0.0, 0.1, 0.6)},
               results_version=2)  # 2: the peak error tracked every epoch (it was 0 for tanh networks)
