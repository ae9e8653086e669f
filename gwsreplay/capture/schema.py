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
#   merged_call   notificationType expected_state (ParticipantsUpdated) on that call or on the call it was
#                 merged into (its parentCallUri): CompleteConference is requested on the consult call
#   new_resource  the first message about a resource of type expected_state.split(':')[0]
#                 that the agent had not seen before the request (Dial -> a new call in Dialing)
#   user_state    a DeviceStateChangeMessage (or ChannelStateChangeMessageV2) with userState.state =
#                 expected_state.split(':')[0] and, when the rule or the request's ``workmode`` names
#                 one, userState.workMode = expected_state.split(':')[1] (AfterCallWork ->
#                 NotReady:AfterCallWork)
#   device_any    any DeviceStateChangeMessage for the agent
#   channel_any   any ChannelStateChangeMessageV2 for the channel of /me/channels/{channel} (for voice:
#                 any DeviceStateChangeMessage too): DND of one channel
#   ack_only      documented without a notification: the HTTP answer completes it ('acknowledged')
#   resource_any  any notification about the operation's resource id (no rule, the URL names a resource)
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
    "RemoveParticipantFromConference": "ParticipantsUpdated",
    "StartCallRecording": "CallRecordingStateChange",
    "StopCallRecording": "CallRecordingStateChange",
    "PauseCallRecording": "CallRecordingStateChange",
    "ResumeCallRecording": "CallRecordingStateChange",
}
_CALL_ANY = ("MuteCall", "UnmuteCall", "SwapCalls", "MergeWithOtherCall", "SwitchToBargeIn",
             "SwitchToListenIn", "MuteMonitoredUser", "UnmuteMonitoredUser")
# userState.state[:workMode] (8.6 L4656-5009: AuxWork and AfterCallWork are NotReady with a workMode)
_USER_STATE = {
    "Ready": "Ready",
    "NotReady": "NotReady",
    "AfterCallWork": "NotReady:AfterCallWork",
    "AuxWork": "NotReady:AuxWork",
    "Offline": "LoggedOut",
}
# Reply creates a new outbound interaction in Composing (media_operations.csv); the inbound one
# does not change.
_REPLIES = (("Reply", "email"), ("ReplyAll", "email"), ("Reply", "facebook"), ("Reply", "tweet"))
# Documented without a notification: EndContactCenterSession ("There are no notifications associated
# with this operation", 8.5.2 L10358), SetInFocus of every medium, chat/SMS supervision requests on
# /users/{id}/channels/{medium} ("HTTP only"), ReportResponseTemplateUsage, CancelConsult (an Error
# notification on failure only), UnlockAccount (provisioning is synchronous).
_ACK_ONLY: tuple[tuple[str, str | None], ...] = (
    ("EndContactCenterSession", None), ("SetInFocus", None), ("ReportResponseTemplateUsage", None),
    ("CancelConsult", None), ("UnlockAccount", None),
    ("Monitor", "channel"), ("Coach", "channel"), ("BargeIn", "channel"), ("CancelSupervisorMonitoring", "channel"),
)
#: API areas documented as synchronous (no CometD): their operations are ack_only whatever their name.
ACK_ONLY_AREAS = ("customer-chat", "provisioning", "configuration", "settings", "contacts", "statistics")


def expectation_rows() -> list[tuple[str, str | None, str, str | None]]:
    rows: list[tuple[str, str | None, str, str | None]] = []
    for op, st in _CALL_STATE.items():
        rows.append((op, "call", "call_state", st))
    for op, ev in _CALL_EVENT.items():
        rows.append((op, "call", "call_event", ev))
    rows.append(("CompleteConference", "call", "merged_call", "ParticipantsUpdated"))
    for op in _CALL_ANY:
        rows.append((op, "call", "call_any", None))
    rows.append(("Dial", None, "new_resource", "call:Dialing"))
    rows.append(("InitiateTransfer", "call", "new_resource", "call:Dialing"))
    rows.append(("InitiateConference", "call", "new_resource", "call:Dialing"))
    rows.append(("InitiateIMSession", None, "new_resource", "im-session"))
    for op, rtype in _REPLIES:
        rows.append((op, rtype, "new_resource", f"{rtype}:Composing"))
    for op, st in _USER_STATE.items():
        rows.append((op, None, "user_state", st))
    for op in ("DoNotDisturbOn", "DoNotDisturbOff", "ForwardCallsOn", "ForwardCallsOff",
               "StartContactCenterSession"):
        rows.append((op, None, "device_any", None))
    for op, rtype in _ACK_ONLY:
        rows.append((op, rtype, "ack_only", None))
    for op in ("DoNotDisturbOn", "DoNotDisturbOff"):
        rows.append((op, "channel", "channel_any", None))
    rows.append(("Create", None, "new_resource", None))
    return rows


