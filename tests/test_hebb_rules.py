"""Rules of the Hebbian-alignment paper (rules.hebb_optim's trainers, rules.random_nn) and the transformer front end."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from plasticlab.losses import get_loss
from plasticlab.rules import hebb_optim as ho
from plasticlab.rules.random_nn import RandomNNState, clip_global_norm, random_nn_signal

HP0 = {"lr": 0.1, "gamma": 0.01, "sigma": 0.0, "input_noise": 0.0, "l1": 0.0}


def _state(spec, hp=HP0, seed=0):
    """The run's Trainer (hebb_optim.trainer) and its initial state."""
    tr = ho.trainer(spec, **hp)
    return tr, tr.init(jax.random.PRNGKey(seed))


def _data(n=32, d_in=5, d_out=2, seed=0):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.normal(size=(n, d_in)), jnp.float32), jnp.asarray(rng.normal(size=(n, d_out)), jnp.float32)


def test_sgd_step_equals_plasticlab_trainer_with_bp_and_coupled_l2():
    """d_out = 2 makes torch's mean-over-units MSE equal plasticlab's 0.5 * sum MSE."""
    from plasticlab.networks import MLP
    from plasticlab.rules import BP
    from plasticlab.training import TrainState, Trainer

    x, t = _data()
    spec = ho.HebbSpec(sizes=(5, 8, 2), rule="sgd", batch_size=16, neuron_layer=0)
    hebb, st = _state(spec)
    new, _ = hebb.step(st, x[:16], t[:16])
    tr = Trainer(MLP((5, 8, 2), activation="tanh"), BP(lr=1.0), loss=get_loss("mse"),
                 optimizer=optax.sgd(0.1), weight_decay=0.01)
    ref, _ = tr.step(TrainState(st.params, (), tr.optimizer.init(st.params), jax.random.PRNGKey(1)), x[:16], t[:16])
    for a, b in zip(new.params.W, ref.params.W):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_dfa_signal_equals_the_dfa_equation():
    """g_W_l = -<delta_l h_{l-1}^T>, delta_L = 2 (y_L - t) / d_L, delta_l = (B_l delta_L) * f'(y_l), in numpy."""
    x, t = _data(16, 5, 3)
    spec = ho.HebbSpec(sizes=(5, 7, 6, 3), rule="dfa", use_bias=True, batch_size=16, neuron_layer=0)
    tr, st = _state(spec)
    sig = tr.signals(st.params, st.rule_state, x, t)
    g, _ = tr.rule.update(tr.net, st.params, st.rule_state, sig, None)
    W, b, B = [np.asarray(w) for w in st.params.W], [np.asarray(v) for v in st.params.b], st.rule_state
    hs = [np.asarray(x)]
    for w, v in zip(W[:-1], b[:-1]):
        hs.append(np.tanh(hs[-1] @ w.T + v))
    e = 2 * (hs[-1] @ W[-1].T + b[-1] - np.asarray(t)) / 3
    deltas = [(e @ np.asarray(B[l - 1]).T) * (1 - hs[l] ** 2) for l in (1, 2)] + [e]
    for l, d in enumerate(deltas):
        np.testing.assert_allclose(g.W[l], -d.T @ hs[l] / 16, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(g.b[l], -d.mean(0), rtol=1e-5, atol=1e-6)


def test_adam_first_step_is_lr_times_sign_of_the_penalised_gradient():
    x, t = _data()
    spec = ho.HebbSpec(sizes=(5, 8, 2), rule="adam", batch_size=16, neuron_layer=0)
    tr, st = _state(spec, dict(HP0, lr=1e-3, gamma=0.05))

    def loss(W):  # torch MSELoss of the tanh MLP
        return jnp.mean((jnp.tanh(x[:16] @ W[0].T) @ W[1].T - t[:16]) ** 2)

    grads = jax.grad(loss)(st.params.W)
    new, _ = tr.step(st, x[:16], t[:16])
    for w0, w1, gg in zip(st.params.W, new.params.W, grads):
        np.testing.assert_allclose(w1 - w0, -1e-3 * np.sign(gg + 0.05 * w0), atol=2e-6)


def test_adamw_steps_equal_torch_adamw_written_in_numpy():
    """AdamW (decoupled decay): W <- W - lr gamma W - lr m_hat / (sqrt(v_hat) + eps), m and v from the loss
    gradient alone (torch.optim.AdamW's equations), over three steps; Adam's coupled decay differs."""
    x, t = _data()
    lr, gamma, b1, b2, eps = 1e-2, 0.5, 0.9, 0.999, 1e-8
    spec = ho.HebbSpec(sizes=(5, 8, 2), rule="adamw", batch_size=16, neuron_layer=0)
    tr, st = _state(spec, dict(HP0, lr=lr, gamma=gamma))
    assert tr.weight_decay == 0.0 and tr.decoupled_decay == pytest.approx(lr * gamma)

    def loss(W, xb, tb):
        return jnp.mean((jnp.tanh(xb @ W[0].T) @ W[1].T - tb) ** 2)

    W = [np.asarray(w, np.float64) for w in st.params.W]
    m = [np.zeros_like(w) for w in W]
    v = [np.zeros_like(w) for w in W]
    state = st
    for k in range(1, 4):
        xb, tb = x[16 * (k % 2):16 * (k % 2) + 16], t[16 * (k % 2):16 * (k % 2) + 16]
        grads = jax.grad(loss)([jnp.asarray(w, jnp.float32) for w in W], xb, tb)
        for i, g in enumerate(grads):
            g = np.asarray(g, np.float64)
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g ** 2
            W[i] = W[i] * (1 - lr * gamma) - lr * (m[i] / (1 - b1 ** k)) / (np.sqrt(v[i] / (1 - b2 ** k)) + eps)
        state, _ = tr.step(state, xb, tb)
        for a, b in zip(state.params.W, W):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-6)
    coupled, _ = _state(ho.HebbSpec(sizes=(5, 8, 2), rule="adam", batch_size=16, neuron_layer=0),
                        dict(HP0, lr=lr, gamma=gamma))
    first, _ = coupled.step(st, x[16:32], t[16:32])
    assert not np.allclose(first.params.W[0], tr.step(st, x[16:32], t[16:32])[0].params.W[0], atol=1e-4)


