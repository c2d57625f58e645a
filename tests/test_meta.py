"""Meta-learned plasticity: episode sampler, candidate terms, inner loop vs BP/FA, meta-gradient vs finite differences."""

from __future__ import annotations

from plasticlab.experiments.base import RunContext

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest
from jax import enable_x64

from plasticlab.data import DataError, Dataset
from plasticlab.data.episodes import EpisodeSampler
from plasticlab.networks import MLP
from plasticlab.networks.mlp import Params
from plasticlab.rules import BP, FA
from plasticlab.rules.meta import (TERMS, InnerLoop, MetaPlasticity, Theta, combine, combine_feedback, init_theta,
                                   meta_objective, term_value, xavier_init)
from plasticlab.training import Trainer, TrainState


def _id_dataset(n_classes=6, per_class=12, d=5) -> Dataset:
    """Every sample's features hold its unique id (feature 0) so tests can track indices."""
    rng = np.random.default_rng(0)

    def part(offset):
        y = np.repeat(np.arange(n_classes), per_class)
        x = rng.normal(size=(len(y), d)).astype(np.float32)
        x[:, 0] = offset + np.arange(len(y))
        return x, y.astype(np.int32)

    xtr, ytr = part(0)
    xte, yte = part(10_000)
    return Dataset("ids", xtr, ytr, xte, yte, n_classes)


def test_episode_sampler_reproducible_disjoint_and_split():
    data = _id_dataset()
    s = EpisodeSampler(data, n_way=3, k_shot=4, n_query=2, seed=7)
    a, b, c = s.episode(5), EpisodeSampler(data, 3, 4, 2, seed=7).episode(5), s.episode(6)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a.x_support, c.x_support)
    assert a.x_support.shape == (12, 5) and a.x_query.shape == (6, 5)
    ids_s, ids_q = a.x_support[:, 0].astype(int), a.x_query[:, 0].astype(int)
    assert len(set(ids_s)) == 12 and not set(ids_s) & set(ids_q)
    # relabelled classes map back to the original labels
    np.testing.assert_array_equal(a.classes[a.y_support], data.y_train[ids_s])
    np.testing.assert_array_equal(a.classes[a.y_query], data.y_train[ids_q])
    assert np.bincount(a.y_support).tolist() == [4, 4, 4] and np.bincount(a.y_query).tolist() == [2, 2, 2]
    # sample split: held-out episodes come from the test split only
    t = EpisodeSampler(data, 3, 4, 2, split="test", seed=7).episode(0)
    assert t.x_support[:, 0].min() >= 10_000
    # class split: disjoint class sets
    tr = EpisodeSampler(data, 2, 4, 2, split="train", split_mode="classes", heldout_classes=[4, 5])
    te = EpisodeSampler(data, 2, 4, 2, split="test", split_mode="classes", heldout_classes=[4, 5])
    assert set(tr.classes) == {0, 1, 2, 3} and set(te.classes) == {4, 5}
    assert set(te.episode(3).classes) == {4, 5}
    batch = s.batch(2, 3)
    assert batch.x_support.shape == (3, 12, 5)
    np.testing.assert_array_equal(batch.x_query[1], s.episode(3).x_query)
    with pytest.raises(DataError, match="Lower n_way"):
        EpisodeSampler(data, 3, 4, 2, split="test", split_mode="classes", heldout_classes=[4, 5])
    with pytest.raises(ValueError, match="split_mode"):
        EpisodeSampler(data, 3, 4, 2, split_mode="tasks")


def _signals(rng, n=3, d_in=6, d_out=4):
    W = rng.normal(size=(d_out, d_in))
    pre, post = rng.normal(size=(n, d_in)), rng.normal(size=(n, d_out))
    e_pre, e_post = rng.normal(size=(n, d_in)), rng.normal(size=(n, d_out))
    return W, pre, post, e_pre, e_post


def test_terms_match_their_equations():
    """Each term against the matrix form of its equation (batch means of outer products, NumPy)."""
    rng = np.random.default_rng(1)
    W, pre, post, e_pre, e_post = _signals(rng)
    n = pre.shape[0]
    m = lambda a, b: a.T @ b / n  # noqa: E731  <a b^T>
    expected = {
        "pseudo_grad": -m(e_post, pre),
        "error_hebb": -m(e_post, e_pre),
        "oja": m(post, pre) - m(post, post) @ W,
        "hebb": m(post, pre),
        "post_error": -m(post, e_pre),
        "decay": -W,
        "error_oja": -(m(e_post, e_pre) - m(e_post, e_post) @ W),
        "sanger": m(post, pre) - np.tril(m(post, post)) @ W,
    }
    assert set(expected) == set(TERMS)
    names = list(expected)
    theta = rng.normal(size=len(expected))

    @jax.jit
    def all_terms(W, pre, post, e_pre, e_post, theta):
        each = {k: term_value(k, W, pre, post, e_pre, e_post) for k in names}
        gb = combine_feedback(["pseudo_grad", "oja"], jnp.asarray([2.0, 3.0]), W.T, pre, post, e_pre, e_post)
        return each, combine(names, theta, W, pre, post, e_pre, e_post), gb

    each, got, gb = all_terms(*map(jnp.asarray, (W, pre, post, e_pre, e_post, theta)))
    for name, want in expected.items():
        np.testing.assert_allclose(each[name], want, rtol=1e-5, atol=1e-5, err_msg=name)
    np.testing.assert_allclose(got, sum(t * expected[k] for t, k in zip(theta, names)), rtol=1e-4, atol=1e-4)
    # feedback terms: G(B) = F(B^T)^T with B = W^T; for the pseudo-gradient G = -h_{l-1} e_l^T
    want_b = 2.0 * -m(pre, e_post) + 3.0 * (m(pre, post) - W.T @ m(post, post))
    np.testing.assert_allclose(gb, want_b, rtol=1e-5, atol=1e-5)


