"""Unit tests for gwsreplay.capture and the capture addon (no sockets)."""

from __future__ import annotations

import base64
import gzip
import os
import json
import time
from pathlib import Path

import duckdb
import pytest
from mitmproxy import flow
from mitmproxy import io as mio
from mitmproxy.test import taddons, tflow
from mitmproxy.websocket import WebSocketMessage

from gwsreplay.capture import schema
from gwsreplay.capture.classify import classify_bayeux, classify_http
from gwsreplay.capture.importer import import_har, import_mitm
from gwsreplay.capture.records import HttpRecord, WsEndRecord, WsFrameRecord
from gwsreplay.capture.redact import MASK, Redactor, basic_user
from gwsreplay.capture.arrow import rows_to_table
from gwsreplay.capture.bayeux_rows import python_bayeux_rows
from gwsreplay.capture.bayeux_sql import StagedBody
from gwsreplay.capture.snapshot import SnapshotError, _ask_writer, snapshot
from gwsreplay.capture.writer import CaptureWriter, snapshot_paths
from gwsreplay.proxy.capture import Capture


BC = "(SELECT count(*) FROM bayeux_messages m WHERE m.exchange_id = e.id)"


def basic(user: str, pw: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


# --------------------------------------------------------------------------- classification

@pytest.mark.parametrize("method,path,body,expect", [
    ("GET", "/api/v2/me?subresources=*", None, ("agent", "me", None, None)),
    ("POST", "/api/v2/me", {"operationName": "StartContactCenterSession"}, ("agent", "me", None, "StartContactCenterSession")),
    ("POST", "/api/v2/me/channels/voice", {"operationName": "Ready"}, ("agent", "channel", "voice", "Ready")),
    ("POST", "/api/v2/me/calls/013V08JRL498H10I04000VTAES000015", {"operationName": "Answer"},
     ("voice", "call", "013V08JRL498H10I04000VTAES000015", "Answer")),
    ("POST", "/api/v2/me/calls/007102385535e00a", {"operationName": "Hold"}, ("voice", "call", "007102385535e00a", "Hold")),
    ("POST", "/api/v2/me/devices/9c14cad7-17c4-48d0-8492-7cf0ff92c224/calls", {"operationName": "Dial"},
     ("voice", "device", "9c14cad7-17c4-48d0-8492-7cf0ff92c224", "Dial")),
    ("GET", "/api/v2/me/calls", None, ("voice", "call", None, None)),
    ("POST", "/cloud-web/api/v2/me/chats/0001BaBFVPR20035", {"operationName": "Accept"},
     ("multimedia", "chat", "0001BaBFVPR20035", "Accept")),
    ("POST", "/api/v2/me/emails/0000Na9B26EF002X", {"operationName": "Reply"}, ("multimedia", "email", "0000Na9B26EF002X", "Reply")),
    ("POST", "/api/v2/me/workitems/03W07R2K4VAYT010", {"operationName": "Complete"},
     ("multimedia", "workitem", "03W07R2K4VAYT010", "Complete")),
    ("POST", "/api/v2/me/im-sessions", {"operationName": "InitiateIMSession"}, ("multimedia", "im-session", None, "InitiateIMSession")),
    ("POST", "/api/v2/me/workbins/aee812a5?agentGroup=G", {"operationName": "Subscribe"},
     ("multimedia", "workbin", "aee812a5", "Subscribe")),
    ("POST", "/api/v2/me/openmedia/promotions/0001ABC", {"operationName": "Accept"},
     ("multimedia", "openmedia", "0001ABC", "Accept")),
    ("POST", "/api/v2/users/6c991eb2c1ba48d5b637d569a5295388/channels/chat", {"operationName": "Ready"},
     ("agent", "channel", "chat", "Ready")),
    ("POST", "/api/v2/chats", {"operationName": "RequestChat"}, ("customer-chat", "chat", None, "RequestChat")),
    ("GET", "/api/v2/platform/configuration/agent-logins/101", None, ("configuration", "agent-logins", "101", None)),
    ("GET", "/api/v1/stats/abc", None, ("statistics", "statistic", "abc", None)),
    ("POST", "/api/v2/notifications/connect", [{"channel": "/meta/connect"}], ("notifications", "bayeux", None, None)),
    ("GET", "/sim/v1/stats", None, ("sim", "stats", None, None)),
    ("GET", "/favicon.ico", None, ("other", None, None, None)),
])
def test_classify_http(method, path, body, expect):
    c = classify_http(method, path, body, {"statusCode": 0})
    assert (c.api_area, c.resource_type, c.resource_id, c.operation_name) == expect
    assert c.status_code == 0


def test_classify_http_status_and_reference():
    c = classify_http("POST", "/api/v2/me/chats/1", {"operationName": "Invite"},
                      {"statusCode": "0", "referenceId": 35})
    assert c.status_code == 0 and c.reference_id == "35"
    c = classify_http("POST", "/api/v2/me", {"operationName": "Ready"},
                      {"statusCode": 4, "statusMessage": "Voice service is not available at this time"})
    assert c.status_code == 4 and c.status_message.startswith("Voice")


CALL_86 = {"channel": "/v2/me/calls", "data": {
    "notificationType": "StatusChange", "messageType": "CallStateChangeMessage", "phoneNumber": "5005",
    "call": {"id": "013V08JRL498H10I04000VTAES000015", "state": "Established", "connId": "0072026cb98d140f",
             "callUuid": "013V08JRL498H10I04000VTAES000015",
             "deviceUri": "http://127.0.0.1:8080/api/v2/devices/efe1ab32-53f9-43ce-b65e-5768c61f7d4a",
             "participants": [{"phoneNumber": "5000"}]}}}
CALL_852 = {"channel": "/v2/me/calls", "data": {
    "notificationType": "StatusChange", "messageType": "CallStateChangeMessage",
    "call": {"id": "007102385535e00a", "state": "Ringing", "participants": ["5001"],
             "participantsInfo": [{"digits": "5001"}]}}}


@pytest.mark.parametrize("msg,expect", [
    (CALL_86, ("CallStateChangeMessage", "call", "013V08JRL498H10I04000VTAES000015", "Established")),
    (CALL_852, ("CallStateChangeMessage", "call", "007102385535e00a", "Ringing")),
    ({"channel": "/v2/me/devices", "data": {"messageType": "DeviceStateChangeMessage", "devices": [
        {"id": "9c14", "userState": {"state": "NotReady", "displayName": "Not Ready"}}]}},
     ("DeviceStateChangeMessage", "device", "9c14", "NotReady")),
    ({"channel": "/v2/me/calls", "data": {"messageType": "ErrorMessage",
                                          "deviceUri": "http://h/api/v2/devices/efe1",
                                          "callUri": "http://h/api/v2/calls/0071023821aec021",
                                          "errorMessage": "Incorrect object state"}},
     ("ErrorMessage", "call", "0071023821aec021", "Error")),
    ({"channel": "/notifications/services", "data": {"messageType": "ServiceStateChangeMessage", "service": {
        "id": "370e", "name": "SIPS", "type": "Voice", "state": "Inactive"}}},
     ("ServiceStateChangeMessage", "service", "370e", "Inactive")),
    ({"channel": "/v2/me/chats", "data": {"messageType": "ChatStateChangeMessage", "notificationType": "StatusChange",
                                          "referenceId": 35, "chat": {"id": "0001BaB", "state": "Chatting"}}},
     ("ChatStateChangeMessage", "chat", "0001BaB", "Chatting")),
    ({"channel": "/v2/me/chats", "data": {"messageType": "MessageLogUpdated", "notificationType": "NewMessages",
                                          "chatUri": "http://h/api/v2/chats/0001BaB", "messages": []}},
     ("MessageLogUpdated", "chat", "0001BaB", None)),
    ({"channel": "/v2/me/emails", "data": {"messageType": "EmailStateChangeMessage",
                                           "email": {"id": "0000Na9", "state": "Processing"}}},
     ("EmailStateChangeMessage", "email", "0000Na9", "Processing")),
    ({"channel": "/v2/me/workitems", "data": {"messageType": "WorkitemStateChangeMessage", "referenceId": 6,
                                              "workitem": {"id": "03W07", "state": "Processing"}}},
     ("WorkitemStateChangeMessage", "workitem", "03W07", "Processing")),
    ({"channel": "/v2/me/im-sessions", "data": {"messageType": "IMSessionStateChangeMessage",
                                                "imSession": {"id": "123", "state": "Talking"}}},
     ("IMSessionStateChangeMessage", "im-session", "123", "Talking")),
    ({"channel": "/v2/me/im-sessions", "data": {"messageType": "IMLogUpdateMessage",
                                                "imSessionPath": "/im-sessions/123", "message": "hi"}},
     ("IMLogUpdateMessage", "im-session", "123", None)),
    ({"channel": "/v2/me/workbins", "data": {"messageType": "WorkbinSubscriptionStateChangeMessage",
                                             "id": "aee8", "stateResource": "Subscribed", "referenceId": 14}},
     ("WorkbinSubscriptionStateChangeMessage", "workbin", "aee8", "Subscribed")),
    ({"channel": "/v2/me/channels", "data": {"messageType": "ChannelStateChangeMessageV2", "channels": [
        {"channel": "chat", "userState": {"state": "Ready"}}]}},
     ("ChannelStateChangeMessageV2", "channel", "chat", "Ready")),
    ({"channel": "/meta/connect", "id": "21", "successful": True, "advice": {"timeout": 30000}},
     (None, None, None, None)),
])
def test_classify_bayeux(msg, expect):
    c = classify_bayeux(msg)
    assert (c.message_type, c.resource_type, c.resource_id, c.resource_state) == expect


def test_classify_bayeux_852_and_86_call_ids():
    c86, c852 = classify_bayeux(CALL_86), classify_bayeux(CALL_852)
    assert c86.call_id == "013V08JRL498H10I04000VTAES000015" and c86.conn_id == "0072026cb98d140f"
    assert c86.device_id == "efe1ab32-53f9-43ce-b65e-5768c61f7d4a"
    assert c852.call_id == c852.conn_id == "007102385535e00a"
    ref = classify_bayeux({"channel": "/v2/me/workitems", "data": {"messageType": "WorkitemStateChangeMessage",
                                                                   "referenceId": 6, "workitem": {"id": "x"}}})
    assert ref.reference_id == "6"


def test_classify_bayeux_never_raises_on_odd_shapes():
    for m in (None, 1, "x", [], {"data": None}, {"data": {"messageType": "CallStateChangeMessage", "call": 3}},
              {"data": {"messageType": "DeviceStateChangeMessage", "devices": "?"}},
              {"channel": 5, "data": {"messageType": ["x"]}}):
        classify_bayeux(m)


# --------------------------------------------------------------------------- redaction

def test_redaction_headers():
    r = Redactor()
    assert r.header("Authorization", basic("agent1", "s3cret")) == "Basic agent1:<redacted>"
    assert basic_user(basic("agent1", "a:b")) == "agent1"
    ck = r.header("Cookie", "JSESSIONID=abc; AWSELB=xyz")
    assert "abc" not in ck and "xyz" not in ck and ck.startswith("JSESSIONID=hmac:")
    sc = r.header("Set-Cookie", "JSESSIONID=abc; Path=/; HttpOnly")
    assert sc == f"JSESSIONID={r.hash('abc')}; Path=/; HttpOnly"
    assert ck.split(";")[0] == sc.split(";")[0]          # stable within a capture
    assert r.header("X-CSRF-TOKEN", "tok") == r.hash("tok")
    assert Redactor().hash("abc") != r.hash("abc")         # key random per capture
    assert r.header("Bearer-ish", "v") == "v"
    r2 = Redactor(headers=["ContactCenterId"])
    assert r2.header("contactcenterid", "cfe5") == r2.hash("cfe5")
    off = Redactor(enabled=False)
    assert off.header("Authorization", basic("a", "b")) == basic("a", "b")


def test_redaction_bodies():
    r = Redactor(json_paths=["$.userData.ssn", "secretField"])
    body = {"operationName": "StartContactCenterSession", "agentLoginPassword": "pw1",
            "nested": [{"Password": "pw2"}], "userData": {"ssn": "123", "other": "ok"}, "x": {"secretField": 1}}
    out, changed = r.json(body)
    assert changed
    assert out["agentLoginPassword"] == MASK and out["nested"][0]["Password"] == MASK
    assert out["userData"] == {"ssn": MASK, "other": "ok"} and out["x"]["secretField"] == MASK
    assert "pw9" not in r.text('[{"password": "pw9", "a":1}, {"agentLoginPassword":"pw')
    assert "pw9" not in r.text('{"password":"pw9')
    assert r.text("user=a&password=pw9&x=1") == f"user=a&password={MASK}&x=1"
    assert "pw9" not in r.query("password=pw9&a=1")
    assert Redactor().config()["body_fields"] == ["agentloginpassword", "password"]


# --------------------------------------------------------------------------- addon + Bayeux extraction

def _capture(tmp_path: Path, **opts):
    cap = Capture()
    tctx = taddons.context(cap)
    tctx.configure(cap, capture_db=str(tmp_path / "unit.duckdb"), capture_flush_ms=20, **opts)
    return cap, tctx


def _rows(db: Path, sql: str):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _poll_flow(req_msgs, resp_msgs, cookie="JSESSIONID=s1", path="/api/v2/notifications/connect"):
    f = tflow.tflow(resp=True)
    f.request.method = "POST"
    f.request.path = path
    f.request.headers["Cookie"] = cookie
    f.request.headers["Content-Type"] = "application/json"
    f.request.content = json.dumps(req_msgs).encode()
    f.response.headers["Content-Type"] = "application/json"
    f.response.content = json.dumps(resp_msgs).encode()
    f.request.timestamp_start = 1000.0
    f.response.timestamp_start = 1001.5
    return f


def test_addon_extracts_every_bayeux_message(tmp_path):
    cap, tctx = _capture(tmp_path)
    with tctx:
        f = _poll_flow([{"channel": "/meta/connect", "clientId": "c1", "id": "7", "connectionType": "long-polling"},
                        {"channel": "/meta/subscribe", "clientId": "c1", "id": "8", "subscription": "/v2/me/*"}],
                       [CALL_86, {"channel": "/meta/subscribe", "id": "8", "successful": True,
                                  "subscription": "/v2/me/*"},
                        {"channel": "/meta/connect", "id": "7", "successful": True,
                         "advice": {"interval": 0, "timeout": 30000, "reconnect": "retry"}}])
        cap.request(f)
        cap.response(f)
        cap.response(f)            # a second hook call must not double-record
        cap.done()
    db = tmp_path / "unit.duckdb"
    rows = _rows(db, "SELECT direction, position, channel, client_id, msg_id, subscription, connection_type, "
                     "message_type, call_id, epoch(ts), advice->>'$.timeout', exchange_id "
                     "FROM bayeux_messages ORDER BY id")
    assert [r[:3] for r in rows] == [("c2s", 0, "/meta/connect"), ("c2s", 1, "/meta/subscribe"),
                                     ("s2c", 0, "/v2/me/calls"), ("s2c", 1, "/meta/subscribe"),
                                     ("s2c", 2, "/meta/connect")]
    assert rows[0][3:7] == ("c1", "7", None, "long-polling")
    assert rows[1][5] == "/v2/me/*"
    assert rows[2][7:9] == ("CallStateChangeMessage", "013V08JRL498H10I04000VTAES000015")
    assert rows[0][9] == 1000.0 and rows[2][9] == 1001.5      # c2s: request start; s2c: response start
    assert rows[4][10] == "30000"
    ex = _rows(db, f"SELECT id, {BC}, is_bayeux, api_area FROM exchanges e")
    assert ex == [(rows[0][11], 5, True, "notifications")]


def test_addon_websocket_frames_are_trimmed_and_recorded(tmp_path):
    cap, tctx = _capture(tmp_path)
    with tctx:
        f = tflow.twebsocketflow(messages=False)
        f.request.headers["Cookie"] = "JSESSIONID=w1"
        f.request.path = "/api/v2/notifications"
        cap.response(f)
        for i in range(50):
            f.websocket.messages.append(WebSocketMessage(
                1, True, json.dumps([{"channel": "/meta/connect", "id": str(i), "clientId": "c9"}]).encode(),
                timestamp=2000.0 + i))
            cap.websocket_message(f)
            f.websocket.messages.append(WebSocketMessage(
                1, False, json.dumps([CALL_852, {"channel": "/meta/connect", "id": str(i),
                                                 "successful": True}]).encode(), timestamp=2000.5 + i))
            cap.websocket_message(f)
            assert len(f.websocket.messages) == 1        # trimmed: only the newest is kept
        f.websocket.close_code = 1000
        cap.websocket_end(f)
        cap.done()
    db = tmp_path / "unit.duckdb"
    assert _rows(db, "SELECT count(*), max(frame_index) FROM websocket_frames") == [(100, 99)]
    assert _rows(db, "SELECT count(*) FROM bayeux_messages WHERE transport = 'websocket'") == [(150,)]
    assert _rows(db, "SELECT epoch(ts) FROM bayeux_messages WHERE frame_index = 1 AND position = 0") == [(2000.5,)]
    assert _rows(db, "SELECT frames, close_code FROM websocket_connections") == [(100, 1000)]
    assert _rows(db, "SELECT count(DISTINCT exchange_id) FROM bayeux_messages") == [(1,)]


def test_addon_records_errors_and_inflight_at_shutdown(tmp_path):
    cap, tctx = _capture(tmp_path)
    with tctx:
        refused = tflow.tflow(err=True)
        refused.error.msg = "Connection refused"
        cap.request(refused)
        cap.error(refused)
        held = _poll_flow([{"channel": "/meta/connect", "clientId": "c1", "id": "9"}], [])
        held.response = None
        cap.request(held)
        cap.done()
    db = tmp_path / "unit.duckdb"
    rows = _rows(db, f"SELECT error, status, {BC} FROM exchanges e ORDER BY id")
    assert rows == [("Connection refused", None, 0), ("capture ended before the response", None, 1)]


# --------------------------------------------------------------------------- correlation

T0 = 1_700_000_000.0
DEV = "efe1ab32-53f9-43ce-b65e-5768c61f7d4a"


def _ex(fid, t, path, body, resp=None, status=200, cookie="JSESSIONID=s1", auth=None, t_resp=None,
        set_cookie=None):
    hdrs = [("Cookie", cookie), ("Content-Type", "application/json")]
    resp_hdrs = [("Content-Type", "application/json")] + ([("Set-Cookie", set_cookie)] if set_cookie else [])
    if auth:
        hdrs.append(("Authorization", auth))
    return HttpRecord(flow_id=fid, method="POST" if body is not None else "GET", host="gws", port=8090, path=path,
                      request_headers=hdrs, request_body=json.dumps(body).encode() if body is not None else None,
                      status=status, response_headers=resp_hdrs,
                      response_body=json.dumps(resp if resp is not None else {"statusCode": 0}).encode(),
                      ts_request_start=T0 + t, ts_request_end=T0 + t,
                      ts_response_start=T0 + (t_resp if t_resp is not None else t + 0.02),
                      ts_response_end=T0 + (t_resp if t_resp is not None else t + 0.02))


def _events(fid, t, *datas, cookie="JSESSIONID=s1"):
    msgs = [{"channel": ch, "data": d} for ch, d in datas] + [
        {"channel": "/meta/connect", "id": fid, "successful": True}]
    return _ex(fid, t - 5, "/api/v2/notifications/connect",
               [{"channel": "/meta/connect", "clientId": "c1", "id": fid}], resp=msgs, cookie=cookie, t_resp=t)


def _call(cid, state, conn=None, nt="StatusChange", **extra):
    call = {"id": cid, "state": state, "deviceUri": f"http://gws/api/v2/devices/{DEV}"}
    if conn:
        call["connId"] = conn
    call.update(extra)
    return ("/v2/me/calls", {"messageType": "CallStateChangeMessage", "notificationType": nt, "call": call})


def _device(state):
    return ("/v2/me/devices", {"messageType": "DeviceStateChangeMessage",
                               "devices": [{"id": DEV, "userState": {"state": state}}]})


def build_correlation_capture(db: Path) -> None:
    w = CaptureWriter(db)
    recs = [
        _ex("login", 0, "/api/v2/me", None, resp={"statusCode": 0}, auth=basic("agent1", "pw"), cookie="x=1",
            set_cookie="JSESSIONID=s1; Path=/"),
        _ex("start", 1, "/api/v2/me", {"operationName": "StartContactCenterSession", "channels": ["voice"]}),
        _events("e1", 1.2, _device("NotReady")),
        _ex("ready", 2, "/api/v2/me/channels/voice", {"operationName": "Ready"}),
        _events("e2", 2.3, _device("Ready")),
        # 8.6 inbound call answered
        _events("e3", 3, _call("013V08JRL498H10I04000VTAES000015", "Ringing", conn="0072026cb98d140f")),
        _ex("answer", 4, "/api/v2/me/calls/013V08JRL498H10I04000VTAES000015", {"operationName": "Answer"}),
        _events("e4", 4.25, _call("013V08JRL498H10I04000VTAES000015", "Established", conn="0072026cb98d140f")),
        # Hold fails with an ErrorMessage
        _ex("hold", 5, "/api/v2/me/calls/013V08JRL498H10I04000VTAES000015", {"operationName": "Hold"}),
        _events("e5", 5.1, ("/v2/me/calls", {"messageType": "ErrorMessage",
                                              "deviceUri": f"http://gws/api/v2/devices/{DEV}",
                                              "callUri": "http://gws/api/v2/calls/013V08JRL498H10I04000VTAES000015",
                                              "errorMessage": "Incorrect object state"})),
        # Dial: the new call appears in Dialing
        _ex("dial", 6, f"/api/v2/me/devices/{DEV}/calls", {"operationName": "Dial",
                                                           "destination": {"phoneNumber": "7002"}}),
        _events("e6", 6.4, _call("013V08JRL498H10I04000VTAES000020", "Dialing")),
        # 8.5.2: call id is the connId, participants are strings
        _events("e7", 7, _call("007102385535e00a", "Ringing", participants=["5001"])),
        _ex("answer852", 8, "/api/v2/me/calls/007102385535e00a", {"operationName": "Answer"}),
        _events("e8", 8.5, _call("007102385535e00a", "Established", participants=["5001"])),
        # multimedia with referenceId
        _ex("accept", 9, "/api/v2/me/workitems/03W07R2K4VAYT010", {"operationName": "Accept"},
            resp={"statusCode": 0, "referenceId": 6}),
        _events("e9", 9.7, ("/v2/me/workitems", {"messageType": "WorkitemStateChangeMessage",
                                                  "notificationType": "StatusChange", "referenceId": 6,
                                                  "workitem": {"id": "03W07R2K4VAYT010", "state": "Processing"}})),
        # an HTTP error and an operation nobody answers
        _ex("bad", 10, "/api/v2/me/calls/nosuchcall", {"operationName": "Answer"},
            resp={"statusCode": 3, "statusMessage": "Resource not found"}, status=404),
        _ex("lost", 11, "/api/v2/me/calls/013V08JRL498H10I04000VTAES000015", {"operationName": "Retrieve"}),
        # much later, outside the window: does not count for "lost"
        _events("e10", 40, _call("013V08JRL498H10I04000VTAES000015", "Established", conn="0072026cb98d140f")),
    ]
    w.write_records(recs)
    w.close()


def test_operations_view_correlates_requests_with_outcomes(tmp_path):
    db = tmp_path / "corr.duckdb"
    build_correlation_capture(db)
    rows = {r[0]: r[1:] for r in _rows(db, """
        SELECT flow_id, operation_name, outcome, round(ack_latency_ms), round(completion_latency_ms), user_name
        FROM operations ORDER BY requested_at""")}
    assert rows["start"][:2] == ("StartContactCenterSession", "completed")
    assert rows["ready"] == ("Ready", "completed", 20, 300, "agent1")
    assert rows["answer"] == ("Answer", "completed", 20, 250, "agent1")
    assert rows["hold"][:2] == ("Hold", "error_message")
    assert rows["dial"][:2] == ("Dial", "completed") and rows["dial"][3] == 400
    assert rows["answer852"][:2] == ("Answer", "completed") and rows["answer852"][3] == 500
    assert rows["accept"][:2] == ("Accept", "completed") and rows["accept"][3] == 700
    assert rows["bad"][:2] == ("Answer", "http_error")
    assert rows["lost"][:2] == ("Retrieve", "no_notification")
    detail = _rows(db, "SELECT outcome_detail FROM operations WHERE flow_id = 'hold'")[0][0]
    assert detail == "Incorrect object state"


def test_sessions_view_groups_by_user_cookie_and_client(tmp_path):
    db = tmp_path / "corr.duckdb"
    build_correlation_capture(db)
    rows = _rows(db, "SELECT user_name, exchanges, bayeux_messages, client_ids FROM sessions ORDER BY exchanges")
    # the login request had no session cookie yet: its Set-Cookie puts it in the same session
    assert len(rows) == 1 and rows[0][0] == "agent1"
    assert rows[0][1] == 20 and rows[0][3] == ["c1"]
    assert _rows(db, "SELECT count(*) FROM bayeux_messages WHERE user_name IS NULL") == [(0,)]


# --------------------------------------------------------------------------- writer

class _NoExecutemany:
    def __init__(self, con):
        self._con = con
        self.inserts = 0

    def executemany(self, *a, **k):
        raise AssertionError("executemany on the hot path")

    def execute(self, sql, *a, **k):
        if sql.startswith("INSERT INTO"):
            self.inserts += 1
        return self._con.execute(sql, *a, **k)

    def __getattr__(self, name):
        return getattr(self._con, name)


def test_writer_batches_with_arrow_and_flushes_on_close(tmp_path):
    db = tmp_path / "w.duckdb"
    w = CaptureWriter(db, flush_interval=0.05)
    spy = w.con = _NoExecutemany(w.con)
    w.start()
    body = json.dumps([CALL_86] * 10).encode()
    n = 3000
    for i in range(n):
        assert w.submit(HttpRecord(flow_id=f"f{i}", method="POST", path="/api/v2/notifications/connect",
                                   request_headers=[("Content-Type", "application/json")], request_body=b"[]",
                                   status=200, response_headers=[("Content-Type", "application/json")],
                                   response_body=body, ts_request_start=T0, ts_response_start=T0))
    w.close()
    assert w.stats.written["exchanges"] == n and w.stats.written["bayeux_messages"] == 10 * n
    assert spy.inserts < n / 10          # batched: a few INSERT ... SELECT, not one per record
    assert w.stats.flushes >= 1 and w.stats.dropped == 0
    assert _rows(db, "SELECT count(*) FROM bayeux_messages") == [(10 * n,)]


def test_writer_queue_full_counts_drops_and_records_them(tmp_path):
    db = tmp_path / "full.duckdb"
    w = CaptureWriter(db, max_queue=5)          # not started: nothing drains the queue
    ok = [w.submit(HttpRecord(flow_id=str(i), method="GET", path="/api/v2/me")) for i in range(8)]
    assert ok == [True] * 5 + [False] * 3
    w.close()
    assert _rows(db, "SELECT kind, count FROM capture_errors") == [("dropped", 3)]
    assert _rows(db, "SELECT count(*) FROM exchanges") == [(5,)]


def test_writer_survives_bad_records(tmp_path):
    db = tmp_path / "bad.duckdb"
    w = CaptureWriter(db)
    w.write_records([HttpRecord(flow_id="ok", method="GET", path="/api/v2/me"),
                     HttpRecord(flow_id="bad", method=None, path=None),   # type: ignore[arg-type]
                     WsFrameRecord(flow_id="w", index=0, ts=T0, from_client=True, is_text=True, content=b"[]"),
                     WsEndRecord(flow_id="w", ts_start=T0, ts_end=T0 + 1, frames=1)])
    w.close()
    assert _rows(db, "SELECT flow_id FROM exchanges") == [("ok",)]
    assert _rows(db, "SELECT kind, flow_id FROM capture_errors") == [("bad_record", "bad")]


def test_rows_match_schema_column_counts(tmp_path):
    for name, cols in schema.TABLES.items():
        t = rows_to_table(cols, [])
        assert t.num_columns == len(cols), name
    con = duckdb.connect(str(tmp_path / "s.duckdb"))
    schema.create_schema(con)
    schema.create_schema(con)     # idempotent
    assert schema.schema_version(con) == schema.SCHEMA_VERSION


def test_reopening_a_capture_continues_ids(tmp_path):
    db = tmp_path / "re.duckdb"
    for _ in range(2):
        w = CaptureWriter(db)
        w.write_records([_ex("a", 0, "/api/v2/notifications", [{"channel": "/meta/handshake"}],
                             resp=[{"channel": "/meta/handshake", "successful": True, "clientId": "c"}])])
        w.close()
    assert _rows(db, "SELECT list(id ORDER BY id) FROM exchanges") == [([1, 2],)]
    assert _rows(db, "SELECT count(DISTINCT id) FROM bayeux_messages") == [(4,)]


# --------------------------------------------------------------------------- import

def _har(tmp_path: Path) -> Path:
    har = {"log": {"version": "1.2", "creator": {"name": "chrome"}, "entries": [
        {"startedDateTime": "2024-05-01T10:00:00.000Z", "time": 50,
         "request": {"method": "GET", "url": "http://gws:8090/api/v2/me", "httpVersion": "HTTP/1.1",
                     "headers": [{"name": "Authorization", "value": basic("agent7", "harpw")}], "queryString": []},
         "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1",
                      "headers": [{"name": "Set-Cookie", "value": "JSESSIONID=har1; Path=/"},
                                  {"name": "Content-Type", "value": "application/json"}],
                      "content": {"size": 15, "mimeType": "application/json", "text": '{"statusCode":0}'}},
         "timings": {"blocked": 1, "dns": 0, "connect": 0, "send": 1, "wait": 40, "receive": 8}},
        {"startedDateTime": "2024-05-01T10:00:01.000Z", "time": 30000,
         "request": {"method": "POST", "url": "http://gws:8090/api/v2/notifications/connect",
                     "headers": [{"name": "Cookie", "value": "JSESSIONID=har1"}],
                     "postData": {"mimeType": "application/json",
                                  "text": '[{"channel":"/meta/connect","clientId":"c1","id":"3"}]'}},
         "response": {"status": 200, "headers": [{"name": "Content-Type", "value": "application/json"}],
                      "content": {"mimeType": "application/json",
                                  "text": base64.b64encode(json.dumps([CALL_86, {"channel": "/meta/connect",
                                                                                  "successful": True}]).encode()).decode(),
                                  "encoding": "base64"}},
         "timings": {"send": 1, "wait": 29000, "receive": 10}},
        {"startedDateTime": "2024-05-01T10:00:02.000Z", "time": 5, "_resourceType": "websocket",
         "request": {"method": "GET", "url": "ws://gws:8090/api/v2/notifications",
                     "headers": [{"name": "Cookie", "value": "JSESSIONID=har1"}]},
         "response": {"status": 101, "headers": [], "content": {"size": 0, "mimeType": "x-unknown"}},
         "timings": {"wait": 3},
         "_webSocketMessages": [
             {"type": "send", "time": 1714557602.1, "opcode": 1,
              "data": '[{"channel":"/meta/connect","clientId":"c1","id":"4","connectionType":"websocket"}]'},
             {"type": "receive", "time": 1714557602.2, "opcode": 1,
              "data": json.dumps([CALL_852, {"channel": "/meta/connect", "id": "4", "successful": True}])},
             {"type": "receive", "time": 1714557602.3, "opcode": 2, "data": base64.b64encode(b"\x00\xff").decode()},
         ]},
        {"startedDateTime": "2024-05-01T10:00:03.000Z", "time": 0,
         "request": {"method": "GET", "url": "http://gws:8090/api/v2/me/calls", "headers": []},
         "response": {"status": 0, "headers": [], "content": {}, "_error": "net::ERR_CONNECTION_REFUSED"},
         "timings": {}},
    ]}}
    p = tmp_path / "agent.har"
    p.write_text(json.dumps(har))
    return p


