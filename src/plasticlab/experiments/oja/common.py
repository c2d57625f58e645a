"""Shared pieces of the Oja-paper experiments (``oja-*``): data, networks, rules, training with probes, CIs.

Choices fixed here (documented in docs/oja.md):
* networks: softplus (beta = 10), no biases, Xavier-uniform unless ``init`` says otherwise;
  5 layers 784-170-130-100-70-K; 10 layers 784-400-300-250-200-170-130-100-70-40-K (the paper's
  10-layer widths are lost: a monotone decreasing stack that extends the 5-layer net's widths).
* the Oja (or Sanger) term acts on the hidden layers 1..L-1 by default (``oja_layers="hidden"``): the output
  layer's h_L is the linear logit vector read by the softmax loss, and normalising it would cap the
  logits. ``oja_layers="all"`` applies it to every layer, as eq. 4 can also be read.
* online learning (batch 1), one pass over ``n_train`` training samples, validation on ``n_test`` test samples.
"""

from __future__ import annotations

import dataclasses
import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ...analysis.representations import activation_norms, residuals, step_sizes
from ...analysis.stats import bootstrap_ci
from ...data import DataError, Dataset, available_datasets, load_dataset
from ...networks import MLP
from ...plotting import rule_color
from ...rules import Oja, Sanger, parse_rule
from ...settings import SettingError, setting
from ...training import Trainer, fit

HIDDEN: dict[int, tuple[int, ...]] = {5: (170, 130, 100, 70), 10: (400, 300, 250, 200, 170, 130, 100, 70, 40)}
RULE_SPECS = ("bp", "bp+oja", "fa", "fa+oja", "bp+sanger", "fa+sanger")


# multilabel / regression targets: no integer class labels for the softmax read-out and the accuracy
NOT_CLASSIFICATION = ("chestmnist", "teacher_regression")


def classification_datasets() -> list[str]:
    """Registered data sets with integer class labels (task "classification"), for ``choices=`` of a
    ``dataset`` setting; "mnist" always (``load_data`` reads its IDX files even before it is registered)."""
    return sorted((set(available_datasets()) | {"mnist"}) - set(NOT_CLASSIFICATION))


# constraint and doc of every OjaFFConfig field, so that subclasses redefining a default keep them (``ff_setting``)
FF_SETTINGS: dict[str, dict] = {
    "dataset": dict(choices=classification_datasets,
                    doc="classification data set (inputs flattened: the first layer's width is its feature count)"),
    "n_train": dict(ge=1, le=10_000_000, doc="training samples, a fixed random subset (data_seed) of the training "
                                             "split, seen once online (batch 1); the whole split if it is smaller"),
    "n_test": dict(ge=1, le=10_000_000, doc="validation samples, a fixed random subset (data_seed) of the test split; "
                                            "the whole split if it is smaller"),
    "depth": dict(choices=tuple(HIDDEN), doc="weight layers: 5 (784-170-130-100-70-K) or 10 "
                                             "(784-400-300-250-200-170-130-100-70-40-K)"),
    "rules": dict(choices=RULE_SPECS, doc="rules compared, one unit each: error term bp or fa, optionally +oja or "
                                          "+sanger"),
    "eta": dict(gt=0, doc="learning rate of the error term (BP / FA) for every rule eta_per_rule does not name; "
                          "unset: the rule's entry in rates"),
    "eta_oja": dict(gt=0, doc="learning rate of the Oja (or Sanger) term of rules with +oja / +sanger; unset: the "
                              "rule's entry in rates"),
    "eta_per_rule": dict(doc="eta of single rules, e.g. {\"bp\": 0.03} (keys among the rules' choices, values > 0); "
                             "overrides eta and rates"),
    "rates": dict(doc="[eta, eta_oja] per \"depth/init/rule\", chosen by the validation-only search oja-lr-search "
                      "on MNIST (docs/oja.md); used where eta, eta_per_rule and eta_oja are unset. A +sanger rule "
                      "without an entry uses its +oja entry"),
    "oja_layers": dict(choices=("hidden", "all"), doc="layers the Oja / Sanger term acts on: hidden (1..L-1) or "
                                                      "all (the linear output layer too)"),
    "init": dict(kind="init", doc="weight initialisation (naive: N(0, 0.01^2))"),
    "evals": dict(ge=1, le=10_000, doc="validation points over the pass (every n_train // evals samples)"),
    "probe_size": dict(ge=1, le=10_000_000, doc="test samples of the fixed probe set for norms, residuals and step "
                                                "sizes (at most n_test are used)"),
    "seeds": dict(ge=1, le=1000, doc="independent seeds, run together under vmap"),
    "data_seed": dict(ge=0, le=2**32 - 1, doc="seed of the training / test subsets (data_seed + 1: the probe set)"),
}


