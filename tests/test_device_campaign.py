"""tools/device_campaign.sh: its jobs' settings are valid experiment settings (checked as `plasticlab run` checks
them, without running anything), and an unknown job is refused before any work."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from plasticlab.experiments.base import parse_set, prepare

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "device_campaign.sh"
JOBS = ("hebb-fig3-deep", "hebb-table1-transformer", "hebb-fig10", "hebb-sweeps-batch-lr", "hebb-sweeps-scale",
        "meta-sanger")


def job_args(job: str) -> list[str]:
    """The `plasticlab run` arguments the script gives ``job`` (its own job_args function, called from bash)."""
    text = SCRIPT.read_text()
    fn = text[text.index("job_args() {"):text.index("\n}\n", text.index("job_args() {")) + 3]
    out = subprocess.run(["bash", "-c", f"{fn}\njob_args {job}"], capture_output=True, text=True, check=True)
    return out.stdout.split()


@pytest.mark.parametrize("job", JOBS)
def test_every_job_runs_an_experiment_with_valid_settings(job):
    experiment, *rest = job_args(job)
    sets = [rest[i + 1] for i in range(len(rest)) if rest[i] == "--set"]
    assert len(sets) * 2 == len(rest)  # nothing but --set KEY=VALUE after the experiment
    _, cfg = prepare(experiment, overrides=parse_set(sets))  # raises ConfigError on a bad key or value
    assert getattr(cfg, "quick", False) is False


def test_an_unknown_job_is_refused_before_any_work(tmp_path):
    res = subprocess.run(["bash", str(SCRIPT), "hebb-fig3-deep", "hebb-fig99"], capture_output=True, text=True,
                         env={"OUT": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert res.returncode == 2
    assert "job hebb-fig99: unknown; allowed: hebb-fig3-deep" in res.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written, nothing run
