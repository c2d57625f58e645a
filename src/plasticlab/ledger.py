"""The reproduction ledger: a small committed record per full-size run, and the per-paper verdict tables.

``record(run_dir)`` writes ``reproductions/<paper>/<experiment>.json`` from a finished run folder: the full
config, the exact command, package version and git commit, the machine, wall and CPU time, the measurements
the claims read (per-seed values with mean, SD and n) and every claim's verdict. ``ledger_rows()`` lists every
declared claim with its verdict *re-judged* from the committed measurements (so the table follows the claim
definitions); a claim whose experiment has no record is "not run", never "agrees". ``markdown()`` renders the
tables that README and docs show (a test keeps them equal).
"""

from __future__ import annotations

import json
import platform
import re
from pathlib import Path
from typing import Any

import numpy as np

from .claims import VERDICTS, all_claims
from .experiments.base import ConfigError, write_json

__all__ = ["default_root", "record", "full_size_estimate", "parse_full", "load_records", "ledger_rows", "summary_rows",
           "run_rows", "markdown", "NOT_RUN"]

NOT_RUN = "not run"
_STATUSES = (*VERDICTS, NOT_RUN)


def default_root() -> Path:
    """``./reproductions`` if it exists, else the one beside the package's source tree (an editable install)."""
    here = Path("reproductions")
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[2] / "reproductions"


def _summary(values: Any) -> dict:
    v = np.asarray([np.nan if x is None else x for x in np.atleast_1d(values)], dtype=float)
    fin = v[np.isfinite(v)]
    return {"values": [None if not np.isfinite(x) else float(x) for x in v], "n": int(fin.size),
            "mean": float(fin.mean()) if fin.size else None,
            "sd": float(fin.std(ddof=1)) if fin.size > 1 else None}


def record(run_dir: str | Path, root: str | Path | None = None, *, size: str | None = None,
           full: dict[str, float] | None = None, part: str | None = None) -> Path:
    """Write the ledger record of the finished run in ``run_dir``; return its path.

    ``size`` describes the run against the paper's ("paper", or "reduced: 5 of 20 seeds ..."); default: the
    experiment's own ``results["size"]``, else "paper". ``full`` ({setting: the paper's value}, e.g. {"epochs":
    1e5}) for a reduced run: the record keeps the compute the full-size run would take (``full_size_estimate``).
    ``part``: the run measures some of the experiment's claims and others come from other runs (e.g. sam-width's
    tanh sweep beside a record of the ReLU one): the record is ``<experiment>@<part>.json`` beside the
    experiment's other records, and is refused if a claim it measures is measured by another of them. Quick runs
    and diverged or unfinished runs are refused.
    """
    from .claims import judge_all
    from .experiments import get_experiment

    run_dir = Path(run_dir)
    if part is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", part):
        raise ConfigError(f"--part {part!r}: not a part name; allowed: 1-40 letters, digits, '_', '.', '-'")
    try:
        cfg = json.loads((run_dir / "config.json").read_text())
        res = json.loads((run_dir / "results.json").read_text())
    except FileNotFoundError as err:
        raise ConfigError(f"{run_dir} is not a finished run folder ({Path(err.filename).name} is missing)") from None
    if res.get("run_status") != "finished":
        raise ConfigError(f"{run_dir}: the run has not finished ({res.get('run_status', 'unknown status')})")
    if cfg.get("quick"):
        raise ConfigError(f"{run_dir}: a --quick run is not recorded in the ledger (numeric claims need the paper's "
                          "size)")
    name = res["experiment"]
    exp = get_experiment(name)
    measurements = res.get("measurements") or {}
    env = cfg.get("environment", {})
    meta = res.get("meta", {})
    doc = {
        "experiment": name, "paper": exp.paper, "size": size or res.get("size") or "paper",
        "command": " ".join(["plasticlab", *env.get("argv", [])[1:]]) if env.get("argv") else None,
        "config": res.get("config"), "plasticlab": env.get("plasticlab"), "git_commit": env.get("git_commit"),
        "git_dirty": env.get("git_dirty"),
        "machine": {"platform": env.get("platform", platform.platform()), "device": env.get("device"),
                    "python": env.get("python"), "jax": env.get("jax"), "lock_sha256": env.get("lock_sha256")},
        "wall_seconds": meta.get("seconds"), "cpu_seconds": meta.get("cpu_seconds"),
        # a resumed run: what its units took when they were computed, summed over the invocations, and what the
        # units read from earlier invocations took (``run_seconds``)
        "units_wall_seconds": meta.get("units_wall_seconds"), "units_cpu_seconds": meta.get("units_cpu_seconds"),
        "reused_wall_seconds": meta.get("reused_wall_seconds"), "reused_cpu_seconds": meta.get("reused_cpu_seconds"),
        "measurements": {k: _summary(v) for k, v in measurements.items()},
        "stand_in": res.get("stand_in") or {},
        "claims": judge_all(name, measurements, stand_in=res.get("stand_in")),
    }
    estimate = _estimate(run_dir, name, res.get("config") or {}, meta)
    if estimate is not None:
        doc["estimate"] = estimate
    if full:
        doc["full_size_estimate"] = full_size_estimate(res.get("config") or {}, full, doc)
    if part is not None:
        doc["part"] = part
    where = Path(root) if root is not None else default_root()
    path = where / (exp.paper or "other") / f"{record_name(doc)}.json"
    measured = _measured(doc)
    for other in load_records(where).values():
        both = measured & _measured(other) if other["experiment"] == name and Path(other["_path"]) != path else set()
        if both:
            raise ConfigError(f"{run_dir}: claims {sorted(both)} are already measured by the record "
                              f"{other['_path']}; record this run as that part (or as the experiment's main record) "
                              "to replace it, or delete that file")
    write_json(path, doc)
    return path


