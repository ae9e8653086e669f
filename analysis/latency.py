"""How long operations take: HTTP acknowledgement and completion latency.

GWS operations are asynchronous: ``{"statusCode":0}`` only means "sent to
T-Server" (P§1), and the effect arrives later over CometD. The capture's
``operations`` view ties every operation request to both moments:

* ``ack_latency_ms``        request start -> HTTP response start
* ``completion_latency_ms`` request start -> first notification showing the
  effect (or the ErrorMessage / Error notification that reports its failure)
* ``outcome``               completed | failed | error_message | http_error | no_notification

Percentiles are computed in DuckDB (``quantile_cont``, i.e. linear
interpolation, the same definition as numpy's default), never in Python loops.
Completion percentiles use only completed operations; failures and operations
that never completed are counted beside them rather than mixed in.
"""

from __future__ import annotations

from typing import Sequence

import duckdb
import pandas as pd

from gwsreplay.analysis.db import Scope, query, scoped, sql_list

#: Percentiles reported everywhere (p50, p90, p99); max is added separately.
PERCENTILES = (0.5, 0.9, 0.99)

FAILED_OUTCOMES = ("failed", "error_message", "http_error")
NEVER_COMPLETED = ("no_notification",)
_FAILED, _NEVER = sql_list(FAILED_OUTCOMES), sql_list(NEVER_COMPLETED)

_METRICS = {"ack": "ack_latency_ms", "completion": "completion_latency_ms"}

#: The channel an operation belongs to, from its URL's resource: ``voice`` (calls, devices,
#: /me/channels/voice), ``chat``, ``email``, ``workitem``, ``openmedia``, ``im``, ``workbin``,
#: the channel of /me/channels/{channel}, ``all channels`` for /api/v2/me (the session and
#: "set all channels" operations), else the resource type.
CHANNEL_SQL = ("CASE WHEN resource_type IN ('call', 'device') THEN 'voice' "
               "WHEN resource_type = 'channel' THEN coalesce(resource_id, 'all channels') "
               "WHEN resource_type = 'me' THEN 'all channels' "
               "WHEN resource_type = 'im-session' THEN 'im' "
               "ELSE coalesce(resource_type, 'other') END")
#: "chat Accept", "email Accept", "voice Answer": operationNames are shared between channels.
CHANNEL_OPERATION_SQL = f"({CHANNEL_SQL}) || ' ' || coalesce(operation_name, '?')"

# group name -> (SQL, output column)
_GROUPS = {"operation": ("operation_name", "operation_name"), "agent": ("user_name", "user_name"),
           "resource": ("resource_type", "resource_type"), "channel": (CHANNEL_SQL, "channel"),
           "channel_operation": (CHANNEL_OPERATION_SQL, "channel_operation")}


def channel_of(resource_type: str | None, resource_id: str | None = None) -> str:
    """CHANNEL_SQL in Python."""
    if resource_type in ("call", "device"):
        return "voice"
    if resource_type == "channel":
        return resource_id or "all channels"
    if resource_type == "me":
        return "all channels"
    if resource_type == "im-session":
        return "im"
    return resource_type or "other"


def _metric_column(metric: str) -> str:
    try:
        return _METRICS[metric]
    except KeyError:
        raise ValueError(f"metric must be one of {sorted(_METRICS)}, not {metric!r}") from None


def _groups(by: str | Sequence[str] | None) -> list[tuple[str, str]]:
    """(SQL, output column) of each group: a name of ``_GROUPS`` or an operations column."""
    if by is None:
        return []
    if isinstance(by, str):
        by = [by]
    return [_GROUPS.get(b, (b, b)) for b in by]


def _group_columns(by: str | Sequence[str] | None) -> list[str]:
    return [alias for _, alias in _groups(by)]


def _group_select(by: str | Sequence[str] | None, lead: str = "", trail: str = ", ") -> str:
    return "".join(f"{lead}{expr} AS {alias}{trail}" if expr != alias else f"{lead}{alias}{trail}"
                   for expr, alias in _groups(by))


