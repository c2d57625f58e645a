"""Time and memory of one meta-gradient (100 online inner steps) on the 5-layer net 784-170-130-100-70-5.

Memory is reported two ways:
- XLA's compiled memory analysis (``jax.jit(...).lower(...).compile().memory_analysis()``):
  temp_size_in_bytes is the scratch memory of the whole meta-gradient (the stored
  per-step residuals of the scan dominate it), plus argument and output sizes;
- the process's peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``), which also
  counts the Python interpreter, JAX and the compiler.

    python benchmarks/meta_step.py [--steps 100] [--repeats 5] [--terms pseudo_grad,error_hebb,oja]
                                   [--b-terms pseudo_grad,error_hebb,oja] [--no-remat] [--meta-batch 1]
                                   [--n-out 10] [--max-growth 10]

Defaults follow meta-fig6 on MNIST: 10 outputs (head "dataset"), divergence guard max_growth = 10.

Wall-clock timings on a shared machine are disturbed by other processes; the process CPU time
(``time.process_time``, summed over threads) is printed beside them.

Seeds together (``--seeds 20``): one outer Adam step (meta-gradient and update) for 20 meta-training seeds run
one after another (``MetaLearner.step``, 20 calls) and run together (``MetaLearner.step_seeds``, one vmapped
call); target: together >= 5x faster.
"""

from __future__ import annotations

import argparse
import resource
import time

import jax
import numpy as np

from plasticlab.meta_learning import MetaLearner, build_loop
from plasticlab.rules.meta import DEFAULT_B_TERMS, DEFAULT_TERMS, init_theta, meta_objective, xavier_init
from report import Figures, json_arg


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=100, help="inner (online) steps = support samples")
    p.add_argument("--n-query", type=int, default=50)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--meta-batch", type=int, default=1)
    p.add_argument("--terms", default=",".join(DEFAULT_TERMS))
    p.add_argument("--b-terms", default=",".join(DEFAULT_B_TERMS), help="'' for a fixed B")
    p.add_argument("--no-remat", action="store_true", help="store every step's intermediates instead of (W, B)")
    p.add_argument("--n-out", type=int, default=10, help="output units (10: MNIST with head 'dataset'; 5: head 'task')")
    p.add_argument("--max-growth", type=float, default=10.0, help="inner-loop guard; 0 turns it off")
    p.add_argument("--seeds", type=int, default=20, help="meta-training seeds for the together-vs-apart ratio")
    json_arg(p)
    a = p.parse_args()
    terms = tuple(t for t in a.terms.split(",") if t)
    b_terms = tuple(t for t in a.b_terms.split(",") if t)
    sizes_hidden, n_way = (170, 130, 100, 70), a.n_out
    loop = build_loop(784, sizes_hidden, n_way, terms, b_terms, remat=not a.no_remat,
                      max_growth=a.max_growth or None)
    rng = np.random.default_rng(0)
    inits = [xavier_init(loop.net.sizes, i) for i in range(a.meta_batch)]
    W0 = tuple(np.stack([w[0][l] for w in inits]) for l in range(loop.net.n_layers))
    B0 = tuple(np.stack([w[1][l] for w in inits]) for l in range(loop.net.n_layers))
    xs = rng.uniform(0, 1, (a.meta_batch, a.steps, 784)).astype(np.float32)
    ts = rng.integers(0, n_way, (a.meta_batch, a.steps)).astype(np.int32)
    xq = rng.uniform(0, 1, (a.meta_batch, a.n_query, 784)).astype(np.float32)
    tq = rng.integers(0, n_way, (a.meta_batch, a.n_query)).astype(np.int32)
    theta = init_theta(terms, b_terms, 1e-2)
    f = jax.jit(jax.value_and_grad(lambda th, *args: meta_objective(loop, th, *args, 0.0)[0]))
    args = (theta, W0, B0, xs, ts, xq, tq)
    t0 = time.perf_counter()
    compiled = f.lower(*args).compile()
    t_compile = time.perf_counter() - t0
    jax.block_until_ready(compiled(*args))  # warm-up
    times, cpu = [], []
    for _ in range(a.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    mem = compiled.memory_analysis()
    mib = 1 / 2**20
    print(f"meta-gradient of {a.meta_batch} episode(s) x {a.steps} inner steps, net {loop.net.sizes}, "
          f"terms {terms}, feedback terms {b_terms or 'none (fixed B)'}, remat={not a.no_remat}, "
          f"max_growth={loop.max_growth}")
    print(f"device: {jax.devices()[0]}; compile {t_compile:.1f} s")
    print(f"time per meta-gradient: median {np.median(times):.3f} s, min {np.min(times):.3f} s "
          f"over {a.repeats} runs ({1e3 * np.median(times) / a.steps / a.meta_batch:.2f} ms per inner step); "
          f"process CPU time {np.median(cpu):.3f} s (all threads; less sensitive to other processes)")
    if mem is not None:
        print(f"XLA memory analysis: temp {mem.temp_size_in_bytes * mib:.1f} MiB, arguments "
              f"{mem.argument_size_in_bytes * mib:.1f} MiB, outputs {mem.output_size_in_bytes * mib:.2f} MiB")
    print(f"peak RSS of this process (ru_maxrss): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    fig = Figures("meta_step")
    print("figures:")
    fig.add("meta-gradient, median", float(np.median(times)), " s")
    fig.add("per inner step", 1e3 * float(np.median(times)) / a.steps / a.meta_batch, " ms")
    if a.seeds > 1:
        apart, together = seeds_together(loop, theta, W0, B0, xs, ts, xq, tq, a.seeds)
        fig.add(f"outer step, {a.seeds} seeds one after another", apart, " s")
        fig.add(f"outer step, {a.seeds} seeds together (vmapped)", together, " s")
        fig.add(f"{a.seeds} seeds together over one after another", apart / together, "x", 5)
    fig.write(a.json)


def seeds_together(loop, theta, W0, B0, xs, ts, xq, tq, n: int, repeats: int = 3) -> tuple[float, float]:
    """Best time of one outer step for ``n`` seeds: n calls of MetaLearner.step vs one of step_seeds."""
    import jax.numpy as jnp

    learner = MetaLearner(loop, 1e-3, 1.0)
    mask = jax.tree.map(jnp.ones_like, theta)
    st = learner.init(theta)
    many = lambda tree: jax.tree.map(lambda v: jnp.stack([jnp.asarray(v)] * n), tree)  # noqa: E731
    args = (W0, B0, xs, ts, xq, tq)
    thetas, states, batched = many(theta), many(st), many(args)
    sym = jnp.float32(0.0)
    jax.block_until_ready(learner.step(theta, st, *args, sym, mask))
    jax.block_until_ready(learner.step_seeds(thetas, states, *batched, sym, mask))
    apart = together = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            out = learner.step(theta, st, *args, sym, mask)
        jax.block_until_ready(out)
        apart = min(apart, time.perf_counter() - t0)
        t0 = time.perf_counter()
        jax.block_until_ready(learner.step_seeds(thetas, states, *batched, sym, mask))
        together = min(together, time.perf_counter() - t0)
    return apart, together


if __name__ == "__main__":
    main()
