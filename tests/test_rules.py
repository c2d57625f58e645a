"""Every rule against an independent computation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import plasticlab as pl
from plasticlab.losses import get_loss
from plasticlab.rules import BP, DFA, FA, KP, WM, Oja, Sanger, Signals, Sum, parse_rule


def _signals(trainer, params, state, x, t):
    return trainer.signals(params, state, x, t)


def _rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12)


@settings(max_examples=15, deadline=None)
@given(depth=st.integers(1, 4), width=st.integers(2, 9), batch=st.integers(1, 5),
       act=st.sampled_from(["relu", "tanh", "sigmoid", "softplus", "linear"]),
       loss=st.sampled_from(["cross_entropy", "mse"]), bias=st.booleans(), seed=st.integers(0, 10_000))
def test_bp_update_equals_minus_lr_grad(depth, width, batch, act, loss, bias, seed):
    """BP's Delta W equals -lr * jax.grad of the batch-mean loss, for every layer (and bias)."""
    key = jax.random.PRNGKey(seed)
    k1, k2, k3 = jax.random.split(key, 3)
    sizes = (5,) + (width,) * (depth - 1) + (4,)
    net = pl.MLP(sizes, activation=act, use_bias=bias)
    params = net.init(k1, "xavier")
    if bias:
        params = pl.Params(params.W, tuple(0.1 * jax.random.normal(k, b.shape) for k, b in
                                           zip(jax.random.split(k3, len(params.b)), params.b)))
    x = jax.random.normal(k2, (batch, 5))
    t = jnp.arange(batch) % 4 if loss == "cross_entropy" else jax.random.normal(k3, (batch, 4))
    lr = 0.3
    tr = pl.Trainer(net, BP(lr=lr), loss=get_loss(loss))
    sig = tr.signals(params, (), x, t)
    delta, _ = tr.rule.update(net, params, (), sig, key)
    grads = jax.grad(lambda p: tr.loss.value(net.forward(p, x), t))(params)
    for d, g in zip(jax.tree.leaves(delta), jax.tree.leaves(grads)):
        if np.linalg.norm(g) > 1e-6:
            assert _rel(d, -lr * g) < 1e-5
        else:
            assert np.abs(np.asarray(d)).max() < 1e-6


def _numpy_forward(Ws, x, f, df):
    hs, ys = [x], []
    for w in Ws:
        ys.append(hs[-1] @ w.T)
        hs.append(f(ys[-1]))
    return hs, ys