def _where(user: str | None, operation: str | None) -> tuple[str, list]:
    clauses, params = ["TRUE"], []
    if user is not None:
        clauses.append("user_name = ?")
        params.append(user)
    if operation is not None:
        clauses.append("operation_name = ?")
        params.append(operation)
    return " AND ".join(clauses), params


def operation_latencies(con: duckdb.DuckDBPyConnection, *, user: str | None = None,
                        operation: str | None = None, relation: str = "operations",
                        scope: Scope | None = None) -> pd.DataFrame:
    """One row per operation request, in request order: when, who, what, both latencies, outcome."""
    where, params = _where(user, operation)
    return query(con, f"""
        SELECT exchange_id, requested_at, user_name, {CHANNEL_SQL} AS channel, operation_name,
               {CHANNEL_OPERATION_SQL} AS channel_operation, resource_type, resource_id,
               status, status_code, status_message, outcome, outcome_detail,
               ack_latency_ms, completion_latency_ms
        FROM {scoped(relation, scope)}
        WHERE {where}
        ORDER BY requested_at, exchange_id
    """, params)


def _stats_sql(col: str, *, only_completed: bool) -> str:
    """Aggregates of one latency column; completion stats look at completed operations only."""
    flt = f" FILTER (WHERE outcome = 'completed' AND {col} IS NOT NULL)" if only_completed \
        else f" FILTER (WHERE {col} IS NOT NULL)"
    q = f"quantile_cont({col}, {list(PERCENTILES)}){flt}"
    return (f"count({col}){flt} AS n, "
            f"({q})[1] AS p50, ({q})[2] AS p90, ({q})[3] AS p99, "
            f"max({col}){flt} AS max, avg({col}){flt} AS mean")


def latency_stats(con: duckdb.DuckDBPyConnection, by: str | Sequence[str] | None = "operation", *,
                  metric: str = "completion", user: str | None = None,
                  relation: str = "operations", scope: Scope | None = None) -> pd.DataFrame:
    """Percentiles (p50, p90, p99), max and mean of one latency, per group.

    ``by`` is "operation", "agent", "resource", "channel" (voice, chat, email, ...),
    "channel_operation" ("chat Accept": operationNames are shared between channels),
    or any operations column, or a list of them, or None for one overall row. Every
    row also counts the requests, the failed ones and the ones that never completed.
    """
    col = _metric_column(metric)
    groups = _group_columns(by)
    where, params = _where(user, None)
    select_groups = _group_select(by)
    group_by = f"GROUP BY {', '.join(groups)}" if groups else ""
    order = ", ".join(groups) if groups else "1"
    return query(con, f"""
        SELECT {select_groups}
               count(*) AS requests,
               {_stats_sql(col, only_completed=(metric == 'completion'))},
               count(*) FILTER (WHERE outcome IN {_FAILED}) AS failed,
               count(*) FILTER (WHERE outcome IN {_NEVER}) AS never_completed
        FROM {scoped(relation, scope)}
        WHERE {where}
        {group_by}
        ORDER BY {order}
    """, params)


def latency_by_operation(con: duckdb.DuckDBPyConnection, metric: str = "completion", **kw) -> pd.DataFrame:
    """Percentiles per operationName."""
    return latency_stats(con, "operation", metric=metric, **kw)


def latency_by_agent(con: duckdb.DuckDBPyConnection, metric: str = "completion", **kw) -> pd.DataFrame:
    """Percentiles per agent (user name)."""
    return latency_stats(con, "agent", metric=metric, **kw)


def latency_by_channel(con: duckdb.DuckDBPyConnection, metric: str = "completion", **kw) -> pd.DataFrame:
    """Percentiles per channel (voice, chat, email, workitem, openmedia, im, workbin, ...)."""
    return latency_stats(con, "channel", metric=metric, **kw)


