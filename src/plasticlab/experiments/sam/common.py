"""Shared machinery of the SAM experiments: their shared settings (``SamConfig``), a grid trainer (rates x seeds
under one vmap), data, baselines, the variant loop of the ablations (``train_variants``).

``train_grid`` runs one ``Trainer`` template for every (learning rate, weight decay) cell and every
seed at once through the library's driver ``training.fit`` (cells that differ only in their rates
compile once); after each chunk the test set is evaluated and every cell is checked for non-finite
weights (W and, for SAM, Wbar, V, Vbar). A diverged cell is reported with the first bad step and
matrix; with ``on_divergence="stop"`` a ``DivergenceError`` is raised instead.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ...claims.sam import TABLE1
from ...data import DataError, Dataset, load_dataset
from ...losses import get_loss
from ...networks import MLP
from ...networks.two_stream import DOWN_ACTIVATIONS
from ...plotting import curve_with_ci, figure, mark_chance, save
from ...rules import BP, FA, KP, WM, Rule
from ...rules.sam import SAM, DECAY_SCALINGS, DEFAULT_RATIOS, parse_plastic
from ...settings import SettingError, setting, settings_dataclass
from ...training import Trainer, fit, seed_status
from ..base import RunContext

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
    from ...data import available_datasets

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
    "lr_schedule": dict(choices=LR_SCHEDULES, doc="factor on the rate over training (see sam.common.lr_multiplier)"),
    "lr_warmup": dict(ge=0, lt=1, doc="linear warm-up over this fraction of the steps (0: none)"),
    "val_fraction": dict(gt=0, lt=1, doc="fraction of the training split held out for validation"),
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


# ----------------------------------------------------------------------------- the configs' shared settings

# where ``plasticlab show`` lists each setting of the sam-* configs built by ``sam_config``
SETTINGS_ORDER = (
    "datasets", "methods", "dataset", "modes", "ratios", "activations", "down_activations", "lrs", "decays", "taus",
    "changes",  # what it runs
    "plastic", "fixes", "fix_lr",
    "hidden", "control_hidden", "loss", "epochs", "batch_size", "seeds", "evals", "n_train", "n_test",  # net, data, training
    "sgd_lr", "fa_lr", "wm_lr", "wm_mirror_lr", "kp_lr", "kp_decay",  # the baselines' rates
    "sam_lr", "sam_decay", "sam_ratios", "sam_decay_scaling", "sam_vbar_scale", "down_activation", "width_ratio",
    "use_bias", "normalize", "lr_schedule", "lr_warmup", "linear_baseline", "search_lrs", "search_epochs",
    "val_fraction", "margin", "trace_every", "max_steps", "control_steps", "range_factor", "on_divergence")


class SamConfig:
    """The settings sam-table1, -ablation, -scalar-error, -width and -analysis share, with their usual defaults (a
    config declares one again to change its default or doc); ``@sam_config`` makes a subclass the config dataclass."""

    hidden: tuple[int, ...] = sam_setting("hidden", (200, 200, 200))
    loss: str = sam_setting("loss", "cross_entropy")
    epochs: float = sam_setting("epochs", 10.0)
    batch_size: int = sam_setting("batch_size", 256)
    seeds: int = sam_setting("seeds", 3)
    evals: int = sam_setting("evals", 5)
    n_train: int | None = sam_setting("n_train", None)
    n_test: int | None = sam_setting("n_test", None)
    # the training setting of our MNIST search (docs/sam.md), shared by every sam-* experiment but sam-lr-search
    # (which searches the paper's plain setting): inputs centred, biases, a 15% linear warm-up, Algorithm 1's
    # rate-scaled decay and Vbar started at 0.7x. SAM's rate and decay are sam-stability's choice on a validation
    # split (2026-12-02): lr 0.173, gamma 8e-4, the best cell where 10 of 10 seeds finish 30 epochs and still do at
    # lr x 1.2 (0.25 with gamma 4e-4, the earlier default, lost 5 of 10 seeds there)
    sam_lr: float = sam_setting("sam_lr", 0.173)
    sam_decay: float = sam_setting("sam_decay", 8e-4, doc="SAM's weight decay gamma (0: none; see sam_decay_scaling)")
    sam_ratios: tuple[float, ...] = sam_setting("sam_ratios", Hyper.sam_ratios)
    sam_decay_scaling: str = sam_setting("sam_decay_scaling", "rate",
                                         doc='"rate": matrix X decays by eta_X * gamma (the earlier paper\'s '
                                             'Algorithm 1); "none": by gamma')
    sam_vbar_scale: float = sam_setting("sam_vbar_scale", 0.7)
    use_bias: bool = sam_setting("use_bias", True, doc="biases in every layer, every method (SAM: Delta b = eta_W "
                                                       "<D_u Vbar D_d hbar>)")
    normalize: str = sam_setting("normalize", "center")
    lr_schedule: str = sam_setting("lr_schedule", "constant", doc="factor on every method's rate over training (see "
                                                                  "sam.common.lr_multiplier)")
    lr_warmup: float = sam_setting("lr_warmup", 0.15, doc="linear warm-up over this fraction of the steps, every "
                                                          "method (SAM diverges without; 0: none)")
    on_divergence: str = sam_setting("on_divergence", "record")

    def validate(self) -> None:
        check_ratios(self.sam_ratios)


sam_config = settings_dataclass(SamConfig, SETTINGS_ORDER)


class SamVariantConfig(SamConfig):
    """``SamConfig`` plus the rate search every variant of sam-ablation, -scalar-error and -width gets (the same
    rates and epochs for each: the same budget), on a validation part of the training split; ``@sam_variant_config``
    makes a subclass the config dataclass."""

    search_lrs: tuple[float, ...] = setting((0.03, 0.06, 0.12, 0.25, 0.5), gt=0,
                                            doc="overall rates tried for every variant on the validation split "
                                                "(1 seed, search_epochs); the best finite one trains the seeds on "
                                                "the whole training split (empty: every variant at its own rate)")
    search_epochs: float = setting(10.0, gt=0, le=MAX_EPOCHS, doc="epochs of each search run")
    val_fraction: float = sam_setting("val_fraction", 0.2, doc="fraction of the training split held out for the "
                                                                "search")


sam_variant_config = settings_dataclass(SamVariantConfig, SETTINGS_ORDER)


# ----------------------------------------------------------------------------- grid trainer

def _with_rates(trainer: Trainer, lr, decay) -> Trainer:
    rule = trainer.rule
    rule = eqx.tree_at(lambda r: r.lr, rule, lr)
    if hasattr(rule, "decay") and decay is not None:
        rule = eqx.tree_at(lambda r: r.decay, rule, decay)
    return eqx.tree_at(lambda t: t.rule, trainer, rule)


@dataclass
class GridResult:
    """Curves of shape (cells, seeds, evaluations); ``diverged[c]`` is None or a message (the first diverged
    seed's); ``seed_diverged[c, s]`` flags every diverged seed, whose curves are NaN (the other seeds' are kept);
    ``divergences``: per diverged (cell, seed) {"cell", "seed", "step", "matrix"}."""

    lrs: list[float]
    decays: list[float]
    seeds: list[int]
    samples: list[int]
    curves: dict[str, np.ndarray]
    diverged: list[str | None]
    final_state: Any = None
    extra: dict | None = None
    seed_diverged: np.ndarray | None = None
    divergences: list[dict] | None = None  # ``History.divergences``: per diverged (cell, seed) its step and matrix

    def final(self, key: str) -> np.ndarray:
        return self.curves[key][:, :, -1]

    def seed_status(self, seed: int, cell: int = 0) -> str:
        """"ok" or seed ``seed``'s own divergence in cell ``cell`` (``training.seed_status``)."""
        return seed_status(self.divergences, self.seed_diverged, self.seeds, seed, cell)


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
    """Train ``trainer`` for every cell (lrs[c], decays[c]) and seed: one ``training.fit`` call over the grid.

    lrs/decays: equal-length lists (decays None: the rule's own). ``probe(trainer_c, state, x, t)`` may
    return a dict of scalars measured at each evaluation on the first test batch (vmapped).
    Evaluation: test accuracy (classification), ROC AUC (multi-label, macro over labels) and loss.
    ``lr_schedule`` and ``lr_warmup`` scale every cell's overall rate (for SAM all four rates, their ratios
    kept) at step t of T: see ``lr_multiplier``. The weight decay gamma is not scaled (SAM's
    ``decay_scaling="rate"`` makes each matrix's decay eta_X gamma, so it follows the schedule).
    """
    lrs = [float(v) for v in np.atleast_1d(lrs)]
    decays_in = [None] * len(lrs) if decays is None else [float(v) for v in np.atleast_1d(decays)]
    if len(decays_in) != len(lrs):
        raise ValueError(f"lrs and decays must have the same length, got {len(lrs)} and {len(decays_in)}")
    has_decay = hasattr(trainer.rule, "decay")
    decs = [d if d is not None else (trainer.rule.decay if has_decay else 0.0) for d in decays_in]
    lr_multiplier(lr_schedule, 0, 1, lr_warmup)  # validates both before anything compiles
    multilabel = data.task == "multilabel"

    def evaluate(tr: Trainer, state, xe, ye) -> dict:
        fwd = tr.net.forward(state.params, xe)
        out = {"test_loss": tr.loss.value(fwd, ye), "out": fwd.out}
        if probe is not None:
            out.update(probe(tr, state, xe[:batch_size], ye[:batch_size]))
        return out

    def on_eval(vals: dict) -> dict:
        out = vals.pop("out")  # (C, S, n_test, k)
        if multilabel:
            vals["test_auc"] = _auc(out, np.asarray(data.y_test))
        else:
            vals["test_accuracy"] = (out.argmax(-1) == np.asarray(data.y_test)).mean(-1)
        return vals

    schedule = None
    if lr_schedule != "constant" or lr_warmup > 0:
        schedule = functools.partial(lr_multiplier, lr_schedule, warmup=lr_warmup)
    hist = fit([_with_rates(trainer, lr, dec if has_decay else None) for lr, dec in zip(lrs, decs)],
               data.x_train, data.y_train, seeds=seeds, epochs=epochs, batch_size=batch_size, evals=evals,
               x_eval=data.x_test, y_eval=data.y_test, evaluate=evaluate, on_eval=on_eval,
               rate_schedule=schedule, on_divergence=on_divergence, keep_init=keep_state, progress=None,
               checkpoint=True)  # evaluate / on_eval / probe keep no state: a unit resumes mid-training
    curves = {k.removeprefix("eval_"): hist.array(k) for k in hist.curves if k != "train_correct"}
    return GridResult(lrs, [float(d) for d in decs], hist.seeds, hist.samples, curves, hist.diverged,
                      hist.final_state if keep_state else None,
                      {"init_state": hist.init_state} if keep_state else None, hist.seed_diverged, hist.divergences)


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


