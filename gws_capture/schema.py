"""The capture file's schema: one place for the DDL and the matching Arrow schemas.

Every table is declared once as a list of ``(column, duckdb_type)``; the DDL and
the ``pyarrow`` schema the writer builds its batches with both come from it, so
``INSERT INTO t SELECT * FROM batch`` always lines up column by column.

Timestamps are ``TIMESTAMP`` (microseconds, naive, UTC). JSON columns hold JSON
text (DuckDB's ``JSON`` type): use ``col->>'$.key'`` or ``json_extract``.
See docs/schema.md for the meaning of every column.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

SCHEMA_VERSION = 1

# ----------------------------------------------------------------------------- tables

EXCHANGES: list[tuple[str, str]] = [
    ("id", "BIGINT"),
    ("flow_id", "VARCHAR"),
    ("source", "VARCHAR"),
    ("method", "VARCHAR"),
    ("scheme", "VARCHAR"),
    ("host", "VARCHAR"),
    ("port", "INTEGER"),
    ("url", "VARCHAR"),
    ("path", "VARCHAR"),
    ("query", "VARCHAR"),
    ("query_params", "JSON"),
    ("http_version", "VARCHAR"),
    ("status", "INTEGER"),
    ("reason", "VARCHAR"),
    ("request_headers", "JSON"),
    ("response_headers", "JSON"),
    ("request_content_type", "VARCHAR"),
    ("request_body", "JSON"),
    ("request_body_text", "VARCHAR"),
    ("request_body_encoding", "VARCHAR"),
    ("request_body_size", "BIGINT"),
    ("request_body_truncated", "BOOLEAN"),
    ("request_body_error", "VARCHAR"),
    ("response_content_type", "VARCHAR"),
    ("response_body", "JSON"),
    ("response_body_text", "VARCHAR"),
    ("response_body_encoding", "VARCHAR"),
    ("response_body_size", "BIGINT"),
    ("response_body_truncated", "BOOLEAN"),
    ("response_body_error", "VARCHAR"),
    ("ts_request_start", "TIMESTAMP"),
    ("ts_request_end", "TIMESTAMP"),
    ("ts_response_start", "TIMESTAMP"),
    ("ts_response_end", "TIMESTAMP"),
    ("client_addr", "VARCHAR"),
    ("server_addr", "VARCHAR"),
    ("error", "VARCHAR"),
    ("is_websocket", "BOOLEAN"),
    ("is_bayeux", "BOOLEAN"),
    ("api_version", "VARCHAR"),
    ("api_area", "VARCHAR"),
    ("resource_type", "VARCHAR"),
    ("resource_id", "VARCHAR"),
    ("sub_resource", "VARCHAR"),
    ("owner_id", "VARCHAR"),
    ("operation_name", "VARCHAR"),
    ("status_code", "INTEGER"),
    ("status_message", "VARCHAR"),
    ("reference_id", "VARCHAR"),
    ("auth_user", "VARCHAR"),
    ("user_name", "VARCHAR"),
    ("session_key", "VARCHAR"),
    ("new_session_key", "VARCHAR"),
]

BAYEUX_MESSAGES: list[tuple[str, str]] = [
    ("id", "BIGINT"),
    ("ts", "TIMESTAMP"),
    ("direction", "VARCHAR"),
    ("transport", "VARCHAR"),
    ("exchange_id", "BIGINT"),
    ("flow_id", "VARCHAR"),
    ("frame_index", "INTEGER"),
    ("position", "INTEGER"),
    ("channel", "VARCHAR"),
    ("client_id", "VARCHAR"),
    ("msg_id", "VARCHAR"),
    ("successful", "BOOLEAN"),
    ("error", "VARCHAR"),
    ("advice", "JSON"),
    ("connection_type", "VARCHAR"),
    ("subscription", "VARCHAR"),
    ("ext", "JSON"),
    ("extra", "JSON"),
    ("data", "JSON"),
    ("message_type", "VARCHAR"),
    ("notification_type", "VARCHAR"),
    ("resource_type", "VARCHAR"),
    ("resource_id", "VARCHAR"),
    ("resource_state", "VARCHAR"),
    ("call_id", "VARCHAR"),
    ("conn_id", "VARCHAR"),
    ("device_id", "VARCHAR"),
    ("user_state", "VARCHAR"),
    ("reference_id", "VARCHAR"),
    ("error_message", "VARCHAR"),
    ("user_name", "VARCHAR"),
    ("session_key", "VARCHAR"),
    ("parse_error", "VARCHAR"),
    ("raw", "VARCHAR"),
]

WEBSOCKET_FRAMES: list[tuple[str, str]] = [
    ("id", "BIGINT"),
    ("flow_id", "VARCHAR"),
    ("exchange_id", "BIGINT"),
    ("frame_index", "INTEGER"),
    ("ts", "TIMESTAMP"),
    ("direction", "VARCHAR"),
    ("opcode", "VARCHAR"),
    ("size", "BIGINT"),
    ("content", "VARCHAR"),
    ("content_encoding", "VARCHAR"),
    ("truncated", "BOOLEAN"),
    ("parse_error", "VARCHAR"),
    ("dropped", "BOOLEAN"),
    ("injected", "BOOLEAN"),
]

WEBSOCKET_CONNECTIONS: list[tuple[str, str]] = [
    ("flow_id", "VARCHAR"),
    ("exchange_id", "BIGINT"),
    ("ts_start", "TIMESTAMP"),
    ("ts_end", "TIMESTAMP"),
    ("frames", "BIGINT"),
    ("closed_by_client", "BOOLEAN"),
    ("close_code", "INTEGER"),
    ("close_reason", "VARCHAR"),
    ("error", "VARCHAR"),
]

CAPTURE_ERRORS: list[tuple[str, str]] = [
    ("ts", "TIMESTAMP"),
    ("kind", "VARCHAR"),
    ("flow_id", "VARCHAR"),
    ("count", "BIGINT"),
    ("error", "VARCHAR"),
]

META: list[tuple[str, str]] = [
    ("key", "VARCHAR"),
    ("value", "VARCHAR"),
]

OPERATION_EXPECTATIONS: list[tuple[str, str]] = [
    ("operation_name", "VARCHAR"),
    ("resource_type", "VARCHAR"),
    ("match_kind", "VARCHAR"),
    ("expected_state", "VARCHAR"),
]

TABLES: dict[str, list[tuple[str, str]]] = {
    "exchanges": EXCHANGES,
    "bayeux_messages": BAYEUX_MESSAGES,
    "websocket_frames": WEBSOCKET_FRAMES,
    "websocket_connections": WEBSOCKET_CONNECTIONS,
    "capture_errors": CAPTURE_ERRORS,
}
"""Tables the writer appends to (meta and operation_expectations are written once)."""

_ARROW_TYPES = {
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "VARCHAR": pa.large_string(),
    "JSON": pa.large_string(),
    "BOOLEAN": pa.bool_(),
    "TIMESTAMP": pa.timestamp("us"),
    "DOUBLE": pa.float64(),
}


def arrow_schema(columns: list[tuple[str, str]]) -> pa.Schema:
    return pa.schema([(name, _ARROW_TYPES[typ]) for name, typ in columns])


def _create_table(name: str, columns: list[tuple[str, str]]) -> str:
    cols = ",\n    ".join(f"{c} {t}" for c, t in columns)
    return f"CREATE TABLE IF NOT EXISTS {name} (\n    {cols}\n);"


# ------------------------------------------------------------------ operation expectations
# (operationName, resource_type or None for any, match kind, expected state)
# match kinds (see docs/schema.md, "Correlation"):
#   call_state    a CallStateChangeMessage for the operation's call (id or connId) in expected_state
#   call_event    a CallStateChangeMessage for that call with notificationType = expected_state
#   call_any      any CallStateChangeMessage for that call
#   new_resource  the first message about a resource of type expected_state.split(':')[0]
#                 that the agent had not seen before the request (Dial -> a new call in Dialing)
#   user_state    a DeviceStateChangeMessage (or ChannelStateChangeMessageV2) with userState = expected
#   device_any    any DeviceStateChangeMessage for the agent
#   resource_any  any notification about the operation's resource id
_CALL_STATE = {
    "Answer": "Established",
    "Hold": "Held",
    "Retrieve": "Established",
    "Hangup": "Released",
    "Reject": "Released",
    "ClearCall": "Released",
    "SingleStepTransfer": "Released",
    "CompleteTransfer": "Released",
}
_CALL_EVENT = {
    "AttachUserData": "AttachedDataChanged",
    "UpdateUserData": "AttachedDataChanged",
    "DeleteUserData": "AttachedDataChanged",
    "DeleteUserDataPair": "AttachedDataChanged",
    "SetCallDisposition": "AttachedDataChanged",
    "SendDtmf": "DtmfSent",
    "SingleStepConference": "ParticipantsUpdated",
    "CompleteConference": "ParticipantsUpdated",
    "RemoveParticipantFromConference": "ParticipantsUpdated",
    "StartCallRecording": "CallRecordingStateChange",
    "StopCallRecording": "CallRecordingStateChange",
    "PauseCallRecording": "CallRecordingStateChange",
    "ResumeCallRecording": "CallRecordingStateChange",
}
_USER_STATE = {
    "Ready": "Ready",
    "NotReady": "NotReady",
    "AfterCallWork": "AfterCallWork",
    "AuxWork": "NotReady",
    "Offline": "LoggedOut",
}


def expectation_rows() -> list[tuple[str, str | None, str, str | None]]:
    rows: list[tuple[str, str | None, str, str | None]] = []
    for op, st in _CALL_STATE.items():
        rows.append((op, "call", "call_state", st))
    for op, ev in _CALL_EVENT.items():
        rows.append((op, "call", "call_event", ev))
    for op in ("MuteCall", "UnmuteCall", "SwapCalls", "MergeWithOtherCall", "SwitchToBargeIn",
               "SwitchToListenIn", "MuteMonitoredUser", "UnmuteMonitoredUser"):
        rows.append((op, "call", "call_any", None))
    rows.append(("Dial", None, "new_resource", "call:Dialing"))
    rows.append(("InitiateTransfer", "call", "new_resource", "call:Dialing"))
    rows.append(("InitiateConference", "call", "new_resource", "call:Dialing"))
    rows.append(("InitiateIMSession", None, "new_resource", "im-session"))
    for op, st in _USER_STATE.items():
        rows.append((op, None, "user_state", st))
    for op in ("DoNotDisturbOn", "DoNotDisturbOff", "ForwardCallsOn", "ForwardCallsOff",
               "StartContactCenterSession", "EndContactCenterSession"):
        rows.append((op, None, "device_any", None))
    rows.append(("Create", None, "new_resource", None))
    return rows


# ------------------------------------------------------------------------------ views

VIEWS_SQL = r"""
CREATE OR REPLACE VIEW notifications AS
SELECT * FROM bayeux_messages
WHERE direction = 's2c' AND channel IS NOT NULL AND NOT starts_with(channel, '/meta/');