def test_noise_modes_masks_and_sparsity():
    x, t = _data()
    hp = dict(HP0, lr=0.0, gamma=0.0, sigma=0.1)
    for mode, moved in (("persistent", True), ("perturbed", False)):
        spec = ho.HebbSpec(sizes=(5, 8, 2), batch_size=16, neuron_layer=0, noise_mode=mode)
        tr, st = _state(spec, hp)
        new, _ = tr.step(st, x[:16], t[:16])
        assert bool(jnp.any(new.params.W[0] != st.params.W[0])) == moved
    spec = ho.HebbSpec(sizes=(5, 8, 2), batch_size=16, neuron_layer=0, sparsity=0.5)
    tr, st = _state(spec, dict(HP0, sigma=0.1))
    new, _ = tr.step(st, x[:16], t[:16])
    m = np.asarray(st.mask.W[0])
    assert 0 < m.mean() < 1
    assert np.all(np.asarray(st.params.W[0])[m == 0] == 0) and np.all(np.asarray(new.params.W[0])[m == 0] == 0)
    spec = ho.HebbSpec(sizes=(5, 8, 2), batch_size=16, neuron_layer=0, frozen=0.5)
    tr, st = _state(spec, dict(HP0, sigma=0.1))
    new, _ = tr.step(st, x[:16], t[:16])
    m = np.asarray(st.mask.W[0])
    np.testing.assert_array_equal(np.asarray(new.params.W[0])[m == 0], np.asarray(st.params.W[0])[m == 0])
    assert np.all(np.asarray(new.params.W[0])[m == 1] != np.asarray(st.params.W[0])[m == 1])
    with pytest.raises(ValueError, match="noise_mode"):
        ho.HebbSpec(noise_mode="sometimes")
    with pytest.raises(ValueError, match="unknown rule"):
        ho.HebbSpec(rule="hebbian-sgd")


def _np_random_nn(params, x, W_net, proj, target, clip):
    h = x.reshape(len(x), -1)
    for l, w in enumerate(W_net):
        h = h @ w.T
        if l < len(W_net) - 1:
            h = np.tanh(h)
    z = h.mean(0)
    out = []
    for p, R in zip(params, proj):
        ws = (R @ z).reshape(p.shape)
        ns, npn = np.linalg.norm(ws), np.linalg.norm(p)
        s_red = np.sign(npn - np.linalg.norm(p - ws))
        s_dir = np.sign(target - npn)
        out.append((1.0 if ns <= 1 else 1 / (ns + 1e-8)) * s_dir * s_red * ws)
    tot = np.sqrt(sum(np.sum(o ** 2) for o in out))
    return [o * min(1.0, clip / tot) for o in out]


