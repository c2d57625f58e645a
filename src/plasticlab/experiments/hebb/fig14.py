"""hebb-fig14: SGD on the SRE with input noise: gamma x sigma heatmap of the Hebbian alignment and its slices
(Fig. 14)."""

from __future__ import annotations

from ...claims.hebb import FIG14_GAMMAS, FIG14_SIGMAS
from ..base import register
from .grid import phase_experiment, phase_variant

HebbFig14Config = phase_variant("HebbFig14Config", __name__, "sgd", "input", FIG14_GAMMAS, FIG14_SIGMAS, 0.1,
                                "learning rate (as hebb-fig4)")

register(phase_experiment("hebb-fig14", "fig14", HebbFig14Config,
                          "SGD on the SRE with input noise: gamma x sigma heatmap of the Hebbian alignment and "
                          "its slices (Fig. 14)"))
