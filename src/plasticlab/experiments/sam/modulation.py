"""sam-modulation: the feedback stream as short-term modulation of the forward pass (earlier paper, Sec. 2.3).

After one forward and downstream cycle on a batch, every hidden upstream neuron adds the feedback it receives to
its potential and the forward pass runs again:

    y_{k+1} <- W[k] a_k + b[k] + tau m_{k+1},   m_{k+1} = D_u^{k+1} Vbar[k] D_d^{k+1} hbar_{k+1} = -e_{k+1}

(e_{k+1}: SAM's W error signal, ``SAM.feedback``; the modulated activities propagate to the layers above; the
output potential itself is not modulated). The paper: since Vbar hbar = -grad_h F, this "leads to a reduced loss
function value for this particular data point ... for a sufficiently small time constant". Measured at every
evaluation on a fixed probe batch of the test split, for each tau of ``taus``: the relative change of the batch's
mean loss, (F(tau) - F(0)) / F(0), and the fraction of its samples whose loss fell, for SAM's signal, for the exact
gradient signal m = -dF/dy (backprop's, the best first-order direction) and for a random signal with the same
norm per sample and layer (chance). The claims (``plasticlab.claims.sam``) read the final evaluation.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ...claims import sam as K
from ...networks.mlp import Forward
from ...plotting import curve_with_ci, figure, save
from ...settings import setting
from . import common as C
from .common import sam_setting
from ..base import Experiment, RunContext, register

SIGNALS = ("sam", "gradient", "random")


@C.sam_config
class SamModulationConfig(C.SamConfig):
    """SAM in the sam-table1 setting, probed for the short-term modulation of its forward pass."""

    dataset: str = sam_setting("dataset", "mnist")
    taus: tuple[float, ...] = setting((0.01, 0.1, 1.0), gt=0, doc="modulation time constants tau (ascending)")
    epochs: float = sam_setting("epochs", 10.0)
    seeds: int = sam_setting("seeds", 5, doc="independent seeds, run together under vmap")
    evals: int = sam_setting("evals", 5)


def modulated_forward(net, params, x, offsets) -> Forward:
    """The forward pass with ``offsets[k]`` added to the potential y_{k+1} of hidden layer k + 1 (k < L - 1)."""
    h, ys, dfs = [x], [], []
    for l, w in enumerate(params.W, start=1):
        y = h[-1] @ w.T
        if params.b is not None:
            y = y + params.b[l - 1]
        if l < len(params.W):
            y = y + offsets[l - 1]
        act = net.act(l)
        ys.append(y)
        dfs.append(act.df(y))
        h.append(act.f(y))
    return Forward(tuple(h), tuple(ys), tuple(dfs))


def per_sample_loss(tr, params, x, t, offsets) -> jax.Array:
    """(batch,) loss of every sample of the modulated forward pass."""
    one = lambda xi, ti, oi: tr.loss.value(modulated_forward(tr.net, params, xi[None], [o[None] for o in oi]),  # noqa: E731
                                           ti[None])
    return jax.vmap(one)(x, t, list(offsets))


def probe(taus):
    """The probe of ``train_grid``: per tau and signal the relative change of the mean loss and the fraction of
    samples whose loss fell (module docstring)."""
    def measure(tr, state, x, t) -> dict:
        net, params, fb = tr.net, state.params, state.rule_state
        fwd = net.forward(params, x)
        e = tr.rule.feedback(net, params, fb, fwd, tr.loss.error(fwd, t))[:-1]  # hidden layers' e_{k+1}
        zero = [jnp.zeros_like(v) for v in e]
        base = per_sample_loss(tr, params, x, t, zero)
        grad = jax.grad(lambda off: jnp.sum(per_sample_loss(tr, params, x, t, off)))(zero)  # per sample dF_i/dy
        keys = jax.random.split(jax.random.PRNGKey(7), len(e))
        rand = []
        for k, v in zip(keys, e):
            r = jax.random.normal(k, v.shape)
            rand.append(r * jnp.linalg.norm(v, axis=-1, keepdims=True)
                        / jnp.maximum(jnp.linalg.norm(r, axis=-1, keepdims=True), 1e-30))
        directions = {"sam": [-v for v in e], "gradient": [-g for g in grad], "random": rand}
        out = {"loss": jnp.mean(base)}
        for name, m in directions.items():
            for tau in taus:
                new = per_sample_loss(tr, params, x, t, [tau * v for v in m])
                out[f"rel_change/{name}/tau={tau:g}"] = (jnp.mean(new) - jnp.mean(base)) / jnp.maximum(
                    jnp.mean(base), 1e-30)
                out[f"frac_reduced/{name}/tau={tau:g}"] = jnp.mean(new < base)
        return out

    return measure


def run(cfg: SamModulationConfig, ctx: RunContext) -> dict:
    data, unavailable = C.load_or_unavailable(cfg, ctx)
    if data is None:
        return unavailable

    ctx.log(f"training SAM on {data.name} with modulation probes ({cfg.seeds} seeds, {cfg.epochs:g} epochs)")
    res = ctx.unit("modulation", lambda: C.probed_curves(cfg, data, probe(tuple(cfg.taus))))
    cur = {k: np.asarray(v, float) for k, v in res["curves"].items()}
    rows = [{"dataset": data.name, "signal": s, "tau": tau, "seed": seed,
             "rel_loss_change": float(cur[f"rel_change/{s}/tau={tau:g}"][i, -1]),
             "frac_samples_reduced": float(cur[f"frac_reduced/{s}/tau={tau:g}"][i, -1])}
            for s in SIGNALS for tau in cfg.taus for i, seed in enumerate(res["seeds"])]
    summary = [{"signal": s, "tau": tau, **{k: C.finite_stats([r[k] for r in rows if (r["signal"], r["tau"]) == (s, tau)])[0]
                                            for k in ("rel_loss_change", "frac_samples_reduced")}}
               for s in SIGNALS for tau in cfg.taus]
    return {"rows": rows, "summary": summary, "samples": res["samples"], "seeds": res["seeds"], "curves": res["curves"],
            "taus": list(cfg.taus), "measurements": measurements(cur, min(cfg.taus))}


def measurements(cur: dict[str, np.ndarray], tau: float) -> dict[str, list[float]]:
    """Per seed at the final evaluation and the smallest tau: each signal's relative loss change and fraction of
    samples whose loss fell."""
    out = {}
    for s in SIGNALS:
        out[K.mod(s, "rel_change")] = cur[f"rel_change/{s}/tau={tau:g}"][:, -1]
        out[K.mod(s, "frac_reduced")] = cur[f"frac_reduced/{s}/tau={tau:g}"][:, -1]
    return {k: [float(x) for x in v] for k, v in out.items()}


def plot(results: dict, out: Path) -> None:
    if "curves" not in results:
        return
    cur, samples = results["curves"], np.asarray(results["samples"])
    taus = results["taus"]
    fig, axes = figure(1, len(taus), size=(3.8, 3.2))
    for j, tau in enumerate(taus):
        ax = axes[0, j]
        for s in SIGNALS:
            v = np.asarray(cur[f"rel_change/{s}/tau={tau:g}"], float)
            curve_with_ci(ax, samples, v, label=s)
        ax.axhline(0.0, color="0.5", lw=0.8, ls=":")
        ax.set_title(f"tau = {tau:g}")
        ax.set_xlabel("training samples")
        ax.set_ylabel("relative change of the probe loss")
        ax.legend(fontsize=7)
    save(fig, out / "modulation.png")


register(Experiment("sam-modulation", "the feedback stream as short-term modulation of the forward pass: loss "
                    "change after adding tau x feedback to every hidden potential (earlier SAM paper, Sec. 2.3)",
                    SamModulationConfig, run, plot, paper="sam",
                    quick={"dataset": "digits", "seeds": 3, "epochs": 3.0, "batch_size": 64, "evals": 2,
                           "hidden": (64, 64, 64), "sam_lr": 0.05}))
