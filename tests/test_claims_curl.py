"""The curl-descent paper's claims (plasticlab.claims.curl): the experiments measure them (that each can fail:
test_claims.py's mutation test of every claim)."""

from __future__ import annotations

import pytest

from plasticlab.claims import Greater, Numeric, claims_for
from plasticlab.experiments import run_experiment

CURL = claims_for(paper="curl")


def test_the_paper_has_claims_for_every_curl_experiment():
    assert {c.experiment for c in CURL} == {"curl-fig1", "curl-fig2", "curl-fig3", "curl-fig4", "curl-fig4b",
                                            "curl-fig5", "curl-fig6", "curl-fig8", "curl-fig9", "curl-fig10", "curl-ei"}
    for c in CURL:
        assert c.id.startswith("curl.") and c.paper == "curl" and c.statement and c.where
        if isinstance(c, Numeric):
            assert c.spread is None and c.tolerance and c.tolerance_reason   # the paper reports no spreads
    speed = [c for c in CURL if c.experiment in ("curl-fig5", "curl-fig10")]
    assert speed and all(isinstance(c, Greater) and c.paired for c in speed)
    # the paper's significance levels: p < .01 (tanh, Fig. 5), p < 0.05 (ReLU, Fig. 10)
    assert {c.level for c in speed if c.experiment == "curl-fig5"} == {0.99}
    assert {c.level for c in speed if c.experiment == "curl-fig10"} == {0.95}


def test_fig4_random_init_and_near_solution_claims_belong_to_their_own_runs():
    """Fig. 4a's random-initialisation statements are judged on curl-fig4 (random inits), Fig. 4b's manifold
    statements on curl-fig4b (students next to the teacher): neither reads the other's start."""
    rand = [c for c in CURL if "random_init" in c.id and c.id.startswith("curl.fig4")]
    assert len(rand) == 2 and {c.experiment for c in rand} == {"curl-fig4"}
    assert all(all("random_init" in n for n in c.inputs()) for c in rand)
    near = [c for c in CURL if c.id.startswith("curl.fig4b.")]
    assert len(near) == 2 and {c.experiment for c in near} == {"curl-fig4b"}
    assert not any("random_init" in n for c in near for n in c.inputs())


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
