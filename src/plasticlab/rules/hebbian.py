"""Unsupervised (Hebbian) rules acting on each layer's input h_{l-1} and output h_l."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from ..networks.mlp import Params
from .base import Rule, layer_selected, outer_mean


class _LayerwiseHebbian(Rule):
    """Applies ``layer_delta(W_l, h_{l-1}, h_l)`` to the selected layers (1-based; None = all)."""

    lr: float = 1e-3
    layers: tuple[int, ...] | None = eqx.field(static=True, default=None)

    def layer_delta(self, w: jax.Array, pre: jax.Array, post: jax.Array) -> jax.Array:
        raise NotImplementedError

    def update(self, net, params, state, sig, key):
        h = sig.fwd.h
        dW = tuple(self.lr * self.layer_delta(w, h[l - 1], h[l]) if layer_selected(self.layers, l) else jnp.zeros_like(w)
                   for l, w in enumerate(params.W, start=1))
        db = None if params.b is None else tuple(jnp.zeros_like(b) for b in params.b)
        return Params(dW, db), state


class Oja(_LayerwiseHebbian):
    """Oja's subspace rule on the layer output h_l (SPEC.md section 1, eq. 4):

    Delta W_l = lr (<h_l h_{l-1}^T> - <h_l h_l^T> W_l).

    For a linear layer it converges to an orthonormal basis (rows of W) of the
    input's principal subspace. Computed as lr <h_l (h_{l-1} - W_l^T h_l)^T>, the same
    matrix in O(batch d_l d_{l-1}) instead of O(d_l^2 d_{l-1}).
    """

    def layer_delta(self, w, pre, post):
        return outer_mean(post, pre - post @ w)


class Sanger(_LayerwiseHebbian):
    """Sanger's generalized Hebbian algorithm (Oja paper, supplement S6):

    Delta W_l = lr (<h_l h_{l-1}^T> - LT(<h_l h_l^T>) W_l),  LT = lower triangle incl. diagonal.
    For a linear layer the rows of W converge to the ordered principal eigenvectors.
    Small batches (online learning) use the same matrix row by row, row i being
    <h_i (h_{l-1} - sum_{j<=i} h_j W_j)>, which avoids the O(d_l^2 d_{l-1}) product.
    """

    def layer_delta(self, w, pre, post):
        if post.shape[0] <= 16:
            partial = jnp.cumsum(post[:, :, None] * w[None], axis=1)  # (batch, d_l, d_{l-1})
            return jnp.mean(post[:, :, None] * (pre[:, None, :] - partial), axis=0)
        return outer_mean(post, pre) - jnp.tril(outer_mean(post, post)) @ w


class Hebb(_LayerwiseHebbian):
    """Plain Hebbian rule: Delta W_l = lr <h_l h_{l-1}^T> (unstable on its own; pair it with decay)."""

    def layer_delta(self, w, pre, post):
        return outer_mean(post, pre)