# [eta, eta_oja] chosen on a validation split of the MNIST training images by oja-lr-search (4 seeds; docs/oja.md
# lists the commands and grids): "depth/init/rule". eta_oja is 0 for rules without a Hebbian term.
VALIDATED_RATES: dict[str, list[float]] = {
    "10/xavier/bp": [0.01, 0.0], "10/xavier/bp+oja": [0.003, 0.003],
    "5/xavier/bp": [0.01, 0.0], "5/xavier/bp+oja": [0.01, 1e-4],
    "5/xavier/fa": [0.01, 0.0], "5/xavier/fa+oja": [0.01, 0.003],
    "5/naive/bp": [0.01, 0.0], "5/naive/bp+oja": [0.01, 0.003],
    "10/xavier/bp+sanger": [0.01, 1e-5], "5/xavier/fa+sanger": [0.01, 1e-4],  # S6: Sanger's own search
}


def check_rates(value: Any, key: str = "rates") -> None:
    """Raise SettingError unless ``value`` maps "depth/init/rule" to [eta > 0, eta_oja >= 0]."""
    allowed = 'a JSON object mapping "depth/init/rule" (e.g. "10/xavier/bp+oja") to [eta > 0, eta_oja >= 0]'
    for k, v in value.items():
        depth, _, rest = str(k).partition("/")
        init, _, rule = rest.partition("/")
        if not depth.isdigit() or int(depth) not in HIDDEN or not init or rule not in RULE_SPECS:
            raise SettingError(key, value, allowed, f"bad key {k!r}")
        ok = (isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, (int, float)) and
                                                                    not isinstance(x, bool) and np.isfinite(x)
                                                                    for x in v) and v[0] > 0 and v[1] >= 0)
        if not ok:
            raise SettingError(key, value, allowed, f"the rates of {k!r} are not [eta > 0, eta_oja >= 0]")


def ff_setting(name: str, default: Any) -> Any:
    """``setting(default, ...)`` with OjaFFConfig's constraint and doc of field ``name``."""
    return setting(default, **FF_SETTINGS[name])


def check_depths(cfg: Any, *keys: str) -> None:
    """Raise SettingError unless every depth in the fields ``keys`` (an int or a tuple of ints) is one of HIDDEN
    (settings checks ``choices`` of text fields only)."""
    for key in keys:
        value = getattr(cfg, key)
        if any(d not in HIDDEN for d in (value if isinstance(value, (tuple, list)) else (value,))):
            raise SettingError(key, value, f"{'each entry ' if isinstance(value, (tuple, list)) else ''}one of "
                               f"{', '.join(str(d) for d in HIDDEN)} (weight layers)", "no such network")


def check_eta_per_rule(value: Any, key: str = "eta_per_rule") -> None:
    """Raise SettingError unless ``value`` maps rule names of RULE_SPECS to finite rates > 0."""
    allowed = f"a JSON object mapping rules ({', '.join(RULE_SPECS)}) to learning rates > 0"
    unknown = sorted(str(k) for k in value if k not in RULE_SPECS)
    if unknown:
        raise SettingError(key, value, allowed, f"unknown rules {unknown}")
    bad = [k for k, v in value.items() if isinstance(v, bool) or not isinstance(v, (int, float))
           or not np.isfinite(v) or v <= 0]
    if bad:
        raise SettingError(key, value, allowed, f"the rate of {bad[0]!r} is not a finite number > 0")


