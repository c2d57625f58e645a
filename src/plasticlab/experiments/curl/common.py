"""Shared helpers of the curl-descent experiments (phase grids, trajectories, statistics)."""

from __future__ import annotations

import math
import jax
import numpy as np

from ...networks import student_teacher as st
from ..base import paper_entry, verdict


def shape_for(c: float, total: int) -> tuple[int, int]:
    """(M, N) with M + N = total and M / N as close to c as possible (both >= 1)."""
    if c <= 0:
        raise ValueError(f"compression ratio c must be > 0, got {c}")
    M = min(total - 1, max(1, round(total * c / (1 + c))))
    return M, total - M


def flip_variants(M: int, N: int, alphas, layer: str, key: jax.Array) -> list[tuple[np.ndarray, np.ndarray]]:
    """One (d1, d2) per alpha; flips in the hidden layer's inputs (D1, alpha_h) or the readout's (D2, alpha_r).

    Nested flips: the neurons flipped at a smaller alpha are also flipped at a larger one (one permutation).
    """
    if layer not in ("hidden", "readout"):
        raise ValueError(f"layer must be 'hidden' (alpha_h) or 'readout' (alpha_r), got {layer!r}")
    n = M if layer == "hidden" else N
    perm = np.asarray(jax.random.permutation(key, n))
    out = []
    for a in alphas:
        if not 0 <= a <= 1:
            raise ValueError(f"fractions of flipped neurons must lie in [0, 1], got {a}")
        d = np.ones(n, np.float32)
        d[perm[: int(round(a * n))]] = -1
        out.append((d, np.ones(N, np.float32)) if layer == "hidden" else (np.ones(M, np.float32), d))
    return out


def phase_cell_group(c: float, alphas, layer: str, total: int, seeds: int, n_train: int, epochs: int, lr: float,
                     activation: str, rescale: bool, seed: int, near_solution: float | None = None,
                     avg_frac: float = 0.5, n_logs: int = 30) -> dict:
    """All alphas x seeds networks of one compression ratio c, vmapped; per-network summary rows."""
    M, N = shape_for(c, total)
    key = jax.random.fold_in(jax.random.PRNGKey(seed), int(round(c * 1e6)))
    variants = flip_variants(M, N, alphas, layer, jax.random.fold_in(key, 1))
    nets, data = st.build_batch(key, M, N, seeds, variants, n_train, n_test=500, activation=activation,
                                near_solution=near_solution)
    # next to the teacher the peak error is the point (Fig. 4b / 8b): tracked every epoch whatever the activation
    cfg = st.SimConfig(lr=lr, activation=activation, rescale=rescale, avg_start=int(epochs * (1 - avg_frac)),
                       track_peak=True if near_solution is not None else None)
    out = st.simulate(nets, data, jax.random.fold_in(key, 2), epochs, cfg, epochs_at=st.log_epochs(epochs, n_logs))
    te = out["logs"]["test_error"]                        # (seeds, alphas, T+1)
    final = np.nanmean(te[..., -5:], axis=-1)             # mean over the last 5 log points
    slope = last_decade_slope(out["epochs"], te)          # d log10(error) / d log10(epoch), last decade
    rows = []
    for k in range(seeds):
        for j, a in enumerate(alphas):
            rows.append({"c": float(c), "M": M, "N": N, "alpha": float(a), "layer": layer, "seed": k,
                         "initial_test_error": float(te[k, j, 0]),
                         "test_error": float(final[k, j]), "q": float(out["q"][k, j]),
                         "peak_test_error": float(out["peak_test_error"][k, j]),
                         "log10_error_slope_last_decade": float(slope[k, j]),
                         "projected_test_error_1e5": projected_error(final[k, j], slope[k, j], epochs),
                         "diverged": bool(not np.isfinite(final[k, j]))})
    curves = {"epochs": out["epochs"].tolist(), "mean_log10_error": np.log10(np.maximum(te, 1e-30)).mean(0).tolist()}
    return {"rows": rows, "curves": curves}


PAPER_EPOCHS = 100_000  # the paper's training length for the Fig. 3 / 4 grids


def last_decade_slope(epochs, errors: np.ndarray) -> np.ndarray:
    """Least-squares slope of log10(error) against log10(epoch) over the logged epochs of the last decade
    (epoch >= T / 10), per network (leading axes of ``errors``, whose last axis follows ``epochs``); NaN where
    fewer than two finite points."""
    ep = np.asarray(epochs, float)
    sel = (ep >= ep[-1] / 10) & (ep > 0)
    x = np.log10(ep[sel])
    y = np.log10(np.maximum(np.asarray(errors, float)[..., sel], 1e-30))
    ok = np.isfinite(y)
    n = ok.sum(-1)
    xm = np.where(ok, x, 0).sum(-1) / np.maximum(n, 1)
    ym = np.where(ok, y, 0).sum(-1) / np.maximum(n, 1)
    dx = np.where(ok, x - xm[..., None], 0)
    cov = (dx * np.where(ok, y - ym[..., None], 0)).sum(-1)
    var = (dx ** 2).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n >= 2) & (var > 0), cov / var, np.nan)


