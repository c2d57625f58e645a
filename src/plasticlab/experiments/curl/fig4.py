"""curl-fig4 and curl-fig4b: readout-layer flips (alpha_r): test error, q and peak error over (c, alpha_r) (Fig. 4).

Same grid machinery as curl-fig3 (``phase.py``). ``curl-fig4`` (Fig. 4a) starts every student from a random
initialisation, as the paper's Fig. 4a does; its claims read ``readout/random_init/...``: the share of the stable
cells learned (relative test error < 1e-3) and, beyond the boundary, the initial vs final error. ``curl-fig4b``
(Fig. 4b) starts the students at the teacher's weights perturbed by the paper's relative noise 1e-15, in float64
(JAX x64 for this experiment only; float32 cannot hold a 1e-15 perturbation), with 20 seeds: the peak error over
learning shows whether the solution manifold is unstable (ascend, then re-descend).
"""

from __future__ import annotations

from .phase import CurlNearSolutionConfig, CurlReadoutConfig, register_phase

register_phase("curl-fig4", "curl descent, readout flips from random initialisations: test error, q and peak error "
               "over (c, alpha_r) with the stability boundary (Fig. 4a)", CurlReadoutConfig, "readout",
               quick={"cs": (0.2, 1.0), "alphas": (0.0, 0.1, 0.6), "total": 50, "epochs": 1000, "seeds": 2,
                      "example_epochs": 500})
register_phase("curl-fig4b", "curl descent, readout flips started next to the teacher (1e-15, float64): peak error "
               "over (c, alpha_r), the solution manifold's stability (Fig. 4b)", CurlNearSolutionConfig, "readout",
               quick={"cs": (0.2, 1.0), "alphas": (0.0, 0.1, 0.6), "total": 50, "epochs": 1000, "seeds": 2,
                      "example_epochs": 500})
