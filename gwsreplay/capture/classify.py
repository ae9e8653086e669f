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

import json
import re
from dataclasses import dataclass
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
        # /api/v2/chats/... is the Customer Chat API; /me/chats and /users/{id}/chats are the agent's
        return "customer-chat" if (first == "chats" and not under_me) else "multimedia"
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


# simulator control API (/sim/v1/...) collection -> resource type (docs/media-model.md, "Control API")
_SIM_TYPES: dict[str, str] = {
    "calls": "call", "chats": "chat", "emails": "email", "workitems": "workitem", "openmedia": "openmedia",
    "services": "service", "im-sessions": "im-session",
}


def _classify_sim(c: HttpClass, p: str) -> None:
    """/sim/v1/{collection}[/{id}[/{action}]]; /sim/v1/openmedia/{mediaType}; other names as they are."""
    c.api_area = "sim"
    segs = [unquote(s) for s in p.split("/") if s][2:]
    if not segs:
        return
    c.resource_type = _SIM_TYPES.get(segs[0], segs[0])
    rest = segs[1:]
    if c.resource_type == "openmedia" and rest:
        c.owner_id, rest = rest[0], rest[1:]
    if rest:
        c.resource_id = rest[0]
        c.sub_resource = "/".join(rest[1:]) or None


def classify_path(path: str) -> HttpClass:
    """Area and resource from the path alone (query string ignored)."""
    c = HttpClass()
    p = path.split("?", 1)[0]
    m = re.search(r"/api/(v\d+)(/.*)?$", p)
    if not m:
        if p.startswith("/sim/"):
            _classify_sim(c, p)
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
        if (c.api_area == "sim" and c.resource_type == "workitem" and isinstance(request_body, dict)
                and isinstance(request_body.get("mediaType"), str) and request_body["mediaType"] != "workitem"):
            # POST /sim/v1/workitems {"mediaType": "promotion"} injects open media of that type
            c.resource_type, c.owner_id = "openmedia", request_body["mediaType"]
        if c.api_area == "sim" and c.resource_id is None and method.upper() == "POST":
            # the control API answers an injection with the new resource's id (a chat, email, call...)
            new_id = response_body.get("id")
            if isinstance(new_id, (str, int)) and not isinstance(new_id, bool) and str(new_id):
                c.resource_id = str(new_id)
    return c


# ----------------------------------------------------------------------------- Bayeux
#
# The writer classifies Bayeux messages in DuckDB (gwsreplay.capture/bayeux_sql.py) for speed;
# classify_bayeux is the same set of rules in Python (for tools and tests; a differential
# test keeps the two equal). Field values follow DuckDB's json_transform-to-VARCHAR
# semantics: strings as is, numbers and booleans as JSON text, objects/arrays as JSON text.

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
    # the interaction inside a WorkbinStateChangeMessage (<kind>StateResourceV2): its type, id, state
    item_type: str | None = None
    item_id: str | None = None
    item_state: str | None = None


#: BayeuxClass fields that are not (yet) columns of every capture: the SQL writes them
#: only when bayeux_messages has them (gwsreplay.capture/bayeux_sql.py, ITEM_COLUMNS).
ITEM_FIELDS = ("item_type", "item_id", "item_state")

