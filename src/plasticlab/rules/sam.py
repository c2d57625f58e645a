"""Self-Assembling Motif (SAM): four heterosynaptic updates of a two-stream circuit (Appendix A, eq. 8-11).

With the code's levels k (see ``plasticlab.networks.two_stream``), a_k = D_u^k u_k the
upstream activity, hbar_k the downstream potentials, D_d^k their gains, <.> the batch mean:

    Delta W[k]    = eta_W    < (D_u^{k+1} Vbar[k] D_d^{k+1} hbar_{k+1}) a_k^T >           - gamma W[k]     (8)
    Delta Wbar[k] = eta_Wbar < (D_d^k V[k] a_k) (D_d^{k+1} hbar_{k+1})^T >              - gamma Wbar[k]  (9)
    Delta V[k]    = eta_V    < (D_d^k hbar_k) a_k^T >                                   - gamma V[k]     (10)
    Delta Vbar[k] = eta_Vbar < a_{k+1} (D_d^{k+1} hbar_{k+1})^T >                       - gamma Vbar[k]  (11)

(a_{k+1} = D_u^{k+1} u_{k+1}). The four rates are lr * ratios (eta_W, eta_Wbar, eta_V, eta_Vbar)
with fixed ratios (Vbar largest, about 4x W), and gamma is one common weight decay (not scaled
by the rates, as in eq. 8-11). ``decay_scaling="rate"`` reads the decay as the earlier paper's
Algorithm 1 does (X <- X + eta (Hebbian term - gamma X)): matrix X then decays by eta_X gamma.
Any subset of {W, Wbar, V, Vbar} can be frozen (``plastic``).

As a plasticlab ``Rule`` the upstream network is the plain ``MLP`` (ReLU, linear output; with
``use_bias`` the biases learn as W with a constant presynaptic 1: Delta b[k] = eta_W <D_u Vbar D_d hbar>)
and the rule state holds (Wbar, V, Vbar); ``feedback`` returns the W errors
e_{k+1} = -D_u^{k+1} Vbar[k] D_d^{k+1} hbar_{k+1}, so Delta W = -eta_W <e a^T> - gamma W.
hbar_n = -e_out, e_out the loss's output error dLoss/dy_L (softmax - onehot for cross-entropy).

Special cases (tested): V = Vbar = I, D_d = ReLU Jacobian, eta_W = eta_Wbar gives
    backprop when Wbar = W^T is hard-wired (``tie_wbar=True``),
    feedback alignment when Wbar is random and frozen,
    Kolen-Pollack when Wbar learns by eq. 9 (with the same decay gamma).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..networks.mlp import MLP, Forward, Params
from ..networks.two_stream import Downstream, Feedback, TwoStream
from .base import Rule, Signals, outer_mean

MATRICES = ("W", "Wbar", "V", "Vbar")
DEFAULT_RATIOS = (1.0, 1.0, 0.25, 4.0)
DECAY_SCALINGS = ("none", "rate")


def parse_plastic(spec: str | tuple[str, ...]) -> tuple[str, ...]:
    """'W,Vbar' or ('W', 'Vbar') -> ('W', 'Vbar'), validated and in canonical order."""
    items = [s.strip() for s in spec.replace("+", ",").split(",")] if isinstance(spec, str) else list(spec)
    items = [s for s in items if s]
    bad = [s for s in items if s not in MATRICES]
    if bad:
        raise ValueError(f"unknown SAM matrices {bad}; choose from {', '.join(MATRICES)} (e.g. 'W,Wbar,V,Vbar')")
    return tuple(m for m in MATRICES if m in items)


class SAM(Rule):
    """Self-Assembling Motif (SAM paper, eq. 8-11): four heterosynaptic updates of a two-stream circuit.

    Equation:
        Delta W[k]    = eta_W    < (D_u^{k+1} Vbar[k] D_d^{k+1} hbar_{k+1}) a_k^T > - gamma W[k]
        Delta Wbar[k] = eta_Wbar < (D_d^k V[k] a_k) (D_d^{k+1} hbar_{k+1})^T >     - gamma Wbar[k]
        Delta V[k]    = eta_V    < (D_d^k hbar_k) a_k^T >                          - gamma V[k]
        Delta Vbar[k] = eta_Vbar < a_{k+1} (D_d^{k+1} hbar_{k+1})^T >              - gamma Vbar[k]
        eta_X = lr * ratio_X,  hbar_n = -e_out,  a_k = D_u^k u_k

    Parameters:
        lr: overall learning rate; the four rates are lr times ``ratios``.
        ratios: rate ratios of (W, Wbar, V, Vbar) (Vbar largest, about 4x W).
        decay: weight decay gamma of every matrix per step (eq. 8-11; see ``decay_scaling``).
        plastic: the matrices that learn, a subset of W, Wbar, V, Vbar (the others stay at their init).
        tie_wbar: hard-wire Wbar = W^T (the backprop special case; needs equal widths).
        down_activation: the downstream gain D_d ("identity", or the forward ReLU Jacobian "relu_jacobian", ...).
        width_ratio: downstream widths dbar_k = round(width_ratio * d_k) (when down_widths is None).
        down_widths: explicit hidden downstream widths (dbar_1, ..., dbar_{n-1}).
        inter_init: initialisation of V and Vbar ("gaussian": V^T V and Vbar Vbar^T near I; "identity").
        down_init: initialisation of Wbar ("fan_out": N(0, 1/dbar_k), or an init_weight method).
        vbar_out: "identity" keeps the output level's Vbar = I (the paper), "learn" lets it learn.
        input_level: also build the input-level downstream layer (Wbar[0], V[0]; it never affects W).
        scalar_error: None, "mean" or "norm": replace each hidden level's feedback vector by a scalar times 1
            (the paper's scalar-error ablation).
        decay_scaling: "none" (every matrix decays by gamma, eq. 8-11) or "rate" (matrix X by eta_X gamma,
            the earlier paper's Algorithm 1).
        vbar_scale: scale of the initial Vbar (H = Vbar Vbar^T starts near vbar_scale^2 I).
    """

    lr: float = 0.02
    ratios: tuple[float, float, float, float] = eqx.field(static=True, default=DEFAULT_RATIOS)
    decay: float = 1e-4
    plastic: tuple[str, ...] = eqx.field(static=True, default=MATRICES, converter=parse_plastic)
    tie_wbar: bool = eqx.field(static=True, default=False)
    down_activation: str = eqx.field(static=True, default="identity")
    width_ratio: float = eqx.field(static=True, default=1.0)
    down_widths: tuple[int, ...] | None = eqx.field(static=True, default=None)
    inter_init: str = eqx.field(static=True, default="gaussian")
    down_init: str = eqx.field(static=True, default="fan_out")
    vbar_out: str = eqx.field(static=True, default="identity")
    input_level: bool = eqx.field(static=True, default=False)
    scalar_error: str | None = eqx.field(static=True, default=None)
    decay_scaling: str = eqx.field(static=True, default="none")
    vbar_scale: float = eqx.field(static=True, default=1.0)

    def __check_init__(self) -> None:
        if len(self.ratios) != 4 or any(r < 0 for r in self.ratios):
            raise ValueError(f"ratios must be 4 non-negative numbers (W, Wbar, V, Vbar), got {self.ratios}")
        parse_plastic(self.plastic)
        if self.decay_scaling not in DECAY_SCALINGS:
            raise ValueError(f"unknown decay_scaling {self.decay_scaling!r}; choose 'none' (every matrix decays by "
                             "gamma, eq. 8-11) or 'rate' (matrix X decays by eta_X * gamma, Algorithm 1)")
        if self.tie_wbar and "Wbar" in self.plastic:
            raise ValueError("tie_wbar=True hard-wires Wbar = W^T, so Wbar cannot also be plastic; "
                             "drop 'Wbar' from plastic")

    @property
    def name(self) -> str:
        return "sam"

    @property
    def provides_feedback(self) -> bool:
        return True

    @property
    def rates(self) -> dict[str, float]:
        """The four learning rates lr * ratio (0 for frozen matrices)."""
        return {m: (self.lr * r if m in self.plastic else 0.0) for m, r in zip(MATRICES, self.ratios)}

    @property
    def decays(self) -> dict[str, float]:
        """Per-matrix decay: gamma for every matrix, or eta_X gamma with ``decay_scaling="rate"``."""
        if self.decay_scaling == "rate":
            return {m: self.decay * rate for m, rate in self.rates.items()}
        return {m: self.decay for m in MATRICES}

    def stream(self, net: MLP) -> TwoStream:
        """The two-stream architecture around ``net``."""
        return TwoStream(net, self.down_widths, self.width_ratio, self.down_activation, self.input_level,
                         self.scalar_error)

    def init(self, key: jax.Array, net: MLP, params: Params) -> Feedback:
        ts = self.stream(net)
        if self.tie_wbar:
            d, db = net.sizes, ts.dsizes
            bad = [k for k in ts.levels if db[k] != d[k]]
            if bad:
                raise ValueError(f"tie_wbar=True needs Wbar[k] = W[k]^T, i.e. equal widths, but dbar != d at levels {bad}")
        fb = ts.init(key, self.inter_init, self.down_init, 1.0, self.vbar_out)
        if self.vbar_scale != 1.0:  # H = Vbar Vbar^T then starts near vbar_scale^2 I (the fixed output-level I stays)
            fixed = net.n_layers - 1 if self.vbar_out == "identity" else None
            fb = fb._replace(Vbar=tuple(v if k == fixed else self.vbar_scale * v for k, v in enumerate(fb.Vbar)))
        if self.tie_wbar:
            fb = fb._replace(Wbar=tuple(w.T if k in ts.levels else fb.Wbar[k] for k, w in enumerate(params.W)))
        return fb

    def _wbar(self, ts: TwoStream, params: Params, fb: Feedback) -> tuple[jax.Array, ...]:
        if self.tie_wbar:
            return tuple(w.T for w in params.W)
        return fb.Wbar

    def signals(self, net: MLP, params: Params, fb: Feedback, fwd: Forward, e_out: jax.Array) -> Downstream:
        """The downstream pass hbar_n = -e_out, hbar_k = Wbar[k] D_d^{k+1} hbar_{k+1}."""
        ts = self.stream(net)
        return ts.downstream(self._wbar(ts, params, fb), fwd, e_out)

    def feedback(self, net, params, state, fwd, e_out):
        return self.feedback_with_aux(net, params, state, fwd, e_out)[0]

    def feedback_with_aux(self, net, params, state, fwd, e_out):
        """(e_{k+1} = -D_u^{k+1} Vbar[k] D_d^{k+1} hbar_{k+1} per layer, the downstream pass) for ``Signals.aux``."""
        ts = self.stream(net)
        down = ts.downstream(self._wbar(ts, params, state), fwd, e_out)
        return tuple(-p for p in ts.w_post(state, fwd, down)), down

    def deltas(self, net: MLP, params: Params, fb: Feedback, fwd: Forward, e_out: jax.Array
               ) -> tuple[tuple[jax.Array, ...], Feedback]:
        """(Delta W, Delta Feedback) of eq. 8-11 on one batch; frozen or absent matrices get zero updates."""
        dW, _, dfb = self._deltas(net, params, fb, fwd, e_out)
        return dW, dfb

    def _deltas(self, net: MLP, params: Params, fb: Feedback, fwd: Forward, e_out: jax.Array,
                down: Downstream | None = None
                ) -> tuple[tuple[jax.Array, ...], tuple[jax.Array, ...] | None, Feedback]:
        """(Delta W, Delta b, Delta Feedback). Delta b[k] = eta_W <D_u^{k+1} Vbar[k] D_d^{k+1} hbar_{k+1}> (eq. 8
        with a constant presynaptic 1, no decay, as the baselines treat biases); None for a bias-free net.
        ``down``: the downstream pass if the feedback already ran it (``Signals.aux``)."""
        ts = self.stream(net)
        n = ts.n
        if down is None:
            down = ts.downstream(self._wbar(ts, params, fb), fwd, e_out)
        a, hb, g = fwd.h, down.hbar, down.gain
        r = self.rates
        gam = self.decays
        if "W" in self.plastic:
            post = ts.w_post(fb, fwd, down)
            dW = tuple(r["W"] * outer_mean(post[k], a[k]) - gam["W"] * params.W[k] for k in range(n))
            db = None if params.b is None else tuple(r["W"] * jnp.mean(p, axis=0) for p in post)
        else:
            dW = tuple(jnp.zeros_like(w) for w in params.W)
            db = None if params.b is None else tuple(jnp.zeros_like(b) for b in params.b)
        dWbar, dV, dVbar = [], [], []
        for k in range(n):
            live = k in ts.levels
            if live and "Wbar" in self.plastic:
                pre = g[k + 1] * hb[k + 1]
                dWbar.append(r["Wbar"] * outer_mean(g[k] * (a[k] @ fb.V[k].T), pre) - gam["Wbar"] * fb.Wbar[k])
            else:
                dWbar.append(jnp.zeros_like(fb.Wbar[k]))
            if live and "V" in self.plastic:
                dV.append(r["V"] * outer_mean(g[k] * hb[k], a[k]) - gam["V"] * fb.V[k])
            else:
                dV.append(jnp.zeros_like(fb.V[k]))
            if "Vbar" in self.plastic and not (k == n - 1 and self.vbar_out == "identity"):
                dVbar.append(r["Vbar"] * outer_mean(a[k + 1], g[k + 1] * hb[k + 1]) - gam["Vbar"] * fb.Vbar[k])
            else:
                dVbar.append(jnp.zeros_like(fb.Vbar[k]))
        return dW, db, Feedback(tuple(dWbar), tuple(dV), tuple(dVbar))

    def update(self, net, params, state, sig: Signals, key):
        down = sig.aux if isinstance(sig.aux, Downstream) else None
        dW, db, dfb = self._deltas(net, params, state, sig.fwd, sig.e_out, down)
        return Params(dW, db), jax.tree.map(jnp.add, state, dfb)


def preconditioner(fb: Feedback) -> tuple[jax.Array, ...]:
    """H[k] = Vbar[k] Vbar[k]^T (d_{k+1}, d_{k+1}) per layer: PSD by construction (Theorem 1, eq. 4)."""
    return tuple(v @ v.T for v in fb.Vbar)


def check_feedback(fb: Feedback, samples: int, batch_size: int, seeds: list[int] | None = None,
                   limit: float = 1e6) -> None:
    """Raise DivergenceError naming matrix, level and seed if any of Wbar, V, Vbar is non-finite or > ``limit``.

    ``fb`` may carry a leading seed axis (the vmapped state of ``fit``). Use it in a ``fit`` callback:
    ``callback=lambda st, s: (check_feedback(st.rule_state, s, batch), {})[1]``.
    """
    from ..training import DivergenceError

    for name in ("Wbar", "V", "Vbar"):
        for k, m in enumerate(getattr(fb, name)):
            arr = np.asarray(m)
            if arr.size == 0:
                continue
            flat = arr.reshape(arr.shape[0], -1) if arr.ndim == 3 else arr.reshape(1, -1)
            ok = np.all(np.isfinite(flat) & (np.abs(flat) < limit), axis=1)
            if not ok.all():
                s = int(np.argmin(ok))
                seed = seeds[s] if seeds is not None else s
                step = samples // max(1, batch_size)
                raise DivergenceError(
                    f"SAM diverged: {name}[{k}] (downstream level {k}) became non-finite or exceeded {limit:g} by "
                    f"step {step} (sample {samples}) for seed {seed}. Lower lr or the ratio of {name}, or raise "
                    "the weight decay.", step=step, layer=k, seed=seed)
