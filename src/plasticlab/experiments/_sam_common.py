"""Shared machinery of the SAM experiments: a grid trainer (rates x seeds under one vmap), data, baselines.

``train_grid`` runs one ``Trainer`` template for every (learning rate, weight decay) cell and every
seed at once: the rule's float fields ``lr`` (and ``decay`` where the rule has one) are traced,
so a whole learning-rate grid compiles once. Steps are a jitted ``lax.scan``; after each chunk
the test set is evaluated and every cell is checked for non-finite weights (W and, for SAM, Wbar,
V, Vbar). A diverged cell is reported with the first bad chunk's step and layer; with
``on_divergence="stop"`` a ``DivergenceError`` is raised instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..claims.sam import TABLE1
from ..data import DataError, Dataset, load_dataset
from ..losses import get_loss
from ..networks import MLP
from ..networks.two_stream import DOWN_ACTIVATIONS
from ..rules import BP, FA, KP, WM, Rule
from ..rules.sam import SAM, DECAY_SCALINGS, DEFAULT_RATIOS, parse_plastic
from ..settings import SettingError, setting
from ..training import DivergenceError, Trainer, sample_order
from .base import verdict

# Table 1 of the paper (accuracy %, mean +- SD over 5 runs; ChestMNIST: macro ROC AUC x 100): one copy, with the
# claims that read it (plasticlab.claims.sam)
PAPER_TABLE1: dict[str, dict[str, tuple[float, float]]] = TABLE1
METHODS = ("sgd", "fa", "wm", "kp", "sam")


# ----------------------------------------------------------------------------- settings shared by the configs

# registered data sets the SAM experiments cannot score (no class labels: no accuracy, no ROC AUC)
REGRESSION_DATASETS = ("teacher_regression",)
# losses for class labels; multi-label data sets always train with "bce" (``loss_for``), whatever is chosen
LOSSES = ("cross_entropy", "mse")
ON_DIVERGENCE = ("stop", "record")
MAX_WIDTH = 100_000  # per hidden layer, upstream or downstream
MAX_EPOCHS = 5000.0  # the paper does not state its epochs; ours run 10-30
NORMALIZE = ("none", "standardize", "center")  # input normalisation of ``load``
LR_SCHEDULES = ("constant", "step", "cosine")  # rate schedules of ``lr_multiplier``


def datasets() -> list[str]:
    """Data sets the SAM experiments accept: every registered one with class labels or binary label vectors."""
    from ..data import available_datasets

    return sorted(d for d in available_datasets() if d not in REGRESSION_DATASETS)


# constraint and doc of the fields the sam-* configs share (``sam_setting``); a config whose doc differs in a word
# that matters (seeds per cell / mode / method, the paper's data set) passes its own doc
SAM_SETTINGS: dict[str, dict] = {
    "dataset": dict(choices=datasets, doc="data set (any with class labels or binary label vectors)"),
    "hidden": dict(ge=1, le=MAX_WIDTH, doc="hidden widths of the MLP"),
    "loss": dict(choices=LOSSES, doc="training loss (multi-label data sets always use binary cross-entropy)"),
    "epochs": dict(gt=0, le=MAX_EPOCHS, doc="passes over the training set (may be fractional)"),
    "batch_size": dict(ge=1, le=100_000, doc="minibatch size"),
    "seeds": dict(ge=1, le=1000, doc="independent seeds, run together under vmap"),
    "evals": dict(ge=1, le=10_000, doc="test-set evaluations over training (curve points after 0)"),
    "n_train": dict(ge=1, le=10_000_000, doc="random training subset size (None: all)"),
    "n_test": dict(ge=1, le=10_000_000, doc="random test subset size (None: all)"),
    "sgd_lr": dict(gt=0, doc="SGD (backprop) learning rate"),
    "sam_lr": dict(gt=0, doc="SAM's overall learning rate (eta_X = sam_lr * ratio_X)"),
    "sam_decay": dict(ge=0, doc="SAM's weight decay gamma per step (0: none)"),
    "sam_ratios": dict(ge=0, doc="SAM's rate ratios of (W, Wbar, V, Vbar), exactly 4"),
    "sam_decay_scaling": dict(choices=DECAY_SCALINGS, doc='"none": every matrix decays by gamma; "rate": matrix X '
                                                          'by eta_X * gamma (Algorithm 1)'),
    "sam_vbar_scale": dict(gt=0, doc="hidden Vbar start this many times larger (H = Vbar Vbar^T near scale^2 I)"),
    "use_bias": dict(doc="biases in every layer"),
    "normalize": dict(choices=NORMALIZE, doc='inputs: "center": minus the training mean image; "standardize": '
                                            '(x - mu) / sigma with the training mean and std; "none": as loaded'),
    "lr_schedule": dict(choices=LR_SCHEDULES, doc="factor on the rate over training (see _sam_common.lr_multiplier)"),
    "lr_warmup": dict(ge=0, lt=1, doc="linear warm-up over this fraction of the steps (0: none)"),
    "on_divergence": dict(choices=ON_DIVERGENCE, affects_result=False,
                          doc='"stop": raise at the first diverged cell; "record": report it and go on (a finished '
                              'unit is the same either way)'),
}


def sam_setting(name: str, default: Any, **override: Any) -> Any:
    """``setting(default, ...)`` with the shared constraint and doc of SAM setting ``name``; ``override`` (e.g.
    ``doc=``) replaces the table's entries of that name."""
    return setting(default, **{**SAM_SETTINGS[name], **override})


