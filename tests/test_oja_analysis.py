"""Oja/Sanger fixed points and the representation analyses of the Oja paper, against independent computations."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from plasticlab.analysis.representations import (activation_norms, omega_squared, optimal_linear_map,
                                                 optimal_linear_maps, pca_cumulative, reconstruct, residuals,
                                                 step_sizes)
from plasticlab.analysis.stats import bootstrap_ci
from plasticlab.experiments.oja.common import ci, hebbian_layers, make_rule
from plasticlab.rules import Oja, Sanger


def _gaussian_data(n=20000, d=6, seed=0):
    """Zero-mean data with a random rotation of a covariance with distinct eigenvalues."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    sd = np.array([3.0, 2.0, 1.2, 0.6, 0.4, 0.3])[:d]
    x = (rng.normal(size=(n, d)) * sd) @ q.T
    return x.astype(np.float32)


def _run_hebbian(rule, x, k, lr_steps=2, seed=1):
    """Online (batch 1) training of a linear layer h = W x with ``rule.layer_delta`` only."""
    w0 = 0.1 * jax.random.normal(jax.random.PRNGKey(seed), (k, x.shape[1]))
    xs = jnp.asarray(np.concatenate([x] * lr_steps))

    def body(w, xi):
        pre = xi[None]
        post = pre @ w.T
        return w + rule.lr * rule.layer_delta(w, pre, post), None

    w, _ = jax.lax.scan(body, w0, xs)
    return np.asarray(w, np.float64)


@pytest.mark.parametrize("cls", [Oja])
def test_oja_converges_to_orthonormal_principal_subspace(cls):
    x = _gaussian_data()
    w = _run_hebbian(cls(lr=2e-3), x, k=2)
    evals, evecs = np.linalg.eigh(np.cov(x.T))
    u = evecs[:, ::-1][:, :2]  # top-2 eigenvectors
    np.testing.assert_allclose(w @ w.T, np.eye(2), atol=0.05)  # orthonormal rows
    np.testing.assert_allclose(w.T @ w, u @ u.T, atol=0.05)  # spans the principal subspace


@pytest.mark.parametrize("cls", [Sanger])
def test_sanger_converges_to_ordered_eigenvectors(cls):
    x = _gaussian_data(seed=3)
    w = _run_hebbian(cls(lr=2e-3), x, k=3, lr_steps=3)
    evals, evecs = np.linalg.eigh(np.cov(x.T))
    u = evecs[:, ::-1][:, :3]
    for i in range(3):  # row i = +-(i-th eigenvector)
        assert abs(abs(w[i] @ u[:, i]) - 1.0) < 0.05, (i, w[i] @ u[:, i])
        assert abs(np.linalg.norm(w[i]) - 1.0) < 0.05


def test_make_rule_layers_and_errors():
    r = make_rule("bp+oja", 0.1, 0.01, "hidden", 4)
    assert r.rules[1].layers == (1, 2, 3) and r.rules[1].lr == 0.01 and r.rules[0].lr == 0.1
    assert hebbian_layers("all", 4) is None
    with pytest.raises(ValueError, match="oja_layers"):
        hebbian_layers("some", 4)
    with pytest.raises(ValueError, match="choose from"):
        make_rule("bp+hebb", 0.1, 0.01, "hidden", 4)


def test_omega_squared_matches_anova_f():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=200)
    x = rng.normal(size=(200, 3, 2)) + 0.7 * labels[:, None, None] * np.array([0.0, 1.0, 2.0])[None, :, None]
    w2 = np.asarray(omega_squared(jnp.asarray(x), jnp.asarray(labels), 4))
    n, k = len(labels), 4
    for i in range(3):
        for j in range(2):
            f = stats.f_oneway(*[x[labels == g, i, j] for g in range(k)]).statistic
            expect = (k - 1) * (f - 1) / ((k - 1) * (f - 1) + n)  # omega^2 from F
            assert w2[i, j] == pytest.approx(expect, rel=1e-4, abs=1e-6)
    # direct sums of squares for one feature
    v = x[:, 2, 1]
    grand = v.mean()
    ssb = sum((labels == g).sum() * (v[labels == g].mean() - grand) ** 2 for g in range(k))
    sst = ((v - grand) ** 2).sum()
    mse = (sst - ssb) / (n - k)
    assert w2[2, 1] == pytest.approx((ssb - (k - 1) * mse) / (sst + mse), rel=1e-4)


