"""`gwsreplay record`: mitmproxy (in-process DumpMaster) + the capture addon.

    gwsreplay record --upstream http://127.0.0.1:8090 --listen-port 8080 --db captures/NAME.duckdb

Reverse-proxy mode by default (desktops point at the proxy instead of GWS), to an
HTTP or HTTPS GWS (``--upstream-ca FILE`` verifies it against a private CA,
``--ssl-insecure`` explicitly does not); ``--mode regular`` records desktops that use
the proxy explicitly (HTTPS GWS through mitmproxy's CA, whose file and trust commands
are printed), forwarding only to the ``--allow-host`` hosts (default: ``--upstream``'s;
other hosts get a 403, counted; ``--allow-any-host`` is the explicit open proxy); ``--set NAME=VALUE`` passes any other mitmproxy option. A live line shows
flows, Bayeux messages, agents and write lag. SIGINT/SIGTERM shut the proxy down and
flush everything before exiting.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from mitmproxy import exceptions, options
from mitmproxy.tools.dump import DumpMaster
from rich.console import Console
from rich.live import Live

from gwsreplay.capture.guard import check_capture
from gwsreplay.capture.records import DEFAULT_MAX_BODY
from gwsreplay.cli.import_capture import add_redaction_args
from gwsreplay.cli.options import add_listen_args, probe_listen
from gwsreplay.core.errors import UserError
from gwsreplay.proxy.allow_hosts import AllowHosts, parse_entry
from gwsreplay.proxy.capture import Capture


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "record", help="record GWS REST + CometD through a proxy into a DuckDB capture",
        description="Run mitmproxy with the capture addon (reverse-proxy mode) and record every HTTP "
                    "exchange and Bayeux message into a DuckDB capture (docs/schema.md).")
    p.add_argument("--upstream", help="GWS base URL to forward to (reverse mode), e.g. http://127.0.0.1:8090 "
                                      "or https://gws.example.com")
    add_listen_args(p, 8080, host_help="mitmdump's own default is every interface")
    p.add_argument("--db", required=True, help="capture file, e.g. captures/NAME.duckdb (appended to if it exists)")
    p.add_argument("--mode", default=None,
                   help="mitmproxy mode instead of reverse:UPSTREAM (e.g. 'regular' for an explicit proxy, "
                        "which needs --allow-host or --upstream)")
    p.add_argument("--allow-host", action="append", default=[], metavar="HOST[:PORT]",
                   help="with --mode regular (or any mode but reverse): an upstream host the proxy forwards to "
                        "(repeatable; HOST alone: any port); requests to other hosts get a 403, are counted and "
                        "logged in capture_errors (host_refused). Default: the host:port of --upstream; with "
                        "neither, regular mode refuses to start")
    p.add_argument("--allow-any-host", action="store_true",
                   help="with --mode regular: forward to any host (an open proxy: only on a trusted network)")
    verify = p.add_mutually_exclusive_group()
    verify.add_argument("--upstream-ca", metavar="FILE",
                        help="verify an HTTPS GWS against this PEM CA file (e.g. an internal CA, or the one "
                             "`gwsreplay sim --tls` prints) instead of the public CAs")
    verify.add_argument("--ssl-insecure", action="store_true",
                        help="do not verify the HTTPS GWS's certificate at all (explicit opt-out; without "
                             "this or --upstream-ca an untrusted certificate is refused and recorded as an error)")
    p.add_argument("--set", dest="mitm_options", metavar="NAME=VALUE", action="append", default=[],
                   help="any mitmproxy option, as mitmdump's --set (repeatable; applied last, so it wins), "
                        "e.g. --set confdir=~/.mitmproxy-gws --set http2=false")
    p.add_argument("--keep-host-header", action="store_true",
                   help="forward the desktop's Host header (GWS then builds absolute uris with the proxy's address)")
    add_redaction_args(p)
    p.add_argument("--max-body", type=int, default=DEFAULT_MAX_BODY, help="bytes of each body kept")
    p.add_argument("--flush-ms", type=int, default=200, help="writer flush interval in milliseconds")
    p.add_argument("--writer", choices=("process", "thread"), default=None,
                   help="where the capture writer runs: thread (default; in the proxy's process) or process "
                        "(a child process, so decoding, classification and DuckDB do not take the proxy's GIL)")
    p.add_argument("--body-size-limit", default=DEFAULT_BODY_SIZE_LIMIT, metavar="SIZE",
                   help="refuse bodies larger than this (k/m/g suffixes; the desktop gets a 502 and the refusal "
                        "is recorded in capture_errors); GWS bodies are small")
    p.add_argument("--no-upstream-check", action="store_true",
                   help="start even if the upstream does not answer now (its requests are then recorded as "
                        "errors and counted in the live line)")
    p.add_argument("--quiet", action="store_true", help="no live status line")
    return p


DEFAULT_BODY_SIZE_LIMIT = "8m"
EXIT_INCOMPLETE = 3     # the capture misses records (dropped, lost or not written at close)


def run(args) -> int:
    if not args.mode and not args.upstream:
        raise UserError("--upstream is required (or give --mode)")
    if args.upstream and not re.match(r"^(https?|wss?)://[^/\s:]+(:\d+)?/?$", args.upstream):
        raise UserError(f"--upstream must look like http://HOST:PORT, not {args.upstream!r}")
    if args.upstream_ca and not Path(args.upstream_ca).expanduser().is_file():
        raise UserError(f"--upstream-ca {args.upstream_ca}: no such file")
    args.allow_hosts = allowed_hosts(args)
    check_capture(args.db, "write")
    probe_listen(args.listen_host, args.listen_port)     # before the capture file is made
    existed = Path(args.db).exists()
    try:
        return asyncio.run(_record(args))
    except SystemExit as exc:   # mitmproxy's errorcheck exits when the proxy cannot start
        if not existed:         # nothing was recorded: leave no half-made capture behind
            for made in (Path(args.db), Path(f"{args.db}.wal")):
                made.unlink(missing_ok=True)
        raise UserError(f"the proxy could not start on {args.listen_host}:{args.listen_port} (see the "
                        f"lines above)") from exc


def allowed_hosts(args) -> list[str]:
    """The upstream allow-list of a forward-proxy mode ([] in reverse mode, or with --allow-any-host)."""
    reverse = not args.mode or args.mode.startswith("reverse:")
    if reverse:
        if args.allow_host or args.allow_any_host:
            raise UserError("--allow-host and --allow-any-host apply to --mode regular (a reverse proxy only "
                            "forwards to --upstream)")
        return []
    if args.allow_any_host:
        if args.allow_host:
            raise UserError("give --allow-host HOST or --allow-any-host, not both")
        return []
    hosts = list(args.allow_host)
    if not hosts and args.upstream:
        u = urlsplit(args.upstream)
        hosts = [f"{u.hostname}:{u.port or (443 if u.scheme in ('https', 'wss') else 80)}"]
    if not hosts:
        raise UserError(f"--mode {args.mode} forwards to any host a client names (an open proxy): name the GWS "
                        f"with --allow-host HOST[:PORT] (repeatable) or --upstream URL, or give --allow-any-host")
    for text in hosts:
        try:
            parse_entry(text)
        except ValueError as exc:
            raise UserError(f"--allow-host {exc}") from None
    return hosts


def _apply_sets(opts: options.Options, specs: list[str]) -> None:
    """``--set NAME=VALUE`` as mitmdump does it; an unknown name or a bad value is one clear line."""
    for spec in specs:
        try:
            opts.set(spec)
        except exceptions.OptionsError as exc:
            raise UserError(f"--set {spec}: {exc} (see `mitmdump --options`)") from None


def mitmproxy_ca(opts: options.Options) -> Path:
    """mitmproxy's CA certificate (made in confdir when the proxy is configured)."""
    return Path(opts.confdir).expanduser() / "mitmproxy-ca-cert.pem"