def _row(claim: Any, rec: dict) -> dict:
    """``claim`` judged (with the current claim definitions) from a record's measurements."""
    return claim.row({k: v["values"] for k, v in rec.get("measurements", {}).items()}, stand_in=rec.get("stand_in"))


def _measured(rec: dict) -> set[str]:
    """The claims a record measures (judged with the current claims: not "not measured")."""
    from .claims import claims_for

    return {c.id for c in claims_for(rec["experiment"]) if _row(c, rec)["verdict"] != "not measured"}


def full_size_estimate(config: dict, full: dict[str, float], doc: dict) -> dict:
    """The compute of the full-size run: this run's wall and CPU time (its units' sums when it was resumed) times
    prod_k full[k] / config[k], i.e. assuming the cost is proportional to each setting named (epochs, seeds,
    episodes: what the loops scale with; per-run fixed costs such as compilation make it an upper bound)."""
    scale, settings = 1.0, {}
    for k, v in full.items():
        ran = config.get(k)
        if isinstance(ran, bool) or not isinstance(ran, (int, float)) or ran <= 0:
            allowed = sorted(n for n, x in config.items() if isinstance(x, (int, float)) and not isinstance(x, bool)
                             and x > 0)
            raise ConfigError(f"--full {k}={v:g}: not a positive numeric setting of this run; allowed: "
                              f"{', '.join(allowed)}")
        if not (isinstance(v, (int, float)) and v > 0 and np.isfinite(v)):
            raise ConfigError(f"--full {k}={v}: the paper's value must be a finite number > 0")
        settings[k] = {"ran": ran, "full": v}
        scale *= v / ran
    out: dict[str, Any] = {"settings": settings, "scale": scale,
                           "assumption": "cost proportional to each setting named"}
    for clock in ("wall", "cpu"):
        t = run_seconds(doc, clock)
        out[f"{clock}_seconds"] = None if t is None else t * scale
    return out


def parse_full(items: list[str] | None) -> dict[str, float]:
    """``["epochs=100000", "seeds=20"]`` -> {"epochs": 1e5, "seeds": 20.0}; a malformed item is refused in one
    line."""
    out = {}
    for item in items or ():
        k, sep, v = item.partition("=")
        try:
            out[k.strip()] = float(v)
        except ValueError:
            sep = ""
        if not sep or not k.strip():
            raise ConfigError(f"--full {item}: expected SETTING=NUMBER, e.g. --full epochs=100000")
    return out


