"""Two-stream network of the Self-Assembling Motif (SAM; Liao, Ziyin, Gan et al., Appendix A, eq. 5-7).

Paper notation -> code. The paper's neuron layers h^1 (= x) ... h^L (= y_hat) are the
code's levels k = 0..n (n = ``net.n_layers``); paper index l is code level l - 1.

Upstream (the ordinary ``MLP``, no biases, ReLU hidden layers, linear output):
    u_{k+1} = W[k] a_k,   a_k = D_u^k u_k = relu(u_k),   a_0 = x,        (eq. 5)
D_u^k = diag(1[u_k > 0]) (eq. 7), D_u^0 = I (input) and D_u^n = I (linear output).

Downstream (feedback) stream with its own widths dbar_k:
    hbar_n = -dF/dy_hat = -e_out,
    hbar_k = Wbar[k] D_d^{k+1} hbar_{k+1}        for k = n-1 .. 1 (.. 0),   (eq. 6)
with the matrices
    W[k]    (d_{k+1}, d_k)       upstream k -> k+1              (paper W^l)
    Wbar[k] (dbar_k, dbar_{k+1}) downstream k+1 -> k             (paper Wbar^l)
    V[k]    (dbar_k, d_k)        upstream -> downstream, level k  (paper V^l)
    Vbar[k] (d_{k+1}, dbar_{k+1}) downstream -> upstream, level k+1 (paper Vbar^l)
for k = 0..n-1. dbar_n = d_n (the output error); the hidden dbar_k are free.

D_d^k is a diagonal gain set by a downstream neuron's own potential, so that
D_d hbar = g(hbar) for the chosen downstream non-linearity g (as D_u u = relu(u)):
    identity:       D_d = I                      (the paper's default)
    relu:           D_d = diag(1[hbar > 0])
    leaky_relu:     D_d = diag(1 if hbar > 0 else 0.1)
    tanh:           D_d = diag(tanh(hbar) / hbar)
    relu_jacobian:  D_d^k = D_u^k (the forward ReLU Jacobian; needs dbar_k = d_k)
and D_d^n = I at the output level (the error itself is not squashed).

Level 0 (the input level) of the downstream stream, with Wbar[0] and V[0], drives only
V[0]'s own update and never reaches W; it is left out unless ``input_level=True``.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from .mlp import MLP, Forward, init_weight

DOWN_ACTIVATIONS = ("identity", "relu", "leaky_relu", "tanh", "relu_jacobian")
INTER_INITS = ("gaussian", "identity")


class Feedback(NamedTuple):
    """Downstream and inter-stream weights; entries that a configuration does not use are empty arrays."""

    Wbar: tuple[jax.Array, ...]
    V: tuple[jax.Array, ...]
    Vbar: tuple[jax.Array, ...]


class Downstream(NamedTuple):
    """Downstream signals per level k = 0..n: potentials hbar[k] and gains D_d^k (shape (batch, dbar_k))."""

    hbar: tuple[jax.Array | None, ...]
    gain: tuple[jax.Array | None, ...]


_EMPTY = jnp.zeros((0, 0))


class TwoStream(eqx.Module):
    """Architecture of the two-stream motif around an upstream ``MLP`` (weights live in Params / Feedback).

    down_widths: hidden downstream widths (dbar_1, ..., dbar_{n-1}); None -> round(width_ratio * d_k).
    down_activation: the downstream gain D_d (see module docstring).
    input_level: also build the input-level downstream layer (Wbar[0], V[0]); it never affects W.
    scalar_error: None, "mean" or "norm": replace each hidden level's feedback vector hbar_k by
        mean(hbar_k) * 1 or (||hbar_k|| / sqrt(dbar_k)) * 1 (the paper's scalar-error ablation; the RMS
        keeps the vector's norm), before it is propagated further down.
    """

    net: MLP
    down_widths: tuple[int, ...] | None = eqx.field(static=True, default=None)
    width_ratio: float = eqx.field(static=True, default=1.0)
    down_activation: str = eqx.field(static=True, default="identity")
    input_level: bool = eqx.field(static=True, default=False)
    scalar_error: str | None = eqx.field(static=True, default=None)

    def __check_init__(self) -> None:
        n = self.net.n_layers
        if self.down_activation not in DOWN_ACTIVATIONS:
            raise ValueError(f"unknown downstream activation {self.down_activation!r}; "
                             f"choose one of: {', '.join(DOWN_ACTIVATIONS)}")
        if self.scalar_error not in (None, "mean", "norm"):
            raise ValueError(f"scalar_error must be None, 'mean' or 'norm', got {self.scalar_error!r}")
        if self.down_widths is not None and len(self.down_widths) != n - 1:
            raise ValueError(f"down_widths needs one width per hidden layer ({n - 1} for sizes {self.net.sizes}), "
                             f"got {self.down_widths}")
        if self.width_ratio <= 0:
            raise ValueError(f"width_ratio must be positive, got {self.width_ratio}")
        if self.down_activation == "relu_jacobian":
            d, db = self.net.sizes, self.dsizes
            bad = [k for k in self.levels if db[k] != d[k]]
            if bad:
                raise ValueError("down_activation='relu_jacobian' uses the forward ReLU Jacobian and needs equal "
                                 f"upstream and downstream widths, but they differ at levels {bad} "
                                 f"(d={d}, dbar={db}); use width_ratio=1 or another down_activation")

    @property
    def n(self) -> int:
        return self.net.n_layers

    @property
    def dsizes(self) -> tuple[int, ...]:
        """Downstream widths (dbar_0, ..., dbar_n); dbar_n = d_n."""
        d = self.net.sizes
        hidden = self.down_widths if self.down_widths is not None else tuple(
            max(1, round(self.width_ratio * w)) for w in d[1:-1])
        return (max(1, round(self.width_ratio * d[0])),) + tuple(hidden) + (d[-1],)

    @property
    def levels(self) -> tuple[int, ...]:
        """Downstream levels k < n that exist (1..n-1, plus 0 with ``input_level``)."""
        return tuple(range(0 if self.input_level else 1, self.n))

    def init(self, key: jax.Array, inter_init: str = "gaussian", down_init: str = "fan_out", scale: float = 1.0,
             vbar_out: str = "identity") -> Feedback:
        """Initial Wbar, V, Vbar (i.i.d. Gaussian, as in the paper).

        Wbar[k] ~ N(0, 1/dbar_k) ("fan_out": the scale of the transpose of a LeCun-initialised forward
        matrix, so the feedback neither grows nor shrinks from level to level), or any ``init_weight``
        method by name. V[k] ~ N(0, 1/dbar_k) and Vbar[k] ~ N(0, 1/dbar_{k+1}), so V^T V and
        H = Vbar Vbar^T start close to the identity; inter_init="identity" sets both to the (rectangular)
        identity for the BP/FA/KP special cases. vbar_out: "identity" keeps the output level's
        Vbar[n-1] = I (the paper's Vbar^L = I), "learn" draws it like the others and lets it learn.
        """
        if inter_init not in INTER_INITS:
            raise ValueError(f"unknown inter-stream init {inter_init!r}; choose one of: {', '.join(INTER_INITS)}")
        if vbar_out not in ("identity", "learn"):
            raise ValueError(f"vbar_out must be 'identity' or 'learn', got {vbar_out!r}")
        d, db, n = self.net.sizes, self.dsizes, self.n
        keys = jax.random.split(key, 3 * n).reshape(3, n, -1)

        def gauss(k, shape, var_dim):
            return scale * jax.random.normal(k, shape) / jnp.sqrt(var_dim)

        def inter(k, shape, var_dim):
            return jnp.eye(*shape) if inter_init == "identity" else gauss(k, shape, var_dim)

        Wbar, V, Vbar = [], [], []
        for k in range(n):
            if k in self.levels:
                shape = (db[k], db[k + 1])
                Wbar.append(gauss(keys[0, k], shape, db[k]) if down_init == "fan_out"
                            else init_weight(keys[0, k], shape, down_init, scale))
                V.append(inter(keys[1, k], (db[k], d[k]), db[k]))
            else:
                Wbar.append(_EMPTY)
                V.append(_EMPTY)
            if k == n - 1 and vbar_out == "identity":
                Vbar.append(jnp.eye(d[n]))
            else:
                Vbar.append(inter(keys[2, k], (d[k + 1], db[k + 1]), db[k + 1]))
        return Feedback(tuple(Wbar), tuple(V), tuple(Vbar))

    def check(self, fb: Feedback) -> None:
        """Raise a ValueError naming the matrix and level whose shape does not fit the architecture."""
        d, db = self.net.sizes, self.dsizes
        for k in range(self.n):
            want = {"Wbar": (db[k], db[k + 1]), "V": (db[k], d[k]), "Vbar": (d[k + 1], db[k + 1])}
            for name, arr in (("Wbar", fb.Wbar[k]), ("V", fb.V[k]), ("Vbar", fb.Vbar[k])):
                if name != "Vbar" and k not in self.levels:
                    continue
                if tuple(arr.shape) != want[name]:
                    raise ValueError(f"{name}[{k}] has shape {tuple(arr.shape)}, expected {want[name]}")

    def gain(self, k: int, hbar: jax.Array, fwd: Forward) -> jax.Array:
        """Diagonal of D_d^k (batch, dbar_k); D_d^n = 1."""
        if k == self.n or self.down_activation == "identity":
            return jnp.ones_like(hbar)
        a = self.down_activation
        if a == "relu":
            return (hbar > 0).astype(hbar.dtype)
        if a == "leaky_relu":
            return jnp.where(hbar > 0, 1.0, 0.1).astype(hbar.dtype)
        if a == "tanh":
            small = jnp.abs(hbar) < 1e-6
            return jnp.where(small, 1.0, jnp.tanh(hbar) / jnp.where(small, 1.0, hbar))
        # relu_jacobian: the upstream indicator D_u^k (identity at the input level)
        return jnp.ones_like(hbar) if k == 0 else fwd.df[k - 1]

    def _scalarize(self, hbar: jax.Array) -> jax.Array:
        if self.scalar_error == "mean":
            s = jnp.mean(hbar, axis=-1, keepdims=True)
        else:
            s = jnp.linalg.norm(hbar, axis=-1, keepdims=True) / jnp.sqrt(hbar.shape[-1])
        return jnp.broadcast_to(s, hbar.shape)

    def downstream(self, Wbar: tuple[jax.Array, ...], fwd: Forward, e_out: jax.Array) -> Downstream:
        """hbar_n = -e_out; hbar_k = Wbar[k] (D_d^{k+1} hbar_{k+1}) down to the lowest level (eq. 6)."""
        n = self.n
        hbar: list = [None] * (n + 1)
        gain: list = [None] * (n + 1)
        hbar[n] = -e_out
        gain[n] = jnp.ones_like(e_out)
        for k in range(n - 1, self.levels[0] - 1 if self.levels else n - 1, -1):
            h = (gain[k + 1] * hbar[k + 1]) @ Wbar[k].T
            if self.scalar_error is not None:
                h = self._scalarize(h)
            hbar[k] = h
            gain[k] = self.gain(k, h, fwd)
        return Downstream(tuple(hbar), tuple(gain))

    def w_post(self, fb: Feedback, fwd: Forward, down: Downstream) -> tuple[jax.Array, ...]:
        """Postsynaptic factor of W[k] (eq. 8): D_u^{k+1} (Vbar[k] D_d^{k+1} hbar_{k+1}), k = 0..n-1."""
        return tuple(fwd.df[k] * ((down.gain[k + 1] * down.hbar[k + 1]) @ fb.Vbar[k].T) for k in range(self.n))
