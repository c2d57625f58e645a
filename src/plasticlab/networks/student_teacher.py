"""Vectorised student-teacher simulator for curl descent (many networks advance in one tensor computation).

Student and teacher: y = W2 f(W1 x), W1 of shape (N, M), W2 of shape (N,) (scalar output). One step of
curl descent on a batch of n samples (e = y_hat - y, h = f(W1 x), feedback vector b = W2 for GD-style
feedback or a fixed random b for DFA), computed by the kernels of ``plasticlab.rules.curl``:

    Delta W1 = -eta <(b e) * f'(W1 x) x^T> D1,     Delta W2 = -eta <e h^T> D2,

optionally followed by W_l <- W_l ||W_l(0)||_F / ||W_l||_F (the authors' per-step rescaling). With no flips
(D1 = I, D2 = I) and b = W2 this is gradient descent on L = <e^2>/2. For linear full-batch training the
update only needs C = <x x^T> and r = <x y>: with v = W2 W1 and g = C v - r,
Delta W1 = -eta (b g^T) D1 and Delta W2 = -eta (W1 g) D2 (exactly the same step, O(NM + M^2) per step).

Networks are vmapped twice: over "seeds" (which own teacher, data, initial weights) and, inside, over
"variants" (flip patterns sharing the seed's data and initial weights). Cells of different shapes are
batched by zero padding (``pad_network``): padded inputs are zero and padded weights start at zero, so
they get zero updates and leave every norm unchanged. Metrics are logged at given (e.g. log-spaced) epochs
by the library's one driver (``training.drive``); the epochs in between run in one compiled while loop.

Linear networks run in a reduced basis when it is smaller (``reduce_network``). W1 changes by u gd^T with u = -eta b
(b = W2, or the DFA vector), and W2 by -eta D2 (W1 g); both steps and the rescaling keep every column of W1 and W2
inside the span of the initial columns of W1, W2 (and b for DFA), taken apart on the non-flipped and the flipped
hidden neurons: a space of dimension B <= 2 (M + 1) (2 (M + 2) for DFA) that D2 maps onto itself. With Q (N, B)
an orthonormal basis of it whose columns each live on one sign class, D2 Q = Q diag(sigma), and

    W1 = Q Phi,  W2 = Q psi:   Phi <- Phi - eta psi gd^T (or - eta Q^T b gd^T),   psi <- psi - eta sigma * (Phi g),

which is the same simulator for a network of B hidden neurons with signs sigma: every norm, v = W2 W1 = psi Phi,
error and q (eq. 15, from sums that the orthonormal map preserves) equal the full network's. A step then costs
O(B M) instead of O(N M): about 4.7x less in Fig. 3a's setting (M = 20, N = 199, B = 42).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..rules import curl as curl_rule
from .activations import get_activation


class Net(NamedTuple):
    """One network's trainable state and fixed descriptors (arrays may carry leading batch axes)."""

    W1: jax.Array       # (N, M)
    W2: jax.Array       # (N,)
    d1: jax.Array       # (M,) signs of the input neurons (presynaptic to W1)
    d2: jax.Array       # (N,) signs of the hidden neurons (presynaptic to W2)
    fb: jax.Array       # (N,) fixed DFA feedback vector (ignored with GD feedback)
    n1: jax.Array       # () target Frobenius norm of W1 (its initial norm)
    n2: jax.Array       # () target Frobenius norm of W2


class Data(NamedTuple):
    """A seed's data: training samples, test samples, teacher, and (linear) sufficient statistics."""

    x: jax.Array        # (n, M)
    y: jax.Array        # (n,)
    x_test: jax.Array   # (n_test, M)
    y_test: jax.Array   # (n_test,)
    C: jax.Array        # (M, M) = <x x^T> over the training set
    r: jax.Array        # (M,) = <x y>
    s: jax.Array        # (M,) teacher map W2* W1* (meaningful for linear teachers)


