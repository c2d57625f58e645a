"""Representation analyses of the Oja paper (docs/choices.md section 1).

Notation: layer l maps h_{l-1} to h_l = f(W_l h_{l-1}); arrays carry a leading
sample axis, so ``H[l]`` has shape (n, d_l) and ``W[l-1]`` = W_l has shape (d_l, d_{l-1}).

* residual (eq. 5): r_l = mean_n ||h_{l-1} - W_l^T h_l||^2
* optimal linear map (eq. 8-9): M_l = argmin_M sum_n ||h_{l-1} - M h_l||^2
  = H_{l-1}^T H_l (H_l^T H_l)^+ (least squares, solved with numpy.linalg.lstsq)
* recursive reconstruction (eq. 10): hhat_{L-1} = h_{L-1}, hhat_{l-1} = M_l hhat_l
  (or W_l^T hhat_l for the transposed-weight variant of supplement S5)
* cumulative PCA explained variance: sorted eigenvalues of the covariance, cumulated, / trace
* PEV (eq. 16-20): bias-corrected omega^2 = (SS_between - df_between MSE) / (SS_total + MSE)
* activation norms: mean_n ||h_l||
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np


def residuals(W: Sequence[jax.Array], H: Sequence[jax.Array], layers: Sequence[int] | None = None) -> jax.Array:
    """Residual of eq. 5 per layer: r_l = mean_n ||h_{l-1} - W_l^T h_l||^2.

    ``W[l-1]`` = W_l (d_l, d_{l-1}); ``H[l]`` = h_l (n, d_l) with H[0] the input.
    ``layers`` (1-based) defaults to every layer; returns an array of len(layers). jit/vmap friendly.
    """
    layers = range(1, len(W) + 1) if layers is None else layers
    out = []
    for l in layers:
        rec = H[l] @ W[l - 1]  # rows: (W_l^T h_l)^T
        out.append(jnp.mean(jnp.sum((H[l - 1] - rec) ** 2, axis=-1)))
    return jnp.stack(out)


def activation_norms(H: Sequence[jax.Array]) -> jax.Array:
    """Mean Euclidean norm of every layer's activations, mean_n ||h_l|| for l = 0..L (jit/vmap friendly)."""
    return jnp.stack([jnp.mean(jnp.linalg.norm(h, axis=-1)) for h in H])


def step_sizes(W: Sequence[jax.Array], H: Sequence[jax.Array], E: Sequence[jax.Array], eta: float,
               eta_oja: float) -> tuple[jax.Array, jax.Array]:
    """Mean per-sample Frobenius norms of the two terms of eq. 4 (batch size 1), per layer.

    BP term ||eta e_l h_{l-1}^T||_F = eta ||e_l|| ||h_{l-1}||; Oja term
    ||eta_oja (h_l h_{l-1}^T - h_l h_l^T W_l)||_F = eta_oja ||h_l|| ||h_{l-1} - W_l^T h_l||
    (both are rank-one matrices). ``E[l-1]`` = e_l (n, d_l). Returns (bp, oja), each of length L.
    """
    bp, oja = [], []
    for l in range(1, len(W) + 1):
        bp.append(eta * jnp.mean(jnp.linalg.norm(E[l - 1], axis=-1) * jnp.linalg.norm(H[l - 1], axis=-1)))
        res = H[l - 1] - H[l] @ W[l - 1]
        oja.append(eta_oja * jnp.mean(jnp.linalg.norm(H[l], axis=-1) * jnp.linalg.norm(res, axis=-1)))
    return jnp.stack(bp), jnp.stack(oja)


def optimal_linear_map(pre: np.ndarray, post: np.ndarray) -> np.ndarray:
    """M = argmin_M sum_n ||pre_n - M post_n||^2 (eq. 8-9), shape (d_pre, d_post).

    ``pre`` (n, d_pre) = H_{l-1}, ``post`` (n, d_post) = H_l. Minimum-norm least-squares
    solution (``numpy.linalg.lstsq``), equal to H_{l-1}^T H_l (H_l^T H_l)^{-1} when H_l has full column rank.
    """
    pre, post = np.asarray(pre, np.float64), np.asarray(post, np.float64)
    if pre.ndim != 2 or post.ndim != 2 or pre.shape[0] != post.shape[0]:
        raise ValueError(f"pre and post must be (n, d) arrays with the same n, got {pre.shape} and {post.shape}")
    sol, *_ = np.linalg.lstsq(post, pre, rcond=None)  # post @ sol ~ pre, sol = M^T
    return sol.T


