"""curl-fig4: readout-layer flips (alpha_r): test error, q and peak error over (c, alpha_r) (Fig. 4).

Same grid machinery as curl-fig3; students start at the teacher's weights perturbed by a relative
``near_solution`` noise (the paper uses 1e-15 in float64; we run float32, so 1e-6), which makes the peak
error over learning reveal whether the solution manifold is unstable (ascend, then re-descend).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...settings import setting
from .phase import CurlPhaseConfig, register_phase


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


# measurements (per seed, see phase_measurements): the peak error of networks started next to the teacher on each
# side of the boundary (Fig. 4b) and their final error (re-descent). Every cell starts next to the solution, so the
# random-initialisation claims of Fig. 4a (low error below and beyond the boundary) are not measured by this run
# (plasticlab.claims.curl reads "readout/random_init/..." for them).
register_phase("curl-fig4", "curl descent, readout flips: test error, q and peak error over (c, alpha_r) with the "
               "stability boundary; students start next to the teacher", CurlReadoutConfig, "readout",
               quick={"cs": (0.2, 1.0), "alphas": (0.0, 0.1, 0.6), "total": 50, "epochs": 1000, "seeds": 2,
                      "example_epochs": 500})
