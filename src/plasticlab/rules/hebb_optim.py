"""The Hebbian-alignment paper's regularised learning rules as ``training.Trainer``s, trained by ``training.fit``.

A ``HebbSpec`` (static: network, rule, loss, clipping, ...) and per-run hyper-parameters lr, gamma, sigma
(weight noise), input_noise and l1 define one Trainer per run:

    network: networks.mlp.MLP, or networks.front_mlp.FrontMLP for a transformer (``seq``) or convolutional
             (``conv``: a ``networks.conv_front.ConvFront``) front, batch norm, dropout, pruned (``sparsity``) or
             frozen weights (their ``mask``: 0 where a weight does not learn)
    rule:    sgd, adam, adamw: BP(lr=1) (g = -dLoss/dP, through the front / batch norm / dropout);  dfa: DFA(lr=1)
             (a front receives B_0 e_L);  randomnn: RandomNN(lr=1, target_norm) (its clip is the Trainer's)

and one step (``Trainer.step``) is

    P <- P + sigma * mask * N(0, 1)            (noise_mode="persistent": weight_noise_mode "before"; with
                                                "perturbed" ("perturb") only g sees it and the step below
                                                starts from the clean P)
    x <- x + input_noise * N(0, 1)             (float inputs only)
    g  = the rule's learning signal at the (noisy) P
    g <- clip_by_global_norm(g, clip)          (``clip_norm``: dfa 5, randomnn 1, else none)
    d  = -g + gamma * P + l1 * sign(P)         (``weight_decay``, ``l1``: coupled, as torch's weight_decay)
    P <- P + mask * optimizer(d)               (optax.sgd(lr): -lr d; optax.adam(lr): torch Adam(weight_decay))

except for adamw, whose decay is decoupled (torch AdamW(weight_decay)): d = -g + l1 * sign(P) and
P <- P + mask * (optax.adam(lr)(d) - lr * gamma * P) (``Trainer.decoupled_decay`` = lr * gamma).

Loss: MSE averaged over batch *and* output units (``losses`` "mse_mean", torch ``MSELoss``), or mean
cross-entropy. Every ``log_every`` steps (the last step of each block) fit logs the alignment of the learning
signal g and of the full update (decay included) with <h_b h_a^T> for every MLP layer, per neuron and for all
MLP layers together (``analysis.hebbian_alignment.StepAlignment``; with pruned or frozen weights also of g
over the weights that learn), the weight norms and the batch loss.

The runs (seed, hyper-parameters) become fit's grid: the cells are the distinct (gamma, sigma, input_noise,
l1), each trained for every seed (vmapped, compiled once); a run with another lr (the optimizer's static rate)
trains in another fit call. As everywhere in fit, seed s draws the initial weights, masks, rule state and data
order (``training.sample_order``) and the noise of its runs.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache

import jax
import numpy as np
import optax

from ..analysis.convergence import Stationarity
from ..analysis.hebbian_alignment import StepAlignment
from ..losses import get_loss
from ..networks.conv_front import ConvFront
from ..networks.front_mlp import FrontMLP, FrontParams
from ..networks.mlp import MLP, LayerSizes
from ..training import Trainer, fit
from .feedback import BP, DFA
from .random_nn import RandomNN

RULES = ("sgd", "adam", "adamw", "dfa", "randomnn")
HP_NAMES = ("lr", "gamma", "sigma", "input_noise", "l1")
NOISE_MODES = {"persistent": "before", "perturbed": "perturb"}  # HebbSpec.noise_mode -> Trainer.weight_noise_mode


@dataclass(frozen=True)
class HebbSpec(LayerSizes):
    """Static description of a network and its learning rule (hashable; hyper-parameters are per run)."""

    sizes: tuple[int, ...] = (32, 128, 128, 32)
    activation: str = "tanh"
    loss: str = "mse"
    rule: str = "sgd"
    use_bias: bool = False
    init: str = "uniform_fanin"
    init_scale: float = 1.0  # factor multiplying the default torch init (``init``) of every MLP weight
    batch_size: int = 256
    clip: float | None = None
    target_norm: float = 100.0
    batchnorm: bool = False
    dropout: float = 0.0
    sparsity: float = 0.0
    frozen: float = 0.0
    seq: tuple[int, int, int, int, int, int] | None = None  # (vocab, length, d, heads, layers, d_ff)
    conv: ConvFront | None = None  # a CNN / ResNet front over flat images (sizes[0] = its width)
    neuron_layer: int = 2  # 1-based MLP layer whose per-neuron alignment is kept (0: none)
    noise_mode: str = "persistent"  # "persistent": P += sigma*eps stays; "perturbed": only g sees P + sigma*eps

    def __post_init__(self) -> None:
        if not self.init_scale > 0:
            raise ValueError(f"init_scale must be > 0, got {self.init_scale!r}")
        if self.noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be 'persistent' or 'perturbed', got {self.noise_mode!r}")
        if self.rule not in RULES:
            raise ValueError(f"unknown rule {self.rule!r}; choose one of {RULES}")
        if self.loss not in ("mse", "cross_entropy"):
            raise ValueError(f"loss must be 'mse' or 'cross_entropy', got {self.loss!r}")
        if self.seq is not None and self.conv is not None:
            raise ValueError("a network has one front: set seq (transformer) or conv (CNN), not both")
        if self.rule == "dfa" and (self.batchnorm or self.dropout):
            raise ValueError("DFA here supports plain MLP layers only; set batchnorm=False and dropout=0")
        network(self)  # the network checks its own shape, fractions and activation


def network(spec: HebbSpec) -> MLP | FrontMLP:
    """The plain ``MLP`` when the spec needs nothing more, else a ``FrontMLP`` (front, batch norm, dropout, masks)."""
    if spec.seq is None and spec.conv is None and not (spec.batchnorm or spec.dropout or spec.sparsity or spec.frozen):
        return MLP(tuple(spec.sizes), activation=spec.activation, use_bias=spec.use_bias)
    return FrontMLP(tuple(spec.sizes), spec.activation, spec.use_bias, spec.batchnorm, spec.dropout, spec.sparsity,
                    spec.frozen, spec.seq if spec.conv is None else spec.conv)


def init_params(spec: HebbSpec, key: jax.Array):
    """Fresh parameters of ``network(spec)`` (``Params`` or ``FrontParams``), every weight scaled by ``spec.init_scale``."""
    return network(spec).init(key, spec.init, spec.init_scale)


def forward(spec: HebbSpec, params, x: jax.Array):
    """Network output and the MLP taps [(h_a, y_b, f'(y_b)) per layer] (evaluation mode: no dropout)."""
    fwd = network(spec).forward(params, x)
    return fwd.out, list(zip(fwd.h[:-1], fwd.y, fwd.df))


@lru_cache(maxsize=None)
def _optimizer(rule: str, lr: float) -> optax.GradientTransformation:
    """One object per (rule, lr), so that trainers built twice compare equal (fit's compile cache)."""
    return optax.adam(lr) if rule in ("adam", "adamw") else optax.sgd(lr)


def trainer(spec: HebbSpec, lr: float = 0.01, gamma: float = 0.0, sigma: float = 0.0, input_noise: float = 0.0,
            l1: float = 0.0) -> Trainer:
    """The Trainer of one run (module docstring): the rule at rate 1, the step sizes in the optimizer."""
    rule = {"sgd": BP(lr=1.0), "adam": BP(lr=1.0), "adamw": BP(lr=1.0), "dfa": DFA(lr=1.0),
            "randomnn": RandomNN(lr=1.0, target_norm=spec.target_norm, clip=None)}[spec.rule]
    decoupled = spec.rule == "adamw"
    return Trainer(network(spec), rule, loss=get_loss("mse_mean" if spec.loss == "mse" else "cross_entropy"),
                   optimizer=_optimizer(spec.rule, float(lr)), weight_decay=0.0 if decoupled else gamma,
                   decoupled_decay=lr * gamma if decoupled else 0.0, weight_noise=sigma,
                   init_method=spec.init, init_scale=spec.init_scale, input_noise=input_noise, l1=l1,
                   clip_norm=spec.clip, weight_noise_mode=NOISE_MODES[spec.noise_mode],
                   step_metrics=StepAlignment(spec.neuron_layer))


# Cheaper XLA compilation (small runs are dominated by compile time on CPU); results are unchanged.
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
LOGGED = ("align", "align_full", "align_all", "wnorm", "loss", "neuron", "neuron_full",  # train's step metrics
          "align_learning")


def _params_dict(params) -> dict:
    """Old output format: {"W": [...], "b": [...]?, "bn": [(scale, shift), ...]?, "front": arrays?}."""
    out = {"W": list(params.W)}
    if params.b is not None:
        out["b"] = list(params.b)
    if isinstance(params, FrontParams):
        if params.bn is not None:
            out["bn"] = list(params.bn)
        if params.front is not None:
            out["front"] = params.front
    return out


def plan(spec: HebbSpec, x, seeds, hp: dict | None, n_steps: int, log_every: int, n_evals: int,
         fast_compile: bool | None) -> tuple[np.ndarray, dict, int, int, bool]:
    """Check a ``train`` call and lay it out: (seeds, per-run hyper-parameters, evaluations, logs per evaluation,
    whether to compile fast: automatic for small jobs, whose time compiling dominates)."""
    seeds = np.atleast_1d(np.asarray(seeds, dtype=np.int64))
    hp = dict(hp or {})
    bad = set(hp) - set(HP_NAMES)
    if bad:
        raise ValueError(f"unknown hyper-parameter(s) {sorted(bad)}; choose from {HP_NAMES}")
    full = {k: np.broadcast_to(np.asarray(hp.get(k, 0.01 if k == "lr" else 0.0), np.float32), (len(seeds),)).copy()
            for k in HP_NAMES}
    if x.shape[0] < spec.batch_size:
        raise ValueError(f"batch size {spec.batch_size} exceeds the {x.shape[0]} training samples")
    n_logs_total = max(1, n_steps // log_every)
    n_evals = max(1, min(n_evals, n_logs_total))
    if fast_compile is None:  # multiply-accumulates of the forward passes; a CNN front's convolutions count too
        per_sample = sum(a * b for a, b in zip(spec.sizes, spec.sizes[1:])) + (spec.conv.macs if spec.conv else 0)
        fast_compile = len(seeds) * n_steps * spec.batch_size * per_sample < 5e10
    return seeds, full, n_evals, max(1, n_logs_total // n_evals), bool(fast_compile)


def train(spec: HebbSpec, x, t, x_val, t_val, *, seeds, hp: dict | None = None, n_steps: int = 1000,
          log_every: int = 10, n_evals: int = 10, fast_compile: bool | None = None,
          until: Stationarity | None = None, max_runs: int | None = None) -> dict:
    """Train len(seeds) runs (``hp[name]``: a scalar or one value per run) through ``training.fit``.

    Trains n_evals * (n_steps // log_every // n_evals) * log_every <= n_steps steps, evaluating on (x_val,
    t_val) every (n_steps // log_every // n_evals) * log_every steps. Returns numpy arrays with a leading run
    axis: ``align`` (runs, logs, L), ``align_full``, ``align_all``, ``wnorm``, ``loss``, ``neuron`` (runs, logs,
    d), ``neuron_full``, ``align_learning`` (runs, logs, L; only with pruned or frozen weights), ``val_loss``
    (runs, n_evals + 1), ``val_acc`` (cross-entropy), ``step`` (logs,) (the step each log was measured at),
    ``eval_step``, ``params`` (final weights, ``_params_dict`` format) and
    ``hp``. A run whose weights became non-finite or exceeded 1e6 reports NaN (fit's on_divergence="record").
    ``fast_compile`` (default: automatic, for small jobs) lowers XLA's optimisation level to cut compile time.
    With ``until`` (a convergence criterion), each learning rate's runs stop at the first evaluation by which
    every one of them has held it, n_steps being the cap: ``stationary_step`` (runs,) is the step where a run
    first held it (-1: never), ``stationary`` whether it held at the end, ``steps_run`` (runs,) the steps trained.
    ``max_runs`` bounds the runs vmapped in one ``fit`` call (memory grows with them: a CNN front's activations);
    the runs of a learning rate then train in groups of cells and seeds, one after another, with the same
    numbers (each seed draws its own weights and data order). A convergence criterion judges all the runs of a
    learning rate together, so ``until`` with a grid larger than ``max_runs`` is refused.
    """
    seeds, full, n_evals, logs_per_eval, fast_compile = plan(spec, x, seeds, hp, n_steps, log_every, n_evals,
                                                             fast_compile)
    if max_runs is not None and max_runs < 1:
        raise ValueError(f"max_runs must be >= 1 (or None: every run at once), got {max_runs}")
    N = len(seeds)
    steps_per_eval = logs_per_eval * log_every
    float_inputs = np.issubdtype(np.asarray(x).dtype, np.floating)  # no input noise on token sequences
    B = spec.batch_size
    per_run: list[dict] = [{} for _ in range(N)]
    longest: dict = {"samples": [], "log_steps": []}
    for lr in dict.fromkeys(full["lr"].tolist()):
        runs = [r for r in range(N) if full["lr"][r] == lr]
        cell_of = {r: (float(full["gamma"][r]), float(full["sigma"][r]),
                       float(full["input_noise"][r]) if float_inputs else 0.0, float(full["l1"][r])) for r in runs}
        cells = list(dict.fromkeys(cell_of.values()))
        run_seeds = list(dict.fromkeys(int(seeds[r]) for r in runs))
        groups = _groups(cells, run_seeds, max_runs)
        if until is not None and len(groups) > 1:
            raise ValueError(f"max_runs={max_runs} splits the {len(cells) * len(run_seeds)} runs of lr {lr:g}, "
                             "whose convergence criterion judges them together; raise max_runs or drop until")
        for group_cells, group_seeds in groups:
            watch = None if until is None else until.watch(B)
            hist = fit([trainer(spec, lr, *c) for c in group_cells], x, t, seeds=group_seeds,
                       n_samples=n_evals * steps_per_eval * B, batch_size=B, eval_every=steps_per_eval * B,
                       x_eval=x_val, y_eval=t_val, progress=None, on_divergence="record", log_every=log_every,
                       compiler_options=FAST_COMPILE if fast_compile else None, until=watch, checkpoint=True)
            arrays = _history_arrays(hist, watch, B)
            if len(hist.samples) > len(longest["samples"]):
                longest = {"samples": hist.samples, "log_steps": hist.log_steps}
            params = _params_dict(hist.final_state.params)
            for r in runs:
                if cell_of[r] in group_cells and int(seeds[r]) in group_seeds:
                    c, s = group_cells.index(cell_of[r]), group_seeds.index(int(seeds[r]))
                    per_run[r] = {**{k: v[c, s] for k, v in arrays.items()},
                                  "params": jax.tree.map(lambda a: np.asarray(a[c, s]), params)}
    # with ``until`` the learning rates' runs may stop at different evaluations: shorter curves end in NaN
    out = {k: _stack_padded([p[k] for p in per_run]) for k in per_run[0] if k != "params"}
    out["step"] = np.asarray(longest["log_steps"])
    out["eval_step"] = np.asarray(longest["samples"]) // B
    out["params"] = jax.tree.map(lambda *a: np.stack(a), *[p["params"] for p in per_run])
    out["hp"] = full
    return out


def _groups(cells: list, seeds: list[int], max_runs: int | None) -> list[tuple[list, list[int]]]:
    """(cells, seeds) of each ``fit`` call: all at once, or at most ``max_runs`` runs per call (seeds first in
    chunks of min(#seeds, max_runs), then as many cells as fit beside them)."""
    n_seeds = len(seeds) if max_runs is None else min(len(seeds), max_runs)
    n_cells = len(cells) if max_runs is None else max(1, max_runs // n_seeds)
    return [(cells[c:c + n_cells], seeds[s:s + n_seeds]) for c in range(0, len(cells), n_cells)
            for s in range(0, len(seeds), n_seeds)]


def _history_arrays(hist, watch, batch_size: int) -> dict[str, np.ndarray]:
    """The logged metrics and evaluations of one ``fit`` call, each (cells, seeds, ...); with a convergence
    ``watch`` also when each run first held it, whether it held at the end and the steps trained."""
    out = {k: hist.logged(k) for k in LOGGED if k in hist.logs}
    out["val_loss"] = hist.array("eval_loss")
    if "eval_accuracy" in hist.curves:
        out["val_acc"] = hist.array("eval_accuracy")
    if watch is not None:
        first = np.full(out["val_loss"].shape[:2], -1) if watch.first_step is None else watch.first_step
        holds = np.zeros(first.shape, bool) if watch.holds is None else watch.holds
        out.update(stationary_step=first, stationary=holds,
                   steps_run=np.full(first.shape, hist.samples[-1] // batch_size))
    return out


def _stack_padded(arrays: list[np.ndarray]) -> np.ndarray:
    """Stack per-run arrays whose first axis (logs or evaluations) may differ in length, padding with NaN."""
    n = max((np.shape(a)[0] if np.ndim(a) else 0) for a in arrays)
    if all(np.ndim(a) == 0 or np.shape(a)[0] == n for a in arrays):
        return np.stack(arrays)
    return np.stack([np.concatenate([np.asarray(a, float), np.full((n - len(a), *np.shape(a)[1:]), np.nan)])
                     for a in arrays])


def last_step(values: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Per run, the last of ``steps`` where ``values`` (runs, logs, ...) has a finite entry (the end of a run
    that stopped early; ``steps[-1]`` for a run with none)."""
    v = np.asarray(values, float)
    finite = np.isfinite(v.reshape(v.shape[0], v.shape[1], -1)).any(-1)
    idx = finite.shape[1] - 1 - np.argmax(finite[:, ::-1], axis=1)
    return np.where(finite.any(1), np.asarray(steps)[idx], np.asarray(steps)[-1])


def last_finite(values: np.ndarray) -> np.ndarray:
    """Per run, the last finite entry along axis 1 (NaN for a run with none): (runs, evals) -> (runs,)."""
    v = np.asarray(values, float)
    finite = np.isfinite(v)
    idx = v.shape[1] - 1 - np.argmax(finite[:, ::-1], axis=1)
    return np.where(finite.any(1), v[np.arange(v.shape[0]), idx], np.nan)


def final_window(values: np.ndarray, steps: np.ndarray, window: int) -> np.ndarray:
    """Mean over the logs in each run's last ``window`` steps (NaNs ignored; a run that stopped early is
    averaged over its own last steps): (runs, logs, ...) -> (runs, ...)."""
    steps = np.asarray(steps)
    end = last_step(values, steps)[:, None]
    sel = ((steps[None] > end - window) & (steps[None] <= end)) | (steps[None] == end)
    v = np.where(sel.reshape(*sel.shape, *([1] * (np.ndim(values) - 2))), np.asarray(values, float), np.nan)
    with warnings.catch_warnings():  # a run with no finite log in its window: NaN, no "mean of empty slice"
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(v, axis=1)
