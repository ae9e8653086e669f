"""Reading a request: the operation name, body parameters, ``fields``/``subresources``.

Pure functions shared by every channel, so each parameter is validated (and each
refusal worded) one way. They raise :class:`GwsError`; nothing here changes state.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from gwsreplay.core.uris import resource_id
from gwsreplay.sim.model.errors import SC_OK, invalid, missing, unsupported

#: Voice resources (/me, devices, calls): page titles that differ from their operationName.
VOICE_ALIASES = {
    # The page title says "CancelSupervisionMonitoring"; its operationName is
    # CancelSupervisorMonitoring (L9880-9895). Accept both.
    "CancelSupervisionMonitoring": "CancelSupervisorMonitoring",
    # The page title says "SendDTMF"; the operationName is SendDtmf (L5960-5975).
    "SendDTMF": "SendDtmf",
}
#: Multimedia resources: operation names that differ from their capability names (media.md §0).
MEDIA_ALIASES = {
    "SendStopTypingToAgentNotification": "SendStopTypingToAgentsNotification",   # table/sample spelling
    "InFocus": "SetInFocus",                                                     # older samples
    "SendURL": "SendUrl",                                                        # page heading
    "AddInteractionToWorkbin": "AddInteraction",                                 # table spelling
}


def operation_name(body: Any, aliases: Mapping[str, str]) -> str:
    """The body's ``operationName``, spelled as the capability lists spell it."""
    if not isinstance(body, Mapping):
        raise missing("operationName")
    op = body.get("operationName")
    if op is None or op == "":
        raise missing("operationName")
    if not isinstance(op, str):
        raise invalid("operationName", "must be a string")
    return aliases.get(op, op)


def handler_for(op: str, table: Mapping[str, str], owner: object) -> Callable:
    """``table`` maps operationName -> method name of ``owner``."""
    name = table.get(op)
    if name is None:
        raise unsupported(op)
    return getattr(owner, name)


def last_segment(value: Any) -> str:
    """``/api/v2/devices/abc/`` -> ``abc`` (gwsreplay.core.uris.resource_id; "" for nothing)."""
    return resource_id(value) or ""


def string_param(body: Mapping, name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise missing(name)
        return None
    if not isinstance(value, str) or (required and value == ""):
        raise invalid(name, "must be a non-empty string")
    return value


#: How a request names an Interaction Server queue: the samples use all three (Create and
#: Reply with queueUri, Reply with queueName L17478, the social media with queuePath).
QUEUE_PARAMS = ("queueUri", "queueName", "queuePath")


def queue_param(body: Mapping) -> str:
    """A required queue, given as any of :data:`QUEUE_PARAMS`."""
    for name in QUEUE_PARAMS:
        value = string_param(body, name, required=False)
        if value:
            return value
    raise missing("queueUri")


def user_data_param(body: Mapping) -> dict:
    """A required ``userData`` object."""
    user_data = body.get("userData")
    if user_data is None:
        raise missing("userData")
    if not isinstance(user_data, Mapping):
        raise invalid("userData", "must be a JSON object")
    return dict(user_data)


def optional_user_data(user_data: Any) -> dict:
    """An optional ``userData`` object (absent: empty)."""
    if user_data is None:
        return {}
    if not isinstance(user_data, Mapping):
        raise invalid("userData", "must be a JSON object")
    return dict(user_data)


def keys_param(body: Mapping) -> list[str]:
    keys = body.get("keys")
    if keys is None:
        raise missing("keys")
    if isinstance(keys, str):
        keys = [keys]
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise invalid("keys", "must be an array of key names")
    return keys


def destination(body: Mapping) -> str:
    """``{"destination": {"phoneNumber": ...}}`` (or a bare number) -> the number."""
    value = body.get("destination")
    if value is None:
        raise missing("destination")
    if isinstance(value, Mapping):
        number = value.get("phoneNumber")
        if number is None or number == "":
            raise missing("destination.phoneNumber")
    elif isinstance(value, (str, int)) and not isinstance(value, bool):
        number = value
    else:
        raise invalid("destination", "must be an object with a phoneNumber")
    return str(number)


def split(value: str | None) -> list[str]:
    if not value:
        return []
    return [v.strip() for v in str(value).split(",") if v.strip()]


def project(obj: dict, fields: str | None) -> dict:
    """``fields=*`` (or absent) keeps everything; ``fields=id,state`` keeps those keys."""
    names = split(fields)
    if not names or "*" in names:
        return obj
    return {k: v for k, v in obj.items() if k in names}


def collection(api: str, plural: str, items, render, path_of, query, uri=None) -> dict:
    """``uris``+``paths`` without ``fields``; full objects with it (L2325-2437)."""
    fields = query.get("fields")
    if fields:
        return {"statusCode": SC_OK, plural: [project(render(i), fields) for i in items]}
    paths = [path_of(i) for i in items]
    uris = [uri(i) for i in items] if uri else [api + p for p in paths]
    return {"statusCode": SC_OK, "uris": uris, "paths": paths}


def done(result: dict | None) -> dict:
    """A successful POST: statusCode 0 plus what the operation returned."""
    out = {"statusCode": SC_OK}
    if result:
        out.update(result)
    return out
