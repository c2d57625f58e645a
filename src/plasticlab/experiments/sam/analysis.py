"""sam-analysis: Vbar Vbar^T and W W^T before/after training, effective rank, ||dVbar||, loss and cosine checks.

(SAM paper Fig. S1a-b and Theorem 1.) At every evaluation, on a fixed probe batch of the test set:
- ||Delta Vbar[k]||_F of the one-step SAM update and the training loss (Fig. S1b);
- the smallest eigenvalue of H[k] = Vbar[k] Vbar[k]^T (PSD check, eq. 4), its largest and its mean
  (tr H / d: the effective rate of W is lr times H, so max/mean measures how unevenly it is spread);
- cos(Delta_SAM W[k], Delta_SGD W[k]) with Delta_SGD W = -dLoss/dW (autograd as the reference),
  cos(Delta_SAM W[k], H[k] Delta_SGD W[k]) (the theorem's preconditioned form), decay terms left out, and
  cos(Delta_SAM W[k], R[k]) with R[k] a fixed random Gaussian matrix (the chance level of the first);
- the effective rank (Roy & Vetterli 2007: exp of the entropy of the normalised singular values) of
  W[k] and Vbar[k]. The matrices Vbar Vbar^T and W W^T of one seed are stored before and after;
- Lemma 1 (Vbar^{l-1} = (V^l)^T when V and Vbar are stationary): cos(V[k], Vbar[k-1]^T) and the relative gap
  ||V[k] - Vbar[k-1]^T|| / mean norm (``lemma1_gap``) for every level with both matrices.

The claims (``plasticlab.claims.sam``) read ``results["measurements"]``: per seed, the smallest over layers of the
mean cos(SAM, SGD) over training and the largest of the random one; ||Delta Vbar|| (mean over the hidden levels)
and the probe loss at fractions 0, 1/4, ... 1 of the training (Fig. S1b); the effective ranks of the hidden W and
Vbar before and after; Lemma 1's cosine and gap before and after (mean over the level pairs). H's smallest eigenvalue is kept in the rows for inspection, not as a claim: H = Vbar Vbar^T
is positive semidefinite by construction.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ...claims import sam as K
from ...plotting import curve_with_ci, figure, save
from ...rules.sam import SAM
from . import common as C
from .common import sam_setting
from ..base import Experiment, RunContext, register


def _on_host(fn, x: jax.Array, drop: int) -> jax.Array:
    """Evaluate the NumPy function ``fn`` on the host (batched over leading axes; ``drop`` trailing axes reduced
    to the result's last one). The probe runs eigvalsh/svd this way: those LAPACK calls inside the jitted,
    doubly vmapped probe intermittently deadlocked XLA's CPU runtime."""
    shape = x.shape[:-drop] + (min(x.shape[-2:]),)

    def nan_safe(a):  # a diverged seed's non-finite matrix gives NaNs (LAPACK would raise)
        a = np.asarray(a, np.float64)
        ok = np.isfinite(a).all(axis=(-2, -1))
        out = np.asarray(fn(np.where(ok[..., None, None], a, 0.0)), np.float32)
        out[~ok] = np.nan
        return out

    return jax.pure_callback(nan_safe, jax.ShapeDtypeStruct(shape, jnp.float32), x, vmap_method="expand_dims")


def effective_rank(m) -> jax.Array:
    """Roy & Vetterli (2007): exp(H(p)), p_i = s_i / sum_j s_j over the singular values s of ``m``."""
    s = _on_host(lambda a: np.linalg.svd(a, compute_uv=False), m, 2)
    p = s / jnp.maximum(jnp.sum(s), 1e-30)
    ent = -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0))
    return jnp.exp(ent)


def _cos(a, b):
    return jnp.sum(a * b) / jnp.maximum(jnp.linalg.norm(a) * jnp.linalg.norm(b), 1e-30)