def test_import_har_with_websocket_messages(tmp_path):
    db = tmp_path / "har.duckdb"
    written = import_har(_har(tmp_path), db)
    assert written["exchanges"] == 4 and written["websocket_frames"] == 3
    # the refused request carried no cookie: no user
    assert _rows(db, "SELECT user_name, count(*) FROM exchanges GROUP BY ALL ORDER BY 1") == [("agent7", 3), (None, 1)]
    rows = _rows(db, "SELECT transport, direction, channel, call_id, round(epoch(ts), 1) FROM bayeux_messages "
                     "WHERE parse_error IS NULL ORDER BY id")
    assert rows[0] == ("long-polling", "c2s", "/meta/connect", None, 1714557601.0)
    assert rows[1][3] == "013V08JRL498H10I04000VTAES000015" and rows[1][4] == 1714557630.0  # response start
    assert rows[3][:4] == ("websocket", "c2s", "/meta/connect", None)
    assert rows[4][3] == "007102385535e00a" and rows[4][4] == 1714557602.2
    assert _rows(db, "SELECT error FROM exchanges WHERE status IS NULL") == [("net::ERR_CONNECTION_REFUSED",)]
    assert b"harpw" not in db.read_bytes()
    assert _rows(db, "SELECT value FROM meta WHERE key = 'source'") == [("har",)]


