"""sam-deep: where SAM's blow-up on the paper's deep narrow net (Fig. S1a: 8 hidden layers of 60) starts.

Every ``trace_every`` steps, on a fixed probe batch of the validation split (the training split cut by
``val_fraction``; the test split is never read), ``trace_probe`` records per layer k (code levels, see
``plasticlab.networks.two_stream``; layer k + 1 in the messages):

- the Frobenius and spectral norms of W[k], and the Frobenius norms of Wbar[k], V[k] (downstream levels 1..n-1)
  and Vbar[k] (hidden levels 0..n-2; the output level's Vbar is the fixed identity);
- lr x lambda_max(H[k]), H = Vbar[k] Vbar[k]^T, with lr the *scheduled* overall rate at that step (warm-up
  included): W[k]'s rate along H's top direction (Theorem 1; ``sam-stability`` reports the nominal rate's);
- the feedback: the RMS over the batch of the downstream potentials ||hbar_{k+1}|| and of W[k]'s error
  ||e_{k+1}|| = ||D_u Vbar[k] D_d hbar_{k+1}||, and of the forward activity ||a_k||;
- the relative one-step updates ||Delta X[k]|| / ||X[k]|| of W, Wbar and Vbar (decay left out),
  cos(Delta_SAM W[k], -dLoss/dW[k]) (autograd), cos(Delta_SAM W[k], <a_{k+1} a_k^T>) (how Hebbian W's update is)
  and the probe loss.

Each (net, rate) cell trains ``seeds`` seeds through ``training.fit`` in the sam-table1 setting (``SamConfig``:
centred inputs, biases, 15% warm-up of ``epochs``, rate-scaled decay, ``sam_vbar_scale``) until every seed has
diverged or ``max_steps`` have passed: the deep net at every rate of ``lrs``, the control net (``control_hidden``,
3 x 200) at the first, and the deep net with matrices frozen (``plastic``) at the second. A diverged seed's trace is
kept up to its divergence (``fit`` NaNs its curves at the end; the probe values are kept as evaluated). Per seed
(``rows_of``): the divergence step and the first matrix past 1e6 (``History.divergences``); the first quantity and the
first matrix quantity that left [start / ``range_factor``, start x ``range_factor``] (``first_departures``); the
first step at which a hidden layer's W update turned Hebbian (``hebbian_onset``: cos > 0.5) with lr(t) x
lambda_max(H), the mean cos(SAM, -grad) and the loss there.

``fixes`` train the deep net for ``epochs`` at ``fix_lr`` with one setting changed (a rate ratio, the decay's form
or size, Vbar's initial scale: eq. 8-11 unchanged, ``FIXES``) on the validation split and report every seed's final
validation accuracy or divergence.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ...data import search_context
from ...plotting import figure, save
from ...settings import setting
from ...training import fit, fit_steps
from . import common as C
from .analysis import _cos, _on_host
from .common import sam_setting
from ..base import Experiment, RunContext, register

NAME = "sam-deep"
DEEP = (60,) * 8  # Fig. S1a's net
MATRIX_KEYS = ("W", "Wbar", "V", "Vbar")


def _largest(fn, x: jax.Array) -> jax.Array:
    """The largest of ``fn``'s values (eigvalsh / svd) of each trailing matrix of ``x``, computed on the host as
    ``sam-analysis`` does (LAPACK inside the jitted, vmapped probe deadlocked XLA's CPU runtime); NaN for a
    non-finite matrix."""
    return jnp.max(_on_host(fn, x, 2), axis=-1)


def lambda_max(m: jax.Array) -> jax.Array:
    """Largest eigenvalue of the symmetric matrix ``m``."""
    return _largest(np.linalg.eigvalsh, m)


def spectral_norm(m: jax.Array) -> jax.Array:
    """Largest singular value of ``m`` (the root of lambda_max of the smaller Gram matrix)."""
    gram = m @ m.T if m.shape[-2] <= m.shape[-1] else m.T @ m
    return jnp.sqrt(jnp.maximum(lambda_max(gram), 0.0))


def _rms(a: jax.Array) -> jax.Array:
    """Root mean square over the batch of the per-sample norms of ``a`` (batch, width)."""
    return jnp.sqrt(jnp.mean(jnp.sum(a * a, axis=-1)))


def trace_probe(tr, state, x, t) -> dict:
    """Per-layer norms, feedback norms, effective rates and relative updates at one state on the batch (x, t) (see
    the module docstring). ``h_top_k`` is lambda_max(H[k]) (``trace`` multiplies in the scheduled rate); the updates
    are the nominal rates' with the decay left out."""
    rule, net, params, fb = tr.rule, tr.net, state.params, state.rule_state
    ts = rule.stream(net)
    n = net.n_layers
    fwd = net.forward(params, x)
    e_out = tr.loss.error(fwd, t)
    down = ts.downstream(rule._wbar(ts, params, fb), fwd, e_out)
    post = ts.w_post(fb, fwd, down)
    nodecay = eqx.tree_at(lambda r: r.decay, rule, 0.0)
    dW, dfb = nodecay.deltas(net, params, fb, fwd, e_out)
    grads = jax.grad(lambda p: tr.loss.value(net.forward(p, x), t))(params)
    out = {"loss": tr.loss.value(fwd, t)}
    for k in range(n):
        w = params.W[k]
        out[f"W_fro_{k}"] = jnp.linalg.norm(w)
        out[f"W_spec_{k}"] = spectral_norm(w)
        out[f"W_rel_update_{k}"] = jnp.linalg.norm(dW[k]) / jnp.maximum(jnp.linalg.norm(w), 1e-30)
        out[f"cos_sgd_{k}"] = _cos(dW[k], -grads.W[k])
        out[f"cos_hebb_{k}"] = _cos(dW[k], fwd.h[k + 1].T @ fwd.h[k])
        out[f"act_{k}"] = _rms(fwd.h[k])
        out[f"hbar_{k + 1}"] = _rms(down.hbar[k + 1])
        out[f"err_{k}"] = _rms(post[k])
        if k in ts.levels:
            out[f"Wbar_fro_{k}"] = jnp.linalg.norm(fb.Wbar[k])
            out[f"V_fro_{k}"] = jnp.linalg.norm(fb.V[k])
            out[f"Wbar_rel_update_{k}"] = jnp.linalg.norm(dfb.Wbar[k]) / jnp.maximum(jnp.linalg.norm(fb.Wbar[k]), 1e-30)
        if k < n - 1 or rule.vbar_out != "identity":
            v = fb.Vbar[k]
            out[f"Vbar_fro_{k}"] = jnp.linalg.norm(v)
            out[f"Vbar_rel_update_{k}"] = jnp.linalg.norm(dfb.Vbar[k]) / jnp.maximum(jnp.linalg.norm(v), 1e-30)
            out[f"h_top_{k}"] = lambda_max(v @ v.T)
    out[f"act_{n}"] = _rms(fwd.h[n])
    return out


def trainer_for(cfg, data, hidden, lr: float, decay: float, **sam_kw):
    """SAM at overall rate ``lr`` and decay ``decay`` on the MLP ``hidden`` for ``data``, otherwise ``cfg``'s
    setting (``sam_kw``: SAM fields changed, e.g. ``vbar_scale``)."""
    hp = C.hyper_from(cfg)
    if "ratios" in sam_kw:
        sam_kw = dict(sam_kw)
        hp = dataclasses.replace(hp, sam_ratios=tuple(sam_kw.pop("ratios")))
    rule = C.make_rule("sam", hp, **{**C.sam_kwargs(cfg), **sam_kw})
    tr = C.make_trainer(C.make_net(data, tuple(hidden), use_bias=cfg.use_bias), rule, C.loss_for(data, cfg.loss))
    return C._with_rates(tr, lr, decay)


def n_steps_of(cfg, data) -> int:
    """``fit``'s step count for ``cfg.epochs`` on ``data``'s training split."""
    return fit_steps(len(data.x_train), cfg.batch_size, cfg.epochs)


def trace(cfg, val, hidden, lr: float, decay: float, **sam_kw) -> dict:
    """Train ``cfg.seeds`` seeds of SAM (``trainer_for``) on ``val``'s training part with ``cfg``'s schedule over
    ``cfg.epochs`` and probe every ``cfg.trace_every`` steps on the first ``cfg.batch_size`` validation samples,
    until every seed diverged or ``cfg.max_steps`` passed. Returns {"steps", "rate_factor" (the schedule's factor
    at each traced step), "divergences", "curves": {probe key: (seeds, points), NaN from a seed's divergence on},
    "total_steps"}."""
    tr = trainer_for(cfg, val, hidden, lr, decay, **sam_kw)
    raw: list[dict] = []

    def keep(vals: dict) -> dict:  # fit NaNs a diverged seed's curves at the end; keep them as evaluated
        raw.append({k: np.array(v[0], dtype=float) for k, v in vals.items()})
        return vals

    seeds = list(range(cfg.seeds))
    total = n_steps_of(cfg, val)
    schedule = functools.partial(C.lr_multiplier, cfg.lr_schedule, warmup=cfg.lr_warmup)
    cap = min(total, cfg.max_steps) * cfg.batch_size
    n_probe = min(cfg.batch_size, len(val.x_test))
    hist = fit(tr, val.x_train, val.y_train, seeds=seeds, epochs=cfg.epochs, batch_size=cfg.batch_size,
               eval_every=cfg.trace_every * cfg.batch_size, x_eval=val.x_test[:n_probe], y_eval=val.y_test[:n_probe],
               evaluate=trace_probe, on_eval=keep, rate_schedule=schedule, on_divergence="record", progress=None,
               until=lambda h: len(h.divergences) >= len(seeds) or h.samples[-1] >= cap)
    steps = np.asarray(hist.samples) // cfg.batch_size
    factor = np.asarray([float(C.lr_multiplier(cfg.lr_schedule, s, total, cfg.lr_warmup)) for s in steps])
    curves = {k: np.stack([r[k] for r in raw], axis=-1) for k in raw[0]}  # (seeds, points)
    div = {d["seed"]: d for d in hist.divergences}
    for i, s in enumerate(seeds):
        if s in div:
            for v in curves.values():
                v[i, steps >= div[s]["step"]] = np.nan
    for k in [k for k in curves if k.startswith("h_top_")]:  # lr x lambda_max(H) at the step's scheduled rate
        curves["top_rate_" + k.removeprefix("h_top_")] = lr * factor * curves[k]
    return {"steps": steps.tolist(), "rate_factor": factor.tolist(), "divergences": hist.divergences,
            "curves": curves, "total_steps": total}


# ----------------------------------------------------------------------------- which quantity leaves its range first

# the quantities whose departure from their start is looked for (cosines and the loss are not ranges; the scheduled
# top_rate rises with the warm-up by design, so its rate-free part h_top, lambda_max(H), is used)
DEPARTING = ("act", "hbar", "err", "W_fro", "W_spec", "Wbar_fro", "V_fro", "Vbar_fro", "h_top",
             "W_rel_update", "Wbar_rel_update", "Vbar_rel_update")
MATRIX_QUANTITIES = ("W_fro", "W_spec", "Wbar_fro", "V_fro", "Vbar_fro", "h_top")  # the matrices themselves


def first_departures(steps, curves: dict, seed_index: int, factor: float) -> list[dict]:
    """Per quantity of ``DEPARTING`` (every layer) of one seed: the first traced step at which its value left
    [start / factor, start x factor] (start: its value at the first point), with its ratio to the start there;
    sorted by step, then by how far it left (largest |log ratio| first). Quantities that never left are omitted."""
    steps = np.asarray(steps)
    out = []
    for key, v in curves.items():
        name, _, layer = key.rpartition("_")
        if name not in DEPARTING or not layer.isdigit():
            continue
        v = np.asarray(v, float)[seed_index]
        start = v[0]
        if not np.isfinite(start) or start <= 0:
            continue
        with np.errstate(all="ignore"):
            ratio = v / start
            left = np.flatnonzero(np.isfinite(ratio) & ((ratio > factor) | (ratio < 1 / factor)))
        if left.size:
            i = int(left[0])
            out.append({"quantity": name, "layer": int(layer) + 1, "step": int(steps[i]), "ratio": float(ratio[i])})
    return sorted(out, key=lambda d: (d["step"], -abs(math.log(d["ratio"]))))


# ----------------------------------------------------------------------------- changes tried on the deep net

# SAM settings changed for a validation run of the deep net (the algorithm, eq. 8-11, is the same in each: only a
# rate ratio, the decay's form or size, or an initial scale differs). "default": the setting as it is.
FIXES: dict[str, dict] = {
    "default": {},
    "vbar_ratio_1": {"ratios": (1.0, 1.0, 0.25, 1.0)},        # eta_Vbar = eta_W (sam-lr-search's stage-2 choice)
    "vbar_ratio_0.25": {"ratios": (1.0, 1.0, 0.25, 0.25)},    # eta_Vbar = eta_V
    "decay_unscaled": {"decay_scaling": "none"},               # eq. 8-11's gamma X instead of Algorithm 1's eta gamma X
    "decay_0.01": {"decay": 0.01},                             # sam-lr-search's best decay on this net
    "vbar_scale_1": {"vbar_scale": 1.0},                       # Vbar drawn at the paper's scale
    "feedback_ratio_0.25": {"ratios": (1.0, 0.25, 0.25, 0.25)},  # both feedback-learning rates (Wbar, Vbar) at W's / 4
}
PLASTIC = ("W,Wbar,V,Vbar", "W,Wbar,V", "W,V,Vbar", "W,Wbar,Vbar", "W")  # the diagnostic freezes (not fixes)


def fix_kwargs(name: str, cfg) -> tuple[dict, float]:
    """(SAM fields, decay gamma) of change ``name`` of ``FIXES`` on top of ``cfg``'s setting."""
    change = dict(FIXES[name])
    decay = change.pop("decay", cfg.sam_decay)
    if "ratios" in change:
        change["ratios"] = tuple(change["ratios"])
    return change, float(decay)


@C.sam_config
class SamDeepConfig(C.SamConfig):
    """The sam-table1 setting (``SamConfig``) on Fig. S1a's net; MNIST stands in for the paper's SVHN."""

    dataset: str = sam_setting("dataset", "mnist", doc="data set (any with class labels or binary label vectors; "
                                                         "the paper's Fig. S1a: svhn)")
    hidden: tuple[int, ...] = sam_setting("hidden", DEEP, doc="hidden widths of the traced net (Fig. S1a: 8 x 60)")
    control_hidden: tuple[int, ...] = setting((200, 200, 200), ge=1, le=C.MAX_WIDTH, allow_empty=True,
                                              doc="hidden widths of the control net traced at the first rate "
                                                  "(empty: no control)")
    lrs: tuple[float, ...] = setting((0.173, 0.02, 0.005), gt=0, doc="overall rates traced on the deep net")
    plastic: tuple[str, ...] = setting(("W,Wbar,V", "W,Wbar,Vbar"), choices=PLASTIC, allow_empty=True,
                                       doc="diagnostic variants traced at the second rate (lrs[1], else lrs[0]) with "
                                           "the other matrices frozen at their start (W,Wbar,V,Vbar: SAM itself)")
    epochs: float = sam_setting("epochs", 10.0, doc="epochs the warm-up is laid out over (sam-lr-search's 10; the "
                                                    "trace stops at max_steps) and of each fix run")
    seeds: int = sam_setting("seeds", 3, doc="independent seeds per traced cell and per fix, run together under vmap")
    trace_every: int = setting(5, ge=1, le=100_000, doc="steps between probes")
    max_steps: int = setting(1200, ge=1, le=10_000_000, doc="the trace stops here (or when every seed diverged)")
    control_steps: int = setting(400, ge=1, le=10_000_000, doc="steps traced on the control net")
    range_factor: float = setting(3.0, gt=1, doc="a quantity has left its range when it is this many times above "
                                                 "(or below) its start")
    val_fraction: float = sam_setting("val_fraction", 0.2)
    fixes: tuple[str, ...] = setting(("default", "vbar_ratio_1", "vbar_ratio_0.25"), choices=tuple(FIXES),
                                     allow_empty=True,
                                     doc="changes of the setting (not of eq. 8-11) trained on the deep net for "
                                         "`epochs` on the validation split at fix_lr, all seeds")
    fix_lr: float = setting(0.02, gt=0, doc="overall rate of the fix runs")
    on_divergence: str = sam_setting("on_divergence", "record", choices=("record",),
                                     doc='"record" (the only choice: a diverged seed is what this measures)')


def _trace_unit(tr_out: dict, label: str, hidden, lr: float, plastic: str) -> dict:
    """The JSON unit of one traced cell (NaN as None)."""
    return {"label": label, "hidden": list(hidden), "lr": lr, "plastic": plastic, "steps": tr_out["steps"],
            "rate_factor": tr_out["rate_factor"], "divergences": tr_out["divergences"],
            "curves": {k: [[None if not np.isfinite(x) else float(x) for x in row] for row in np.asarray(v, float)]
                       for k, v in tr_out["curves"].items()}}


def _arrays(unit: dict) -> dict[str, np.ndarray]:
    return {k: np.asarray([[np.nan if x is None else x for x in row] for row in v], float)
            for k, v in unit["curves"].items()}


def _at(curves: dict, name: str, i: int, j: int, hidden_only: bool = True) -> list[float]:
    """``name``'s values of every layer at point ``j`` of seed ``i`` (the hidden layers only: the output layer's
    W update is the output error's whatever the rule)."""
    keys = sorted((k for k in curves if k.rsplit("_", 1)[0] == name), key=lambda k: int(k.rsplit("_", 1)[1]))
    if hidden_only and name in ("cos_sgd", "cos_hebb"):
        keys = keys[:-1]
    return [float(curves[k][i, j]) for k in keys]


def rows_of(cfg, unit: dict) -> list[dict]:
    """One row per seed of a traced cell: its divergence (step, first matrix past 1e6), the first quantity and the
    first matrix quantity out of range (``first_departures``), the Hebbian onset (``hebbian_onset``) and, at that
    point, the largest lr(t) x lambda_max(H), the mean cos(SAM, -grad) over the hidden layers and the probe loss;
    the largest lr(t) x lambda_max(H) before the divergence step's last 20% (or over the trace), the final loss."""
    steps, curves = np.asarray(unit["steps"]), _arrays(unit)
    div = {d["seed"]: d for d in unit["divergences"]}
    rows = []
    for i in range(curves["loss"].shape[0]):
        dep = first_departures(steps, curves, i, cfg.range_factor)
        mats = [x for x in dep if x["quantity"] in MATRIX_QUANTITIES]
        d = div.get(i)
        onset = hebbian_onset(steps, curves, i)
        j = None if onset is None else int(np.searchsorted(steps, int(onset.split("step ")[1].split(" ")[0])))
        horizon = steps < 0.8 * d["step"] if d else np.ones(len(steps), bool)
        with np.errstate(all="ignore"):
            tops = np.stack([v[i] for k, v in curves.items() if k.startswith("top_rate_")])
            peak = float(np.nanmax(tops[:, horizon])) if np.isfinite(tops[:, horizon]).any() else None
        describe = lambda x: (f"{x['quantity']} of layer {x['layer']} at step {x['step']} "  # noqa: E731
                              f"(x{x['ratio']:.3g})")
        rows.append({"net": unit["label"], "hidden": "x".join(map(str, unit["hidden"])), "lr": unit["lr"],
                     "plastic": unit["plastic"], "seed": i, "status": "diverged" if d else "ok",
                     "step": d["step"] if d else None, "matrix": d["matrix"] if d else None,
                     "first_departure": describe(dep[0]) if dep else None,
                     "first_matrix_departure": describe(mats[0]) if mats else None,
                     "hebbian_onset": onset,
                     "top_rate_at_onset": None if j is None else max(_at(curves, "top_rate", i, j)),
                     "cos_sgd_at_onset": None if j is None else float(np.mean(_at(curves, "cos_sgd", i, j))),
                     "loss_at_onset": None if j is None else float(curves["loss"][i, j]),
                     "peak_top_rate": peak, "final_loss": _last_finite(curves["loss"][i])})
    return rows


def _last_finite(v) -> float | None:
    v = np.asarray(v, float)
    ok = np.flatnonzero(np.isfinite(v))
    return float(v[ok[-1]]) if ok.size else None


HEBB_COS = 0.5


def hebbian_onset(steps, curves: dict, seed_index: int) -> str | None:
    """The first traced step and layer at which SAM's W update has cos > ``HEBB_COS`` with the Hebbian outer product
    <a_{k+1} a_k^T> (the update has turned Hebbian), as "layer L at step S (cos c)"; None if it never does."""
    best = None
    for key, v in curves.items():
        if not key.startswith("cos_hebb_"):
            continue
        k = int(key.rsplit("_", 1)[1])
        if k == len([c for c in curves if c.startswith("cos_hebb_")]) - 1:
            continue  # the output layer's update is the output error's, whatever the rule
        v = np.asarray(v, float)[seed_index]
        hit = np.flatnonzero(np.nan_to_num(v, nan=-1.0) > HEBB_COS)
        if hit.size and (best is None or steps[hit[0]] < best[0]):
            best = (int(steps[hit[0]]), k + 1, float(v[hit[0]]))
    return None if best is None else f"layer {best[1]} at step {best[0]} (cos {best[2]:.2f})"


def _fix_run(cfg, val, name: str) -> dict:
    """Change ``name`` on the deep net: ``cfg.seeds`` seeds for ``cfg.epochs`` at ``cfg.fix_lr`` on ``val``'s training
    part, scored on its validation part; per seed the accuracy % or the divergence."""
    sam_kw, decay = fix_kwargs(name, cfg)
    tr = trainer_for(cfg, val, cfg.hidden, cfg.fix_lr, decay, **sam_kw)
    res = C.train_grid(tr, val, lrs=[cfg.fix_lr], decays=[decay], seeds=cfg.seeds, epochs=cfg.epochs,
                       batch_size=cfg.batch_size, evals=1, on_divergence="record", lr_schedule=cfg.lr_schedule,
                       lr_warmup=cfg.lr_warmup)
    acc = res.final("test_accuracy")[0] * 100
    return {"fix": name, "lr": cfg.fix_lr, "decay": decay,
            "val_accuracy": [float(v) if np.isfinite(v) else None for v in acc],
            "status": [res.seed_status(s) for s in res.seeds]}


def run(cfg: SamDeepConfig, ctx: RunContext) -> dict:
    full, unavailable = C.load_or_unavailable(cfg, ctx)
    if full is None:
        return unavailable
    val = full.validation_split(cfg.val_fraction, seed=0)
    cells = [("deep", tuple(cfg.hidden), lr, PLASTIC[0], cfg.max_steps) for lr in cfg.lrs]
    if cfg.control_hidden:
        cells.append(("control", tuple(cfg.control_hidden), cfg.lrs[0], PLASTIC[0], cfg.control_steps))
    diag_lr = cfg.lrs[1] if len(cfg.lrs) > 1 else cfg.lrs[0]
    cells += [("deep", tuple(cfg.hidden), diag_lr, p, cfg.max_steps) for p in cfg.plastic if p != PLASTIC[0]]
    traces, rows, fixes = [], [], []
    with search_context(NAME):  # nothing here reads a test split
        for label, hidden, lr, plastic, steps in cells:
            key = f"{label}/{'x'.join(map(str, hidden))}/lr={lr:g}/plastic={plastic}"
            ctx.log(f"trace {key}: {cfg.seeds} seeds, up to {steps} steps")

            def unit(hidden=hidden, lr=lr, plastic=plastic, steps=steps, label=label):
                out = trace(dataclasses.replace(cfg, max_steps=steps), val, hidden, lr, cfg.sam_decay, plastic=plastic)
                return {"trace": _trace_unit(out, label, hidden, lr, plastic)}

            tu = {k: v for k, v in ctx.unit(key, unit)["trace"].items() if k != "departures"}
            tu["departures"] = [first_departures(tu["steps"], _arrays(tu), i, cfg.range_factor)[:12]
                                for i in range(cfg.seeds)]
            traces.append(tu)
            cell_rows = rows_of(cfg, tu)
            rows += cell_rows
            for r in cell_rows:
                ctx.log(f"  seed {r['seed']}: {r['status']}" + (f" at step {r['step']} ({r['matrix']})" if r["step"]
                                                                 else "") + f"; first out of range: "
                        f"{r['first_departure']}; update Hebbian: {r['hebbian_onset']}")
        for name in cfg.fixes:
            ctx.log(f"fix {name}: {cfg.seeds} seeds, {cfg.epochs:g} epochs at lr {cfg.fix_lr:g} (validation split)")
            fixes.append(ctx.unit(f"fix={name}/lr={cfg.fix_lr:g}", lambda name=name: _fix_run(cfg, val, name)))
            ctx.log(f"  validation accuracy: {fixes[-1]['val_accuracy']}; {fixes[-1]['status']}")
    return {"rows": rows, "traces": traces, "fixes": fixes, "range_factor": cfg.range_factor,
            "n_classes": int(full.n_classes)}


PANELS = (("act", "forward activity RMS ||a_k||", True), ("cos_hebb", "cos(SAM dW, <a_k+1 a_k^T>)", False),
          ("cos_sgd", "cos(SAM dW, -dLoss/dW)", False), ("top_rate", "lr(t) x lambda_max(Vbar Vbar^T)", True),
          ("hbar", "feedback RMS ||hbar_k||", True))


def plot(results: dict, out: Path) -> None:
    if "traces" not in results or not results["traces"]:
        return
    import matplotlib.pyplot as plt

    traces = results["traces"]
    fig, axes = figure(len(traces), len(PANELS), size=(3.0, 2.3))
    for r, tr in enumerate(traces):
        steps = np.asarray(tr["steps"])
        div = {d["seed"]: d["step"] for d in tr["divergences"]}
        for c, (key, title, log) in enumerate(PANELS):
            ax = axes[r, c]
            layers = sorted(int(k.rsplit("_", 1)[1]) for k in tr["curves"] if k.rsplit("_", 1)[0] == key)
            cmap = plt.get_cmap("viridis")
            for j, k in enumerate(layers):
                v = np.asarray(tr["curves"][f"{key}_{k}"], dtype=float)[0]  # seed 0
                ax.plot(steps, v, color=cmap(j / max(1, len(layers) - 1)), lw=1,
                        label=f"{k + (0 if key in ('act', 'hbar') else 1)}")
            if 0 in div:
                ax.axvline(div[0], color="red", ls=":", lw=1)
            if log:
                ax.set_yscale("log")
            ax.set_title(f"{title}" if r == 0 else "", fontsize=7)
            ax.tick_params(labelsize=6)
            if c == 0:
                ax.set_ylabel(f"{tr['label']} {'x'.join(map(str, tr['hidden'][:1]))}x{len(tr['hidden'])}\n"
                              f"lr {tr['lr']:g}, {tr['plastic']}", fontsize=7)
            if r == len(traces) - 1:
                ax.set_xlabel("step (seed 0; red: divergence)", fontsize=7)
        axes[r, 1].set_ylim(-1.05, 1.05)
        axes[r, 2].set_ylim(-1.05, 1.05)
    axes[0, 0].legend(fontsize=5, ncol=2, title="layer", title_fontsize=5)
    save(fig, out / "deep_trace.png")
    if results.get("fixes"):
        fig, axes = figure(size=(5.0, 3.0))
        ax = axes[0, 0]
        for i, f in enumerate(results["fixes"]):
            acc = [np.nan if v is None else v for v in f["val_accuracy"]]
            ax.scatter([i] * len(acc), np.nan_to_num(acc, nan=0.0), color=["C0" if np.isfinite(a) else "red"
                                                                           for a in acc], s=14)
        ax.set_xticks(range(len(results["fixes"])), [f["fix"] for f in results["fixes"]], fontsize=7, rotation=20)
        ax.set_ylabel("validation accuracy % (red at 0: diverged)")
        ax.set_title(f"deep net, lr {results['fixes'][0]['lr']:g}", fontsize=8)
        C.mark_accuracy_chance(ax, "accuracy", results.get("n_classes"))
        save(fig, out / "deep_fixes.png")


register(Experiment(NAME, "where SAM's blow-up on Fig. S1a's deep narrow net (8 x 60) starts: per-layer norms, "
                    "feedback, lr x lambda_max(H) until divergence, a 3 x 200 control, freezes and fixes (validation)",
                    SamDeepConfig, run, plot, paper="sam",
                    quick={"dataset": "digits", "hidden": (16,) * 8, "control_hidden": (32, 32, 32),
                           "lrs": (0.3, 0.05), "seeds": 2, "epochs": 3.0, "batch_size": 64, "trace_every": 2,
                           "max_steps": 40, "control_steps": 20, "plastic": ("W,Wbar,V",),
                           "fixes": ("vbar_ratio_1",), "fix_lr": 0.05}))
