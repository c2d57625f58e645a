"""An MLP with an optional input front (a transformer encoder or a CNN), batch norm, dropout and pruned / frozen
weights.

``networks.mlp.MLP`` is the plain case; this network adds what the Hebbian-alignment paper's setups need.
Layer l = 1..L of the MLP maps its input a_{l-1} to

    y_l = W_l a_{l-1} (+ b_l),   z_l = BN(y_l) (hidden layers, with ``batchnorm``),   h_l = f(z_l),

the last layer is linear (h_L = y_L). The MLP's input is a_0 = h_0 = front(x) (a ``SeqEncoder`` over token
sequences, or a ``conv_front.ConvFront`` over flat images) or x. In train mode with dropout p (``forward_train``
with a key), a_l = m_l h_l / (1 - p) with m_l ~ Bernoulli(1 - p) for the hidden outputs (l >= 1); otherwise
a_l = h_l. Batch norm uses the batch's own mean and variance (eps 1e-5) in training and evaluation alike;
BN(y) = (y - mu) / sqrt(var + eps) * s + t.

The forward signals are those of ``networks.mlp.Forward`` (h[l] = a_l, the input of layer l + 1 as that layer
sees it; y[l-1] = y_l before batch norm; df[l-1] = f'(z_l), 1 for the output layer). ``forward_train`` also
returns the pullbacks a rule needs where the plain MLP's chain rule does not apply:

    pullback(c)        = c^T dy_L/dP       for every parameter P (front, batch norm, dropout included)
    front_pullback(c0) = c0^T dh_0/dtheta  for the front's parameters theta

Pruned / frozen weights: ``update_mask(key, params)`` is a 0/1 pytree like the parameters in which a fraction
``sparsity + frozen`` of every W is 0 (everything else 1); ``init`` sets the pruned weights (with ``sparsity``)
to 0, and ``training.Trainer`` multiplies the updates and the weight noise by the mask.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from .activations import get_activation
from .conv_front import ConvFront, in_chunks
from .mlp import LayerSizes, init_weight
from .transformer import SeqEncoder

EVAL_CHUNK = 512  # sequences per step of a transformer front's forward pass over a larger batch

BN_EPS = 1e-5


class FrontParams(NamedTuple):
    """W[l] (d_{l+1}, d_l), optional biases b[l], batch-norm (scale, shift) per hidden layer, front arrays."""

    W: tuple[jax.Array, ...]
    b: tuple[jax.Array, ...] | None = None
    bn: tuple[tuple[jax.Array, jax.Array], ...] | None = None
    front: Any = None


class FrontForward(NamedTuple):
    """``networks.mlp.Forward``'s signals of the MLP layers plus the pullbacks of ``forward_train``."""

    h: tuple[jax.Array, ...]
    y: tuple[jax.Array, ...]
    df: tuple[jax.Array, ...]
    pullback: Callable[[jax.Array], FrontParams] | None = None
    front_pullback: Callable[[jax.Array], Any] | None = None

    @property
    def out(self) -> jax.Array:
        return self.h[-1]


@lru_cache(maxsize=None)
def _encoder_static(front: tuple[int, ...]):
    """The non-array part of a ``SeqEncoder(vocab, length, d, heads, layers, d_ff)`` (shared by every instance)."""
    return eqx.partition(SeqEncoder(jax.random.PRNGKey(0), *front), eqx.is_inexact_array)[1]


