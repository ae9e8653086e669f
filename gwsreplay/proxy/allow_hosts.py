"""Forward only to allowed upstream hosts: an explicit proxy that is not an open proxy.

    gwsreplay record --mode regular --allow-host gws.example.com --db captures/NAME.duckdb
    mitmdump -s proxy_addons/allow_hosts.py --mode regular --set proxy_allow_hosts=gws.example.com:443

In ``--mode regular`` mitmproxy forwards to whatever host a client names; mitmproxy's own
``allow_hosts`` only chooses which connections it intercepts (the others pass through
untouched, still forwarded). This addon refuses the rest: a CONNECT or a plain request
to a host that is not listed gets a 403 naming the host, is counted (``refused``), is
not recorded as an exchange, and is reported once per request to ``report`` (gwsreplay
record writes it to capture_errors, kind ``host_refused``). Any other connection to an
unlisted address (a Host header inside an allowed tunnel naming another server, a raw
TCP stream in another mode) is cut before mitmproxy connects.

An entry is ``HOST`` (any port) or ``HOST:PORT`` (``[v6]:PORT`` for IPv6); names compare
case-insensitively without a trailing dot, addresses in their canonical form. Names are
not resolved: allow what the desktops ask for (``gws.example.com`` does not allow its
address). An empty list allows every host (the addon does nothing).
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

from mitmproxy import ctx, exceptions, http
from mitmproxy.addonmanager import Loader

from gwsreplay.capture.records import ErrorRecord
from gwsreplay.proxy.capture import RECORDED_MARK

logger = logging.getLogger(__name__)

class AllowedHost(NamedTuple):
    """One allow-list entry: ``port`` None allows every port of ``host``."""

    host: str
    port: int | None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"


def normal_host(host: str) -> str:
    """A host as compared: lower case, no trailing dot, no brackets, addresses canonical."""
    host = host.strip().strip("[]").rstrip(".").lower()
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def parse_entry(text: str) -> AllowedHost:
    """``HOST``, ``HOST:PORT``, ``[V6]``, ``[V6]:PORT`` or a bare IPv6 address; ValueError otherwise."""
    text = text.strip()
    if not text or "/" in text or " " in text:
        raise ValueError(f"{text!r} is not HOST or HOST:PORT")
    port: str | None = None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"{text!r} is not [ADDRESS]:PORT")
            port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host = text               # a name, an IPv4 address or a bare IPv6 address
    if not host:
        raise ValueError(f"{text!r} has no host")
    if port is not None:
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"{text!r}: the port must be from 1 to 65535")
        return AllowedHost(normal_host(host), int(port))
    return AllowedHost(normal_host(host), None)


class AllowList(NamedTuple):
    entries: tuple[AllowedHost, ...]

    def allows(self, host: str, port: int) -> bool:
        host = normal_host(host)
        return any(e.host == host and e.port in (None, port) for e in self.entries)


class AllowHosts:
    """The addon. ``report(ErrorRecord)`` is told about each refusal (e.g. the capture writer)."""

    def __init__(self, report: Callable[[ErrorRecord], None] | None = None) -> None:
        self.allow = AllowList(())
        self.refused = 0
        self.report = report

    def load(self, loader: Loader) -> None:
        loader.add_option("proxy_allow_hosts", Sequence[str], [],
                          "Upstream hosts the proxy forwards to (HOST or HOST:PORT); every other host is "
                          "refused with a 403. Empty: every host (an open proxy in regular mode).")

    def configure(self, updated: set[str]) -> None:
        if "proxy_allow_hosts" in updated:
            entries = []
            for text in ctx.options.proxy_allow_hosts:
                try:
                    entries.append(parse_entry(text))
                except ValueError as exc:
                    raise exceptions.OptionsError(f"proxy_allow_hosts: {exc}") from None
            self.allow = AllowList(tuple(entries))

    # ------------------------------------------------------------------ hooks
    def http_connect(self, flow: http.HTTPFlow) -> None:
        self._check(flow)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        self._check(flow)

    def server_connect(self, data) -> None:
        address = data.server.address
        if not self.allow.entries or address is None or self.allow.allows(str(address[0]), int(address[1])):
            return
        data.server.error = f"{address[0]}:{address[1]} is not an allowed upstream host"
        self._refused(f"connection to {address[0]}:{address[1]}", None)

    # ------------------------------------------------------------------ helpers
    def _check(self, flow: http.HTTPFlow) -> None:
        if not self.allow.entries or flow.response is not None:
            return
        req = flow.request
        if self.allow.allows(req.host, req.port):
            return
        where = f"{req.host}:{req.port}"
        flow.response = http.Response.make(
            403, f"gwsreplay record: {where} is not an allowed upstream host; this proxy forwards only to "
                 f"{', '.join(map(str, self.allow.entries))}\n", {"Content-Type": "text/plain; charset=utf-8"})
        flow.metadata[RECORDED_MARK] = True     # refused here: not an exchange of the capture
        what = f"CONNECT {where}" if req.method == "CONNECT" else f"{req.method} {req.scheme}://{where}{req.path[:200]}"
        self._refused(what, flow.id)

    def _refused(self, what: str, flow_id: str | None) -> None:
        self.refused += 1
        logger.warning(f"refused {what}: not an allowed upstream host")
        if self.report is not None:
            try:
                self.report(ErrorRecord(kind="host_refused", flow_id=flow_id, ts=time.time(),
                                        error=f"{what}: not an allowed upstream host (403)"))
            except Exception as exc:  # noqa: BLE001 - never break the proxy
                logger.warning(f"host_refused not recorded: {exc}")


addons = [AllowHosts()]
