"""curl-fig3: test error and order parameter q over (c, alpha_h) with the theory's boundary (Fig. 3).

The grid machinery is in ``phase.py`` (shared with curl-fig4: ``layer='readout'``, alpha_r).
Linear student-teacher networks with M + N = ``total`` neurons, full-batch curl descent with per-step
rescaling to the initial Frobenius norms; one vmapped batch (alphas x seeds) per compression ratio c.
"""

from __future__ import annotations

from .phase import CurlPhaseConfig, register_phase

register_phase("curl-fig3", "curl descent, hidden-layer flips: test error and order parameter q over (c, alpha_h) "
               "against the random-matrix stability boundary; autocorrelations, PCA", CurlPhaseConfig, "hidden",
               quick={"cs": (0.2, 0.8), "alphas": (0.0, 0.3, 0.6), "total": 50, "epochs": 1000, "seeds": 2,
                      "example_epochs": 500})