def test_optimal_linear_map_closed_form_and_exact_recovery():
    rng = np.random.default_rng(0)
    post = rng.normal(size=(100, 4))
    pre = rng.normal(size=(100, 6))
    m = optimal_linear_map(pre, post)
    closed = pre.T @ post @ np.linalg.inv(post.T @ post)
    np.testing.assert_allclose(m, closed, rtol=1e-8, atol=1e-10)
    a = rng.normal(size=(6, 4))
    np.testing.assert_allclose(optimal_linear_map(post @ a.T, post), a, atol=1e-10)
    with pytest.raises(ValueError, match="same n"):
        optimal_linear_map(pre[:10], post)


def test_reconstruct_composes_maps():
    rng = np.random.default_rng(1)
    h0 = rng.normal(size=(50, 5))
    w1, w2 = rng.normal(size=(4, 5)), rng.normal(size=(3, 4))
    H = [h0, h0 @ w1.T, h0 @ w1.T @ w2.T, np.zeros((50, 2))]
    maps = optimal_linear_maps(H)  # hidden layers 1, 2
    rec = reconstruct(H[2], maps)
    assert len(rec) == 3
    np.testing.assert_allclose(rec[2], H[2])
    np.testing.assert_allclose(rec[0], H[2] @ maps[1].T @ maps[0].T)
    # an invertible first layer is restored exactly; the 3-dim bottleneck keeps the best rank-3 linear estimate
    np.testing.assert_allclose(rec[1], H[2] @ np.linalg.lstsq(H[2], H[1], rcond=None)[0], atol=1e-8)


def test_residuals_norms_and_step_sizes_against_loops():
    rng = np.random.default_rng(2)
    W = [rng.normal(size=(4, 6)), rng.normal(size=(3, 4))]
    H = [rng.normal(size=(7, 6)), rng.normal(size=(7, 4)), rng.normal(size=(7, 3))]
    E = [rng.normal(size=(7, 4)), rng.normal(size=(7, 3))]
    r = np.asarray(residuals([jnp.asarray(w) for w in W], [jnp.asarray(h) for h in H]))
    for l in (1, 2):
        expect = np.mean([np.sum((H[l - 1][n] - W[l - 1].T @ H[l][n]) ** 2) for n in range(7)])
        assert r[l - 1] == pytest.approx(expect, rel=1e-5)
    np.testing.assert_allclose(activation_norms(H), [np.mean(np.linalg.norm(h, axis=1)) for h in H], rtol=1e-5)
    bp, oja = step_sizes(W, H, E, 0.1, 0.01)
    for l in (1, 2):
        eb = np.mean([np.linalg.norm(0.1 * np.outer(E[l - 1][n], H[l - 1][n])) for n in range(7)])
        eo = np.mean([np.linalg.norm(0.01 * (np.outer(H[l][n], H[l - 1][n]) - np.outer(H[l][n], H[l][n]) @ W[l - 1]))
                      for n in range(7)])
        assert float(bp[l - 1]) == pytest.approx(eb, rel=1e-5)
        assert float(oja[l - 1]) == pytest.approx(eo, rel=1e-5)


def test_pca_cumulative_matches_sklearn():
    from sklearn.decomposition import PCA

    x = _gaussian_data(n=500)
    np.testing.assert_allclose(pca_cumulative(x), np.cumsum(PCA().fit(x).explained_variance_ratio_), rtol=1e-5)
    assert len(pca_cumulative(x, 3)) == 3 and pca_cumulative(x)[-1] == pytest.approx(1.0)


def test_bootstrap_ci_against_normal_theory_and_direct_resampling():
    rng = np.random.default_rng(0)
    v = rng.normal(2.0, 1.0, size=(400, 3))
    m, lo, hi = bootstrap_ci(v, 0.98, 500, axis=0)
    half = stats.norm.ppf(0.99) * v.std(axis=0, ddof=1) / np.sqrt(len(v))
    np.testing.assert_allclose(m, v.mean(0))
    np.testing.assert_allclose(hi - m, half, rtol=0.25)
    np.testing.assert_allclose(m - lo, half, rtol=0.25)
    # direct percentile bootstrap of the mean with numpy
    w = v[:40, 0]
    boots = np.array([rng.choice(w, len(w)).mean() for _ in range(4000)])
    _, lo1, hi1 = bootstrap_ci(w)
    assert lo1 == pytest.approx(np.percentile(boots, 1), abs=0.1)
    assert hi1 == pytest.approx(np.percentile(boots, 99), abs=0.1)
    c = ci(v[:, :2])
    np.testing.assert_allclose(c["mean"], v[:, :2].mean(0))
    assert all(a < b < d for a, b, d in zip(c["lo"], c["mean"], c["hi"]))
