"""`gwsreplay mock`: stand in for GWS toward desktops, from recorded sessions.

    gwsreplay mock --db captures/NAME.duckdb --session ID --listen-port 8090
    gwsreplay mock --db captures/NAME.duckdb          # every session: one desktop per agent

Several sessions at once let a transfer or a conference between desktops play
with real desktops and no GWS (each desktop logs in as its recorded user).

Prints one line when listening (``gwsreplay mock listening on http://HOST:PORT ...``,
useful with ``--listen-port 0``), answers until SIGINT/SIGTERM, then prints what did not
match. Exit code 1 when a request matched nothing in the recording.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import sys
from pathlib import Path

from aiohttp import web

from gwsreplay.capture.guard import check_capture
from gwsreplay.cli.options import add_listen_args, listen_error, probe_listen
from gwsreplay.cli.replay import parse_speed
from gwsreplay.core.errors import UserError
from gwsreplay.drivers.mock import MOCK, make_app
from gwsreplay.replay.plan import build_plan
from gwsreplay.replay.recorded import CaptureError, load_capture


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "mock", help="act as GWS toward desktops, answering from recorded sessions",
        description="Serve recorded agent sessions as a GWS: REST requests are matched against the recording "
                    "and answered with the recorded responses (ids rewritten), CometD is served and the recorded "
                    "notifications are pushed in recorded order relative to the desktops' requests. Every session "
                    "of the capture is served at once (each desktop logs in as its recorded user), or those named "
                    "with --session.")
    p.add_argument("--db", required=True, type=Path, help="capture file (captures/NAME.duckdb)")
    p.add_argument("--session", action="append",
                   help="recorded session to serve (ids as `gwsreplay replay --dry-run` lists them); repeat for "
                        "several desktops at once (default: every session of the capture)")
    add_listen_args(p, 8090, old_names=True)
    p.add_argument("--speed", default="1", help="gaps before notifications: 1 (recorded), 4, ..., or max")
    p.add_argument("--seed", type=int, default=0, help="seed for the rewritten ids")
    p.add_argument("--log", type=Path, metavar="FILE", help="JSON lines: pushed notifications and divergences")
    return p


def run(args: argparse.Namespace) -> int:
    speed = parse_speed(args.speed)
    probe_listen(args.listen_host, args.listen_port)
    check_capture(args.db, "read")
    try:
        recorded = load_capture(args.db)
    except FileNotFoundError:
        raise UserError(f"capture not found: {args.db}") from None
    except CaptureError as exc:
        raise UserError(str(exc)) from None
    wanted = list(dict.fromkeys(args.session or recorded.session_ids()))
    if not wanted:
        raise UserError(f"{args.db} holds no recorded session")
    try:
        plan = build_plan(recorded, wanted)
    except KeyError as exc:
        raise UserError(str(exc.args[0])) from None
    users = [s.user_name for s in plan.sessions]
    twice = sorted({u for u in users if users.count(u) > 1})
    if twice:
        raise UserError(f"sessions of the same user cannot be served at once ({', '.join(twice)}): "
                        f"choose with --session")
    try:
        return asyncio.run(_serve(plan, args, speed))
    except OSError as exc:
        raise listen_error(args.listen_host, args.listen_port, exc) from None


async def _serve(plan, args: argparse.Namespace, speed: float | None) -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.listen_host, args.listen_port))
    host = "127.0.0.1" if args.listen_host in ("0.0.0.0", "") else args.listen_host
    url = f"http://{host}:{sock.getsockname()[1]}"
    log_file = open(args.log, "a") if args.log else None
    sessions = plan.sessions
    app = make_app(list(sessions), base_url=url, origins=plan.recorded_origins, seed=args.seed, speed=speed,
                   log_file=log_file)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    which = (f"session {sessions[0].id}" if len(sessions) == 1
             else f"sessions {', '.join(f'{s.id} ({s.user_name})' for s in sessions)}")
    print(f"gwsreplay mock listening on {url} ({which} of {args.db}: {sum(len(s.steps) for s in sessions)} steps, "
          f"{sum(len(s.notes) for s in sessions)} notifications)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        state = app[MOCK]
        await runner.cleanup()
        if log_file:
            log_file.close()
    scripts = state.scripts
    divergences = [d for s in scripts for d in s.divergences]
    print(f"gwsreplay mock: {state.requests} requests, {sum(s.pushed for s in scripts)}/"
          f"{sum(len(s.notes) for s in sessions)} notifications pushed, {len(divergences)} unmatched", file=sys.stderr)
    for script in scripts:
        who = f"{script.plan.id}: " if len(scripts) > 1 else ""
        for d in script.divergences[:20]:
            print(f"  {who}unmatched: {d.detail}", file=sys.stderr)
        left = script.unanswered()
        if left:
            print(f"  {who}never asked: {', '.join(s.label() for s in left[:10])}" + (" ..." if len(left) > 10 else ""),
                  file=sys.stderr)
    return 1 if divergences else 0
