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
    """Shared machinery of the error-driven rules: feedback matrices -> layer errors -> pseudo-gradient update.

    Equation:
        e_L = dLoss/dy_L,  e_l = (B_{l+1} e_{l+1}) * f'(y_l)   (B_{l+1} from ``backward_matrices``)
        Delta W_l = -lr <e_l h_{l-1}^T>,  Delta b_l = -lr <e_l>

    Parameters:
        lr: learning rate of the pseudo-gradient update.
    """

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
    """Backpropagation: layer errors sent back through the transposed forward weights.

    Equation:
        e_L = dLoss/dy_L,  e_l = (W_{l+1}^T e_{l+1}) * f'(y_l)
        Delta W_l = -lr <e_l h_{l-1}^T>,  Delta b_l = -lr <e_l>

    On a network whose training forward returns a ``pullback`` (``networks.front_mlp.FrontMLP``: an input
    front, batch norm, dropout), where the chain above is not the gradient, every parameter P follows the exact
    gradient instead: Delta P = -lr pullback(e_L / B) = -lr dLoss/dP (B: the batch size).

    Parameters:
        lr: learning rate; with the default identity optimiser Delta W = -lr dLoss/dW.
    """

    def backward_matrices(self, params, state):
        return (None,) + tuple(w.T for w in params.W[1:])

    def update(self, net, params, state, sig, key):
        pullback = getattr(sig.fwd, "pullback", None)
        if pullback is None:
            return pseudo_gradient(params, sig, self.lr), state
        grads = pullback(sig.e_out / sig.e_out.shape[0])
        return jax.tree.map(lambda g: -self.lr * g, grads), state


class FA(ErrorDriven):
    """Feedback alignment (Lillicrap et al. 2016): errors sent back through fixed random matrices B.

    Equation:
        e_L = dLoss/dy_L,  e_l = (B_{l+1} e_{l+1}) * f'(y_l),  B_{l+1} fixed random (d_l x d_{l+1})
        Delta W_l = -lr <e_l h_{l-1}^T>,  Delta b_l = -lr <e_l>

    Parameters:
        lr: learning rate of the pseudo-gradient update.
        init_method: distribution of B, drawn once in ``init`` (a ``networks.mlp.init_weight`` method:
            xavier, kaiming, lecun, uniform_fanin, naive).
        init_scale: factor multiplying the drawn B.
    """

    init_method: str = eqx.field(static=True, default="xavier")
    init_scale: float = eqx.field(static=True, default=1.0)

    def init(self, key, net, params):
        return _random_backward(key, net, self.init_method, self.init_scale)

    def backward_matrices(self, params, state):
        return state


class KP(FA):
    """Kolen-Pollack (Akrout et al. 2019): feedback alignment whose B learns by the transposed update.

    Equation:
        e_L = dLoss/dy_L,  e_l = (B_{l+1} e_{l+1}) * f'(y_l),  B_l of shape (d_{l-1} x d_l)
        Delta W_l = -lr <e_l h_{l-1}^T> - decay W_l,  Delta b_l = -lr <e_l>
        Delta B_l = -lr <h_{l-1} e_l^T> - decay B_l   (l = 2..L)

    With the default identity optimiser and no weight decay, W_l - B_l^T shrinks by (1 - decay)
    every step, so B_l -> W_l^T.

    Parameters:
        lr: learning rate of the pseudo-gradient update of W and of the transposed update of B.
        init_method: distribution of the initial B (a ``networks.mlp.init_weight`` method).
        init_scale: factor multiplying the initial B.
        decay: fraction of W and of B removed per step (not multiplied by lr).
    """

    decay: float = 1e-3

    def update(self, net, params, state, sig, key):
        d = pseudo_gradient(params, sig, self.lr)
        dW = tuple(dw - self.decay * w for dw, w in zip(d.W, params.W))
        back = (state[0],) + tuple(b + d.W[l].T - self.decay * b for l, b in enumerate(state[1:], start=1))
        return Params(dW, d.b), back