def _expectation_rows_v1() -> set[tuple[str, str | None, str, str | None]]:
    """The rules of captures created before meta 'expectations_revision' existed (revision 1)."""
    rows = {(op, "call", "call_state", st) for op, st in _CALL_STATE.items()}
    rows |= {(op, "call", "call_event", ev) for op, ev in {**_CALL_EVENT, "CompleteConference": "ParticipantsUpdated"}.items()}
    rows |= {(op, "call", "call_any", None) for op in _CALL_ANY}
    rows |= {("Dial", None, "new_resource", "call:Dialing"), ("InitiateTransfer", "call", "new_resource", "call:Dialing"),
             ("InitiateConference", "call", "new_resource", "call:Dialing"),
             ("InitiateIMSession", None, "new_resource", "im-session"), ("Create", None, "new_resource", None)}
    rows |= {(op, None, "user_state", st) for op, st in (("Ready", "Ready"), ("NotReady", "NotReady"),
             ("AfterCallWork", "AfterCallWork"), ("AuxWork", "NotReady"), ("Offline", "LoggedOut"))}
    rows |= {(op, None, "device_any", None) for op in ("DoNotDisturbOn", "DoNotDisturbOff", "ForwardCallsOn",
             "ForwardCallsOff", "StartContactCenterSession", "EndContactCenterSession")}
    return rows


EXPECTATIONS_REVISION = 3


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