def optimal_linear_maps(H: Sequence[np.ndarray], upto: int | None = None) -> list[np.ndarray]:
    """[M_1, ..., M_upto]: the optimal map restoring h_{l-1} from h_l for each layer (default: hidden layers)."""
    upto = len(H) - 2 if upto is None else upto
    return [optimal_linear_map(H[l - 1], H[l]) for l in range(1, upto + 1)]


def reconstruct(top: np.ndarray, maps: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Recursive reconstruction (eq. 10 / S.4) from the top layer down to the input.

    ``maps[l-1]`` maps layer l back to layer l-1 (M_l of shape (d_{l-1}, d_l), or W_l^T).
    Starting from hhat_k = top (n, d_k) with k = len(maps), returns [hhat_0, hhat_1, ..., hhat_k].
    """
    out = [np.asarray(top, np.float64)]
    for m in reversed(list(maps)):
        out.append(out[-1] @ np.asarray(m, np.float64).T)
    return out[::-1]


def pca_cumulative(x: np.ndarray, n_components: int | None = None) -> np.ndarray:
    """Cumulative fraction of variance explained by the first k principal components, k = 1..n_components.

    Eigenvalues of the sample covariance of ``x`` (n, d), sorted descending, cumulated and
    divided by their sum (``numpy.linalg.eigvalsh``). Zero total variance gives a NaN curve.
    """
    x = np.asarray(x, np.float64)
    xc = x - x.mean(axis=0)
    ev = np.clip(np.linalg.eigvalsh(xc.T @ xc / max(1, x.shape[0] - 1))[::-1], 0.0, None)
    tot = ev.sum()
    cum = np.cumsum(ev) / tot if tot > 0 else np.full_like(ev, np.nan)
    return cum[: (n_components or len(cum))]


def omega_squared(x: np.ndarray | jax.Array, labels: np.ndarray | jax.Array, n_groups: int) -> jax.Array:
    """Bias-corrected PEV (omega^2, eq. 16-20) of a one-way ANOVA of ``x`` on ``labels``, per feature.

    x: (n, ...) observations along axis 0 (e.g. (trials, time, neurons)); labels: (n,) ints in
    [0, n_groups). omega^2 = (SS_between - df_between MSE) / (SS_total + MSE), with
    SS_between = sum_k n_k (mean_k - mean)^2, SS_total = sum (x - mean)^2,
    MSE = SS_within / (n - K), df_between = K - 1, K = the number of non-empty groups.
    Returns an array of shape x.shape[1:]. jit/vmap friendly.
    """
    x = jnp.asarray(x)
    onehot = jax.nn.one_hot(jnp.asarray(labels), n_groups, dtype=x.dtype)  # (n, K)
    counts = onehot.sum(axis=0)
    flat = x.reshape(x.shape[0], -1)
    sums = onehot.T @ flat
    means = sums / jnp.maximum(counts, 1.0)[:, None]
    grand = flat.mean(axis=0)
    ss_total = jnp.sum((flat - grand) ** 2, axis=0)
    ss_between = jnp.sum(counts[:, None] * (means - grand) ** 2, axis=0)
    ss_within = ss_total - ss_between
    k = jnp.sum(counts > 0)
    n = x.shape[0]
    mse = ss_within / (n - k)
    w2 = (ss_between - (k - 1) * mse) / (ss_total + mse)
    return w2.reshape(x.shape[1:])


def top_real_eigenvalue(w: jax.Array) -> jax.Array:
    """Largest real part of the eigenvalues of a square matrix (numpy; batched over leading axes)."""
    return np.max(np.linalg.eigvals(np.asarray(w, np.float64)).real, axis=-1)


__all__ = ["residuals", "activation_norms", "step_sizes", "optimal_linear_map", "optimal_linear_maps", "reconstruct",
           "pca_cumulative", "omega_squared", "top_real_eigenvalue"]
