"""A replay run appended to a replay output file (the capture schema plus a run id).

Both drivers (asyncio: gwsreplay.drivers.output; gevent: gwsreplay.load.output)
write a run's traffic to a temporary capture file with the proxy's own writer and
merge it here: every table gets a `run_id` column (ids shifted past what the file
holds), `replay_runs` describes the run and `divergences` holds its report. A
load run merges one part file per Locust worker under one run id.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from gwsreplay.capture import opindex, schema
from gwsreplay.core.sqltext import sql_literal

RUNS = [("run_id", "VARCHAR"), ("capture", "VARCHAR"), ("target", "VARCHAR"), ("started_at", "TIMESTAMP"),
        ("ended_at", "TIMESTAMP"), ("speed", "VARCHAR"), ("sessions", "INTEGER"), ("agents", "INTEGER"),
        ("divergences", "INTEGER"), ("options", "JSON")]
DIVERGENCES = [("run_id", "VARCHAR"), ("copy", "INTEGER"), ("session", "VARCHAR"), ("live_user", "VARCHAR"),
               ("step", "INTEGER"), ("label", "VARCHAR"), ("kind", "VARCHAR"), ("detail", "VARCHAR"),
               ("recorded", "JSON"), ("live", "JSON")]


def merge_run(con: duckdb.DuckDBPyConnection, tmp: Path, run_id: str, run: dict, divergences: list[dict]) -> None:
    """Append one run: its traffic file, its run row and its divergences."""
    merge_tables(con, tmp, run_id)
    add_run(con, run_id, run, divergences)


def merge_tables(con: duckdb.DuckDBPyConnection, tmp: Path, run_id: str) -> None:
    """Append the capture tables of one traffic file (a run, or one worker's part of it) under `run_id`."""
    schema.create_schema(con, {"source": "replay"})
    for table in schema.TABLES:
        con.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS run_id VARCHAR")
    con.execute(_ddl("replay_runs", RUNS))
    con.execute(_ddl("divergences", DIVERGENCES))
    offsets = {t: con.execute(f"SELECT coalesce(max(id), 0) FROM {t}").fetchone()[0]
               for t in ("exchanges", "bayeux_messages", "websocket_frames")}
    ex = offsets["exchanges"]
    shifted = {
        "exchanges": f"id + {ex} AS id",
        "bayeux_messages": f"id + {offsets['bayeux_messages']} AS id, exchange_id + {ex} AS exchange_id",
        "websocket_frames": f"id + {offsets['websocket_frames']} AS id, exchange_id + {ex} AS exchange_id",
        "websocket_connections": f"exchange_id + {ex} AS exchange_id",
    }
    con.execute(f"ATTACH {sql_literal(str(tmp))} AS replay_tmp (READ_ONLY)")
    try:
        _add_missing_columns(con)
        con.execute("BEGIN TRANSACTION")
        for table in schema.TABLES:
            replace = f" REPLACE ({shifted[table]})" if table in shifted else ""
            con.execute(f"INSERT INTO {table} BY NAME SELECT *{replace}, ? AS run_id FROM replay_tmp.{table}",
                        [run_id])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.execute("DETACH replay_tmp")
    opindex.build(con)                   # the operations table over every run merged so far


def add_run(con: duckdb.DuckDBPyConnection, run_id: str, run: dict, divergences: list[dict]) -> None:
    """The run's row in `replay_runs` and its divergences (after its traffic: merge_tables made the tables)."""
    con.execute(_ddl("replay_runs", RUNS))
    con.execute(_ddl("divergences", DIVERGENCES))
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("INSERT INTO replay_runs VALUES (?, ?, ?, make_timestamp(?), make_timestamp(?), ?, ?, ?, ?, ?)", [
            run_id, run.get("capture"), run.get("target"), int(run["started_at"] * 1e6), int(run["ended_at"] * 1e6),
            str(run.get("speed")), run.get("sessions"), run.get("agents"), len(divergences),
            json.dumps(run.get("options") or {})])
        if divergences:
            con.executemany("INSERT INTO divergences VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [[
                run_id, d.get("copy"), d.get("session"), d.get("live_user"), d.get("step"), d.get("label"),
                d.get("kind"), d.get("detail"), json.dumps(d.get("recorded")), json.dumps(d.get("live"))]
                for d in divergences])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _add_missing_columns(con: duckdb.DuckDBPyConnection) -> None:
    """An output file written by an older gwsreplay lacks newer capture columns: add them."""
    for table in schema.TABLES:
        have = {r[0] for r in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() "
            "AND table_name = ?", [table]).fetchall()}
        for name, typ in con.execute(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = 'replay_tmp' "
                "AND table_name = ? ORDER BY column_index", [table]).fetchall():
            if name not in have:
                con.execute(f'ALTER TABLE {table} ADD COLUMN "{name}" {typ}')


def _ddl(name: str, columns: list[tuple[str, str]]) -> str:
    return f"CREATE TABLE IF NOT EXISTS {name} ({', '.join(f'{c} {t}' for c, t in columns)})"



