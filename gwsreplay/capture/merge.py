"""Many captures as one: the SQL that unites captures of several proxies, and ``gwsreplay merge``.

A site with thousands of agents runs several recording proxies; a report covers all of them.
Each capture numbers its rows from 1, keys sessions with its own random HMAC key and stamps
times with its own clock, so putting them side by side needs three things, all in SQL:

* **ids re-based**: source *i*'s ``exchanges.id`` (and every column pointing at one) is
  shifted past the largest id of the sources before it; same for ``bayeux_messages`` and
  ``websocket_frames``. Order within a source is kept.
* **sessions stitched**: a desktop moved to another proxy (load balancer, failover) keeps its
  CometD clientId, but the new proxy hashes its cookie with another key and may not know the
  user. A clientId seen by several sources ties their session keys: the later ones are
  renamed to the first attributed one and get its user name (:func:`stitch`).
* **clock offsets estimated and reported**: from the same Bayeux messages seen by two proxies
  (clientId, id, channel, direction), else from the server's ``Date`` headers (1-second
  resolution, averaged over every answer). They are reported and kept in ``meta``; times are
  shifted only with ``align_clocks`` (then source *i*'s times are moved onto source 0's clock).

:func:`union_sql` gives, per table, one query over every source; ``merge`` writes them into a
new capture (then indexes its operations), ``gwsreplay.analysis.sources`` reads them as views,
so analysis of ``[a, b]`` and of ``merge(a, b)`` see the same rows.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import NamedTuple

import duckdb

from gwsreplay.capture import opindex, schema
from gwsreplay.core.sqltext import sql_literal

#: columns holding an id of another table, per table: column -> the table the id belongs to
ID_COLUMNS: dict[str, dict[str, str]] = {
    "exchanges": {"id": "exchanges"},
    "bayeux_messages": {"id": "bayeux_messages", "exchange_id": "exchanges"},
    "websocket_frames": {"id": "websocket_frames", "exchange_id": "exchanges"},
    "websocket_connections": {"exchange_id": "exchanges"},
    "capture_errors": {},
    "operations": {"exchange_id": "exchanges", "outcome_message_id": "bayeux_messages"},
}
ID_TABLES = ("exchanges", "bayeux_messages", "websocket_frames")
OPERATIONS_TIMES = ("requested_at", "acked_at", "completed_at")
MIN_SAMPLES = {"bayeux": 3, "date_header": 20}


class Source(NamedTuple):
    """One capture to unite: a name and, per table, a relation to read it from (SQL)."""
    name: str
    relations: dict[str, str]
    origin: str = ""


class SourcePlan(NamedTuple):
    """How a source enters the union: id bases and its clock against source 0."""
    name: str
    origin: str
    bases: dict[str, int]
    rows: dict[str, int]
    offset_ms: float | None
    clock_method: str
    clock_samples: int


class MergeReport(NamedTuple):
    out: Path
    sources: list[SourcePlan]
    stitched_sessions: int
    align_clocks: bool
    counts: dict[str, int]
    seconds: float


def empty_relation(table: str) -> str:
    """A relation with ``table``'s columns and no rows (a source without that table)."""
    cols = ", ".join(f"NULL::{typ} AS {name}" for name, typ in schema.TABLES[table])
    return f"(SELECT {cols} LIMIT 0)"


def attached_source(con: duckdb.DuckDBPyConnection, path: str | Path, alias: str) -> Source:
    """Attach a capture file read-only as ``alias`` and describe it as a Source."""
    con.execute(f"ATTACH {sql_literal(Path(path))} AS {alias} (READ_ONLY)")
    have = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = ? "
                                      "UNION SELECT view_name FROM duckdb_views() WHERE database_name = ?",
                                      [alias, alias]).fetchall()}
    rel = {t: f"{alias}.main.{t}" for t in [*schema.TABLES, "operations"] if t in have}
    return Source(Path(path).stem, rel, str(path))


def _rel(src: Source, table: str) -> str:
    return src.relations.get(table) or empty_relation(table)


def _count(con: duckdb.DuckDBPyConnection, rel: str, expr: str = "count(*)") -> int:
    return int(con.execute(f"SELECT {expr} FROM {rel}").fetchone()[0] or 0)


# ------------------------------------------------------------------------------ clocks

def _bayeux_offset(con: duckdb.DuckDBPyConnection, a: Source, b: Source) -> tuple[float | None, int]:
    """Median of ts_b - ts_a over Bayeux messages both captures hold (ms), and how many."""
    key = "client_id, msg_id, channel, direction"
    sql = f"""
        WITH a AS (SELECT {key}, min(ts) AS ts FROM {_rel(a, 'bayeux_messages')}
                   WHERE client_id IS NOT NULL AND msg_id IS NOT NULL GROUP BY ALL HAVING count(*) = 1),
             b AS (SELECT {key}, min(ts) AS ts FROM {_rel(b, 'bayeux_messages')}
                   WHERE client_id IS NOT NULL AND msg_id IS NOT NULL GROUP BY ALL HAVING count(*) = 1)
        SELECT median(epoch_us(b.ts) - epoch_us(a.ts)) / 1000.0, count(*)
        FROM a JOIN b USING (client_id, msg_id, channel, direction)"""
    off, n = con.execute(sql).fetchone()
    return off, int(n)