class FrontMLP(LayerSizes, eqx.Module):
    """Architecture (the weights live in ``FrontParams``); see the module docstring for the equations.

    sizes: (d_0, ..., d_L) of the MLP (d_0 = the front's width d when there is a front); activation: hidden
    activation (the output is linear); front: (vocab, length, d, heads, layers, d_ff) of a ``SeqEncoder``, a
    ``ConvFront`` (whose own ``init`` draws its parameters; ``init``'s method and scale are the MLP's), or None;
    dropout: drop probability of the hidden outputs in train mode; sparsity / frozen: fractions of every W pruned
    to 0 / kept at their initial value.
    """

    sizes: tuple[int, ...] = eqx.field(static=True)
    activation: str = eqx.field(static=True, default="tanh")
    use_bias: bool = eqx.field(static=True, default=False)
    batchnorm: bool = eqx.field(static=True, default=False)
    dropout: float = eqx.field(static=True, default=0.0)
    sparsity: float = eqx.field(static=True, default=0.0)
    frozen: float = eqx.field(static=True, default=0.0)
    front: tuple[int, ...] | ConvFront | None = eqx.field(static=True, default=None)

    def __check_init__(self) -> None:
        if len(self.sizes) < 2:
            raise ValueError(f"an MLP needs at least input and output sizes, got sizes={self.sizes}")
        if not (0 <= self.dropout < 1 and 0 <= self.sparsity and 0 <= self.frozen and self.sparsity + self.frozen < 1):
            raise ValueError("dropout and sparsity + frozen are fractions in [0, 1)")
        width = self.front.width if isinstance(self.front, ConvFront) else \
            None if self.front is None else self.front[2]
        if width is not None and width != self.sizes[0]:
            raise ValueError(f"the MLP's input size {self.sizes[0]} must equal the front's width {width}")
        get_activation(self.activation)

    @property
    def input_width(self) -> int:
        """Features of one input sample: the token sequence length (flat image size) with a front, else d_0."""
        if isinstance(self.front, ConvFront):
            return self.front.input_width
        return self.front[1] if self.front is not None else self.sizes[0]

    def init(self, key: jax.Array, method: str = "uniform_fanin", scale: float = 1.0) -> FrontParams:
        """Fresh parameters (W from the first half of ``key``, the front from the second); biases and batch-norm
        shifts 0, scales 1; pruned weights 0."""
        k_w, k_f = jax.random.split(key)
        keys = jax.random.split(k_w, self.n_layers)
        W = tuple(init_weight(k, (o, i), method, scale) for k, i, o in zip(keys, self.sizes[:-1], self.sizes[1:]))
        b = tuple(jnp.zeros((o,)) for o in self.sizes[1:]) if self.use_bias else None
        bn = tuple((jnp.ones((o,)), jnp.zeros((o,))) for o in self.sizes[1:-1]) if self.batchnorm else None
        front = None
        if isinstance(self.front, ConvFront):
            front = self.front.init(k_f)
        elif self.front is not None:
            front = eqx.partition(SeqEncoder(k_f, *self.front), eqx.is_inexact_array)[0]
        params = FrontParams(W, b, bn, front)
        if self.sparsity > 0:
            mask = self.update_mask(key, params)
            params = params._replace(W=tuple(w * m for w, m in zip(W, mask.W)))
        return params

    def update_mask(self, key: jax.Array, params: FrontParams) -> FrontParams | None:
        """0/1 mask of the weights that learn (None when every weight does), drawn from the init ``key``."""
        frac = self.sparsity + self.frozen
        if frac <= 0:
            return None
        keys = jax.random.split(jax.random.fold_in(key, 1), self.n_layers)
        ones = jax.tree.map(jnp.ones_like, params)
        return ones._replace(W=tuple(jax.random.bernoulli(k, 1.0 - frac, w.shape).astype(w.dtype)
                                     for k, w in zip(keys, params.W)))

    def _front(self, front: Any, x: jax.Array) -> jax.Array:
        if isinstance(self.front, ConvFront):
            return self.front(front, x)
        encoder = eqx.combine(front, _encoder_static(self.front))
        return in_chunks(encoder.batch, x, EVAL_CHUNK)  # a whole validation set: attention's memory bounded

    def _layers(self, params: FrontParams, h: jax.Array, key: jax.Array | None):
        """y_L and the MLP's (h, y, df) from its input h_0 (dropout only with a key)."""
        act = get_activation(self.activation)
        hs, ys, dfs = [], [], []
        for l in range(self.n_layers):
            if key is not None and self.dropout > 0 and l > 0:
                key, k = jax.random.split(key)
                keep = jax.random.bernoulli(k, 1.0 - self.dropout, h.shape)
                h = jnp.where(keep, h / (1.0 - self.dropout), 0.0)
            hs.append(h)
            y = h @ params.W[l].T
            if params.b is not None:
                y = y + params.b[l]
            last = l == self.n_layers - 1
            z = y
            if params.bn is not None and not last:
                s, t = params.bn[l]
                mu, var = jnp.mean(y, 0), jnp.var(y, 0)
                z = (y - mu) / jnp.sqrt(var + BN_EPS) * s + t
            ys.append(y)
            dfs.append(jnp.ones_like(z) if last else act.df(z))
            h = z if last else act.f(z)
        hs.append(h)
        return ys[-1], (tuple(hs), tuple(ys), tuple(dfs))

    def forward(self, params: FrontParams, x: jax.Array) -> FrontForward:
        """Evaluation forward (no dropout, no pullbacks) of a batch x (B, d_0), (B, T) tokens with a transformer
        front, (B, H W C) flat images with a CNN front."""
        h0 = self._front(params.front, x) if self.front is not None else x
        _, (h, y, df) = self._layers(params, h0, None)
        return FrontForward(h, y, df)

    def forward_train(self, params: FrontParams, x: jax.Array, key: jax.Array | None = None) -> FrontForward:
        """Training forward (dropout when ``key`` is given) with ``pullback`` and ``front_pullback``."""
        head = params._replace(front=None)
        if self.front is None:
            _, head_pb, (h, y, df) = jax.vjp(lambda p: self._layers(p, x, key), head, has_aux=True)
            return FrontForward(h, y, df, lambda c: head_pb(c)[0])
        h0, front_pb = jax.vjp(lambda f: self._front(f, x), params.front)
        _, head_pb, (h, y, df) = jax.vjp(lambda p, a: self._layers(p, a, key), head, h0, has_aux=True)

        def pullback(c: jax.Array) -> FrontParams:
            d_head, d_h0 = head_pb(c)
            return d_head._replace(front=front_pb(d_h0)[0])

        return FrontForward(h, y, df, pullback, lambda c0: front_pb(c0)[0])