def trust_help(opts: options.Options, mode: str) -> list[str]:
    """Where mitmproxy's CA is and how desktops trust it, when desktops talk TLS to the proxy."""
    explicit = mode.startswith(("regular", "upstream:"))
    reverse_tls = mode.startswith("reverse:https")
    if not (explicit or reverse_tls):
        return []
    ca = mitmproxy_ca(opts)
    lines = [f"desktops use http://{opts.listen_host}:{opts.listen_port} as their HTTP(S) proxy and trust "
             f"mitmproxy's CA {ca}:" if explicit else
             f"desktops that reach this proxy with https:// must trust mitmproxy's CA {ca}:",
             f'  Chromium/NSS: certutil -d sql:$HOME/.pki/nssdb -A -t "C,," -n mitmproxy -i {ca}',
             f"  Node:         NODE_EXTRA_CA_CERTS={ca}",
             f"  Python:       SSL_CERT_FILE={ca}  (gwsreplay agents --ca {ca})"]
    if explicit:
        lines.append("  Chromium also needs --proxy-server=... and, for 127.0.0.1, --proxy-bypass-list='<-loopback>'")
    return lines


def _status_text(cap, started: float, allow: AllowHosts | None = None) -> str:
    s = cap.stats()
    written = s.get("written", {})
    line = (f"flows {s.get('flows', 0)}  bayeux {written.get('bayeux_messages', 0)}  "
            f"agents {s.get('agents', 0)}  write lag {s.get('lag_ms', 0):.0f} ms  "
            f"up {time.monotonic() - started:.0f} s")
    if s.get("dropped"):
        line += f"  DROPPED {s['dropped']}"
    if s.get("lost"):
        line += f"  LOST {s['lost']} (not written: disk?)"
    if s.get("upstream_errors"):
        line += f"  upstream errors {s['upstream_errors']}"
    if s.get("refused"):
        line += f"  refused bodies {s['refused']}"
    if s.get("bad_records"):
        line += f"  bad records {s['bad_records']}"
    if s.get("writer_restarts"):
        line += f"  WRITER PROCESS RESTARTED {s['writer_restarts']}x"
    if allow is not None and allow.refused:
        line += f"  refused hosts {allow.refused}"
    return line


