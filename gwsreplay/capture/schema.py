"""The capture file's schema: one place for the DDL and the matching Arrow schemas.

Every table is declared once as a list of ``(column, duckdb_type)``; the DDL, the
``pyarrow`` schema the writer builds its batches with and the named row type the
row builders fill (``ExchangeRow``, ``BayeuxMessageRow``...) all come from it, so
``INSERT INTO t SELECT * FROM batch`` always lines up column by column. The views'
SQL is in ``sql/*.sql``. ``operations`` is a table (schema_version 2) filled from the
``operations_view`` view by :mod:`gwsreplay.capture.opindex`.

Timestamps are ``TIMESTAMP`` (microseconds, naive, UTC). JSON columns hold JSON
text (DuckDB's ``JSON`` type): use ``col->>'$.key'`` or ``json_extract``.
See docs/schema.md for the meaning of every column.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import duckdb
import pyarrow as pa

from gwsreplay.capture import sqlfiles
from gwsreplay.core.operations import (ACK_ONLY_OPERATIONS, AGENT_STATE_OPERATIONS, CALL_CHANGING_OPS,
                                       CALL_DIALING_OPS, CALL_EVENT_AFTER, CALL_STATE_AFTER,
                                       CHANNEL_CHANGING_OPS, DEVICE_CHANGING_OPS, REPLY_OPERATIONS)
from gwsreplay.core.resources import ACK_ONLY_AREAS, SUCCESS_STATUS_CODES
from gwsreplay.core.sqltext import sql_list
from gwsreplay.core.uris import id_from_uri_sql

SCHEMA_VERSION = 2
"""2: ``operations`` is a table filled from the view ``operations_view`` (1: ``operations`` was the view)."""
UPGRADABLE_VERSIONS = (1,)

# ----------------------------------------------------------------------------- tables

#: A table's columns: (name, DuckDB type), in order.
Columns = list[tuple[str, str]]

EXCHANGES: Columns = [
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

BAYEUX_MESSAGES: Columns = [
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

WEBSOCKET_FRAMES: Columns = [
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

WEBSOCKET_CONNECTIONS: Columns = [
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

CAPTURE_ERRORS: Columns = [
    ("ts", "TIMESTAMP"),
    ("kind", "VARCHAR"),
    ("flow_id", "VARCHAR"),
    ("count", "BIGINT"),
    ("error", "VARCHAR"),
]

META: Columns = [
    ("key", "VARCHAR"),
    ("value", "VARCHAR"),
]

OPERATION_EXPECTATIONS: Columns = [
    ("operation_name", "VARCHAR"),
    ("resource_type", "VARCHAR"),
    ("match_kind", "VARCHAR"),
    ("expected_state", "VARCHAR"),
]

TABLES: dict[str, Columns] = {
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


def row_type(name: str, columns: Columns) -> Any:
    """A NamedTuple class with a table's columns as fields, each defaulting to None: the rows
    the row builders hand to the writer (built by keyword, read by name, still plain tuples
    for Arrow)."""
    return namedtuple(name, [c for c, _ in columns], defaults=(None,) * len(columns))


ExchangeRow = row_type("ExchangeRow", EXCHANGES)
BayeuxMessageRow = row_type("BayeuxMessageRow", BAYEUX_MESSAGES)
WebsocketFrameRow = row_type("WebsocketFrameRow", WEBSOCKET_FRAMES)
WebsocketConnectionRow = row_type("WebsocketConnectionRow", WEBSOCKET_CONNECTIONS)
CaptureErrorRow = row_type("CaptureErrorRow", CAPTURE_ERRORS)
ExpectationRow = row_type("ExpectationRow", OPERATION_EXPECTATIONS)


def arrow_schema(columns: Columns) -> pa.Schema:
    return pa.schema([(name, _ARROW_TYPES[typ]) for name, typ in columns])


def _create_table(name: str, columns: Columns) -> str:
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
# The operation vocabulary behind the rules is gwsreplay.core.operations.


def _user_state(op: str) -> str:
    state, work_mode = AGENT_STATE_OPERATIONS[op]
    return f"{state}:{work_mode}" if work_mode else state


def expectation_rows() -> list[ExpectationRow]:
    """The default rules of a new capture (revision EXPECTATIONS_REVISION)."""
    E = ExpectationRow
    rows = [E(op, "call", "call_state", st) for op, st in CALL_STATE_AFTER.items()]
    rows += [E(op, "call", "call_event", ev) for op, ev in CALL_EVENT_AFTER.items()]
    rows.append(E("CompleteConference", "call", "merged_call", "ParticipantsUpdated"))
    rows += [E(op, "call", "call_any", None) for op in CALL_CHANGING_OPS]
    # Dial needs no call in the URL (/me/devices/{id}); the others are requested on a call
    rows += [E(op, None if op == "Dial" else "call", "new_resource", "call:Dialing") for op in CALL_DIALING_OPS]
    rows.append(E("InitiateIMSession", None, "new_resource", "im-session"))
    rows += [E(op, rtype, "new_resource", f"{rtype}:Composing") for op, rtype in REPLY_OPERATIONS]
    rows += [E(op, None, "user_state", _user_state(op)) for op in AGENT_STATE_OPERATIONS]
    rows += [E(op, None, "device_any", None) for op in DEVICE_CHANGING_OPS]
    rows += [E(op, rtype, "ack_only", None) for op, rtype in ACK_ONLY_OPERATIONS]
    rows += [E(op, "channel", "channel_any", None) for op in CHANNEL_CHANGING_OPS]
    rows.append(E("Create", None, "new_resource", None))
    return rows


def _expectation_rows_v1() -> set[tuple[str, str | None, str, str | None]]:
    """The rules of captures created before meta 'expectations_revision' existed (revision 1)."""
    rows = {(op, "call", "call_state", st) for op, st in CALL_STATE_AFTER.items()}
    rows |= {(op, "call", "call_event", ev) for op, ev in {**CALL_EVENT_AFTER, "CompleteConference": "ParticipantsUpdated"}.items()}
    rows |= {(op, "call", "call_any", None) for op in CALL_CHANGING_OPS}
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

def operations_view_sql() -> str:
    """sql/operations_view.sql (``CREATE OR REPLACE VIEW operations_view``) with the constants it
    needs from gwsreplay.core."""
    parent_uri = ("coalesce(b.data->>'$.call.parentCallUri', b.data->>'$.parentCallUri', "
                  "b.data->>'$.call.parentCallPath', b.data->>'$.parentCallPath')")
    return sqlfiles.fill(sqlfiles.load("operations_view.sql"),
                         ack_only_areas=sql_list(ACK_ONLY_AREAS),
                         success_status_codes=", ".join(str(c) for c in SUCCESS_STATUS_CODES),
                         parent_call_id=id_from_uri_sql(parent_uri))


VIEWS_SQL = sqlfiles.load("views.sql")
OPERATIONS_SQL = operations_view_sql()
OPERATIONS_TABLE_SQL = "CREATE TABLE IF NOT EXISTS operations AS SELECT * FROM operations_view LIMIT 0"


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
            _insert_expectations(con)
            con.execute("INSERT INTO meta VALUES ('expectations_revision', ?)", [str(EXPECTATIONS_REVISION)])
        elif int(have[0]) in UPGRADABLE_VERSIONS:
            _upgrade_schema(con)
        elif int(have[0]) != SCHEMA_VERSION:
            raise RuntimeError(f"capture has schema_version {have[0]}, this gwsreplay writes {SCHEMA_VERSION}")
        for key, value in (meta or {}).items():
            con.execute("DELETE FROM meta WHERE key = ?", [key])
            con.execute("INSERT INTO meta VALUES (?, ?)", [key, str(value)])
        _upgrade_expectations(con)
        for stmt in sqlfiles.statements(VIEWS_SQL) + [OPERATIONS_SQL, OPERATIONS_TABLE_SQL]:
            con.execute(stmt)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _upgrade_schema(con: duckdb.DuckDBPyConnection) -> None:
    """1 -> 2: the view ``operations`` makes way for the table of the same name (filled by
    gwsreplay.capture.opindex when the writer closes, or by ``gwsreplay index``)."""
    con.execute("DROP VIEW IF EXISTS operations")
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION)])


def _insert_expectations(con: duckdb.DuckDBPyConnection) -> None:
    rows = expectation_rows()
    con.register("_exp", pa.table({k: [getattr(r, k) for r in rows] for k, _ in OPERATION_EXPECTATIONS},
                                  schema=arrow_schema(OPERATION_EXPECTATIONS)))
    try:
        con.execute("INSERT INTO operation_expectations SELECT * FROM _exp").fetchall()
    finally:
        con.unregister("_exp")


def _expectation_rows_by_revision() -> dict[str, set[tuple[str, str | None, str, str | None]]]:
    """The default rules of every earlier revision (to recognise untouched captures)."""
    current = set(expectation_rows())
    rev2 = {r for r in current if r.match_kind != "channel_any"}
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
        _insert_expectations(con)
        con.execute("INSERT INTO meta VALUES ('expectations_revision', ?)", [str(EXPECTATIONS_REVISION)])
    else:
        con.execute("INSERT INTO meta VALUES ('expectations_revision', 'edited')")


def schema_version(con: duckdb.DuckDBPyConnection) -> int | None:
    try:
        row = next(iter(con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()), None)
    except duckdb.Error:
        return None
    return int(row[0]) if row else None