def _small_task(rng, sizes, n=12, n_q=8):
    xs = rng.uniform(0, 1, (n, sizes[0])).astype(np.float32)
    ts = rng.integers(0, sizes[-1], n).astype(np.int32)
    xq = rng.uniform(0, 1, (n_q, sizes[0])).astype(np.float32)
    tq = rng.integers(0, sizes[-1], n_q).astype(np.int32)
    return xs, ts, xq, tq


def _trainer_run(net, rule, params, rule_state, xs, ts):
    tr = Trainer(net, rule)
    st = TrainState(params, rule_state, tr.optimizer.init(params), jax.random.PRNGKey(0))
    step = jax.jit(lambda s, x, t: tr.step(s, x, t))
    for x, t in zip(xs, ts):
        st, _ = step(st, x[None], t[None])
    return st


def test_pseudo_gradient_with_symmetric_feedback_is_online_bp_and_fixed_b_is_fa():
    sizes = (9, 7, 6, 4)
    net = MLP(sizes, activation="softplus", use_bias=False)
    rng = np.random.default_rng(2)
    xs, ts, _, _ = _small_task(rng, sizes)
    W0, B0 = xavier_init(sizes, 3)
    lr = 0.05
    loop = InnerLoop(net, ("pseudo_grad", "oja"), (), remat=False)
    theta = Theta(jnp.asarray([lr, 0.0]), jnp.zeros(0))
    adapt = jax.jit(lambda th, s: loop.adapt(th, W0, B0, xs, ts, s)[0][0])
    # BP: sym = 1
    W_meta = adapt(theta, 1.0)
    st = _trainer_run(net, BP(lr=lr), Params(tuple(map(jnp.asarray, W0)), None), (), xs, ts)
    for a, b in zip(W_meta, st.params.W):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert max(float(jnp.max(jnp.abs(a - w))) for a, w in zip(W_meta, W0)) > 1e-3  # it did learn
    # FA: sym = 0 with no feedback terms; plasticlab's FA stores B_{l+1} (d_l, d_{l+1}) at index l
    W_fa = adapt(theta, 0.0)
    fa_state = (jnp.zeros((0,)),) + tuple(jnp.asarray(b) for b in B0[1:])
    st = _trainer_run(net, FA(lr=lr), Params(tuple(map(jnp.asarray, W0)), None), fa_state, xs, ts)
    for a, b in zip(W_fa, st.params.W):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(W_fa[0], W_meta[0])


def test_inner_loop_equals_rule_in_trainer_for_all_terms():
    """The scanned inner loop (all terms, plastic B) equals MetaPlasticity stepped by plasticlab's Trainer."""
    sizes = (8, 6, 5, 3)
    net = MLP(sizes, activation="softplus", use_bias=False)
    rng = np.random.default_rng(4)
    xs, ts, _, _ = _small_task(rng, sizes, n=6)
    W0, B0 = xavier_init(sizes, 5)
    terms = tuple(TERMS)
    b_terms = ("pseudo_grad", "error_hebb", "oja", "decay")
    theta = Theta(jnp.asarray(rng.uniform(0.0, 0.05, len(terms)), jnp.float32),
                  jnp.asarray(rng.uniform(0.0, 0.05, len(b_terms)), jnp.float32))
    loop = InnerLoop(net, terms, b_terms)
    (W, B), losses = jax.jit(lambda th: loop.adapt(th, W0, B0, xs, ts, 0.0))(theta)
    rule = MetaPlasticity(theta.w, theta.b, 0.0, terms, b_terms)
    st = _trainer_run(net, rule, Params(tuple(map(jnp.asarray, W0)), None), tuple(map(jnp.asarray, B0)), xs, ts)
    for a, b in zip(W + B, st.params.W + st.rule_state):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert losses.shape == (6,) and bool(jnp.all(jnp.isfinite(losses)))
    with pytest.raises(ValueError, match="unknown plasticity terms"):
        InnerLoop(net, ("pseudo_grad", "bcm"))
    with pytest.raises(ValueError, match="use_bias=False"):
        InnerLoop(MLP(sizes, activation="softplus", use_bias=True))


