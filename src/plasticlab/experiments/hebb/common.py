"""Shared pieces of the hebb-* experiments: tasks (SRE, transformer SRE, SCE), rule defaults, summaries."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import jax
import numpy as np

from ...data import load_dataset
from ...data.synthetic import TEACHER_INITS, teacher_student
from ...analysis.convergence import Stationarity
from ...rules.hebb_optim import HebbSpec, final_window, forward, init_params, last_finite, train
from ...settings import SettingError, setting

# Paper (Table 1 caption): DFA lr 0.1, clip 5, biases; RandomNN clip 1, target norm 100; default lr 0.01.
RULE_DEFAULTS = {
    "sgd": dict(clip=None, use_bias=False),
    "adam": dict(clip=None, use_bias=False),
    "adamw": dict(clip=None, use_bias=False),
    "dfa": dict(clip=5.0, use_bias=True),
    "randomnn": dict(clip=1.0, use_bias=False),
}
PAPER_LR = {"sgd": 0.01, "adam": 0.01, "dfa": 0.1, "randomnn": 0.01}
# Table 1 of the paper (mean, sd; None = collapsed): declared once with its claims
from ...claims.hebb import PAPER_TABLE1  # noqa: E402,F401


# ----------------------------------------------------------------------------- settings shared by the configs

# registered data sets the SCE cannot use: it needs integer class labels (cross-entropy on n_classes outputs)
NOT_SCE_DATASETS = ("teacher_regression", "chestmnist")  # regression targets; multi-label binary vectors
NOISE_MODES = ("persistent", "perturbed")  # HebbSpec.noise_mode
MAX_WIDTH = 100_000  # per layer
MAX_EPOCHS = 5000.0  # 100x the paper's 50
MAX_STEPS = 10_000_000  # averaging windows, in steps


def sce_datasets() -> list[str]:
    """Data sets the SCE accepts: every registered one with integer class labels."""
    from ...data import available_datasets

    return sorted(d for d in available_datasets() if d not in NOT_SCE_DATASETS)


# the SRE teacher of every SRE experiment (docs/hebb.md, "Init")
TEACHER_INIT = "uniform_fanin"

# constraint and doc of the fields the SCE configs (hebb-fig3, hebb-sweeps) or the SRE configs share
# (``hebb_setting``); a config whose doc differs in a word that matters passes its own doc
HEBB_SETTINGS: dict[str, dict] = {
    "teacher_init": dict(choices=TEACHER_INITS,
                         doc="the SRE teacher's weights: uniform_fanin (torch's default, the student's init: the "
                             "paper's 'same architecture, different random parameters' read literally; every SRE "
                             "experiment since 2026-12-07), or xavier_normal (N(0, 2 / (fan_in + fan_out)), the "
                             "records before)"),
    "dataset": dict(choices=sce_datasets, doc="SCE data set (any with integer class labels; inputs standardised)"),
    "n_train": dict(ge=1, le=10_000_000, doc="random training subset size (None: all)"),
    "n_test": dict(ge=1, le=10_000_000, doc="random test (validation) subset size (None: all)"),
    "gammas": dict(ge=0, doc="weight decays (coupled L2, as torch's weight_decay; 0: none)"),
    "hidden": dict(ge=1, le=MAX_WIDTH, doc="hidden widths of the shallow MLP"),
    "seeds": dict(ge=1, le=1000, doc="independent seeds per cell, run together under vmap"),
    "epochs": dict(gt=0, le=MAX_EPOCHS, doc="passes over the training set (may be fractional); the minimum when "
                                            "max_epochs is set"),
    "batch_size": dict(ge=1, le=100_000, doc="minibatch size (<= the training samples)"),
    "lr": dict(gt=0, doc="SGD learning rate"),
    "log_every": dict(ge=1, le=100_000, doc="steps between alignment logs"),
    "window": dict(ge=1, le=MAX_STEPS, doc="final alignment: mean over the logs of the last this many steps"),
    # convergence (analysis.convergence.Stationarity, docs/hebb.md "At convergence")
    "max_epochs": dict(gt=0, le=MAX_EPOCHS, doc="cap: after `epochs`, train until every run was stationary or "
                                                 "this many epochs (None: exactly `epochs`, no criterion)"),
    "eval_epochs": dict(gt=0, le=MAX_EPOCHS, doc="epochs between the evaluations the criterion reads"),
    "stationary_window": dict(ge=2, le=1000, doc="stationary over this many evaluations (even): the means of "
                                                 "its earlier and later half agree"),
    "loss_rtol": dict(gt=0, le=1, doc="stationary: validation loss halves differ by at most this fraction"),
    "align_atol": dict(gt=0, le=2, doc="stationary: alignment halves (every layer) differ by at most this"),
    "norm_rtol": dict(gt=0, le=1, doc="stationary: weight-norm halves (every layer) differ by at most this "
                                      "fraction"),
}




def hebb_setting(name: str, default, **override):
    """``setting(default, ...)`` with the shared constraint and doc of SCE setting ``name``; ``override`` (e.g.
    ``doc=``) replaces the table's entries of that name."""
    return setting(default, **{**HEBB_SETTINGS[name], **override})