"""


def _sql_strings(values) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


# id of a uri or path (last segment), as gwsreplay.capture.classify.id_from_uri
_ID_FROM_URI = "url_decode(nullif(regexp_extract({0}, '/([^/?#]+)/?(?:[?#].*)?$', 1), ''))"

# The operations view. Each rule of docs/schema.md ("Correlation") is its own join on its own keys:
# rules with a specific key (referenceId, call id, resource id) are hash joins limited to the window;
# rules keyed by the agent alone (user state, any device change, a new resource) are ASOF joins
# ("the first match at or after the request"), which sort instead of pairing every request with
# every notification of its agent. The earliest candidate (by ts, then message id) wins. Ties inside
# an ASOF partition are removed beforehand (lowest message id kept), so the result is deterministic.
# tests/test_capture_operations.py holds the same rules as one plain OR-join and checks both agree.
OPERATIONS_SQL = r"""
CREATE OR REPLACE VIEW operations AS
WITH win AS (
    SELECT coalesce(max(TRY_CAST(value AS BIGINT)), 10000) AS ms
    FROM meta WHERE key = 'correlation_window_ms'
),
rules AS (
    -- one rule per (operationName, resource type or NULL), whatever someone put in the table
    SELECT operation_name, resource_type, match_kind, expected_state FROM operation_expectations
    QUALIFY row_number() OVER (PARTITION BY operation_name, resource_type ORDER BY match_kind, expected_state) = 1
),
kinds AS (
    SELECT e.*, coalesce(x1.match_kind, x2.match_kind) AS rule_kind,
           CASE WHEN x1.match_kind IS NOT NULL THEN x1.expected_state ELSE x2.expected_state END AS rule_state
    FROM (SELECT id, flow_id, user_name, session_key, method, path, api_area, resource_type, resource_id,
                 operation_name, status, status_code, status_message, error, reference_id, ts_request_start,
                 coalesce(ts_response_start, ts_response_end) AS acked_at, request_body
          FROM exchanges WHERE operation_name IS NOT NULL AND NOT coalesce(is_bayeux, false)) e
    LEFT JOIN (FROM rules WHERE resource_type IS NOT NULL) x1
           ON x1.operation_name = e.operation_name AND x1.resource_type = e.resource_type
    LEFT JOIN (FROM rules WHERE resource_type IS NULL) x2 ON x2.operation_name = e.operation_name
),
ops AS MATERIALIZED (
    SELECT id AS exchange_id, flow_id, user_name, session_key, method, path, api_area, resource_type, resource_id,
           operation_name, status, status_code, status_message, error, reference_id,
           ts_request_start AS requested_at, acked_at, match_kind,
           CASE WHEN match_kind = 'user_state' THEN us_state || coalesce(':' || us_work_mode, '')
                WHEN match_kind = rule_kind THEN rule_state END AS expected_state,
           us_state, us_work_mode,
           CASE WHEN match_kind = 'new_resource'
                THEN coalesce(nullif(split_part(rule_state, ':', 1), ''), resource_type) END AS new_type,
           CASE WHEN match_kind = 'new_resource' THEN coalesce(split_part(rule_state, ':', 2), '') END AS new_state,
           ts_request_start + to_milliseconds((SELECT ms FROM win)) AS until,
           -- candidates are ordered by (ts, message id), packed into one number
           epoch_us(ts_request_start)::HUGEINT << 64 AS from_key
    FROM (SELECT *,
                 CASE WHEN api_area IN (@ACK_ONLY_AREAS@) THEN 'ack_only'
                      WHEN rule_kind IS NOT NULL THEN rule_kind
                      WHEN resource_type = 'channel' AND resource_id = 'voice' THEN 'device_any'
                      WHEN resource_id IS NOT NULL THEN 'resource_any' END AS match_kind,
                 CASE WHEN rule_kind = 'user_state' THEN split_part(rule_state, ':', 1) END AS us_state,
                 CASE WHEN rule_kind = 'user_state'
                      THEN coalesce(nullif(request_body->>'$.workmode', ''),
                                    nullif(split_part(rule_state, ':', 2), '')) END AS us_work_mode
          FROM kinds)
),
notes AS MATERIALIZED (
    SELECT m.id, m.ts, (epoch_us(m.ts)::HUGEINT << 64) | m.id AS key, m.user_name, m.message_type,
           m.notification_type, m.resource_type, m.resource_id, m.resource_state, m.call_id, m.conn_id,
           m.user_state, m.reference_id,
           CASE WHEN m.message_type = 'ErrorMessage' THEN 'error_message'
                WHEN m.notification_type = 'Error' OR m.resource_state = 'RequestFailed' THEN 'failed'
                ELSE 'completed' END AS kind,
           coalesce(m.error_message, m.message_type) AS detail
    FROM bayeux_messages m
    WHERE m.direction = 's2c' AND m.message_type IS NOT NULL AND m.user_name IS NOT NULL
),
-- call notifications keyed by call id and, when different, by connId (8.5.2 requests name the connId)
calls AS MATERIALIZED (
    SELECT id, ts, key, user_name, notification_type, resource_state, reference_id, kind, detail, call_id AS call
    FROM notes WHERE resource_type = 'call' AND call_id IS NOT NULL
    UNION ALL
    SELECT id, ts, key, user_name, notification_type, resource_state, reference_id, kind, detail, conn_id AS call
    FROM notes WHERE resource_type = 'call' AND conn_id IS NOT NULL AND conn_id IS DISTINCT FROM call_id
),
call_ops AS (
    SELECT exchange_id, user_name, requested_at, until, match_kind, expected_state, reference_id,
           resource_id AS target
    FROM ops WHERE match_kind IN ('call_state', 'call_event', 'call_any', 'merged_call')
    UNION ALL
    -- merged_call: also the call the consult call was merged into (the consult's parentCallUri)
    SELECT DISTINCT o.exchange_id, o.user_name, o.requested_at, o.until, o.match_kind, o.expected_state,
           o.reference_id, @PARENT_ID@ AS target
    FROM (FROM ops WHERE match_kind = 'merged_call') o
    JOIN calls n ON n.user_name = o.user_name AND n.call = o.resource_id AND n.ts <= o.until
    JOIN bayeux_messages b ON b.id = n.id
),
-- user_state: the agent's state notifications with their workMode; "scope" is the channel they are
-- about (the device: voice), and each is also listed for any channel ('*') and any workMode ('*')
states AS (
    SELECT n.key, n.ts, n.user_name, n.kind, n.detail, n.user_state AS state,
           CASE WHEN n.resource_type = 'device' THEN 'voice' ELSE n.resource_id END AS scope,
           CASE WHEN n.resource_type = 'device' THEN b.data->>'$.devices[0].userState.workMode'
                ELSE b.data->>'$.channels[0].userState.workMode' END AS work_mode
    FROM notes n JOIN bayeux_messages b ON b.id = n.id
    WHERE n.resource_type IN ('device', 'channel') AND n.user_state IS NOT NULL
),
state_ops AS MATERIALIZED (
    SELECT *, CASE WHEN resource_type = 'channel' THEN resource_id ELSE '*' END AS scope,
           coalesce(us_work_mode, '*') AS wm
    FROM ops WHERE match_kind = 'user_state'
),
state_keys AS (
    SELECT * FROM (
        SELECT user_name, CASE WHEN any_scope THEN '*' ELSE scope END AS scope, state,
               CASE WHEN any_wm THEN '*' ELSE work_mode END AS wm, ts, key, kind, detail
        FROM states
        CROSS JOIN (VALUES (false), (true)) a(any_scope)
        CROSS JOIN (VALUES (false), (true)) w(any_wm)
        WHERE any_wm OR work_mode IS NOT NULL)
    WHERE (scope, wm) IN (SELECT DISTINCT scope, wm FROM state_ops)
),
-- new_resource: one row per resource (its first sighting) and per resource and state (first time in it)
births AS (
    SELECT user_name, resource_type, min(key) AS key, arg_min(kind, key) AS kind, arg_min(detail, key) AS detail
    FROM notes WHERE resource_type IN (SELECT new_type FROM ops WHERE match_kind = 'new_resource')
    GROUP BY user_name, resource_type, resource_id
),
births_in_state AS (
    SELECT *, min(key) OVER (PARTITION BY user_name, resource_type, resource_id) AS birth
    FROM (SELECT user_name, resource_type, resource_id, resource_state, min(key) AS key,
                 arg_min(kind, key) AS kind, arg_min(detail, key) AS detail
          FROM notes
          WHERE resource_type IN (SELECT new_type FROM ops WHERE match_kind = 'new_resource' AND new_state <> '')
          GROUP BY ALL)
),
cand AS (
    -- 1. referenceId
    SELECT o.exchange_id, o.until, n.ts, n.key, n.kind, n.detail
    FROM ops o JOIN notes n ON n.user_name = o.user_name AND n.reference_id = o.reference_id
    WHERE n.ts BETWEEN o.requested_at AND o.until
    UNION ALL
    -- 2. ErrorMessage for the call, or with no call, or for any non-call operation
    SELECT o.exchange_id, o.until, n.ts, n.key, n.kind, n.detail
    FROM (FROM ops WHERE match_kind IS DISTINCT FROM 'ack_only') o
    JOIN (FROM notes WHERE message_type = 'ErrorMessage') n ON n.user_name = o.user_name
    WHERE n.ts BETWEEN o.requested_at AND o.until
      AND (n.call_id IS NULL OR o.resource_type IS DISTINCT FROM 'call'
           OR n.call_id = o.resource_id OR n.conn_id = o.resource_id)
      AND (n.reference_id IS NULL OR o.reference_id IS NULL OR n.reference_id = o.reference_id)
    UNION ALL
    -- 3. call rules
    SELECT o.exchange_id, o.until, n.ts, n.key, n.kind, n.detail
    FROM call_ops o JOIN calls n ON n.user_name = o.user_name AND n.call = o.target
    WHERE n.ts BETWEEN o.requested_at AND o.until
      AND (n.reference_id IS NULL OR o.reference_id IS NULL OR n.reference_id = o.reference_id)
      AND (o.match_kind = 'call_any'
           OR (o.match_kind = 'call_state' AND n.resource_state = o.expected_state)
           OR (o.match_kind IN ('call_event', 'merged_call') AND n.notification_type = o.expected_state))
    UNION ALL
    -- any notification about the resource (a channel's own for channel_any); for ack_only, only a
    -- failure about it. Not one that names another operation's referenceId.
    SELECT o.exchange_id, o.until, n.ts, n.key, n.kind, n.detail
    FROM (FROM ops WHERE match_kind IN ('resource_any', 'ack_only', 'channel_any') AND resource_id IS NOT NULL) o
    JOIN notes n ON n.user_name = o.user_name AND n.resource_id = o.resource_id
    WHERE n.ts BETWEEN o.requested_at AND o.until
      AND (n.reference_id IS NULL OR o.reference_id IS NULL OR n.reference_id = o.reference_id)
      AND (o.match_kind = 'resource_any' OR (o.match_kind = 'ack_only' AND n.kind <> 'completed')
           OR (o.match_kind = 'channel_any' AND n.resource_type = 'channel'))
    UNION ALL
    -- new_resource: the first resource born after the request, at its first notification ...
    SELECT o.exchange_id, o.until, make_timestamp((n.key >> 64)::BIGINT) AS ts, n.key, n.kind, n.detail
    FROM (FROM ops WHERE match_kind = 'new_resource' AND new_state = '') o
    ASOF JOIN births n ON n.user_name = o.user_name AND n.resource_type = o.new_type AND n.key >= o.from_key
    UNION ALL
    -- ... or at its first notification in the expected state
    SELECT o.exchange_id, o.until, make_timestamp((n.key >> 64)::BIGINT) AS ts, n.key, n.kind, n.detail
    FROM (FROM ops WHERE match_kind = 'new_resource' AND new_state <> '') o
    ASOF JOIN births_in_state n ON n.user_name = o.user_name AND n.resource_type = o.new_type
                               AND n.resource_state = o.new_state AND n.birth >= o.from_key
    UNION ALL
    -- user_state
    SELECT o.exchange_id, o.until, n.ts, n.key, n.kind, n.detail
    FROM state_ops o
    ASOF JOIN state_keys n ON n.user_name = o.user_name AND n.scope = o.scope AND n.state = o.us_state
                          AND n.wm = o.wm AND n.key >= o.from_key
    UNION ALL
    -- device_any (and channel_any on the voice channel)
    SELECT o.exchange_id, o.until, n.ts, n.key, n.kind, n.detail
    FROM (FROM ops WHERE match_kind = 'device_any' OR (match_kind = 'channel_any' AND resource_id = 'voice')) o
    ASOF JOIN (FROM notes WHERE resource_type = 'device'
               AND user_name IN (SELECT user_name FROM ops WHERE match_kind = 'device_any'
                                 OR (match_kind = 'channel_any' AND resource_id = 'voice'))) n
      ON n.user_name = o.user_name AND n.key >= o.from_key
),
firsts AS (
    SELECT exchange_id, min(key) AS key, arg_min(kind, key) AS kind, arg_min(detail, key) AS detail
    FROM cand WHERE ts <= until
    GROUP BY exchange_id
),
results AS (
    SELECT o.*, make_timestamp((f.key >> 64)::BIGINT) AS f_ts,
           (f.key & 18446744073709551615::HUGEINT)::BIGINT AS f_message_id, f.kind AS f_kind, f.detail AS f_detail,
           o.error IS NOT NULL OR o.status IS NULL OR o.status >= 400
             OR (o.status_code IS NOT NULL AND o.status_code NOT IN (0, 7)) AS http_error
    FROM ops o LEFT JOIN firsts f USING (exchange_id)
)
SELECT exchange_id, flow_id, user_name, session_key, method, path, api_area,
       resource_type, resource_id, operation_name, reference_id,
       status, status_code, status_message, error,
       requested_at, acked_at,
       CASE WHEN f_ts IS NOT NULL THEN f_ts
            WHEN match_kind = 'ack_only' AND NOT http_error THEN acked_at END AS completed_at,
       (epoch_us(acked_at) - epoch_us(requested_at)) / 1000.0 AS ack_latency_ms,
       (epoch_us(CASE WHEN f_ts IS NOT NULL THEN f_ts
                      WHEN match_kind = 'ack_only' AND NOT http_error THEN acked_at END)
        - epoch_us(requested_at)) / 1000.0 AS completion_latency_ms,
       CASE WHEN http_error THEN 'http_error'
            WHEN f_kind IS NOT NULL THEN f_kind
            WHEN match_kind = 'ack_only' THEN 'acknowledged'
            ELSE 'no_notification' END AS outcome,
       f_message_id AS outcome_message_id,
       f_detail AS outcome_detail,
       match_kind, expected_state
FROM results
""".replace("@ACK_ONLY_AREAS@", _sql_strings(ACK_ONLY_AREAS)).replace("@PARENT_ID@", _ID_FROM_URI.format(
    "coalesce(b.data->>'$.call.parentCallUri', b.data->>'$.parentCallUri', "
    "b.data->>'$.call.parentCallPath', b.data->>'$.parentCallPath')"))


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
            con.execute("INSERT INTO meta VALUES ('expectations_revision', ?)", [str(EXPECTATIONS_REVISION)])
        elif int(have[0]) != SCHEMA_VERSION:
            raise RuntimeError(f"capture has schema_version {have[0]}, this gwsreplay writes {SCHEMA_VERSION}")
        for key, value in (meta or {}).items():
            con.execute("DELETE FROM meta WHERE key = ?", [key])
            con.execute("INSERT INTO meta VALUES (?, ?)", [key, str(value)])
        _upgrade_expectations(con)
        for stmt in VIEWS_SQL.split(";\n") + [OPERATIONS_SQL]:
            if stmt.strip():
                con.execute(stmt)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _expectation_rows_by_revision() -> dict[str, set[tuple[str, str | None, str, str | None]]]:
    """The default rules of every earlier revision (to recognise untouched captures)."""
    current = set(expectation_rows())
    rev2 = {r for r in current if r[2] != "channel_any"}
    return {"1": _expectation_rows_v1(), "2": rev2}


def _upgrade_expectations(con: duckdb.DuckDBPyConnection) -> None:
    """A capture created with the default rules of an earlier revision gets the current ones,
    unless someone edited them (then meta says 'edited' and they are left alone)."""
    have = next(iter(con.execute("SELECT value FROM meta WHERE key = 'expectations_revision'").fetchall()), None)
    revision = "1" if have is None else have[0]
    if revision in ("edited", str(EXPECTATIONS_REVISION)):
        return
    rows = set(con.execute("SELECT * FROM operation_expectations").fetchall())
    con.execute("DELETE FROM meta WHERE key = 'expectations_revision'")
    if rows == _expectation_rows_by_revision().get(revision):
        con.execute("DELETE FROM operation_expectations")
        rows = expectation_rows()
        con.register("_exp", pa.table(
            {k: [r[i] for r in rows] for i, (k, _) in enumerate(OPERATION_EXPECTATIONS)},
            schema=arrow_schema(OPERATION_EXPECTATIONS)))
        try:
            con.execute("INSERT INTO operation_expectations SELECT * FROM _exp").fetchall()
        finally:
            con.unregister("_exp")
        con.execute("INSERT INTO meta VALUES ('expectations_revision', ?)", [str(EXPECTATIONS_REVISION)])
    else:
        con.execute("INSERT INTO meta VALUES ('expectations_revision', 'edited')")


def schema_version(con: duckdb.DuckDBPyConnection) -> int | None:
    try:
        row = next(iter(con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()), None)
    except duckdb.Error:
        return None
    return int(row[0]) if row else None