def test_meta_gradient_matches_finite_differences():
    """jax.grad through the unrolled (rematerialised) inner loop vs central differences, float64."""
    with enable_x64():
        sizes = (6, 4, 3)
        net = MLP(sizes, activation="softplus", use_bias=False)
        rng = np.random.default_rng(6)
        xs, ts, xq, tq = (a.astype(np.float64) if a.dtype == np.float32 else a for a in _small_task(rng, sizes, 6, 6))
        W0, B0 = xavier_init(sizes, 7, dtype=np.float64)
        terms, b_terms = tuple(TERMS), ("pseudo_grad", "error_hebb", "oja", "decay")
        loop = InnerLoop(net, terms, b_terms, remat=True)
        theta = Theta(jnp.asarray(rng.uniform(0.02, 0.2, len(terms))), jnp.asarray(rng.uniform(0.02, 0.2, len(b_terms))))
        batch = lambda a: jax.tree.map(lambda v: jnp.asarray(v)[None], a)  # noqa: E731  one-episode batch
        args = (batch(W0), batch(B0), batch(xs), batch(ts), batch(xq), batch(tq))
        flat, unravel = jax.flatten_util.ravel_pytree(theta)
        # one compiled function gives the gradient and the values for the differences
        vg = jax.jit(jax.value_and_grad(lambda v: meta_objective(loop, unravel(v), *args, 0.0, 0.01)[0]))
        _, ga = vg(flat)
        eps = 1e-6
        fd = np.asarray([(vg(flat.at[i].add(eps))[0] - vg(flat.at[i].add(-eps))[0]) / (2 * eps)
                         for i in range(flat.size)])
        assert ga.dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(ga), fd, rtol=1e-3, atol=1e-8)
        assert np.all(np.abs(np.asarray(ga)) > 1e-6)  # every coefficient influences the query loss


