"""GWS notifications as data: message types, channels and the rules that classify them.

One rule per kind of notification says which resource a Bayeux message concerns and
in which state (protocol.md §3.5-3.6, media.md topic tables), for GWS 8.6 and 8.5.2
shapes alike. The rules are written in a small expression vocabulary over the
message's ``data`` object (:class:`Val`, :class:`Uri`, :class:`First`, :class:`Case`...)
so that two classifiers read the *same* table: the Python one
(``gwsreplay.capture.classify.classify_bayeux``) evaluates it, the DuckDB one
(``gwsreplay.capture.bayeux_sql``) compiles it into SQL. A differential test runs both
over the reference samples and random messages.

Values follow DuckDB's json_extract_string semantics (``gwsreplay.core.uris.jtext``):
strings as they are, numbers and booleans as JSON text, objects/arrays as JSON text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Union

# ----------------------------------------------------------------------------- vocabulary

#: Bayeux meta channels start with this; everything else on the server side is a notification.
META_PREFIX = "/meta/"
#: notificationType of a multimedia operation that failed; resource state of a failed workbin request.
ERROR_NOTIFICATION = "Error"
FAILED_STATE = "RequestFailed"
ERROR_MESSAGE = "ErrorMessage"
#: every error message type: 8.5.2 also names DeviceStateErrorMessage and CallStateErrorMessage (8.5.2
#: L10455) without printing one; they are read like ErrorMessage (deviceUri/deviceId, callUri/callId).
ERROR_MESSAGES = (ERROR_MESSAGE, "DeviceStateErrorMessage", "CallStateErrorMessage")

#: messageType -> (resource type, keys of data holding the interaction, in the order tried)
MEDIA_MESSAGES: dict[str, tuple[str, tuple[str, ...]]] = {
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
#: MessageLogUpdated: resource type -> keys of data holding the interaction's uri or path
LOG_KEYS: dict[str, tuple[str, ...]] = {
    "facebooksession": ("facebooksessionUri", "facebooksessionPath"),
    "smsession": ("smssessionUri", "smsessionUri", "smssessionPath"),
    "chat": ("chatUri", "chatPath"),
}
#: MessageLogUpdated without a uri key: the channel says the medium
LOG_CHANNELS: dict[str, str] = {"/v2/me/facebooksession": "facebooksession", "/v2/me/smsessions": "smsession"}
WORKBIN_MESSAGES = ("WorkbinSubscriptionStateChangeMessage", "WorkbinStatsMessage")
WORKBIN_ITEM_MESSAGE = "WorkbinStateChangeMessage"
#: WorkbinStateChangeMessage: data.<key>StateResourceV2 -> resource type of the item (media.md §12),
#: in the order they are tried
WORKBIN_ITEMS: dict[str, str] = {
    "chat": "chat", "email": "email", "workitem": "workitem", "openmedia": "openmedia", "facebook": "facebook",
    "facebooksession": "facebooksession", "tweet": "tweet",
}
MMEVENT_MESSAGES = ("MultimediaEventNotificationMessage", "MultimediaEventSubscriptionStateChangeMessage")
OPERATION_RESPONSES = ("TwitterOperationResponse", "TweetOperationResponse")
CHANNELS_CHANNEL = "/v2/me/channels"

#: What a rule can say about a message (the ``bayeux_messages`` columns of the same names).
FIELDS = ("resource_type", "resource_id", "resource_state", "call_id", "conn_id", "device_id", "user_state",
          "error_message", "item_type", "item_id", "item_state")
#: Fields that are not (yet) columns of every capture: the SQL writes them only when
#: bayeux_messages has them (gwsreplay.capture.bayeux_sql.ITEM_COLUMNS).
ITEM_FIELDS = ("item_type", "item_id", "item_state")


# ----------------------------------------------------------------------------- expressions

@dataclass(frozen=True)
class Val:
    """The value at a path of data ("call.id", "devices[0].userState.state"), as text."""
    path: str


@dataclass(frozen=True)
class Uri:
    """The id in the uri or path at a path of data (``gwsreplay.core.uris.id_from_uri``)."""
    path: str


@dataclass(frozen=True)
class Lit:
    value: str


@dataclass(frozen=True)
class Ref:
    """A field the same rule computed before (fields are evaluated in the rule's order)."""
    field: str


@dataclass(frozen=True)
class First:
    """The first option that is not null (SQL coalesce)."""
    options: tuple["Expr", ...]


@dataclass(frozen=True)
class Case:
    """The expression of the first condition that holds, else ``default``."""
    branches: tuple[tuple["Cond", "Expr"], ...]
    default: "Expr | None" = None


@dataclass(frozen=True)
class Present:
    expr: "Expr"


@dataclass(frozen=True)
class IsObject:
    """The value at a path of data is a JSON object."""
    path: str


@dataclass(frozen=True)
class IsHex16:
    """Sixteen hex digits: a T-Server connId used as a call id (8.5.2)."""
    expr: "Expr"


@dataclass(frozen=True)
class Equals:
    expr: "Expr"
    value: str


@dataclass(frozen=True)
class OnChannel:
    channel: str


@dataclass(frozen=True)
class NotificationIs:
    value: str


@dataclass(frozen=True)
class AnyOf:
    conds: tuple["Cond", ...]


@dataclass(frozen=True)
class Not:
    """The condition does not hold (a condition on a missing value does not hold)."""
    cond: "Cond"


Expr = Union[Val, Uri, Lit, Ref, First, Case]
Cond = Union[Present, IsObject, IsHex16, Equals, OnChannel, NotificationIs, AnyOf, Not]


@dataclass(frozen=True)
class Rule:
    """How to read one kind of notification: the message types (and channel) it applies to
    and an expression per field."""

    kind: str
    message_types: tuple[str, ...]
    fields: tuple[tuple[str, Expr], ...]
    channel: str | None = None

    def expr(self, name: str) -> Expr | None:
        return next((e for f, e in self.fields if f == name), None)

    def paths(self) -> list[str]:
        """The data paths the rule reads as values, in first-use order (the SQL reads them in one call)."""
        out: list[str] = []
        for _, e in self.fields:
            for node in walk(e):
                if isinstance(node, (Val, Uri)) and node.path not in out:
                    out.append(node.path)
        return out


def walk(node: Expr | Cond) -> Iterator[Expr | Cond]:
    """Every node of an expression or condition, depth first."""
    yield node
    if isinstance(node, First):
        for o in node.options:
            yield from walk(o)
    elif isinstance(node, Case):
        for c, e in node.branches:
            yield from walk(c)
            yield from walk(e)
        if node.default is not None:
            yield from walk(node.default)
    elif isinstance(node, (Present, IsHex16, Equals)):
        yield from walk(node.expr)
    elif isinstance(node, AnyOf):
        for c in node.conds:
            yield from walk(c)
    elif isinstance(node, Not):
        yield from walk(node.cond)


def rule(kind: str, message_types: str | tuple[str, ...], channel: str | None = None, **fields: Expr) -> Rule:
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"rule {kind}: unknown fields {sorted(unknown)}")
    seen: set[str] = set()
    for name, e in fields.items():
        late = {n.field for n in walk(e) if isinstance(n, Ref)} - seen
        if late:
            raise ValueError(f"rule {kind}: {name} refers to {sorted(late)} before they are computed")
        seen.add(name)
    mts = (message_types,) if isinstance(message_types, str) else tuple(message_types)
    return Rule(kind, mts, tuple(fields.items()), channel)


