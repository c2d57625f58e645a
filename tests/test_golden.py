"""The golden --quick results (tests/golden/, recorded before the one-engine refactor) and their comparator."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("golden", ROOT / "tools" / "golden.py")
golden = importlib.util.module_from_spec(spec)
spec.loader.exec_module(golden)


def test_every_experiment_has_a_golden_record():
    from plasticlab.experiments import discover

    ours = {name for name, exp in discover().items() if exp.run.__module__.startswith("plasticlab.experiments.")}
    assert len(ours) >= 31 and {p.stem for p in golden.GOLDEN.glob("*.json")} == ours  # other tests register toys


def test_comparator_tolerates_float_noise_and_nothing_more():
    a = {"rows": [{"acc": 0.5, "status": "ok"}], "curve": [1.0, float("nan")]}
    assert golden.differences(a, {"rows": [{"acc": 0.5 * (1 + 5e-7), "status": "ok"}], "curve": [1.0, float("nan")]}) == []
    assert golden.differences(a, {"rows": [{"acc": 0.5 * (1 + 1e-5), "status": "ok"}], "curve": [1.0, float("nan")]})
    assert golden.differences(a, {"rows": [{"acc": 0.5, "status": "diverged"}], "curve": [1.0, float("nan")]})
    assert golden.differences(a, {"rows": [], "curve": [1.0, float("nan")]}) == ["/rows: length 1 vs 0"]
    assert golden.strip({"meta": {"cpu_seconds": 1}, "x": 1}) == {"x": 1}


@pytest.mark.parametrize("name", ["curl-fig1", "curl-fig2", "curl-ei"])
def test_cheap_experiments_match_their_golden_quick_results(name):
    """The quick runs that take seconds are rerun here; the rest by ``python tools/golden.py check``."""
    assert golden.differences(json.loads((golden.GOLDEN / f"{name}.json").read_text()), golden.run_quick(name)) == []