def load_or_unavailable(cfg: Any, ctx: RunContext, hint: str = "", **load_kw) -> tuple[Dataset | None, dict | None]:
    """(``cfg.dataset`` loaded by ``load`` with ``load_kw``, by default ``cfg``'s n_train, n_test and normalize, None),
    or, when the loader cannot provide it, (None, the results of a run without data) after logging why (with
    ``hint``)."""
    data, reason = data_or_reason(cfg.dataset, ctx.data_dir, **(load_kw or {"n_train": cfg.n_train,
                                                                           "n_test": cfg.n_test,
                                                                           "normalize": cfg.normalize}))
    if data is None:
        ctx.log(f"{cfg.dataset}: {reason}{hint}", style="yellow")
        return None, {"rows": [{"dataset": cfg.dataset, "status": reason}], "measurements": {}}
    return data, None


def as_floats(values) -> np.ndarray:
    """Metric values as floats, None (a diverged run) as NaN."""
    return np.asarray([np.nan if v is None else v for v in values], float)


def finite_stats(values) -> tuple[float, float, int]:
    """(mean, SD (ddof 0), n) over the finite values (None: diverged); NaN, NaN, 0 when there are none."""
    v = as_floats(values)
    v = v[np.isfinite(v)]
    return (float(v.mean()), float(v.std()), int(v.size)) if v.size else (float("nan"), float("nan"), 0)