@dataclass
class UntilStationary:
    """The settings of "at convergence" (docs/hebb.md): a config that inherits them trains at least its
    ``epochs``, then until every run has been stationary (``criterion()``) or ``max_epochs``."""

    max_epochs: float | None = hebb_setting("max_epochs", 1000.0)
    eval_epochs: float = hebb_setting("eval_epochs", 5.0)
    stationary_window: int = hebb_setting("stationary_window", 4)
    loss_rtol: float = hebb_setting("loss_rtol", 0.01)
    align_atol: float = hebb_setting("align_atol", 0.01)
    norm_rtol: float = hebb_setting("norm_rtol", 0.01)

    def criterion(self) -> Stationarity:
        return Stationarity(window=self.stationary_window, loss_rtol=self.loss_rtol, atol=self.align_atol,
                            norm_rtol=self.norm_rtol)

    def check_convergence(self) -> None:
        """The window is even; the cap is not below the minimum length."""
        if self.stationary_window % 2:
            raise SettingError("stationary_window", self.stationary_window, "an even number of evaluations")
        if self.max_epochs is not None and self.max_epochs < self.epochs:
            raise SettingError("max_epochs", self.max_epochs, f"None or >= epochs ({self.epochs:g})")

    def until(self) -> dict:
        """The convergence keywords of ``run_grid``."""
        return dict(max_epochs=self.max_epochs, eval_epochs=self.eval_epochs, criterion=self.criterion())


def check_batch(n_train: int | None, batch_sizes, key: str = "batch_size") -> None:
    """Every batch size fits in the training set (``train`` refuses a batch larger than it); n_train None (the
    whole data set) is checked when the data are loaded."""
    sizes = (batch_sizes,) if isinstance(batch_sizes, int) else tuple(batch_sizes)
    if n_train is not None and max(sizes) > n_train:
        raise SettingError(key, batch_sizes, f"batch sizes <= n_train ({n_train})",
                           f"{max(sizes)} exceeds the {n_train} training samples")


def check_layer(layer: int, hidden, key: str = "layer") -> None:
    """A 1-based MLP layer index: at most len(hidden) + 1 (the output layer)."""
    n = len(hidden) + 1
    if layer > n:
        raise SettingError(key, layer, f"a layer 1..{n} of the {n}-layer MLP (hidden {list(hidden)})")


def check_increasing(key: str, values) -> None:
    """Strictly increasing values (grid axes read in order: plots interpolate on them, boundaries are scanned
    from the smallest)."""
    v = list(values)
    if any(b <= a for a, b in zip(v, v[1:])):
        raise SettingError(key, tuple(values), "strictly increasing values", "not in increasing order")


def sre_data(n_train: int = 20000, n_val: int = 2000, d: int = 32, hidden: tuple[int, ...] = (128, 128),
             seed: int = 0, teacher_init: str = TEACHER_INIT):
    """SRE: x ~ N(0, I_d), targets of a random tanh teacher MLP with the student's architecture (its init
    ``teacher_init``: ``data.synthetic.teacher_student``)."""
    ds = teacher_student(n_train, n_val, d_in=d, d_out=d, hidden=hidden, activation="tanh", seed=seed,
                         init=teacher_init)
    return ds.x_train, ds.y_train, ds.x_test, ds.y_test


