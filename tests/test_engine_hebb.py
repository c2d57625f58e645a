"""The Hebbian-alignment rules on the one driver: ``hebb_optim.trainer`` steps (``Trainer.step``) against the old
engine (tests/hebb_optim_reference.py, the module as it was at git HEAD 31e24b2) for the same weights and batch,
and ``fit(log_every=...)`` against a loop of steps."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import hebb_optim_reference as old
from plasticlab.networks import Params
from plasticlab.networks.front_mlp import FrontMLP, FrontParams
from plasticlab.rules import hebb_optim as ho
from plasticlab.training import TrainState, fit, sample_order

HP = {"lr": 0.1, "gamma": 0.01, "sigma": 0.0, "input_noise": 0.0, "l1": 0.0}
SEQ = (5, 6, 8, 2, 1, 8)  # vocab, length, width, heads, layers, d_ff


def _data(n: int, sizes, tokens: bool = False, classes: bool = False, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, SEQ[0], size=(n, SEQ[1])).astype(np.int32) if tokens else \
        rng.normal(size=(n, sizes[0])).astype(np.float32)
    t = rng.integers(0, sizes[-1], size=n).astype(np.int32) if classes else \
        rng.normal(size=(n, sizes[-1])).astype(np.float32)
    return jnp.asarray(x), jnp.asarray(t)


def _new_params(spec: ho.HebbSpec, p: dict):
    """The old engine's parameter dict as the new network's parameters."""
    W, b = tuple(p["W"]), tuple(p["b"]) if "b" in p else None
    if isinstance(ho.network(spec), FrontMLP):
        return FrontParams(W, b, tuple(tuple(s) for s in p["bn"]) if "bn" in p else None, p.get("front"))
    return Params(W, b)


def _pair(spec: ho.HebbSpec, hp: dict, n: int, seed: int = 0):
    """(old RunState reading the data in order, new Trainer, new TrainState) with the same weights, masks and
    rule state; the new state's key is the old one."""
    st = old.init_run(spec, jax.random.PRNGKey(seed), n)
    st = old.RunState(st.params, st.opt_state, st.rule_state, st.masks, st.key, jnp.arange(n), st.step)
    tr = ho.trainer(spec, hp["lr"], hp["gamma"], hp["sigma"], hp["input_noise"], hp["l1"])
    params = _new_params(spec, st.params)
    rule_state = st.rule_state
    if spec.rule == "dfa":  # old: [B_0, B_1, ..., B_{L-1}]; new: (B_1, ..., B_{L-1}) (+ B_0 with a front)
        rule_state = tuple(st.rule_state[1:]) + ((st.rule_state[0],) if spec.seq is not None else ())
    elif spec.rule == "randomnn":
        rule_state = st.rule_state._replace(proj=_new_params(spec, st.rule_state.proj))
    mask = _new_params(spec, st.masks) if spec.sparsity or spec.frozen else None
    new = TrainState(params, rule_state, tr.optimizer.init(params), st.key, mask)
    return st, tr, new


def _close(a, b, rtol=1e-5, atol=1e-6):
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=rtol, atol=atol)


def _steps_agree(spec: ho.HebbSpec, hp: dict, n_steps: int = 1, tokens: bool = False, classes: bool = False,
                 rtol: float = 1e-5):
    """n_steps of the old train_step and of Trainer.step on the same batches give the same weights, and the
    last step's logged alignment metrics agree."""
    n = spec.batch_size * n_steps
    x, t = _data(n, spec.sizes, tokens, classes)
    st, tr, new = _pair(spec, hp, n)
    for k in range(n_steps):  # op by op: a few steps of small networks run faster than they compile
        last = k == n_steps - 1
        st, m_old = old.train_step(spec, st, hp, x, t, measure=last)
        sl = slice(k * spec.batch_size, (k + 1) * spec.batch_size)
        new, m_new = tr.step(new, x[sl], t[sl], measure=last)
    _close(_new_params(spec, st.params), new.params, rtol=rtol)
    logged = m_new["logged"]
    for key in m_old:
        ref = m_old[key]
        got = m_new["loss"] if key == "loss" else logged[key]
        np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=1e-4, atol=2e-5, err_msg=key)
    return st, new


