"""The Python classifier of Bayeux messages: the rule table of gwsreplay.core.notifications, evaluated.

:func:`classify_bayeux` turns one decoded Bayeux message into its envelope fields and
the resource it concerns with that resource's state. The capture's bulk path compiles
the same table into SQL (gwsreplay.capture.bayeux_sql); a differential test runs both
over the same messages. The replayer compares live notifications with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from gwsreplay.core import notifications as N
from gwsreplay.core.uris import id_from_uri, jtext

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


# A compiled expression: (data, fields computed so far, channel, notificationType) -> value
_Fn = Callable[[dict, dict, Any, Any], Any]
_HEX16 = re.compile(r"[0-9a-fA-F]{16}")
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _steps(path: str) -> tuple[str | int, ...]:
    """"devices[0].userState.state" -> ("devices", 0, "userState", "state")."""
    return tuple(int(i) if i else k for k, i in _STEP.findall(path))


def _at(d: Any, steps: tuple[str | int, ...]) -> Any:
    """The value at a path (None where an object or array is missing), as a JSON path reads it."""
    for s in steps:
        if type(s) is int:
            d = d[s] if isinstance(d, list) and len(d) > s else None
        else:
            d = d.get(s) if isinstance(d, dict) else None
        if d is None:
            return None
    return d


def _compile(e: Any) -> _Fn:
    """A rule expression or condition (gwsreplay.core.notifications) as a Python function."""
    if isinstance(e, N.Val):
        st = _steps(e.path)
        return lambda d, o, ch, nt: jtext(_at(d, st))
    if isinstance(e, N.Uri):
        st = _steps(e.path)
        return lambda d, o, ch, nt: id_from_uri(_at(d, st))
    if isinstance(e, N.Lit):
        v = e.value
        return lambda d, o, ch, nt: v
    if isinstance(e, N.Ref):
        f = e.field
        return lambda d, o, ch, nt: o.get(f)
    if isinstance(e, N.First):
        opts = [_compile(x) for x in e.options]

        def first(d, o, ch, nt):
            for fn in opts:
                v = fn(d, o, ch, nt)
                if v is not None:
                    return v
            return None
        return first
    if isinstance(e, N.Case):
        branches = [(_compile(c), _compile(x)) for c, x in e.branches]
        default = _compile(e.default) if e.default is not None else None

        def case(d, o, ch, nt):
            for cond, fn in branches:
                if cond(d, o, ch, nt):
                    return fn(d, o, ch, nt)
            return default(d, o, ch, nt) if default is not None else None
        return case
    if isinstance(e, N.Present):
        fn = _compile(e.expr)
        return lambda d, o, ch, nt: fn(d, o, ch, nt) is not None
    if isinstance(e, N.IsObject):
        st = _steps(e.path)
        return lambda d, o, ch, nt: isinstance(_at(d, st), dict)
    if isinstance(e, N.IsHex16):
        fn = _compile(e.expr)

        def hex16(d, o, ch, nt):
            v = fn(d, o, ch, nt)
            return v is not None and _HEX16.fullmatch(v) is not None
        return hex16
    if isinstance(e, N.Equals):
        fn, value = _compile(e.expr), e.value
        return lambda d, o, ch, nt: fn(d, o, ch, nt) == value
    if isinstance(e, N.OnChannel):
        channel = e.channel
        return lambda d, o, ch, nt: ch == channel
    if isinstance(e, N.NotificationIs):
        value = e.value
        return lambda d, o, ch, nt: nt == value
    if isinstance(e, N.AnyOf):
        conds = [_compile(c) for c in e.conds]
        return lambda d, o, ch, nt: any(c(d, o, ch, nt) for c in conds)
    if isinstance(e, N.Not):
        cond = _compile(e.cond)
        return lambda d, o, ch, nt: not cond(d, o, ch, nt)
    raise TypeError(f"not a rule expression: {e!r}")


# rule index -> [(field, function)]; messageType / channel -> index of the first rule naming it
_COMPILED = [[(name, _compile(e)) for name, e in r.fields] for r in N.RULES]
_BY_TYPE: dict[str, int] = {}
_BY_CHANNEL: dict[str, int] = {}
for _i, _r in enumerate(N.RULES):
    for _mt in _r.message_types:
        _BY_TYPE.setdefault(_mt, _i)
    if _r.channel is not None:
        _BY_CHANNEL.setdefault(_r.channel, _i)


def rule_for(message_type: str | None, channel: str | None) -> N.Rule | None:
    """The rule a message with this messageType on this channel is classified by."""
    i = _rule_index(message_type, channel)
    return None if i is None else N.RULES[i]


def _rule_index(mt: str | None, channel: str | None) -> int | None:
    i = _BY_TYPE.get(mt) if mt is not None else None
    j = _BY_CHANNEL.get(channel) if channel is not None else None
    if i is None or (j is not None and j < i):
        return j
    return i


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
    c.message_type = jtext(d.get("messageType"))
    c.notification_type = jtext(d.get("notificationType"))
    c.reference_id = jtext(d.get("referenceId"))
    i = _rule_index(c.message_type, c.channel)
    if i is None:
        return
    out: dict[str, Any] = {}
    for name, fn in _COMPILED[i]:
        out[name] = fn(d, out, c.channel, c.notification_type)
    for name, v in out.items():
        setattr(c, name, v)
