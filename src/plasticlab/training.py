"""The training step (``Trainer.step``) and the library's one driver (``drive``, under ``fit``): a jitted step
inside ``jax.lax.scan``, seeds and grid cells under ``jax.vmap``.

One step on a batch (x, t):
    forward -> e_L from the loss -> layer errors from the rule's feedback ->
    Delta W from the rule -> pseudo-gradient g = -Delta W + weight_decay * W ->
    optimizer (default: identity, W <- W - g) -> W += weight_noise * N(0, 1).

With the default optimizer the rule's own rates are the step sizes, so
``weight_decay`` is the fraction of W removed per step. Pass an optax
optimizer (e.g. ``optax.adam(1e-3)`` with rule ``lr=1``) to treat the rule's
update as a (negative) gradient; ``weight_decay`` is then an L2 coefficient.

Optional parts of the step (``Trainer`` fields; all off by default), in their order:
    x += input_noise * N(0, 1);  W += weight_noise * N(0, 1) first (``weight_noise_mode="before"``), or only
    where the signals are computed (``"perturb"``: forward and rule at W + noise, the step from the clean W);
    the network's ``forward_train(params, x, key)`` when it has one (dropout, pullbacks);
    g = -Delta W clipped to global L2 norm ``clip_norm`` (over all parameters) before the decay is added (torch's
    ``clip_grad_norm_`` then ``SGD(weight_decay)``);  g += l1 * sign(W)  (these three are the optax chain
    ``Trainer.post_processing``; ``plasticlab.transforms`` has the pieces for chains in any other order);
    u -= decoupled_decay * W after the optimizer (``decoupled_decay``: decay the optimizer does not see, as
    AdamW's lr * gamma; a number, so a grid's cells may vary it, unlike a decay inside an optax chain);
    the optimizer's update (and the weight noise) multiplied by the network's ``update_mask`` (drawn at init,
    ``TrainState.mask``: pruned or frozen weights);
    ``step_metrics(trainer, signals, deltas, updates, params, mask) -> dict`` on the steps ``fit(log_every=...)``
    logs.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .checkpoint import CHECKPOINT_SECONDS, FitCheckpoint, checkpoint_path, signature
from .interrupt import raise_if_requested
from .losses import Loss, get_loss
from .networks.mlp import MLP, Params
from .rules.base import Rule, Signals, Sum
from .transforms import _active, freeze, post_processing


class DivergenceError(RuntimeError):
    """Training produced non-finite or exploding weights; ``history`` holds what finished before."""

    def __init__(self, message: str, step: int, layer: int, seed: int | None, history: "History | None" = None):
        super().__init__(message)
        self.step, self.layer, self.seed, self.history = step, layer, seed, history


class TrainState(NamedTuple):
    params: Params
    rule_state: Any
    opt_state: Any
    key: jax.Array
    mask: Any = None  # the network's update mask (1: the weight learns), None when every weight does


NOISE_MODES = ("after", "before", "perturb")


@functools.cache
def identity_optimizer() -> optax.GradientTransformation:
    """W <- W - g: the rule's update is applied as it is (one shared instance, so that trainers built apart
    compare equal, compile once and can form a grid)."""
    return optax.sgd(1.0)


class Trainer(eqx.Module):
    """Everything that defines how one network learns (all static except float fields).

    Besides the step of the module docstring: ``input_noise`` (std of Gaussian noise added to float inputs at
    every step), ``weight_noise_mode`` ("after": W += noise after the step; "before": before it, so the step
    sees the noisy W; "perturb": the signals and the rule see W + noise, the step starts from the clean W),
    ``clip_norm`` (None or the maximum global L2 norm of Delta W before the decay), ``l1`` (g += l1 sign(W)),
    ``step_metrics`` (a hashable callable ``(trainer, signals, deltas, updates, params, mask) -> dict`` evaluated
    on the logged steps; ``updates`` is what the optimizer added to the weights, ``params`` the weights after it,
    ``mask`` the update mask, None when every weight learns).
    The network may define ``forward_train(params, x, key)`` (used by the step) and ``update_mask(key,
    params)`` (drawn by ``init`` from the weights' key). A step that calls ``forward_train`` or draws input
    noise splits its key in five (key, rule, weight noise, input noise, forward), any other in three.
    """

    net: MLP
    rule: Rule
    loss: Loss = eqx.field(static=True, default_factory=lambda: get_loss("cross_entropy"))
    optimizer: optax.GradientTransformation = eqx.field(static=True, default_factory=identity_optimizer)
    weight_decay: float = 0.0
    decoupled_decay: float = 0.0
    weight_noise: float = 0.0
    init_method: str = eqx.field(static=True, default="xavier")
    init_scale: float = eqx.field(static=True, default=1.0)
    input_noise: float = 0.0
    l1: float = 0.0
    clip_norm: float | None = None
    weight_noise_mode: str = eqx.field(static=True, default="after")
    step_metrics: Callable | None = eqx.field(static=True, default=None)

    def __check_init__(self) -> None:
        if self.weight_noise_mode not in NOISE_MODES:
            raise ValueError(f"weight_noise_mode must be one of {NOISE_MODES}, got {self.weight_noise_mode!r}")

    def init(self, key: jax.Array) -> TrainState:
        """Fresh weights, rule state and optimizer state (and the network's update mask) from one key."""
        k_w, k_r, k_s = jax.random.split(key, 3)
        params = self.net.init(k_w, self.init_method, self.init_scale)
        mask = self.net.update_mask(k_w, params) if hasattr(self.net, "update_mask") else None
        return TrainState(params, self.rule.init(k_r, self.net, params), self.optimizer.init(params), k_s, mask)

    def signals(self, params: Params, rule_state: Any, x: jax.Array, t: jax.Array,
                key: jax.Array | None = None) -> Signals:
        """Forward (the network's ``forward_train`` when it has one, with ``key``), output and layer errors, and
        what the feedback pass computed besides them (``Signals.aux``, read by the rule's update)."""
        if hasattr(self.net, "forward_train"):
            fwd = self.net.forward_train(params, x, key)
        else:
            fwd = self.net.forward(params, x)
        e_out = self.loss.error(fwd, t)
        errors, aux = self.rule.feedback_with_aux(self.net, params, rule_state, fwd, e_out)
        return Signals(fwd, errors, e_out, x, t, aux)

    def _noisy(self, params: Params, mask: Any, key: jax.Array) -> Params:
        """params + weight_noise * N(0, 1) (times the update mask when there is one), one key per leaf."""
        leaves, tree = jax.tree.flatten(params)
        keys = jax.random.split(key, len(leaves))
        if mask is None:
            return jax.tree.unflatten(tree, [p + self.weight_noise * jax.random.normal(k, p.shape)
                                             for p, k in zip(leaves, keys)])
        return jax.tree.unflatten(tree, [p + self.weight_noise * m * jax.random.normal(k, p.shape)
                                         for p, m, k in zip(leaves, jax.tree.leaves(mask), keys)])

    def step(self, state: TrainState, x: jax.Array, t: jax.Array, measure=False) -> tuple[TrainState, dict]:
        """One learning step on the batch (x, t); returns the new state and the batch loss / accuracy, and with
        ``step_metrics`` and ``measure`` (a bool, or a traced one: evaluated under ``lax.cond``) its metrics
        under "logged"."""
        if hasattr(self.net, "forward_train") or _active(self.input_noise):
            key, k_rule, k_noise, k_input, k_forward = jax.random.split(state.key, 5)
        elif self.rule.stochastic or _active(self.weight_noise):
            (key, k_rule, k_noise), k_input, k_forward = jax.random.split(state.key, 3), None, None
        else:  # nothing in this step draws random numbers: no key split (it would cost a hash per step)
            key, k_rule, k_noise, k_input, k_forward = state.key, None, None, None, None
        noise = _active(self.weight_noise)
        params = state.params
        if noise and self.weight_noise_mode == "before":
            params = self._noisy(params, state.mask, k_noise)
        at = self._noisy(params, state.mask, k_noise) if noise and self.weight_noise_mode == "perturb" else params
        if _active(self.input_noise):
            x = x + self.input_noise * jax.random.normal(k_input, x.shape)
        sig = self.signals(at, state.rule_state, x, t, k_forward)
        deltas, rule_state = self.rule.update(self.net, at, state.rule_state, sig, k_rule)
        post = self.post_processing()
        grads, _ = post.update(jax.tree.map(jnp.negative, deltas), post.init(params), params)
        upd, opt_state = self.optimizer.update(grads, state.opt_state, params)
        if _active(self.decoupled_decay):
            upd = jax.tree.map(lambda u, w: u - self.decoupled_decay * w, upd, params)
        if state.mask is not None:
            upd, _ = freeze(state.mask).update(upd, optax.EmptyState())
        params = optax.apply_updates(params, upd)
        metrics = {"loss": self.loss.value(sig.fwd, t)}
        if self.loss.classification:
            metrics["correct"] = jnp.mean(jnp.argmax(sig.fwd.out, -1) == t)
        if self.step_metrics is not None and measure is not False:
            def logged() -> dict:
                return self.step_metrics(self, sig, deltas, upd, params, state.mask)

            if measure is True:
                metrics["logged"] = logged()
            else:
                zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(logged))
                metrics["logged"] = jax.lax.cond(measure, logged, lambda: zeros)
        if noise and self.weight_noise_mode == "after":
            params = self._noisy(params, state.mask, k_noise)
        return TrainState(params, rule_state, opt_state, key, state.mask), metrics

    def post_processing(self) -> optax.GradientTransformation:
        """The stateless chain between the rule and the optimizer from the shortcut fields: clip to ``clip_norm``,
        add ``weight_decay * W``, add ``l1 * sign(W)`` (``transforms.post_processing``; for another order, pass
        an ``optax.chain`` as the optimizer instead)."""
        return post_processing(self.clip_norm, self.weight_decay, self.l1)

    def evaluate(self, params: Params, x: jax.Array, t: jax.Array) -> dict:
        """Mean loss (and accuracy for classification) on a data set."""
        fwd = self.net.forward(params, x)
        out = {"loss": self.loss.value(fwd, t)}
        if self.loss.classification:
            out["accuracy"] = jnp.mean(jnp.argmax(fwd.out, -1) == t)
        return out


def scale_rates(rule: Rule, factor) -> Rule:
    """``rule`` with every summand's ``lr`` multiplied by ``factor`` (a rate schedule's value at one step)."""
    if isinstance(rule, Sum):
        return Sum(tuple(scale_rates(r, factor) for r in rule.rules))
    if hasattr(rule, "lr"):
        return eqx.tree_at(lambda r: r.lr, rule, rule.lr * factor)
    return rule


def _matrices(state: TrainState) -> list[jax.Array]:
    """The matrices the divergence check watches: every weight matrix (parameters with ndim >= 2), then every
    non-empty matrix of the rule state (feedback weights, SAM's Wbar / V / Vbar, ...)."""
    return ([m for m in jax.tree.leaves(state.params) if m.ndim >= 2]
            + [m for m in jax.tree.leaves(state.rule_state) if m.ndim == 2 and m.size])


def _state_ok(state: TrainState) -> jax.Array:
    """(matrices,) flags: all entries finite and below 1e6 in magnitude."""
    return jnp.stack([jnp.all(jnp.isfinite(m) & (jnp.abs(m) < 1e6)) for m in _matrices(state)])


def _matrix_name(trainer: Trainer, state: TrainState, index: int) -> str:
    """What matrix ``index`` of ``_matrices`` is, for divergence messages: "W of layer 2", or a rule-state matrix by
    its path in the state (SAM: "Vbar[2] of the rule state", FA: "rule-state matrix [2]")."""
    n_params = len([m for m in jax.tree.leaves(state.params) if m.ndim >= 2])
    if index < n_params:
        return f"W of layer {index + 1}" if isinstance(trainer.net, MLP) else f"weight matrix #{index + 1}"
    paths = [jax.tree_util.keystr(path).lstrip(".") for path, m in jax.tree_util.tree_leaves_with_path(
        state.rule_state) if m.ndim == 2 and m.size]
    path = paths[index - n_params]
    return f"{path} of the rule state" if path[:1].isalpha() else f"rule-state matrix {path}"


class _Cells(NamedTuple):
    """Trainers that differ only in numbers (rates, decays): the template, which leaves vary, their values
    (``values[0]`` is the cell index 0..C-1, so that the cells axis exists even when no leaf varies)."""

    template: Trainer
    varying: tuple[int, ...]
    values: tuple[jax.Array, ...]

    def trainer(self, values) -> Trainer:
        leaves, treedef = jax.tree.flatten(self.template)
        for i, v in zip(self.varying, values[1:]):
            leaves[i] = v
        return jax.tree.unflatten(treedef, leaves)


def _cells(trainers: list[Trainer]) -> _Cells:
    """Stack the numeric leaves in which ``trainers`` differ (their structure and static settings must agree)."""
    template = trainers[0]
    n_leaves = len(jax.tree.leaves(template))
    leaves = []
    for t in trainers:
        lv, td = jax.tree.flatten(t)
        if td != jax.tree.structure(template):
            raise ValueError("the trainers of a grid must differ only in numbers (rates, decays): same network, "
                             f"rule and static settings; {t.rule.name} differs from {template.rule.name} in structure "
                             "(an optax optimizer must be one shared object, not one built per trainer)")
        leaves.append(lv)
    varying = tuple(i for i in range(n_leaves)
                    if any(not np.array_equal(np.asarray(lv[i]), np.asarray(leaves[0][i])) for lv in leaves))
    values = (jnp.arange(len(trainers)),) + tuple(jnp.stack([jnp.asarray(lv[i]) for lv in leaves]) for i in varying)
    return _Cells(template, varying, values)


def _scan_chunk(trainer: Trainer, state: TrainState, idx: jax.Array, t0: jax.Array, x: jax.Array, t: jax.Array,
                n_steps: int, schedule: Callable | None, check: bool, log_every: int | None = None):
    """lax.scan of ``trainer.step`` over the batches x[idx[i]] (global steps t0 + i); with ``schedule``, the
    rule's rates at step k are scaled by ``schedule(k, n_steps)``; with ``check``, per-step divergence flags;
    with ``log_every``, the trainer's ``step_metrics`` on the global steps k + 1 = log_every, 2 log_every, ..."""

    def body(s, it):
        i, k = it
        tr = trainer if schedule is None else eqx.tree_at(lambda q: q.rule, trainer,
                                                          scale_rates(trainer.rule, schedule(k, n_steps)))
        s, m = tr.step(s, x[i], t[i], measure=False if log_every is None else (k + 1) % log_every == 0)
        if check:
            m["ok"] = _state_ok(s)
        return s, m

    return jax.lax.scan(body, state, (idx, t0 + jnp.arange(idx.shape[0])))


@dataclass
class History:
    """Learning curves: arrays of shape (seeds, evaluations), or (cells, seeds, evaluations) for a grid of
    trainers, evaluated after ``samples[j]`` samples.

    ``diverged``: per cell (one entry without a grid) None or the message of the first diverged seed;
    ``seed_diverged``: (cells, seeds) flags (with ``on_divergence="record"`` those seeds' curves are NaN);
    ``divergences``: one record per diverged (cell, seed): {"cell", "seed", "step", "matrix"} (its first bad
    step, 1-based, and the first matrix that became non-finite or exceeded 1e6 there);
    ``final_state`` / ``init_state``: the vmapped TrainState at the end / start (``init_state`` with
    ``keep_init``); ``logs`` / ``log_steps``: with ``fit(log_every=...)``, the step metrics of the logged steps
    as they are (``logged(key)``: (seeds, logs, ...) or (cells, seeds, logs, ...)) and those steps (1-based)."""

    seeds: list[int]
    samples: list[int] = field(default_factory=list)
    curves: dict[str, list] = field(default_factory=dict)
    final_state: TrainState | None = None
    init_state: TrainState | None = None
    cells: int | None = None
    diverged: list[str | None] = field(default_factory=list)
    seed_diverged: np.ndarray | None = None
    divergences: list[dict] = field(default_factory=list)
    logs: dict[str, list] = field(default_factory=dict)
    log_steps: list[int] = field(default_factory=list)

    def append(self, n_samples: int, values: dict[str, np.ndarray]) -> None:
        self.samples.append(int(n_samples))
        for k, v in values.items():
            self.curves.setdefault(k, []).append(np.asarray(v, dtype=float))

    def array(self, key: str) -> np.ndarray:
        """Curve ``key`` as an array of shape (seeds, evaluations, ...) (with a grid: (cells, seeds, evaluations,
        ...)); a callback's per-layer values keep their axes after the evaluations."""
        return np.stack(self.curves[key], axis=1 if self.cells is None else 2)

    def final(self, key: str) -> np.ndarray:
        """The last evaluation of curve ``key``: (seeds, ...) (with a grid: (cells, seeds, ...))."""
        return np.take(self.array(key), -1, axis=1 if self.cells is None else 2)

    def seed_status(self, seed: int, cell: int = 0) -> str:
        """``seed_status`` of this history's seed ``seed`` in cell ``cell``."""
        return seed_status(self.divergences, self.seed_diverged, self.seeds, seed, cell)

    def logged(self, key: str) -> np.ndarray:
        """Step metric ``key`` at ``log_steps``: (seeds, logs, ...) (with a grid: (cells, seeds, logs, ...))."""
        return np.concatenate(self.logs[key], axis=1 if self.cells is None else 2)


def seed_status(divergences: list[dict] | None, seed_diverged, seeds: list[int], seed: int, cell: int = 0) -> str:
    """"ok", or seed ``seed``'s own divergence in cell ``cell``: "diverged at step N: <matrix> ..." (its first bad
    step and matrix, from the ``History.divergences`` records; ``History.diverged`` holds only the first diverged
    seed's message per cell); "diverged" when the seed is flagged in ``seed_diverged`` without a record."""
    rec = next((r for r in divergences or () if r["cell"] == cell and r["seed"] == seed), None)
    if rec is not None:
        return f"diverged at step {rec['step']}: {rec['matrix']} became non-finite or exceeded 1e6"
    flags = None if seed_diverged is None else np.asarray(seed_diverged).reshape(-1, len(seeds))
    return "diverged" if flags is not None and flags[cell, list(seeds).index(seed)] else "ok"


def fit_steps(n_train: int, batch_size: int, epochs: float = 1.0, n_samples: int | None = None) -> int:
    """The steps ``fit`` trains: n_samples // batch_size (n_samples default round(epochs * n_train)), at least 1."""
    n_samples = int(n_samples if n_samples is not None else round(epochs * n_train))
    return max(1, n_samples // batch_size)


def sample_order(seed: int, n_train: int, n_steps: int, batch_size: int) -> np.ndarray:
    """Indices (n_steps, batch_size): epochs of random permutations drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    need = n_steps * batch_size
    perms = [rng.permutation(n_train) for _ in range(-(-need // n_train))]
    return np.concatenate(perms)[:need].reshape(n_steps, batch_size).astype(np.int32)


class SampleOrders:
    """``sample_order`` of every seed, drawn chunk by chunk: ``chunk(start, stop)`` is rows start..stop-1 of
    ``np.stack([sample_order(s, ...) for s in seeds])``, holding only the epochs those rows need (a long run's
    whole order would be seeds x steps x batch_size indices). Chunks are asked for in increasing order; the
    last one can be asked for again (a divergence replay)."""

    def __init__(self, seeds: list[int], n_train: int, batch_size: int) -> None:
        self.rngs = [np.random.default_rng(s) for s in seeds]
        self.n_train, self.batch_size = n_train, batch_size
        self.buffer = np.zeros((len(seeds), 0), np.int32)  # drawn indices from sample ``self.offset`` on
        self.offset = 0
        self.last: tuple[int, int, np.ndarray] | None = None

    def chunk(self, start: int, stop: int) -> np.ndarray:
        if self.last is not None and self.last[:2] == (start, stop):
            return self.last[2]
        lo, hi = start * self.batch_size, stop * self.batch_size
        if lo < self.offset:
            raise ValueError(f"steps {start}..{stop - 1} were already passed (orders are drawn forwards)")
        while self.offset + self.buffer.shape[1] < hi:
            self.buffer = np.concatenate([self.buffer, np.stack([r.permutation(self.n_train) for r in self.rngs])
                                          .astype(np.int32)], axis=1)
        rows = self.buffer[:, lo - self.offset:hi - self.offset].reshape(len(self.rngs), stop - start,
                                                                         self.batch_size)
        self.buffer, self.offset = self.buffer[:, hi - self.offset:], hi
        self.last = (start, stop, rows)
        return rows


_CHUNK_CACHE: dict = {}


def _default_evaluate(trainer: Trainer, state: TrainState, x: jax.Array, t: jax.Array) -> dict:
    return trainer.evaluate(state.params, x, t)


def _compiled(cells: _Cells, check: bool, n_steps: int, schedule: Callable | None, evaluate: Callable,
              log_every: int | None = None, compiler_options: dict | None = None, grid: bool = True):
    """Jitted chunk runner, evaluator, divergence flags and init for ``cells`` (cached).

    With ``grid`` the state carries (cells, seeds) axes and everything is vmapped twice; without, the state
    carries the seeds axis only (one vmap: cheaper to compile and run). Metrics, flags and evaluations come
    back with a leading cells axis either way."""
    n_steps = n_steps if schedule is not None else 0  # only a schedule reads the run's length
    options = tuple(sorted((compiler_options or {}).items()))
    key = (cells.template, cells.varying, check, n_steps, schedule, evaluate, log_every, options, grid)
    try:
        return _CHUNK_CACHE[key]
    except (KeyError, TypeError):
        pass

    def chunk(vals, s, i, t0, x, t):
        return _scan_chunk(cells.trainer(vals), s, i, t0, x, t, n_steps, schedule, check, log_every)

    def ev(vals, s, x, t):
        return evaluate(cells.trainer(vals), s, x, t)

    def jit(f):
        return jax.jit(f, compiler_options=compiler_options)

    def lift(tree):
        return jax.tree.map(lambda a: a[None], tree)

    seeds = (None, 0, 0, None, None, None)
    if grid:
        run = jit(jax.vmap(jax.vmap(chunk, in_axes=seeds), in_axes=(0, 0, None, None, None, None)))
        evaluator = jit(jax.vmap(jax.vmap(ev, in_axes=(None, 0, None, None)), in_axes=(0, 0, None, None)))
        flags = jit(jax.vmap(jax.vmap(_state_ok)))
        init = jit(jax.vmap(jax.vmap(lambda vals, k: cells.trainer(vals).init(k), in_axes=(None, 0)),
                            in_axes=(0, None)))
    else:  # one cell: ``vals`` hold it with a leading axis of 1
        first = lambda vals: tuple(v[0] for v in vals)  # noqa: E731
        run_seeds = jax.vmap(chunk, in_axes=seeds)

        def run(vals, s, i, t0, x, t):
            s, m = run_seeds(first(vals), s, i, t0, x, t)
            return s, lift(m)

        run = jit(run)
        evaluator = jit(lambda vals, s, x, t: lift(jax.vmap(ev, in_axes=(None, 0, None, None))(first(vals), s, x, t)))
        flags = jit(lambda s: jax.vmap(_state_ok)(s)[None])
        init = jit(lambda vals, k: jax.vmap(lambda kk: cells.trainer(first(vals)).init(kk))(k))
    out = (run, evaluator, flags, init)
    try:
        _CHUNK_CACHE[key] = out
    except TypeError:
        pass
    return out


def drive(advance: Callable[[Any, int, int], tuple[Any, Any]], state: Any, stops: list[int],
          record: Callable[[Any, int, Any], None], *, check: Callable[[Any], np.ndarray] | None = None,
          on_diverged: Callable[[Any, int, int, np.ndarray], None] | None = None, progress: bool | str | None = True,
          desc: str = "", until: Callable[[Any, int], bool] | None = None,
          note: Callable[[], str] | None = None, cuts: Sequence[int] = (),
          join: Callable[[list], Any] | None = None, start: int = 0, outs: Sequence = (),
          bad: np.ndarray | None = None,
          after: Callable[[Any, int, list, np.ndarray | None], None] | None = None) -> tuple[Any, np.ndarray | None]:
    """The library's one training driver: run ``state`` from one evaluation point to the next.

    Args:
        advance: ``advance(state, start, stop) -> (state, out)`` runs the steps start..stop-1 in one compiled
            call (``fit``: a ``lax.scan`` of ``Trainer.step``; the curl simulator: a while loop of epochs), for
            every seed and cell at once (their axes lead every array of ``state``).
        state: the batched state at step 0.
        stops: increasing evaluation points (steps), linear or log-spaced.
        record: ``record(state, step, out)`` is called at step 0 (``out`` None) and after every stop, with the
            state and what ``advance`` returned (metrics, accumulators).
        check: ``check(state) -> bool array`` (e.g. (cells, seeds)): False marks a diverged network; each
            newly diverged one is reported once to ``on_diverged(state_before, start, stop, fresh)``, which may
            raise (stop) or record the message and return (keep going).
        progress: a progress bar (or line per 10% when stderr is not a terminal) over the stops; a string
            replaces ``desc``; None: the enclosing ``unit_progress`` label's (off outside one).
        until: ``until(state, step) -> bool``, asked after each ``record``: True ends the run there (e.g. a
            convergence criterion); the stops are then a cap.
        note: ``note() -> str``, asked after each ``until``: a short status shown with the progress (e.g.
            "stationary: 31/40 runs").
        cuts: further steps (between the stops) where one compiled call ends and the next begins, without an
            evaluation: progress, the divergence check and Ctrl-C / SIGTERM (handled between calls) land there,
            so a run with a single evaluation is not one silent, uninterruptible call.
        join: ``join(outs) -> out`` merges the ``advance`` outputs of an evaluation interval's calls (more than
            one only with ``cuts``) into the ``out`` given to ``record``; default: the list itself.
        start, outs, bad: resume a run at step ``start`` (a stop or cut; no ``record`` at step 0) with the
            ``advance`` outputs of its evaluation interval so far and its divergence flags.
        after: ``after(state, step, outs, bad)`` after every call (and its ``record`` and ``until``), with the
            interval's outputs so far (empty after an evaluation): ``fit``'s checkpoints.

    Returns:
        (final state, accumulated divergence flags or None without ``check``).
    """
    if start == 0:
        record(state, 0, None)
    evaluate_at = set(stops)
    points = [p for p in sorted(evaluate_at | {c for c in cuts if c < stops[-1]}) if p > start] if stops else []
    bar = _progress(len(points), progress, desc)
    outs = list(outs)
    try:
        for stop in points:
            raise_if_requested()
            new, out = advance(state, start, stop)
            outs.append(out)
            if check is not None:
                ok = np.asarray(check(new))
                fresh = ~ok if bad is None else ~ok & ~bad
                if fresh.any() and on_diverged is not None:
                    on_diverged(state, start, stop, fresh)
                bad = ~ok if bad is None else bad | ~ok
            state, start = new, stop
            done = False
            if stop in evaluate_at:
                record(state, stop, outs[0] if len(outs) == 1 else (join or list)(outs))
                outs = []
                done = until is not None and until(state, stop)
                if bar is not None and note is not None:
                    bar.set_postfix_str(note(), refresh=False)
            if bar is not None:
                bar.update(1)
            if done:
                break
            if after is not None:
                after(state, stop, outs, bad)
    finally:  # also when on_diverged raises: no bar left behind
        if bar is not None:
            bar.close()
    return state, bad


def fit(trainer: Trainer | list[Trainer], x_train, y_train, *, seeds: list[int] | int = 1,
        n_samples: int | None = None, epochs: float = 1.0, batch_size: int = 1, eval_every: int | None = None,
        evals: int | None = None, x_eval=None, y_eval=None, evaluate: Callable | None = None,
        on_eval: Callable[[dict], dict] | None = None, callback: Callable[[TrainState, int], dict] | None = None,
        progress: bool | str | None = True, init_state: TrainState | None = None,
        rate_schedule: Callable[[jax.Array, int], jax.Array] | None = None, on_divergence: str = "stop",
        keep_init: bool = False, log_every: int | None = None, compiler_options: dict | None = None,
        until: Callable[[History], bool] | None = None, call_steps: int | None = None,
        checkpoint: bool | str | Path | None = None, checkpoint_every: float | None = None) -> History:
    """Train ``trainer`` on (x_train, y_train) for every seed at once (vmapped): the library's one driver.

    Args:
        trainer: a ``Trainer``, or a list of trainers that differ only in numbers (rates, decays: a grid of
            cells, vmapped with the seeds and compiled once).
        x_train, y_train: training inputs (n, ...) and targets (n, ...).
        seeds: a count (seeds 0..n-1) or a list. Each seed draws its own initial weights, rule state and data
            order, so seed s gives the same numbers whether run alone or among others.
        n_samples / epochs: samples to train on (default ``epochs * n``); steps = n_samples // batch_size.
        batch_size: samples per step (1: online learning).
        eval_every / evals: samples between evaluations, or the number of evaluations over the run (one
            jitted ``lax.scan`` chunk each).
        x_eval, y_eval: evaluation data; ``evaluate(trainer, state, x, y) -> dict`` (default: mean loss and
            accuracy) is vmapped over cells and seeds; ``on_eval(values) -> values`` post-processes each
            evaluation on the host (e.g. an AUC from the outputs).
        callback: ``callback(state, samples) -> dict`` adds host-side metrics after every chunk.
        init_state: start from this vmapped TrainState instead of fresh weights (no grid).
        rate_schedule: ``schedule(step, n_steps)`` multiplies every rule rate ``lr`` at each step.
        on_divergence: "stop" raises ``DivergenceError`` naming the seed, the step and the matrix, with the
            history up to the last good evaluation; "record" keeps going, NaNs the diverged seeds' curves and
            stores the message per cell in ``History.diverged``.
        keep_init: keep the initial state in ``History.init_state``.
        log_every: keep the metrics of every ``log_every``-th step as they are (steps log_every, 2 log_every,
            ... counted from 1): the batch loss / accuracy and the trainer's ``step_metrics`` (computed on
            those steps only) in ``History.logs`` / ``History.log_steps`` (NaN for diverged seeds, as curves).
        compiler_options: XLA options for ``jax.jit`` (e.g. a lower optimisation level for small,
            compile-bound runs; results are unchanged).
        until: ``until(history) -> bool``, asked after every evaluation: True ends training there, so
            ``n_samples`` / ``epochs`` is a cap (e.g. ``analysis.convergence.Stationarity``).
        call_steps: at most this many steps per compiled call (default ``call_steps_for``: a few seconds of
            work on a CPU). A longer evaluation interval runs as several calls, between which progress,
            divergence checks and Ctrl-C land; the numbers are the same as in one call.
        checkpoint: keep the run's state in this ``.npz`` file (True: the next file of the enclosing
            ``RunContext.unit``, none outside one) every ``checkpoint_every`` seconds (default 60), at its end
            and when interrupted, and resume from it: the same numbers as an uninterrupted run
            (``plasticlab.checkpoint``; only for ``callback`` / ``on_eval`` / ``evaluate`` without state of their
            own; ``until`` keeps its state through ``state_dict`` / ``load_state_dict``).

    Returns:
        A ``History``: curves ``eval_<metric>`` (from ``evaluate``), ``train_<metric>`` (step metrics averaged
        over each chunk) and the callback's keys, each (seeds, evaluations), or (cells, seeds, evaluations)
        for a grid; ``samples`` seen at each evaluation; the logged steps' metrics; the final state.
    """
    if on_divergence not in ("stop", "record"):
        raise ValueError(f"on_divergence must be 'stop' or 'record', got {on_divergence!r}")
    grid = isinstance(trainer, (list, tuple))
    trainers = list(trainer) if grid else [trainer]
    if not trainers:
        raise ValueError("fit needs at least one trainer")
    cells = _cells(trainers)
    base = cells.template
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    x_train = jnp.asarray(x_train, jnp.float32)
    y_train = jnp.asarray(y_train)
    n_train = x_train.shape[0]
    if y_train.shape[0] != n_train:
        raise ValueError(f"x_train has {n_train} samples but y_train has {y_train.shape[0]}")
    n_samples = int(n_samples if n_samples is not None else round(epochs * n_train))
    n_steps = fit_steps(n_train, batch_size, n_samples=n_samples)
    if evals is not None:
        steps_per_chunk = max(1, -(-n_steps // max(1, evals)))
    else:
        steps_per_chunk = max(1, (eval_every or n_samples) // batch_size)
    orders = SampleOrders(seed_list, n_train, batch_size)
    run, ev, flags, init = _compiled(cells, False, n_steps, rate_schedule, evaluate or _default_evaluate, log_every,
                                     compiler_options, grid)
    keys = jnp.stack([jax.random.PRNGKey(s) for s in seed_list])
    if init_state is not None:
        if grid:
            raise ValueError("init_state is for a single trainer, not a grid")
        state = init_state
    else:
        state = init(cells.values, keys)  # (cells, seeds, ...) for a grid, (seeds, ...) for one trainer
    n_cells = len(trainers)
    hist = History(seed_list, cells=n_cells if grid else None, diverged=[None] * n_cells,
                   init_state=state if keep_init else None)
    if x_eval is not None:
        x_eval, y_eval = jnp.asarray(x_eval, jnp.float32), jnp.asarray(y_eval)
    unstack = (lambda a: a) if grid else (lambda a: a[0])

    def record(st: TrainState, step: int, train_metrics: dict | None) -> None:
        done = step * batch_size
        vals = {}
        if x_eval is not None:
            out = ev(cells.values, st, x_eval, y_eval)
            out = {k: np.asarray(v) for k, v in out.items()}
            if on_eval is not None:
                out = on_eval(out)
            vals.update({f"eval_{k}": unstack(v) for k, v in out.items()})
        if train_metrics is not None:
            vals.update({f"train_{k}": unstack(np.asarray(v).mean(axis=2)) for k, v in train_metrics.items()
                         if k != "logged"})
        if callback is not None:
            vals.update(callback(st, done))
        hist.append(done, vals)
        if train_metrics is not None and log_every is not None:
            _keep_logs(hist, train_metrics, step - np.shape(train_metrics["loss"])[2], log_every, unstack)

    starts = list(range(0, n_steps, steps_per_chunk))
    stops = [min(c0 + steps_per_chunk, n_steps) for c0 in starts]
    if call_steps is None:
        front = getattr(base.net, "front", None)
        call_steps = call_steps_for(state, batch_size, runs=n_cells * len(seed_list),
                                    front_macs=int(getattr(front, "macs", 0) or 0))
    elif call_steps < 1:
        raise ValueError(f"call_steps must be a positive number of steps, got {call_steps}")
    cuts = [c for c0, stop in zip(starts, stops) for c in _cut(c0, stop, call_steps)]

    def advance(st, c0: int, stop: int):
        return run(cells.values, st, jnp.asarray(orders.chunk(c0, stop)), jnp.asarray(c0), x_train, y_train)

    def diverged(st, c0: int, stop: int, fresh: np.ndarray) -> None:
        err = _divergence(cells, st, jnp.asarray(orders.chunk(c0, stop)), c0, x_train, y_train, n_steps,
                          rate_schedule, batch_size, seed_list, fresh, hist, grid, log_every, compiler_options)
        if on_divergence == "stop":
            raise err

    path, unit_options = checkpoint_path(checkpoint)
    ckpt, resumed = None, None
    if path is not None:
        ckpt = FitCheckpoint(path, signature(
            state=state, values=cells.values, seeds=seed_list, stops=stops, batch_size=batch_size,
            log_every=log_every, x=x_train, y=y_train, x_eval=x_eval, y_eval=y_eval, keep_init=keep_init,
            structure=str(jax.tree.structure(state))), CHECKPOINT_SECONDS if checkpoint_every is None else
            checkpoint_every, total_steps=stops[-1], **unit_options)
        resumed = ckpt.load(state, hist, until)
    desc = f"{base.rule.name} x{len(seed_list)} seeds" + (f" x{n_cells} cells" if grid else "")
    if resumed is not None and resumed["finished"]:
        state, bad = resumed["state"], resumed["bad"]
    else:
        if resumed is not None:
            state = resumed["state"]
            desc += f" (resumed at step {resumed['start']:,})"
        try:
            state, bad = drive(
                advance, state, stops, record, check=lambda st: np.asarray(flags(st)).all(axis=-1),
                on_diverged=diverged, progress=progress, desc=desc,
                until=None if until is None else lambda st, step: bool(until(hist)),
                note=getattr(until, "progress_note", None), cuts=cuts, join=_join_metrics,
                **({} if resumed is None else {k: resumed[k] for k in ("start", "outs", "bad")}),
                after=None if ckpt is None else lambda st, step, outs, bd: ckpt.offer(st, step, outs, bd, hist,
                                                                                     until))
        except KeyboardInterrupt:
            if ckpt is not None:
                ckpt.flush()
            raise
        if ckpt is not None:
            ckpt.offer(state, stops[-1], [], bad, hist, until, finished=True)
    seed_bad = bad
    if seed_bad.any():
        for v in (*hist.curves.values(), *hist.logs.values()):
            for j, a in enumerate(v):
                a = np.array(a, dtype=float)
                a[seed_bad if grid else seed_bad[0]] = np.nan
                v[j] = a
    hist.seed_diverged = seed_bad
    hist.final_state = state
    return hist


CALL_WORK = 4e10  # batch samples x state floats per compiled call: 2-15 s on one CPU core (docs/performance.md)


def call_steps_for(state: TrainState, batch_size: int, work: float | None = None, runs: int = 1,
                   front_macs: int = 0) -> int:
    """Steps per compiled call for ``fit``: ``work`` (default ``CALL_WORK``, x100 on an accelerator) over
    batch_size x (the floats of the batched ``state`` + runs x front_macs), at least 1. The state's floats
    (weights, rule and optimizer state of every seed and cell) stand for an MLP step's multiply-adds; a
    convolutional front does far more per weight, so its multiply-adds per sample (``front_macs``, for each of
    the ``runs`` seeds x cells) are added."""
    if work is None:
        work = CALL_WORK * (1 if jax.default_backend() == "cpu" else 100)
    floats = sum(int(np.prod(np.shape(a))) for a in jax.tree.leaves(state) if eqx.is_array(a))
    return max(1, int(work // max(1, batch_size * (floats + runs * front_macs))))


def _cut(start: int, stop: int, most: int) -> list[int]:
    """Interior points cutting steps start..stop-1 into calls of at most ``most`` steps: equal calls where a
    length between most / 2 and ``most`` divides the interval (one compiled shape), else calls of ``most``
    steps and a shorter last one (two shapes)."""
    n = stop - start
    if n <= most:
        return []
    divisors = {d for k in range(1, int(n ** 0.5) + 1) if n % k == 0 for d in (k, n // k)}
    size = max((d for d in divisors if most / 2 <= d <= most), default=most)
    return list(range(start + size, stop, size))


def _join_metrics(outs: list[dict]) -> dict:
    """The step metrics of consecutive calls as those of one call: concatenated along the steps axis (2)."""
    return jax.tree.map(lambda *a: np.concatenate([np.asarray(v) for v in a], axis=2), *outs)


def _keep_logs(hist: History, metrics: dict, c0: int, log_every: int, unstack: Callable) -> None:
    """Append the chunk's logged steps (global steps c0 + j + 1 divisible by ``log_every``) to ``hist.logs``."""
    n = np.shape(metrics["loss"])[2]
    sel = [j for j in range(n) if (c0 + j + 1) % log_every == 0]
    if not sel:
        return
    hist.log_steps += [c0 + j + 1 for j in sel]
    step = {k: v for k, v in metrics.items() if k != "logged"} | metrics.get("logged", {})
    for k, v in step.items():
        hist.logs.setdefault(k, []).append(unstack(np.asarray(v)[:, :, sel]))


