"""Recorded against replayed: did the replay behave like the recording?

A replay (``gwsreplay replay --out captures/NAME-replay.duckdb``) is recorded in
the capture schema plus a run id. This module reads it in either of two forms,
and says so plainly when there is none:

* a separate replay file, attached to the recording's connection under an
  alias (:func:`attach_replay`), its runs told apart by a ``run_id`` column
  when it has one;
* replay runs inside the same file: rows whose ``run_id`` is set, beside the
  recording's rows where it is NULL.

Comparisons are per channel and operationName (``latency.CHANNEL_SQL``: chat Accept and
email Accept are different operations): latency distributions and percentiles,
request counts, outcomes and statusCodes. Where the replayer stored its own
divergence report (a ``divergences`` table), :func:`replayer_divergences` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from gwsreplay.analysis.db import columns, has_table, query
from gwsreplay.analysis.latency import CHANNEL_OPERATION_SQL, CHANNEL_SQL, PERCENTILES

_DIST_COLUMNS = ["source", "run_id", "user_name", "channel", "operation_name", "channel_operation", "requested_at",
                 "ack_latency_ms", "completion_latency_ms", "outcome", "status_code"]


@dataclass(frozen=True)
class Side:
    """Where one side of a comparison lives: a catalog (None = main) and an optional run id."""
    label: str
    catalog: str | None = None
    run_id: str | None = None
    #: recorded rows inside a file that also holds runs: those whose run_id IS NULL
    null_run: bool = False

    def rel(self, name: str) -> str:
        return f"{self.catalog}.{name}" if self.catalog else name


def attach_replay(con: duckdb.DuckDBPyConnection, path: str | Path, alias: str = "replay") -> str | None:
    """Attach a replay capture read-only under ``alias``; None (and nothing attached) if the file is missing."""
    path = Path(path)
    if not path.is_file():
        return None
    attached = {r[0] for r in con.execute("SELECT database_name FROM duckdb_databases()").fetchall()}
    if alias not in attached:
        con.execute(f"ATTACH '{str(path).replace(chr(39), chr(39) * 2)}' AS {alias} (READ_ONLY)")
    return alias


def _run_column(con: duckdb.DuckDBPyConnection, catalog: str | None) -> str | None:
    """How to get an operation's run id: 'o' (operations has run_id), 'e' (via exchanges), or None."""
    if "run_id" in columns(con, "operations", catalog):
        return "o"
    if "run_id" in columns(con, "exchanges", catalog):
        return "e"
    return None


def replay_runs(con: duckdb.DuckDBPyConnection, catalog: str | None = None) -> pd.DataFrame:
    """The replay runs a file holds (run_id, operations, first and last request, and the replayer's
    own description from its ``replay_runs`` table when there is one); empty if none."""
    how = _run_column(con, catalog)
    if how is None or not has_table(con, "operations", catalog):
        return pd.DataFrame(columns=["run_id", "operations", "started_at", "ended_at"])
    side = Side("replayed", catalog)
    runs = query(con, f"""
        SELECT run_id::VARCHAR AS run_id, count(*) AS operations, min(requested_at) AS started_at,
               max(requested_at) AS ended_at
        FROM ({_ops_sql(con, side)}) WHERE run_id IS NOT NULL
        GROUP BY run_id ORDER BY started_at
    """)
    if has_table(con, "replay_runs", catalog):
        described = query(con, f"SELECT * FROM {side.rel('replay_runs')}")
        described["run_id"] = described["run_id"].astype(str)
        runs = runs.merge(described, on="run_id", how="left", suffixes=("", "_run"))
    return runs


def _ops_sql(con: duckdb.DuckDBPyConnection, side: Side) -> str:
    how = _run_column(con, side.catalog)
    if how == "o":
        base = f"SELECT o.* FROM {side.rel('operations')} o"
    elif how == "e":
        base = (f"SELECT o.*, e.run_id FROM {side.rel('operations')} o "
                f"JOIN {side.rel('exchanges')} e ON e.id = o.exchange_id")
    else:
        base = f"SELECT o.*, NULL::VARCHAR AS run_id FROM {side.rel('operations')} o"
    if side.run_id is not None:
        base += f" WHERE run_id::VARCHAR = '{str(side.run_id).replace(chr(39), chr(39) * 2)}'"
    elif side.null_run and how is not None:
        base += " WHERE run_id IS NULL"
    # operationNames are shared between channels (chat Accept, email Accept): compare per channel
    return f"SELECT *, {CHANNEL_SQL} AS channel, {CHANNEL_OPERATION_SQL} AS channel_operation FROM ({base})"


