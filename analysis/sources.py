"""Several captures, or a Parquet export directory, read as one capture.

A site runs several recording proxies and a report covers days: the analysis takes a list of
capture files, a Parquet export directory (``gwsreplay export --partition day``: hive partitions
by day and capture, many captures side by side; or the flat one-file-per-table layout), or a
mix, and sees the usual relations (``exchanges``, ``bayeux_messages``, ``operations``,
``sessions``, ``notifications``, ``meta``...) as views of an in-memory DuckDB connection over
all of them. Ids are re-based, sessions stitched and clocks compared exactly as
``gwsreplay merge`` does (the SQL is gwsreplay.capture.merge's), so analysis of ``[a, b]`` and
of the merged file give the same answers. Each source's ``operations`` is its own table (or,
for a capture without an up-to-date one, computed on the fly for that source alone).

In a notebook parameter or ``gwsreplay report --db`` several captures are one string joined by
``os.pathsep`` (``a.duckdb:b.duckdb``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

import duckdb

from gwsreplay.capture import merge, opindex, schema, sqlfiles
from gwsreplay.core.sqltext import sql_literal

PARQUET_TABLES = [*schema.TABLES, "operations", "meta", "operation_expectations"]


def split(spec: Any) -> list[Path]:
    """The paths a capture argument names: one path, a list of them, or paths joined by os.pathsep."""
    if isinstance(spec, (list, tuple)):
        return [p for s in spec for p in split(s)]
    text = str(spec)
    if os.pathsep in text and not Path(text).exists():
        return [Path(s) for s in text.split(os.pathsep) if s]
    return [Path(text)]


def is_multiple(spec: Any) -> bool:
    """True when ``spec`` is more than one capture file, or a Parquet export directory."""
    paths = split(spec)
    return len(paths) != 1 or paths[0].is_dir()


def join(paths: Iterable[str | Path]) -> str:
    """Several captures as one notebook / command-line parameter."""
    return os.pathsep.join(str(p) for p in paths)


# --------------------------------------------------------------------------------- sources

def _glob_relation(pattern: Path, hive: bool) -> str:
    by_day = "day=" in str(pattern)
    types = "{'day': VARCHAR, 'capture': VARCHAR}" if by_day else "{'capture': VARCHAR}"
    opts = f", hive_partitioning = true, hive_types = {types}" if hive else ""
    excl = (" EXCLUDE (capture, day)" if by_day else " EXCLUDE (capture)") if hive else ""
    return f"(SELECT *{excl} FROM read_parquet({sql_literal(pattern)}{opts}))"


def parquet_sources(root: Path) -> list[merge.Source]:
    """The captures of an export directory (flat: one; by day: one per ``capture=NAME``)."""
    if (root / "exchanges.parquet").is_file():
        rel = {t: _glob_relation(root / f"{t}.parquet", False) for t in PARQUET_TABLES
               if (root / f"{t}.parquet").is_file()}
        return [merge.Source(root.name, rel, str(root))]
    names = sorted({p.name.split("=", 1)[1] for p in root.glob("*/capture=*")}
                   | {p.name.split("=", 1)[1] for p in root.glob("*/day=*/capture=*")})
    if not names:
        raise FileNotFoundError(f"{root}: not a Parquet export of captures (no exchanges)")
    out = []
    for name in names:
        rel = {}
        for t in PARQUET_TABLES:
            sub = f"capture={name}" if t in ("meta", "operation_expectations") else f"day=*/capture={name}"
            if list((root / t).glob(f"{sub}/*.parquet")):
                rel[t] = _glob_relation(root / t / sub / "*.parquet", True)
        out.append(merge.Source(name, rel, f"{root}/{name}"))
    return out


def _file_source(con: duckdb.DuckDBPyConnection, path: Path, alias: str) -> merge.Source:
    """Attach a capture; its operations are its table when current, else computed now for it alone."""
    src = merge.attached_source(con, path, alias)
    con.execute(f"USE {alias}")
    try:
        if not opindex.is_fresh(con):
            opindex.compute_on_the_fly(con, str(path))
            con.execute(f"CREATE TABLE memory.main._operations_{alias} AS SELECT * FROM temp.main.operations")
            con.execute("DROP TABLE temp.main.operations")
            src.relations["operations"] = f"memory.main._operations_{alias}"
    finally:
        con.execute("USE memory")
    return src


def open_sources(paths: list[Path], *, align_clocks: bool = False) -> duckdb.DuckDBPyConnection:
    """One in-memory connection over every capture in ``paths`` (files or export directories)."""
    con = duckdb.connect()
    sources: list[merge.Source] = []
    for p in paths:
        if p.is_dir():
            sources += parquet_sources(p)
        else:
            sources.append(_file_source(con, p, f"src{len(sources)}"))
    names = [s.name for s in sources]
    sources = [s._replace(name=f"{s.name}#{i}") if names.count(s.name) > 1 else s for i, s in enumerate(sources)]
    plans = merge.plan(con, sources)
    merge.stitch(con, sources)
    for table in schema.TABLES:
        con.execute(f"CREATE VIEW {table} AS {merge.union_sql(table, sources, plans, align_clocks)}")
    ops = merge.union_sql("operations", sources, plans, align_clocks)
    if ops is not None:
        con.execute(f"CREATE VIEW operations AS {ops}")
    con.execute("CREATE TABLE meta (key VARCHAR, value VARCHAR)")
    first_meta = dict(con.execute(f"SELECT key, value FROM {sources[0].relations['meta']}").fetchall()) \
        if "meta" in sources[0].relations else {}
    con.executemany("INSERT INTO meta VALUES (?, ?)", [
        ["schema_version", str(schema.SCHEMA_VERSION)], ["source", "sources"],
        ["merged_from", merge.merged_from(plans)], ["clocks_aligned", str(align_clocks).lower()],
        ["correlation_window_ms", first_meta.get("correlation_window_ms", "10000")]])
    if "operation_expectations" in sources[0].relations:
        con.execute(f"CREATE VIEW operation_expectations AS SELECT * FROM {sources[0].relations['operation_expectations']}")
    for stmt in sqlfiles.statements(schema.VIEWS_SQL):
        con.execute(stmt)
    return con


def source_plans(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """The sources of a connection from :func:`open_sources` (meta.merged_from), else []."""
    row = con.execute("SELECT max(value) FROM meta WHERE key = 'merged_from'").fetchone()
    return json.loads(row[0]) if row and row[0] else []
