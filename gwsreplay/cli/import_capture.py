"""`gwsreplay import FILE.har|FILE.mitm`: analyse a HAR or a mitmproxy flow file with no proxy."""

from __future__ import annotations

import argparse
from pathlib import Path

from gwsreplay.capture import importer
from gwsreplay.capture.redact import Redactor
from gwsreplay.core.errors import UserError


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "import", help="import a browser HAR or a mitmproxy flow file into a DuckDB capture",
        description="Import a HAR (DevTools export, including Chrome's _webSocketMessages) or a mitmproxy "
                    "flow file (mitmdump -w) into the capture schema (docs/schema.md).")
    p.add_argument("file", help="FILE.har or FILE.mitm")
    p.add_argument("--db", help="capture to write (default: captures/<file stem>.duckdb); appended to if it exists")
    p.add_argument("--format", choices=["auto", "har", "mitm"], default="auto")
    add_redaction_args(p)
    p.add_argument("--max-body", type=int, default=None, help="bytes of each body kept (default 1 MiB)")
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


def run(args) -> int:
    src = Path(args.file)
    if not src.is_file():
        raise UserError(f"no such file: {src}")
    db = Path(args.db) if args.db else Path("captures") / (src.stem + ".duckdb")
    kind = importer.detect_kind(src) if args.format == "auto" else args.format
    try:
        if kind == "har":
            written = importer.import_har(src, db, redactor=redactor_from_args(args), max_body=args.max_body)
        else:
            written = importer.import_mitm(src, db, redactor=redactor_from_args(args), max_body=args.max_body)
    except (ValueError, KeyError) as exc:
        raise UserError(f"cannot read {src} as {kind}: {exc}") from exc
    except Exception as exc:
        if "lock" in str(exc).lower():
            raise UserError(f"{db} is open in another process (a running recorder?)") from exc
        if type(exc).__module__.startswith("mitmproxy"):
            raise UserError(f"cannot read {src} as a mitmproxy flow file: {exc}") from exc
        raise
    print(f"imported {src} -> {db}: {written['exchanges']} exchanges, "
          f"{written['bayeux_messages']} Bayeux messages, {written['websocket_frames']} WebSocket frames")
    return 0
