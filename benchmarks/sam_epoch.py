"""One epoch's wall time of SAM and SGD (backprop) on the same MNIST-sized net, batch 256.

Usage: python benchmarks/sam_epoch.py [--data-dir DIR] [--seeds 1]
The net is 784-200-200-200-10 (ReLU); both rules run through plasticlab's jitted lax.scan loop
(``training.fit``), compiled before timing. Without MNIST files the inputs are random of the same
shape (timing does not depend on the pixel values). Target: SAM / SGD <= 3.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from plasticlab.networks import MLP
from plasticlab.rules import BP
from plasticlab.rules.sam import SAM
from plasticlab.training import Trainer, fit
from report import Figures, json_arg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    json_arg(ap)
    args = ap.parse_args()
    try:
        from plasticlab.data import load_dataset

        d = load_dataset("mnist", args.data_dir)
        x, y, src = d.x_train, d.y_train, "MNIST"
    except Exception as err:  # noqa: BLE001 - any loader failure falls back to random inputs
        rng = np.random.default_rng(0)
        x, y, src = rng.random((60000, 784), np.float32), rng.integers(0, 10, 60000).astype(np.int32), f"random ({err})"
    net = MLP((784, 200, 200, 200, 10), activation="relu")
    times = {}
    for name, rule in (("sgd", BP(lr=0.1)), ("sam", SAM(lr=0.05))):
        tr = Trainer(net, rule, init_method="kaiming")
        fit(tr, x, y, seeds=args.seeds, n_samples=len(x), batch_size=256, progress=False)  # compile (same shapes)
        best = np.inf
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fit(tr, x, y, seeds=args.seeds, n_samples=len(x), batch_size=256, progress=False)
            best = min(best, time.perf_counter() - t0)
        times[name] = best
        print(f"{name}: one epoch ({len(x)} samples, batch 256, {args.seeds} seed(s)) in {best:.2f} s")
    print(f"data: {src}")
    print(f"ratio SAM / SGD = {times['sam'] / times['sgd']:.2f} (target <= 3); timings on a shared machine are noisy")
    print("figures:")
    fig = Figures("sam_epoch")
    fig.add("SGD epoch", times["sgd"], " s")
    fig.add("SAM epoch", times["sam"], " s")
    fig.add("SAM / SGD epoch time", times["sam"] / times["sgd"], "x", 3, at_most=True)
    fig.write(args.json)


if __name__ == "__main__":
    main()
