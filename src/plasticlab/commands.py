"""The ``plasticlab sweep``, ``plasticlab report`` and ``plasticlab reproduce`` commands."""

from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional

import inspect

import typer
from rich.console import Console
from rich.markup import escape as esc
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def _help(fn) -> str:
    """The docstring as --help text: paragraphs re-flowed, brackets kept literal for rich markup."""
    paragraphs = inspect.cleandoc(fn.__doc__ or "").split("\n\n")
    return esc("\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs))


def _fail(err: Exception | str) -> None:
    """Print the message verbatim (no rich markup, no line breaks added inside paths) and exit with 2."""
    console.print(f"[red]error:[/red] {esc(str(err))}", soft_wrap=True)
    raise typer.Exit(2)


def _print_frame(df, title: str, max_rows: int = 40) -> None:
    if df.empty:
        return
    table = Table(*[esc(str(c)) for c in df.columns], title=esc(title))
    for row in df.head(max_rows).itertuples(index=False):  # cell values verbatim: 'rules=[bp,fa]' is no markup
        table.add_row(*[f"{v:.4g}" if isinstance(v, float) else esc(str(v)) for v in row])
    console.print(table)
    if len(df) > max_rows:
        console.print(f"... {len(df) - max_rows} more rows")


def sweep(
    experiment: str = typer.Argument(..., help=esc("experiment name (see `plasticlab list`)")),
    sweep_: List[str] = typer.Option([], "--sweep", help=esc("key=v1,v2,...: values of one setting (repeatable; the "
                                     "cells are the cartesian product). Brackets group tuple values: "
                                     "rules=[bp,fa],[kp]")),
    grid: Optional[Path] = typer.Option(None, "--grid", help=esc("TOML file with [grid] (product), [[cells]] (list) "
                                        "and optional [set] (shared settings)")),
    executor: str = typer.Option("local", "--executor", help=esc("local (parallel processes), ray (a Ray cluster or "
                                 "a local Ray) or serial (in this process, for debugging)")),
    address: Optional[str] = typer.Option(None, "--address", help=esc("Ray cluster address, e.g. ray://head:10001 or "
                                          "auto [default: start a local Ray]")),
    workers: Optional[int] = typer.Option(None, "--workers", help=esc("parallel cells [default: min(CPUs, 2)]")),
    out: Optional[Path] = typer.Option(None, "--out",
                                       help=esc("sweep folder [default: runs/sweep-EXPERIMENT(-quick)]")),
    quick: bool = typer.Option(False, "--quick", help=esc("every cell uses the experiment's --quick settings")),
    seeds: Optional[int] = typer.Option(None, "--seeds", help=esc("number of seeds in every cell")),
    set_: List[str] = typer.Option([], "--set",
                                   help=esc("a setting shared by all cells: --set key=value (repeatable)")),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help=esc("folder with data sets (else "
                                            "$PLASTICLAB_DATA or ~/.cache/plasticlab)")),
    no_plots: bool = typer.Option(False, "--no-plots", help=esc("skip writing each cell's PNG figures")),
) -> None:
    """Run an experiment for every combination of settings and gather one table.

    Each cell runs into OUT/cells/<cell-id>/ (e.g. OUT/cells/lr=0.01,seeds=2/) with the experiment's own
    outputs; all rows go to OUT/sweep.csv (+ sweep.parquet with pyarrow) with one column per swept setting;
    OUT/sweep.json records the grid and each cell's status. Rerunning the same command skips finished cells
    and resumes unfinished ones, so a crash or Ctrl-C loses nothing finished. A failing cell does not stop
    the others; the command then names it (traceback in OUT/cells/<cell-id>/error.txt) and exits with 2.
    If the command is killed, its worker processes end with it; rerun it to resume.

    Examples:

      plasticlab sweep quickstart --quick --sweep lr=0.01,0.02,0.05 --sweep seeds=2,4

      plasticlab sweep quickstart --quick --set epochs=0.2 --sweep 'rules=[bp],[kp],[fa,dfa]'

      plasticlab sweep quickstart --grid grid.toml --executor ray --address auto --out runs/big

      plasticlab report runs/sweep-quickstart-quick      # then open report.html
    """
    from .data import DataError
    from .experiments.base import ConfigError, parse_set
    from .sweep import SweepError, load_grid_file, parse_sweep, run_sweep, summarize_sweep

    where = out or Path("runs") / (f"sweep-{experiment}" + ("-quick" if quick else ""))
    cells: list[dict] = [{}]
    try:
        base = parse_set(set_)
        if grid is not None:
            cells, file_base = load_grid_file(grid)
            both = set(file_base) & set(base)
            if both:
                raise ConfigError(f"setting(s) {', '.join(sorted(both))} given in both --set and the grid file's [set]")
            base = {**file_base, **base}
        if sweep_:
            from .sweep import combine_cells, expand_grid

            cells = combine_cells(cells, expand_grid(parse_sweep(sweep_)))
        if cells == [{}] and grid is None:
            raise ConfigError("nothing to sweep: give --sweep key=v1,v2 (repeatable) or --grid FILE.toml")
        t0 = time.time()
        table = run_sweep(experiment, cells, where, quick=quick, seeds=seeds, base_overrides=base,
                          data_dir=data_dir, executor=executor, workers=workers, address=address, console=console,
                          plots=not no_plots)
    except SweepError as err:
        keys = list(dict.fromkeys(k for c in cells for k in c))
        _print_frame(summarize_sweep(err.table, [k for k in keys if k in err.table.columns]),
                     f"{experiment}: finished cells")
        _fail(err)
    except (ConfigError, DataError) as err:
        _fail(err)
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted[/yellow]: finished cells are kept in {esc(str(where))}/cells; rerun "
                      "the same command to run only the missing ones", soft_wrap=True)
        raise typer.Exit(130)
    keys = [k for k in dict.fromkeys(k for c in cells for k in c) if k in table.columns]
    _print_frame(summarize_sweep(table, keys), f"{experiment}: mean per cell ({len(table)} rows)")
    console.print(f"[green]done[/green] in {time.time() - t0:.1f} s -> {esc(str(where))}/sweep.csv "
                  f"(report: plasticlab report {esc(str(where))})", soft_wrap=True)


