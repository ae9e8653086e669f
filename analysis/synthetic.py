"""Synthetic captures: hand-built traffic in the real capture schema.

Tests need captures with known answers, and the report needs a capture to run
on before the simulator has recorded one. ``CaptureBuilder`` writes exchanges
and Bayeux messages the way the proxy would: the schema comes from
``gwsreplay.capture.schema`` and every row is classified with ``gwsreplay.capture.classify``,
so the derived columns (resource ids, states, operation names) are the
recorder's own. ``build_demo_capture`` plays a small, deterministic contact
center day: logins, inbound and outbound calls, holds, transfers, wrap-up, DND,
forwarding, media channel states and DND, IM, chat, email, workitems and open media, a
failing operation, a lost CometD
session and a long-poll gap.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from gwsreplay.capture import opindex
from gwsreplay.capture import schema as capture_schema
from gwsreplay.capture.classify import classify_bayeux, classify_http

BASE_URL = "http://127.0.0.1:8090"
T0 = datetime(2024, 3, 4, 9, 0, 0)

_CALL_CAPS = {
    "Dialing": ["Hangup", "AttachUserData", "UpdateUserData", "DeleteUserData"],
    "Ringing": ["Answer", "AttachUserData", "UpdateUserData", "DeleteUserData", "DeleteUserDataPair"],
    "Established": ["Hangup", "Hold", "InitiateTransfer", "InitiateConference", "SingleStepTransfer",
                    "SingleStepConference", "AttachUserData", "UpdateUserData", "DeleteUserData", "SendDtmf"],
    "Held": ["Retrieve", "Hangup", "InitiateTransfer", "InitiateConference", "AttachUserData"],
    "Released": [],
}
_AGENT_STATES = {
    "Ready": ("9430250E-0A1B-421F-B372-F29E69366DED", "Ready", "Ready", None),
    "NotReady": ("900D55CC-2BB0-431F-8BF9-D3525B383BE6", "Not Ready", "NotReady", None),
    "AuxWork": ("2B36138D-C564-4562-A8CB-3C32D564F296", "AuxWork", "NotReady", "AuxWork"),
    "AfterCallWork": ("D3663509-3D82-4DD3-A82E-2EA8EFA02AEF", "AfterCallWork", "NotReady", "AfterCallWork"),
    "Offline": ("0F7F5003-EF26-4D13-A6Ef-D0C7EC819BEB", "Offline", "LoggedOut", None),
}


def ms(n: float) -> timedelta:
    return timedelta(milliseconds=n)


# ---------------------------------------------------------------------------- builder

@dataclass
class Device:
    """What a DeviceStateChangeMessage says about one agent's device."""
    id: str
    phone: str
    agent_state: str = "Offline"     # key of _AGENT_STATES
    dnd: bool = False
    forward_to: str | None = None

    def resource(self) -> dict:
        sid, name, state, work_mode = _AGENT_STATES[self.agent_state]
        user_state = {"id": sid, "displayName": name, "state": state}
        if work_mode:
            user_state["workMode"] = work_mode
        caps = ["ForwardCallsOff" if self.forward_to else "ForwardCallsOn",
                "DoNotDisturbOff" if self.dnd else "DoNotDisturbOn"]
        res = {"id": self.id, "deviceState": "Active", "userState": user_state, "phoneNumber": self.phone,
               "e164Number": self.phone, "telephonyNetwork": "Private",
               "doNotDisturb": "On" if self.dnd else "Off", "capabilities": caps}
        if self.forward_to:
            res["forwardTo"] = self.forward_to
        return res