def test_import_mitm_flow_file(tmp_path):
    p = tmp_path / "flows.mitm"
    with open(p, "wb") as fh:
        fw = mio.FlowWriter(fh)
        f = _poll_flow([{"channel": "/meta/connect", "clientId": "c1", "id": "1"}],
                       [CALL_852, {"channel": "/meta/connect", "id": "1", "successful": True}])
        f.request.headers["Authorization"] = basic("agent3", "mitmpw")
        fw.add(f)
        ws = tflow.twebsocketflow()
        fw.add(ws)
        g = tflow.tflow(resp=True)
        g.request.path = "/api/v2/me"
        g.response.headers["Content-Encoding"] = "gzip"
        g.response.headers["Content-Type"] = "application/json"
        g.response.raw_content = gzip.compress(b'{"statusCode":0,"user":{"userName":"agent3"}}')
        fw.add(g)
    db = tmp_path / "mitm.duckdb"
    written = import_mitm(p, db)
    assert written["exchanges"] == 3
    assert written["websocket_frames"] == len(ws.websocket.messages)
    assert _rows(db, "SELECT response_body->>'$.user.userName' FROM exchanges WHERE path = '/api/v2/me'") == [
        ("agent3",)]
    assert _rows(db, "SELECT count(*) FROM bayeux_messages WHERE transport = 'long-polling'") == [(3,)]
    assert b"mitmpw" not in db.read_bytes()


