"""oja-fig2: what the layers of the 10-layer net keep of the input, BP vs BP+Oja (Oja paper Fig. 2, S2, S4/S5).

After one online pass, on the test set:
* residual per layer (eq. 5), r_l = mean ||h_{l-1} - W_l^T h_l||^2, mean and 98% CI over seeds;
* optimal linear maps M_l (eq. 8-9, least squares on the test set) and the recursive reconstruction
  of the input from the last hidden layer (eq. 10), shown as images for a few test digits (seed 0);
* cumulative PCA explained variance of the activations of every hidden layer and of their reconstructions
  (Fig. 2d shows layer 1, S2 all layers), with the input's curve as reference;
* reconstruction through the transposed weights, hhat_{l-1} = W_l^T hhat_l (S5), as images and its error.

Measurements (claims in ``plasticlab.claims.oja``), per seed: ``depth=<d>/<rule>/residual_l<l>``,
``.../recon_rel_mse`` and ``.../recon_T_rel_mse`` (MSE per image / mean ||x||^2 of the test images: 1 = no better
than reconstructing every image as 0), ``.../pca10_gap_layer1`` (|layer-1 cumulative PCA variance at 10
components - the input's|) and ``legibility_threshold_rel_mse`` (LEGIBLE_REL_MSE per seed).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np

from ...analysis.representations import optimal_linear_maps, pca_cumulative, reconstruct
from ...settings import setting
from .common import OjaFFConfig, ci, final_rows, load_data, rule_color, train_rule
from ..base import Experiment, RunContext, register


@dataclass
class OjaFig2Config(OjaFFConfig):
    n_images: int = setting(8, ge=1, le=100, doc="test images reconstructed and shown (seed 0; one figure column "
                                                   "each, at most n_test)")
    n_pcs: int = setting(50, ge=1, le=10_000, doc="principal components of the cumulative explained-variance "
                                                  "curves (at most the input's feature count)")


def _analyse(cfg: OjaFig2Config, data, spec: str) -> dict:
    res = train_rule(cfg, data, spec, probe=True, keep_state=True)
    state, trainer = res.pop("state"), res.pop("trainer")
    x = np.asarray(data.x_test, np.float32)
    forward = jax.jit(trainer.net.forward)
    L = trainer.net.n_layers
    top = L - 1  # last hidden layer
    pcs = min(cfg.n_pcs, x.shape[1])
    act_pca, rec_pca, rec_err, recT_err, images, imagesT = [], [], [], [], None, None
    for s in range(cfg.seeds):
        params = jax.tree.map(lambda a: a[s], state.params)  # seed s
        H = [np.asarray(h, np.float64) for h in forward(params, x).h]
        maps = optimal_linear_maps(H, upto=top)
        rec = reconstruct(H[top], maps)  # hhat_0 .. hhat_top
        recT = reconstruct(H[top], [np.asarray(w, np.float64).T for w in params.W[:top]])
        act_pca.append([pca_cumulative(H[l], pcs) for l in range(1, top + 1)])
        rec_pca.append([pca_cumulative(rec[l], pcs) for l in range(0, top)])
        rec_err.append(float(np.mean(np.sum((rec[0] - H[0]) ** 2, -1))))
        recT_err.append(float(np.mean(np.sum((recT[0] - H[0]) ** 2, -1))))
        if s == 0:
            images = rec[0][: cfg.n_images]
            imagesT = recT[0][: cfg.n_images]
    # PCA curves can be shorter than n_pcs for narrow layers: pad with NaN to stack
    def pad(c):
        return np.pad(c, (0, pcs - len(c)), constant_values=np.nan)

    acc = np.asarray(res["accuracy"])
    return {"samples": res["samples"], "accuracy": res["accuracy"], "final_accuracy": acc[:, -1].tolist(),
            "residual_final": np.asarray(res["residual"])[:, -1].tolist(),  # (seeds, L)
            "residual_curve": res["residual"], "norm_curve": res["norm"],
            "act_pca": np.asarray([[pad(c) for c in a] for a in act_pca]).tolist(),  # (seeds, top, pcs)
            "rec_pca": np.asarray([[pad(c) for c in a] for a in rec_pca]).tolist(),  # (seeds, top, pcs): layers 0..top-1
            "recon_mse": rec_err, "recon_T_mse": recT_err,
            "images": images.tolist(), "images_T": imagesT.tolist()}


def run(cfg: OjaFig2Config, ctx: RunContext) -> dict:
    data = load_data(cfg.dataset, ctx.data_dir, cfg.n_train, cfg.n_test, cfg.data_seed)
    rows, per_rule = [], {}
    for spec in cfg.rules:
        ctx.log(f"{spec}: training {cfg.depth}-layer net, {cfg.seeds} seeds vmapped, then test-set analyses")
        r = ctx.unit(f"depth={cfg.depth}-rule={spec}", lambda spec=spec: _analyse(cfg, data, spec))
        res_f = np.asarray(r["residual_final"])
        per_rule[spec] = {**r, "residual_ci": ci(res_f), "recon_mse_ci": ci(np.asarray(r["recon_mse"])),
                          "recon_T_mse_ci": ci(np.asarray(r["recon_T_mse"])),
                          "act_pca_ci": ci(np.asarray(r["act_pca"])), "rec_pca_ci": ci(np.asarray(r["rec_pca"]))}
        rows += final_rows({"accuracy": np.asarray(r["final_accuracy"])[:, None]}, spec, cfg)
        for s, (rv, m, mt) in enumerate(zip(res_f, r["recon_mse"], r["recon_T_mse"])):
            rows[-cfg.seeds + s].update({f"residual_l{l + 1}": float(v) for l, v in enumerate(rv)})
            rows[-cfg.seeds + s].update({"recon_mse": m, "recon_T_mse": mt})
        ctx.log(f"  residual per layer {np.round(res_f.mean(0), 3).tolist()}; input reconstruction MSE "
                f"(optimal maps) {np.mean(r['recon_mse']):.2f}, (W^T) {np.mean(r['recon_T_mse']):.3g}")
    x = np.asarray(data.x_test, np.float64)
    input_pca = pca_cumulative(x, min(cfg.n_pcs, x.shape[1])).tolist()
    originals = x[: cfg.n_images].tolist()
    energy = float(np.mean(np.sum(x ** 2, -1)))  # mean ||x||^2: the MSE of reconstructing every image by 0
    measurements = fig2_measurements(per_rule, input_pca, energy, cfg.depth, cfg.seeds)
    return {"rows": rows, "rules": per_rule, "input_pca": input_pca, "originals": originals,
            "image_shape": list(data.image_shape) if data.image_shape else None,
            "signal_energy": energy, "measurements": measurements}


LEGIBLE_REL_MSE = 0.5  # a reconstruction is legible when its error energy is below half the digit's energy
PCA_K = 10  # Fig. 2d: the cumulative explained variance compared at this many components


def fig2_measurements(per_rule: dict, input_pca: list[float], energy: float, depth: int, seeds: int) -> dict:
    """Per-seed inputs of the Fig. 2 / S5 claims: residual per layer, relative reconstruction MSE (optimal maps and
    W^T; MSE / mean ||x||^2 of the test images), the layer-1 PCA gap to the input at PCA_K components, and the
    legibility threshold LEGIBLE_REL_MSE (once per seed, the reference of the legibility claims)."""
    kk = min(PCA_K, len(input_pca))
    m: dict[str, list] = {"legibility_threshold_rel_mse": [LEGIBLE_REL_MSE] * seeds}
    for spec, r in per_rule.items():
        p = f"depth={depth}/{spec}"
        res = np.asarray(r["residual_final"], float)  # (seeds, L)
        for l in range(res.shape[1]):
            m[f"{p}/residual_l{l + 1}"] = res[:, l].tolist()
        m[f"{p}/recon_rel_mse"] = (np.asarray(r["recon_mse"], float) / energy).tolist()
        m[f"{p}/recon_T_rel_mse"] = (np.asarray(r["recon_T_mse"], float) / energy).tolist()
        pc = np.asarray(r["act_pca"], float)[:, 0, kk - 1]
        m[f"{p}/pca{PCA_K}_gap_layer1"] = np.abs(pc - float(input_pca[kk - 1])).tolist()
    return m


def _f(v) -> np.ndarray:
    """JSON lists (None for NaN) -> float arrays."""
    return np.asarray(v, dtype=float)


def plot(results: dict, out: Path) -> None:
    from ...plotting import figure, save, spread_label

    rules = results["rules"]
    # (a) residual per layer
    fig, axes = figure(1, 2, size=(4.8, 3.6))
    ax = axes[0, 0]
    for spec, r in rules.items():
        c = r["residual_ci"]
        lay = np.arange(1, len(c["mean"]) + 1)
        ax.errorbar(lay, _f(c["mean"]), yerr=[_f(c["mean"]) - _f(c["lo"]), _f(c["hi"]) - _f(c["mean"])],
                    marker="o", label=spread_label(spec, results["config"]["seeds"], level=0.98), color=rule_color(spec),
                    capsize=3)
    ax.set_yscale("log")
    ax.set_xlabel("layer l")
    ax.set_ylabel("residual (eq. 5)")
    ax.set_title("Fig. 2a: residual per layer")
    ax.legend()
    # (d) cumulative PCA of layer-1 activations and reconstructions vs input
    ax = axes[0, 1]
    k = np.arange(1, len(results["input_pca"]) + 1)
    for r in rules.values():  # narrow layers have fewer components than n_pcs: pad their curves
        for key in ("act_pca_ci", "rec_pca_ci"):
            r[key] = {q: _f(v)[..., : len(k)] for q, v in r[key].items()}
    ax.plot(k, results["input_pca"], color="tab:green", label="input")
    for spec, r in rules.items():
        a, rc = r["act_pca_ci"], r["rec_pca_ci"]
        ax.plot(k, _f(a["mean"])[0], color=rule_color(spec),
                label=spread_label(f"{spec} layer 1", results["config"]["seeds"], level=0.98))
        ax.fill_between(k, _f(a["lo"])[0], _f(a["hi"])[0], color=rule_color(spec), alpha=0.2)
        ax.plot(k, _f(rc["mean"])[1], "--", color=rule_color(spec), label=f"{spec} layer 1 reconstructed")
    ax.set_xlabel("principal components")
    ax.set_ylabel("cumulative explained variance")
    ax.set_title("Fig. 2d")
    ax.legend(fontsize=7)
    save(fig, out / "fig2_residual_pca.png")
    # S2: every hidden layer
    fig, axes = figure(1, 2, size=(4.8, 3.6))
    for ax, key, title in ((axes[0, 0], "act_pca_ci", "S2a activations"), (axes[0, 1], "rec_pca_ci", "S2b reconstructions")):
        ax.plot(k, results["input_pca"], color="tab:green", lw=2, label="input")
        for spec, r in rules.items():
            m = _f(r[key]["mean"])
            for l in range(m.shape[0]):
                ax.plot(k, m[l], "-" if key == "act_pca_ci" else "--", color=rule_color(spec),
                        alpha=0.3 + 0.7 * (1 - l / max(1, m.shape[0])), label=spec if l == 0 else None)
        ax.set_xlabel("principal components")
        ax.set_ylabel("cumulative explained variance")
        ax.set_title(title + " (darker = shallower)")
        ax.legend(fontsize=7)
    save(fig, out / "figS2_pca_layers.png")
    # (c) and S5: image grids
    shape = results.get("image_shape")
    if shape:
        rows = [("input", results["originals"])]
        for spec, r in rules.items():
            rows += [(f"{spec} M", r["images"]), (f"{spec} W^T", r["images_T"])]
        n = len(results["originals"])
        fig, axes = figure(len(rows), n, size=(1.1, 1.2))
        for i, (name, imgs) in enumerate(rows):
            for j in range(n):
                ax = axes[i, j]
                img = np.asarray(imgs[j]).reshape(shape)
                ax.imshow(img.reshape(img.shape[:2]) if img.ndim == 3 and img.shape[2] == 1 else img, cmap="gray")
                ax.set_xticks([])
                ax.set_yticks([])
                if j == 0:
                    ax.set_ylabel(name, fontsize=7)
        save(fig, out / "fig2c_reconstructions.png")


register(Experiment("oja-fig2", "Oja paper Fig. 2/S2/S5: residuals, optimal-linear-map reconstructions, PCA spectra",
                    OjaFig2Config, run, plot, paper="oja",
                    quick={"dataset": "digits", "n_train": 400, "n_test": 400, "seeds": 3, "evals": 2}))
