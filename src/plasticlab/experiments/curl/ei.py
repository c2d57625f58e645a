"""curl-ei: non-gradient (curl) part of Hebbian learning flows in E-I and Hebbian/anti-Hebbian RNNs (sec. 2, app. A).

For a linear RNN with steady state y* = (I - W D)^{-1} f and Hebbian plasticity with decay, the learning flow
to first order in W is F(W) = Sigma + W D Sigma + Sigma D W^T - gamma W (eq. 2), Sigma = <f f^T>; with
sign-diverse plasticity F(W) = (Sigma + Sigma W^T + W Sigma) * M (eq. 24). Both keep W symmetric, and, as in
appendix A, we measure the antisymmetric share ||A|| / ||P J P|| of the Jacobian restricted to symmetric W
(P: projector onto symmetric matrices): 0 exactly for a gradient flow. Conditions: all excitatory; E-I with
input to every neuron; E-I where inhibitory neurons receive no input (curl predicted to vanish); and
Hebbian/anti-Hebbian fractions. The exact steady-state flow (all orders in W) is reported too. The
Jacobian comes from jax.jacobian of the flow (the first-order E-I Jacobian is also given analytically, eq. 35).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ...analysis import curl_theory as ct
from ...plotting import figure, save
from ...settings import SettingError, setting
from ..base import Experiment, RunContext, register

@dataclass
class CurlEIConfig:
    n: int = setting(12, ge=2, le=100, doc="neurons of the recurrent network (Jacobians are n^2 x n^2: memory "
                                           "grows as n^4)")
    n_inputs: int = setting(30, ge=1, le=100_000, doc="input dimensions of the feedforward drive f (Sigma = "
                                                      "<f f^T> over them)")
    inhibitory_fractions: tuple[float, ...] = setting(
        (0.0, 0.1, 0.25, 0.5), ge=0, le=1, allow_empty=True,
        doc="fractions of inhibitory neurons (D = -1) of the E-I networks; empty: no E-I network")
    antihebbian_fractions: tuple[float, ...] = setting(
        (0.0, 0.1, 0.25, 0.5), ge=0, le=1, allow_empty=True,
        doc="probabilities of an anti-Hebbian synapse pair (M_ij = M_ji = -1) of the Hebbian/anti-Hebbian "
            "networks; empty: none of them")
    weight_scale: float = setting(0.1, ge=0, doc="scale of the symmetric non-negative W the Jacobian is taken at: "
                                                 "W = |A + A^T| / 2, A ~ N(0, 1) weight_scale / sqrt(n)")
    gamma: float = setting(0.1, ge=0, doc="weight decay rate of the E-I flow (eq. 2); 0 = no decay")
    exact_scales: tuple[float, ...] = setting((0.01, 0.03, 0.1, 0.3), gt=0, allow_empty=True,
                                              doc="weight scales at which the exact steady-state flow's curl share "
                                                  "is measured when inhibitory neurons get no input (its order in W)")
    seeds: int = setting(5, ge=1, le=1000, doc="independent networks (random drive and W), one unit each")
    seed: int = setting(0, ge=0, le=2**32 - 1, doc="base seed (network k uses NumPy seed 1000 seed + k)")

    def validate(self) -> None:
        if not self.inhibitory_fractions and not self.antihebbian_fractions:
            raise SettingError("inhibitory_fractions", self.inhibitory_fractions,
                               "a non-empty list when antihebbian_fractions is empty", "nothing to run")


def _jac(fn, W):
    n = W.shape[0]
    return np.asarray(jax.jacobian(lambda w: fn(w.reshape(n, n)).ravel())(jnp.asarray(W).ravel()))


def _one(cfg: CurlEIConfig, seed: int) -> list[dict]:
    rng = np.random.default_rng(cfg.seed * 1000 + seed)
    n = cfg.n
    F = rng.normal(size=(n, cfg.n_inputs))
    A = rng.normal(size=(n, n)) * cfg.weight_scale / np.sqrt(n)
    W = np.abs(A + A.T) / 2                                 # symmetric, non-negative magnitudes
    rows = []
    for p in cfg.inhibitory_fractions:
        d = np.ones(n)
        d[: int(round(p * n))] = -1
        for inputs in ("all", "excitatory_only"):
            if p == 0 and inputs == "excitatory_only":
                continue
            f = F.copy()
            if inputs == "excitatory_only":
                f[d < 0] = 0.0
            S = f @ f.T / cfg.n_inputs
            Sj, dj = jnp.asarray(S), jnp.asarray(d)
            J1 = _jac(lambda w: ct.ei_flow(w, Sj, dj, cfg.gamma), W)
            Je = _jac(lambda w: ct.ei_flow_exact(w, Sj, dj, cfg.gamma), W)
            rows.append({"network": "E-I", "fraction": float(p), "inputs": inputs, "seed": seed,
                         "curl_first_order": ct.curl_share_symmetric(J1, n),
                         "curl_exact_steady_state": ct.curl_share_symmetric(Je, n),
                         "curl_general_W": ct.curl_fraction(J1),
                         "analytic_vs_autograd": float(np.abs(J1 - ct.ei_jacobian(S, d, cfg.gamma)).max())})
    top = max(cfg.inhibitory_fractions, default=0.0)
    if top > 0 and cfg.exact_scales:  # the exact flow's curl without input to inhibitory neurons, against ||W||
        d = np.ones(n)
        d[: int(round(top * n))] = -1
        f = F.copy()
        f[d < 0] = 0.0
        Sj, dj = jnp.asarray(f @ f.T / cfg.n_inputs), jnp.asarray(d)
        for scale in cfg.exact_scales:
            Ws = W * (scale / cfg.weight_scale) if cfg.weight_scale > 0 else W
            Je = _jac(lambda w: ct.ei_flow_exact(w, Sj, dj, cfg.gamma), Ws)
            rows.append({"network": "E-I exact vs scale", "fraction": float(top), "inputs": "excitatory_only",
                         "seed": seed, "weight_scale": float(scale),
                         "curl_exact_steady_state": ct.curl_share_symmetric(Je, n)})
    S = F @ F.T / cfg.n_inputs
    for p in cfg.antihebbian_fractions:
        U = np.triu(rng.random((n, n)) < p, 0)
        Msign = np.where(U | U.T, -1.0, 1.0)                # symmetric sign pattern, fraction ~p anti-Hebbian
        Jh = _jac(lambda w: ct.hebb_antihebb_flow(w, jnp.asarray(S), jnp.asarray(Msign)), W)
        rows.append({"network": "Hebb/anti-Hebb", "fraction": float(p), "inputs": "all", "seed": seed,
                     "curl_first_order": ct.curl_share_symmetric(Jh, n), "curl_exact_steady_state": float("nan"),
                     "curl_general_W": ct.curl_fraction(Jh), "analytic_vs_autograd": float("nan")})
    return rows


def run(cfg: CurlEIConfig, ctx: RunContext) -> dict:
    if cfg.n < 2:
        raise ValueError(f"need at least 2 neurons, got n={cfg.n}")
    rows = []
    for s in range(cfg.seeds):
        rows += ctx.unit(f"seed={s}", lambda s=s: _one(cfg, s))
    import pandas as pd

    scaled = [r for r in rows if "weight_scale" in r]
    df = pd.DataFrame([r for r in rows if "weight_scale" not in r])
    summ = df.groupby(["network", "fraction", "inputs"]).agg(
        curl_first_order=("curl_first_order", "mean"), curl_first_order_max=("curl_first_order", "max"),
        curl_exact=("curl_exact_steady_state", "mean"), curl_general_W=("curl_general_W", "mean")).reset_index()
    summary = summ.to_dict("records")
    for r in summary:
        ctx.log(f"{r['network']} fraction={r['fraction']} inputs={r['inputs']}: curl share (symmetric W) "
                f"{r['curl_first_order']:.3g} (exact steady state {r['curl_exact']:.3g})")
    order = exact_curl_order(scaled)
    if order:
        ctx.log("exact steady-state flow, no input to inhibitory neurons: curl share grows as ||W||^"
                f"{np.mean(order):.2f} (mean log-log slope over seeds; first order in W: 0)")
    return {"rows": rows, "summary": summary, "measurements": measurements(rows),
            "exact_curl_order": order}


def exact_curl_order(rows: list[dict]) -> list[float]:
    """Per seed, the least-squares slope of log curl share against log weight scale of the exact flow's rows
    ("E-I exact vs scale"): 1 when the curl the first-order flow lacks is a first-order term in W of the exact
    flow's remainder, i.e. it vanishes with the weights."""
    out = []
    for s in sorted({r["seed"] for r in rows}):
        pts = [(r["weight_scale"], r["curl_exact_steady_state"]) for r in rows if r["seed"] == s
               and r["curl_exact_steady_state"] > 0]
        if len(pts) >= 2:
            x, y = np.log(np.asarray(pts)).T
            out.append(float(np.polyfit(x, y, 1)[0]))
    return out


