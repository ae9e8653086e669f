"""`gwsreplay import FILE.har|FILE.mitm`: analyse a HAR or a mitmproxy flow file with no proxy."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gwsreplay.capture import importer
from gwsreplay.capture.guard import check_capture
from gwsreplay.capture.records import DEFAULT_MAX_BODY
from gwsreplay.capture.redact import Redactor
from gwsreplay.core.errors import UserError


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "import", help="import a browser HAR or a mitmproxy flow file into a DuckDB capture",
        description="Import a HAR (DevTools export, including Chrome's _webSocketMessages) or a mitmproxy "
                    "flow file (mitmdump -w) into the capture schema (docs/schema.md).")
    p.add_argument("file", help="FILE.har or FILE.mitm")
    p.add_argument("--db", help="capture to write (default: captures/<file stem>.duckdb); appended to if it exists")
    p.add_argument("--append", action="store_true",
                   help="import FILE even if this capture already holds it (same SHA-256); without it a second "
                        "import of the same file is refused")
    p.add_argument("--format", choices=["auto", "har", "mitm"], default="auto",
                   help="what FILE is (auto: by its content)")
    add_redaction_args(p)
    p.add_argument("--max-body", type=int, default=DEFAULT_MAX_BODY, help="bytes of each body kept")
    return p


def add_redaction_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-redact", action="store_true",
                   help="keep passwords, cookies and CSRF tokens verbatim (explicit opt-out)")
    p.add_argument("--redact-header", action="append", default=[], metavar="H",
                   help="also store this header's values as keyed hashes (repeatable)")
    p.add_argument("--redact-json-path", action="append", default=[], metavar="P",
                   help="also mask this JSON path ($.a.b, a[*].b) or field name in bodies (repeatable)")


def redactor_from_args(args) -> Redactor:
    return Redactor(not args.no_redact, headers=args.redact_header, json_paths=args.redact_json_path)


EXIT_SKIPPED = 3     # imported, but some entries were left out (listed)


def run(args) -> int:
    src = Path(args.file)
    if not src.is_file():
        raise UserError(f"no such file: {src}")
    db = Path(args.db) if args.db else Path("captures") / (src.stem + ".duckdb")
    check_capture(db, "write")
    kind = importer.detect_kind(src) if args.format == "auto" else args.format
    console = Console(stderr=True)
    kw = dict(redactor=redactor_from_args(args), max_body=args.max_body, append=args.append)
    try:
        with Progress(TextColumn(f"importing {src.name}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=True, disable=not console.is_terminal) as bar:
            if kind == "har":
                data, total = importer.har_entry_count(src)
                task = bar.add_task("entries", total=total)
                result = importer.import_har(src, db, data=data, progress=lambda n: bar.update(task, completed=n),
                                             **kw)
            else:
                task = bar.add_task("flows", total=None)
                result = importer.import_mitm(src, db, progress=lambda n: bar.update(task, completed=n), **kw)
    except importer.ImportRefused:
        raise
    except (ValueError, KeyError) as exc:
        raise UserError(f"cannot read {src} as {kind}: {exc}; nothing imported") from exc
    except Exception as exc:
        if "lock" in str(exc).lower():
            raise UserError(f"{db} is open in another process (a running recorder?)") from exc
        if type(exc).__module__.startswith("mitmproxy"):
            raise UserError(f"cannot read {src} as a mitmproxy flow file: {exc}; nothing imported") from exc
        raise
    w = result.written
    print(f"imported {src} -> {db}: {w['exchanges']} exchanges, "
          f"{w['bayeux_messages']} Bayeux messages, {w['websocket_frames']} WebSocket frames"
          + (f", {len(result.skipped)} entries skipped" if result.skipped else "")
          + (f", {result.bad_records} bad records (see capture_errors)" if result.bad_records else ""))
    for s in result.skipped[:20]:
        print(f"  skipped entry {s.index}: {s.reason}", file=sys.stderr)
    if len(result.skipped) > 20:
        print(f"  ... and {len(result.skipped) - 20} more", file=sys.stderr)
    return EXIT_SKIPPED if result.skipped or result.bad_records else 0