def test_meta_training_seeds_together_equal_their_runs_apart_and_resume(tmp_path):
    """meta_train(seed=[a, b]) (one vmapped outer step) gives each seed's own history, as run alone; an
    interrupted batched run resumes from each seed's checkpoints to the same theta."""
    from plasticlab.experiments.meta import common as mc

    data = _id_dataset(n_classes=4, per_class=10, d=6)
    sampler = EpisodeSampler(data, n_way=2, k_shot=3, n_query=2)
    loop = mc.build_loop(6, (5,), 2, ("pseudo_grad", "oja"), ("pseudo_grad",))
    learner = mc.MetaLearner(loop, lr=1e-2, clip=1.0)
    theta0 = init_theta(loop.terms, loop.b_terms, 0.05)
    kw = dict(meta_batch=2, sym=0.0, ckpt_every=2)
    apart = [mc.meta_train(learner, sampler, theta0, n_episodes=8, seed=s, **kw) for s in (3, 5)]
    dirs = [tmp_path / "a", tmp_path / "b"]
    mc.meta_train(learner, sampler, theta0, n_episodes=4, seed=[3, 5], ckpt_dir=dirs, **kw)
    together = mc.meta_train(learner, sampler, theta0, n_episodes=8, seed=[3, 5], ckpt_dir=dirs, **kw)
    assert isinstance(together, list) and len(together) == 2
    for a, b in zip(apart, together):
        assert b["episode"] == [2, 4, 6, 8]
        np.testing.assert_allclose(b["final_theta_w"], a["final_theta_w"], rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(b["accuracy"], a["accuracy"], atol=1e-6)
    assert not np.allclose(apart[0]["final_theta_w"], apart[1]["final_theta_w"])  # the seeds' episodes differ
    with pytest.raises(ValueError, match="one checkpoint folder per seed"):
        mc.meta_train(learner, sampler, theta0, n_episodes=4, seed=[3, 5], ckpt_dir=tmp_path, **kw)


def test_meta_train_logs_progress_at_least_every_heartbeat_with_the_time_left():
    """A progress line per 10% of the outer steps, plus one whenever ``heartbeat`` seconds passed since the last
    line (a slow episode in a log file), each with the time run and the time left at the rate so far."""
    from plasticlab.experiments.meta import common as mc

    data = _id_dataset(n_classes=4, per_class=10, d=6)
    sampler = EpisodeSampler(data, n_way=2, k_shot=3, n_query=2)
    learner = mc.MetaLearner(mc.build_loop(6, (5,), 2, ("pseudo_grad",), ()), lr=1e-2, clip=1.0)
    theta0 = init_theta(("pseudo_grad",), (), 0.05)

    def lines(heartbeat):
        ticks, out = iter(range(0, 10_000, 200)), []  # the clock: 200 s per call (one call per outer step)
        mc.meta_train(learner, sampler, theta0, n_episodes=30, seed=0, log=out.append, heartbeat=heartbeat,
                      clock=lambda: float(next(ticks)))
        return [ln for ln in out if "meta-loss" in ln]

    per_decile = lines(float("inf"))
    assert [ln.split("/")[0].split()[-1] for ln in per_decile] == [str(e) for e in range(3, 31, 3)]
    with_heartbeat = lines(300.0)  # after episode 2: 400 s since the start, 28 steps left at 200 s each
    assert len(with_heartbeat) == 20 and "episode 2/30" in with_heartbeat[0]
    assert with_heartbeat[0].endswith("400 s, about 5600 s left") and with_heartbeat[-1].endswith("0 s left")


def test_meta_train_resumes_from_checkpoint_and_masks(tmp_path):
    """An interrupted meta-training continues from its last checkpoint to the same theta; masks freeze terms."""
    from plasticlab.experiments.meta import common as mc

    data = _id_dataset(n_classes=4, per_class=10, d=6)
    data.x_train[:, 0] = data.x_train[:, 1]  # drop the id feature (its scale is useless for learning)
    sampler = EpisodeSampler(data, n_way=2, k_shot=3, n_query=2)
    loop = mc.build_loop(6, (5,), 2, ("pseudo_grad", "oja", "decay"), ("pseudo_grad",))
    learner = mc.MetaLearner(loop, lr=1e-2, clip=1.0, l1=1e-3)
    theta0 = init_theta(loop.terms, loop.b_terms, 0.05)
    mask = Theta(jnp.asarray([1.0, 1.0, 0.0]), jnp.asarray([1.0]))
    kw = dict(meta_batch=2, sym=0.0, seed=3, ckpt_every=2, mask=mask)
    full = mc.meta_train(learner, sampler, theta0, n_episodes=8, **kw)
    part = mc.meta_train(learner, sampler, theta0, n_episodes=4, ckpt_dir=tmp_path, **kw)
    assert sorted(p.name for p in tmp_path.glob("ckpt_*.npz")) == ["ckpt_000002.npz", "ckpt_000004.npz"]
    resumed = mc.meta_train(learner, sampler, theta0, n_episodes=8, ckpt_dir=tmp_path, **kw)
    np.testing.assert_allclose(resumed["final_theta_w"], full["final_theta_w"], rtol=1e-6)
    np.testing.assert_allclose(resumed["final_theta_b"], full["final_theta_b"], rtol=1e-6)
    assert resumed["episode"] == [2, 4, 6, 8] and resumed["accuracy"][:2] == part["accuracy"]
    assert full["final_theta_w"][2] == 0.0  # the masked decay coefficient never moved
    assert full["final_theta_w"][0] != theta0.w[0] and full["final_theta_w"][1] != 0.0
    # evaluation: BP baseline theta and per-task accuracies in [0, 1]
    _, acc = mc.evaluate_rule(learner, mc.pseudo_grad_theta(loop, 0.1), sampler, n_tasks=3, sym=1.0, seed=0, batch=2)
    assert acc.shape == (3,) and np.all((acc >= 0) & (acc <= 1))


def test_meta_fig6_reports_missing_emnist(tmp_path):
    from plasticlab.experiments import run_experiment

    with pytest.raises(DataError, match="emnist"):
        run_experiment("meta-fig6", tmp_path / "run", data_dir=tmp_path / "empty", plots=False, progress=False,
                       overrides={"n_episodes": 1})


def test_init_theta_and_xavier():
    th = init_theta(("oja", "pseudo_grad", "decay"), ("pseudo_grad",), lr0=1e-3)
    np.testing.assert_allclose(th.w, [0.0, 1e-3, 0.0])
    np.testing.assert_allclose(th.b, [1e-3])
    W, B = xavier_init((10, 8, 3), 0)
    assert [w.shape for w in W] == [(8, 10), (3, 8)] and [b.shape for b in B] == [(10, 8), (8, 3)]
    assert np.abs(W[0]).max() <= np.sqrt(6 / 18) and np.abs(W[0]).max() > 0.8 * np.sqrt(6 / 18)
    np.testing.assert_array_equal(xavier_init((10, 8, 3), 0)[0][1], W[1])


def test_dataset_head_keeps_original_labels():
    """head="dataset" (the reference code's head): one output per class, episodes keep the original labels."""
    from plasticlab.experiments.meta import common as mc

    data = _id_dataset(n_classes=6, per_class=12, d=5)
    sampler = EpisodeSampler(data, n_way=3, k_shot=4, n_query=2, seed=1)
    assert mc.n_outputs("dataset", 3, 6) == 6 and mc.n_outputs("task", 3, 6) == 3
    loop = mc.build_loop(5, (4,), 6, ("pseudo_grad",), ())
    _, _, xs, ts, xq, tq = mc.episode_inputs(loop, sampler, 2, 2, 0, mc.TRAIN, "dataset")
    ids_s, ids_q = xs[..., 0].astype(int), xq[..., 0].astype(int)
    np.testing.assert_array_equal(ts, data.y_train[ids_s])
    np.testing.assert_array_equal(tq, data.y_train[ids_q])
    assert len(np.unique(ts[0])) == 3 and ts.dtype == np.int32
    with pytest.raises(ValueError, match="head='task' needs 3"):
        mc.episode_inputs(loop, sampler, 0, 1, 0, mc.TRAIN, "task")
    with pytest.raises(ValueError, match="head must be one of"):
        mc.MetaLearner(loop, head="all")


def _loud_task():
    """A small softplus net on inputs scaled by 5 (large activity), its Xavier weights and all three terms."""
    sizes = (8, 6, 5, 3)
    net = MLP(sizes, activation="softplus", use_bias=False)
    xs, ts, xq, tq = _small_task(np.random.default_rng(8), sizes, n=40, n_q=6)
    W0, B0 = xavier_init(sizes, 9)
    return net, 5 * xs, ts, 5 * xq, tq, W0, B0, ("pseudo_grad", "error_hebb", "oja")


def test_growth_guard_stops_blow_up_and_is_inert_otherwise():
    """A negative Oja coefficient on B (Delta B = |c| B h h^T + ...) explodes; the guard keeps the loop finite."""
    net, xs, ts, xq, tq, W0, B0, terms = _loud_task()
    plain, guarded = InnerLoop(net, terms, terms), InnerLoop(net, terms, terms, max_growth=10.0)
    bad = Theta(jnp.asarray([0.05, -0.05, 0.0]), jnp.asarray([0.05, 0.0, -0.5]))
    fine = Theta(jnp.asarray([0.05, -0.02, 0.01]), jnp.asarray([0.05, 0.0, 0.01]))
    run = jax.jit(lambda loop, th: loop.adapt(th, W0, B0, xs, ts, 0.0)[0], static_argnums=0)
    W_bad, _ = run(plain, bad)
    assert not all(bool(jnp.all(jnp.isfinite(w))) for w in W_bad)  # unguarded: blows up
    W_g, B_g = run(guarded, bad)
    for a, a0 in zip(W_g + B_g, W0 + B0):
        assert bool(jnp.all(jnp.isfinite(a))) and float(jnp.linalg.norm(a)) <= 10.0 * np.linalg.norm(a0) * (1 + 1e-5)
    g = jax.grad(lambda th: guarded.episode_loss(th, W0, B0, xs, ts, xq, tq)[0])(bad)
    assert all(bool(jnp.all(jnp.isfinite(v))) for v in g)  # the meta-gradient stays usable
    for a, b in zip(run(plain, fine)[0], run(guarded, fine)[0]):  # a benign rule never touches the bound
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="max_growth"):
        InnerLoop(net, terms, terms, max_growth=0.5)


