"""curl-fig1: the two-neuron toy model (eq. 7-9): phase portrait, trajectories and loss curves (Fig. 1).

Gradient flow w1' = w2 E, w2' = w1 E and curl flow w1' = w2 E, w2' = -w1 E (E = s - w1 w2) are integrated
with scipy's solve_ivp from the same initial points; we record the time to reach loss < ``tol`` and
whether curl flow first ascends the loss, and check the Jacobian's eigenvalues (eq. 9) at the origin
(+-i s) and on the manifold (0, w1^2 - w2^2). The default inits include (1.5, 0.3), next to the half of the
manifold that curl flow destabilises (|w1| > |w2|), where curl flow ascends the loss before converging (Fig. 1c).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.integrate import solve_ivp

from ...analysis.curl_theory import toy_flow, toy_jacobian, toy_loss
from ...plotting import figure, save
from ...settings import SettingError, setting
from .common import claim
from ..base import Experiment, RunContext, register


@dataclass
class CurlToyConfig:
    s: float = setting(1.0, gt=0, doc="teacher product s of the toy model (solution manifold w1 w2 = s)")
    inits: tuple[float, ...] = setting((1.3, -1.25, 1.5, -1.0, 1.2, -1.1, 1.0, -1.3, 2.0, -1.5, 0.2, 1.5, 1.5, 0.3,
                                        0.5, 0.4, 0.3, 0.2, -0.4, -0.5),
                                       doc="initial weights as flat (w1, w2) pairs (an even number of entries, "
                                           "any sign)")
    t_max: float = setting(60.0, gt=0, le=10_000, doc="integration time of each trajectory")
    n_t: int = setting(600, ge=10, le=1_000_000, doc="time points recorded per trajectory (the first tenth is "
                                                     "checked for an initial ascent)")
    tol: float = setting(1e-6, gt=0, doc="loss threshold of the time to convergence")
    grid: int = setting(25, ge=2, le=1000, affects_result=False,
                        doc="points per axis of the plotted curl flow field (plot only)")
    seeds: int = setting(1, ge=1, le=1000, affects_result=False,
                         doc="unused: the toy model is deterministic; kept for the framework")

    def validate(self) -> None:
        if len(self.inits) % 2:
            raise SettingError("inits", self.inits, "an even number of entries: flat (w1, w2) pairs",
                               f"{len(self.inits)} numbers")


def _integrate(w0, s: float, flip: bool, t_max: float, n_t: int) -> tuple[np.ndarray, np.ndarray]:
    t = np.linspace(0, t_max, n_t)
    sol = solve_ivp(lambda _, w: np.array(toy_flow(w[0], w[1], s, flip)), (0, t_max), np.asarray(w0, float),
                    t_eval=t, rtol=1e-9, atol=1e-12)
    return sol.t, sol.y.T


def run(cfg: CurlToyConfig, ctx: RunContext) -> dict:
    if len(cfg.inits) % 2:
        raise ValueError(f"inits must be flat (w1, w2) pairs, got {len(cfg.inits)} numbers")
    pairs = np.asarray(cfg.inits, float).reshape(-1, 2)
    rows, traj = [], []
    for w0 in pairs:
        item = {"w0": w0.tolist()}
        for name, flip in (("gd", False), ("curl", True)):
            t, w = _integrate(w0, cfg.s, flip, cfg.t_max, cfg.n_t)
            loss = toy_loss(w[:, 0], w[:, 1], cfg.s)
            hit = np.nonzero(loss < cfg.tol)[0]
            t_hit = float(t[hit[0]]) if len(hit) else float("inf")
            rows.append({"w1_0": float(w0[0]), "w2_0": float(w0[1]), "rule": name, "time_to_tol": t_hit,
                         "final_loss": float(loss[-1]), "ascends_first": bool(np.max(loss[: len(loss) // 10]) > loss[0] + 1e-9),
                         "final_w1": float(w[-1, 0]), "final_w2": float(w[-1, 1]),
                         "final_on_stable_half": bool(abs(w[-1, 1]) > abs(w[-1, 0]))})
            item[name] = {"t": t.tolist(), "w": w.tolist(), "loss": loss.tolist()}
        traj.append(item)
    # eigenvalue checks of eq. 9
    ev0 = np.linalg.eigvals(toy_jacobian(0.0, 0.0, cfg.s))
    w1 = np.array([0.5, 1.0, 2.0])
    evm = [np.sort(np.linalg.eigvals(toy_jacobian(a, cfg.s / a, cfg.s)).real).tolist() for a in w1]
    checks = {"origin_eigenvalues": [str(complex(np.round(v, 12))) for v in ev0],
              "manifold_points": [[float(a), float(cfg.s / a)] for a in w1], "manifold_eigenvalues": evm,
              "predicted_nonzero": [float(a * a - (cfg.s / a) ** 2) for a in w1]}
    for r in rows:
        ctx.log(f"init ({r['w1_0']}, {r['w2_0']}) {r['rule']}: time to loss<{cfg.tol:g} = {r['time_to_tol']:.3g}, "
                f"final loss {r['final_loss']:.2e}")
    return {"rows": rows, "trajectories": traj, "checks": checks, "measurements": measurements(rows, ev0, cfg),
            "paper": paper_rows(rows)}


def _log10(x: float) -> float:
    return float(np.log10(max(x, 1e-300))) if np.isfinite(x) else float("nan")


def measurements(rows: list[dict], origin_eigenvalues: np.ndarray, cfg: CurlToyConfig) -> dict[str, list[float]]:
    """What the Fig. 1 / eq. 9 claims read:

    - ``origin/abs_real_eigenvalue/s``, ``origin/abs_imag_eigenvalue/s``: per eigenvalue at the origin (paper:
      +-i s, a centre);
    - ``manifold/lambda2_rel_error``: (lambda_2 - (w1^2 - w2^2)) / |w1^2 - w2^2| at three points of w1 w2 = s;
    - ``near_saddle/<rule>/log10_time_to_tol``: per init near the stable manifold of the origin's saddle (w1 w2 < 0,
      w1^2 + w2^2 > s), log10 of the time to loss < tol (NaN: never);
    - ``small_init/<rule>/log10_final_loss``: per init inside w1^2 + w2^2 < s, log10 of the final loss.
    """
    ev = np.asarray(origin_eigenvalues)
    w1 = np.array([0.5, 2.0, 3.0]) * np.sqrt(cfg.s)     # off w1 = w2, where lambda_2 = 0
    rel = []
    for a in w1:
        lam = np.linalg.eigvals(toy_jacobian(a, cfg.s / a, cfg.s)).real
        pred = a * a - (cfg.s / a) ** 2
        rel.append(float((lam[np.argmax(np.abs(lam))] - pred) / abs(pred)) if pred else float("nan"))
    m = {"origin/abs_real_eigenvalue/s": (np.abs(ev.real) / cfg.s).tolist(),
         "origin/abs_imag_eigenvalue/s": (np.abs(ev.imag) / cfg.s).tolist(),
         "manifold/lambda2_rel_error": rel}
    for r in rows:
        w1_0, w2_0 = r["w1_0"], r["w2_0"]
        if w1_0 * w2_0 < 0 and w1_0 ** 2 + w2_0 ** 2 > cfg.s:
            m.setdefault(f"near_saddle/{r['rule']}/log10_time_to_tol", []).append(_log10(r["time_to_tol"]))
        if w1_0 ** 2 + w2_0 ** 2 < cfg.s:
            m.setdefault(f"small_init/{r['rule']}/log10_final_loss", []).append(_log10(r["final_loss"]))
    return m


def paper_rows(rows: list[dict]) -> list[dict]:
    """The one Fig. 1 statement that is not yet a claim ("in some cases" is about single deterministic
    trajectories, not a statistic over seeds): curl flow first ascends the loss, then converges, from some init."""
    by = {(r["w1_0"], r["w2_0"], r["rule"]): r for r in rows}
    inits = sorted({(r["w1_0"], r["w2_0"]) for r in rows})
    conv = [w for w in inits if np.isfinite(by[(*w, "curl")]["time_to_tol"])]
    ascend = [w for w in conv if by[(*w, "curl")]["ascends_first"]]
    show = lambda ws: ", ".join(f"({a:g}, {b:g})" for a, b in ws) or "none"  # noqa: E731
    return [claim("curl flow first ascends the loss, then converges, from some init", bool(ascend),
                  where="Fig. 1c (inset)", note=f"converging curl inits: {show(conv)}; ascending first: {show(ascend)}")]


def plot(results: dict, out: Path) -> None:
    cfg = results["config"]
    s = cfg["s"]
    fig, ax = figure(1, 2, size=(5.0, 4.2))
    a = ax[0, 0]
    g = np.linspace(-2, 2, 201)
    W1, W2 = np.meshgrid(g, g)
    a.pcolormesh(W1, W2, np.log10(toy_loss(W1, W2, s) + 1e-6), shading="auto", cmap="Greys")
    gq = np.linspace(-2, 2, cfg["grid"])
    Q1, Q2 = np.meshgrid(gq, gq)
    U, V = toy_flow(Q1, Q2, s, True)
    a.streamplot(Q1, Q2, U, V, color="violet", density=0.8, linewidth=0.6)
    x = np.linspace(0.05, 2, 100)
    for sg in (1, -1):
        a.plot(sg * x, sg * s / x, "darkred", lw=1.5)
    th = np.linspace(0, 2 * np.pi, 200)
    a.plot(np.sqrt(s) * np.cos(th), np.sqrt(s) * np.sin(th), "k--", lw=0.8, label="w1^2 + w2^2 = s")
    for k, tr in enumerate(results["trajectories"]):
        for name, col in (("gd", "indigo"), ("curl", "orchid")):
            w = np.asarray(tr[name]["w"])
            a.plot(w[:, 0], w[:, 1], color=col, lw=1.5, label=name if k == 0 else None)
    a.set_xlim(-2, 2)
    a.set_ylim(-2, 2)
    a.set_xlabel("w1")
    a.set_ylabel("w2")
    a.legend(fontsize=7, loc="lower left")
    b = ax[0, 1]
    for k, tr in enumerate(results["trajectories"]):
        for name, ls in (("gd", "-"), ("curl", "--")):
            b.semilogy(tr[name]["t"], np.maximum(tr[name]["loss"], 1e-16), ls, label=f"{name} init {k}")
    b.set_xlabel("time")
    b.set_ylabel("loss")
    b.legend(fontsize=6)
    save(fig, out / "fig1_toy.png")


register(Experiment("curl-fig1", "two-neuron toy model: curl-flow phase portrait over the log loss, trajectories "
                    "and loss curves of gradient vs curl flow, Jacobian eigenvalues (eq. 7-9)",
                    CurlToyConfig, run, plot, paper="curl", quick={"n_t": 300, "grid": 15}))