def check_ratios(ratios) -> None:
    """SAM needs exactly four rate ratios (W, Wbar, V, Vbar); each is checked >= 0 by its setting."""
    if len(ratios) != 4:
        raise SettingError("sam_ratios", tuple(ratios), "4 numbers >= 0: the rate ratios of W, Wbar, V and Vbar",
                           f"{len(ratios)} given")


def check_down_widths(hidden, width_ratios, down_activations, ratio_key: str, act_key: str) -> None:
    """The downstream hidden widths round(ratio * width) stay <= MAX_WIDTH, and D_d = relu_jacobian (the forward
    ReLU Jacobian) only with downstream widths equal to the upstream ones (``TwoStream``'s own check, early).
    ``width_ratios`` and ``down_activations``: one value or a tuple of them."""
    acts = (down_activations,) if isinstance(down_activations, str) else tuple(down_activations)
    for r in (width_ratios,) if isinstance(width_ratios, (int, float)) else width_ratios:
        widths = [max(1, round(r * w)) for w in hidden]
        if max(widths, default=0) > MAX_WIDTH:
            raise SettingError(ratio_key, width_ratios, f"ratios whose downstream widths round(ratio * hidden) are "
                                                        f"<= {MAX_WIDTH}", f"{r:g} gives widths {widths}")
        if "relu_jacobian" in acts and widths != list(hidden):
            raise SettingError(act_key, down_activations, "relu_jacobian only with equal upstream and downstream "
                                                          f"widths (use {ratio_key}=1 or another D_d)",
                               f"{ratio_key}={r:g} gives downstream widths {widths} for hidden {list(hidden)}")


# ----------------------------------------------------------------------------- data

def load(name: str, data_dir, n_train: int | None = None, n_test: int | None = None, seed: int = 0,
         normalize: str = "none") -> Dataset:
    """``load_dataset`` plus an optional subset and input normalisation (``standardize``: the training split's
    mean and standard deviation, ``Dataset.standardized``); raises the loader's DataError when data are missing."""
    if normalize not in NORMALIZE:
        raise ValueError(f"unknown normalize {normalize!r}; choose one of: {', '.join(NORMALIZE)}")
    data = load_dataset(name, data_dir)
    if n_train is not None or n_test is not None:
        data = data.subset(n_train, n_test, seed)
    if normalize == "standardize":
        return data.standardized()
    return data.centered() if normalize == "center" else data