def test_plastic_feedback_meta_learns_on_digits():
    """The default meta-fig6 setting (plastic B, dataset head, guard) in --quick size learns within 100 episodes:
    the query loss falls below ln 5 (within-task discrimination, not only the 5 task classes) and the
    meta-accuracy is far above chance. With the N-output head the same run stays at ln 5 (docs/meta.md)."""
    from plasticlab.experiments.meta import common as mc
    from plasticlab.experiments.meta.fig6 import MetaFig6Config

    cfg = MetaFig6Config(dataset="digits", hidden=(32, 24), k_shot=10, n_query=5, lr_meta=1e-3)  # --quick's rate
    train_s, _, data = mc.make_samplers(cfg.dataset, None, cfg.n_way, cfg.k_shot, cfg.n_query)
    loop = mc.build_loop(data.n_features, cfg.hidden, mc.n_outputs(cfg.head, cfg.n_way, data.n_classes), cfg.terms,
                         cfg.b_terms, cfg.beta, max_growth=cfg.max_growth)
    learner = mc.MetaLearner(loop, cfg.lr_meta, cfg.clip, head=cfg.head)
    hist = mc.meta_train(learner, train_s, init_theta(cfg.terms, cfg.b_terms, cfg.theta0), n_episodes=100, sym=0.0)
    loss, acc = np.asarray(hist["loss"]), np.asarray(hist["accuracy"])
    assert np.all(np.isfinite(loss)) and sum(hist["skipped"]) == 0
    assert np.mean(loss[:10]) > np.log(5) and np.mean(loss[-25:]) < np.log(5) - 0.2
    assert np.mean(acc[-25:]) > 0.35 > np.mean(acc[:10])


