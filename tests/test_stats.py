"""Bootstrap confidence intervals against a direct NumPy bootstrap."""

from __future__ import annotations

import numpy as np

from plasticlab.analysis import bootstrap_ci, summarize


def test_bootstrap_matches_direct_resampling():
    rng = np.random.default_rng(0)
    v = rng.normal(1.0, 2.0, size=20)
    m, lo, hi = bootstrap_ci(v, level=0.98, n_resamples=500)
    boot = np.array([rng.choice(v, v.size).mean() for _ in range(20000)])
    assert abs(m - v.mean()) < 1e-12
    assert abs(lo - np.percentile(boot, 1)) < 0.15 and abs(hi - np.percentile(boot, 99)) < 0.15
    assert lo < m < hi


def test_bootstrap_along_axis_and_degenerate_cases():
    rng = np.random.default_rng(1)
    curves = rng.normal(size=(10, 7))
    m, lo, hi = bootstrap_ci(curves, axis=0)
    assert m.shape == lo.shape == hi.shape == (7,) and np.all(lo <= m) and np.all(m <= hi)
    m, lo, hi = bootstrap_ci([0.5])
    assert m == lo == hi == 0.5


def test_summarize_groups_rows():
    rows = [{"rule": r, "seed": s, "acc": a} for r, base in [("bp", 0.9), ("fa", 0.8)]
            for s, a in enumerate(base + 0.01 * np.arange(5))]
    out = {r["rule"]: r for r in summarize(rows, ["rule"], "acc")}
    assert out["bp"]["n"] == 5 and abs(out["bp"]["acc_mean"] - 0.92) < 1e-9
    assert out["fa"]["acc_ci_low"] <= out["fa"]["acc_mean"] <= out["fa"]["acc_ci_high"]
