"""Curl descent (Ninou, Kadmon & Cayco-Gajic): error-driven updates with sign-flipped presynaptic neurons.

For every layer l, with e_l the layer error of the feedback pathway (GD/backprop or DFA),

    Delta W_l = -lr <e_l h_{l-1}^T> D_l,    D_l = diag(d_l), d_l in {+1, -1}^{d_{l-1}},

i.e. all synapses leaving a "rule-flipped" presynaptic neuron j (d_{l,j} = -1) follow the opposite sign.
For y = W2 f(W1 x) this is eq. 5: Delta W1 = -lr (W2^T e * f') x^T D1, Delta W2 = -lr e h^T D2. The flips are
drawn once in ``init`` by fractions ``alphas[l-1]`` (alpha_h = alphas[0] over the M inputs, alpha_r =
alphas[1] over the N hidden neurons) or given by explicit ``flips`` indices. Biases follow the unflipped rule.

With ``rescale=True`` each weight matrix is brought back to its initial Frobenius norm after the step
(W_l + Delta W_l) ||W_l(0)|| / ||W_l + Delta W_l|| (the authors' code); the initial norms ||W_l(0)|| are part of
the rule state (taken in ``init``), and the returned update is the difference, so this assumes the default
identity optimiser and no weight decay.

This module is the one home of the update's arithmetic. Besides the rule, it holds the kernels of the
vectorised student-teacher simulator (``networks.student_teacher``), written for y = w2 . f(W1 x) with a
vector readout w2 (N,) and a feedback vector b (b = w2 for GD, fixed random for DFA):

    general:     Delta W1 = -lr <((b e) * f'(W1 x)) x^T> D1,   Delta w2 = -lr <e h^T> D2   (``two_layer_delta``)
    linear:      v = w2 W1, e = x v - y, g = <e x>                                       (``linear_gradient``)
                 Delta W1 = -lr (b g^T) D1,  Delta w2 = -lr (W1 g) D2                     (``linear_delta``)
    full batch:  g = C v - r from C = <x x^T>, r = <x y>                                  (``linear_gradient_stats``)
    rescaled:    the linear step and the rescaling in three passes over W1               (``linear_step_rescaled``)

The linear forms are the same matrices as the general one, in O(NM + nM) per step instead of O(nNM); the
rule uses them itself when the network is a linear 2-layer MLP with one output and no biases.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from ..networks.activations import get_activation
from ..networks.mlp import MLP, Params, init_weight
from .base import Rule, Signals, outer_mean
from .feedback import chain_errors


def flipped_update(e: jax.Array, h: jax.Array, d: jax.Array, lr) -> jax.Array:
    """One layer of eq. 5: Delta W = -lr <e h^T> D, D = diag(d), for errors e (n, d_post), inputs h (n, d_pre)."""
    return -lr * outer_mean(e, h) * d[None, :]


def renormalised(w: jax.Array, norm) -> jax.Array:
    """w ||W(0)||_F / ||w||_F: ``w`` brought back to the Frobenius norm ``norm`` (the authors' rescaling)."""
    return w * (norm / jnp.maximum(jnp.linalg.norm(w), 1e-30))


def linear_gradient(W1: jax.Array, w2: jax.Array, x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(g, e) of a linear y_hat = w2 W1 x on a batch x (n, M), y (n,): v = w2 W1, e = x v - y, g = <e x>."""
    e = x @ (w2 @ W1) - y
    return e @ x / x.shape[0], e


def linear_gradient_stats(W1: jax.Array, w2: jax.Array, C: jax.Array, r: jax.Array) -> jax.Array:
    """g = <e x> over a whole data set from its statistics C = <x x^T>, r = <x y>: g = C v - r, v = w2 W1."""
    return C @ (w2 @ W1) - r


def linear_delta(W1: jax.Array, feedback: jax.Array, d1: jax.Array, d2: jax.Array, g: jax.Array,
                 lr) -> tuple[jax.Array, jax.Array]:
    """Eq. 5 for a linear y_hat = w2 W1 x in factored form: Delta W1 = -lr (b g^T) D1, Delta w2 = -lr (W1 g) D2.

    ``feedback`` is b (w2 for GD, the fixed DFA vector otherwise), g = <e x> (``linear_gradient``)."""
    return -lr * jnp.outer(feedback, g) * d1[None, :], -lr * (W1 @ g) * d2


def linear_step_rescaled(W1: jax.Array, w2: jax.Array, feedback: jax.Array, d1: jax.Array, d2: jax.Array,
                         x: jax.Array, y: jax.Array, lr, n1, n2) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One step of eq. 5 for a linear y_hat = w2 W1 x followed by the authors' rescaling, in three passes over W1:

        g = <e x>, gd = g * d1, u = -lr b,  [W1 g, W1 gd]                          (one product with W1)
        W1 + Delta W1 = W1 + u gd^T,   ||W1 + u gd^T||^2 = n1^2 + 2 u.(W1 gd) + |u|^2 |gd|^2
        W1 <- (W1 + u gd^T) n1 / ||W1 + u gd^T||,   w2 <- (w2 - lr (W1 g) * d2) n2 / ||.||

    The norm identity holds because W1 is at norm n1 after the previous step; the same matrices as
    ``linear_delta`` then ``renormalised`` (to float rounding). Returns (W1, w2, e)."""
    g, e = linear_gradient(W1, w2, x, y)
    gd = g * d1
    P = W1 @ jnp.stack([g, gd], axis=1)
    u = -lr * feedback
    sq = n1 * n1 + 2.0 * (u @ P[:, 1]) + (u @ u) * (gd @ gd)
    W1 = (W1 + jnp.outer(u, gd)) * (n1 / jnp.sqrt(jnp.maximum(sq, 1e-30)))
    return W1, renormalised(w2 - lr * P[:, 0] * d2, n2), e


def two_layer_delta(W1: jax.Array, w2: jax.Array, feedback: jax.Array, d1: jax.Array, d2: jax.Array, x: jax.Array,
                    y: jax.Array, lr, activation: str) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(Delta W1, Delta w2, e) of eq. 5 for y_hat = w2 . f(W1 x) on a batch x (n, M), y (n,), e = y_hat - y:

        Delta W1 = -lr <((b e) * f'(W1 x)) x^T> D1,   Delta w2 = -lr <e f(W1 x)^T> D2

    (b = ``feedback``); a linear f uses the factored form (``linear_gradient``, ``linear_delta``)."""
    if activation == "linear":
        g, e = linear_gradient(W1, w2, x, y)
        return (*linear_delta(W1, feedback, d1, d2, g, lr), e)
    act = get_activation(activation)
    a = x @ W1.T
    h = act.f(a)
    e = h @ w2 - y
    delta = (e[:, None] * feedback[None, :]) * act.df(a)
    return flipped_update(delta, x, d1, lr), flipped_update(e[:, None], h, d2, lr)[0], e


class Curl(Rule):
    """Curl descent: error-driven updates whose sign is flipped for chosen presynaptic neurons (see module doc).

    Equation:
        e_L = dLoss/dy_L,  e_l = (W_{l+1}^T e_{l+1}) * f'(y_l)   (feedback_mode="gd")
                           e_l = (B_l e_L) * f'(y_l)             (feedback_mode="dfa", B_l fixed random, d_l x d_L)
        Delta W_l = -lr <e_l h_{l-1}^T> D_l,  D_l = diag(d_l), d_l in {+1, -1}^{d_{l-1}} drawn once in ``init``
        Delta b_l = -lr <e_l>
        rescale=True: Delta W_l <- (W_l + Delta W_l) ||W_l(0)||_F / ||W_l + Delta W_l||_F - W_l

    For a linear y = W2 W1 x with one output and no biases the same matrices are computed in factored form,
    g = <e_L x>: Delta W1 = -lr (b g^T) D1, Delta W2 = -lr (W1 g)^T D2, b = W2 (GD) or B_1 (DFA).

    Parameters:
        lr: learning rate.
        alphas: fraction of flipped presynaptic neurons per layer, alphas[l-1] for W_l (round(alpha d_{l-1})
            neurons drawn at random); for y = W2 f(W1 x) this is (alpha_h, alpha_r). Layers past the tuple,
            or None, are not flipped.
        flips: explicit 0-based indices of the flipped presynaptic neurons per layer, flips[l-1] for W_l
            (an empty tuple flips none); give either alphas or flips.
        feedback_mode: how e_L reaches the hidden layers: "gd" (backprop, W^T) or "dfa" (fixed random B_l).
        rescale: bring every W_l back to its initial Frobenius norm after each step (the authors' code);
            assumes the default identity optimiser and no weight decay.
        init_method: distribution of the DFA feedback matrices B_l (a ``networks.mlp.init_weight`` method;
            unused with "gd").
    """

    lr: float = 0.1
    alphas: tuple[float, ...] | None = eqx.field(static=True, default=None)
    flips: tuple[tuple[int, ...], ...] | None = eqx.field(static=True, default=None)
    feedback_mode: str = eqx.field(static=True, default="gd")
    rescale: bool = eqx.field(static=True, default=False)
    init_method: str = eqx.field(static=True, default="xavier")

    def __check_init__(self) -> None:
        if self.feedback_mode not in ("gd", "dfa"):
            raise ValueError(f"feedback_mode must be 'gd' (backprop errors) or 'dfa', got {self.feedback_mode!r}")
        if self.alphas is not None and self.flips is not None:
            raise ValueError("give either alphas (random fractions) or flips (explicit indices), not both")
        for a in self.alphas or ():
            if not 0.0 <= a <= 1.0:
                raise ValueError(f"flip fractions must lie in [0, 1], got alphas={self.alphas}")

    @property
    def provides_feedback(self) -> bool:
        return True

    def signs(self, key: jax.Array, net: MLP) -> tuple[jax.Array, ...]:
        """d_l for l = 1..L (length d_{l-1}: the presynaptic layer of W_l)."""
        out = []
        keys = jax.random.split(key, net.n_layers)
        for l in range(net.n_layers):
            n = net.sizes[l]
            d = jnp.ones((n,))
            if self.flips is not None and l < len(self.flips) and len(self.flips[l]):
                idx = jnp.asarray(self.flips[l])
                if int(idx.max()) >= n or int(idx.min()) < 0:
                    raise ValueError(f"flip index out of range for layer {l + 1} with {n} presynaptic neurons")
                d = d.at[idx].set(-1.0)
            elif self.alphas is not None and l < len(self.alphas):
                k = int(round(self.alphas[l] * n))
                d = d.at[jax.random.permutation(keys[l], n)[:k]].set(-1.0)
            out.append(d)
        return tuple(out)

    def init(self, key, net, params):
        k1, k2 = jax.random.split(key)
        state = {"d": self.signs(k1, net), "norms": tuple(jnp.linalg.norm(w) for w in params.W)}
        if self.feedback_mode == "dfa":
            keys = jax.random.split(k2, net.n_layers)
            state["B"] = tuple(init_weight(keys[l], (net.sizes[l], net.sizes[-1]), self.init_method)
                               for l in range(1, net.n_layers))
        return state

    def feedback(self, net, params, state, fwd, e_out):
        if self.feedback_mode == "gd":
            return chain_errors(fwd, e_out, (None,) + tuple(w.T for w in params.W[1:]))
        hidden = tuple((e_out @ b.T) * df for b, df in zip(state["B"], fwd.df[:-1]))
        return hidden + (e_out,)

    @staticmethod
    def factored(net: MLP, params: Params) -> bool:
        """Whether ``net`` is a linear 2-layer MLP with one output and no biases (``update`` then uses the
        factored ``linear_delta``, the same matrices at a lower cost)."""
        return (net.n_layers == 2 and net.sizes[-1] == 1 and params.b is None
                and net.activation == "linear" and net.output_activation == "linear")

    def general_deltas(self, state, sig: Signals) -> tuple[jax.Array, ...]:
        """Delta W_l = -lr <e_l h_{l-1}^T> D_l for every layer (any depth and activation)."""
        return tuple(flipped_update(e, h, d, self.lr) for e, h, d in zip(sig.e, sig.fwd.h[:-1], state["d"]))

    def factored_deltas(self, params: Params, state, sig: Signals) -> tuple[jax.Array, jax.Array]:
        """The same matrices for a linear y = W2 W1 x with one output: g = <e_L x>, b = W2 (GD) or B_1 (DFA),
        Delta W1 = -lr (b g^T) D1, Delta W2 = -lr (W1 g)^T D2."""
        w2 = params.W[1][0]
        feedback = w2 if self.feedback_mode == "gd" else state["B"][0][:, 0]
        g = outer_mean(sig.e_out, sig.fwd.h[0])[0]
        dW1, dw2 = linear_delta(params.W[0], feedback, state["d"][0], state["d"][1], g, self.lr)
        return dW1, dw2[None, :]

    def update(self, net, params, state, sig, key):
        dW = self.factored_deltas(params, state, sig) if self.factored(net, params) else self.general_deltas(state, sig)
        if self.rescale:
            dW = tuple(renormalised(w + dw, n0) - w for w, dw, n0 in zip(params.W, dW, state["norms"]))
        db = None if params.b is None else tuple(-self.lr * jnp.mean(e, axis=0) for e in sig.e)
        return Params(dW, db), state
