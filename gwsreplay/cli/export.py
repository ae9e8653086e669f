"""`gwsreplay export --db X --parquet DIR`: every table and view as Parquet."""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb

from gwsreplay.core.errors import UserError

EXPORTED = ["exchanges", "bayeux_messages", "websocket_frames", "websocket_connections", "capture_errors",
            "meta", "operation_expectations", "sessions", "operations"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("export", help="export a capture's tables and views as Parquet",
                              description="Write each table and view of a capture to DIR/<name>.parquet.")
    p.add_argument("--db", required=True)
    p.add_argument("--parquet", required=True, metavar="DIR")
    return p


def export_parquet(db: str | Path, out_dir: str | Path) -> dict[str, int]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(db), read_only=True)
    counts = {}
    try:
        have = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        for name in EXPORTED:
            if name not in have:
                continue
            target = str(out / f"{name}.parquet").replace("'", "''")
            con.execute(f"COPY (SELECT * FROM {name}) TO '{target}' (FORMAT parquet)")
            counts[name] = con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]
    finally:
        con.close()
    return counts


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