class SimConfig(NamedTuple):
    lr: float = 0.1
    activation: str = "linear"
    feedback: str = "gd"          # "gd" (b = W2) or "dfa" (b fixed random)
    rescale: bool = True          # W_l <- W_l ||W_l(0)|| / ||W_l|| after every step
    batch_size: int | None = None  # None: full batch
    use_stats: bool | None = None  # linear full batch through C, r (default: when possible)
    avg_start: int = 0            # epochs >= avg_start enter the time averages of w and w^2 (order parameter q)
    exact_test: bool = True       # linear teacher + isotropic inputs: test error = ||v - s||^2 / ||s||^2
    reduce: bool | None = None    # linear networks in the reduced basis (``reduce_network``; default: when smaller)
    track_peak: bool | None = None  # the test error's maximum over every epoch: None where it is free (the linear
    #                                 exact test error), True also for other networks (one test-set forward pass
    #                                 per epoch), False never; untracked, the peak is NaN


# ----------------------------------------------------------------------------- construction


def uniform_fanin(key: jax.Array, shape: tuple[int, ...], fan_in: int, scale: float = 1.0) -> jax.Array:
    """U(-1, 1) / sqrt(fan_in), times ``scale`` (the reference code's init)."""
    return scale * jax.random.uniform(key, shape, minval=-1.0, maxval=1.0) / math.sqrt(fan_in)


def flip_signs(n: int, alpha: float | None = None, index=None, key: jax.Array | None = None) -> np.ndarray:
    """Sign vector of length n with round(alpha n) entries -1 at random (needs key) or at explicit ``index``."""
    d = np.ones(n, dtype=np.float32)
    if index is not None:
        idx = np.atleast_1d(np.asarray(index, dtype=int))
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise ValueError(f"flip index out of range for a layer of {n} neurons: {idx.tolist()}")
        d[idx] = -1.0
        return d
    if alpha is None:
        return d
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"fraction of flipped neurons must be in [0, 1], got {alpha}")
    k = int(round(alpha * n))
    if k == 0:
        return d
    if key is None:
        raise ValueError("random flips need a PRNG key (or pass explicit indices)")
    perm = np.asarray(jax.random.permutation(key, n))
    d[perm[:k]] = -1.0
    return d


def make_data(key: jax.Array, M: int, N: int, n_train: int, n_test: int, activation: str = "linear",
              teacher_scale: float = 1.0, x_std: float = 1 / math.sqrt(2)) -> tuple[Data, tuple[jax.Array, jax.Array]]:
    """Teacher W* ~ U(-1,1)/sqrt(fan_in) * teacher_scale, inputs x ~ N(0, x_std^2), targets y = W2* f(W1* x)."""
    k1, k2, k3, k4 = jax.random.split(key, 4)
    T1 = uniform_fanin(k1, (N, M), M, teacher_scale)
    T2 = uniform_fanin(k2, (N,), N, teacher_scale)
    f = get_activation(activation).f
    x = x_std * jax.random.normal(k3, (n_train, M))
    xt = x_std * jax.random.normal(k4, (n_test, M))
    y, yt = f(x @ T1.T) @ T2, f(xt @ T1.T) @ T2
    C = x.T @ x / n_train
    r = x.T @ y / n_train
    return Data(x, y, xt, yt, C, r, T2 @ T1), (T1, T2)


def make_net(key: jax.Array, M: int, N: int, d1, d2, init_scale: float = 1.0, W1=None, W2=None) -> Net:
    """Student with U(-1,1)/sqrt(fan_in) * init_scale weights (or given W1, W2); DFA vector drawn the same way."""
    k1, k2, k3 = jax.random.split(key, 3)
    W1 = uniform_fanin(k1, (N, M), M, init_scale) if W1 is None else jnp.asarray(W1)
    W2 = uniform_fanin(k2, (N,), N, init_scale) if W2 is None else jnp.asarray(W2)
    fb = uniform_fanin(k3, (N,), N)
    return Net(W1, W2, jnp.asarray(d1, jnp.float32), jnp.asarray(d2, jnp.float32), fb,
               jnp.linalg.norm(W1), jnp.linalg.norm(W2))


def pad_network(net: Net, M: int, N: int) -> Net:
    """Zero-pad a network to M inputs and N hidden neurons (padded signs +1); dynamics are unchanged."""
    n, m = net.W1.shape
    if m > M or n > N:
        raise ValueError(f"cannot pad a ({n}, {m}) network down to ({N}, {M})")
    return Net(jnp.pad(net.W1, ((0, N - n), (0, M - m))), jnp.pad(net.W2, (0, N - n)),
               jnp.pad(net.d1, (0, M - m), constant_values=1.0), jnp.pad(net.d2, (0, N - n), constant_values=1.0),
               jnp.pad(net.fb, (0, N - n)), net.n1, net.n2)


