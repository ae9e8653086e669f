"""Classification of GWS traffic, no I/O.

* :func:`classify_http` turns a method, path and parsed bodies into the API area,
  resource type and id, operationName, statusCode/statusMessage and referenceId
  (protocol.md §9; media.md).
* :func:`classify_bayeux` turns one Bayeux message into its envelope fields and the
  resource it concerns with that resource's state (protocol.md §3.5-3.6, media.md topic
  tables), for GWS 8.6 and 8.5.2 shapes alike.

Resource types use one vocabulary on both sides, so a REST operation and the
notification showing its effect can be joined on ``(resource_type, resource_id)``:
``call device channel service chat email facebook facebooksession tweet openmedia
workitem smsession im-session workbin interaction outbound-record outbound-campaign
multimediaevent user place group queue skill settings contact ...``
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

# URL segment -> resource type
_SEGMENT_TYPES: dict[str, str] = {
    "me": "me",
    "calls": "call",
    "call": "call",
    "devices": "device",
    "channels": "channel",
    "chats": "chat",
    "emails": "email",
    "email": "email",
    "facebook": "facebook",
    "facebooks": "facebook",
    "facebooksessions": "facebooksession",
    "facebooksession": "facebooksession",
    "tweets": "tweet",
    "tweet": "tweet",
    "twitter": "tweet",
    "openmedia": "openmedia",
    "workitems": "workitem",
    "smsessions": "smsession",
    "smssessions": "smsession",
    "smsession": "smsession",
    "im-sessions": "im-session",
    "workbins": "workbin",
    "multimediaevents": "multimediaevent",
    "interactions": "interaction",
    "attachments": "attachment",
    "users": "user",
    "places": "place",
    "groups": "group",
    "queues": "queue",
    "skills": "skill",
    "settings": "settings",
    "contacts": "contact",
    "features": "feature",
    "services": "service",
    "voice-environments": "voice-environment",
    "phone-numbers": "phone-number",
    "recordings": "recording",
    "outbound-campaigns": "outbound-campaign",
    "outbound-records": "outbound-record",
    "stats": "statistic",
    "diagnostics": "diagnostics",
    "system": "system",
    "notifications": "bayeux",
    "ucs": "ucs",
    "platform": "platform",
    "messages": "message",
}

MULTIMEDIA_TYPES = frozenset({
    "chat", "email", "facebook", "facebooksession", "tweet", "openmedia", "workitem",
    "smsession", "im-session", "workbin", "multimediaevent", "interaction", "attachment",
})
_PROVISIONING_TYPES = frozenset({
    "user", "place", "group", "queue", "skill", "feature", "service", "voice-environment",
    "phone-number", "recording", "system",
})


@dataclass
class HttpClass:
    api_version: str | None = None     # "v2", "v1"
    api_area: str | None = None        # "agent", "voice", "multimedia", "notifications", ...
    resource_type: str | None = None
    resource_id: str | None = None
    sub_resource: str | None = None    # trailing collection (e.g. "calls" in /me/devices/{id}/calls)
    owner_id: str | None = None        # user id in /users/{userId}/..., or media type of openmedia
    operation_name: str | None = None
    status_code: int | None = None
    status_message: str | None = None
    reference_id: str | None = None

    @property
    def is_bayeux(self) -> bool:
        return self.api_area == "notifications"


def _area_for(first: str, rtype: str | None, under_me: bool) -> str:
    if first == "notifications":
        return "notifications"
    if first == "diagnostics":
        return "diagnostics"
    if rtype in ("call", "device"):
        return "voice"
    if rtype in MULTIMEDIA_TYPES:
        return "multimedia" if (under_me or rtype != "chat") else "customer-chat"
    if rtype in ("outbound-campaign", "outbound-record"):
        return "outbound"
    if first == "ucs":
        return "ucs"
    if first == "platform":
        return "configuration"
    if first == "stats":
        return "statistics"
    if rtype == "contact":
        return "contacts"
    if rtype == "settings":
        return "settings"
    if under_me or rtype == "channel":
        return "agent"
    if rtype in _PROVISIONING_TYPES:
        return "provisioning"
    return "other"


def _as_int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        try:
            return int(v.strip())
        except ValueError:
            return None
    return None


def _ref(v: Any) -> str | None:
    if v is None or isinstance(v, (dict, list)):
        return None
    return str(v)


def classify_path(path: str) -> HttpClass:
    """Area and resource from the path alone (query string ignored)."""
    c = HttpClass()
    p = path.split("?", 1)[0]
    m = re.search(r"/api/(v\d+)(/.*)?$", p)
    if not m:
        if p.startswith("/sim/"):
            c.api_area = "sim"
            segs = [s for s in p.split("/") if s]
            c.resource_type = segs[2] if len(segs) > 2 else None
        else:
            c.api_area = "other"
        return c
    c.api_version = m.group(1)
    segs = [unquote(s) for s in (m.group(2) or "").split("/") if s]
    if not segs:
        c.api_area = "other"
        return c
    first = segs[0]
    under_me = first == "me"
    if first == "notifications":
        c.api_area = "notifications"
        c.resource_type = "bayeux"
        c.sub_resource = "/".join(segs[1:]) or None
        return c
    rest = segs[1:] if under_me else segs
    if under_me and not rest:
        c.api_area = "agent"
        c.resource_type = "me"
        return c
    if not under_me and first == "platform":
        # /platform/configuration/{type}[/{dbid}] or /platform/contactserver/<Op>[/{id}]
        c.api_area = "configuration" if (len(segs) > 1 and segs[1] == "configuration") else "multimedia"
        c.resource_type = segs[2] if len(segs) > 2 else (segs[1] if len(segs) > 1 else "platform")
        c.resource_id = segs[3] if len(segs) > 3 else None
        return c
    if not under_me and first == "ucs":
        c.api_area = "ucs"
        c.resource_type = _SEGMENT_TYPES.get(segs[1], segs[1]) if len(segs) > 1 else "ucs"
        c.resource_id = segs[2] if len(segs) > 2 else None
        c.sub_resource = "/".join(segs[3:]) or None
        return c
    if not under_me and first == "users" and len(rest) >= 3:
        # /users/{userId}/{collection}[/{id}[/...]]
        c.owner_id = rest[1]
        rest = rest[2:]
    # walk (type, id) pairs; keep the innermost identified resource
    i = 0
    rtype = rid = sub = None
    while i < len(rest):
        seg = rest[i]
        t = _SEGMENT_TYPES.get(seg, seg)
        if t == "openmedia" and i + 1 < len(rest):
            # /openmedia/{mediaType}[/{id}]
            c.owner_id = rest[i + 1]
            rtype, rid, sub = t, (rest[i + 2] if i + 2 < len(rest) else None), None
            i += 3
            continue
        if i + 1 < len(rest):
            rtype, rid, sub = t, rest[i + 1], None
            if t == "workbin" and i + 2 < len(rest):
                # /workbins/{id}/{mediaType}
                sub = "/".join(rest[i + 2:])
                break
            i += 2
        else:
            if rtype is None:
                rtype = t
            else:
                sub = seg
            i += 1
    c.resource_type, c.resource_id, c.sub_resource = rtype, rid, sub
    c.api_area = _area_for(first, rtype, under_me)
    return c


def classify_http(method: str, path: str, request_body: Any = None, response_body: Any = None) -> HttpClass:
    """Classify one exchange. Bodies are the parsed JSON (anything else is ignored)."""
    c = classify_path(path)
    if isinstance(request_body, dict):
        op = request_body.get("operationName")
        if isinstance(op, str) and op:
            c.operation_name = op
        c.reference_id = _ref(request_body.get("referenceId"))
    if isinstance(response_body, dict):
        c.status_code = _as_int(response_body.get("statusCode"))
        msg = response_body.get("statusMessage")
        if msg is not None:
            c.status_message = str(msg)
        ref = _ref(response_body.get("referenceId"))
        if ref is not None:
            c.reference_id = ref
    return c


# ----------------------------------------------------------------------------- Bayeux

@dataclass
class BayeuxClass:
    channel: str | None = None
    client_id: str | None = None
    msg_id: str | None = None
    successful: bool | None = None
    error: str | None = None
    advice: Any = None
    connection_type: str | None = None
    subscription: str | None = None
    ext: Any = None
    data: Any = None
    message_type: str | None = None
    notification_type: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    resource_state: str | None = None
    call_id: str | None = None
    conn_id: str | None = None
    device_id: str | None = None
    user_state: str | None = None
    reference_id: str | None = None
    error_message: str | None = None
    extra: dict = field(default_factory=dict)


# messageType -> (resource type, key in data holding the resource)
_MEDIA_MESSAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "ChatStateChangeMessage": ("chat", ("chat",)),
    "EmailStateChangeMessage": ("email", ("email",)),
    "FacebookStateChangeMessage": ("facebook", ("facebook",)),
    "FacebooksessionStateChangeMessage": ("facebooksession", ("facebooksession", "facebooksessions")),
    "facebooksessionStateChangeMessage": ("facebooksession", ("facebooksession", "facebooksessions")),
    "TweetStateChangeMessage": ("tweet", ("tweet", "twitter")),
    "TwitterStateChangeMessage": ("tweet", ("twitter", "tweet")),
    "OpenmediaStateChangeMessage": ("openmedia", ("openmedia", "openMedia", "interaction")),
    "WorkitemStateChangeMessage": ("workitem", ("workitem",)),
    "SMSsessionStateChangeMessage": ("smsession", ("smssession", "smsession")),
    "IMSessionStateChangeMessage": ("im-session", ("imSession",)),
}
# log updates: messageType -> (resource type, keys holding a uri or path)
_LOG_MESSAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "IMLogUpdateMessage": ("im-session", ("imSessionPath", "imSessionUri")),
}
_MEDIA_BY_CHANNEL = {
    "/v2/me/chats": ("chat", ("chatUri", "chatPath")),
    "/v2/me/facebooksession": ("facebooksession", ("facebooksessionUri", "facebooksessionPath", "chatUri")),
    "/v2/me/smsessions": ("smsession", ("smssessionUri", "smsessionUri", "smssessionPath")),
}
_ID_FROM_URI = re.compile(r"/([^/?#]+)/?(?:[?#].*)?$")
_HEX16 = re.compile(r"^[0-9a-fA-F]{16}$")


def id_from_uri(uri: Any) -> str | None:
    if not isinstance(uri, str) or not uri:
        return None
    m = _ID_FROM_URI.search(uri)
    return unquote(m.group(1)) if m else None


def _str(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, (dict, list)):
        return None
    return str(v)


def _state_of(obj: Any) -> str | None:
    if not isinstance(obj, dict):
        return None
    st = obj.get("state")
    if isinstance(st, dict):          # userState-like
        return _str(st.get("state"))
    return _str(st)


def classify_bayeux(msg: Any) -> BayeuxClass:
    """Envelope fields and GWS resource of one decoded Bayeux message.

    Never raises: anything unexpected leaves the fields as None.
    """
    c = BayeuxClass()
    if not isinstance(msg, dict):
        return c
    c.channel = _str(msg.get("channel"))
    c.client_id = _str(msg.get("clientId"))
    c.msg_id = _str(msg.get("id"))
    s = msg.get("successful")
    c.successful = s if isinstance(s, bool) else None
    c.error = _str(msg.get("error"))
    c.advice = msg.get("advice")
    c.connection_type = _str(msg.get("connectionType"))
    c.subscription = _str(msg.get("subscription")) if not isinstance(msg.get("subscription"), list) else ",".join(
        str(x) for x in msg["subscription"])
    c.ext = msg.get("ext")
    data = msg.get("data")
    c.data = data
    if not isinstance(data, dict):
        return c
    try:
        _classify_data(c, data)
    except Exception:  # noqa: BLE001 - classification is best effort on untrusted input
        pass
    return c


def _classify_data(c: BayeuxClass, data: dict) -> None:
    mt = _str(data.get("messageType"))
    c.message_type = mt
    c.notification_type = _str(data.get("notificationType"))
    c.reference_id = _ref(data.get("referenceId"))
    channel = c.channel or ""

    if mt == "CallStateChangeMessage" or (mt is None and isinstance(data.get("call"), dict)):
        call = data.get("call")
        if isinstance(call, dict):
            _set_call(c, call)
        elif data.get("callId") is not None:        # 8.5.2 mobile-push minimal payload
            c.resource_type = "call"
            c.call_id = c.resource_id = _str(data.get("callId"))
        return
    if mt == "DeviceStateChangeMessage" or (mt is None and isinstance(data.get("devices"), list)):
        devices = data.get("devices")
        c.resource_type = "device"
        if isinstance(devices, list) and devices and isinstance(devices[0], dict):
            d = devices[0]
            c.device_id = c.resource_id = _str(d.get("id"))
            us = d.get("userState")
            c.user_state = _str(us.get("state")) if isinstance(us, dict) else _str(us)
            c.resource_state = c.user_state
        elif data.get("deviceId") is not None:
            c.device_id = c.resource_id = _str(data.get("deviceId"))
        return
    if mt == "ErrorMessage":
        c.device_id = id_from_uri(data.get("deviceUri"))
        c.call_id = id_from_uri(data.get("callUri"))
        c.error_message = _str(data.get("errorMessage"))
        if c.call_id:
            c.resource_type, c.resource_id = "call", c.call_id
        elif c.device_id:
            c.resource_type, c.resource_id = "device", c.device_id
        c.resource_state = "Error"
        return
    if mt == "ServiceStateChangeMessage":
        svc = data.get("service")
        if isinstance(svc, list):
            svc = svc[0] if svc else None
        c.resource_type = "service"
        if isinstance(svc, dict):
            c.resource_id = _str(svc.get("id")) or _str(svc.get("type"))
            c.resource_state = _str(svc.get("state"))
            c.extra["service_type"] = _str(svc.get("type"))
        return
    if mt == "ChannelStateChangeMessageV2" or channel == "/v2/me/channels":
        chans = data.get("channels")
        if isinstance(chans, dict):
            chans = [chans]
        c.resource_type = "channel"
        if isinstance(chans, list) and chans and isinstance(chans[0], dict):
            ch = chans[0]
            c.resource_id = _str(ch.get("channel"))
            us = ch.get("userState")
            c.user_state = c.resource_state = _str(us.get("state")) if isinstance(us, dict) else _str(us)
        return
    if mt in ("WorkbinSubscriptionStateChangeMessage", "WorkbinStateChangeMessage", "WorkbinStatsMessage"):
        c.resource_type = "workbin"
        c.resource_id = _str(data.get("id"))
        c.resource_state = _str(data.get("stateResource")) or _str(data.get("action"))
        return
    if mt in _MEDIA_MESSAGES:
        rtype, keys = _MEDIA_MESSAGES[mt]
        c.resource_type = rtype
        for k in keys:
            obj = data.get(k)
            if isinstance(obj, list):
                obj = obj[0] if obj else None
            if isinstance(obj, dict):
                c.resource_id = _str(obj.get("id")) or id_from_uri(obj.get("uri")) or id_from_uri(obj.get("path"))
                c.resource_state = _state_of(obj)
                break
        if c.notification_type == "Error":
            c.error_message = _str(data.get("errorMessage"))
        return
    if mt in _LOG_MESSAGES or mt == "MessageLogUpdated":
        if mt in _LOG_MESSAGES:
            rtype, keys = _LOG_MESSAGES[mt]
        else:
            rtype, keys = _MEDIA_BY_CHANNEL.get(channel, ("chat", ("chatUri", "chatPath")))
            for k in ("facebooksessionUri", "facebooksessionPath"):
                if k in data:
                    rtype, keys = "facebooksession", ("facebooksessionUri", "facebooksessionPath")
            for k in ("smssessionUri", "smsessionUri", "smssessionPath"):
                if k in data:
                    rtype, keys = "smsession", ("smssessionUri", "smsessionUri", "smssessionPath")
        c.resource_type = rtype
        for k in keys:
            rid = id_from_uri(data.get(k))
            if rid:
                c.resource_id = rid
                break
        return
    if mt in ("OutboundRecordMessage", "OutboundCampaignMessage"):
        c.resource_type = "outbound-record" if mt == "OutboundRecordMessage" else "outbound-campaign"
        rec = data.get("record") if mt == "OutboundRecordMessage" else data.get("campaign")
        if isinstance(rec, dict):
            c.resource_id = _str(rec.get("recordHandle")) or _str(rec.get("campaignName")) or _str(rec.get("name"))
            c.resource_state = _str(rec.get("state")) or _str(rec.get("status"))
        return
    if mt == "DeviceUserEventMessage":
        c.resource_type = "device"
        c.device_id = c.resource_id = _str(data.get("deviceId"))
        return
    # generic: the first dict value with an id (and maybe a state)
    for k, v in data.items():
        if isinstance(v, dict) and "id" in v:
            c.resource_type = _SEGMENT_TYPES.get(k, k)
            c.resource_id = _str(v.get("id"))
            c.resource_state = _state_of(v)
            return


def _set_call(c: BayeuxClass, call: dict) -> None:
    c.resource_type = "call"
    cid = _str(call.get("id"))
    c.call_id = c.resource_id = cid
    c.resource_state = _str(call.get("state"))
    conn = _str(call.get("connId"))
    if conn is None and cid and _HEX16.match(cid):
        conn = cid                        # 8.5.2: the id is the connId
    c.conn_id = conn
    dev = id_from_uri(call.get("deviceUri"))
    if dev:
        c.device_id = dev
