"""HTML and Markdown reports of run folders, and ``reproduce`` (every experiment of one paper + its report).

``write_report([run_dir, ...], out)`` writes

- ``out/report.html``: one self-contained file (figures embedded as base64 ``data:`` URIs, inline CSS, no
  scripts or links to fetch), so it opens offline anywhere and can be mailed;
- ``out/report.md``: the same content with the figures linked by relative path.

Per run folder: its config, its summary table (``results["summary"]`` if present, else the rows), every PNG
and, when ``results.json`` holds a ``"paper"`` list (``[{"quantity": ..., "paper": value, "ours": value,
"tolerance": optional, ...}]``), a paper-vs-ours table with ``diff = ours - paper``; a difference with
``|diff| > tolerance`` is highlighted (default tolerance: ``rel_tol * |paper|``). A folder holding a
``sweep.json`` is shown as a sweep (cell status and the per-cell means of ``sweep.csv``); an ``error.txt``
(failed run or cell) is shown in full.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import re
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import quote

import pandas as pd

from .experiments.base import ConfigError, write_json

__all__ = ["write_report", "paper_table", "reproduce", "experiments_for", "ReproduceOutcome", "PAPERS"]

PAPERS = ("oja", "sam", "hebb", "curl", "meta")
MAX_ROWS = 200

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;
color:#222;padding:0 1em}
h1{border-bottom:2px solid #444}h2{border-bottom:1px solid #bbb;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f0f0f0}
td.txt,th.txt{text-align:left}
td.off{background:#ffd6d6;font-weight:bold}td.ok{background:#dff5df}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:.85em}
pre.err{background:#fff0f0;border-left:4px solid #c00}
figure{display:inline-block;margin:.5em;vertical-align:top}img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:.8em;color:#555;text-align:center}.note{color:#666;font-size:.85em}
"""


# ----------------------------------------------------------------------------- tables

def _num(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return float(v)
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def paper_table(entries: Sequence[dict], rel_tol: float = 0.1) -> list[dict]:
    """Paper-vs-ours rows: each entry plus ``diff``, the tolerance used and ``off``.

    Numbers: ``diff = ours - paper``, ``off`` when ``|diff| > tolerance`` (the entry's ``"tolerance"``, else
    ``rel_tol * |paper|``). Qualitative verdicts (both strings): ``diff`` is ``"agrees"`` or ``"differs"``
    (case and spacing ignored), ``off`` when they differ. A missing ``ours``, or a number on one side and a
    word on the other (e.g. ours ``"diverged"``), gives ``diff = "n/a"`` and ``off = True``: the report never
    leaves a cell empty.
    """
    out = []
    for e in entries:
        if not isinstance(e, dict) or "quantity" not in e:
            raise ValueError(f"paper entry {e!r} must be a dict with at least 'quantity', 'paper' and 'ours'")
        p, o = _num(e.get("paper")), _num(e.get("ours"))
        paper, ours = e.get("paper"), e.get("ours")
        tol: Any = _num(e.get("tolerance"))
        if p is not None and o is not None and math.isfinite(p) and math.isfinite(o):
            tol = rel_tol * abs(p) if tol is None else tol
            diff: Any = o - p
            off = abs(diff) > tol
        elif p is None and o is None and isinstance(paper, str) and isinstance(ours, str):
            same = " ".join(paper.lower().split()) == " ".join(ours.lower().split())
            diff, tol, off = ("agrees" if same else "differs"), "same words", not same
        else:
            diff, off = "n/a", True
            tol = tol if tol is not None else (rel_tol * abs(p) if p is not None and math.isfinite(p) else "-")
        row = {"quantity": e["quantity"], "paper": "-" if paper is None else paper,
               "ours": "not measured" if ours is None else ours, "diff": diff, "tolerance": tol}
        row.update({k: v for k, v in e.items() if k not in row})
        row["off"] = bool(off)
        out.append(row)
    return out


def _fmt(v: Any) -> str:
    """A table cell: never empty (None, e.g. a NaN or infinity saved as JSON null, and empty lists show '-')."""
    if v is None or (isinstance(v, (list, tuple, str)) and not v):
        return "-"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v)
    if isinstance(v, dict):
        return json.dumps(v)
    return str(v)