def pad_data(data: Data, M: int) -> Data:
    """Zero-pad the input dimension of a data set to M (padded inputs are identically zero)."""
    m = data.x.shape[-1]
    p = M - m
    return Data(jnp.pad(data.x, ((0, 0), (0, p))), data.y, jnp.pad(data.x_test, ((0, 0), (0, p))), data.y_test,
                jnp.pad(data.C, ((0, p), (0, p))), jnp.pad(data.r, (0, p)), jnp.pad(data.s, (0, p)))


def stack(items):
    """Stack a list of pytrees along a new leading axis."""
    return jax.tree.map(lambda *a: jnp.stack(a), *items)


# ----------------------------------------------------------------------------- one step


def _renorm(net: Net, W1: jax.Array, W2: jax.Array, rescale: bool) -> Net:
    if rescale:
        W1, W2 = curl_rule.renormalised(W1, net.n1), curl_rule.renormalised(W2, net.n2)
    return net._replace(W1=W1, W2=W2)


def _feedback(net: Net, cfg: SimConfig) -> jax.Array:
    """b: the readout W2 (GD-style feedback) or the fixed random DFA vector."""
    return net.W2 if cfg.feedback == "gd" else net.fb


def curl_delta(net: Net, x: jax.Array, y: jax.Array, cfg: SimConfig) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(Delta W1, Delta W2, batch MSE) of eq. 5 on samples x (n, M), y (n,): ``rules.curl.two_layer_delta``
    (linear networks in factored form, O(NM + nM) instead of O(nNM) per step)."""
    dW1, dW2, e = curl_rule.two_layer_delta(net.W1, net.W2, _feedback(net, cfg), net.d1, net.d2, x, y, cfg.lr,
                                            cfg.activation)
    return dW1, dW2, jnp.mean(e ** 2)


def curl_delta_stats(net: Net, C: jax.Array, r: jax.Array, cfg: SimConfig) -> tuple[jax.Array, jax.Array]:
    """Linear full-batch step from C = <x x^T>, r = <x y>: g = C v - r, v = W2 W1 (``rules.curl``)."""
    g = curl_rule.linear_gradient_stats(net.W1, net.W2, C, r)
    return curl_rule.linear_delta(net.W1, _feedback(net, cfg), net.d1, net.d2, g, cfg.lr)


def _validate(cfg: SimConfig) -> None:
    if cfg.feedback not in ("gd", "dfa"):
        raise ValueError(f"feedback must be 'gd' or 'dfa', got {cfg.feedback!r}")
    get_activation(cfg.activation)
    if cfg.reduce and cfg.activation != "linear":
        raise ValueError(f"reduce=True needs a linear network (the reduced basis is exact only then), got "
                         f"activation={cfg.activation!r}")
    if cfg.use_stats and (cfg.activation != "linear" or cfg.batch_size is not None):
        raise ValueError("use_stats=True needs a linear network trained full batch (batch_size=None)")


def _use_stats(cfg: SimConfig) -> bool:
    if cfg.use_stats is None:
        return cfg.activation == "linear" and cfg.batch_size is None
    return bool(cfg.use_stats)


def epoch(net: Net, data: Data, cfg: SimConfig, key: jax.Array) -> tuple[Net, jax.Array]:
    """One epoch (one full-batch step, or n // batch_size mini-batch steps over a fresh permutation drawn from
    ``key``: ``simulate`` passes one key per seed, so the variants of a seed see the same mini-batches)."""
    if cfg.batch_size is None:
        if _use_stats(cfg):
            dW1, dW2 = curl_delta_stats(net, data.C, data.r, cfg)
            loss = jnp.full((), jnp.nan)  # not computed on this path
        else:
            dW1, dW2, loss = curl_delta(net, data.x, data.y, cfg)
        return _renorm(net, net.W1 + dW1, net.W2 + dW2, cfg.rescale), loss
    n = data.x.shape[0]
    nb = n // cfg.batch_size
    perm = jax.random.permutation(key, n)[: nb * cfg.batch_size]
    xs = data.x[perm].reshape(nb, cfg.batch_size, -1)   # one gather per epoch, then contiguous slices
    ys = data.y[perm].reshape(nb, cfg.batch_size)

    fused = cfg.activation == "linear" and cfg.rescale

    def body(net, xy):
        if fused:  # step and rescaling in three passes over W1 (``rules.curl.linear_step_rescaled``)
            W1, W2, e = curl_rule.linear_step_rescaled(net.W1, net.W2, _feedback(net, cfg), net.d1, net.d2, xy[0],
                                                       xy[1], cfg.lr, net.n1, net.n2)
            return net._replace(W1=W1, W2=W2), jnp.mean(e ** 2)
        dW1, dW2, loss = curl_delta(net, xy[0], xy[1], cfg)
        return _renorm(net, net.W1 + dW1, net.W2 + dW2, cfg.rescale), loss

    net, losses = jax.lax.scan(body, net, (xs, ys), unroll=1 if fused else 5)
    if fused:  # the norm identity assumes ||W1|| = n1: restore it exactly once per epoch against rounding drift
        net = net._replace(W1=curl_rule.renormalised(net.W1, net.n1))
    return net, jnp.mean(losses)


# ----------------------------------------------------------------------------- reduced basis (linear networks)


def basis_size(M: int, cfg: SimConfig) -> int:
    """B = 2 (M + 1) columns of the reduced basis (2 (M + 2) with DFA feedback): per sign class of the hidden
    neurons, the M columns of W1(0), W2(0) and the DFA vector."""
    return 2 * (M + 1 + (cfg.feedback == "dfa"))


def _use_reduced(M: int, N: int, cfg: SimConfig) -> bool:
    if cfg.reduce is None:
        return cfg.activation == "linear" and basis_size(M, cfg) < N
    return bool(cfg.reduce)


def reduce_network(net: Net, cfg: SimConfig) -> tuple[Net, jax.Array]:
    """(the same network in its reduced basis, Q (N, B)) for one linear network (see the module doc).

    Per sign class s of the hidden neurons (d2 = +1, then -1), the left singular vectors of [W1, W2, (b)]
    restricted to that class with a non-zero singular value (numpy's matrix-rank tolerance) are the columns
    of Q; the others are zero columns whose coefficients are zero and stay zero. The reduced network has
    W1 = Q^T W1, W2 = Q^T W2, DFA vector Q^T b and hidden signs sigma (the class of each column)."""
    cols = [net.W1, net.W2[:, None]] + ([net.fb[:, None]] if cfg.feedback == "dfa" else [])
    A = jnp.concatenate(cols, axis=1)
    Q, sigma = [], []
    for sign in (1.0, -1.0):
        on = (net.d2 == sign).astype(A.dtype)[:, None]
        U, S, _ = jnp.linalg.svd(A * on, full_matrices=False)
        tol = jnp.max(S) * max(A.shape) * jnp.finfo(A.dtype).eps
        Q.append(U * on * (S > tol).astype(A.dtype)[None, :])
        sigma.append(jnp.full(S.shape, sign, A.dtype))
    Q, sigma = jnp.concatenate(Q, axis=1), jnp.concatenate(sigma)
    return net._replace(W1=Q.T @ net.W1, W2=Q.T @ net.W2, d2=sigma, fb=Q.T @ net.fb), Q


def expand_network(reduced: Net, Q: jax.Array, full: Net) -> Net:
    """``full`` with the weights of ``reduced`` mapped back: W1 = Q Phi, W2 = Q psi."""
    return full._replace(W1=Q @ reduced.W1, W2=Q @ reduced.W2)


# ----------------------------------------------------------------------------- metrics


def test_error(net: Net, data: Data, cfg: SimConfig) -> jax.Array:
    """Relative test error: ||v - s||^2/||s||^2 (linear, exact for isotropic inputs) or <e^2>_test / <y^2>_test."""
    if cfg.activation == "linear" and cfg.exact_test:
        v = net.W2 @ net.W1
        return jnp.sum((v - data.s) ** 2) / jnp.sum(data.s ** 2)
    act = get_activation(cfg.activation)
    yh = act.f(data.x_test @ net.W1.T) @ net.W2
    return jnp.mean((yh - data.y_test) ** 2) / jnp.mean(data.y_test ** 2)


def train_error(net: Net, data: Data, cfg: SimConfig) -> jax.Array:
    """Relative training error <e^2>_train / <y^2>_train."""
    act = get_activation(cfg.activation)
    yh = act.f(data.x @ net.W1.T) @ net.W2
    return jnp.mean((yh - data.y) ** 2) / jnp.mean(data.y ** 2)


# ----------------------------------------------------------------------------- the scanned simulation


def log_epochs(n_epochs: int, n_logs: int = 40) -> np.ndarray:
    """Log-spaced distinct epochs 0 < t_1 < ... = n_epochs (0 is logged separately)."""
    t = np.unique(np.round(np.logspace(0, np.log10(max(n_epochs, 1)), n_logs)).astype(int))
    return t[t >= 1]


class _Run(NamedTuple):
    """One network's simulation state: the network, the running sums of the order parameter (the sum of
    w - w(0) per weight, shifted against cancellation, as (W1, W2); the sum of ||w - w(0)||^2 over all weights;
    the count of averaged epochs) and the peak test error. The epoch count and the data-order key are kept
    apart: one count for all networks, one key per seed, so that vmap computes each seed's permutation once
    for all its variants."""

    net: Net
    w0: tuple[jax.Array, jax.Array]
    s1: tuple[jax.Array, jax.Array]
    s2: jax.Array
    cnt: jax.Array
    peak: jax.Array


def _flat(net: Net) -> jax.Array:
    return jnp.concatenate([net.W1.ravel(), net.W2])


def _tracks_peak(cfg: SimConfig) -> bool:
    if cfg.track_peak is None:
        return cfg.activation == "linear" and cfg.exact_test
    return bool(cfg.track_peak)


def _start(net: Net, data: Data, cfg: SimConfig) -> _Run:
    w0 = (net.W1, net.W2)
    peak = test_error(net, data, cfg) if _tracks_peak(cfg) else jnp.zeros(())
    return _Run(net, w0, jax.tree.map(jnp.zeros_like, w0), jnp.zeros(()), jnp.zeros(()), peak)


def _advance(run: _Run, t: jax.Array, key: jax.Array, data: Data, target: jax.Array, cfg: SimConfig):
    """Epochs t..target-1 (a while loop: any number of epochs without recompiling); from ``cfg.avg_start`` on,
    every epoch adds w - w(0) and ||w - w(0)||^2 to the time sums (skipped before: the epoch count is shared
    by all networks, so the branch is not batched). Returns (run, target, key)."""

    def accumulate(r: _Run, net: Net) -> tuple:
        dw = (net.W1 - r.w0[0], net.W2 - r.w0[1])
        return (jax.tree.map(jnp.add, r.s1, dw), r.s2 + sum(jnp.sum(d * d) for d in dw), r.cnt + 1.0)

    def body(c):
        r, t, key = c
        key, sub = jax.random.split(key)
        net, _ = epoch(r.net, data, cfg, sub)
        t = t + 1
        s1, s2, cnt = jax.lax.cond(t >= cfg.avg_start, accumulate, lambda r, net: (r.s1, r.s2, r.cnt), r, net)
        err = test_error(net, data, cfg) if _tracks_peak(cfg) else jnp.zeros(())
        return _Run(net, r.w0, s1, s2, cnt, jnp.maximum(r.peak, err)), t, key

    return jax.lax.while_loop(lambda c: c[1] < target, body, (run, t, key))


def _metrics(run: _Run, data: Data, cfg: SimConfig, record: bool, Q: jax.Array | None = None) -> dict:
    net = run.net
    out = {"test_error": test_error(net, data, cfg), "train_error": train_error(net, data, cfg),
           "norm1": jnp.linalg.norm(net.W1), "norm2": jnp.linalg.norm(net.W2)}
    if record:
        out["weights"] = _flat(net if Q is None else expand_network(net, Q, net))
    return out


def _order_parameter(run: _Run, Q: jax.Array | None = None) -> jax.Array:
    """Eq. 15: q = <Var_t(w_i)>_i / Var_i(<w_i>_t) over the averaged epochs, from the time sums:
    sum_i Var_t(w_i) = s2 / T - sum_i <w_i - w_i(0)>^2.

    In the reduced basis (``Q`` given) the sums run over the full network's P = N M + N weights: sum_i Var_t(w_i)
    and sum_i <w_i>^2 are invariant under the orthonormal map, and sum_i <w_i> is the column sums of Q applied
    to the reduced time average."""
    cnt = jnp.maximum(run.cnt, 1.0)
    mean = jax.tree.map(lambda s: s / cnt, run.s1)
    var_t = jnp.maximum(run.s2 / cnt - sum(jnp.sum(m * m) for m in mean), 0.0)
    m1, m2 = (a + b for a, b in zip(mean, run.w0))               # <W1>_t, <W2>_t
    if Q is None:
        P, total = m1.size + m2.size, jnp.sum(m1) + jnp.sum(m2)
    else:
        ones = jnp.sum(Q, axis=0)                                # Q^T 1: sum over the hidden neurons
        P, total = Q.shape[0] * (m1.shape[1] + 1), ones @ m1.sum(axis=1) + ones @ m2
    var_i = (jnp.sum(m1 * m1) + jnp.sum(m2 * m2)) / P - (total / P) ** 2
    return (var_t / P) / jnp.maximum(var_i, 1e-30)


def simulate(nets: Net, data: Data, key: jax.Array, n_epochs: int, cfg: SimConfig = SimConfig(),
             epochs_at=None, record: bool = False, progress: bool | str | None = None) -> dict:
    """Run every network for ``n_epochs`` epochs; nets carry axes (seeds, variants), data axes (seeds,).

    The epochs between two logged epochs run in one compiled while loop for every network at once, driven by
    the library's one driver (``training.drive``). Returns {"epochs": (T+1,), "logs": {metric: (seeds,
    variants, T+1)}, "final": Net, "q": (seeds, variants), "peak_test_error": (seeds, variants)}. ``q`` is eq. 15
    over epochs >= cfg.avg_start; peak error is the maximum of the test error over all epochs (``cfg.track_peak``;
    NaN where it is not tracked).
    """
    from ..training import drive

    _validate(cfg)
    if nets.W1.ndim != 4:
        raise ValueError(f"nets must carry (seeds, variants) axes: W1 of shape (S, V, N, M), got {nets.W1.shape}")
    S, V = nets.W1.shape[:2]
    if data.x.shape[0] != S:
        raise ValueError(f"data has {data.x.shape[0]} seeds but nets have {S}")
    if cfg.batch_size is not None and cfg.batch_size > data.x.shape[1]:
        raise ValueError(f"batch_size {cfg.batch_size} exceeds the {data.x.shape[1]} training samples")
    at = log_epochs(n_epochs) if epochs_at is None else np.asarray(epochs_at, dtype=int)
    if np.any(np.diff(at) <= 0) or at[0] < 1:
        raise ValueError("epochs_at must be increasing positive epochs")
    start, advance, metrics = _compiled(cfg, record)
    full, Q = nets, None
    if _use_reduced(nets.W1.shape[3], nets.W1.shape[2], cfg):
        nets, Q = _reduce_all(cfg)(full)
    logs: list[dict] = []
    state = (start(nets, data), jnp.zeros((), jnp.int32), jax.random.split(key, S))
    (run, _, _), _ = drive(lambda c, _, stop: (advance(*c, data, jnp.asarray(stop, jnp.int32)), None), state,
                           [int(t) for t in at], lambda c, _, __: logs.append(metrics(c[0], data, Q)),
                           progress=progress, desc=f"curl x{S * V} networks")
    final = run.net if Q is None else jax.vmap(jax.vmap(expand_network))(run.net, Q, full)
    return {"logs": jax.tree.map(lambda *a: np.stack([np.asarray(v) for v in a], axis=2), *logs),
            "final": jax.tree.map(np.asarray, final), "q": np.asarray(jax.vmap(jax.vmap(_order_parameter))(run, Q)),
            "peak_test_error": np.asarray(run.peak) if _tracks_peak(cfg) else np.full((S, V), np.nan),
            "epochs": np.concatenate([[0], at]), "reduced": Q is not None}


_CACHE: dict = {}


def _compiled(cfg: SimConfig, record: bool):
    """Jitted (start, advance, metrics) over (seeds, variants) networks (cached per settings)."""
    k = (cfg, record)
    if k not in _CACHE:
        start = jax.vmap(jax.vmap(lambda n, d: _start(n, d, cfg), in_axes=(0, None)), in_axes=(0, 0))
        advance = jax.vmap(jax.vmap(lambda r, t, k, d, stop: _advance(r, t, k, d, stop, cfg),
                                    in_axes=(0, None, None, None, None), out_axes=(0, None, None)),
                           in_axes=(0, None, 0, 0, None), out_axes=(0, None, 0))
        metrics = jax.vmap(jax.vmap(lambda r, d, Q: _metrics(r, d, cfg, record, Q), in_axes=(0, None, 0)),
                           in_axes=(0, 0, 0))
        _CACHE[k] = (jax.jit(start), jax.jit(advance), jax.jit(metrics))
    return _CACHE[k]


def _reduce_all(cfg: SimConfig):
    """Jitted ``reduce_network`` over (seeds, variants) networks."""
    k = ("reduce", cfg)
    if k not in _CACHE:
        _CACHE[k] = jax.jit(jax.vmap(jax.vmap(lambda n: reduce_network(n, cfg))))
    return _CACHE[k]


# ----------------------------------------------------------------------------- helpers for experiments


def build_batch(key: jax.Array, M: int, N: int, seeds: int, variants: list[tuple[np.ndarray, np.ndarray]],
                n_train: int, n_test: int = 500, activation: str = "linear", init_scale: float = 1.0,
                teacher_scale: float = 1.0, near_solution: float | None = None,
                pad_to: tuple[int, int] | None = None) -> tuple[Net, Data]:
    """Seeds x variants networks: seed k owns teacher, data and initial weights; variant v its signs (d1, d2).

    ``near_solution`` = eps starts the student at the teacher plus eps-relative noise (Fig. 4b).
    ``pad_to`` = (M_max, N_max) zero-pads every array so that cells of different shapes share one batch.
    """
    nets, datas = [], []
    for s in range(seeds):
        kd, kn, ke = jax.random.split(jax.random.fold_in(key, s), 3)
        data, (T1, T2) = make_data(kd, M, N, n_train, n_test, activation, teacher_scale)
        W1 = W2 = None
        if near_solution is not None:
            e1, e2 = jax.random.split(ke)
            W1 = T1 * (1 + near_solution * jax.random.normal(e1, T1.shape))
            W2 = T2 * (1 + near_solution * jax.random.normal(e2, T2.shape))
        row = [make_net(kn, M, N, d1, d2, init_scale, W1, W2) for d1, d2 in variants]
        if pad_to is not None:
            row = [pad_network(n, pad_to[0], pad_to[1]) for n in row]
            data = pad_data(data, pad_to[0])
        nets.append(stack(row))
        datas.append(data)
    return stack(nets), stack(datas)


def numpy_epoch(W1: np.ndarray, W2: np.ndarray, d1: np.ndarray, d2: np.ndarray, x: np.ndarray, y: np.ndarray,
                lr: float, batch_size: int, rng: np.random.Generator, n1: float, n2: float,
                rescale: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Reference one-network NumPy epoch of linear curl descent (mini-batches over a random permutation)."""
    n = x.shape[0]
    perm = rng.permutation(n)
    for k in range(n // batch_size):
        idx = perm[k * batch_size:(k + 1) * batch_size]
        xb, yb = x[idx], y[idx]
        e = xb @ (W2 @ W1) - yb          # same factored form as the JAX path: h = W1 x, <e h> = W1 <e x>
        g = e @ xb / batch_size
        dW1 = -lr * np.outer(W2, g) * d1[None, :]
        dW2 = -lr * (W1 @ g) * d2
        W1, W2 = W1 + dW1, W2 + dW2
        if rescale:
            W1 = W1 * (n1 / np.linalg.norm(W1))
            W2 = W2 * (n2 / np.linalg.norm(W2))
    return W1, W2