@dataclass
class CaptureBuilder:
    """Appends classified exchanges and Bayeux messages, then writes them in one go."""
    con: duckdb.DuckDBPyConnection
    exchanges: list[dict] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        capture_schema.create_schema(self.con, self.meta or None)

    # -- HTTP
    def exchange(self, t: datetime, user: str | None, method: str, path: str, *,
                 body: Any = None, response: Any = None, status: int = 200, ack_ms: float = 8.0,
                 session: str | None = None, error: str | None = None, is_bayeux: bool | None = None,
                 duration_ms: float = 1.0) -> int:
        """One HTTP exchange; classification fills area, resource, operation, statusCode."""
        if response is None and method == "POST" and not path.endswith("/notifications"):
            response = {"statusCode": 0}
        c = classify_http(method, path, body, response)
        xid = len(self.exchanges) + 1
        resp_start = None if error else t + ms(ack_ms)
        self.exchanges.append({
            "id": xid, "flow_id": f"flow-{xid}", "source": "synthetic", "method": method, "scheme": "http",
            "host": "127.0.0.1", "port": 8090, "url": BASE_URL + path, "path": path.split("?")[0],
            "query": path.split("?", 1)[1] if "?" in path else None, "http_version": "HTTP/1.1",
            "status": None if error else status, "request_body": _json(body), "response_body": _json(response),
            "request_content_type": "application/json" if body is not None else None,
            "response_content_type": "application/json" if response is not None else None,
            "ts_request_start": t, "ts_request_end": t + ms(0.2), "ts_response_start": resp_start,
            "ts_response_end": None if error else resp_start + ms(duration_ms), "error": error,
            "is_websocket": False, "is_bayeux": c.is_bayeux if is_bayeux is None else is_bayeux,
            "api_version": c.api_version, "api_area": c.api_area, "resource_type": c.resource_type,
            "resource_id": c.resource_id, "sub_resource": c.sub_resource, "owner_id": c.owner_id,
            "operation_name": c.operation_name, "status_code": c.status_code, "status_message": c.status_message,
            "reference_id": c.reference_id, "auth_user": user, "user_name": user, "session_key": session,
        })
        return xid

    # -- Bayeux
    def bayeux(self, t: datetime, user: str | None, msg: dict, *, direction: str = "s2c",
               exchange_id: int | None = None, session: str | None = None, transport: str = "long-polling") -> int:
        """One Bayeux message (a dict as on the wire), classified like the recorder does."""
        c = classify_bayeux(msg)
        mid = len(self.messages) + 1
        self.messages.append({
            "id": mid, "ts": t, "direction": direction, "transport": transport, "exchange_id": exchange_id,
            "channel": c.channel, "client_id": c.client_id, "msg_id": c.msg_id, "successful": c.successful,
            "error": c.error, "advice": _json(c.advice), "connection_type": c.connection_type,
            "subscription": c.subscription, "ext": _json(c.ext), "data": _json(c.data),
            "message_type": c.message_type, "notification_type": c.notification_type,
            "resource_type": c.resource_type, "resource_id": c.resource_id, "resource_state": c.resource_state,
            "call_id": c.call_id, "conn_id": c.conn_id, "device_id": c.device_id, "user_state": c.user_state,
            "reference_id": c.reference_id, "error_message": c.error_message, "user_name": user,
            "session_key": session,
        })
        return mid

    def notify(self, t: datetime, user: str, channel: str, data: dict, **kw) -> int:
        return self.bayeux(t, user, {"channel": channel, "data": data}, **kw)

    def event(self, t: datetime, user: str, channel_data: tuple[str, dict], **kw) -> int:
        """A notification built by one of the ``*_data`` helpers below."""
        channel, data = channel_data
        return self.notify(t, user, channel, data, **kw)

    # -- output
    def write(self) -> None:
        """Insert everything as Arrow tables (one INSERT per table), like the recorder's writer, and index
        the operations."""
        for table, rows in (("exchanges", self.exchanges), ("bayeux_messages", self.messages)):
            if not rows:
                continue
            cols = capture_schema.TABLES[table]
            arrow = pa.table({name: [r.get(name) for r in rows] for name, _ in cols},
                             schema=capture_schema.arrow_schema(cols))
            self.con.register("_batch", arrow)
            self.con.execute(f"INSERT INTO {table} SELECT * FROM _batch")
            self.con.unregister("_batch")
        self.exchanges.clear()
        self.messages.clear()
        opindex.build(self.con)             # the operations table, as the recorder's writer does at close


# ------------------------------------------------------------- notification payloads

def device_data(device: Device) -> tuple[str, dict]:
    return "/v2/me/devices", {"messageType": "DeviceStateChangeMessage", "devices": [device.resource()]}


