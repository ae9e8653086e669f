"""Opening captures and small helpers shared by the analysis modules.

A capture is a DuckDB file written by gwsreplay.capture (schema in gwsreplay.capture/schema.py,
docs/schema.md). Analysis only reads: the file is opened read-only, so a notebook
can never damage a capture, and every function takes the connection and returns
a pandas DataFrame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import duckdb
import pandas as pd


class CaptureNotFound(FileNotFoundError):
    """The capture file does not exist (the CLI turns this into a one-line error)."""


def open_capture(path: str | Path, *, cache_operations: bool = True) -> duckdb.DuckDBPyConnection:
    """Open a capture read-only.

    DuckDB admits one writing process per file: a capture that is still being
    recorded cannot be opened at all (use ``gwsreplay snapshot`` first), which
    is reported as such rather than as a bare IOException.

    ``cache_operations``: evaluate the capture's ``operations`` view once into a
    connection-local TEMP table of the same name (which DuckDB resolves first).
    The view correlates every operation with the notifications that followed
    it; a notebook asks it a dozen questions, and should pay for that join once.
    """
    path = Path(path)
    if not path.is_file():
        raise CaptureNotFound(f"capture not found: {path}")
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise RuntimeError(
                f"{path} is locked by another process (still recording?); "
                "take a snapshot with `gwsreplay snapshot` and analyse that") from exc
        raise
    if cache_operations:
        cache_view(con, "operations")
    return con


def cache_view(con: duckdb.DuckDBPyConnection, view: str) -> bool:
    """Materialise a view of the capture into a TEMP table that shadows it (False if absent)."""
    catalog = con.execute("SELECT current_database()").fetchone()[0]
    exists = con.execute("SELECT count(*) FROM duckdb_views() WHERE database_name = ? AND view_name = ?",
                         [catalog, view]).fetchone()[0]
    if not exists:
        return False
    con.execute(f'CREATE OR REPLACE TEMP TABLE "{view}" AS SELECT * FROM "{catalog}".main."{view}"')
    return True


def resolve_capture_path(path: str | Path, base: str | Path | None = None) -> Path:
    """Resolve ``path`` against ``base`` (a notebook's directory) unless absolute.

    Notebooks default to ``../captures/demo.duckdb``, which must mean "next to the
    notebooks folder" whatever the kernel's working directory is.
    """
    p = Path(path).expanduser()
    if not p.is_absolute() and base is not None:
        p = Path(base) / p
    return p.resolve()


def query(con: duckdb.DuckDBPyConnection, sql: str, params: Iterable[Any] | dict | None = None) -> pd.DataFrame:
    """Run SQL and return a DataFrame."""
    return con.execute(sql, params or []).df()


def has_table(con: duckdb.DuckDBPyConnection, name: str, catalog: str | None = None) -> bool:
    """True when a table or view ``name`` exists (in ``catalog`` if given)."""
    sql = "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?"
    views = "SELECT count(*) FROM duckdb_views() WHERE view_name = ?"
    params: list[Any] = [name]
    if catalog:
        sql += " AND database_name = ?"
        views += " AND database_name = ?"
        params.append(catalog)
    return bool(con.execute(sql, params).fetchone()[0] or con.execute(views, params).fetchone()[0])


def columns(con: duckdb.DuckDBPyConnection, name: str, catalog: str | None = None) -> list[str]:
    """Column names of a table or view (empty when it does not exist)."""
    target = f"{catalog}.{name}" if catalog else name
    try:
        return [r[0] for r in con.execute(f"DESCRIBE {target}").fetchall()]
    except duckdb.Error:
        return []


def capture_info(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """One row describing the capture: schema version, time span, sizes, agents."""
    meta = {}
    if has_table(con, "meta"):
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    row = con.execute("""
        SELECT (SELECT count(*) FROM exchanges) AS exchanges,
               (SELECT count(*) FROM bayeux_messages) AS bayeux_messages,
               (SELECT count(DISTINCT user_name) FROM exchanges WHERE user_name IS NOT NULL) AS agents,
               least((SELECT min(ts_request_start) FROM exchanges), (SELECT min(ts) FROM bayeux_messages)) AS started_at,
               greatest((SELECT max(coalesce(ts_response_end, ts_request_start)) FROM exchanges),
                        (SELECT max(ts) FROM bayeux_messages)) AS ended_at
    """).df()
    row.insert(0, "schema_version", meta.get("schema_version"))
    row["duration_s"] = (row["ended_at"] - row["started_at"]).dt.total_seconds()
    return row


def sql_list(values: Iterable[str]) -> str:
    """A SQL list literal of strings, for constants that come from our own code."""
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")"