def test_cli_import_export_snapshot(tmp_path, capsys):
    from gwsreplay.cli import main

    har = _har(tmp_path)
    db = tmp_path / "cli.duckdb"
    assert main(["import", str(har), "--db", str(db)]) == 0
    assert main(["export", "--db", str(db), "--parquet", str(tmp_path / "pq")]) == 0
    con = duckdb.connect()
    assert con.execute(f"SELECT count(*) FROM '{tmp_path}/pq/exchanges.parquet'").fetchone()[0] == 4
    assert (tmp_path / "pq" / "operations.parquet").exists()
    snap = tmp_path / "snap.duckdb"
    assert main(["snapshot", "--db", str(db), "--out", str(snap)]) == 0
    assert _rows(snap, "SELECT count(*) FROM bayeux_messages") == _rows(db, "SELECT count(*) FROM bayeux_messages")
    assert _rows(snap, "SELECT count(*) FROM sessions")[0][0] >= 1
    assert main(["import", str(tmp_path / "missing.har")]) == 2


def test_snapshot_of_a_live_writer(tmp_path):
    from gwsreplay.capture.snapshot import snapshot

    db = tmp_path / "live.duckdb"
    w = CaptureWriter(db, flush_interval=0.02).start()
    try:
        for i in range(10):
            w.submit(HttpRecord(flow_id=str(i), method="GET", path="/api/v2/me", ts_request_start=time.time()))
        w.flush()
        # this process holds the file; the request-file protocol still works
        # (snapshot() falls back to it when it cannot open the file)
        from gwsreplay.capture.snapshot import _ask_writer
        out = _ask_writer(db, tmp_path / "snap.duckdb", timeout=10)
        assert _rows(out, "SELECT count(*) FROM exchanges") == [(10,)]
    finally:
        w.close()
    out2 = snapshot(db, tmp_path / "snap2.duckdb")
    assert _rows(out2, "SELECT count(*) FROM exchanges") == [(10,)]


