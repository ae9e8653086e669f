"""Refuse to replay onto the GWS a capture was recorded from.

Replaying repeats real operations (logins, dials, transfers), so the target is
compared with the recorded origins by *address*, not by spelling: `localhost`,
`127.1`, `2130706433`, `[::ffff:127.0.0.1]` and `127.0.0.1.` all reach
127.0.0.1. A host that does not resolve here is compared by its name.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from gwsreplay.core.errors import UserError

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_WILDCARD = {"0.0.0.0": ("127.0.0.1", "::1"), "::": ("127.0.0.1", "::1")}   # connecting to them reaches this host


class ReplayRefused(UserError):
    """The replay must not run as asked (safety rule)."""


def endpoints(url: str) -> set[tuple[str, int]]:
    """The (address, port) pairs a URL reaches; (lower-cased name, port) when the name does not resolve."""
    parts = urlsplit(url if "//" in url else f"http://{url}")
    host = (parts.hostname or "").rstrip(".").lower()
    try:
        port = parts.port or DEFAULT_PORTS.get(parts.scheme, 80)
    except ValueError:
        return {(host, -1)}
    literal = _ip(host)
    if literal is not None:
        return {(a, port) for a in _WILDCARD.get(literal, (literal,))}
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        return {(host, port)}
    found = {(_ip(info[4][0]) or info[4][0], port) for info in infos}
    return found | {(host, port)}


def _ip(text: str) -> str | None:
    """The canonical address of an IP literal (IPv4-mapped IPv6 as IPv4; `127.1`, `2130706433` as inet_aton reads them)."""
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        try:
            return socket.inet_ntoa(socket.inet_aton(text)) if text and text[0].isdigit() else None
        except OSError:
            return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def check_target(recorded_origins: list[str], target: str, *, allow_recorded_host: bool = False) -> None:
    """Raise ReplayRefused when `target` is not an http(s) URL, or reaches a recorded origin (unless allowed)."""
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ReplayRefused(f"--target must be an http(s) URL, got {target!r}")
    if allow_recorded_host:
        return
    reached = endpoints(target)
    for origin in recorded_origins:
        if endpoints(origin) & reached:
            raise ReplayRefused(
                f"{target} reaches {origin}, the host this capture was recorded from; replaying there would "
                f"repeat real operations on it. Replay against a test GWS or `gwsreplay sim`, or give "
                f"--allow-recorded-host if that is really what you want.")
