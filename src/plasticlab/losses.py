"""Losses with their output error e_L = dLoss/dy_L (per sample), as the rules use it.

Every loss is the mean over the batch of a per-sample loss, so backprop's
update is exactly -lr * grad of ``value``.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from .networks.mlp import Forward


class Loss(NamedTuple):
    """value(fwd, target) -> scalar batch mean; error(fwd, target) -> e_L of shape (batch, d_L)."""

    name: str
    value: Callable[[Forward, jax.Array], jax.Array]
    error: Callable[[Forward, jax.Array], jax.Array]
    classification: bool


def _as_targets(t: jax.Array, n: int) -> jax.Array:
    """Integer labels -> one-hot float vectors; float targets pass through."""
    if jnp.issubdtype(t.dtype, jnp.integer):
        return jax.nn.one_hot(t, n)
    return t


def _ce_value(fwd: Forward, t: jax.Array) -> jax.Array:
    logp = jax.nn.log_softmax(fwd.y[-1], axis=-1)
    return -jnp.mean(jnp.sum(_as_targets(t, logp.shape[-1]) * logp, axis=-1))


def _ce_error(fwd: Forward, t: jax.Array) -> jax.Array:
    """e_L = softmax(y_L) - onehot(t)."""
    y = fwd.y[-1]
    return jax.nn.softmax(y, axis=-1) - _as_targets(t, y.shape[-1])


def _mse_value(fwd: Forward, t: jax.Array) -> jax.Array:
    d = fwd.out - _as_targets(t, fwd.out.shape[-1])
    return 0.5 * jnp.mean(jnp.sum(d * d, axis=-1))


def _mse_error(fwd: Forward, t: jax.Array) -> jax.Array:
    """e_L = (h_L - t) * f'(y_L)."""
    return (fwd.out - _as_targets(t, fwd.out.shape[-1])) * fwd.df[-1]


def _mse_mean_value(fwd: Forward, t: jax.Array) -> jax.Array:
    d = fwd.out - _as_targets(t, fwd.out.shape[-1])
    return jnp.mean(d * d)


def _mse_mean_error(fwd: Forward, t: jax.Array) -> jax.Array:
    """e_L = 2 (h_L - t) * f'(y_L) / d_L (the per-sample error of the mean over batch and units)."""
    out = fwd.out
    return 2.0 * (out - _as_targets(t, out.shape[-1])) * fwd.df[-1] / out.shape[-1]


def _bce_value(fwd: Forward, t: jax.Array) -> jax.Array:
    y = fwd.y[-1]
    return jnp.mean(jnp.sum(jax.nn.softplus(y) - t * y, axis=-1))


def _bce_error(fwd: Forward, t: jax.Array) -> jax.Array:
    """e_L = sigmoid(y_L) - t (multi-label binary cross-entropy)."""
    return jax.nn.sigmoid(fwd.y[-1]) - t


LOSSES: dict[str, Loss] = {
    "cross_entropy": Loss("cross_entropy", _ce_value, _ce_error, True),
    "mse": Loss("mse", _mse_value, _mse_error, False),
    # torch's MSELoss: the squared error averaged over the batch *and* the output units
    "mse_mean": Loss("mse_mean", _mse_mean_value, _mse_mean_error, False),
    "bce": Loss("bce", _bce_value, _bce_error, False),
}


def get_loss(name: str) -> Loss:
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of: {', '.join(LOSSES)}")
    return LOSSES[name]