def sam_kwargs(cfg: Any) -> dict:
    """SAM's fields that ``cfg`` sets (decay scaling, Vbar start scale)."""
    return {"decay_scaling": cfg.sam_decay_scaling, "vbar_scale": cfg.sam_vbar_scale}


def sam_trainer(cfg: Any, data: Dataset, activation: str = "relu", **sam_kw) -> Trainer:
    """SAM at ``cfg``'s rates (``hyper_from``) and fields (``sam_kwargs``; ``sam_kw``: SAM's other fields, or these
    changed) on the MLP of ``cfg.hidden`` with ``activation`` in the forward pathway (D_u its derivative; biases per
    ``cfg.use_bias``) for ``data``, with ``cfg``'s loss."""
    rule = make_rule("sam", hyper_from(cfg), **{**sam_kwargs(cfg), **sam_kw})
    return make_trainer(make_net(data, tuple(cfg.hidden), activation, use_bias=cfg.use_bias), rule,
                        loss_for(data, cfg.loss))


def train_at_own_rate(trainer: Trainer, data: Dataset, cfg: Any, **grid_kw) -> GridResult:
    """``train_grid`` of the one cell at the rule's own rate, with ``cfg``'s seeds, epochs, batch size, evaluations,
    rate schedule, warm-up and on_divergence (``grid_kw``: ``train_grid``'s other arguments, or these changed)."""
    kw = {"lr_schedule": cfg.lr_schedule, "lr_warmup": cfg.lr_warmup, **grid_kw}
    return train_grid(trainer, data, lrs=[trainer.rule.lr], seeds=cfg.seeds, epochs=cfg.epochs,
                      batch_size=cfg.batch_size, evals=cfg.evals, on_divergence=cfg.on_divergence, **kw)


