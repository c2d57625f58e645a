"""Meta-learning of plasticity rules (Oja paper, Fig. 6b-d and S6): episode samplers, the outer loop, evaluation.

- ``make_samplers``: meta-train / held-out episode samplers from a data set.
- ``MetaLearner``: the jitted outer step (Adam on theta through the unrolled inner loop, gradient
  clipping, optional L1, non-finite meta-gradients skipped) and the jitted evaluation of a rule on
  a batch of episodes.
- ``meta_train``: the outer loop with resumable checkpoints of theta (and Adam's state) every
  ``ckpt_every`` episodes, and validation-based model selection: every ``select_every`` episodes
  theta is scored on fixed selection tasks and the best one is kept (``validator``).
- ``evaluate_rule`` / ``select_lr``: held-out adaptation accuracy of a rule, and the BP / FA
  learning rate picked from a grid on meta-train tasks. ``select_lr`` and ``validator`` use the
  same selection tasks (meta-TRAIN split, purpose SELECT, episodes from ``SELECT_START`` on), so the
  baselines' learning rate and the learned theta are chosen on the same data, never on held-out tasks.

Per-episode initial weights come from ``xavier_init`` seeded by (seed, purpose, episode), so the
learned rule, BP and FA see the same data and the same initial W (and B) on every task.

Output head (``head``): "dataset" (default, the authors' reference code: one output unit per class of
the data set, 47 for EMNIST balanced, and every episode keeps the original labels, so a 5-way task
trains 5 of the outputs and the prediction is the argmax over all of them) or "task" (N outputs,
the episode's classes relabelled 0..N-1).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .data import load_dataset
from .data.episodes import Episode, EpisodeSampler
from .interrupt import raise_if_requested
from .networks import MLP
from .rules.meta import InnerLoop, Theta, meta_objective, xavier_init

TRAIN, SELECT, HELDOUT = 1, 2, 3  # purposes in the initialisation seeds
SELECT_START = 10_000_000  # first episode index of the selection tasks (meta-training uses 0..n_episodes-1)


HEADS = ("dataset", "task")


def n_outputs(head: str, n_way: int, n_classes: int) -> int:
    """Output units: the data set's class count (head "dataset") or the task's N (head "task")."""
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, got {head!r}")
    return n_classes if head == "dataset" else n_way


def make_samplers(dataset: str, data_dir, n_way: int, k_shot: int, n_query: int, split_mode: str = "samples",
                  seed: int = 0) -> tuple[EpisodeSampler, EpisodeSampler, object]:
    """(meta-train sampler, held-out sampler, data set)."""
    data = load_dataset(dataset, data_dir)
    kw = dict(n_way=n_way, k_shot=k_shot, n_query=n_query, split_mode=split_mode, seed=seed)
    return EpisodeSampler(data, split="train", **kw), EpisodeSampler(data, split="test", **kw), data


def build_loop(n_features: int, hidden: Sequence[int], n_out: int, terms: Sequence[str], b_terms: Sequence[str],
               beta: float = 10.0, remat: bool = True, max_growth: float | None = None) -> InnerLoop:
    """Softplus(beta), bias-free MLP d_0-hidden-n_out with the given candidate terms (n_out from ``n_outputs``);
    ``max_growth``: the inner loop's divergence guard (``InnerLoop``)."""
    net = MLP((n_features, *hidden, n_out), activation="softplus", output_activation="linear", beta=beta,
              use_bias=False)
    return InnerLoop(net, tuple(terms), tuple(b_terms), remat, max_growth)