@pytest.mark.parametrize("rule", ["sgd", "adam", "dfa", "randomnn"])
def test_steps_equal_the_old_engine(rule):
    """Each rule with its paper settings (DFA clip 5 and biases, RandomNN clip 1), weight decay and L1, three
    steps (Adam's moments, RandomNN's clipped sign rule)."""
    spec = ho.HebbSpec(sizes=(5, 8, 7, 3), rule=rule, batch_size=16, neuron_layer=2, use_bias=rule == "dfa",
                       clip={"dfa": 5.0, "randomnn": 1.0}.get(rule))
    _steps_agree(spec, dict(HP, lr=0.05 if rule == "adam" else 0.1, l1=1e-3), n_steps=3)


def test_clipping_acts_before_the_decay():
    """A small clip norm is active (the update is far from the unclipped one) and still equals the old engine."""
    spec = ho.HebbSpec(sizes=(5, 8, 3), rule="dfa", batch_size=16, neuron_layer=0, use_bias=True, clip=0.01)
    st, new = _steps_agree(spec, dict(HP, gamma=0.05))
    _, unclipped = _steps_agree(ho.HebbSpec(**{**spec.__dict__, "clip": None}), dict(HP, gamma=0.05))
    assert not np.allclose(new.params.W[0], unclipped.params.W[0], atol=1e-4)


@pytest.mark.parametrize("rule", ["sgd", "dfa", "randomnn"])
def test_transformer_front_steps_equal_the_old_engine(rule):
    """The transformer front: BP's exact gradient, DFA's B_0 e_L backpropagated through the front, RandomNN on
    the tokens."""
    spec = ho.HebbSpec(sizes=(8, 6, 3), rule=rule, batch_size=8, seq=SEQ, neuron_layer=1,
                       clip={"dfa": 5.0, "randomnn": 1.0}.get(rule), use_bias=rule == "dfa")
    st, new = _steps_agree(spec, HP, tokens=True, rtol=1e-4)
    moved = [float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(new.params.front),
                                                            jax.tree.leaves(_pair(spec, HP, 8)[2].params.front))]
    assert max(moved) > 0  # the front learns


def test_transformer_front_evaluates_a_large_batch_in_chunks_with_the_same_values():
    """A batch over EVAL_CHUNK sequences (a whole validation set) runs through the encoder in lax.map chunks, the
    last one padded: the same h_0 as the encoder applied to every sequence at once."""
    from plasticlab.networks import front_mlp

    net = FrontMLP((8, 6, 3), front=SEQ)
    params = net.init(jax.random.PRNGKey(1))
    n = 2 * front_mlp.EVAL_CHUNK + 3
    tokens = jax.random.randint(jax.random.PRNGKey(2), (n, SEQ[1]), 0, SEQ[0])
    whole = jax.jit(lambda p, x: front_mlp.eqx.combine(p, front_mlp._encoder_static(SEQ)).batch(x))(
        params.front, tokens)
    chunked = jax.jit(net.forward)(params, tokens).h[0]
    np.testing.assert_allclose(np.asarray(chunked), np.asarray(whole), rtol=1e-5, atol=1e-6)


def test_masks_batch_norm_and_classification_equal_the_old_engine():
    """Pruned and frozen weights (their updates masked to zero), batch norm, cross-entropy."""
    for kw in ({"sparsity": 0.5}, {"frozen": 0.5}, {"batchnorm": True}):
        spec = ho.HebbSpec(sizes=(5, 8, 7, 4), rule="sgd", loss="cross_entropy", batch_size=16, neuron_layer=1,
                           **kw)
        st, new = _steps_agree(spec, dict(HP, l1=1e-3), n_steps=2, classes=True)
        if not kw.get("batchnorm"):
            m = np.asarray(new.mask.W[0])
            assert 0 < m.mean() < 1
            w0 = _pair(spec, HP, 32)[2].params.W[0]
            np.testing.assert_array_equal(np.asarray(new.params.W[0])[m == 0], np.asarray(w0)[m == 0])


