"""Activation functions with their explicit derivatives f'(y)."""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp


class Activation(NamedTuple):
    """An activation f and its derivative f' (both elementwise)."""

    name: str
    f: Callable[[jax.Array], jax.Array]
    df: Callable[[jax.Array], jax.Array]


def softplus(beta: float = 10.0) -> Activation:
    """f(y) = log(1 + exp(beta y)) / beta,  f'(y) = sigmoid(beta y)."""
    return Activation(f"softplus{beta:g}",
                      lambda y: jax.nn.softplus(beta * y) / beta,
                      lambda y: jax.nn.sigmoid(beta * y))


LEAKY_SLOPE = 0.01


def _sigmoid_df(y: jax.Array) -> jax.Array:
    s = jax.nn.sigmoid(y)
    return s * (1.0 - s)


ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation("relu", jax.nn.relu, lambda y: (y > 0).astype(y.dtype)),
    "tanh": Activation("tanh", jnp.tanh, lambda y: 1.0 - jnp.tanh(y) ** 2),
    "sigmoid": Activation("sigmoid", jax.nn.sigmoid, _sigmoid_df),
    # f(y) = y (y > 0), 0.01 y otherwise (the slope of PyTorch's and JAX's default leaky ReLU)
    "leaky_relu": Activation("leaky_relu", lambda y: jax.nn.leaky_relu(y, LEAKY_SLOPE),
                             lambda y: jnp.where(y > 0, 1.0, LEAKY_SLOPE).astype(y.dtype)),
    "linear": Activation("linear", lambda y: y, jnp.ones_like),
    "softplus": softplus(10.0),
}


def get_activation(name: str, beta: float = 10.0) -> Activation:
    """Look up an activation by name; ``softplus`` uses ``beta`` (default 10)."""
    if name == "softplus":
        return softplus(beta)
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of: {', '.join(sorted(ACTIVATIONS))}")
    return ACTIVATIONS[name]