def sides(con: duckdb.DuckDBPyConnection, replay_catalog: str | None = None,
          run_id: str | None = None) -> tuple[Side, Side] | None:
    """Pick the recorded and replayed sides available on ``con``; None when there is no replay.

    With ``replay_catalog`` the replay is that attached file (optionally one run);
    otherwise the main file's rows with a run id are the replay.
    """
    if replay_catalog is not None:
        if not has_table(con, "operations", replay_catalog):
            return None
        return Side("recorded"), Side("replayed", replay_catalog, run_id)
    if _run_column(con, None) is None or replay_runs(con).empty:
        return None
    run = run_id if run_id is not None else str(replay_runs(con)["run_id"].iloc[-1])
    return Side("recorded", null_run=True), Side("replayed", None, run)


def latency_distributions(con: duckdb.DuckDBPyConnection, replay_catalog: str | None = None,
                          run_id: str | None = None) -> pd.DataFrame:
    """Both sides' operations in one long table (``source`` = recorded | replayed), for plots."""
    pair = sides(con, replay_catalog, run_id)
    if pair is None:
        return pd.DataFrame(columns=_DIST_COLUMNS)
    parts = [f"""SELECT '{s.label}' AS source, run_id::VARCHAR AS run_id, user_name, channel, operation_name,
                        channel_operation, requested_at, ack_latency_ms, completion_latency_ms, outcome, status_code
                 FROM ({_ops_sql(con, s)})""" for s in pair]
    return query(con, " UNION ALL ".join(parts) + " ORDER BY source, requested_at")


def compare_latency(con: duckdb.DuckDBPyConnection, replay_catalog: str | None = None,
                    run_id: str | None = None, metric: str = "completion") -> pd.DataFrame:
    """Per channel and operation: recorded and replayed percentiles of one latency, and the change at p50/p99."""
    col = {"ack": "ack_latency_ms", "completion": "completion_latency_ms"}[metric]
    pair = sides(con, replay_catalog, run_id)
    cols = ["channel", "operation_name"] + [f"{s}_{k}" for s in ("recorded", "replayed")
                                 for k in ("n", "p50", "p90", "p99", "max")] + \
           ["p50_delta_ms", "p99_delta_ms", "p50_ratio"]
    if pair is None:
        return pd.DataFrame(columns=cols)
    flt = "outcome = 'completed'" if metric == "completion" else f"{col} IS NOT NULL"
    stats = []
    for s in pair:
        q = f"quantile_cont({col}, {list(PERCENTILES)})"
        stats.append(f"""
            SELECT channel, operation_name, count({col}) AS {s.label}_n, ({q})[1] AS {s.label}_p50,
                   ({q})[2] AS {s.label}_p90, ({q})[3] AS {s.label}_p99, max({col}) AS {s.label}_max
            FROM ({_ops_sql(con, s)}) WHERE {flt} GROUP BY channel, operation_name""")
    return query(con, f"""
        SELECT coalesce(r.channel, p.channel) AS channel,
               coalesce(r.operation_name, p.operation_name) AS operation_name,
               r.* EXCLUDE (channel, operation_name), p.* EXCLUDE (channel, operation_name),
               p.replayed_p50 - r.recorded_p50 AS p50_delta_ms,
               p.replayed_p99 - r.recorded_p99 AS p99_delta_ms,
               p.replayed_p50 / nullif(r.recorded_p50, 0) AS p50_ratio
        FROM ({stats[0]}) r FULL JOIN ({stats[1]}) p USING (channel, operation_name)
        ORDER BY channel, operation_name
    """)[cols]


def outcome_divergences(con: duckdb.DuckDBPyConnection, replay_catalog: str | None = None,
                        run_id: str | None = None) -> pd.DataFrame:
    """Per operation and outcome/statusCode: counts on both sides, rows where they differ first."""
    pair = sides(con, replay_catalog, run_id)
    cols = ["channel", "operation_name", "outcome", "status_code", "recorded", "replayed", "difference"]
    if pair is None:
        return pd.DataFrame(columns=cols)
    counts = [f"""SELECT channel, operation_name, outcome, status_code, count(*) AS {s.label}
                  FROM ({_ops_sql(con, s)}) GROUP BY ALL""" for s in pair]
    return query(con, f"""
        SELECT channel, operation_name, outcome, status_code,
               coalesce(r.recorded, 0) AS recorded, coalesce(p.replayed, 0) AS replayed,
               coalesce(p.replayed, 0) - coalesce(r.recorded, 0) AS difference
        FROM ({counts[0]}) r FULL JOIN ({counts[1]}) p USING (channel, operation_name, outcome, status_code)
        ORDER BY (difference <> 0) DESC, channel, operation_name, outcome
    """)[cols]


def replayer_divergences(con: duckdb.DuckDBPyConnection, replay_catalog: str | None = None) -> pd.DataFrame:
    """The replayer's own divergence table, when it wrote one (empty otherwise)."""
    for name in ("divergences", "replay_divergences"):
        if has_table(con, name, replay_catalog):
            rel = f"{replay_catalog}.{name}" if replay_catalog else name
            return query(con, f"SELECT * FROM {rel}")
    return pd.DataFrame()
