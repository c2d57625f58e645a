"""Stability theory of curl descent (Ninou, Kadmon & Cayco-Gajic, "Curl descent").

Linear student y = W2 W1 x (W1: N x M, W2: 1 x N), whitened inputs, teacher map s = W2* W1*.
The curl flow (eq. 6) is

    dW1/dt = W2^T (s - W2 W1) D1,      dW2/dt = (s - W2 W1) W1^T D2,

with D1 (M x M) and D2 (N x N) diagonal +-1. With E = s - W2 W1 its Jacobian (appendix B.1,
eq. 52-60; vec is row-major, W1 first, then W2) is

    J11 = -(W2^T W2) (x) D1
    [J12]_(ij),h = delta_hi E_j d1_j - W2_i W1_hj d1_j
    [J21]_l,(pq) = delta_lp E_q d2_l - W2_p W1_lq d2_l
    J22 = -D2 W1 W1^T.

Spectra: at the origin (eq. 11) lambda = +-sqrt(d2_i Sigma), Sigma = sum_j d1_j s_j^2, and MN - N zeros;
on the solution manifold W2 W1 = s (eq. 12) the non-zero eigenvalues are -eig(X) with
X = ||W2||^2 D1 + W1^T D2 W1 (symmetric, M x M), so the manifold is stable iff X is positive definite.

Random-matrix boundaries (W1 ~ N(0, 1/M), W2 ~ N(0, 1/N), ||W2||^2 -> 1, M, N -> inf, c = M/N):

* alpha_h (D2 = I): X = D1 + S, S = W1^T W1 ~ MP(c)/c, free from D1. Blue function
  B_X(w) = (1 + sqrt(1 + 4 w (w + Delta))) / (2w) + 1 / (c (1 - w)), Delta = 1 - 2 alpha_h (eq. 113);
  support endpoints are double roots in omega of the quartic P_x(omega) (eq. 117-125). The left edge is
  x_L = B_X(w*), w* the first critical point of B_X on w < 0 (we compute it both ways).
* alpha_r (D1 = I): X = I + B, B = W1^T D2 W1 = sum_i d2_i w_i w_i^T. Its Stieltjes transform
  m(z) = int dmu / (lambda - z) solves the generalised Marchenko-Pastur equation
  z(m) = -1/m + (1/c) [(1 - alpha_r)/(1 + m) - alpha_r/(1 - m)]; the left edge of B is max_{0<m<1} z(m).

The manifold is stable iff the left edge of X is > 0. Everything here is NumPy/SciPy except
``flow``, which is written in jax.numpy so that ``jax.jacobian`` can serve as an independent check.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import optimize

# ----------------------------------------------------------------------------- the flow and its Jacobian


def _check_shapes(W1, W2, s, d1, d2) -> tuple[int, int]:
    N, M = np.shape(W1)
    if np.shape(W2) != (N,):
        raise ValueError(f"W2 must be a vector of length N={N} (scalar output), got shape {np.shape(W2)}")
    if np.shape(s) != (M,):
        raise ValueError(f"teacher map s must have length M={M}, got shape {np.shape(s)}")
    if np.shape(d1) != (M,) or np.shape(d2) != (N,):
        raise ValueError(f"sign vectors need shapes d1: ({M},), d2: ({N},); got {np.shape(d1)}, {np.shape(d2)}")
    return N, M


def flow(W1, W2, s, d1, d2):
    """Curl flow (eq. 6): (dW1/dt, dW2/dt) = (W2^T E D1, E W1^T D2), E = s - W2 W1. jax.numpy, differentiable."""
    import jax.numpy as jnp

    E = s - W2 @ W1
    return jnp.outer(W2, E * d1), (W1 @ E) * d2


def flow_vec(theta, s, d1, d2, N: int, M: int):
    """``flow`` on the flat parameter vector theta = [vec(W1) (row-major), W2]."""
    import jax.numpy as jnp

    W1, W2 = theta[: N * M].reshape(N, M), theta[N * M:]
    a, b = flow(W1, W2, s, d1, d2)
    return jnp.concatenate([a.ravel(), b])


def jacobian(W1, W2, s, d1, d2) -> np.ndarray:
    """Analytic Jacobian of the curl flow (eq. 52-60), shape (NM + N, NM + N), vec row-major, W1 then W2."""
    W1, W2, s, d1, d2 = (np.asarray(a, dtype=float) for a in (W1, W2, s, d1, d2))
    N, M = _check_shapes(W1, W2, s, d1, d2)
    E = s - W2 @ W1
    J11 = -np.kron(np.outer(W2, W2), np.diag(d1))
    # [J12]_(ij),h = delta_hi E_j d1_j - W2_i W1_hj d1_j
    J12 = (np.eye(N)[:, None, :] * (E * d1)[None, :, None]
           - W2[:, None, None] * (W1.T * d1[:, None])[None, :, :]).reshape(N * M, N)
    # [J21]_l,(pq) = delta_lp E_q d2_l - W2_p W1_lq d2_l
    J21 = (np.eye(N)[:, :, None] * E[None, None, :] - W2[None, :, None] * W1[:, None, :]) * d2[:, None, None]
    J21 = J21.reshape(N, N * M)
    J22 = -(d2[:, None] * (W1 @ W1.T))
    return np.block([[J11, J12], [J21, J22]])


def origin_eigenvalues(s, d1, d2) -> np.ndarray:
    """Eq. 11: the 2N non-zero eigenvalues +-sqrt(d2_i Sigma), Sigma = sum_j d1_j s_j^2 (complex)."""
    sigma = float(np.sum(np.asarray(d1) * np.asarray(s) ** 2))
    roots = np.sqrt(np.asarray(d2, dtype=complex) * sigma)
    return np.concatenate([roots, -roots])


def manifold_matrix(W1, W2, d1, d2) -> np.ndarray:
    """X = ||W2||^2 D1 + W1^T D2 W1 (eq. 12): on W2 W1 = s the non-zero Jacobian eigenvalues are -eig(X)."""
    W1, W2 = np.asarray(W1, float), np.asarray(W2, float)
    return float(W2 @ W2) * np.diag(np.asarray(d1, float)) + W1.T @ (np.asarray(d2, float)[:, None] * W1)


def manifold_eigenvalues(W1, W2, d1, d2) -> np.ndarray:
    """The M eigenvalues -eig(X) of the Jacobian on the solution manifold that may be non-zero (eq. 12)."""
    return -np.linalg.eigvalsh(manifold_matrix(W1, W2, d1, d2))[::-1]


def curl_fraction(J: np.ndarray) -> float:
    """Antisymmetric (curl) share of a Jacobian: ||A||_F / ||J||_F with A = (J - J^T) / 2 (0 for a gradient flow)."""
    A = 0.5 * (J - J.T)
    nJ = np.linalg.norm(J)
    return float(np.linalg.norm(A) / nJ) if nJ > 0 else 0.0


# ----------------------------------------------------------------------------- two-neuron toy model (eq. 7-9)


def toy_flow(w1, w2, s: float = 1.0, flip: bool = True):
    """Eq. 7 (flip=False, gradient flow) / eq. 8 (flip=True): w1' = w2 E, w2' = +-w1 E, E = s - w1 w2."""
    E = s - w1 * w2
    return w2 * E, (-1.0 if flip else 1.0) * w1 * E


def toy_jacobian(w1: float, w2: float, s: float = 1.0, flip: bool = True) -> np.ndarray:
    """Eq. 9 for the flipped rule: [[-w2^2, s - 2 w1 w2], [2 w1 w2 - s, w1^2]] (gradient flow: sign of row 2 flipped)."""
    sg = -1.0 if flip else 1.0
    return np.array([[-w2 ** 2, s - 2 * w1 * w2], [sg * (s - 2 * w1 * w2), -sg * w1 ** 2]])


def toy_loss(w1, w2, s: float = 1.0):
    """L = (s - w1 w2)^2 / 2."""
    return 0.5 * (s - w1 * w2) ** 2


# ----------------------------------------------------------------------------- random-matrix edges: alpha_h


def quartic_coefficients(x: float, c: float, alpha_h: float) -> np.ndarray:
    """(a4, a3, a2, a1, a0) of P_x(omega) (eq. 118-122), Delta = 1 - 2 alpha_h."""
    d = 1.0 - 2.0 * alpha_h
    a4 = 4.0 * (x * x - 1.0)
    a3 = (-4 * d * c - 8 * c * x * x - 4 * c * x + 8 * c + 8 * x) / c
    a2 = (8 * d * c * c + 4 * c * c * x * x + 8 * c * c * x - 4 * c * c - 8 * c * x - 4 * c + 4) / (c * c)
    a1 = (-4 * d * c - 4 * c * x + 4) / c
    return np.array([a4, a3, a2, a1, 0.0])


def blue_hidden(w, c: float, alpha_h: float):
    """B_X(w) of eq. 113 (branch B ~ 1/w at w -> 0)."""
    d = 1.0 - 2.0 * alpha_h
    w = np.asarray(w, dtype=float)
    return (1.0 + np.sqrt(1.0 + 4.0 * w * (w + d))) / (2.0 * w) + 1.0 / (c * (1.0 - w))


def _first_max_left(fun, lo_exp: float = -6.0, hi_exp: float = 5.0, n: int = 4000) -> tuple[float, float]:
    """First local maximum of fun(w) met when w goes from 0^- to -inf (log grid, then bounded refinement).

    Returns (w*, fun(w*)); if fun keeps increasing to the end of the grid, the end point.
    """
    w = -np.logspace(lo_exp, hi_exp, n)
    f = fun(w)
    dec = np.nonzero(np.diff(f) < 0)[0]
    if len(dec) == 0:
        return float(w[-1]), float(f[-1])
    k = int(dec[0])
    lo, hi = w[min(k + 1, n - 1)], w[max(k - 1, 0)]
    res = optimize.minimize_scalar(lambda t: -float(fun(np.array([t]))[0]), bounds=(lo, hi), method="bounded",
                                   options={"xatol": 1e-12})
    return float(res.x), float(-res.fun)


def hidden_left_edge(c: float, alpha_h: float) -> float:
    """Left edge of the spectrum of X = D1 + W1^T W1 (alpha_h flips, c = M/N), via B_X's first critical point."""
    _check_c_alpha(c, alpha_h)
    if alpha_h == 0.0:
        return 1.0 + max(0.0, (1 - math.sqrt(c)) ** 2 / c) if c < 1 else 1.0
    return _first_max_left(lambda w: blue_hidden(w, c, alpha_h))[1]


