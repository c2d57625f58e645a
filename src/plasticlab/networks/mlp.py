"""A multilayer perceptron whose forward pass exposes every signal a learning rule needs.

Notation (docs/choices.md section 0): layer l = 1..L maps h_{l-1} to the pre-activation
y_l = W_l h_{l-1} (+ b_l) and h_l = f_l(y_l); h_0 = x. In code, arrays carry a
leading batch axis, so y_l = h_{l-1} @ W_l^T and W_l has shape (d_l, d_{l-1}).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from .activations import get_activation


class Params(NamedTuple):
    """Weights W[l] of shape (d_{l+1}, d_l) and optional biases b[l] of shape (d_{l+1},)."""

    W: tuple[jax.Array, ...]
    b: tuple[jax.Array, ...] | None = None


class Forward(NamedTuple):
    """Forward signals for a batch.

    h[0] = x and h[l] = f(y_l) for l = 1..L (length L+1); y[l-1] = y_l and
    df[l-1] = f'(y_l) (length L).
    """

    h: tuple[jax.Array, ...]
    y: tuple[jax.Array, ...]
    df: tuple[jax.Array, ...]

    @property
    def out(self) -> jax.Array:
        return self.h[-1]


INITS = ("xavier", "kaiming", "naive", "lecun", "uniform_fanin")


def init_weight(key: jax.Array, shape: tuple[int, int], method: str = "xavier", scale: float = 1.0) -> jax.Array:
    """One weight matrix of shape (fan_out, fan_in).

    xavier: U(-a, a), a = sqrt(6 / (fan_in + fan_out)); kaiming: N(0, 2 / fan_in);
    lecun: N(0, 1 / fan_in); uniform_fanin: U(-1, 1) / sqrt(fan_in);
    naive: N(0, 0.01^2) (the Oja paper's Fig. 3). ``scale`` multiplies the result.
    """
    fan_out, fan_in = shape
    if method == "xavier":
        a = math.sqrt(6.0 / (fan_in + fan_out))
        w = jax.random.uniform(key, shape, minval=-a, maxval=a)
    elif method == "kaiming":
        w = jax.random.normal(key, shape) * math.sqrt(2.0 / fan_in)
    elif method == "lecun":
        w = jax.random.normal(key, shape) * math.sqrt(1.0 / fan_in)
    elif method == "uniform_fanin":
        w = jax.random.uniform(key, shape, minval=-1.0, maxval=1.0) / math.sqrt(fan_in)
    elif method == "naive":
        w = 0.01 * jax.random.normal(key, shape)
    else:
        raise ValueError(f"unknown init {method!r}; choose one of: {', '.join(INITS)}")
    return scale * w


class LayerSizes:
    """``n_layers`` (L) and ``input_width`` (d_0) of anything with ``sizes`` = (d_0, ..., d_L)."""

    sizes: tuple[int, ...]

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    @property
    def input_width(self) -> int:
        """Features of one input sample (d_0)."""
        return self.sizes[0]


class MLP(LayerSizes, eqx.Module):
    """Architecture of a fully connected network (the weights live in ``Params``).

    sizes: (d_0, d_1, ..., d_L). ``activation`` is used in hidden layers and
    ``output_activation`` in layer L (cross-entropy takes the softmax in the loss,
    so keep "linear" there for classification).
    """

    sizes: tuple[int, ...] = eqx.field(static=True)
    activation: str = eqx.field(static=True, default="relu")
    output_activation: str = eqx.field(static=True, default="linear")
    beta: float = eqx.field(static=True, default=10.0)
    use_bias: bool = eqx.field(static=True, default=False)

    def __check_init__(self) -> None:
        if len(self.sizes) < 2:
            raise ValueError(f"an MLP needs at least input and output sizes, got sizes={self.sizes}")
        get_activation(self.activation)
        get_activation(self.output_activation)


    def act(self, layer: int):
        """Activation of layer ``layer`` (1-based, as in the equations)."""
        name = self.output_activation if layer == self.n_layers else self.activation
        return get_activation(name, self.beta)

    def init(self, key: jax.Array, method: str = "xavier", scale: float = 1.0) -> Params:
        """Fresh parameters; biases start at zero."""
        keys = jax.random.split(key, self.n_layers)
        W = tuple(init_weight(k, (o, i), method, scale) for k, i, o in zip(keys, self.sizes[:-1], self.sizes[1:]))
        b = tuple(jnp.zeros((o,)) for o in self.sizes[1:]) if self.use_bias else None
        return Params(W, b)

    def check(self, params: Params) -> None:
        """Raise a ValueError naming the layer whose weight shape does not fit ``sizes``."""
        if len(params.W) != self.n_layers:
            raise ValueError(f"expected {self.n_layers} weight matrices for sizes {self.sizes}, got {len(params.W)}")
        for l, (w, i, o) in enumerate(zip(params.W, self.sizes[:-1], self.sizes[1:]), start=1):
            if tuple(w.shape) != (o, i):
                raise ValueError(f"layer {l}: weight has shape {tuple(w.shape)}, expected (d_out, d_in) = ({o}, {i})")

    def forward(self, params: Params, x: jax.Array) -> Forward:
        """All forward signals for a batch ``x`` of shape (batch, d_0)."""
        if x.shape[-1] != self.sizes[0]:
            raise ValueError(f"input has {x.shape[-1]} features but the network expects {self.sizes[0]}")
        h, ys, dfs = [x], [], []
        for l, w in enumerate(params.W, start=1):
            y = h[-1] @ w.T
            if params.b is not None:
                y = y + params.b[l - 1]
            act = self.act(l)
            ys.append(y)
            dfs.append(act.df(y))
            h.append(act.f(y))
        return Forward(tuple(h), tuple(ys), tuple(dfs))

    def __call__(self, params: Params, x: jax.Array) -> jax.Array:
        """Network output h_L for a batch."""
        return self.forward(params, x).out
