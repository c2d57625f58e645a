"""meta-sanger's outer step on the S6 BP net (784-400-300-250-200-170-130-100-70-40-10), before and after
2026-12-06, side by side in one process.

    python benchmarks/meta_sanger_step.py [--steps 250] [--repeats 3] [--hidden 400,300,...]

For one episode of ``--steps`` online inner steps (S6: 5-way 50-shot = 250) it times the meta-gradient of each of
the three meta-trained rules (pg, pg+oja, pg+sanger; BP feedback, divergence guard on) three ways:

- *former*: one inner loop with all three terms (the absent ones frozen at 0) and Sanger's prefix sum by
  ``jnp.cumsum`` (XLA's CPU lowering: a reduce-window, n^2 work per column);
- *prefix sum*: the same loop with ``rules.base.prefix_sum`` (``lax.associative_scan``);
- *own terms*: each rule's loop with its own terms only (what ``meta-sanger`` compiles now).

Reported: process CPU seconds per rule (the minimum over ``--repeats`` interleaved rounds: the machine may be
shared) and the ratio former / own terms summed over the three rules (the meta-training part of a meta-sanger
run: every rule trains the same number of episodes).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import plasticlab.rules.meta as M
from plasticlab.experiments.meta.sanger import TERMS, VARIANTS
from plasticlab.experiments.oja.common import HIDDEN
from plasticlab.meta_learning import build_loop
from plasticlab.rules.meta import init_theta, meta_objective, xavier_init
from report import Figures, json_arg


def compiled_meta_gradient(terms: tuple[str, ...], hidden: tuple[int, ...], steps: int, rng: np.random.Generator):
    """The jitted meta-gradient of one episode (BP feedback, sym = 1) and its arguments, compiled now, under
    whichever ``prefix_sum`` ``rules.meta`` holds at this moment."""
    loop = build_loop(784, hidden, 10, terms, (), max_growth=10.0)
    W0, B0 = xavier_init(loop.net.sizes, 0)
    W0, B0 = tuple(w[None] for w in W0), tuple(b[None] for b in B0)
    xs = rng.uniform(0, 1, (1, steps, 784)).astype(np.float32)
    ts = rng.integers(0, 10, (1, steps)).astype(np.int32)
    xq = rng.uniform(0, 1, (1, 50, 784)).astype(np.float32)
    tq = rng.integers(0, 10, (1, 50)).astype(np.int32)
    theta = init_theta(terms, (), 1e-3)
    f = jax.jit(jax.value_and_grad(lambda th, *a: meta_objective(loop, th, *a, 1.0)[0]))
    args = (theta, W0, B0, xs, ts, xq, tq)
    return f.lower(*args).compile(), args


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=250, help="inner (online) steps of the episode (S6: 250)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--hidden", default=",".join(map(str, HIDDEN[10])), help="hidden widths of the BP net")
    json_arg(p)
    a = p.parse_args()
    hidden = tuple(int(h) for h in a.hidden.split(","))
    rng = np.random.default_rng(0)
    prefix_sum = M.prefix_sum
    cases = {}
    M.prefix_sum = lambda x, axis=0: jnp.cumsum(x, axis=axis)  # the former lowering
    cases["former"] = compiled_meta_gradient(TERMS, hidden, a.steps, rng)
    M.prefix_sum = prefix_sum
    cases["prefix sum"] = compiled_meta_gradient(TERMS, hidden, a.steps, rng)
    for v, terms in VARIANTS.items():
        cases[v] = compiled_meta_gradient(terms, hidden, a.steps, rng)
    cpu = {k: np.inf for k in cases}
    for _ in range(a.repeats):
        for k, (f, args) in cases.items():
            jax.block_until_ready(f(*args))
            t0 = time.process_time()
            jax.block_until_ready(f(*args))
            cpu[k] = min(cpu[k], time.process_time() - t0)
    print(f"meta-gradient of one {a.steps}-step episode, BP net {(784, *hidden, 10)}, CPU seconds (min of "
          f"{a.repeats}); device {jax.devices()[0]}")
    fig = Figures("meta_sanger_step")
    print("figures:")
    fig.add("all three terms, cumsum (former), per rule", cpu["former"], " s")
    fig.add("all three terms, prefix_sum, per rule", cpu["prefix sum"], " s")
    for v in VARIANTS:
        fig.add(f"{v} on its own terms", cpu[v], " s")
    own = sum(cpu[v] for v in VARIANTS)
    fig.add("three rules: former over own terms", 3 * cpu["former"] / own, "x")
    fig.write(a.json)


if __name__ == "__main__":
    main()
