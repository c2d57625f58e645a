"""Claims: every declared claim can fail (mutation test), the verdict rules, the ledger and its rendered tables."""

from __future__ import annotations

import collections
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from plasticlab import ledger as L
from plasticlab.claims import Exponent, Greater, Numeric, Trend, all_claims, claims_for, register
from plasticlab.cli import app
from plasticlab.experiments.base import (ConfigError, Experiment, RunContext, register as register_experiment,
                                        run_experiment)
from plasticlab.settings import setting

ROOT = Path(__file__).resolve().parents[1]
CLAIMS = all_claims()


@pytest.mark.parametrize("claim", CLAIMS, ids=[c.id for c in CLAIMS])
def test_every_claim_agrees_with_the_paper_and_differs_from_its_contradictions(claim):
    good, bad = claim.mutations()
    assert set(good) == set(claim.inputs())
    v = claim.judge(good)
    assert v.status == "agrees", (claim.id, v)
    assert bad, f"{claim.id} has no contradicting measurements"
    for b in bad:
        w = claim.judge(b)
        assert w.status == "differs", (claim.id, b, w)


def test_claims_are_counted_per_paper_and_all_mutation_tested(capsys):
    per_paper = collections.Counter(c.paper for c in CLAIMS)
    with capsys.disabled():
        print("\nclaims per paper (all mutation-tested):", dict(sorted(per_paper.items())), f"total {len(CLAIMS)}")
    assert len({c.id for c in CLAIMS}) == len(CLAIMS)
    from plasticlab.experiments import discover

    known = discover()
    for c in CLAIMS:
        assert c.experiment in known, f"{c.id}: unknown experiment {c.experiment}"
        assert known[c.experiment].paper == c.paper, f"{c.id}: paper tag differs from its experiment's"
        assert c.statement and c.where


# ----------------------------------------------------------------------------- the verdict rules

def test_numeric_uses_the_combined_uncertainty():
    c = Numeric("t.n", "t", "x", "Table 1", "98.85", measure="acc", value=98.85, spread=0.10)
    close = [98.7, 98.8, 98.75, 98.72, 98.78]  # mean 98.75: |diff| 0.10 <= 2 sqrt(0.1^2 + se^2)
    assert c.judge({"acc": close}).status == "agrees"
    assert c.judge({"acc": [98.02, 98.15, 98.0, 98.02, 97.91]}).status == "differs"  # the old 98.02 "agreed"
    assert c.judge({"acc": close}, quick=True).status == "not comparable"
    assert c.judge({}).status == "not measured" and c.judge({"acc": [None, math.nan]}).status == "not measured"
    with pytest.raises(ValueError, match="spread or a tolerance"):
        Numeric("t.m", "t", "x", "w", "s", measure="a", value=1.0)
    with pytest.raises(ValueError, match="reason"):
        Numeric("t.m", "t", "x", "w", "s", measure="a", value=1.0, tolerance=0.1)


def test_greater_needs_a_ci_above_the_margin():
    c = Greater("t.g", "t", "x", "Table 1", "SAM outperforms SGD", a="sam", b="sgd")
    sgd = [98.10, 98.14, 98.05, 98.12, 98.09]
    assert c.judge({"sam": [s + 0.4 for s in sgd], "sgd": sgd}).status == "agrees"
    assert c.judge({"sam": [98.02, 98.15, 98.00, 98.02, 97.91], "sgd": sgd}).status == "differs"
    assert c.judge({"sam": [99.0], "sgd": [98.0]}).status == "not measured"  # one seed cannot support it
    v = c.judge({"sam": [s + 0.4 for s in sgd], "sgd": sgd})
    assert "d =" in v.ours and "95% CI" in v.ours


