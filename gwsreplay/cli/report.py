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

from gwsreplay.analysis import db, sources
from gwsreplay.analysis.report import NOTEBOOKS, PLOTLY_FILE, PLOTLY_MODES, ReportError, build_report, count_cells
from gwsreplay.capture.guard import check_capture
from gwsreplay.core.errors import UserError


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "report", help="run the analysis notebooks headless and write a self-contained HTML report",
        description="Execute the analysis notebooks against a capture (papermill-style parameters) and write one "
                    "HTML file that opens with a headline (span, agents, operations, error rate, latency "
                    "percentiles, worst operations, findings) followed by every table and figure.")
    p.add_argument("--db", required=True, type=Path, action="append", metavar="CAPTURE",
                   help="capture file (captures/NAME.duckdb), or a Parquet export directory; give --db "
                        "several times to report on captures of several proxies as one")
    p.add_argument("--out", type=Path, help="HTML file to write (default: reports/NAME.html)")
    p.add_argument("--replay", type=Path, help="replay capture to compare with (default: NAME-replay.duckdb "
                                               "next to the capture, when it exists)")
    p.add_argument("--from", dest="time_from", metavar="TIME",
                   help="analyse from this capture time on, e.g. '2024-05-06 10:40' (UTC, inclusive; "
                        "default: the start)")
    p.add_argument("--to", dest="time_to", metavar="TIME",
                   help="analyse up to this capture time (exclusive; default: the end)")
    p.add_argument("--agent", help="analyse one agent (user name) only; the session explorer shows it "
                                   "(default: every agent, the session explorer shows the busiest)")
    p.add_argument("--plotly", choices=PLOTLY_MODES, default="inline",
                   help=f"how the page loads plotly.js: inline (4.8 MB, works offline), cdn (from "
                        f"cdn.plot.ly, needs the network), file (writes {PLOTLY_FILE} beside the report)")
    p.add_argument("--notebooks", default=",".join(n.removesuffix(".ipynb") for n in NOTEBOOKS),
                   help="comma-separated notebooks to include")
    p.add_argument("--timeout", type=float, default=600, help="seconds allowed per notebook cell")
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


def _check_agent(path: Path, agent: str) -> None:
    """An --agent the capture does not know would give an empty report: say so instead."""
    con = db.open_capture(path, cache_operations=False)
    try:
        known = [r[0] for r in con.execute(
            "SELECT DISTINCT user_name FROM exchanges WHERE user_name IS NOT NULL UNION "
            "SELECT DISTINCT user_name FROM bayeux_messages WHERE user_name IS NOT NULL ORDER BY 1").fetchall()]
    finally:
        con.close()
    if agent not in known:
        listed = ", ".join(known[:10]) + (", ..." if len(known) > 10 else "")
        raise UserError(f"--agent {agent}: no such agent in {path} (agents: {listed or 'none'})")


def run(args: argparse.Namespace) -> int:
    captures = args.db
    for capture in captures:
        if capture.is_file():       # (a folder of Parquet exports is checked below, as a whole)
            check_capture(capture, "read")
        elif not capture.is_dir():
            raise UserError(f"capture not found: {capture}")
    args.db = captures[0] if len(captures) == 1 else Path(sources.join(captures))
    _check_capture(args.db, UserError)
    if args.agent:
        _check_agent(args.db, args.agent)
    if args.replay is not None:
        _check_capture(args.replay, UserError)
    names = tuple(n.strip() if n.strip().endswith(".ipynb") else n.strip() + ".ipynb"
                  for n in args.notebooks.split(",") if n.strip())
    unknown = [n for n in names if n not in NOTEBOOKS]
    if unknown:
        raise UserError(f"unknown notebooks: {', '.join(unknown)} (known: {', '.join(NOTEBOOKS)})")
    out = args.out or Path("reports") / f"{captures[0].stem}{'-and-more' if len(captures) > 1 else ''}.html"
    try:
        scope = db.Scope.of(args.time_from, args.time_to, args.agent)
    except ValueError as exc:
        raise UserError(f"--from/--to: {exc}") from None

    console = Console(stderr=True)
    with Progress(TextColumn("{task.description:<26}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        tasks = {n: progress.add_task(n.removesuffix(".ipynb"), total=count_cells(n)) for n in names}
        try:
            path, executed = build_report(args.db, out, replay=args.replay, notebooks=names,
                                          timeout=args.timeout, scope=scope, plotly_mode=args.plotly,
                                          on_cell=lambda name: progress.advance(tasks[name]))
        except ReportError as exc:
            raise UserError(str(exc)) from None
        for n in names:
            progress.update(tasks[n], completed=progress.tasks[tasks[n]].total)
    figures = sum(e.figures for e in executed)
    beside = f", plotly.js in {path.parent.resolve() / PLOTLY_FILE}" if args.plotly == "file" else ""
    console.print(f"[bold]report[/bold]: {path.resolve()}  ({len(executed)} notebooks, {figures} figures, "
                  f"{path.stat().st_size / 1e6:.1f} MB{beside})")
    print(path.resolve())
    return 0
