"""The ``plasticlab`` command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.markup import escape as esc
from rich.table import Table

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Biologically plausible learning rules: reproduce the papers, compare rules, analyse networks.\n\n"
         "Start with `plasticlab run quickstart`, then `plasticlab list` for every paper experiment.")
console = Console()
err_console = Console(stderr=True)


@app.callback()
def _startup() -> None:
    """Before every command: keep compiled programs on disk (``plasticlab.compile_cache``)."""
    from .compile_cache import enable

    enable()


@app.command("list")
def list_experiments() -> None:
    """List every experiment with a one-line description (and the paper it reproduces)."""
    from .experiments import discover

    table = Table("experiment", "paper", "description", title="plasticlab experiments")
    for name, exp in sorted(discover().items()):
        table.add_row(name, exp.paper or "-", exp.description)
    console.print(table)


@app.command("rules")
def list_rules() -> None:
    """List every learning rule with its full equation and its parameters (defaults and meaning).

    Combine rules with '+' and set parameters in brackets, e.g. --set 'rules=[bp(lr=0.01)+oja(lr=1e-3)]'.
    """
    from .rules.catalog import format_catalog

    width = console.width if console.is_terminal else 100
    console.print(format_catalog(width=max(60, width)), markup=False, highlight=False, soft_wrap=True)


@app.command("datasets")
def list_datasets() -> None:
    """List the data sets the loaders know."""
    from .data import available_datasets

    table = Table("data set", "description")
    for name, doc in available_datasets().items():
        table.add_row(name, doc)
    console.print(table)


@app.command("show")
def show(experiment: str = typer.Argument(..., help="experiment name (see `plasticlab list`)")) -> None:
    """Show an experiment's settings: type, default, --quick value, what is allowed, and what each one means.

    Examples:

      plasticlab show quickstart

      plasticlab show sam-table1
    """
    import dataclasses
    import typing

    from .experiments import get_experiment
    from .settings import constraint_of, describe, type_name

    try:
        exp = get_experiment(experiment)
    except ValueError as err:
        _error(err)
    hints = typing.get_type_hints(exp.config)
    console.print(f"{exp.name}: {exp.description}", markup=False, highlight=False, style="bold")
    console.print("Set with --set KEY=VALUE (lists as [a,b]); (p) = presentation only: changing it reuses finished "
                  "units.\n", markup=False, highlight=False)
    for f in dataclasses.fields(exp.config):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        c = constraint_of(f, hints[f.name])
        quick = f"   --quick: {_plain_value(exp.quick[f.name])}" if f.name in exp.quick else ""
        console.print(f"{f.name} ({type_name(hints[f.name])}{'' if c.affects_result else ', p'}) = "
                      f"{_plain_value(default)}{quick}", markup=False, highlight=False, style="cyan", soft_wrap=True)
        if c.doc:
            console.print(f"    {c.doc}", markup=False, highlight=False)
        console.print(f"    allowed: {describe(f, hints[f.name])}", markup=False, highlight=False, style="dim")
    first = dataclasses.fields(exp.config)[0]
    console.print(f"\nexample: plasticlab run {exp.name} --quick --set {first.name}="
                  f"{_plain_value(getattr(exp.config(), first.name))}", markup=False, highlight=False)


def _plain_value(v) -> str:
    """A setting as it is written after --set: lists as [a,b], text unquoted."""
    if isinstance(v, (tuple, list)):
        return "[" + ",".join(_plain_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return json.dumps(v)
    return str(v)


def _error(err: Exception | str) -> None:
    """Print one error line (no traceback) and exit with status 2."""
    text = " ".join(str(err).split("\n"))
    err_console.print(f"[red]error:[/red] {escape(text)}", soft_wrap=True, highlight=False)
    raise typer.Exit(2)


def _read_config_file(path: Path) -> dict:
    """A run's config.json -> its content; every problem is a one-line ConfigError naming the file."""
    from .experiments.base import ConfigError

    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise ConfigError(f"--config {path}: no such file (give a run folder's config.json)") from None
    except IsADirectoryError:
        raise ConfigError(f"--config {path}: is a folder; give the config.json inside it "
                          f"(--config {Path(path) / 'config.json'})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"--config {path}: cannot be read ({err})") from None
    try:
        saved = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"--config {path}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") \
            from None
    if not isinstance(saved, dict):
        raise ConfigError(f"--config {path}: holds a JSON {type(saved).__name__}, expected an object with "
                          "\"experiment\" and \"config\" (as a run folder's config.json)")
    if not isinstance(saved.get("experiment"), str):
        raise ConfigError(f"--config {path}: has no \"experiment\" name (expected a run folder's config.json)")
    if not isinstance(saved.get("config", {}), dict):
        raise ConfigError(f"--config {path}: \"config\" must be an object of settings")
    return saved


