"""The vendor's sample sequences (tests/vendor/corpus-*.json) as a HAR a browser could have saved.

Each sequence of the corpus (a request, its response, the notifications printed after it)
becomes one REST exchange followed by the notifications, delivered as the answers of
CometD long-polls (``/meta/connect``) or as WebSocket messages, all for one agent.
Sequences are ``SPACING`` seconds apart, more than the correlation window, so that each
operation can only find its own notifications; the tests that want neighbours build them
with :func:`har_entries` directly. Used by tests/test_vendor_operations.py and
tests/test_vendor_replay.py.
"""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable

VENDOR = Path(__file__).resolve().parent / "vendor"
START = datetime(2024, 3, 4, 9, 0, 0, tzinfo=timezone.utc)
SPACING = 30.0
HOST = "gws.example.com"

#: the CometD channel a notification without one was published on (8.6 L4170-4200, 8.5.2 L1587)
CHANNEL_OF = {"Call": "/v2/me/calls", "Device": "/v2/me/devices", "Channel": "/v2/me/channels",
              "Service": "/v2/me/services", "Error": "/v2/me/calls"}


def corpus(version: str) -> dict:
    return json.loads((VENDOR / f"corpus-{version}.json").read_text())


def notifications(version: str) -> list[dict]:
    """Every notification record of the corpus whose body is a JSON object."""
    return [r for r in corpus(version)["records"] if r["kind"] == "notification" and isinstance(r["body"], dict)]


def as_bayeux(body: dict) -> dict:
    """A notification sample as the Bayeux message on the wire: ``{"channel", "data"}``. The samples
    print either the whole message or only its ``data``; the channel then follows the message type."""
    if isinstance(body.get("data"), dict) and ("channel" in body or "messageType" not in body):
        msg = dict(body)
        msg.setdefault("channel", channel_for(body["data"]))
        return msg
    return {"channel": channel_for(body), "data": body}


def channel_for(data: dict) -> str:
    mt = str(data.get("messageType") or "")
    for prefix, channel in CHANNEL_OF.items():
        if mt.startswith(prefix):
            return channel
    if "deviceUri" in data and "callUri" not in data:
        return "/v2/me/devices"
    return "/v2/me/" + (mt.split("StateChange")[0].lower() + "s" if "StateChange" in mt else "notifications")


def sequences(version: str) -> dict[str, list[dict]]:
    """sequence id -> its records (request first), for sequences whose request has a path."""
    out: dict[str, list[dict]] = defaultdict(list)
    for r in corpus(version)["records"]:
        if r.get("sequence"):
            out[r["sequence"]].append(r)
    return {k: v for k, v in out.items() if v and v[0]["kind"] == "request" and request_path(v[0])}


def request_path(req: dict) -> str | None:
    """The request's path; from the operation's URL template when the sample prints none."""
    path = req.get("path") or req.get("url_template")
    if not path:
        return None
    path = "/" + path.lstrip("/")
    path = path.replace("{id}", "0071023821aec011").replace("{", "").replace("}", "")
    return path if path.startswith("/api/") else None


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _headers(user: str, extra: Iterable[tuple[str, str]] = ()) -> list[dict]:
    token = base64.b64encode(f"{user}:password".encode()).decode()
    return [{"name": "Host", "value": HOST}, {"name": "Authorization", "value": f"Basic {token}"},
            {"name": "Content-Type", "value": "application/json"}, *({"name": k, "value": v} for k, v in extra)]


def _entry(t: datetime, method: str, path: str, user: str, body: Any, response: Any, wait_ms: float,
           status: int = 200) -> dict:
    req_text = None if body is None else json.dumps(body)
    resp_text = json.dumps(response if response is not None else {})
    return {
        "startedDateTime": _iso(t), "time": wait_ms + 2,
        "request": {"method": method, "url": f"http://{HOST}{path}", "httpVersion": "HTTP/1.1",
                    "headers": _headers(user), "queryString": [], "cookies": [], "headersSize": -1,
                    "bodySize": len(req_text or ""),
                    **({"postData": {"mimeType": "application/json", "text": req_text}} if req_text else {})},
        "response": {"status": status, "statusText": "OK" if status == 200 else "Error", "httpVersion": "HTTP/1.1",
                     "headers": [{"name": "Content-Type", "value": "application/json"}], "cookies": [],
                     "content": {"size": len(resp_text), "mimeType": "application/json", "text": resp_text},
                     "redirectURL": "", "headersSize": -1, "bodySize": len(resp_text)},
        "cache": {}, "timings": {"blocked": 0, "dns": 0, "connect": 0, "send": 1, "wait": wait_ms, "receive": 1},
    }


