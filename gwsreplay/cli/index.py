"""`gwsreplay index --db FILE`: (re)compute a capture's operations table."""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb

from gwsreplay.capture import opindex, schema
from gwsreplay.core.errors import UserError


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "index", help="(re)compute a capture's operations table (older captures, edited rules)",
        description="Correlate every operation of a capture with its outcome and store the result in the "
                    "operations table (schema_version 2). A capture of schema_version 1 is upgraded. Run it "
                    "after editing operation_expectations, on captures of older versions, or on the file of "
                    "a recorder that was killed before it closed.")
    p.add_argument("--db", required=True, type=Path, help="capture file (not one being recorded: snapshot it)")
    p.add_argument("--check", action="store_true",
                   help="only say whether the operations table is up to date (exit 1 when it is not)")
    return p


def run(args) -> int:
    if not args.db.is_file():
        raise UserError(f"no such capture: {args.db}")
    try:
        con = duckdb.connect(str(args.db), read_only=args.check)
    except duckdb.Error as exc:
        if "lock" in str(exc).lower():
            raise UserError(f"{args.db} is being recorded (the recorder indexes it when it stops); "
                            f"`gwsreplay snapshot --db {args.db}` gives an indexed copy") from exc
        raise UserError(f"cannot open {args.db}: {exc}") from exc
    try:
        if schema.schema_version(con) is None:
            raise UserError(f"{args.db} is not a gwsreplay capture (no meta table)")
        if args.check:
            fresh = opindex.is_fresh(con)
            print(f"{args.db}: operations {'up to date' if fresh else 'missing or out of date'}")
            return 0 if fresh else 1
        result = opindex.build(con)
        con.execute("CHECKPOINT")
    except duckdb.Error as exc:
        raise UserError(f"{args.db}: {exc}") from exc
    finally:
        con.close()
    print(f"{args.db}: operations {result.rows:,} rows in {result.seconds:.2f} s "
          f"(schema_version {schema.SCHEMA_VERSION})")
    return 0
