"""Post-processing of a rule's update as composable ``optax.GradientTransformation`` s.

``Trainer.step`` hands the optimizer the pseudo-gradient g = -Delta W (Delta W from the rule). What happens to it
next is an optax chain, so the order is the user's choice. ``Trainer``'s fields are shortcuts for the common
chain (``Trainer.post_processing``):

    g <- clip_by_global_norm(g, clip_norm)    (optax.clip_by_global_norm)
    g <- g + weight_decay * W                 (``add_decay``: coupled decay, an L2 term)
    g <- g + l1 * sign(W)                     (``add_l1``)
    u <- optimizer(g)                          (identity by default: u = -g, i.e. W <- W + Delta W)
    u <- mask * u                              (``TrainState.mask``: pruned or frozen weights)

For another order, leave those fields at their defaults and pass the chain as the optimizer, e.g. decoupled
decay after Adam (AdamW-style) with clipping first and a warm-up:

    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.scale_by_adam(),
                            optax.add_decayed_weights(1e-4),
                            optax.scale_by_schedule(optax.linear_schedule(0.0, 1.0, 500)), optax.scale(-1e-3))

``freeze(mask)`` zeroes the updates of chosen weights, ``reject_growth(g)`` skips a step that would give a weight
matrix a non-finite entry or a norm above g times its initial norm (the meta-learning inner loop's guard, for
any network), and ``rate_schedule`` turns an optax schedule into ``fit(rate_schedule=...)``, which scales the
rule's own rates (the right place for a schedule when the optimizer is the identity).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax


def add_l1(coef: float) -> optax.GradientTransformation:
    """g <- g + coef * sign(W) (the subgradient of coef * ||W||_1)."""

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("add_l1 needs the parameters: call update(updates, state, params)")
        return jax.tree.map(lambda g, w: g + coef * jnp.sign(w), updates, params), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def add_decay(weight_decay) -> optax.GradientTransformation:
    """g <- g + weight_decay * W (coupled decay; ``optax.add_decayed_weights`` without its shortcut at 0, so a
    grid whose cells vary the decay and a run at decay 0 compile the same arithmetic)."""

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("add_decay needs the parameters: call update(updates, state, params)")
        return jax.tree.map(lambda g, w: g + weight_decay * w, updates, params), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def freeze(mask: Any) -> optax.GradientTransformation:
    """u <- mask * u: a weight with mask 0 never moves (mask: a pytree of arrays like the parameters)."""

    def update(updates, state, params=None):
        return jax.tree.map(jnp.multiply, updates, mask), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


class GrowthState(NamedTuple):
    limits: Any  # per leaf: max_growth * ||W(0)||_F


def reject_growth(max_growth: float) -> optax.GradientTransformation:
    """Skip the whole step (u <- 0) when W + u would have a non-finite entry or ||W_l + u_l||_F > g ||W_l(0)||_F
    for any weight matrix (parameters with ndim >= 2), g = ``max_growth`` > 1."""
    if not max_growth > 1.0:
        raise ValueError(f"max_growth must be > 1, got {max_growth}")

    def init(params):
        return GrowthState(jax.tree.map(lambda w: max_growth * jnp.linalg.norm(w), params))

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("reject_growth needs the parameters: call update(updates, state, params)")
        new = jax.tree.map(jnp.add, params, updates)
        checks = [jnp.all(jnp.isfinite(a)) & ((a.ndim < 2) | (jnp.linalg.norm(a) <= lim))
                  for a, lim in zip(jax.tree.leaves(new), jax.tree.leaves(state.limits))]
        ok = jnp.all(jnp.stack(checks))
        return jax.tree.map(lambda u: jnp.where(ok, u, jnp.zeros_like(u)), updates), state

    return optax.GradientTransformation(init, update)


def post_processing(clip_norm: float | None, weight_decay, l1) -> optax.GradientTransformation:
    """The chain of ``Trainer``'s shortcut fields: clip (when set), coupled decay, L1 (when it acts)."""
    parts = []
    if clip_norm is not None:
        parts.append(optax.clip_by_global_norm(clip_norm))
    parts.append(add_decay(weight_decay))
    if _active(l1):
        parts.append(add_l1(l1))
    return optax.chain(*parts)


def rate_schedule(schedule: optax.Schedule) -> Callable[[jax.Array, int], jax.Array]:
    """An optax schedule (step -> factor, e.g. ``optax.linear_schedule(0.1, 1.0, 500)`` for a warm-up) as
    ``fit(rate_schedule=...)``, which multiplies the rule's rates by it at every step."""
    return lambda step, n_steps: schedule(step)


def _active(value) -> bool:
    """Whether a numeric setting acts: a traced or array value (a grid's cells) or a non-zero number."""
    return not isinstance(value, (int, float)) or value != 0


__all__ = ["add_l1", "add_decay", "freeze", "reject_growth", "post_processing", "rate_schedule"]