def test_greater_counts_diverged_seeds_at_the_stated_value_only_when_asked():
    """A mode whose seeds diverge has not learned: with ``diverged_as`` (chance) it is compared on every seed, not
    on its survivors; without it a side with no finite seed stays "not measured"."""
    vector = [97.95, 98.11, 97.73, 97.61, 97.73]
    plain = Greater("t.g", "t", "x", "Sec. 2", "vector beats norm", a="vector", b="norm")
    chance = Greater("t.g", "t", "x", "Sec. 2", "vector beats norm", a="vector", b="norm", diverged_as=10.0)
    assert plain.judge({"vector": vector, "norm": [None] * 5}).status == "not measured"
    v = chance.judge({"vector": vector, "norm": [None] * 5})
    assert v.status == "agrees" and "5 of 5 seeds of norm" in v.detail
    assert chance.judge({"vector": [None] * 5, "norm": vector}).status == "differs"  # the vector one diverged
    assert chance.judge({"vector": [None] * 5, "norm": [None] * 5}).status == "differs"  # both at chance
    assert chance.judge({"vector": vector, "norm": vector[::-1]}).status == "differs"  # no better on average
    # survivors only would show the mean mode far above chance; every seed counted brings its mean down
    mean_mode = [None, None, None, 65.72, 75.14]
    assert "n=5/2" in plain.judge({"vector": vector, "norm": mean_mode}).detail
    assert "n=5/5" in chance.judge({"vector": vector, "norm": mean_mode}).detail
    assert chance.judge({"vector": vector, "norm": []}).status == "not measured"  # absent is not diverged


def test_trend_and_exponent():
    t = Trend("t.t", "t", "x", "Table 1", "rises with gamma", measures=("g0", "g1", "g2"), xs=(0.0, 0.1, 1.0))
    assert t.judge({"g0": [0.0, 0.01], "g1": [0.2, 0.21], "g2": [0.6, 0.62]}).status == "agrees"
    assert t.judge({"g0": [0.40, 0.41], "g1": [0.40, 0.40], "g2": [0.41, 0.40]}).status == "differs"  # +0.01 is flat
    e = Exponent("t.e", "t", "x", "Fig. 4", "gamma ~ sigma^2", x="sigma", y="gamma", exponent=2.0, spread=0.0)
    sig = [0.1, 0.2, 0.4, 0.8]
    assert e.judge({"sigma": sig, "gamma": [s ** 2 * j for s, j in zip(sig, (1.05, 0.95, 1.04, 0.97))]}).status == "agrees"
    assert e.judge({"sigma": sig, "gamma": [s ** 2.1 for s in sig]}).status == "differs"  # noiseless 2.1 is not 2
    assert e.judge({"sigma": sig, "gamma": [s ** 1.0 for s in sig]}).status == "differs"


