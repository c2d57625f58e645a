"""Curl descent as one rule: jax.grad and closed-form checks, linear kernels vs the general path, training a
user-built MLP through ``plasticlab.fit`` against the pre-refactor simulator step, and the rule's registration."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import plasticlab as pl
from plasticlab.losses import get_loss
from plasticlab.networks import MLP, Params, get_activation
from plasticlab.networks import student_teacher as st
from plasticlab.rules import RULES, parse_rule
from plasticlab.rules import curl as curl_rule
from plasticlab.rules.base import Signals
from plasticlab.rules.catalog import rule_catalog
from plasticlab.rules.curl import Curl
from plasticlab.training import TrainState, identity_optimizer, sample_order

M, N = 6, 9


def _batch(n: int = 13, outputs: int = 1) -> tuple[jax.Array, jax.Array]:
    x = jax.random.normal(jax.random.PRNGKey(1), (n, M))
    t = jax.random.normal(jax.random.PRNGKey(2), (n, outputs))
    return x, t


def _signals(net: MLP, rule: Curl, params: Params, state, x: jax.Array, t: jax.Array) -> Signals:
    fwd = net.forward(params, x)
    e_out = get_loss("mse").error(fwd, t)
    return Signals(fwd, rule.feedback(net, params, state, fwd, e_out), e_out, x, t)


def _update(net: MLP, rule: Curl, params: Params, x: jax.Array, t: jax.Array, state=None):
    state = rule.init(jax.random.PRNGKey(3), net, params) if state is None else state
    delta, _ = rule.update(net, params, state, _signals(net, rule, params, state, x, t), None)
    return delta, state


def _mse_grad(net: MLP, params: Params, x: jax.Array, t: jax.Array) -> Params:
    """jax.grad of L = <e^2>/2 with respect to W and b (the independent check)."""
    return jax.grad(lambda p: 0.5 * jnp.mean(jnp.sum((net(p, x) - t) ** 2, axis=-1)))(params)


# ----------------------------------------------------------------------------- the rule's equation


@pytest.mark.parametrize("sizes, act, bias", [((M, N, 1), "linear", False), ((M, N, 1), "tanh", False),
                                              ((M, N, 4, 2), "relu", True), ((M, N, 1), "linear", True)])
def test_no_flips_is_minus_lr_grad_of_half_mse(sizes, act, bias):
    net = MLP(sizes, activation=act, use_bias=bias)
    params = net.init(jax.random.PRNGKey(0))
    if bias:  # non-zero biases, so that their update is checked too
        params = params._replace(b=tuple(0.1 * jnp.arange(b.shape[0], dtype=jnp.float32) for b in params.b))
    x, t = _batch(outputs=sizes[-1])
    delta, _ = _update(net, Curl(lr=0.3), params, x, t)
    grad = _mse_grad(net, params, x, t)
    for d, g in zip(jax.tree.leaves(delta), jax.tree.leaves(grad)):
        np.testing.assert_allclose(d, -0.3 * np.asarray(g), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("act", ["linear", "tanh"])
@pytest.mark.parametrize("feedback_mode", ["gd", "dfa"])
def test_flips_equal_sign_flipped_closed_form(act, feedback_mode):
    """Eq. 5 written out in NumPy: Delta W1 = -lr ((b e) * f'(W1 x)) x^T D1 / n, Delta W2 = -lr e h^T D2 / n."""
    net = MLP((M, N, 1), activation=act)
    params = net.init(jax.random.PRNGKey(0))
    x, t = _batch()
    rule = Curl(lr=0.2, flips=((0, 3), (2, 5, 8)), feedback_mode=feedback_mode)
    delta, state = _update(net, rule, params, x, t)
    W1, W2, X, T = (np.asarray(a, np.float64) for a in (params.W[0], params.W[1], x, t))
    a = X @ W1.T
    h, df = (np.tanh(a), 1 - np.tanh(a) ** 2) if act == "tanh" else (a, np.ones_like(a))
    e = h @ W2.T - T                                           # (n, 1)
    b = W2 if feedback_mode == "gd" else np.asarray(state["B"][0]).T   # (1, N)
    d1, d2 = np.ones(M), np.ones(N)
    d1[[0, 3]], d2[[2, 5, 8]] = -1, -1
    n = X.shape[0]
    np.testing.assert_allclose(delta.W[0], -0.2 * (((e @ b) * df).T @ X / n) * d1, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(delta.W[1], -0.2 * (e.T @ h / n) * d2, rtol=1e-5, atol=1e-7)
    assert np.sum(np.asarray(state["d"][0]) < 0) == 2 and np.sum(np.asarray(state["d"][1]) < 0) == 3


# ----------------------------------------------------------------------------- fast kernels vs the general path


@pytest.mark.parametrize("feedback_mode", ["gd", "dfa"])
def test_factored_linear_path_equals_general_path(feedback_mode):
    net = MLP((M, N, 1), activation="linear", use_bias=False)
    params = net.init(jax.random.PRNGKey(0))
    x, t = _batch(40)
    rule = Curl(lr=0.1, alphas=(0.5, 0.3), feedback_mode=feedback_mode)
    state = rule.init(jax.random.PRNGKey(4), net, params)
    sig = _signals(net, rule, params, state, x, t)
    assert Curl.factored(net, params)
    factored, general = rule.factored_deltas(params, state, sig), rule.general_deltas(state, sig)
    for f, g in zip(factored, general):
        assert f.shape == g.shape
        np.testing.assert_allclose(f, g, rtol=1e-5, atol=1e-7)
    # the factored path is chosen only where it holds
    assert not Curl.factored(MLP((M, N, 1), activation="tanh"), params)
    biased = MLP((M, N, 1), activation="linear", use_bias=True)
    assert not Curl.factored(biased, biased.init(jax.random.PRNGKey(0)))
    assert not Curl.factored(MLP((M, N, 2), activation="linear"), params)


def test_simulator_kernels_equal_rule_general_path():
    """``two_layer_delta`` (vector readout, what the simulator runs) and the full-batch statistics form give the
    rule's general-path matrices."""
    x, t = _batch(50)
    W1 = jax.random.normal(jax.random.PRNGKey(5), (N, M)) / np.sqrt(M)
    w2 = jax.random.normal(jax.random.PRNGKey(6), (N,)) / np.sqrt(N)
    d1, d2 = st.flip_signs(M, index=[1]), st.flip_signs(N, index=[0, 4])
    rule = Curl(lr=0.3, flips=((1,), (0, 4)))
    for act in ["linear", "tanh", "relu"]:
        net = MLP((M, N, 1), activation=act)
        params = Params((W1, w2[None, :]))
        state = rule.init(jax.random.PRNGKey(0), net, params)
        general = rule.general_deltas(state, _signals(net, rule, params, state, x, t))
        dW1, dw2, _ = curl_rule.two_layer_delta(W1, w2, w2, d1, d2, x, t[:, 0], 0.3, act)
        np.testing.assert_allclose(dW1, general[0], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(dw2, general[1][0], rtol=1e-5, atol=1e-7)
    C, r = x.T @ x / x.shape[0], x.T @ t[:, 0] / x.shape[0]
    g_batch, _ = curl_rule.linear_gradient(W1, w2, x, t[:, 0])
    np.testing.assert_allclose(curl_rule.linear_gradient_stats(W1, w2, C, r), g_batch, rtol=1e-4, atol=1e-6)


# ----------------------------------------------------------------------------- through plasticlab.fit


class _OldNet(NamedTuple):
    W1: jax.Array
    W2: jax.Array
    d1: jax.Array
    d2: jax.Array
    fb: jax.Array
    n1: jax.Array
    n2: jax.Array


class _OldCfg(NamedTuple):
    lr: float
    activation: str
    feedback: str


def _old_curl_delta(net, x, y, cfg):
    """``student_teacher.curl_delta`` as it was before the refactor (git show HEAD), the reference."""
    b = net.W2 if cfg.feedback == "gd" else net.fb
    n = x.shape[0]
    if cfg.activation == "linear":
        e = x @ (net.W2 @ net.W1) - y
        g = e @ x / n
        return -cfg.lr * jnp.outer(b, g) * net.d1[None, :], -cfg.lr * (net.W1 @ g) * net.d2, jnp.mean(e ** 2)
    act = get_activation(cfg.activation)
    a = x @ net.W1.T
    h = act.f(a)
    e = h @ net.W2 - y
    delta = (e[:, None] * b[None, :]) * act.df(a)
    dW1 = -cfg.lr * (delta.T @ x / n) * net.d1[None, :]
    dW2 = -cfg.lr * (e @ h / n) * net.d2
    return dW1, dW2, jnp.mean(e ** 2)


def _old_renorm(net, W1, W2, rescale):
    """``student_teacher._renorm`` before the refactor."""
    if rescale:
        W1 = W1 * (net.n1 / jnp.maximum(jnp.linalg.norm(W1), 1e-30))
        W2 = W2 * (net.n2 / jnp.maximum(jnp.linalg.norm(W2), 1e-30))
    return net._replace(W1=W1, W2=W2)


@pytest.mark.parametrize("act, feedback_mode, rescale", [("linear", "gd", True), ("linear", "dfa", False),
                                                         ("tanh", "gd", True), ("relu", "dfa", True)])
def test_fit_on_user_mlp_equals_pre_refactor_simulator_loop(act, feedback_mode, rescale):
    n_train, batch, steps, lr = 40, 8, 60, 0.1
    flips = ((0, 3), (2, 5))
    data, _ = st.make_data(jax.random.PRNGKey(7), M, N, n_train, 10, act)
    net = MLP((M, N, 1), activation=act, use_bias=False)
    rule = Curl(lr=lr, flips=flips, feedback_mode=feedback_mode, rescale=rescale)
    trainer = pl.Trainer(net, rule, loss=get_loss("mse"))
    params = net.init(jax.random.PRNGKey(8), "uniform_fanin")
    rule_state = rule.init(jax.random.PRNGKey(9), net, params)
    init = TrainState(params, rule_state, identity_optimizer().init(params), jax.random.PRNGKey(10))
    hist = pl.fit(trainer, data.x, data.y[:, None], seeds=1, n_samples=steps * batch, batch_size=batch,
                  evals=4, init_state=jax.tree.map(lambda a: a[None], init), progress=False)  # a seeds axis

    fb = rule_state["B"][0][:, 0] if feedback_mode == "dfa" else jnp.zeros(N)
    old = _OldNet(params.W[0], params.W[1][0], rule_state["d"][0], rule_state["d"][1], fb,
                  jnp.linalg.norm(params.W[0]), jnp.linalg.norm(params.W[1]))
    cfg = _OldCfg(lr, act, feedback_mode)

    @jax.jit
    def step(o: _OldNet, x: jax.Array, y: jax.Array) -> _OldNet:
        dW1, dW2, _ = _old_curl_delta(o, x, y, cfg)
        return _old_renorm(o, o.W1 + dW1, o.W2 + dW2, rescale)

    for idx in sample_order(0, n_train, steps, batch):   # the batches fit draws for seed 0
        old = step(old, data.x[idx], data.y[idx])
    W1, W2 = hist.final_state.params.W
    assert not np.allclose(W1, params.W[0], atol=1e-3)  # it did train
    np.testing.assert_allclose(W1[0], old.W1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(W2[0, 0], old.W2, rtol=1e-5, atol=1e-6)


def test_rescale_through_fit_keeps_initial_norms_from_rule_state():
    net = MLP((M, N, 1), activation="tanh")
    x, t = _batch(32)
    hist = pl.fit(pl.Trainer(net, Curl(lr=0.5, alphas=(0.3, 0.2), rescale=True), loss=get_loss("mse")), x, t,
                  seeds=3, epochs=5, batch_size=4, evals=2, progress=False, keep_init=True)
    norms = hist.init_state.rule_state["norms"]
    for l in range(2):
        np.testing.assert_allclose(norms[l], jnp.linalg.norm(hist.init_state.params.W[l], axis=(-2, -1)), rtol=1e-6)
        np.testing.assert_allclose(jnp.linalg.norm(hist.final_state.params.W[l], axis=(-2, -1)), norms[l], rtol=1e-5)
    assert not np.allclose(hist.final_state.params.W[0], hist.init_state.params.W[0], atol=1e-3)


# ----------------------------------------------------------------------------- registration


def test_curl_in_parse_rule_and_catalog():
    rule = parse_rule("curl(lr=0.05, alphas=(0.1, 0.2), feedback_mode='dfa', rescale=True)")
    assert rule == Curl(lr=0.05, alphas=(0.1, 0.2), feedback_mode="dfa", rescale=True)
    assert parse_rule("curl(flips=((0, 3), ()))").flips == ((0, 3), ())
    with pytest.raises(ValueError, match="feedback_mode"):
        parse_rule("curl(feedback_mode='fa')")
    assert RULES["curl"] is Curl
    entry = next(e for e in rule_catalog() if e["name"] == "curl")
    assert {"lr", "alphas", "flips", "feedback_mode", "rescale"} <= {p["name"] for p in entry["parameters"]}
    assert "D_l" in entry["equation"]