class WM(FA):
    """Weight mirroring (Akrout et al. 2019): feedback alignment whose B learns from injected noise.

    Equation:
        e_L = dLoss/dy_L,  e_l = (B_{l+1} e_{l+1}) * f'(y_l),  B_{l+1} of shape (d_l x d_{l+1})
        Delta W_l = -lr <e_l h_{l-1}^T>,  Delta b_l = -lr <e_l>
        Delta B_{l+1} = lr_mirror <xi_l (W_{l+1} xi_l)^T> - decay_mirror B_{l+1},  xi_l ~ N(0, sigma^2 I_{d_l})

    <.> over the data batch for W, over ``n_noise`` fresh noise vectors per step for B. The mean of the
    B update is lr_mirror sigma^2 W_{l+1}^T - decay_mirror B_{l+1}, so B aligns with W^T (and tends to
    W^T itself when decay_mirror = lr_mirror sigma^2, the default).

    Parameters:
        lr: learning rate of the pseudo-gradient update of W.
        init_method: distribution of the initial B (a ``networks.mlp.init_weight`` method).
        init_scale: factor multiplying the initial B.
        lr_mirror: learning rate of the mirroring update of B.
        decay_mirror: fraction of B removed per step.
        sigma: standard deviation of the injected noise xi.
        n_noise: number of noise vectors averaged per step.
    """

    lr_mirror: float = 0.01
    decay_mirror: float = 0.01
    sigma: float = 1.0
    n_noise: int = eqx.field(static=True, default=16)

    @property
    def stochastic(self) -> bool:
        return True

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
    """Direct feedback alignment (Nokland 2016): the output error reaches every layer through its own fixed B_l.

    Equation:
        e_L = dLoss/dy_L,  e_l = (B_l e_L) * f'(y_l),  B_l fixed random (d_l x d_L),  l = 1..L-1
        Delta W_l = -lr <e_l h_{l-1}^T>,  Delta b_l = -lr <e_l>

    On a network with an input front (``networks.front_mlp.FrontMLP(front=...)``, e.g. a transformer encoder
    h_0 = front(x)), the front's error e_0 = B_0 e_L (B_0 fixed random, d_0 x d_L, drawn from the first key)
    is backpropagated inside the front: Delta theta = -lr front_pullback(e_0 / B) (B: the batch size).
    The state is (B_1, ..., B_{L-1}), then B_0 with a front.

    Parameters:
        lr: learning rate of the pseudo-gradient update.
        init_method: distribution of B_l, drawn once in ``init`` (a ``networks.mlp.init_weight`` method).
        init_scale: factor multiplying the drawn B_l.
    """

    init_method: str = eqx.field(static=True, default="xavier")
    init_scale: float = eqx.field(static=True, default=1.0)

    def init(self, key, net, params):
        if getattr(net, "batchnorm", False) or getattr(net, "dropout", 0.0):
            raise ValueError("DFA supports plain MLP layers only (no batch norm, no dropout)")
        keys = jax.random.split(key, net.n_layers)
        layers = range(1, net.n_layers) if getattr(net, "front", None) is None else (*range(1, net.n_layers), 0)
        return tuple(init_weight(keys[l], (net.sizes[l], net.sizes[-1]), self.init_method, self.init_scale)
                     for l in layers)

    def feedback(self, net, params, state, fwd, e_out):
        hidden = tuple((e_out @ b.T) * df for b, df in zip(state, fwd.df[:-1]))
        return hidden + (e_out,)

    def update(self, net, params, state, sig, key):
        d = pseudo_gradient(params, sig, self.lr)
        if getattr(net, "front", None) is None:
            return d, state
        e_front = sig.e_out @ state[-1].T
        d_front = sig.fwd.front_pullback(e_front / e_front.shape[0])
        return params._replace(W=d.W, b=d.b, front=jax.tree.map(lambda g: -self.lr * g, d_front)), state