def probe(tr, state, x, t) -> dict:
    """Per-layer measurements at one state on the probe batch (x, t); see the module docstring."""
    rule: SAM = tr.rule
    net, params, fb = tr.net, state.params, state.rule_state
    fwd = net.forward(params, x)
    e_out = tr.loss.error(fwd, t)
    nodecay = eqx_replace(rule, decay=0.0)
    dW, dfb = nodecay.deltas(net, params, fb, fwd, e_out)
    grads = jax.grad(lambda p: tr.loss.value(net.forward(p, x), t))(params)
    out = {"loss": tr.loss.value(fwd, t)}
    for k in range(net.n_layers):
        H = fb.Vbar[k] @ fb.Vbar[k].T
        sgd = -grads.W[k]
        out[f"dvbar_norm_{k}"] = jnp.linalg.norm(dfb.Vbar[k])
        eig = _on_host(np.linalg.eigvalsh, H, 2)
        out[f"h_min_eig_{k}"] = eig[..., 0]
        out[f"h_max_eig_{k}"] = eig[..., -1]
        out[f"h_mean_eig_{k}"] = jnp.trace(H) / H.shape[0]
        out[f"cos_sgd_{k}"] = _cos(dW[k], sgd)
        out[f"cos_hsgd_{k}"] = _cos(dW[k], H @ sgd)
        out[f"cos_rand_{k}"] = _cos(dW[k], jax.random.normal(jax.random.PRNGKey(1000 + k), dW[k].shape))
        out[f"erank_W_{k}"] = effective_rank(params.W[k])
        out[f"erank_Vbar_{k}"] = effective_rank(fb.Vbar[k])
    for k in lemma1_levels(fb):
        out[f"lemma1_cos_{k}"] = _cos(fb.V[k], fb.Vbar[k - 1].T)
        out[f"lemma1_gap_{k}"] = lemma1_gap(fb.V[k], fb.Vbar[k - 1])
    return out


def lemma1_levels(fb) -> list[int]:
    """The levels k with both V[k] and Vbar[k-1] built (Lemma 1 pairs them: Vbar[k-1] = V[k]^T at stationarity)."""
    return [k for k in range(1, len(fb.V)) if fb.V[k].size and fb.Vbar[k - 1].size]


def lemma1_gap(v, vbar_below) -> jax.Array:
    """||V[k] - Vbar[k-1]^T||_F / mean(||V[k]||_F, ||Vbar[k-1]||_F): 0 when Lemma 1's equality holds, about sqrt(2)
    for two independent random matrices of equal scale."""
    scale = 0.5 * (jnp.linalg.norm(v) + jnp.linalg.norm(vbar_below))
    return jnp.linalg.norm(v - vbar_below.T) / jnp.maximum(scale, 1e-30)


def eqx_replace(rule: SAM, **kw) -> SAM:
    import equinox as eqx

    for k, v in kw.items():
        rule = eqx.tree_at(lambda r: getattr(r, k), rule, v)
    return rule


@C.sam_config
class SamAnalysisConfig(C.SamConfig):
    """The paper shows SVHN with a width-60, 8-hidden-layer net; any data set and widths can be set here."""

    dataset: str = sam_setting("dataset", "mnist", doc="data set (any with class labels or binary label vectors; "
                                                         "the paper's: svhn)")
    hidden: tuple[int, ...] = sam_setting("hidden", (200, 200, 200), doc="hidden widths of the MLP (the paper's: "
                                                                         "8 x 60)")
    batch_size: int = sam_setting("batch_size", 256, doc="minibatch size (also the size of the probe batch)")
    evals: int = sam_setting("evals", 20, doc="probes over training (after the one at step 0)")
    on_divergence: str = sam_setting("on_divergence", "stop",
                                     doc='"stop": raise at the first diverged seed; "record": NaN the diverged seeds '
                                         'and go on (a finished unit is the same either way)')


def _matrices(state, seed_index: int = 0) -> dict:
    fb, W = state.rule_state, state.params.W
    out = {}
    for k in range(len(W)):
        vb = np.asarray(fb.Vbar[k])[0, seed_index]
        w = np.asarray(W[k])[0, seed_index]
        out[f"VbarVbarT_{k}"] = (vb @ vb.T).tolist()
        out[f"WWT_{k}"] = (w @ w.T).tolist()
    return out