def measurements(rows: list[dict]) -> dict[str, list[float]]:
    """Per seed (independent networks), the antisymmetric share of the first-order flow's Jacobian on symmetric W:

    - ``ei/all_excitatory/curl_share`` (inhibitory fraction 0) and ``hebb/all_hebbian/curl_share`` (no
      anti-Hebbian synapse): gradient flows, 0 in the paper;
    - ``ei/inputs=all/min_curl_share`` / ``hebb/mixed/min_curl_share``: the smallest share over the fractions > 0
      (input to every neuron / mixed Hebbian and anti-Hebbian synapses), non-gradient in the paper;
    - ``ei/inputs=excitatory_only/max_curl_share``: the largest share over the fractions > 0 when inhibitory
      neurons get no input (0 in the paper);
    - ``ei/inputs=excitatory_only/exact_curl_order``: the log-log slope of the exact steady-state flow's curl
      share against the weight scale in that case (``exact_curl_order``).
    Absent when the config has no such network.
    """
    out: dict[str, list[float]] = {}
    for s in sorted({r["seed"] for r in rows}):
        mine = [r for r in rows if r["seed"] == s]
        pick = lambda net, inputs, keep: [r["curl_first_order"] for r in mine  # noqa: E731
                                          if r["network"] == net and r["inputs"] == inputs and keep(r["fraction"])]
        for name, vals, agg in (("ei/all_excitatory/curl_share", pick("E-I", "all", lambda f: f == 0), max),
                                ("ei/inputs=all/min_curl_share", pick("E-I", "all", lambda f: f > 0), min),
                                ("ei/inputs=excitatory_only/max_curl_share",
                                 pick("E-I", "excitatory_only", lambda f: f > 0), max),
                                ("hebb/all_hebbian/curl_share", pick("Hebb/anti-Hebb", "all", lambda f: f == 0), max),
                                ("hebb/mixed/min_curl_share", pick("Hebb/anti-Hebb", "all", lambda f: f > 0), min)):
            if vals:
                out.setdefault(name, []).append(float(agg(vals)))
    order = exact_curl_order([r for r in rows if "weight_scale" in r])
    if order:
        out["ei/inputs=excitatory_only/exact_curl_order"] = order
    return out