def _date_skew(con: duckdb.DuckDBPyConnection, src: Source) -> tuple[float | None, int]:
    """Mean of (response seen) - (server Date header) in ms over a source's answers, and how many."""
    sql = f"""
        SELECT avg(epoch_us(ts_response_start) - epoch_us(d)) / 1000.0, count(d) FROM (
            SELECT ts_response_start,
                   try_strptime(list_filter(json_transform(response_headers, '[["VARCHAR"]]'),
                                            lambda h: lower(h[1]) = 'date')[1][2],
                                '%a, %d %b %Y %H:%M:%S GMT') AS d
            FROM {_rel(src, 'exchanges')} WHERE ts_response_start IS NOT NULL AND response_headers IS NOT NULL)
        WHERE d IS NOT NULL"""
    skew, n = con.execute(sql).fetchone()
    return skew, int(n)


def clock_offsets(con: duckdb.DuckDBPyConnection, sources: list[Source]) -> list[tuple[float | None, str, int]]:
    """Per source: (offset of its clock from source 0's in ms, method, samples)."""
    out: list[tuple[float | None, str, int]] = [(0.0, "reference", 0)]
    skew0 = None
    for src in sources[1:]:
        off, n = _bayeux_offset(con, sources[0], src)
        if off is not None and n >= MIN_SAMPLES["bayeux"]:
            out.append((round(off, 3), "bayeux", n))
            continue
        if skew0 is None:
            skew0 = _date_skew(con, sources[0])
        skew, m = _date_skew(con, src)
        if skew is not None and skew0[0] is not None and min(m, skew0[1]) >= MIN_SAMPLES["date_header"]:
            out.append((round(skew - skew0[0], 3), "date_header", min(m, skew0[1])))
        else:
            out.append((None, "none", 0))
    return out


def plan(con: duckdb.DuckDBPyConnection, sources: list[Source]) -> list[SourcePlan]:
    """Id bases (cumulative largest ids) and clock offsets of each source."""
    offsets = clock_offsets(con, sources)
    bases = dict.fromkeys(ID_TABLES, 0)
    plans = []
    for src, (off, method, n) in zip(sources, offsets):
        rows = {t: _count(con, _rel(src, t)) for t in ID_TABLES}
        plans.append(SourcePlan(src.name, src.origin, dict(bases), rows, off, method, n))
        for t in ID_TABLES:
            bases[t] += _count(con, _rel(src, t), "coalesce(max(id), 0)")
    return plans


# ------------------------------------------------------------------------------ sessions