def _rates(rule: Rule) -> str:
    """'lr=0.05, decay=0.0001' for a rule (every summand's rate and decay), for messages."""
    parts = []
    for r in rule.rules if isinstance(rule, Sum) else (rule,):
        parts += [f"{k}={float(getattr(r, k)):g}" for k in ("lr", "decay") if isinstance(getattr(r, k, None),
                                                                                     (int, float, jax.Array))]
    return ", ".join(parts)


def _divergence(cells: _Cells, state, idx, c0, x, t, n_steps, schedule, batch_size, seeds, fresh, hist,
                grid, log_every=None, compiler_options=None) -> DivergenceError:
    """Replay the failing chunk step by step to name, per newly diverged cell, the first bad step, seed and
    matrix; store the messages in ``hist.diverged`` and return the error of the first."""
    run, _, _, _ = _compiled(cells, True, n_steps, schedule, _default_evaluate, log_every, compiler_options, grid)
    _, m = run(cells.values, state, idx, jnp.asarray(c0), x, t)
    ok = np.asarray(m["ok"])  # (cells, seeds, steps, matrices)
    first = None
    for c in range(ok.shape[0]):
        if not fresh[c].any():
            continue
        tr = cells.trainer([v[c] for v in cells.values])
        records = []
        for s in np.flatnonzero(fresh[c]):
            bad = np.argwhere(~ok[c, s])  # (step, matrix) pairs, in step order
            # flagged at the chunk's end only (e.g. a value just past 1e6): the chunk's last step
            step, mat = (int(bad[0][0]), int(bad[0][1])) if len(bad) else (ok.shape[2] - 1, 0)
            one = jax.tree.map(lambda a: a[c, s] if grid else a[s], state)
            records.append({"cell": c, "seed": seeds[s], "step": c0 + step + 1,
                            "matrix": _matrix_name(tr, one, mat)})
        hist.divergences += records
        if hist.diverged[c] is not None:
            continue
        rec = min(records, key=lambda r: r["step"])
        where = f" ({_rates(tr.rule)})" if _rates(tr.rule) else ""
        msg = (f"diverged at step {rec['step']} (sample {rec['step'] * batch_size}): "
               f"{rec['matrix']} became non-finite or exceeded 1e6 for seed {rec['seed']} with rule "
               f"{tr.rule.name}{where}. Lower the learning rate(s), add weight decay, or change the "
               f"initialisation; {len(hist.samples)} evaluations before the failure are kept.")
        hist.diverged[c] = msg
        if first is None:
            first = DivergenceError(msg, step=rec["step"], layer=_layer_of(rec["matrix"]), seed=rec["seed"],
                                    history=hist)
    return first


