"""The ``operations`` table (filled from the view ``operations_view``): correlation rules (docs/schema.md) and the fast view against a plain one.

``gwsreplay.capture.schema.OPERATIONS_SQL`` runs every rule as its own hash or ASOF join (it has to
stay fast on 10-million-message captures). ``REFERENCE_SQL`` below states the same rules
the obvious way, as one join of every operation with every notification of its agent in the
window and the rules OR-ed; the two must give the same rows on hand-built captures, on the
analysis demo capture and on a capture of the simulator recorded through mitmdump.
"""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from gwsreplay.capture import schema
from gwsreplay.capture.writer import CaptureWriter
from gwsreplay.capture.records import HttpRecord
from gwsreplay.core.notifications import ERROR_MESSAGES
from gwsreplay.core.resources import ACK_ONLY_AREAS

REFERENCE_SQL = r"""
CREATE OR REPLACE TEMP VIEW operations_reference AS
WITH win AS (
    SELECT coalesce(max(TRY_CAST(value AS BIGINT)), 10000) AS ms
    FROM meta WHERE key = 'correlation_window_ms'
),
ruled AS (
    SELECT e.*, x.match_kind AS rule_kind, x.expected_state AS rule_state
    FROM exchanges e
    LEFT JOIN operation_expectations x
      ON x.operation_name = e.operation_name
     AND (x.resource_type IS NULL OR x.resource_type = e.resource_type)
    WHERE e.operation_name IS NOT NULL AND NOT coalesce(e.is_bayeux, false)
    QUALIFY row_number() OVER (PARTITION BY e.id ORDER BY x.resource_type NULLS LAST, x.match_kind,
                                                         x.expected_state) = 1
),
user_ids AS (
    SELECT DISTINCT response_body->>'$.user.id' AS uid, user_name AS name FROM exchanges
    WHERE regexp_matches(path, '/api/v2/me/?$') AND response_body->>'$.user.id' IS NOT NULL AND user_name IS NOT NULL
    UNION
    SELECT DISTINCT u->>'$.id', u->>'$.userName'
    FROM (SELECT unnest(CAST(response_body->'$.users' AS JSON[])) AS u FROM exchanges
          WHERE json_type(response_body->'$.users') = 'ARRAY')
    WHERE u->>'$.id' IS NOT NULL AND u->>'$.userName' IS NOT NULL
),
ops0 AS (
    SELECT *,
           CASE WHEN match_kind = 'user_state' THEN us_state || coalesce(':' || us_work_mode, '')
                WHEN match_kind = rule_kind THEN rule_state END AS expected_state,
           CASE WHEN match_kind = 'new_resource'
                THEN coalesce(nullif(split_part(rule_state, ':', 1), ''), resource_type) END AS new_type,
           CASE WHEN match_kind = 'new_resource' THEN coalesce(split_part(rule_state, ':', 2), '') END AS new_state
    FROM (SELECT id AS exchange_id, flow_id, user_name, session_key, method, path, api_area, resource_type,
                 resource_id, operation_name, reference_id, status, status_code, status_message, error,
                 ts_request_start AS requested_at, coalesce(ts_response_start, ts_response_end) AS acked_at,
                 rule_kind, rule_state,
                 CASE WHEN api_area IN (@AREAS@) THEN 'ack_only'
                      WHEN rule_kind IS NOT NULL THEN rule_kind
                      WHEN resource_type = 'channel' AND resource_id = 'voice' THEN 'device_any'
                      WHEN resource_id IS NOT NULL THEN 'resource_any' END AS match_kind,
                 CASE WHEN rule_kind = 'user_state' THEN split_part(rule_state, ':', 1) END AS us_state,
                 CASE WHEN rule_kind = 'user_state'
                      THEN coalesce(nullif(request_body->>'$.workmode', ''),
                                    nullif(split_part(rule_state, ':', 2), '')) END AS us_work_mode
          FROM ruled)
),
-- the stream an operation's outcome is in: the target agent's for /users/{id}/channels/{channel}
ops1 AS (
    SELECT o.* REPLACE (CASE WHEN o.resource_type = 'channel' AND regexp_matches(o.path, '/users/[^/]+/channels/')
                             THEN (SELECT min(name) FROM user_ids u
                                   WHERE u.uid = regexp_extract(o.path, '/users/([^/]+)/channels/', 1))
                             ELSE o.user_name END AS user_name),
           o.user_name AS req_user
    FROM ops0 o
),
ops AS (
    SELECT o.*,
           (SELECT min(x.requested_at) FROM ops1 x WHERE x.user_name = o.user_name
             AND (x.requested_at, x.exchange_id) > (o.requested_at, o.exchange_id)) AS next_at,
           (SELECT min(x.requested_at) FROM ops1 x WHERE x.user_name = o.user_name
             AND x.match_kind IN ('user_state', 'device_any', 'channel_any')
             AND (x.requested_at, x.exchange_id) > (o.requested_at, o.exchange_id)) AS next_device_at
    FROM ops1 o
),
links AS (
    SELECT DISTINCT user_name, call_id, conn_id FROM bayeux_messages
    WHERE direction = 's2c' AND message_type = 'CallStateChangeMessage' AND call_id <> conn_id
),
notes AS (
    SELECT m.*,
           CASE WHEN m.message_type IN (@ERRORS@) THEN 'error_message'
                WHEN m.notification_type = 'Error' OR m.resource_state = 'RequestFailed' THEN 'failed'
                ELSE 'completed' END AS kind,
           coalesce(m.error_message, m.message_type) AS detail,
           min(m.ts) OVER (PARTITION BY m.user_name, m.resource_type, m.resource_id) AS first_seen,
           CASE WHEN m.resource_type = 'device' THEN m.data->>'$.devices[0].userState.workMode'
                WHEN m.resource_type = 'channel' THEN m.data->>'$.channels[0].userState.workMode' END AS work_mode,
           url_decode(nullif(regexp_extract(coalesce(
               m.data->>'$.call.parentCallUri', m.data->>'$.parentCallUri',
               m.data->>'$.call.parentCallPath', m.data->>'$.parentCallPath'),
               '/([^/?#]+)/?(?:[?#].*)?$', 1), '')) AS parent
    FROM bayeux_messages m
    WHERE m.direction = 's2c' AND m.message_type IS NOT NULL
),
parents AS (
    SELECT DISTINCT o.exchange_id, n.parent
    FROM ops o CROSS JOIN win
    JOIN notes n ON n.user_name = o.user_name AND n.resource_type = 'call'
     AND (n.call_id = o.resource_id OR n.conn_id = o.resource_id)
     AND n.ts <= o.requested_at + to_milliseconds(win.ms)
    WHERE o.match_kind = 'merged_call' AND n.parent IS NOT NULL
),
cand AS (
    SELECT o.exchange_id, n.id, n.ts, n.kind, n.detail
    FROM ops o CROSS JOIN win
    JOIN notes n ON n.user_name = o.user_name
     AND n.ts >= o.requested_at AND n.ts <= o.requested_at + to_milliseconds(win.ms)
    WHERE (o.reference_id IS NOT NULL AND n.reference_id = o.reference_id)
       -- the keyed rules never take a notification that names another operation's referenceId
       OR ((n.reference_id IS NULL OR o.reference_id IS NULL OR n.reference_id = o.reference_id) AND (
          (o.match_kind IS DISTINCT FROM 'ack_only' AND n.kind = 'error_message'
           AND CASE WHEN o.resource_type = 'call' AND (n.call_id IS NOT NULL OR n.conn_id IS NOT NULL)
                    THEN n.call_id IS NOT DISTINCT FROM o.resource_id OR n.conn_id IS NOT DISTINCT FROM o.resource_id
                         OR n.conn_id IN (SELECT l.conn_id FROM links l WHERE l.user_name = o.user_name
                                          AND l.call_id = o.resource_id)
                    ELSE (o.next_at IS NULL OR n.ts < o.next_at)
                         AND NOT EXISTS (SELECT 1 FROM bayeux_messages c WHERE c.direction = 's2c'
                                         AND c.user_name = n.user_name AND c.message_type = 'CallStateChangeMessage'
                                         AND (c.call_id IN (n.call_id, n.conn_id) OR c.conn_id IN (n.call_id, n.conn_id)))
                    END)
       OR (o.match_kind = 'call_state' AND n.resource_type = 'call'
           AND (n.call_id = o.resource_id OR n.conn_id = o.resource_id)
           AND n.resource_state = o.expected_state)
       OR (o.match_kind = 'call_event' AND n.resource_type = 'call'
           AND (n.call_id = o.resource_id OR n.conn_id = o.resource_id)
           AND n.notification_type = o.expected_state)
       OR (o.match_kind = 'call_any' AND n.resource_type = 'call'
           AND (n.call_id = o.resource_id OR n.conn_id = o.resource_id))
       OR (o.match_kind = 'merged_call' AND n.resource_type = 'call' AND n.notification_type = o.expected_state
           AND (n.call_id = o.resource_id OR n.conn_id = o.resource_id
                OR n.call_id IN (SELECT parent FROM parents p WHERE p.exchange_id = o.exchange_id)
                OR n.conn_id IN (SELECT parent FROM parents p WHERE p.exchange_id = o.exchange_id)))
       OR (o.match_kind = 'resource_any' AND n.resource_id = o.resource_id)
       OR (o.match_kind = 'ack_only' AND n.resource_id = o.resource_id AND n.kind <> 'completed')
       OR (o.match_kind = 'channel_any' AND n.resource_type = 'channel' AND n.resource_id = o.resource_id)))
       OR (o.match_kind = 'channel_any' AND o.resource_id = 'voice' AND n.resource_type = 'device'
           AND (o.next_device_at IS NULL OR n.ts < o.next_device_at))
       OR (o.match_kind = 'new_resource' AND n.first_seen >= o.requested_at AND n.resource_type = o.new_type
           AND (o.new_state = '' OR n.resource_state = o.new_state))
       OR (o.match_kind = 'user_state' AND n.user_state = o.us_state
           AND (o.us_work_mode IS NULL OR n.work_mode = o.us_work_mode)
           AND ((n.resource_type = 'device'
                 AND (o.resource_type IS DISTINCT FROM 'channel' OR o.resource_id = 'voice'))
                OR (n.resource_type = 'channel'
                    AND (o.resource_type IS DISTINCT FROM 'channel' OR n.resource_id = o.resource_id))))
       OR (o.match_kind = 'device_any' AND n.resource_type = 'device'
           AND (o.next_device_at IS NULL OR n.ts < o.next_device_at))
),
firsts AS (
    SELECT exchange_id, arg_min(id, (ts, id)) AS message_id, min(ts) AS ts,
           arg_min(kind, (ts, id)) AS kind, arg_min(detail, (ts, id)) AS detail
    FROM cand GROUP BY exchange_id
),
res AS (
    SELECT o.*, f.ts AS f_ts, f.message_id, f.kind AS f_kind, f.detail AS f_detail,
           o.error IS NOT NULL OR o.status IS NULL OR o.status >= 400
             OR (o.status_code IS NOT NULL AND o.status_code NOT IN (0, 7)) AS http_error
    FROM ops o LEFT JOIN firsts f USING (exchange_id)
)
SELECT exchange_id, flow_id, req_user AS user_name, session_key, method, path, api_area, resource_type, resource_id,
       operation_name, reference_id, status, status_code, status_message, error, requested_at, acked_at,
       coalesce(f_ts, CASE WHEN match_kind = 'ack_only' AND NOT http_error THEN acked_at END) AS completed_at,
       (epoch_us(acked_at) - epoch_us(requested_at)) / 1000.0 AS ack_latency_ms,
       (epoch_us(coalesce(f_ts, CASE WHEN match_kind = 'ack_only' AND NOT http_error THEN acked_at END))
        - epoch_us(requested_at)) / 1000.0 AS completion_latency_ms,
       CASE WHEN http_error THEN 'http_error' WHEN f_kind IS NOT NULL THEN f_kind
            WHEN match_kind = 'ack_only' THEN 'acknowledged' ELSE 'no_notification' END AS outcome,
       message_id AS outcome_message_id, f_detail AS outcome_detail, match_kind, expected_state
FROM res
""".replace("@AREAS@", ", ".join(f"'{a}'" for a in ACK_ONLY_AREAS)).replace(
    "@ERRORS@", ", ".join(f"'{t}'" for t in ERROR_MESSAGES))