def loss_for(data: Dataset, loss: str) -> str:
    """Multi-label data sets use binary cross-entropy whatever ``loss`` says."""
    return "bce" if data.task == "multilabel" else loss


def metric_name(data: Dataset) -> str:
    return "test_auc" if data.task == "multilabel" else "test_accuracy"


# ----------------------------------------------------------------------------- rules

@dataclass
class Hyper:
    """Rates of every method (plain SGD on the rule's update, batch mean, no momentum)."""

    sgd_lr: float = 0.1
    fa_lr: float = 0.1
    kp_lr: float = 0.1
    kp_decay: float = 1e-4
    wm_lr: float = 0.1
    wm_mirror_lr: float = 0.01
    sam_lr: float = 0.05
    sam_decay: float = 1e-4
    sam_ratios: tuple[float, ...] = DEFAULT_RATIOS


def make_rule(method: str, hp: Hyper, **sam_kw) -> Rule:
    """The baseline or SAM rule for ``method`` in sgd, fa, wm, kp, sam (``sam_kw``: SAM's fields; the baselines
    ignore them)."""
    if method == "sgd":
        return BP(lr=hp.sgd_lr)
    if method == "fa":
        return FA(lr=hp.fa_lr)
    if method == "kp":
        return KP(lr=hp.kp_lr, decay=hp.kp_decay)
    if method == "wm":
        return WM(lr=hp.wm_lr, lr_mirror=hp.wm_mirror_lr, decay_mirror=hp.wm_mirror_lr)
    if method == "sam":
        kw = dict(sam_kw)
        if "plastic" in kw:
            kw["plastic"] = parse_plastic(kw["plastic"])
        return SAM(lr=hp.sam_lr, decay=hp.sam_decay, ratios=tuple(hp.sam_ratios), **kw)
    raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")


def make_net(data: Dataset, hidden: tuple[int, ...], activation: str = "relu", use_bias: bool = False) -> MLP:
    return MLP((data.n_features, *hidden, data.n_outputs), activation=activation, use_bias=use_bias)


# ----------------------------------------------------------------------------- grid trainer

def _with_rates(trainer: Trainer, lr, decay) -> Trainer:
    rule = trainer.rule
    rule = eqx.tree_at(lambda r: r.lr, rule, lr)
    if hasattr(rule, "decay") and decay is not None:
        rule = eqx.tree_at(lambda r: r.decay, rule, decay)
    return eqx.tree_at(lambda t: t.rule, trainer, rule)


def _state_ok(state) -> jax.Array:
    """(layers,) all-finite and < 1e6 flags over W and every rule-state matrix (cells/seeds vmapped outside)."""
    mats = list(state.params.W) + [m for m in jax.tree.leaves(state.rule_state) if m.ndim == 2 and m.size]
    return jnp.stack([jnp.all(jnp.isfinite(m) & (jnp.abs(m) < 1e6)) for m in mats])


@dataclass
class GridResult:
    """Curves of shape (cells, seeds, evaluations); ``diverged[c]`` is None or a message (the first diverged
    seed's); ``seed_diverged[c, s]`` flags every diverged seed, whose curves are NaN (the other seeds' are kept)."""

    lrs: list[float]
    decays: list[float]
    seeds: list[int]
    samples: list[int]
    curves: dict[str, np.ndarray]
    diverged: list[str | None]
    final_state: Any = None
    extra: dict | None = None
    seed_diverged: np.ndarray | None = None

    def final(self, key: str) -> np.ndarray:
        return self.curves[key][:, :, -1]


