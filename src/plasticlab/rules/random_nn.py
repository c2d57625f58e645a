"""RandomNN: a learning signal from a fixed random network that cannot learn (Hebbian paper, appendix C.6).

A fixed random tanh MLP r (d_in -> 128 -> 128 -> 128 -> k=4, linear output) reads the
student's input batch; its output averaged over the batch, z = <r(x)>, is mapped to every
parameter P by a fixed random projection R_P (numel(P) x k): W* = reshape(R_P z). Then

    g(P) = p(W*) s_dir(P) s_red(P, W*) W*
    s_red = sign(||P|| - ||P - W*||)      (add W* when that grows ||P||, subtract it otherwise)
    s_dir = sign(target - ||P||)          (target norm 100: grow below it, shrink above)
    p     = 1 if ||W*|| <= 1 else 1 / (||W*|| + eps)

(norms are Frobenius norms of the flattened parameter), followed by a global-norm clip
of the whole update to ``clip`` (paper: 1). The full update is Delta P = lr (g - gamma P); the
decay belongs to the training step, not to this rule.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from ..networks.mlp import MLP, Params
from .base import Rule


class RandomNNState(NamedTuple):
    net_W: tuple[jax.Array, ...]  # the fixed random MLP's weights
    proj: Any                      # pytree like the student's parameters, leaves (numel, k)


def init_random_nn(key: jax.Array, d_in: int, params: Any, hidden: tuple[int, ...] = (128, 128, 128),
                   k: int = 4) -> RandomNNState:
    """Random generator MLP (uniform fan-in init) and one N(0, 1/k) projection (numel, k) per parameter leaf."""
    k_net, k_proj = jax.random.split(key)
    net = MLP((d_in, *hidden, k), activation="tanh")
    W = net.init(k_net, "uniform_fanin").W
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(k_proj, max(1, len(leaves)))
    proj = [jax.random.normal(kk, (leaf.size, k)) / jnp.sqrt(k) for kk, leaf in zip(keys, leaves)]
    return RandomNNState(W, jax.tree.unflatten(tree, proj))


def generator_output(net_W: tuple[jax.Array, ...], x: jax.Array) -> jax.Array:
    """z = batch mean of the random tanh MLP's (linear) output; x is flattened to (B, -1)."""
    h = x.reshape(x.shape[0], -1).astype(jnp.float32)
    for l, w in enumerate(net_W):
        h = h @ w.T
        if l < len(net_W) - 1:
            h = jnp.tanh(h)
    return jnp.mean(h, axis=0)


def clip_global_norm(tree: Any, max_norm: float | None) -> Any:
    """Scale the whole pytree so its global L2 norm is at most ``max_norm`` (None: unchanged)."""
    if max_norm is None:
        return tree
    norm = jnp.sqrt(sum(jnp.sum(v * v) for v in jax.tree.leaves(tree)))
    scale = jnp.minimum(1.0, max_norm / (norm + 1e-12))
    return jax.tree.map(lambda v: v * scale, tree)


def random_nn_signal(params: Any, x: jax.Array, state: RandomNNState, target_norm: float = 100.0,
                     clip: float | None = 1.0, eps: float = 1e-8) -> Any:
    """The RandomNN learning signal g (same pytree as ``params``), clipped to global norm ``clip``."""
    z = generator_output(state.net_W, x)

    def one(p, R):
        w_star = (R @ z).reshape(p.shape)
        n_star = jnp.linalg.norm(w_star.ravel())
        n_p = jnp.linalg.norm(p.ravel())
        s_red = jnp.sign(n_p - jnp.linalg.norm((p - w_star).ravel()))
        s_dir = jnp.sign(target_norm - n_p)
        scale = jnp.where(n_star <= 1.0, 1.0, 1.0 / (n_star + eps))
        return scale * s_dir * s_red * w_star

    return clip_global_norm(jax.tree.map(one, params, state.proj), clip)


class RandomNN(Rule):
    """RandomNN: a fixed random network's output steers every weight and bias P (Hebbian paper, appendix C.6).

    Equation:
        z = <r(x)>,  W* = reshape(R_P z)         (r: fixed random tanh MLP, R_P: fixed random numel(P) x k)
        g(P) = p(W*) s_dir(P) s_red(P, W*) W*
        s_red = sign(||P|| - ||P - W*||),  s_dir = sign(target_norm - ||P||)
        p(W*) = 1 if ||W*|| <= 1 else 1 / (||W*|| + eps),  eps = 1e-8
        Delta P = lr clip_global_norm(g, clip)

    ||.|| is the Frobenius norm of the flattened parameter, <.> the batch mean, and the clip scales the
    whole update (all parameters together) to global L2 norm at most ``clip``. r reads the network's input
    batch x (``Signals.x``; token sequences as floats) and P runs over every parameter leaf.

    Parameters:
        lr: learning rate.
        target_norm: the parameter norm that s_dir steers towards (paper: 100).
        clip: maximum global L2 norm of g over all parameters (paper: 1; None: no clipping).
        hidden: hidden widths of the fixed random tanh generator r (d_in -> hidden -> k, linear output).
        k: output width of r, i.e. the length of z and the number of columns of every R_P.
    """

    lr: float = 0.01
    target_norm: float = 100.0
    clip: float | None = 1.0
    hidden: tuple[int, ...] = eqx.field(static=True, default=(128, 128, 128))
    k: int = eqx.field(static=True, default=4)

    def init(self, key, net: MLP, params: Params) -> RandomNNState:
        return init_random_nn(key, net.input_width, params, self.hidden, self.k)

    def update(self, net, params, state, sig, key):
        x = sig.fwd.h[0] if sig.x is None else sig.x
        g = random_nn_signal(params, x, state, self.target_norm, self.clip)
        return jax.tree.map(lambda v: self.lr * v, g), state