def call_data(call_id: str, state: str, *, device: Device | None = None, notification_type: str = "StatusChange",
              call_type: str = "Inbound", other: str = "5000") -> tuple[str, dict]:
    call = {"id": call_id, "state": state, "callUuid": call_id, "connId": call_id[-16:].lower(),
            "participants": [{"phoneNumber": other, "digits": other}], "callType": call_type,
            "capabilities": _CALL_CAPS.get(state, []), "duration": "0",
            "uri": f"{BASE_URL}/api/v2/me/calls/{call_id}", "path": f"/calls/{call_id}"}
    if device is not None:
        call["deviceUri"] = f"{BASE_URL}/api/v2/devices/{device.id}"
    return "/v2/me/calls", {"messageType": "CallStateChangeMessage", "notificationType": notification_type,
                            "call": call, "phoneNumber": device.phone if device else None}


_MEDIA = {
    "im-session": ("imSession", "IMSessionStateChangeMessage", "/v2/me/im-sessions"),
    "chat": ("chat", "ChatStateChangeMessage", "/v2/me/chats"),
    "email": ("email", "EmailStateChangeMessage", "/v2/me/emails"),
    "workitem": ("workitem", "WorkitemStateChangeMessage", "/v2/me/workitems"),
    "openmedia": ("openmedia", "OpenmediaStateChangeMessage", "/v2/me/openmedia"),
}

_CHANNEL_STATES = {"Ready": ("9430250E-0A1B-421F-B372-F29E69366DED", "Ready"),
                   "NotReady": ("900D55CC-2BB0-431F-8BF9-D3525B383BE6", "Not Ready"),
                   "LoggedOut": ("0F7F5003-EF26-4D13-A6Ef-D0C7EC819BEB", "Offline")}


def channel_data(channel: str, state: str, *, dnd: bool | str | None = False) -> tuple[str, dict]:
    """ChannelStateChangeMessageV2 for one media channel (the supervisor samples' shape, L44962);
    ``dnd`` None (or a LoggedOut channel) leaves dndState out, a string is sent as is."""
    sid, name = _CHANNEL_STATES[state]
    entry: dict = {"channel": channel}
    if dnd is not None and state != "LoggedOut":
        entry["dndState"] = dnd if isinstance(dnd, str) else ("On" if dnd else "Off")
    entry["userState"] = {"displayName": name, "id": sid, "state": state}
    return "/v2/me/channels", {"channels": [entry], "messageType": "ChannelStateChangeMessageV2"}


def media_data(kind: str, item_id: str, state: str, *, capabilities: list[str] | None = None,
               reference_id: int | None = None, notification_type: str = "StatusChange") -> tuple[str, dict]:
    """IM / chat / email / workitem / open media state change (kind: im-session, chat, email, workitem,
    openmedia)."""
    key, mtype, channel = _MEDIA[kind]
    data = {"messageType": mtype, "notificationType": notification_type,
            key: {"id": item_id, "state": state, "capabilities": capabilities or []}}
    if reference_id is not None:
        data["referenceId"] = reference_id
    return channel, data


def error_data(device: Device, call_id: str | None, message: str) -> tuple[str, dict]:
    data = {"messageType": "ErrorMessage", "deviceUri": f"{BASE_URL}/api/v2/devices/{device.id}",
            "errorMessage": message}
    if call_id:
        data["callUri"] = f"{BASE_URL}/api/v2/calls/{call_id}"
    return ("/v2/me/calls" if call_id else "/v2/me/devices"), data


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


# ------------------------------------------------------------------- an agent's desktop