def _layer_of(matrix: str) -> int:
    """The layer number of a ``_matrix_name``, 1-based ("W of layer 2": 2; "Vbar[2] of the rule state": 3)."""
    import re

    found = re.search(r"layer (\d+)|\[(\d+)\]", matrix)
    if found is None:
        return 1
    return int(found.group(1)) if found.group(1) else int(found.group(2)) + 1


class _LineProgress:
    """Progress for a stream that is not a terminal (a log file, a pipe): one plain line each time another
    10% of the chunks is done, or ``heartbeat`` seconds after the last line (a long chunk, or a run capped at
    many chunks that a criterion ends early), e.g. ``bp x3 seeds: 2/3 chunks (67%), 1.2 s``, followed by the
    note of ``set_postfix_str``; a run that ends before its last chunk says so when closed. Never a carriage
    return."""

    def __init__(self, total: int, desc: str, stream, heartbeat: float = 300.0, clock=None) -> None:
        import time

        self.total, self.desc, self.stream = total, desc, stream
        self.clock = clock or time.perf_counter
        self.heartbeat = heartbeat
        self.n, self.decile, self.note = 0, 0, ""
        self.t0 = self.last = self.clock()
        self.printed = 0

    def set_postfix_str(self, note: str, refresh: bool = True) -> None:
        self.note = note

    def _write(self, head: str) -> None:
        pct = round(100 * self.n / self.total)
        now = self.clock()
        try:
            self.stream.write(f"{self.desc}: {head}{self.n}/{self.total} chunks ({pct}%), {now - self.t0:.1f} s"
                              + (f"; {self.note}" if self.note else "") + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stream must not stop training
            pass
        self.last, self.printed = now, self.n

    def update(self, n: int = 1) -> None:
        self.n = min(self.total, self.n + n)
        decile = 10 * self.n // self.total
        if decile > self.decile or self.clock() - self.last >= self.heartbeat:
            self.decile = decile
            self._write("")

    def close(self) -> None:
        if 0 < self.n < self.total and self.printed != self.n:
            self._write("stopped at ")


def _is_terminal(stream) -> bool:
    """Whether ``stream`` redraws in place: a TTY, or a Jupyter kernel's output (tqdm draws a widget there)."""
    if type(stream).__module__.split(".")[0] == "ipykernel":
        return True
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


_UNIT_PROGRESS: contextvars.ContextVar[bool | str] = contextvars.ContextVar("plasticlab_unit_progress", default=False)


@contextlib.contextmanager
def unit_progress(label: bool | str):
    """Inside this block, training calls made with ``progress=None`` show progress labelled ``label`` (a string,
    e.g. an experiment's unit: "hebb-fig14 seed=0"; the call's own description follows it), or none (False).
    ``RunContext.unit`` opens one around every unit, so experiments that train through ``fit`` deep inside a
    unit report progress in the run's log without passing a flag down."""
    token = _UNIT_PROGRESS.set(label)
    try:
        yield
    finally:
        _UNIT_PROGRESS.reset(token)


def _progress(total: int, progress: bool | str | None, desc: str):
    """A progress bar over ``total`` chunks on stderr (None when off or for a single chunk).

    On a terminal it is a tqdm bar that redraws in place and disappears when done; when stderr is not a
    terminal (``plasticlab run ... > log 2>&1``) it is a plain line per 10% of the chunks, so a log file
    holds no carriage-return fragments. ``progress=None``: the enclosing ``unit_progress`` label, prefixed to
    ``desc``.
    """
    import sys

    if progress is None:
        label = _UNIT_PROGRESS.get()
        progress = label if label is True or not label else (f"{label}: {desc}" if desc else label)
    if not progress or total < 2:
        return None
    desc = desc if progress is True else str(progress)
    stream = sys.stderr
    if not _is_terminal(stream):
        return _LineProgress(total, desc, stream)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, unit="chunk")
