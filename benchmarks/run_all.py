"""Every benchmark, and one full-size experiment per paper, on this machine: one JSON and one Markdown table.

    python benchmarks/run_all.py [--out benchmarks/results] [--max-minutes 15] [--data-dir DIR] [--quick]

Each benchmark runs in its own process (``--json``); its figures are printed with their targets. Then, for each
paper, one experiment at its full (default) size is first planned (``plasticlab run EXP --plan``) and run when
the estimate is within ``--max-minutes`` (else it is listed as skipped with its estimate), timed, and its claim
verdicts counted. The results go to OUT/<device>.json and OUT/<device>.md (device: "cpu" or the accelerator's
name), e.g. docs/performance.md's tables. On a GPU install the CUDA build (``pip install -e ".[cuda]"``) and
run the same command.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = {
    "online_mlp": [],
    "curl_sim": ["--variants", "10", "--networks", "160", "--epochs", "60", "--numpy-networks", "2"],
    "sam_epoch": [],
    "meta_step": ["--repeats", "3"],
    "meta_sanger_step": [],
    "fit_calls": [],
    "concurrent_jobs": ["--repeats", "1"],
}
EXPERIMENTS = {"oja": ("oja-fig5", {}), "curl": ("curl-fig5", {}), "hebb": ("hebb-fig5", {}),
               "sam": ("sam-lr-search", {}), "meta": ("meta-fig6", {"dataset": "mnist"})}  # EMNIST is not offline


def run_benchmark(name: str, extra: list[str], data_dir: str | None, quick: bool) -> dict:
    args = list(extra)
    if quick:
        args += {"online_mlp": ["--samples", "1000", "--numpy-samples", "200"],
                 "curl_sim": ["--networks", "40", "--epochs", "10", "--numpy-epochs", "2"],
                 "sam_epoch": ["--repeats", "1"], "meta_step": ["--repeats", "1", "--steps", "20", "--seeds", "4"],
                 "meta_sanger_step": ["--repeats", "1", "--steps", "20"],
                 "fit_calls": ["--repeats", "1", "--scale", "0.1"], "concurrent_jobs": ["--steps", "40"]}.get(name, [])
    if name == "sam_epoch" and data_dir:
        args += ["--data-dir", data_dir]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "figures.json"
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, str(HERE / f"{name}.py"), *args, "--json", str(out)], cwd=HERE,
                             capture_output=True, text=True)
        print(res.stdout[res.stdout.find("figures:"):] if "figures:" in res.stdout else res.stdout[-2000:])
        if res.returncode != 0 or not out.exists():
            return {"benchmark": name, "error": res.stderr.strip().splitlines()[-1] if res.stderr.strip() else "failed",
                    "figures": []}
        doc = json.loads(out.read_text())
        doc["seconds"] = time.perf_counter() - t0
        return doc


def run_experiment(paper: str, name: str, overrides: dict, data_dir: str | None, max_minutes: float,
                   quick: bool) -> dict:
    from plasticlab import plan as P
    from plasticlab.experiments.base import ConfigError
    from plasticlab.plan import _as_setting

    size = "quick" if quick else "full (default settings" + "".join(f", {k}={v}" for k, v in overrides.items()) + ")"
    row = {"paper": paper, "experiment": name, "size": size}
    try:
        est = P.plan(name, quick=quick, data_dir=data_dir, overrides=overrides)
    except ConfigError as err:
        return row | {"status": f"not planned: {err}"}
    row |= {"estimated_wall_seconds": est.wall_seconds, "estimated_cpu_seconds": est.cpu_seconds}
    if est.wall_seconds > 60 * max_minutes:
        return row | {"status": f"skipped: estimated {P.hours(est.wall_seconds)} > --max-minutes {max_minutes:g}"}
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "plasticlab.cli", "run", name, "--out", tmp, "--no-plots"]
        cmd += ["--quick"] if quick else []
        cmd += ["--data-dir", data_dir] if data_dir else []
        for k, v in overrides.items():
            cmd += ["--set", f"{k}={_as_setting(v)}"]
        res = subprocess.run(cmd, capture_output=True, text=True, env={**__import__("os").environ, "COLUMNS": "200"})
        if res.returncode != 0:
            return row | {"status": "failed: " + (res.stderr.strip().splitlines() or ["?"])[-1]}
        doc = json.loads((Path(tmp) / "results.json").read_text())
    verdicts = [c.get("verdict") for c in doc.get("claims", [])]
    meta = doc["meta"]
    return row | {"status": "ran", "wall_seconds": meta["seconds"], "cpu_seconds": meta["cpu_seconds"],
                  "actual_over_estimate": meta["seconds"] / est.wall_seconds,
                  "claims": {v: verdicts.count(v) for v in dict.fromkeys(verdicts)}}


def markdown(doc: dict) -> str:
    lines = [f"Device: {doc['device']} (jax {doc['jax']}, {doc['machine']}); measured {doc['date']}.", "",
             "| benchmark | figure | value | target | met |", "| --- | --- | --- | --- | --- |"]
    for b in doc["benchmarks"]:
        if b.get("error"):
            lines.append(f"| {b['benchmark']} | error | {b['error']} | | |")
        for f in b["figures"]:
            target = "" if f["target"] is None else f"{f['target_kind']} {f['target']:g}{f['unit']}"
            met = "" if f["meets"] is None else ("yes" if f["meets"] else "**no**")
            lines.append(f"| {b['benchmark']} | {f['name']} | {f['value']:.4g}{f['unit']} | {target} | {met} |")
    lines += ["", "| paper | experiment | size | estimated wall | actual wall | CPU | claims |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in doc["experiments"]:
        est = f"{r['estimated_wall_seconds']:.0f} s" if "estimated_wall_seconds" in r else "-"
        if r.get("status") == "ran":
            claims = ", ".join(f"{n} {k}" for k, n in r["claims"].items()) or "-"
            lines.append(f"| {r['paper']} | {r['experiment']} | {r['size']} | {est} | {r['wall_seconds']:.0f} s | "
                         f"{r['cpu_seconds']:.0f} s | {claims} |")
        else:
            lines.append(f"| {r['paper']} | {r['experiment']} | {r['size']} | {est} | {r['status']} | | |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--data-dir", default=None, help="folder with MNIST (the SAM benchmark and experiments)")
    ap.add_argument("--max-minutes", type=float, default=15.0, help="skip experiments estimated to take longer")
    ap.add_argument("--quick", action="store_true", help="short benchmarks and --quick experiments (a smoke test)")
    ap.add_argument("--only", default=None, help="comma-separated benchmarks to run (default: all); 'none' for none")
    ap.add_argument("--papers", default=",".join(EXPERIMENTS), help="papers whose experiment runs ('' for none)")
    a = ap.parse_args()
    import jax

    dev = jax.devices()[0]
    doc = {"device": str(dev), "platform": dev.platform, "jax": jax.__version__,
           "machine": __import__("platform").platform(), "date": time.strftime("%Y-%m-%d"), "benchmarks": [],
           "experiments": []}
    names = list(BENCHMARKS) if a.only is None else [n for n in a.only.split(",") if n in BENCHMARKS]
    for name in names:
        print(f"== benchmark {name}", flush=True)
        doc["benchmarks"].append(run_benchmark(name, BENCHMARKS[name], a.data_dir, a.quick))
    for paper in [p for p in a.papers.split(",") if p]:
        name, overrides = EXPERIMENTS[paper]
        print(f"== {paper}: {name}", flush=True)
        row = run_experiment(paper, name, overrides, a.data_dir, a.max_minutes, a.quick)
        print(f"   {row.get('status')}", flush=True)
        doc["experiments"].append(row)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = "cpu" if dev.platform == "cpu" else str(getattr(dev, "device_kind", dev.platform)).replace(" ", "_")
    (out / f"{tag}.json").write_text(json.dumps(doc, indent=1))
    (out / f"{tag}.md").write_text(markdown(doc))
    print(f"wrote {out / (tag + '.json')} and {out / (tag + '.md')}")


if __name__ == "__main__":
    main()
