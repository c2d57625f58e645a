"""Post-processing as optax transforms (plasticlab.transforms) and the one driver (training.drive)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import plasticlab as pl
from plasticlab import transforms as T
from plasticlab.training import TrainState, drive

W = {"a": jnp.array([[1.0, -2.0], [0.0, 3.0]]), "b": jnp.array([0.5, -0.5])}
G = {"a": jnp.array([[0.1, 0.2], [-0.3, 0.4]]), "b": jnp.array([1.0, 2.0])}


def _apply(tx, g=G, w=W):
    out, _ = tx.update(g, tx.init(w), w)
    return out


def test_l1_decay_and_freeze_are_their_closed_forms():
    np.testing.assert_allclose(_apply(T.add_l1(0.1))["a"], G["a"] + 0.1 * np.sign(W["a"]))
    np.testing.assert_allclose(_apply(T.add_decay(0.01))["b"], G["b"] + 0.01 * W["b"])
    mask = {"a": jnp.array([[1.0, 0.0], [0.0, 1.0]]), "b": jnp.ones(2)}
    np.testing.assert_allclose(_apply(T.freeze(mask))["a"], np.array([[0.1, 0.0], [0.0, 0.4]]))
    with pytest.raises(ValueError, match="needs the parameters"):
        T.add_l1(0.1).update(G, optax.EmptyState())


def test_reject_growth_skips_exactly_the_steps_that_break_the_bound():
    tx = T.reject_growth(2.0)
    state = tx.init(W)
    small, _ = tx.update(G, state, W)
    assert all(np.array_equal(small[k], G[k]) for k in G)                       # ||W + u|| <= 2 ||W(0)||: kept
    big = {"a": 10.0 * W["a"], "b": G["b"]}
    out, _ = tx.update(big, state, W)
    assert all(not np.any(out[k]) for k in out)                                  # would grow 11x: whole step skipped
    nan = {"a": G["a"].at[0, 0].set(jnp.nan), "b": G["b"]}
    assert not np.any(tx.update(nan, state, W)[0]["b"])                          # non-finite: skipped
    with pytest.raises(ValueError, match="max_growth"):
        T.reject_growth(1.0)


def _one_step(trainer, seed=0):
    net = trainer.net
    x = jax.random.normal(jax.random.PRNGKey(1), (8, net.sizes[0]))
    t = jnp.arange(8) % net.sizes[-1]
    state = trainer.init(jax.random.PRNGKey(seed))
    return trainer.step(state, x, t)[0].params


def test_trainer_shortcut_fields_equal_the_explicit_chain():
    """clip_norm / weight_decay / l1 are clip -> decay -> L1 -> optimizer; the same chain passed as the optimizer
    gives the same weights, and another order gives other weights."""
    net = pl.MLP((5, 7, 3), activation="tanh")
    rule = pl.BP(lr=0.5)
    fields = _one_step(pl.Trainer(net, rule, weight_decay=0.01, l1=0.001, clip_norm=0.05))
    chain = optax.chain(optax.clip_by_global_norm(0.05), T.add_decay(0.01), T.add_l1(0.001), optax.sgd(1.0))
    explicit = _one_step(pl.Trainer(net, rule, optimizer=chain))
    for a, b in zip(jax.tree.leaves(fields), jax.tree.leaves(explicit)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    reordered = optax.chain(T.add_decay(0.01), T.add_l1(0.001), optax.clip_by_global_norm(0.05), optax.sgd(1.0))
    other = _one_step(pl.Trainer(net, rule, optimizer=reordered))
    assert not np.allclose(jax.tree.leaves(fields)[0], jax.tree.leaves(other)[0], rtol=1e-6, atol=1e-7)


def test_rate_schedule_from_an_optax_schedule_scales_the_rule_rate():
    net = pl.MLP((4, 6, 3))
    x = np.asarray(jax.random.normal(jax.random.PRNGKey(0), (40, 4)))
    y = np.arange(40) % 3
    warm = optax.linear_schedule(0.0, 1.0, 20)
    a = pl.fit(pl.Trainer(net, pl.BP(lr=0.1)), x, y, seeds=2, epochs=1, rate_schedule=T.rate_schedule(warm),
               progress=False)
    b = pl.fit(pl.Trainer(net, pl.BP(lr=0.1)), x, y, seeds=2, epochs=1,
               rate_schedule=lambda k, n: jnp.minimum(k / 20.0, 1.0), progress=False)
    for u, v in zip(jax.tree.leaves(a.final_state.params), jax.tree.leaves(b.final_state.params)):
        np.testing.assert_allclose(u, v, rtol=1e-6, atol=1e-7)


def test_drive_records_every_stop_and_reports_each_divergence_once():
    """A toy state (3 networks counting up; network 1 'diverges' past 5): records at 0 and every stop, the
    divergence callback sees network 1 once, with the state before the failing segment."""
    seen, fails = [], []

    def advance(state, start, stop):
        return state + (stop - start), {"steps": stop - start}

    def check(state):
        return np.asarray(state) < np.array([100, 5, 100])

    def diverged(before, start, stop, fresh):
        fails.append((np.asarray(before).tolist(), start, stop, fresh.tolist()))

    state, bad = drive(advance, jnp.zeros(3), [2, 4, 8, 16], lambda s, k, out: seen.append((k, out)),
                       check=check, on_diverged=diverged, progress=False)
    assert [k for k, _ in seen] == [0, 2, 4, 8, 16] and seen[0][1] is None and seen[-1][1] == {"steps": 8}
    assert np.asarray(state).tolist() == [16, 16, 16]
    assert fails == [([4, 4, 4], 4, 8, [False, True, False])]
    assert bad.tolist() == [False, True, False]


def test_drive_cuts_calls_between_evaluations_and_joins_their_outputs():
    """With cuts, the driver advances in more calls than it evaluates: records only at the stops, each with the
    joined outputs of its interval's calls; the divergence check runs after every call (the failing call, not
    the interval, is replayed)."""
    calls, seen, fails = [], [], []

    def advance(state, start, stop):
        calls.append((start, stop))
        return state + (stop - start), [stop - start]

    state, bad = drive(advance, jnp.zeros(2), [4, 10], lambda s, k, out: seen.append((k, out)),
                       check=lambda s: np.asarray(s) < np.array([100, 7]),
                       on_diverged=lambda before, a, b, fresh: fails.append((a, b, fresh.tolist())),
                       progress=False, cuts=[2, 6, 8, 10, 12], join=lambda outs: sum(outs, []))
    assert calls == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]  # cuts at or past the last stop are ignored
    assert seen == [(0, None), (4, [2, 2]), (10, [2, 2, 2])]
    assert fails == [(6, 8, [False, True])] and bad.tolist() == [False, True]


def test_curl_simulator_runs_on_the_driver_with_the_same_dynamics_as_a_manual_loop():
    """simulate (driver + compiled while loops between log points) gives the weights of looping ``epoch`` by hand
    with the same keys."""
    from plasticlab.networks import student_teacher as st

    key = jax.random.PRNGKey(3)
    variants = [(st.flip_signs(6, 0.3, key=jax.random.PRNGKey(1)), np.ones(5))]
    nets, data = st.build_batch(key, 6, 5, 1, variants, n_train=40, n_test=10)
    cfg = st.SimConfig(lr=0.05, batch_size=8)
    out = st.simulate(nets, data, key, 7, cfg, epochs_at=[2, 7])
    net = jax.tree.map(lambda a: a[0, 0], nets)
    one = jax.tree.map(lambda a: a[0], data)
    k = jax.random.split(key, 1)[0]  # one data-order key per seed
    for _ in range(7):
        k, sub = jax.random.split(k)
        net, _ = st.epoch(net, one, cfg, sub)
    np.testing.assert_allclose(out["final"].W1[0, 0], net.W1, rtol=1e-5, atol=1e-7)
    assert out["logs"]["test_error"].shape == (1, 1, 3) and out["epochs"].tolist() == [0, 2, 7]


def test_fused_rescaled_step_equals_the_direct_update_and_variants_share_batches():
    """rules.curl.linear_step_rescaled (three passes, norm by identity) = linear_delta then renormalised; in
    the simulator two identical variants of a seed see the same mini-batches, so they stay identical."""
    from plasticlab.networks import student_teacher as st
    from plasticlab.rules import curl as C

    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(5), 3)
    W1, w2 = jax.random.normal(k1, (7, 4)), jax.random.normal(k2, (7,))
    d1, d2 = jnp.array([1.0, -1, 1, 1]), jnp.where(jnp.arange(7) == 2, -1.0, 1.0)
    x = jax.random.normal(k3, (5, 4))
    y = x @ jnp.ones(4)
    n1, n2 = jnp.linalg.norm(W1), jnp.linalg.norm(w2)
    A1, a2, _ = C.linear_step_rescaled(W1, w2, w2, d1, d2, x, y, 0.1, n1, n2)
    g, _ = C.linear_gradient(W1, w2, x, y)
    dW1, dw2 = C.linear_delta(W1, w2, d1, d2, g, 0.1)
    np.testing.assert_allclose(A1, C.renormalised(W1 + dW1, n1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a2, C.renormalised(w2 + dw2, n2), rtol=1e-5, atol=1e-6)
    signs = (st.flip_signs(6, 0.3, key=jax.random.PRNGKey(1)), np.ones(5))
    nets, data = st.build_batch(jax.random.PRNGKey(0), 6, 5, 2, [signs, signs], n_train=40, n_test=10)
    out = st.simulate(nets, data, jax.random.PRNGKey(4), 6, st.SimConfig(lr=0.05, batch_size=8), epochs_at=[6])
    np.testing.assert_array_equal(out["final"].W1[:, 0], out["final"].W1[:, 1])
    assert not np.allclose(out["final"].W1[0, 0], out["final"].W1[1, 0])  # seeds differ


def test_meta_inner_step_is_the_trainer_step():
    """InnerLoop.step runs Trainer.step of MetaPlasticity with the cross-entropy loss and the identity optimiser."""
    from plasticlab.rules.meta import InnerLoop, init_theta

    net = pl.MLP((6, 5, 3), activation="softplus", use_bias=False)
    loop = InnerLoop(net, ("pseudo_grad", "oja"), ("pseudo_grad",))
    theta = init_theta(loop.terms, loop.b_terms)
    W, B = loop.init(0)
    x, t = jnp.linspace(-1, 1, 6), jnp.asarray(2)
    (W1, B1), loss = loop.step(theta, 0.0, (W, B), (x, t))
    trainer = loop.trainer(theta, 0.0)
    params = pl.Params(tuple(jnp.asarray(w) for w in W), None)
    state = TrainState(params, tuple(jnp.asarray(b) for b in B), trainer.optimizer.init(params), jax.random.PRNGKey(0))
    new, metrics = trainer.step(state, x[None], t[None])
    for a, b in zip(W1, new.params.W):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(loss, -jax.nn.log_softmax(net.forward(params, x[None]).y[-1][0])[2], rtol=1e-6)
