"""`gwsreplay sim`: run the GWS simulator until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import signal
import socket
import ssl
from pathlib import Path

from aiohttp import web

from gwsreplay.cli.options import add_listen_args, listen_error
from gwsreplay.cli.tls import DEFAULT_TLS_DIR, SimCertificates, certificate_hosts, generated_context, server_context
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
    add_listen_args(p, DEFAULT_PORT, old_names=True)
    p.add_argument("--agents", type=int, default=10, help="default roster size agent1..agentN")
    p.add_argument("--seed", type=int, default=0, help="seed for every generated id")
    p.add_argument("--roster", metavar="FILE", help="TOML roster ([[users]] tables) instead of --agents")
    p.add_argument("--users", dest="roster", default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # older name
    p.add_argument("--no-csrf", action="store_true", help="no CSRF token handed out and none checked")
    p.add_argument("--answer-delay", type=float, default=1.0, metavar="SECONDS",
                   help="how long an external party takes to answer")
    p.add_argument("--session-timeout", type=float, default=1800.0, metavar="SECONDS",
                   help="forget HTTP sessions idle this long with no CometD client")
    p.add_argument("--sync-errors", action="store_true",
                   help="refuse an operation outside the resource's capabilities at once (HTTP 400, statusCode 2) "
                        "instead of GWS's statusCode 0 followed by an error notification")
    p.add_argument("--logout-timeout", type=float, default=60.0, metavar="SECONDS",
                   help="log an agent out this long after its last CometD session went away, as GWS's user "
                        "monitor does; negative: never")
    p.add_argument("--public-url", metavar="URL",
                   help="base of the absolute uris in resources (default: http(s)://HOST:PORT)")
    tls = p.add_argument_group("TLS (HTTPS and WSS on the same port)")
    tls.add_argument("--tls", action="store_true",
                     help="serve HTTPS/WSS with a certificate issued by a private CA kept in --tls-dir "
                          "(made on first use); prints the CA file clients must trust")
    tls.add_argument("--tls-dir", metavar="DIR", default=str(DEFAULT_TLS_DIR),
                     help="folder of the generated CA and server certificate")
    tls.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this PEM certificate (chain) instead")
    tls.add_argument("--tls-key", metavar="FILE", help="the PEM private key of --tls-cert")
    return p


def run(args: argparse.Namespace) -> int:
    roster = _load_roster(args)
    if args.answer_delay < 0:
        raise UserError("--answer-delay must be >= 0")
    tls = _tls(args)
    sock = _bind(args.listen_host, args.listen_port)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_serve(args, roster, sock, tls))
    finally:
        sock.close()
    return 0


def _load_roster(args: argparse.Namespace):
    if args.roster:
        try:
            roster = Roster.from_toml(args.roster)
        except UserError:
            raise
        except Exception as exc:  # any parse/validation failure is the file's fault
            raise UserError(f"cannot load --roster {args.roster}: {exc}") from None
        if not roster.users:
            raise UserError(f"--roster {args.roster} defines no users")
        return roster
    if args.agents < 1:
        raise UserError("--agents must be at least 1")
    return Roster.default(args.agents)


def _tls(args: argparse.Namespace) -> tuple[SimCertificates, ssl.SSLContext] | None:
    """(certificate files, server context) when TLS is asked for, else None."""
    if bool(args.tls_cert) != bool(args.tls_key):
        raise UserError("--tls-cert and --tls-key go together")
    if args.tls_cert:
        files = SimCertificates(ca=None, cert=Path(args.tls_cert), key=Path(args.tls_key))
        return files, server_context(files.cert, files.key)
    if args.tls:
        return generated_context(Path(args.tls_dir), certificate_hosts(args.listen_host))
    return None


def _bind(host: str, port: int) -> socket.socket:
    """Bind before building the app, so --port 0 still gives the model its real base URL."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, _, _, _, address = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except socket.gaierror as exc:
        raise UserError(f"cannot listen on {host}:{port}: unknown host ({exc.strerror})") from None
    except OSError as exc:
        raise listen_error(host, port, exc) from None
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


def _trust_line(files: SimCertificates) -> str:
    if files.ca is None:
        return f"TLS certificate {files.cert}: clients must trust its issuer"
    return (f"TLS: clients must trust the CA {files.ca} (certificate {files.cert}); e.g. "
            f"NODE_EXTRA_CA_CERTS={files.ca}, gwsreplay record --upstream-ca {files.ca}, "
            f"gwsreplay agents --ca {files.ca}")


async def _serve(args: argparse.Namespace, roster, sock: socket.socket,
                 tls: tuple[SimCertificates, ssl.SSLContext] | None) -> None:
    port = sock.getsockname()[1]
    local_url = f"{'https' if tls else 'http'}://{_url_host(args.listen_host)}:{port}"
    app = make_app(
        roster,
        seed=args.seed,
        csrf=not args.no_csrf,
        base_url=(args.public_url or local_url).rstrip("/"),
        external_answer_delay=args.answer_delay,
        session_timeout=args.session_timeout,
        sync_errors=args.sync_errors,
        logout_timeout=args.logout_timeout if args.logout_timeout >= 0 else None,
    )
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await web.SockSite(runner, sock, ssl_context=tls[1] if tls else None).start()
        print(f"GWS simulator listening on {local_url} ({len(roster.users)} agents, seed {args.seed})",
              flush=True)
        if tls:
            print(_trust_line(tls[0]), flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
