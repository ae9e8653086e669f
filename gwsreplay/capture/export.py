"""Export a capture's tables and views as Parquet files (one per table), for tools that do not read DuckDB."""

from __future__ import annotations

from pathlib import Path

import duckdb

from gwsreplay.core.sqltext import sql_literal

EXPORTED = ["exchanges", "bayeux_messages", "websocket_frames", "websocket_connections", "capture_errors",
            "meta", "operation_expectations", "sessions", "operations"]


def export_parquet(db: str | Path, out_dir: str | Path) -> dict[str, int]:
    """Write each table and view of `db` to out_dir/<name>.parquet; rows written per name."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(db), read_only=True)
    counts = {}
    try:
        have = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        for name in EXPORTED:
            if name not in have:
                continue
            con.execute(f"COPY (SELECT * FROM {name}) TO {sql_literal(out / f'{name}.parquet')} (FORMAT parquet)")
            counts[name] = con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]
    finally:
        con.close()
    return counts
