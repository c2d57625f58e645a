"""compare: a fair side-by-side comparison of learning rules on any classification data.

For every rule the same procedure, with the same budget:

1. **Search** (inside ``search_context("compare")``: a read of the test split raises ``TestSplitRead``): the
   training split is cut once into a search-training part and a validation part (``Dataset.validation_split``,
   ``val_fraction``, seed 0). Each rule's free hyperparameters (``SEARCH_SPACE``, the one place they are declared)
   are tried at ``budget`` points of one deterministic design: the first ``budget`` points of a scrambled Sobol
   sequence in ``DESIGN_DIMS`` dimensions with a fixed seed, the same points for every rule (coordinate 0 is always
   the first term's rate). Trials that differ only in numbers are the vmapped cells of one ``fit`` call (curl's flip
   fraction is a static setting: one call per fraction level). A trial scores the mean final validation accuracy over
   ``search_seeds`` seeds; a trial with a diverged seed scores nothing; the best score is chosen.
2. **Final training**: the chosen setting of each rule trains on the whole training split for ``seeds`` seeds
   (vmapped) and the test split is read once, at the end, to score each seed.
3. **Leaderboard**: per rule mean, SD and a Student-t 95% CI of the test accuracy over seeds, and a paired t-test
   over seeds (same seed: same initial weights and data order) against the best rule, with Holm-adjusted p-values.

Rule arguments written in the rule string are fixed and not searched: ``curl(alphas=(0.0, 0.2, 0.2))`` searches
only the rate. See docs/compare.md.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data import DataError, Dataset, available_datasets, load_dataset, search_context
from ..data.download import sha256_file
from ..settings import KINDS, setting
from .base import ConfigError, Experiment, RunContext, register

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
DESIGN_DIMS = 8  # dimensions of the Sobol design (a rule string may search at most this many hyperparameters)
DESIGN_SEED = 0
CI_LEVEL = 0.95
SEARCH_NAME = "compare"


# ----------------------------------------------------------------------------- the search space (one place)

@dataclass(frozen=True)
class Param:
    """One searched hyperparameter of a rule: a range (``scale`` "log" or "linear") or discrete ``levels``.

    ``hidden_layers``: the value is a per-layer tuple for the rule (curl's ``alphas``): 0 for the first weight
    layer (the inputs are never flipped), the value for every later layer (presynaptic hidden neurons).
    """

    name: str
    low: float = 0.0
    high: float = 0.0
    scale: str = "log"
    levels: tuple[float, ...] = ()
    hidden_layers: bool = False

    def value(self, u: float) -> float:
        """The value at design coordinate ``u`` in [0, 1): log- or linearly spaced (3 significant digits), or
        the level of the ``u``-th equal part of [0, 1)."""
        if self.levels:
            return float(self.levels[min(int(u * len(self.levels)), len(self.levels) - 1)])
        if self.scale == "log":
            v = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            v = self.low + u * (self.high - self.low)
        return float(f"{v:.3g}")

    def describe(self) -> str:
        if self.levels:
            return "one of " + ", ".join(f"{v:g}" for v in self.levels) + (
                " (every hidden layer; inputs never flipped)" if self.hidden_layers else "")
        return f"{self.low:g} to {self.high:g}, {self.scale}"


RATE = Param("lr", 1e-3, 0.3)  # the error-driven rules' rate: batch 1 and batch 256 both fall in it
HEBB_RATE = Param("lr", 1e-5, 1e-2)  # a Hebbian term added to an error-driven rule
DECAY = Param("decay", 1e-6, 1e-2)

# rule name (plasticlab.rules.RULES) -> the hyperparameters searched, in design-coordinate order. Every name is a
# constructor parameter of the rule class (documented in its docstring's Parameters: section, `plasticlab rules`).
SEARCH_SPACE: dict[str, tuple[Param, ...]] = {
    "bp": (RATE,),
    "fa": (RATE,),
    "dfa": (RATE,),
    "kp": (RATE, DECAY),
    "wm": (RATE, Param("lr_mirror", 1e-4, 0.1)),
    "sam": (RATE, DECAY),
    "curl": (RATE, Param("alphas", levels=(0.1, 0.2, 0.3, 0.4), hidden_layers=True)),
    "oja": (HEBB_RATE,),
    "sanger": (HEBB_RATE,),
    "hebb": (Param("lr", 1e-6, 1e-3),),
}


def search_space_markdown() -> str:
    """``SEARCH_SPACE`` as a Markdown table (docs/compare.md holds it; a test keeps the two equal), each parameter
    with its text from the rule's docstring (``plasticlab rules``)."""
    from ..rules import RULES
    from ..rules.catalog import rule_entry

    lines = ["| rule | searched | range | what it is (`plasticlab rules`) |", "| --- | --- | --- | --- |"]
    for name, params in SEARCH_SPACE.items():
        docs = {p["name"]: p["doc"] for p in rule_entry(name, RULES[name])["parameters"]}
        for p in params:
            lines.append(f"| `{name}` | `{p.name}` | {p.describe()} | {docs.get(p.name, '')} |")
    return "\n".join(lines) + "\n"


def design(budget: int) -> np.ndarray:
    """(budget, DESIGN_DIMS) points in [0, 1): the first ``budget`` points of a scrambled Sobol sequence with a
    fixed seed. The same for every rule and every rule set (rules use its first columns)."""
    from scipy.stats import qmc

    try:
        sobol = qmc.Sobol(DESIGN_DIMS, scramble=True, rng=DESIGN_SEED)
    except TypeError:  # scipy < 1.15
        sobol = qmc.Sobol(DESIGN_DIMS, scramble=True, seed=DESIGN_SEED)
    with warnings.catch_warnings():  # balance warning when budget is not a power of 2: the prefix is what we want
        warnings.simplefilter("ignore")
        return sobol.random(int(budget))


def _terms(spec: str) -> list[tuple[str, dict]]:
    from ..rules import _RuleParser

    return [(name.lower(), args) for name, args, _ in _RuleParser(spec).spec()]


def free_params(spec: str) -> list[tuple[int, Param]]:
    """The searched (term index, Param) of a rule string, in design order; arguments written in the string are
    fixed. Raises ValueError for a term without a search space."""
    out = []
    for i, (name, args) in enumerate(_terms(spec)):
        if name not in SEARCH_SPACE:
            raise ValueError(f"rule {name!r} has no search space; compare searches: {', '.join(SEARCH_SPACE)}")
        out += [(i, p) for p in SEARCH_SPACE[name] if p.name not in args]
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return repr(v)
    if isinstance(v, float):
        return f"{v:g}" if "e" not in f"{v:g}" else f"{v:.3g}"
    if isinstance(v, (tuple, list)):
        return "(" + ", ".join(_fmt(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    if isinstance(v, str):
        return repr(v)
    return str(v)


def trial_specs(spec: str, budget: int, n_layers: int) -> list[dict]:
    """The ``budget`` trials of rule ``spec``: [{"rule": rule string, "params": {"term.name": value}}], from the
    shared design; ``n_layers`` (weight layers) sizes per-layer values."""
    terms = _terms(spec)
    free = free_params(spec)
    if len(free) > DESIGN_DIMS:
        raise ValueError(f"rule {spec!r} searches {len(free)} hyperparameters; at most {DESIGN_DIMS}")
    pts = design(budget)
    out = []
    for u in pts:
        args = [dict(a) for _, a in terms]
        shown = {}
        for dim, (i, p) in enumerate(free):
            v = p.value(float(u[dim]))
            key = f"{terms[i][0]}.{p.name}" if len(terms) > 1 else p.name
            shown[key] = v
            args[i][p.name] = (0.0,) + (v,) * (n_layers - 1) if p.hidden_layers else v
        text = "+".join(name + ("(" + ", ".join(f"{k}={_fmt(v)}" for k, v in a.items()) + ")" if a else "")
                        for (name, _), a in zip(terms, args))
        out.append({"rule": text, "params": shown})
    return out


# ----------------------------------------------------------------------------- data and network

def _npz_problem(path: Path) -> str | None:
    """Why ``path`` is not a usable .npz of x_train, y_train, x_test, y_test (None if it is); one line."""
    if not path.is_file():
        return f"file {path} does not exist"
    try:
        with np.load(path, allow_pickle=False) as f:
            keys = list(f.files)
    except Exception as err:  # noqa: BLE001 - any unreadable file is refused with its reason
        return f"file {path} is not a readable .npz ({type(err).__name__}: {err})"
    missing = [k for k in NPZ_KEYS if k not in keys]
    if missing:
        return (f"file {path} has no key {missing[0]!r} (it holds: {', '.join(keys) or 'nothing'}; needed: "
                f"{', '.join(NPZ_KEYS)})")
    return None


def is_npz(data: str) -> bool:
    return data.lower().endswith(".npz")


def _check_data(text: str) -> str | None:
    if is_npz(text):
        return _npz_problem(Path(text).expanduser())
    names = available_datasets()
    return None if text in names else f"{text!r} is neither a data set name ({', '.join(names)}) nor an .npz file"


def _check_net(text: str) -> str | None:
    parts = text.split("-")
    if len(parts) < 3:
        return "needs at least one hidden layer: IN-HIDDEN...-OUT"
    for i, p in enumerate(parts):
        if p == "auto" and i in (0, len(parts) - 1):
            continue
        if not p.isdigit() or not 1 <= int(p) <= 100_000:
            return f"{p!r} is not a width from 1 to 100000" + (" ('auto' only at the ends)" if p == "auto" else "")
    return None


KINDS.setdefault("data", (_check_data, None, "a data set name (`plasticlab datasets`) or an .npz file holding "
                                             "x_train, y_train, x_test, y_test"))
KINDS.setdefault("net", (_check_net, None, "widths joined by '-', input first, at least one hidden layer, "
                                           "'auto' allowed at either end (e.g. 784-200-200-10, auto-100-auto)"))


def load_npz(path: str | Path) -> Dataset:
    """A classification Dataset from an .npz holding x_train, y_train, x_test, y_test (inputs flattened to
    float32, integer labels 0..K-1). A missing key or bad shape raises DataError (one line naming the file)."""
    path = Path(path).expanduser()
    problem = _npz_problem(path)
    if problem:
        raise DataError(problem)
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: np.asarray(f[k]) for k in NPZ_KEYS}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim < 2 or len(x) != len(y) or len(x) == 0:
            raise DataError(f"file {path}: x_{split} {x.shape} and y_{split} {y.shape} must hold the same number "
                            "(>= 1) of samples, x with a feature axis")
        if y.ndim != 1 or not np.all(np.isfinite(y)) or np.any(y != np.round(y)) or np.any(y < 0):
            raise DataError(f"file {path}: y_{split} must be a 1-D array of integer class labels 0..K-1")
        if not np.issubdtype(x.dtype, np.number) or not np.all(np.isfinite(x)):
            raise DataError(f"file {path}: x_{split} must be finite numbers")
    xtr = arrays["x_train"].reshape(len(arrays["x_train"]), -1).astype(np.float32)
    xte = arrays["x_test"].reshape(len(arrays["x_test"]), -1).astype(np.float32)
    if xtr.shape[1] != xte.shape[1]:
        raise DataError(f"file {path}: x_train has {xtr.shape[1]} features per sample, x_test {xte.shape[1]}")
    ytr, yte = arrays["y_train"].astype(np.int32), arrays["y_test"].astype(np.int32)
    k = int(max(ytr.max(), yte.max())) + 1
    return Dataset(path.stem, xtr, ytr, xte, yte, max(k, 2), meta={"source": str(path), "sha256": sha256_file(path)[:12]})


def load_data(data: str, data_dir: str | Path | None = None) -> Dataset:
    """``data`` as a Dataset: a registered name (read from ``data_dir``) or an .npz path; classification only."""
    ds = load_npz(data) if is_npz(data) else load_dataset(data, data_dir)
    if ds.task != "classification":
        raise ConfigError(f"data={data!r}: a {ds.task} data set; allowed: a classification data set (compare ranks "
                          "test accuracy)")
    return ds


def resolve_net(net: str, data: Dataset) -> tuple[int, ...]:
    """The widths of ``net`` ('auto' ends filled from ``data``); ConfigError (one line) if an end does not fit."""
    parts = net.split("-")
    sizes = [int(p) if p != "auto" else 0 for p in parts]
    want = (data.n_features, data.n_outputs)
    for i, (pos, what) in enumerate(((0, "input"), (-1, "output"))):
        if sizes[pos] == 0:
            sizes[pos] = want[i]
        elif sizes[pos] != want[i]:
            noun = "features" if i == 0 else "classes"
            raise ConfigError(f"net={net!r}: the {what} width {sizes[pos]} does not fit data {data.name!r} "
                              f"({want[i]} {noun}); allowed: {want[i]} or auto at that end")
    return tuple(sizes)


# ----------------------------------------------------------------------------- config

@dataclass
class CompareConfig:
    """Each rule's hyperparameters searched on a validation split with the same budget, then the chosen setting
    trained over seeds and scored once on the test split."""

    rules: tuple[str, ...] = setting(("bp", "fa", "dfa", "kp", "wm", "sam", "curl", "bp+oja"), kind="rule",
                                     doc="rules compared; each term's hyperparameters in compare.SEARCH_SPACE are "
                                         "searched, arguments written in the string are fixed")
    data: str = setting("digits", kind="data", doc="a data set name or an .npz file with x_train, y_train, x_test, "
                                                  "y_test (integer labels)")
    net: str = setting("auto-100-100-auto", kind="net", doc="layer widths, input first; 'auto' ends take the data's "
                                                           "feature and class counts")
    activation: str = setting("relu", kind="activation", doc="hidden-layer activation")
    batch_size: int = setting(1, ge=1, le=100_000, doc="samples per update (1: online), search and final training")
    # epochs 8, search_seeds 2: chosen on the digits validation split (mean validation accuracy of the 8 default
    # rules' chosen trials 0.966, against 0.944 at 4 epochs and 0.955 with tanh at 4 epochs); docs/compare.md
    epochs: float = setting(8.0, gt=0, le=1000, doc="passes over the training data, search and final training")
    seeds: int = setting(5, ge=1, le=1000, doc="seeds of the final training (vmapped), the leaderboard's n")
    budget: int = setting(8, ge=1, le=1024, doc="trials per rule in the search (the same for every rule)")
    search_seeds: int = setting(2, ge=1, le=100, doc="seeds per trial; a trial scores its mean final validation "
                                                   "accuracy")
    val_fraction: float = setting(0.2, gt=0, lt=1, doc="fraction of the training split held out for validation")
    evals: int = setting(8, ge=1, le=10_000, doc="points of each learning curve")

    def validate(self) -> None:
        from ..settings import SettingError

        for spec in self.rules:
            try:
                free = free_params(spec)
            except ValueError as err:
                raise SettingError("rules", spec, f"rules built from {', '.join(SEARCH_SPACE)}", str(err)) from None
            if not free:
                raise SettingError("rules", spec, "a rule with at least one hyperparameter left to search",
                                   "every searched hyperparameter is fixed in the string")
            if len(free) > DESIGN_DIMS:
                raise SettingError("rules", spec, f"at most {DESIGN_DIMS} searched hyperparameters per rule",
                                   f"{len(free)} searched")
        if len(set(self.rules)) != len(self.rules):
            raise SettingError("rules", self.rules, "distinct rule strings", "a rule is listed twice")


# ----------------------------------------------------------------------------- the work

def n_samples(cfg: CompareConfig, n_train: int) -> int:
    """Samples trained on: ``epochs * n_train``, whole batches, rounded down to a multiple of ``evals`` batches when
    that drops at most 2% of them (equal chunks compile once instead of twice)."""
    from ..training import fit_steps

    steps = fit_steps(n_train, cfg.batch_size, cfg.epochs)
    extra = steps % cfg.evals
    if steps >= cfg.evals and extra and extra <= 0.02 * steps:
        steps -= extra
    return steps * cfg.batch_size


def _trainer(cfg: CompareConfig, sizes: tuple[int, ...], rule: str):
    from ..networks import MLP
    from ..rules import parse_rule
    from ..training import Trainer

    return Trainer(MLP(sizes, activation=cfg.activation), parse_rule(rule))


def _groups(trainers: list) -> list[list[int]]:
    """Indices of trainers that may share one ``fit`` call (same structure and static settings)."""
    import jax

    groups: list[tuple[Any, list[int]]] = []
    for i, tr in enumerate(trainers):
        td = jax.tree.structure(tr)
        for g_td, idx in groups:
            if g_td == td:
                idx.append(i)
                break
        else:
            groups.append((td, [i]))
    return [idx for _, idx in groups]


def exact(accuracy: Any, n: int) -> np.ndarray:
    """Float32 accuracies over ``n`` samples as exact float64 fractions (correct / n): equal counts compare equal."""
    a = np.asarray(accuracy, dtype=float)
    return np.where(np.isfinite(a), np.round(a * n) / n, np.nan)


def search_rule(cfg: CompareConfig, spec: str, val: Dataset, sizes: tuple[int, ...]) -> dict:
    """Every trial of ``spec`` trained on ``val.x_train`` and scored on ``val.x_test`` (the validation part).

    Returns {"trials": [{"rule", "params", "val_accuracy" (None: diverged), "chosen"}], "chosen": index,
    "samples", "val_curve" (the chosen trial's validation accuracy, (search_seeds, evals))}.
    """
    from ..training import fit

    trials = trial_specs(spec, cfg.budget, len(sizes) - 1)
    trainers = [_trainer(cfg, sizes, t["rule"]) for t in trials]
    x_val, y_val = val.x_test, val.y_test  # a validation split: its "test" part is held-out training data
    curves: list[np.ndarray | None] = [None] * len(trials)
    samples: list[int] = []
    n = n_samples(cfg, len(val.x_train))
    for idx in _groups(trainers):
        hist = fit([trainers[i] for i in idx], val.x_train, val.y_train, seeds=cfg.search_seeds, n_samples=n,
                   batch_size=cfg.batch_size, evals=cfg.evals, x_eval=x_val, y_eval=y_val, on_divergence="record",
                   progress=False)
        acc = hist.array("eval_accuracy")  # (cells, seeds, evals); diverged seeds NaN
        for j, i in enumerate(idx):
            curves[i] = acc[j]
        samples = hist.samples
    scores = [float(np.mean(exact(c[:, -1], len(x_val)))) for c in curves]
    finite = [i for i, s in enumerate(scores) if np.isfinite(s)]
    chosen = max(finite, key=lambda i: scores[i]) if finite else 0  # ties: the earlier design point
    return {"trials": [{**t, "val_accuracy": s if np.isfinite(s) else None, "chosen": i == chosen}
                       for i, (t, s) in enumerate(zip(trials, scores))],
            "chosen": chosen, "all_diverged": not finite, "samples": [int(s) for s in samples],
            "val_curve": curves[chosen].tolist(), "n_search_train": int(len(val.x_train)),
            "n_validation": int(len(x_val))}


def train_final(cfg: CompareConfig, rule: str, data: Dataset, sizes: tuple[int, ...], progress: bool = False) -> dict:
    """``rule`` on the whole training split for ``cfg.seeds`` seeds (vmapped), then the test split read once.

    The learning curve is the online training accuracy (each batch scored before its update), per seed."""
    import jax

    from ..training import fit

    tr = _trainer(cfg, sizes, rule)
    n = n_samples(cfg, len(data.x_train))
    hist = fit(tr, data.x_train, data.y_train, seeds=cfg.seeds, n_samples=n, batch_size=cfg.batch_size,
               evals=cfg.evals, on_divergence="record", progress=progress)
    x_test, y_test = data.x_test, data.y_test  # the one read of the test split
    acc = exact(jax.vmap(lambda p: tr.evaluate(p, x_test, y_test)["accuracy"])(hist.final_state.params),
                len(x_test))
    bad = np.asarray(hist.seed_diverged).reshape(-1)
    acc[bad] = np.nan
    return {"seeds": list(hist.seeds), "test_accuracy": [None if not np.isfinite(a) else float(a) for a in acc],
            "status": [hist.seed_status(s) for s in hist.seeds],
            "samples": [int(s) for s in hist.samples[1:]], "train_accuracy": hist.array("train_correct").tolist()}


# ----------------------------------------------------------------------------- statistics

def _holm(p: dict[str, float]) -> dict[str, float]:
    """Holm's step-down adjustment of the p-values ``p`` (family: the comparisons with the best rule)."""
    order = sorted(p, key=lambda k: p[k])
    out, running, m = {}, 0.0, len(order)
    for i, k in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[k]))
        out[k] = running
    return out