# --------------------------------------------------------------------------- SQL vs Python classification

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_FIELDS = ["channel", "client_id", "msg_id", "successful", "error", "connection_type", "subscription",
           "message_type", "notification_type", "resource_type", "resource_id", "resource_state", "call_id",
           "conn_id", "device_id", "user_state", "reference_id", "error_message"]

CORPUS = [CALL_86, CALL_852] + [m for m, _ in [
    ({"channel": "/v2/me/devices", "data": {"messageType": "DeviceStateChangeMessage", "devices": [
        {"id": "9c14", "userState": {"state": "NotReady"}}]}}, 0),
    ({"channel": "/v2/me/calls", "data": {"messageType": "ErrorMessage", "deviceUri": "http://h/api/v2/devices/e%20f",
                                          "callUri": "http://h/api/v2/calls/0071023821aec021?x=1",
                                          "errorMessage": "Incorrect object state"}}, 0),
    ({"channel": "/v2/me/calls", "data": {"messageType": "ErrorMessage", "deviceUri": "http://h/api/v2/devices/d1"}}, 0),
    ({"channel": "/notifications/services", "data": {"messageType": "ServiceStateChangeMessage",
                                                     "service": {"type": "Voice", "state": "Active"}}}, 0),
    ({"channel": "/v2/me/chats", "data": {"messageType": "ChatStateChangeMessage", "notificationType": "Error",
                                          "errorMessage": "no", "referenceId": 35,
                                          "chat": {"uri": "http://h/api/v2/chats/0001BaB/", "state": "Chatting"}}}, 0),
    ({"channel": "/v2/me/facebooksession", "data": {"messageType": "MessageLogUpdated",
                                                    "facebooksessionPath": "/facebooksessions/77"}}, 0),
    ({"channel": "/v2/me/smsessions", "data": {"messageType": "MessageLogUpdated", "chatUri": "http://h/x/1"}}, 0),
    ({"channel": "/v2/me/twitter", "data": {"messageType": "TwitterStateChangeMessage",
                                            "twitter": {"id": 12, "state": "Composing"}}}, 0),
    ({"channel": "/v2/me/openmedia", "data": {"messageType": "OpenmediaStateChangeMessage",
                                              "interaction": {"path": "/openmedia/promotions/abc"}}}, 0),
    ({"channel": "/v2/me/im-sessions", "data": {"messageType": "IMLogUpdateMessage",
                                                "imSessionUri": "http://h/api/v2/im-sessions/9"}}, 0),
    ({"channel": "/v2/me/workbins", "data": {"messageType": "WorkbinStateChangeMessage", "id": "wb",
                                             "action": "ItemAdded"}}, 0),
    ({"channel": "/v2/me/channels", "data": {"channels": [{"channel": "email", "userState": {"state": "Ready"}}]}}, 0),
    ({"channel": "/v2/me/outbound", "data": {"messageType": "OutboundRecordMessage", "referenceId": "123456789",
                                             "record": {"recordHandle": 9, "campaignName": "C1"}}}, 0),
    ({"channel": "/me/internal", "data": {"messageType": "DeviceUserEventMessage", "deviceId": "2b00"}}, 0),
    ({"channel": "/v2/me/calls", "data": {"messageType": "CallStateChangeMessage", "callId": "00aabbccddeeff00",
                                          "notificationType": "StatusChange"}}, 0),
    ({"channel": "/meta/handshake", "successful": True, "clientId": "c1", "version": "1.0",
      "supportedConnectionTypes": ["long-polling", "websocket"], "advice": {"reconnect": "retry"}}, 0),
    ({"channel": "/meta/subscribe", "subscription": ["/v2/me/*", "/x"], "successful": "yes", "id": 5}, 0),
    ({"channel": "/meta/connect", "successful": False, "error": "402::Unknown client",
      "advice": {"reconnect": "handshake", "interval": 0}}, 0),
    ({"channel": "/v2/me/calls", "data": "not an object"}, 0),
    ({"channel": "/v2/me/channels", "data": 5}, 0),
    ({"data": {"messageType": "ChatStateChangeMessage", "chat": [1, 2]}}, 0),
]]