def _columns(rows: Sequence[dict]) -> list[str]:
    return list(dict.fromkeys(k for r in rows for k in r))


def _html_table(rows: Sequence[dict], columns: list[str] | None = None,
                cell_class: dict[tuple[int, str], str] | None = None) -> str:
    cols = columns or _columns(rows)
    cell_class = cell_class or {}
    numeric = {c: all(_num(r.get(c)) is not None or r.get(c) is None for r in rows) for c in cols}
    head = "".join(f'<th class="{"" if numeric[c] else "txt"}">{html.escape(str(c))}</th>' for c in cols)
    body = []
    for i, r in enumerate(rows[:MAX_ROWS]):
        tds = []
        for c in cols:
            cls = " ".join(x for x in (cell_class.get((i, c), ""), "" if numeric[c] else "txt") if x)
            attr = f' class="{cls}"' if cls else ""
            tds.append(f"<td{attr}>{html.escape(_fmt(r.get(c)))}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    more = (f'<p class="note">... {len(rows) - MAX_ROWS} more rows in results.csv</p>'
            if len(rows) > MAX_ROWS else "")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"


def _md_cell(v: Any) -> str:
    return _fmt(v).replace("|", "\\|").replace("\n", " ")


def _md_table(rows: Sequence[dict], columns: list[str] | None = None, bold: set[tuple[int, str]] | None = None) -> str:
    cols = columns or _columns(rows)
    bold = bold or set()
    lines = ["| " + " | ".join(_md_cell(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    for i, r in enumerate(rows[:MAX_ROWS]):
        cells = [(f"**{_md_cell(r.get(c))}** ⚠" if (i, c) in bold else _md_cell(r.get(c))) for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    if len(rows) > MAX_ROWS:
        lines.append(f"\n... {len(rows) - MAX_ROWS} more rows in results.csv")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- one run folder

@dataclass
class _Section:
    title: str
    anchor: str
    html: list[str] = field(default_factory=list)
    md: list[str] = field(default_factory=list)
    overview: dict = field(default_factory=dict)  # one row of the report's overview table

    def add(self, html_part: str, md_part: str) -> None:
        self.html.append(html_part)
        self.md.append(md_part)

    def table(self, caption: str, rows: Sequence[dict], columns: list[str] | None = None,
              flagged: set[tuple[int, str]] | None = None) -> None:
        flagged = flagged or set()
        self.add(f"<h3>{html.escape(caption)}</h3>" + _html_table(rows, columns, {k: "off" for k in flagged}),
                 f"### {caption}\n\n" + _md_table(rows, columns, flagged) + "\n")

    def pre(self, caption: str, text: str, err: bool = False) -> None:
        cls = ' class="err"' if err else ""
        self.add(f"<h3>{html.escape(caption)}</h3><pre{cls}>{html.escape(text)}</pre>",
                 f"### {caption}\n\n```\n{text.rstrip()}\n```\n")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _pngs(run_dir: Path) -> list[Path]:
    """Every figure of the folder (a sweep's cells included), not the unit cache."""
    return sorted(p for p in run_dir.rglob("*.png") if "units" not in p.relative_to(run_dir).parts[:-1])


def _run_section(run_dir: Path, out: Path, anchor: str, rel_tol: float, failure: str | None) -> _Section:
    results = _read_json(run_dir / "results.json")
    config = _read_json(run_dir / "config.json")
    sweep = _read_json(run_dir / "sweep.json")
    exp = (results or config or sweep or {}).get("experiment")
    sec = _Section(f"{run_dir.name}" + (f" ({exp})" if exp and exp != run_dir.name else ""), anchor)
    sec.add(f'<p class="note">folder: <code>{html.escape(str(run_dir))}</code></p>',
            f"folder: `{run_dir}`\n")
    if not run_dir.exists():
        sec.pre("missing", f"{run_dir} does not exist", err=True)
    if failure:
        sec.pre("failed", failure, err=True)
    err_txt = run_dir / "error.txt"
    if err_txt.exists() and not failure:
        sec.pre("error (error.txt)", err_txt.read_text(), err=True)
    if config is not None:
        rows = [{"setting": k, "value": v} for k, v in config.get("config", {}).items()]
        sec.table("config" + (" (--quick)" if config.get("quick") else ""), rows)
        env = config.get("environment", {})
        keys = ("plasticlab", "jax", "python", "device", "git_commit")
        env_line = ", ".join(f"{k} {env[k]}" for k in keys if env.get(k))
        if env_line:
            sec.add(f'<p class="note">{html.escape(env_line)}</p>', f"_{env_line}_\n")
    if sweep is not None:
        _sweep_part(sec, run_dir, sweep)
    diverged = results is not None and results.get("run_status") == "diverged"
    sec.overview.update({"run": sec.title, "status": "failed" if failure or err_txt.exists() else
                         "diverged" if diverged else
                         ("finished" if results is not None else ("sweep" if sweep is not None else "unfinished"))})
    if diverged:
        fu = results.get("failed_unit") or {}
        sec.pre("diverged", f"unit {fu.get('unit')!r}: {fu.get('message', '')}\nresume: {results.get('resume', '')}",
                err=True)
    if results is not None:
        meta = results.get("meta", {})
        if meta.get("seconds") is not None:
            sec.overview["seconds"] = round(float(meta["seconds"]), 1)
        if meta:
            line = (f"{meta.get('seconds', 0):.1f} s, {meta.get('units_computed', 0)} units computed, "
                    f"{meta.get('units_reused', 0)} reused")
            sec.add(f'<p class="note">{html.escape(line)}</p>', f"_{line}_\n")
        if results.get("claims"):
            _claims_part(sec, results["claims"])
        if results.get("paper"):
            _paper_part(sec, results["paper"], rel_tol)
        summary = results.get("summary") or results.get("rows") or []
        if summary:
            sec.table("summary" if results.get("summary") else "results", summary)
    elif sweep is None and run_dir.exists() and not failure and not err_txt.exists():
        sec.pre("no results", "results.json is missing: the run has not finished (rerun the same command to "
                              "resume it)", err=True)
    for png in _pngs(run_dir):
        rel = png.relative_to(run_dir).as_posix()
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        link = quote(Path(os.path.relpath(png.resolve(), out.resolve())).as_posix(), safe="/=,+-._~")
        sec.add(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(rel)}">'
                f"<figcaption>{html.escape(rel)}</figcaption></figure>",
                f"![{rel}]({link})\n")
    return sec


def _claims_part(sec: _Section, claims: list[dict]) -> None:
    """The paper's claims judged on this run (``results["claims"]``, rows of ``plasticlab.claims``)."""
    counts = {s: sum(r.get("verdict") == s for r in claims) for s in ("agrees", "differs", "not measured",
                                                                       "not comparable")}
    cols = ["claim", "where", "statement", "paper", "ours", "verdict", "detail"]
    flagged = {(i, "verdict") for i, r in enumerate(claims) if r.get("verdict") == "differs"}
    sec.overview.update({"claims": len(claims), "agree": counts["agrees"], "differ": counts["differs"]})
    sec.table("paper claims (" + ", ".join(f"{n} {k}" for k, n in counts.items() if n) + ")", claims, cols, flagged)


def _paper_part(sec: _Section, paper: Any, rel_tol: float) -> None:
    """A paper-vs-ours table for the convention ``[{"quantity", "paper", "ours", ...}]``; other forms of the
    "paper" extra (a sentence, a dict, other lists) are shown as they are, as the paper's reference."""
    if isinstance(paper, list) and paper and all(isinstance(e, dict) and "quantity" in e for e in paper):
        rows = paper_table(paper, rel_tol)
        cols = [c for c in _columns(rows) if c != "off"]
        flagged = {(i, c) for i, r in enumerate(rows) if r["off"] for c in ("ours", "diff")}
        n_off = sum(r["off"] for r in rows)
        sec.overview.update({"paper rows": len(rows), "within tolerance": len(rows) - n_off, "flagged": n_off})
        sec.table(f"paper vs ours ({n_off} of {len(rows)} outside tolerance)", rows, cols, flagged)
    elif isinstance(paper, str):
        sec.add(f"<h3>paper</h3><p>{html.escape(paper)}</p>", f"### paper\n\n{paper}\n")
    elif isinstance(paper, dict):
        sec.table("paper (reference)", [{"key": k, "paper": v} for k, v in paper.items()])
    elif isinstance(paper, list) and all(isinstance(e, dict) for e in paper):
        sec.table("paper (reference)", paper)
    else:
        sec.pre("paper (reference)", json.dumps(paper, indent=1))


def _sweep_part(sec: _Section, run_dir: Path, sweep: dict) -> None:
    cells = sweep.get("cells", [])
    shared = {"quick": sweep.get("quick"), "seeds": sweep.get("seeds"), **(sweep.get("base_overrides") or {})}
    line = "shared settings: " + ", ".join(f"{k}={_fmt(v)}" for k, v in shared.items() if v not in (None, False))
    sec.add(f'<p class="note">{html.escape(line)}</p>', f"_{line}_\n")
    rows = [{"cell": c.get("id"), "status": c.get("status"), "seconds": c.get("seconds"),
             "error": c.get("error", "")} for c in cells]
    sec.table(f"sweep of {sweep.get('experiment')}: {len(cells)} cells", rows)
    for c in cells:
        if c.get("status") == "failed":
            err = run_dir / c.get("dir", "") / "error.txt"
            if err.exists():
                sec.pre(f"cell {c.get('id')} failed", err.read_text(), err=True)
    csv = run_dir / "sweep.csv"
    if csv.exists() and csv.stat().st_size > 1:
        from .sweep import summarize_sweep

        try:
            df = pd.read_csv(csv)
        except pd.errors.EmptyDataError:
            return
        keys = [k for c in cells for k in c.get("overrides", {})]
        keys = [k for k in dict.fromkeys(keys) if k in df.columns]
        summ = summarize_sweep(df, keys)
        sec.table("mean per cell (sweep.csv)", json.loads(summ.to_json(orient="records")))


# ----------------------------------------------------------------------------- the report

def _slug(text: str, used: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "run"
    slug, i = base, 2
    while slug in used:
        slug, i = f"{base}-{i}", i + 1
    used.add(slug)
    return slug


def write_report(run_dirs: Sequence[str | Path], out: str | Path, *, title: str = "plasticlab report",
                 failures: dict[str, str] | None = None, rel_tol: float = 0.1) -> Path:
    """Write ``out/report.html`` (self-contained) and ``out/report.md`` for the run folders; return the HTML path.

    ``failures`` maps a run folder (as given) to an error message shown in its section.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    failures = {str(k): v for k, v in (failures or {}).items()}
    used: set[str] = set()
    sections = [_run_section(Path(d), out, _slug(Path(d).name, used), rel_tol, failures.get(str(d)))
                for d in run_dirs]
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    toc_html = "".join(f'<li><a href="#{s.anchor}">{html.escape(s.title)}</a></li>' for s in sections)
    overview = [{"run": s.overview.get("run", s.title), "status": s.overview.get("status", "-"),
                 "seconds": s.overview.get("seconds", "-"), "claims": s.overview.get("claims", 0),
                 "claims agree": s.overview.get("agree", "-"), "claims differ": s.overview.get("differ", "-"),
                 "paper rows": s.overview.get("paper rows", 0),
                 "within tolerance": s.overview.get("within tolerance", "-"),
                 "flagged": s.overview.get("flagged", "-")} for s in sections]
    ov = _Section("overview", "overview")
    ov.table("overview: every run, its paper claims (agree / differ) and its remaining paper-vs-ours rows",
             overview,
             flagged={(i, "flagged") for i, r in enumerate(overview) if r["flagged"] not in ("-", 0)}
             | {(i, "claims differ") for i, r in enumerate(overview) if r["claims differ"] not in ("-", 0)}
             | {(i, "status") for i, r in enumerate(overview) if r["status"] in ("failed", "diverged")})
    body = "".join(f'<section id="{s.anchor}"><h2>{html.escape(s.title)}</h2>{"".join(s.html)}</section>'
                   for s in sections)
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
            f'<p class="note">{len(sections)} run(s), written {stamp}. Paper-vs-ours: highlighted when '
            f"|ours - paper| exceeds the entry's tolerance (default {rel_tol:g} x |paper|).</p>"
            f"{''.join(ov.html)}<ul>{toc_html}</ul>{body}</body></html>\n")
    md = [f"# {title}\n", f"{len(sections)} run(s), written {stamp}. Paper-vs-ours: **bold ⚠** when "
          f"|ours - paper| exceeds the entry's tolerance (default {rel_tol:g} x |paper|).\n"]
    md += ov.md
    md += [f"- [{s.title}](#{s.anchor})" for s in sections]
    for s in sections:
        md += [f'\n<a id="{s.anchor}"></a>\n\n## {s.title}\n', *s.md]
    (out / "report.md").write_text("\n".join(md) + "\n")
    path = out / "report.html"
    path.write_text(page)
    return path


# ----------------------------------------------------------------------------- reproduce a paper

def experiments_for(paper: str) -> list:
    """The registered experiments of a paper tag, sorted by name.

    An experiment belongs to ``paper`` when its ``paper`` attribute (oja, sam, hebb, curl, meta) equals it.
    """
    from .experiments import discover

    registry = discover()
    key = paper.strip().lower()

    def belongs(e) -> bool:
        tag = (e.paper or "").lower()
        return bool(key) and tag == key

    exps = sorted((e for e in registry.values() if belongs(e)), key=lambda e: e.name)
    if not exps:
        known = sorted({e.paper for e in registry.values() if e.paper} | set(PAPERS))
        raise ConfigError(f"no experiment is registered for paper {paper!r}; choose one of: {', '.join(known)} "
                          "(`plasticlab list` shows each experiment's paper)")
    return exps


@dataclass
class ReproduceOutcome:
    report: Path
    finished: list[str]
    failed: dict[str, str]


def shared_overrides(exps: list, overrides: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Per experiment, the ``overrides`` its settings have (e.g. ``dataset=mnist`` for the experiments with a
    ``dataset``); a key that no experiment of the paper has is refused before any work."""
    import dataclasses

    from .experiments.base import ConfigError

    overrides = dict(overrides or {})
    fields = {e.name: {f.name for f in dataclasses.fields(e.config)} for e in exps}
    unknown = [k for k in overrides if not any(k in f for f in fields.values())]
    if unknown:
        known = sorted(set().union(*fields.values()))
        raise ConfigError(f"--set {unknown[0]}: no experiment of this paper has that setting; allowed: "
                          f"{', '.join(known)}")
    return {e.name: {k: v for k, v in overrides.items() if k in fields[e.name]} for e in exps}


def reproduce(paper: str, out: str | Path, quick: bool = False, data_dir: str | Path | None = None, *,
              console: Any = None, overrides: dict[str, Any] | None = None) -> ReproduceOutcome:
    """Run every registered experiment with ``paper == paper`` into ``out/<name>/``, then write the report.

    ``overrides`` (``--set``) apply to the experiments that have those settings (``shared_overrides``).
    A failing experiment (e.g. a data set that is not available) does not stop the others: its traceback goes
    to ``out/<name>/error.txt`` and into the report. Rerunning resumes every experiment from its unit cache.
    """
    from .experiments.base import release_compiled_code, run_experiment

    exps = experiments_for(paper)
    per = shared_overrides(exps, overrides)
    out = Path(out)
    failed: dict[str, str] = {}
    finished: list[str] = []
    dirs = []
    for i, exp in enumerate(exps, 1):
        run_dir = out / exp.name
        dirs.append(run_dir)
        if console is not None:
            console.print(f"[{i}/{len(exps)}] {exp.name}: {exp.description}")
        t0 = time.time()
        try:
            run_experiment(exp.name, run_dir, quick=quick, data_dir=data_dir, console=console, progress=False,
                           overrides=per[exp.name])
        except Exception as err:  # noqa: BLE001 - recorded, the next experiment still runs
            tb = traceback.format_exc()
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "error.txt").write_text(tb)
            failed[exp.name] = f"{type(err).__name__}: {err}"
            if console is not None:
                console.print(f"  [red]failed[/red] after {time.time() - t0:.1f} s: {type(err).__name__}: {err}")
        else:
            (run_dir / "error.txt").unlink(missing_ok=True)
            finished.append(exp.name)
            if console is not None:
                console.print(f"  done in {time.time() - t0:.1f} s")
        finally:
            release_compiled_code()
    write_json(out / "reproduce.json", {"paper": paper, "quick": quick, "finished": finished, "failed": failed})
    report = write_report(dirs, out, title=f"plasticlab: reproducing paper '{paper}'" + (" (--quick)" if quick else ""))
    return ReproduceOutcome(report, finished, failed)
