"""Learning-rate schedules of the SAM grid trainer: the factor's formula, and the scanned grid against a loop."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticlab.data import load_dataset
from plasticlab.experiments.sam import common as C
from plasticlab.networks import MLP
from plasticlab.rules.sam import SAM
from plasticlab.training import sample_order


@pytest.mark.parametrize("name,expect", [("constant", [1, 1, 1, 1]), ("step", [1, 1, 0.1, 0.1]),
                                         ("cosine", [1, 0.5, 0.5 * (1 + np.cos(0.75 * np.pi)), 0.0])])
def test_lr_multiplier_formula(name, expect):
    got = [float(C.lr_multiplier(name, t, 100)) for t in (0, 50, 75, 100)]
    assert got == pytest.approx(expect, abs=1e-6)


def test_warmup_ramps_linearly_then_hands_over():
    got = [float(C.lr_multiplier("step", t, 100, warmup=0.1)) for t in (0, 4, 9, 50, 80)]
    assert got == pytest.approx([0.1, 0.5, 1.0, 1.0, 0.1])


def test_unknown_schedule_named():
    with pytest.raises(ValueError, match="unknown lr_schedule 'linear'.*constant, step, cosine"):
        C.lr_multiplier("linear", 0, 10)
    with pytest.raises(ValueError, match="lr_warmup must be a fraction"):
        C.lr_multiplier("constant", 0, 10, warmup=1.5)


@pytest.mark.parametrize("method,schedule,warmup", [("sam", "cosine", 0.3), ("sgd", "step", 0.0)])
def test_grid_schedule_matches_stepwise_loop(method, schedule, warmup):
    """train_grid with a schedule equals Trainer.step called with lr * factor(t) at every step t."""
    data = load_dataset("digits").subset(256, 64)
    n_steps, batch = 8, 32
    rule = SAM(lr=0.05, decay=1e-4) if method == "sam" else C.make_rule("sgd", C.Hyper(sgd_lr=0.3))
    tr = C.make_trainer(MLP((64, 16, 12, 10), activation="relu"), rule, "cross_entropy")
    res = C.train_grid(tr, data, lrs=[rule.lr], seeds=[3], epochs=n_steps * batch / 256, batch_size=batch,
                       evals=3, keep_state=True, lr_schedule=schedule, lr_warmup=warmup)
    state = tr.init(jax.random.PRNGKey(3))
    x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    step = jax.jit(lambda lr, s, xb, yb: C._with_rates(tr, lr, None).step(s, xb, yb)[0])
    for t, idx in enumerate(sample_order(3, 256, n_steps, batch)):
        state = step(rule.lr * C.lr_multiplier(schedule, t, n_steps, warmup), state, x[idx], y[idx])
    for got, want in zip(res.final_state.params.W, state.params.W):
        np.testing.assert_allclose(np.asarray(got[0, 0]), np.asarray(want), rtol=1e-4, atol=1e-6)