def _interaction(keys: tuple[str, ...]) -> tuple[Expr, Expr]:
    """(id, state) of an interaction object found under one of ``keys`` (first that has them)."""
    ids = First(tuple(x for k in keys for x in (Val(f"{k}.id"), Uri(f"{k}.uri"), Uri(f"{k}.path"))))
    return ids, First(tuple(Val(f"{k}.state") for k in keys))


def _media_rule(mt: str) -> Rule:
    rtype, keys = MEDIA_MESSAGES[mt]
    rid, state = _interaction(keys)
    return rule("media:" + mt, mt, resource_type=Lit(rtype), resource_id=rid, resource_state=state,
                error_message=Case(((NotificationIs(ERROR_NOTIFICATION), Val("errorMessage")),)))


def _outbound_rule(kind: str, mt: str, key: str, rtype: str) -> Rule:
    return rule(kind, mt, resource_type=Lit(rtype),
                resource_id=First((Val(f"{key}.recordHandle"), Val(f"{key}.campaignName"), Val(f"{key}.name"))),
                resource_state=First((Val(f"{key}.state"), Val(f"{key}.status"))))


def _workbin_item_rule() -> Rule:
    keys = tuple(k + "StateResourceV2" for k in WORKBIN_ITEMS)
    item_id, item_state = _interaction(keys)
    return rule("workbin_item", WORKBIN_ITEM_MESSAGE, resource_type=Lit("workbin"), resource_id=Val("id"),
                resource_state=First((Val("stateResource"), Val("action"))),
                item_type=Case(tuple((IsObject(k + "StateResourceV2"), Lit(t)) for k, t in WORKBIN_ITEMS.items())),
                item_id=item_id, item_state=item_state)


