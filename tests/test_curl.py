"""Curl descent: rule vs jax.grad, simulator vs rule, analytic Jacobian vs autograd, spectra vs theory."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticlab.analysis import curl_theory as ct
from plasticlab.losses import get_loss
from plasticlab.networks import MLP
from plasticlab.networks import student_teacher as st
from plasticlab.rules.base import Signals
from plasticlab.rules.curl import Curl


def _signals(net, rule, params, state, x, t):
    fwd = net.forward(params, x)
    e_out = get_loss("mse").error(fwd, t)
    return Signals(fwd, rule.feedback(net, params, state, fwd, e_out), e_out)


def _mse(net, params, x, t):
    return get_loss("mse").value(net.forward(params, x), t)


@pytest.mark.parametrize("act", ["linear", "tanh"])
def test_rule_without_flips_is_gradient_descent(act):
    net = MLP((6, 9, 1), activation=act)
    params = net.init(jax.random.PRNGKey(0))
    x = jax.random.normal(jax.random.PRNGKey(1), (13, 6))
    t = jax.random.normal(jax.random.PRNGKey(2), (13, 1))
    rule = Curl(lr=0.3)
    state = rule.init(jax.random.PRNGKey(3), net, params)
    delta, _ = rule.update(net, params, state, _signals(net, rule, params, state, x, t), None)
    g = jax.grad(lambda W: _mse(net, params._replace(W=W), x, t))(params.W)
    for d, gw in zip(delta.W, g):
        np.testing.assert_allclose(d, -0.3 * gw, rtol=1e-5, atol=1e-6)


def test_rule_flips_are_presynaptic_column_signs():
    net = MLP((5, 7, 1), activation="tanh")
    params = net.init(jax.random.PRNGKey(0))
    x = jax.random.normal(jax.random.PRNGKey(1), (8, 5))
    t = jax.random.normal(jax.random.PRNGKey(2), (8, 1))
    rule = Curl(lr=0.1, flips=((0, 3), (2,)))
    state = rule.init(jax.random.PRNGKey(3), net, params)
    delta, _ = rule.update(net, params, state, _signals(net, rule, params, state, x, t), None)
    g = jax.grad(lambda W: _mse(net, params._replace(W=W), x, t))(params.W)
    d1 = np.array([-1, 1, 1, -1, 1.0])
    d2 = np.array([1, 1, -1, 1, 1, 1, 1.0])
    np.testing.assert_allclose(delta.W[0], -0.1 * np.asarray(g[0]) * d1[None, :], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(delta.W[1], -0.1 * np.asarray(g[1]) * d2[None, :], rtol=1e-5, atol=1e-7)
    # fractions: round(alpha * n) flipped neurons per layer
    r2 = Curl(alphas=(0.4, 3 / 7))
    s2 = r2.init(jax.random.PRNGKey(5), net, params)
    assert int(np.sum(np.asarray(s2["d"][0]) < 0)) == 2 and int(np.sum(np.asarray(s2["d"][1]) < 0)) == 3


def test_rule_rescale_keeps_initial_norm_and_dfa_uses_fixed_feedback():
    net = MLP((5, 7, 1), activation="tanh")
    params = net.init(jax.random.PRNGKey(0))
    x = jax.random.normal(jax.random.PRNGKey(1), (8, 5))
    t = jax.random.normal(jax.random.PRNGKey(2), (8, 1))
    rule = Curl(lr=0.5, alphas=(0.4, 0.3), rescale=True)
    state = rule.init(jax.random.PRNGKey(3), net, params)
    delta, _ = rule.update(net, params, state, _signals(net, rule, params, state, x, t), None)
    for w, d in zip(params.W, delta.W):
        assert abs(float(jnp.linalg.norm(w + d)) - float(jnp.linalg.norm(w))) < 1e-5
    dfa = Curl(lr=0.1, feedback_mode="dfa")
    sd = dfa.init(jax.random.PRNGKey(3), net, params)
    fwd = net.forward(params, x)
    e_out = get_loss("mse").error(fwd, t)
    errs = dfa.feedback(net, params, sd, fwd, e_out)
    np.testing.assert_allclose(errs[0], (e_out @ sd["B"][0].T) * fwd.df[0], rtol=1e-6)
    with pytest.raises(ValueError, match="feedback_mode"):
        Curl(feedback_mode="fa")
    with pytest.raises(ValueError, match="either alphas"):
        Curl(alphas=(0.1,), flips=((1,),))


def test_simulator_step_matches_rule_and_stats_path():
    M, N = 6, 9
    key = jax.random.PRNGKey(0)
    data, _ = st.make_data(key, M, N, 40, 10, "tanh")
    d1, d2 = st.flip_signs(M, index=[1, 4]), st.flip_signs(N, index=[0])
    netst = st.make_net(jax.random.PRNGKey(1), M, N, d1, d2)
    cfg = st.SimConfig(lr=0.2, activation="tanh", rescale=False)
    dW1, dW2, _ = st.curl_delta(netst, data.x, data.y, cfg)
    mlp = MLP((M, N, 1), activation="tanh")
    params = mlp.init(key)._replace(W=(netst.W1, netst.W2[None, :]))
    rule = Curl(lr=0.2, flips=((1, 4), (0,)))
    state = rule.init(key, mlp, params)
    delta, _ = rule.update(mlp, params, state, _signals(mlp, rule, params, state, data.x, data.y[:, None]), None)
    np.testing.assert_allclose(dW1, delta.W[0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(dW2, delta.W[1][0], rtol=1e-5, atol=1e-7)
    # DFA feedback: the simulator's fixed vector b plays the rule's B (shape (N, 1))
    dcfg = st.SimConfig(lr=0.2, activation="tanh", rescale=False, feedback="dfa")
    f1, f2, _ = st.curl_delta(netst, data.x, data.y, dcfg)
    drule = Curl(lr=0.2, flips=((1, 4), (0,)), feedback_mode="dfa")
    dstate = {**drule.init(key, mlp, params), "B": (netst.fb[:, None],)}
    ddelta, _ = drule.update(mlp, params, dstate, _signals(mlp, drule, params, dstate, data.x, data.y[:, None]), None)
    np.testing.assert_allclose(f1, ddelta.W[0], rtol=1e-5, atol=1e-7)
    assert not np.allclose(f1, dW1)
    # linear full batch: sufficient-statistics step == sample step
    datal, _ = st.make_data(key, M, N, 40, 10, "linear")
    cfgl = st.SimConfig(lr=0.2, rescale=False)
    a1, a2, _ = st.curl_delta(netst, datal.x, datal.y, cfgl)
    b1, b2 = st.curl_delta_stats(netst, datal.C, datal.r, cfgl)
    np.testing.assert_allclose(a1, b1, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(a2, b2, rtol=1e-4, atol=1e-6)


def test_simulator_padding_and_minibatch_match_numpy_reference():
    M, N = 4, 6
    key = jax.random.PRNGKey(2)
    variants = [(np.ones(M), np.ones(N)), (st.flip_signs(M, index=[0]), st.flip_signs(N, index=[2, 3]))]
    nets, data = st.build_batch(key, M, N, 1, variants, n_train=30)
    padded, pdata = st.build_batch(key, M, N, 1, variants, n_train=30, pad_to=(7, 9))
    cfg = st.SimConfig(lr=0.1)
    a = st.simulate(nets, data, key, 50, cfg)
    b = st.simulate(padded, pdata, key, 50, cfg)
    np.testing.assert_allclose(a["logs"]["test_error"], b["logs"]["test_error"], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(b["final"].W1[..., N:, :], 0.0)
    # mini-batch epoch: one network, same permutation as NumPy's reference with full-batch size
    n = st.SimConfig(lr=0.05, batch_size=30)
    one = jax.tree.map(lambda v: v[0, 1], nets)
    d0 = jax.tree.map(lambda v: v[0], data)
    out, _ = st.epoch(one, d0, n, key)
    W1, W2 = st.numpy_epoch(np.asarray(one.W1), np.asarray(one.W2), np.asarray(one.d1), np.asarray(one.d2),
                            np.asarray(d0.x), np.asarray(d0.y), 0.05, 30, np.random.default_rng(0),
                            float(one.n1), float(one.n2))
    np.testing.assert_allclose(out.W1, W1, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out.W2, W2, rtol=1e-4, atol=1e-6)


def test_analytic_jacobian_equals_autograd():
    rng = np.random.default_rng(0)
    N, M = 4, 5
    W1, W2, s = rng.normal(size=(N, M)), rng.normal(size=N), rng.normal(size=M)
    d1, d2 = np.array([1, -1, 1, 1, -1.0]), np.array([-1, 1, 1, -1.0])
    J = ct.jacobian(W1, W2, s, d1, d2)
    theta = jnp.concatenate([jnp.asarray(W1).ravel(), jnp.asarray(W2)])
    Ja = jax.jacobian(lambda th: ct.flow_vec(th, jnp.asarray(s), jnp.asarray(d1), jnp.asarray(d2), N, M))(theta)
    np.testing.assert_allclose(J, np.asarray(Ja), rtol=1e-4, atol=1e-4)
    # with no flips the flow is a gradient flow: symmetric Jacobian; with flips it is not
    assert ct.curl_fraction(ct.jacobian(W1, W2, s, np.ones(M), np.ones(N))) < 1e-12
    assert ct.curl_fraction(J) > 0.05


def test_spectrum_at_origin_and_on_solution_manifold():
    rng = np.random.default_rng(1)
    N, M = 5, 4
    s = rng.normal(size=M)
    d1, d2 = np.array([1, -1, 1, 1.0]), np.array([1, -1, 1, -1, 1.0])
    ev = np.linalg.eigvals(ct.jacobian(np.zeros((N, M)), np.zeros(N), s, d1, d2))
    pred = ct.origin_eigenvalues(s, d1, d2)
    nz = ev[np.abs(ev) > 1e-8]
    assert len(nz) == 2 * N
    np.testing.assert_allclose(np.sort_complex(np.round(nz, 8)), np.sort_complex(np.round(pred, 8)), atol=1e-6)
    # solution manifold: s := W2 W1; non-zero eigenvalues are -eig(||W2||^2 D1 + W1^T D2 W1) (eq. 12)
    for N, M in [(5, 3), (3, 6)]:
        W1, W2 = rng.normal(size=(N, M)), rng.normal(size=N)
        d1, d2 = np.sign(rng.normal(size=M)), np.sign(rng.normal(size=N))
        ev = np.linalg.eigvals(ct.jacobian(W1, W2, W2 @ W1, d1, d2))
        nz = np.sort(np.real(ev[np.abs(ev) > 1e-7]))
        pred = ct.manifold_eigenvalues(W1, W2, d1, d2)
        pred = np.sort(pred[np.abs(pred) > 1e-7])
        np.testing.assert_allclose(nz, pred, rtol=1e-6, atol=1e-8)
        assert np.abs(np.imag(ev)).max() < 1e-8


def test_toy_model():
    for w1, w2 in [(0.7, 1.3), (1.5, 0.3), (-0.4, 0.9)]:
        Ja = jax.jacobian(lambda w: jnp.stack(ct.toy_flow(w[0], w[1], 1.0, True)))(jnp.array([w1, w2]))
        np.testing.assert_allclose(ct.toy_jacobian(w1, w2, 1.0, True), Ja, rtol=1e-5, atol=1e-6)
        Jg = jax.jacobian(lambda w: jnp.stack(ct.toy_flow(w[0], w[1], 1.0, False)))(jnp.array([w1, w2]))
        np.testing.assert_allclose(ct.toy_jacobian(w1, w2, 1.0, False), Jg, rtol=1e-5, atol=1e-6)
        # on the manifold w1 w2 = s: eigenvalues 0 and w1^2 - w2^2
        w2m = 1.0 / w1
        ev = np.sort(np.linalg.eigvals(ct.toy_jacobian(w1, w2m, 1.0)).real)
        np.testing.assert_allclose(ev, np.sort([0.0, w1 ** 2 - w2m ** 2]), atol=1e-9)
    ev0 = np.linalg.eigvals(ct.toy_jacobian(0.0, 0.0, 2.0))
    np.testing.assert_allclose(np.sort(ev0.imag), [-2.0, 2.0], atol=1e-12)
    np.testing.assert_allclose(ev0.real, 0.0, atol=1e-12)


def test_quartic_coefficients_and_two_edge_methods_agree():
    rng = np.random.default_rng(3)
    for _ in range(5):
        x, c, a, w = rng.uniform(-1, 2), rng.uniform(0.2, 2), rng.uniform(0, 1), rng.uniform(-3, -0.1)
        d = 1 - 2 * a
        A = 2 * w * (x - 1 / (c * (1 - w))) - 1
        R = 1 + 4 * w * (w + d)
        np.testing.assert_allclose(np.polyval(ct.quartic_coefficients(x, c, a), w), (A * A - R) * (1 - w) ** 2,
                                   rtol=1e-9, atol=1e-9)
    for c, a in [(0.3, 0.2), (0.4, 0.5), (0.7, 0.1), (1.2, 0.3)]:
        assert abs(ct.hidden_left_edge(c, a) - ct.hidden_left_edge_quartic(c, a)) < 1e-5


def test_alpha_edges_match_sampled_spectra():
    """Predicted left edges of spec(X) vs the smallest eigenvalue of one large sampled X.

    At finite size the smallest eigenvalue sits above the edge (edge fluctuations), never far below it.
    """
    for c, a, layer in [(0.4, 0.3, "hidden"), (0.7, 0.1, "hidden"), (1.0, 0.2, "readout")]:
        ev = ct.spectrum_density(c, a, layer, M=300, seed=2)
        edge = ct.left_edge(c, a, layer)
        assert edge - 0.03 < ev.min() < edge + 0.15, (c, a, layer, ev.min(), edge)


@pytest.mark.parametrize("c, layer, size", [(0.5, "hidden", 600), (0.1, "readout", 800), (0.2, "readout", 600)])
def test_boundary_matches_sampled_jacobians(c, layer, size):
    """alpha*(c) from theory vs the critical number of flips where lambda_min(X) (= -max nonzero Jacobian
    eigenvalue on the manifold, eq. 12) crosses 0 in sampled networks of M + N = size neurons."""
    mean, se = ct.sampled_boundary(c, size, layer, samples=4, seed=7)
    assert abs(mean - ct.boundary(c, layer)) < 0.02, (mean, se, ct.boundary(c, layer))


def test_boundary_limits_and_bad_input():
    assert ct.boundary(0.1, "hidden") == 1.0          # expansive nets: stable for any alpha_h
    assert ct.boundary(1.5, "hidden") == 0.0          # c > 1: one flipped input destabilises
    assert 0.45 < ct.boundary(0.002, "readout") < 0.5  # c -> 0: at most half the readout may flip
    with pytest.raises(ValueError, match="compression ratio"):
        ct.left_edge(-1.0, 0.2)
    with pytest.raises(ValueError, match="layer must be"):
        ct.left_edge(0.5, 0.2, "output")
    with pytest.raises(ValueError, match="fraction"):
        st.flip_signs(5, 1.5)
    with pytest.raises(ValueError, match="seeds, variants"):
        st.simulate(st.make_net(jax.random.PRNGKey(0), 3, 4, np.ones(3), np.ones(4)), None, None, 5)
    assert math.isfinite(ct.boundary(0.45, "hidden"))


def test_peak_error_of_a_tanh_network_is_the_maximum_over_every_epoch_or_nan_when_untracked():
    """With ``track_peak`` the peak is the largest test error over epochs 0..T (here logged at every epoch, the
    independent record); without it a tanh network's peak is NaN, never a 0 a claim could read."""
    M, N = 4, 12
    key = jax.random.PRNGKey(3)
    variants = [(np.ones(M), np.ones(N)), (np.ones(M), st.flip_signs(N, index=[0, 5, 7]))]
    nets, data = st.build_batch(key, M, N, 2, variants, n_train=30, n_test=40, activation="tanh",
                                near_solution=1e-3)
    every = np.arange(1, 41)
    tracked = st.simulate(nets, data, key, 40, st.SimConfig(lr=0.5, activation="tanh", track_peak=True),
                          epochs_at=every)
    np.testing.assert_allclose(tracked["peak_test_error"], tracked["logs"]["test_error"].max(-1), rtol=1e-5)
    assert (tracked["peak_test_error"] > tracked["logs"]["test_error"][..., 0]).any()  # it moved off the start
    plain = st.simulate(nets, data, key, 40, st.SimConfig(lr=0.5, activation="tanh"), epochs_at=every)
    assert np.isnan(plain["peak_test_error"]).all()