# messageType -> (resource type, keys holding the interaction), as in bayeux_sql.MEDIA
_MEDIA_MESSAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "ChatStateChangeMessage": ("chat", ("chat",)),
    "EmailStateChangeMessage": ("email", ("email",)),
    "FacebookStateChangeMessage": ("facebook", ("facebook",)),
    "FacebooksessionStateChangeMessage": ("facebooksession", ("facebooksession", "facebooksessions")),
    "facebooksessionStateChangeMessage": ("facebooksession", ("facebooksession", "facebooksessions")),
    "TweetStateChangeMessage": ("tweet", ("tweet", "twitter")),
    "TwitterStateChangeMessage": ("tweet", ("twitter", "tweet")),
    "OpenmediaStateChangeMessage": ("openmedia", ("openmedia", "interaction")),
    "WorkitemStateChangeMessage": ("workitem", ("workitem",)),
    "SMSsessionStateChangeMessage": ("smsession", ("smssession", "smsession")),
    "IMSessionStateChangeMessage": ("im-session", ("imSession",)),
}
_LOG_KEYS = {
    "facebooksession": ("facebooksessionUri", "facebooksessionPath"),
    "smsession": ("smssessionUri", "smsessionUri", "smssessionPath"),
    "chat": ("chatUri", "chatPath"),
}
_WORKBIN_MESSAGES = ("WorkbinSubscriptionStateChangeMessage", "WorkbinStateChangeMessage", "WorkbinStatsMessage")
#: WorkbinStateChangeMessage: data.<key>StateResourceV2 -> resource type of the item (media.md §12),
#: in the order they are tried, as in bayeux_sql.WORKBIN_ITEMS
WORKBIN_ITEMS: dict[str, str] = {
    "chat": "chat", "email": "email", "workitem": "workitem", "openmedia": "openmedia", "facebook": "facebook",
    "facebooksession": "facebooksession", "tweet": "tweet",
}
_MMEVENT_MESSAGES = ("MultimediaEventNotificationMessage", "MultimediaEventSubscriptionStateChangeMessage")
_OPERATION_RESPONSES = ("TwitterOperationResponse", "TweetOperationResponse")
_ID_FROM_URI = re.compile(r"/([^/?#]+)/?(?:[?#].*)?$")
_HEX16 = re.compile(r"[0-9a-fA-F]{16}")


def jtext(v: Any) -> str | None:
    """A JSON value as DuckDB's json_transform renders it into VARCHAR."""
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


def id_from_uri(uri: Any) -> str | None:
    """Last path segment of a uri or path ("http://h/api/v2/calls/ID" -> "ID")."""
    uri = jtext(uri)
    if not uri:
        return None
    m = _ID_FROM_URI.search(uri)
    return unquote(m.group(1)) if m else None


def _obj(d: dict, key: str) -> dict:
    v = d.get(key)
    return v if isinstance(v, dict) else {}


def _first(d: dict, key: str) -> dict:
    v = d.get(key)
    if isinstance(v, list) and v and isinstance(v[0], dict):
        return v[0]
    return {}


def _coalesce(*vals: Any) -> Any:
    for v in vals:
        if v is not None:
            return v
    return None


def classify_bayeux(msg: Any) -> BayeuxClass:
    """Envelope fields and GWS resource of one decoded Bayeux message. Never raises."""
    c = BayeuxClass()
    if not isinstance(msg, dict):
        return c
    c.channel = jtext(msg.get("channel"))
    c.client_id = jtext(msg.get("clientId"))
    c.msg_id = jtext(msg.get("id"))
    s = msg.get("successful")
    c.successful = s if isinstance(s, bool) else None
    c.error = jtext(msg.get("error"))
    c.advice = msg.get("advice")
    c.connection_type = jtext(msg.get("connectionType"))
    c.subscription = jtext(msg.get("subscription"))
    c.ext = msg.get("ext")
    data = msg.get("data")
    c.data = data
    if isinstance(data, dict):
        try:
            _classify_data(c, data)
        except Exception:  # noqa: BLE001 - best effort on untrusted input
            pass
    return c


