"""`plasticlab compare`: the validation-only search, equal budgets, the npz loader, the leaderboard statistics.

One tiny comparison (a digits subset, a 64-8-10 net, 1 epoch, budget 2, 2 seeds) is run once per module and read
by several tests; the rest are cheap.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

import plasticlab as pl
from plasticlab import data as D
from plasticlab.data import DataError, search_context
from plasticlab.experiments import compare as C
from plasticlab.experiments.base import ConfigError, prepare, run_experiment

RULES = ("bp", "kp")
OPTIONS = {"epochs": 1.0, "seeds": 2, "budget": 2, "evals": 2, "val_fraction": 0.25}
NET = "auto-8-auto"


def _small_digits():
    return pl.load_dataset("digits").subset(n_train=400, n_test=200)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One tiny comparison through the Python API, a Dataset as data (saved as DIR/data.npz and read from there)."""
    out = tmp_path_factory.mktemp("compare")
    board = pl.compare(list(RULES), _small_digits(), NET, out=out, plots=True, **OPTIONS)
    return out, board


def test_a_run_completes_inside_the_guard_and_writes_everything(run_dir):
    out, board = run_dir
    assert list(board["rule"]) and set(board["rule"]) == set(RULES)
    for name in ("results.json", "results.csv", "leaderboard.csv", "search.csv", "learning_curves.png",
                 "leaderboard.png", "search.png", "data.npz"):
        assert (out / name).exists(), name
    res = pl.load_results(out)
    assert res.experiment == "compare" and res.status == "finished"
    assert len(res.rows) == len(RULES) * OPTIONS["seeds"]
    assert set(res.rows.columns) >= {"rule", "seed", "test_accuracy", "setting"}
    assert {"train/bp", "validation/bp"} <= set(res.curves["curve"])
    raw = res.raw
    assert raw["n_search_train"] + raw["n_validation"] == raw["n_train"] == 400


def test_every_rule_gets_the_same_trials_and_the_best_validation_trial_is_chosen(run_dir):
    out, board = run_dir
    raw = json.loads((out / "results.json").read_text())
    counts = {spec: len(s["trials"]) for spec, s in raw["search"].items()}
    assert counts == {spec: OPTIONS["budget"] for spec in RULES}
    assert set(board["trials"]) == {OPTIONS["budget"]}
    lrs = {spec: [t["params"]["lr"] for t in s["trials"]] for spec, s in raw["search"].items()}
    assert lrs["bp"] == lrs["kp"]  # the same design points for every rule
    for spec, s in raw["search"].items():
        vals = [-1.0 if t["val_accuracy"] is None else t["val_accuracy"] for t in s["trials"]]
        assert s["chosen"] == int(np.argmax(vals))
        assert [t["chosen"] for t in s["trials"]] == [i == s["chosen"] for i in range(len(vals))]
        assert board.set_index("rule").loc[spec, "setting"] == s["trials"][s["chosen"]]["rule"]
        assert {r["setting"] for r in raw["rows"] if r["rule"] == spec} == {s["trials"][s["chosen"]]["rule"]}


def test_leaderboard_equals_an_independent_scipy_computation(run_dir):
    out, board = run_dir
    rows = pl.load_results(out).rows
    acc = {r: rows[rows.rule == r].sort_values("seed")["test_accuracy"].to_numpy() for r in RULES}
    best = max(RULES, key=lambda r: acc[r].mean())
    assert board.iloc[0]["rule"] == best
    for _, t in board.iterrows():
        a = acc[t["rule"]]
        assert t["n"] == len(a) and t["mean"] == pytest.approx(a.mean(), abs=1e-12)
        assert t["sd"] == pytest.approx(a.std(ddof=1), abs=1e-12)
        if a.std() > 0:
            lo, hi = stats.t.interval(0.95, len(a) - 1, loc=a.mean(), scale=stats.sem(a))
            assert (t["ci_low"], t["ci_high"]) == pytest.approx((lo, hi), abs=1e-12)
        if t["rule"] != best and np.any(a != acc[best]) and np.std(a - acc[best]) > 0:
            assert t["p_vs_best"] == pytest.approx(stats.ttest_rel(a, acc[best]).pvalue, abs=1e-12)
            assert t["diff_vs_best"] == pytest.approx((a - acc[best]).mean(), abs=1e-12)


def test_leaderboard_statistics_on_known_rows():
    rng = np.random.default_rng(1)
    vals = {"a": 0.9 + 0.01 * rng.normal(size=6), "b": 0.85 + 0.02 * rng.normal(size=6),
            "c": 0.8 + 0.02 * rng.normal(size=6)}
    rows = [{"rule": r, "seed": s, "test_accuracy": float(v[s])} for r, v in vals.items() for s in range(6)]
    rows.append({"rule": "c", "seed": 6, "test_accuracy": None})  # a diverged seed: counted, left out
    board = {t["rule"]: t for t in C.leaderboard(rows)}
    assert [t["rule"] for t in C.leaderboard(rows)] == ["a", "b", "c"]
    assert board["c"]["diverged"] == 1 and board["c"]["n"] == 6
    p = {r: stats.ttest_rel(vals[r], vals["a"]).pvalue for r in ("b", "c")}
    for r in ("b", "c"):
        assert board[r]["p_vs_best"] == pytest.approx(p[r], rel=1e-12)
        lo, hi = stats.t.interval(0.95, 5, loc=(vals[r] - vals["a"]).mean(), scale=stats.sem(vals[r] - vals["a"]))
        assert (board[r]["diff_ci_low"], board[r]["diff_ci_high"]) == pytest.approx((lo, hi), rel=1e-12)
    small, large = sorted(p.values())
    assert sorted([board["b"]["p_holm"], board["c"]["p_holm"]]) == pytest.approx([2 * small, max(2 * small, large)])
    assert board["a"]["p_vs_best"] is None and board["a"]["rank"] == 1