def assert_matches_reference(con: duckdb.DuckDBPyConnection) -> int:
    """The capture's operations view gives the reference rows; returns the number of operations."""
    con.execute(REFERENCE_SQL)
    cols = [r[0] for r in con.execute("DESCRIBE operations").fetchall()]
    ref_cols = [r[0] for r in con.execute("DESCRIBE operations_reference").fetchall()]
    # the table has the reference's columns in its order, then which rule found the outcome
    assert cols == ref_cols + ["matched_by"]
    assert con.execute("SELECT count(*) FROM operations WHERE (matched_by IS NULL) <> (outcome_message_id IS NULL) "
                       "OR matched_by NOT IN ('reference_id', 'error_message', 'rule')").fetchone()[0] == 0
    fast = con.execute(f"SELECT {', '.join(ref_cols)} FROM operations ORDER BY exchange_id").fetchall()
    ref = con.execute("SELECT * FROM operations_reference ORDER BY exchange_id").fetchall()
    diff = [(a, b) for a, b in zip(fast, ref) if a != b]
    assert len(fast) == len(ref) and not diff, diff[:5]
    return len(fast)


# --------------------------------------------------------------------------- hand-built capture

T0 = 1_700_000_000.0
DEV = "9c14cad7-17c4-48d0-8492-7cf0ff92c224"


