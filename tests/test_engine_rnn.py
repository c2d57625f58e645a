"""The leaky RNN trains through the library's one driver: rules BPTT / OjaRec, ``Trainer`` and ``fit``.

Each rule is checked against an independent computation (jax.grad, a loop over the Oja sum) and against the
written-out step ``LeakyRNN.update``; ``fit`` and ``train_rnn`` against a per-step loop of that step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import plasticlab
from plasticlab.networks import MLP
from plasticlab.networks.rnn import RNN_CROSS_ENTROPY, LeakyRNN, RNNParams, train_rnn
from plasticlab.rules import BPTT, OjaRec, Sum, parse_rule
from plasticlab.training import DivergenceError, Trainer, sample_order

LR, LR_OJA = 0.1, 0.02


def _small(batch: int = 4, alpha: float = 0.3):
    net = LeakyRNN(n_in=5, n_hidden=6, n_out=3, alpha=alpha, t_total=6, t_stim=2)
    params = jax.tree.map(lambda a: 2.0 * a, net.init(jax.random.PRNGKey(0)))  # non-trivial tanh'
    x = jax.random.normal(jax.random.PRNGKey(1), (batch, 5))
    t = jnp.arange(batch) % 3
    return net, params, x, t


def _deltas(rule, net, params, x, t) -> RNNParams:
    """The rule's Delta W at one step, through the trainer's signals (the forward trace in Signals.fwd)."""
    tr = Trainer(net, rule, loss=RNN_CROSS_ENTROPY)
    state = tr.rule.init(jax.random.PRNGKey(2), net, params)
    deltas, _ = tr.rule.update(net, params, state, tr.signals(params, state, x, t), jax.random.PRNGKey(3))
    return deltas


def _oja_sum(net, params, x) -> np.ndarray:
    """sum_t <h_t h_{t-1}^T - h_t h_t^T W_rec> by a loop over time steps and samples."""
    h, w = np.asarray(net.forward(params, x).h, np.float64), np.asarray(params.W_rec, np.float64)
    B = h.shape[1]
    return sum(np.outer(h[s + 1, b], h[s, b]) - np.outer(h[s + 1, b], h[s + 1, b]) @ w
               for s in range(net.t_total) for b in range(B)) / B


def _close(a, b, rtol=2e-4, atol=1e-6):
    for name, u, v in zip(RNNParams._fields, a, b):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=rtol, atol=atol, err_msg=name)


def test_readout_cross_entropy_is_the_mean_log_loss_of_the_readout():
    net, p, x, t = _small()
    y = np.asarray(net.forward(p, x).y, np.float64)
    logp = y - np.log(np.exp(y).sum(-1, keepdims=True))
    np.testing.assert_allclose(RNN_CROSS_ENTROPY.value(net.forward(p, x), t), -logp[np.arange(4), t].mean(),
                               rtol=1e-6)
    np.testing.assert_allclose(RNN_CROSS_ENTROPY.error(net.forward(p, x), t),
                               np.exp(logp) - np.eye(3)[np.asarray(t)], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("alpha", [0.3, 1.0])
def test_bptt_is_minus_lr_autograd_and_the_old_step(alpha):
    net, p, x, t = _small(alpha=alpha)
    d = _deltas(BPTT(lr=LR), net, p, x, t)
    _close(d, jax.tree.map(lambda g: -LR * g, jax.grad(net.loss)(p, x, t)))
    new, _ = net.update(p, x, t, LR, 0.0)
    _close(d, jax.tree.map(jnp.subtract, new, p), rtol=1e-5)


def test_bptt_plus_oja_rec_is_the_old_step_with_eta_oja():
    net, p, x, t = _small()
    rule = BPTT(lr=LR) + OjaRec(lr=LR_OJA)
    d = _deltas(rule, net, p, x, t)
    new, _ = net.update(p, x, t, LR, LR_OJA)
    _close(d, jax.tree.map(jnp.subtract, new, p), rtol=1e-5)
    # OjaRec alone: lr times the Oja sum on W_rec, nothing on W_in / W_out
    oja = _deltas(OjaRec(lr=LR_OJA), net, p, x, t)
    np.testing.assert_allclose(oja.W_rec, LR_OJA * _oja_sum(net, p, x), rtol=1e-4, atol=1e-7)
    assert not np.any(np.asarray(oja.W_in)) and not np.any(np.asarray(oja.W_out))


def test_trainer_step_equals_the_old_step_exactly_for_the_same_weights():
    """Unjitted, Trainer.step (W - g, g = -Delta W) gives the very numbers of LeakyRNN.update for BPTT; jitted,
    XLA fuses the two programs differently (the old step is already not bitwise its unjitted self), so they
    differ by rounding only."""
    net, p, x, t = _small(batch=1)
    tr = Trainer(net, BPTT(lr=LR), loss=RNN_CROSS_ENTROPY)
    state = tr.init(jax.random.PRNGKey(5))._replace(params=p)
    stepped, metrics = tr.step(state, x, t)
    old, old_metrics = net.update(p, x, t, LR, 0.0)
    for name, a, b in zip(RNNParams._fields, stepped.params, old):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert float(metrics["correct"]) == float(old_metrics["correct"])
    jitted, _ = jax.jit(tr.step)(state, x, t)
    old_jitted, _ = jax.jit(lambda q: net.update(q, x, t, LR, 0.0))(p)
    _close(jitted.params, old_jitted, rtol=1e-6, atol=1e-7)


def test_rules_parse_and_name_themselves():
    rule = parse_rule("bptt(lr=0.1)+oja_rec(lr=0.02)")
    assert isinstance(rule, Sum) and rule == BPTT(lr=0.1) + OjaRec(lr=0.02)
    assert rule.name == "bptt+oja_rec" and parse_rule(rule.name) == BPTT() + OjaRec()
    mlp = MLP((5, 4, 3))
    with pytest.raises(TypeError, match="LeakyRNN"):
        plasticlab.fit(Trainer(mlp, BPTT()), np.zeros((4, 5)), np.zeros(4, int), n_samples=1, progress=False)


def _update_loop(net, params, x, y, order, lr, lr_oja):
    """The old driver's inner loop: one LeakyRNN.update per batch x[order[k]]."""
    step = jax.jit(lambda q, xb, yb: net.update(q, xb, yb, lr, lr_oja)[0])
    for idx in order:
        params = step(params, x[idx], y[idx])
    return params


