"""Options several subcommands share, spelled once: the listening address, ports, the target.

One spelling per concept across `gwsreplay` commands: a server listens on
``--listen-host/--listen-port`` (sim, mock, record; sim and mock also take the older
``--host/--port``, hidden), a client names the GWS with ``--target``. A bad port, a
port in use or a target that does not answer is one line naming it (a UserError),
never a traceback or a port silently picked instead.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import socket
from urllib.parse import urlsplit

from gwsreplay.core.errors import UserError

LOOPBACK = "127.0.0.1"


def port_type(option: str):
    """argparse type of a TCP port given as ``option``: 0 (any free port) or 1-65535. Anything else is a
    UserError, so the console script prints one line (argparse would print its usage too)."""
    def port(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise UserError(f"{option} must be a number from 0 to 65535, not {text!r}") from None
        if not 0 <= value <= 65535:
            raise UserError(f"{option} must be from 0 to 65535 (0: any free port), not {value}")
        return value
    port.__name__ = "port"
    return port


def add_listen_args(p: argparse.ArgumentParser, default_port: int, *, host_help: str = "",
                    old_names: bool = False) -> None:
    """``--listen-host`` / ``--listen-port`` (dest listen_host / listen_port); ``old_names`` adds the
    hidden ``--host`` / ``--port`` aliases a command used to have, so existing scripts keep working."""
    p.add_argument("--listen-host", default=LOOPBACK, metavar="HOST",
                   help="address to listen on (this machine only by default; 0.0.0.0 for every interface)"
                        + (f"; {host_help}" if host_help else ""))
    p.add_argument("--listen-port", type=port_type("--listen-port"), default=default_port, metavar="PORT",
                   help="port to listen on; 0 picks a free one")
    if old_names:
        p.add_argument("--host", dest="listen_host", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        p.add_argument("--port", dest="listen_port", type=port_type("--port"), default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def listen_error(host: str, port_: int, exc: OSError, option: str = "--listen-port") -> UserError:
    """The one line for a server that cannot listen (port in use, address not here, no permission)."""
    if exc.errno == errno.EADDRINUSE:
        why = f"port {port_} is already in use (another gwsreplay, GWS or proxy?); choose another {option}"
    elif exc.errno == errno.EADDRNOTAVAIL:
        why = f"{host} is not an address of this machine; check --listen-host"
    elif exc.errno == errno.EACCES:
        why = f"no permission to listen on port {port_} (ports below 1024 need privileges); choose another {option}"
    else:
        why = exc.strerror or str(exc)
    return UserError(f"cannot listen on {host}:{port_}: {why}")


def probe_listen(host: str, port_: int) -> None:
    """Fail now, with one line, if ``host:port`` cannot be listened on (before any file is made)."""
    try:
        infos = socket.getaddrinfo(host, port_, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, _, _, _, address = infos[0]
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except socket.gaierror as exc:
        raise UserError(f"cannot listen on {host}:{port_}: unknown host ({exc.strerror})") from None
    except OSError as exc:
        raise listen_error(host, port_, exc) from None


def check_reachable(url: str, *, what: str = "", hint: str = "is the simulator / GWS running?",
                    timeout: float = 3.0) -> None:
    """One TCP connection to ``url``'s host and port: a target that is not there is one line now,
    not a connection error repeated by every agent later."""
    u = urlsplit(url)
    if u.scheme not in ("http", "https", "ws", "wss") or not u.hostname:
        raise UserError(f"{what or 'the target'} must look like http://HOST:PORT, not {url!r}")
    try:
        default = 443 if u.scheme in ("https", "wss") else 80
        target = (u.hostname, u.port or default)
    except ValueError:
        raise UserError(f"{url}: the port must be from 0 to 65535") from None

    async def connect() -> None:
        _, writer = await asyncio.wait_for(asyncio.open_connection(*target), timeout)
        writer.close()

    try:
        asyncio.run(connect())
    except (OSError, TimeoutError) as exc:
        why = ("no answer" if isinstance(exc, TimeoutError) else "connection refused"
               if isinstance(exc, ConnectionRefusedError) else "unknown host" if isinstance(exc, socket.gaierror)
               else (exc.strerror or str(exc)))
        raise UserError(f"cannot reach {what + ' ' if what else ''}{url}: {why}; {hint}") from None


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Every option's default in its --help line, as argparse.ArgumentDefaultsHelpFormatter does, but not
    the defaults that say nothing (None, False of a flag, the empty list of a repeatable option)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if shows_default(action) and "%(default)" not in text:
            text += (" " if text else "") + "(default: %(default)s)"
        return text


def shows_default(action: argparse.Action) -> bool:
    """Whether ``action`` has a default worth printing in --help."""
    default = action.default
    return (action.help is not argparse.SUPPRESS and default is not argparse.SUPPRESS
            and default is not None and default is not False and default != [] and default != ""
            and bool(action.option_strings or action.nargs in ("?", "*")))


def show_defaults(parser: argparse.ArgumentParser) -> None:
    """Give ``parser`` the defaults formatter; an option with a default and no help still gets a line."""
    parser.formatter_class = DefaultsHelpFormatter
    for action in parser._actions:
        if action.help is None and shows_default(action):
            action.help = "(default: %(default)s)"
