"""The convergence criterion (analysis.convergence), fit(until=...) and the chunk-by-chunk sample order."""

from __future__ import annotations

import numpy as np
import pytest

import plasticlab as pl
from plasticlab.analysis.convergence import Stationarity
from plasticlab.rules import BP
from plasticlab.training import History, SampleOrders, sample_order


def _history(loss: np.ndarray, align: np.ndarray | None = None, wnorm: np.ndarray | None = None,
             every: int = 10, log_every: int = 5) -> History:
    """A grid History (cells, seeds, evals) with evaluations every ``every`` steps (batch size 1) and logs every
    ``log_every`` steps; ``align`` / ``wnorm``: (cells, seeds, logs, layers)."""
    cells, seeds, n_eval = loss.shape
    hist = History(list(range(seeds)), cells=cells)
    for e in range(n_eval):
        hist.append(e * every, {"eval_loss": loss[:, :, e]})
    if align is not None:
        hist.log_steps = list(range(log_every, (n_eval - 1) * every + 1, log_every))
        hist.logs = {"align": [align]} | ({"wnorm": [wnorm]} if wnorm is not None else {})
    return hist


def test_flat_curves_hold_and_a_trend_does_not():
    n_eval = 9  # evaluations at steps 0..80; window 4: halves (40, 60] and (60, 80]
    steps = np.arange(5, 81, 5)
    flat = np.ones((1, 1, n_eval))
    loss = np.concatenate([flat, np.linspace(1, 0.5, n_eval)[None, None]], axis=1)  # run 2: loss falls 6% / eval
    align = np.zeros((1, 2, len(steps), 3))
    wnorm = np.ones((1, 2, len(steps), 3))
    held = Stationarity(window=4).held(_history(loss, align, wnorm), batch_size=1)
    assert held.tolist() == [[True, False]]
    # the same by hand: means of the halves of the last 4 evaluations (5..6 and 7..8)
    lo = np.linspace(1, 0.5, n_eval)
    a, b = lo[5:7].mean(), lo[7:9].mean()
    assert abs(b - a) > 0.01 * a
    assert Stationarity(window=4, loss_rtol=1.01 * abs(b - a) / a).held(_history(loss, align, wnorm), 1).all()


def test_each_logged_curve_and_layer_is_judged():
    n_eval, steps = 9, np.arange(5, 81, 5)
    loss = np.ones((1, 3, n_eval))
    align = np.zeros((1, 3, len(steps), 2))
    align[0, 1, steps > 60, 1] = 0.05  # run 1: layer 2's alignment moved by 0.05 in the later half
    wnorm = np.ones((1, 3, len(steps), 2))
    wnorm[0, 2, steps > 60, 0] = 1.02  # run 2: layer 1's norm grew 2% in the later half
    hist = _history(loss, align, wnorm)
    assert Stationarity(window=4).held(hist, 1).tolist() == [[True, False, False]]
    assert Stationarity(window=4, atol=0.06, norm_rtol=0.03).held(hist, 1).all()
    # only logs inside the window count: a jump before it is forgotten
    align2 = np.where(steps[None, None, :, None] <= 40, 5.0, 0.0) * np.ones((1, 3, len(steps), 2))
    assert Stationarity(window=4).held(_history(loss, align2, np.ones_like(align2)), 1).all()


def test_diverged_runs_count_as_held_and_min_samples_waits():
    loss = np.ones((2, 1, 9))
    loss[1, 0, 3:] = np.nan
    hist = _history(loss)
    assert Stationarity(window=4).held(hist, 1).all()
    assert Stationarity(window=4, min_samples=81).held(hist, 1) is None  # last evaluation at sample 80
    assert Stationarity(window=8).held(_history(np.ones((1, 1, 8))), 1) is None  # 7 evaluations after step 0


def test_bad_criterion_is_refused():
    with pytest.raises(ValueError, match="even"):
        Stationarity(window=3)
    with pytest.raises(ValueError, match="atol"):
        Stationarity(atol=0)


def test_sample_orders_by_chunk_equal_the_whole_order():
    seeds, n, bs, steps = [0, 5, 9], 37, 4, 50
    whole = np.stack([sample_order(s, n, steps, bs) for s in seeds])
    orders = SampleOrders(seeds, n, bs)
    bounds = [0, 3, 4, 20, 21, 50]
    for a, b in zip(bounds, bounds[1:]):
        np.testing.assert_array_equal(orders.chunk(a, b), whole[:, a:b])
        np.testing.assert_array_equal(orders.chunk(a, b), whole[:, a:b])  # the last chunk again (a replay)
    with pytest.raises(ValueError, match="already passed"):
        orders.chunk(0, 3)