def test_validation_selection_keeps_argmax_theta_on_meta_train_tasks(tmp_path):
    """meta-fig6's model selection: the kept theta is the argmax of the recorded validation curve (and re-scores to
    its maximum), the curve survives a resume, and the validation tasks come from the meta-train split, past the
    meta-training episodes, sharing no image with the held-out tasks (digits has no duplicate across its splits)."""

    from plasticlab.experiments.meta import common as mc
    from plasticlab.experiments.meta.fig6 import HELDOUT_SEED, MetaFig6Config, _meta_runs

    cfg = MetaFig6Config(dataset="digits", hidden=(32, 24), k_shot=10, n_query=5, n_episodes=12, lr_meta=1e-2,
                         select_every=3, n_val_tasks=4, eval_batch=4, ckpt_every=3, n_eval_tasks=8)
    train_s, test_s, data = mc.make_samplers(cfg.dataset, None, cfg.n_way, cfg.k_shot, cfg.n_query)
    loop = mc.build_loop(data.n_features, cfg.hidden, mc.n_outputs(cfg.head, cfg.n_way, data.n_classes), cfg.terms,
                         cfg.b_terms, cfg.beta, max_growth=cfg.max_growth)
    learner = mc.MetaLearner(loop, cfg.lr_meta, cfg.clip, head=cfg.head)
    requested = []
    batch = train_s.batch
    train_s.batch = lambda start, n: requested.append((start, batch(start, n))) or requested[-1][1]
    ctx = RunContext(tmp_path / "a", None, progress=False)
    hist = _meta_runs(cfg, ctx, learner, train_s, [0])[0]

    assert hist["val_episode"] == [3, 6, 9, 12]
    v = np.asarray(hist["val_accuracy"])
    assert len(np.unique(v)) > 1  # the curve moves, so the argmax is not trivially the first point
    k = int(np.argmax(v))
    assert hist["selected_episode"] == hist["val_episode"][k] and hist["selected_val_accuracy"] == v.max()
    np.testing.assert_array_equal(hist["selected_theta_w"], hist["theta_w"][hist["selected_episode"] - 1])
    np.testing.assert_array_equal(hist["selected_theta_b"], hist["theta_b"][hist["selected_episode"] - 1])
    sel = Theta(jnp.asarray(hist["selected_theta_w"]), jnp.asarray(hist["selected_theta_b"]))
    validate = mc.validator(learner, train_s, n_tasks=cfg.n_val_tasks, sym=0.0, seed=HELDOUT_SEED, batch=cfg.eval_batch)
    assert validate(sel) == pytest.approx(v.max(), abs=1e-6)

    # resumable: stop at episode 6, resume to 12 -> same validation curve and selection
    ctx_b = RunContext(tmp_path / "b", None, progress=False)  # one scratch folder for both calls
    _meta_runs(MetaFig6Config(**{**cfg.__dict__, "n_episodes": 6}), ctx_b, learner, train_s, [0])[0]
    resumed = _meta_runs(cfg, ctx_b, learner, train_s, [0])[0]
    np.testing.assert_allclose(resumed["val_accuracy"], v, atol=1e-6)
    assert resumed["selected_episode"] == hist["selected_episode"]

    # validation tasks: meta-train split, indices past the training episodes, no image shared with held-out tasks
    val = [ep for start, ep in requested if start >= mc.SELECT_START]
    assert val and all(start < cfg.n_episodes for start, _ in requested if start < mc.SELECT_START)
    val_rows = {r.tobytes() for ep in val for r in np.concatenate([ep.x_support.reshape(-1, data.n_features),
                                                                      ep.x_query.reshape(-1, data.n_features)])}
    train_rows = {r.tobytes() for r in np.asarray(data.x_train, np.float32)}
    assert val_rows <= train_rows
    _, _, xs, _, xq, _ = mc.episode_inputs(loop, test_s, 0, cfg.n_eval_tasks, HELDOUT_SEED, mc.HELDOUT, cfg.head)
    held_rows = {r.tobytes() for r in np.concatenate([xs.reshape(-1, data.n_features), xq.reshape(-1, data.n_features)])}
    assert held_rows and not val_rows & held_rows


