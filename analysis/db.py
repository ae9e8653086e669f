"""Opening captures and small helpers shared by the analysis modules.

A capture is a DuckDB file written by gwsreplay.capture (schema in gwsreplay.capture/schema.py,
docs/schema.md). Analysis only reads: the file is opened read-only, so a notebook
can never damage a capture, and every function takes the connection and returns
a pandas DataFrame.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

import duckdb
import pandas as pd
from gwsreplay.analysis import sources

from gwsreplay.capture import opindex
from gwsreplay.core import sqltext
from gwsreplay.core.sqltext import sql_literal

#: The time column of each relation a Scope filters (its user column is ``user_name``).
TIME_COLUMNS = {"exchanges": "ts_request_start", "bayeux_messages": "ts", "operations": "requested_at",
                "notifications": "ts"}


@dataclass(frozen=True)
class Scope:
    """The part of a capture to analyse: a time window ``[time_from, time_to)`` and one agent.

    ``None`` means unbounded / every agent, so ``Scope()`` is the whole capture. Times are
    the capture's (naive UTC). This is the one place that turns the notebooks' TIME_FROM,
    TIME_TO and AGENT parameters into SQL: every analysis function taking ``scope=`` calls
    :meth:`where` or :func:`scoped`.
    """
    time_from: datetime | None = None
    time_to: datetime | None = None
    agent: str | None = None

    @classmethod
    def of(cls, time_from: Any = None, time_to: Any = None, agent: str | None = None) -> "Scope":
        """From parameters as people write them: ``"2024-05-06 10:42"``, a datetime, or None."""
        def ts(v: Any) -> datetime | None:
            if v is None or (isinstance(v, str) and not v.strip()):
                return None
            t = pd.Timestamp(v)
            if t.tzinfo is not None:                    # the capture's timestamps are naive UTC
                t = t.tz_convert("UTC").tz_localize(None)
            return t.to_pydatetime()
        scope = cls(ts(time_from), ts(time_to), agent or None)
        if scope.time_from and scope.time_to and scope.time_from >= scope.time_to:
            raise ValueError(f"empty time window: {scope.time_from} is not before {scope.time_to}")
        return scope

    @property
    def whole(self) -> bool:
        return self.time_from is None and self.time_to is None and self.agent is None

    def where(self, ts: str, user: str | None = "user_name") -> str:
        """A SQL predicate over the time column ``ts`` and the user column ``user`` ("TRUE" for the
        whole capture). Values are literals (escaped), so it composes with any parameters."""
        clauses = []
        if self.time_from is not None:
            clauses.append(f"{ts} >= {timestamp_literal(self.time_from)}")
        if self.time_to is not None:
            clauses.append(f"{ts} < {timestamp_literal(self.time_to)}")
        if self.agent is not None and user is not None:
            clauses.append(f"{user} = {literal(self.agent)}")
        return " AND ".join(clauses) or "TRUE"

    def describe(self) -> str:
        """"whole capture", or the window and agent in words (for titles and the report header)."""
        if self.whole:
            return "whole capture"
        parts = []
        if self.time_from or self.time_to:
            parts.append(f"from {self.time_from or 'the start'} to {self.time_to or 'the end'}")
        if self.agent:
            parts.append(f"agent {self.agent}")
        return ", ".join(parts)


WHOLE = Scope()


def scoped(relation: str, scope: Scope | None) -> str:
    """``relation`` itself, or a subquery of it restricted to ``scope`` under the same name, for
    ``FROM {scoped('exchanges', scope)}``. The time column comes from :data:`TIME_COLUMNS`
    (by the last part of a qualified name such as ``replay.main.operations``)."""
    if scope is None or scope.whole:
        return relation
    name = relation.rsplit(".", 1)[-1].strip('"')
    return f"(SELECT * FROM {relation} WHERE {scope.where(TIME_COLUMNS[name])}) AS {name}"


def timestamp_literal(t: datetime) -> str:
    """A SQL TIMESTAMP literal (microseconds kept)."""
    return f"TIMESTAMP '{t.isoformat(sep=' ')}'"


literal = sql_literal     # a SQL string literal (gwsreplay.core.sqltext, the one definition)


class CaptureNotFound(FileNotFoundError):
    """The capture file does not exist (the CLI turns this into a one-line error)."""


def open_capture(path: str | Path | list, *, cache_operations: bool = True) -> duckdb.DuckDBPyConnection:
    """Open a capture read-only.

    DuckDB admits one writing process per file: a capture that is still being
    recorded cannot be opened at all (use ``gwsreplay snapshot`` first), which
    is reported as such rather than as a bare IOException.

    ``cache_operations``: make sure ``operations`` is current. A capture keeps it as a
    table (schema_version 2, gwsreplay.capture.opindex); when the file has none or an
    out-of-date one (schema_version 1, a recorder killed before it closed, edited
    rules) it is computed once into a connection-local TEMP table of the same name
    (which DuckDB resolves first), with a one-line warning to run ``gwsreplay index``.

    ``path`` may also name several captures or a Parquet export directory (a list, or paths
    joined by ``os.pathsep``): they are read as one, through DuckDB (analysis/sources.py).
    """
    if sources.is_multiple(path):
        paths = sources.split(path)
        for p in paths:
            if not p.exists():
                raise CaptureNotFound(f"capture not found: {p}")
        return sources.open_sources(paths)
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
        opindex.ensure(con, str(path))
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
    if sources.is_multiple(path):                # several captures: each resolved, joined again
        return Path(sources.join(resolve_capture_path(p, base) for p in sources.split(path)))
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


def capture_info(con: duckdb.DuckDBPyConnection, scope: Scope | None = None) -> pd.DataFrame:
    """One row describing the capture (or the part ``scope`` selects): schema version, sizes,
    agents, sessions, time span."""
    meta = {}
    if has_table(con, "meta"):
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    ex, bm = scoped("exchanges", scope), scoped("bayeux_messages", scope)
    row = con.execute(f"""
        SELECT (SELECT count(*) FROM {ex}) AS exchanges,
               (SELECT count(*) FROM {bm}) AS bayeux_messages,
               (SELECT count(DISTINCT user_name) FROM (SELECT user_name FROM {ex} UNION ALL
                                                      SELECT user_name FROM {bm})) AS agents,
               (SELECT count(DISTINCT (user_name, k)) FROM (
                    SELECT user_name, coalesce(session_key, new_session_key) AS k FROM {ex}
                    UNION ALL SELECT user_name, session_key FROM {bm}) WHERE k IS NOT NULL) AS sessions,
               least((SELECT min(ts_request_start) FROM {ex}), (SELECT min(ts) FROM {bm})) AS started_at,
               greatest((SELECT max(coalesce(ts_response_end, ts_request_start)) FROM {ex}),
                        (SELECT max(ts) FROM {bm})) AS ended_at
    """).df()
    row.insert(0, "schema_version", meta.get("schema_version"))
    row["duration_s"] = (row["ended_at"] - row["started_at"]).dt.total_seconds()
    return row


def sql_list(values: Iterable[str]) -> str:
    """A parenthesised SQL list of string literals, for constants that come from our own code."""
    return f"({sqltext.sql_list(values)})"