CREATE OR REPLACE VIEW sessions AS
WITH items AS (
    SELECT user_name, coalesce(session_key, new_session_key) AS session_key,
           ts_request_start AS ts, 'exchange' AS kind, NULL::VARCHAR AS client_id
    FROM exchanges
    UNION ALL
    SELECT user_name, session_key, ts, 'message' AS kind, client_id
    FROM bayeux_messages
)
SELECT user_name,
       session_key,
       min(ts) AS started_at,
       max(ts) AS ended_at,
       count(*) FILTER (WHERE kind = 'exchange') AS exchanges,
       count(*) FILTER (WHERE kind = 'message') AS bayeux_messages,
       list(DISTINCT client_id ORDER BY client_id) FILTER (WHERE client_id IS NOT NULL) AS client_ids
FROM items
WHERE user_name IS NOT NULL OR session_key IS NOT NULL
GROUP BY user_name, session_key;

CREATE OR REPLACE VIEW operations AS
WITH win AS (
    SELECT coalesce(max(TRY_CAST(value AS BIGINT)), 10000) AS ms
    FROM meta WHERE key = 'correlation_window_ms'
),
ops AS (
    SELECT e.id AS exchange_id, e.flow_id, e.user_name, e.session_key, e.method, e.path,
           e.api_area, e.resource_type, e.resource_id, e.operation_name,
           e.status, e.status_code, e.status_message, e.error, e.reference_id,
           e.ts_request_start AS requested_at,
           coalesce(e.ts_response_start, e.ts_response_end) AS acked_at,
           coalesce(x.match_kind, CASE WHEN e.resource_id IS NOT NULL THEN 'resource_any' END) AS match_kind,
           x.expected_state
    FROM exchanges e
    LEFT JOIN operation_expectations x
      ON x.operation_name = e.operation_name
     AND (x.resource_type IS NULL OR x.resource_type = e.resource_type)
    WHERE e.operation_name IS NOT NULL AND NOT coalesce(e.is_bayeux, false)
    QUALIFY row_number() OVER (PARTITION BY e.id ORDER BY x.resource_type NULLS LAST) = 1
),
notes AS (
    SELECT m.id, m.ts, m.user_name, m.message_type, m.notification_type, m.resource_type,
           m.resource_id, m.resource_state, m.call_id, m.conn_id, m.device_id, m.user_state,
           m.reference_id, m.error_message,
           min(m.ts) OVER (PARTITION BY m.user_name, m.resource_type, m.resource_id) AS first_seen
    FROM bayeux_messages m
    WHERE m.direction = 's2c' AND m.message_type IS NOT NULL
),
cand AS (
    SELECT o.exchange_id, n.id AS message_id, n.ts,
           CASE WHEN n.message_type = 'ErrorMessage' THEN 'error_message'
                WHEN n.notification_type = 'Error' OR n.resource_state = 'RequestFailed' THEN 'failed'
                ELSE 'completed' END AS kind,
           coalesce(n.error_message, n.message_type) AS detail
    FROM ops o
    CROSS JOIN win
    JOIN notes n
      ON n.user_name = o.user_name
     AND n.ts >= o.requested_at
     AND n.ts <= o.requested_at + to_milliseconds(win.ms)
    WHERE (o.reference_id IS NOT NULL AND n.reference_id = o.reference_id)
       OR (n.message_type = 'ErrorMessage'
           AND (n.call_id IS NULL OR o.resource_type IS DISTINCT FROM 'call'
                OR n.call_id = o.resource_id OR n.conn_id = o.resource_id))
       OR (o.match_kind = 'call_state' AND n.resource_type = 'call'
           AND (n.call_id = o.resource_id OR n.conn_id = o.resource_id)
           AND n.resource_state = o.expected_state)
       OR (o.match_kind = 'call_event' AND n.resource_type = 'call'
           AND (n.call_id = o.resource_id OR n.conn_id = o.resource_id)
           AND n.notification_type = o.expected_state)
       OR (o.match_kind = 'call_any' AND n.resource_type = 'call'
           AND (n.call_id = o.resource_id OR n.conn_id = o.resource_id))
       OR (o.match_kind = 'new_resource' AND n.first_seen >= o.requested_at
           AND n.resource_type = coalesce(split_part(o.expected_state, ':', 1), o.resource_type)
           AND (coalesce(split_part(o.expected_state, ':', 2), '') = '' OR n.resource_state = split_part(o.expected_state, ':', 2)))
       OR (o.match_kind = 'user_state'
           AND ((n.resource_type = 'device' AND n.user_state = o.expected_state)
             OR (n.resource_type = 'channel' AND n.resource_state = o.expected_state
                 AND (o.resource_type IS DISTINCT FROM 'channel' OR n.resource_id = o.resource_id))))
       OR (o.match_kind = 'device_any' AND n.resource_type = 'device')
       OR (o.match_kind = 'resource_any' AND n.resource_id = o.resource_id)
),
firsts AS (
    SELECT exchange_id, arg_min(message_id, ts) AS message_id, min(ts) AS ts,
           arg_min(kind, ts) AS kind, arg_min(detail, ts) AS detail
    FROM cand GROUP BY exchange_id
)
SELECT o.exchange_id, o.flow_id, o.user_name, o.session_key, o.method, o.path, o.api_area,
       o.resource_type, o.resource_id, o.operation_name, o.reference_id,
       o.status, o.status_code, o.status_message, o.error,
       o.requested_at, o.acked_at, f.ts AS completed_at,
       (epoch_us(o.acked_at) - epoch_us(o.requested_at)) / 1000.0 AS ack_latency_ms,
       (epoch_us(f.ts) - epoch_us(o.requested_at)) / 1000.0 AS completion_latency_ms,
       CASE WHEN o.error IS NOT NULL OR o.status IS NULL OR o.status >= 400
                 OR (o.status_code IS NOT NULL AND o.status_code NOT IN (0, 7)) THEN 'http_error'
            WHEN f.kind IS NOT NULL THEN f.kind
            ELSE 'no_notification' END AS outcome,
       f.message_id AS outcome_message_id,
       f.detail AS outcome_detail,
       o.match_kind, o.expected_state