def leaderboard(rows: list[dict], level: float = CI_LEVEL) -> list[dict]:
    """Per rule, ranked by mean test accuracy: ``n`` (finished seeds), ``diverged``, ``mean``, ``sd`` (ddof=1),
    ``ci_low``/``ci_high`` (Student-t ``level`` CI of the mean), and the paired comparison with the best rule over the
    seeds where both finished (``n_paired``): ``diff_vs_best`` (mean of rule - best) with its t CI
    (``diff_ci_low``/``diff_ci_high``), ``p_vs_best`` (paired t-test, scipy.stats.ttest_rel; None for the best rule
    and when the differences are all equal) and ``p_holm`` (Holm-adjusted over the comparisons with the best).
    Rows whose test_accuracy is None or NaN count as diverged and are left out."""
    from scipy import stats

    by_rule: dict[str, dict[int, float]] = {}
    diverged: dict[str, int] = {}
    for r in rows:
        v = r.get("test_accuracy")
        by_rule.setdefault(r["rule"], {})
        if v is None or not np.isfinite(v):
            diverged[r["rule"]] = diverged.get(r["rule"], 0) + 1
        else:
            by_rule[r["rule"]][int(r["seed"])] = float(v)

    def mean_ci(v: np.ndarray) -> tuple[float, float, float, float]:
        if len(v) == 0:
            return (math.nan,) * 4
        m = float(np.mean(v))
        sd = float(np.std(v, ddof=1)) if len(v) > 1 else math.nan
        if len(v) < 2 or sd == 0:
            return m, sd, m, m
        lo, hi = stats.t.interval(level, len(v) - 1, loc=m, scale=sd / math.sqrt(len(v)))
        return m, sd, float(lo), float(hi)

    table = []
    for rule, vals in by_rule.items():
        m, sd, lo, hi = mean_ci(np.array(list(vals.values())))
        table.append({"rule": rule, "n": len(vals), "diverged": diverged.get(rule, 0), "mean": m, "sd": sd,
                      "ci_low": lo, "ci_high": hi})
    # ties (to 1e-9, summation noise) keep the given rule order
    table.sort(key=lambda t: -round(t["mean"], 9) if np.isfinite(t["mean"]) else math.inf)
    best = table[0]["rule"] if table else None
    pvals = {}
    for i, t in enumerate(table):
        common = sorted(set(by_rule[t["rule"]]) & set(by_rule[best]))
        a = np.array([by_rule[t["rule"]][s] for s in common])
        b = np.array([by_rule[best][s] for s in common])
        d_m, _, d_lo, d_hi = mean_ci(a - b)
        p = None
        if t["rule"] != best and len(common) >= 2:
            p = float(stats.ttest_rel(a, b).pvalue)
            p = p if np.isfinite(p) else None
        if p is not None:
            pvals[t["rule"]] = p
        t.update(rank=i + 1, vs=best, n_paired=len(common), diff_vs_best=d_m, diff_ci_low=d_lo, diff_ci_high=d_hi,
                 p_vs_best=p)
    holm = _holm(pvals)
    for t in table:
        t["p_holm"] = holm.get(t["rule"])
    return [{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in t.items()} for t in table]