def seq_data(n_train: int = 20000, n_val: int = 2000, seq: tuple = (16, 32, 32, 4, 2, 32),
             hidden: tuple[int, ...] = (128, 128), d_out: int = 32, seed: int = 0):
    """Transformer SRE: uniform random token sequences labelled by a random teacher transformer + MLP head."""
    teacher = HebbSpec(sizes=(seq[2], *hidden, d_out), seq=tuple(seq), neuron_layer=0)
    k_p, k_x = jax.random.split(jax.random.PRNGKey(10_000 + seed))
    p = init_params(teacher, k_p)
    x = jax.random.randint(k_x, (n_train + n_val, seq[1]), 0, seq[0])
    y = np.concatenate([np.asarray(forward(teacher, p, x[i:i + 2000])[0]) for i in range(0, x.shape[0], 2000)])
    x = np.asarray(x, np.int32)
    return x[:n_train], y[:n_train].astype(np.float32), x[n_train:], y[n_train:].astype(np.float32)


def sce_data(dataset: str, data_dir, n_train: int | None = None, n_test: int | None = None, seed: int = 0):
    """SCE data (CIFAR-10 in the paper): flattened pixels, standardised with the training mean/std.

    Raises the loader's DataError (naming the missing files) when the data set is not available offline.
    """
    return standardised(load_dataset(dataset, data_dir), n_train, n_test, seed)


def standardised(ds, n_train: int | None = None, n_test: int | None = None, seed: int = 0):
    """``sce_data`` of a loaded ``Dataset``: (x_train, y_train, x_test, y_test, n_classes), the random subsets
    drawn with ``seed``, the pixels centred by the per-pixel training mean and divided by the training std."""
    if n_train is not None or n_test is not None:
        ds = ds.subset(n_train or len(ds.x_train), n_test or len(ds.x_test), seed)
    mu, sd = ds.x_train.mean(0), ds.x_train.std() + 1e-8
    return ((ds.x_train - mu) / sd).astype(np.float32), ds.y_train, ((ds.x_test - mu) / sd).astype(np.float32), \
        ds.y_test, ds.n_classes


def n_steps(epochs: float, n_train: int, batch_size: int) -> int:
    """SGD steps of ``epochs`` passes over ``n_train`` samples."""
    return int(round(epochs * n_train / batch_size))


def measured_layer(rule: str) -> int:
    """Table 1 reports the 2nd layer (1st for DFA)."""
    return 1 if rule == "dfa" else 2


def spec_for(rule: str, sizes: tuple[int, ...], *, loss: str = "mse", seq=None, batch_size: int = 256,
             **kw) -> HebbSpec:
    opts = dict(RULE_DEFAULTS[rule])
    opts.update(kw)
    return HebbSpec(sizes=tuple(sizes), loss=loss, rule=rule, seq=None if seq is None else tuple(seq),
                    batch_size=batch_size, **opts)