def quartic_edges(c: float, alpha_h: float) -> np.ndarray:
    """Support endpoints from the double roots of P_x (eq. 125): x with P_x(w) = P_x'(w) = 0 on the valid branch.

    P_x(omega) = omega Q_x(omega); endpoints are the real roots x of the discriminant of the cubic Q_x
    (a polynomial in x, computed exactly by interpolation), kept when the double root omega is real,
    non-zero, and satisfies the unsquared eq. 116 A(omega, x) = +sqrt(R(omega)) (the B ~ 1/w branch).
    """
    _check_c_alpha(c, alpha_h)
    disc_poly = _discriminant_poly(c, alpha_h)
    xs = np.roots(disc_poly)
    xs = np.real(xs[np.abs(np.imag(xs)) < 1e-7 * (1 + np.abs(xs))])
    d = 1.0 - 2.0 * alpha_h
    edges = []
    for x in np.sort(xs):
        q = quartic_coefficients(x, c, alpha_h)[:4]
        dq = np.polyder(q)
        for w in np.roots(dq):
            if abs(np.imag(w)) > 1e-6 or abs(np.real(w)) < 1e-9:
                continue
            w = float(np.real(w))
            if abs(np.polyval(q, w)) > 1e-6 * (1 + np.abs(q).max()):
                continue
            A = 2 * w * (x - 1.0 / (c * (1 - w))) - 1
            R = 1 + 4 * w * (w + d)
            if R >= 0 and abs(A - math.sqrt(R)) < 1e-5 * (1 + abs(A)):
                edges.append(float(x))
                break
    return np.array(sorted(set(np.round(edges, 12))))


