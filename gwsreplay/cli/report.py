"""``gwsreplay report``: run the analysis notebooks on a capture and write one HTML file."""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from gwsreplay.analysis import db
from gwsreplay.analysis.report import NOTEBOOKS, ReportError, build_report, count_cells
from gwsreplay.core.errors import UserError


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "report", help="run the analysis notebooks headless and write a self-contained HTML report",
        description="Execute notebooks/*.ipynb against a capture (papermill-style parameters) and write one "
                    "HTML file with every table and figure embedded (plotly.js inlined, works offline).")
    p.add_argument("--db", required=True, type=Path, help="capture file (captures/NAME.duckdb)")
    p.add_argument("--out", type=Path, help="HTML file to write (default: reports/NAME.html)")
    p.add_argument("--replay", type=Path, help="replay capture to compare with (default: NAME-replay.duckdb "
                                               "next to the capture, when it exists)")
    p.add_argument("--agent", help="agent shown in the session explorer (default: the busiest)")
    p.add_argument("--notebooks", default=",".join(n.removesuffix(".ipynb") for n in NOTEBOOKS),
                   help="comma-separated notebooks to include (default: all)")
    p.add_argument("--timeout", type=float, default=600, help="seconds allowed per notebook cell (default 600)")
    return p


def _check_capture(path: Path, error: type[Exception]) -> None:
    """Fail before starting any kernel when the file is missing, locked or not a capture."""
    try:
        con = db.open_capture(path, cache_operations=False)
    except db.CaptureNotFound as exc:
        raise error(str(exc)) from None
    except (RuntimeError, duckdb.Error) as exc:
        raise error(f"cannot open {path}: {exc}") from None
    try:
        if not (db.has_table(con, "exchanges") and db.has_table(con, "bayeux_messages")):
            raise error(f"{path} is not a gwsreplay capture (no exchanges / bayeux_messages tables)")
    finally:
        con.close()


def run(args: argparse.Namespace) -> int:
    _check_capture(args.db, UserError)
    if args.replay is not None:
        _check_capture(args.replay, UserError)
    names = tuple(n.strip() if n.strip().endswith(".ipynb") else n.strip() + ".ipynb"
                  for n in args.notebooks.split(",") if n.strip())
    unknown = [n for n in names if n not in NOTEBOOKS]
    if unknown:
        raise UserError(f"unknown notebooks: {', '.join(unknown)} (known: {', '.join(NOTEBOOKS)})")
    out = args.out or Path("reports") / f"{args.db.stem}.html"
    extra = {"session_explorer.ipynb": {"AGENT": args.agent}} if args.agent else None

    console = Console(stderr=True)
    with Progress(TextColumn("{task.description:<26}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        tasks = {n: progress.add_task(n.removesuffix(".ipynb"), total=count_cells(n)) for n in names}
        try:
            path, executed = build_report(args.db, out, replay=args.replay, notebooks=names,
                                          timeout=args.timeout, extra=extra,
                                          on_cell=lambda name: progress.advance(tasks[name]))
        except ReportError as exc:
            raise UserError(str(exc)) from None
        for n in names:
            progress.update(tasks[n], completed=progress.tasks[tasks[n]].total)
    figures = sum(e.figures for e in executed)
    console.print(f"[bold]report[/bold]: {path.resolve()}  ({len(executed)} notebooks, {figures} figures, "
                  f"{path.stat().st_size / 1e6:.1f} MB)")
    print(path.resolve())
    return 0
