"""Every committed ledger record's command, run today, runs the record's config: a default changed after a record
(hebb's teacher init, 2026-12-07) must come with a new record or a ``--set`` in the command, never silently."""
from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path

import pytest
import typer

from plasticlab.cli import app
from plasticlab.experiments.base import parse_set, prepare

ROOT = Path(__file__).resolve().parents[1]
RECORDS = sorted((ROOT / "reproductions").glob("*/*.json"))
RUN = typer.main.get_command(app).commands["run"]  # `plasticlab run`'s click command: parses, runs nothing

# settings removed after a record, which the record's run never read (so today's code runs what it ran)
REMOVED = {
    "hebb-sweeps": {"widths"},  # Fig. 9 scales by parameter count now; the frozen / sparsity parts never read it
    "meta-sanger-scan": {"theta0", "lr_meta", "clip", "n_episodes", "ckpt_every", "select_every", "n_val_tasks",
                         "seeds"},  # meta-trains nothing: these were ignored, now refused (43f2205)
}
# settings added after a record: the value the record ran with (UNREAD: its run never read the setting); today's
# value must equal it, so that a default changed later is caught (a record without the key is still checked)
UNREAD = object()
ADDED = {
    "hebb-sweeps": {"model_params": UNREAD, "model_layers": UNREAD},  # the scale sweep's; read by no record before it
    # the forward activation was relu before the setting; the command now runs tanh and leaky_relu too (their own
    # records: sam-width@tanh, @leaky_relu), so today it runs what the record ran and more
    "sam-width": {"activations": ["relu"]},
}
SUPERSET_OK = {("sam-width", "activations")}
# records whose command repeats a run from a config file that was not committed: checked by their config alone
FROM_CONFIG_FILE = {"sam-ablation"}


def command_config(command: str) -> tuple[str, dict]:
    """The experiment and config that ``plasticlab run ...`` (the record's command) would run today: the command
    line read by the CLI's own parser (an unknown option fails), the config prepared as ``run`` prepares it."""
    toks = shlex.split(command)
    params = RUN.make_context("run", toks[toks.index("run") + 1:]).params
    _, cfg = prepare(params["experiment"], quick=params["quick"], seeds=params["seeds"],
                     overrides=parse_set(params["set_"]))
    return params["experiment"], json.loads(json.dumps(dataclasses.asdict(cfg), default=list))


def drift(record: dict) -> dict:
    """Settings whose recorded value differs from what the record's command runs today: {key: (recorded, today)}.
    A setting added after the record is compared with the value the record ran with (``ADDED``); a dict-valued
    setting may have gained entries (rates of rules the record did not run)."""
    experiment, today = command_config(record["command"])
    assert experiment == record["experiment"]
    ran = {**{k: v for k, v in ADDED.get(experiment, {}).items() if v is not UNREAD}, **record["config"]}
    missing = set(today) - set(ran) - set(ADDED.get(experiment, {}))
    out = {key: ("<not in the record: add it to ADDED>", today[key]) for key in missing}
    for key, value in ran.items():
        if key in REMOVED.get(experiment, set()) and key not in today:
            continue
        now = today.get(key, "<no such setting>")
        if isinstance(value, dict) and isinstance(now, dict) and all(now.get(k) == v for k, v in value.items()):
            continue
        if (experiment, key) in SUPERSET_OK and isinstance(now, list) and set(value) <= set(now):
            continue
        if now != value:
            out[key] = (value, now)
    return out


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_a_records_command_runs_its_config_today(path):
    record = json.loads(path.read_text())
    if record["experiment"] in FROM_CONFIG_FILE:
        assert record["command"].split()[2] == "--config"
        _, cfg = prepare(record["experiment"], config=record["config"])  # still a valid config today
        return
    assert drift(record) == {}


def test_a_changed_default_is_caught(monkeypatch):
    """Mutation: hebb-table1's record with the teacher it had before 2026-12-07, a rate nobody ran, a removed
    setting, a default flipped after a record (also one the record predates, through ``ADDED``) all drift."""
    record = json.loads((ROOT / "reproductions" / "hebb" / "hebb-table1.json").read_text())
    assert drift(record) == {}
    old_teacher = {**record, "config": {**record["config"], "teacher_init": "xavier_normal"}}
    assert drift(old_teacher) == {"teacher_init": ("xavier_normal", "uniform_fanin")}
    oja = json.loads((ROOT / "reproductions" / "oja" / "oja-fig1.json").read_text())
    rates = dict(oja["config"]["rates"])
    rates[next(iter(rates))] = [0.5, 0.5]
    assert set(drift({**oja, "config": {**oja["config"], "rates": rates}})) == {"rates"}
    removed = {**record, "config": {**record["config"], "widths": [64]}}
    assert drift(removed) == {"widths": ([64], "<no such setting>")}
    fig4 = json.loads((ROOT / "reproductions" / "hebb" / "hebb-fig4.json").read_text())
    assert drift(fig4) == {}
    flipped = {**fig4, "command": fig4["command"] + " --set teacher_init=xavier_normal"}  # as a flipped default
    assert drift(flipped) == {"teacher_init": ("uniform_fanin", "xavier_normal")}
    older = {**fig4, "config": {k: v for k, v in fig4["config"].items() if k != "teacher_init"}}  # before the key
    monkeypatch.setitem(ADDED, "hebb-fig4", {"teacher_init": "xavier_normal"})  # ... and ran the other teacher
    assert drift(older) == {"teacher_init": ("xavier_normal", "uniform_fanin")}
    monkeypatch.setitem(ADDED, "hebb-fig4", {"teacher_init": "uniform_fanin"})
    assert drift(older) == {}
    new_key = {**fig4, "config": {k: v for k, v in fig4["config"].items() if k != "sigmas"}}
    assert set(drift(new_key)) == {"sigmas"}  # a setting the record lacks and ADDED does not explain
