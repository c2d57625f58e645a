"""Bad input is refused before any work: exit 2, one line naming the key and value, no traceback, no run folder."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from plasticlab.cli import app

runner = CliRunner()

# (extra CLI arguments, a text the one-line message must contain)
QS = ["run", "quickstart", "--quick"]
CASES: list[tuple[str, list[str], str]] = [
    ("negative width", [*QS, "--set", "hidden=-5"], "hidden="),
    ("negative width in list", [*QS, "--set", "hidden=[-5,10]"], "hidden="),
    ("zero batch", [*QS, "--set", "batch_size=0"], "batch_size=0"),
    ("zero seeds", [*QS, "--set", "seeds=0"], "seeds=0"),
    ("negative seeds", [*QS, "--set", "seeds=-2"], "seeds=-2"),
    ("fractional seeds", [*QS, "--set", "seeds=2.5"], "seeds='2.5'"),
    ("negative rate", [*QS, "--set", "lr=-1"], "lr=-1"),
    ("zero rate", [*QS, "--set", "lr=0"], "lr=0"),
    ("empty rule list", [*QS, "--set", "rules="], "rules="),
    ("empty brackets", [*QS, "--set", "rules=[]"], "rules="),
    ("unknown rule in list", [*QS, "--set", "rules=[bp,foo]"], "foo"),
    ("bad rule argument value", [*QS, "--set", "rules=[bp(lr=abc),fa]"], "position"),
    ("unclosed rule parenthesis", [*QS, "--set", "rules=bp(lr=0.05"], "position"),
    ("unknown rule argument", [*QS, "--set", "rules=[bp(foo=1)]"], "foo"),
    ("negative rate inside a rule", [*QS, "--set", "rules=[bp(lr=-1)]"], "lr=-1 must be > 0"),
    ("two feedback rules", [*QS, "--set", "rules=[bp+fa]"], "rules="),
    ("empty list entry", [*QS, "--set", "rules=[bp,,fa]"], "rules="),
    ("dangling plus", [*QS, "--set", "rules=bp+"], "position"),
    ("NaN rate", [*QS, "--set", "lr=nan"], "lr=nan"),
    ("infinite rate", [*QS, "--set", "lr=inf"], "lr=inf"),
    ("overflowing rate", [*QS, "--set", "oja_lr=1e400"], "oja_lr="),
    ("text rate", [*QS, "--set", "lr=abc"], "lr='abc'"),
    ("huge width", [*QS, "--set", "hidden=[100000000]"], "hidden="),
    ("huge seed count", [*QS, "--set", "seeds=1000000000"], "seeds="),
    ("huge sample count", [*QS, "--set", "epochs=1e12"], "epochs="),
    ("unknown data set", [*QS, "--set", "dataset=cifar11"], "dataset='cifar11'"),
    ("unicode data set", [*QS, "--set", "dataset=mn\u00efst"], "dataset="),
    ("unicode activation", [*QS, "--set", "activation=t\u00e4nh"], "activation="),
    ("control character", [*QS, "--set", "activation=tanh\x07"], "activation="),
    ("text in int list", [*QS, "--set", "hidden=[10,abc]"], "hidden="),
    ("float in int list", [*QS, "--set", "hidden=[10.5]"], "hidden="),
    ("negative epochs", [*QS, "--set", "epochs=-1"], "epochs=-1"),
    ("zero evaluations", [*QS, "--set", "evals_per_epoch=0"], "evals_per_epoch=0"),
    ("fractional batch", [*QS, "--set", "batch_size=1.5"], "batch_size="),
    ("boolean batch", [*QS, "--set", "batch_size=true"], "batch_size="),
    ("unknown key", [*QS, "--set", "learning_rate=0.1"], "learning_rate"),
    ("no equals sign", [*QS, "--set", "lr"], "lr"),
    ("no key", [*QS, "--set", "=3"], "no key"),
    ("--seeds 0", [*QS, "--seeds", "0"], "seeds=0"),
    ("--seeds negative", [*QS, "--seeds", "-2"], "seeds=-2"),
    ("unknown experiment", ["run", "no-such-experiment"], "no-such-experiment"),
    ("no experiment", ["run"], "experiment"),
    ("SAM unknown method", ["run", "sam-table1", "--quick", "--set", "methods=[sgd,foo]"], "methods="),
    ("SAM unknown divergence mode", ["run", "sam-table1", "--quick", "--set", "on_divergence=maybe"], "on_divergence="),
    ("SAM negative decay", ["run", "sam-table1", "--quick", "--set", "sam_decay=-1e-4"], "sam_decay="),
    ("SAM unknown forward activation", ["run", "sam-width", "--quick", "--set", "activations=[relu,gelu]"],
     "activations="),
    ("SAM ReLU Jacobian D_d under tanh", ["run", "sam-width", "--quick", "--set", "activations=[tanh]", "--set",
                                          "down_activations=[relu_jacobian]", "--set", "ratios=[1]"],
     "down_activations="),
    ("SAM gap change out of range", ["run", "sam-gap", "--quick", "--set", "changes=[epochs=-1]"], "epochs=-1"),
    ("SAM gap change of an unknown key", ["run", "sam-gap", "--quick", "--set", "changes=[foo=1]"], "'foo'"),
    ("Hebbian unknown rule", ["run", "hebb-table1", "--quick", "--set", "rules=[sgd,xx]"], "rules="),
    ("Hebbian Fig. 3 with nothing to train", ["run", "hebb-fig3", "--quick", "--set", "activations=[]", "--set",
                                              "deep=false"], "activations="),
    ("curl fraction above 1", ["run", "curl-fig5", "--quick", "--set", "flip_fractions=[0.5,1.5]"], "flip_fractions="),
    ("Oja unknown rule", ["run", "oja-fig1", "--quick", "--set", "rules=[bp,foo]"], "rules="),
    ("meta zero classes", ["run", "meta-fig6", "--quick", "--set", "n_way=0"], "n_way=0"),
]


def _check_refused(res, needle: str, out) -> None:
    assert res.exit_code == 2, (res.exit_code, res.output, res.stderr)
    err = res.stderr.strip()
    assert err.startswith("error:"), res.stderr
    assert len(err.splitlines()) == 1, f"not one line: {err!r}"
    assert needle in err, f"{needle!r} not in {err!r}"
    assert "Traceback" not in res.stderr and "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    assert not out.exists(), "a run folder was created for a refused input"


@pytest.mark.parametrize("args,needle", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_setting_is_refused_before_work(tmp_path, args, needle):
    out = tmp_path / "run"
    res = runner.invoke(app, [*args, "--out", str(out), "--no-plots"])
    _check_refused(res, needle, out)


def _config_cases(tmp_path):
    good = {"experiment": "quickstart", "quick": True, "config": {"seeds": 2}}
    files = {
        "truncated": '{"experiment": "quickstart", "config": {"seeds": 2',
        "list": "[1, 2, 3]",
        "no-experiment": json.dumps({"config": {"seeds": 2}}),
        "bad-value": json.dumps({**good, "config": {"seeds": -3}}),
        "unknown-key": json.dumps({**good, "config": {"speed": 3}}),
        "config-not-object": json.dumps({**good, "config": [1]}),
    }
    paths = {}
    for name, text in files.items():
        p = tmp_path / name / "config.json"
        p.parent.mkdir()
        p.write_text(text)
        paths[name] = p
    return paths


@pytest.mark.parametrize("name,needle", [("truncated", "not valid JSON"), ("list", "JSON list"),
                                          ("no-experiment", "experiment"), ("bad-value", "seeds=-3"),
                                          ("unknown-key", "speed"), ("config-not-object", "config"),
                                          ("missing", "no such file")])
def test_bad_config_file_is_one_line_naming_the_file(tmp_path, name, needle):
    paths = _config_cases(tmp_path)
    path = paths.get(name, tmp_path / "nowhere" / "config.json")
    out = tmp_path / "out"
    res = runner.invoke(app, ["run", "--config", str(path), "--out", str(out), "--no-plots"])
    _check_refused(res, needle, out)
    assert str(path) in res.stderr


def test_out_that_is_a_file_or_under_a_file(tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    for out in (f, f / "sub"):
        res = runner.invoke(app, [*QS, "--out", str(out), "--no-plots"])
        assert res.exit_code == 2 and "--out" in res.stderr and "Traceback" not in res.stderr, res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
    assert f.read_text() == "x"


def test_other_experiment_in_folder_is_named(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"experiment": "oja-fig1", "config": {"seeds": 1}}))
    res = runner.invoke(app, [*QS, "--out", str(out), "--no-plots"])
    assert res.exit_code == 2 and "different experiment ('oja-fig1', not 'quickstart')" in res.stderr, res.stderr


def test_real_process_stderr_has_no_traceback(tmp_path):
    """The installed entry point, not the test runner: exit code 2, one stderr line, nothing created."""
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "plasticlab.cli", *QS, "--out", str(out), "--set",
                           "rules=[bp(lr=abc),fa]"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "rules=" in lines[0] and "position 7" in lines[0], proc.stderr
    assert not out.exists()
