"""SAM (and any MLP rule) trains through the public ``plasticlab.fit`` exactly as a hand-written loop of its step."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import plasticlab as pl
from plasticlab.training import sample_order, scale_rates


def _manual(trainer, x, y, seed, n_steps, batch_size, schedule=None):
    """The pre-driver code path: Trainer.step over the batches of ``sample_order``, rates scaled by ``schedule``."""
    state = trainer.init(jax.random.PRNGKey(seed))
    order = sample_order(seed, len(x), n_steps, batch_size)
    step = jax.jit(lambda tr, s, xb, yb: tr.step(s, xb, yb))
    for k, idx in enumerate(order):
        tr = trainer if schedule is None else eqx.tree_at(lambda t: t.rule, trainer,
                                                          scale_rates(trainer.rule, schedule(k, n_steps)))
        state, _ = step(tr, state, jnp.asarray(x[idx]), jnp.asarray(y[idx]))
    return state


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(240, 12)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.int32)


def test_sam_through_fit_equals_its_step_loop(data):
    """A user-built MLP with SAM: fit (2 seeds, a grid of 2 rates) ends where the per-step loop ends, W and the
    rule state (Wbar, V, Vbar) alike."""
    x, y = data
    net = pl.MLP((12, 16, 16, 2), activation="relu")
    trainers = [pl.Trainer(net, pl.SAM(lr=lr, decay=1e-4), init_method="kaiming") for lr in (0.02, 0.05)]
    hist = pl.fit(trainers, x, y, seeds=[0, 1], epochs=2, batch_size=16, evals=3, progress=False)
    n_steps = 2 * len(x) // 16
    for c, tr in enumerate(trainers):
        for j, seed in enumerate([0, 1]):
            ref = _manual(tr, x, y, seed, n_steps, 16)
            got = jax.tree.map(lambda a: a[c, j], hist.final_state)
            for a, b in zip(jax.tree.leaves((got.params, got.rule_state)), jax.tree.leaves((ref.params, ref.rule_state))):
                np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_rate_schedule_scales_every_rate_per_step(data):
    """rate_schedule(k, T) multiplies the rule's lr at step k: fit equals the loop with lr * schedule(k, T)."""
    x, y = data
    net = pl.MLP((12, 16, 2), activation="relu")
    tr = pl.Trainer(net, pl.SAM(lr=0.05, decay=1e-4))
    sched = lambda k, T: jnp.where(k >= 0.5 * T, 0.1, 1.0)  # noqa: E731
    hist = pl.fit(tr, x, y, seeds=[3], epochs=1, batch_size=8, evals=2, rate_schedule=sched, progress=False)
    ref = _manual(tr, x, y, 3, len(x) // 8, 8, schedule=sched)
    got = jax.tree.map(lambda a: a[0], hist.final_state)
    for a, b in zip(jax.tree.leaves(got.params), jax.tree.leaves(ref.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_record_divergence_keeps_the_other_cells_and_names_the_matrix(data):
    """on_divergence="record": the exploding cell's seeds are NaN with a message naming step, seed, matrix and rates;
    the stable cell trains on."""
    x, y = data
    net = pl.MLP((12, 16, 2), activation="relu")
    grid = [pl.Trainer(net, pl.SAM(lr=lr, decay=0.0)) for lr in (0.01, 80.0)]
    hist = pl.fit(grid, x, y, seeds=2, epochs=3, batch_size=16, evals=3, x_eval=x, y_eval=y,
                  on_divergence="record", progress=False)
    acc = hist.final("eval_accuracy")
    assert acc.shape == (2, 2) and np.isfinite(acc[0]).all() and np.isnan(acc[1]).all()
    assert hist.diverged[0] is None and hist.seed_diverged[1].all()
    assert "diverged at step" in hist.diverged[1] and "lr=80" in hist.diverged[1] and "seed" in hist.diverged[1]


def test_grid_refuses_trainers_that_differ_in_structure(data):
    x, y = data
    net = pl.MLP((12, 16, 2))
    with pytest.raises(ValueError, match="differ only in numbers"):
        pl.fit([pl.Trainer(net, pl.BP(lr=0.1)), pl.Trainer(net, pl.FA(lr=0.1))], x, y, progress=False)
