"""Export a capture's tables and views as Parquet, for tools that do not read DuckDB and for
weeks of captures from several proxies read as one (``gwsreplay.analysis.sources``).

Two layouts:

* flat: ``DIR/<name>.parquet``, one file per table and view;
* by day (``partition="day"``): hive partitions ``DIR/<table>/day=YYYY-MM-DD/capture=NAME/*.parquet``
  (``meta`` and ``operation_expectations`` under ``DIR/<table>/capture=NAME/``). Several captures
  export into the same DIR side by side (each under its own ``capture=NAME``; exporting a capture
  again replaces its files), and ``read_parquet(..., hive_partitioning = true)`` prunes by day.
  ``sessions`` is not written: it is a view the reader recomputes over every capture.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb

from gwsreplay.capture import opindex
from gwsreplay.core.sqltext import sql_literal

EXPORTED = ["exchanges", "bayeux_messages", "websocket_frames", "websocket_connections", "capture_errors",
            "meta", "operation_expectations", "sessions", "operations"]

#: the time column each table is partitioned by day on (tables without one: by capture only)
DAY_COLUMNS = {"exchanges": "ts_request_start", "bayeux_messages": "ts", "websocket_frames": "ts",
               "websocket_connections": "ts_start", "capture_errors": "ts", "operations": "requested_at"}
BY_CAPTURE = ("meta", "operation_expectations")
PARTITIONS = ("day",)


def export_parquet(db: str | Path, out_dir: str | Path, *, partition: str | None = None,
                   name: str | None = None) -> dict[str, int]:
    """Write each table and view of `db` under out_dir (layout above); rows written per name.

    ``operations`` is exported as it should be: computed on the fly when the file's table is
    missing or out of date."""
    if partition not in (None, *PARTITIONS):
        raise ValueError(f"unknown partition {partition!r} (known: {', '.join(PARTITIONS)})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(db), read_only=True)
    counts = {}
    try:
        have = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if "operations" in have or "operations_view" in have:
            opindex.ensure(con, str(db))
        for table in EXPORTED:
            if table not in have:
                continue
            if partition is None:
                con.execute(f"COPY (SELECT * FROM {table}) TO {sql_literal(out / f'{table}.parquet')} "
                            f"(FORMAT parquet)")
            elif table == "sessions":
                continue
            else:
                _copy_partitioned(con, table, out, name or Path(db).stem)
            counts[table] = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    finally:
        con.close()
    return counts


def _copy_partitioned(con: duckdb.DuckDBPyConnection, table: str, out: Path, capture: str) -> None:
    target = out / table
    for old in list(target.glob(f"capture={capture}")) + list(target.glob(f"day=*/capture={capture}")):
        shutil.rmtree(old)                  # this capture's earlier export, not the others'
    target.mkdir(parents=True, exist_ok=True)
    if table in DAY_COLUMNS:
        day = f"coalesce(strftime({DAY_COLUMNS[table]}, '%Y-%m-%d'), 'none')"
        select, by = f"SELECT *, {day} AS day, {sql_literal(capture)} AS capture FROM {table}", "day, capture"
    else:
        select, by = f"SELECT *, {sql_literal(capture)} AS capture FROM {table}", "capture"
    con.execute(f"COPY ({select}) TO {sql_literal(target)} (FORMAT parquet, PARTITION_BY ({by}), "
                f"OVERWRITE_OR_IGNORE, FILENAME_PATTERN 'part_{{i}}')")
