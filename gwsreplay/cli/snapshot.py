"""`gwsreplay snapshot`: a consistent copy of a capture, also while it is being recorded."""

from __future__ import annotations

import argparse

from gwsreplay.capture.guard import check_capture
from gwsreplay.capture.snapshot import SnapshotError, snapshot
from gwsreplay.core.errors import UserError


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "snapshot", help="copy a (live) capture for analysis",
        description="Copy a capture into a new DuckDB file that notebooks can open while the recorder "
                    "keeps writing the original (see docs/schema.md, 'Live analysis').")
    p.add_argument("--db", required=True, help="the capture (may be held by a running recorder)")
    p.add_argument("--out", help="snapshot file (default: <db stem>.snapshot.duckdb next to it)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a live writer")
    return p


def run(args) -> int:
    check_capture(args.db, "snapshot")
    try:
        out = snapshot(args.db, args.out, timeout=args.timeout)
    except SnapshotError as exc:
        raise UserError(str(exc)) from exc
    print(out)
    return 0