def latency_table(con: duckdb.DuckDBPyConnection, by: str | Sequence[str] = "operation",
                  relation: str = "operations", scope: Scope | None = None) -> pd.DataFrame:
    """Ack and completion percentiles side by side: the table a person reads first."""
    ack = latency_stats(con, by, metric="ack", relation=relation, scope=scope)
    done = latency_stats(con, by, metric="completion", relation=relation, scope=scope)
    keys = _group_columns(by) or []
    stat_cols = ["p50", "p90", "p99", "max", "mean"]
    ack = ack.rename(columns={c: f"ack_{c}" for c in stat_cols}).drop(columns=["n"])
    done = done.rename(columns={c: f"completion_{c}" for c in stat_cols}).rename(columns={"n": "completed"})
    done = done.drop(columns=["requests", "failed", "never_completed"])
    out = ack.merge(done, on=keys) if keys else pd.concat([ack, done], axis=1)
    first = keys + ["requests", "completed", "failed", "never_completed"]
    return out[first + [c for c in out.columns if c not in first]]


def latency_over_time(con: duckdb.DuckDBPyConnection, bucket_seconds: float = 60, *,
                      by: str | Sequence[str] | None = "operation", metric: str = "completion",
                      relation: str = "operations", scope: Scope | None = None) -> pd.DataFrame:
    """Percentiles per time bucket (and group): is the system getting slower?"""
    col = _metric_column(metric)
    select_groups = _group_select(by, lead=", ", trail="")
    bucket_us = int(round(bucket_seconds * 1_000_000))
    return query(con, f"""
        SELECT time_bucket(to_microseconds({bucket_us}), requested_at) AS bucket{select_groups},
               count(*) AS requests,
               {_stats_sql(col, only_completed=(metric == 'completion'))},
               count(*) FILTER (WHERE outcome IN {_FAILED}) AS failed,
               count(*) FILTER (WHERE outcome IN {_NEVER}) AS never_completed
        FROM {scoped(relation, scope)}
        GROUP BY ALL
        ORDER BY ALL
    """)


def failed_operations(con: duckdb.DuckDBPyConnection, relation: str = "operations",
                      scope: Scope | None = None) -> pd.DataFrame:
    """Operations that failed: HTTP error or statusCode != 0, ErrorMessage, or an Error notification."""
    return query(con, f"""
        SELECT requested_at, user_name, {CHANNEL_SQL} AS channel, operation_name, resource_type, resource_id,
               outcome,
               status, status_code, status_message, error, outcome_detail,
               ack_latency_ms, completion_latency_ms
        FROM {scoped(relation, scope)}
        WHERE outcome IN {_FAILED}
        ORDER BY requested_at
    """)


def never_completed(con: duckdb.DuckDBPyConnection, relation: str = "operations",
                    scope: Scope | None = None) -> pd.DataFrame:
    """Operations acknowledged but never followed by a notification showing their effect."""
    return query(con, f"""
        SELECT requested_at, user_name, {CHANNEL_SQL} AS channel, operation_name, resource_type, resource_id,
               status, status_code, ack_latency_ms, match_kind, expected_state
        FROM {scoped(relation, scope)}
        WHERE outcome IN {_NEVER}
        ORDER BY requested_at
    """)


def outcome_counts(con: duckdb.DuckDBPyConnection, relation: str = "operations",
                   by: str | Sequence[str] = "operation", scope: Scope | None = None) -> pd.DataFrame:
    """Requests per operation (or ``by`` as in latency_stats) and outcome (long form, for stacked bars)."""
    return query(con, f"""
        SELECT {_group_select(by)}outcome, count(*) AS requests
        FROM {scoped(relation, scope)} GROUP BY ALL ORDER BY ALL
    """)


def auto_bucket_seconds(con: duckdb.DuckDBPyConnection, buckets: int = 40, relation: str = "operations",
                        scope: Scope | None = None) -> float:
    """A round bucket width giving about ``buckets`` points over the capture's span."""
    span = con.execute("SELECT epoch(max(requested_at)) - epoch(min(requested_at)) "
                       f"FROM {scoped(relation, scope)}").fetchone()[0]
    if not span:
        return 60.0
    for width in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400):
        if span / width <= buckets:
            return float(width)
    return 86400.0
