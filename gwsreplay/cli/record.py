"""`gwsreplay record`: mitmproxy (in-process DumpMaster) + the capture addon.

    gwsreplay record --upstream http://127.0.0.1:8090 --listen-port 8080 --db captures/NAME.duckdb

Reverse-proxy mode by default (desktops point at the proxy instead of GWS);
``--mode regular`` records desktops that use the proxy explicitly (HTTPS GWS through
mitmproxy's CA). A live line shows flows, Bayeux messages, agents and write lag.
SIGINT/SIGTERM shut the proxy down and flush everything before exiting.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import sys
import time

from mitmproxy import options
from mitmproxy.tools.dump import DumpMaster
from rich.console import Console
from rich.live import Live

from gwsreplay.cli.import_capture import add_redaction_args
from gwsreplay.core.errors import UserError
from gwsreplay.proxy.capture import Capture


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "record", help="record GWS REST + CometD through a proxy into a DuckDB capture",
        description="Run mitmproxy with the capture addon (reverse-proxy mode) and record every HTTP "
                    "exchange and Bayeux message into a DuckDB capture (docs/schema.md).")
    p.add_argument("--upstream", help="GWS base URL to forward to (reverse mode), e.g. http://127.0.0.1:8090")
    p.add_argument("--listen-host", default="127.0.0.1")
    p.add_argument("--listen-port", type=int, default=8080)
    p.add_argument("--db", required=True, help="capture file, e.g. captures/NAME.duckdb (appended to if it exists)")
    p.add_argument("--mode", default=None,
                   help="mitmproxy mode instead of reverse:UPSTREAM (e.g. 'regular' for an explicit proxy)")
    p.add_argument("--keep-host-header", action="store_true",
                   help="forward the desktop's Host header (GWS then builds absolute uris with the proxy's address)")
    add_redaction_args(p)
    p.add_argument("--max-body", type=int, default=None, help="bytes of each body kept (default 1 MiB)")
    p.add_argument("--flush-ms", type=int, default=200, help="writer flush interval (default 200 ms)")
    p.add_argument("--quiet", action="store_true", help="no live status line")
    return p


def run(args) -> int:
    if not args.mode and not args.upstream:
        raise UserError("--upstream is required (or give --mode)")
    if args.upstream and not re.match(r"^(https?|wss?)://[^/\s:]+(:\d+)?/?$", args.upstream):
        raise UserError(f"--upstream must look like http://HOST:PORT, not {args.upstream!r}")
    try:
        return asyncio.run(_record(args))
    except SystemExit as exc:   # mitmproxy's errorcheck exits when the proxy cannot start
        raise UserError(f"the proxy could not start (port {args.listen_port} in use?)") from exc


def _status_text(cap, started: float) -> str:
    s = cap.stats()
    written = s.get("written", {})
    line = (f"flows {s.get('flows', 0)}  bayeux {written.get('bayeux_messages', 0)}  "
            f"agents {s.get('agents', 0)}  write lag {s.get('lag_ms', 0):.0f} ms  "
            f"up {time.monotonic() - started:.0f} s")
    if s.get("dropped"):
        line += f"  DROPPED {s['dropped']}"
    if s.get("bad_records"):
        line += f"  bad records {s['bad_records']}"
    return line


async def _record(args) -> int:
    mode = args.mode or f"reverse:{args.upstream}"
    opts = options.Options(listen_host=args.listen_host, listen_port=args.listen_port, mode=[mode])
    master = DumpMaster(opts, with_termlog=True, with_dumper=False)
    # lazy: read the request before connecting upstream, so an unreachable GWS is recorded
    # as an exchange with its error instead of a dropped connection
    opts.update(termlog_verbosity="warn", keep_host_header=args.keep_host_header, connection_strategy="lazy")
    cap = Capture()
    master.addons.add(cap)
    upd = dict(capture_db=args.db, capture_redact=not args.no_redact,
               capture_redact_headers=args.redact_header, capture_redact_json_paths=args.redact_json_path,
               capture_flush_ms=args.flush_ms)
    if args.max_body:
        upd["capture_max_body"] = args.max_body
    opts.update(**upd)

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, master.shutdown)

    console = Console(stderr=True)
    started = time.monotonic()
    console.print(f"recording {mode} on {args.listen_host}:{args.listen_port} into {args.db} "
                  f"(redaction {'off' if args.no_redact else 'on'}); Ctrl-C to stop")

    async def status() -> None:
        if args.quiet:
            return
        if console.is_terminal:
            with Live(_status_text(cap, started), console=console, refresh_per_second=4, transient=False) as live:
                while True:
                    await asyncio.sleep(0.5)
                    live.update(_status_text(cap, started))
        else:
            while True:
                await asyncio.sleep(10)
                console.print(_status_text(cap, started))

    task = asyncio.create_task(status())
    try:
        await master.run()
    finally:
        task.cancel()
    # Master.run() has called `done` on the addons: the writer is closed and flushed.
    print(_final_line(cap, args.db), file=sys.stderr)
    return 0


def _final_line(cap, db: str) -> str:
    s = cap.stats()
    w = s.get("written", {})
    return (f"capture closed: {db}: {w.get('exchanges', 0)} exchanges, {w.get('bayeux_messages', 0)} Bayeux "
            f"messages, {s.get('agents', 0)} agents, dropped {s.get('dropped', 0)}, "
            f"bad records {s.get('bad_records', 0)}"
    )
