"""sam-local-losses: SAM's V, Vbar and Wbar updates as gradient steps on local quadratic losses (earlier paper,
Sec. 2.4, eq. 10-12).

The earlier paper: the updates of V, Vbar and Wbar "are identical to running a gradient descent step" on

    F_V^l    = || Vbar^l hbar^{l+1} (h^l)^T           - gamma V^l      ||_F^2   (10)
    F_Vbar^l = || hbar^{l+1} (h^l)^T (W^l)^T           - gamma Vbar^l   ||_F^2   (11)
    F_Wbar^l = || hbar^{l+1} (h^l)^T (V^l)^T           - gamma Wbar^l   ||_F^2   (12)

Each loss reads as ||B_X - gamma X||^2 with B_X independent of X, so a step of size rho_X = eta_X / (2 gamma) gives
-rho_X grad F_X = eta_X (B_X - gamma X): the rule's update exactly when its Hebbian term is B_X and X decays by
eta_X gamma (Algorithm 1's reading, ``decay_scaling="rate"``). Vbar and Wbar are read in the orientation of their
updates, eq. 7-8 (Delta (Wbar^l)^T, Delta (Vbar^l)^T), with a batch mean in B_X. In the code's levels k (h^l = a_k,
hbar^{l+1} = D_d hbar_{k+1}) the rule's Hebbian terms (eq. 6-8) are

    V:    (D_d hbar_k) a_k^T            the printed B_V is (Vbar[k] D_d hbar_{k+1}) a_k^T, W's term (eq. 5)
    Vbar: (D_d hbar_{k+1}) a_{k+1}^T    the printed B_Vbar is (D_d hbar_{k+1}) (W[k] a_k)^T, without D_u and bias
    Wbar: (D_d hbar_{k+1}) (D_d V a_k)^T the printed B_Wbar is the same for D_d = I

so at every evaluation, per matrix, the relative difference ||-rho grad F_X - Delta X||_F / ||Delta X||_F is
measured for the printed loss and for a corrected one (B_X = the rule's Hebbian term: F_V with Wbar in place of
Vbar, since hbar^l = Wbar^l hbar^{l+1}; F_Vbar with h^{l+1} = D_u(W h^l + b) in place of W h^l), maximum over the
levels where the printed B_X has X's shape (F_V's needs d_{k+1} = dbar_k). The gradient is ``jax.grad`` of the
loss, independent of the rule's code. The claims (``plasticlab.claims.sam``) read the printed forms per seed.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ...claims import sam as K
from ...plotting import figure, save
from ...rules.base import outer_mean
from ...settings import setting
from . import common as C
from .common import sam_setting
from ..base import Experiment, RunContext, register

MATRICES = ("V", "Vbar", "Wbar")
FORMS = ("printed", "corrected")


@C.sam_config
class SamLocalLossesConfig(C.SamConfig):
    """SAM in the sam-table1 setting; its V, Vbar, Wbar updates compared with gradient steps on the local losses."""

    dataset: str = sam_setting("dataset", "mnist")
    epochs: float = sam_setting("epochs", 2.0)
    seeds: int = sam_setting("seeds", 3, doc="independent seeds, run together under vmap")
    evals: int = sam_setting("evals", 4)
    sam_decay_scaling: str = setting("rate", choices=("rate", "none"),
                                     doc='"rate": matrix X decays by eta_X * gamma (Algorithm 1; the losses\' '
                                         'reading); "none": by gamma (eq. 8-11 of the later paper)')


def local_step(b: jax.Array, x: jax.Array, eta, gamma) -> jax.Array:
    """-rho grad_X ||B - gamma X||_F^2 with rho = eta / (2 gamma), by ``jax.grad``."""
    grad = jax.grad(lambda z: jnp.sum((b - gamma * z) ** 2))(x)
    return -(eta / (2.0 * gamma)) * grad


def rel_diff(a: jax.Array, ref: jax.Array) -> jax.Array:
    return jnp.linalg.norm(a - ref) / jnp.maximum(jnp.linalg.norm(ref), 1e-30)


def hebbian_terms(rule, net, params, fb, fwd, down) -> dict[tuple[str, str], dict[int, jax.Array]]:
    """{(matrix, form): {level k: B_X}} in the orientation of eq. 6-8 (V; Vbar^T; Wbar^T), batch means."""
    ts = rule.stream(net)
    a, hb, g = fwd.h, down.hbar, down.gain
    out: dict = {(m, f): {} for m in MATRICES for f in FORMS}
    for k in ts.levels:
        post = g[k + 1] * hb[k + 1]
        out["Wbar", "printed"][k] = outer_mean(post, a[k] @ fb.V[k].T)
        out["Wbar", "corrected"][k] = outer_mean(post, g[k] * (a[k] @ fb.V[k].T))
        out["V", "corrected"][k] = outer_mean(g[k] * hb[k], a[k])
        printed_v = outer_mean(post @ fb.Vbar[k].T, a[k])
        if printed_v.shape == fb.V[k].shape:
            out["V", "printed"][k] = printed_v
    for k in range(ts.n - 1):  # Vbar[k] learns for k < n - 1 (the output level's Vbar stays I)
        post = g[k + 1] * hb[k + 1]
        out["Vbar", "printed"][k] = outer_mean(post, a[k] @ params.W[k].T)
        out["Vbar", "corrected"][k] = outer_mean(post, a[k + 1])
    return out


def oriented(fb) -> dict[str, tuple[jax.Array, ...]]:
    """V, Vbar^T and Wbar^T per level: each matrix in the orientation of its update in eq. 6-8."""
    return {"V": fb.V, "Vbar": tuple(v.T for v in fb.Vbar), "Wbar": tuple(w.T for w in fb.Wbar)}


def probe(tr, state, x, t) -> dict:
    """Per matrix and form the largest relative difference over levels between the local-loss step and the rule's
    update (NaN where no level has the printed loss's shape)."""
    rule, net, params, fb = tr.rule, tr.net, state.params, state.rule_state
    fwd = net.forward(params, x)
    e_out = tr.loss.error(fwd, t)
    down = rule.signals(net, params, fb, fwd, e_out)
    _, dfb = rule.deltas(net, params, fb, fwd, e_out)
    rates, gamma = rule.rates, rule.decay
    current, update = oriented(fb), oriented(dfb)
    out = {}
    for (m, form), terms in hebbian_terms(rule, net, params, fb, fwd, down).items():
        diffs = [rel_diff(local_step(b, current[m][k], rates[m], gamma), update[m][k]) for k, b in terms.items()]
        out[f"{m}/{form}"] = jnp.max(jnp.stack(diffs)) if diffs else jnp.asarray(jnp.nan)
    return out


def run(cfg: SamLocalLossesConfig, ctx: RunContext) -> dict:
    data, unavailable = C.load_or_unavailable(cfg, ctx)
    if data is None:
        return unavailable

    ctx.log(f"training SAM on {data.name}, comparing its updates with local-loss steps ({cfg.seeds} seeds, "
            f"{cfg.epochs:g} epochs, decay scaling {cfg.sam_decay_scaling})")
    res = ctx.unit("local-losses", lambda: C.probed_curves(cfg, data, probe))
    cur = {k: np.asarray(v, float) for k, v in res["curves"].items()}
    rows = [{"dataset": data.name, "matrix": m, "form": f, "seed": seed,
             "max_rel_diff": float(np.nanmax(cur[f"{m}/{f}"][i])) if np.isfinite(cur[f"{m}/{f}"][i]).any()
             else None}
            for m in MATRICES for f in FORMS for i, seed in enumerate(res["seeds"])]
    return {"rows": rows, "samples": res["samples"], "seeds": res["seeds"], "curves": res["curves"],
            "decay_scaling": cfg.sam_decay_scaling, "measurements": measurements(rows)}


def measurements(rows: list[dict]) -> dict[str, list[float]]:
    """Per seed, per matrix and form: the largest relative difference over levels and evaluations."""
    out: dict[str, list[float]] = {}
    for r in rows:
        out.setdefault(K.local_loss(r["matrix"], r["form"]), []).append(
            float("nan") if r["max_rel_diff"] is None else r["max_rel_diff"])
    return out


def plot(results: dict, out: Path) -> None:
    if "rows" not in results:
        return
    fig, axes = figure(1, 1, size=(5.2, 3.4))
    ax = axes[0, 0]
    width = 0.38
    for j, form in enumerate(FORMS):
        vals = [[r["max_rel_diff"] for r in results["rows"] if (r["matrix"], r["form"]) == (m, form)
                 and r["max_rel_diff"] is not None] for m in MATRICES]
        xs = np.arange(len(MATRICES)) + (j - 0.5) * width
        ax.bar(xs, [max(max(v), 1e-12) if v else np.nan for v in vals], width, label=f"{form} loss (max over "
               f"{len(results['seeds'])} seeds)", log=True)
    ax.set_xticks(np.arange(len(MATRICES)), [f"F_{m}" for m in MATRICES])
    ax.axhline(K.LOCAL_LOSS_TOL, color="0.4", ls=":", lw=0.8, label=f"claim threshold {K.LOCAL_LOSS_TOL:g}")
    ax.set_ylabel("relative difference from the SAM update")
    ax.set_title(f"SAM updates vs local-loss gradient steps ({results['decay_scaling']} decay)", fontsize=9)
    ax.legend(fontsize=7)
    save(fig, out / "local_losses.png")


register(Experiment("sam-local-losses", "SAM's V, Vbar and Wbar updates against gradient steps on the local "
                    "quadratic losses of the earlier SAM paper (Sec. 2.4, eq. 10-12)",
                    SamLocalLossesConfig, run, plot, paper="sam",
                    quick={"dataset": "digits", "seeds": 2, "epochs": 1.0, "batch_size": 64, "evals": 2,
                           "hidden": (64, 64, 64), "sam_lr": 0.05}))
