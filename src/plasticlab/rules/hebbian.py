"""Unsupervised (Hebbian) rules acting on each layer's input h_{l-1} and output h_l (<.> is the batch mean)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from ..networks.mlp import Params
from .base import Rule, layer_selected, outer_mean, prefix_sum


class _LayerwiseHebbian(Rule):
    """Applies ``lr * layer_delta(W_l, h_{l-1}, h_l)`` to the selected layers; biases do not change.

    Parameters:
        lr: learning rate of the Hebbian term.
        layers: 1-based indices of the layers l whose W_l learn by this rule (None: every layer, the
            output layer included); the other layers get Delta W_l = 0.
    """

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
    """Oja's subspace rule on the layer output h_l (Oja paper eq. 4; docs/choices.md section 1).

    Equation:
        Delta W_l = lr (<h_l h_{l-1}^T> - <h_l h_l^T> W_l)
                  = lr <h_l (h_{l-1} - W_l^T h_l)^T>          for l in ``layers``
        Delta b_l = 0

    For a linear layer it converges to an orthonormal basis (rows of W) of the
    input's principal subspace. The code evaluates the second form, the same
    matrix in O(batch d_l d_{l-1}) instead of O(d_l^2 d_{l-1}).

    Parameters:
        lr: learning rate of the Oja term (eta_oja in the paper).
        layers: 1-based indices of the layers l whose W_l learn by this rule (None: every layer, the
            output layer included); the other layers get Delta W_l = 0.
    """

    def layer_delta(self, w, pre, post):
        return outer_mean(post, pre - post @ w)


class Sanger(_LayerwiseHebbian):
    """Sanger's generalized Hebbian algorithm (Oja paper, supplement S6; docs/choices.md section 1).

    Equation:
        Delta W_l = lr (<h_l h_{l-1}^T> - LT(<h_l h_l^T>) W_l)     for l in ``layers``
        (Delta W_l)_i = lr <h_{l,i} (h_{l-1} - sum_{j<=i} h_{l,j} W_{l,j})>   (row i; W_{l,j} = row j of W_l)
        Delta b_l = 0
        LT(A) = lower triangle of A including the diagonal

    For a linear layer the rows of W converge to the ordered principal eigenvectors.
    Batches of up to 16 samples (online learning) use the row form, which avoids the
    O(d_l^2 d_{l-1}) product; larger batches the matrix form.

    Parameters:
        lr: learning rate of the Sanger term.
        layers: 1-based indices of the layers l whose W_l learn by this rule (None: every layer, the
            output layer included); the other layers get Delta W_l = 0.
    """

    def layer_delta(self, w, pre, post):
        if post.shape[0] <= 16:
            partial = prefix_sum(post[:, :, None] * w[None], axis=1)  # (batch, d_l, d_{l-1})
            return jnp.mean(post[:, :, None] * (pre[:, None, :] - partial), axis=0)
        return outer_mean(post, pre) - jnp.tril(outer_mean(post, post)) @ w


class Hebb(_LayerwiseHebbian):
    """Plain Hebbian rule (unstable on its own; pair it with weight decay).

    Equation:
        Delta W_l = lr <h_l h_{l-1}^T>     for l in ``layers``
        Delta b_l = 0

    Parameters:
        lr: learning rate of the Hebbian term.
        layers: 1-based indices of the layers l whose W_l learn by this rule (None: every layer, the
            output layer included); the other layers get Delta W_l = 0.
    """

    def layer_delta(self, w, pre, post):
        return outer_mean(post, pre)