def test_trend_slope_and_ci_match_least_squares_with_a_fixed_effect_per_block():
    """Trend's slope and CI against an independent fit: scipy's linregress for one block; for several, ordinary
    least squares on [x, one indicator column per block] (numpy's lstsq, the covariance s^2 (X'X)^-1)."""
    from scipy import stats as st

    rng = np.random.default_rng(3)
    xs = (0.0, 0.25, 0.5, 0.75)
    one = {f"v{i}": list(rng.normal(-0.2 * x, 0.05, size=10)) for i, x in enumerate(xs)}
    t1 = Trend("t.1", "t", "x", "Fig.", "falls", measures=tuple(one), xs=xs, direction="decreasing")
    fit = st.linregress(np.repeat(xs, 10), np.concatenate(list(one.values())))
    half = st.t.ppf(0.975, 40 - 2) * fit.stderr
    assert t1.judge(one).ours == f"slope {fit.slope:.4g} [{fit.slope - half:.4g}, {fit.slope + half:.4g}] (95% CI)"

    offsets = (0.0, 1.0, 2.0)  # the second factor moves the values far more than x does within a block
    blocks = {f"g{b}/v{i}": list(rng.normal(o - 0.2 * x, 0.05, size=10 - b))  # unequal seeds per block
              for b, o in enumerate(offsets) for i, x in enumerate(xs)}
    t3 = Trend("t.3", "t", "x", "Fig.", "falls", measures=tuple(blocks), xs=xs, direction="decreasing", blocks=3)
    x = np.concatenate([[xs[i % 4]] * len(v) for i, v in enumerate(blocks.values())])
    b = np.concatenate([[i // 4] * len(v) for i, v in enumerate(blocks.values())])
    y = np.concatenate(list(blocks.values()))
    design = np.column_stack([x, *(b == k for k in range(3))]).astype(float)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    df = len(y) - design.shape[1]
    s2 = float(((y - design @ coef) ** 2).sum()) / df
    se = float(np.sqrt(s2 * np.linalg.inv(design.T @ design)[0, 0]))
    half = st.t.ppf(0.975, df) * se
    verdict = t3.judge(blocks)
    assert verdict.status == "agrees"
    assert verdict.ours == f"slope {coef[0]:.4g} [{coef[0] - half:.4g}, {coef[0] + half:.4g}] (95% CI)"
    # the same values with the blocks ignored: the spread between blocks swamps the slope
    pooled = {f"v{i}": sum((blocks[f"g{k}/v{i}"] for k in range(3)), []) for i in range(4)}
    assert t1.judge(pooled).status == "differs"
    # no trend within the blocks, only between them: differs
    flat = {k: list(rng.normal(offsets[int(k[1])], 0.05, size=10)) for k in blocks}
    assert t3.judge(flat).status == "differs"
    with pytest.raises(ValueError, match="one measure per x"):
        Trend("t.4", "t", "x", "Fig.", "falls", measures=tuple(blocks)[:8], xs=xs, blocks=3)


# ----------------------------------------------------------------------------- runs, records and the ledger

NAME = "claimstest-tiny-7c1d"


@dataclass
class _Cfg:
    shift: float = setting(0.0, ge=-10, le=10, doc="added to every measured value")
    seeds: int = setting(4, ge=2, le=10, doc="seeds")


def _run(cfg: _Cfg, ctx: RunContext) -> dict:
    vals = ctx.unit("all", lambda: [1.0 + cfg.shift + 0.01 * s for s in range(cfg.seeds)])
    return {"rows": [{"seed": s, "v": v} for s, v in enumerate(vals)],
            "measurements": {"v": vals, "base": [0.5 + 0.01 * s for s in range(cfg.seeds)]}}


register_experiment(Experiment(NAME, "tiny experiment for the claim tests", _Cfg, _run, None, paper="testpaper",
                               quick={"seeds": 2}))
register(Numeric(f"testpaper.{NAME}.v", "testpaper", NAME, "Fig. 0", "v is 1", measure="v", value=1.0, spread=0.05),
         Greater(f"testpaper.{NAME}.gt", "testpaper", NAME, "Fig. 0", "v above base", a="v", b="base"))


def test_run_judges_its_claims_and_the_ledger_records_them(tmp_path):
    res = run_experiment(NAME, tmp_path / "run", progress=False, plots=False)
    verdicts = {r["claim"]: r["verdict"] for r in res["claims"]}
    assert verdicts == {f"testpaper.{NAME}.v": "agrees", f"testpaper.{NAME}.gt": "agrees"}
    quick = run_experiment(NAME, tmp_path / "quick", quick=True, progress=False, plots=False)
    assert {r["claim"]: r["verdict"] for r in quick["claims"]}[f"testpaper.{NAME}.v"] == "not comparable"

    root = tmp_path / "reproductions"
    rows = {r["claim"]: r for r in L.ledger_rows(root, "testpaper")}
    assert {r["verdict"] for r in rows.values()} == {L.NOT_RUN}  # nothing recorded yet: never "agrees"
    with pytest.raises(Exception, match="quick"):
        L.record(tmp_path / "quick", root)
    path = L.record(tmp_path / "run", root)
    assert path == root / "testpaper" / f"{NAME}.json"
    rec = json.loads(path.read_text())
    assert rec["measurements"]["v"]["n"] == 4 and rec["wall_seconds"] is not None and rec["cpu_seconds"] is not None
    assert rec["config"]["seeds"] == 4 and rec["size"] == "paper" and len(rec["claims"]) == 2
    rows = {r["claim"]: r for r in L.ledger_rows(root, "testpaper")}
    assert rows[f"testpaper.{NAME}.v"]["verdict"] == "agrees"
    # a record is re-judged with the current claims: a shifted run differs
    run_experiment(NAME, tmp_path / "shifted", overrides={"shift": "1.0"}, progress=False, plots=False)
    L.record(tmp_path / "shifted", root)
    assert {r["claim"]: r["verdict"] for r in L.ledger_rows(root, "testpaper")}[f"testpaper.{NAME}.v"] == "differs"
    md = L.markdown(root)
    assert "| testpaper |" in md and f"testpaper.{NAME}.v" in md


PARTS = "claimstest-parts-3e9a"


@dataclass
class _PartsCfg:
    measures: tuple[str, ...] = setting(("a", "b"), choices=("a", "b"), doc="which claims' inputs the run measures")
    shift: float = setting(0.0, ge=-10, le=10, doc="added to every measured value")


def _run_parts(cfg: _PartsCfg, ctx: RunContext) -> dict:
    vals = ctx.unit("all", lambda: [1.0 + cfg.shift, 1.01 + cfg.shift, 0.99 + cfg.shift])
    return {"rows": [{"v": v} for v in vals], "measurements": {k: vals for k in cfg.measures}}


register_experiment(Experiment(PARTS, "tiny experiment for records in parts", _PartsCfg, _run_parts, None,
                               paper="testpaper"))
register(*(Numeric(f"testpaper.{PARTS}.{k}", "testpaper", PARTS, "Fig. 0", f"{k} is 1", measure=k, value=1.0,
                   spread=0.05) for k in ("a", "b")))


def test_an_experiment_recorded_in_parts_judges_each_claim_from_the_part_that_measures_it(tmp_path):
    """A run of one claim's inputs is the main record and a run of the other's is a part; each claim is judged from
    the record that measures it; a part that measures a claim another record measures is refused before anything
    is written; the same part recorded again replaces itself."""
    root = tmp_path / "reproductions"
    for name, over in (("a", {"measures": ("a",)}), ("b", {"measures": ("b",), "shift": 1.0}),
                       ("ab", {"measures": ("a", "b")})):
        run_experiment(PARTS, tmp_path / name, overrides=over, progress=False, plots=False)
    L.record(tmp_path / "a", root)
    verdicts = {r["claim"]: (r["verdict"], r["experiment"]) for r in L.ledger_rows(root, "testpaper")}
    assert verdicts[f"testpaper.{PARTS}.b"] == ("not measured", PARTS)
    path = L.record(tmp_path / "b", root, part="second", size="the b half")
    assert path.name == f"{PARTS}@second.json" and json.loads(path.read_text())["part"] == "second"
    rows = {r["claim"]: r for r in L.ledger_rows(root, "testpaper")}
    assert (rows[f"testpaper.{PARTS}.a"]["verdict"], rows[f"testpaper.{PARTS}.a"]["experiment"]) == ("agrees", PARTS)
    assert (rows[f"testpaper.{PARTS}.b"]["verdict"], rows[f"testpaper.{PARTS}.b"]["experiment"],
            rows[f"testpaper.{PARTS}.b"]["size"]) == ("differs", f"{PARTS}@second", "the b half")  # shifted by 1
    before = sorted(p.name for p in (root / "testpaper").iterdir())
    with pytest.raises(ConfigError, match=f"testpaper.{PARTS}.a.*already measured by the record .*{PARTS}.json"):
        L.record(tmp_path / "ab", root, part="third")
    assert sorted(p.name for p in (root / "testpaper").iterdir()) == before
    with pytest.raises(ConfigError, match="not a part name"):
        L.record(tmp_path / "b", root, part="../x")
    L.record(tmp_path / "b", root, part="second", size="again")  # the same part is replaced, not refused
    assert {r["claim"]: r["size"] for r in L.ledger_rows(root, "testpaper")}[f"testpaper.{PARTS}.b"] == "again"
    assert {r["experiment"] for r in L.run_rows(L.load_records(root), "testpaper")} >= {PARTS, f"{PARTS}@second"}
    res = CliRunner().invoke(app, ["ledger", "--part", "x"])
    assert res.exit_code != 0 and "only with --record" in res.output


def test_a_reduced_run_records_the_estimated_compute_of_the_full_size(tmp_path):
    run_experiment(NAME, tmp_path / "run", progress=False, plots=False)
    root = tmp_path / "reproductions"
    with pytest.raises(ConfigError, match="--full epochs=10: not a positive numeric setting of this run; allowed: "
                                          ".*seeds"):
        L.record(tmp_path / "run", root, full={"epochs": 10})
    assert not root.exists()  # refused before anything was written
    rec = json.loads(L.record(tmp_path / "run", root, size="reduced", full={"seeds": 20}).read_text())
    est = rec["full_size_estimate"]
    assert est["settings"] == {"seeds": {"ran": 4, "full": 20}} and est["scale"] == 5
    assert est["cpu_seconds"] == pytest.approx(5 * L.run_seconds(rec, "cpu"))  # the whole run, scaled
    runs = L.run_rows(L.load_records(root), "testpaper")
    assert [r["experiment"] for r in runs] == [NAME] and runs[0]["full size (estimate)"].startswith("seeds 4 -> 20")
    assert "testpaper runs" in L.markdown(root)
    assert L.parse_full(["epochs=1e5", "seeds=20"]) == {"epochs": 1e5, "seeds": 20.0}
    for bad in ("epochs", "epochs=many", "=3"):
        with pytest.raises(ConfigError, match="expected SETTING=NUMBER"):
            L.parse_full([bad])
    res = CliRunner().invoke(app, ["ledger", "--full", "seeds=20"])
    assert res.exit_code != 0 and "only with --record" in res.output


def test_ledger_command_lists_every_claim_and_what_each_run_cost():
    res = CliRunner().invoke(app, ["ledger"])
    assert res.exit_code == 0, res.output
    for c in CLAIMS[:5]:
        assert c.id[:20] in res.output
    for name, rec in L.load_records(ROOT / "reproductions").items():
        assert f"run {name}: wall " in res.output


def _block(text: str) -> str | None:
    m = re.search(r"<!-- ledger:begin -->\n(.*?)<!-- ledger:end -->", text, re.S)
    return m.group(1) if m else None


def test_readme_and_docs_ledger_tables_equal_the_rendered_ledger():
    """README's summary is `plasticlab ledger --markdown --summary` and docs/ledger.md is `plasticlab ledger
    --markdown`, both rendered from the committed records, so neither can drift."""
    from plasticlab.report import PAPERS

    block = _block((ROOT / "README.md").read_text())
    assert block is not None, "README has no ledger block"
    real = [c for c in all_claims() if c.paper in PAPERS]
    rows = [r for r in L.ledger_rows(ROOT / "reproductions") if r["paper"] in PAPERS]
    assert len(rows) == len(real)
    assert block == L.markdown(ROOT / "reproductions", summary_only=True, papers=PAPERS)
    docs = (ROOT / "docs" / "ledger.md").read_text()
    assert _block(docs) == L.markdown(ROOT / "reproductions", papers=PAPERS)


def test_hebb_docs_table1_equals_its_ledger_record():
    """docs/hebb.md's Table 1 block is ``hebb.table1.ledger_markdown`` of the committed records (each cell: ours,
    the paper's, the verdict), so it cannot drift."""
    import re

    from plasticlab.experiments.hebb.table1 import ledger_markdown

    text = (ROOT / "docs" / "hebb.md").read_text()
    block = re.search(r"<!-- hebb-table1:begin -->\n(.*?)<!-- hebb-table1:end -->", text, re.S)
    assert block is not None, "docs/hebb.md has no hebb-table1 block"
    assert block.group(1) == ledger_markdown(ROOT / "reproductions")


def test_readme_sam_table_equals_its_ledger_record():
    """The README's SAM Table 1 row is the committed record's measurements (mean +- SD (n)), so it cannot drift."""
    rec = json.loads((ROOT / "reproductions" / "sam" / "sam-table1.json").read_text())
    readme = (ROOT / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| ours |") and "(5)" in line)
    cells = [c.strip() for c in row.strip("|").split("|")[1:]]
    for method, cell in zip(("sgd", "fa", "wm", "kp", "sam"), cells):
        m = rec["measurements"][f"mnist/{method}/test_accuracy"]
        assert cell == f"{m['mean']:.2f} +- {m['sd']:.2f} ({m['n']})", (method, cell)


def test_readme_oja_table_equals_its_ledger_records():
    """Every 'RULE mean +- SD (n)' cell of the README's Oja table is the named record's measurement."""
    import re

    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Headline numbers: ours vs the Oja paper", 1)[1].split("\n### ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| Fig.")]
    labels = {"BP": "bp", "BP+Oja": "bp+oja", "FA": "fa", "FA+Oja": "fa+oja", "BPTT": "bptt", "BPTT+Oja": "bptt+oja"}
    checked = 0
    for row in rows:
        exp = re.search(r"\(`(oja-[a-z0-9]+)`\)", row).group(1)
        rec = json.loads((ROOT / "reproductions" / "oja" / f"{exp}.json").read_text())
        prefix = {"oja-fig1": "depth=10/" if "10 layers" in row else "depth=5/", "oja-fig3": "depth=5/init=naive/",
                  "oja-fig6a": "depth=5/", "oja-fig5": ""}[exp]
        for label, mean, sd, n in re.findall(r"([A-Za-z+]+) ([0-9.]+) \+- ([0-9.]+) \((\d+)\)", row):
            m = rec["measurements"][f"{prefix}{labels[label]}/final_accuracy"]
            assert (mean, sd, int(n)) == (f"{m['mean']:.3f}", f"{m['sd']:.3f}", m["n"]), row
            checked += 1
    assert checked == 10


def test_requirements_lock_pins_every_dependency_and_runs_record_its_hash():
    """requirements.lock (tools/lock.py) pins an exact version of every dependency in pyproject.toml, and every run
    records the lock's SHA-256 in its environment (the ledger copies it)."""
    import hashlib

    from plasticlab.experiments.base import environment_info

    lock = ROOT / "requirements.lock"
    pins = {line.split("==")[0].lower() for line in lock.read_text().splitlines() if "==" in line}
    deps = re.findall(r'^\s+"([A-Za-z0-9_-]+)', (ROOT / "pyproject.toml").read_text().split("[project.scripts]")[0],
                      re.M)
    wanted = {d.lower() for d in deps} - {"ray", "pyarrow", "jax[cuda12]", "tomli"}  # extras not in the lock
    assert wanted and wanted <= pins, wanted - pins
    assert environment_info()["lock_sha256"] == hashlib.sha256(lock.read_bytes()).hexdigest()


def test_a_stand_in_data_set_is_never_scored_against_the_papers_number():
    """Measurements filed under the paper's data set but made on a stand-in (results["stand_in"]): a number of the
    paper's data set is "not comparable", a relation and a data-independent difference are judged and say so."""
    from plasticlab.claims import Greater, Numeric

    num = Numeric("x.n", "sam", "e", "w", "s", measure="cifar10/acc", value=40.0, tolerance=0.5, tolerance_reason="r")
    diff = Numeric("x.d", "sam", "e", "w", "s", measure="cifar10/gap", value=0.0, tolerance=2.0, tolerance_reason="r",
                   data_specific=False)
    rel = Greater("x.g", "sam", "e", "w", "s", a="cifar10/a", b="cifar10/b")
    m = {"cifar10/acc": [40.1, 39.9, 40.0], "cifar10/gap": [5.0, 5.1, 4.9], "cifar10/a": [2.0, 2.1, 2.2],
         "cifar10/b": [1.0, 1.1, 1.0]}
    stand = {"cifar10": "mnist"}
    assert num.row(m)["verdict"] == "agrees" and num.row(m, stand_in=stand)["verdict"] == "not comparable"
    assert "mnist standing in for cifar10" in num.row(m, stand_in=stand)["detail"]
    assert diff.row(m, stand_in=stand)["verdict"] == "differs"
    r = rel.row(m, stand_in=stand)
    assert r["verdict"] == "agrees" and r["detail"].endswith("(mnist standing in for cifar10)")
    assert rel.row(m, stand_in={"svhn": "mnist"})["detail"] == rel.row(m)["detail"]  # another data set: untouched
