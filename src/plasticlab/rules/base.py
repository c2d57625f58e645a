"""The learning-rule abstraction.

A rule sees the forward signals (pre-activations y_l, activations h_l, f'(y_l)),
the feedback signals (errors e_l), the weights and its own state, and returns
weight updates Delta W_l (already multiplied by its own rate) and its new state:

    deltas, state = rule.update(net, params, state, signals, key)

Error-driven rules also provide the feedback pathway that turns the output
error e_L into layer errors e_l (``rule.feedback``). Rules compose by addition:
``BP(lr=0.01) + Oja(lr=0.001)`` adds their updates; at most one summand may
provide feedback. Weight decay, weight noise and optimisers (Adam, ...) belong
to the update step (``plasticlab.training``), not to rules.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from ..networks.mlp import MLP, Forward, Params

State = Any


class Signals(NamedTuple):
    """What a rule may use at one step: forward signals, layer errors e[l-1] = e_l, output error e_L, the
    input batch x and the target batch t (for rules that run a pass of their own, e.g. BPTT), and ``aux``:
    whatever the rule's ``feedback`` computed besides the errors (e.g. SAM's downstream pass), so that no
    rule recomputes a pass."""

    fwd: Forward
    e: tuple[jax.Array, ...] | None
    e_out: jax.Array
    x: jax.Array | None = None
    t: jax.Array | None = None
    aux: Any = None


def zeros_like_params(params: Params) -> Params:
    return jax.tree.map(jnp.zeros_like, params)


def add_params(a: Params, b: Params) -> Params:
    return jax.tree.map(jnp.add, a, b)


def outer_mean(post: jax.Array, pre: jax.Array) -> jax.Array:
    """Batch-averaged outer product <post pre^T> of shape (d_post, d_pre)."""
    return post.T @ pre / post.shape[0]


def prefix_sum(x: jax.Array, axis: int = 0) -> jax.Array:
    """Inclusive prefix sum along ``axis``: out[i] = sum_{j <= i} x[j] (``jnp.cumsum``'s value).

    Computed by ``jax.lax.associative_scan`` (O(n log n) adds): XLA's CPU cumsum is a reduce-window whose work
    grows as n^2 per column: on a 400 x 784 matrix (Sanger's term) 3.7x slower forward, 2.9x for the gradient.
    """
    return jax.lax.associative_scan(jnp.add, x, axis=axis)


class Rule(eqx.Module):
    """Base class of learning rules. Subclasses document their equation."""

    def init(self, key: jax.Array, net: MLP, params: Params) -> State:
        """Initial rule state (feedback weights, traces...); stateless rules return ()."""
        return ()

    @property
    def provides_feedback(self) -> bool:
        return False

    @property
    def stochastic(self) -> bool:
        """Whether ``update`` draws random numbers from its key (the step then splits one off for it)."""
        return False

    def feedback(self, net: MLP, params: Params, state: State, fwd: Forward, e_out: jax.Array) -> tuple[jax.Array, ...] | None:
        """Layer errors (e_1, ..., e_L), or None for rules without a feedback pathway."""
        return None

    def feedback_with_aux(self, net: MLP, params: Params, state: State, fwd: Forward, e_out: jax.Array
                          ) -> tuple[tuple[jax.Array, ...] | None, Any]:
        """(layer errors, aux): ``feedback``'s errors and whatever else that pass computed, which the step hands to
        ``update`` as ``Signals.aux`` so that it is not computed twice (SAM: the downstream pass; the meta rule:
        the errors with e_0). Default: no aux."""
        return self.feedback(net, params, state, fwd, e_out), None

    def update(self, net: MLP, params: Params, state: State, sig: Signals, key: jax.Array | None
               ) -> tuple[Params, State]:
        """(Delta W, new state); ``key`` is None unless the rule is ``stochastic``."""
        raise NotImplementedError

    @property
    def name(self) -> str:
        return type(self).__name__.lower()

    def __add__(self, other: "Rule") -> "Sum":
        left = self.rules if isinstance(self, Sum) else (self,)
        right = other.rules if isinstance(other, Sum) else (other,)
        return Sum(left + right)


class Sum(Rule):
    """Delta W = sum_i Delta W_i over the summed rules; errors come from the one feedback rule."""

    rules: tuple[Rule, ...]

    def __check_init__(self) -> None:
        n = sum(r.provides_feedback for r in self.rules)
        if n > 1:
            raise ValueError("a sum of rules may contain at most one error-driven rule with its own feedback pathway, "
                             f"got {[r.name for r in self.rules if r.provides_feedback]}")

    @property
    def provides_feedback(self) -> bool:
        return any(r.provides_feedback for r in self.rules)

    @property
    def stochastic(self) -> bool:
        return any(r.stochastic for r in self.rules)

    @property
    def name(self) -> str:
        return "+".join(r.name for r in self.rules)

    def init(self, key, net, params):
        keys = jax.random.split(key, len(self.rules))
        return tuple(r.init(k, net, params) for r, k in zip(self.rules, keys))

    def feedback(self, net, params, state, fwd, e_out):
        return self.feedback_with_aux(net, params, state, fwd, e_out)[0]

    def feedback_with_aux(self, net, params, state, fwd, e_out):
        for r, s in zip(self.rules, state):
            if r.provides_feedback:
                return r.feedback_with_aux(net, params, s, fwd, e_out)
        return None, None

    def update(self, net, params, state, sig, key):
        keys = [None] * len(self.rules) if key is None else jax.random.split(key, len(self.rules))
        total, new_state = None, []
        for r, s, k in zip(self.rules, state, keys):
            d, s = r.update(net, params, s, sig, k)
            total = d if total is None else add_params(total, d)
            new_state.append(s)
        return total, tuple(new_state)


def layer_selected(layers: tuple[int, ...] | None, l: int) -> bool:
    """Whether 1-based layer ``l`` is in ``layers`` (None selects every layer)."""
    return layers is None or l in layers
