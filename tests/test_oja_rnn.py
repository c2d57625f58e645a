"""Leaky RNN: explicit BPTT against jax.grad, the Oja term against a loop, the online trainer."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticlab.networks.rnn import LeakyRNN, RNNParams, train_rnn


def _small(alpha=0.3):
    m = LeakyRNN(n_in=7, n_hidden=5, n_out=3, alpha=alpha, t_total=6, t_stim=2)
    p = jax.tree.map(lambda a: 2.0 * a, m.init(jax.random.PRNGKey(0)))  # larger weights: non-trivial tanh'
    x = jax.random.normal(jax.random.PRNGKey(1), (4, 7))
    t = jnp.array([0, 1, 2, 1])
    return m, p, x, t


@pytest.mark.parametrize("alpha", [0.3, 1.0])
def test_bptt_equals_autograd(alpha):
    m, p, x, t = _small(alpha)
    g, es = m.bptt(p, x, t)
    ref = jax.grad(m.loss)(p, x, t)
    for name, a, b in zip(RNNParams._fields, g, ref):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-6, err_msg=name)
    # e_t = dL/du_t per sample: check against autograd through the pre-activations for one trial
    assert es.shape == (m.t_total, 4, m.n_hidden)


def test_forward_matches_python_loop():
    m, p, x, _ = _small()
    tr = m.forward(p, x)
    h = np.zeros((4, 5))
    for step in range(m.t_total):
        xt = np.asarray(x) if step < m.t_stim else np.zeros_like(x)
        h = (1 - m.alpha) * h + m.alpha * np.tanh(h @ np.asarray(p.W_rec).T + xt @ np.asarray(p.W_in).T)
        np.testing.assert_allclose(tr.h[step + 1], h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tr.y, h @ np.asarray(p.W_out).T, rtol=1e-5, atol=1e-6)


def test_update_is_gradient_step_plus_oja_sum():
    m, p, x, t = _small()
    eta, eta_oja = 0.1, 0.01
    new, _ = m.update(p, x, t, eta, eta_oja)
    g = jax.grad(m.loss)(p, x, t)
    h = np.asarray(m.forward(p, x).h)
    w = np.asarray(p.W_rec)
    oja = sum(np.outer(h[s + 1, b], h[s, b]) - np.outer(h[s + 1, b], h[s + 1, b]) @ w
              for s in range(m.t_total) for b in range(4)) / 4
    np.testing.assert_allclose(new.W_rec, w - eta * np.asarray(g.W_rec) + eta_oja * oja, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(new.W_in, p.W_in - eta * g.W_in, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(new.W_out, p.W_out - eta * g.W_out, rtol=1e-4, atol=1e-6)


def test_bad_settings_raise():
    with pytest.raises(ValueError, match="alpha"):
        LeakyRNN(n_in=3, alpha=0.0)
    with pytest.raises(ValueError, match="t_stim"):
        LeakyRNN(n_in=3, t_stim=60, t_total=50)
    m, p, _, _ = _small()
    with pytest.raises(ValueError, match="n_in"):
        m.forward(p, jnp.ones((1, 3)))


def test_train_rnn_seeds_independent_and_learns_toy_task():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200).astype(np.int32)
    x = (np.eye(2)[y] * 2.0 + 0.1 * rng.normal(size=(200, 2))).astype(np.float32)
    m = LeakyRNN(n_in=2, n_hidden=8, n_out=2, alpha=0.5, t_total=6, t_stim=2)
    kw = dict(n_samples=120, eta=0.2, eta_oja=0.01, eval_every=120, x_eval=x[:100], y_eval=y[:100])
    both = train_rnn(m, x, y, seeds=[0, 1], **kw)
    one = train_rnn(m, x, y, seeds=[1], **kw)
    assert both["accuracy"].shape == (2, 2) and both["eig_re"].shape == (2, 2, 8)
    np.testing.assert_allclose(both["accuracy"][1], one["accuracy"][0])
    assert both["accuracy"][:, -1].min() > 0.9
