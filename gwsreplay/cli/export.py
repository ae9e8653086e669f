"""`gwsreplay export --db X --parquet DIR [--partition day]`: every table and view as Parquet."""

from __future__ import annotations

import argparse

import duckdb

from gwsreplay.capture.export import PARTITIONS, export_parquet
from gwsreplay.capture.guard import check_capture
from gwsreplay.core.errors import UserError


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("export", help="export a capture's tables and views as Parquet",
                              description="Write each table and view of a capture to DIR/<name>.parquet, or with "
                                          "--partition day to DIR/<table>/day=YYYY-MM-DD/capture=NAME/ (hive "
                                          "partitions: several captures export into one DIR, which analysis and "
                                          "`gwsreplay report` read as one).")
    p.add_argument("--db", required=True)
    p.add_argument("--parquet", required=True, metavar="DIR")
    p.add_argument("--partition", choices=PARTITIONS, help="hive-partition the tables by day (and capture)")
    p.add_argument("--name", help="the capture's name in a partitioned DIR (default: the file name without suffix)")
    return p


def run(args) -> int:
    check_capture(args.db, "read")
    if args.name and not args.partition:
        raise UserError("--name only applies with --partition")
    try:
        counts = export_parquet(args.db, args.parquet, partition=args.partition, name=args.name)
    except duckdb.Error as exc:
        if "lock" in str(exc).lower():
            raise UserError(f"{args.db} is being recorded; run `gwsreplay snapshot --db {args.db}` "
                            f"and export the snapshot") from exc
        raise UserError(str(exc)) from exc
    for name, n in counts.items():
        print(f"{name}: {n} rows")
    return 0