@dataclass
class OjaFFConfig:
    """Online (batch 1) training of the paper's softplus MLPs; one pass over ``n_train`` samples."""

    dataset: str = ff_setting("dataset", "mnist")
    n_train: int = ff_setting("n_train", 3000)
    n_test: int = ff_setting("n_test", 2000)
    depth: int = ff_setting("depth", 10)
    rules: tuple[str, ...] = ff_setting("rules", ("bp", "bp+oja"))
    eta: float | None = ff_setting("eta", None)
    eta_oja: float | None = ff_setting("eta_oja", None)
    eta_per_rule: dict = ff_setting("eta_per_rule", {})
    rates: dict = ff_setting("rates", VALIDATED_RATES)
    oja_layers: str = ff_setting("oja_layers", "hidden")
    init: str = ff_setting("init", "xavier")
    evals: int = ff_setting("evals", 20)
    probe_size: int = ff_setting("probe_size", 200)
    seeds: int = ff_setting("seeds", 20)
    data_seed: int = ff_setting("data_seed", 0)

    def validate(self) -> None:
        check_depths(self, "depth")
        check_eta_per_rule(self.eta_per_rule)
        check_rates(self.rates)


def load_data(name: str, data_dir: Path | None, n_train: int | None, n_test: int | None, seed: int = 0) -> Dataset:
    """``load_dataset(name, data_dir)`` cut to a fixed random subset (``seed``)."""
    if name == "mnist" and "mnist" not in available_datasets():  # until data/images.py registers MNIST
        data = _read_mnist_idx(data_dir)
    else:
        data = load_dataset(name, data_dir)
    if data.task != "classification":
        raise DataError(f"the Oja experiments need a classification data set, {name!r} is {data.task}")
    return data.subset(n_train, n_test, seed)


def _read_mnist_idx(data_dir: Path | None) -> Dataset:
    """Fallback reader of the four MNIST IDX files (gzipped or not) in ``data_dir``."""
    if data_dir is None:
        raise DataError("MNIST is not registered yet and no --data-dir was given; pass --data-dir "
                        "/work/shared/data/mnist (the folder holding train-images-idx3-ubyte.gz ...)")

    def read(stem: str) -> np.ndarray:
        for p in (Path(data_dir) / f"{stem}.gz", Path(data_dir) / stem, Path(data_dir) / "mnist" / f"{stem}.gz"):
            if p.exists():
                raw = (gzip.open if p.suffix == ".gz" else open)(p, "rb").read()
                ndim = raw[3]
                shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
                return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)
        raise DataError(f"MNIST file {stem}(.gz) not found in {data_dir}; pass --data-dir /work/shared/data/mnist")

    xtr, ytr = read("train-images-idx3-ubyte"), read("train-labels-idx1-ubyte")
    xte, yte = read("t10k-images-idx3-ubyte"), read("t10k-labels-idx1-ubyte")
    f = lambda a: (a.reshape(len(a), -1) / 255.0).astype(np.float32)  # noqa: E731
    return Dataset("mnist", f(xtr), ytr.astype(np.int32), f(xte), yte.astype(np.int32), 10, image_shape=(28, 28))


def make_net(depth: int, n_in: int, n_out: int) -> MLP:
    if depth not in HIDDEN:
        raise ValueError(f"depth must be one of {sorted(HIDDEN)} (number of weight layers), got {depth}")
    return MLP((n_in, *HIDDEN[depth], n_out), activation="softplus", output_activation="linear", beta=10.0,
               use_bias=False)


def hebbian_layers(oja_layers: str, n_layers: int) -> tuple[int, ...] | None:
    if oja_layers == "hidden":
        return tuple(range(1, n_layers))
    if oja_layers == "all":
        return None
    raise ValueError(f"oja_layers must be 'hidden' or 'all', got {oja_layers!r}")


def make_rule(spec: str, eta: float, eta_oja: float, oja_layers: str, n_layers: int):
    """'bp', 'bp+oja', 'fa', 'fa+oja', 'bp+sanger', 'fa+sanger' with the rates eta (error term) and eta_oja."""
    if spec not in RULE_SPECS:
        raise ValueError(f"unknown rule {spec!r} for the Oja experiments; choose from {', '.join(RULE_SPECS)}")
    lay = hebbian_layers(oja_layers, n_layers)
    err, _, heb = spec.partition("+")
    rule = parse_rule(err, bp={"lr": eta}, fa={"lr": eta})
    if heb:
        rule = rule + {"oja": Oja, "sanger": Sanger}[heb](lr=eta_oja, layers=lay)
    return rule


