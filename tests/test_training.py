"""The training loop: vmapped seeds, the update step's decay/noise/optimizer, divergence handling."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import plasticlab as pl
from plasticlab.rules import BP, Hebb
from plasticlab.training import DivergenceError, sample_order


def _small(digits):
    return digits.subset(n_train=300, n_test=100)


def test_vmapped_seeds_equal_separate_runs(digits):
    d = _small(digits)
    tr = pl.Trainer(pl.MLP((64, 20, 10), activation="tanh"), pl.parse_rule("fa(lr=0.05)+oja(lr=0.001)"))
    kw = dict(epochs=1.0, eval_every=100, x_eval=d.x_test, y_eval=d.y_test, progress=False)
    together = pl.fit(tr, d.x_train, d.y_train, seeds=[3, 7, 11], **kw)
    for i, s in enumerate([3, 7, 11]):
        alone = pl.fit(tr, d.x_train, d.y_train, seeds=[s], **kw)
        np.testing.assert_allclose(together.array("eval_loss")[i], alone.array("eval_loss")[0], rtol=1e-4, atol=1e-6)
        for a, b in zip(together.final_state.params.W, alone.final_state.params.W):
            np.testing.assert_allclose(a[i], b[0], rtol=1e-4, atol=1e-6)
    # different seeds really differ
    assert not np.allclose(together.array("eval_loss")[0], together.array("eval_loss")[1])


def test_scan_equals_python_loop_of_steps(digits):
    d = _small(digits)
    tr = pl.Trainer(pl.MLP((64, 16, 10), activation="relu"), BP(lr=0.1))
    hist = pl.fit(tr, d.x_train, d.y_train, seeds=[0], n_samples=50, batch_size=5, progress=False)
    state = tr.init(jax.random.PRNGKey(0))
    order = sample_order(0, len(d.x_train), 10, 5)
    for idx in order:
        state, _ = tr.step(state, jnp.asarray(d.x_train[idx]), jnp.asarray(d.y_train[idx]))
    for a, b in zip(hist.final_state.params.W, state.params.W):
        np.testing.assert_allclose(a[0], b, rtol=1e-4, atol=1e-6)


def test_weight_decay_and_optimizer_semantics():
    net = pl.MLP((4, 3), activation="linear")
    x, t = jnp.ones((1, 4)), jnp.zeros((1, 3))
    # a rule with zero rate: only decay acts, W_t = (1 - gamma)^t W_0
    tr = pl.Trainer(net, Hebb(lr=0.0), loss=pl.get_loss("mse"), weight_decay=0.1)
    s0 = tr.init(jax.random.PRNGKey(0))
    s = s0
    for _ in range(3):
        s, _ = tr.step(s, x, t)
    np.testing.assert_allclose(s.params.W[0], 0.9 ** 3 * s0.params.W[0], rtol=1e-5)
    # with Adam and rule lr=1, the step equals optax.adam on the gradient + L2 term
    gamma = 0.01
    tr = pl.Trainer(net, BP(lr=1.0), loss=pl.get_loss("mse"), optimizer=optax.adam(1e-2), weight_decay=gamma)
    s = tr.init(jax.random.PRNGKey(1))
    s1, _ = tr.step(s, x, t)
    g = jax.grad(lambda p: tr.loss.value(net.forward(p, x), t) + 0.5 * gamma * sum(jnp.sum(w ** 2) for w in p.W))(s.params)
    opt = optax.adam(1e-2)
    upd, _ = opt.update(g, opt.init(s.params), s.params)
    np.testing.assert_allclose(s1.params.W[0], s.params.W[0] + upd.W[0], rtol=1e-5, atol=1e-7)


def test_weight_noise_has_requested_std():
    net = pl.MLP((200, 100), activation="linear")
    tr = pl.Trainer(net, Hebb(lr=0.0), loss=pl.get_loss("mse"), weight_noise=0.05)
    s = tr.init(jax.random.PRNGKey(0))
    s1, _ = tr.step(s, jnp.zeros((1, 200)), jnp.zeros((1, 100)))
    assert abs(float(jnp.std(s1.params.W[0] - s.params.W[0])) - 0.05) < 0.002


def test_divergence_names_step_and_layer_and_keeps_history(digits):
    d = _small(digits)
    tr = pl.Trainer(pl.MLP((64, 30, 10), activation="relu"), pl.parse_rule("hebb(lr=2.0)"))
    with pytest.raises(DivergenceError) as info:
        pl.fit(tr, d.x_train, d.y_train, seeds=2, epochs=1.0, eval_every=20, x_eval=d.x_test, y_eval=d.y_test,
               progress=False)
    err = info.value
    assert err.step >= 1 and err.layer in (1, 2) and err.seed in (0, 1)
    assert f"layer {err.layer}" in str(err) and f"step {err.step}" in str(err)
    assert len(err.history.samples) >= 1  # evaluations before the failure are kept


def test_shape_errors_are_explained():
    net = pl.MLP((5, 3))
    with pytest.raises(ValueError, match="expects 5"):
        net.forward(net.init(jax.random.PRNGKey(0)), jnp.ones((2, 4)))
    with pytest.raises(ValueError, match="layer 1"):
        net.check(pl.Params((jnp.ones((3, 4)),)))
    with pytest.raises(ValueError, match="unknown activation"):
        pl.MLP((5, 3), activation="swishy")


def test_evaluation_intervals_cut_into_calls_give_the_same_numbers(digits):
    """fit with at most 7 steps per compiled call (evaluation intervals of 20 and 10 steps become 3 and 2
    calls) equals fit with one call per interval: curves, step-metric means, logged steps and final weights,
    bit for bit; in a grid with a diverging cell the same seed, step and matrix are named."""
    d = _small(digits)
    tr = pl.Trainer(pl.MLP((64, 20, 10), activation="tanh"), pl.parse_rule("fa(lr=0.05)+oja(lr=0.001)"))
    kw = dict(n_samples=250, batch_size=5, eval_every=100, x_eval=d.x_test, y_eval=d.y_test, progress=False,
              log_every=3)
    whole, cut = (pl.fit(tr, d.x_train, d.y_train, seeds=[0, 4], call_steps=n, **kw) for n in (None, 7))
    assert whole.samples == cut.samples == [0, 100, 200, 250]
    for key in whole.curves:
        np.testing.assert_array_equal(whole.array(key), cut.array(key), err_msg=key)
    assert whole.log_steps == cut.log_steps == list(range(3, 51, 3))
    np.testing.assert_array_equal(whole.logged("loss"), cut.logged("loss"))
    for a, b in zip(whole.final_state.params.W, cut.final_state.params.W):
        np.testing.assert_array_equal(a, b)

    grid = [pl.Trainer(pl.MLP((64, 30, 10), activation="relu"), pl.parse_rule(f"hebb(lr={lr})"))
            for lr in (1e-4, 2.0)]
    gkw = dict(epochs=1.0, batch_size=5, eval_every=150, x_eval=d.x_test, y_eval=d.y_test, progress=False,
               on_divergence="record")
    whole, cut = (pl.fit(grid, d.x_train, d.y_train, seeds=2, call_steps=n, **gkw) for n in (None, 4))
    assert whole.divergences and whole.divergences == cut.divergences
    assert whole.diverged == cut.diverged and whole.diverged[0] is None
    np.testing.assert_array_equal(whole.array("eval_accuracy"), cut.array("eval_accuracy"))
    with pytest.raises(ValueError, match="call_steps"):
        pl.fit(tr, d.x_train, d.y_train, call_steps=0, progress=False)


def test_cuts_are_equal_where_a_length_divides_and_the_default_size_follows_the_work():
    from plasticlab.training import _cut, call_steps_for

    assert _cut(0, 10, 10) == [] and _cut(0, 12, 5) == [4, 8]  # 4 divides 12 (>= 5 / 2): one shape
    assert _cut(100, 113, 5) == [105, 110]  # 13 is prime: 5, 5 and 3
    assert _cut(0, 1000, 300) == [250, 500, 750]
    tr = pl.Trainer(pl.MLP((100, 50, 10)), BP(lr=0.1))
    state = jax.vmap(tr.init)(jax.random.split(jax.random.PRNGKey(0), 4))
    floats = sum(a.size for a in jax.tree.leaves(state))
    assert 0 <= floats - 4 * (100 * 50 + 50 * 10) <= 8  # the weights of 4 seeds and two counters per seed
    assert call_steps_for(state, 10, work=1e9) == int(1e9 // (10 * floats))
    assert call_steps_for(state, 10, work=1.0) == 1
    # a convolutional front's multiply-adds per sample count for each of the 4 runs
    assert call_steps_for(state, 10, work=1e9, runs=4, front_macs=10_000) == int(1e9 // (10 * (floats + 40_000)))
