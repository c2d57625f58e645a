"""Summary statistics over seeds: means with bootstrap confidence intervals."""

from __future__ import annotations

import numpy as np
from scipy import stats


def bootstrap_ci(values, level: float = 0.98, n_resamples: int = 500, seed: int = 0, axis: int = 0
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and percentile-bootstrap confidence interval of the mean along ``axis``.

    Defaults follow the Oja paper: 98% interval from 500 resamples. With a single
    value (or identical values) the interval collapses onto the mean.
    Returns (mean, low, high), each with ``axis`` removed.
    """
    v = np.asarray(values, dtype=float)
    mean = v.mean(axis=axis)
    if v.shape[axis] < 2 or np.all(np.ptp(v, axis=axis) == 0):
        return mean, mean.copy(), mean.copy()
    res = stats.bootstrap((v,), np.mean, axis=axis, confidence_level=level, n_resamples=n_resamples,
                          method="percentile", random_state=np.random.default_rng(seed), vectorized=True)
    return mean, np.asarray(res.confidence_interval.low), np.asarray(res.confidence_interval.high)


SUMMARY_LEVEL = 0.98  # the CI level of ``summarize`` (the console's summary tables say it)


def summarize(rows: list[dict], by: list[str], metric: str, level: float = SUMMARY_LEVEL,
              n_resamples: int = 500) -> list[dict]:
    """Group ``rows`` by the keys ``by`` and give n, mean, std and the bootstrap CI of ``metric``."""
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        if metric in r and r[metric] is not None:
            groups.setdefault(tuple(r.get(k) for k in by), []).append(float(r[metric]))
    out = []
    for key, vals in groups.items():
        m, lo, hi = bootstrap_ci(vals, level, n_resamples)
        out.append({**dict(zip(by, key)), "n": len(vals), f"{metric}_mean": float(m), f"{metric}_std": float(np.std(vals)),
                    f"{metric}_ci_low": float(lo), f"{metric}_ci_high": float(hi)})
    return out
