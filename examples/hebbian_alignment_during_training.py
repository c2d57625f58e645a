"""Measure the Hebbian alignment of a learning rule's updates while a small network trains.

The Hebbian alignment of the hebb paper (Koplow, Poggio & Ziyin, eq. 10) is, for layer l with pre-activation
y_l = W_l h_{l-1},

    align_l = cos(Delta W_l, H_l),   H_l = <y_l h_{l-1}^T>  (the batch-averaged Hebbian update),

with Delta W_l the rule's learning signal (its update without the weight decay). The paper's claim: weight decay
makes the learning signal of (almost) any rule Hebbian (align > 0) once the weights stop growing, because at a
stationary point the signal must balance the decay, g = gamma W.

``plasticlab.analysis.hebbian_alignment.StepAlignment`` computes it (and cos(U_l, H_l) of the full weight change
U_l, decay included) inside the jitted training step, on the steps that ``fit(log_every=...)`` keeps. Any rule
works; here backprop (SGD) and feedback alignment (FA), each with and without weight decay, on the digits.

    python examples/hebbian_alignment_during_training.py [--out alignment.png]
    PLASTICLAB_EXAMPLE_QUICK=1 python examples/hebbian_alignment_during_training.py   # a few seconds

Prints the layer-2 alignment (mean over seeds) at a few points of training and its mean over the last quarter of
training, and saves the curves as a PNG.
"""

from __future__ import annotations

import argparse
import os

import matplotlib
import numpy as np
import optax

import plasticlab as pl
from plasticlab.analysis.hebbian_alignment import StepAlignment

matplotlib.use("Agg")  # write the PNG without a display
import matplotlib.pyplot as plt  # noqa: E402

QUICK = os.environ.get("PLASTICLAB_EXAMPLE_QUICK") == "1"
# Small runs are dominated by XLA compilation: a cheaper compile, same numbers (fit's ``compiler_options``).
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True} if QUICK else None
LAYER = 2  # 1-based; the paper's Table 1 reports the second layer


def train(rule: pl.Rule, gammas: tuple[float, ...], data: pl.Dataset, hidden: tuple[int, ...], lr: float,
          epochs: float, seeds: int, log_every: int) -> pl.History:
    """Train one rule at every weight decay in ``gammas`` (one grid: compiled once, cells and seeds vmapped) and
    log the step alignment every ``log_every`` steps."""
    net = pl.MLP((data.n_features, *hidden, data.n_outputs), activation="tanh")
    sgd = optax.sgd(lr)  # one shared object: trainers that differ only in numbers form one grid
    # As in the paper: the rule at rate 1 gives the (pseudo-)gradient, SGD takes the step, and the weight decay is
    # coupled L2 (g + gamma W, as torch's weight_decay).
    trainers = [pl.Trainer(net, rule, optimizer=sgd, weight_decay=g, step_metrics=StepAlignment()) for g in gammas]
    return pl.fit(trainers, data.x_train, data.y_train, seeds=seeds, epochs=epochs, batch_size=64, evals=2,
                  x_eval=data.x_test, y_eval=data.y_test, log_every=log_every, progress=False,
                  compiler_options=FAST_COMPILE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="hebbian_alignment.png", help="where to save the plot")
    args = parser.parse_args()

    data = pl.load_dataset("digits").standardized()         # inputs standardised, as in the paper's SCE task
    hidden, epochs, seeds, log_every = ((32, 32), 6, 2, 5) if QUICK else ((128, 128), 40, 5, 10)
    gammas = (0.0, 0.05)
    rules = {"BP (SGD)": pl.BP(lr=1.0), "FA": pl.FA(lr=1.0)}
    print(f"digits, MLP (64, {', '.join(map(str, hidden))}, 10) tanh, SGD lr 0.05, batch 64, {epochs} epochs, "
          f"{seeds} seeds; alignment of layer {LAYER}, cos(Delta W, <y h^T>), mean over seeds")

    curves: dict[tuple[str, float], tuple[np.ndarray, np.ndarray]] = {}
    for name, rule in rules.items():
        hist = train(rule, gammas, data, hidden, lr=0.05, epochs=epochs, seeds=seeds, log_every=log_every)
        steps = np.asarray(hist.log_steps)                    # the logged steps (1-based)
        align = hist.logged("align")[..., LAYER - 1]          # (cells, seeds, logs): the learning signal's
        full = hist.logged("align_full")[..., LAYER - 1]      # same for the full update (decay included)
        acc = hist.final("eval_accuracy")                     # (cells, seeds)
        last = slice(-max(1, len(steps) // 4), None)          # the logs of the last quarter of training
        shown = np.linspace(0, len(steps) - 1, 5).astype(int)
        for c, gamma in enumerate(gammas):
            mean = np.nanmean(align[c], axis=0)               # over seeds
            curves[name, gamma] = (steps, mean)
            label = f"{name}, gamma={gamma:g}"
            print(f"{label:22s} align at steps {steps[shown].tolist()}: "
                  + " ".join(f"{v:+.2f}" for v in mean[shown]))
            print(f"{'':22s} last quarter: signal {np.nanmean(align[c][:, last]):+.3f}, full update "
                  f"{np.nanmean(full[c][:, last]):+.3f}; test accuracy {np.nanmean(acc[c]):.3f}")

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for (name, gamma), (steps, mean) in curves.items():
        ax.plot(steps, mean, label=f"{name}, gamma={gamma:g}", ls="--" if gamma == 0 else "-",
                color=f"C{list(rules).index(name)}")
    ax.axhline(0, color="k", lw=0.5)
    ax.set(xlabel="training step", ylabel=f"Hebbian alignment, layer {LAYER}",
           title="cos(learning signal, <y h^T>) during training")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"plot saved to {args.out}")


if __name__ == "__main__":
    main()