def _log_rule() -> Rule:
    present = {t: AnyOf(tuple(Present(Val(k)) for k in keys)) for t, keys in LOG_KEYS.items()}
    rtype = Case(((present["facebooksession"], Lit("facebooksession")), (present["smsession"], Lit("smsession")))
                 + tuple((OnChannel(ch), Lit(t)) for ch, t in LOG_CHANNELS.items()), Lit("chat"))
    rid = Case(tuple((Equals(Ref("resource_type"), t), First(tuple(Uri(k) for k in keys)))
                     for t, keys in LOG_KEYS.items()))
    return rule("log", "MessageLogUpdated", resource_type=rtype, resource_id=rid)


#: The classification rules, in the order they are tried: a message gets the first rule
#: naming its messageType or (for the channels rule) the channel it came on.
RULES: tuple[Rule, ...] = (
    rule("call", "CallStateChangeMessage",
         resource_type=Lit("call"), call_id=First((Val("call.id"), Val("callId"))), resource_id=Ref("call_id"),
         resource_state=Val("call.state"),
         conn_id=First((Val("call.connId"), Case(((IsHex16(Ref("call_id")), Ref("call_id")),)))),
         device_id=Uri("call.deviceUri")),
    rule("device", "DeviceStateChangeMessage",
         resource_type=Lit("device"), device_id=First((Val("devices[0].id"), Val("deviceId"))),
         resource_id=Ref("device_id"), user_state=Val("devices[0].userState.state"), resource_state=Ref("user_state")),
    # the call of an ErrorMessage is named by its T-Server connId in callUri (8.6 L4217, 8.5.2 L1748), not
    # by the 32-character id 8.6 requests use: a 16-hex id is the connId (and, in 8.5.2, also the call id)
    rule("error", ERROR_MESSAGES,
         conn_id=First((Case(((IsHex16(Uri("callUri")), Uri("callUri")),)), Val("connId"))),
         call_id=First((Case(((Not(IsHex16(Uri("callUri"))), Uri("callUri")),)), Val("callId"))),
         device_id=First((Uri("deviceUri"), Val("deviceId"))),
         resource_type=Case(((AnyOf((Present(Ref("conn_id")), Present(Ref("call_id")))), Lit("call")),
                             (Present(Ref("device_id")), Lit("device")))),
         resource_id=First((Ref("call_id"), Ref("conn_id"), Ref("device_id"))), resource_state=Lit("Error"),
         error_message=Val("errorMessage")),
    rule("service", "ServiceStateChangeMessage",
         resource_type=Lit("service"), resource_id=First((Val("service.id"), Val("service.type"))),
         resource_state=Val("service.state")),
    rule("channel", "ChannelStateChangeMessageV2", channel=CHANNELS_CHANNEL,
         resource_type=Lit("channel"), resource_id=Val("channels[0].channel"),
         user_state=Val("channels[0].userState.state"), resource_state=Ref("user_state")),
    rule("workbin", WORKBIN_MESSAGES,
         resource_type=Lit("workbin"), resource_id=Val("id"), resource_state=First((Val("stateResource"), Val("action")))),
    _workbin_item_rule(),
    *(_media_rule(mt) for mt in MEDIA_MESSAGES),
    rule("imlog", "IMLogUpdateMessage",
         resource_type=Lit("im-session"), resource_id=First((Uri("imSessionPath"), Uri("imSessionUri")))),
    _log_rule(),
    _outbound_rule("outrec", "OutboundRecordMessage", "record", "outbound-record"),
    _outbound_rule("outcamp", "OutboundCampaignMessage", "campaign", "outbound-campaign"),
    rule("userevent", "DeviceUserEventMessage",
         resource_type=Lit("device"), device_id=Val("deviceId"), resource_id=Ref("device_id")),
    # Digital User Events (media.md §4): a topic's event, or the subscription's state
    rule("mmevent", MMEVENT_MESSAGES,
         resource_type=Lit("multimediaevent"), resource_id=Val("topic"), resource_state=Val("stateResource")),
    # Twitter Follow/Unfollow/Retweet answers (media.md §11): success + errorMessage, no interaction
    rule("opresp", OPERATION_RESPONSES, resource_type=Lit("tweet"), error_message=Val("errorMessage")),
)