@pytest.mark.parametrize("feedback, batch_size, rescale", [("gd", None, True), ("gd", 8, False), ("dfa", 8, True)])
def test_reduced_basis_simulator_equals_the_full_network(feedback, batch_size, rescale):
    """Linear networks in the reduced basis (B = 2 (M + 1) of N hidden directions) give the full network's
    weights, errors, peak error and q (eq. 15), with flips in both layers and a class with fewer neurons than
    the basis has columns (d2 = -1 on 90%)."""
    M, N = 5, 40
    key = jax.random.PRNGKey(0)
    variants = [(np.ones(M), np.ones(N)), (st.flip_signs(M, index=[0, 3]), st.flip_signs(N, index=[2, 3, 9])),
                (np.ones(M), st.flip_signs(N, 0.9, key=key))]
    nets, data = st.build_batch(key, M, N, 2, variants, n_train=40, n_test=20)
    runs = [st.simulate(nets, data, key, 60, st.SimConfig(lr=0.05, feedback=feedback, batch_size=batch_size,
                                                          rescale=rescale, avg_start=10, reduce=r),
                        epochs_at=[20, 60], record=True) for r in (False, None)]
    full, red = runs
    assert red["reduced"] and not full["reduced"]
    for a, b in [(full["final"].W1, red["final"].W1), (full["final"].W2, red["final"].W2),
                 (full["logs"]["weights"], red["logs"]["weights"]), (full["logs"]["test_error"], red["logs"]["test_error"]),
                 (full["peak_test_error"], red["peak_test_error"]), (full["q"], red["q"])]:
        np.testing.assert_allclose(b, a, rtol=2e-4, atol=1e-6 * np.abs(a).max())
    np.testing.assert_array_equal(red["final"].d2, nets.d2)