def _sql_rows(tmp_path: Path, msgs: list) -> list[dict]:
    db = tmp_path / "diff.duckdb"
    if db.exists():
        db.unlink()
    w = CaptureWriter(db)
    w.write_records([HttpRecord(flow_id="d", method="POST", path="/api/v2/notifications/connect",
                                request_headers=[("Content-Type", "application/json")], request_body=b"[]",
                                status=200, response_headers=[("Content-Type", "application/json")],
                                response_body=json.dumps(msgs).encode(), ts_request_start=T0,
                                ts_response_start=T0)])
    w.close()
    con = duckdb.connect(str(db), read_only=True)
    try:
        cur = con.execute(f"SELECT {', '.join(_FIELDS)}, data, extra FROM bayeux_messages "
                          "WHERE direction = 's2c' ORDER BY position")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]
    finally:
        con.close()


def _assert_same(tmp_path: Path, msgs: list) -> None:
    rows = _sql_rows(tmp_path, msgs)
    assert len(rows) == len(msgs)
    for m, row in zip(msgs, rows):
        c = classify_bayeux(m)
        py = {f: getattr(c, f) for f in _FIELDS}
        sql = {f: row[f] for f in _FIELDS}
        assert sql == py, (m, {k: (py[k], sql[k]) for k in _FIELDS if py[k] != sql[k]})
        if "data" in m:
            assert (json.loads(row["data"]) if row["data"] is not None else None) == m["data"]


