"""Hebbian alignment of a learning signal (Koplow, Poggio & Ziyin, eq. 10; docs/choices.md section 3).

For a layer h_b = W h_a (h_b the pre-activation, h_a the presynaptic activation),
with a batch of B samples, the batch-averaged Hebbian update and learning signal are

    H = <h_b h_a^T> = h_b^T h_a / B        (shape d_b x d_a, batch axis first in code)
    g = <-dLoss/dW>  (or any rule's Delta W without the decay term),

and the alignment is their cosine (eq. 10)

    cos = <g, H>_F / (||g||_F ||H||_F).

Per neuron i (row i, the incoming synapses of post-synaptic neuron i):
cos_i = <g_i, H_i> / (||g_i|| ||H_i||). "All layers" concatenates every layer's
g and H into one vector. The stationary-point quantity of Appendix C.5 is the
per-sample alignment

    C(W) = E_x <g(x), H(x)>_F = -E_x[ ||h_a||^2 (dl/dh_b)^T h_b ],

whose closed form at a stationary point of E[l] + gamma/2 ||W||^2 (no bias) is
C(W*) = gamma c_a ||W*||_F^2 with c_a = E||h_a||^2 (Lemma 1).

All functions are pure JAX and work under jit/vmap; ``rule_alignment`` and
``alignment_callback`` apply them to any plasticlab ``Rule``/``Trainer``, ``StepAlignment`` logs them at the
steps themselves (``Trainer(step_metrics=StepAlignment())`` with ``fit(log_every=...)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

EPS = 1e-12


def hebbian_update(h_b: jax.Array, h_a: jax.Array) -> jax.Array:
    """Batch-averaged Hebbian update H = <h_b h_a^T> of shape (d_b, d_a); h_b (B, d_b), h_a (B, d_a)."""
    if h_b.ndim != 2 or h_a.ndim != 2 or h_b.shape[0] != h_a.shape[0]:
        raise ValueError(f"h_b and h_a must be (batch, d) arrays with the same batch size, got {h_b.shape} and "
                         f"{h_a.shape}")
    return h_b.T @ h_a / h_b.shape[0]


def cosine(a: jax.Array, b: jax.Array, eps: float = EPS) -> jax.Array:
    """<a, b>_F / (||a||_F ||b||_F) over all entries (0 when either is zero)."""
    a, b = jnp.ravel(a), jnp.ravel(b)
    return jnp.dot(a, b) / (jnp.linalg.norm(a) * jnp.linalg.norm(b) + eps)


def row_cosines(a: jax.Array, b: jax.Array, eps: float = EPS) -> jax.Array:
    """Per-neuron (row) cosines of two (d_b, d_a) matrices: shape (d_b,)."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    return jnp.sum(a * b, -1) / (jnp.linalg.norm(a, axis=-1) * jnp.linalg.norm(b, axis=-1) + eps)


def alignment(g: jax.Array, h_b: jax.Array, h_a: jax.Array) -> jax.Array:
    """Layer alignment cos(g, <h_b h_a^T>) (eq. 10) of a (d_b, d_a) signal g."""
    H = hebbian_update(h_b, h_a)
    if g.shape != H.shape:
        raise ValueError(f"learning signal has shape {g.shape} but the Hebbian update <h_b h_a^T> has {H.shape}; "
                         "pass g with shape (d_post, d_pre) and h_b, h_a with a leading batch axis")
    return cosine(g, H)


def layer_alignments(signals: Sequence[jax.Array], taps: Sequence[tuple[jax.Array, jax.Array]],
                     neurons: bool = True) -> dict[str, jax.Array]:
    """Alignment of each layer, of all layers together and (optionally) per neuron.

    signals[l]: learning signal of layer l (d_b, d_a); taps[l] = (h_a, h_b) for that layer.
    Returns {"layer": (L,), "all": scalar, "neuron": tuple of (d_b,) arrays}.
    """
    if len(signals) != len(taps):
        raise ValueError(f"{len(signals)} learning signals but {len(taps)} (h_a, h_b) taps")
    Hs = [hebbian_update(hb, ha) for ha, hb in taps]
    out = {"layer": jnp.stack([cosine(g, H) for g, H in zip(signals, Hs)]),
           "all": cosine(jnp.concatenate([g.ravel() for g in signals]), jnp.concatenate([H.ravel() for H in Hs]))}
    if neurons:
        out["neuron"] = tuple(row_cosines(g, H) for g, H in zip(signals, Hs))
    return out


def stationary_alignment(delta_b: jax.Array, h_b: jax.Array, h_a: jax.Array) -> jax.Array:
    """C(W) = E_x <g(x), H(x)> with g(x) = -delta_b(x) h_a(x)^T, H(x) = h_b(x) h_a(x)^T (Appendix C.5).

    delta_b = dl/dh_b per sample (B, d_b). Equals -mean_x ||h_a||^2 (delta_b . h_b).
    """
    return -jnp.mean(jnp.sum(h_a * h_a, -1) * jnp.sum(delta_b * h_b, -1))


