"""Compare learning rules fairly on your own arrays with ``plasticlab.compare``.

Your data only has to be four NumPy arrays in one ``.npz`` file: ``x_train`` (n, features...), ``y_train`` (n,)
integer labels 0..C-1, ``x_test``, ``y_test``. ``plasticlab.compare`` then, for every rule and with the same number
of trials each, searches the rule's rates (and its own hyperparameters, e.g. KP's decay) on a validation split of
the training arrays, trains the chosen setting over several seeds and reads the test arrays once. It returns the
leaderboard (mean, SD, 95% CI, paired t-test against the best rule) as a pandas DataFrame; the run folder holds the
plots and every trial.

    python examples/compare_your_data.py                                # 6 rules, 5 seeds, budget 8 (minutes)
    PLASTICLAB_EXAMPLE_QUICK=1 python examples/compare_your_data.py     # 3 rules, tiny net (seconds)

The same from the command line: ``plasticlab compare --data my_data.npz --rules bp,fa,kp --net auto-64-auto``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

import plasticlab as pl

QUICK = os.environ.get("PLASTICLAB_EXAMPLE_QUICK") == "1"


def write_my_arrays(path: Path, seed: int = 0) -> Path:
    """Stand-in for your data: the bundled 8x8 digits (offline) shuffled into our own 75/25 split and written as
    the four arrays ``compare`` reads. Replace this by ``np.savez(path, x_train=..., y_train=..., x_test=...,
    y_test=...)`` with your arrays."""
    d = pl.load_dataset("digits")
    x = np.concatenate([d.x_train, d.x_test]).reshape(-1, 8, 8)  # images are fine: they are flattened
    y = np.concatenate([d.y_train, d.y_test])
    idx = np.random.default_rng(seed).permutation(len(x))
    if QUICK:
        idx = idx[:600]
    n_train = int(0.75 * len(idx))
    np.savez(path, x_train=x[idx[:n_train]], y_train=y[idx[:n_train]], x_test=x[idx[n_train:]],
             y_test=y[idx[n_train:]])
    return path


def num(v) -> str:
    """A leaderboard number (None or NaN where it is undefined, e.g. the SD of one seed)."""
    return "-" if v is None or v != v else f"{v:.3f}"


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="compare-your-data-"))
    data = write_my_arrays(folder / "my_data.npz")
    if QUICK:
        rules, net, options = ["bp", "fa", "kp"], "auto-32-auto", dict(epochs=2, seeds=2, budget=2, evals=2)
    else:
        rules, net, options = ["bp", "fa", "dfa", "kp", "sam", "bp+oja"], "auto-100-auto", dict(seeds=5, budget=8)
    board = pl.compare(rules, data=data, net=net, out=folder / "run", **options)
    print(f"data {data.name}: {len(rules)} rules, {options['budget']} trials each on a validation split, "
          f"{options['seeds']} seeds on the test split")
    for _, r in board.iterrows():
        p = "best" if r["rule"] == r["vs"] else f"paired t-test vs {r['vs']}: p={num(r['p_vs_best'])}"
        print(f"{r['rank']}. {r['rule']:7s} test accuracy {num(r['mean'])} +- {num(r['sd'])} "
              f"(95% CI [{num(r['ci_low'])}, {num(r['ci_high'])}], n={r['n']}; {p})  chosen: {r['setting']}")
    runs = pl.load_results(board.attrs["run_dir"])  # the run folder as tables: one row per rule and seed
    print(f"per-seed rows: {len(runs.rows)}; plots and search.csv in {board.attrs['run_dir']}")


if __name__ == "__main__":
    main()
