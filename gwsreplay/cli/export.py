"""`gwsreplay export --db X --parquet DIR`: every table and view as Parquet."""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb

from gwsreplay.capture.export import export_parquet
from gwsreplay.core.errors import UserError


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("export", help="export a capture's tables and views as Parquet",
                              description="Write each table and view of a capture to DIR/<name>.parquet.")
    p.add_argument("--db", required=True)
    p.add_argument("--parquet", required=True, metavar="DIR")
    return p


def run(args) -> int:
    if not Path(args.db).exists():
        raise UserError(f"no such capture: {args.db}")
    try:
        counts = export_parquet(args.db, args.parquet)
    except duckdb.Error as exc:
        if "lock" in str(exc).lower():
            raise UserError(f"{args.db} is being recorded; run `gwsreplay snapshot --db {args.db}` "
                            f"and export the snapshot") from exc
        raise UserError(str(exc)) from exc
    for name, n in counts.items():
        print(f"{name}: {n} rows")
    return 0