def test_weight_noise_modes_equal_the_old_engine():
    """persistent: the step at P + sigma eps (the noise stays); perturbed: the signal at P + sigma eps, the step
    from P. The noise is the new Trainer's (a step at lr 0 returns P + sigma eps); the old engine then steps from
    there without noise of its own."""
    spec = ho.HebbSpec(sizes=(5, 8, 3), rule="sgd", batch_size=16, neuron_layer=2, frozen=0.25)
    x, t = _data(16, spec.sizes)
    hp = dict(HP, sigma=0.1, gamma=0.0)
    st, tr, new = _pair(spec, hp, 16)
    noisy, _ = ho.trainer(spec, 0.0, 0.0, hp["sigma"]).step(new, x, t)
    assert np.all(np.asarray(noisy.params.W[0] != new.params.W[0]) == (np.asarray(new.mask.W[0]) == 1))
    st_noisy = old.RunState({**st.params, "W": list(noisy.params.W)}, st.opt_state, st.rule_state, st.masks, st.key,
                            st.perm, st.step)
    ref, _ = old.train_step(spec, st_noisy, dict(hp, sigma=0.0), x, t)
    got, _ = tr.step(new, x, t)
    _close(ref.params["W"], got.params.W)
    perturbed = ho.HebbSpec(**{**spec.__dict__, "noise_mode": "perturbed"})
    got, _ = ho.trainer(perturbed, hp["lr"], 0.0, hp["sigma"]).step(new, x, t)
    # gamma = 0: the step P' -> P' + lr g(P') of the old engine, applied from the clean P
    _close([w + r - n for w, r, n in zip(new.params.W, ref.params["W"], noisy.params.W)], got.params.W)


def test_dropout_and_input_noise_signals_equal_the_old_engine():
    """Dropout: the train-mode forward with the step's key; input noise: the step's noisy batch."""
    spec = ho.HebbSpec(sizes=(5, 8, 7, 3), rule="sgd", batch_size=16, neuron_layer=0, dropout=0.5)
    x, t = _data(16, spec.sizes)
    st, tr, new = _pair(spec, HP, 16)
    key = jax.random.PRNGKey(3)
    g_old, taps, _ = old.learning_signal(spec, st.params, (), x, t, key)
    sig = tr.signals(new.params, new.rule_state, x, t, key)
    deltas, _ = tr.rule.update(tr.net, new.params, new.rule_state, sig, key)
    _close(g_old["W"], deltas.W)
    _close([tp[0] for tp in taps], sig.fwd.h[:-1])
    assert float(jnp.mean(sig.fwd.h[1] == 0)) > 0.2  # dropout acted
    # input noise: the Trainer's noise key is the 4th of five from the state's key
    plain = ho.HebbSpec(sizes=(5, 8, 3), rule="sgd", batch_size=16, neuron_layer=0)
    st, tr, new = _pair(plain, dict(HP, input_noise=0.5), 16)
    got, _ = tr.step(new, x, t)
    x_noisy = x + 0.5 * jax.random.normal(jax.random.split(new.key, 5)[3], x.shape)
    ref, _ = old.train_step(plain, st, HP, x_noisy, t)
    _close(ref.params["W"], got.params.W)


def test_fit_logs_the_step_metrics_of_every_log_every_th_step():
    """fit(log_every) equals a loop of Trainer.step (measure on steps 3, 6, ...) over fit's own data order."""
    spec = ho.HebbSpec(sizes=(5, 6, 3), rule="sgd", batch_size=8, neuron_layer=1)
    x, t = _data(40, spec.sizes)
    trainers = [ho.trainer(spec, 0.1, g) for g in (0.0, 0.02)]
    hist = fit(trainers, x, t, seeds=[4], n_samples=80, batch_size=8, eval_every=40, progress=False, log_every=3)
    assert hist.log_steps == [3, 6, 9]
    assert hist.logged("align").shape == (2, 1, 3, 2) and hist.logged("neuron").shape == (2, 1, 3, 6)
    for c, tr in enumerate(trainers):
        state, logs = tr.init(jax.random.PRNGKey(4)), []
        for k, idx in enumerate(sample_order(4, 40, 10, 8)):
            state, m = tr.step(state, x[idx], t[idx], measure=(k + 1) % 3 == 0)
            if (k + 1) % 3 == 0:
                logs.append(m["logged"]["align_all"])
        np.testing.assert_allclose(hist.logged("align_all")[c, 0], logs, rtol=1e-4, atol=1e-6)
        _close(hist.final_state.params.W[0][c, 0], state.params.W[0])


