"""GWS resources, URL segments, API areas and status codes, as data.

Resource types use one vocabulary on both sides of the API, so a REST operation and
the notification showing its effect can be joined on ``(resource_type, resource_id)``:
``call device channel service chat email facebook facebooksession tweet openmedia
workitem smsession im-session workbin interaction outbound-record outbound-campaign
multimediaevent user place group queue skill settings contact ...``
"""

from __future__ import annotations

#: URL segment (``/api/v2/me/<segment>/...``) -> resource type
SEGMENT_TYPES: dict[str, str] = {
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

#: The simulator's control API (/sim/v1/{collection}) -> resource type (docs/media-model.md, "Control API")
SIM_TYPES: dict[str, str] = {
    "calls": "call", "chats": "chat", "emails": "email", "workitems": "workitem", "openmedia": "openmedia",
    "services": "service", "im-sessions": "im-session",
}

VOICE_TYPES = frozenset({"call", "device"})
MULTIMEDIA_TYPES = frozenset({
    "chat", "email", "facebook", "facebooksession", "tweet", "openmedia", "workitem",
    "smsession", "im-session", "workbin", "multimediaevent", "interaction", "attachment",
})
OUTBOUND_TYPES = frozenset({"outbound-campaign", "outbound-record"})
PROVISIONING_TYPES = frozenset({
    "user", "place", "group", "queue", "skill", "feature", "service", "voice-environment",
    "phone-number", "recording", "system",
})

#: API areas documented as synchronous (no CometD): their operations are acknowledged by the
#: HTTP answer whatever their name (the capture's ``ack_only`` expectation).
ACK_ONLY_AREAS = ("customer-chat", "provisioning", "configuration", "settings", "contacts", "statistics")

#: ``statusCode`` of a REST answer: 0 success, 7 partial success (some items failed, HTTP 200).
STATUS_SUCCESS = 0
STATUS_PARTIAL_SUCCESS = 7
SUCCESS_STATUS_CODES = (STATUS_SUCCESS, STATUS_PARTIAL_SUCCESS)
