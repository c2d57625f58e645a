"""hebb-fig10 (Fig. 10 right, Fig. 11): the CNN / ResNet front against an independent ``jax.lax.conv`` + numpy
reference, the MLP taps and the SGD step of a network with that front against ``jax.grad`` of an independently
written loss, the claims on paper-like and contradicting synthetic runs (through the experiment's own
measurement code), the settings it refuses, and a tiny run that measures every claim input and draws its
panels; a ResNet run feeds no claim."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticlab.claims import claims_for, judge_all
from plasticlab.claims import hebb as HC
from plasticlab.experiments.hebb import fig10 as F
from plasticlab.networks.conv_front import ConvFront
from plasticlab.networks.front_mlp import FrontMLP
from plasticlab.rules import hebb_optim as ho
from plasticlab.settings import SettingError, validate


def _jit(f):
    """``jax.jit`` at XLA's low optimisation level: these checks are compile-bound (eager JAX compiles every
    operation on its own, which is slower still)."""
    return jax.jit(f, compiler_options=ho.FAST_COMPILE)


# ----------------------------------------------------------------------------- the front against a reference


def _ref_conv(z: np.ndarray, k: np.ndarray) -> np.ndarray:
    """torch's Conv2d(padding=k // 2) in NHWC / HWIO, by XLA's own convolution (not the front's im2col)."""
    return np.asarray(jax.lax.conv_general_dilated(jnp.asarray(z), jnp.asarray(k), (1, 1),
                                                   [(k.shape[0] // 2,) * 2, (k.shape[1] // 2,) * 2],
                                                   dimension_numbers=("NHWC", "HWIO", "NHWC")))


def _ref_pool(z: np.ndarray) -> np.ndarray:
    """2x2 max pooling, stride 2, floor (an odd last row / column dropped), in numpy."""
    B, Hh, Ww, C = z.shape
    h, w = Hh // 2, Ww // 2
    return z[:, :2 * h, :2 * w].reshape(B, h, 2, w, 2, C).max(axis=(2, 4))


def _ref_front(front: ConvFront, params, x: np.ndarray) -> np.ndarray:
    """The module docstring's equations: reshape (HWC), zero-pad, per stage conv(+bias) -> tanh (-> conv -> +
    1x1 shortcut -> tanh for the ResNet) -> pool, flatten (HWC)."""
    p = front.pad
    z = np.pad(np.asarray(x, np.float64).reshape(len(x), *front.image_shape), ((0, 0), (p, p), (p, p), (0, 0)))
    for s in params:
        s = {k: np.asarray(v, np.float64) for k, v in s.items()}
        if front.backbone == "cnn":
            z = np.tanh(_ref_conv(z, s["K"]) + s["b"])
        else:
            u = np.tanh(_ref_conv(z, s["K1"]) + s["b1"])
            z = np.tanh(_ref_conv(u, s["K2"]) + s["b2"] + np.einsum("bhwi,io->bhwo", z, s["S"][0, 0]))
        z = _ref_pool(z)
    return z.reshape(len(z), -1)


@pytest.mark.parametrize("backbone,shape,pad", [("cnn", (6, 6, 2), 1), ("cnn", (7, 5, 3), 0),
                                                ("resnet", (7, 5, 3), 0)])  # the taps test has a padded ResNet
def test_front_equals_lax_conv_and_numpy(backbone, shape, pad):
    front = ConvFront(shape, (3, 4), pad=pad, backbone=backbone, chunk=4)
    params = _jit(front.init)(jax.random.PRNGKey(1))
    x = np.random.default_rng(0).normal(size=(9, int(np.prod(shape)))).astype(np.float32)
    want = _ref_front(front, params, x)
    apply = _jit(front)
    got = np.asarray(apply(params, jnp.asarray(x)))  # 9 > chunk: three lax.map chunks, the last padded
    assert got.shape == (9, front.width) == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(apply(params, jnp.asarray(x[:3]))), want[:3], rtol=1e-5, atol=1e-5)
    h, w = shape[0] + 2 * pad, shape[1] + 2 * pad
    assert front.out_hw == (h // 4, w // 4) and front.width == 4 * (h // 4) * (w // 4)


def test_paper_cnn_widths_and_init():
    """CIFAR-10 32 x 32 x 3 (and MNIST padded 28 -> 32): 128 x 4 x 4 = 2048, the first linear width; 8x8 digits:
    1 x 1; torch's default init bounds 1 / sqrt(fan_in)."""
    cifar = ConvFront((32, 32, 3))
    assert cifar.width == 2048 and cifar.input_width == 3072
    assert ConvFront((28, 28, 1), pad=2).width == 2048 and ConvFront((28, 28, 1)).width == 128 * 3 * 3
    assert ConvFront((8, 8, 1)).width == 128
    p = _jit(cifar.init)(jax.random.PRNGKey(0))
    assert [s["K"].shape for s in p] == [(3, 3, 3, 32), (3, 3, 32, 64), (3, 3, 64, 128)]
    for s, fan in zip(p, (27, 288, 576)):
        assert 0.9 / np.sqrt(fan) < float(jnp.abs(s["K"]).max()) <= 1 / np.sqrt(fan)
    with pytest.raises(ValueError, match="poolings leave nothing"):
        ConvFront((8, 8, 1), (4, 4, 4, 4))
    with pytest.raises(ValueError, match="backbone"):
        ConvFront((8, 8, 1), backbone="vgg")
    with pytest.raises(ValueError, match="front's width"):
        FrontMLP((100, 4, 3), front=ConvFront((8, 8, 1), (4,)))
    with pytest.raises(ValueError, match="one front"):
        ho.HebbSpec(sizes=(64, 4, 3), seq=(5, 6, 64, 2, 1, 8), conv=ConvFront((8, 8, 1), (4,)))


def _dot_macs(jaxpr) -> int:
    """Multiply-accumulates of every dot_general in a flat jaxpr: prod(output shape) x prod(contracted sizes)."""
    total = 0
    for eq in jaxpr.eqns:
        assert eq.primitive.name not in ("pjit", "scan", "while", "cond"), "nested jaxpr: count it too"
        if eq.primitive.name == "dot_general":
            (lhs_contract, _), _ = eq.params["dimension_numbers"]
            lhs = eq.invars[0].aval.shape
            total += int(np.prod(eq.outvars[0].aval.shape)) * int(np.prod([lhs[d] for d in lhs_contract]))
    return total


@pytest.mark.parametrize("backbone", ["cnn", "resnet"])
def test_macs_count_the_matrix_products_of_the_forward_pass(backbone):
    """``ConvFront.macs`` (one image) equals the multiply-accumulates of the dot products in the traced forward
    pass of a batch, per image; ``hebb_optim.plan`` counts them, so a CNN whose MLP alone is small is not
    compiled at XLA's low optimisation level."""
    front = ConvFront((28, 28, 1), (32, 64, 128), pad=2, backbone=backbone)
    params = front.init(jax.random.PRNGKey(0))
    x = jnp.zeros((4, front.input_width))
    assert _dot_macs(jax.make_jaxpr(front._apply)(params, x).jaxpr) == 4 * front.macs
    xs = np.zeros((256, front.input_width), np.float32)
    fast = {net: [ho.plan(ho.HebbSpec(sizes=(front.width, 16, 10), conv=front if net == "cnn" else None), xs, [0],
                          None, steps, 1, 1, None)[-1] for steps in (2, 200)] for net in ("cnn", "mlp")}
    assert fast == {"cnn": [True, False], "mlp": [True, True]}  # 200 steps: fast for the MLP alone, not with the front


def test_runs_at_once_fit_half_the_memory_by_the_fronts_stored_floats():
    """The paper's CNN on 32 x 32 inputs keeps, per image, 248,832 floats (by hand: stage 1 1024 pixels x (9
    patch + 2 x 32) + 256 x 32 pooled; stage 2 256 x (288 + 128) + 64 x 64; stage 3 64 x (576 + 256) + 16 x 128),
    0.47 GiB per run at batch 256; the runs at once fill half the memory available, ``max_runs`` overrides, and
    an unknown memory trains all 40 together."""
    front = ConvFront((28, 28, 1), (32, 64, 128), pad=2)
    assert front.stored_floats == 1024 * (9 + 64) + 256 * 32 + 256 * (288 + 128) + 64 * 64 + 64 * (576 + 256) + 16 * 128
    assert front.stored_floats == 248_832
    resnet = ConvFront((8, 8, 1), (4,), backbone="resnet")  # 64 x (9 + 8 + 36 + 1 + 12) + 16 x 4
    assert resnet.stored_floats == 64 * (9 + 2 * 4 + 9 * 4 + 1 + 3 * 4) + 16 * 4
    cfg = F.HebbFig10Config(dataset="mnist")
    at_once, gib = F.runs_at_once(cfg, front, available=8 * 2**30)
    assert round(gib, 3) == round(248_832 * 256 * 8 / 2**30, 3) == 0.475 and at_once == 8  # 4 GiB / 0.475 GiB
    assert F.runs_at_once(cfg, front, available=None)[0] == 40
    assert F.runs_at_once(cfg, front, available=2**20)[0] == 1
    assert F.runs_at_once(F.HebbFig10Config(dataset="mnist", max_runs=5), front, available=None)[0] == 5


@pytest.mark.parametrize("backbone", ["cnn"])  # "resnet" passes too (8 s more); its forward is checked above
def test_taps_and_sgd_step_equal_jax_grad_of_an_independent_loss(backbone):
    """The MLP taps (h, y, f'(y)) of the front's output, and one SGD step with weight decay, P <- P - lr (dL/dP +
    gamma P) for every parameter (the front's included), with dL/dP by ``jax.grad`` of a loss written here on the
    ``lax.conv`` reference (mean cross-entropy)."""
    front = ConvFront((6, 6, 1), (3, 4), pad=1, backbone=backbone)
    spec = ho.HebbSpec(sizes=(front.width, 5, 4, 3), loss="cross_entropy", conv=front, batch_size=8, neuron_layer=0)
    lr, gamma = 0.1, 0.01
    tr = ho.trainer(spec, lr=lr, gamma=gamma)
    st = _jit(tr.init)(jax.random.PRNGKey(3))
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=(8, 36)), jnp.float32)
    t = jnp.asarray(rng.integers(0, 3, size=8), jnp.int32)

    def conv(z, k):
        return jax.lax.conv_general_dilated(z, k, (1, 1), [(k.shape[0] // 2,) * 2] * 2,
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))

    def pool(z):
        B, Hh, Ww, C = z.shape
        return z[:, :Hh // 2 * 2, :Ww // 2 * 2].reshape(B, Hh // 2, 2, Ww // 2, 2, C).max(axis=(2, 4))

    def h0_of(fp, x):
        z = jnp.pad(x.reshape(8, 6, 6, 1), ((0, 0), (1, 1), (1, 1), (0, 0)))
        for s in fp:
            if backbone == "cnn":
                z = pool(jnp.tanh(conv(z, s["K"]) + s["b"]))
            else:
                u = jnp.tanh(conv(z, s["K1"]) + s["b1"])
                z = pool(jnp.tanh(conv(u, s["K2"]) + s["b2"] + z @ s["S"][0, 0]))
        return z.reshape(8, -1)

    def loss(P):
        h = h0_of(P.front, x)
        for l, W in enumerate(P.W):
            h = h @ W.T if l == len(P.W) - 1 else jnp.tanh(h @ W.T)
        return jnp.mean(jax.nn.logsumexp(h, 1) - h[jnp.arange(8), t])

    P = st.params
    out, taps = _jit(lambda P, x: ho.forward(spec, P, x))(P, x)
    h = _jit(h0_of)(P.front, x)
    for l, (ha, yb, df) in enumerate(taps):
        np.testing.assert_allclose(ha, h, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(yb, h @ P.W[l].T, rtol=1e-5, atol=1e-6)
        last = l == len(taps) - 1
        np.testing.assert_allclose(df, 1.0 if last else 1 - np.tanh(h @ P.W[l].T) ** 2, rtol=1e-5, atol=1e-6)
        h = h @ P.W[l].T if last else jnp.tanh(h @ P.W[l].T)
    np.testing.assert_allclose(out, h, rtol=1e-5, atol=1e-6)
    g = _jit(jax.grad(loss))(P)
    new, _ = _jit(tr.step)(st, x, t)
    want = jax.tree.map(lambda p, d: p - lr * (d + gamma * p), P, g)
    for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(want)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert len(jax.tree.leaves(P.front)) == (2 if backbone == "cnn" else 5) * 2


@pytest.mark.parametrize("rule", ["dfa"])  # "randomnn" passes too (4 s more): it treats the front as any leaf
def test_dfa_steps_a_cnn_front_and_logs_the_mlp_alignment(rule):
    """One logged step of DFA (B_0 e_L backpropagated into the front, the one rule with front-specific code) on a
    CNN front: every parameter moves, the front's too; finite alignments, one per MLP layer. (SGD and Adam follow
    BP's pullback, whose exact gradient the test above checks for SGD.)"""
    front = ConvFront((8, 8, 1), (2, 3))
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(16, 64)), jnp.float32)
    t = jnp.asarray(rng.integers(0, 3, size=16), jnp.int32)
    spec = ho.HebbSpec(sizes=(front.width, 6, 5, 3), loss="cross_entropy", rule=rule, conv=front, batch_size=16,
                       neuron_layer=2, clip=1.0)
    tr = ho.trainer(spec, lr=0.1, gamma=0.01)
    st = _jit(tr.init)(jax.random.PRNGKey(0))
    new, metrics = _jit(lambda s, x, t: tr.step(s, x, t, measure=True))(st, x, t)
    logged = metrics["logged"]
    assert logged["align"].shape == (3,) and np.isfinite(logged["align"]).all()
    assert logged["neuron"].shape == (5,) and np.isfinite(logged["align_full"]).all()
    moved = [not np.allclose(a, b) for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(st.params))]
    assert all(moved) and len(moved) == 3 + 4
    if rule == "dfa":  # B_1, B_2, then the front's B_0 (d_0 x d_L)
        assert [b.shape for b in st.rule_state] == [(6, 3), (5, 3), (front.width, 3)]


# ----------------------------------------------------------------------------- the claims on synthetic runs

def _rows(cnn=lambda g, k: 0.3 + 5 * g, mlp=lambda g, k: 0.1 + 3 * g, seeds: int = 10) -> list[dict]:
    """Per (model, gamma, seed, layer) rows as the experiment writes them, layer 2's alignment from ``cnn`` /
    ``mlp`` (gamma, seed) plus seed noise (SD 0.01, the same for both models: a shared data order), other layers
    0.2."""
    noise = np.random.default_rng(0).normal(0, 0.01, size=seeds)
    return [{"model": m, "gamma": g, "seed": k, "layer": l, "collapsed": False,
             "alignment": float(f(g, k) + noise[k]) if l == 2 else 0.2, "val_acc": 0.9}
            for m, f in (("mlp", mlp), ("cnn", cnn)) for g in HC.FIG10_GAMMAS for k in range(seeds)
            for l in (1, 2, 3)]


def _verdicts(rows: list[dict]) -> dict[str, str]:
    return {r["claim"]: r["verdict"] for r in judge_all("hebb-fig10", F.measurements(rows))}


def test_claims_agree_with_paper_like_runs():
    verdicts = _verdicts(_rows())
    assert len(verdicts) == 4 and set(verdicts.values()) == {"agrees"}, verdicts


@pytest.mark.parametrize("change,broken", [
    ({"cnn": lambda g, k: 0.1 + 3 * g}, ("cnn_more_hebbian_than_mlp",)),  # the CNN's linear layers no more Hebbian
    ({"mlp": lambda g, k: 0.5 if g == 5e-3 else 0.1 + 3 * g}, ("gamma=0.005.cnn_more_hebbian_than_mlp",)),
    ({"cnn": lambda g, k: 0.5}, ("rises_with_gamma",)),  # above the MLP, but flat in gamma
    ({"cnn": lambda g, k: 0.6 - 2 * g}, ("rises_with_gamma",)),  # falling with gamma
])
def test_claims_differ_on_contradicting_runs_and_only_those(change, broken):
    verdicts = _verdicts(_rows(**change))
    hit = {i for i in verdicts if any(i.endswith(b) for b in broken)}
    assert hit and all(verdicts[i] == "differs" for i in hit), {i: verdicts[i] for i in hit}
    assert {v for i, v in verdicts.items() if i not in hit} == {"agrees"}, verdicts


def test_collapsed_seeds_are_not_measured_and_gamma_zero_feeds_no_claim():
    rows = _rows()
    for r in rows:
        if r["model"] == "cnn" and r["gamma"] == 0.05:
            r["collapsed"] = True
    m = F.measurements(rows)
    assert m[HC.fig10_alignment("cnn", 0.05)] == [None] * 10
    assert len(m[HC.fig10_alignment("mlp", 0.05)]) == 10 and len(m[HC.fig10_alignment("cnn", 0.0, 3)]) == 10
    verdicts = _verdicts(rows)
    assert verdicts["hebb.fig10.gamma=0.05.cnn_more_hebbian_than_mlp"] == "not measured"
    assert verdicts["hebb.fig10.cnn.rises_with_gamma"] == "not measured"
    assert {c.a for c in claims_for("hebb-fig10") if hasattr(c, "a")} == {
        HC.fig10_alignment("cnn", g) for g in HC.FIG10_GAMMAS if g > 0}


# ----------------------------------------------------------------------------- settings and tiny runs

@pytest.mark.parametrize("change,key", [
    ({"hidden": (32,)}, "hidden"), ({"cnn_hidden": (64,)}, "cnn_hidden"), ({"gammas": (0.0, 0.0)}, "gammas"),
    ({"n_train": 100, "batch_size": 256}, "batch_size"), ({"backbone": "vgg"}, "backbone"),
    ({"channels": (0, 8)}, "channels"), ({"image_size": 0}, "image_size"), ({"activation": "nope"}, "activation"),
])
def test_bad_settings_are_refused_naming_the_key(change, key):
    with pytest.raises(SettingError, match=f"^{key}=") as info:
        validate(F.HebbFig10Config(**change))
    assert "\n" not in str(info.value) and "allowed:" in str(info.value)


def test_a_data_set_without_images_is_refused(tmp_path):
    from plasticlab.experiments import run_experiment

    with pytest.raises(SettingError, match="^dataset=.*image"):
        run_experiment("hebb-fig10", tmp_path / "r", quick=True, progress=False, plots=False,
                       overrides={"dataset": "teacher_classification"})


TINY = {"n_test": 64, "seeds": 2, "hidden": (8, 8), "channels": (2, 4), "cnn_hidden": (8, 6), "epochs": 1.0,
        "batch_size": 64, "log_every": 3, "window": 9}  # digits: 1347 images, 21 steps of 64, 7 logs


def test_tiny_run_measures_every_claim_input_and_draws_its_panels(tmp_path, monkeypatch):
    """One value per seed for every (model, gamma, layer), equal to the rows; every claim judged; one figure with
    three panels (layer 2 of both models, every layer of each), distinct titles, n in every legend."""
    from plasticlab.experiments import run_experiment

    figs = []
    monkeypatch.setattr(F, "save", lambda fig, path: figs.append((fig, path)))
    res = run_experiment("hebb-fig10", tmp_path / "cnn", quick=True, overrides=TINY, progress=False, plots=True)
    m = res["measurements"]
    assert len(m) == 2 * 4 * 3 and all(len(v) == 2 for v in m.values())
    for r in res["rows"]:
        assert m[HC.fig10_alignment(r["model"], r["gamma"], r["layer"])][r["seed"]] == r["alignment"]
        assert -1 <= r["alignment"] <= 1
    assert res["widths"] == {"mlp": [64, 8, 8, 10], "cnn": [4 * 2 * 2, 8, 6, 10]} and res["n_steps"] == 21
    assert "digits standing in for CIFAR-10" == res["dataset_note"]
    verdicts = {r["claim"]: r["verdict"] for r in res["claims"]}
    assert set(verdicts) == {c.id for c in claims_for("hebb-fig10")}
    assert set(verdicts.values()) <= {"agrees", "differs"}
    (fig, path), = figs
    titles = [a.get_title() for a in fig.axes if a.get_title()]
    assert len(titles) == 3 == len(set(titles)) and path.name == "fig10_cnn_vs_mlp.png"
    legends = [t.get_text() for a in fig.axes if a.get_legend() for t in a.get_legend().get_texts()]
    assert len(legends) == 2 + 3 + 3 and all("n=2" in t and "SD" in t for t in legends)


def test_a_resnet_run_feeds_no_claim():
    """Fig. 11's backbone files its measurements under "fig10/resnet/...": every claim (the CNN's) is not
    measured."""
    rows = [{**r, "model": "resnet"} if r["model"] == "cnn" else r for r in _rows()]
    m = F.measurements(rows)
    assert {k.split("/")[1] for k in m} == {"mlp", "resnet"}
    assert set(_verdicts(rows).values()) == {"not measured"}