def run(cfg: SamAnalysisConfig, ctx: RunContext) -> dict:
    data, unavailable = C.load_or_unavailable(cfg, ctx)
    if data is None:
        return unavailable

    def unit():
        res = C.train_at_own_rate(C.sam_trainer(cfg, data), data, cfg, probe=probe, keep_state=True)
        init_state = res.extra["init_state"]
        curves = {k: v[0].tolist() for k, v in res.curves.items()}
        return {"samples": res.samples, "curves": curves, "seeds": res.seeds, "divergences": res.divergences,
                "before": _matrices(init_state), "after": _matrices(res.final_state)}

    ctx.log(f"training SAM on {data.name} with probes ({cfg.seeds} seeds, {cfg.epochs:g} epochs)")
    res = ctx.unit("analysis", unit)
    n = len(cfg.hidden) + 1
    rows = []
    cur = {k: np.asarray(v, float) for k, v in res["curves"].items()}
    diverged = {d["seed"]: f"diverged at step {d['step']}: {d['matrix']}" for d in res.get("divergences") or []}
    for k in range(n):
        for i, s in enumerate(res["seeds"]):
            rows.append({"dataset": data.name, "layer": k + 1, "seed": s, "status": diverged.get(s, "ok"),
                         "cos_sgd_final": float(cur[f"cos_sgd_{k}"][i, -1]),
                         "cos_sgd_mean": float(np.nanmean(cur[f"cos_sgd_{k}"][i, 1:])),
                         "cos_hsgd_final": float(cur[f"cos_hsgd_{k}"][i, -1]),
                         "h_min_eig_min": float(np.nanmin(cur[f"h_min_eig_{k}"][i])),
                         "h_max_eig_final": float(cur[f"h_max_eig_{k}"][i, -1]),
                         "h_mean_eig_final": float(cur[f"h_mean_eig_{k}"][i, -1]),
                         "dvbar_norm_first": float(cur[f"dvbar_norm_{k}"][i, 0]),
                         "dvbar_norm_final": float(cur[f"dvbar_norm_{k}"][i, -1]),
                         "erank_W_before": float(cur[f"erank_W_{k}"][i, 0]),
                         "erank_W_after": float(cur[f"erank_W_{k}"][i, -1]),
                         "erank_Vbar_before": float(cur[f"erank_Vbar_{k}"][i, 0]),
                         "erank_Vbar_after": float(cur[f"erank_Vbar_{k}"][i, -1]),
                         "test_accuracy": float(cur.get("test_accuracy", cur.get("test_auc"))[i, -1])})

    def by_layer(key: str, layer: int) -> float:
        return float(np.mean([r[key] for r in rows if r["layer"] == layer]))

    ctx.log("mean cos(SAM, SGD) per layer: " + ", ".join(f"{k}: {by_layer('cos_sgd_mean', k):.3f}"
                                                           for k in range(1, n + 1)))
    ctx.log("final largest / mean eigenvalue of H per layer: " + ", ".join(
        f"{k}: {by_layer('h_max_eig_final', k):.3g} / {by_layer('h_mean_eig_final', k):.3g}" for k in range(1, n + 1)))
    return {"rows": rows, "samples": res["samples"], "curves": res["curves"], "before": res["before"],
            "after": res["after"], "measurements": measurements(cur, n)}


