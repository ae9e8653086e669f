"""`gwsreplay replay`: recorded agent sessions, again, against a GWS (or the simulator).

    gwsreplay replay --db captures/NAME.duckdb --target http://127.0.0.1:8090 [--session ID ...]
                     [--speed 1|4|max] [--user-map FILE] [--out captures/NAME-replay.duckdb]
                     [--report FILE] [--on-divergence continue|stop] [--allow-recorded-host] [--dry-run]

Load replay (many virtual agents) is `gwsreplay load` (on Locust).

Exit code 0 when the replay matched the recording, 1 when anything diverged,
2 when the replay was refused or could not start. See docs/replay.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import aiohttp
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from gwsreplay.capture.guard import check_capture
from gwsreplay.core.errors import UserError
from gwsreplay.drivers.report import print_report, progress_line, write_report
from gwsreplay.drivers.runner import (
    ReplayOptions,
    detect_simulator,
    replay,
)
from gwsreplay.drivers.target_guard import ReplayRefused, check_target
from gwsreplay.replay.engine import EngineOptions
from gwsreplay.replay.plan import build_plan
from gwsreplay.replay.recorded import CaptureError, load_capture
from gwsreplay.replay.users import UserMap, UserMapError


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "replay", help="replay recorded agent sessions against a GWS (ids mapped, causality kept)",
        description="Replay the agent sessions of a capture against a GWS: mapped users, ids learned from the "
                    "live answers, each request held until the notifications that preceded it have arrived, "
                    "external events injected through the simulator's control API. Prints a divergence "
                    "report; exit code 1 if anything diverged.")
    p.add_argument("--db", required=True, type=Path, help="capture file (captures/NAME.duckdb)")
    p.add_argument("--target", required=True, help="GWS base URL to replay against, e.g. http://127.0.0.1:8090")
    p.add_argument("--session", action="append", default=[], metavar="ID",
                   help="session to replay (repeatable; ids as --dry-run lists them: agent1, agent1#2, ...)")
    p.add_argument("--all", action="store_true", help=argparse.SUPPRESS)   # every session is the default
    p.add_argument("--speed", default="max", help="1 (recorded pace), 4 (four times faster), any factor, "
                                                  "or max (think times dropped)")
    p.add_argument("--user-map", type=Path, metavar="FILE",
                   help="TOML: recorded user -> replay user and password "
                        "(default on the simulator: same users, password 'password')")
    p.add_argument("--out", type=Path, help="replay capture to append this run to "
                                            "(default: NAME-replay.duckdb next to the capture)")
    p.add_argument("--no-out", action="store_true", help="do not record the replay")
    p.add_argument("--report", type=Path, metavar="FILE", help="write the divergence report as JSON")
    p.add_argument("--on-divergence", choices=["continue", "stop"], default="continue",
                   help="what a session does after a divergence")
    p.add_argument("--allow-recorded-host", action="store_true",
                   help="allow replaying to the host the capture was recorded from")
    p.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    p.add_argument("--agents", type=int, metavar="N", help=argparse.SUPPRESS)    # moved to `gwsreplay load`
    p.add_argument("--ramp-up", type=float, default=None, metavar="S", help=argparse.SUPPRESS)
    p.add_argument("--wait-timeout", type=float, default=10.0, metavar="S",
                   help="seconds a request may wait for the notifications that preceded it")
    p.add_argument("--external-timeout", type=float, default=60.0, metavar="S",
                   help="... when they depend on an external event on a real GWS")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    return p


def parse_speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        speed = float(text)
    except ValueError:
        raise UserError(f"--speed must be a number or 'max', got {text!r}") from None
    if speed <= 0:
        raise UserError("--speed must be positive")
    return speed


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    speed = parse_speed(args.speed)
    if args.agents is not None or args.ramp_up is not None:
        raise UserError(f"load replay is `gwsreplay load --db {args.db} --target {args.target} --users "
                        f"{args.agents or 'N'} --spawn-rate R --run-time T` (Locust); `gwsreplay replay` replays "
                        f"the capture once")
    if args.all and args.session:
        raise UserError("--session names the sessions to replay, --all asks for every one: give one of them")
    check_capture(args.db, "read")
    try:
        recorded = load_capture(args.db)
    except FileNotFoundError:
        raise UserError(f"capture not found: {args.db}") from None
    except CaptureError as exc:
        raise UserError(str(exc)) from None
    if not recorded.sessions:
        raise UserError(f"{args.db} holds no agent session")
    try:
        plan = build_plan(recorded, args.session or None)
    except KeyError as exc:
        raise UserError(str(exc.args[0])) from None
    if args.dry_run:                 # sends nothing: allowed against any target
        print_plan(plan, Console())
        return 0
    check_target(plan.recorded_origins, args.target, allow_recorded_host=args.allow_recorded_host)

    simulator = asyncio.run(_detect(args.target))
    try:
        users = (UserMap.from_toml(args.user_map, simulator=simulator) if args.user_map
                 else UserMap.simulator() if simulator else None)
    except UserMapError as exc:
        raise UserError(str(exc)) from None
    if users is None:
        raise UserError(f"{args.target} is not the simulator and captures hold no passwords: "
                        f"give --user-map FILE (see docs/replay.md)")
    out = None if args.no_out else (args.out or args.db.with_name(args.db.stem + "-replay.duckdb"))
    options = ReplayOptions(
        target=args.target, users=users, out=out,
        allow_recorded_host=args.allow_recorded_host, simulator=simulator,
        engine=EngineOptions(speed=speed, wait_timeout=args.wait_timeout, external_timeout=args.external_timeout,
                             on_divergence=args.on_divergence))
    try:
        result = run_with_progress(plan, options, quiet=args.quiet, console=console)
    except (UserMapError, ReplayRefused) as exc:
        raise UserError(str(exc)) from None

    print_report(result)
    if args.report:
        write_report(result, args.report)
        console.print(f"report: {args.report}")
    if out:
        console.print(f"replay recorded in {out} (run {result.run_id})")
    return result.exit_code


async def _detect(target: str) -> bool:
    async with aiohttp.ClientSession() as http:
        return await detect_simulator(target, http)


def run_with_progress(plan, options, *, quiet: bool = False, console=None):
    """Run the replay with a live progress line (sessions done, ops/s, p50/p99, divergences)."""
    console = console or Console(stderr=True)
    if quiet:
        return asyncio.run(replay(plan, options, on_announce=lambda t: console.print(f"[yellow]{t}[/]")))
    with Progress(TextColumn("[bold]replay[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[line]}"), console=console, transient=False) as progress:
        task = progress.add_task("replay", total=None, line="starting")

        def on_progress(stats) -> None:
            progress.update(task, total=stats.sessions_total, completed=stats.sessions_done,
                            line=progress_line(stats))

        return asyncio.run(replay(plan, options, on_progress=on_progress,
                                  on_announce=lambda t: progress.console.print(f"[yellow]{t}[/]")))


PLAN_COLUMNS = ("#", "at s", "think s", "step", "recorded", "waits for")


def print_plan(plan, console) -> None:
    """--dry-run: every session's steps, with what each waits for: rich tables on a terminal, plain
    tab-separated lines when piped or redirected (a table would be cut to 80 columns there)."""
    header = f"plan for {plan.capture} (recorded from {', '.join(plan.recorded_origins) or '?'})"
    if not console.is_terminal:
        lines = [header]
        for session in plan.sessions:
            lines += ["", _session_title(session), "\t".join(PLAN_COLUMNS)]
            lines += ["\t".join(row) for row in _plan_rows(plan, session)]
        print("\n".join(lines), file=console.file)
        return
    console.print(f"[bold]plan[/] {header.removeprefix('plan ')}")
    for session in plan.sessions:
        table = Table(title=_session_title(session))
        for column in PLAN_COLUMNS:
            table.add_column(column, overflow="fold")
        for row in _plan_rows(plan, session):
            table.add_row(*row)
        console.print(table)


def _session_title(session) -> str:
    return (f"session {session.id}: {session.user_name}, {session.transport}, "
            f"phones {', '.join(sorted(session.phones)) or '-'}, {len(session.notes)} notifications")


def _plan_rows(plan, session) -> list[tuple[str, ...]]:
    rows = []
    for step in session.steps:
        recorded = (f"{step.status} / {step.status_code}" if step.status is not None
                    else ("ok" if step.successful else "" if step.successful is None else "refused"))
        waits = ", ".join(f"{w.session}: {plan.session(w.session).notes[w.note].label()}" for w in step.waits)
        label = step.label() + (" (inferred)" if step.inferred else "")
        rows.append((str(step.index), f"{step.ts:.3f}", f"{step.think:.3f}", label, recorded, waits))
    return rows


def plan_json(plan) -> str:
    return json.dumps(plan.describe(), indent=2)