class Desktop:
    """One scripted agent: REST requests, CometD long-polls, and what GWS answers."""

    def __init__(self, b: CaptureBuilder, user: str, phone: str, rng: random.Random):
        self.b, self.user, self.rng = b, user, rng
        self.device = Device(id=f"dev-{user}", phone=phone)
        self.session = f"sess-{user}-1"
        self.client_id = f"client-{user}-1"
        self.deliveries: list[tuple[datetime, dict]] = []   # notifications to deliver over CometD
        self.bayeux_id = 0
        self.last_t = T0

    # REST
    def get(self, t: datetime, path: str, response: dict | None = None) -> int:
        return self.b.exchange(t, self.user, "GET", path, response=response or {"statusCode": 0},
                               session=self.session, ack_ms=self.rng.uniform(3, 12))

    def op(self, t: datetime, path: str, operation: str, *, ack_ms: float | None = None,
           response: dict | None = None, status: int = 200, **params) -> int:
        body = {"operationName": operation, **params}
        return self.b.exchange(t, self.user, "POST", path, body=body, response=response, status=status,
                               session=self.session, ack_ms=ack_ms if ack_ms is not None else self.rng.uniform(4, 25))

    # notifications are collected first and written when the long-poll delivers them
    def emit(self, t: datetime, channel_data: tuple[str, dict]) -> None:
        channel, data = channel_data
        self.deliveries.append((t, {"channel": channel, "data": data}))

    def device_changed(self, t: datetime) -> None:
        self.emit(t, device_data(self.device))

    def call(self, t: datetime, call_id: str, state: str, **kw) -> None:
        self.emit(t, call_data(call_id, state, device=self.device, **kw))

    def media(self, t: datetime, kind: str, item_id: str, state: str, caps: list[str] | None = None,
              reference_id: int | None = None) -> None:
        self.emit(t, media_data(kind, item_id, state, capabilities=caps, reference_id=reference_id))

    def latency(self) -> timedelta:
        """Server-side time from request to notification: mostly fast, with a tail."""
        x = self.rng.lognormvariate(3.3, 0.6)          # median ~27 ms
        return ms(min(x, 2000))

    # CometD
    def _next_id(self) -> str:
        self.bayeux_id += 1
        return str(self.bayeux_id)

    def handshake(self, t: datetime) -> datetime:
        xid = self.b.exchange(t, self.user, "POST", "/api/v2/notifications/handshake", session=self.session,
                              ack_ms=4, response=None)
        self.b.bayeux(t, self.user, {"channel": "/meta/handshake", "id": self._next_id(), "version": "1.0",
                                     "supportedConnectionTypes": ["long-polling"]},
                      direction="c2s", exchange_id=xid, session=self.session)
        self.b.bayeux(t + ms(4), self.user, {"channel": "/meta/handshake", "id": str(self.bayeux_id),
                                             "successful": True, "clientId": self.client_id, "version": "1.0",
                                             "advice": {"reconnect": "retry", "interval": 0, "timeout": 30000}},
                      exchange_id=xid, session=self.session)
        t = t + ms(6)
        xid = self.b.exchange(t, self.user, "POST", "/api/v2/notifications", session=self.session, ack_ms=3)
        self.b.bayeux(t, self.user, {"channel": "/meta/subscribe", "clientId": self.client_id,
                                     "id": self._next_id(), "subscription": "/v2/me/*"},
                      direction="c2s", exchange_id=xid, session=self.session)
        self.b.bayeux(t + ms(3), self.user, {"channel": "/meta/subscribe", "clientId": self.client_id,
                                             "id": str(self.bayeux_id), "successful": True,
                                             "subscription": "/v2/me/*"},
                      exchange_id=xid, session=self.session)
        return t + ms(5)

    def long_poll(self, start: datetime, end: datetime, *, gap_at: datetime | None = None,
                  unknown_client_at: datetime | None = None) -> None:
        """Deliver the collected notifications through held /meta/connect requests.

        ``gap_at``: the desktop stalls 12 s before re-polling (a long-poll gap).
        ``unknown_client_at``: the server has dropped the session; the next connect
        gets 402::Unknown client and the desktop re-handshakes.
        """
        pending = sorted(self.deliveries, key=lambda d: d[0])
        t = start
        i = 0
        while t < end:
            hold_until = t + timedelta(seconds=30)
            if i < len(pending) and pending[i][0] < hold_until:
                reply_t = max(pending[i][0], t) + ms(1)
            else:
                reply_t = hold_until
            reply_t = min(reply_t, end)
            xid = self.b.exchange(t, self.user, "POST", "/api/v2/notifications/connect", session=self.session,
                                  ack_ms=(reply_t - t).total_seconds() * 1000, response=None)
            cid = self._next_id()
            self.b.bayeux(t, self.user, {"channel": "/meta/connect", "clientId": self.client_id, "id": cid,
                                         "connectionType": "long-polling"},
                          direction="c2s", exchange_id=xid, session=self.session)
            if unknown_client_at is not None and reply_t >= unknown_client_at:
                self.b.bayeux(reply_t, self.user, {"channel": "/meta/connect", "id": cid, "successful": False,
                                                   "error": "402::Unknown client",
                                                   "advice": {"reconnect": "handshake", "interval": 0}},
                              exchange_id=xid, session=self.session)
                unknown_client_at = None
                self.client_id = self.client_id[:-1] + str(int(self.client_id[-1]) + 1)
                t = self.handshake(reply_t + ms(2))
                continue
            while i < len(pending) and pending[i][0] < reply_t:
                self.b.bayeux(reply_t, self.user, pending[i][1], exchange_id=xid, session=self.session)
                i += 1
            self.b.bayeux(reply_t, self.user, {"channel": "/meta/connect", "id": cid, "successful": True,
                                               "advice": {"reconnect": "retry", "interval": 0, "timeout": 30000}},
                          exchange_id=xid, session=self.session)
            t = reply_t + ms(2)
            if gap_at is not None and t >= gap_at:
                t += timedelta(seconds=12)
                gap_at = None
        self.deliveries.clear()