def test_sql_and_python_classification_agree(tmp_path):
    _assert_same(tmp_path, CORPUS)
    rows = _sql_rows(tmp_path, CORPUS)
    hs = [r for r in rows if r["channel"] == "/meta/handshake"][0]
    assert json.loads(hs["extra"]) == {"version": "1.0", "supportedConnectionTypes": ["long-polling", "websocket"]}


_scalar = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.text(alphabet="abcXYZ019/-_:. ", max_size=12))
_value = st.recursive(_scalar, lambda ch: st.lists(ch, max_size=3) | st.dictionaries(
    st.sampled_from(["id", "state", "uri", "path", "connId", "userState", "channel", "deviceUri"]), ch, max_size=4),
    max_leaves=8)
_obj = st.fixed_dictionaries({}, optional={k: _value for k in ("id", "state", "uri", "path", "connId", "deviceUri")})
_data = st.fixed_dictionaries(
    {"messageType": st.sampled_from(["CallStateChangeMessage", "DeviceStateChangeMessage", "ErrorMessage",
                                     "ServiceStateChangeMessage", "ChannelStateChangeMessageV2",
                                     "WorkbinStateChangeMessage", "ChatStateChangeMessage", "MessageLogUpdated",
                                     "IMLogUpdateMessage", "TwitterStateChangeMessage", "OutboundRecordMessage",
                                     "DeviceUserEventMessage", "SomethingElse"])},
    optional={"call": _obj | _value, "devices": st.lists(_obj | _value, max_size=2),
              "channels": st.lists(_obj | _value, max_size=2), "service": _obj, "chat": _obj | _value,
              "twitter": _obj, "tweet": _obj, "record": _obj, "notificationType": _scalar,
              "referenceId": _scalar, "deviceUri": _value, "callUri": _value, "errorMessage": _scalar,
              "id": _scalar, "action": _scalar, "stateResource": _scalar, "deviceId": _scalar,
              "callId": _scalar, "chatUri": _value, "imSessionPath": _value})
_message = st.fixed_dictionaries(
    {"channel": st.sampled_from(["/v2/me/calls", "/v2/me/devices", "/v2/me/channels", "/meta/connect", "/x"])},
    optional={"data": _data | _value, "clientId": _scalar, "id": _scalar, "successful": _scalar,
              "subscription": _value, "connectionType": _scalar, "error": _scalar})