def test_reduced_basis_is_exact_in_float64_next_to_the_teacher_and_under_padding():
    """In float64 the reduced and the full simulator agree to 1e-12 from a 1e-15 perturbation of the teacher,
    and on zero-padded cells; the basis maps D2 onto diag(sigma) and spans W1(0), W2(0)."""
    with jax.enable_x64(True):
        M, N = 5, 40
        key = jax.random.PRNGKey(1)
        variants = [(np.ones(M), np.ones(N)), (st.flip_signs(M, index=[1]), st.flip_signs(N, index=[0, 7, 8]))]
        nets, data = st.build_batch(key, M, N, 2, variants, n_train=40, n_test=20, near_solution=1e-15)
        assert nets.W1.dtype == jnp.float64
        a, b = (st.simulate(nets, data, key, 300, st.SimConfig(lr=0.1, reduce=r), epochs_at=[300]) for r in (False, True))
        np.testing.assert_allclose(b["final"].W1, a["final"].W1, rtol=0, atol=1e-12)
        one = jax.tree.map(lambda v: v[0, 1], nets)
        red, Q = st.reduce_network(one, st.SimConfig())
        np.testing.assert_allclose(one.d2[:, None] * Q, Q * red.d2[None, :], atol=0)       # D2 Q = Q diag(sigma)
        np.testing.assert_allclose(Q @ red.W1, one.W1, atol=1e-13)
        np.testing.assert_allclose(Q @ red.W2, one.W2, atol=1e-13)
        gram = np.asarray(Q.T @ Q)
        np.testing.assert_allclose(gram, np.diag(np.diag(gram)), atol=1e-13)            # orthonormal or zero columns
        assert set(np.round(np.diag(gram), 10)) <= {0.0, 1.0}
        padded, pdata = st.build_batch(key, M, N, 2, variants, n_train=40, n_test=20, pad_to=(7, 50))
        c, d = (st.simulate(padded, pdata, key, 300, st.SimConfig(lr=0.1, avg_start=100, reduce=r), epochs_at=[300])
                for r in (False, True))
        np.testing.assert_allclose(d["q"], c["q"], rtol=1e-5)  # q ~ 1e-11 here: s2/cnt - mean^2 cancels
        np.testing.assert_allclose(d["final"].W1, c["final"].W1, atol=1e-12)


