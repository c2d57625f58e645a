"""Analyses: statistics over seeds, alignment angles, spectra and stability theory."""

from .alignment import angle_degrees, cosine
from .stats import bootstrap_ci, summarize

__all__ = ["angle_degrees", "cosine", "bootstrap_ci", "summarize"]
