"""curl-fig2: analytic phase diagrams of the solution manifold's stability over (c, alpha_h) and (c, alpha_r).

Theory: left edge of spec(||W2||^2 D1 + W1^T D2 W1) from free probability (alpha_h: Blue function / quartic
eq. 117-125; alpha_r: generalised Marchenko-Pastur), boundary alpha*(c) where it crosses 0. Check: the
critical fraction found in sampled networks on the manifold (bisection on the number of flipped neurons,
lambda_min of X = -largest non-zero Jacobian eigenvalue, eq. 12) at M + N = ``check_size``, and the full
(NM + N)-dimensional Jacobian of one sampled network whose largest real eigenvalue is compared with eq. 12.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import optimize

from ...analysis import curl_theory as ct
from ...plotting import figure, save, spread_label
from ...settings import SettingError, setting
from .common import claim, fmt
from ..base import Experiment, RunContext, register

# The paper's Fig. 2 claims (declared in plasticlab.claims.curl) read the measurements below.
SPAN_ALPHAS = tuple(round(0.05 * k, 2) for k in range(1, 9))   # alpha* levels 0.05 ... 0.40 of the span measure
C_TO_ZERO = 1e-4                                               # "c -> 0" of the alpha*_r limit

MAX_JACOBIAN_DIM = 20_000   # the full Jacobian (M N + N dimensions) is dense and all its eigenvalues are computed


@dataclass
class CurlTheoryConfig:
    c_min: float = setting(0.05, gt=0, doc="smallest compression ratio c = M/N of the phase diagrams")
    c_max: float = setting(3.0, gt=0, doc="largest compression ratio c = M/N (> c_min; log-spaced grid)")
    n_c: int = setting(60, ge=1, le=10_000, doc="grid points in c")
    n_alpha: int = setting(41, ge=1, le=10_000, doc="grid points in alpha over [0, 1]")
    check_cs_hidden: tuple[float, ...] = setting((0.3, 0.35, 0.4, 0.5), gt=0, allow_empty=True,
                                                 doc="compression ratios of the sampled alpha_h boundary check")
    check_cs_readout: tuple[float, ...] = setting((0.1, 0.2, 0.5, 1.0), gt=0, allow_empty=True,
                                                  doc="compression ratios of the sampled alpha_r boundary check")
    check_size: int = setting(1500, ge=2, le=20_000, doc="M + N of the sampled networks of the boundary check "
                                                         "(dense M x M eigenvalue problems)")
    seeds: int = setting(6, ge=1, le=1000, doc="sampled networks per checked compression ratio")
    jacobian_M: int = setting(24, ge=1, le=10_000, doc="M (inputs) of the network of the full-Jacobian check")
    jacobian_N: int = setting(48, ge=1, le=10_000, doc="N (hidden neurons) of the network of the full-Jacobian "
                                                      f"check (M N + N <= {MAX_JACOBIAN_DIM})")

    def validate(self) -> None:
        if not self.c_min < self.c_max:
            raise SettingError("c_max", self.c_max, f"a compression ratio > c_min = {self.c_min:g}")
        for key in ("check_cs_hidden", "check_cs_readout"):
            for c in getattr(self, key):
                M = max(1, round(self.check_size * c / (1 + c)))      # as in curl_theory.sampled_boundary
                if self.check_size - M < 1:
                    raise SettingError(key, getattr(self, key), f"compression ratios that leave N >= 1 of the "
                                       f"check_size = {self.check_size} neurons", f"c = {c:g} gives N = 0")
        dim = self.jacobian_M * self.jacobian_N + self.jacobian_N
        if dim > MAX_JACOBIAN_DIM:
            raise SettingError("jacobian_N", self.jacobian_N, f"jacobian_M * jacobian_N + jacobian_N <= "
                               f"{MAX_JACOBIAN_DIM}", f"the Jacobian would have {dim} dimensions")


def run(cfg: CurlTheoryConfig, ctx: RunContext) -> dict:
    cs = np.geomspace(cfg.c_min, cfg.c_max, cfg.n_c)
    alphas = np.linspace(0, 1, cfg.n_alpha)
    out = {"c": cs.tolist(), "alpha": alphas.tolist()}
    for layer in ("hidden", "readout"):
        out[f"boundary_{layer}"] = ct.boundary_curve(cs, layer).tolist()
        out[f"edge_{layer}"] = ctx.unit(f"edges-{layer}-{cfg.n_c}x{cfg.n_alpha}", lambda layer=layer: [
            [ct.left_edge(float(c), float(a), layer) for c in cs] for a in alphas])
    rows = []
    for layer, ccs in (("hidden", cfg.check_cs_hidden), ("readout", cfg.check_cs_readout)):
        for c in ccs:
            res = ctx.unit(f"sampled-{layer}-c={c}-size={cfg.check_size}-seeds={cfg.seeds}",
                           lambda c=c, layer=layer: ct.sampled_boundary(c, cfg.check_size, layer, cfg.seeds, seed=11))
            th = ct.boundary(float(c), layer)
            rows.append({"layer": layer, "c": float(c), "size": cfg.check_size, "theory_alpha": th,
                         "sampled_alpha": res[0], "sampled_se": res[1], "abs_diff": abs(res[0] - th)})
            ctx.log(f"{layer} c={c}: theory alpha*={th:.4f}, sampled {res[0]:.4f} +- {res[1]:.4f} (M+N={cfg.check_size})")

    def full_jacobian_check() -> dict:
        rng = np.random.default_rng(5)
        M, N = cfg.jacobian_M, cfg.jacobian_N
        W1, W2 = ct.sample_weights(rng, M, N)
        res = {}
        for layer, a in (("hidden", 0.3), ("readout", 0.1)):
            d1, d2 = np.ones(M), np.ones(N)
            if layer == "hidden":
                d1[: round(a * M)] = -1
            else:
                d2[: round(a * N)] = -1
            ev = np.linalg.eigvals(ct.jacobian(W1, W2, W2 @ W1, d1, d2))
            ev = ev[np.abs(ev) > 1e-8]                     # drop the MN + N - M zero modes along the manifold
            pred = ct.manifold_eigenvalues(W1, W2, d1, d2)
            res[layer] = {"alpha": a, "max_real_jacobian": float(ev.real.max()), "max_pred_eq12": float(pred.max()),
                          "n_nonzero": int(len(ev)),
                          "max_imag": float(np.abs(ev.imag).max()), "dim": M * N + N,
                          "theory_edge_X": ct.left_edge(M / N, a, layer)}
        return res

    out["jacobian_check"] = ctx.unit(f"jacobian-{cfg.jacobian_M}x{cfg.jacobian_N}", full_jacobian_check)
    for k, v in out["jacobian_check"].items():
        ctx.log(f"full Jacobian ({v['dim']} dims, {k}): max Re of non-zero lambda = {v['max_real_jacobian']:.5f}, eq. 12: "
                f"{v['max_pred_eq12']:.5f}")
    out["measurements"] = measurements(out)
    if rows:
        out["paper"] = paper_rows(rows)
    return {"rows": rows, **out}


def _c_where(alpha: float, layer: str, lo: float = 1e-4, hi: float = 10.0) -> float:
    """The compression ratio c with alpha*(c) = alpha (alpha* decreases in c), by bisection on the theory."""
    return float(optimize.brentq(lambda c: ct.boundary(float(c), layer) - alpha, lo, hi, xtol=1e-4))


def measurements(out: dict) -> dict[str, list[float]]:
    """What the Fig. 2 claims read (the theory is deterministic: one value, or one value per c / per alpha level).

    - ``hidden/c_at_alpha_star=0.5``: where the alpha_h boundary sits (the middle of its transition);
    - ``<layer>/dlog10c_per_0.05_alpha``: how far (in log10 c) the boundary moves per 0.05 of alpha, at the levels
      ``SPAN_ALPHAS`` (small: a weak dependence on alpha; large: a strong one);
    - ``readout/alpha_star_c->0``: alpha*_r at c = ``C_TO_ZERO``;
    - ``<layer>/alpha_star_c<1`` / ``_c>1``: alpha* over the grid's expansive / compressive values of c.
    """
    cs = np.asarray(out["c"])
    m = {"hidden/c_at_alpha_star=0.5": [_c_where(0.5, "hidden")],
         "readout/alpha_star_c->0": [ct.boundary(C_TO_ZERO, "readout")]}
    for layer in ("hidden", "readout"):
        c_at = np.log10([_c_where(a, layer) for a in SPAN_ALPHAS])
        m[f"{layer}/dlog10c_per_0.05_alpha"] = (-np.diff(c_at)).tolist()
        b = np.asarray(out[f"boundary_{layer}"])
        m[f"{layer}/alpha_star_c<1"] = b[cs < 1].tolist()
        m[f"{layer}/alpha_star_c>1"] = b[cs > 1].tolist()
    return m


def paper_rows(rows: list[dict]) -> list[dict]:
    """The one check that is not a paper claim (the paper gives no sampled numbers): our random-matrix boundary
    beside the critical fraction of sampled finite networks (eq. 12, 14)."""
    if not rows:
        return []
    checks = "; ".join(f"{r['layer']} c={r['c']:g}: sampled {fmt(r['sampled_alpha'])} vs theory "
                       f"{fmt(r['theory_alpha'])}" for r in rows)
    return [claim("random-matrix boundary matches sampled networks (|sampled - theory| < 0.05 at every checked c)",
                  bool(all(r["abs_diff"] < 0.05 for r in rows)), where="Fig. 2, eq. 12, 14",
                  note=f"M + N = {rows[0]['size']}: " + checks)]


def plot(results: dict, out: Path) -> None:
    cs, alphas = np.asarray(results["c"]), np.asarray(results["alpha"])
    fig, ax = figure(1, 2, size=(4.6, 3.8))
    for k, layer in enumerate(("hidden", "readout")):
        a = ax[0, k]
        E = np.asarray(results[f"edge_{layer}"], float)
        a.pcolormesh(cs, alphas, (E > 0).astype(float), shading="auto", cmap="RdBu", vmin=-0.5, vmax=1.5)
        a.plot(cs, results[f"boundary_{layer}"], "k-", lw=2, label="alpha*(c)")
        rs = [r for r in results["rows"] if r["layer"] == layer]
        a.errorbar([r["c"] for r in rs], [r["sampled_alpha"] for r in rs], [r["sampled_se"] for r in rs], fmt="o",
                   color="orange", label=spread_label("sampled X", results["config"]["seeds"], "SE"))
        a.set_xscale("log")
        a.set_xlabel("c = M/N")
        a.set_ylabel("alpha_h" if layer == "hidden" else "alpha_r")
        a.set_title(f"{layer} flips: stable (blue) / unstable (red)", fontsize=9)
        a.legend(fontsize=7)
    save(fig, out / "fig2_phase.png")


register(Experiment("curl-fig2", "analytic stability phase diagrams over (c, alpha_h) and (c, alpha_r) from random "
                    "matrix theory, checked against sampled spectra and a full Jacobian",
                    CurlTheoryConfig, run, plot, paper="curl",
                    quick={"n_c": 25, "n_alpha": 15, "check_cs_hidden": (0.4, 0.5), "check_cs_readout": (0.1, 0.2),
                           "check_size": 400, "seeds": 3, "jacobian_M": 10, "jacobian_N": 20}))