def stitch(con: duckdb.DuckDBPyConnection, sources: list[Source]) -> int:
    """Create TEMP tables ``_stitch_keys`` (src, session_key -> to_key, to_user) and
    ``_stitch_clients`` (src, client_id -> to_key, to_user) from clientIds several sources saw;
    returns how many session keys were renamed."""
    cids = " UNION ALL ".join(
        f"SELECT {i} AS src, client_id, session_key, user_name, min(ts) AS first_ts "
        f"FROM {_rel(s, 'bayeux_messages')} WHERE client_id IS NOT NULL GROUP BY ALL"
        for i, s in enumerate(sources))
    con.execute(f"CREATE OR REPLACE TEMP TABLE _cids AS {cids}")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _canon AS
        SELECT client_id,
               arg_min(session_key, (user_name IS NULL, first_ts, src)) AS to_key,
               arg_min(user_name, (user_name IS NULL, first_ts, src)) AS to_user
        FROM _cids
        WHERE session_key IS NOT NULL
          AND client_id IN (SELECT client_id FROM _cids GROUP BY client_id HAVING count(DISTINCT src) > 1)
        GROUP BY client_id""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _stitch_keys AS
        SELECT c.src, c.session_key, min(k.to_key) AS to_key, min(k.to_user) AS to_user
        FROM _cids c JOIN _canon k USING (client_id)
        WHERE c.session_key IS NOT NULL AND c.session_key <> k.to_key
        GROUP BY c.src, c.session_key""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _stitch_clients AS
        SELECT DISTINCT c.src, c.client_id, k.to_key, k.to_user
        FROM _cids c JOIN _canon k USING (client_id)
        WHERE c.session_key IS NULL""")
    return con.execute("SELECT count(*) FROM _stitch_keys").fetchone()[0]


# ------------------------------------------------------------------------------ the union

def _shift(col: str, offset_ms: float | None, align: bool) -> str:
    if not align or not offset_ms:
        return col
    return f"{col} - to_microseconds({int(round(offset_ms * 1000))}::BIGINT)"


def source_sql(table: str, i: int, src: Source, p: SourcePlan, align: bool) -> str | None:
    """Source ``i``'s rows of ``table``, ids re-based, sessions stitched, times optionally shifted."""
    if table not in src.relations:
        return None if table == "operations" else f"SELECT * FROM {empty_relation(table)}"
    repl = [f"x.{c} + {p.bases[t]} AS {c}" for c, t in ID_COLUMNS[table].items() if p.bases[t]]
    joins = ""
    if table in ("exchanges", "bayeux_messages", "operations"):
        joins = (f" LEFT JOIN (FROM _stitch_keys WHERE src = {i}) sk ON sk.session_key = x.session_key")
        key, user = ["sk.to_key"], ["sk.to_user"]
        if table == "exchanges":
            joins += f" LEFT JOIN (FROM _stitch_keys WHERE src = {i}) nk ON nk.session_key = x.new_session_key"
            repl.append("coalesce(nk.to_key, x.new_session_key) AS new_session_key")
            user.append("nk.to_user")
        if table == "bayeux_messages":
            joins += (f" LEFT JOIN (FROM _stitch_clients WHERE src = {i}) ck "
                      f"ON ck.client_id = x.client_id AND x.session_key IS NULL")
            key.append("ck.to_key")
            user.append("ck.to_user")
        repl.append(f"coalesce({', '.join(key)}, x.session_key) AS session_key")
        repl.append(f"coalesce(x.user_name, {', '.join(user)}) AS user_name")
    if align and p.offset_ms:
        times = ([c for c, typ in schema.TABLES[table] if typ == "TIMESTAMP"] if table != "operations"
                 else list(OPERATIONS_TIMES))
        repl += [f"{_shift('x.' + c, p.offset_ms, True)} AS {c}" for c in times]
    star = f"x.* REPLACE ({', '.join(repl)})" if repl else "x.*"
    return f"SELECT {star} FROM {src.relations[table]} x{joins}"


def union_sql(table: str, sources: list[Source], plans: list[SourcePlan], align: bool = False) -> str | None:
    """Every source's rows of ``table`` as one query (None: no source has an operations table).
    Needs the TEMP tables of :func:`stitch` on the same connection."""
    parts = [s for i, (src, p) in enumerate(zip(sources, plans))
             if (s := source_sql(table, i, src, p, align)) is not None]
    return " UNION ALL BY NAME ".join(f"({s})" for s in parts) if parts else None


def merged_from(plans: list[SourcePlan]) -> str:
    """meta.merged_from: the sources, their id bases and clocks (JSON)."""
    return json.dumps([{"name": p.name, "path": p.origin, "id_bases": p.bases, "rows": p.rows,
                        "clock_offset_ms": p.offset_ms, "clock_method": p.clock_method,
                        "clock_samples": p.clock_samples} for p in plans])


# ------------------------------------------------------------------------------ merge

def merge(out: str | Path, inputs: list[str | Path], *, align_clocks: bool = False) -> MergeReport:
    """Write the captures ``inputs`` into the new capture ``out`` as one (then index operations)."""
    t0 = time.perf_counter()
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} exists; merge writes a new capture")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp-merge")
    for p in (tmp, Path(str(tmp) + ".wal")):
        p.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        sources = [attached_source(con, p, f"src{i}") for i, p in enumerate(inputs)]
        plans = plan(con, sources)
        stitched = stitch(con, sources)
        schema.create_schema(con, {"source": "merge", "merged_from": merged_from(plans),
                                   "clocks_aligned": str(align_clocks).lower(),
                                   "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        con.execute("BEGIN TRANSACTION")
        for table in schema.TABLES:
            con.execute(f"INSERT INTO {table} BY NAME {union_sql(table, sources, plans, align_clocks)}")
        if "operation_expectations" in _tables(con, "src0"):
            con.execute("DELETE FROM operation_expectations")
            con.execute("INSERT INTO operation_expectations SELECT * FROM src0.main.operation_expectations")
            con.execute("DELETE FROM meta WHERE key IN ('correlation_window_ms', 'expectations_revision')")
            con.execute("INSERT INTO meta SELECT key, value FROM src0.main.meta "
                        "WHERE key IN ('correlation_window_ms', 'expectations_revision')")
        con.execute("COMMIT")
        for i in range(len(sources)):
            con.execute(f"DETACH src{i}")
        opindex.build(con)
        counts = {t: _count(con, t) for t in [*schema.TABLES, "operations"]}
        con.execute("CHECKPOINT")
    finally:
        con.close()
    tmp.rename(out)
    return MergeReport(out, plans, stitched, align_clocks, counts, time.perf_counter() - t0)


def _tables(con: duckdb.DuckDBPyConnection, catalog: str) -> set[str]:
    return {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = ?",
                                      [catalog]).fetchall()}