@settings(max_examples=int(os.environ.get("GWS_FUZZ_EXAMPLES", "40")), deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(msgs=st.lists(_message, min_size=1, max_size=25))
def test_fuzz_sql_and_python_classification_agree(tmp_path, msgs):
    _assert_same(tmp_path, msgs)


_JSON_COLUMNS = {c for c, t in schema.BAYEUX_MESSAGES if t == "JSON"}
_CONTEXT = {"id", "ts", "direction", "transport", "exchange_id", "flow_id", "frame_index", "user_name",
            "session_key"}


def _assert_python_path_same(tmp_path: Path, msgs: list) -> None:
    """The writer's Python path for small live batches (bayeux_rows.python_bayeux_rows) gives the
    rows the DuckDB statement gives, every column (JSON columns compared as JSON)."""
    db = tmp_path / "py-vs-sql.duckdb"
    if db.exists():
        db.unlink()
    w = CaptureWriter(db)
    w.write_records([HttpRecord(flow_id="d", method="POST", path="/api/v2/notifications/connect",
                                request_headers=[("Content-Type", "application/json")], request_body=b"[]",
                                status=200, response_headers=[("Content-Type", "application/json")],
                                response_body=json.dumps(msgs).encode(), ts_request_start=T0,
                                ts_response_start=T0)])
    w.close()
    con = duckdb.connect(str(db), read_only=True)
    try:
        cur = con.execute("SELECT * FROM bayeux_messages WHERE direction = 's2c' ORDER BY position")
        names = [d[0] for d in cur.description]
        sql_rows = [dict(zip(names, r)) for r in cur.fetchall()]
    finally:
        con.close()
    staged = [StagedBody(0, 0, 0, "s2c", "long-polling", 1, "d", None, None, None, json.dumps(msgs).encode())]
    py = python_bayeux_rows(staged)
    assert py is not None
    cols = [c for c, _ in schema.BAYEUX_MESSAGES]
    assert len(py) == len(sql_rows) == len(msgs)
    for m, row, sql in zip(msgs, py, sql_rows):
        for col, value in zip(cols, row):
            if col in _CONTEXT:
                continue
            want = sql[col]
            if col in _JSON_COLUMNS:
                value = None if value is None else json.loads(value)
                want = None if want is None else json.loads(want)
            assert value == want, (m, col, value, want)


def test_python_path_for_small_live_batches_equals_the_sql(tmp_path):
    _assert_python_path_same(tmp_path, CORPUS)


@settings(max_examples=int(os.environ.get("GWS_FUZZ_EXAMPLES", "40")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(msgs=st.lists(_message, min_size=1, max_size=25))
def test_fuzz_python_path_equals_the_sql(tmp_path, msgs):
    _assert_python_path_same(tmp_path, msgs)


def test_python_path_leaves_odd_bodies_to_duckdb():
    def st_(body: bytes) -> list[StagedBody]:
        return [StagedBody(0, 0, 0, "s2c", "long-polling", 1, "d", None, None, None, body)]

    assert python_bayeux_rows(st_(b'[{"channel":"/x","data":{"a":1.5}}]')) is None
    assert python_bayeux_rows(st_(b'[{"channel":"/x"}, 5]')) is None
    assert python_bayeux_rows(st_(b'[{"channel":"/x","data":"\\ud800"}]')) is None
    assert python_bayeux_rows(st_(b'[{"channel":"/x"')) is None
    assert python_bayeux_rows(st_(b'[{"channel":"/x","data":NaN}]')) is None
    assert len(python_bayeux_rows(st_(b'[{"channel":"/x","data":{"a":1}}]'))) == 1


def test_live_writer_takes_the_python_path_for_few_bodies_and_duckdb_for_many(tmp_path):
    db = tmp_path / "live.duckdb"
    w = CaptureWriter(db, flush_interval=0.05).start()
    for k in range(3):
        w.submit(_ex(f"small{k}", k, "/api/v2/notifications/connect",
                     [{"channel": "/meta/connect", "clientId": "c1", "id": str(k)}],
                     resp=[CALL_852, {"channel": "/meta/connect", "id": str(k), "successful": True}]))
    w.flush()
    assert w.stats.python_bodies >= 1
    python_batches = w.stats.python_bodies
    w.write_records([_ex(f"sync{k}", 10 + k, "/api/v2/notifications/connect",
                         [{"channel": "/meta/connect", "clientId": "c1", "id": str(k)}],
                         resp=[CALL_852]) for k in range(3)])
    assert w.stats.python_bodies == python_batches        # the synchronous path always uses DuckDB
    w.close()
    rows = _rows(db, "SELECT exchange_id, direction, position, call_id FROM bayeux_messages ORDER BY id")
    assert len(rows) == 3 * 3 + 3 * 2
    assert rows == sorted(rows, key=lambda r: (r[0], r[1] != "c2s", r[2]))


def test_bayeux_contentview(tmp_path):
    from mitmproxy import contentviews

    from gwsreplay.proxy import bayeux_view

    body = json.dumps([CALL_86, {"channel": "/meta/connect", "id": "7", "successful": True}]).encode()
    text = bayeux_view.render(body)
    assert "CallStateChangeMessage/StatusChange" in text and "call 013V08JRL498H10I04000VTAES000015 -> Established" in text
    assert "/meta/connect  id=7  ok" in text
    assert '\n        "notificationType": "StatusChange",' in text        # the data, indented JSON
    assert "(!)" in bayeux_view.render(body[:-20])
    f = tflow.tflow(resp=True)
    f.request.path = "/api/v2/notifications/connect"
    f.response.content = body
    with taddons.context() as tctx:
        for a in bayeux_view.addons:
            tctx.master.addons.add(a)
        view = contentviews.get("Bayeux")
        assert view is not None
        desc, lines, _err = contentviews.get_message_content_view("Bayeux", f.response, f)
        assert desc == "Bayeux" and "CallStateChangeMessage" in str(list(lines))
        desc, _, _ = contentviews.get_message_content_view("auto", f.response, f)
        assert desc == "Bayeux"          # chosen automatically for /notifications bodies


def test_message_ids_follow_arrival_order_within_a_batch(tmp_path):
    db = tmp_path / "order.duckdb"
    w = CaptureWriter(db)
    recs = []
    for k in range(60):
        recs.append(_ex(f"p{k}", k, "/api/v2/notifications/connect",
                        [{"channel": "/meta/connect", "clientId": "c1", "id": str(k)}],
                        resp=[CALL_852] * (k % 7) + [{"channel": "/meta/connect", "id": str(k), "successful": True}]))
    w.write_records(recs)
    w.close()
    rows = _rows(db, "SELECT exchange_id, direction, position FROM bayeux_messages ORDER BY id")
    assert rows == sorted(rows, key=lambda r: (r[0], r[1] != "c2s", r[2]))
    assert _rows(db, "SELECT min(id), max(id), count(*) FROM bayeux_messages")[0] == (1, len(rows), len(rows))


def test_message_ids_dense_and_ordered_in_big_batches(tmp_path):
    """Thousands of bodies in a batch: ids stay dense and follow (carrier, direction,
    position); a second batch continues after the first."""
    db = tmp_path / "order-big.duckdb"
    w = CaptureWriter(db)
    for part in range(2):
        recs = []
        for k in range(1500):
            recs.append(_ex(f"b{part}-{k}", part * 2000 + k, "/api/v2/notifications/connect",
                            [{"channel": "/meta/connect", "clientId": "c1", "id": str(k)}],
                            resp=[CALL_852] * (k % 5) + [{"channel": "/meta/connect", "id": str(k),
                                                          "successful": True}]))
        w.write_records(recs)
    w.close()
    rows = _rows(db, "SELECT exchange_id, direction, position FROM bayeux_messages ORDER BY id")
    assert rows == sorted(rows, key=lambda r: (r[0], r[1] != "c2s", r[2]))
    assert len(rows) == 2 * sum(1 + (k % 5) + 1 for k in range(1500))
    assert _rows(db, "SELECT min(id), max(id), count(*) FROM bayeux_messages")[0] == (1, len(rows), len(rows))


def test_addon_abandoned_response_1006_and_refused_bodies_carry_errors(tmp_path):
    cap, tctx = _capture(tmp_path)
    with tctx:
        f = _poll_flow([{"channel": "/meta/connect", "clientId": "c1", "id": "9"}], [])
        cap.request(f)
        cap.response(f)                          # recorded as a 200...
        f.error = flow.Error("client disconnected")
        cap.error(f)                             # ...then the desktop went away before it got it
        ws = tflow.twebsocketflow(messages=False)
        cap.response(ws)
        ws.websocket.close_code = 1006
        cap.websocket_end(ws)
        big = tflow.tflow(err=True)
        big.error.msg = "Response body exceeds mitmproxy's body_size_limit."
        cap.request(big)
        cap.error(big)
        assert cap.stats()["refused"] == 1
        cap.done()
    db = tmp_path / "unit.duckdb"
    rows = _rows(db, "SELECT status, error FROM exchanges ORDER BY id")
    assert rows[0] == (200, "response not delivered: client disconnected")
    assert "body_size_limit" in rows[2][1]
    assert _rows(db, "SELECT close_code, error FROM websocket_connections") == [
        (1006, "connection closed abnormally (1006: no close frame)")]
    assert _rows(db, "SELECT count(*) FROM capture_errors WHERE kind = 'body_refused'") == [(1,)]


def test_non_meta_messages_keep_extra_fields_and_channelless_messages_get_an_error(tmp_path):
    msgs = [{"channel": "/v2/me/calls", "id": 7, "custom": {"a": 1}, "data": {"messageType": "X"}},
            {"foo": "bar", "data": {"messageType": "Y"}}]
    for live in (False, True):
        db = tmp_path / f"extra{live}.duckdb"
        w = CaptureWriter(db, flush_interval=0.01)
        rec = HttpRecord(flow_id="x", method="POST", host="gws", port=80, path="/api/v2/notifications",
                         request_headers=[("Content-Type", "application/json")], status=200,
                         request_body=json.dumps(msgs).encode(), ts_request_start=T0)
        if live:
            w.start()
            w.submit(rec)
        else:
            w.write_records([rec])
        w.close()
        rows = _rows(db, "SELECT channel, msg_id, extra, message_type, parse_error FROM bayeux_messages ORDER BY id")
        assert rows == [("/v2/me/calls", "7", '{"custom":{"a":1}}', "X", None),
                        (None, None, '{"foo":"bar"}', "Y", "message has no channel")], (live, rows)


def test_snapshot_request_file_cannot_overwrite_other_files(tmp_path):
    """Anyone who can write next to a capture can drop a request: the writer only writes .duckdb
    files in the capture's folder and never replaces a file that is not a snapshot of it."""
    db = tmp_path / "cap" / "live.duckdb"
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    beside = db.parent / "notes.duckdb"
    w = CaptureWriter(db, flush_interval=0.02).start()
    try:
        beside.write_bytes(b"not a snapshot")
        req, done = snapshot_paths(db)
        for i, out in enumerate([str(victim), str(beside), "../victim.txt", str(db)]):
            req.write_text(json.dumps({"out": out, "nonce": i}))
            w.flush()
            deadline = time.monotonic() + 10
            while not done.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            answer = json.loads(done.read_text())
            done.unlink()
            assert answer["nonce"] == i and "SnapshotRefused" in answer["error"], answer
        assert victim.read_text() == "precious" and beside.read_bytes() == b"not a snapshot"
        # a snapshot beside it is made (0600) and may be replaced by the next one
        snap = _ask_writer(db, db.parent / "live.snap.duckdb", timeout=10)
        assert oct(snap.stat().st_mode & 0o777) == "0o600"
        assert _ask_writer(db, snap, timeout=10) == snap
        # elsewhere: the writer writes beside the capture, this process moves it
        far = _ask_writer(db, tmp_path / "far" / "copy.duckdb", timeout=10)
        assert far.exists() and not list(db.parent.glob("live.snapshot-*"))
        with pytest.raises(SnapshotError):
            snapshot(db, victim)
    finally:
        w.close()
    assert victim.read_text() == "precious"