# ------------------------------------------------------------------------ the demo day

def build_demo_capture(path: str | Path, *, agents: int = 4, calls_per_agent: int = 6, seed: int = 7) -> Path:
    """Write a realistic synthetic capture to ``path`` (replaced if it exists) and return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for p in (path, Path(str(path) + ".wal")):
        if p.exists():
            p.unlink()
    rng = random.Random(seed)
    con = duckdb.connect(str(path))
    try:
        b = CaptureBuilder(con, meta={"source": "gwsreplay.analysis.synthetic", "seed": str(seed)})
        ends = []
        for k in range(1, agents + 1):
            ends.append(_agent_day(b, Desktop(b, f"agent{k}", str(7000 + k), rng), k, calls_per_agent))
        b.write()
    finally:
        con.close()
    return path


def _agent_day(b: CaptureBuilder, d: Desktop, k: int, calls: int) -> datetime:
    """One agent's scripted session; returns when it ended."""
    rng = d.rng
    start = T0 + timedelta(seconds=3 * k)
    t = start
    me = "/api/v2/me"
    d.get(t, "/api/v2/me")
    t = d.handshake(t + ms(20))
    poll_start = t
    t += ms(50)

    # login: StartContactCenterSession -> NotReady, then Ready
    media_channels = ["chat", "email", "workitem"] + (["openmedia"] if k % 2 == 0 else [])
    d.op(t, me, "StartContactCenterSession", channels=["voice", "im"] + media_channels)
    d.device.agent_state = "NotReady"
    d.device_changed(t + d.latency())
    for channel in ["im"] + media_channels:
        d.emit(t + d.latency(), channel_data(channel, "NotReady"))
    t += timedelta(seconds=2)
    d.op(t, f"{me}/channels/voice", "Ready")
    d.device.agent_state = "Ready"
    d.device_changed(t + d.latency())
    for channel in media_channels:
        t += timedelta(milliseconds=300)
        d.op(t, f"{me}/channels/{channel}", "Ready")
        d.emit(t + d.latency(), channel_data(channel, "Ready"))

    for n in range(calls):
        t += timedelta(seconds=rng.uniform(8, 25))
        call_id = f"01{k:02d}{n:03d}JV5JI898NB2L04000VTAES{n:03X}"   # 32 chars, like a T-Server UUID
        path = f"{me}/calls/{call_id}"
        if n % 3 == 2:
            # outbound: Dial -> Dialing -> Established (far end answers)
            d.op(t, f"{me}/devices/{d.device.id}/calls", "Dial", destination={"phoneNumber": "5000"})
            d.call(t + d.latency(), call_id, "Dialing", call_type="Outbound")
            t += timedelta(seconds=rng.uniform(2, 5))
            d.call(t, call_id, "Established", call_type="Outbound")
        else:
            # inbound: Ringing (unsolicited) -> Answer -> Established
            d.call(t, call_id, "Ringing")
            t += timedelta(seconds=rng.uniform(1, 4))
            d.op(t, path, "Answer")
            d.call(t + d.latency(), call_id, "Established")
        t += timedelta(seconds=rng.uniform(5, 30))
        d.op(t, path, "AttachUserData", userData={"CaseId": str(n)})
        d.call(t + d.latency(), call_id, "Established", notification_type="AttachedDataChanged")
        if n % 2 == 0:
            t += timedelta(seconds=rng.uniform(3, 10))
            d.op(t, path, "Hold")
            d.call(t + d.latency(), call_id, "Held")
            t += timedelta(seconds=rng.uniform(3, 15))
            d.op(t, path, "Retrieve")
            d.call(t + d.latency(), call_id, "Established")
        t += timedelta(seconds=rng.uniform(5, 40))
        if n == 1 and k == 2:
            # the far end hangs up first; the agent's late Hangup fails with an ErrorMessage
            d.call(t, call_id, "Released")
            t += timedelta(milliseconds=500)
            d.op(t, path, "Hangup")
            d.emit(t + d.latency(), error_data(d.device, call_id, "Invalid call state"))
        elif n == 2 and k == 4:
            # out-of-order delivery: a late AttachedDataChanged (still Established) arrives after
            # Released, so the call appears to come back to life (an anomaly for the call model)
            d.op(t, path, "Hangup")
            d.call(t + ms(15), call_id, "Released")
            d.call(t + ms(40), call_id, "Established", notification_type="AttachedDataChanged")
        else:
            d.op(t, path, "Hangup")
            d.call(t + d.latency(), call_id, "Released")
        # wrap-up, then Ready again
        t += timedelta(seconds=1)
        d.op(t, f"{me}/channels/voice", "AfterCallWork")
        d.device.agent_state = "AfterCallWork"
        d.device_changed(t + d.latency())
        t += timedelta(seconds=rng.uniform(5, 20))
        d.op(t, f"{me}/channels/voice", "Ready")
        d.device.agent_state = "Ready"
        d.device_changed(t + d.latency())

    # a break: AuxWork, DND and forwarding round trips
    t += timedelta(seconds=5)
    d.op(t, f"{me}/channels/voice", "AuxWork")
    d.device.agent_state = "AuxWork"
    d.device_changed(t + d.latency())
    t += timedelta(seconds=3)
    d.op(t, f"{me}/devices/{d.device.id}", "DoNotDisturbOn")
    d.device.dnd = True
    d.device_changed(t + d.latency())
    t += timedelta(seconds=4)
    d.op(t, f"{me}/devices/{d.device.id}", "DoNotDisturbOff")
    d.device.dnd = False
    d.device_changed(t + d.latency())
    if k % 2 == 1:
        t += timedelta(seconds=2)
        d.op(t, f"{me}/devices/{d.device.id}", "ForwardCallsOn", destination="5001")
        d.device.forward_to = "5001"
        d.device_changed(t + d.latency())
        t += timedelta(seconds=2)
        d.op(t, f"{me}/devices/{d.device.id}", "ForwardCallsOff")
        d.device.forward_to = None
        d.device_changed(t + d.latency())

    # the chat channel: a break with a reason, do-not-disturb (spelled "0n" as the DoNotDisturbOn
    # sample, L45146), back to Ready
    t += timedelta(seconds=2)
    d.op(t, f"{me}/channels/chat", "NotReady", reasonCode="Break")
    d.emit(t + d.latency(), channel_data("chat", "NotReady"))
    t += timedelta(seconds=2)
    d.op(t, f"{me}/channels/chat", "DoNotDisturbOn")
    d.emit(t + d.latency(), channel_data("chat", "NotReady", dnd="0n"))
    t += timedelta(seconds=2)
    d.op(t, f"{me}/channels/chat", "DoNotDisturbOff")
    d.emit(t + d.latency(), channel_data("chat", "NotReady"))
    t += timedelta(seconds=1)
    d.op(t, f"{me}/channels/chat", "Ready")
    d.emit(t + d.latency(), channel_data("chat", "Ready"))

    # multimedia: one IM session, a chat and an email or workitem per agent
    t += timedelta(seconds=3)
    ref = 100 * k
    d.op(t, f"{me}/im-sessions", "InitiateIMSession", destination={"phoneNumber": "7001"})
    im = f"IM{k:04d}"
    d.media(t + d.latency(), "im-session", im, "Talking", ["SendMessage", "Complete"])
    t += timedelta(seconds=5)
    d.op(t, f"{me}/im-sessions/{im}", "Complete")
    d.media(t + d.latency(), "im-session", im, "Completed")

    chat = f"CH{k:014d}"
    t += timedelta(seconds=2)
    d.media(t, "chat", chat, "Invited", ["Accept", "Reject"])
    t += timedelta(seconds=3)
    d.op(t, f"{me}/chats/{chat}", "Accept", response={"statusCode": 0, "referenceId": ref + 1},
         nickname=d.user)
    d.media(t + d.latency(), "chat", chat, "Chatting", ["SendMessage", "Leave", "Complete"], reference_id=ref + 1)
    t += timedelta(seconds=10)
    if k == 3:
        # this agent leaves the chat first, then completes it
        d.op(t, f"{me}/chats/{chat}", "Leave", response={"statusCode": 0, "referenceId": ref + 2})
        d.media(t + d.latency(), "chat", chat, "LeftChat", ["Complete"], reference_id=ref + 2)
        t += timedelta(seconds=2)
    d.op(t, f"{me}/chats/{chat}", "Complete", response={"statusCode": 0, "referenceId": ref + 3})
    d.media(t + d.latency(), "chat", chat, "Completed", reference_id=ref + 3)

    item = f"WI{k:014d}"
    t += timedelta(seconds=2)
    if k % 2 == 0:
        d.media(t, "email", item, "Invited", ["Accept", "Reject"])
        t += timedelta(seconds=2)
        d.op(t, f"{me}/emails/{item}", "Accept", response={"statusCode": 0, "referenceId": ref + 4})
        d.media(t + d.latency(), "email", item, "Processing", ["Reply", "Complete"], reference_id=ref + 4)
        t += timedelta(seconds=6)
        d.op(t, f"{me}/emails/{item}", "Complete", response={"statusCode": 0, "referenceId": ref + 5})
        d.media(t + d.latency(), "email", item, "Completed", reference_id=ref + 5)
    else:
        d.media(t, "workitem", item, "Invited", ["Accept", "Reject"])
        t += timedelta(seconds=2)
        d.op(t, f"{me}/workitems/{item}", "Accept", response={"statusCode": 0, "referenceId": ref + 4})
        d.media(t + d.latency(), "workitem", item, "Processing", ["Complete", "Transfer"], reference_id=ref + 4)
        t += timedelta(seconds=6)
        d.op(t, f"{me}/workitems/{item}", "Complete", response={"statusCode": 0, "referenceId": ref + 5})
        d.media(t + d.latency(), "workitem", item, "Completed", reference_id=ref + 5)

    if "openmedia" in media_channels:
        promo = f"OM{k:014d}"
        t += timedelta(seconds=2)
        d.media(t, "openmedia", promo, "Invited", ["Accept", "Reject"])
        t += timedelta(seconds=2)
        d.op(t, f"{me}/openmedia/promotion/{promo}", "Accept", response={"statusCode": 0, "referenceId": ref + 6})
        d.media(t + d.latency(), "openmedia", promo, "Processing", ["Complete", "Transfer"], reference_id=ref + 6)
        t += timedelta(seconds=4)
        d.op(t, f"{me}/openmedia/promotion/{promo}", "Complete", response={"statusCode": 0, "referenceId": ref + 7})
        d.media(t + d.latency(), "openmedia", promo, "Completed", reference_id=ref + 7)

    # failures: an invalid parameter (HTTP 400, statusCode 2), and an operation GWS accepts
    # but never confirms (no notification)
    t += timedelta(seconds=2)
    d.op(t, me, "Ready", workmode="aManualIn", status=400,
         response={"statusCode": 2, "statusMessage": "Parameter 'workmode' is invalid"})
    if k == 1:
        t += timedelta(seconds=1)
        d.op(t, f"{me}/devices/{d.device.id}", "ForwardCallsOn", destination="9999")

    # logout: the media channels first, then voice
    for channel in media_channels:
        t += timedelta(milliseconds=300)
        d.op(t, f"{me}/channels/{channel}", "Offline")
        d.emit(t + d.latency(), channel_data(channel, "LoggedOut"))
    t += timedelta(seconds=3)
    d.op(t, f"{me}/channels/voice", "Offline")
    d.device.agent_state = "Offline"
    d.device_changed(t + d.latency())
    t += timedelta(seconds=1)
    d.op(t, me, "EndContactCenterSession")
    end = t + timedelta(seconds=1)
    d.long_poll(poll_start, end,
                gap_at=poll_start + timedelta(seconds=40) if k == 4 else None,
                unknown_client_at=poll_start + timedelta(seconds=90) if k == 3 else None)
    return end
