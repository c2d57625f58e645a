"""Rate choices read no test image: the validation modes of the experiments whose rates are chosen from runs."""

import numpy as np
import pytest

from plasticlab.experiments import run_experiment


def test_oja_fig5_validation_mode_scores_held_out_training_trials(tmp_path):
    """evaluate_on=validation runs inside a search context (a test-split read would raise TestSplitRead) and scores
    on training images held out: the rows differ from the same run scored on test images."""
    kw = dict(quick=True, progress=False, plots=False)
    val = run_experiment("oja-fig5", tmp_path / "val", overrides={"evaluate_on": "validation", "seeds": 2}, **kw)
    test = run_experiment("oja-fig5", tmp_path / "test", overrides={"seeds": 2}, **kw)
    a = np.array([r["final_accuracy"] for r in val["rows"]])
    b = np.array([r["final_accuracy"] for r in test["rows"]])
    assert a.shape == b.shape and np.all(np.isfinite(a)) and not np.allclose(a, b)


def test_oja_fig5_eta_per_rule_is_checked():
    from plasticlab.experiments.base import ConfigError, prepare

    _, cfg = prepare("oja-fig5", overrides={"eta_per_rule": {"bptt": 0.01}})
    assert cfg.eta_per_rule == {"bptt": 0.01}
    with pytest.raises(ConfigError, match="eta_per_rule"):
        prepare("oja-fig5", overrides={"eta_per_rule": {"bpt": 0.01}})
