"""Angles between learning signals and between weight matrices."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def cosine(a, b, eps: float = 1e-12) -> float:
    """Cosine similarity of two arrays flattened: <a, b> / (|a| |b|)."""
    a, b = jnp.ravel(jnp.asarray(a)), jnp.ravel(jnp.asarray(b))
    return float(jnp.dot(a, b) / (jnp.linalg.norm(a) * jnp.linalg.norm(b) + eps))


def angle_degrees(a, b) -> float:
    """Angle between two arrays (flattened), in degrees."""
    return float(np.degrees(np.arccos(np.clip(cosine(a, b), -1.0, 1.0))))
