"""What cutting an evaluation interval into compiled calls costs: ``fit`` with its default ``call_steps`` (a
few seconds of work per call, so progress and Ctrl-C land during a run with one evaluation) against one call
per interval, side by side, compiled first and timed in CPU seconds (steadier than wall time on a shared
machine) over interleaved repeats (best of each).

Two settings: a batched MLP (784-500-500-10, FA, batch 128, 3 seeds) and online learning (784-1000-10,
BP+Oja, batch 1, 10 seeds), each trained with a single evaluation. Target: cut / one call <= 1.05.

    python benchmarks/fit_calls.py [--repeats 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

import plasticlab as pl
from plasticlab import training
from report import Figures, json_arg

SETTINGS = {"batched": ((784, 500, 500, 10), "fa", 128, 3, 920), "online": ((784, 1000, 10), "bp+oja", 1, 10, 20000)}
ONE_CALL = 10 ** 9


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--scale", type=float, default=1.0, help="multiply the steps (e.g. 0.1 for a quick check)")
    p.add_argument("--only", choices=list(SETTINGS), default=None, help="one setting only")
    json_arg(p)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60000, 784)).astype(np.float32), rng.integers(0, 10, 60000)
    fig = Figures("fit_calls")
    for name, (sizes, rule, batch, seeds, steps) in SETTINGS.items():
        if a.only not in (None, name):
            continue
        steps = max(2, int(steps * a.scale))
        trainer = pl.Trainer(pl.MLP(sizes), pl.parse_rule(rule))
        best: dict = {}
        for rep in range(a.repeats + 1):  # the first round compiles
            for call_steps in (None, ONE_CALL):
                t0 = time.process_time()
                hist = pl.fit(trainer, x, y, seeds=seeds, n_samples=batch * steps, batch_size=batch, evals=1,
                              progress=False, call_steps=call_steps)
                jax.block_until_ready(hist.final_state)
                if rep:
                    best[call_steps] = min(best.get(call_steps, np.inf), time.process_time() - t0)
        per_call = training.call_steps_for(hist.final_state, batch)
        calls = len(training._cut(0, steps, per_call)) + 1
        print(f"{name}: {sizes} {rule}, batch {batch}, {seeds} seeds, {steps} steps: {calls} calls of <= "
              f"{per_call} steps {best[None]:.2f} CPU-s, one call {best[ONE_CALL]:.2f} CPU-s")
        fig.add(f"{name}: calls per evaluation interval", calls, "")
        fig.add(f"{name}: CPU seconds per call", best[None] / calls, " s")
        fig.add(f"{name}: cut / one call", best[None] / best[ONE_CALL], "x", 1.05, at_most=True)
    fig.write(a.json)


if __name__ == "__main__":
    main()