def _discriminant_poly(c: float, alpha_h: float) -> np.ndarray:
    """Discriminant of the cubic Q_x(omega) = P_x(omega)/omega as a polynomial in x (degree <= 8), by exact
    interpolation at 9 points of the closed-form cubic discriminant."""
    def disc(x):
        a, b, cc, d = quartic_coefficients(x, c, alpha_h)[:4]
        return 18 * a * b * cc * d - 4 * b ** 3 * d + b * b * cc * cc - 4 * a * cc ** 3 - 27 * a * a * d * d
    xs = np.linspace(-3, 3, 13)
    coef = np.polyfit(xs, [disc(x) for x in xs], 8)
    coef[np.abs(coef) < 1e-10 * np.abs(coef).max()] = 0.0
    return np.trim_zeros(coef, "f")


def hidden_left_edge_quartic(c: float, alpha_h: float) -> float:
    """Left edge of spec(X) from the quartic's double roots (eq. 117-125); NaN if none is found."""
    e = quartic_edges(c, alpha_h)
    return float(e[0]) if len(e) else float("nan")


# ----------------------------------------------------------------------------- random-matrix edges: alpha_r


def z_readout(m, c: float, alpha_r: float):
    """Inverse Stieltjes transform of B = W1^T D2 W1: z(m) = -1/m + (1/c)[(1-a)/(1+m) - a/(1-m)]."""
    m = np.asarray(m, dtype=float)
    return -1.0 / m + ((1.0 - alpha_r) / (1.0 + m) - alpha_r / (1.0 - m)) / c


