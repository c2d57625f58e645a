"""Leaky recurrent network with explicit backprop through time and Oja's rule on W_rec (Oja paper, Fig. 5).

Dynamics (eq. 12-13), h_0 = 0, t = 1..T:

    u_t = W_rec h_{t-1} + W_in x_t,   h_t = (1 - alpha) h_{t-1} + alpha tanh(u_t),   y = W_out h_T.

Delayed classification: the (flattened) image is the input x_t for the first ``t_stim`` of ``t_total``
steps, then x_t = 0; the loss is the cross-entropy of the readout at the last step.

BPTT (eq. 14-15), written out as a reverse scan: with e_out = softmax(y) - onehot,
delta_T = W_out^T e_out = dL/dh_T, and for t = T..1

    e_t = dL/du_t = alpha delta_t * (1 - tanh(u_t)^2),   delta_{t-1} = (1 - alpha) delta_t + W_rec^T e_t,

    dL/dW_rec = sum_t e_t h_{t-1}^T,  dL/dW_in = sum_t e_t x_t^T,  dL/dW_out = e_out h_T^T.

Update of one online step: Delta W = -eta dL/dW for all three matrices, and on W_rec additionally
(docs/choices.md section 1) Delta W_rec += eta_oja sum_t (h_t h_{t-1}^T - h_t h_t^T W_rec). Batch means over a
leading batch axis throughout (batch 1 = online).
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .mlp import init_weight


class RNNParams(NamedTuple):
    W_in: jax.Array   # (n_hidden, n_in)
    W_rec: jax.Array  # (n_hidden, n_hidden)
    W_out: jax.Array  # (n_out, n_hidden)


class RNNTrace(NamedTuple):
    """h: (T+1, batch, n_hidden) with h[0] = h_0 = 0; u: (T, batch, n_hidden) pre-activations; y: (batch, n_out)."""

    h: jax.Array
    u: jax.Array
    y: jax.Array


class LeakyRNN(eqx.Module):
    """Architecture of the leaky tanh RNN (weights live in ``RNNParams``)."""

    n_in: int = eqx.field(static=True)
    n_hidden: int = eqx.field(static=True, default=64)
    n_out: int = eqx.field(static=True, default=10)
    alpha: float = eqx.field(static=True, default=0.2)
    t_total: int = eqx.field(static=True, default=50)
    t_stim: int = eqx.field(static=True, default=5)

    def __check_init__(self) -> None:
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError(f"leak alpha must lie in (0, 1], got {self.alpha}")
        if not 0 < self.t_stim <= self.t_total:
            raise ValueError(f"need 0 < t_stim <= t_total, got t_stim={self.t_stim}, t_total={self.t_total}")

    def init(self, key: jax.Array, method: str = "xavier", scale: float = 1.0) -> RNNParams:
        k1, k2, k3 = jax.random.split(key, 3)
        return RNNParams(init_weight(k1, (self.n_hidden, self.n_in), method, scale),
                         init_weight(k2, (self.n_hidden, self.n_hidden), method, scale),
                         init_weight(k3, (self.n_out, self.n_hidden), method, scale))

    def stimulus_mask(self) -> jax.Array:
        """m_t = 1 while the image is shown (t <= t_stim), else 0; shape (T,)."""
        return (jnp.arange(self.t_total) < self.t_stim).astype(jnp.float32)

    def forward(self, params: RNNParams, x: jax.Array) -> RNNTrace:
        """Run the trial for a batch of images x (batch, n_in)."""
        if x.shape[-1] != self.n_in:
            raise ValueError(f"input has {x.shape[-1]} features but the RNN expects n_in={self.n_in}")
        drive = x @ params.W_in.T  # W_in x, the same for every stimulus step
        h0 = jnp.zeros((x.shape[0], self.n_hidden), x.dtype)

        def body(h, m):
            u = h @ params.W_rec.T + m * drive
            h_new = (1.0 - self.alpha) * h + self.alpha * jnp.tanh(u)
            return h_new, (h_new, u)

        _, (hs, us) = jax.lax.scan(body, h0, self.stimulus_mask())
        hs = jnp.concatenate([h0[None], hs], axis=0)
        return RNNTrace(hs, us, hs[-1] @ params.W_out.T)

    def loss(self, params: RNNParams, x: jax.Array, t: jax.Array) -> jax.Array:
        """Mean cross-entropy of the last-step readout."""
        logp = jax.nn.log_softmax(self.forward(params, x).y, axis=-1)
        return -jnp.mean(jnp.take_along_axis(logp, t[:, None], axis=-1))

    def bptt(self, params: RNNParams, x: jax.Array, t: jax.Array, tr: RNNTrace | None = None
             ) -> tuple[RNNParams, jax.Array]:
        """Gradient of ``loss`` by the explicit BPTT recursion of the module docstring.

        Returns (dL/dW as RNNParams, e of shape (T, batch, n_hidden) with e[t-1] = dL/du_t).
        """
        tr = self.forward(params, x) if tr is None else tr
        B = x.shape[0]
        e_out = (jax.nn.softmax(tr.y, axis=-1) - jax.nn.one_hot(t, self.n_out, dtype=tr.y.dtype)) / B
        delta_T = e_out @ params.W_out

        def back(delta, u):
            e = self.alpha * delta * (1.0 - jnp.tanh(u) ** 2)
            return (1.0 - self.alpha) * delta + e @ params.W_rec, e

        _, es = jax.lax.scan(back, delta_T, tr.u, reverse=True)
        g_rec = jnp.einsum("tbi,tbj->ij", es, tr.h[:-1])
        g_in = jnp.einsum("t,tbi,bj->ij", self.stimulus_mask(), es, x)
        g_out = e_out.T @ tr.h[-1]
        return RNNParams(g_in, g_rec, g_out), es * B

    def oja_term(self, params: RNNParams, tr: RNNTrace) -> jax.Array:
        """sum_t <h_t h_{t-1}^T - h_t h_t^T W_rec> (batch mean), the Oja term on W_rec."""
        pre, post = tr.h[:-1], tr.h[1:]
        B = pre.shape[1]
        hebb = jnp.einsum("tbi,tbj->ij", post, pre) / B
        norm = jnp.einsum("tbi,tbj->ij", post, post) / B
        return hebb - norm @ params.W_rec

    def update(self, params: RNNParams, x: jax.Array, t: jax.Array, eta: float, eta_oja: float
               ) -> tuple[RNNParams, dict]:
        """One learning step: W <- W - eta dL/dW, W_rec += eta_oja * oja_term. Returns new params and metrics."""
        tr = self.forward(params, x)
        g, _ = self.bptt(params, x, t, tr)
        oja = self.oja_term(params, tr)
        new = RNNParams(params.W_in - eta * g.W_in, params.W_rec - eta * g.W_rec + eta_oja * oja,
                        params.W_out - eta * g.W_out)
        correct = jnp.mean(jnp.argmax(tr.y, -1) == t)
        return new, {"correct": correct}

    def accuracy(self, params: RNNParams, x: jax.Array, t: jax.Array) -> jax.Array:
        return jnp.mean(jnp.argmax(self.forward(params, x).y, -1) == t)


def train_rnn(model: LeakyRNN, x_train: np.ndarray, y_train: np.ndarray, *, seeds: list[int], n_samples: int,
              eta: float, eta_oja: float, eval_every: int, x_eval: np.ndarray, y_eval: np.ndarray,
              init_method: str = "xavier", callback=None) -> dict:
    """Online training (batch 1) of every seed at once: jitted ``lax.scan`` chunks, seeds under ``vmap``.

    Each seed draws its initial weights from PRNGKey(seed) and its sample order from numpy's
    default_rng(seed). After each chunk of ``eval_every`` samples the test accuracy, the spectrum of
    W_rec and ``callback(params, samples) -> dict`` are recorded. Non-finite weights raise FloatingPointError.
    Returns {"samples", "accuracy" (seeds, evals), "eig" (seeds, evals, n_hidden) complex as (re, im), "params"}.
    """
    x_train = jnp.asarray(x_train, jnp.float32)
    y_train = jnp.asarray(y_train, jnp.int32)
    x_eval = jnp.asarray(x_eval, jnp.float32)
    y_eval = jnp.asarray(y_eval, jnp.int32)
    n = x_train.shape[0]
    order = np.stack([np.concatenate([np.random.default_rng(s).permutation(n) for _ in range(-(-n_samples // n))])
                      [:n_samples] for s in seeds]).astype(np.int32)
    params = jax.vmap(lambda k: model.init(k, init_method))(jnp.stack([jax.random.PRNGKey(s) for s in seeds]))

    def chunk(p, idx):
        def body(pp, i):
            pp, m = model.update(pp, x_train[i][None], y_train[i][None], eta, eta_oja)
            return pp, m["correct"]

        return jax.lax.scan(body, p, idx)

    run = jax.jit(jax.vmap(chunk))
    acc_fn = jax.jit(jax.vmap(model.accuracy, in_axes=(0, None, None)))
    out = {"samples": [], "accuracy": [], "eig_re": [], "eig_im": [], "extra": []}

    def record(p, done):
        out["samples"].append(int(done))
        out["accuracy"].append(np.asarray(acc_fn(p, x_eval, y_eval)))
        ev = np.linalg.eigvals(np.asarray(p.W_rec, np.float64))
        out["eig_re"].append(ev.real)
        out["eig_im"].append(ev.imag)
        if callback is not None:
            out["extra"].append(callback(p, done))

    record(params, 0)
    for c0 in range(0, n_samples, eval_every):
        params, _ = run(params, jnp.asarray(order[:, c0:c0 + eval_every]))
        bad = [name for name, w in zip(RNNParams._fields, params) if not bool(jnp.all(jnp.isfinite(w)))]
        if bad:
            raise FloatingPointError(f"RNN training diverged before sample {c0 + eval_every}: {', '.join(bad)} "
                                     f"became non-finite (eta={eta}, eta_oja={eta_oja}); lower the learning rates")
        record(params, min(c0 + eval_every, n_samples))
    return {"samples": out["samples"], "accuracy": np.stack(out["accuracy"], 1),
            "eig_re": np.stack(out["eig_re"], 1), "eig_im": np.stack(out["eig_im"], 1), "extra": out["extra"],
            "params": params}


__all__ = ["LeakyRNN", "RNNParams", "RNNTrace", "train_rnn"]