def _toy(n: int = 40):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, n).astype(np.int32)
    x = (np.eye(3)[y] @ rng.normal(size=(3, 5)) + 0.3 * rng.normal(size=(n, 5))).astype(np.float32)
    return x, y


@pytest.mark.parametrize("batch_size", [1, 3])
def test_user_built_rnn_through_public_fit_equals_the_old_update_loop(batch_size):
    x, y = _toy()
    net = LeakyRNN(n_in=5, n_hidden=6, n_out=3, alpha=0.3, t_total=6, t_stim=2)
    trainer = plasticlab.Trainer(net, BPTT(lr=LR) + OjaRec(lr=LR_OJA), loss=RNN_CROSS_ENTROPY)
    n_steps, seeds = 25, [0, 3]
    hist = plasticlab.fit(trainer, x, y, seeds=seeds, n_samples=n_steps * batch_size, batch_size=batch_size,
                          eval_every=10 * batch_size, x_eval=x, y_eval=y, keep_init=True, progress=False)
    assert hist.array("eval_accuracy").shape == (2, 4)
    for i, s in enumerate(seeds):
        init = jax.tree.map(lambda a: a[i], hist.init_state.params)
        _close(init, net.init(jax.random.split(jax.random.PRNGKey(s), 3)[0]), rtol=0, atol=0)  # Trainer.init's
        ref = _update_loop(net, init, x, y, sample_order(s, len(x), n_steps, batch_size), LR, LR_OJA)
        _close(jax.tree.map(lambda a: a[i], hist.final_state.params), ref, rtol=1e-4, atol=1e-6)


def test_train_rnn_keeps_its_init_and_order_and_equals_the_old_update_loop():
    x, y = _toy()
    net = LeakyRNN(n_in=5, n_hidden=6, n_out=3, alpha=0.3, t_total=6, t_stim=2)
    seen = []
    r = train_rnn(net, x, y, seeds=[2, 5], n_samples=50, eta=LR, eta_oja=LR_OJA, eval_every=20, x_eval=x,
                  y_eval=y, callback=lambda p, done: seen.append(done) or {"done": done})
    assert r["samples"] == [0, 20, 40, 50] and seen == r["samples"] and r["extra"][-1] == {"done": 50}
    assert r["accuracy"].shape == (2, 4) and r["eig_re"].shape == r["eig_im"].shape == (2, 4, 6)
    for i, s in enumerate([2, 5]):
        init = net.init(jax.random.PRNGKey(s))  # the weights from PRNGKey(seed), as before
        eig0 = np.linalg.eigvals(np.asarray(init.W_rec, np.float64))
        np.testing.assert_allclose(np.sort_complex(r["eig_re"][i, 0] + 1j * r["eig_im"][i, 0]),
                                   np.sort_complex(eig0), rtol=1e-12)
        # 50 of 40 samples: the second epoch is a fresh permutation (the old train_rnn repeated the first)
        ref = _update_loop(net, init, x, y, sample_order(s, len(x), 50, 1), LR, LR_OJA)
        _close(jax.tree.map(lambda a: a[i], r["params"]), ref, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(r["accuracy"][i, -1], net.accuracy(ref, x, y), atol=1 / len(x) + 1e-6)


def test_train_rnn_divergence_raises_divergence_error_with_the_history():
    x, y = _toy()
    net = LeakyRNN(n_in=5, n_hidden=6, n_out=3, alpha=0.3, t_total=6, t_stim=2)
    with pytest.raises(DivergenceError, match=r"diverged at step 1 .*seed 0.*bptt") as err:
        train_rnn(net, x, y, seeds=[0], n_samples=20, eta=1e8, eta_oja=0.0, eval_every=10, x_eval=x, y_eval=y)
    assert err.value.history.samples == [0]