def test_a_search_that_reads_the_test_split_raises(run_dir, monkeypatch, tmp_path):
    data = _small_digits()
    cfg = C.CompareConfig(rules=("bp",), net=NET, **OPTIONS)
    sizes = C.resolve_net(NET, data)
    with search_context("test"), pytest.raises(D.TestSplitRead, match="x_test"):
        C.search_rule(cfg, "bp", data, sizes)  # handed the full data set instead of a validation split
    # the experiment's own search runs inside the guard: a wrong split there raises before any training
    monkeypatch.setattr(C, "_validation_split", lambda d, fraction: d)
    out, _ = run_dir
    with pytest.raises(D.TestSplitRead):
        run_experiment("compare", tmp_path / "wrong", overrides={"rules": "bp", "net": NET,
                                                                 "data": str(out / "data.npz"), **OPTIONS},
                       progress=False, plots=False)


def test_npz_missing_key_is_refused_in_one_line(tmp_path):
    path = tmp_path / "mine.npz"
    np.savez(path, x_train=np.zeros((4, 3)), y_train=np.zeros(4), x_test=np.zeros((2, 3)))
    with pytest.raises(DataError) as err:
        C.load_npz(path)
    msg = str(err.value)
    assert "\n" not in msg and "'y_test'" in msg and str(path) in msg
    with pytest.raises(ConfigError) as err:  # refused by the settings check, before any run folder exists
        prepare("compare", overrides={"data": str(path)})
    assert "\n" not in str(err.value) and "'y_test'" in str(err.value) and str(path) in str(err.value)
    result = CliRunner().invoke(__import__("plasticlab.cli", fromlist=["app"]).app,
                                ["compare", "--data", str(path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "'y_test'" in result.output and not (tmp_path / "run").exists()


def test_net_must_fit_the_data(tmp_path):
    from plasticlab.cli import app

    data = _small_digits()
    assert C.resolve_net("auto-8-auto", data) == (64, 8, 10)
    with pytest.raises(ConfigError, match="input width 784 does not fit data 'digits' .64 features"):
        C.resolve_net("784-8-10", data)
    with pytest.raises(ConfigError, match="output width 3"):
        C.resolve_net("64-8-3", data)
    result = CliRunner().invoke(app, ["compare", "--net", "784-200-10", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "784" in result.output and not (tmp_path / "r").exists()
    with pytest.raises(ConfigError, match="at least one hidden layer"):
        prepare("compare", overrides={"net": "64-10"})


def test_search_space_is_declared_once_for_real_parameters():
    from plasticlab.rules import RULES, rule_parameters

    for name, params in C.SEARCH_SPACE.items():
        assert {p.name for p in params} <= set(rule_parameters(RULES[name])), name
    specs = C.trial_specs("kp+oja", 4, 3)
    assert len(specs) == 4 and all(set(s["params"]) == {"kp.lr", "kp.decay", "oja.lr"} for s in specs)
    assert [s["params"]["kp.lr"] for s in specs] == [s["params"]["lr"] for s in C.trial_specs("bp", 4, 3)]
    fixed = C.trial_specs("curl(alphas=(0.0, 0.3, 0.3))", 2, 3)
    assert all(set(s["params"]) == {"lr"} and "alphas=(0, 0.3, 0.3)" in s["rule"] for s in fixed)
    for s in C.trial_specs("curl", 8, 3):
        pl.parse_rule(s["rule"])  # every trial is a valid rule string


def test_cli_resumes_the_python_run(run_dir):
    """`plasticlab compare` with the same settings in the same folder is the same run: every unit is reused."""
    from plasticlab.cli import app

    out, board = run_dir
    args = ["compare", "--rules", ",".join(RULES), "--data", str(out / "data.npz"), "--net", NET, "--epochs", "1",
            "--seeds", "2", "--budget", "2", "--set", "evals=2", "--set", "val_fraction=0.25", "--out", str(out),
            "--no-plots"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "results.json").read_text())["meta"]
    assert meta["units_computed"] == 0 and meta["units_reused"] == 2 * len(RULES)
    for _, t in board.iterrows():
        assert f"{t['rule']}: {t['setting']} (validation accuracy" in result.output


def test_docs_list_the_search_space_as_declared():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "compare.md").read_text()
    assert C.search_space_markdown() in doc, "docs/compare.md: paste compare.search_space_markdown() again"