def episode_inputs(loop: InnerLoop, sampler: EpisodeSampler, start: int, n: int, seed: int, purpose: int,
                   head: str = "task") -> tuple:
    """(W0, B0, xs, ts, xq, tq) for episodes start..start+n-1, stacked on a leading axis.

    Labels are the episode's 0..N-1 (head "task") or the original class labels (head "dataset").
    """
    ep: Episode = sampler.batch(start, n)
    n_out = loop.net.sizes[-1]
    if n_out != n_outputs(head, sampler.n_way, sampler.data.n_classes):
        raise ValueError(f"the network has {n_out} outputs but head={head!r} needs "
                         f"{n_outputs(head, sampler.n_way, sampler.data.n_classes)}")
    inits = [xavier_init(loop.net.sizes, [seed, purpose, i]) for i in range(start, start + n)]
    W0 = tuple(np.stack([w[0][l] for w in inits]) for l in range(loop.net.n_layers))
    B0 = tuple(np.stack([w[1][l] for w in inits]) for l in range(loop.net.n_layers))
    ts, tq = ep.y_support, ep.y_query
    if head == "dataset":
        ts = np.take_along_axis(ep.classes, ts, axis=1).astype(np.int32)
        tq = np.take_along_axis(ep.classes, tq, axis=1).astype(np.int32)
    return W0, B0, ep.x_support, ts, ep.x_query, tq


class MetaLearner:
    """Adam (lr) on theta through the unrolled inner loop, with global-norm clipping and optional L1.

    ``step(theta, opt_state, W0, B0, xs, ts, xq, tq, sym, mask)``: one outer step on a batch of
    episodes (``step_seeds``: the same for several meta-training seeds at once, every argument but ``sym`` and
    ``mask`` with a leading seeds axis); ``mask`` (a Theta of 0/1) freezes coefficients, so one compiled step serves several
    candidate sets drawn from the same terms.
    A meta-gradient with a non-finite entry (an inner loop that diverged) is skipped
    (``optax.apply_if_finite``) and counted. The step returns (theta, opt_state, loss, acc, finite, stats), stats =
    {"grad_norm": the meta-gradient's global norm before clipping, "rejected": inner-loop updates the guard
    rejected (mean over the batch's episodes), "growth": the largest ||W_l|| / ||W_l(0)|| or ||B_l|| / ||B_l(0)||
    after adaptation}. ``head`` ("dataset" or "task", see the module docstring) fixes the labels the episodes are
    given.
    """

    def __init__(self, loop: InnerLoop, lr: float = 1e-3, clip: float = 1.0, l1: float = 0.0, head: str = "task"):
        n_outputs(head, 1, 1)  # validates the name
        self.loop, self.lr, self.clip, self.l1, self.head = loop, lr, clip, l1, head
        chain = [optax.clip_by_global_norm(clip)] if clip and clip > 0 else []
        self.opt = optax.apply_if_finite(optax.chain(*chain, optax.adam(lr)), max_consecutive_errors=1 << 30)

        def step(theta, opt_state, W0, B0, xs, ts, xq, tq, sym, mask):
            (_, (loss, acc, stats)), g = jax.value_and_grad(
                lambda th: meta_objective(loop, th, W0, B0, xs, ts, xq, tq, sym, l1, stats=True), has_aux=True)(theta)
            g = jax.tree.map(jnp.multiply, g, mask)  # frozen coefficients get no gradient (Adam leaves them)
            finite = jnp.all(jnp.asarray([jnp.all(jnp.isfinite(a)) for a in jax.tree.leaves(g)]))
            stats["grad_norm"] = optax.tree.norm(g)  # the global norm, before clipping
            upd, opt_state = self.opt.update(g, opt_state, theta)
            return optax.apply_updates(theta, upd), opt_state, loss, acc, finite, stats

        def evaluate(theta, W0, B0, xs, ts, xq, tq, sym):
            return jax.vmap(lambda *a: loop.episode_loss(theta, *a, sym))(W0, B0, xs, ts, xq, tq)

        self.step = jax.jit(step)
        # meta-training seeds together: theta, Adam's state and the episodes carry a leading seeds axis
        self.step_seeds = jax.jit(jax.vmap(step, in_axes=(0, 0, 0, 0, 0, 0, 0, 0, None, None)))
        self.evaluate = jax.jit(evaluate)

    def init(self, theta: Theta):
        return self.opt.init(theta)


STAT_KEYS = ("grad_norm", "rejected", "growth")  # per outer step, from ``MetaLearner.step``


_CKPT = re.compile(r"ckpt_(\d{6})\.npz$")


