"""Training loops: a jitted step inside ``jax.lax.scan``, seeds under ``jax.vmap``.

One step on a batch (x, t):
    forward -> e_L from the loss -> layer errors from the rule's feedback ->
    Delta W from the rule -> pseudo-gradient g = -Delta W + weight_decay * W ->
    optimizer (default: identity, W <- W - g) -> W += weight_noise * N(0, 1).

With the default optimizer the rule's own rates are the step sizes, so
``weight_decay`` is the fraction of W removed per step. Pass an optax
optimizer (e.g. ``optax.adam(1e-3)`` with rule ``lr=1``) to treat the rule's
update as a (negative) gradient; ``weight_decay`` is then an L2 coefficient.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .losses import Loss, get_loss
from .networks.mlp import MLP, Params
from .rules.base import Rule, Signals


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


def identity_optimizer() -> optax.GradientTransformation:
    """W <- W - g: the rule's update is applied as it is."""
    return optax.sgd(1.0)


class Trainer(eqx.Module):
    """Everything that defines how one network learns (all static except float fields)."""

    net: MLP
    rule: Rule
    loss: Loss = eqx.field(static=True, default_factory=lambda: get_loss("cross_entropy"))
    optimizer: optax.GradientTransformation = eqx.field(static=True, default_factory=identity_optimizer)
    weight_decay: float = 0.0
    weight_noise: float = 0.0
    init_method: str = eqx.field(static=True, default="xavier")
    init_scale: float = eqx.field(static=True, default=1.0)

    def init(self, key: jax.Array) -> TrainState:
        """Fresh weights, rule state and optimizer state from one key."""
        k_w, k_r, k_s = jax.random.split(key, 3)
        params = self.net.init(k_w, self.init_method, self.init_scale)
        return TrainState(params, self.rule.init(k_r, self.net, params), self.optimizer.init(params), k_s)

    def signals(self, params: Params, rule_state: Any, x: jax.Array, t: jax.Array) -> Signals:
        fwd = self.net.forward(params, x)
        e_out = self.loss.error(fwd, t)
        return Signals(fwd, self.rule.feedback(self.net, params, rule_state, fwd, e_out), e_out)

    def step(self, state: TrainState, x: jax.Array, t: jax.Array) -> tuple[TrainState, dict]:
        """One learning step on the batch (x, t); returns the new state and the batch loss / accuracy."""
        key, k_rule, k_noise = jax.random.split(state.key, 3)
        sig = self.signals(state.params, state.rule_state, x, t)
        deltas, rule_state = self.rule.update(self.net, state.params, state.rule_state, sig, k_rule)
        grads = jax.tree.map(lambda d, w: -d + self.weight_decay * w, deltas, state.params)
        upd, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, upd)
        if self.weight_noise:
            leaves, tree = jax.tree.flatten(params)
            keys = jax.random.split(k_noise, len(leaves))
            params = jax.tree.unflatten(tree, [p + self.weight_noise * jax.random.normal(k, p.shape)
                                               for p, k in zip(leaves, keys)])
        metrics = {"loss": self.loss.value(sig.fwd, t)}
        if self.loss.classification:
            metrics["correct"] = jnp.mean(jnp.argmax(sig.fwd.out, -1) == t)
        return TrainState(params, rule_state, opt_state, key), metrics

    def evaluate(self, params: Params, x: jax.Array, t: jax.Array) -> dict:
        """Mean loss (and accuracy for classification) on a data set."""
        fwd = self.net.forward(params, x)
        out = {"loss": self.loss.value(fwd, t)}
        if self.loss.classification:
            out["accuracy"] = jnp.mean(jnp.argmax(fwd.out, -1) == t)
        return out


def _scan_chunk(trainer: Trainer, state: TrainState, idx: jax.Array, x: jax.Array, t: jax.Array, check: bool = False):
    """lax.scan of ``trainer.step`` over the batches x[idx[i]]; with ``check``, also per-step finiteness per layer."""

    def body(s, i):
        s, m = trainer.step(s, x[i], t[i])
        if check:
            m["finite"] = jnp.stack([jnp.all(jnp.isfinite(w)) for w in s.params.W])
        return s, m

    return jax.lax.scan(body, state, idx)