def run(
    experiment: Optional[str] = typer.Argument(None, help=esc("experiment name (see `plasticlab list`)")),
    seeds: Optional[int] = typer.Option(None, "--seeds", help=esc("number of independent seeds (run together under vmap)")),
    out: Optional[Path] = typer.Option(None, "--out", help=esc("run folder [default: runs/EXPERIMENT, or "
                                       "runs/EXPERIMENT-quick with --quick; with --config: that file's folder]")),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help=esc("folder with data sets (else $PLASTICLAB_DATA or ~/.cache/plasticlab)")),
    quick: bool = typer.Option(False, "--quick", help=esc("a small version of the same experiment (< 1 min on 2 cores)")),
    set_: List[str] = typer.Option([], "--set", help=esc("override a setting: --set key=value (repeatable, the last of a key wins; lists as "
                                  "[a,b]; see `plasticlab show EXPERIMENT`)")),
    config: Optional[Path] = typer.Option(None, "--config", help=esc("repeat a run from its DIR/config.json")),
    no_plots: bool = typer.Option(False, "--no-plots", help=esc("skip writing PNG figures")),
    plan_only: bool = typer.Option(False, "--plan", help=esc("print the cost plan (estimated wall and CPU time, "
                                   "peak memory, work units) from two shortened calibration runs, write it to "
                                   "DIR/plan.json and stop")),
    budget: Optional[str] = typer.Option(None, "--budget", help=esc("with --plan: say whether the run fits in "
                                         "this wall time (90s, 30m, 2h)")),
) -> None:
    """Run an experiment: writes DIR/config.json, DIR/results.json (+ .csv) and DIR/*.png.

    Rerunning the same command resumes: finished units (seeds, grid cells) are read from DIR/units/. Every
    setting is checked before any work; a bad one exits with status 2 and one line naming it.

    Examples:

      plasticlab run quickstart                       # into runs/quickstart/

      plasticlab run oja-fig1 --quick --out runs/fig1 --set lr=0.02

      plasticlab run quickstart --quick --set 'rules=[bp,bp(lr=0.05)+oja(lr=1e-3)]'

      plasticlab run sam-table1 --data-dir ~/data --set datasets=mnist --seeds 10

      plasticlab run --config runs/fig1/config.json   # repeat or resume it there

      plasticlab run --config runs/s/config.json --set on_divergence=record

      plasticlab run oja-fig5 --plan --budget 10m      # what it will cost here, before running it
    """
    from .data import DataError
    from .experiments.base import ConfigError, parse_set, run_experiment
    from .training import DivergenceError

    cfg_overrides = None
    source = "--config"
    try:
        if config is not None:
            saved = _read_config_file(config)
            if experiment is not None and experiment != saved["experiment"]:
                raise ConfigError(f"--config {config} is a run of {saved['experiment']!r}, not {experiment!r}; "
                                  "leave the experiment name out to repeat it")
            experiment = saved["experiment"]
            quick = quick or bool(saved.get("quick", False))
            cfg_overrides = saved.get("config", {})
            out = out or Path(config).parent
            source = f"config file {config}"
        if experiment is None:
            raise ConfigError("name an experiment (see `plasticlab list`) or pass --config RUN_DIR/config.json")
        if plan_only:
            from . import plan as P
            from .experiments.base import default_out

            limit = P.parse_budget(budget)
            one = P.plan(experiment, quick=quick, overrides={**(cfg_overrides or {}), **parse_set(set_)},
                         data_dir=data_dir, seeds=seeds, report=lambda line: err_console.print(escape(line)))
            print_plans([one], limit)
            path = P.write(one, Path(out or default_out(experiment, quick)))
            console.print(f"plan written to {escape(str(path))}; `plasticlab ledger --record` keeps it beside the "
                          "run's actual time")
            return
        from .interrupt import install

        install()  # SIGTERM ends a run as Ctrl-C does; neither can be swallowed
        res = run_experiment(experiment, out, quick=quick, seeds=seeds, overrides=parse_set(set_), data_dir=data_dir,
                             config=cfg_overrides, console=console, plots=not no_plots, config_source=source,
                             progress=True)
    except (ConfigError, DataError, DivergenceError, ValueError) as err:
        _error(err)
    _print_summary(res)
    from .experiments.base import default_out

    where = out or default_out(experiment, quick)
    console.print(f"[green]done[/green] in {res['meta']['seconds']:.1f} s "
                  f"({res['meta']['units_reused']} finished units reused) -> {escape(str(where))}/results.json")