def save_checkpoint(ckpt_dir: Path, episode: int, theta: Theta, opt_state, history: dict) -> Path:
    """ckpt_dir/ckpt_EEEEEE.npz with theta, Adam's state and the history so far (atomic write)."""
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    arrays = {"theta_w": np.asarray(theta.w), "theta_b": np.asarray(theta.b), "episode": np.asarray(episode)}
    for i, leaf in enumerate(jax.tree.leaves(opt_state)):
        arrays[f"opt_{i}"] = np.asarray(leaf)
    for k, v in history.items():
        arrays[f"hist_{k}"] = np.asarray(v)
    path = ckpt_dir / f"ckpt_{episode:06d}.npz"
    tmp = ckpt_dir / f".tmp{os.getpid()}.npz"
    np.savez(tmp, **arrays)
    tmp.replace(path)
    return path


def load_checkpoint(ckpt_dir: Path, opt_template, at: int | None = None) -> tuple[int, Theta, object, dict] | None:
    """The latest checkpoint in ckpt_dir (or the one of episode ``at``) as (episode, theta, opt_state, history),
    or None."""
    if not ckpt_dir.exists():
        return None
    found = sorted((int(m.group(1)), p) for p in ckpt_dir.iterdir() if (m := _CKPT.search(p.name)))
    found = [f for f in found if at is None or f[0] == at]
    if not found:
        return None
    _, path = found[-1]
    z = np.load(path)
    leaves, tree = jax.tree.flatten(opt_template)
    opt_state = jax.tree.unflatten(tree, [jnp.asarray(z[f"opt_{i}"], dtype=jnp.asarray(l).dtype)
                                          for i, l in enumerate(leaves)])
    hist = {k[5:]: z[k].tolist() for k in z.files if k.startswith("hist_")}
    return int(z["episode"]), Theta(jnp.asarray(z["theta_w"]), jnp.asarray(z["theta_b"])), opt_state, hist


