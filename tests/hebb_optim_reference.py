"""The Hebbian-alignment engine as it was before it moved onto training.fit (git HEAD 31e24b2,
src/plasticlab/rules/hebb_optim.py; imports made absolute, the unchanged HebbSpec imported): the independent
reference of tests/test_engine_hebb.py. Do not edit: it is the old code path the new one is checked against.

Original docstring:

Regularised learning rules of the Hebbian-alignment paper, with the alignment logged inside the scan.

Why not ``plasticlab.training.Trainer``: the paper's setups need (i) the learning signal of every
step (to log its alignment without recomputing a forward pass), (ii) a transformer front end,
batch norm, dropout, frozen/sparse weights and L1, which the MLP-only Trainer does not have, and
(iii) DFA/RandomNN clipping of the *learning signal* before the decay is added (torch's
``clip_grad_norm_`` then ``SGD(weight_decay=gamma)``), whereas Trainer adds the decay before the
optimiser. Trainer's L2 (coupled, through the optimiser) and its weight noise (added after each
step, i.e. before the next gradient) agree with the paper; ``tests/test_hebb_rules.py`` checks that
this module's SGD step equals Trainer(BP, optax.sgd) step for step.

One step for one run, with traced hyper-parameters lr, gamma, sigma (weight noise), input_noise, l1:

    P     <- P + sigma * mask * N(0, 1)                  (noise injected before each step; with
                                                          noise_mode="perturbed" only g sees it and
                                                          the step below starts from the clean P)
    x     <- x + input_noise * N(0, 1)                   (float inputs only)
    g     =  learning signal at the noisy P:
             sgd / adam : g = -dLoss/dP                  (autograd of the batch-mean loss)
             dfa        : g_W_l = -<delta_l h_{l-1}^T>, delta_L = dLoss/dy_L,
                          delta_l = (B_l delta_L) * f'(y_l); a transformer front receives
                          delta_0 = B_0 delta_L and backpropagates it internally
             randomnn   : ``random_nn.random_nn_signal``
    g     <- clip_global_norm(g, clip)                   (dfa: 5, randomnn: 1, else none)
    d     =  -g + gamma * P + l1 * sign(P)               (coupled L2, as torch's weight_decay)
    P     <- P - lr * d                     (sgd, dfa, randomnn)
    P     <- P - lr * adam(d)               (adam; torch Adam(weight_decay=gamma) semantics)
    (updates of frozen / pruned weights are masked to zero)

Loss: MSE averaged over batch *and* output units (torch ``MSELoss``), or mean cross-entropy.
Every ``log_every`` steps the last step of the block also returns the alignment of the learning
signal g (and of the full update Delta P, decay included) with <h_b h_a^T> for every MLP layer,
per neuron and for all MLP layers together (``analysis.hebbian_alignment``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from plasticlab.analysis.hebbian_alignment import cosine, hebbian_update, row_cosines
from plasticlab.networks.activations import get_activation
from plasticlab.networks.mlp import init_weight
from plasticlab.networks.transformer import SeqEncoder
from plasticlab.rules.hebb_optim import HP_NAMES, HebbSpec, plan  # the spec and the call's layout: shared, not copied
from plasticlab.rules.random_nn import clip_global_norm, init_random_nn, random_nn_signal

@lru_cache(maxsize=None)
def _front_static(seq):
    return eqx.partition(SeqEncoder(jax.random.PRNGKey(0), *seq), eqx.is_inexact_array)[1]


def _encoder(spec: HebbSpec, key):
    v, T, d, h, nl, dff = spec.seq
    return SeqEncoder(key, v, T, d, h, nl, dff)


def init_params(spec: HebbSpec, key: jax.Array) -> dict:
    """{"W": [...], "b": [...]?, "bn": [(scale, shift)...]?, "front": encoder arrays?}."""
    k_w, k_f = jax.random.split(key)
    keys = jax.random.split(k_w, spec.n_layers)
    p: dict[str, Any] = {"W": [init_weight(k, (o, i), spec.init) for k, i, o in
                               zip(keys, spec.sizes[:-1], spec.sizes[1:])]}
    if spec.use_bias:
        p["b"] = [jnp.zeros((o,)) for o in spec.sizes[1:]]
    if spec.batchnorm:
        p["bn"] = [(jnp.ones((o,)), jnp.zeros((o,))) for o in spec.sizes[1:-1]]
    if spec.seq is not None:
        p["front"] = eqx.partition(_encoder(spec, k_f), eqx.is_inexact_array)[0]
    return p


def forward(spec: HebbSpec, params: dict, x: jax.Array, key: jax.Array | None = None, train: bool = False,
            skip_front: bool = False):
    """Network output and the MLP taps [(h_a, h_b, f'(y)) per layer]; dropout only when ``train``.

    ``skip_front``: ``x`` is already the transformer's pooled output (the MLP head's input).
    """
    act = get_activation(spec.activation)
    h = x
    if spec.seq is not None and not skip_front:
        h = eqx.combine(params["front"], _front_static(spec.seq)).batch(x)
    taps = []
    for l in range(spec.n_layers):
        if train and spec.dropout > 0 and l > 0:
            key, k = jax.random.split(key)
            keep = jax.random.bernoulli(k, 1.0 - spec.dropout, h.shape)
            h = jnp.where(keep, h / (1.0 - spec.dropout), 0.0)
        y = h @ params["W"][l].T
        if spec.use_bias:
            y = y + params["b"][l]
        last = l == spec.n_layers - 1
        z = y
        if spec.batchnorm and not last:
            s, t = params["bn"][l]
            mu, var = jnp.mean(y, 0), jnp.var(y, 0)
            z = (y - mu) / jnp.sqrt(var + 1e-5) * s + t
        taps.append((h, y, jnp.ones_like(z) if last else act.df(z)))
        h = z if last else act.f(z)
    return h, taps


def loss_value(spec: HebbSpec, out: jax.Array, t: jax.Array) -> jax.Array:
    """MSE over batch and units (torch MSELoss) or mean cross-entropy."""
    if spec.loss == "mse":
        return jnp.mean((out - t) ** 2)
    return -jnp.mean(jnp.sum(jax.nn.one_hot(t, out.shape[-1]) * jax.nn.log_softmax(out, -1), -1))


def output_error(spec: HebbSpec, out: jax.Array, t: jax.Array) -> jax.Array:
    """delta_L = B * dLoss/dy_L per sample (so that <delta_L h^T> is the gradient of the batch mean)."""
    if spec.loss == "mse":
        return 2.0 * (out - t) / out.shape[-1]
    return jax.nn.softmax(out, -1) - jax.nn.one_hot(t, out.shape[-1])


def init_rule_state(spec: HebbSpec, key: jax.Array, params: dict):
    """DFA: fixed B_l (d_l, d_L) (Xavier; B_0 for a transformer front); RandomNN: generator and projections."""
    if spec.rule == "dfa":
        keys = jax.random.split(key, spec.n_layers)
        return [init_weight(keys[l], (spec.sizes[l], spec.sizes[-1]), "xavier") for l in range(spec.n_layers)]
    if spec.rule == "randomnn":
        d_in = spec.seq[1] if spec.seq is not None else spec.sizes[0]
        return init_random_nn(key, d_in, params)
    return ()


def learning_signal(spec: HebbSpec, params: dict, rule_state, x, t, key):
    """(g, taps, loss) at ``params`` for the batch (x, t): g has the pytree of ``params``."""
    if spec.rule in ("sgd", "adam"):
        def f(p):
            out, taps = forward(spec, p, x, key, train=True)
            return loss_value(spec, out, t), taps

        (loss, taps), grads = jax.value_and_grad(f, has_aux=True)(params)
        return jax.tree.map(jnp.negative, grads), taps, loss
    if spec.rule == "dfa":
        if spec.seq is not None:
            front = lambda fp: eqx.combine(fp, _front_static(spec.seq)).batch(x)  # noqa: E731
            h0, vjp = jax.vjp(front, params["front"])
            out, taps = forward(spec, params, h0, skip_front=True)
        else:
            out, taps = forward(spec, params, x)
        e = output_error(spec, out, t)
        B = x.shape[0]
        # delta of hidden layer l (1-based, l < L) uses B_l = rule_state[l]; the output layer uses e itself
        deltas = [(e @ rule_state[l].T) * taps[l - 1][2] for l in range(1, spec.n_layers)] + [e]
        g = {"W": [-(d.T @ tp[0]) / B for d, tp in zip(deltas, taps)]}
        if spec.use_bias:
            g["b"] = [-jnp.mean(d, 0) for d in deltas]
        if spec.seq is not None:
            (gf,) = vjp((e @ rule_state[0].T) / B)
            g["front"] = jax.tree.map(jnp.negative, gf)
        return g, taps, loss_value(spec, out, t)
    out, taps = forward(spec, params, x)
    g = random_nn_signal(params, x, rule_state, spec.target_norm, clip=None)
    return g, taps, loss_value(spec, out, t)


def init_masks(spec: HebbSpec, key: jax.Array, params: dict) -> dict:
    """1/0 update masks: MLP weights pruned (``sparsity``) or frozen (``frozen``); everything else 1."""
    masks = jax.tree.map(jnp.ones_like, params)
    frac = spec.sparsity + spec.frozen
    if frac > 0:
        keys = jax.random.split(key, spec.n_layers)
        masks["W"] = [jax.random.bernoulli(k, 1.0 - frac, w.shape).astype(w.dtype) for k, w in zip(keys, params["W"])]
    return masks


class RunState(eqx.Module):
    params: dict
    opt_state: Any
    rule_state: Any
    masks: dict
    key: jax.Array
    perm: jax.Array
    step: jax.Array


def _optimizer(spec: HebbSpec):
    return optax.scale_by_adam() if spec.rule == "adam" else optax.identity()


def init_run(spec: HebbSpec, key: jax.Array, n_train: int) -> RunState:
    k_p, k_r, k_m, k_s, k_perm = jax.random.split(key, 5)
    params = init_params(spec, k_p)
    masks = init_masks(spec, k_m, params)
    if spec.sparsity > 0:
        params["W"] = [w * m for w, m in zip(params["W"], masks["W"])]
    return RunState(params, _optimizer(spec).init(params), init_rule_state(spec, k_r, params), masks, k_s,
                    jax.random.permutation(k_perm, n_train), jnp.zeros((), jnp.int32))


def _metrics(spec: HebbSpec, g: dict, u: dict, taps, new_params: dict, loss) -> dict:
    """Alignment of the learning signal g and of the full update u with <h_b h_a^T> for every MLP layer."""
    Hs = [hebbian_update(hb, ha) for ha, hb, _ in taps]
    gW, uW = g["W"], u["W"]
    m = {"align": jnp.stack([cosine(a, H) for a, H in zip(gW, Hs)]),
         "align_full": jnp.stack([cosine(a, H) for a, H in zip(uW, Hs)]),
         "align_all": cosine(jnp.concatenate([a.ravel() for a in gW]), jnp.concatenate([H.ravel() for H in Hs])),
         "wnorm": jnp.stack([jnp.linalg.norm(w) for w in new_params["W"]]),
         "loss": loss}
    if spec.neuron_layer:
        l = spec.neuron_layer - 1
        m["neuron"] = row_cosines(gW[l], Hs[l])
        m["neuron_full"] = row_cosines(uW[l], Hs[l])
    return m


def metrics_template(spec: HebbSpec) -> dict:
    """Zero-filled metrics of the right shapes (the carry of the logging scan)."""
    L = spec.n_layers
    m = {"align": jnp.zeros(L), "align_full": jnp.zeros(L), "align_all": jnp.zeros(()), "wnorm": jnp.zeros(L),
         "loss": jnp.zeros(())}
    if spec.neuron_layer:
        d = spec.sizes[spec.neuron_layer]
        m["neuron"], m["neuron_full"] = jnp.zeros(d), jnp.zeros(d)
    return m


def train_step(spec: HebbSpec, state: RunState, hp: dict, x_all, t_all, measure=False):
    """One step (module docstring). ``measure`` (bool or traced bool): also return this step's metrics
    (computed under ``lax.cond``, so non-measured steps skip the Hebbian products)."""
    B = spec.batch_size
    n = x_all.shape[0]
    per_epoch = n // B
    pos = state.step % per_epoch
    key = jax.random.fold_in(state.key, state.step)
    k_perm, k_noise, k_in, k_drop = jax.random.split(key, 4)
    perm = jax.lax.cond((pos == 0) & (state.step > 0), lambda: jax.random.permutation(k_perm, n),
                        lambda: state.perm)
    idx = jax.lax.dynamic_slice(perm, (pos * B,), (B,))
    x, t = x_all[idx], t_all[idx]
    if jnp.issubdtype(x.dtype, jnp.floating):
        x = x + hp["input_noise"] * jax.random.normal(k_in, x.shape)
    leaves, tree = jax.tree.flatten(state.params)
    nkeys = jax.random.split(k_noise, len(leaves))
    mleaves = jax.tree.leaves(state.masks)
    params = jax.tree.unflatten(tree, [p + hp["sigma"] * m * jax.random.normal(k, p.shape)
                                       for p, m, k in zip(leaves, mleaves, nkeys)])
    g, taps, loss = learning_signal(spec, params, state.rule_state, x, t, k_drop)
    g = clip_global_norm(g, spec.clip)
    if spec.noise_mode == "perturbed":  # the noise only perturbs where g is evaluated
        params = state.params
    d = jax.tree.map(lambda gg, p: -gg + hp["gamma"] * p + hp["l1"] * jnp.sign(p), g, params)
    u, opt_state = _optimizer(spec).update(d, state.opt_state, params)
    u = jax.tree.map(lambda v, m: -hp["lr"] * v * m, u, state.masks)
    new_params = jax.tree.map(jnp.add, params, u)
    new = RunState(new_params, opt_state, state.rule_state, state.masks, state.key, perm, state.step + 1)
    if measure is False:
        return new, None
    if measure is True:
        return new, _metrics(spec, g, u, taps, new_params, loss)
    m = jax.lax.cond(measure, lambda: _metrics(spec, g, u, taps, new_params, loss), lambda: metrics_template(spec))
    return new, m


def evaluate(spec: HebbSpec, params: dict, x, t) -> dict:
    out, _ = forward(spec, params, x)
    res = {"val_loss": loss_value(spec, out, t)}
    if spec.loss == "cross_entropy":
        res["val_acc"] = jnp.mean(jnp.argmax(out, -1) == t)
    return res


# Cheaper XLA compilation (small runs are dominated by compile time on CPU); results are unchanged.
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


@lru_cache(maxsize=64)
def _runner(spec: HebbSpec, log_every: int, logs_per_eval: int, n_evals: int, n_train: int, fast_compile: bool):
    def one(key, hp, x, t, xv, tv):
        state = init_run(spec, key, n_train)

        def inner(carry, i):
            s, m_last = carry
            s, m = train_step(spec, s, hp, x, t, measure=i == log_every - 1)
            return (s, jax.tree.map(lambda a, b: jnp.where(i == log_every - 1, a, b), m, m_last)), None

        def log_block(s, _):
            (s, m), _ = jax.lax.scan(inner, (s, metrics_template(spec)), jnp.arange(log_every))
            return s, m

        def eval_block(s, _):
            s, m = jax.lax.scan(log_block, s, None, length=logs_per_eval)
            return s, (m, evaluate(spec, s.params, xv, tv))

        ev0 = evaluate(spec, state.params, xv, tv)
        state, (m, ev) = jax.lax.scan(eval_block, state, None, length=n_evals)
        return state.params, m, ev, ev0

    return jax.jit(jax.vmap(one, in_axes=(0, 0, None, None, None, None)),
                   compiler_options=FAST_COMPILE if fast_compile else None)


def train(spec: HebbSpec, x, t, x_val, t_val, *, seeds, hp: dict | None = None, n_steps: int = 1000,
          log_every: int = 10, n_evals: int = 10, fast_compile: bool | None = None) -> dict:
    """Train len(seeds) runs at once (vmapped); ``hp[name]`` is a scalar or an array with one value per run.

    Returns numpy arrays with a leading run axis: ``align`` (runs, logs, L), ``align_full``, ``align_all``,
    ``wnorm``, ``loss``, ``neuron`` (runs, logs, d), ``val_loss`` (runs, n_evals + 1) ..., ``step`` (logs,)
    (the step each log was measured at), ``eval_step`` and ``params`` (final weights, numpy pytree).
    ``fast_compile`` (default: automatic, for small jobs) lowers XLA's optimisation level to cut compile time.
    """
    seeds, full, n_evals, logs_per_eval, fast_compile = plan(spec, x, seeds, hp, n_steps, log_every, n_evals,
                                                             fast_compile)
    N = len(seeds)
    run = _runner(spec, log_every, logs_per_eval, n_evals, int(x.shape[0]), bool(fast_compile))
    keys = jnp.stack([jax.random.PRNGKey(int(s)) for s in seeds])
    params, m, ev, ev0 = run(keys, {k: jnp.asarray(v) for k, v in full.items()}, jnp.asarray(x), jnp.asarray(t),
                             jnp.asarray(x_val), jnp.asarray(t_val))
    out = {k: np.asarray(v).reshape(N, n_evals * logs_per_eval, *np.asarray(v).shape[3:]) for k, v in m.items()}
    for k in ev:
        out[k] = np.concatenate([np.asarray(ev0[k])[:, None], np.asarray(ev[k])], axis=1)
    out["step"] = (np.arange(1, n_evals * logs_per_eval + 1) * log_every)
    out["eval_step"] = np.arange(n_evals + 1) * logs_per_eval * log_every
    out["params"] = jax.tree.map(np.asarray, params)
    out["hp"] = full
    return out


def final_window(values: np.ndarray, steps: np.ndarray, window: int) -> np.ndarray:
    """Mean over the logs in the last ``window`` steps (NaNs ignored): (runs, logs, ...) -> (runs, ...)."""
    sel = steps > steps[-1] - window
    if not sel.any():
        sel[-1] = True
    with np.errstate(invalid="ignore"):
        return np.nanmean(values[:, sel], axis=1)