def report(
    run_dirs: List[Path] = typer.Argument(..., help=esc("run folders (of `plasticlab run`, `sweep` or `reproduce`)")),
    out: Optional[Path] = typer.Option(None, "--out", help=esc("where report.html and report.md go "
                                       "[default: the run folder if one is given, else ./report]")),
    title: str = typer.Option("plasticlab report", "--title", help=esc("the report's title")),
) -> None:
    """Write OUT/report.html (self-contained, figures embedded: opens offline anywhere) and OUT/report.md.

    Per run: its config, its summary table, every PNG and, when the experiment recorded the paper's
    numbers, a paper-vs-ours table with differences beyond tolerance highlighted.

    Examples:

      plasticlab report runs/quickstart-quick

      plasticlab report runs/oja-mnist runs/oja-rnn --out reports/oja
    """
    from .report import write_report

    missing = [str(d) for d in run_dirs if not Path(d).is_dir()]
    if missing:
        _fail(f"no such run folder: {', '.join(missing)}")
    where = out or (run_dirs[0] if len(run_dirs) == 1 else Path("report"))
    path = write_report(run_dirs, where, title=title)
    console.print(f"[green]wrote[/green] {path} and {path.with_suffix('.md')}")


def reproduce(
    paper: str = typer.Argument(..., help=esc("paper tag: oja, sam, hebb, curl or meta (column 'paper' of "
                                "`plasticlab list`)")),
    quick: bool = typer.Option(False, "--quick", help=esc("the small version of every experiment")),
    out: Optional[Path] = typer.Option(None, "--out", help=esc("folder [default: runs/reproduce-PAPER(-quick)]")),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help=esc("folder with data sets")),
    plan_only: bool = typer.Option(False, "--plan", help=esc("print the cost plan of every experiment (estimated "
                                   "wall and CPU time, peak memory) and stop; see `plasticlab run --plan`")),
    budget: Optional[str] = typer.Option(None, "--budget", help=esc("with --plan: whether each experiment and "
                                         "the whole paper fit in this wall time (90s, 30m, 2h)")),
    set_: List[str] = typer.Option([], "--set", help=esc("key=value for every experiment of the paper that has the "
                                   "setting, e.g. --set dataset=mnist (the MNIST stand-in) --set datasets=mnist")),
) -> None:
    """Run every experiment of one paper into OUT/<experiment>/ and write OUT/report.html + report.md.

    An experiment that fails (e.g. its data set is not available offline) does not stop the others; its
    error goes into OUT/<experiment>/error.txt and the report, and the command exits with 2 at the end.
    Rerunning resumes every experiment where it stopped.

    Examples:

      plasticlab reproduce oja --quick

      plasticlab reproduce sam --data-dir /data --out runs/sam-full

      plasticlab reproduce curl --plan --budget 2h         # cost of the full-size paper here, first

      plasticlab reproduce sam --set dataset=mnist --set datasets=mnist   # MNIST as the stand-in data set
    """
    from .experiments.base import ConfigError, parse_set
    from .report import experiments_for, shared_overrides
    from .report import reproduce as _reproduce

    where = out or Path("runs") / (f"reproduce-{paper}" + ("-quick" if quick else ""))
    try:
        overrides = parse_set(set_)
        per = shared_overrides(experiments_for(paper), overrides)
    except ConfigError as err:
        _fail(err)
    if plan_only:
        from . import plan as P
        from .cli import print_plans

        try:
            limit = P.parse_budget(budget)
        except ConfigError as err:
            _fail(err)
        plans, failed = [], {}
        for exp in experiments_for(paper):
            try:
                plans.append(P.plan(exp.name, quick=quick, data_dir=data_dir, overrides=per[exp.name],
                                    report=lambda line: err_console.print(esc(line), style="dim")))
            except (ConfigError, ValueError) as err:  # e.g. its data set is not offline: the others are planned
                failed[exp.name] = str(err)
                continue
            P.write(plans[-1], where / exp.name)
        print_plans(plans, limit)
        if failed:
            _fail("not planned: " + "; ".join(f"{k}: {v}" for k, v in failed.items()))
        return
    try:
        res = _reproduce(paper, where, quick=quick, data_dir=data_dir, console=console, overrides=overrides)
    except ConfigError as err:
        _fail(err)
    console.print(f"report: {res.report} ({len(res.finished)} experiment(s) finished, {len(res.failed)} failed)")
    if res.failed:
        _fail("failed: " + "; ".join(f"{k}: {v}" for k, v in res.failed.items()))


def register_cli(app: typer.Typer) -> None:
    """Add the sweep, report and reproduce commands to the ``plasticlab`` app."""
    for name, fn in (("sweep", sweep), ("report", report), ("reproduce", reproduce)):
        app.command(name, help=_help(fn))(fn)
