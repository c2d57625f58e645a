"""Hebbian alignment (analysis.hebbian_alignment) against direct numpy computations."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from plasticlab.analysis import hebbian_alignment as ha


def _np_cos(a, b):
    a, b = np.ravel(a), np.ravel(b)
    return a @ b / (np.linalg.norm(a) * np.linalg.norm(b))


def test_alignment_matches_numpy_on_random_tensors():
    rng = np.random.default_rng(0)
    B, da, db = 17, 6, 5
    h_a, h_b, g = rng.normal(size=(B, da)), rng.normal(size=(B, db)), rng.normal(size=(db, da))
    H = np.mean([np.outer(h_b[i], h_a[i]) for i in range(B)], axis=0)  # <h_b h_a^T> sample by sample
    np.testing.assert_allclose(ha.hebbian_update(jnp.asarray(h_b), jnp.asarray(h_a)), H, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(ha.alignment(jnp.asarray(g), jnp.asarray(h_b), jnp.asarray(h_a))),
                               _np_cos(g, H), rtol=1e-5)
    rows = [_np_cos(g[i], H[i]) for i in range(db)]
    np.testing.assert_allclose(ha.row_cosines(jnp.asarray(g), jnp.asarray(H)), rows, rtol=1e-5)
    # two layers: per layer, per neuron and all layers concatenated
    h_c, g2 = rng.normal(size=(B, 3)), rng.normal(size=(3, db))
    H2 = np.einsum("bi,bj->ij", h_c, h_b) / B
    out = ha.layer_alignments([jnp.asarray(g), jnp.asarray(g2)],
                              [(jnp.asarray(h_a), jnp.asarray(h_b)), (jnp.asarray(h_b), jnp.asarray(h_c))])
    np.testing.assert_allclose(out["layer"], [_np_cos(g, H), _np_cos(g2, H2)], rtol=1e-5)
    np.testing.assert_allclose(float(out["all"]), _np_cos(np.concatenate([g.ravel(), g2.ravel()]),
                                                          np.concatenate([H.ravel(), H2.ravel()])), rtol=1e-5)
    assert out["neuron"][1].shape == (3,)


def test_pure_hebbian_update_has_alignment_one_and_anti_hebbian_minus_one():
    rng = np.random.default_rng(1)
    h_a, W = jnp.asarray(rng.normal(size=(32, 8))), jnp.asarray(rng.normal(size=(4, 8)))
    h_b = h_a @ W.T
    hebb = 0.3 * h_b.T @ h_a / 32  # any positive multiple of <h_b h_a^T>
    assert float(ha.alignment(hebb, h_b, h_a)) == pytest.approx(1.0, abs=1e-5)
    assert float(ha.alignment(-hebb, h_b, h_a)) == pytest.approx(-1.0, abs=1e-5)
    np.testing.assert_allclose(ha.row_cosines(hebb, ha.hebbian_update(h_b, h_a)), 1.0, atol=1e-5)


def test_shape_errors_are_explained():
    with pytest.raises(ValueError, match="d_post, d_pre"):
        ha.alignment(jnp.zeros((3, 3)), jnp.zeros((5, 4)), jnp.zeros((5, 2)))
    with pytest.raises(ValueError, match="same batch"):
        ha.hebbian_update(jnp.zeros((5, 4)), jnp.zeros((6, 2)))


def test_stationary_alignment_is_the_per_sample_inner_product():
    rng = np.random.default_rng(2)
    B = 9
    h_a, h_b, delta = rng.normal(size=(B, 4)), rng.normal(size=(B, 3)), rng.normal(size=(B, 3))
    ref = np.mean([np.sum(-np.outer(delta[i], h_a[i]) * np.outer(h_b[i], h_a[i])) for i in range(B)])
    assert float(ha.stationary_alignment(jnp.asarray(delta), jnp.asarray(h_b), jnp.asarray(h_a))) == \
        pytest.approx(ref, rel=1e-5)
    W = rng.normal(size=(3, 4))
    assert float(ha.stationary_closed_form(0.1, jnp.asarray(W), jnp.asarray(h_a))) == pytest.approx(
        0.1 * np.mean(np.sum(h_a ** 2, 1)) * np.sum(W ** 2), rel=1e-5)


def test_rule_alignment_and_fit_callback_on_a_plasticlab_trainer():
    """A plain Hebbian rule on a linear net is perfectly aligned; the callback reports it per seed."""
    from plasticlab.networks import MLP
    from plasticlab.rules import parse_rule
    from plasticlab.training import Trainer

    rng = np.random.default_rng(3)
    x, t = rng.normal(size=(64, 5)).astype(np.float32), rng.integers(0, 3, 64).astype(np.int32)
    net = MLP((5, 4, 3), activation="linear")
    tr = Trainer(net, parse_rule("hebb(lr=1e-3)"), weight_decay=0.01)
    cb = ha.alignment_callback(tr, x, t, batch_size=16, n_batches=2)
    states = jax.vmap(tr.init)(jnp.stack([jax.random.PRNGKey(s) for s in range(2)]))  # as fit passes them
    vals = cb(states, 0)
    assert vals["hebb_layer2"].shape == (2,)
    np.testing.assert_allclose(vals["hebb_layer1"], 1.0, atol=1e-4)
    np.testing.assert_allclose(vals["hebb_all"], 1.0, atol=1e-4)
    # BP's update at the same weights: direct computation vs the callback's formula
    bp = Trainer(net, parse_rule("bp(lr=1)"), loss=tr.loss, optimizer=optax.sgd(1.0))
    st = bp.init(jax.random.PRNGKey(0))
    sig = bp.signals(st.params, st.rule_state, jnp.asarray(x), jnp.asarray(t))
    d, _ = bp.rule.update(net, st.params, st.rule_state, sig, st.key)
    got = ha.rule_alignment(st.params, sig, d)["layer"]
    H2 = np.asarray(sig.fwd.y[1]).T @ np.asarray(sig.fwd.h[1]) / 64
    assert float(got[1]) == pytest.approx(_np_cos(np.asarray(d.W[1]), H2), rel=1e-4)


def test_step_alignment_over_the_weights_that_learn_leaves_frozen_weights_out():
    """With frozen weights (update mask M) a logged step also reports align_learning[l] = cos(M g_l, M H_l):
    numpy's cosine over the entries where M = 1 of g = -dLoss/dW (jax.grad of the loss) and H = <y_l h_{l-1}^T>;
    a net whose weights all learn has no such entry."""
    from plasticlab.rules import hebb_optim as ho

    rng = np.random.default_rng(5)
    x, t = rng.normal(size=(16, 5)).astype(np.float32), rng.normal(size=(16, 3)).astype(np.float32)
    spec = ho.HebbSpec(sizes=(5, 8, 7, 3), batch_size=16, neuron_layer=0, frozen=0.5)
    tr = ho.trainer(spec, 0.1, 0.01)
    state = tr.init(jax.random.PRNGKey(2))
    _, metrics = tr.step(state, jnp.asarray(x), jnp.asarray(t), measure=True)
    got = np.asarray(metrics["logged"]["align_learning"])
    grads = jax.grad(lambda p: tr.loss.value(tr.net.forward(p, x), t))(state.params)
    fwd = tr.net.forward(state.params, x)
    for l in range(3):
        keep = np.asarray(state.mask.W[l]) == 1
        assert 0 < keep.mean() < 1
        H = np.asarray(fwd.y[l]).T @ np.asarray(fwd.h[l]) / 16
        g = -np.asarray(grads.W[l])
        assert got[l] == pytest.approx(_np_cos(g[keep], H[keep]), rel=1e-4, abs=1e-6)
        assert float(metrics["logged"]["align"][l]) == pytest.approx(_np_cos(g, H), rel=1e-4, abs=1e-6)
    assert not np.allclose(got, np.asarray(metrics["logged"]["align"]), atol=1e-3)
    plain = ho.trainer(ho.HebbSpec(sizes=(5, 8, 7, 3), batch_size=16, neuron_layer=0), 0.1, 0.01)
    _, metrics = plain.step(plain.init(jax.random.PRNGKey(2)), jnp.asarray(x), jnp.asarray(t), measure=True)
    assert "align_learning" not in metrics["logged"]
