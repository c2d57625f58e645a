"""Two training jobs at once on a small CPU machine: what XLA's thread pools cost when they compete.

Each job is one process that trains the SAM benchmark's net size with ``fit`` (784-200-200-200-10, FA, batch
256, 5 seeds vmapped) for ``--steps`` steps after a compiling warm-up, and reports the wall time of the training
alone. Four arrangements of two such jobs, side by side in one run (interleaved over ``--repeats``, best of each):

* ``one after the other``: the two jobs in turn, each with the whole machine (the reference);
* ``together``: both at once, XLA's defaults (each process sizes its thread pool to every core);
* ``together, 1 thread each``: both at once, each with ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false
  intra_op_parallelism_threads=1``;
* ``together, pinned``: both at once, each process restricted to its own share of the cores
  (``os.sched_setaffinity`` before JAX starts, as ``plasticlab.threads.pin`` does).

Figure: the time until both jobs are done, relative to one after the other (< 1: running together pays).

    python benchmarks/concurrent_jobs.py [--steps 400] [--repeats 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from report import Figures, json_arg

CHILD = r"""
import json, os, sys, time
cores = sys.argv[2]
if cores:
    os.sched_setaffinity(0, {int(c) for c in cores.split(",")})
import jax, numpy as np
import plasticlab as pl
steps = int(sys.argv[1])
rng = np.random.default_rng(0)
x, y = rng.normal(size=(256 * steps, 784)).astype(np.float32), rng.integers(0, 10, 256 * steps)
trainer = pl.Trainer(pl.MLP((784, 200, 200, 200, 10)), pl.parse_rule("fa"))
kw = dict(seeds=5, batch_size=256, evals=1, progress=False)
jax.block_until_ready(pl.fit(trainer, x, y, n_samples=256 * 4, **kw).final_state)  # compile
t0 = time.time()
jax.block_until_ready(pl.fit(trainer, x, y, n_samples=256 * steps, **kw).final_state)
print(json.dumps({"train_wall": time.time() - t0}))
"""

ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def _start(steps: int, cores: str = "", xla_flags: str | None = None) -> subprocess.Popen:
    env = dict(os.environ, PLASTICLAB_JAX_CACHE="")
    if xla_flags is not None:
        env["XLA_FLAGS"] = xla_flags
    return subprocess.Popen([sys.executable, "-c", CHILD, str(steps), cores], stdout=subprocess.PIPE, text=True,
                            env=env)


def _finish(procs: list[subprocess.Popen]) -> list[float]:
    outs = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs):
        raise RuntimeError(f"a job failed: {[p.returncode for p in procs]}")
    return [json.loads(o.strip().splitlines()[-1])["train_wall"] for o in outs]


def arrangements(steps: int) -> dict[str, float]:
    """Seconds of training until both jobs are done, per arrangement (startup and compilation excluded)."""
    n = os.cpu_count() or 1
    halves = [",".join(str(c) for c in range(n) if c % 2 == i) or "0" for i in range(2)]
    return {
        "one after the other": sum(_finish([_start(steps)])[0] for _ in range(2)),
        "together": max(_finish([_start(steps), _start(steps)])),
        "together, 1 thread each": max(_finish([_start(steps, xla_flags=ONE_THREAD) for _ in range(2)])),
        "together, pinned": max(_finish([_start(steps, cores=h) for h in halves])),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--repeats", type=int, default=2)
    json_arg(p)
    a = p.parse_args()
    best: dict[str, float] = {}
    for _ in range(a.repeats):
        for k, v in arrangements(a.steps).items():
            best[k] = min(best.get(k, float("inf")), v)
    fig = Figures("concurrent_jobs")
    ref = best["one after the other"]
    print(f"{os.cpu_count()} cores, two jobs of {a.steps} steps (784-200-200-200-10 FA, batch 256, 5 seeds):")
    for k, v in best.items():
        print(f"  {k:26s} {v:7.2f} s  ({v / ref:.2f} x one after the other)")
        fig.add(f"{k}: time for both / one after the other", v / ref, "x")
    fig.write(a.json)


if __name__ == "__main__":
    main()