def meta_train(learner: MetaLearner, sampler: EpisodeSampler, theta0: Theta, *, n_episodes: int, meta_batch: int = 1,
               sym: float = 0.0, seed: int | list[int] = 0, ckpt_dir: Path | list[Path] | None = None,
               ckpt_every: int = 50, log: Callable[[str], None] | None = None, mask: Theta | None = None,
               validate: Callable[[Theta], float] | None = None, select_every: int = 0,
               heartbeat: float = 300.0, clock: Callable[[], float] = time.perf_counter) -> dict | list[dict]:
    """Meta-train theta for ``n_episodes`` episodes (``meta_batch`` per Adam step), resuming from ckpt_dir.

    ``seed`` a list (with one ``ckpt_dir`` per seed): those meta-training runs go together, one vmapped outer step
    for all of them (each its own episodes, theta and Adam state, all from ``theta0``), and a list of histories
    comes back; a single seed gives its history.
    ``mask`` (a Theta of 0/1, default all 1) freezes coefficients at their initial value.
    Returns the history: per outer step the episode count, the query loss and accuracy before the
    step's update (the meta-accuracy curve), theta after it, whether the step was skipped, the meta-gradient's
    norm before clipping (``grad_norm``), the inner-loop updates the guard rejected (``rejected``) and the largest
    norm growth of a W_l or B_l (``growth``; see ``MetaLearner``); and the final theta.
    Model selection (``validate`` given and ``select_every`` > 0, e.g. ``validator(...)``): after every
    ``select_every``-th episode and the last one, v_k = validate(theta_k) is recorded (``val_episode``,
    ``val_accuracy``, ``val_theta_w/b``, stored with the checkpoints, so a resumed run keeps them) and
    ``selected_theta_w/b`` = theta_{k*}, k* = argmax_k v_k (the earliest on ties), with ``selected_episode``
    and ``selected_val_accuracy``.
    ``log`` gets a progress line per 10% of the outer steps and at least every ``heartbeat`` seconds (by ``clock``),
    with the time this call has run and the time left at its rate so far.
    """
    if select_every < 0 or (select_every > 0 and validate is None):
        raise ValueError(f"select_every={select_every} needs a validate function and must be >= 0")
    one = not isinstance(seed, (list, tuple))
    seeds = [int(seed)] if one else [int(s) for s in seed]
    dirs = [ckpt_dir] * len(seeds) if ckpt_dir is None or isinstance(ckpt_dir, (str, Path)) else list(ckpt_dir)
    if len(dirs) != len(seeds) or (len(seeds) > 1 and ckpt_dir is not None and len(set(map(str, dirs))) < len(seeds)):
        raise ValueError(f"meta_train needs one checkpoint folder per seed: {len(seeds)} seeds, {len(dirs)} folders")
    S = len(seeds)
    stack = lambda trees: jax.tree.map(lambda *a: jnp.stack([jnp.asarray(x) for x in a]), *trees)  # noqa: E731
    theta = stack([theta0] * S)
    opt_state = jax.vmap(learner.init)(theta)
    mask = jax.tree.map(jnp.ones_like, theta0) if mask is None else jax.tree.map(jnp.asarray, mask)
    keys = ("episode", "loss", "accuracy", "theta_w", "theta_b", "skipped", "seconds", "val_episode", "val_accuracy",
            "val_theta_w", "val_theta_b", *STAT_KEYS)
    hists: list[dict[str, list]] = [{k: [] for k in keys} for _ in seeds]
    done = 0
    template = learner.init(theta0)
    latest = [load_checkpoint(Path(d), template) if d is not None else None for d in dirs]
    if all(g is not None for g in latest):
        done = min(g[0] for g in latest)
        got = [g if g[0] == done else load_checkpoint(Path(d), template, at=done) for g, d in zip(latest, dirs)]
        if all(g is not None for g in got):
            theta = stack([g[1] for g in got])
            opt_state = stack([g[2] for g in got])
            for h, g in zip(hists, got):
                h.update({k: list(v) for k, v in g[3].items()})
                for k in STAT_KEYS:  # a checkpoint written before these were recorded: NaN for its episodes
                    h[k] = [float("nan")] * (len(h["episode"]) - len(h[k])) + h[k]
            if log:
                log(f"resuming meta-training of seed(s) {seeds} from episode {done} ({dirs[0]})")
        else:
            done = 0
    n_steps = n_episodes // meta_batch
    t0 = time.time()
    first_step, started = done // meta_batch, clock()
    last_line = started
    for s in range(first_step, n_steps):
        raise_if_requested()
        args = stack([episode_inputs(learner.loop, sampler, s * meta_batch, meta_batch, sd, TRAIN, learner.head)
                      for sd in seeds])
        if S == 1:  # one seed: the unbatched step (the same numbers as ever; vmap reorders float sums)
            first = lambda tree: jax.tree.map(lambda a: a[0], tree)  # noqa: E731
            out = learner.step(first(theta), first(opt_state), *first(args), jnp.float32(sym), mask)
            theta, opt_state, loss, acc, finite, stats = jax.tree.map(lambda a: jnp.asarray(a)[None], out)
        else:
            theta, opt_state, loss, acc, finite, stats = learner.step_seeds(theta, opt_state, *args, jnp.float32(sym),
                                                                            mask)
        ep = (s + 1) * meta_batch
        for i, h in enumerate(hists):
            th = jax.tree.map(lambda a: a[i], theta)
            h["episode"].append(ep)
            h["loss"].append(float(loss[i]))
            h["accuracy"].append(float(acc[i]))
            h["theta_w"].append(np.asarray(th.w).tolist())
            h["theta_b"].append(np.asarray(th.b).tolist())
            h["skipped"].append(int(not bool(finite[i])))
            for k in STAT_KEYS:
                h[k].append(float(stats[k][i]))
            h["seconds"].append(time.time() - t0)
            if select_every and validate is not None and (ep % select_every < meta_batch or s == n_steps - 1):
                v = float(validate(th))
                h["val_episode"].append(ep)
                h["val_accuracy"].append(v)
                h["val_theta_w"].append(np.asarray(th.w).tolist())
                h["val_theta_b"].append(np.asarray(th.b).tolist())
                if log:
                    log(f"  seed {seeds[i]}, episode {ep}: validation accuracy {v:.3f} "
                        f"(best {max(h['val_accuracy']):.3f})")
            if dirs[i] is not None and (ep % ckpt_every == 0 or s == n_steps - 1):
                save_checkpoint(Path(dirs[i]), ep, th, jax.tree.map(lambda a: a[i], opt_state), h)
        now = clock()
        if log and ((s + 1) % max(1, n_steps // 10) == 0 or now - last_line >= heartbeat):
            left = (now - started) / (s + 1 - first_step) * (n_steps - s - 1)
            log(f"  episode {ep}/{n_episodes}: meta-loss {np.round(np.asarray(loss), 3).tolist()}, meta-acc "
                f"{np.round(np.asarray(acc), 3).tolist()} (seed(s) {seeds}); {now - started:.0f} s, about "
                f"{left:.0f} s left")
            last_line = now
    for i, h in enumerate(hists):
        h["final_theta_w"] = np.asarray(theta.w[i]).tolist()
        h["final_theta_b"] = np.asarray(theta.b[i]).tolist()
        if h["val_accuracy"]:
            k = int(np.argmax(h["val_accuracy"]))
            h["selected_episode"] = int(h["val_episode"][k])
            h["selected_val_accuracy"] = float(h["val_accuracy"][k])
            h["selected_theta_w"] = list(h["val_theta_w"][k])
            h["selected_theta_b"] = list(h["val_theta_b"][k])
    return hists[0] if one else hists


def validator(learner: MetaLearner, sampler: EpisodeSampler, *, n_tasks: int, sym: float, seed: int,
              batch: int = 10) -> Callable[[Theta], float]:
    """theta -> mean query accuracy after adaptation on the first ``n_tasks`` selection tasks of ``sampler``
    (pass the meta-TRAIN sampler: the same tasks on which ``select_lr`` picks BP's / FA's learning rate)."""
    def validate(theta: Theta) -> float:
        _, acc = evaluate_rule(learner, theta, sampler, n_tasks=n_tasks, sym=sym, seed=seed, purpose=SELECT,
                               start=SELECT_START, batch=batch)
        return float(np.mean(acc))
    return validate


def evaluate_rule(learner: MetaLearner, theta: Theta, sampler: EpisodeSampler, *, n_tasks: int, sym: float,
                  seed: int, purpose: int = HELDOUT, start: int = 0, batch: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Per-task (query loss, query accuracy) after adaptation by theta on tasks start..start+n_tasks-1.

    Tasks are evaluated ``batch`` at a time (vmapped; the last batch is padded, so one compile serves all).
    """
    losses, accs = [], []
    for b0 in range(0, n_tasks, batch):
        n = min(batch, n_tasks - b0)
        args = episode_inputs(learner.loop, sampler, start + b0, batch, seed, purpose, learner.head)
        loss, acc = learner.evaluate(theta, *args, jnp.float32(sym))
        losses.append(np.asarray(loss)[:n])
        accs.append(np.asarray(acc)[:n])
    return np.concatenate(losses), np.concatenate(accs)


def pseudo_grad_theta(loop: InnerLoop, lr: float) -> Theta:
    """theta with only the pseudo-gradient term (coefficient lr) and a fixed B: BP (sym = 1) or FA (sym = 0)."""
    if "pseudo_grad" not in loop.terms:
        raise ValueError(f"the candidate terms {loop.terms} lack 'pseudo_grad', needed for the BP / FA baselines")
    w = np.zeros(len(loop.terms), np.float32)
    w[loop.terms.index("pseudo_grad")] = lr
    return Theta(jnp.asarray(w), jnp.zeros(len(loop.b_terms), jnp.float32))


def select_lr(learner: MetaLearner, sampler: EpisodeSampler, grid: Sequence[float], *, sym: float, n_tasks: int,
              seed: int, batch: int) -> dict:
    """Mean query accuracy of pseudo-gradient learning (BP if sym = 1, FA if 0) for every lr in ``grid``
    on meta-train tasks (not the held-out ones); returns {"grid": {lr: acc}, "best_lr": lr}."""
    res = {}
    for lr in grid:
        _, acc = evaluate_rule(learner, pseudo_grad_theta(learner.loop, lr), sampler, n_tasks=n_tasks, sym=sym,
                               seed=seed, purpose=SELECT, start=SELECT_START, batch=batch)
        res[float(lr)] = float(np.mean(acc))
    best = max(res, key=lambda k: res[k])
    return {"grid": {str(k): v for k, v in res.items()}, "best_lr": best}


def theta_table(terms: Sequence[str], values: Sequence[float]) -> dict:
    return {t: float(v) for t, v in zip(terms, values)}