def test_reduced_basis_refuses_nonlinear_networks():
    with pytest.raises(ValueError, match="reduce=True needs a linear network"):
        st.simulate(*st.build_batch(jax.random.PRNGKey(0), 3, 20, 1, [(np.ones(3), np.ones(20))], 10, 5,
                                    activation="tanh"),
                    jax.random.PRNGKey(0), 2, st.SimConfig(activation="tanh", reduce=True))


@pytest.mark.parametrize("reduce", [False, True])
def test_order_parameter_equals_eq15_on_the_recorded_weights(reduce):
    """q (eq. 15) from the simulator's running sums equals <Var_t(w_i)>_i / Var_i(<w_i>_t) computed directly from
    the weights recorded at every averaged epoch, in the full and in the reduced basis."""
    M, N, T, start = 4, 30, 40, 25
    key = jax.random.PRNGKey(6)
    variants = [(st.flip_signs(M, index=[0, 1, 2]), np.ones(N)), (np.ones(M), st.flip_signs(N, 0.7, key=key))]
    nets, data = st.build_batch(key, M, N, 2, variants, n_train=20, n_test=10)
    cfg = st.SimConfig(lr=0.3, avg_start=start, reduce=reduce)
    out = st.simulate(nets, data, key, T, cfg, epochs_at=np.arange(1, T + 1), record=True)
    assert out["reduced"] == reduce
    W = out["logs"]["weights"].astype(np.float64)[:, :, start:]          # epochs start..T (index 0 is epoch 0)
    direct = W.var(axis=2).mean(axis=-1) / W.mean(axis=2).var(axis=-1)
    assert direct.max() > 1e-3                                            # the weights do move
    # a converged network has q at float32's cancellation floor (~1e-8 of its weights' spread): absolute 1e-6
    np.testing.assert_allclose(out["q"], direct, rtol=2e-3, atol=1e-6)
