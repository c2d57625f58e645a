"""Benchmark: network-epochs per second of the vmapped curl-descent simulator vs a one-network NumPy loop.

Setting of Fig. 3a (linear, M = 20 inputs, N = 199 hidden, scalar output, 250 samples, mini-batch 10,
i.e. 25 steps per epoch, per-step rescaling to the initial Frobenius norms). Both paths run the same
update (``student_teacher.epoch`` vs ``student_teacher.numpy_epoch``). The simulator runs as a user gets it: in
its reduced basis (B = 42 of N = 199 hidden directions, exact for linear networks; ``reduce_network``); the
same simulator in the full basis (``reduce=False``) is measured beside it. We report wall-clock and process CPU
time (all threads), so "per CPU-second" is fair on a shared machine.

The variants of a seed (flip patterns) share the seed's data and its mini-batch order, as the cells of a
Fig. 3 row do: ``--variants 10`` is Fig. 3's ten flip fractions per seed.

    python benchmarks/curl_sim.py [--networks 128] [--variants 4] [--epochs 40] [--numpy-networks 4] [--json F]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

if "--multithread" not in sys.argv:  # one XLA thread: Eigen's pool only spins on a shared 2-core machine
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import jax  # noqa: E402
import numpy as np

from plasticlab.networks import student_teacher as st  # noqa: E402
from report import Figures, json_arg  # noqa: E402


def bench_jax(networks: int, epochs: int, M: int, N: int, n: int, bs: int, n_variants: int = 4,
              reduce: bool | None = None) -> tuple[float, float]:
    key = jax.random.PRNGKey(0)
    seeds = max(1, networks // n_variants)
    variants = [(st.flip_signs(M, a, key=jax.random.PRNGKey(1)), np.ones(N)) for a in np.linspace(0, 0.5, n_variants)]
    nets, data = st.build_batch(key, M, N, seeds, variants, n, n_test=10)
    cfg = st.SimConfig(lr=0.1, batch_size=bs, reduce=reduce)
    st.simulate(nets, data, key, 2, cfg, epochs_at=[1, 2])              # compile (excluded from timing)
    w0, c0 = time.perf_counter(), time.process_time()
    out = st.simulate(nets, data, key, epochs, cfg, epochs_at=[epochs // 2, epochs])
    jax.block_until_ready(out["final"].W1)
    w, c = time.perf_counter() - w0, time.process_time() - c0
    total = nets.W1.shape[0] * nets.W1.shape[1] * epochs
    return total / w, total / c


def bench_numpy(networks: int, epochs: int, M: int, N: int, n: int, bs: int) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(networks):
        W1 = rng.uniform(-1, 1, (N, M)) / np.sqrt(M)
        W2 = rng.uniform(-1, 1, N) / np.sqrt(N)
        T = rng.uniform(-1, 1, N) / np.sqrt(N) @ (rng.uniform(-1, 1, (N, M)) / np.sqrt(M))
        x = rng.normal(0, 1 / np.sqrt(2), (n, M))
        y = x @ T
        d1, d2 = np.where(rng.random(M) < 0.2, -1.0, 1.0), np.ones(N)
        n1, n2 = np.linalg.norm(W1), np.linalg.norm(W2)
        for _ in range(epochs):
            W1, W2 = st.numpy_epoch(W1, W2, d1, d2, x, y, 0.1, bs, rng, n1, n2)
    w, c = time.perf_counter() - w0, time.process_time() - c0
    return networks * epochs / w, networks * epochs / c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--networks", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--numpy-networks", type=int, default=4)
    ap.add_argument("--numpy-epochs", type=int, default=20)
    ap.add_argument("--variants", type=int, default=4, help="flip patterns per seed (sharing its data)")
    ap.add_argument("--multithread", action="store_true", help="let XLA use its multi-threaded Eigen pool")
    json_arg(ap)
    a = ap.parse_args()
    M, N, n, bs = 20, 199, 250, 10
    print(f"setting: linear M={M}, N={N}, n_train={n}, batch {bs} ({n // bs} steps/epoch); "
          f"os.cpu_count()={os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    jw, jc = bench_jax(a.networks, a.epochs, M, N, n, bs, a.variants)
    print(f"vmapped JAX simulator ({a.networks} networks, {a.variants} per seed): {jw:10.1f} network-epochs/s wall, "
          f"{jc:10.1f} per CPU-s")
    fw, fc = bench_jax(a.networks, a.epochs, M, N, n, bs, a.variants, reduce=False)
    print(f"the same in the full basis (reduce=False):               {fw:10.1f} network-epochs/s wall, "
          f"{fc:10.1f} per CPU-s")
    nw, nc = bench_numpy(a.numpy_networks, a.numpy_epochs, M, N, n, bs)
    print(f"NumPy one-network loop ({a.numpy_networks} networks):  {nw:10.1f} network-epochs/s wall, {nc:10.1f} per CPU-s")
    print("note: measured on a CPU shared with other processes; wall-clock figures are disturbed by them.")
    print("figures:")
    fig = Figures("curl_sim")
    fig.add("vmapped simulator", jc, " network-epochs per CPU-s")
    fig.add("vmapped simulator, full basis (reduce=False)", fc, " network-epochs per CPU-s")
    fig.add("reduced over full basis, per CPU-second", jc / fc, "x")
    fig.add("lean NumPy loop", nc, " network-epochs per CPU-s")
    fig.add("simulator over the lean NumPy loop, per CPU-second", jc / nc, "x", 10)
    fig.add("simulator over the lean NumPy loop, wall", jw / nw, "x")
    fig.add("simulator over the authors' per-network script (260 per CPU-s, issue 17's measurement)", jc / 260, "x",
            50, note="not re-measured here: the authors' script is not part of this repository")
    fig.write(a.json)


if __name__ == "__main__":
    main()