@app.command("ledger")
def ledger(
    paper: Optional[str] = typer.Option(None, "--paper", help=esc("only this paper's claims (oja, meta, sam, hebb, curl)")),
    markdown: bool = typer.Option(False, "--markdown", help=esc("print the ledger as Markdown tables (docs)")),
    summary: bool = typer.Option(False, "--summary", help=esc("with --markdown: only the per-paper counts (README)")),
    record: Optional[Path] = typer.Option(None, "--record", help=esc("first write the record of this finished "
                                          "full-size run folder into reproductions/<paper>/<experiment>.json")),
    size: Optional[str] = typer.Option(None, "--size", help=esc("with --record: how the run compares with the paper's "
                                       "size, e.g. 'reduced: 5 of 20 seeds' [default: the experiment's own, or paper]")),
    full: Optional[list[str]] = typer.Option(None, "--full", help=esc("with --record, for a reduced run: SETTING=the "
                                             "paper's value (repeatable); the record keeps the estimated compute of "
                                             "the full-size run")),
    part: Optional[str] = typer.Option(None, "--part", help=esc("with --record: the run measures part of the "
                                       "experiment's claims; its record is <experiment>@<part>.json beside the "
                                       "others (refused if another of them measures the same claims)")),
    root: Optional[Path] = typer.Option(None, "--root", help=esc("the ledger folder [default: ./reproductions]")),
) -> None:
    """Every paper claim with its verdict from the committed reproduction records.

    A claim whose experiment has no record shows "not run" (never "agrees"); records are re-judged with the
    current claim definitions.

    Examples:

      plasticlab ledger

      plasticlab ledger --paper sam

      plasticlab ledger --record runs/sam-table1 --size 'paper (MNIST only)'

      plasticlab ledger --record runs/curl-fig9 --size '10,000 of 1e5 epochs' --full epochs=100000

      plasticlab ledger --record runs/sam-width-tanh --part tanh     # a second record of one experiment

      plasticlab ledger --markdown > docs/ledger.md        # the README block: --markdown --summary
    """
    from . import ledger as L
    from .experiments.base import ConfigError

    try:
        if full and record is None:
            raise ConfigError(f"--full {full[0]}: only with --record RUN_FOLDER")
        if part is not None and record is None:
            raise ConfigError(f"--part {part}: only with --record RUN_FOLDER")
        if record is not None:
            path = L.record(record, root, size=size, full=L.parse_full(full), part=part)
            err_console.print(f"recorded {escape(str(path))}", highlight=False)
        if markdown:
            typer.echo(L.markdown(root, summary_only=summary), nl=False)
            return
        rows = L.ledger_rows(root, paper)
        records = L.load_records(root)
    except (ConfigError, ValueError) as err:
        _error(err)
    summary = Table("paper", "claims", *L._STATUSES, title="reproduction ledger")
    for r in L.summary_rows(rows):
        summary.add_row(*[str(r[k]) for k in ("paper", "claims", *L._STATUSES)])
    console.print(summary)
    colors = {"agrees": "green", "differs": "red", "not run": "dim"}
    for paper_tag in dict.fromkeys(r["paper"] for r in rows):  # one line per claim: greppable, never truncated
        console.print(f"\n[bold]{escape(paper_tag)}[/bold]")
        for r in (r for r in rows if r["paper"] == paper_tag):
            c = colors.get(r["verdict"], "yellow")
            console.print(f"  [{c}]{r['verdict']:<14}[/{c}] {escape(r['claim'])}  ({escape(r['where'])}; "
                          f"{escape(r['experiment'])})  paper: {escape(r['paper value'])}  ours: {escape(r['ours'])}"
                          + (f"  [{escape(r['size'])}]" if r["size"] != "-" else ""), soft_wrap=True, highlight=False)
        for run in L.run_rows(records, paper_tag):  # what each recorded run cost
            console.print(f"  [dim]run[/dim] {escape(run['experiment'])}: wall {run['wall']}, CPU {run['CPU']}"
                          + (f"; full size {escape(run['full size (estimate)'])}"
                             if run["full size (estimate)"] != "-" else ""), soft_wrap=True, highlight=False)