def _table_rates(cfg: OjaFFConfig, spec: str, init: str | None = None) -> list[float]:
    """cfg.rates["depth/init/spec"] (a +sanger rule falls back to its +oja entry); ValueError naming the key."""
    keys = [f"{cfg.depth}/{init or cfg.init}/{spec}"]
    if spec.endswith("+sanger"):
        keys.append(keys[0].replace("+sanger", "+oja"))
    for k in keys:
        if k in cfg.rates:
            return [float(v) for v in cfg.rates[k]]
    raise ValueError(f"no learning rate for {spec} at depth {cfg.depth} with init {init or cfg.init}: set eta and "
                     f"eta_oja, eta_per_rule, or add {keys[0]!r} to rates (run oja-lr-search to choose them)")


def rule_eta(cfg: OjaFFConfig, spec: str, init: str | None = None) -> float:
    """eta of rule ``spec``: cfg.eta_per_rule[spec] if given, else cfg.eta if set, else the rates table."""
    unknown = set(cfg.eta_per_rule) - set(RULE_SPECS)
    if unknown:
        raise ValueError(f"eta_per_rule has unknown rules {sorted(unknown)}; use names from {', '.join(RULE_SPECS)}")
    if spec in cfg.eta_per_rule:
        return float(cfg.eta_per_rule[spec])
    return float(cfg.eta) if cfg.eta is not None else _table_rates(cfg, spec, init)[0]


def rule_eta_oja(cfg: OjaFFConfig, spec: str, init: str | None = None) -> float:
    """eta_oja of rule ``spec`` (0 without a Hebbian term): cfg.eta_oja if set, else the rates table."""
    if "+" not in spec:
        return 0.0
    return float(cfg.eta_oja) if cfg.eta_oja is not None else _table_rates(cfg, spec, init)[1]


def probe_fn(trainer: Trainer, eta: float, eta_oja: float, x_probe: np.ndarray, y_probe: np.ndarray):
    """callback(state, samples) for ``fit``: per seed and layer on a fixed probe set,
    activation norms (l = 0..L), residuals (eq. 5), step sizes of both terms of eq. 4 and error norms mean ||e_l||."""
    xp, yp = jnp.asarray(x_probe, jnp.float32), jnp.asarray(y_probe)

    def one(params, rule_state):
        sig = trainer.signals(params, rule_state, xp, yp)
        bp, oja = step_sizes(params.W, sig.fwd.h, sig.e, eta, eta_oja)
        return {"norm": activation_norms(sig.fwd.h), "residual": residuals(params.W, sig.fwd.h),
                "step_bp": bp, "step_oja": oja, "err_norm": jnp.stack([jnp.mean(jnp.linalg.norm(e, axis=-1))
                                                                       for e in sig.e])}

    f = jax.jit(jax.vmap(one))

    def callback(state, samples):
        return {k: np.asarray(v) for k, v in f(state.params, state.rule_state).items()}

    return callback


