"""`gwsreplay mock`: stand in for GWS toward a desktop, from one recorded session.

    gwsreplay mock --db captures/NAME.duckdb --session ID --port 8090

Prints one line when listening (``gwsreplay mock listening on http://HOST:PORT ...``,
useful with ``--port 0``), answers until SIGINT/SIGTERM, then prints what did not
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
from gwsreplay.cli.replay import parse_speed
from gwsreplay.core.errors import UserError
from gwsreplay.drivers.mock import MOCK, make_app
from gwsreplay.replay.plan import build_plan
from gwsreplay.replay.recorded import CaptureError, load_capture


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "mock", help="act as GWS toward a desktop, answering from one recorded session",
        description="Serve one recorded agent session as a GWS: REST requests are matched against the recording "
                    "and answered with the recorded responses (ids rewritten), CometD is served and the recorded "
                    "notifications are pushed in recorded order relative to the desktop's requests.")
    p.add_argument("--db", required=True, type=Path, help="capture file (captures/NAME.duckdb)")
    p.add_argument("--session", help="recorded session to serve (ids as `gwsreplay replay --dry-run` lists them); "
                                     "may be left out when the capture holds one session")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8090, help="port; 0 picks a free one (default: %(default)s)")
    p.add_argument("--speed", default="1", help="gaps before notifications: 1 (recorded), 4, ..., or max")
    p.add_argument("--seed", type=int, default=0, help="seed for the rewritten ids (default: %(default)s)")
    p.add_argument("--log", type=Path, metavar="FILE", help="JSON lines: pushed notifications and divergences")
    return p


def run(args: argparse.Namespace) -> int:
    speed = parse_speed(args.speed)
    check_capture(args.db, "read")
    try:
        recorded = load_capture(args.db)
    except FileNotFoundError:
        raise UserError(f"capture not found: {args.db}") from None
    except CaptureError as exc:
        raise UserError(str(exc)) from None
    ids = recorded.session_ids()
    if args.session is None:
        if len(ids) != 1:
            raise UserError(f"--session is required: {args.db} holds {len(ids)} sessions ({', '.join(ids)})")
        args.session = ids[0]
    try:
        plan = build_plan(recorded, [args.session])
    except KeyError as exc:
        raise UserError(str(exc.args[0])) from None
    try:
        return asyncio.run(_serve(plan, args, speed))
    except OSError as exc:
        raise UserError(f"cannot listen on {args.host}:{args.port}: {exc}") from None


async def _serve(plan, args: argparse.Namespace, speed: float | None) -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    host = "127.0.0.1" if args.host in ("0.0.0.0", "") else args.host
    url = f"http://{host}:{sock.getsockname()[1]}"
    log_file = open(args.log, "a") if args.log else None
    session = plan.sessions[0]
    app = make_app(session, base_url=url, origins=plan.recorded_origins, seed=args.seed, speed=speed,
                   log_file=log_file)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    print(f"gwsreplay mock listening on {url} (session {session.id} of {args.db}: {len(session.steps)} steps, "
          f"{len(session.notes)} notifications)", flush=True)
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
    script = state.script
    print(f"gwsreplay mock: {state.requests} requests, {script.pushed}/{len(session.notes)} notifications pushed, "
          f"{len(script.divergences)} unmatched", file=sys.stderr)
    for d in script.divergences[:20]:
        print(f"  unmatched: {d.detail}", file=sys.stderr)
    left = script.unanswered()
    if left:
        print(f"  never asked: {', '.join(s.label() for s in left[:10])}" + (" ..." if len(left) > 10 else ""),
              file=sys.stderr)
    return 1 if script.divergences else 0
