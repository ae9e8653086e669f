"""The ``operations`` table: the correlation of ``sql/operations_view.sql``, computed once.

Correlating every operation with the notifications that followed it is the one expensive
join of a capture (9.5 s of the 14 s analysis of a 10-million-message capture when it was a
view evaluated at query time). It is computed when a capture is finished instead: when the
writer closes (live recording and imports), on the copy a snapshot makes, at the end of a
merge, and by ``gwsreplay index`` (older files, edited rules). Analysis then reads a table.

The table is always rebuilt whole, from the rows present, so an operation whose outcome
arrived in a later flush than its request is right by construction. What it was built from
is kept in ``meta.operations_indexed`` (:data:`STATE_SQL`: row counts and last ids of
``exchanges`` and ``bayeux_messages``, a hash of the rules, the window and the correlation
SQL): :func:`is_fresh` compares it with the file, so a reader knows when the table is out of
date (a capture of a recorder that was SIGKILLed, rules edited, a newer correlation SQL) and
computes on the fly instead (:func:`compute_on_the_fly`).
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import NamedTuple

import duckdb

from gwsreplay.capture import schema

log = logging.getLogger(__name__)

META_KEY = "operations_indexed"

#: a fingerprint of the correlation SQL this code fills the table with
SQL_HASH = hashlib.sha1(schema.OPERATIONS_SQL.encode()).hexdigest()[:12]

STATE_SQL = f"""
SELECT concat_ws(':',
    (SELECT count(*) FROM exchanges), (SELECT coalesce(max(id), 0) FROM exchanges),
    (SELECT count(*) FROM bayeux_messages), (SELECT coalesce(max(id), 0) FROM bayeux_messages),
    (SELECT coalesce(hash(list(r ORDER BY r)), 0) FROM (
        SELECT concat_ws('|', operation_name, coalesce(resource_type, '*'), match_kind,
                         coalesce(expected_state, '*')) AS r FROM operation_expectations)),
    (SELECT coalesce(max(value), '') FROM meta WHERE key = 'correlation_window_ms'),
    '{SQL_HASH}')
"""


class IndexResult(NamedTuple):
    """What :func:`build` did: rows written and seconds spent."""
    rows: int
    seconds: float


def state(con: duckdb.DuckDBPyConnection) -> str:
    """The fingerprint of what ``operations`` must be computed from, for this file as it is now."""
    return con.execute(STATE_SQL).fetchone()[0]


def indexed_state(con: duckdb.DuckDBPyConnection) -> str | None:
    row = con.execute("SELECT max(value) FROM meta WHERE key = ?", [META_KEY]).fetchone()
    return row[0] if row else None


def is_table(con: duckdb.DuckDBPyConnection, catalog: str | None = None) -> bool:
    """True when ``operations`` is a table (schema_version 2) rather than the view of version 1."""
    catalog = catalog or con.execute("SELECT current_database()").fetchone()[0]
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'main' "
                            "AND table_name = 'operations'", [catalog]).fetchone()[0])


def is_fresh(con: duckdb.DuckDBPyConnection) -> bool:
    """True when ``operations`` is a table built from exactly the file's current rows and rules."""
    return is_table(con) and indexed_state(con) == state(con)


def build(con: duckdb.DuckDBPyConnection) -> IndexResult:
    """(Re)compute the ``operations`` table of a writable capture in one transaction.

    Creates or upgrades the schema first (a schema_version 1 file gets its table here)."""
    t = time.perf_counter()
    schema.create_schema(con)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("CREATE OR REPLACE TABLE operations AS SELECT * FROM operations_view ORDER BY exchange_id")
        con.execute("DELETE FROM meta WHERE key = ?", [META_KEY])
        con.execute("INSERT INTO meta VALUES (?, ?)", [META_KEY, state(con)])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    rows = con.execute("SELECT count(*) FROM operations").fetchone()[0]
    return IndexResult(rows, time.perf_counter() - t)


def build_file(path: str) -> IndexResult:
    """:func:`build` on a capture file (opened for writing, checkpointed, closed)."""
    con = duckdb.connect(str(path))
    try:
        result = build(con)
        con.execute("CHECKPOINT")
        return result
    finally:
        con.close()


def temp_view_sql() -> str:
    """This code's correlation as a connection-local view (works on a read-only file)."""
    head = "CREATE OR REPLACE VIEW operations_view AS"
    assert schema.OPERATIONS_SQL.count(head) == 1
    return schema.OPERATIONS_SQL.replace(head, "CREATE OR REPLACE TEMP VIEW operations_view AS")


def compute_on_the_fly(con: duckdb.DuckDBPyConnection, label: str = "the capture") -> None:
    """Shadow an absent or out-of-date ``operations`` with a connection-local TEMP table computed
    now by this code's correlation (read-only connections too), and say so in one line."""
    log.warning("%s: the operations table is missing or out of date, computed on the fly "
                "(run `gwsreplay index --db FILE` once to make analysis fast)", label)
    con.execute(temp_view_sql())
    con.execute("CREATE OR REPLACE TEMP TABLE operations AS SELECT * FROM temp.main.operations_view")


def ensure(con: duckdb.DuckDBPyConnection, label: str = "the capture") -> bool:
    """Make ``operations`` readable and current on ``con``: the table as it is when fresh (True),
    else computed on the fly (False)."""
    if is_fresh(con):
        return True
    compute_on_the_fly(con, label)
    return False


def build_quietly(con: duckdb.DuckDBPyConnection) -> IndexResult | None:
    """:func:`build` for the writer's close: a failure is logged, never raised (the capture itself
    is complete; `gwsreplay index` or the on-the-fly fallback make up for the table)."""
    try:
        return build(con)
    except duckdb.Error as exc:
        log.error("gws capture: could not index operations (%s); run `gwsreplay index`", exc)
        return None