def test_train_maps_runs_onto_cells_and_seeds():
    """Runs (seed, gamma, sigma) in any order: each run equals the same run trained alone."""
    spec = ho.HebbSpec(sizes=(5, 6, 3), rule="sgd", batch_size=8, neuron_layer=0, noise_mode="perturbed")
    x, t = _data(32, spec.sizes)
    kw = dict(n_steps=8, log_every=2, n_evals=2)
    runs = {"seeds": [1, 0, 1, 0], "gamma": [0.0, 0.0, 0.01, 0.01], "sigma": [0.05, 0.05, 0.0, 0.0]}
    out = ho.train(spec, x, t, x, t, seeds=runs["seeds"], hp={"gamma": runs["gamma"], "sigma": runs["sigma"]}, **kw)
    assert out["align"].shape == (4, 4, 2) and out["val_loss"].shape == (4, 3)
    np.testing.assert_array_equal(out["step"], [2, 4, 6, 8])
    np.testing.assert_array_equal(out["eval_step"], [0, 4, 8])
    for r in (0, 3):
        alone = ho.train(spec, x, t, x, t, seeds=[runs["seeds"][r]],
                         hp={"gamma": runs["gamma"][r], "sigma": runs["sigma"][r]}, **kw)
        np.testing.assert_allclose(out["align"][r], alone["align"][0], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(out["params"]["W"][1][r], alone["params"]["W"][1][0], rtol=1e-4, atol=1e-6)


def test_train_in_groups_of_max_runs_gives_the_numbers_of_all_runs_at_once():
    """``max_runs`` trains a learning rate's cells x seeds in groups (3 seeds: groups of 2 and 1 seed, one cell
    each) with every run's numbers as when all are vmapped together; with a convergence criterion, which judges
    all runs of a learning rate together, a split is refused."""
    from plasticlab.analysis.convergence import Stationarity

    spec = ho.HebbSpec(sizes=(5, 6, 3), rule="sgd", batch_size=8, neuron_layer=0)
    x, t = _data(32, spec.sizes)
    kw = dict(seeds=[0, 1, 2] * 2, hp={"gamma": np.repeat([0.0, 0.01], 3)}, n_steps=8, log_every=2, n_evals=2)
    together, grouped = ho.train(spec, x, t, x, t, **kw), ho.train(spec, x, t, x, t, max_runs=2, **kw)
    for key in ("align", "val_loss", "wnorm"):
        np.testing.assert_allclose(grouped[key], together[key], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(grouped["params"]["W"][0], together["params"]["W"][0], rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(grouped["step"], together["step"])
    with pytest.raises(ValueError, match="max_runs=2 splits the 6 runs"):
        ho.train(spec, x, t, x, t, max_runs=2, until=Stationarity(), **kw)
    with pytest.raises(ValueError, match="max_runs must be >= 1"):
        ho.train(spec, x, t, x, t, max_runs=0, **kw)


def _old_params(p) -> dict:
    """The new network's parameters as the old engine's dict."""
    out = {"W": list(p.W)}
    if p.b is not None:
        out["b"] = list(p.b)
    if isinstance(p, FrontParams) and p.bn is not None:
        out["bn"] = [tuple(s) for s in p.bn]
    if isinstance(p, FrontParams) and p.front is not None:
        out["front"] = p.front
    return out


def _old_run(spec: ho.HebbSpec, hp: dict, seed: int, x, t, n_steps: int, log_every: int,
             step) -> tuple[dict, list]:
    """The old engine's train_step (``step(state, hp, x, t, measure)``) driven by fit's initial state
    (Trainer.init of the seed) and data order (training.sample_order): final weights and the logged metrics."""
    tr = ho.trainer(spec, **hp)
    new = tr.init(jax.random.PRNGKey(seed))
    rule_state = new.rule_state
    if spec.rule == "dfa":
        rule_state = [jnp.zeros((spec.sizes[0], spec.sizes[-1])), *new.rule_state]
    elif spec.rule == "randomnn":
        rule_state = new.rule_state._replace(proj=_old_params(new.rule_state.proj))
    params = _old_params(new.params)
    opt = optax.scale_by_adam() if spec.rule == "adam" else optax.identity()
    masks = jax.tree.map(jnp.ones_like, params) if new.mask is None else _old_params(new.mask)
    B = spec.batch_size
    state = old.RunState(params, opt.init(params), rule_state, masks, new.key, jnp.arange(B), jnp.zeros((), jnp.int32))
    hp = {k: jnp.float32(v) for k, v in hp.items()}
    logs = []
    for k, idx in enumerate(sample_order(seed, x.shape[0], n_steps, B)):
        state, m = step(state, hp, x[idx], t[idx], (k + 1) % log_every == 0)
        state = old.RunState(state.params, state.opt_state, state.rule_state, state.masks, state.key, state.perm,
                             jnp.zeros((), jnp.int32))  # always read the batch given, in order
        if m is not None:
            logs.append(m)
    return state.params, logs


@pytest.mark.parametrize("rule", ["sgd", "adam", "dfa", "randomnn"])
def test_train_equals_the_old_engine_on_the_same_initial_weights_and_data_order(rule):
    """hebb_optim.train (fit: grid of gammas x seeds, chunks, logs) step for step equals the old engine started
    from the same weights and fed the same batches: the golden results move only by the random draws."""
    spec = ho.HebbSpec(sizes=(5, 8, 7, 3), rule=rule, batch_size=16, neuron_layer=2, use_bias=rule == "dfa",
                       clip={"dfa": 5.0, "randomnn": 1.0}.get(rule))
    x, t = _data(40, spec.sizes)
    lr, gammas, seeds = (0.02 if rule == "adam" else 0.1), [0.0, 0.02], [3, 5]
    out = ho.train(spec, x, t, x, t, seeds=seeds * 2, hp={"lr": lr, "gamma": np.repeat(gammas, 2)}, n_steps=12,
                   log_every=3, n_evals=2)
    step = jax.jit(lambda s, hp, xb, tb, m: old.train_step(spec, s, hp, xb, tb, measure=m), static_argnums=4)
    for r, (gamma, seed) in enumerate(zip(np.repeat(gammas, 2), seeds * 2)):
        params, logs = _old_run(spec, dict(HP, lr=lr, gamma=float(np.float32(gamma))), seed, x, t, 12, 3, step)
        _close(params["W"], [w[r] for w in out["params"]["W"]], rtol=1e-4)
        for key in ("align", "align_full", "align_all", "wnorm", "loss", "neuron"):
            np.testing.assert_allclose(out[key][r], np.stack([m[key] for m in logs]), rtol=1e-4, atol=2e-5,
                                       err_msg=key)


def test_train_until_stationary_stops_each_rate_and_finals_read_each_runs_own_end():
    """Two learning rates under a convergence criterion: the slow rate is stationary at once and stops, the fast
    one trains to the cap; shorter curves end in NaN, and each run's final window, loss and weights are those of
    the same run trained alone for its own length."""
    from plasticlab.analysis.convergence import Stationarity

    spec = ho.HebbSpec(sizes=(5, 6, 3), rule="sgd", batch_size=8, neuron_layer=0)
    x, t = _data(64, spec.sizes)
    crit = Stationarity(window=2, loss_rtol=1e-3, atol=2.0, norm_rtol=1e-3)  # cosines: any (batch noise)
    out = ho.train(spec, x, t, x, t, seeds=[0, 0], hp={"lr": [1e-7, 0.5]}, n_steps=40, log_every=2, n_evals=10,
                   until=crit)
    assert out["steps_run"].tolist() == [8, 40] and out["stationary"].tolist() == [True, False]
    assert out["stationary_step"].tolist() == [8, -1]
    assert np.isnan(out["val_loss"][0, 3:]).all() and np.isfinite(out["val_loss"][1]).all()
    assert np.isnan(out["align"][0, 4:]).all() and np.isfinite(out["align"][0, :4]).all()
    fin = ho.final_window(out["align"], out["step"], 4)
    for r, (lr, n) in enumerate([(1e-7, 8), (0.5, 40)]):
        alone = ho.train(spec, x, t, x, t, seeds=[0], hp={"lr": lr}, n_steps=n, log_every=2, n_evals=n // 4)
        np.testing.assert_allclose(fin[r], ho.final_window(alone["align"], alone["step"], 4)[0], rtol=1e-5)
        np.testing.assert_allclose(ho.last_finite(out["val_loss"])[r], alone["val_loss"][0, -1], rtol=1e-5)
        np.testing.assert_allclose(out["params"]["W"][1][r], alone["params"]["W"][1][0], rtol=1e-5, atol=1e-7)