def measurements(cur: dict[str, np.ndarray], n: int) -> dict[str, list[float]]:
    """The per-seed inputs of the sam-analysis claims from the probe curves (seeds, probes) of ``n`` layers; the
    hidden levels are 0 .. n-2 (the output level's Vbar is the fixed identity)."""
    hidden = range(n - 1)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a diverged seed's NaN curves give NaN values
        over_training = lambda key: np.stack([np.nanmean(cur[f"{key}_{k}"][:, 1:], axis=1)  # noqa: E731
                                              for k in range(n)])  # (layers, seeds)
        out = {K.AN_COS_SGD: over_training("cos_sgd").min(axis=0), K.AN_COS_RANDOM: over_training("cos_rand").max(axis=0)}
        probes = cur["loss"].shape[1]
        for f in K.AN_FRACS:
            i = int(round(f * (probes - 1)))
            out[K.an_at(f, "dvbar_norm")] = np.mean([cur[f"dvbar_norm_{k}"][:, i] for k in hidden], axis=0)
            out[K.an_at(f, "loss")] = cur["loss"][:, i]
        for m in ("W", "Vbar"):
            out[K.an_erank(m, "before")] = np.mean([cur[f"erank_{m}_{k}"][:, 0] for k in hidden], axis=0)
            out[K.an_erank(m, "after")] = np.mean([cur[f"erank_{m}_{k}"][:, -1] for k in hidden], axis=0)
        pairs = [k for k in range(1, n) if f"lemma1_cos_{k}" in cur]
        if pairs:
            for what in ("cos", "gap"):
                for when, i in (("before", 0), ("after", -1)):
                    out[K.an_lemma1(what, when)] = np.mean([cur[f"lemma1_{what}_{k}"][:, i] for k in pairs], axis=0)
    return {k: [float(x) for x in np.asarray(v, float)] for k, v in out.items()}


def plot(results: dict, out: Path) -> None:
    if "curves" not in results:
        return
    import matplotlib.pyplot as plt

    cur, samples = results["curves"], np.asarray(results["samples"])
    n = len([k for k in cur if k.startswith("cos_sgd_")])
    pairs = [k for k in range(1, n + 1) if f"lemma1_cos_{k}" in cur]
    fig, axes = figure(1, 5 if pairs else 4, size=(4.2, 3.4))
    for k in range(n):
        curve_with_ci(axes[0, 0], samples, cur[f"cos_sgd_{k}"], label=f"layer {k + 1}")
        curve_with_ci(axes[0, 1], samples, cur[f"dvbar_norm_{k}"], label=f"layer {k + 1}")
        curve_with_ci(axes[0, 3], samples, cur[f"erank_Vbar_{k}"], label=f"Vbar layer {k + 1}")
    curve_with_ci(axes[0, 2], samples, cur["loss"], label="probe loss")
    for k in pairs:
        curve_with_ci(axes[0, 4], samples, cur[f"lemma1_cos_{k}"], label=f"V[{k}] vs Vbar[{k - 1}]^T")
    if pairs:
        axes[0, 4].set_title("Lemma 1: cos(V^l, Vbar^{l-1 T})")
    axes[0, 0].set_title("cos(SAM update, SGD update)")
    axes[0, 1].set_title("||Delta Vbar|| (one step)")
    axes[0, 2].set_title("loss")
    axes[0, 3].set_title("effective rank")
    for ax in axes[0]:
        ax.set_xlabel("training samples")
        ax.legend(fontsize=7)
    save(fig, out / "analysis_curves.png")
    keys = [k for k in results["after"] if k.startswith("VbarVbarT_") or k.startswith("WWT_")]
    keys = [k for k in keys if np.asarray(results["after"][k]).shape[0] > 1]
    fig, axes = plt.subplots(2, len(keys), figsize=(2.6 * len(keys), 5.2), squeeze=False)
    for j, k in enumerate(keys):
        for i, when in enumerate(("before", "after")):
            m = np.asarray(results[when][k], dtype=float)  # a diverged seed's matrix: None entries, drawn blank
            v = float(np.nanmax(np.abs(m))) if np.isfinite(m).any() else 1.0
            v = v if v > 0 else 1.0
            axes[i, j].imshow(m, cmap="RdBu_r", vmin=-v, vmax=v)
            axes[i, j].set_title(f"{k} {when}", fontsize=8)
            axes[i, j].axis("off")
    fig.tight_layout()
    fig.savefig(out / "matrices.png", dpi=110)
    plt.close(fig)


register(Experiment("sam-analysis", "Vbar Vbar^T and W W^T before/after, effective rank, ||dVbar||, loss and "
                    "cos(SAM, SGD) checks (SAM paper, Fig. S1a-b, Theorem 1)", SamAnalysisConfig, run, plot,
                    paper="sam", quick={"dataset": "digits", "seeds": 2, "epochs": 3.0, "batch_size": 64,
                                        "evals": 3, "hidden": (64, 64, 64), "sam_lr": 0.05}))