def test_inner_loop_health_stats_and_meta_gradient_norm_match_a_manual_loop():
    """``adapt(rejected=True)``, ``episode_loss_stats`` and ``MetaLearner.step``'s stats against an independent
    computation: a Python loop of unguarded steps that applies the guard's rule by hand (numpy norms), and the
    meta-gradient's norm from ``jax.grad`` of ``meta_objective``."""
    from plasticlab.meta_learning import MetaLearner

    net, xs, ts, xq, tq, W0, B0, terms = _loud_task()
    loop = InnerLoop(net, terms, terms, max_growth=3.0)
    bad = Theta(jnp.asarray([0.02, -0.02, 0.0]), jnp.asarray([0.05, 0.0, 0.01]))  # rejected 4 of 40 steps, late
    # by hand: an unguarded step from the current state, kept only if every matrix stays finite and within 3x
    one = jax.jit(lambda c, x, t: loop.step(bad, 0.0, c, (x, t))[0])
    lim = [3.0 * np.linalg.norm(a) for a in W0 + B0]
    carry, n_rej = (tuple(map(jnp.asarray, W0)), tuple(map(jnp.asarray, B0))), 0
    for x, t in zip(xs, ts):
        new = one(carry, x, t)
        mats = [np.asarray(a, np.float64) for a in new[0] + new[1]]
        if all(np.all(np.isfinite(m)) and np.linalg.norm(m) <= lm for m, lm in zip(mats, lim)):
            carry = new
        else:
            n_rej += 1
    assert 0 < n_rej < len(ts)  # the test exercises both branches
    (W, B), (losses, rej) = jax.jit(lambda th: loop.adapt(th, W0, B0, xs, ts, 0.0, rejected=True))(bad)
    assert int(np.sum(rej)) == n_rej and losses.shape == (len(ts),)
    for a, b in zip(W + B, carry[0] + carry[1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    growth = max(np.linalg.norm(np.asarray(a)) / np.linalg.norm(a0) for a, a0 in zip(carry[0] + carry[1], W0 + B0))
    loss, (acc, st) = jax.jit(lambda th: loop.episode_loss_stats(th, W0, B0, xs, ts, xq, tq))(bad)
    assert float(st["rejected"]) == n_rej and float(st["growth"]) == pytest.approx(growth, rel=1e-5)
    assert 1.0 < growth <= 3.0 * (1 + 1e-5)
    np.testing.assert_allclose(loss, loop.episode_loss(bad, W0, B0, xs, ts, xq, tq)[0], rtol=1e-6)

    # MetaLearner.step: the meta-gradient's norm before clipping (clip 1e-3 clips it) and the per-episode stats
    learner = MetaLearner(loop, lr=1e-3, clip=1e-3)
    batch = lambda a: jax.tree.map(lambda v: jnp.asarray(v)[None], a)  # noqa: E731
    args = (batch(W0), batch(B0), batch(xs), batch(ts), batch(xq), batch(tq))
    g = jax.grad(lambda th: meta_objective(loop, th, *args, 0.0)[0])(bad)
    norm = np.sqrt(sum(np.sum(np.asarray(v, np.float64) ** 2) for v in g))
    mask = jax.tree.map(jnp.ones_like, bad)
    *_, finite, stats = learner.step(bad, learner.init(bad), *args, jnp.float32(0.0), mask)
    assert bool(finite) and norm > 1e-3
    assert float(stats["grad_norm"]) == pytest.approx(norm, rel=1e-4)
    assert float(stats["rejected"]) == n_rej and float(stats["growth"]) == pytest.approx(growth, rel=1e-5)


def test_collapse_status_threshold_and_window():
    """A run is "collapsed" when the mean meta-accuracy of its last 100 episodes is below 1/N + 0.1."""
    from plasticlab.experiments.meta.fig6 import collapse_status

    acc = [0.6] * 150 + [0.25] * 100  # last 100 at 0.25 < 0.2 + 0.1
    c = collapse_status(acc, 5)
    assert c["collapsed"] and c["window"] == 100 and c["meta_accuracy"] == pytest.approx(0.25)
    assert c["threshold"] == pytest.approx(0.3)
    c = collapse_status([0.25] * 150 + [0.6] * 50 + [0.1] * 50, 5)  # last 100: mean 0.35
    assert not c["collapsed"] and c["meta_accuracy"] == pytest.approx(0.35)
    c = collapse_status([0.2, 0.3, 0.31], 10)  # fewer than 100 episodes: all of them; chance 0.1 -> threshold 0.2
    assert c["window"] == 3 and not c["collapsed"]
    with pytest.raises(ValueError, match="at least one"):
        collapse_status([], 5)



def test_meta_sanger_trains_bp_and_fa_on_their_own_nets():
    """S6 trains BP on the 10-layer net and FA on the 5-layer one: ``hidden_bp`` is BP's, ``hidden`` FA's (the
    end-to-end run is the golden quick result's, whose BP net is deeper than its FA net); each rule's loop has
    only its own terms, and the baselines run on the pseudo-gradient's."""
    from dataclasses import replace

    from plasticlab.experiments.meta.sanger import VARIANTS, MetaSangerConfig, build_learners
    from plasticlab.experiments.oja.common import HIDDEN

    cfg = MetaSangerConfig()
    assert cfg.hidden_bp == HIDDEN[10] and cfg.hidden == HIDDEN[5]
    nets = build_learners(cfg, 784, 47)
    assert nets["bp", "pg"].loop.net.sizes == (784, *HIDDEN[10], 47)
    assert nets["fa", "pg"].loop.net.sizes == (784, *HIDDEN[5], 47)
    assert {v: nets["bp", v].loop.terms for v in VARIANTS} == VARIANTS
    same = build_learners(replace(cfg, hidden_bp=cfg.hidden), 784, 10)
    assert all(same["bp", v] is same["fa", v] for v in VARIANTS)  # one net and rule: one learner, compiled once
    only = build_learners(replace(cfg, feedback=("fa",), variants=("pg+oja",)), 64, 10)
    assert sorted(only) == [("fa", "pg"), ("fa", "pg+oja")]


def test_a_rule_on_its_own_terms_meta_trains_as_on_all_terms_with_the_others_frozen():
    """meta-sanger's loops with a rule's terms only (results_version 2) follow the same theta trajectory as the
    former single loop with all three terms and the absent ones frozen at 0 (mask; clipping sees no gradient of a
    frozen coefficient)."""
    from plasticlab.experiments.meta import common as mc
    from plasticlab.experiments.meta.sanger import TERMS as S6_TERMS, over_all_terms

    sampler = EpisodeSampler(_id_dataset(n_classes=4, per_class=10, d=6), n_way=2, k_shot=3, n_query=2)
    kw = dict(n_episodes=4, sym=1.0, seed=0)
    for rule, mask in ((("pseudo_grad", "sanger"), (1.0, 0.0, 1.0)), (("pseudo_grad", "oja"), (1.0, 1.0, 0.0))):
        own = mc.MetaLearner(mc.build_loop(6, (5, 4), 2, rule, (), max_growth=10.0), lr=1e-2, clip=1.0)
        allt = mc.MetaLearner(mc.build_loop(6, (5, 4), 2, S6_TERMS, (), max_growth=10.0), lr=1e-2, clip=1.0)
        a = mc.meta_train(own, sampler, init_theta(rule, (), 0.05), **kw)
        b = mc.meta_train(allt, sampler, init_theta(S6_TERMS, (), 0.05),
                          mask=Theta(jnp.asarray(mask, jnp.float32), jnp.zeros(0, jnp.float32)), **kw)
        np.testing.assert_allclose(over_all_terms(rule, a["theta_w"]), b["theta_w"], rtol=1e-4, atol=1e-7)
        assert np.ptp(np.asarray(a["theta_w"])[:, 1]) > 0  # the rule's second coefficient did move


def test_meta_fig6_on_a_cpu_keeps_each_seeds_meta_training_as_it_ends(tmp_path, monkeypatch):
    """On a CPU the seeds meta-train one after another and each one's unit is written when it ends (with its own
    time): an interruption during seed 1 keeps seed 0's unit, and the rerun trains seed 1 only."""
    import jax

    from plasticlab.experiments.base import run_experiment
    from plasticlab.experiments.meta import fig6

    assert jax.default_backend() == "cpu"
    real, trained, interrupt_at = fig6.mc.meta_train, [], [1]

    def meta_train(*a, seed, **kw):
        if seed in interrupt_at:
            raise KeyboardInterrupt
        trained.append(seed)
        return real(*a, seed=seed, **kw)

    monkeypatch.setattr(fig6.mc, "meta_train", meta_train)
    over = {"n_episodes": 4, "n_eval_tasks": 4, "n_select_tasks": 4, "n_val_tasks": 2, "select_every": 2}
    with pytest.raises(KeyboardInterrupt):
        run_experiment("meta-fig6", tmp_path, quick=True, seeds=2, overrides=over, progress=False, plots=False)
    units = sorted(p.name.split("-")[0] for p in (tmp_path / "units").glob("seed=*_meta-train-*.json"))
    assert units == ["seed=0_meta"] and trained == [0]
    interrupt_at.clear()
    res = run_experiment("meta-fig6", tmp_path, quick=True, seeds=2, overrides=over, progress=False, plots=False)
    assert trained == [0, 1] and set(res["final_theta"]) == {"0", "1"}


def test_meta_sanger_scan_baseline_is_the_selected_bp_and_heldout_is_read_at_the_chosen_coefficients(tmp_path):
    """meta-sanger-scan: c = 0 is BP at the selected rate (its validation accuracy is select_lr's score for that
    rate, on the same tasks), shared by both terms; held-out tasks are read for c = 0 and each term's chosen c
    only; a grid without 0, or an outer-loop setting, is refused before any work."""
    import json

    from plasticlab.experiments.base import ConfigError, run_experiment

    over = {"feedback": ("bp",), "coefficients": (0.0, 1e-3, 3e-2)}
    res = run_experiment("meta-sanger-scan", tmp_path / "run", quick=True, overrides=over, progress=False,
                         plots=False)
    scan = {(r["term"], r["coefficient"]): np.mean(r["accuracy"]) for r in res["scan"]}
    assert sorted(scan) == sorted((t, c) for t in ("oja", "sanger") for c in over["coefficients"])
    assert scan["oja", 0.0] == scan["sanger", 0.0]
    units = json.loads(next((tmp_path / "run" / "units").glob("bp_select-lr-*.json")).read_text())["result"]
    assert scan["oja", 0.0] == pytest.approx(units["grid"][str(res["lr"]["bp"])], abs=1e-6)
    for term in ("oja", "sanger"):
        best = max(over["coefficients"], key=lambda c: scan[term, c])
        assert res["chosen_coefficient"][f"bp/{term}"] == best
    read = {(h["term"], h["coefficient"]) for h in res["heldout"]}
    assert read == {("none", 0.0)} | {(t, c) for t, c in ((t, res["chosen_coefficient"][f"bp/{t}"])
                                                           for t in ("oja", "sanger")) if c}
    with pytest.raises(ConfigError, match="coefficients"):
        run_experiment("meta-sanger-scan", tmp_path / "bad", quick=True, overrides={"coefficients": (1e-3,)},
                       progress=False, plots=False)
    # nothing is meta-trained: an outer-loop setting is refused, not silently ignored
    with pytest.raises(ConfigError, match="unknown setting 'lr_meta'"):
        run_experiment("meta-sanger-scan", tmp_path / "bad2", quick=True, overrides={"lr_meta": 3e-4},
                       progress=False, plots=False)