def lr_multiplier(schedule: str, t, total: int, warmup: float = 0.0):
    """Factor on the overall rate at step t of ``total``: constant 1; ``step`` 1 then 0.1 for the last quarter
    (t >= 0.75 T); ``cosine`` (1 + cos(pi t / T)) / 2; times a linear warm-up min(1, (t + 1) / (warmup T))
    over the first ``warmup`` fraction of the steps (0: none)."""
    if not 0.0 <= warmup < 1.0:
        raise ValueError(f"lr_warmup must be a fraction of the training in [0, 1), got {warmup}")
    if schedule == "constant":
        factor = 1.0
    elif schedule == "step":
        factor = jnp.where(t >= 0.75 * total, 0.1, 1.0)
    elif schedule == "cosine":
        factor = 0.5 * (1.0 + jnp.cos(jnp.pi * t / total))
    else:
        raise ValueError(f"unknown lr_schedule {schedule!r}; choose one of: {', '.join(LR_SCHEDULES)}")
    if warmup > 0:
        factor = factor * jnp.minimum(1.0, (t + 1.0) / (warmup * total))
    return factor


def train_grid(trainer: Trainer, data: Dataset, *, lrs, decays=None, seeds: int | list[int] = 1, epochs: float = 1.0,
               batch_size: int = 256, evals: int = 5, on_divergence: str = "stop",
               probe: Callable | None = None, keep_state: bool = False, lr_schedule: str = "constant",
               lr_warmup: float = 0.0) -> GridResult:
    """Train ``trainer`` for every cell (lrs[c], decays[c]) and seed under one jit/vmap.

    lrs/decays: equal-length lists (decays None: the rule's own). ``probe(trainer_c, state, x, t)`` may
    return a dict of scalars measured at each evaluation on the first test batch (vmapped).
    Evaluation: test accuracy (classification), ROC AUC (multi-label, macro over labels) and loss.
    ``lr_schedule`` and ``lr_warmup`` scale every cell's overall rate (for SAM all four rates, their ratios
    kept) at step t of T: see ``lr_multiplier``. The weight decay gamma is not scaled (SAM's
    ``decay_scaling="rate"`` makes each matrix's decay eta_X gamma, so it follows the schedule).
    """
    if on_divergence not in ("stop", "record"):
        raise ValueError(f"on_divergence must be 'stop' or 'record', got {on_divergence!r}")
    lrs = [float(v) for v in np.atleast_1d(lrs)]
    decays_in = [None] * len(lrs) if decays is None else [float(v) for v in np.atleast_1d(decays)]
    if len(decays_in) != len(lrs):
        raise ValueError(f"lrs and decays must have the same length, got {len(lrs)} and {len(decays_in)}")
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    C = len(lrs)
    has_decay = hasattr(trainer.rule, "decay")
    dec_arr = jnp.asarray([d if d is not None else (trainer.rule.decay if has_decay else 0.0) for d in decays_in])
    lr_arr = jnp.asarray(lrs)

    x = jnp.asarray(data.x_train, jnp.float32)
    y = jnp.asarray(data.y_train)
    xe, ye = jnp.asarray(data.x_test, jnp.float32), jnp.asarray(data.y_test)
    n = x.shape[0]
    n_steps = max(1, int(round(epochs * n)) // batch_size)
    per_chunk = max(1, math.ceil(n_steps / max(1, evals)))
    order = np.stack([sample_order(s, n, n_steps, batch_size) for s in seed_list])  # (S, steps, B)
    multilabel = data.task == "multilabel"

    def cell_trainer(lr, dec):
        return _with_rates(trainer, lr, dec if has_decay else None)

    def init_one(lr, dec, key):
        return cell_trainer(lr, dec).init(key)

    keys = jnp.stack([jax.random.PRNGKey(s) for s in seed_list])
    init = jax.jit(jax.vmap(jax.vmap(init_one, in_axes=(None, None, 0)), in_axes=(0, 0, None)))

    lr_multiplier(lr_schedule, 0, 1, lr_warmup)  # validates both before anything compiles

    def chunk_one(lr, dec, state, idx, t0, x, y):
        def body(s, it):
            i, t = it
            tr = cell_trainer(lr * lr_multiplier(lr_schedule, t, n_steps, lr_warmup), dec)
            s, m = tr.step(s, x[i], y[i])
            return s, (m["loss"], _state_ok(s))

        steps = t0 + jnp.arange(idx.shape[0])
        state, (loss, ok) = jax.lax.scan(body, state, (idx, steps))
        return state, jnp.mean(loss), ok

    # data are arguments (not closure constants) so they are not baked into the compiled program
    run = jax.jit(jax.vmap(jax.vmap(chunk_one, in_axes=(None, None, 0, 0, None, None, None)),
                           in_axes=(0, 0, 0, None, None, None, None)))

    def eval_one(lr, dec, state, xe, ye):
        tr = cell_trainer(lr, dec)
        fwd = tr.net.forward(state.params, xe)
        out = {"test_loss": tr.loss.value(fwd, ye), "out": fwd.out}
        if probe is not None:
            out.update(probe(tr, state, xe[:batch_size], ye[:batch_size]))
        return out

    ev = jax.jit(jax.vmap(jax.vmap(eval_one, in_axes=(None, None, 0, None, None)), in_axes=(0, 0, 0, None, None)))

    state = init(lr_arr, dec_arr, keys)
    init_state = state if keep_state else None
    curves: dict[str, list] = {}
    samples: list[int] = []
    diverged: list[str | None] = [None] * C
    seed_bad = np.zeros((C, len(seed_list)), bool)

    def record(st, done):
        vals = ev(lr_arr, dec_arr, st, xe, ye)
        out = np.asarray(vals.pop("out"))  # (C, S, n_test, k)
        if multilabel:
            curves.setdefault("test_auc", []).append(_auc(out, np.asarray(data.y_test)))
        else:
            curves.setdefault("test_accuracy", []).append((out.argmax(-1) == np.asarray(data.y_test)).mean(-1))
        for k, v in vals.items():
            curves.setdefault(k, []).append(np.asarray(v, dtype=float))
        samples.append(done)

    record(state, 0)
    for c0 in range(0, n_steps, per_chunk):
        idx = jnp.asarray(order[:, c0:c0 + per_chunk])
        state, tloss, ok = run(lr_arr, dec_arr, state, idx, jnp.asarray(c0), x, y)
        ok = np.asarray(ok)  # (C, S, steps, layers)
        seed_bad |= ~ok.all(axis=(2, 3))
        curves.setdefault("train_loss", []).append(np.asarray(tloss, dtype=float))
        for c in range(C):
            if diverged[c] is None and not ok[c].all():
                bad = np.argwhere(~ok[c])
                s, st, layer = min(bad.tolist(), key=lambda r: (r[1], r[0], r[2]))
                step = c0 + st + 1
                what = _matrix_name(trainer, layer)
                msg = (f"diverged at step {step} (sample {step * batch_size}): {what} became non-finite or exceeded "
                       f"1e6 for seed {seed_list[s]} with {trainer.rule.name} lr={lrs[c]:g}"
                       + (f" decay={float(dec_arr[c]):g}" if has_decay else "")
                       + ". Lower the learning rate or raise the weight decay.")
                diverged[c] = msg
                if on_divergence == "stop":
                    partial = GridResult(lrs, [float(d) for d in dec_arr], seed_list, list(samples),
                                         {k: np.stack(v, axis=-1) for k, v in curves.items()}, list(diverged))
                    raise DivergenceError(msg, step=step, layer=layer + 1, seed=seed_list[s], history=partial)
        record(state, min(n_steps, c0 + per_chunk) * batch_size)
    arr = {k: np.stack(v, axis=-1) for k, v in curves.items()}
    for k in arr:
        arr[k][seed_bad] = np.nan  # diverged seeds only; the others' curves stay
    return GridResult(lrs, [float(d) for d in dec_arr], seed_list, samples, arr, diverged,
                      state if keep_state else None, {"init_state": init_state} if keep_state else None, seed_bad)


def _matrix_name(trainer: Trainer, index: int) -> str:
    n = trainer.net.n_layers
    if index < n:
        return f"W of layer {index + 1}"
    rs = trainer.rule
    if isinstance(rs, SAM):
        return f"a downstream/inter-stream matrix (rule-state matrix #{index - n})"
    return f"feedback matrix #{index - n}"


def _auc(out: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Macro ROC AUC over labels for outputs (..., n, k) against binary y (n, k); labels of one class skipped."""
    from sklearn.metrics import roc_auc_score

    lead = out.shape[:-2]
    flat = out.reshape(-1, *out.shape[-2:])
    cols = [j for j in range(y.shape[1]) if 0 < y[:, j].sum() < len(y)]
    res = []
    for o in flat:
        if not np.all(np.isfinite(o)):
            res.append(np.nan)
            continue
        res.append(roc_auc_score(y[:, cols], o[:, cols], average="macro"))
    return np.asarray(res).reshape(lead)


def make_trainer(net: MLP, rule: Rule, loss: str, init: str = "kaiming") -> Trainer:
    return Trainer(net, rule, loss=get_loss(loss), init_method=init)


def data_or_reason(name: str, data_dir, **kw) -> tuple[Dataset | None, str | None]:
    """(data, None) or (None, 'unavailable: <reason>') when the loader raises DataError."""
    try:
        return load(name, data_dir, **kw), None
    except DataError as err:
        return None, f"unavailable: {err}"


def as_floats(values) -> np.ndarray:
    """Metric values as floats, None (a diverged run) as NaN."""
    return np.asarray([np.nan if v is None else v for v in values], float)


def score_or_reason(rows: list[dict], metric: str, label: str, **match) -> float | str:
    """Mean of ``metric`` over the seeds of the rows matching ``match``, or why there is none.

    The reason names the variant: ``"<label> diverged at step 18"`` (a cell with a diverged seed keeps the
    message in every seed's ``status``; one diverged seed makes the whole variant a reason) or
    ``"<label> not run"``.
    """
    sel = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    if not sel:
        return f"{label} not run"
    vals = as_floats([r.get(metric) for r in sel])
    bad = next((r["status"] for r in sel if r.get("status", "ok") != "ok"), None)
    if bad is None and np.isfinite(vals).any():
        return float(np.nanmean(vals))
    bad = bad or "no finite result"
    return f"{label} {bad.split(' (')[0]}"


def verdict_on(holds: Callable[..., bool], *values: float | str) -> str:
    """``verdict(holds(*values))``, or the first value that is a reason (a diverged or missing variant)."""
    reason = next((v for v in values if isinstance(v, str)), None)
    return reason if reason is not None else verdict(holds(*values))


def train_variant(trainer: Trainer, data: Dataset, cfg: Any, metric: str, label_key: str, label: str) -> dict:
    """One variant's unit of work: train ``cfg.seeds`` seeds at the rule's own rate and return its curve
    (x100) and one row per seed ({"dataset", label_key: label, "seed", metric, "status"})."""
    res = train_grid(trainer, data, lrs=[trainer.rule.lr], seeds=cfg.seeds, epochs=cfg.epochs,
                     batch_size=cfg.batch_size, evals=cfg.evals, on_divergence=cfg.on_divergence)
    curve = res.curves[metric][0] * 100
    return {"samples": res.samples, "curve": curve.tolist(),
            "rows": [{"dataset": data.name, label_key: label, "seed": s, metric: float(curve[i, -1]),
                      "status": res.diverged[0] or "ok"} for i, s in enumerate(res.seeds)]}


def per_seed(rows: list[dict], metric: str, **match) -> list[float]:
    """``metric`` of the rows matching ``match``, one float per seed in seed order; NaN for a seed without a finite
    value (``train_grid`` NaNs the curves of exactly the seeds that diverged; a claim then reads the others)."""
    sel = sorted((r for r in rows if all(r.get(k) == v for k, v in match.items())), key=lambda r: r.get("seed", 0))
    out = []
    for r in sel:
        v = r.get(metric)
        out.append(float(v) if v is not None and np.isfinite(v) else float("nan"))
    return out