def run_grid(spec: HebbSpec, data, *, seeds: list[int], hp: dict, epochs: float, log_every: int, n_evals: int = 5,
             window: int = 100, layer: int | None = None, max_epochs: float | None = None,
             eval_epochs: float = 5.0, criterion: Stationarity | None = None, max_runs: int | None = None) -> dict:
    """Train every (hyper-parameter cell x seed) run at once; JSON-ready per-run finals and curves.

    ``hp`` values are arrays with one entry per cell (or scalars); each cell runs all ``seeds``. With
    ``max_epochs`` the runs train at least ``epochs``, then until every run of a learning rate has been stationary
    (``criterion``, evaluated every ``eval_epochs``; default ``Stationarity()``) or ``max_epochs``; the result
    then says per run when it first held (``stationary_epoch``, None: never) and whether it held at the end.
    ``max_runs``: at most this many runs vmapped at once (``hebb_optim.train``; the same numbers, less memory).
    ``params`` holds the final weights (``hebb_optim.train``'s format, numpy with a leading run axis): the one
    entry that is not JSON-ready, so a caller keeps it out of its results.
    """
    x, y, xv, yv = data
    n_cells = max([np.size(v) for v in hp.values()] + [1])
    cell = np.repeat(np.arange(n_cells), len(seeds))
    run_hp = {k: np.repeat(np.broadcast_to(np.asarray(v, np.float32), (n_cells,)), len(seeds)) for k, v in hp.items()}
    run_seeds = np.tile(np.asarray(seeds), n_cells)
    steps_per_epoch = len(x) / spec.batch_size
    total = max(1, n_steps(epochs, len(x), spec.batch_size))
    until = None
    if max_epochs is not None:
        per_eval = max(1, int(round(eval_epochs * steps_per_epoch / log_every))) * log_every
        # judged from the evaluation at or before ``epochs`` on the evaluation grid (5 epochs of 234.4 steps are 1,170
        # steps: 50 epochs end 0.08 epoch after the 10th evaluation, which with max_epochs = epochs was never judged)
        first = max(1, total // per_eval) * per_eval
        n_evals = max(1, max(total, n_steps(max_epochs, len(x), spec.batch_size)) // per_eval)
        total = n_evals * per_eval
        until = replace(criterion or Stationarity(), min_samples=first * spec.batch_size)
    out = train(spec, x, y, xv, yv, seeds=run_seeds, hp=run_hp, n_steps=total, log_every=log_every,
                n_evals=n_evals, until=until, max_runs=max_runs)
    fin = final_window(out["align"], out["step"], window)            # (runs, L)
    fin_full = final_window(out["align_full"], out["step"], window)
    w0 = np.stack([np.linalg.norm(w, axis=(-2, -1)) for w in out["params"]["W"]], 1)
    res = {"cell": cell.tolist(), "seed": run_seeds.tolist(), "hp": {k: v.tolist() for k, v in run_hp.items()},
           "align": fin.tolist(), "align_full": fin_full.tolist(),
           "align_all": final_window(out["align_all"], out["step"], window).tolist(),
           "final_wnorm": w0.tolist(), "init_wnorm": out["wnorm"][:, 0].tolist(),
           "val_loss": last_finite(out["val_loss"]).tolist(), "val_loss_curve": out["val_loss"].tolist(),
           "eval_step": out["eval_step"].tolist(), "steps": out["step"].tolist(),
           "align_curve": out["align"][..., (layer or 2) - 1].tolist() if out["align"].shape[-1] >= (layer or 2)
           else out["align"][..., 0].tolist(),
           "n_steps": total, "params": out["params"]}
    if "val_acc" in out:
        res["val_acc"] = last_finite(out["val_acc"]).tolist()
    if "align_learning" in out:  # pruned or frozen weights: the alignment of the weights that learn
        res["align_learning"] = final_window(out["align_learning"], out["step"], window).tolist()
    if until is not None:
        res["stationary_epoch"] = [None if s < 0 else round(float(s) / steps_per_epoch, 2)
                                   for s in out["stationary_step"]]
        res["stationary"] = [bool(v) for v in out["stationary"]]
        res["epochs_run"] = [round(float(s) / steps_per_epoch, 2) for s in out["steps_run"]]
        res["criterion"] = {k: v for k, v in asdict(until).items()}
    res["collapsed"] = collapsed(res).tolist()
    return res


def collapsed(res: dict) -> np.ndarray:
    """A run 'collapsed' when some MLP layer's weights fell below 2% of their early norm or became non-finite."""
    fw, iw = np.asarray(res["final_wnorm"], float), np.asarray(res["init_wnorm"], float)
    bad = ~np.isfinite(fw).all(1) | ~np.isfinite(np.asarray(res["align"], float)).all(1)
    with np.errstate(invalid="ignore"):
        return bad | (fw < 0.02 * iw).any(1)


def mean_sd(values) -> tuple[float, float]:
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    return (float(v.mean()), float(v.std())) if v.size else (float("nan"), float("nan"))


def safe_float(v) -> float | None:
    v = float(v)
    return v if np.isfinite(v) else None


def fmt(v: float | None) -> str:
    """A value for a note: 2 decimals, 'nan' when missing."""
    return "nan" if v is None or not np.isfinite(v) else f"{v:.2f}"


def ensure_dir(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    return out