def _handshake(t: datetime, user: str, client_id: str) -> list[dict]:
    hs = [{"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["long-polling"], "id": "1"}]
    hs_r = [{"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["long-polling"],
             "clientId": client_id, "successful": True, "id": "1"}]
    sub = [{"channel": "/meta/subscribe", "subscription": "/v2/me/*", "clientId": client_id, "id": "2"}]
    sub_r = [{"channel": "/meta/subscribe", "subscription": "/v2/me/*", "clientId": client_id,
              "successful": True, "id": "2"}]
    # a desktop reads its user first (GWS opens the session the CometD handshake needs)
    me = {"statusCode": 0, "user": {"userName": user, "enabled": True}}
    return [_entry(t - timedelta(seconds=1), "GET", "/api/v2/me", user, None, me, 5),
            _entry(t, "POST", "/api/v2/notifications/handshake", user, hs, hs_r, 5),
            _entry(t + timedelta(milliseconds=20), "POST", "/api/v2/notifications", user, sub, sub_r, 5)]


def record(version: str, record_id: str) -> dict:
    return next(r for r in corpus(version)["records"] if r["id"] == record_id)


def har_entries(steps: list[tuple[str, list[dict]]], user: str = "agent1", start: datetime = START,
                spacing: float = SPACING, transport: str = "long-polling") -> tuple[list[dict], dict[str, Any]]:
    """HAR entries for ``steps`` [(sequence id, its records)] one after another, ``spacing`` seconds apart
    (a step whose records hold no request delivers its notifications only):
    the request at t, its first response 40 ms later, each notification 60 ms + 15 ms * k after t.
    Also returns where each record went ({"request": {seq: t}, "notes": {record id: t}})."""
    client_id = f"{user}-client"
    entries = _handshake(start - timedelta(seconds=1), user, client_id)
    msg_id = [10]
    ws_messages: list[dict] = []
    placed: dict[str, Any] = {"request": {}, "notes": {}}
    for k, (seq, recs) in enumerate(steps):
        t = start + timedelta(seconds=spacing * k)
        req = recs[0]
        if req["kind"] == "request":   # else only notifications: an event nobody asked for (a call arrives)
            response = next((r["body"] for r in recs[1:] if r["kind"] == "response"), None)
            if response is None:
                response = {"statusCode": 0}
            entries.append(_entry(t, req.get("method") or "POST", request_path(req), user, req.get("body"),
                                  response, 40))
            placed["request"][seq] = t
        notes = [r for r in recs if r["kind"] == "notification" and isinstance(r["body"], dict)]
        for j, note in enumerate(notes):
            tn = t + timedelta(milliseconds=60 + 15 * j)
            msg = as_bayeux(note["body"])
            msg_id[0] += 1
            msg = {**msg, "id": str(msg_id[0])}
            placed["notes"][note["id"]] = tn
            if transport == "websocket":
                ws_messages.append({"type": "receive", "time": tn.timestamp(), "opcode": 1,
                                    "data": json.dumps([msg])})
                continue
            poll = [{"channel": "/meta/connect", "clientId": client_id, "connectionType": "long-polling",
                     "id": str(msg_id[0])}]
            answer = [msg, {"channel": "/meta/connect", "clientId": client_id, "successful": True,
                            "id": str(msg_id[0])}]
            # the long-poll was waiting before the event and answers when it comes (send 1 ms + wait 500 ms)
            entries.append(_entry(tn - timedelta(milliseconds=501), "POST", "/api/v2/notifications/connect",
                                  user, poll, answer, 500))
    if transport == "websocket":
        ws = _entry(start - timedelta(milliseconds=900), "GET", "/api/v2/notifications", user, None, None, 5,
                    status=101)
        ws["_resourceType"] = "websocket"
        ws["_webSocketMessages"] = ws_messages
        entries.append(ws)
    entries.sort(key=lambda e: e["startedDateTime"])
    return entries, placed


def har(entries: list[dict]) -> dict:
    return {"log": {"version": "1.2", "creator": {"name": "tests/vendor_har.py", "version": "1"},
                    "pages": [], "entries": entries}}


def write_har(path: Path, entries: list[dict]) -> Path:
    path.write_text(json.dumps(har(entries)))
    return path