def _basic(user: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:pw".encode()).decode()


def _ex(fid, t, path, body, resp=None, status=200, user="agent1", headers=(), t_resp=None):
    hdrs = [("Content-Type", "application/json"), *headers]
    if user is not None:
        hdrs.append(("Authorization", _basic(user)))
    return HttpRecord(flow_id=fid, method="POST" if body is not None else "GET", host="gws", port=8090, path=path,
                      request_headers=hdrs, request_body=json.dumps(body).encode() if body is not None else None,
                      status=status, response_headers=[("Content-Type", "application/json")],
                      response_body=json.dumps(resp if resp is not None else {"statusCode": 0}).encode(),
                      ts_request_start=T0 + t, ts_request_end=T0 + t,
                      ts_response_start=T0 + (t + 0.02 if t_resp is None else t_resp),
                      ts_response_end=T0 + (t + 0.02 if t_resp is None else t_resp))


def _events(fid, t, *datas, user="agent1"):
    msgs = [{"channel": ch, "data": d} for ch, d in datas] + [{"channel": "/meta/connect", "id": fid,
                                                               "successful": True}]
    return _ex(fid, t - 5, "/api/v2/notifications/connect", [{"channel": "/meta/connect", "id": fid}],
               resp=msgs, user=user, t_resp=t)


def _device(state, work_mode=None, reason=None):
    us = {"state": state}
    if work_mode:
        us["workMode"] = work_mode
    if reason:
        us["reason"] = reason
    return ("/v2/me/devices", {"messageType": "DeviceStateChangeMessage", "devices": [{"id": DEV, "userState": us}]})


def _channel(channel, state):
    return ("/v2/me/channels", {"messageType": "ChannelStateChangeMessageV2",
                                "channels": [{"channel": channel, "userState": {"state": state}}]})


def _call(cid, state, nt="StatusChange", **extra):
    call = {"id": cid, "state": state, "deviceUri": f"http://gws/api/v2/devices/{DEV}", **extra}
    return ("/v2/me/calls", {"messageType": "CallStateChangeMessage", "notificationType": nt, "call": call})


def _email(eid, state, nt="StatusChange", **extra):
    return ("/v2/me/emails", {"messageType": "EmailStateChangeMessage", "notificationType": nt,
                              "email": {"id": eid, "state": state, **extra}})


def _chat(cid, state, nt, **extra):
    return ("/v2/me/chats", {"messageType": "ChatStateChangeMessage", "notificationType": nt,
                             "chat": {"id": cid, "state": state}, **extra})


ORIG, CONSULT = "01RCC3N118B1V0SL807GK2LAES000009", "01RCC3N118B1V0SL807GK2LAES00000B"
VOICE = "/api/v2/me/channels/voice"


def build_rules_capture(db: Path) -> None:
    recs = [
        _ex("start", 0, "/api/v2/me", {"operationName": "StartContactCenterSession", "channels": ["voice", "chat"]}),
        _events("e0", 0.1, _device("NotReady")),
        # AfterCallWork: NotReady with workMode AfterCallWork (8.6 L4890-4930)
        _ex("acw", 1, VOICE, {"operationName": "AfterCallWork"}),
        _events("e1", 1.05, _device("NotReady", "AfterCallWork")),
        # AuxWork while a plain NotReady arrives first: only NotReady/AuxWork completes it
        _ex("aux", 2, VOICE, {"operationName": "AuxWork"}),
        _events("e2a", 2.02, _device("NotReady")),
        _events("e2b", 2.06, _device("NotReady", "AuxWork")),
        # NotReady with an explicit workmode and a reasonCode
        _ex("nr_wm", 3, VOICE, {"operationName": "NotReady", "workmode": "LegalGuard", "reasonCode": "Lunch"}),
        _events("e3a", 3.02, _device("NotReady", "AfterCallWork")),
        _events("e3b", 3.07, _device("NotReady", "LegalGuard", "Lunch")),
        # a plain NotReady with a reasonCode: any workMode
        _ex("nr_reason", 4, VOICE, {"operationName": "NotReady", "reasonCode": "Break"}),
        _events("e4", 4.03, _device("NotReady", None, "Break")),
        # Ready on the chat channel: not the voice device's Ready
        _ex("ready_chat", 5, "/api/v2/me/channels/chat", {"operationName": "Ready"}),
        _events("e5a", 5.01, _device("Ready")),
        _events("e5b", 5.04, _channel("chat", "Ready")),
        # Ready on every channel (/me): the first of them
        _ex("ready_all", 6, "/api/v2/me", {"operationName": "Ready"}),
        _events("e6", 6.01, _channel("chat", "NotReady"), _channel("chat", "Ready"), _device("Ready")),
        # CompleteConference on the consult call: consult Released, original ParticipantsUpdated
        _events("e7", 7, _call(ORIG, "Held"),
                _call(CONSULT, "Dialing", callType="Consult",
                      parentCallUri=f"http://gws/api/v2/me/calls/{ORIG}")),
        _events("e8", 7.5, _call(CONSULT, "Established", callType="Consult",
                                 parentCallUri=f"http://gws/api/v2/me/calls/{ORIG}")),
        _ex("conf", 8, f"/api/v2/me/calls/{CONSULT}", {"operationName": "CompleteConference"}),
        _events("e9", 8.03, _call(CONSULT, "Released", callType="Consult",
                                  parentCallUri=f"http://gws/api/v2/me/calls/{ORIG}"),
                _call(ORIG, "Established", nt="ParticipantsUpdated")),
        # Email Reply: a new draft in Composing; the inbound email completing later is not it
        _events("e10", 9, _email("0000Na9B26EF002X", "Processing")),
        _ex("reply", 10, "/api/v2/me/emails/0000Na9B26EF002X", {"operationName": "Reply"}),
        _events("e11", 10.004, _email("0000Na9B26EF0030", "Composing", parentId="0000Na9B26EF002X")),
        _ex("send", 10.3, "/api/v2/me/emails/0000Na9B26EF0030", {"operationName": "Send"}),
        _events("e12", 10.33, _email("0000Na9B26EF0030", "Sent")),
        _events("e13", 10.4, _email("0000Na9B26EF002X", "Completed")),
        # documented without a notification
        _ex("focus", 11, "/api/v2/me/emails/0000Na9B26EF002X", {"operationName": "SetInFocus", "inFocus": True}),
        _ex("cancel_consult", 11.5, "/api/v2/me/chats/0001BaBFVPR20035", {"operationName": "CancelConsult"}),
        _events("e14", 11.6, ("/v2/me/chats", {"messageType": "ChatStateChangeMessage", "notificationType": "Error",
                                               "errorMessage": "No consultation in progress",
                                               "chat": {"id": "0001BaBFVPR20035", "state": "Chatting"}})),
        # the customer side of a chat: no Authorization, no CometD
        _ex("customer", 12, "/api/v2/chats/0001BaBFVPR20035", {"operationName": "SendMessage", "text": "hi"},
            user=None, headers=[("ContactCenterId", "cc1")]),
        # a chat Consult answered with referenceId 5: the chat's news about operation 7 is not its outcome
        _ex("consult", 12.3, "/api/v2/me/chats/0001BaBFVPR20035", {"operationName": "Consult", "toAgentId": "a2"},
            resp={"statusCode": 0, "referenceId": 5}),
        _events("e15", 12.32, _chat("0001BaBFVPR20035", "Chatting", "PropertiesUpdated", referenceId=7),
                _chat("0001BaBFVPR20035", "Chatting", "ParticipantsUpdated", referenceId=5)),
        # DND of one channel: that channel's ChannelStateChangeMessageV2; of voice: the device
        _ex("dnd_chat", 12.5, "/api/v2/me/channels/chat", {"operationName": "DoNotDisturbOn"}),
        _events("e16", 12.51, _device("Ready"), _channel("chat", "Ready")),
        _ex("dnd_voice", 12.7, "/api/v2/me/channels/voice", {"operationName": "DoNotDisturbOn"}),
        _events("e17", 12.72, _device("Ready")),
        _ex("end", 13, "/api/v2/me", {"operationName": "EndContactCenterSession"}),
        _ex("end_failed", 14, "/api/v2/me", {"operationName": "EndContactCenterSession"}, status=500,
            resp={"statusCode": 1}),
    ]
    w = CaptureWriter(db)
    w.write_records(recs)
    w.close()


def test_operation_rules(tmp_path):
    db = tmp_path / "rules.duckdb"
    build_rules_capture(db)
    con = duckdb.connect(str(db), read_only=True)
    rows = {r[0]: r[1:] for r in con.execute("""
        SELECT o.flow_id, o.outcome, o.match_kind, o.expected_state, round(o.completion_latency_ms),
               m.resource_id, m.resource_state, m.notification_type,
               m.data->>'$.devices[0].userState.workMode'
        FROM operations o LEFT JOIN bayeux_messages m ON m.id = o.outcome_message_id""").fetchall()}
    assert rows["start"][:2] == ("completed", "device_any")
    assert rows["acw"] == ("completed", "user_state", "NotReady:AfterCallWork", 50, DEV, "NotReady", None,
                           "AfterCallWork")
    assert rows["aux"][:4] == ("completed", "user_state", "NotReady:AuxWork", 60)
    assert rows["nr_wm"][:4] == ("completed", "user_state", "NotReady:LegalGuard", 70)
    assert rows["nr_reason"][:4] == ("completed", "user_state", "NotReady", 30)
    assert rows["ready_chat"][:6] == ("completed", "user_state", "Ready", 40, "chat", "Ready")
    assert rows["ready_all"][:6] == ("completed", "user_state", "Ready", 10, "chat", "Ready")
    assert rows["conf"] == ("completed", "merged_call", "ParticipantsUpdated", 30, ORIG, "Established",
                            "ParticipantsUpdated", None)
    assert rows["reply"][:7] == ("completed", "new_resource", "email:Composing", 4, "0000Na9B26EF0030", "Composing",
                                 "StatusChange")
    assert rows["send"][:2] == ("completed", "resource_any")
    assert rows["consult"][:2] == ("completed", "resource_any") and rows["consult"][6] == "ParticipantsUpdated"
    assert rows["dnd_chat"][:2] == ("completed", "channel_any") and rows["dnd_chat"][4:6] == ("chat", "Ready")
    assert rows["dnd_voice"][:2] == ("completed", "channel_any") and rows["dnd_voice"][4] == DEV
    # no notification documented: completed by the HTTP answer ...
    for fid in ("focus", "customer", "end"):
        assert rows[fid][:2] == ("acknowledged", "ack_only") and rows[fid][3] == 20, fid
        assert rows[fid][4] is None
    # ... unless a failure about the resource arrives, or the HTTP answer is an error
    assert rows["cancel_consult"][:2] == ("failed", "ack_only")
    assert rows["end_failed"][:2] == ("http_error", "ack_only") and rows["end_failed"][3] is None
    assert assert_matches_reference(con) == len(rows)


def test_correlation_capture_matches_reference(tmp_path):
    from test_capture_unit import build_correlation_capture

    db = tmp_path / "corr.duckdb"
    build_correlation_capture(db)
    con = duckdb.connect(str(db), read_only=True)
    assert assert_matches_reference(con) > 5


def test_analysis_demo_capture_matches_reference(tmp_path):
    from gwsreplay.analysis.synthetic import build_demo_capture

    db = build_demo_capture(tmp_path / "synthetic.duckdb")
    con = duckdb.connect(str(db), read_only=True)
    n = assert_matches_reference(con)
    assert n > 100
    outcomes = dict(con.execute("SELECT outcome, count(*) FROM operations GROUP BY ALL").fetchall())
    assert outcomes["completed"] > 0.8 * n, outcomes


# --------------------------------------------------------------------------- upgrade of older captures

@pytest.mark.parametrize("revision", ["1", "2"])
def test_older_default_rules_are_upgraded_unless_edited(tmp_path, revision):
    for edited in (False, True):
        db = tmp_path / f"old-{revision}-{edited}.duckdb"
        con = duckdb.connect(str(db))
        schema.create_schema(con)
        con.execute("DELETE FROM operation_expectations")
        con.execute("DELETE FROM meta WHERE key = 'expectations_revision'")
        if revision != "1":
            con.execute("INSERT INTO meta VALUES ('expectations_revision', ?)", [revision])
        rows = sorted(schema._expectation_rows_by_revision()[revision], key=str)
        if edited:
            rows = [r for r in rows if r[0] != "Hold"]
        con.executemany("INSERT INTO operation_expectations VALUES (?, ?, ?, ?)", rows)
        old_rows = set(rows)
        con.close()
        CaptureWriter(db).close()        # reopened by a newer writer
        con = duckdb.connect(str(db), read_only=True)
        now = set(con.execute("SELECT * FROM operation_expectations").fetchall())
        rev = con.execute("SELECT value FROM meta WHERE key = 'expectations_revision'").fetchall()
        if edited:
            assert now == old_rows and rev == [("edited",)]
        else:
            assert now == set(schema.expectation_rows()) and rev == [(str(schema.EXPECTATIONS_REVISION),)]
        con.close()


# --------------------------------------------------------------------------- simulator capture

async def test_simulator_capture_outcomes_and_reference(tmp_path, sim):
    """Scripted agents on every channel through mitmdump: every AfterCallWork, CompleteConference,
    Reply and EndContactCenterSession gets its outcome, and the fast view equals the reference."""
    from gwsreplay.client.agents import AgentsConfig, run_agents
    from test_capture_proxy import Proxy

    db = tmp_path / "sim-ops.duckdb"
    proxy = Proxy(sim.port, db)
    try:
        summary = await run_agents(AgentsConfig(
            target=f"http://127.0.0.1:{proxy.port}", agents=4, duration=8.0, seed=11, think_time=0.05,
            talk_time=0.1, channels=("voice", "chat", "email", "workitem", "im"),
            scenarios=("conference", "email", "not_ready_break", "chat", "im")))
        assert summary.logged_in == 4 and not summary.failures, summary
        await asyncio.sleep(0.3)
    finally:
        assert await asyncio.to_thread(proxy.stop) == 0
    con = duckdb.connect(str(db), read_only=True)
    n = assert_matches_reference(con)
    by_op = {}
    for op, outcome, k in con.execute("SELECT operation_name, outcome, count(*) FROM operations GROUP BY ALL").fetchall():
        by_op.setdefault(op, {})[outcome] = k
    for op in ("AfterCallWork", "CompleteConference", "Reply", "Hangup", "Answer"):
        assert set(by_op.get(op, {"completed": 1})) == {"completed"}, (op, by_op.get(op))
    assert set(by_op["EndContactCenterSession"]) == {"acknowledged"}
    for op in ("AfterCallWork", "CompleteConference", "Reply"):
        assert by_op.get(op, {}).get("completed", 0) > 0, (op, by_op)
    # Reply completes on the new draft, a few milliseconds after the request
    for lat, state in con.execute("""
            SELECT completion_latency_ms, m.resource_state FROM operations o
            JOIN bayeux_messages m ON m.id = o.outcome_message_id WHERE o.operation_name = 'Reply'""").fetchall():
        assert state == "Composing" and lat < 200
    # a merged conference completes on the original call, not on the consult call the request named
    for requested, merged in con.execute("""
            SELECT o.resource_id, m.call_id FROM operations o
            JOIN bayeux_messages m ON m.id = o.outcome_message_id
            WHERE o.operation_name = 'CompleteConference'""").fetchall():
        assert requested != merged
    assert n > 30


# --------------------------------------------------------------------------- the operations table

def test_outcome_in_a_later_flush_than_the_request(tmp_path):
    """The request is committed in one flush, its notification in the next: a snapshot between the two
    sees the operation without its outcome (the window is still open), the next snapshot and the
    closed capture see it completed by the right message."""
    import subprocess
    import sys

    from gwsreplay.capture import opindex

    def snapshot(db, out):                  # another process, as while recording (the file is held)
        subprocess.run([sys.executable, "-m", "gwsreplay.cli.main", "snapshot", "--db", str(db), "--out", str(out)],
                       check=True, capture_output=True, timeout=60)
        return out

    db = tmp_path / "flushes.duckdb"
    w = CaptureWriter(db, flush_interval=0.05).start()
    try:
        w.submit(_ex("hold", 1, f"/api/v2/me/calls/{'c' * 32}", {"operationName": "Hold"}))
        w.flush(timeout=60)
        first = snapshot(db, tmp_path / "snap1.duckdb")
        w.submit(_events("ev", 1.04, _call("c" * 32, "Held")))
        w.flush(timeout=60)
        second = snapshot(db, tmp_path / "snap2.duckdb")
    finally:
        w.close()
    want = []
    for path in (first, second, db):
        con = duckdb.connect(str(path), read_only=True)
        assert opindex.is_fresh(con), path
        want.append(con.execute("SELECT o.outcome, o.matched_by, round(o.completion_latency_ms), m.resource_state "
                                "FROM operations o LEFT JOIN bayeux_messages m ON m.id = o.outcome_message_id"
                                ).fetchall())
        con.close()
    assert want[0] == [("no_notification", None, None, None)]
    assert want[1] == want[2] == [("completed", "rule", 40, "Held")]


def _make_old_style(db: Path) -> None:
    """Turn a capture into what schema_version 1 wrote: operations is the view, no table, no index state."""
    from gwsreplay.capture import opindex

    con = duckdb.connect(str(db))
    con.execute("DROP TABLE operations")
    con.execute(schema.OPERATIONS_SQL.replace("VIEW operations_view AS", "VIEW operations AS"))
    con.execute("SELECT * FROM operations LIMIT 1").fetchall()
    con.execute("DROP VIEW operations_view")
    con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    con.execute("DELETE FROM meta WHERE key = ?", [opindex.META_KEY])
    con.close()


def test_gwsreplay_index_on_an_old_capture_gives_the_same_rows(tmp_path, caplog):
    from gwsreplay.analysis import db as analysis_db
    from gwsreplay.capture import opindex
    from gwsreplay.cli.main import main as cli_main

    db = tmp_path / "old.duckdb"
    build_rules_capture(db)
    con = duckdb.connect(str(db), read_only=True)
    fresh_rows = con.execute("SELECT * FROM operations ORDER BY exchange_id").fetchall()
    con.close()
    _make_old_style(db)
    con = duckdb.connect(str(db), read_only=True)
    view_rows = con.execute("SELECT * FROM operations ORDER BY exchange_id").fetchall()
    assert con.execute("SELECT table_type FROM information_schema.tables WHERE table_name = 'operations'"
                       ).fetchone()[0] == "VIEW"
    con.close()
    assert view_rows == fresh_rows and len(view_rows) > 10
    # analysis of the old file computes on the fly (same rows) and says to run gwsreplay index
    con = analysis_db.open_capture(db)
    assert con.execute("SELECT * FROM operations ORDER BY exchange_id").fetchall() == view_rows
    con.close()
    assert "gwsreplay index" in caplog.text
    assert cli_main(["index", "--db", str(db), "--check"]) == 1
    assert cli_main(["index", "--db", str(db)]) == 0
    assert cli_main(["index", "--db", str(db), "--check"]) == 0
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == \
        str(schema.SCHEMA_VERSION)
    assert con.execute("SELECT table_type FROM information_schema.tables WHERE table_name = 'operations'"
                       ).fetchone()[0] == "BASE TABLE"
    assert opindex.is_fresh(con)
    assert con.execute("SELECT * FROM operations ORDER BY exchange_id").fetchall() == view_rows
    con.close()
    # a writer reopening an old file upgrades it too, and a killed recorder's stale table is detected
    _make_old_style(db)
    CaptureWriter(db).close()
    con = duckdb.connect(str(db))
    assert opindex.is_fresh(con) and con.execute("SELECT * FROM operations ORDER BY exchange_id").fetchall() == view_rows
    con.execute("INSERT INTO exchanges (id, method, path, operation_name, user_name, ts_request_start) "
                "SELECT max(id) + 1, 'POST', '/api/v2/me', 'Ready', 'agent1', max(ts_request_start) FROM exchanges")
    assert not opindex.is_fresh(con)            # written after the last index (a recorder killed with SIGKILL)
    con.execute("UPDATE meta SET value = '5000' WHERE key = 'correlation_window_ms'")
    con.close()
    con = analysis_db.open_capture(db)          # edited window: recomputed on the fly, not the stale table
    assert con.execute("SELECT count(*) FROM operations").fetchone()[0] == len(view_rows) + 1
    con.close()