def probed_curves(cfg: Any, data: Dataset, probe: Callable) -> dict:
    """SAM at ``cfg``'s setting (``sam_trainer``, ``train_at_own_rate``) with ``probe`` measured at every evaluation:
    {"samples", "seeds", "curves": {probe key: per seed, per evaluation}} of the one cell, as JSON lists."""
    res = train_at_own_rate(sam_trainer(cfg, data), data, cfg, probe=probe)
    return {"samples": res.samples, "seeds": res.seeds, "curves": {k: v[0].tolist() for k, v in res.curves.items()}}


def choose_rate(trainer: Trainer, data: Dataset, cfg: Any) -> dict:
    """The validation search of one variant: ``trainer`` at every overall rate of ``cfg.search_lrs`` (one seed,
    ``cfg.search_epochs``, all rates vmapped) on ``data.validation_split(cfg.val_fraction)``, inside
    ``search_context`` (a read of the test split raises). When every rate diverges, the search goes on below the
    grid once, at as many rates again, spaced by the grid's smallest ratio (0.03, 0.06, ... -> 0.015, 0.0075, ...),
    so that a variant that only learns slowly is measured rather than reported as diverged (only the variant that
    had no finite rate gets the extra budget). Returns {"lrs", "val" (final validation score x 100 per rate,
    None: diverged), "lr" (the best finite rate; the smallest tried when every rate diverged)}."""
    from ...data import search_context

    val = data.validation_split(cfg.val_fraction, seed=0)

    def scores_at(lrs: list[float]) -> list[float]:
        with search_context("sam variant rate search"):
            res = train_grid(trainer, val, lrs=lrs, seeds=1, epochs=cfg.search_epochs, batch_size=cfg.batch_size,
                             evals=1, on_divergence="record", lr_schedule=cfg.lr_schedule, lr_warmup=cfg.lr_warmup)
        return list(res.final(metric_name(val))[:, 0] * 100)

    lrs = [float(v) for v in cfg.search_lrs]
    scores = scores_at(lrs)
    if not any(np.isfinite(scores)):
        grid = sorted(set(lrs))
        step = min((b / a for a, b in zip(grid, grid[1:])), default=2.0)
        below = [grid[0] / step ** k for k in range(len(lrs), 0, -1)]
        scores, lrs = scores_at(below) + scores, below + lrs
    finite = [i for i, v in enumerate(scores) if np.isfinite(v)]
    best = max(finite, key=lambda i: scores[i]) if finite else 0
    return {"lrs": lrs, "val": [float(v) if np.isfinite(v) else None for v in scores], "lr": lrs[best]}


def at_chosen_rate(trainer: Trainer, data: Dataset, cfg: Any) -> tuple[Trainer, dict | None]:
    """(``trainer`` at the rate ``choose_rate`` picks, its search record), or (``trainer``, None) without a search
    (``cfg.search_lrs`` empty or absent)."""
    if not getattr(cfg, "search_lrs", ()):
        return trainer, None
    search = choose_rate(trainer, data, cfg)
    return _with_rates(trainer, search["lr"], None), search