def projected_error(final: float, slope: float, epochs: int, target: int = PAPER_EPOCHS) -> float:
    """The final error carried to ``target`` epochs along the last decade's power law (never below the float
    floor; the final error itself when ``epochs`` >= target or the slope is unknown)."""
    if not np.isfinite(final) or not np.isfinite(slope) or epochs >= target:
        return float(final)
    return float(max(final * (target / epochs) ** min(slope, 0.0), 1e-30))


def trajectory(c: float, alpha: float, layer: str, total: int, n_train: int, epochs: int, lr: float,
               activation: str, rescale: bool, seed: int, n_snap: int = 400, near_solution: float | None = None,
               keep_weights: int = 12) -> dict:
    """One network with weights recorded at n_snap uniformly spaced epochs: example weights, weight
    autocorrelation (mean over weights of the normalised autocovariance of w(t) - <w>), PCA projection."""
    M, N = shape_for(c, total)
    key = jax.random.fold_in(jax.random.PRNGKey(seed), 99)
    variants = flip_variants(M, N, [alpha], layer, jax.random.fold_in(key, 1))
    nets, data = st.build_batch(key, M, N, 1, variants, n_train, activation=activation, near_solution=near_solution)
    at = np.unique(np.linspace(1, epochs, n_snap).astype(int))
    cfg = st.SimConfig(lr=lr, activation=activation, rescale=rescale)
    out = st.simulate(nets, data, jax.random.fold_in(key, 2), epochs, cfg, epochs_at=at, record=True)
    W = out["logs"]["weights"][0, 0]                      # (T+1, P)
    err = out["logs"]["test_error"][0, 0]
    half = W[len(W) // 2:]
    dw = half - half.mean(0)
    var = (dw ** 2).mean(0)
    live = var > 1e-12 * max(var.max(), 1e-30)
    lags = np.arange(0, len(dw) // 2)
    if live.any():
        z = dw[:, live] / np.sqrt(var[live])
        ac = np.array([np.mean(z[: len(z) - L] * z[L:]) for L in lags])
    else:
        ac = np.zeros(len(lags))
    Xc = W - W.mean(0)
    U, S, _ = np.linalg.svd(Xc, full_matrices=False)
    pcs = U[:, :2] * S[:2]
    rng = np.random.default_rng(0)
    idx = rng.choice(W.shape[1], size=min(keep_weights, W.shape[1]), replace=False)
    step = float(at[1] - at[0]) if len(at) > 1 else 1.0
    return {"c": c, "alpha": alpha, "layer": layer, "epochs": out["epochs"].tolist(),
            "test_error": err.tolist(), "weights": W[:, idx].tolist(), "autocorr_lag_epochs": (lags * step).tolist(),
            "autocorr": ac.tolist(), "pca": pcs.tolist(),
            "explained_variance": (S[:2] ** 2 / max((S ** 2).sum(), 1e-30)).tolist()}


def aggregate(rows: list[dict], keys=("c", "alpha"), metrics=("test_error", "q")) -> list[dict]:
    """Mean (and max for peak_test_error) over seeds per cell."""
    import pandas as pd

    df = pd.DataFrame(rows)
    agg = {m: "mean" for m in metrics if m in df}
    if "peak_test_error" in df:
        agg["peak_test_error"] = "max"
    return df.groupby(list(keys)).agg(agg).reset_index().to_dict("records")


def grid_matrix(cells: list[dict], cs, alphas, metric: str) -> np.ndarray:
    """(len(alphas), len(cs)) matrix of a cell metric (NaN where missing)."""
    out = np.full((len(alphas), len(cs)), np.nan)
    for r in cells:
        i = int(np.argmin(np.abs(np.asarray(alphas) - r["alpha"])))
        j = int(np.argmin(np.abs(np.asarray(cs) - r["c"])))
        out[i, j] = r[metric]
    return out


def side_of_boundary(c: float, alpha: float, layer: str) -> str:
    """'stable' if alpha < alpha*(c) (theory), else 'unstable'."""
    from ...analysis.curl_theory import boundary

    return "stable" if alpha == 0 or alpha < boundary(float(c), layer) else "unstable"


LEARNED = 1e-3   # relative test error below which a cell counts as learned (the "error -> 0" of Fig. 3a / 4a)


def _log10(v: float | None) -> float:
    """log10 of a relative error floored at 1e-30; NaN for a missing (None, e.g. an untracked peak) or non-finite
    value."""
    return float(np.log10(max(v, 1e-30))) if v is not None and np.isfinite(v) else float("nan")


def finite_median(values) -> float:
    """The median of the finite values (None counts as missing); NaN when there is none."""
    v = np.asarray([np.nan if x is None else x for x in values], float)
    return float(np.median(v[np.isfinite(v)])) if np.isfinite(v).any() else float("nan")


def phase_measurements(rows: list[dict], layer: str, cells: tuple[tuple[float, float], ...] = (),
                       random_init: bool = False) -> dict:
    """Per-seed measurements of a phase grid (what the Fig. 3 / Fig. 4 claims read), one value per seed:

    - ``<layer>/agreement_with_theory``: share of the grid's cells whose outcome (relative test error <
      ``LEARNED``) is the one the theory's side predicts (learned iff stable);
    - ``<layer>/stable/fraction_unlearned`` and ``<layer>/unstable/fraction_learned``: the shares of the flipped
      cells (alpha > 0) that contradict the (linear) theory on each side, a cell counting as learned when its error
      is below max(``LEARNED``, 10 x gradient descent's at the same c and seed), so that a net that gradient descent
      itself cannot bring below 1e-3 (tanh) is judged against what it can reach (a boundary shifted to lower c
      leaves stable cells unlearned);
    - ``<layer>/<side>/median_log10_<metric>`` for side ``stable`` / ``unstable`` (by theory) and metric
      ``test_error``, ``q``, ``peak_test_error``: the median over that side's cells (NaN: no cell on that side);
    - ``<layer>/c=<c>,alpha=<a>/log10_<metric>`` for each (c, alpha) of ``cells`` that is in the grid;
    - ``<layer>/cells_outcome_changes_by_1e5``: share of the cells whose outcome (learned or not) would change
      if each error followed its last decade's power law (``last_decade_slope``) to the paper's 1e5 epochs;
    - with ``random_init`` (students from a random initialisation, Fig. 3a / 4a): ``<layer>/random_init/stable/
      fraction_learned`` (share of the stable cells learned) and ``<layer>/random_init/unstable/
      median_log10_<initial_error | test_error>`` (the unstable cells' error at epoch 0 and at the end).
    A diverged network has a NaN error: it counts as not learned and is left out of the medians.
    """
    out: dict[str, list[float]] = {}
    seeds = sorted({r["seed"] for r in rows})
    side = {(r["c"], r["alpha"]): side_of_boundary(r["c"], r["alpha"], layer) for r in rows}

    def put(name: str, v: float) -> None:
        out.setdefault(f"{layer}/{name}", []).append(float(v))

    for k in seeds:
        rs = [r for r in rows if r["seed"] == k]
        put("agreement_with_theory", np.mean([(r["test_error"] < LEARNED) == (side[r["c"], r["alpha"]] == "stable")
                                              for r in rs]))
        gd = {r["c"]: r["test_error"] for r in rs if r["alpha"] == 0}  # gradient descent's error at each c
        for sd, learned in (("stable", False), ("unstable", True)):  # the cells that contradict the theory
            mine = [r for r in rs if side[r["c"], r["alpha"]] == sd and r["alpha"] > 0]
            as_gd = [r["test_error"] < max(LEARNED, 10 * gd.get(r["c"], 0.0)) for r in mine]
            put(f"{sd}/fraction_{'learned' if learned else 'unlearned'}",
                np.mean([v == learned for v in as_gd]) if mine else float("nan"))
        for sd in ("stable", "unstable"):
            mine = [r for r in rs if side[r["c"], r["alpha"]] == sd]
            for metric in ("test_error", "q", "peak_test_error"):
                put(f"{sd}/median_log10_{metric}", finite_median(_log10(r[metric]) for r in mine))
        if any("projected_test_error_1e5" in r for r in rs):  # would a cell's outcome change by 1e5 epochs?
            put("cells_outcome_changes_by_1e5", np.mean([(r["test_error"] < LEARNED)
                                                         != (r["projected_test_error_1e5"] < LEARNED) for r in rs]))
        if random_init:
            stable = [r for r in rs if side[r["c"], r["alpha"]] == "stable"]
            put("random_init/stable/fraction_learned",
                np.mean([r["test_error"] < LEARNED for r in stable]) if stable else float("nan"))
            unstable = [r for r in rs if side[r["c"], r["alpha"]] == "unstable"]
            for name, key in (("initial_error", "initial_test_error"), ("test_error", "test_error")):
                put(f"random_init/unstable/median_log10_{name}",
                    finite_median(_log10(r[key]) for r in unstable if key in r))
        for c, a in cells:
            hit = [r for r in rs if abs(r["c"] - c) < 1e-9 and abs(r["alpha"] - a) < 1e-9]
            for r in hit[:1]:
                for metric in ("test_error", "q"):
                    put(f"c={c:g},alpha={a:g}/log10_{metric}", _log10(r[metric]))
    return out


def log10(x):
    return math.log10(x) if x and x > 0 else float("nan")


def claim(quantity: str, holds: bool | str, *, where: str, note: str, paper: str = "yes") -> dict:
    """A qualitative paper-vs-ours row: the paper's verdict (``"yes"``) beside ours, ``"yes"``/``"no"`` from
    ``holds``, or ``holds`` itself when it is a string saying why the claim could not be checked in this run.
    ``note`` (always filled) shows the numbers the verdict was computed from."""
    return paper_entry(quantity, paper, verdict(holds), where=where, note=note or "-")


def fmt(x: float | None) -> str:
    """A number for a note: 3 significant digits; 'nan' for a missing value, 'inf' / '-inf' for infinities."""
    return "nan" if x is None or np.isnan(x) else f"{x:.3g}"
