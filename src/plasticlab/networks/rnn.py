"""Leaky recurrent network with explicit backprop through time and Oja's rule on W_rec (Oja paper, Fig. 5).

Dynamics (eq. 12-13), h_0 = 0, t = 1..T:

    u_t = W_rec h_{t-1} + W_in x_t,   h_t = (1 - alpha) h_{t-1} + alpha tanh(u_t),   y = W_out h_T.

Delayed classification: the (flattened) image is the input x_t for the first ``t_stim`` of ``t_total``
steps, then x_t = 0; the loss is the cross-entropy of the readout at the last step.

BPTT (eq. 14-15), written out as a reverse scan: with the output error e_out = dLoss/dy (softmax(y) - onehot for
the cross-entropy), delta_T = W_out^T e_out = dLoss/dh_T, and for t = T..1

    e_t = dLoss/du_t = alpha delta_t * (1 - tanh(u_t)^2),   delta_{t-1} = (1 - alpha) delta_t + W_rec^T e_t,

    dL/dW_rec = sum_t <e_t h_{t-1}^T>,  dL/dW_in = sum_t m_t <e_t x^T>,  dL/dW_out = <e_out h_T^T>

(<.> the batch mean, m_t the stimulus mask). The learning rules are ``rules.bptt.BPTT`` (Delta W = -eta dL/dW)
and ``rules.bptt.OjaRec`` (Delta W_rec = eta_oja sum_t <h_t h_{t-1}^T - h_t h_t^T W_rec>, docs/choices.md
section 1); train with ``plasticlab.fit`` and ``Trainer(net, rule, loss=RNN_CROSS_ENTROPY)`` (the losses of
``plasticlab.losses`` read an MLP's last pre-activation, ``RNN_CROSS_ENTROPY`` reads the readout y).
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..losses import Loss, get_loss
from .mlp import Forward, init_weight


class RNNParams(NamedTuple):
    W_in: jax.Array   # (n_hidden, n_in)
    W_rec: jax.Array  # (n_hidden, n_hidden)
    W_out: jax.Array  # (n_out, n_hidden)


class RNNTrace(NamedTuple):
    """h: (T+1, batch, n_hidden) with h[0] = h_0 = 0; u: (T, batch, n_hidden) pre-activations; y: (batch, n_out)."""

    h: jax.Array
    u: jax.Array
    y: jax.Array

    @property
    def out(self) -> jax.Array:
        """The network's output, the linear readout y = W_out h_T (what ``Trainer`` reads for the accuracy)."""
        return self.y

    @property
    def readout(self) -> Forward:
        """The readout as a one-layer MLP ``Forward`` (input h_T, pre-activation y, linear: f'(y) = 1), for the
        losses of ``plasticlab.losses``."""
        return Forward((self.h[-1], self.y), (self.y,), (jnp.ones_like(self.y),))


@functools.cache
def readout_loss(name: str = "cross_entropy") -> Loss:
    """The loss ``name`` of ``plasticlab.losses`` on the RNN's readout y (one object per name, so that trainers
    built with it compare equal and ``fit`` reuses its compiled steps)."""
    base = get_loss(name)
    return Loss(name, lambda tr, t: base.value(tr.readout, t), lambda tr, t: base.error(tr.readout, t),
                base.classification)


RNN_CROSS_ENTROPY = readout_loss("cross_entropy")


class LeakyRNN(eqx.Module):
    """Architecture of the leaky tanh RNN (weights live in ``RNNParams``); a network for ``Trainer`` / ``fit``."""

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
        # W_rec^T once, outside the loop: under fit's two vmaps (cells, seeds) XLA copies a transpose taken
        # inside the loop at every time step, which made the whole training step twice as slow
        w_rec_t = params.W_rec.T
        h0 = jnp.zeros((x.shape[0], self.n_hidden), x.dtype)

        def body(h, m):
            u = h @ w_rec_t + m * drive
            h_new = (1.0 - self.alpha) * h + self.alpha * jnp.tanh(u)
            return h_new, (h_new, u)

        _, (hs, us) = jax.lax.scan(body, h0, self.stimulus_mask())
        hs = jnp.concatenate([h0[None], hs], axis=0)
        return RNNTrace(hs, us, hs[-1] @ params.W_out.T)

    def loss(self, params: RNNParams, x: jax.Array, t: jax.Array) -> jax.Array:
        """Mean cross-entropy of the last-step readout."""
        return RNN_CROSS_ENTROPY.value(self.forward(params, x), t)

    def errors(self, params: RNNParams, tr: RNNTrace, e_out: jax.Array) -> jax.Array:
        """e of shape (T, batch, n_hidden), e[t-1] = dLoss/du_t per sample, by the reverse scan of the module
        docstring from the output error e_out = dLoss/dy (batch, n_out)."""

        def back(delta, u):
            e = self.alpha * delta * (1.0 - jnp.tanh(u) ** 2)
            return (1.0 - self.alpha) * delta + e @ params.W_rec, e

        _, es = jax.lax.scan(back, e_out @ params.W_out, tr.u, reverse=True)
        return es

    def gradients(self, x: jax.Array, tr: RNNTrace, e_out: jax.Array, es: jax.Array) -> RNNParams:
        """Batch-mean dL/dW from the per-sample errors: sum_t <e_t h_{t-1}^T>, sum_t m_t <e_t x^T>, <e_out h_T^T>."""
        B = x.shape[0]
        return RNNParams(jnp.einsum("t,tbi,bj->ij", self.stimulus_mask(), es, x) / B,
                         jnp.einsum("tbi,tbj->ij", es, tr.h[:-1]) / B, e_out.T @ tr.h[-1] / B)

    def bptt(self, params: RNNParams, x: jax.Array, t: jax.Array, tr: RNNTrace | None = None
             ) -> tuple[RNNParams, jax.Array]:
        """Gradient of ``loss`` by the explicit BPTT recursion of the module docstring.

        Returns (dL/dW as RNNParams, e of shape (T, batch, n_hidden) with e[t-1] = dL/du_t per sample).
        """
        tr = self.forward(params, x) if tr is None else tr
        e_out = RNN_CROSS_ENTROPY.error(tr, t)
        es = self.errors(params, tr, e_out)
        return self.gradients(x, tr, e_out, es), es

    def oja_term(self, params: RNNParams, tr: RNNTrace) -> jax.Array:
        """sum_t <h_t h_{t-1}^T - h_t h_t^T W_rec> (batch mean), the Oja term on W_rec."""
        pre, post = tr.h[:-1], tr.h[1:]
        B = pre.shape[1]
        hebb = jnp.einsum("tbi,tbj->ij", post, pre) / B
        norm = jnp.einsum("tbi,tbj->ij", post, post) / B
        return hebb - norm @ params.W_rec

    def update(self, params: RNNParams, x: jax.Array, t: jax.Array, eta: float, eta_oja: float
               ) -> tuple[RNNParams, dict]:
        """One learning step written out (a reference for the rules ``BPTT + OjaRec``): W <- W - eta dL/dW,
        W_rec += eta_oja * oja_term. Returns new params and metrics."""
        tr = self.forward(params, x)
        g, _ = self.bptt(params, x, t, tr)
        oja = self.oja_term(params, tr)
        new = RNNParams(params.W_in - eta * g.W_in, params.W_rec - eta * g.W_rec + eta_oja * oja,
                        params.W_out - eta * g.W_out)
        correct = jnp.mean(jnp.argmax(tr.y, -1) == t)
        return new, {"correct": correct}

    def accuracy(self, params: RNNParams, x: jax.Array, t: jax.Array) -> jax.Array:
        return jnp.mean(jnp.argmax(self.forward(params, x).y, -1) == t)