@app.command("status")
def status(folders: List[Path] = typer.Argument(..., help=esc("run folders (DIR of `plasticlab run --out DIR`)"))) \
        -> None:
    """Where run folders stand, read without touching them: running or stopped, finished units and their cost,
    the unit in progress and the step its training checkpoint reached, the cost plan, results.json.

    Examples:

      plasticlab status runs/hebb-sweeps

      plasticlab status runs/*/          # every run folder
    """
    from .experiments.base import ConfigError
    from .status import describe, run_status

    failed = False
    for folder in folders:  # a path that is no run folder (runs/*.log) gets its error line; the others still print
        try:
            lines = describe(run_status(folder))
        except ConfigError as err:
            err_console.print(f"[red]error:[/red] {escape(str(err))}", soft_wrap=True, highlight=False)
            failed = True
            continue
        for line in lines:
            console.print(line, markup=False, highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(2)


from .commands import _help as _doc_help  # noqa: E402 - the docstring as --help text

app.command("run", help=_doc_help(run))(run)


def compare(
    rules: Optional[str] = typer.Option(None, "--rules", help=esc("rules, comma-separated (bp,fa,dfa,kp,wm,sam,curl,"
                                        "bp+oja; arguments written in a rule are fixed, the rest searched)")),
    data: Optional[str] = typer.Option(None, "--data", help=esc("a data set name (`plasticlab datasets`) or an .npz "
                                       "file with x_train, y_train, x_test, y_test [default: digits]")),
    net: Optional[str] = typer.Option(None, "--net", help=esc("layer widths, e.g. 784-200-200-10; 'auto' ends take "
                                      "the data's sizes [default: auto-100-100-auto]")),
    activation: Optional[str] = typer.Option(None, "--activation", help=esc("hidden activation [default: relu]")),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help=esc("samples per update, 1: online "
                                             "[default: 1]")),
    epochs: Optional[float] = typer.Option(None, "--epochs", help=esc("passes over the training data [default: 8]")),
    seeds: Optional[int] = typer.Option(None, "--seeds", help=esc("seeds of the final training [default: 5]")),
    budget: Optional[int] = typer.Option(None, "--budget", help=esc("search trials per rule, the same for every "
                                         "rule [default: 8]")),
    out: Optional[Path] = typer.Option(None, "--out", help=esc("run folder [default: runs/compare]")),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help=esc("folder with data sets (else "
                                            "$PLASTICLAB_DATA or ~/.cache/plasticlab)")),
    set_: List[str] = typer.Option([], "--set", help=esc("any other setting of `plasticlab show compare`, e.g. "
                                  "--set search_seeds=2 (repeatable)")),
    no_plots: bool = typer.Option(False, "--no-plots", help=esc("skip writing PNG figures")),
) -> None:
    """Compare learning rules fairly: each rule's rates (and its own hyperparameters) searched with the same
    budget on a validation split of the training data, then the chosen setting trained over seeds and scored
    once on the test split.

    Writes DIR/leaderboard.csv (mean, SD, 95% t CI, paired t-test against the best rule), DIR/search.csv (every
    trial, the chosen one marked), DIR/learning_curves.png, DIR/leaderboard.png, DIR/search.png and results.json,
    like `plasticlab run compare --set ...` (the same run; rerunning resumes). See docs/compare.md.

    Examples:

      plasticlab compare --rules bp,fa,dfa,kp,wm,sam --data digits --seeds 5 --budget 8

      plasticlab compare --rules bp,fa,bp+oja --data mnist --data-dir ~/data/mnist --net 784-200-200-10 --batch-size 32 --epochs 2

      plasticlab compare --rules 'bp,kp,curl(alphas=(0.0,0.2,0.2))' --data my_arrays.npz --net auto-64-auto

      plasticlab run compare --set rules=[bp,fa] --set budget=4      # the same, as an experiment
    """
    from .data import DataError
    from .experiments.base import ConfigError, config_dict, default_out, parse_set, run_experiment
    from .experiments.compare import check_setup, prepare_flags
    from .training import DivergenceError

    try:
        cfg = prepare_flags({"rules": ("--rules", rules), "data": ("--data", data), "net": ("--net", net),
                             "activation": ("--activation", activation), "batch_size": ("--batch-size", batch_size),
                             "epochs": ("--epochs", epochs), "seeds": ("--seeds", seeds),
                             "budget": ("--budget", budget)}, parse_set(set_))
        check_setup(cfg, data_dir)  # data found and net fitting it, before the run folder is written
        res = run_experiment("compare", out, config=config_dict(cfg), config_source="plasticlab compare",
                             data_dir=data_dir, console=console, plots=not no_plots, progress=True)
    except (ConfigError, DataError, DivergenceError, ValueError) as err:
        _error(err)
    _print_summary(res)
    from .experiments.compare import chosen_lines

    console.print("chosen on the validation split (leaderboard.csv has every column; paired t-test against the best "
                  "rule, Holm-adjusted there):", highlight=False)
    for line in chosen_lines(res["leaderboard"]):
        console.print("  " + line, markup=False, highlight=False)
    where = out or default_out("compare", False)
    console.print(f"[green]done[/green] in {res['meta']['seconds']:.1f} s -> {escape(str(where))}/leaderboard.csv, "
                  "search.csv, learning_curves.png, leaderboard.png, search.png, results.json")


