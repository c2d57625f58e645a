"""Learning rules of the leaky RNN (``networks.rnn.LeakyRNN``, Oja paper Fig. 5): backprop through time and
Oja's rule on the recurrent weights. They read the forward trace from ``Signals.fwd`` (an ``RNNTrace``); BPTT's
reverse scan is its feedback pathway, so ``Signals.e`` holds e_t = dLoss/du_t of shape (T, batch, n_hidden).
Compose them as ``BPTT(lr=0.005) + OjaRec(lr=0.003)``."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..networks.rnn import LeakyRNN, RNNParams, RNNTrace
from .base import Rule, Signals, State


def _require_rnn(rule: Rule, net) -> None:
    if not isinstance(net, LeakyRNN):
        raise TypeError(f"rule {rule.name!r} trains a networks.rnn.LeakyRNN, got {type(net).__name__}")


class BPTT(Rule):
    """Backpropagation through time of the leaky RNN (Oja paper eq. 14-15), an explicit reverse scan.

    Equation:
        e_out = dLoss/dy,  delta_T = W_out^T e_out
        e_t = alpha delta_t * (1 - tanh(u_t)^2),  delta_{t-1} = (1 - alpha) delta_t + W_rec^T e_t   (t = T..1)
        Delta W_rec = -lr sum_t <e_t h_{t-1}^T>,  Delta W_in = -lr sum_t m_t <e_t x^T>,
        Delta W_out = -lr <e_out h_T^T>       (m_t = 1 while the stimulus is shown)

    With the default identity optimiser this is Delta W = -lr dLoss/dW for every matrix.

    Parameters:
        lr: learning rate (eta in the paper).
    """

    lr: float = 0.005

    @property
    def provides_feedback(self) -> bool:
        return True

    def feedback(self, net: LeakyRNN, params: RNNParams, state: State, fwd: RNNTrace, e_out: jax.Array
                 ) -> jax.Array:
        """e of shape (T, batch, n_hidden): e[t-1] = dLoss/du_t per sample."""
        _require_rnn(self, net)
        return net.errors(params, fwd, e_out)

    def update(self, net: LeakyRNN, params: RNNParams, state: State, sig: Signals, key: jax.Array
               ) -> tuple[RNNParams, State]:
        _require_rnn(self, net)
        grads = net.gradients(sig.x, sig.fwd, sig.e_out, sig.e)
        return RNNParams(*(-self.lr * g for g in grads)), state


class OjaRec(Rule):
    """Oja's rule on the recurrent weights W_rec of the leaky RNN (Oja paper Fig. 5; docs/choices.md section 1).

    Equation:
        Delta W_rec = lr sum_t <h_t h_{t-1}^T - h_t h_t^T W_rec>    (t = 1..T, h_0 = 0)
        Delta W_in = 0,  Delta W_out = 0

    Parameters:
        lr: learning rate of the Oja term (eta_oja in the paper).
    """

    lr: float = 0.003

    @property
    def name(self) -> str:
        return "oja_rec"

    def update(self, net: LeakyRNN, params: RNNParams, state: State, sig: Signals, key: jax.Array
               ) -> tuple[RNNParams, State]:
        _require_rnn(self, net)
        return RNNParams(jnp.zeros_like(params.W_in), self.lr * net.oja_term(params, sig.fwd),
                         jnp.zeros_like(params.W_out)), state


__all__ = ["BPTT", "OjaRec"]