@functools.cache
def _identity_optimizer():
    """One shared ``training.identity_optimizer()``: equal trainers let ``fit`` reuse its compiled chunks
    (a fresh optimizer per trainer compares unequal)."""
    from ..training import identity_optimizer

    return identity_optimizer()


def _test_accuracy(trainer, state, x: jax.Array, t: jax.Array) -> dict:
    """``fit``'s evaluation: the accuracy of the readout on (x, t)."""
    return {"accuracy": trainer.net.accuracy(state.params, x, t)}


def train_rnn(model: LeakyRNN, x_train: np.ndarray, y_train: np.ndarray, *, seeds: list[int], n_samples: int,
              eta: float, eta_oja: float, eval_every: int, x_eval: np.ndarray, y_eval: np.ndarray,
              init_method: str = "xavier", callback: Callable[[RNNParams, int], dict] | None = None) -> dict:
    """Online training (batch 1) of every seed at once with ``plasticlab.fit`` and the rule
    ``BPTT(lr=eta) + OjaRec(lr=eta_oja)`` (``BPTT(lr=eta)`` alone when eta_oja = 0).

    Each seed draws its initial weights from PRNGKey(seed) (passed to ``fit`` as its initial state) and its
    sample order from numpy's default_rng(seed) (``training.sample_order``: a fresh permutation every epoch;
    the loop this replaced repeated the first epoch's permutation). After each chunk of
    ``eval_every`` samples the test accuracy, the spectrum of W_rec and ``callback(params, samples) -> dict``
    are recorded. Weights that become non-finite or exceed 1e6 raise ``training.DivergenceError`` (seed, step
    and matrix named; the evaluations before it in its ``history``).
    Returns {"samples", "accuracy" (seeds, evals), "eig_re" / "eig_im" (seeds, evals, n_hidden): the real and
    imaginary parts of the eigenvalues of W_rec, "extra": the callback's dicts, "params" (seeds, ...)}.
    """
    from ..rules.bptt import BPTT, OjaRec
    from ..training import Trainer, TrainState, fit

    rule = BPTT(lr=eta) + OjaRec(lr=eta_oja) if eta_oja else BPTT(lr=eta)
    trainer = Trainer(model, rule, loss=RNN_CROSS_ENTROPY, optimizer=_identity_optimizer(), init_method=init_method)
    keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
    fresh: TrainState = jax.vmap(trainer.init)(keys)
    start = fresh._replace(params=jax.vmap(lambda k: model.init(k, init_method))(keys))
    spectra, extra = [], []

    def record(state: TrainState, done: int) -> dict:
        spectra.append(np.linalg.eigvals(np.asarray(state.params.W_rec, np.float64)))
        if callback is not None:
            extra.append(callback(state.params, done))
        return {}

    hist = fit(trainer, x_train, y_train, seeds=list(seeds), n_samples=n_samples, batch_size=1,
               eval_every=eval_every, x_eval=x_eval, y_eval=y_eval, evaluate=_test_accuracy, callback=record,
               init_state=start, progress=None)
    eig = np.stack(spectra, 1)
    return {"samples": hist.samples, "accuracy": hist.array("eval_accuracy"), "eig_re": eig.real,
            "eig_im": eig.imag, "extra": extra, "params": hist.final_state.params}


__all__ = ["LeakyRNN", "RNNParams", "RNNTrace", "RNN_CROSS_ENTROPY", "readout_loss", "train_rnn"]
