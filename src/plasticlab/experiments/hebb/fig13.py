"""hebb-fig13: Adam on the SRE with weight noise: gamma x sigma heatmap of the Hebbian alignment and its slices
(Fig. 13)."""

from __future__ import annotations

from ...claims.hebb import FIG13_GAMMAS, FIG13_SIGMAS
from ..base import register
from .grid import phase_experiment, phase_variant

HebbFig13Config = phase_variant("HebbFig13Config", __name__, "adam", "weight", FIG13_GAMMAS, FIG13_SIGMAS, 0.01,
                                "learning rate (Adam; the paper's default 0.01)")

register(phase_experiment("hebb-fig13", "fig13", HebbFig13Config,
                          "Adam on the SRE with weight noise: gamma x sigma heatmap of the Hebbian alignment "
                          "and its slices (Fig. 13)"))