def _classify_data(c: BayeuxClass, d: dict) -> None:
    mt = jtext(d.get("messageType"))
    c.message_type = mt
    c.notification_type = jtext(d.get("notificationType"))
    c.reference_id = jtext(d.get("referenceId"))
    g = lambda o, k: jtext(o.get(k))  # noqa: E731

    if mt == "CallStateChangeMessage":
        call = _obj(d, "call")
        c.resource_type = "call"
        c.call_id = c.resource_id = _coalesce(g(call, "id"), g(d, "callId"))
        c.resource_state = g(call, "state")
        c.conn_id = _coalesce(g(call, "connId"),
                              c.call_id if c.call_id and _HEX16.fullmatch(c.call_id) else None)
        c.device_id = id_from_uri(call.get("deviceUri"))
    elif mt == "DeviceStateChangeMessage":
        dev = _first(d, "devices")
        c.resource_type = "device"
        c.device_id = c.resource_id = _coalesce(g(dev, "id"), g(d, "deviceId"))
        c.user_state = c.resource_state = g(_obj(dev, "userState"), "state")
    elif mt == "ErrorMessage":
        c.call_id = id_from_uri(d.get("callUri"))
        c.device_id = id_from_uri(d.get("deviceUri"))
        c.resource_type = "call" if c.call_id else ("device" if c.device_id else None)
        c.resource_id = _coalesce(c.call_id, c.device_id)
        c.resource_state = "Error"
        c.error_message = g(d, "errorMessage")
    elif mt == "ServiceStateChangeMessage":
        svc = _obj(d, "service")
        c.resource_type = "service"
        c.resource_id = _coalesce(g(svc, "id"), g(svc, "type"))
        c.resource_state = g(svc, "state")
    elif mt == "ChannelStateChangeMessageV2" or c.channel == "/v2/me/channels":
        ch = _first(d, "channels")
        c.resource_type = "channel"
        c.resource_id = g(ch, "channel")
        c.user_state = c.resource_state = g(_obj(ch, "userState"), "state")
    elif mt in _WORKBIN_MESSAGES:
        c.resource_type = "workbin"
        c.resource_id = g(d, "id")
        c.resource_state = _coalesce(g(d, "stateResource"), g(d, "action"))
        if mt == "WorkbinStateChangeMessage":
            keys = [k + "StateResourceV2" for k in WORKBIN_ITEMS]
            c.item_type = next((WORKBIN_ITEMS[k[:-len("StateResourceV2")]] for k in keys
                                if isinstance(d.get(k), dict)), None)
            objs = [_obj(d, k) for k in keys]
            c.item_id = _coalesce(*[v for o in objs for v in (g(o, "id"), id_from_uri(o.get("uri")),
                                                              id_from_uri(o.get("path")))])
            c.item_state = _coalesce(*[g(o, "state") for o in objs])
    elif mt in _MEDIA_MESSAGES:
        rtype, keys = _MEDIA_MESSAGES[mt]
        objs = [_obj(d, k) for k in keys]
        c.resource_type = rtype
        c.resource_id = _coalesce(*[v for o in objs for v in (g(o, "id"), id_from_uri(o.get("uri")),
                                                              id_from_uri(o.get("path")))])
        c.resource_state = _coalesce(*[g(o, "state") for o in objs])
        if c.notification_type == "Error":
            c.error_message = g(d, "errorMessage")
    elif mt == "IMLogUpdateMessage":
        c.resource_type = "im-session"
        c.resource_id = _coalesce(id_from_uri(d.get("imSessionPath")), id_from_uri(d.get("imSessionUri")))
    elif mt == "MessageLogUpdated":
        if d.get("facebooksessionUri") is not None or d.get("facebooksessionPath") is not None:
            rtype = "facebooksession"
        elif any(d.get(k) is not None for k in _LOG_KEYS["smsession"]):
            rtype = "smsession"
        elif c.channel == "/v2/me/facebooksession":
            rtype = "facebooksession"
        elif c.channel == "/v2/me/smsessions":
            rtype = "smsession"
        else:
            rtype = "chat"
        c.resource_type = rtype
        c.resource_id = _coalesce(*[id_from_uri(d.get(k)) for k in _LOG_KEYS[rtype]])
    elif mt in ("OutboundRecordMessage", "OutboundCampaignMessage"):
        rec = _obj(d, "record" if mt == "OutboundRecordMessage" else "campaign")
        c.resource_type = "outbound-record" if mt == "OutboundRecordMessage" else "outbound-campaign"
        c.resource_id = _coalesce(g(rec, "recordHandle"), g(rec, "campaignName"), g(rec, "name"))
        c.resource_state = _coalesce(g(rec, "state"), g(rec, "status"))
    elif mt == "DeviceUserEventMessage":
        c.resource_type = "device"
        c.device_id = c.resource_id = g(d, "deviceId")
    elif mt in _MMEVENT_MESSAGES:
        # Digital User Events (media.md §4): a topic's event, or the subscription's state
        c.resource_type = "multimediaevent"
        c.resource_id = g(d, "topic")
        c.resource_state = g(d, "stateResource")
    elif mt in _OPERATION_RESPONSES:
        # Twitter Follow/Unfollow/Retweet answers (media.md §11): success + errorMessage, no interaction
        c.resource_type = "tweet"
        c.error_message = g(d, "errorMessage")