def plot(results: dict, out: Path) -> None:
    summ = results["summary"]
    fig, ax = figure(1, 2, size=(4.4, 3.4))
    for inputs, mk in (("all", "o-"), ("excitatory_only", "s--")):
        rs = [r for r in summ if r["network"] == "E-I" and r["inputs"] == inputs]
        ax[0, 0].plot([r["fraction"] for r in rs], [max(r["curl_first_order"], 1e-17) for r in rs], mk,
                      label=f"inputs: {inputs}")
    ax[0, 0].set_yscale("log")
    ax[0, 0].set_xlabel("fraction inhibitory")
    ax[0, 0].set_ylabel("antisymmetric share of Jacobian")
    ax[0, 0].set_title("E-I Hebbian RNN (eq. 2)", fontsize=9)
    ax[0, 0].legend(fontsize=7)
    rs = [r for r in summ if r["network"] == "Hebb/anti-Hebb"]
    ax[0, 1].plot([r["fraction"] for r in rs], [max(r["curl_first_order"], 1e-17) for r in rs], "o-")
    ax[0, 1].set_yscale("log")
    ax[0, 1].set_xlabel("fraction anti-Hebbian synapses")
    ax[0, 1].set_title("Hebbian/anti-Hebbian RNN (eq. 24)", fontsize=9)
    save(fig, out / "ei_curl.png")


register(Experiment("curl-ei", "curl (antisymmetric Jacobian share) of Hebbian learning flows in E-I and "
                    "Hebbian/anti-Hebbian RNNs; vanishes only when inhibitory neurons get no input",
                    CurlEIConfig, run, plot, paper="curl", quick={"n": 8, "seeds": 2}))