app.command("compare", help=_doc_help(compare))(compare)


def print_plans(plans: list, budget_seconds: float | None = None) -> None:
    """One table row per experiment plan: units, length calibrated, estimated wall / CPU time, memory, fit."""
    from .plan import hours

    table = Table("experiment", "units", "length (calibrated at)", "est. wall", "est. CPU-hours", "peak memory",
                  *(["fits"] if budget_seconds is not None else []),
                  title=f"cost plan on this machine ({plans[0].machine})" if plans else "cost plan")
    for p in plans:
        length = "-" if p.length_key is None else (f"{p.length_key}={p.length:g} ("
                                                    + ", ".join(f"{x:g}" for x in p.calibrated_at) + ")")
        fit = [] if budget_seconds is None else ["yes" if p.fits(budget_seconds) else "no"]
        table.add_row(p.experiment, "-" if p.units is None else str(p.units), length, hours(p.wall_seconds),
                      f"{p.cpu_seconds / 3600:.3g}", f"{p.peak_rss_mib:.0f} MiB", *fit)
    console.print(table)
    if plans:
        total = sum(p.wall_seconds for p in plans)
        console.print(f"total: {hours(total)} wall, {sum(p.cpu_seconds for p in plans) / 3600:.3g} CPU-hours"
                      + ("" if budget_seconds is None else f"; budget {hours(budget_seconds)}: "
                         + ("fits" if total <= budget_seconds else "does not fit"))
                      + f" (calibration took {sum(p.calibration_seconds for p in plans):.0f} s; cached: "
                      + f"{sum(p.cached for p in plans)} of {len(plans)})")


def _print_summary(res: dict) -> None:
    """The run's summary table (its ``summary`` rows, else its ``rows``): a METRIC_mean/_std/_ci_low/_ci_high
    summary (``analysis.stats.summarize``) shows the metric once, with the CI's level and kind in the title;
    units read back from an earlier invocation are listed as reused below it."""
    from .analysis.stats import SUMMARY_LEVEL

    rows = res.get("summary")
    if not (isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows)):
        rows = res["rows"]  # experiments without a list-of-rows summary show their rows
    reused = (res.get("meta") or {}).get("reused_units") or []
    if rows:
        cols = list(dict.fromkeys(k for r in rows for k in r))
        suffixes = ("_mean", "_std", "_ci_low", "_ci_high")
        metrics = {c[: -len("_mean")] for c in cols if c.endswith("_mean")}
        metrics = {m for m in metrics if all(m + x in cols for x in suffixes)}
        heads = [next((c[len(m) + 1:] for m in metrics if len(metrics) == 1 and c.startswith(m + "_")), c)
                 for c in cols]
        title = res["experiment"] + (f": {next(iter(metrics))} (mean, SD, {SUMMARY_LEVEL * 100:g}% bootstrap CI "
                                     "over seeds)" if len(metrics) == 1 else ": one row per "
                                     + ("summary entry" if rows is res.get("summary") else "result"))
        table = Table(*heads, title=title)
        for r in rows[:40]:
            table.add_row(*[f"{r.get(c):.4g}" if isinstance(r.get(c), float) else str(r.get(c, "")) for c in cols])
        console.print(table)
        if len(rows) > 40:
            console.print(f"... {len(rows) - 40} more rows in results.json")
    if reused:
        console.print(f"[yellow]reused[/yellow] {len(reused)} finished unit(s) of an earlier invocation (same "
                      f"settings, not recomputed): {escape(', '.join(reused[:12]))}"
                      + (f" and {len(reused) - 12} more" if len(reused) > 12 else ""))


try:  # sweep / report / reproduce commands live in their own module
    from .commands import register_cli as _register_more
except ImportError as _err:  # pragma: no cover - until that module exists
    if "commands" not in str(_err):
        raise
else:
    _register_more(app)


if __name__ == "__main__":  # pragma: no cover
    app()