def stationary_closed_form(gamma: float, W: jax.Array, h_a: jax.Array) -> jax.Array:
    """Lemma 1: C(W*) = gamma c_a ||W*||_F^2 with c_a = E||h_a||^2."""
    return gamma * jnp.mean(jnp.sum(h_a * h_a, -1)) * jnp.sum(W * W)


def rule_alignment(params, sig, deltas) -> dict[str, jax.Array]:
    """Alignment of a plasticlab rule's updates (``deltas.W``, no decay) with <y_l h_{l-1}^T> for every layer.

    ``sig`` are the rule's ``Signals`` (sig.fwd.h[l-1] = h_a, sig.fwd.y[l-1] = h_b of layer l).
    """
    taps = [(h, y) for h, y in zip(sig.fwd.h[:-1], sig.fwd.y)]
    return layer_alignments(list(deltas.W), taps)


@dataclass(frozen=True)
class StepAlignment:
    """A ``Trainer.step_metrics``: the Hebbian alignment of a step's learning signal and of its full update.

    With H_l = <y_l h_{l-1}^T> from the step's own forward (pre-activation y_l, input h_{l-1} of layer l):
        align[l]      = cos(Delta W_l, H_l)   (the rule's update, before clipping, decay and optimiser; any
                                               clipping scales every layer by the same factor, so its cosines
                                               are those of the clipped signal)
        align_full[l] = cos(U_l, H_l)         (U: the weight change the optimiser applied, decay included)
        align_all     = cos(concat_l Delta W_l, concat_l H_l),   wnorm[l] = ||W_l||_F after the step
        neuron, neuron_full: the per-neuron (row) cosines of layer ``neuron_layer`` (1-based; 0: not kept)
    and, when some weights do not learn (an update ``mask`` M_l, 1 where a weight learns: pruned or frozen),
        align_learning[l] = cos(M_l * Delta W_l, M_l * H_l)   (the weights that learn only)
    """

    neuron_layer: int = 0

    def __call__(self, trainer, sig, deltas, updates, params, mask=None) -> dict[str, jax.Array]:
        Hs = [hebbian_update(y, h) for h, y in zip(sig.fwd.h[:-1], sig.fwd.y)]
        m = {"align": jnp.stack([cosine(d, H) for d, H in zip(deltas.W, Hs)]),
             "align_full": jnp.stack([cosine(u, H) for u, H in zip(updates.W, Hs)]),
             "align_all": cosine(jnp.concatenate([d.ravel() for d in deltas.W]),
                                 jnp.concatenate([H.ravel() for H in Hs])),
             "wnorm": jnp.stack([jnp.linalg.norm(w) for w in params.W])}
        if self.neuron_layer:
            l = self.neuron_layer - 1
            m["neuron"] = row_cosines(deltas.W[l], Hs[l])
            m["neuron_full"] = row_cosines(updates.W[l], Hs[l])
        if mask is not None:
            m["align_learning"] = jnp.stack([cosine(M * d, M * H) for M, d, H in zip(mask.W, deltas.W, Hs)])
        return m


def alignment_callback(trainer, x, t, batch_size: int = 256, n_batches: int = 4, seed: int = 0,
                       prefix: str = "hebb") -> Callable:
    """A ``fit(callback=...)`` function logging the alignment of ``trainer.rule`` at the chunk boundaries.

    At each evaluation it draws ``n_batches`` batches of ``batch_size`` from (x, t), computes the rule's
    update (no decay, no noise) on each at the current weights of every seed and returns the mean layer
    alignment as ``{prefix}_layer{l}`` (arrays over seeds) and ``{prefix}_all``.
    """
    x, t = jnp.asarray(x, jnp.float32), jnp.asarray(t)
    rng = np.random.default_rng(seed)

    def one(state, xb, tb):
        sig = trainer.signals(state.params, state.rule_state, xb, tb)
        deltas, _ = trainer.rule.update(trainer.net, state.params, state.rule_state, sig, state.key)
        a = rule_alignment(state.params, sig, deltas)
        return a["layer"], a["all"]

    fn = jax.jit(jax.vmap(jax.vmap(one, in_axes=(None, 0, 0)), in_axes=(0, None, None)))

    def callback(state, samples: int) -> dict:
        idx = rng.integers(0, x.shape[0], size=(n_batches, batch_size))
        lay, al = fn(state, x[idx], t[idx])
        lay, al = np.asarray(lay).mean(1), np.asarray(al).mean(1)
        out = {f"{prefix}_layer{l + 1}": lay[:, l] for l in range(lay.shape[1])}
        out[f"{prefix}_all"] = al
        return out

    return callback