def train_rule(cfg: OjaFFConfig, data: Dataset, spec: str, *, init: str | None = None, probe: bool = True,
               keep_state: bool = False) -> dict:
    """Train ``spec`` for cfg.seeds seeds at once (vmapped) and return curves (JSON-ready unless keep_state)."""
    net = make_net(cfg.depth, data.n_features, data.n_classes)
    eta, eta_oja = rule_eta(cfg, spec, init), rule_eta_oja(cfg, spec, init)
    rule = make_rule(spec, eta, eta_oja, cfg.oja_layers, net.n_layers)
    trainer = Trainer(net, rule, init_method=init or cfg.init)
    n = len(data.x_train)
    cb = None
    if probe:
        rng = np.random.default_rng(cfg.data_seed + 1)
        idx = rng.choice(len(data.x_test), min(cfg.probe_size, len(data.x_test)), replace=False)
        cb = probe_fn(trainer, eta, eta_oja, data.x_test[idx], data.y_test[idx])
    hist = fit(trainer, data.x_train, data.y_train, seeds=cfg.seeds, n_samples=n, batch_size=1,
               eval_every=max(1, n // cfg.evals), x_eval=data.x_test, y_eval=data.y_test, callback=cb, progress=None)
    out: dict[str, Any] = {"samples": hist.samples, "accuracy": hist.array("eval_accuracy").tolist()}
    if probe:
        for k in ("norm", "residual", "step_bp", "step_oja", "err_norm"):
            out[k] = np.stack(hist.curves[k], axis=1).tolist()  # (seeds, evals, layers)
    if keep_state:
        out["state"] = hist.final_state
        out["trainer"] = trainer
    return out


def ci(values, axis: int = 0) -> dict:
    """Mean and 98% bootstrap CI (500 resamples) over seeds (``axis``), as lists."""
    m, lo, hi = bootstrap_ci(np.asarray(values, float), 0.98, 500, axis=axis)
    return {"mean": np.asarray(m).tolist(), "lo": np.asarray(lo).tolist(), "hi": np.asarray(hi).tolist()}


def final_rows(res: dict, spec: str, cfg: Any, **extra) -> list[dict]:
    acc = np.asarray(res["accuracy"])
    return [{"rule": spec, "dataset": cfg.dataset, "depth": getattr(cfg, "depth", None), "seed": s,
             "final_accuracy": float(a), **extra} for s, a in enumerate(acc[:, -1])]


def separated(a: dict, b: dict) -> bool:
    """Whether CI ``a`` lies entirely above CI ``b`` (scalars)."""
    return float(a["lo"]) > float(b["hi"])


def ci_text(c: dict) -> str:
    """A scalar ``ci`` dict as 'mean [lo, hi]' (3 significant digits), for the notes of paper-vs-ours rows."""
    return f"{float(c['mean']):.3g} [{float(c['lo']):.3g}, {float(c['hi']):.3g}]"


def above(final: dict, a: str, b: str, *, separate: bool = True) -> tuple[bool | str, str]:
    """Whether rule ``a``'s final-accuracy CI lies entirely above rule ``b``'s (``separate``), or only its mean
    (``separate=False``); returns (verdict or why it is missing, note with both CIs)."""
    missing = [s for s in (a, b) if s not in final]
    if missing:
        return f"{' and '.join(missing)} not run", f"rules run: {', '.join(final) or 'none'}"
    holds = separated(final[a], final[b]) if separate else float(final[a]["mean"]) > float(final[b]["mean"])
    return holds, f"final accuracy {a} {ci_text(final[a])}, {b} {ci_text(final[b])} (98% CI)"


def seed_finals(rows: list[dict], by: str = "rule") -> dict[str, list[float]]:
    """Final accuracy per seed (in seed order) for every ``by`` group of ``final_rows`` rows (NaN: diverged)."""
    groups: dict[str, dict[int, float]] = {}
    for r in rows:
        v = r["final_accuracy"]
        groups.setdefault(str(r[by]), {})[int(r["seed"])] = float("nan") if v is None else float(v)
    return {k: [g[s] for s in sorted(g)] for k, g in groups.items()}


def chance_level(n_classes: int, seeds: int) -> list[float]:
    """Chance accuracy 1/K once per seed: the reference a "learns: above chance" Greater claim compares with."""
    return [1.0 / n_classes] * seeds


def final_probe(curves: dict, spec: str, key: str, layer: int) -> list[float]:
    """Per-seed final value of probe ``key`` (seeds, evals, layers) of rule ``spec`` at index ``layer``."""
    return np.asarray(curves[spec][key], float)[:, -1, layer].tolist()


def headline(rows: list[dict], by: str = "rule") -> dict:
    """Final accuracy per group: mean and 98% CI."""
    groups: dict[str, list[float]] = {}
    for r in rows:
        groups.setdefault(str(r[by]), []).append(r["final_accuracy"])
    return {k: ci(np.asarray(v)) for k, v in groups.items()}


def config_copy(cfg: Any, **changes) -> Any:
    return dataclasses.replace(cfg, **changes)


def plot_curves(ax, curves: dict, key: str = "accuracy", **kw) -> None:
    """Mean and CI band of ``curves[rule][key]`` (seeds, evals) against samples for every rule."""
    from ...plotting import curve_with_ci

    for spec, c in curves.items():
        curve_with_ci(ax, np.asarray(c["samples"]), np.asarray(c[key]), label=spec, **kw)


PROBES = ("norm", "residual", "step_bp", "step_oja", "err_norm")


def run_compare(cfg: OjaFFConfig, ctx, specs: tuple[str, ...] | None = None, init: str | None = None,
                tag: str = "", data: Dataset | None = None) -> dict:
    """Train each rule (one ``ctx.unit`` per rule, seeds vmapped) with probes; return rows, curves with CIs,
    final accuracy CI per rule and per-layer probe arrays (seeds, evals, layers)."""
    data = data if data is not None else load_data(cfg.dataset, ctx.data_dir, cfg.n_train, cfg.n_test, cfg.data_seed)
    init = init or cfg.init
    rows, curves, final = [], {}, {}
    for spec in specs or cfg.rules:
        ctx.log(f"{tag}{spec}: depth {cfg.depth}, init {init}, {cfg.seeds} seeds vmapped, {len(data.x_train)} samples")
        res = ctx.unit(f"{tag}depth={cfg.depth}-init={init}-rule={spec}",
                       lambda spec=spec: train_rule(cfg, data, spec, init=init, probe=True))
        acc = np.asarray(res["accuracy"])
        curves[spec] = {"samples": res["samples"], "accuracy": res["accuracy"], "ci": ci(acc),
                        **{k: res[k] for k in PROBES},
                        **{f"{k}_final_ci": ci(np.asarray(res[k])[:, -1]) for k in PROBES}}
        final[spec] = ci(acc[:, -1])
        rows += final_rows(res, spec, cfg, init=init)
        ctx.log(f"  final accuracy {final[spec]['mean']:.3f} [{final[spec]['lo']:.3f}, {final[spec]['hi']:.3f}]; "
                f"activation norms per layer {np.round(np.asarray(res['norm'])[:, -1].mean(0), 2).tolist()}")
    return {"rows": rows, "curves": curves, "final": final, "n_train_used": int(len(data.x_train)),
            "n_classes": int(data.n_classes)}


def plot_layer_curves(curves: dict, key: str, out: Path, title: str, ylabel: str, log: bool = True,
                      fname: str | None = None, n_layers: int | None = None) -> None:
    """One panel per rule: ``key`` per layer (seeds, evals, layers) against samples, mean and CI band
    (only the first ``n_layers`` layers when given)."""
    from ...plotting import curve_with_ci, figure, save

    fig, axes = figure(1, len(curves), size=(4.3, 3.4))
    for ax, (spec, c) in zip(axes[0], curves.items()):
        v = np.asarray(c[key], float)[:, :, :n_layers]
        cmap = __import__("matplotlib").colormaps["viridis"]
        for l in range(v.shape[2]):
            curve_with_ci(ax, np.asarray(c["samples"]), v[:, :, l], label=f"l={l + (0 if key == 'norm' else 1)}",
                          color=cmap(l / max(1, v.shape[2] - 1)))
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("training samples seen")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{spec}: {title}")
        ax.legend(fontsize=6, ncol=2)
    save(fig, out / (fname or f"{key}_over_training.png"))


def plot_final_per_layer(curves: dict, key: str, out: Path, title: str, ylabel: str, fname: str, n: int,
                         log: bool = True, first_layer: int = 0) -> None:
    """Final value of ``key`` per layer for every rule, mean with 98% CI error bars over ``n`` seeds."""
    from ...plotting import figure, save, spread_label

    fig, axes = figure(size=(5, 3.6))
    ax = axes[0, 0]
    for spec, c in curves.items():
        ci_ = c[f"{key}_final_ci"]
        m = np.asarray(ci_["mean"])
        lay = np.arange(first_layer, first_layer + len(m))
        ax.errorbar(lay, m, yerr=[m - np.asarray(ci_["lo"]), np.asarray(ci_["hi"]) - m], marker="o", capsize=3,
                    label=spread_label(spec, n, level=0.98), color=rule_color(spec))
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("layer l")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    save(fig, out / fname)


def plot_accuracy(curves: dict, out: Path, title: str, fname: str, n_classes: int | None = None) -> None:
    """Validation accuracy of every rule (mean and 98% CI over seeds), chance 1/n_classes marked."""
    from ...plotting import curve_with_ci, figure, mark_chance, save

    fig, axes = figure(size=(5, 3.6))
    ax = axes[0, 0]
    for spec, c in curves.items():
        curve_with_ci(ax, np.asarray(c["samples"]), np.asarray(c["accuracy"]), label=spec, color=rule_color(spec))
    ax.set_xlabel("training samples seen (online, batch 1)")
    ax.set_ylabel("validation accuracy")
    ax.set_title(title)
    ax.legend()
    if n_classes:
        mark_chance(ax, 1 / n_classes)
    save(fig, out / fname)
