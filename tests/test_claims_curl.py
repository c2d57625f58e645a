"""The curl-descent paper's claims (plasticlab.claims.curl): the experiments measure them (that each can fail:
test_claims.py's mutation test of every claim)."""

from __future__ import annotations

import pytest

from plasticlab.claims import Greater, Numeric, claims_for
from plasticlab.experiments import run_experiment

CURL = claims_for(paper="curl")


def test_the_paper_has_claims_for_every_curl_experiment():
    assert {c.experiment for c in CURL} == {"curl-fig1", "curl-fig2", "curl-fig3", "curl-fig4", "curl-fig5",
                                            "curl-fig10", "curl-ei"}
    for c in CURL:
        assert c.id.startswith("curl.") and c.paper == "curl" and c.statement and c.where
        if isinstance(c, Numeric):
            assert c.spread is None and c.tolerance and c.tolerance_reason   # the paper reports no spreads
    speed = [c for c in CURL if c.experiment in ("curl-fig5", "curl-fig10")]
    assert speed and all(isinstance(c, Greater) and c.paired for c in speed)
    # the paper's significance levels: p < .01 (tanh, Fig. 5), p < 0.05 (ReLU, Fig. 10)
    assert {c.level for c in speed if c.experiment == "curl-fig5"} == {0.99}
    assert {c.level for c in speed if c.experiment == "curl-fig10"} == {0.95}


def test_fig4_random_init_claims_are_not_read_from_near_solution_runs():
    """curl-fig4 starts every student next to the teacher, so the random-initialisation statements of Fig. 4a
    read measurements that run does not make (they stay "not measured" until random inits are added)."""
    rand = [c for c in CURL if c.experiment == "curl-fig4" and "random_init" in c.id]
    assert len(rand) == 2 and all(all("random_init" in n for n in c.inputs()) for c in rand)


@pytest.mark.parametrize("name", ["curl-fig2", "curl-fig1"])
def test_quick_run_measures_every_input_and_judges_every_claim(tmp_path, name):
    res = run_experiment(name, tmp_path / name, quick=True, progress=False, plots=False)
    mine = claims_for(name)
    for c in mine:
        for n in c.inputs():
            assert res["measurements"].get(n), (c.id, n)
    rows = {r["claim"]: r for r in res["claims"]}
    assert set(rows) == {c.id for c in mine}
    for c in mine:
        want = {"not comparable"} if isinstance(c, Numeric) else {"agrees"}
        assert rows[c.id]["verdict"] in want, rows[c.id]
    # at full size the same measurements agree with every claim (the theory and the toy model are exact)
    assert {c.judge(res["measurements"]).status for c in mine} == {"agrees"}
