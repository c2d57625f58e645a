"""Online (batch size 1) training throughput for BP+Oja on the 784-170-130-100-70-10 softplus net.

Prints samples per second per seed for
  1. a plain per-sample NumPy loop of the same update (the baseline),
  2. plasticlab's jitted step inside lax.scan, one seed,
  3. the same with 20 seeds under jax.vmap (total seed-samples per second).
Targets (issue 2): (2) >= 8x (1); (3) total >= 0.8x (2).

    python benchmarks/online_mlp.py [--samples 6000] [--seeds 20]
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

import plasticlab as pl

SIZES = (784, 170, 130, 100, 70, 10)
LR, LR_OJA, BETA = 0.01, 0.001, 10.0


def numpy_loop(x: np.ndarray, y: np.ndarray, n: int) -> tuple[float, float]:
    """The same BP+Oja update written sample by sample in NumPy; returns samples per wall / CPU second."""
    rng = np.random.default_rng(0)
    Ws = [rng.uniform(-1, 1, (o, i)).astype(np.float32) * np.sqrt(6 / (i + o)) for i, o in zip(SIZES[:-1], SIZES[1:])]
    sp = lambda z: np.logaddexp(0, BETA * z) / BETA  # noqa: E731
    dsp = lambda z: 1 / (1 + np.exp(-BETA * z))  # noqa: E731
    t0, c0 = time.perf_counter(), time.process_time()
    for k in range(n):
        h, ys = [x[k]], []
        for l, w in enumerate(Ws):
            ys.append(w @ h[-1])
            h.append(sp(ys[-1]) if l < len(Ws) - 1 else ys[-1])
        p = np.exp(ys[-1] - ys[-1].max())
        e = p / p.sum()
        e[y[k]] -= 1
        errs = [e]
        for l in range(len(Ws) - 1, 0, -1):
            errs.append((Ws[l].T @ errs[-1]) * dsp(ys[l - 1]))
        errs.reverse()
        for l, w in enumerate(Ws):
            post = h[l + 1]
            Ws[l] = w - LR * np.outer(errs[l], h[l]) + LR_OJA * (np.outer(post, h[l]) - np.outer(post, post @ w))
    return n / (time.perf_counter() - t0), n / (time.process_time() - c0)


def scanned(x: np.ndarray, y: np.ndarray, n: int, seeds: int) -> tuple[float, float, float]:
    """plasticlab's scanned, vmapped training; returns seed-samples per wall / CPU second and the warm-up time."""
    net = pl.MLP(SIZES, activation="softplus", beta=BETA)
    tr = pl.Trainer(net, pl.BP(lr=LR) + pl.Oja(lr=LR_OJA))
    t0 = time.perf_counter()
    pl.fit(tr, x, y, seeds=seeds, n_samples=200, progress=False)  # compile (chunk of 200 differs: warm-up only)
    pl.fit(tr, x, y, seeds=seeds, n_samples=n, progress=False)
    first = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    hist = pl.fit(tr, x, y, seeds=seeds, n_samples=n, progress=False)
    jax.block_until_ready(hist.final_state.params)
    return n * seeds / (time.perf_counter() - t0), n * seeds / (time.process_time() - c0), first


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=6000)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--numpy-samples", type=int, default=1000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x = rng.random((args.samples, 784), dtype=np.float32)
    y = rng.integers(0, 10, args.samples).astype(np.int32)
    print(f"device: {jax.devices()[0]}; net {'-'.join(map(str, SIZES))} softplus(beta={BETA:g}), BP+Oja, batch 1")
    print("(per wall-clock second, and per CPU-second of this process in brackets)")
    base, base_cpu = numpy_loop(x, y, args.numpy_samples)
    print(f"numpy per-sample loop      : {base:9.0f} samples/s       [{base_cpu:9.0f}]")
    one, one_cpu, c1 = scanned(x, y, args.samples, 1)
    print(f"lax.scan, 1 seed           : {one:9.0f} samples/s       [{one_cpu:9.0f}]  "
          f"{one / base:.1f}x numpy [{one_cpu / base_cpu:.1f}x] (target >= 8x); warm-up incl. compile {c1:.1f} s")
    many, many_cpu, _ = scanned(x, y, args.samples, args.seeds)
    print(f"lax.scan, {args.seeds} seeds vmapped : {many:9.0f} seed-samples/s  [{many_cpu:9.0f}]  "
          f"{many / args.seeds:.0f} per seed; {many / one:.2f}x the 1-seed total [{many_cpu / one_cpu:.2f}x] (target >= 0.8x)")


if __name__ == "__main__":
    main()