LEADERBOARD_COLUMNS = ("rank", "rule", "setting", "n", "diverged", "mean", "sd", "ci_low", "ci_high", "vs", "n_paired",
                       "diff_vs_best", "diff_ci_low", "diff_ci_high", "p_vs_best", "p_holm", "val_accuracy", "trials",
                       "wall_s", "cpu_s")


def _short(v: Any, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def summary_rows(board: list[dict]) -> list[dict]:
    """The leaderboard as the few short text columns `plasticlab run` / `compare` print (leaderboard.csv has all)."""
    return [{"#": t["rank"], "rule": t["rule"], "test acc +- SD": f"{_short(t['mean'])} +- {_short(t['sd'])}",
             f"{CI_LEVEL * 100:g}% CI (t)": f"[{_short(t['ci_low'])}, {_short(t['ci_high'])}]",
             "n": t["n"] if not t["diverged"] else f"{t['n']} (+{t['diverged']} diverged)",
             "vs best": "best" if t["rule"] == t["vs"] else "-" if t["diff_vs_best"] is None
             else f"{t['diff_vs_best']:+.3f}", "p paired": _short(t["p_vs_best"], 3),
             "wall s": f"{t['wall_s']:.0f}"} for t in board]


def chosen_lines(board: list[dict]) -> list[str]:
    """One line per rule: its chosen setting and validation accuracy."""
    return [f"{t['rule']}: {t['setting']} (validation accuracy {_short(t['val_accuracy'])}, {t['trials']} trials)"
            for t in board]


# ----------------------------------------------------------------------------- run and plot

def _validation_split(data: Dataset, fraction: float) -> Dataset:
    return data.validation_split(fraction, seed=0)


def _tag(spec: str) -> str:
    return re.sub(r"\s+", "", spec)


def run(cfg: CompareConfig, ctx: RunContext) -> dict:
    data = load_data(cfg.data, ctx.data_dir)
    sizes = resolve_net(cfg.net, data)
    src = f"@{data.meta['sha256']}" if is_npz(cfg.data) else ""  # an .npz whose content changed is recomputed
    searches, seconds = {}, {}
    with search_context(SEARCH_NAME):  # from here to the choice, a read of a test split raises TestSplitRead
        val = _validation_split(data, cfg.val_fraction)
        for spec in cfg.rules:
            key = f"search/{_tag(spec)}{src}"
            ctx.log(f"searching {spec}: {cfg.budget} trials on the validation split")
            searches[spec] = ctx.unit(key, lambda spec=spec: search_rule(cfg, spec, val, sizes))
            seconds[spec] = list(ctx.unit_seconds.get(key, (0.0, None)))
    rows, finals = [], {}
    for spec in cfg.rules:
        s = searches[spec]
        chosen = s["trials"][s["chosen"]]
        key = f"final/{_tag(chosen['rule'])}{src}"
        ctx.log(f"training {spec} at {chosen['rule']} ({cfg.seeds} seeds, vmapped)")
        finals[spec] = f = ctx.unit(key, lambda r=chosen["rule"]: train_final(cfg, r, data, sizes, ctx.progress))
        w, c = ctx.unit_seconds.get(key, (0.0, None))
        seconds[spec] = [seconds[spec][0] + w, None if c is None or seconds[spec][1] is None else seconds[spec][1] + c]
        rows += [{"rule": spec, "seed": seed, "test_accuracy": acc, "status": st, "setting": chosen["rule"],
                  "data": data.name}
                 for seed, acc, st in zip(f["seeds"], f["test_accuracy"], f["status"])]
    board = leaderboard(rows)
    for t in board:
        s = searches[t["rule"]]
        t.update(setting=s["trials"][s["chosen"]]["rule"], val_accuracy=s["trials"][s["chosen"]]["val_accuracy"],
                 trials=len(s["trials"]), wall_s=seconds[t["rule"]][0], cpu_s=seconds[t["rule"]][1])
    board = [{k: t.get(k) for k in LEADERBOARD_COLUMNS} for t in board]
    trials = [{"rule": spec, "trial": i, **t["params"], "setting": t["rule"], "val_accuracy": t["val_accuracy"],
               "chosen": t["chosen"]} for spec in cfg.rules for i, t in enumerate(searches[spec]["trials"])]
    import pandas as pd

    pd.DataFrame(board).to_csv(ctx.out / "leaderboard.csv", index=False)
    pd.DataFrame(trials).to_csv(ctx.out / "search.csv", index=False)
    first = searches[cfg.rules[0]]
    return {"rows": rows, "summary": summary_rows(board), "leaderboard": board, "trials": trials,
            "search": {spec: {"params": [f"{p.name}" for _, p in free_params(spec)], **searches[spec]}
                       for spec in cfg.rules},
            "curves": {"train": {spec: {"samples": finals[spec]["samples"], "accuracy": finals[spec]["train_accuracy"]}
                                 for spec in cfg.rules},
                       "validation": {spec: {"samples": searches[spec]["samples"],
                                             "accuracy": searches[spec]["val_curve"]} for spec in cfg.rules}},
            "net": list(sizes), "ci_level": CI_LEVEL,
            "n_train": int(len(data.x_train)), "n_search_train": first["n_search_train"],
            "n_validation": first["n_validation"]}


def plot(results: dict, out: Path) -> None:
    from ..plotting import curve_with_ci, figure, mark_chance, save

    cfg = results["config"]
    level = results.get("ci_level", CI_LEVEL)
    net = results.get("net")  # its output layer: one unit per class

    def mark(a) -> None:
        if net:  # absent from results of older runs: no chance line
            mark_chance(a, 1 / net[-1])

    unit = "samples" if cfg["batch_size"] == 1 else "samples (batches of %d)" % cfg["batch_size"]
    fig, ax = figure(1, 2, size=(5.5, 4))
    for spec, c in results["curves"]["train"].items():
        curve_with_ci(ax[0, 0], np.asarray(c["samples"]), np.asarray(c["accuracy"], dtype=float), label=spec,
                      level=level)
    ax[0, 0].set(xlabel=f"training {unit} seen", ylabel="online training accuracy",
                 title="final training (each batch scored before its update)")
    for spec, c in results["curves"]["validation"].items():
        curve_with_ci(ax[0, 1], np.asarray(c["samples"]), np.asarray(c["accuracy"], dtype=float), label=spec,
                      level=level)
    ax[0, 1].set(xlabel=f"search-training {unit} seen", ylabel="validation accuracy",
                 title="search: the chosen trial on the validation split")
    for a in ax[0]:
        a.legend(fontsize=7)
        mark(a)
    save(fig, out / "learning_curves.png")

    board = results["leaderboard"]
    fig, ax = figure(size=(max(5.0, 0.8 * len(board) + 2), 4))
    a = ax[0, 0]
    for i, t in enumerate(board):
        vals = [r["test_accuracy"] for r in results["rows"]
                if r["rule"] == t["rule"] and r["test_accuracy"] is not None]
        a.scatter([i] * len(vals), vals, s=12, color="0.6", zorder=2)
        if t["mean"] is not None:
            lo = t["mean"] - (t["ci_low"] if t["ci_low"] is not None else t["mean"])
            hi = (t["ci_high"] if t["ci_high"] is not None else t["mean"]) - t["mean"]
            a.errorbar([i], [t["mean"]], yerr=[[lo], [hi]], fmt="o", color="C0", capsize=4, zorder=3,
                       label=f"mean, {level * 100:g}% t CI (n={t['n']})" if i == 0 else None)
    a.set_xticks(range(len(board)), [t["rule"] for t in board], rotation=30, ha="right")
    a.set(ylabel="test accuracy", title=f"{cfg['data']}: test accuracy per seed (grey) and mean")
    a.legend(fontsize=7)
    mark(a)
    save(fig, out / "leaderboard.png")

    search = results["search"]
    n = len(search)
    cols = min(4, n)
    rows_ = -(-n // cols)
    fig, axes = figure(rows_, cols, size=(3.4, 2.9))
    for k, (spec, s) in enumerate(search.items()):
        a = axes[k // cols, k % cols]
        xs = [next(iter(t["params"].values())) for t in s["trials"]]
        ys = [np.nan if t["val_accuracy"] is None else t["val_accuracy"] for t in s["trials"]]
        a.scatter(xs, ys, s=14, label="trial")
        for x, y, t in zip(xs, ys, s["trials"]):
            other = ", ".join(f"{k}={v:.2g}" for k, v in list(t["params"].items())[1:])
            if other:
                a.annotate(other, (x, y if np.isfinite(y) else 0.0), fontsize=5, xytext=(2, 2),
                           textcoords="offset points")
        div = [x for x, y in zip(xs, ys) if not np.isfinite(y)]
        if div:
            a.scatter(div, [0.0] * len(div), marker="x", color="r", label="diverged")
        c = s["trials"][s["chosen"]]
        if c["val_accuracy"] is not None:
            a.scatter([xs[s["chosen"]]], [c["val_accuracy"]], marker="*", s=140, color="C3", label="chosen")
        a.set_xscale("log" if min(xs) > 0 and max(xs) / min(xs) > 20 else "linear")
        a.set(xlabel=next(iter(c["params"])), ylabel="validation accuracy", title=spec)
        a.legend(fontsize=6)
        mark(a)
    for k in range(n, rows_ * cols):
        axes[k // cols, k % cols].axis("off")
    save(fig, out / "search.png")


def check_setup(cfg: CompareConfig, data_dir: str | Path | None = None) -> tuple[Dataset, tuple[int, ...]]:
    """Load the data and fit the net to it, before any run folder is written: (data, widths), or ConfigError /
    DataError in one line."""
    data = load_data(cfg.data, data_dir)
    return data, resolve_net(cfg.net, data)


def prepare_flags(flags: dict[str, tuple[str, Any]], sets: dict[str, str] | None = None) -> CompareConfig:
    """The validated config from command-line flags (setting key -> (flag, value); None values are left at the
    default) and ``--set`` items; a bad value raises ConfigError naming its flag, the key, the value and what is
    allowed (e.g. "--data data='x.npz': file x.npz has no key 'y_test' ...")."""
    from .base import apply_overrides, get_experiment, validate_config

    cfg = get_experiment("compare").config()
    sources = {}
    for key, (flag, value) in flags.items():
        if value is not None:
            cfg = apply_overrides(cfg, {key: value}, flag)
            sources[key] = flag
    if sets:
        cfg = apply_overrides(cfg, sets, "--set")
        sources.update({k: "--set" for k in sets})
    validate_config(cfg, sources, "compare")
    return cfg


def _net_text(net: str | Any) -> str:
    """'784-200-10', (784, 200, 10) or (None, 200, None) -> the ``net`` setting's text (None: auto)."""
    if isinstance(net, str):
        return net
    return "-".join("auto" if w is None else str(int(w)) for w in net)


def compare(rules: Any = None, data: str | Path | Dataset = "digits", net: str | Any = "auto-100-100-auto", *,
            out: str | Path | None = None, data_dir: str | Path | None = None, progress: bool = False,
            plots: bool = True, **options: Any):
    """Compare learning ``rules`` fairly on ``data`` and return the leaderboard as a pandas DataFrame.

    Args:
        rules: rule strings (default: the ``compare`` experiment's: bp, fa, dfa, kp, wm, sam, curl, bp+oja).
        data: a data set name (``plasticlab datasets``), an .npz path with x_train, y_train, x_test, y_test, or a
            classification ``Dataset`` (saved as DIR/data.npz, which the run then reads).
        net: widths such as "784-200-200-10", "auto-100-auto" or (None, 100, None) (None / auto: from the data).
        out: the run folder (default: a new temporary folder); rerunning into the same folder resumes.
        data_dir: where the named data sets are read from.
        options: any other setting of ``plasticlab show compare``: activation, batch_size, epochs, seeds, budget,
            search_seeds, val_fraction, evals.

    Returns:
        The leaderboard, one row per rule, best first (columns ``LEADERBOARD_COLUMNS``); ``df.attrs["run_dir"]`` is
        the run folder, which ``plasticlab.load_results`` reads (rows: one per rule and seed).
    """
    import tempfile

    import pandas as pd

    from .base import prepare, run_experiment

    out = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="plasticlab-compare-"))
    if isinstance(data, Dataset):
        if data.task != "classification":
            raise ConfigError(f"data={data.name!r}: a {data.task} data set; allowed: a classification data set")
        out.mkdir(parents=True, exist_ok=True)
        path = out / "data.npz"
        np.savez(path, x_train=data.x_train, y_train=data.y_train, x_test=data.x_test, y_test=data.y_test)
        data = str(path)
    settings = {**options, "data": str(data), "net": _net_text(net)}
    if rules is not None:
        settings["rules"] = (rules,) if isinstance(rules, str) else tuple(rules)
    _, cfg = prepare("compare", config=settings, config_source="plasticlab.compare()")
    check_setup(cfg, data_dir)
    res = run_experiment("compare", out, config=settings, config_source="plasticlab.compare()", data_dir=data_dir,
                         progress=progress, plots=plots)
    df = pd.DataFrame(res["leaderboard"], columns=list(LEADERBOARD_COLUMNS))
    df.attrs["run_dir"] = str(out)
    return df


register(Experiment("compare", "rules compared fairly: the same validation search budget per rule, then seeds "
                               "scored once on the test split (leaderboard, paired tests)",
                    CompareConfig, run, plot,
                    quick={"rules": ("bp", "fa", "kp"), "net": "auto-32-auto", "epochs": 1.0, "seeds": 2,
                           "budget": 2, "search_seeds": 1, "evals": 2}))