def _estimate(run_dir: Path, name: str, config: dict, meta: dict) -> dict | None:
    """The run folder's cost plan (``plasticlab run --plan``) beside the actual times (``meta`` of results.json):
    the estimator's error."""
    try:
        plan = json.loads((run_dir / "plan.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if plan.get("experiment") != name or plan.get("config") != json.loads(json.dumps(config, default=str)):
        return None  # a plan of another experiment, size or setting
    out = {k: plan.get(k) for k in ("wall_seconds", "cpu_seconds", "peak_rss_mib", "length_key", "length",
                                    "calibrated_at", "machine")}
    for clock, actual in (("wall", meta.get("seconds")), ("cpu", meta.get("cpu_seconds"))):
        if plan.get(f"{clock}_seconds") and actual:
            out[f"actual_over_estimate_{clock}"] = actual / plan[f"{clock}_seconds"]
    return out


def load_records(root: str | Path | None = None) -> dict[str, dict]:
    """experiment name (``<experiment>@<part>`` for a part, see ``record``) -> its committed record."""
    where = Path(root) if root is not None else default_root()
    out = {}
    for p in sorted(where.glob("*/*.json")):
        doc = json.loads(p.read_text())
        out[record_name(doc)] = doc | {"_path": str(p)}
    return out


def record_name(rec: dict) -> str:
    """A record's name: its experiment, ``<experiment>@<part>`` for a part (its file name without .json)."""
    return rec["experiment"] + (f"@{rec['part']}" if rec.get("part") else "")


def ledger_rows(root: str | Path | None = None, paper: str | None = None) -> list[dict]:
    """Every declared claim (of ``paper``) with its verdict from the committed records."""
    records = load_records(root)
    rows = []
    for c in all_claims():
        if paper is not None and c.paper != paper:
            continue
        # the experiment's main record first, then its parts: the first that measures the claim judges it
        recs = [r for r in records.values() if r["experiment"] == c.experiment]
        recs.sort(key=lambda r: bool(r.get("part")))
        if not recs:
            rows.append({"paper": c.paper, "claim": c.id, "where": c.where, "experiment": c.experiment,
                         "paper value": c.paper_value(), "ours": "-", "verdict": NOT_RUN, "size": "-"})
            continue
        judged = [(rec, _row(c, rec)) for rec in recs]
        rec, v = next(((r, v) for r, v in judged if v["verdict"] != "not measured"), judged[0])
        rows.append({"paper": c.paper, "claim": c.id, "where": c.where,
                     "experiment": record_name(rec),
                     "paper value": c.paper_value(), "ours": v["ours"], "verdict": v["verdict"],
                     "size": rec["size"]})
    return rows


def summary_rows(rows: list[dict]) -> list[dict]:
    """Per paper: how many claims agree, differ, were not measured or not run."""
    papers = list(dict.fromkeys(r["paper"] for r in rows))
    out = []
    for p in papers:
        mine = [r for r in rows if r["paper"] == p]
        out.append({"paper": p, "claims": len(mine), **{s: sum(r["verdict"] == s for r in mine) for s in _STATUSES}})
    return out


def _md_table(rows: list[dict], cols: list[str]) -> str:
    esc = lambda v: str(v).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    lines += ["| " + " | ".join(esc(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def markdown(root: str | Path | None = None, *, summary_only: bool = False,
             papers: tuple[str, ...] | None = None) -> str:
    """The ledger as Markdown: the per-paper summary, then (unless ``summary_only``) one table per paper
    (``papers``: only these paper tags)."""
    rows = [r for r in ledger_rows(root) if papers is None or r["paper"] in papers]
    text = _md_table(summary_rows(rows), ["paper", "claims", *_STATUSES])
    if summary_only:
        return text
    records = load_records(root)
    for p in dict.fromkeys(r["paper"] for r in rows):
        text += f"\n### {p}\n\n" + _md_table([r for r in rows if r["paper"] == p],
                                              ["claim", "where", "paper value", "ours", "verdict", "size"])
        runs = run_rows(records, p)
        if runs:
            text += f"\n{p} runs (the time the units took, summed over resumed invocations):\n\n" + _md_table(
                runs, ["experiment", "size", "wall", "CPU", "full size (estimate)"])
    return text


def _duration(seconds: float | None) -> str:
    from .plan import hours

    return "-" if seconds is None else hours(seconds)


def run_seconds(rec: dict, clock: str) -> float | None:
    """What a recorded run cost on ``clock`` ("wall" or "cpu"): its last invocation's time plus what the units
    it read from earlier invocations took when they were computed. Records made before that sum was kept: the
    larger of the last invocation's time and the sum of its units' (a resumed run's units may exceed its last
    invocation; a run whose work lies mostly outside its units, as meta-fig6's meta-training, exceeds them)."""
    own, reused = rec.get(f"{clock}_seconds"), rec.get(f"reused_{clock}_seconds")
    if own is not None and reused is not None:
        return own + reused
    known = [t for t in (own, rec.get(f"units_{clock}_seconds")) if t is not None]
    return max(known) if known else None


def run_rows(records: dict[str, dict], paper: str) -> list[dict]:
    """One row per committed record of ``paper``: its size, wall and CPU time, and the full-size estimate."""
    rows = []
    for name, rec in sorted(records.items()):
        if rec.get("paper") != paper:
            continue
        est = rec.get("full_size_estimate")
        full = "-" if not est else (", ".join(f"{k} {v['ran']:g} -> {v['full']:g}" for k, v in est["settings"].items())
                                    + f": about {_duration(est['cpu_seconds'])} CPU")
        rows.append({"experiment": name, "size": rec.get("size", "-"),
                     "wall": _duration(run_seconds(rec, "wall")), "CPU": _duration(run_seconds(rec, "cpu")),
                     "full size (estimate)": full})
    return rows
