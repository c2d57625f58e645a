"""Error-driven rules: backprop and its biologically plausible relatives.

All of them use the same local update for every layer l,

    Delta W_l = -lr <e_l h_{l-1}^T>,   Delta b_l = -lr <e_l>,

(<.> is the batch mean) and differ in how the output error
e_L = dLoss/dy_L reaches the hidden layers:

    BP:  e_l = (W_{l+1}^T e_{l+1}) * f'(y_l)
    FA:  e_l = (B_{l+1} e_{l+1}) * f'(y_l),  B fixed random
    KP:  as FA, with B learning by the transposed update plus decay
    WM:  as FA, with B learning by weight mirroring
    DFA: e_l = (B_l e_L) * f'(y_l),  B_l fixed random of shape (d_l, d_L)
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from ..networks.mlp import MLP, Forward, Params, init_weight
from .base import Rule, Signals, outer_mean


def chain_errors(fwd: Forward, e_out: jax.Array, back: tuple[jax.Array, ...]) -> tuple[jax.Array, ...]:
    """e_L = e_out; e_l = (B_{l+1} e_{l+1}) * f'(y_l) with back[l] = B_{l+1} of shape (d_l, d_{l+1})."""
    L = len(fwd.y)
    errs = [e_out]
    for l in range(L - 1, 0, -1):
        errs.append((errs[-1] @ back[l].T) * fwd.df[l - 1])
    return tuple(reversed(errs))


def pseudo_gradient(params: Params, sig: Signals, lr) -> Params:
    """Delta W_l = -lr <e_l h_{l-1}^T>, Delta b_l = -lr <e_l>."""
    dW = tuple(-lr * outer_mean(e, h) for e, h in zip(sig.e, sig.fwd.h[:-1]))
    db = None if params.b is None else tuple(-lr * jnp.mean(e, axis=0) for e in sig.e)
    return Params(dW, db)


def _random_backward(key: jax.Array, net: MLP, init: str, scale: float) -> tuple[jax.Array, ...]:
    """Fixed random B_{l+1} of shape (d_l, d_{l+1}) for l = 1..L-1 (index 0 is an unused placeholder)."""
    keys = jax.random.split(key, net.n_layers)
    back = [jnp.zeros((0,))]
    for l in range(1, net.n_layers):
        back.append(init_weight(keys[l], (net.sizes[l], net.sizes[l + 1]), init, scale))
    return tuple(back)


class ErrorDriven(Rule):
    """Shared machinery: feedback matrices -> layer errors -> pseudo-gradient update."""

    lr: float = 0.01

    @property
    def provides_feedback(self) -> bool:
        return True

    def backward_matrices(self, params: Params, state) -> tuple[jax.Array, ...]:
        raise NotImplementedError

    def feedback(self, net, params, state, fwd, e_out):
        return chain_errors(fwd, e_out, self.backward_matrices(params, state))

    def update(self, net, params, state, sig, key):
        return pseudo_gradient(params, sig, self.lr), state


class BP(ErrorDriven):
    """Backpropagation: e_l = (W_{l+1}^T e_{l+1}) * f'(y_l); Delta W_l = -lr <e_l h_{l-1}^T>."""

    def backward_matrices(self, params, state):
        return (None,) + tuple(w.T for w in params.W[1:])


class FA(ErrorDriven):
    """Feedback alignment (Lillicrap et al. 2016): e_l = (B_{l+1} e_{l+1}) * f'(y_l), B fixed random.

    B_{l+1} has the shape of W_{l+1}^T and is drawn with ``init`` (default Xavier).
    """

    init_method: str = eqx.field(static=True, default="xavier")
    init_scale: float = eqx.field(static=True, default=1.0)

    def init(self, key, net, params):
        return _random_backward(key, net, self.init_method, self.init_scale)

    def backward_matrices(self, params, state):
        return state


class KP(FA):
    """Kolen-Pollack (Akrout et al. 2019): FA whose B learns by the transposed update.

    Delta W_l = -lr <e_l h_{l-1}^T> - decay W_l,  Delta B_l = -lr <h_{l-1} e_l^T> - decay B_l,
    so W_l - B_l^T shrinks by (1 - decay) every step and B_l -> W_l^T.
    """

    decay: float = 1e-3

    def update(self, net, params, state, sig, key):
        d = pseudo_gradient(params, sig, self.lr)
        dW = tuple(dw - self.decay * w for dw, w in zip(d.W, params.W))
        back = (state[0],) + tuple(b + d.W[l].T - self.decay * b for l, b in enumerate(state[1:], start=1))
        return Params(dW, d.b), back


class WM(FA):
    """Weight mirroring (Akrout et al. 2019): FA whose B learns from injected noise.

    Each step, noise xi_{l} ~ N(0, sigma^2) is driven through W_{l+1}:
    Delta B_{l+1} = lr_mirror <xi_l (W_{l+1} xi_l)^T> - decay_mirror B_{l+1},
    whose mean is lr_mirror sigma^2 W_{l+1}^T - decay_mirror B_{l+1}, so B aligns with W^T
    (and tends to W^T itself when decay_mirror = lr_mirror sigma^2, the default).
    """

    lr_mirror: float = 0.01
    decay_mirror: float = 0.01
    sigma: float = 1.0
    n_noise: int = eqx.field(static=True, default=16)

    def update(self, net, params, state, sig, key):
        d = pseudo_gradient(params, sig, self.lr)
        keys = jax.random.split(key, net.n_layers)
        back = [state[0]]
        for l in range(1, net.n_layers):
            xi = self.sigma * jax.random.normal(keys[l], (self.n_noise, net.sizes[l]))
            resp = xi @ params.W[l].T
            b = state[l]
            back.append(b + self.lr_mirror * outer_mean(xi, resp) - self.decay_mirror * b)
        return d, tuple(back)


class DFA(ErrorDriven):
    """Direct feedback alignment (Nokland 2016): e_l = (B_l e_L) * f'(y_l), B_l fixed random (d_l, d_L)."""

    init_method: str = eqx.field(static=True, default="xavier")
    init_scale: float = eqx.field(static=True, default=1.0)

    def init(self, key, net, params):
        keys = jax.random.split(key, net.n_layers)
        return tuple(init_weight(keys[l], (net.sizes[l], net.sizes[-1]), self.init_method, self.init_scale)
                     for l in range(1, net.n_layers))

    def feedback(self, net, params, state, fwd, e_out):
        hidden = tuple((e_out @ b.T) * df for b, df in zip(state, fwd.df[:-1]))
        return hidden + (e_out,)