def test_fa_and_dfa_errors_match_numpy():
    net = pl.MLP((6, 5, 4, 3), activation="tanh")
    key = jax.random.PRNGKey(0)
    params = net.init(key)
    x = np.asarray(jax.random.normal(jax.random.PRNGKey(1), (2, 6)))
    t = jnp.array([0, 2])
    Ws = [np.asarray(w, np.float64) for w in params.W]
    hs, ys = _numpy_forward(Ws, x, np.tanh, None)
    # numpy: softmax error at the output (output activation linear)
    z = ys[-1] - ys[-1].max(1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    eL = p - np.eye(3)[np.asarray(t)]
    dtanh = [1 - np.tanh(y) ** 2 for y in ys[:-1]]
    # FA: fixed B of W^T's shape
    fa = FA(lr=0.1)
    st_fa = fa.init(jax.random.PRNGKey(2), net, params)
    B = [None] + [np.asarray(b, np.float64) for b in st_fa[1:]]
    e2 = (eL @ B[2].T) * dtanh[1]
    e1 = (e2 @ B[1].T) * dtanh[0]
    sig = pl.Trainer(net, fa).signals(params, st_fa, jnp.asarray(x), t)
    for got, want in zip(sig.e, [e1, e2, eL]):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    d, _ = fa.update(net, params, st_fa, sig, key)
    np.testing.assert_allclose(d.W[0], -0.1 * e1.T @ x / 2, rtol=1e-4, atol=1e-6)
    # DFA: e_l = (B_l e_L) * f'
    dfa = DFA(lr=0.1)
    st_d = dfa.init(jax.random.PRNGKey(3), net, params)
    sig = pl.Trainer(net, dfa).signals(params, st_d, jnp.asarray(x), t)
    np.testing.assert_allclose(sig.e[0], (eL @ np.asarray(st_d[0]).T) * dtanh[0], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(sig.e[1], (eL @ np.asarray(st_d[1]).T) * dtanh[1], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("batch", [1, 4, 40])  # Sanger has a row-wise path for small batches
def test_oja_and_sanger_match_closed_form(batch):
    net = pl.MLP((5, 3), activation="linear")
    params = net.init(jax.random.PRNGKey(0))
    x = np.asarray(jax.random.normal(jax.random.PRNGKey(1), (batch, 5)), np.float64)
    W = np.asarray(params.W[0], np.float64)
    y = x @ W.T
    C_post = y.T @ y / batch
    want_oja = 0.05 * (y.T @ x / batch - C_post @ W)
    want_sanger = 0.05 * (y.T @ x / batch - np.tril(C_post) @ W)
    fwd = net.forward(params, jnp.asarray(x, jnp.float32))
    sig = Signals(fwd, None, fwd.out)
    for rule, want in [(Oja(lr=0.05), want_oja), (Sanger(lr=0.05), want_sanger)]:
        d, _ = rule.update(net, params, (), sig, jax.random.PRNGKey(0))
        np.testing.assert_allclose(d.W[0], want, rtol=1e-4, atol=1e-6)


def test_oja_layer_selection_and_sum_adds_updates():
    net = pl.MLP((6, 5, 4), activation="tanh")
    params = net.init(jax.random.PRNGKey(0))
    x, t = jax.random.normal(jax.random.PRNGKey(1), (3, 6)), jnp.array([0, 1, 3])
    bp, oja = BP(lr=0.1), Oja(lr=0.01, layers=(1,))
    both = bp + oja
    assert isinstance(both, Sum) and both.name == "bp+oja"
    tr = pl.Trainer(net, both)
    st_ = both.init(jax.random.PRNGKey(0), net, params)
    sig = tr.signals(params, st_, x, t)
    d, _ = both.update(net, params, st_, sig, jax.random.PRNGKey(0))
    d_bp, _ = bp.update(net, params, (), sig, jax.random.PRNGKey(0))
    d_oja, _ = oja.update(net, params, (), sig, jax.random.PRNGKey(0))
    assert np.abs(np.asarray(d_oja.W[1])).max() == 0  # layer 2 not selected
    for a, b, c in zip(d.W, d_bp.W, d_oja.W):
        np.testing.assert_allclose(a, b + c, rtol=1e-6, atol=1e-7)


def test_parse_rule_builds_and_rejects():
    r = parse_rule("bp(lr=0.01)+oja(lr=1e-3, layers=(1, 2))")
    assert isinstance(r, Sum) and r.rules[0].lr == 0.01 and r.rules[1].layers == (1, 2)
    assert parse_rule("kp", kp={"lr": 0.2}).lr == 0.2
    with pytest.raises(ValueError, match="unknown rule 'bogus'.*bp"):
        parse_rule("bp+bogus")
    with pytest.raises(ValueError, match="at most one error-driven"):
        parse_rule("bp+fa")
    with pytest.raises(ValueError, match="its arguments are: lr, layers"):
        parse_rule("oja(learning_rate=1)")


def _train_digits(rule, digits, epochs=4.0, seeds=1, hidden=(64,)):
    net = pl.MLP((64, *hidden, 10), activation="tanh")
    hist = pl.fit(pl.Trainer(net, rule), digits.x_train, digits.y_train, seeds=seeds, epochs=epochs,
                  eval_every=len(digits.x_train), x_eval=digits.x_test, y_eval=digits.y_test, progress=False)
    return net, hist


def _angle(a, b):
    a, b = np.ravel(a), np.ravel(b)
    return np.degrees(np.arccos(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b)))


def test_kp_backward_weights_converge_to_transpose(digits):
    net, hist = _train_digits(KP(lr=0.05, decay=1e-3), digits, hidden=(64, 32))
    st_ = hist.final_state
    W, B = hist.final_state.params.W, st_.rule_state
    angles = [_angle(B[l][0], W[l][0].T) for l in range(1, net.n_layers)]
    assert max(angles) < 10.0, angles
    assert hist.final("eval_accuracy")[0] > 0.9


def test_fa_error_signals_align_with_bp(digits):
    net, hist = _train_digits(FA(lr=0.05), digits, hidden=(64, 32))
    st_ = jax.tree.map(lambda a: a[0], hist.final_state)
    x, t = jnp.asarray(digits.x_test[:200]), jnp.asarray(digits.y_test[:200])
    fa_err = pl.Trainer(net, FA()).signals(st_.params, st_.rule_state, x, t).e
    bp_err = pl.Trainer(net, BP()).signals(st_.params, (), x, t).e
    angles = [_angle(a, b) for a, b in zip(fa_err[:-1], bp_err[:-1])]
    p0 = net.init(jax.random.PRNGKey(5))
    e_fa0 = pl.Trainer(net, FA()).signals(p0, FA().init(jax.random.PRNGKey(6), net, p0), x, t).e
    e_bp0 = pl.Trainer(net, BP()).signals(p0, (), x, t).e
    init_angles = [_angle(a, b) for a, b in zip(e_fa0[:-1], e_bp0[:-1])]
    assert min(init_angles) > 75.0, init_angles  # random feedback starts near orthogonal
    assert max(angles) < 65.0 and angles[-1] < 45.0, (angles, init_angles)


def test_wm_backward_weights_align_with_transpose(digits):
    net, hist = _train_digits(WM(lr=0.05), digits, epochs=1.0, hidden=(64, 32))
    W, B = hist.final_state.params.W, hist.final_state.rule_state
    angles = [_angle(B[l][0], W[l][0].T) for l in range(1, net.n_layers)]
    assert max(angles) < 15.0, angles


@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid", "linear", "softplus", "leaky_relu"])
def test_every_activations_derivative_is_jax_grad_of_it(name):
    from plasticlab.networks import ACTIVATIONS, get_activation

    assert name in ACTIVATIONS
    act = get_activation(name)
    y = jnp.linspace(-3.0, 3.0, 61) + 0.013  # no point exactly at a kink
    np.testing.assert_allclose(act.df(y), jax.vmap(jax.grad(act.f))(y), rtol=1e-5, atol=1e-6)