async def _check_upstream(url: str, timeout: float = 3.0) -> None:
    """One TCP connection to the upstream: a GWS that is not there is said now, not as 502s later."""
    u = urlsplit(url)
    port = u.port or (443 if u.scheme in ("https", "wss") else 80)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(u.hostname, port), timeout)
    except (OSError, asyncio.TimeoutError) as exc:
        why = ("no answer" if isinstance(exc, asyncio.TimeoutError) else "connection refused"
               if isinstance(exc, ConnectionRefusedError) else (exc.strerror or str(exc)))
        raise UserError(f"upstream {url} is not reachable ({why}); start GWS first, check --upstream, "
                        f"or give --no-upstream-check to record anyway") from None
    writer.close()


async def _record(args) -> int:
    mode = args.mode or f"reverse:{args.upstream}"
    opts = options.Options(listen_host=args.listen_host, listen_port=args.listen_port, mode=[mode])
    master = DumpMaster(opts, with_termlog=True, with_dumper=False)
    # lazy: read the request before connecting upstream, so an unreachable GWS is recorded
    # as an exchange with its error instead of a dropped connection
    opts.update(termlog_verbosity="warn", keep_host_header=args.keep_host_header, connection_strategy="lazy")
    cap = Capture()
    cap.close_progress = _close_progress
    allow = AllowHosts(report=lambda record: cap.writer.submit(record) if cap.writer is not None else None)
    master.addons.add(allow, cap)       # allow first: a refused request is not recorded as an exchange
    upd = dict(body_size_limit=args.body_size_limit, capture_redact=not args.no_redact,
               capture_redact_headers=args.redact_header, capture_redact_json_paths=args.redact_json_path,
               capture_flush_ms=args.flush_ms, proxy_allow_hosts=args.allow_hosts)
    if args.max_body:
        upd["capture_max_body"] = args.max_body
    if args.writer:
        upd["capture_writer"] = args.writer
    if args.upstream_ca:
        upd["ssl_verify_upstream_trusted_ca"] = str(Path(args.upstream_ca).expanduser().resolve())
    if args.ssl_insecure:
        upd["ssl_insecure"] = True
    opts.update(**upd)
    _apply_sets(opts, args.mitm_options)
    if args.upstream and not args.mode and not args.no_upstream_check:
        await _check_upstream(args.upstream)
    if not opts.capture_db:   # last: no capture file is made when an option is wrong
        opts.update(capture_db=args.db)
    mode = opts.mode[0] if opts.mode else mode

    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_quiet_cancelled)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, master.shutdown)

    console = Console(stderr=True)
    started = time.monotonic()
    console.print(f"recording {mode} on {opts.listen_host}:{opts.listen_port} into {args.db} "
                  f"(redaction {'off' if args.no_redact else 'on'}); Ctrl-C to stop")
    for line in trust_help(opts, mode):
        console.print(line, highlight=False, soft_wrap=True)
    if args.allow_hosts:
        console.print(f"forwarding only to {', '.join(args.allow_hosts)} (--allow-host); other hosts get a 403",
                      highlight=False, soft_wrap=True)
    elif not mode.startswith("reverse:"):
        console.print("forwarding to ANY host (--allow-any-host): an open proxy", highlight=False, soft_wrap=True)

    async def status() -> None:
        if args.quiet:
            return
        if console.is_terminal:
            with Live(_status_text(cap, started, allow), console=console, refresh_per_second=4, transient=False) as live:
                while True:
                    await asyncio.sleep(0.5)
                    live.update(_status_text(cap, started, allow))
        else:
            while True:
                await asyncio.sleep(10)
                console.print(_status_text(cap, started, allow))

    task = asyncio.create_task(status())
    try:
        await master.run()
    finally:
        task.cancel()
    # Master.run() has called `done` on the addons: the writer is closed and flushed.
    print(_final_line(cap, args.db, allow), file=sys.stderr)
    unwritten = cap.stats().get("unwritten", 0)
    if unwritten:
        print(f"gwsreplay record: error: {unwritten} record(s) are not in {args.db} (see capture_errors "
              f"and the counts above)", file=sys.stderr)
        return EXIT_INCOMPLETE
    return 0


def _quiet_cancelled(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """Connections still open at shutdown are cancelled: that is the plan, not a traceback
    (asyncio's stream callback reports each cancelled handler as an error otherwise)."""
    if isinstance(context.get("exception"), asyncio.CancelledError):
        return
    loop.default_exception_handler(context)


def _close_progress(pending: int) -> None:
    print(f"writing the last {pending} record(s) into the capture...", file=sys.stderr, flush=True)


def _final_line(cap, db: str, allow: AllowHosts | None = None) -> str:
    s = cap.stats()
    w = s.get("written", {})
    return (f"capture closed: {db}: {w.get('exchanges', 0)} exchanges, {w.get('bayeux_messages', 0)} Bayeux "
            f"messages, {s.get('agents', 0)} agents, dropped {s.get('dropped', 0)}, lost {s.get('lost', 0)}, "
            f"not written at close {s.get('abandoned', 0)}, bad records {s.get('bad_records', 0)}, "
            f"upstream errors {s.get('upstream_errors', 0)}, refused bodies {s.get('refused', 0)}"
            + (f", refused hosts {allow.refused}" if allow is not None and allow.refused else "")
    )