def test_random_nn_signal_matches_numpy_formula():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 6)).astype(np.float32)
    W_net = [rng.normal(size=(8, 6)).astype(np.float32) * 0.5, rng.normal(size=(4, 8)).astype(np.float32)]
    params = [rng.normal(size=(3, 6)).astype(np.float32), 30 * rng.normal(size=(5, 3)).astype(np.float32)]
    proj = [rng.normal(size=(18, 4)).astype(np.float32), 0.01 * rng.normal(size=(15, 4)).astype(np.float32)]
    state = RandomNNState(tuple(jnp.asarray(w) for w in W_net), [jnp.asarray(p) for p in proj])
    for target, clip in ((100.0, 1.0), (5.0, 0.3), (100.0, 50.0)):
        got = random_nn_signal([jnp.asarray(p) for p in params], jnp.asarray(x), state, target, clip)
        ref = _np_random_nn(params, x, W_net, proj, target, clip)
        for a, b in zip(got, ref):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    big = {"a": jnp.full((3,), 10.0)}
    assert float(jnp.linalg.norm(clip_global_norm(big, 1.0)["a"])) == pytest.approx(1.0, rel=1e-5)


def test_random_nn_rule_runs_in_a_plasticlab_trainer():
    from plasticlab.networks import MLP
    from plasticlab.rules.random_nn import RandomNN
    from plasticlab.training import Trainer

    x, t = _data(8, 5, 2)
    tr = Trainer(MLP((5, 6, 2), activation="tanh"), RandomNN(lr=0.5, clip=1.0), loss=get_loss("mse"))
    st = tr.init(jax.random.PRNGKey(0))
    new, _ = tr.step(st, x, t)
    step_norm = np.sqrt(sum(float(jnp.sum((a - b) ** 2)) for a, b in zip(new.params.W, st.params.W)))
    assert 0 < step_norm <= 0.5 + 1e-5  # lr * clip


def test_transformer_encoder_matches_a_manual_implementation():
    from plasticlab.networks.transformer import SeqEncoder

    enc = SeqEncoder(jax.random.PRNGKey(0), vocab=5, length=6, d=8, heads=2, n_layers=1, d_ff=8)
    tok = jnp.asarray([0, 3, 1, 4, 4, 2])
    z = np.asarray(enc.embed.weight)[np.asarray(tok)] + np.asarray(enc.pos)
    L = enc.layers[0]
    A = L.attn
    q, k, v = (z @ np.asarray(m.weight).T for m in (A.query_proj, A.key_proj, A.value_proj))
    heads = []
    for h in range(2):
        sl = slice(4 * h, 4 * h + 4)
        s = q[:, sl] @ k[:, sl].T / 2.0
        w = np.exp(s - s.max(1, keepdims=True))
        w /= w.sum(1, keepdims=True)
        heads.append(w @ v[:, sl])
    att = np.concatenate(heads, 1) @ np.asarray(A.output_proj.weight).T

    def ln(u, m):
        u = (u - u.mean(1, keepdims=True)) / np.sqrt(u.var(1, keepdims=True) + 1e-5)
        return u * np.asarray(m.weight) + np.asarray(m.bias)

    z = ln(z + att, L.norm1)
    ff = np.maximum(z @ np.asarray(L.ff1.weight).T + np.asarray(L.ff1.bias), 0) @ np.asarray(L.ff2.weight).T \
        + np.asarray(L.ff2.bias)
    z = ln(z + ff, L.norm2)
    np.testing.assert_allclose(enc(tok), z.mean(0), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="length"):
        enc(jnp.zeros(7, jnp.int32))


def test_train_logs_alignment_for_the_transformer_head():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, size=(32, 6)).astype(np.int32)
    t = rng.normal(size=(32, 3)).astype(np.float32)
    for rule in ("dfa",):  # DFA exercises the transformer front (vjp of B_0 e) and the MLP head
        spec = ho.HebbSpec(sizes=(8, 6, 3), rule=rule, batch_size=16, seq=(5, 6, 8, 2, 1, 8), neuron_layer=1)
        out = ho.train(spec, x, t, x[:8], t[:8], seeds=[0, 1], hp={"gamma": [0.0, 0.01]}, n_steps=4, log_every=2,
                       n_evals=1)
        assert out["align"].shape == (2, 2, 2) and out["neuron"].shape == (2, 2, 6)
        assert np.all(np.abs(out["align"]) <= 1 + 1e-5) and np.isfinite(out["val_loss"]).all()