FROM ops o LEFT JOIN firsts f USING (exchange_id);
"""


def create_schema(con: duckdb.DuckDBPyConnection, meta: dict[str, str] | None = None) -> None:
    """Create every table and view (idempotent) and record schema_version and ``meta``."""
    con.execute("BEGIN TRANSACTION")
    try:
        for name, cols in {**TABLES, "meta": META, "operation_expectations": OPERATION_EXPECTATIONS}.items():
            con.execute(_create_table(name, cols))
        have = next(iter(con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()), None)
        if have is None:
            con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
            con.execute("INSERT INTO meta VALUES ('correlation_window_ms', '10000')")
            rows = expectation_rows()
            con.register("_exp", pa.table(
                {k: [r[i] for r in rows] for i, (k, _) in enumerate(OPERATION_EXPECTATIONS)},
                schema=arrow_schema(OPERATION_EXPECTATIONS)))
            con.execute("INSERT INTO operation_expectations SELECT * FROM _exp").fetchall()
            con.unregister("_exp")
        elif int(have[0]) != SCHEMA_VERSION:
            raise RuntimeError(f"capture has schema_version {have[0]}, this gwsreplay writes {SCHEMA_VERSION}")
        for key, value in (meta or {}).items():
            con.execute("DELETE FROM meta WHERE key = ?", [key])
            con.execute("INSERT INTO meta VALUES (?, ?)", [key, str(value)])
        for stmt in VIEWS_SQL.split(";\n"):
            if stmt.strip():
                con.execute(stmt)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def schema_version(con: duckdb.DuckDBPyConnection) -> int | None:
    try:
        row = next(iter(con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()), None)
    except duckdb.Error:
        return None
    return int(row[0]) if row else None