@dataclass
class History:
    """Learning curves: arrays of shape (seeds, evaluations), evaluated after ``samples[j]`` samples."""

    seeds: list[int]
    samples: list[int] = field(default_factory=list)
    curves: dict[str, list] = field(default_factory=dict)
    final_state: TrainState | None = None

    def append(self, n_samples: int, values: dict[str, np.ndarray]) -> None:
        self.samples.append(int(n_samples))
        for k, v in values.items():
            self.curves.setdefault(k, []).append(np.asarray(v, dtype=float))

    def array(self, key: str) -> np.ndarray:
        """Curve ``key`` as an array of shape (seeds, evaluations)."""
        return np.stack(self.curves[key], axis=1)

    def final(self, key: str) -> np.ndarray:
        return self.array(key)[:, -1]


def sample_order(seed: int, n_train: int, n_steps: int, batch_size: int) -> np.ndarray:
    """Indices (n_steps, batch_size): epochs of random permutations drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    need = n_steps * batch_size
    perms = [rng.permutation(n_train) for _ in range(-(-need // n_train))]
    return np.concatenate(perms)[:need].reshape(n_steps, batch_size).astype(np.int32)


_CHUNK_CACHE: dict = {}


def _compiled(trainer: Trainer, check: bool):
    """Jitted, seed-vmapped chunk runner and evaluator for ``trainer`` (cached)."""
    key = (trainer, check)
    try:
        return _CHUNK_CACHE[key]
    except (KeyError, TypeError):
        pass
    run = jax.jit(jax.vmap(lambda s, i, x, t: _scan_chunk(trainer, s, i, x, t, check), in_axes=(0, 0, None, None)))
    ev = jax.jit(jax.vmap(trainer.evaluate, in_axes=(0, None, None)))
    out = (run, ev)
    try:
        _CHUNK_CACHE[key] = out
    except TypeError:
        pass
    return out


def _finite_layers(params: Params) -> np.ndarray:
    """(seeds, layers) booleans: all weights finite and below 1e6 in magnitude."""
    return np.stack([np.asarray(jnp.all(jnp.isfinite(w) & (jnp.abs(w) < 1e6), axis=(-2, -1))) for w in params.W], axis=1)


def fit(trainer: Trainer, x_train, y_train, *, seeds: list[int] | int = 1, n_samples: int | None = None,
        epochs: float = 1.0, batch_size: int = 1, eval_every: int | None = None, x_eval=None, y_eval=None,
        callback: Callable[[TrainState, int], dict] | None = None, progress: bool | str = True,
        init_state: TrainState | None = None) -> History:
    """Train ``trainer`` on (x_train, y_train) for every seed at once (vmapped).

    Each seed draws its own initial weights, rule state and data order, so seed s
    gives the same numbers whether run alone or among others. Training runs in
    jitted ``lax.scan`` chunks of ``eval_every`` samples; after each chunk the
    model is evaluated on (x_eval, y_eval) (if given), ``callback(state, samples)``
    may add metrics, and the weights are checked: a non-finite or exploding weight
    raises ``DivergenceError`` naming the seed, the step and the layer, with the
    history up to the last good evaluation attached.
    """
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    x_train = jnp.asarray(x_train, jnp.float32)
    y_train = jnp.asarray(y_train)
    n_train = x_train.shape[0]
    if y_train.shape[0] != n_train:
        raise ValueError(f"x_train has {n_train} samples but y_train has {y_train.shape[0]}")
    n_samples = int(n_samples if n_samples is not None else round(epochs * n_train))
    n_steps = max(1, n_samples // batch_size)
    steps_per_chunk = max(1, (eval_every or n_samples) // batch_size)
    order = np.stack([sample_order(s, n_train, n_steps, batch_size) for s in seed_list])
    run, ev = _compiled(trainer, False)
    state = init_state if init_state is not None else jax.vmap(trainer.init)(jnp.stack([jax.random.PRNGKey(s) for s in seed_list]))
    hist = History(seed_list)
    if x_eval is not None:
        x_eval, y_eval = jnp.asarray(x_eval, jnp.float32), jnp.asarray(y_eval)

    def record(st: TrainState, done: int, train_metrics: dict | None) -> None:
        vals = {}
        if x_eval is not None:
            vals.update({f"eval_{k}": v for k, v in ev(st.params, x_eval, y_eval).items()})
        if train_metrics is not None:
            vals.update({f"train_{k}": np.asarray(v).mean(axis=1) for k, v in train_metrics.items()})
        if callback is not None:
            vals.update(callback(st, done))
        hist.append(done, vals)

    record(state, 0, None)
    starts = list(range(0, n_steps, steps_per_chunk))
    bar = _progress(len(starts), progress, f"{trainer.rule.name} x{len(seed_list)} seeds")
    for c0 in starts:
        idx = jnp.asarray(order[:, c0:c0 + steps_per_chunk])
        new_state, metrics = run(state, idx, x_train, y_train)
        ok = _finite_layers(new_state.params)
        if not ok.all():
            _raise_divergence(trainer, state, idx, x_train, y_train, c0, batch_size, seed_list, hist)
        state = new_state
        record(state, (c0 + idx.shape[1]) * batch_size, metrics)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    hist.final_state = state
    return hist


def _raise_divergence(trainer, state, idx, x, t, c0, batch_size, seeds, hist):
    """Replay the failing chunk step by step to name the first bad step, layer and seed."""
    run, _ = _compiled(trainer, True)
    _, m = run(state, idx, x, t)
    finite = np.asarray(m["finite"])  # (seeds, steps, layers)
    bad = np.argwhere(~finite)
    if len(bad):
        s, step, layer = min(bad.tolist(), key=lambda r: (r[1], r[2], r[0]))
        what = "became non-finite (NaN/inf)"
    else:  # exploded past 1e6 without NaN: report the chunk
        ok = _finite_layers(jax.tree.map(lambda a: a, run(state, idx, x, t)[0].params))
        s, layer = map(int, np.argwhere(~ok)[0])
        step, what = idx.shape[1] - 1, "exceeded 1e6 in magnitude"
    global_step = c0 + int(step) + 1
    raise DivergenceError(
        f"training diverged: weights of layer {int(layer) + 1} {what} at step {global_step} "
        f"(sample {global_step * batch_size}) for seed {seeds[int(s)]} with rule {trainer.rule.name}. "
        "Lower the learning rate(s), add weight decay, or change the initialisation; "
        f"{len(hist.samples)} evaluations before the failure are kept.",
        step=global_step, layer=int(layer) + 1, seed=seeds[int(s)], history=hist)


class _LineProgress:
    """Progress for a stream that is not a terminal (a log file, a pipe): one plain line each time another
    10% of the chunks is done, e.g. ``bp x3 seeds: 2/3 chunks (67%), 1.2 s``; never a carriage return."""

    def __init__(self, total: int, desc: str, stream):
        import time

        self.total, self.desc, self.stream, self.clock = total, desc, stream, time.perf_counter
        self.n, self.decile = 0, 0
        self.t0 = self.clock()

    def update(self, n: int = 1) -> None:
        self.n = min(self.total, self.n + n)
        decile = 10 * self.n // self.total
        if decile > self.decile:
            self.decile = decile
            pct = round(100 * self.n / self.total)
            try:
                self.stream.write(f"{self.desc}: {self.n}/{self.total} chunks ({pct}%), "
                                  f"{self.clock() - self.t0:.1f} s\n")
                self.stream.flush()
            except (OSError, ValueError):  # a closed or broken stream must not stop training
                pass

    def close(self) -> None:
        pass


def _is_terminal(stream) -> bool:
    """Whether ``stream`` redraws in place: a TTY, or a Jupyter kernel's output (tqdm draws a widget there)."""
    if type(stream).__module__.split(".")[0] == "ipykernel":
        return True
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _progress(total: int, progress: bool | str, desc: str):
    """A progress bar over ``total`` chunks on stderr (None when off or for a single chunk).

    On a terminal it is a tqdm bar that redraws in place and disappears when done; when stderr is not a
    terminal (``plasticlab run ... > log 2>&1``) it is a plain line per 10% of the chunks, so a log file
    holds no carriage-return fragments.
    """
    import sys

    if not progress or total < 2:
        return None
    desc = desc if progress is True else str(progress)
    stream = sys.stderr
    if not _is_terminal(stream):
        return _LineProgress(total, desc, stream)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, unit="chunk")
