"""Classification of GWS traffic, no I/O.

* :func:`classify_http` turns a method, path and parsed bodies into the API area,
  resource type and id, operationName, statusCode/statusMessage and referenceId
  (protocol.md §9; media.md).
* :func:`classify_bayeux` turns one Bayeux message into its envelope fields and the
  resource it concerns with that resource's state (protocol.md §3.5-3.6, media.md topic
  tables), for GWS 8.6 and 8.5.2 shapes alike.

The vocabulary (URL segments, resource types, message types) and the Bayeux rules are
data in gwsreplay.core (resources, notifications); this module reads them. The Bayeux
classifier itself is gwsreplay.core.bayeux_classify (the replayer uses it too), offered
here beside classify_http; the writer's bulk path compiles the same rules into SQL
(gwsreplay.capture.bayeux_sql).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from gwsreplay.core.bayeux_classify import BayeuxClass, classify_bayeux
from gwsreplay.core.resources import (MULTIMEDIA_TYPES, OUTBOUND_TYPES, PROVISIONING_TYPES, SEGMENT_TYPES,
                                      SIM_TYPES, VOICE_TYPES)

__all__ = ["HttpClass", "classify_path", "classify_http", "BayeuxClass", "classify_bayeux"]

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
    if rtype in VOICE_TYPES:
        return "voice"
    if rtype in MULTIMEDIA_TYPES:
        # /api/v2/chats/... is the Customer Chat API; /me/chats and /users/{id}/chats are the agent's
        return "customer-chat" if (first == "chats" and not under_me) else "multimedia"
    if rtype in OUTBOUND_TYPES:
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
    if rtype in PROVISIONING_TYPES:
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


def _classify_sim(c: HttpClass, p: str) -> None:
    """/sim/v1/{collection}[/{id}[/{action}]]; /sim/v1/openmedia/{mediaType}; other names as they are."""
    c.api_area = "sim"
    segs = [unquote(s) for s in p.split("/") if s][2:]
    if not segs:
        return
    c.resource_type = SIM_TYPES.get(segs[0], segs[0])
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
        c.resource_type = SEGMENT_TYPES.get(segs[1], segs[1]) if len(segs) > 1 else "ucs"
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
        t = SEGMENT_TYPES.get(seg, seg)
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
