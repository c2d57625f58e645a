"""Train your own MLP on your own arrays with curl descent and with SAM, next to plain backprop (BP).

Everything goes through the public API: a ``pl.MLP`` with the layer sizes and activation you choose, a rule object
(``pl.Curl``, ``pl.SAM``, ``pl.BP``) or the same rule written as text for ``pl.parse_rule``, a ``pl.Trainer`` and
``pl.fit``, which trains every seed at once (vmapped) and evaluates on your held-out arrays.

    python examples/apply_curl_or_sam_to_your_mlp.py                 # 5 seeds, 10 epochs, wider net
    PLASTICLAB_EXAMPLE_QUICK=1 python examples/apply_curl_or_sam_to_your_mlp.py   # a few seconds

Prints one line per rule: mean +- SD of the test accuracy over seeds (and the per-seed values).
"""

from __future__ import annotations

import os

import numpy as np

import plasticlab as pl

QUICK = os.environ.get("PLASTICLAB_EXAMPLE_QUICK") == "1"
# Small runs are dominated by XLA compilation; a lower optimisation level compiles several times faster and gives
# the same numbers (fit's ``compiler_options``). For long runs keep the default (None).
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True} if QUICK else None


def my_arrays(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Your own data as plain NumPy arrays: here the 8x8 digits (bundled, offline), reshuffled into our own
    75/25 split and centred with the training mean. Replace this by anything of shape (n, features) with
    integer labels 0..C-1."""
    d = pl.load_dataset("digits")
    x = np.concatenate([d.x_train, d.x_test]).astype(np.float32)
    y = np.concatenate([d.y_train, d.y_test]).astype(np.int32)
    idx = np.random.default_rng(seed).permutation(len(x))
    n_train = int(0.75 * len(x))
    tr, te = idx[:n_train], idx[n_train:]
    mu = x[tr].mean(0)
    return x[tr] - mu, y[tr], x[te] - mu, y[te]


def main() -> None:
    x_train, y_train, x_test, y_test = my_arrays()
    n_classes = int(y_train.max()) + 1
    hidden = (64,) if QUICK else (128, 64)                 # your own layer sizes
    seeds, epochs = (2, 3) if QUICK else (5, 10)
    # Your own network: sizes (inputs, hidden..., outputs), your activation, with biases. The SAM paper's upstream
    # network is a ReLU MLP, so ReLU here for every rule; BP and curl descent take any activation ("tanh", ...).
    net = pl.MLP((x_train.shape[1], *hidden, n_classes), activation="relu", use_bias=True)

    rules: dict[str, pl.Rule] = {
        # plain backprop: Delta W_l = -lr <e_l h_{l-1}^T>
        "BP": pl.BP(lr=0.05),
        # curl descent: backprop errors, but every synapse leaving a "flipped" presynaptic neuron follows the
        # opposite sign. alphas[l-1] is the flipped fraction of layer l's inputs: none of the pixels, 10% of
        # every hidden layer's neurons (drawn once per seed).
        "curl, 10% flipped": pl.Curl(lr=0.05, alphas=(0.0,) + (0.1,) * len(hidden)),
        # the same kind of rule from text, as on the command line (`plasticlab rules` lists every rule)
        "curl, 30% (as text)": pl.parse_rule(f"curl(lr=0.05, alphas=(0.0, {', '.join(['0.3'] * len(hidden))}))"),
        # the self-assembling motif: a learned downstream (feedback) stream with four local Hebbian-like updates
        # and weight decay `decay` on every matrix
        "SAM": pl.SAM(lr=0.05, decay=1e-4),
    }
    print(f"MLP {net.sizes} ({net.activation}), {len(x_train)} training / {len(x_test)} test samples, "
          f"{epochs} epochs, batch 16, {seeds} seeds")
    for name, rule in rules.items():
        trainer = pl.Trainer(net, rule)    # default: the rule's update applied as it is (W <- W + Delta W)
        hist = pl.fit(trainer, x_train, y_train, seeds=seeds, epochs=epochs, batch_size=16, evals=2,
                      x_eval=x_test, y_eval=y_test, progress=False, on_divergence="record",
                      compiler_options=FAST_COMPILE)
        acc = hist.final("eval_accuracy")  # one test accuracy per seed
        n_bad = int(np.sum(hist.seed_diverged))  # seeds whose weights blew up (their accuracy is NaN)
        note = f"  ({n_bad} of {seeds} seeds diverged)" if n_bad else ""
        print(f"{name:20s}  test accuracy {np.nanmean(acc):.3f} +- {np.nanstd(acc):.3f}   per seed "
              f"{np.round(acc, 3).tolist()}{note}")


if __name__ == "__main__":
    main()