def test_fit_until_stops_at_the_first_evaluation_that_holds(digits):
    d = digits.subset(n_train=200, n_test=100)
    tr = pl.Trainer(pl.MLP((64, 10), activation="tanh"), BP(lr=1e-6))  # hardly moves: stationary at once
    kw = dict(batch_size=10, eval_every=50, x_eval=d.x_test, y_eval=d.y_test, progress=False)
    crit = Stationarity(window=2, loss_rtol=1e-3, min_samples=200)
    watch = crit.watch(10)
    hist = pl.fit(tr, d.x_train, d.y_train, seeds=2, n_samples=2000, until=watch, log_every=5, **kw)
    assert hist.samples == [0, 50, 100, 150, 200]  # the first evaluation at or after min_samples
    assert watch.first_step.tolist() == [20, 20] and watch.holds.all()
    full = pl.fit(tr, d.x_train, d.y_train, seeds=2, n_samples=200, **kw)  # the same steps without the criterion
    for a, b in zip(hist.final_state.params.W, full.final_state.params.W):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    # a run that keeps learning never holds: the cap ends it
    fast = pl.Trainer(pl.MLP((64, 10), activation="tanh"), BP(lr=0.5))
    watch = Stationarity(window=2, loss_rtol=1e-9).watch(10)
    hist = pl.fit(fast, d.x_train, d.y_train, seeds=1, n_samples=400, until=watch, **kw)
    assert hist.samples[-1] == 400 and not watch.holds.any() and watch.first_step.tolist() == [-1]


def test_the_watch_stops_once_every_run_has_held_not_only_when_all_hold_at_once():
    """Run 0 holds at evaluations 3 and 4 only (steps 30, 40), run 1 from evaluation 6 on: the watch stops at
    evaluation 6 (both have held), though they never hold at the same evaluation; each run's first step is kept."""
    crit = Stationarity(window=2, loss_rtol=0.01)
    watch = crit.watch(batch_size=1)
    # evaluation e of run r: flat (held) or jumping (not held) around it
    wiggle = {0: [1, 2, 1, 1, 1, 3, 1, 3], 1: [1, 2, 1, 3, 1, 2, 2, 2]}
    stop_at = None
    for n in range(3, 9):
        loss = np.array([[wiggle[0][:n], wiggle[1][:n]]], float)  # (cells=1, seeds=2, evals)
        if watch(_history(loss)):
            stop_at = n - 1
            break
    assert stop_at == 6 and watch.first_step.tolist() == [[30, 60]]
    assert watch.holds.tolist() == [[False, True]]


def test_run_grid_judges_the_criterion_at_the_minimum_length_of_its_evaluation_grid():
    """Evaluations fall every round(eval_epochs * steps per epoch / log_every) * log_every steps, so the one nearest
    ``epochs`` can come a few steps before it (here 24 steps for 4 epochs of 6.25): the criterion is judged from
    there on, so a run with max_epochs = epochs says whether it was stationary at its end (it never did)."""
    from plasticlab.experiments.hebb.common import run_grid, spec_for

    rng = np.random.default_rng(0)
    data = (rng.normal(size=(100, 6)).astype(np.float32), rng.integers(0, 3, 100).astype(np.int32),
            rng.normal(size=(20, 6)).astype(np.float32), rng.integers(0, 3, 20).astype(np.int32))
    spec = spec_for("sgd", (6, 5, 3), loss="cross_entropy", batch_size=16, neuron_layer=0)
    loose = Stationarity(window=2, loss_rtol=0.5, atol=1.0, norm_rtol=0.5)  # holds wherever it is judged
    res = run_grid(spec, data, seeds=[0, 1], hp={"lr": 1e-7}, epochs=4.0, log_every=2, window=4, max_epochs=4.0,
                   eval_epochs=1.0, criterion=loose)
    assert res["n_steps"] == 24  # 4 evaluations of 6 steps: 3.84 of the 4 epochs
    assert res["stationary"] == [True, True] and res["stationary_epoch"] == [3.84, 3.84]