def train_variant(trainer: Trainer, data: Dataset, cfg: Any, metric: str, label_key: str, label: str) -> dict:
    """One variant's unit of work: its rate chosen on validation (``at_chosen_rate``), then ``cfg.seeds`` seeds on
    the whole training split; returns its curve (x100), its search and one row per seed ({"dataset",
    label_key: label, "seed", "lr", metric, "status"})."""
    trainer, search = at_chosen_rate(trainer, data, cfg)
    res = train_at_own_rate(trainer, data, cfg)
    curve = res.curves[metric][0] * 100
    return {"samples": res.samples, "curve": curve.tolist(), "search": search,
            "rows": [{"dataset": data.name, label_key: label, "seed": s, "lr": float(trainer.rule.lr),
                      metric: float(curve[i, -1]), "status": res.seed_status(s)}
                     for i, s in enumerate(res.seeds)]}


def train_variants(ctx: RunContext, data: Dataset, cfg: Any, metric: str, label_key: str,
                   trainers: dict[str, Callable[[], Trainer]]) -> tuple[list[dict], dict[str, dict], list[dict]]:
    """Every variant as the unit ``<label_key>=<label>`` of ``train_variant``, ``trainers[label]()`` building its
    trainer: (the rows of all seeds, {label: its samples and curve}, the mean final ``metric`` per label)."""
    rows, curves = [], {}
    for label, make_trainer_of in trainers.items():
        ctx.log(f"{label_key}: {label}")
        res = ctx.unit(f"{label_key}={label}", lambda make=make_trainer_of, label=label: train_variant(
            make(), data, cfg, metric, label_key, label))
        rows += res["rows"]
        curves[label] = {"samples": res["samples"], "curve": res["curve"], "search": res.get("search")}
    summary = [{label_key: k, "lr": float(next(r["lr"] for r in rows if r[label_key] == k)),
                f"{metric}_mean": finite_stats([r[metric] for r in rows if r[label_key] == k])[0]} for k in curves]
    ctx.log(f"final {metric} (mean over finished seeds; rate chosen on validation): "
            + ", ".join(f"{r[label_key]}: {r[metric + '_mean']:.2f} (lr {r['lr']:g})" for r in summary))
    return rows, curves, summary


def plot_variants(results: dict, path: Path, title: str, size: tuple[float, float], dashed: tuple[str, ...] = (),
                  legend_fontsize: float | None = None) -> None:
    """The test-score curves of ``train_variants`` (mean over seeds with its CI; the ``dashed`` labels dashed)."""
    if "curves" not in results:
        return
    fig, ax = figure(size=size)
    ax = ax[0, 0]
    for label, c in results["curves"].items():
        curve_with_ci(ax, np.asarray(c["samples"]), np.asarray(c["curve"], float), label=label,
                      linestyle="--" if label in dashed else "-")
    ax.set_xlabel("training samples")
    ax.set_ylabel(results.get("metric", "test_accuracy") + " (x100)")
    ax.set_title(title)
    ax.legend(fontsize=legend_fontsize)
    mark_accuracy_chance(ax, results.get("metric", "test_accuracy"), results.get("n_classes"))
    save(fig, path)


def mark_accuracy_chance(ax, metric: str, n_classes: int | None) -> None:
    """Chance 100/K on a panel of ``metric`` x 100 when it is an accuracy and K is known (not in older runs)."""
    if "accuracy" in metric and n_classes:
        mark_chance(ax, 100 / n_classes, scale=100)


def per_seed(rows: list[dict], metric: str, **match) -> list[float]:
    """``metric`` of the rows matching ``match``, one float per seed in seed order; NaN for a seed without a finite
    value (``train_grid`` NaNs the curves of exactly the seeds that diverged; a claim then reads the others)."""
    sel = sorted((r for r in rows if all(r.get(k) == v for k, v in match.items())), key=lambda r: r.get("seed", 0))
    out = []
    for r in sel:
        v = r.get(metric)
        out.append(float(v) if v is not None and np.isfinite(v) else float("nan"))
    return out


def hyper_from(cfg) -> Hyper:
    """The ``Hyper`` of an experiment config (its fields of the same names)."""
    names = {f.name for f in dataclasses.fields(Hyper)}
    return Hyper(**{k: getattr(cfg, k) for k in names if hasattr(cfg, k)})