def readout_left_edge(c: float, alpha_r: float) -> float:
    """Left edge of spec(X), X = I + W1^T D2 W1 with alpha_r flipped hidden neurons (c = M/N)."""
    _check_c_alpha(c, alpha_r)
    if alpha_r == 0.0:
        return 1.0 + ((1 - math.sqrt(c)) ** 2 / c if c < 1 else 0.0)
    m = np.logspace(-8, np.log10(1 - 1e-12), 20000)
    z = z_readout(m, c, alpha_r)
    k = int(np.argmax(z))
    lo, hi = m[max(k - 1, 0)], m[min(k + 1, len(m) - 1)]
    res = optimize.minimize_scalar(lambda t: -float(z_readout(np.array([t]), c, alpha_r)[0]), bounds=(lo, hi),
                                   method="bounded", options={"xatol": 1e-14})
    return 1.0 + float(-res.fun)


# ----------------------------------------------------------------------------- boundaries


def _check_c_alpha(c: float, alpha: float) -> None:
    if not c > 0:
        raise ValueError(f"compression ratio c = M/N must be > 0, got {c}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"fraction of flipped neurons must lie in [0, 1], got {alpha}")


def left_edge(c: float, alpha: float, layer: str = "hidden") -> float:
    """Left edge of the spectrum of X (stable iff > 0) for flips in ``layer`` ('hidden' -> alpha_h, 'readout' -> alpha_r)."""
    if layer == "hidden":
        return hidden_left_edge(c, alpha)
    if layer == "readout":
        return readout_left_edge(c, alpha)
    raise ValueError(f"layer must be 'hidden' (alpha_h) or 'readout' (alpha_r), got {layer!r}")


@lru_cache(maxsize=4096)
def boundary(c: float, layer: str = "hidden", tol: float = 1e-6) -> float:
    """Critical fraction alpha* (c): the solution manifold is stable for alpha < alpha*, unstable above.

    Uses that X decreases in the Loewner order as neurons are flipped, so the left edge is monotone in alpha.
    Returns 0 when it is unstable for any alpha > 0 and 1 when it is stable for every alpha < 1.
    """
    f = lambda a: left_edge(c, a, layer)  # noqa: E731
    lo, hi = 1e-6, 1.0 - 1e-6
    flo, fhi = f(lo), f(hi)
    if flo <= 0:
        return 0.0
    if fhi > 0:
        return 1.0
    return float(optimize.brentq(f, lo, hi, xtol=tol))


def boundary_curve(cs, layer: str = "hidden") -> np.ndarray:
    """alpha*(c) for each c in ``cs``."""
    return np.array([boundary(float(c), layer) for c in cs])


# ----------------------------------------------------------------------------- sampled spectra


def sample_weights(rng: np.random.Generator, M: int, N: int) -> tuple[np.ndarray, np.ndarray]:
    """W1 ~ N(0, 1/M) of shape (N, M), W2 ~ N(0, 1/N) of shape (N,) (eq. 14)."""
    return rng.normal(0, 1 / math.sqrt(M), (N, M)), rng.normal(0, 1 / math.sqrt(N), N)


def sampled_critical_fraction(rng: np.random.Generator, M: int, N: int, layer: str = "hidden",
                              normalize_w2: bool = True) -> float:
    """Critical fraction for one sampled network on the solution manifold.

    Neurons of ``layer`` are flipped one by one in a random order; lambda_min(X) is non-increasing in the
    number k of flips (each flip subtracts a PSD rank-one term), so bisection finds the first k with
    lambda_min(X) <= 0; returns k/M ('hidden') or k/N ('readout'). ``normalize_w2`` uses ||W2||^2 = 1,
    its large-N limit (as in the theory).
    """
    W1, W2 = sample_weights(rng, M, N)
    w2sq = 1.0 if normalize_w2 else float(W2 @ W2)
    n = M if layer == "hidden" else N
    order = rng.permutation(n)
    S = W1.T @ W1

    def lam_min(k: int) -> float:
        if layer == "hidden":
            d1 = np.ones(M)
            d1[order[:k]] = -1
            X = w2sq * np.diag(d1) + S
        else:  # X = ||W2||^2 I + W1^T D2 W1 = ||W2||^2 I + S - 2 W_f^T W_f (W_f: the k flipped rows)
            Wf = W1[order[:k]]
            X = w2sq * np.eye(M) + S - 2.0 * (Wf.T @ Wf)
        return float(np.linalg.eigvalsh(X)[0])

    if lam_min(0) <= 0:
        return 0.0
    if lam_min(n) > 0:
        return 1.0
    lo, hi = 0, n  # lam(lo) > 0 >= lam(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if lam_min(mid) > 0:
            lo = mid
        else:
            hi = mid
    return (lo + 0.5) / n


def sampled_boundary(c: float, size: int, layer: str = "hidden", samples: int = 8, seed: int = 0) -> tuple[float, float]:
    """Mean and standard error of the sampled critical fraction at compression c, with M + N = ``size``."""
    M = max(1, round(size * c / (1 + c)))
    N = size - M
    rng = np.random.default_rng(seed)
    vals = np.array([sampled_critical_fraction(rng, M, N, layer) for _ in range(samples)])
    return float(vals.mean()), float(vals.std(ddof=1) / math.sqrt(samples)) if samples > 1 else 0.0


def spectrum_density(c: float, alpha: float, layer: str, M: int, samples: int = 1, seed: int = 0) -> np.ndarray:
    """Pooled eigenvalues of sampled X matrices (for histograms against the predicted support)."""
    N = max(1, round(M / c))
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(samples):
        W1, _ = sample_weights(rng, M, N)
        d1, d2 = np.ones(M), np.ones(N)
        if layer == "hidden":
            d1[rng.permutation(M)[: round(alpha * M)]] = -1
        else:
            d2[rng.permutation(N)[: round(alpha * N)]] = -1
        out.append(np.linalg.eigvalsh(np.diag(d1) + W1.T @ (d2[:, None] * W1)))
    return np.concatenate(out)


# ----------------------------------------------------------------------------- recurrent E-I / Hebbian flows (sec. 2, app. A)


def ei_flow(W, Sigma, d, gamma: float = 0.1):
    """Eq. 2 (first order in W): tau dW/dt = Sigma + W D Sigma + Sigma D W^T - gamma W, Sigma = <f f^T>. jax.numpy."""
    import jax.numpy as jnp

    D = jnp.diag(d)
    return Sigma + W @ D @ Sigma + Sigma @ D @ W.T - gamma * W


def ei_flow_exact(W, Sigma, d, gamma: float = 0.1):
    """Hebbian flow at the exact steady state y* = (I - W D)^{-1} f: dW/dt = A Sigma A^T - gamma W, A = (I - WD)^{-1}."""
    import jax.numpy as jnp

    A = jnp.linalg.inv(jnp.eye(W.shape[0]) - W @ jnp.diag(d))
    return A @ Sigma @ A.T - gamma * W


def ei_jacobian(Sigma, d, gamma: float = 0.1) -> np.ndarray:
    """Analytic Jacobian of ``ei_flow`` (constant, eq. 35): J_(ij),(kl) = delta_ik d_l S_lj + delta_jk d_l S_il - gamma delta."""
    S, d = np.asarray(Sigma, float), np.asarray(d, float)
    n = len(d)
    I = np.eye(n)
    J = np.einsum("ik,l,lj->ijkl", I, d, S) + np.einsum("jk,l,il->ijkl", I, d, S)
    J = J.reshape(n * n, n * n) - gamma * np.eye(n * n)
    return J


def hebb_antihebb_flow(W, Sigma, signs):
    """Eq. 24: tau dW/dt = (Sigma + Sigma W^T + W Sigma) (Hadamard) M, M_ij = +1 Hebbian, -1 anti-Hebbian."""
    return (Sigma + Sigma @ W.T + W @ Sigma) * signs


def symmetric_projector(n: int) -> np.ndarray:
    """Orthogonal projector onto symmetric n x n matrices in vec (row-major) coordinates: (I + K) / 2."""
    K = np.zeros((n * n, n * n))
    idx = np.arange(n * n)
    K[idx, (idx % n) * n + idx // n] = 1.0
    return 0.5 * (np.eye(n * n) + K)


def curl_share_symmetric(J: np.ndarray, n: int) -> float:
    """Antisymmetric share ||A|| / ||P J P|| of the flow restricted to symmetric W (A = antisym. part of P J P).

    Appendix A restricts to W = W^T (both flows keep W symmetric); 0 iff the restricted flow is a gradient flow.
    """
    P = symmetric_projector(n)
    return curl_fraction(P @ np.asarray(J) @ P)
