"""Progress output of ``fit``: a tqdm bar on a terminal, plain lines (no carriage returns) in a log."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap

from plasticlab import training

SCRIPT = textwrap.dedent("""
    import numpy as np
    import plasticlab as pl
    from plasticlab.rules import BP

    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 4)).astype("float32")
    y = rng.integers(0, 3, size=30)
    tr = pl.Trainer(pl.MLP((4, 5, 3), activation="tanh"), BP(lr=0.1))
    hist = pl.fit(tr, x, y, seeds=2, n_samples=30, batch_size=10, eval_every=10, progress=True)
    assert len(hist.samples) == 4, hist.samples  # 3 chunks + the initial evaluation
    print("done")
""")


def test_fit_progress_to_a_pipe_has_no_carriage_return():
    env = dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))
    proc = subprocess.run([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=env, timeout=300)
    out, err = proc.stdout.decode(), proc.stderr.decode()
    assert proc.returncode == 0, err
    assert "done" in out
    assert "\r" not in out and "\r" not in err
    assert "3/3 chunks (100%)" in err  # progress is still reported, as plain lines
    assert "1/3 chunks (33%)" in err


def test_a_single_evaluation_run_reports_progress_per_compiled_call(monkeypatch):
    """evals=1 with 3 calls of one step: the log shows 1/3, 2/3, 3/3, and only two evaluations are kept."""
    import numpy as np

    import plasticlab as pl
    from plasticlab.rules import BP

    buf = io.StringIO()  # not a TTY
    monkeypatch.setattr(sys, "stderr", buf)
    rng = np.random.default_rng(0)
    tr = pl.Trainer(pl.MLP((4, 5, 3), activation="tanh"), BP(lr=0.1))
    hist = pl.fit(tr, rng.normal(size=(30, 4)), rng.integers(0, 3, size=30), n_samples=30, batch_size=10, evals=1,
                  progress="one evaluation", call_steps=1)
    assert hist.samples == [0, 30]
    assert [line.split(",")[0] for line in buf.getvalue().splitlines()] == [
        f"one evaluation: {k}/3 chunks ({round(100 * k / 3)}%)" for k in (1, 2, 3)]


def test_line_progress_every_ten_percent(monkeypatch):
    buf = io.StringIO()  # not a TTY
    monkeypatch.setattr(sys, "stderr", buf)
    bar = training._progress(100, True, "rule")
    assert isinstance(bar, training._LineProgress)
    for _ in range(100):
        bar.update(1)
    bar.close()
    lines = buf.getvalue().splitlines()
    assert len(lines) == 10 and "\r" not in buf.getvalue()
    assert lines[0].startswith("rule: 10/100 chunks (10%)") and lines[-1].startswith("rule: 100/100 chunks (100%)")


def test_terminal_keeps_the_tqdm_bar(monkeypatch):
    class FakeTTY(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stderr", FakeTTY())
    bar = training._progress(5, "custom label", "ignored")
    try:
        assert not isinstance(bar, training._LineProgress)
        assert bar.desc == "custom label"
    finally:
        bar.close()
    assert training._progress(1, True, "x") is None and training._progress(5, False, "x") is None


def test_a_run_unit_labels_the_progress_of_the_training_inside_it(monkeypatch, tmp_path):
    """Experiments train with ``progress=None``: inside ``RunContext.unit`` that is the run's progress, labelled
    with the experiment and the unit (a log shows which unit is how far); with progress off, or outside a unit,
    nothing is printed."""
    import numpy as np

    import plasticlab as pl
    from plasticlab.experiments.base import RunContext
    from plasticlab.rules import BP

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 4)).astype("float32"), rng.integers(0, 3, size=30)
    tr = pl.Trainer(pl.MLP((4, 5, 3), activation="tanh"), BP(lr=0.1))

    def train():
        pl.fit(tr, x, y, seeds=1, n_samples=30, batch_size=10, eval_every=10, progress=None)
        return 1

    for progress, expected in ((True, "toy cell=1: bp x1 seeds: 3/3 chunks (100%)"), (False, None)):
        buf = io.StringIO()
        monkeypatch.setattr(sys, "stderr", buf)
        RunContext(tmp_path / str(progress), None, progress=progress, name="toy").unit("cell=1", train)
        lines = buf.getvalue().splitlines()
        assert (lines[-1].startswith(expected) and len(lines) == 3) if expected else lines == [], lines
    buf = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buf)
    train()
    assert buf.getvalue() == ""


def test_line_progress_heartbeat_and_early_stop():
    """A chunk longer than the heartbeat still gets a line (a log is never silent for long), with the note of
    ``set_postfix_str``; a run that a criterion ends before its cap says where it stopped when closed."""
    buf, now = io.StringIO(), [0.0]
    bar = training._LineProgress(200, "rule", buf, heartbeat=300.0, clock=lambda: now[0])
    now[0] = 100.0
    bar.update(1)  # 0.5% after 100 s: nothing yet
    assert buf.getvalue() == ""
    now[0] = 400.0
    bar.set_postfix_str("stationary: 3/40 runs")
    bar.update(1)  # 300 s after the start: a heartbeat line
    assert buf.getvalue().splitlines() == ["rule: 2/200 chunks (1%), 400.0 s; stationary: 3/40 runs"]
    now[0] = 500.0
    bar.update(1)  # 100 s after the last line: nothing
    bar.close()
    lines = buf.getvalue().splitlines()
    assert lines[-1] == "rule: stopped at 3/200 chunks (2%), 500.0 s; stationary: 3/40 runs" and len(lines) == 2


def test_fit_until_reports_how_many_runs_were_stationary(monkeypatch, digits):
    import plasticlab as pl
    from plasticlab.analysis.convergence import Stationarity
    from plasticlab.rules import BP

    d = digits.subset(n_train=200, n_test=100)
    tr = pl.Trainer(pl.MLP((64, 10), activation="tanh"), BP(lr=1e-6))  # hardly moves: stationary at once
    watch = Stationarity(window=2, loss_rtol=1e-3, min_samples=200).watch(10)
    assert watch.progress_note() == "stationary: not judged yet"
    buf = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buf)
    pl.fit(tr, d.x_train, d.y_train, seeds=2, n_samples=2000, batch_size=10, eval_every=50, x_eval=d.x_test,
           y_eval=d.y_test, progress="toy", until=watch)
    lines = buf.getvalue().splitlines()
    # 4 of a cap of 40 chunks (its 10% line, so no "stopped at" line), then the criterion held for both seeds
    assert len(lines) == 1 and lines[0].startswith("toy: 4/40 chunks (10%)"), lines
    assert lines[0].endswith("; stationary: 2/2 runs"), lines
