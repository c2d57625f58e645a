"""Online (batch size 1) training throughput for BP+Oja on the 784-170-130-100-70-10 softplus net.

Prints samples per second per seed for
  1. a plain per-sample NumPy loop of the same update (the baseline),
  2. plasticlab's jitted step inside lax.scan, one seed,
  3. the same with 20 seeds under jax.vmap (total seed-samples per second).
Targets (issue 2): (2) >= 8x (1); (3) total >= 0.8x (2).

The limit of (3): every sample of every seed reads and writes that seed's weights. The benchmark measures this
machine's copy bandwidth (STREAM-style ``b[:] = a``: bytes read + written per second) on arrays far larger than
the caches and on arrays the size of the 20 seeds' weights, and prints the 20-seed run's weight traffic (bytes of
weights touched per sample x seed-samples/s) as a fraction of each. The minimal traffic of a step is one read and
one write of every weight (the update must read and write W); the unfused count (the forward pass reads W_l,
the backward pass W_l^T for l >= 2, Oja's term W_l again, the update reads and writes it) is printed too: a
fraction above 1 there shows XLA fusing those passes. The target (>= 70% of the bound) is on the minimal
traffic against the copy bandwidth at the weights' size (they stay in cache).

    python benchmarks/online_mlp.py [--samples 6000] [--seeds 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

import plasticlab as pl
from report import Figures, json_arg

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


def copy_bandwidth(n_bytes: int, repeats: int = 5) -> float:
    """STREAM-style copy b[:] = a of two float32 arrays of ``n_bytes`` each: best bytes moved (read + write)/s."""
    a = np.ones(n_bytes // 4, np.float32)
    b = np.empty_like(a)
    np.copyto(b, a)
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - t0)
    return 2 * a.nbytes / best


def weight_bytes_per_sample() -> tuple[int, int]:
    """(modelled, minimal) bytes of weights read and written by one BP+Oja step of one seed (float32)."""
    sizes = [i * o for i, o in zip(SIZES[:-1], SIZES[1:])]
    reads = 4 * sum(sizes) - sizes[0]  # forward, backward (not layer 1), Oja's W, update's read
    return 4 * (reads + sum(sizes)), 4 * 2 * sum(sizes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=6000)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--numpy-samples", type=int, default=1000)
    json_arg(ap)
    args = ap.parse_args()
    fig = Figures("online_mlp")
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
    model, minimal = weight_bytes_per_sample()
    weights = args.seeds * minimal // 2
    dram, cache = copy_bandwidth(256 * 2**20), copy_bandwidth(max(weights, 2**20))
    traffic = model * many
    print(f"weights of {args.seeds} seeds: {weights / 2**20:.1f} MiB; traffic per seed-sample {model / 2**20:.2f} MiB "
          f"(minimal {minimal / 2**20:.2f} MiB)")
    print(f"copy bandwidth: {dram / 1e9:.1f} GB/s on 256 MiB arrays, {cache / 1e9:.1f} GB/s on {weights / 2**20:.0f} MiB "
          f"arrays (the weights' size)")
    print("figures:")
    fig.add("numpy per-sample loop", base, " samples/s")
    fig.add("1 seed, lax.scan", one, " samples/s")
    fig.add("1 seed over numpy", one / base, "x", 8)
    fig.add(f"{args.seeds} seeds vmapped", many, " seed-samples/s")
    fig.add(f"{args.seeds} seeds over numpy", many / base, "x", 100,
            note="issue 17's GPU target; on a CPU the limit is the weight traffic below")
    fig.add(f"{args.seeds} seeds over 1 seed", many / one, "x", 0.8)
    fig.add("copy bandwidth, 256 MiB arrays", dram / 1e9, " GB/s")
    fig.add("copy bandwidth, arrays the weights' size", cache / 1e9, " GB/s")
    fig.add("weight traffic of the vmapped run (minimal: 1 read + 1 write per sample)", minimal * many / 1e9, " GB/s")
    fig.add("minimal weight traffic / copy bandwidth (weights' size)", minimal * many / cache, "", 0.7,
            note="the bound that applies: the weights stay in cache; "
                 f"ceiling {cache / minimal:.0f} seed-samples/s")
    fig.add("minimal weight traffic / copy bandwidth (256 MiB)", minimal * many / dram, "")
    fig.add("modelled weight traffic (5 passes) / copy bandwidth (weights' size)", traffic / cache, "",
            note="above 1: XLA fuses the passes over W")
    fig.write(args.json)


if __name__ == "__main__":
    main()
