"""tools/device_campaign.sh: its jobs' settings are valid experiment settings (checked as `plasticlab run` checks
them, without running anything), each job runs the setting of the ledger record it extends except for the keys it
changes on purpose, and an unknown job is refused before any work."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import pytest

from plasticlab.experiments.base import parse_set, prepare

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "device_campaign.sh"
JOBS = ("hebb-fig3-deep", "hebb-table1-transformer", "hebb-fig10", "hebb-sweeps-batch-lr", "hebb-sweeps-scale",
        "meta-sanger")


# job -> (the committed record whose setting it extends, the keys it changes on purpose)
EXTENDS = {
    "hebb-fig3-deep": ("hebb/hebb-fig3@deep", set()),
    "hebb-table1-transformer": ("hebb/hebb-table1", {"models"}),
    "hebb-sweeps-batch-lr": ("hebb/hebb-sweeps@frozen", {"sweeps", "widths", "model_params", "model_layers"}),
    "hebb-sweeps-scale": ("hebb/hebb-sweeps@frozen", {"sweeps", "widths", "model_params", "model_layers"}),
    "meta-sanger": ("meta/meta-sanger", {"seeds"}),
}


def job_args(job: str) -> list[str]:
    """The `plasticlab run` arguments the script gives ``job`` (its own job_args function, called from bash)."""
    text = SCRIPT.read_text()
    fn = text[text.index("job_args() {"):text.index("\n}\n", text.index("job_args() {")) + 3]
    out = subprocess.run(["bash", "-c", f"{fn}\njob_args {job}"], capture_output=True, text=True, check=True)
    return out.stdout.split()


def job_config(job: str) -> tuple[str, object]:
    """The experiment a job runs and its config, prepared as `plasticlab run` prepares it."""
    experiment, *rest = job_args(job)
    sets = [rest[i + 1] for i in range(len(rest)) if rest[i] == "--set"]
    assert len(sets) * 2 == len(rest)  # nothing but --set KEY=VALUE after the experiment
    _, cfg = prepare(experiment, overrides=parse_set(sets))  # raises ConfigError on a bad key or value
    return experiment, cfg


@pytest.mark.parametrize("job", JOBS)
def test_every_job_runs_an_experiment_with_valid_settings(job):
    _, cfg = job_config(job)
    assert getattr(cfg, "quick", False) is False


@pytest.mark.parametrize("job", sorted(EXTENDS))
def test_a_job_runs_its_records_setting_but_for_the_keys_it_changes(job):
    """A GPU job finishes what a CPU record began: held-out classes, rates and sizes must be the record's (the
    meta-sanger job once ran split_mode=samples beside a record on unseen classes)."""
    record, changed = EXTENDS[job]
    recorded = json.loads((ROOT / "reproductions" / f"{record}.json").read_text())
    experiment, cfg = job_config(job)
    ours = json.loads(json.dumps(dataclasses.asdict(cfg), default=list))
    assert experiment == recorded["experiment"]
    # a setting the record predates is absent from it: its default keeps the recorded behaviour
    differ = {k for k in recorded["config"] if ours.get(k) != recorded["config"][k]}
    assert differ <= changed, {k: (recorded["config"].get(k), ours.get(k)) for k in differ - changed}


def test_an_unknown_job_is_refused_before_any_work(tmp_path):
    res = subprocess.run(["bash", str(SCRIPT), "hebb-fig3-deep", "hebb-fig99"], capture_output=True, text=True,
                         env={"OUT": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert res.returncode == 2
    assert "job hebb-fig99: unknown; allowed: hebb-fig3-deep" in res.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written, nothing run
