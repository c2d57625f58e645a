"""Reports: self-contained HTML (images as data URIs, checked in headless Chromium when present), Markdown,
the paper-vs-ours table, reproduce and the CLI."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from typer.testing import CliRunner

from plasticlab.data import DataError
from plasticlab.experiments.base import ConfigError, Experiment, RunContext, register, run_experiment
from plasticlab.report import experiments_for, paper_table, reproduce, write_report
from plasticlab.sweep import run_sweep

PAPER = "reporttest-paper-51c2"
GOOD, BAD = "reporttest-good-51c2", "reporttest-bad-51c2"


@dataclass
class Cfg:
    seeds: int = 2
    acc: float = 0.91


def good_run(cfg: Cfg, ctx: RunContext) -> dict:
    rows = [{"rule": "bp", "seed": s, "test_accuracy": cfg.acc + 0.01 * s} for s in range(cfg.seeds)]
    return {"rows": rows, "summary": [{"rule": "bp", "n": cfg.seeds, "mean": cfg.acc}],
            "paper": [{"quantity": "accuracy", "paper": 0.9, "ours": cfg.acc},
                      {"quantity": "error <b>%</b>", "paper": 2.0, "ours": 5.0, "tolerance": 0.5}]}


def good_plot(results: dict, out: Path) -> None:
    import matplotlib.pyplot as plt

    for i, name in enumerate(("curve.png", "bars.png")):
        fig, ax = plt.subplots(figsize=(2 + i, 1.5))
        ax.plot([0, 1, 2], [0, i, 1])
        fig.savefig(out / name, dpi=40)
        plt.close(fig)
    (out / "sub").mkdir(exist_ok=True)
    shutil.copy(out / "curve.png", out / "sub" / "again.png")


def bad_run(cfg: Cfg, ctx: RunContext) -> dict:
    raise DataError("data set 'cifar10' is not available offline: pass --data-dir")


register(Experiment(GOOD, "report test: finishes", Cfg, good_run, good_plot, paper=PAPER))
register(Experiment(BAD, "report test: fails", Cfg, bad_run, None, paper=PAPER))


class _Grab(HTMLParser):
    """Collect <img src>, and every table as a list of rows of (text, class)."""

    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[str] = []
        self.tables: list[list[list[tuple[str, str]]]] = []
        self._cell: list | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ["", a.get("class") or ""]

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[0] += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(tuple(self._cell))
            self._cell = None


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    run_experiment(GOOD, base / "good", progress=False)
    run_sweep("sweeptest-report-tiny", {"x": [1, 2]}, base / "sweep", executor="serial")
    return base


@dataclass
class TinyCfg:
    x: int = 1
    seeds: int = 1


register(Experiment("sweeptest-report-tiny", "tiny sweepable", TinyCfg,
                    lambda cfg, ctx: {"rows": [{"seed": 0, "y": 3.0 * cfg.x}]}))


def _paper_rows(html_text: str) -> list[dict]:
    grab = _Grab()
    grab.feed(html_text)
    for t in grab.tables:
        head = [c[0] for c in t[0]]
        if head[:4] == ["quantity", "paper", "ours", "diff"]:
            return [{h: c for h, c in zip(head, row)} for row in t[1:]]
    raise AssertionError("no paper-vs-ours table in the report")


def test_paper_table_diff_and_tolerance():
    rows = paper_table([{"quantity": "a", "paper": 10.0, "ours": 10.5},          # default tol 1.0
                        {"quantity": "b", "paper": 10.0, "ours": 12.0},
                        {"quantity": "c", "paper": 1.0, "ours": 1.2, "tolerance": 0.1},
                        {"quantity": "d", "paper": 3.0, "ours": None}], rel_tol=0.1)
    assert [r["diff"] for r in rows[:3]] == pytest.approx([0.5, 2.0, 0.2])
    assert [r["off"] for r in rows] == [False, True, True, True]
    assert rows[3]["diff"] == "n/a" and rows[3]["ours"] == "not measured"
    qual = paper_table([{"quantity": "e", "paper": "W+Vbar > W", "ours": "w+vbar  >  W"},
                        {"quantity": "f", "paper": "yes", "ours": "no"},
                        {"quantity": "g", "paper": 98.85, "ours": "diverged"}])
    assert [r["diff"] for r in qual] == ["agrees", "differs", "n/a"]
    assert [r["off"] for r in qual] == [False, True, True]
    assert all(v not in (None, "") for r in rows + qual for v in r.values())
    with pytest.raises(ValueError, match="quantity"):
        paper_table([{"paper": 1.0}])


def test_html_report_self_contained(runs, tmp_path):
    out = tmp_path / "rep"
    path = write_report([runs / "good", runs / "sweep"], out)
    text = path.read_text()
    pngs = sorted((runs / "good").rglob("*.png"))
    assert len(pngs) == 3
    grab = _Grab()
    grab.feed(text)
    assert all(src.startswith("data:image/png;base64,") for src in grab.imgs)
    embedded = sorted(base64.b64decode(src.split(",", 1)[1]) for src in grab.imgs)
    assert embedded == sorted(p.read_bytes() for p in pngs)
    assert not re.search(r'(src|href)="(?!data:|#)', text)  # nothing to fetch

    rows = _paper_rows(text)
    assert [r["quantity"][0] for r in rows] == ["accuracy", "error <b>%</b>"]  # escaped, shown literally
    assert float(rows[0]["diff"][0]) == pytest.approx(0.91 - 0.9)
    assert float(rows[1]["diff"][0]) == pytest.approx(3.0)
    assert "off" not in rows[0]["diff"][1] and "off" in rows[1]["diff"][1]
    assert "<b>%</b>" not in text

    assert "mean per cell" in text and "sweeptest-report-tiny" in text
    cfg_rows = [t for t in grab.tables if t[0][0][0] == "setting"][0]
    assert ["acc", "0.91"] in [[c[0] for c in row] for row in cfg_rows]

    md = (out / "report.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(links) == 3 and all((out / unquote(link)).resolve().exists() for link in links)
    assert "| accuracy |" in md and "**3** ⚠" in md


def test_reproduce_continues_past_failure(tmp_path):
    res = reproduce(PAPER, tmp_path / "rep", quick=True)
    assert res.finished == [GOOD] and list(res.failed) == [BAD]
    assert "not available offline" in res.failed[BAD]
    assert "DataError" in (tmp_path / "rep" / BAD / "error.txt").read_text()
    text = res.report.read_text()
    assert "not available offline" in text and text.count("data:image/png;base64,") == 3
    grab = _Grab()
    grab.feed(text)
    (ov,) = [t for t in grab.tables if [c[0] for c in t[0]][:2] == ["run", "status"]]
    head = [c[0] for c in ov[0]]
    cells = {row[0][0]: {h: c[0] for h, c in zip(head, row)} for row in ov[1:]}
    assert cells[GOOD]["status"] == "finished" and cells[BAD]["status"] == "failed"
    assert (cells[GOOD]["paper rows"], cells[GOOD]["within tolerance"], cells[GOOD]["flagged"]) == ("2", "1", "1")
    assert json.loads((tmp_path / "rep" / "reproduce.json").read_text())["failed"].keys() == {BAD}
    with pytest.raises(ConfigError, match="no experiment is registered for paper 'nopaper'"):
        reproduce("nopaper", tmp_path / "x")




def test_experiments_for_paper_tags():
    assert [e.name for e in experiments_for(PAPER)] == [BAD, GOOD]
    with pytest.raises(ConfigError, match="no experiment"):
        experiments_for("reporttest")  # tags match exactly, not by prefix


def test_cli_report_and_reproduce(runs, tmp_path):
    from plasticlab.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["report", str(runs / "good"), str(runs / "sweep"), "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r" / "report.html").exists() and (tmp_path / "r" / "report.md").exists()
    res = runner.invoke(app, ["report", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "no such run folder" in res.output
    res = runner.invoke(app, ["reproduce", PAPER, "--quick", "--out", str(tmp_path / "p")])
    assert res.exit_code == 2 and BAD in res.output
    assert (tmp_path / "p" / "report.html").exists() and (tmp_path / "p" / GOOD / "results.json").exists()
    res = runner.invoke(app, ["reproduce", "nopaper"])
    assert res.exit_code == 2 and "no experiment is registered" in res.output


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="headless Chromium not installed")
def test_report_renders_in_headless_chromium(runs, tmp_path):
    path = write_report([runs / "good"], tmp_path / "rep")
    probe = ("<script>window.addEventListener('load', () => { document.title = 'IMAGES:' + JSON.stringify("
             "Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])); });</script>")
    page = tmp_path / "rep" / "probe.html"
    page.write_text(path.read_text().replace("</body>", probe + "</body>"))
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom",
           page.as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    m = re.search(r"<title>IMAGES:(.*?)</title>", dom)
    assert m, f"probe did not run; DOM head: {dom[:300]!r}"
    images = json.loads(m.group(1).replace("&quot;", '"'))
    assert len(images) == 3
    assert all(complete and w > 0 and h > 0 for complete, w, h in images), images


def test_other_paper_forms_and_unfinished_run(tmp_path):
    """A sentence or a dict under "paper" is shown as the reference; a folder without results.json says so."""
    run = tmp_path / "hand"
    run.mkdir()
    (run / "results.json").write_text(json.dumps({
        "experiment": "x", "config": {}, "rows": [{"v": 1.0}],
        "paper": {"mnist": {"sgd": [98.44, 0.09]}, "note": "BP+Oja <above> BP"}}))
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "results.json").write_text(json.dumps({"experiment": "y", "config": {}, "rows": [],
                                                             "paper": "BP stays near chance"}))
    (tmp_path / "empty").mkdir()
    text = write_report([run, tmp_path / "s", tmp_path / "empty"], tmp_path / "rep").read_text()
    assert "paper (reference)" in text and "98.44" in text and "BP+Oja &lt;above&gt; BP" in text
    assert "BP stays near chance" in text
    assert "results.json is missing" in text


def test_paper_entry_refuses_an_empty_ours():
    from plasticlab.experiments.base import paper_entry

    row = paper_entry("accuracy", 98.85, np.float32(97.5), tolerance=1.0, where="Table 1")
    assert row == {"quantity": "accuracy", "paper": 98.85, "ours": pytest.approx(97.5), "tolerance": 1.0,
                   "where": "Table 1"} and type(row["ours"]) is float
    for empty in (None, float("nan")):
        with pytest.raises(ValueError, match="'ours' is empty"):
            paper_entry("accuracy", 98.85, empty)


@pytest.mark.parametrize("name,over", [("quickstart", {"epochs": 1.0}), ("oja-fig1", {"n_train": 200, "seeds": 2}),
                                       ("sam-table1", {"epochs": 1.0, "hidden": (16, 16), "methods": ["sgd", "sam"]})])
def test_every_legend_of_the_main_plots_states_the_ci_level_and_n(tmp_path, monkeypatch, name, over):
    """Each legend entry of quickstart, oja-fig1 and sam-table1 says what its band is: "(mean, 98% CI, n=5)", and
    each rule's line has the rule's own colour (``plotting.rule_color``, the same in every plot)."""
    import re

    from matplotlib.colors import to_hex
    from matplotlib.figure import Figure

    from plasticlab.experiments import run_experiment
    from plasticlab.plotting import rule_color

    entries, colours, save = [], [], Figure.savefig

    def spy(fig, fname, *a, **k):
        for ax in fig.axes:
            if ax.get_legend():
                leg = ax.get_legend()
                entries.extend(t.get_text() for t in leg.get_texts())
                colours.extend((t.get_text().split(" (")[0], to_hex(h.get_color()))
                               for t, h in zip(leg.get_texts(), leg.legend_handles))
        return save(fig, fname, *a, **k)

    monkeypatch.setattr(Figure, "savefig", spy)
    run_experiment(name, tmp_path / name, quick=True, progress=False, plots=True, overrides=over)
    # the chance line (plotting.mark_chance) is a reference level, not a band over runs, and has no rule colour
    assert any(e.startswith("chance (1/") for e in entries), entries
    entries = [e for e in entries if not e.startswith("chance (")]
    colours = [(rule, c) for rule, c in colours if rule != "chance"]
    assert entries and all(re.search(r"\d+% CI, n=\d+|\(n=1\)", e) for e in entries), entries
    assert colours and all(c == to_hex(rule_color(rule)) for rule, c in colours), colours
