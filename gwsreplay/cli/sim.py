"""`gwsreplay sim`: run the GWS simulator until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import signal
import socket

from aiohttp import web

from gwsreplay.core.errors import UserError
from gwsreplay.sim.model.roster import Roster
from gwsreplay.sim.server.app import make_app

DEFAULT_PORT = 8090


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "sim",
        help="run the GWS simulator (REST + CometD + control API on one port)",
        description="Run a GWS 8.6 simulator: /api/v2 REST, CometD at /api/v2/notifications "
                    "and the control API at /sim/v1, on one HTTP port. See docs/simulator.md.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help="port to listen on; 0 picks a free one (default: %(default)s)")
    p.add_argument("--agents", type=int, default=10, help="default roster size agent1..agentN (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed for every generated id (default: %(default)s)")
    p.add_argument("--users", metavar="FILE", help="TOML roster ([[users]] tables) instead of --agents")
    p.add_argument("--no-csrf", action="store_true", help="no CSRF token handed out and none checked")
    p.add_argument("--answer-delay", type=float, default=1.0, metavar="SECONDS",
                   help="how long an external party takes to answer (default: %(default)s)")
    p.add_argument("--session-timeout", type=float, default=1800.0, metavar="SECONDS",
                   help="forget HTTP sessions idle this long with no CometD client (default: %(default)s)")
    p.add_argument("--public-url", metavar="URL",
                   help="base of the absolute uris in resources (default: http://HOST:PORT)")
    return p


def run(args: argparse.Namespace) -> int:
    roster = _load_roster(args)
    if args.answer_delay < 0:
        raise UserError("--answer-delay must be >= 0")
    sock = _bind(args.host, args.port)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_serve(args, roster, sock))
    finally:
        sock.close()
    return 0


def _load_roster(args: argparse.Namespace):
    if args.users:
        try:
            roster = Roster.from_toml(args.users)
        except UserError:
            raise
        except Exception as exc:  # any parse/validation failure is the file's fault
            raise UserError(f"cannot load --users {args.users}: {exc}") from None
        if not roster.users:
            raise UserError(f"--users {args.users} defines no users")
        return roster
    if args.agents < 1:
        raise UserError("--agents must be at least 1")
    return Roster.default(args.agents)


def _bind(host: str, port: int) -> socket.socket:
    """Bind before building the app, so --port 0 still gives the model its real base URL."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, _, _, _, address = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc}") from None
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def _url_host(host: str) -> str:
    """A host usable in a URL: wildcard addresses become 127.0.0.1, IPv6 gets brackets."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if ip.is_unspecified:
        return "127.0.0.1"
    return f"[{host}]" if ip.version == 6 else host


async def _serve(args: argparse.Namespace, roster, sock: socket.socket) -> None:
    port = sock.getsockname()[1]
    local_url = f"http://{_url_host(args.host)}:{port}"
    app = make_app(
        roster,
        seed=args.seed,
        csrf=not args.no_csrf,
        base_url=(args.public_url or local_url).rstrip("/"),
        external_answer_delay=args.answer_delay,
        session_timeout=args.session_timeout,
    )
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await web.SockSite(runner, sock).start()
        print(f"GWS simulator listening on {local_url} ({len(roster.users)} agents, seed {args.seed})",
              flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
