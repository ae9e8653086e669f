"""The GWS 8.6 multimedia model, without I/O (sans-IO): channels, IM, chat, email,
workitems, open media and workbins.

:class:`Multimedia` lives inside :class:`gwsreplay.sim.model.voice.ContactCenter` (created
when ``ContactCenter(multimedia=True)``) and shares its agents, scheduler and
``emit``. ``ContactCenter.rest`` routes ``/me/chats``, ``/me/emails``,
``/me/workitems``, ``/me/openmedia``, ``/me/im-sessions``, ``/me/workbins``,
``/workbins`` and the non-voice ``/me/channels/{channel}`` here; the control API
(``/sim/v1/chats``, ``/sim/v1/emails``, ``/sim/v1/workitems``...) calls the
``inject_*`` methods. Handlers answer a dict or raise :class:`GwsError`; nothing
escapes ``ContactCenter.rest``.

Behaviour and every choice made where the reference is silent or contradicts
itself: ``docs/media-model.md``. ``L<n>`` = a line of ``gws-8.6-api-reference.txt``;
``media.md`` = ``/work/shared/gws-reference/media.md``.

Reading order: constants and capability tables -> data model -> :class:`Multimedia`:
set-up, routes, session/channels, control API, routing, chat, email, workitems and
open media, workbins, IM, resources, notifications.
"""

from __future__ import annotations

import re
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Mapping

from gwsreplay.sim.model.ids import MediaIdGenerator
from gwsreplay.sim.model.voice import (
    DEFAULT_DISPOSITION_KEY, LOGGED_OUT_USER_STATE, SC_FORBIDDEN, SC_INTERNAL, SC_INVALID, SC_NOT_FOUND,
    SC_OK, GwsError, _invalid, _missing, _participant, _project, _split,
)

if TYPE_CHECKING:
    from gwsreplay.sim.model.voice import Agent, ContactCenter

# ----------------------------------------------------------------------------- topics

CH_CHANNELS = "/v2/me/channels"
CH_CHATS = "/v2/me/chats"
CH_EMAILS = "/v2/me/emails"
CH_WORKITEMS = "/v2/me/workitems"
CH_OPENMEDIA = "/v2/me/openmedia"
CH_IM = "/v2/me/im-sessions"
CH_WORKBINS = "/v2/me/workbins"

# ----------------------------------------------------------------------------- channels and services

#: Channels an agent can add to StartContactCenterSession besides voice.
MEDIA_CHANNELS = ("chat", "email", "workitem", "openmedia", "im")
#: Service types a channel needs (ServiceStateChangeMessage types, L1276). IM runs on
#: SIP Server (the Voice service).
CHANNEL_SERVICES: dict[str, tuple[str, ...]] = {
    "chat": ("MultiMediaState", "Chat"),
    "email": ("MultiMediaState", "MultiMediaContent"),
    "workitem": ("MultiMediaState",),
    "openmedia": ("MultiMediaState",),
    "im": ("Voice",),
}
CHANNEL_LABELS = {"chat": "Chat", "email": "Email", "workitem": "Workitem", "openmedia": "Open media",
                  "im": "Instant messaging"}
#: Control-API names for the media services (POST /sim/v1/services/{name}).
SERVICE_ALIASES = {
    "email": "MultiMediaContent", "ucs": "MultiMediaContent",
    "workitem": "MultiMediaState", "workitems": "MultiMediaState", "openmedia": "MultiMediaState",
    "multimedia": "MultiMediaState", "interaction": "MultiMediaState", "interactionserver": "MultiMediaState",
    "chats": "Chat", "im": "Voice",
}

# System agent-state GUIDs (shared with voice, L39245-39290).
READY_STATE = {"id": "9430250E-0A1B-421F-B372-F29E69366DED", "displayName": "Ready", "state": "Ready"}
NOT_READY_STATE = {"id": "900D55CC-2BB0-431F-8BF9-D3525B383BE6", "displayName": "Not Ready", "state": "NotReady"}

# ----------------------------------------------------------------------------- interaction kinds


@dataclass(frozen=True)
class Kind:
    name: str            # chat | email | workitem | openmedia
    channel: str         # CometD topic
    message_type: str    # <X>StateChangeMessage
    key: str             # resource key in notifications and GET /me/<x>/{id}
    uri_segment: str     # in the resource uri (no /me, as the samples)
    workbin_key: str     # subresource key in a workbin
    add_op: str
    pull_op: str


KINDS: dict[str, Kind] = {
    "chat": Kind("chat", CH_CHATS, "ChatStateChangeMessage", "chat", "chats", "chats", "AddChat", "PullChat"),
    "email": Kind("email", CH_EMAILS, "EmailStateChangeMessage", "email", "email", "emails", "AddEmail", "PullEmail"),
    "workitem": Kind("workitem", CH_WORKITEMS, "WorkitemStateChangeMessage", "workitem", "workitems", "workitems",
                     "AddWorkitem", "PullWorkitem"),
    "openmedia": Kind("openmedia", CH_OPENMEDIA, "OpenmediaStateChangeMessage", "openmedia", "openmedia",
                      "interactions", "AddInteraction", "PullInteraction"),
}

# Interaction states.
QUEUED, INVITED, PROCESSING, COMPOSING, COMPLETED = "Queued", "Invited", "Processing", "Composing", "Completed"
SENT, CANCELED, IN_WORKBIN, REVOKED = "Sent", "Canceled", "InWorkbin", "Revoked"
CHATTING, LEFT_CHAT = "Chatting", "LeftChat"
TALKING, ALERTING = "Talking", "Alerting"

USER_DATA_OPS = ("AttachUserData", "UpdateUserData", "DeleteUserData")

# ---- capabilities per state, from the samples (media.md tables)
#: Chat, Chatting: user-data/disposition samples (L13240) + SendUrl/SendCustomNotice
#: (attachment samples) + AddComment (a documented operation no sample lists).
CHAT_CHATTING = ("Transfer", "Leave", "Invite", "Consult", "SetInFocus", "SetDisposition", "AddComment",
                 "AttachUserData", "DeleteUserData", "UpdateUserData", "Complete", "SendMessage",
                 "SendStartTypingNotification", "SendStopTypingNotification", "SendUrl", "SendCustomNotice")
#: ... with another agent in the chat (Invite/Consult samples, L13850).
CHAT_WITH_AGENTS = ("SendToAgents", "SendStartTypingToAgentsNotification", "SendStopTypingToAgentsNotification",
                    "SendCustomNoticeToAgents")
#: LeftChat: the "removed from conference" sample (media.md) + AddComment.
CHAT_LEFT = ("SetInFocus", "Complete", "SetDisposition", "AddComment", "AttachUserData", "DeleteUserData",
             "UpdateUserData")
INVITED_CAPS = ("Accept", "Reject")
EMAIL_PROCESSING = ("Reply", "ReplyAll", "Transfer", "AddComment", "AttachUserData", "UpdateUserData",
                    "DeleteUserData", "SetDisposition", "SetInFocus", "Complete")          # L16890
EMAIL_COMPOSING = ("Cancel", "Send", "Save", "AddComment", "AttachUserData", "UpdateUserData", "DeleteUserData",
                   "SetDisposition", "SetInFocus", "Transfer")                               # L17389 + Save
WORKITEM_PROCESSING = ("Transfer", "AttachUserData", "UpdateUserData", "DeleteUserData", "SetInFocus",
                       "Complete")                                                           # L35859
OPENMEDIA_PROCESSING = WORKITEM_PROCESSING + ("AddContent", "GetContent")                   # L24237 + UCS ops
IM_TALKING = ("Complete", "AttachUserData", "DeleteUserData", "UpdateUserData", "SendMessage")   # L10797

#: Operation names that differ from their capability names (media.md §0).
OPERATION_ALIASES = {
    "SendStopTypingToAgentNotification": "SendStopTypingToAgentsNotification",   # table/sample spelling
    "InFocus": "SetInFocus",                                                     # older samples
    "SendURL": "SendUrl",                                                        # page heading
    "AddInteractionToWorkbin": "AddInteraction",                                 # table spelling
}
#: Chat operations whose HTTP answer carries the referenceId (samples L13657, L13834, L14006).
CHAT_REPLY_REFERENCE = ("Invite", "Consult", "CancelConsult")

DEFAULT_MAILBOX = "support@gws-sim.example"
EPOCH = 1704067200.0           # 2024-01-01T00:00:00Z: the model's wall clock starts here (docs)
_NICK = re.compile(r"\S")


# ----------------------------------------------------------------------------- data model

@dataclass(eq=False)
class ChannelState:
    name: str
    user_state: dict
    dnd: bool = False


@dataclass(eq=False)
class ChatParty:
    """One agent's place in a chat, with its own state (as a call leg)."""
    agent: "Agent"
    state: str                       # Invited | Chatting | LeftChat | Completed | Revoked
    role: str = "owner"              # owner | conference | consult
    visibility: str = "All"          # All | Agents
    participant_id: str | None = None
    nickname: str | None = None
    inviter: "ChatParty | None" = None
    invite_ref: int | None = None    # referenceId of the inviter's Invite/Consult

    @property
    def live(self) -> bool:
        return self.state in (INVITED, CHATTING, LEFT_CHAT)


@dataclass(eq=False)
class Interaction:
    kind: str
    id: str
    received: float
    direction: str = "Inbound"
    user_data: dict = field(default_factory=dict)
    state: str = QUEUED              # email/workitem/openmedia: the owner's state; chat: Queued/Active/InWorkbin
    owner: "Agent | None" = None
    media_type: str | None = None    # open media
    parent_id: str | None = None
    comment: str | None = None
    workbin: str | None = None
    resume_state: str | None = None  # state to restore when pulled from a workbin
    rejected_by: set = field(default_factory=set)
    ucs_content: str | None = None   # open media: Available | NotAvailable
    # chat
    parties: list[ChatParty] = field(default_factory=list)
    customer: dict | None = None     # {"nickname", "type": "Customer", "participantId"}
    customer_present: bool = False
    log: list[dict] = field(default_factory=list)
    # email
    email: dict = field(default_factory=dict)   # from, to, cc, bcc, subject, body, bodyAsPlainText, mime
    contact_id: str | None = None

    def live_parties(self) -> list[ChatParty]:
        return [p for p in self.parties if p.live]

    def chatting(self) -> list[ChatParty]:
        return [p for p in self.parties if p.state == CHATTING]


@dataclass(eq=False)
class Workbin:
    id: str
    name: str
    display_name: str
    owner: "Agent"
    type: str = "Agent"


@dataclass(eq=False)
class ImSession:
    id: str
    user_data: dict
    states: dict            # agent name -> state
    agents: list            # [initiator, destination]


# Personal workbins every agent gets, in this order (names from the GetWorkbins samples).
AGENT_WORKBINS = (
    ("email-draft-wb", "My Draft E-mails"),
    ("email-in-progress-wb", "My Inbound E-mails in Progress"),
    ("workitem-in-progress-wb", "My Workitems in Progress"),
    ("chat-in-progress-wb", "My Chats in Progress"),
)


class Multimedia:
    """Everything non-voice of one simulated GWS node."""

    def __init__(self, cc: "ContactCenter", *, seed: int = 0, capacity: int = 3,
                 mailbox: str = DEFAULT_MAILBOX, ended_kept: int = 1000):
        self.cc = cc
        self.ids = MediaIdGenerator(seed)
        self.capacity = capacity
        self.mailbox = mailbox
        self.services: list[dict] = [
            {"id": self.ids.uuid(), "name": "InteractionServer", "type": "MultiMediaState", "state": "Active"},
            {"id": self.ids.uuid(), "name": "ChatServer", "type": "Chat", "state": "Active"},
            {"id": self.ids.uuid(), "name": "UCS", "type": "MultiMediaContent", "state": "Active"},
        ]
        self.channels: dict[str, dict[str, ChannelState]] = {name: {} for name in cc.agents}
        self.workbins: dict[str, Workbin] = {}
        self.workbins_of: dict[str, list[Workbin]] = {}
        for agent in cc.agents.values():
            self.workbins_of[agent.name] = []
            for name, display in AGENT_WORKBINS:
                wb = Workbin(self.ids.uuid(), name, display, agent)
                self.workbins[wb.id] = wb
                self.workbins_of[agent.name].append(wb)
        self.subscribers: dict[str, list[str]] = {}      # workbin id -> agent names (subscription order)
        self.interactions: dict[str, Interaction] = {}   # live, creation order
        self.ended: OrderedDict[str, Interaction] = OrderedDict()
        self._ended_kept = ended_kept
        self.waiting: list[Interaction] = []              # routing queue, arrival order
        self.im_sessions: dict[str, ImSession] = {}
        self._refs: Counter[str] = Counter()
        self._contacts: dict[str, str] = {}
        self._t0 = cc.scheduler.now()

    # ================================================================== routes (called by ContactCenter)

    def routes(self) -> tuple:
        """(method, path regex, handler) below /api/v2, merged into ContactCenter's table."""
        return (
            ("GET", r"/me/im-sessions", self._get_im_sessions),
            ("POST", r"/me/im-sessions", self._post_im_sessions),
            ("GET", r"/me/im-sessions/(?P<im_id>[^/]+)", self._get_im_session),
            ("POST", r"/me/im-sessions/(?P<im_id>[^/]+)", self._post_im_session),
            ("GET", r"/me/chats", self._get_collection("chat")),
            ("GET", r"/me/chats/(?P<ix_id>[^/]+)", self._get_one("chat")),
            ("POST", r"/me/chats/(?P<ix_id>[^/]+)", self._post_chat),
            ("GET", r"/me/chats/(?P<ix_id>[^/]+)/messages", self._get_chat_messages),
            ("GET", r"/me/emails", self._get_collection("email")),
            ("POST", r"/me/emails", self._post_create("email")),
            ("GET", r"/me/emails/(?P<ix_id>[^/]+)", self._get_one("email")),
            ("POST", r"/me/emails/(?P<ix_id>[^/]+)", self._post_email),
            ("GET", r"/me/workitems", self._get_collection("workitem")),
            ("POST", r"/me/workitems", self._post_create("workitem")),
            ("GET", r"/me/workitems/(?P<ix_id>[^/]+)", self._get_one("workitem")),
            ("POST", r"/me/workitems/(?P<ix_id>[^/]+)", self._post_item),
            ("GET", r"/me/openmedia/(?P<media_type>[^/]+)", self._get_collection("openmedia")),
            ("POST", r"/me/openmedia/(?P<media_type>[^/]+)", self._post_create("openmedia")),
            ("GET", r"/me/openmedia/(?P<media_type>[^/]+)/(?P<ix_id>[^/]+)", self._get_one("openmedia")),
            ("POST", r"/me/openmedia/(?P<media_type>[^/]+)/(?P<ix_id>[^/]+)", self._post_item),
            ("GET", r"/me/workbins", self._get_workbins(mine=True)),
            ("POST", r"/me/workbins", self._post_workbins),
            ("GET", r"/workbins", self._get_workbins(mine=False)),
            ("POST", r"/workbins", self._post_workbins),
            ("GET", r"/(?:me/)?workbins/(?P<wb_id>[^/]+)", self._get_workbin),
            ("POST", r"/(?:me/)?workbins/(?P<wb_id>[^/]+)", self._post_workbin),
            ("GET", r"/(?:me/)?workbins/(?P<wb_id>[^/]+)/(?P<media>[^/]+)", self._get_workbin_media),
        )

    # ================================================================== session and channels

    def start_channels(self, agent: "Agent", names: list[str]) -> tuple[list[dict], list[dict]]:
        """StartContactCenterSession for the non-voice channels: (succeeded, failed) entries."""
        succeeded, failed = [], []
        for raw in names:
            name = raw.lower()
            if name not in MEDIA_CHANNELS:
                failed.append({"channel": raw, "statusCode": SC_FORBIDDEN, "statusMessage": "Unsupported feature"})
                continue
            down = self._down_service(name)
            if down is not None:
                failed.append({"channel": name, "statusCode": SC_INTERNAL, "statusMessage": down})
                continue
            self._login_channel(agent, name)
            succeeded.append({"channel": name, "statusCode": SC_OK})
        return succeeded, failed

    def end_session(self, agent: "Agent") -> None:
        """EndContactCenterSession: log out of every media channel, no notification (as voice)."""
        self.channels[agent.name].clear()

    def has_channels(self, agent: "Agent") -> bool:
        return bool(self.channels[agent.name])

    def channel_entries(self, agent: "Agent") -> list[dict]:
        return [self._channel_entry(agent, ch) for ch in self.channels[agent.name].values()]

    def get_channel(self, agent: "Agent", name: str) -> dict:
        name = name.lower()
        if name not in MEDIA_CHANNELS:
            raise GwsError(SC_NOT_FOUND, f"Channel {name} not found")
        state = self.channels[agent.name].get(name)
        if state is None:
            state = ChannelState(name, dict(LOGGED_OUT_USER_STATE))
        return self._channel_entry(agent, state)

    #: POST /me/channels/{channel} for a media channel (Channels API, L36728-36790).
    CHANNEL_OPERATIONS = ("Ready", "NotReady", "Offline", "DoNotDisturbOn", "DoNotDisturbOff")

    def channel_operation(self, agent: "Agent", name: str, body: Any) -> dict:
        name = name.lower()
        if name not in MEDIA_CHANNELS:
            raise GwsError(SC_NOT_FOUND, f"Channel {name} not found")
        op = self._op_name(body)
        if op not in self.CHANNEL_OPERATIONS:
            raise _invalid("operationName", f"Operation {op} is not supported on this resource")
        self._require_channel_services(name)
        self.set_channel_state(agent, name, op, body)
        return {"statusCode": SC_OK}

    def set_all_channels(self, agent: "Agent", op: str, body: Any) -> None:
        """POST /me Ready/NotReady/DoNotDisturbOn/Off: every media channel of the session too."""
        for name in list(self.channels[agent.name]):
            if self._down_service(name) is None:
                self.set_channel_state(agent, name, op, body, quiet_repeat=True)

    def set_channel_state(self, agent: "Agent", name: str, op: str, body: Any, *, quiet_repeat=False) -> None:
        channels = self.channels[agent.name]
        current = channels.get(name)
        if op == "Offline":
            if current is not None:
                del channels[name]
                self._emit_channel(agent, ChannelState(name, dict(LOGGED_OUT_USER_STATE)))
            return
        if op in ("DoNotDisturbOn", "DoNotDisturbOff"):
            on = op == "DoNotDisturbOn"
            if current is None:
                current = self._login_channel(agent, name, notify=False)
            elif current.dnd == on:
                if quiet_repeat:
                    return
                raise GwsError(SC_INVALID, f"Operation {op} is not valid for channel {name} in its current state")
            current.dnd = on
            self._emit_channel(agent, current)
            return
        params = body if isinstance(body, Mapping) else {}
        reason = params.get("reasonCode", params.get("reason"))
        if reason is not None and (not isinstance(reason, (str, int)) or isinstance(reason, bool) or reason == ""):
            raise _invalid("reasonCode", "must be a non-empty string")
        if reason is not None and op != "NotReady":
            raise _invalid("reasonCode", "applies to NotReady only")
        new_state = self.cc._match_user_state(op, None, str(reason) if reason is not None else None)
        if current is None:
            current = self._login_channel(agent, name, notify=False)
        elif current.user_state == new_state:
            return           # already there: ignored, as voice
        current.user_state = new_state
        self._emit_channel(agent, current)
        if op == "Ready":
            self._dispatch_waiting()

    def _login_channel(self, agent: "Agent", name: str, *, notify: bool = True) -> ChannelState:
        channels = self.channels[agent.name]
        state = channels.get(name)
        if state is None:
            state = channels[name] = ChannelState(name, dict(NOT_READY_STATE))
            if notify:
                self._emit_channel(agent, state)
        return state

    def _channel_entry(self, agent: "Agent", state: ChannelState, *, notification: bool = False) -> dict:
        entry: dict = {"channel": state.name}
        if state.name == "im":   # "voice and instant-message only" (L36600)
            busy = any(agent.name in s.states for s in self.im_sessions.values())
            entry.update({"phoneNumber": agent.phone, "switchName": "SIP_Switch",
                          "userActivity": "BusyOnIM" if busy else "Idle"})
        if notification and state.user_state.get("state") != "LoggedOut":
            entry["dndState"] = "On" if state.dnd else "Off"
        entry["userState"] = dict(state.user_state)
        return entry

    # ================================================================== services

    def find_service(self, name: str) -> dict | None:
        key = str(name).lower()
        wanted = SERVICE_ALIASES.get(key, key).lower()
        for service in self.services:
            if service["type"].lower() == wanted or service["name"].lower() == key:
                return service
        return None

    def _service_active(self, service_type: str) -> bool:
        if service_type == "Voice":
            return self.cc.voice_active
        return all(s["state"] == "Active" for s in self.services if s["type"] == service_type)

    def _down_service(self, channel: str) -> str | None:
        """The statusMessage when a service of the channel is down, else None."""
        for service_type in CHANNEL_SERVICES[channel]:
            if not self._service_active(service_type):
                return f"{CHANNEL_LABELS[channel]} service is not available at this time"
        return None

    def _require_channel_services(self, channel: str) -> None:
        message = self._down_service(channel)
        if message is not None:
            raise GwsError(SC_INTERNAL, message, http_status=503)

    # ================================================================== control API

    def inject_chat(self, from_: Any, to: Any = None, message: Any = None, user_data: Any = None,
                    subject: Any = None) -> tuple[int, dict]:
        """A customer starts a chat: routed to ``to`` (a user name) or to a Ready agent."""
        try:
            nickname = from_.get("nickname") if isinstance(from_, Mapping) else from_
            if not isinstance(nickname, str) or not _NICK.search(nickname):
                raise _missing("from.nickname")
            target = self._inject_target(to, "chat")
            user_data = self._inject_user_data(user_data)
            if message is not None and not isinstance(message, str):
                raise _invalid("message", "must be a string")
            if subject is not None and not isinstance(subject, str):
                raise _invalid("subject", "must be a string")
            self._require_channel_services("chat")
            ix = self._new_interaction("chat")
            ix.customer = {"nickname": nickname, "type": "Customer", "participantId": self.ids.participant_id()}
            ix.customer_present = True
            ix.user_data = {"Subject": subject or "Chat", "FirstName": nickname, **user_data}
            self._log(ix, "ParticipantJoined", ix.customer)
            if message:
                self._log(ix, "Text", ix.customer, text=message)
            self._deliver(ix, target)
            return 200, {"statusCode": SC_OK, "id": ix.id}
        except GwsError as err:
            return self.cc._error(err)

    def customer_message(self, chat_id: str, text: Any, kind: Any = "Text") -> tuple[int, dict]:
        """The customer types or sends a message (or leaves: ``kind="ParticipantLeft"``)."""
        try:
            ix = self.interactions.get(chat_id)
            if ix is None or ix.kind != "chat":
                raise GwsError(SC_NOT_FOUND, f"Chat {chat_id} not found")
            kind = kind or "Text"
            if kind not in ("Text", "TypingStarted", "TypingStopped", "ParticipantLeft"):
                raise _invalid("type", "must be Text, TypingStarted, TypingStopped or ParticipantLeft")
            if kind == "Text" and (not isinstance(text, str) or text == ""):
                raise _missing("text")
            if not ix.customer_present:
                raise GwsError(SC_INVALID, f"The customer has left chat {chat_id}")
            self._require_channel_services("chat")
            fields = {"text": text} if kind == "Text" else {}
            entry = self._log(ix, kind, ix.customer, **fields)
            if kind == "ParticipantLeft":
                ix.customer_present = False
                for party in ix.chatting():
                    self._emit_chat(party, "ParticipantsUpdated")
            self._emit_log(ix, [entry])
            return 200, {"statusCode": SC_OK}
        except GwsError as err:
            return self.cc._error(err)

    def inject_email(self, from_: Any, to: Any = None, subject: Any = None, body: Any = None,
                     user_data: Any = None, mailbox: Any = None) -> tuple[int, dict]:
        """An inbound email arrives: routed to ``to`` (a user name) or to a Ready agent."""
        try:
            address = from_.get("address", from_.get("email")) if isinstance(from_, Mapping) else from_
            if not isinstance(address, str) or "@" not in address:
                raise _missing("from") if not address else _invalid("from", "must be an email address")
            target = self._inject_target(to, "email")
            user_data = self._inject_user_data(user_data)
            for name, value in (("subject", subject), ("body", body), ("mailbox", mailbox)):
                if value is not None and not isinstance(value, str):
                    raise _invalid(name, "must be a string")
            self._require_channel_services("email")
            ix = self._new_interaction("email")
            box = mailbox or self.mailbox
            ix.contact_id = self._contact(address)
            ix.email = {"from": address, "to": [box], "subject": subject or "", "body": body or "",
                        "bodyAsPlainText": body or "", "mime": "text/plain"}
            ix.user_data = {"Subject": subject or "", "FromAddress": address, "EmailAddress": address, "To": box,
                            "Mailbox": box, "ContactId": ix.contact_id, "Origination_Source": "Email", **user_data}
            self._deliver(ix, target)
            return 200, {"statusCode": SC_OK, "id": ix.id}
        except GwsError as err:
            return self.cc._error(err)

    def inject_workitem(self, to: Any = None, user_data: Any = None, media_type: Any = None) -> tuple[int, dict]:
        """A new workitem (or open-media interaction of ``media_type``) for ``to`` or a Ready agent."""
        try:
            if media_type is not None and (not isinstance(media_type, str) or not re.fullmatch(r"[A-Za-z0-9_-]+",
                                                                                               media_type)):
                raise _invalid("mediaType", "must be a media type name")
            kind = "openmedia" if media_type and media_type != "workitem" else "workitem"
            target = self._inject_target(to, kind)
            user_data = self._inject_user_data(user_data)
            self._require_channel_services(kind)
            ix = self._new_interaction(kind)
            ix.media_type = media_type if kind == "openmedia" else None
            ix.user_data = {"RTenant": "Environment", "ServiceType": "default", **user_data}
            self._deliver(ix, target)
            return 200, {"statusCode": SC_OK, "id": ix.id}
        except GwsError as err:
            return self.cc._error(err)

    def _inject_target(self, to: Any, kind: str) -> "Agent | None":
        if to is None or to == "":
            return None
        if not isinstance(to, str):
            raise _invalid("to", "must be a user name or null")
        agent = self.cc.agents.get(to) or self.cc.agents_by_phone.get(to)
        if agent is None:
            raise GwsError(SC_NOT_FOUND, f"No user {to}")
        channel = kind
        if channel not in self.channels[agent.name]:
            raise GwsError(SC_INVALID, f"{agent.name} is not logged in to the {channel} channel")
        return agent

    @staticmethod
    def _inject_user_data(user_data: Any) -> dict:
        if user_data is None:
            return {}
        if not isinstance(user_data, Mapping):
            raise _invalid("userData", "must be a JSON object")
        return dict(user_data)

    def snapshot(self) -> dict:
        return {
            "services": [dict(s) for s in self.services],
            "channels": {name: [self._channel_entry(self.cc.agents[name], st) for st in chans.values()]
                         for name, chans in self.channels.items() if chans},
            "interactions": [self._snapshot_interaction(ix) for ix in self.interactions.values()],
            "waiting": [ix.id for ix in self.waiting],
            "imSessions": [{"id": s.id, "states": dict(s.states), "userData": dict(s.user_data)}
                           for s in self.im_sessions.values()],
            "workbins": {wb.id: {"name": wb.name, "owner": wb.owner.name,
                                 "items": [ix.id for ix in self._workbin_items(wb)],
                                 "subscribers": list(self.subscribers.get(wb.id, ()))}
                         for wb in self.workbins.values()},
        }

    def _snapshot_interaction(self, ix: Interaction) -> dict:
        out = {"id": ix.id, "kind": ix.kind, "state": ix.state, "direction": ix.direction,
               "owner": ix.owner.name if ix.owner else None, "workbin": ix.workbin,
               "userData": dict(ix.user_data)}
        if ix.kind == "chat":
            out["parties"] = [{"userName": p.agent.name, "state": p.state, "role": p.role} for p in ix.parties]
            out["customerPresent"] = ix.customer_present
            out["messages"] = [dict(e) for e in ix.log]
        if ix.kind == "email":
            out["email"] = dict(ix.email)
            out["parentId"] = ix.parent_id
        if ix.media_type:
            out["mediaType"] = ix.media_type
        return out

    # ================================================================== routing

    def _new_interaction(self, kind: str, *, direction: str = "Inbound") -> Interaction:
        ix = Interaction(kind=kind, id=self.ids.interaction_id(), received=self.cc.scheduler.now(),
                         direction=direction)
        self.interactions[ix.id] = ix
        return ix

    def _deliver(self, ix: Interaction, target: "Agent | None") -> None:
        if target is not None:
            self._offer(ix, target)
        else:
            self._route(ix)

    def _route(self, ix: Interaction, *, exclude: tuple = ()) -> bool:
        """Offer ``ix`` to the least-loaded Ready agent of its channel, or queue it."""
        channel = ix.kind
        best, best_key = None, None
        for index, agent in enumerate(self.cc.agents.values()):
            state = self.channels[agent.name].get(channel)
            if (state is None or state.dnd or state.user_state.get("state") != "Ready"
                    or agent.name in ix.rejected_by or agent in exclude
                    or any(p.agent is agent and p.live for p in ix.parties)):
                continue
            load = self._load(agent, ix.kind)
            if load >= self.capacity:
                continue
            if best_key is None or (load, index) < best_key:
                best, best_key = agent, (load, index)
        if best is None:
            if ix.kind != "chat":
                ix.owner, ix.state = None, QUEUED
            elif not ix.live_parties():
                ix.state = QUEUED
            if ix not in self.waiting:
                self.waiting.append(ix)
            return False
        if ix in self.waiting:
            self.waiting.remove(ix)
        self._offer(ix, best)
        return True

    def _dispatch_waiting(self) -> None:
        for ix in list(self.waiting):
            if ix.id in self.interactions:
                self._route(ix)
            else:
                self.waiting.remove(ix)

    def _load(self, agent: "Agent", kind: str) -> int:
        count = 0
        for ix in self.interactions.values():
            if ix.kind != kind:
                continue
            if ix.kind == "chat":
                count += any(p.agent is agent and p.live for p in ix.parties)
            elif ix.owner is agent and ix.state in (INVITED, PROCESSING):
                count += 1
        return count

    def _offer(self, ix: Interaction, agent: "Agent", *, role: str = "owner", inviter: ChatParty | None = None,
               ref: int | None = None) -> None:
        """An invitation: the agent's view goes Invited (caps Accept, Reject), no referenceId."""
        if ix in self.waiting:
            self.waiting.remove(ix)
        if ix.kind == "chat":
            party = ChatParty(agent, INVITED, role=role, visibility="Agents" if role == "consult" else "All",
                              inviter=inviter, invite_ref=ref)
            ix.parties.append(party)
            if ix.state == QUEUED:
                ix.state = "Active"
            self._emit_chat(party, "StatusChange")
        else:
            ix.owner = agent
            ix.state = INVITED
            self._emit_ix(ix, agent, "StatusChange")

    def _finish(self, ix: Interaction) -> None:
        """The interaction is over for everyone: forget it (kept a while for the control API)."""
        self.interactions.pop(ix.id, None)
        if ix in self.waiting:
            self.waiting.remove(ix)
        self.ended[ix.id] = ix
        while len(self.ended) > self._ended_kept:
            self.ended.popitem(last=False)

    # ================================================================== generic GET / POST helpers

    def _get_collection(self, kind: str) -> Callable:
        def handler(agent, params, query, body):
            items = self._mine(agent, kind, params.get("media_type"))
            key = {"chat": "chats", "email": "emails", "workitem": "workitems", "openmedia": "openmedia"}[kind]
            fields = query.get("fields")
            if fields:
                return {"statusCode": SC_OK, key: [_project(self._resource(ix, agent), fields) for ix in items]}
            paths = [self._path(ix) for ix in items]
            return {"statusCode": SC_OK, "uris": [self.cc.api + "/me" + p for p in paths], "paths": paths}
        return handler

    def _get_one(self, kind: str) -> Callable:
        def handler(agent, params, query, body):
            ix = self._my_interaction(agent, kind, params["ix_id"], params.get("media_type"))
            return {"statusCode": SC_OK, KINDS[kind].key: _project(self._resource(ix, agent), query.get("fields"))}
        return handler

    def _mine(self, agent: "Agent", kind: str, media_type: str | None = None) -> list[Interaction]:
        out = []
        for ix in self.interactions.values():
            if ix.kind != kind or (media_type is not None and ix.media_type != _singular(media_type)):
                continue
            if kind == "chat":
                if self._party(ix, agent) is not None:
                    out.append(ix)
            elif ix.owner is agent and ix.state in (INVITED, PROCESSING, COMPOSING):
                out.append(ix)
        return out

    def _my_interaction(self, agent: "Agent", kind: str, ix_id: str, media_type: str | None = None) -> Interaction:
        ix = self.interactions.get(ix_id)
        if ix is None or ix not in self._mine(agent, kind, media_type):
            label = "Open media interaction" if kind == "openmedia" else kind.capitalize()
            raise GwsError(SC_NOT_FOUND, f"{label} {ix_id} not found")
        return ix

    @staticmethod
    def _party(ix: Interaction, agent: "Agent") -> ChatParty | None:
        return next((p for p in ix.parties if p.agent is agent and p.live), None)

    @staticmethod
    def _op_name(body: Any) -> str:
        if not isinstance(body, Mapping):
            raise _missing("operationName")
        op = body.get("operationName")
        if op is None or op == "":
            raise _missing("operationName")
        if not isinstance(op, str):
            raise _invalid("operationName", "must be a string")
        return OPERATION_ALIASES.get(op, op)

    def _operation(self, body: Any, table: Mapping[str, str]) -> tuple[str, Callable]:
        op = self._op_name(body)
        name = table.get(op)
        if name is None:
            raise _invalid("operationName", f"Operation {op} is not supported on this resource")
        return op, getattr(self, name)

    def _next_ref(self, agent: "Agent") -> int:
        self._refs[agent.name] += 1
        return self._refs[agent.name]

    @staticmethod
    def _check_caps(op: str, caps: list[str], what: str, state: str) -> None:
        if op not in caps:
            raise GwsError(SC_INVALID, f"Operation {op} is not valid for {what} in state {state} "
                                       f"(capabilities: {', '.join(caps) or 'none'})")

    def _resolve_user(self, body: Mapping, *names: str) -> "Agent | None":
        """targetUri / targetPath / userUri -> an agent (uri or path ending in the user id or name)."""
        for name in names:
            value = body.get(name)
            if value is None:
                continue
            if not isinstance(value, str) or not value.strip("/"):
                raise _invalid(name, "must be a user URI or path")
            last = value.rstrip("/").rsplit("/", 1)[-1]
            agent = next((a for a in self.cc.agents.values() if a.user_id == last), None) or self.cc.agents.get(last)
            if agent is None:
                raise _invalid(name, f"No user {last}")
            return agent
        return None

    @staticmethod
    def _user_data_param(body: Mapping) -> dict:
        user_data = body.get("userData")
        if user_data is None:
            raise _missing("userData")
        if not isinstance(user_data, Mapping):
            raise _invalid("userData", "must be a JSON object")
        return dict(user_data)

    @staticmethod
    def _keys_param(body: Mapping) -> list[str]:
        keys = body.get("keys")
        if keys is None:
            raise _missing("keys")
        if isinstance(keys, str):
            keys = [keys]
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise _invalid("keys", "must be an array of key names")
        return keys

    @staticmethod
    def _string_param(body: Mapping, name: str, *, required: bool = True) -> str | None:
        value = body.get(name)
        if value is None:
            if required:
                raise _missing(name)
            return None
        if not isinstance(value, str) or (required and value == ""):
            raise _invalid(name, "must be a non-empty string")
        return value

    def _apply_properties(self, ix: Interaction, op: str, body: Mapping) -> None:
        """SetDisposition, AddComment, Attach/Update/DeleteUserData (validated before any change)."""
        if op == "SetDisposition":
            disposition = self._string_param(body, "disposition")
            key = self._string_param(body, "dispositionKey", required=False) or DEFAULT_DISPOSITION_KEY
            ix.user_data[key] = disposition
        elif op == "AddComment":
            ix.comment = self._string_param(body, "comment")
        elif op in ("AttachUserData", "UpdateUserData"):
            ix.user_data.update(self._user_data_param(body))
        elif op == "DeleteUserData":
            for key in self._keys_param(body):
                ix.user_data.pop(key, None)

    def _post_create(self, kind: str) -> Callable:
        """POST /me/emails, /me/workitems, /me/openmedia/{mediaType}: Create."""
        def handler(agent, params, query, body):
            op = self._op_name(body)
            if op != "Create":
                raise _invalid("operationName", f"Operation {op} is not supported on this resource")
            self._require_channel_services(kind)
            if kind not in self.channels[agent.name]:
                raise GwsError(SC_INVALID, f"The agent is not logged in to the {kind} channel")
            self._string_param(body, "queueUri")
            parent = self._string_param(body, "parentId", required=False)
            user_data = body.get("userData")
            if user_data is not None and not isinstance(user_data, Mapping):
                raise _invalid("userData", "must be a JSON object")
            ref = self._next_ref(agent)
            ix = self._new_interaction(kind, direction="Outbound")
            ix.owner, ix.parent_id = agent, parent
            ix.user_data = dict(user_data or {})
            if kind == "email":
                ix.state = COMPOSING
                ix.email = {"from": self.mailbox, "to": [], "subject": "", "mime": "text/plain"}
                parent_ix = self.interactions.get(parent) if parent else None
                ix.contact_id = parent_ix.contact_id if parent_ix else None
            else:
                ix.state = PROCESSING
                if kind == "openmedia":
                    ix.media_type = _singular(params["media_type"])
            self._emit_ix(ix, agent, "StatusChange", ref=ref)
            out = {"statusCode": SC_OK}
            if kind != "email":
                out["referenceId"] = ref
            return out
        return handler

    # ================================================================== chat (agent side)

    CHAT_OPERATIONS = {
        "Accept": "_chat_accept", "Reject": "_chat_reject",
        "SendMessage": "_chat_send", "SendUrl": "_chat_send", "SendCustomNotice": "_chat_send",
        "SendStartTypingNotification": "_chat_send", "SendStopTypingNotification": "_chat_send",
        "SendToAgents": "_chat_send", "SendStartTypingToAgentsNotification": "_chat_send",
        "SendStopTypingToAgentsNotification": "_chat_send", "SendCustomNoticeToAgents": "_chat_send",
        "SetInFocus": "_chat_in_focus",
        "SetDisposition": "_chat_properties", "AddComment": "_chat_properties",
        "AttachUserData": "_chat_properties", "UpdateUserData": "_chat_properties",
        "DeleteUserData": "_chat_properties",
        "Leave": "_chat_leave", "Complete": "_chat_complete", "Transfer": "_chat_transfer",
        "Invite": "_chat_invite", "Consult": "_chat_invite", "CancelConsult": "_chat_cancel_consult",
        "RemoveParticipantFromConference": "_chat_remove_participant",
    }
    #: operation -> (log entry type, visibility, parameter holding the text/url)
    CHAT_SENDS = {
        "SendMessage": ("Text", "All", "text"),
        "SendUrl": ("PushUrl", "All", "url"),
        "SendCustomNotice": ("CustomNotice", "All", "noticeText"),
        "SendStartTypingNotification": ("TypingStarted", "All", None),
        "SendStopTypingNotification": ("TypingStopped", "All", None),
        "SendToAgents": ("Text", "Agents", "text"),
        "SendStartTypingToAgentsNotification": ("TypingStarted", "Agents", None),
        "SendStopTypingToAgentsNotification": ("TypingStopped", "Agents", None),
        "SendCustomNoticeToAgents": ("CustomNotice", "Agents", "noticeText"),
    }

    def _post_chat(self, agent, params, query, body):
        op, handler = self._operation(body, self.CHAT_OPERATIONS)
        ix = self._my_interaction(agent, "chat", params["ix_id"])
        party = self._party(ix, agent)
        self._require_channel_services("chat")
        self._check_caps(op, self._chat_caps(ix, party), f"chat {ix.id}", party.state)
        ref = self._next_ref(agent)
        handler(ix, party, op, body, ref)
        out = {"statusCode": SC_OK}
        if op in CHAT_REPLY_REFERENCE:
            out["referenceId"] = ref
        return out

    def _chat_caps(self, ix: Interaction, party: ChatParty | None) -> list[str]:
        if party is None:
            return []
        if party.state == INVITED:
            return list(INVITED_CAPS)
        if party.state == LEFT_CHAT:
            return list(CHAT_LEFT)
        if party.state != CHATTING:
            return []
        caps = list(CHAT_CHATTING)
        others = [p for p in ix.chatting() if p is not party]
        if others:
            caps += CHAT_WITH_AGENTS
            if party.visibility == "All" and any(p.visibility == "All" for p in others):
                caps.append("RemoveParticipantFromConference")
        if any(p.inviter is party and p.role == "consult" and p.live for p in ix.parties):
            caps.append("CancelConsult")
        return caps

    def _chat_accept(self, ix, party, op, body, ref):
        nickname = self._string_param(body, "nickname")
        party.state = CHATTING
        party.nickname = nickname
        party.participant_id = self.ids.participant_id()
        entry = self._log(ix, "ParticipantJoined", self._from(party), visibility=party.visibility)
        self._emit_chat(party, "StatusChange", ref)
        self._emit_chat(party, "ParticipantsUpdated", ref)
        self._emit_log(ix, [e for e in ix.log if self._visible(e, party)], only=[party])
        others = [p for p in ix.chatting() if p is not party]
        for other in others:
            self._emit_chat(other, "ParticipantsUpdated")
        self._emit_log(ix, [entry], only=others)

    def _chat_reject(self, ix, party, op, body, ref):
        party.state = COMPLETED
        self._emit_chat(party, "StatusChange", ref)
        ix.parties.remove(party)
        if party.role == "owner":
            ix.rejected_by.add(party.agent.name)
            if not ix.live_parties():
                self._route(ix)
        elif party.inviter is not None and party.inviter.state == CHATTING:
            self._emit_chat(party.inviter, "Error", party.invite_ref,
                            error=f"{party.agent.name} rejected the invitation")

    def _chat_send(self, ix, party, op, body, ref):
        entry_type, visibility, param = self.CHAT_SENDS[op]
        fields = {}
        if param is not None:   # Notice text goes into the text field (Message Types table, L11540)
            fields["url" if param == "url" else "text"] = self._string_param(body, param)
        for name in ("messageType", "treatAs"):
            if body.get(name) is not None and not isinstance(body.get(name), str):
                raise _invalid(name, "must be a string")
        entry = self._log(ix, entry_type, self._from(party), visibility=visibility, **fields)
        self._emit_log(ix, [entry])

    def _chat_in_focus(self, ix, party, op, body, ref):
        if not isinstance(body.get("inFocus", True), (bool, str)):
            raise _invalid("inFocus", "must be true or false")
        # No notification is documented for SetInFocus (media.md §15.9).

    def _chat_properties(self, ix, party, op, body, ref):
        self._apply_properties(ix, op, body)
        self._emit_chat(party, "PropertiesUpdated", ref)
        for other in ix.live_parties():
            if other is not party and other.state != INVITED:
                self._emit_chat(other, "PropertiesUpdated")

    def _chat_text_first(self, ix, party, body) -> list[dict]:
        """Leave/Complete/Transfer take an optional goodbye ``text``."""
        text = self._string_param(body, "text", required=False)
        if text and party.state == CHATTING:
            return [self._log(ix, "Text", self._from(party), text=text)]
        return []

    def _part(self, ix: Interaction, party: ChatParty, entries: list[dict]) -> None:
        """``party`` left: the remaining chatting agents see it."""
        others = [p for p in ix.chatting() if p is not party]
        for other in others:
            self._emit_chat(other, "ParticipantsUpdated")
        self._emit_log(ix, entries, only=others)

    def _chat_leave(self, ix, party, op, body, ref):
        entries = self._chat_text_first(ix, party, body)
        entries.append(self._log(ix, "ParticipantLeft", self._from(party), visibility=party.visibility))
        in_conference = any(p is not party for p in ix.chatting())
        party.state = COMPLETED if in_conference else LEFT_CHAT   # L11951 vs L11972
        self._emit_chat(party, "StatusChange", ref)
        if in_conference:
            ix.parties.remove(party)
        self._part(ix, party, entries)
        self._revoke_invites_of(ix, party)

    def _chat_complete(self, ix, party, op, body, ref):
        entries = self._chat_text_first(ix, party, body)
        if party.state == CHATTING:
            entries.append(self._log(ix, "ParticipantLeft", self._from(party), visibility=party.visibility))
        party.state = COMPLETED
        self._emit_chat(party, "StatusChange", ref)
        ix.parties.remove(party)
        self._part(ix, party, entries)
        self._revoke_invites_of(ix, party)
        if not ix.live_parties():
            if ix.customer_present:   # "Ends customer session if not already ended"
                ix.customer_present = False
                self._log(ix, "ParticipantLeft", ix.customer)
            self._finish(ix)

    def _chat_transfer(self, ix, party, op, body, ref):
        target = self._resolve_user(body, "targetUri", "targetPath")
        queue = self._string_param(body, "queueName", required=False)
        if target is None and queue is None:
            raise _missing("targetUri")
        if target is not None:
            self._check_target(ix, party, target)
        entries = self._chat_text_first(ix, party, body)
        entries.append(self._log(ix, "ParticipantLeft", self._from(party), visibility=party.visibility))
        party.state = COMPLETED
        self._emit_chat(party, "StatusChange", ref)
        ix.parties.remove(party)
        self._part(ix, party, entries)
        self._revoke_invites_of(ix, party)
        if target is not None:
            self._offer(ix, target)
        else:
            ix.rejected_by.discard(party.agent.name)
            self._route(ix, exclude=(party.agent,))

    def _check_target(self, ix: Interaction, party: ChatParty, target: "Agent") -> None:
        if target is party.agent or self._party(ix, target) is not None:
            raise _invalid("targetUri", f"{target.name} is already in chat {ix.id}")
        if "chat" not in self.channels[target.name]:
            raise _invalid("targetUri", f"{target.name} is not logged in to the chat channel")

    def _chat_invite(self, ix, party, op, body, ref):
        target = self._resolve_user(body, "targetUri", "targetPath")
        if target is None:
            raise _missing("targetUri")
        self._check_target(ix, party, target)
        self._offer(ix, target, role="conference" if op == "Invite" else "consult", inviter=party, ref=ref)

    def _chat_cancel_consult(self, ix, party, op, body, ref):
        consult = next(p for p in ix.parties if p.inviter is party and p.role == "consult" and p.live)
        if consult.state != INVITED:
            # "Cannot cancel once consultant accepted": an Error notification (L14020).
            self._emit_chat(party, "Error", ref, error="Request failed")
            return
        consult.state = REVOKED
        self._emit_chat(consult, "StatusChange")
        ix.parties.remove(consult)
        # "If a request is successful, Web Services doesn't publish a CometD notification."

    def _chat_remove_participant(self, ix, party, op, body, ref):
        target = self._resolve_user(body, "targetUri", "targetPath")
        if target is None:
            raise _missing("targetUri")
        removed = self._party(ix, target)
        if removed is None or removed is party or removed.state != CHATTING:
            raise _invalid("targetUri", f"{target.name} is not chatting in {ix.id}")
        entry = self._log(ix, "ParticipantLeft", self._from(removed), visibility=removed.visibility)
        removed.state = LEFT_CHAT
        self._emit_chat(removed, "StatusChange")
        removed.state = COMPLETED
        self._emit_chat(removed, "StatusChange")
        ix.parties.remove(removed)
        self._emit_chat(party, "ParticipantsUpdated", ref)
        others = [p for p in ix.chatting() if p is not party]
        for other in others:
            self._emit_chat(other, "ParticipantsUpdated")
        self._emit_log(ix, [entry], only=[party] + others)

    def _revoke_invites_of(self, ix: Interaction, party: ChatParty) -> None:
        for pending in [p for p in ix.parties if p.inviter is party and p.state == INVITED]:
            pending.state = REVOKED
            self._emit_chat(pending, "StatusChange")
            ix.parties.remove(pending)

    def _get_chat_messages(self, agent, params, query, body):
        ix = self._my_interaction(agent, "chat", params["ix_id"])
        party = self._party(ix, agent)
        entries = [e for e in ix.log if self._visible(e, party)]
        try:
            start = int(query.get("startIndex", 1))
            count = int(query["count"]) if "count" in query else None
        except (TypeError, ValueError):
            raise _invalid("startIndex", "startIndex and count must be integers") from None
        entries = [e for e in entries if e["index"] >= start]
        if count is not None:
            entries = entries[:max(count, 0)]
        return {"statusCode": SC_OK, "messages": [dict(e) for e in entries]}

    def _log(self, ix: Interaction, entry_type: str, sender: dict | None, *, visibility: str = "All",
             **fields: Any) -> dict:
        now = self.cc.scheduler.now()
        entry: dict = {"index": len(ix.log) + 1, "type": entry_type}
        if sender is not None:
            entry["from"] = dict(sender)
        entry.update(fields)
        entry["visibility"] = visibility
        entry["timestamp"] = self._iso(now, sep="T")
        entry["timestampSeconds"] = int(self._wall(now) * 1000)   # milliseconds, as the samples
        ix.log.append(entry)
        return entry

    @staticmethod
    def _from(party: ChatParty) -> dict:
        return {"nickname": party.nickname, "type": "Agent", "participantId": party.participant_id}

    @staticmethod
    def _visible(entry: dict, party: ChatParty | None) -> bool:
        return entry.get("visibility") in ("All", "Agents")    # agents see everything but Supervisors

    # ================================================================== email

    EMAIL_OPERATIONS = {
        "Accept": "_item_accept", "Reject": "_item_reject", "Complete": "_item_complete",
        "Transfer": "_item_transfer", "SetInFocus": "_item_in_focus",
        "SetDisposition": "_item_properties", "AddComment": "_item_properties",
        "AttachUserData": "_item_properties", "UpdateUserData": "_item_properties",
        "DeleteUserData": "_item_properties",
        "Reply": "_email_reply", "ReplyAll": "_email_reply", "Save": "_email_save", "Send": "_email_send",
        "Cancel": "_email_cancel",
    }
    WORKITEM_OPERATIONS = {
        "Accept": "_item_accept", "Reject": "_item_reject", "Complete": "_item_complete",
        "Transfer": "_item_transfer", "SetInFocus": "_item_in_focus",
        "AttachUserData": "_item_properties", "UpdateUserData": "_item_properties",
        "DeleteUserData": "_item_properties",
        "AddContent": "_item_content", "GetContent": "_item_content",
    }

    def _post_email(self, agent, params, query, body):
        return self._post_owned(agent, "email", params, body, self.EMAIL_OPERATIONS)

    def _post_item(self, agent, params, query, body):
        kind = "openmedia" if "media_type" in params else "workitem"
        return self._post_owned(agent, kind, params, body, self.WORKITEM_OPERATIONS)

    def _post_owned(self, agent, kind, params, body, table):
        op, handler = self._operation(body, table)
        ix = self._my_interaction(agent, kind, params["ix_id"], params.get("media_type"))
        self._require_channel_services(kind)
        self._check_caps(op, self._item_caps(ix), f"{KINDS[kind].key} {ix.id}", ix.state)
        ref = self._next_ref(agent)
        handler(ix, agent, op, body, ref)
        out = {"statusCode": SC_OK}
        if kind in ("workitem", "openmedia"):
            out["referenceId"] = ref       # Workitem/Open Media answers carry it (L35848, L24226)
        return out

    def _item_caps(self, ix: Interaction, state: str | None = None) -> list[str]:
        state = state or ix.state
        if state == INVITED:
            return list(INVITED_CAPS)
        if ix.kind == "email":
            return list(EMAIL_PROCESSING if state == PROCESSING else EMAIL_COMPOSING if state == COMPOSING else ())
        if state == PROCESSING:
            return list(OPENMEDIA_PROCESSING if ix.kind == "openmedia" else WORKITEM_PROCESSING)
        return []

    def _item_accept(self, ix, agent, op, body, ref):
        # a transferred draft comes back to Composing; everything else is worked in Processing
        ix.state = COMPOSING if ix.kind == "email" and ix.direction == "Outbound" else PROCESSING
        self._emit_ix(ix, agent, "StatusChange", ref=ref)

    def _item_reject(self, ix, agent, op, body, ref):
        self._emit_ix(ix, agent, "StatusChange", ref=ref, state=COMPLETED)
        ix.owner, ix.state = None, QUEUED
        ix.rejected_by.add(agent.name)
        self._route(ix)

    def _item_complete(self, ix, agent, op, body, ref):
        self._string_param(body, "queueName", required=False)
        ix.state = COMPLETED
        self._emit_ix(ix, agent, "StatusChange", ref=ref)
        self._finish(ix)

    def _item_transfer(self, ix, agent, op, body, ref):
        target = self._resolve_user(body, "userUri" if ix.kind == "email" else "targetUri", "targetUri",
                                    "targetPath")
        queue = self._string_param(body, "queueName", required=False)
        if target is None and queue is None:
            raise _missing("userUri" if ix.kind == "email" else "targetUri")
        if target is not None:
            if target is agent:
                raise _invalid("targetUri", "cannot transfer to oneself")
            if ix.kind not in self.channels[target.name]:
                raise _invalid("targetUri", f"{target.name} is not logged in to the {ix.kind} channel")
        self._emit_ix(ix, agent, "StatusChange", ref=ref, state=COMPLETED)   # sender: Completed (media.md)
        ix.owner = None
        if target is not None:
            self._offer(ix, target)
        else:
            self._route(ix, exclude=(agent,))

    def _item_in_focus(self, ix, agent, op, body, ref):
        if not isinstance(body.get("inFocus", True), (bool, str)):
            raise _invalid("inFocus", "must be true or false")

    def _item_properties(self, ix, agent, op, body, ref):
        self._apply_properties(ix, op, body)
        self._emit_ix(ix, agent, "PropertiesUpdated", ref=ref)

    def _item_content(self, ix, agent, op, body, ref):
        self._string_param(body, "threadId", required=False)
        ix.ucs_content = "Available"
        self._emit_ix(ix, agent, "StatusChange", ref=ref)

    def _email_reply(self, ix, agent, op, body, ref):
        self._string_param(body, "queueUri")
        prefix = self._string_param(body, "subjectPrefix", required=False)
        texts = {}
        for name in ("body", "bodyAsPlainText", "mime"):
            value = self._string_param(body, name, required=False)
            if value is not None:
                texts[name] = value
        user_data = body.get("userData")
        if user_data is not None and not isinstance(user_data, Mapping):
            raise _invalid("userData", "must be a JSON object")
        original = ix.email
        reply = self._new_interaction("email", direction="Outbound")
        reply.owner, reply.state, reply.parent_id, reply.contact_id = agent, COMPOSING, ix.id, ix.contact_id
        to = [original.get("from")] if original.get("from") else []
        cc: list[str] = []
        if op == "ReplyAll":
            cc = [a for a in original.get("to", []) + original.get("cc", []) if a not in to and a != self.mailbox]
        mine = original.get("to", [self.mailbox])
        reply.email = {"from": mine[0] if mine else self.mailbox, "to": to, "subject":
                       (prefix if prefix is not None else "RE: ") + original.get("subject", ""),
                       "mime": "text/plain", **texts}
        if cc:
            reply.email["cc"] = cc
        reply.user_data = {"ContactId": ix.contact_id} if ix.contact_id else {}
        reply.user_data.update(user_data or {})
        self._emit_ix(reply, agent, "StatusChange", ref=ref)

    EMAIL_FIELDS = ("from", "to", "cc", "bcc", "subject", "body", "bodyAsPlainText", "mime")

    def _email_fields(self, body: Mapping, *, required: bool) -> dict:
        email = body.get("email")
        if email is None:
            if required:
                raise _missing("email")
            return {}
        if not isinstance(email, Mapping):
            raise _invalid("email", "must be a JSON object")
        out = {}
        for name in self.EMAIL_FIELDS:
            if name not in email:
                continue
            value = email[name]
            if name in ("to", "cc", "bcc"):
                if isinstance(value, str):
                    value = [value]
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise _invalid(f"email.{name}", "must be an array of addresses")
            elif not isinstance(value, str):
                raise _invalid(f"email.{name}", "must be a string")
            out[name] = value
        return out

    def _email_save(self, ix, agent, op, body, ref):
        ix.email.update(self._email_fields(body, required=True))
        self._emit_ix(ix, agent, "EmailSaved", ref=ref)

    def _email_send(self, ix, agent, op, body, ref):
        self._string_param(body, "queueName")
        merged = {**ix.email, **self._email_fields(body, required=False)}
        if not merged.get("to"):
            raise _missing("email.to")
        if not merged.get("from"):
            raise _missing("email.from")
        ix.email = merged
        ix.state = SENT
        self._emit_ix(ix, agent, "StatusChange", ref=ref)
        self._finish(ix)

    def _email_cancel(self, ix, agent, op, body, ref):
        ix.state = CANCELED
        self._emit_ix(ix, agent, "StatusChange", ref=ref)
        self._finish(ix)

    # ================================================================== workbins

    def _get_workbins(self, *, mine: bool) -> Callable:
        def handler(agent, params, query, body):
            ids = _split(query.get("workbinIds"))
            if ids:
                bins = {i: self._workbin_resource(self._workbin(i), query) for i in ids}
                return {"statusCode": SC_OK, "workbins": bins}
            bins = self.workbins_of[agent.name] if mine else list(self.workbins.values())
            if query.get("fields") or query.get("subresources"):
                return {"statusCode": SC_OK, "workbins": [self._workbin_resource(wb, query) for wb in bins]}
            paths = [f"/workbins/{wb.id}" for wb in bins]
            return {"statusCode": SC_OK, "paths": paths, "uris": [self.cc.api + p for p in paths]}
        return handler

    def _get_workbin(self, agent, params, query, body):
        return {"statusCode": SC_OK, "workbin": self._workbin_resource(self._workbin(params["wb_id"]), query)}

    def _get_workbin_media(self, agent, params, query, body):
        wb = self._workbin(params["wb_id"])
        media = params["media"]
        kind = _singular(media)
        if kind not in KINDS:
            raise GwsError(SC_NOT_FOUND, f"Unknown media type {media}")
        items = [ix for ix in self._workbin_items(wb) if ix.kind == kind]
        return {"statusCode": SC_OK, kind: [_project(self._resource(ix, None), query.get("fields")) for ix in items]}

    def _workbin(self, wb_id: str) -> Workbin:
        wb = self.workbins.get(wb_id)
        if wb is None:
            raise GwsError(SC_NOT_FOUND, f"Workbin {wb_id} not found")
        return wb

    def _workbin_items(self, wb: Workbin) -> list[Interaction]:
        return [ix for ix in self.interactions.values() if ix.workbin == wb.id]

    def _workbin_resource(self, wb: Workbin, query: Mapping) -> dict:
        out = {"workbinName": wb.name, "id": wb.id, "displayName": wb.display_name,
               "uri": f"{self.cc.api}/workbins/{wb.id}", "type": wb.type}
        wanted = _split(query.get("subresources"))
        if wanted:
            everything = "*" in wanted
            for kind in KINDS.values():
                if everything or kind.name in wanted or kind.workbin_key in wanted:
                    out[kind.workbin_key] = [self._resource(ix, None) for ix in self._workbin_items(wb)
                                             if ix.kind == kind.name]
        return out

    WORKBIN_OPERATIONS = ("Subscribe", "Unsubscribe", "RequestStats", "AddInteraction", "PullInteraction") + \
        tuple(k.add_op for k in KINDS.values()) + tuple(k.pull_op for k in KINDS.values())

    def _post_workbins(self, agent, params, query, body):
        """POST /me/workbins?workbinIds=a,b (or /workbins?...): Subscribe / Unsubscribe several."""
        op = self._op_name(body)
        if op not in ("Subscribe", "Unsubscribe"):
            raise _invalid("operationName", f"Operation {op} is not supported on this resource")
        ids = _split(query.get("workbinIds"))
        if not ids:
            raise _missing("workbinIds")
        bins = [self._workbin(i) for i in ids]
        self._require_channel_services("workitem")
        refs = {}
        for wb in bins:
            refs[wb.id] = self._next_ref(agent)
            self._subscription(agent, wb, op, refs[wb.id])
        return {"statusCode": SC_OK, "referenceIds": refs}

    def _post_workbin(self, agent, params, query, body):
        wb = self._workbin(params["wb_id"])
        op = self._op_name(body)
        if op not in self.WORKBIN_OPERATIONS:
            raise _invalid("operationName", f"Operation {op} is not supported on this resource")
        self._require_channel_services("workitem")
        if op in ("Subscribe", "Unsubscribe"):
            ref = self._next_ref(agent)
            self._subscription(agent, wb, op, ref)
        elif op == "RequestStats":
            ref = self._next_ref(agent)
            items = self._workbin_items(wb)
            self.cc._emit(agent.name, CH_WORKBINS, {
                "messageType": "WorkbinStatsMessage", "id": wb.id, "workbinType": wb.type,
                "workbinStats": {wb.id: {"NumberOfInteractions": len(items)}}, "referenceId": ref})
        elif op.startswith("Add"):
            ref = self._workbin_add(agent, wb, op, body)
        else:
            ref = self._workbin_pull(agent, wb, op, body)
        return {"statusCode": SC_OK, "referenceId": ref}

    def _subscription(self, agent: "Agent", wb: Workbin, op: str, ref: int) -> None:
        names = self.subscribers.setdefault(wb.id, [])
        if op == "Subscribe" and agent.name not in names:
            names.append(agent.name)
        elif op == "Unsubscribe" and agent.name in names:
            names.remove(agent.name)
        data = {"stateResource": "Subscribed" if op == "Subscribe" else "Unsubscribed", "id": wb.id,
                "messageType": "WorkbinSubscriptionStateChangeMessage", "referenceId": ref}
        if wb.owner is not agent:
            data["workbinUserId"] = wb.owner.user_id
        self.cc._emit(agent.name, CH_WORKBINS, data)

    def _op_kind(self, op: str) -> str | None:
        for kind in KINDS.values():
            if op in (kind.add_op, kind.pull_op):
                return kind.name
        return None

    def _workbin_add(self, agent: "Agent", wb: Workbin, op: str, body: Any) -> int:
        ref_value = body.get("uri", body.get("id"))
        if ref_value is None:
            raise _missing("uri")
        if not isinstance(ref_value, str) or not ref_value.strip("/"):
            raise _invalid("uri", "must be an interaction URI or id")
        ix_id = ref_value.rstrip("/").rsplit("/", 1)[-1]
        ix = self.interactions.get(ix_id)
        kind = self._op_kind(op)
        if ix is None or (kind != "openmedia" and ix.kind != kind) or (kind == "openmedia" and op != "AddInteraction"
                                                                        and ix.kind != "openmedia"):
            raise GwsError(SC_NOT_FOUND, f"Interaction {ix_id} not found")
        if ix.kind == "chat":
            party = self._party(ix, agent)
            if party is None or party.state not in (CHATTING, LEFT_CHAT):
                raise GwsError(SC_INVALID, f"Chat {ix_id} is not being handled by {agent.name}")
        elif ix.owner is not agent or ix.state not in (PROCESSING, COMPOSING):
            raise GwsError(SC_INVALID, f"Interaction {ix_id} is not being handled by {agent.name}")
        ref = self._next_ref(agent)
        if ix.kind == "chat":
            party = self._party(ix, agent)
            entry = self._log(ix, "ParticipantLeft", self._from(party)) if party.state == CHATTING else None
            party.state = IN_WORKBIN
            self._emit_chat(party, "StatusChange", ref)
            ix.parties.remove(party)
            if entry:
                self._part(ix, party, [entry])
            ix.resume_state = CHATTING
        else:
            ix.resume_state = ix.state
            ix.state = IN_WORKBIN
            ix.owner = None
            self._emit_ix(ix, agent, "StatusChange", ref=ref)
        ix.state = IN_WORKBIN
        ix.workbin = wb.id
        ix.user_data.update({"Workbin": wb.name, "WorkbinAgentId": wb.owner.name})
        self._emit_workbin(wb, "ItemAdded", ix)
        return ref

    def _workbin_pull(self, agent: "Agent", wb: Workbin, op: str, body: Any) -> int:
        ref_value = body.get("id", body.get("uri"))
        if ref_value is None:
            raise _missing("id")
        if not isinstance(ref_value, str) or not ref_value.strip("/"):
            raise _invalid("id", "must be an interaction id")
        ix_id = ref_value.rstrip("/").rsplit("/", 1)[-1]
        ix = self.interactions.get(ix_id)
        kind = self._op_kind(op)
        if ix is None or ix.workbin != wb.id or (kind != "openmedia" and ix.kind != kind):
            raise GwsError(SC_NOT_FOUND, f"Interaction {ix_id} is not in workbin {wb.id}")
        nickname = self._string_param(body, "nickname", required=False)
        ref = self._next_ref(agent)
        ix.workbin = None
        self._emit_workbin(wb, "ItemRemoved", ix)
        if ix.kind == "chat":
            ix.state = "Active"
            party = ChatParty(agent, CHATTING, nickname=nickname or agent.spec.first_name,
                              participant_id=self.ids.participant_id())
            ix.parties.append(party)
            self._log(ix, "ParticipantJoined", self._from(party))
            self._emit_chat(party, "StatusChange", ref)
            self._emit_log(ix, [e for e in ix.log if self._visible(e, party)], only=[party])
        else:
            ix.owner = agent
            ix.state = ix.resume_state or PROCESSING
            self._emit_ix(ix, agent, "StatusChange", ref=ref)
        return ref

    def _emit_workbin(self, wb: Workbin, action: str, ix: Interaction) -> None:
        for name in self.subscribers.get(wb.id, ()):
            self.cc._emit(name, CH_WORKBINS, {
                "workbinAgentId": wb.owner.name, "workbinUserId": wb.owner.user_id,
                "messageType": "WorkbinStateChangeMessage",
                f"{KINDS[ix.kind].key}StateResourceV2": self._resource(ix, None, state=IN_WORKBIN),
                "action": action, "id": wb.id})

    # ================================================================== IM sessions

    IM_OPERATIONS = {
        "SendMessage": "_im_send", "AttachUserData": "_im_user_data", "UpdateUserData": "_im_user_data",
        "DeleteUserData": "_im_user_data", "Complete": "_im_complete",
    }

    def _get_im_sessions(self, agent, params, query, body):
        sessions = [s for s in self.im_sessions.values() if agent.name in s.states]
        if query.get("fields"):
            return {"imSessions": [_project(self._im_resource(s, agent), query["fields"]) for s in sessions],
                    "statusCode": SC_OK}
        paths = [f"/im-sessions/{s.id}" for s in sessions]
        return {"statusCode": SC_OK, "uris": [self.cc.api + p for p in paths], "paths": paths}

    def _get_im_session(self, agent, params, query, body):
        session = self._my_im(agent, params["im_id"])
        return {"statusCode": SC_OK, "imSession": _project(self._im_resource(session, agent), query.get("fields"))}

    def _my_im(self, agent: "Agent", im_id: str) -> ImSession:
        session = self.im_sessions.get(im_id)
        if session is None or agent.name not in session.states:
            raise GwsError(SC_NOT_FOUND, f"IM session {im_id} not found")
        return session

    def _post_im_sessions(self, agent, params, query, body):
        op = self._op_name(body)
        if op != "InitiateIMSession":
            raise _invalid("operationName", f"Operation {op} is not supported on this resource")
        destination = body.get("destination")
        if destination is None:
            raise _missing("destination")
        number = destination.get("phoneNumber") if isinstance(destination, Mapping) else destination
        if not isinstance(number, (str, int)) or isinstance(number, bool) or str(number) == "":
            raise _invalid("destination", "must be {\"phoneNumber\": ...}")
        user_data = body.get("userData")
        if user_data is not None and not isinstance(user_data, Mapping):
            raise _invalid("userData", "must be a JSON object")
        device_path = body.get("devicePath")
        if device_path is not None and str(device_path).rstrip("/").rsplit("/", 1)[-1] != agent.device_id:
            raise _invalid("devicePath", f"Device {device_path} is not assigned to the user")
        self._require_channel_services("im")
        other = self.cc.agents_by_phone.get(str(number))
        if other is None or other is agent:
            raise _invalid("destination", f"{number} is not an IM-capable extension")
        for who in (agent, other):
            if any(who.name in s.states for s in self.im_sessions.values()):
                # "An agent can't participate in more than one IM session at a time" (L10760)
                raise GwsError(SC_INVALID, "Invalid state")
        im_id, _ = self.cc.ids.call_ids()     # "the associated SIP server call UUID"
        session = ImSession(im_id, dict(user_data or {}), {agent.name: TALKING, other.name: ALERTING},
                            [agent, other])
        self.im_sessions[im_id] = session
        self._emit_im(session, agent, "StatusChange")
        self._emit_im(session, other, "StatusChange")      # EventRinging ...
        session.states[other.name] = TALKING                # ... auto-answered: EventEstablished
        self._emit_im(session, other, "StatusChange")
        return {"statusCode": SC_OK}

    def _post_im_session(self, agent, params, query, body):
        op, handler = self._operation(body, self.IM_OPERATIONS)
        session = self._my_im(agent, params["im_id"])
        self._require_channel_services("im")
        state = session.states[agent.name]
        self._check_caps(op, list(IM_TALKING) if state == TALKING else [], f"IM session {session.id}", state)
        handler(session, agent, op, body)
        return {"statusCode": SC_OK}

    def _im_send(self, session, agent, op, body):
        text = self._string_param(body, "text")
        for who in session.agents:
            self.cc._emit(who.name, CH_IM, {"messageType": "IMLogUpdateMessage", "notificationType": "NewMessage",
                                            "imSessionPath": f"/im-sessions/{session.id}", "message": text})

    def _im_user_data(self, session, agent, op, body):
        if op == "DeleteUserData":
            key = body.get("key", body.get("keys"))
            if key is None:
                raise _missing("key")
            keys = [key] if isinstance(key, str) else key
            if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
                raise _invalid("key", "must be a key name")
            for k in keys:
                session.user_data.pop(k, None)
        else:
            session.user_data.update(self._user_data_param(body))
        for who in session.agents:
            self._emit_im(session, who, "AttachedDataChanged")

    def _im_complete(self, session, agent, op, body):
        for who in session.agents:       # two parties: releasing one releases the call
            session.states[who.name] = COMPLETED
        self._emit_im(session, agent, "StatusChange")
        for who in session.agents:
            if who is not agent:
                self._emit_im(session, who, "StatusChange")
        del self.im_sessions[session.id]

    def _im_resource(self, session: ImSession, agent: "Agent") -> dict:
        other = next((a for a in session.agents if a is not agent), agent)
        state = session.states.get(agent.name, COMPLETED)
        return {
            "state": state,
            "userData": dict(session.user_data),
            "id": session.id,
            "uri": f"{self.cc.api}/im-sessions/{session.id}",
            "path": f"/im-sessions/{session.id}",
            "participants": [_participant(other.phone)],
            "capabilities": list(IM_TALKING) if state == TALKING else [],
        }

    def _emit_im(self, session: ImSession, agent: "Agent", notification_type: str) -> None:
        self.cc._emit(agent.name, CH_IM, {"messageType": "IMSessionStateChangeMessage",
                                          "notificationType": notification_type,
                                          "imSession": self._im_resource(session, agent)})

    # ================================================================== resources

    def _path(self, ix: Interaction) -> str:
        if ix.kind == "openmedia":
            return f"/openmedia/{ix.media_type}/{ix.id}"
        collection = {"chat": "chats", "email": "emails", "workitem": "workitems"}[ix.kind]
        return f"/{collection}/{ix.id}"

    def _uri(self, ix: Interaction) -> str:
        if ix.kind == "openmedia":   # plural media type, no /me (L24237)
            return f"{self.cc.api}/openmedia/{ix.media_type}s/{ix.id}"
        return f"{self.cc.api}/{KINDS[ix.kind].uri_segment}/{ix.id}"

    def _resource(self, ix: Interaction, agent: "Agent | None", *, state: str | None = None,
                  party: ChatParty | None = None) -> dict:
        if ix.kind == "chat":
            party = party or (self._party(ix, agent) if agent is not None else None)
            return self._chat_resource(ix, party, state=state)
        state = state or ix.state
        if ix.kind == "email":
            return self._email_resource(ix, state)
        out: dict = {"userData": dict(ix.user_data), "receivedDate": self._iso(ix.received),
                     "uri": self._uri(ix), "capabilities": self._item_caps(ix, state), "state": state}
        if ix.kind == "openmedia":
            out["mediaType"] = ix.media_type
            out["openmediaType"] = ix.direction
            if ix.ucs_content:
                out["ucsContent"] = ix.ucs_content
        else:
            out["workitemType"] = "Inbound"    # also for Create, as the sample (media_operations.csv)
        if ix.parent_id:
            out["parentId"] = ix.parent_id
        if ix.comment:
            out["comment"] = ix.comment
        out["id"] = ix.id
        return out

    def _email_resource(self, ix: Interaction, state: str) -> dict:
        out: dict = {"userData": dict(ix.user_data)}
        for name in self.EMAIL_FIELDS:
            if name in ix.email:
                out[name] = list(ix.email[name]) if isinstance(ix.email[name], list) else ix.email[name]
        if ix.contact_id:
            out["contactId"] = ix.contact_id
        out["capabilities"] = self._item_caps(ix, state)
        out["uri"] = self._uri(ix)
        out["state"] = state
        if ix.parent_id:
            out["parentId"] = ix.parent_id
        if ix.comment:
            out["comment"] = ix.comment
        out["id"] = ix.id
        return out

    def _chat_resource(self, ix: Interaction, party: ChatParty | None, *, state: str | None = None) -> dict:
        state = state or (party.state if party is not None else ix.state)
        ended = state in (COMPLETED, REVOKED, IN_WORKBIN)
        out: dict = {"state": state,
                     "capabilities": self._chat_caps(ix, party) if party is not None and not ended else [],
                     "id": ix.id, "uri": self._uri(ix)}
        participants = []
        if not ended:
            if ix.customer_present and ix.customer:
                participants.append(dict(ix.customer))
            for p in ix.chatting():
                participants.append(self._from(p))
        out["participants"] = participants
        out["userData"] = dict(ix.user_data)
        out["chatType"] = ix.direction
        out["receivedDate"] = self._iso(ix.received)
        if ix.comment:
            out["comment"] = ix.comment
        return out

    # ================================================================== notifications

    def _emit_chat(self, party: ChatParty, notification_type: str, ref: int | None = None, *,
                   error: str | None = None) -> None:
        data: dict = {"messageType": "ChatStateChangeMessage"}
        if ref is not None:
            data["referenceId"] = ref
        data["notificationType"] = notification_type
        if error is not None:
            data["errorMessage"] = error
        data["chat"] = self._chat_resource(self._ix_of(party), party)
        self.cc._emit(party.agent.name, CH_CHATS, data)

    def _ix_of(self, party: ChatParty) -> Interaction:
        for ix in list(self.interactions.values()) + list(self.ended.values()):
            if party in ix.parties:
                return ix
        raise LookupError("party without chat")   # never: parties are emitted before removal

    def _emit_log(self, ix: Interaction, entries: list[dict], *, only: list[ChatParty] | None = None) -> None:
        """MessageLogUpdated (NewMessages) to the chatting agents (or ``only`` those)."""
        if not entries:
            return
        for party in (ix.chatting() if only is None else only):
            visible = [dict(e) for e in entries if self._visible(e, party)]
            if visible:
                self.cc._emit(party.agent.name, CH_CHATS, {
                    "messageType": "MessageLogUpdated", "notificationType": "NewMessages",
                    "messages": visible, "chatUri": self._uri(ix)})

    def _emit_ix(self, ix: Interaction, agent: "Agent", notification_type: str, *, ref: int | None = None,
                 state: str | None = None) -> None:
        kind = KINDS[ix.kind]
        data: dict = {kind.key: self._resource(ix, agent, state=state)}
        if ref is not None:
            data["referenceId"] = ref
        data["notificationType"] = notification_type
        data["messageType"] = kind.message_type
        self.cc._emit(agent.name, kind.channel, data)

    def _emit_channel(self, agent: "Agent", state: ChannelState) -> None:
        """ChannelStateChangeMessageV2 on /v2/me/channels (Supervisor Agent State Control samples, L44960)."""
        self.cc._emit(agent.name, CH_CHANNELS, {"channels": [self._channel_entry(agent, state, notification=True)],
                                                "messageType": "ChannelStateChangeMessageV2"})

    # ================================================================== time and helpers

    def _wall(self, t: float) -> float:
        return EPOCH + (t - self._t0)

    def _iso(self, t: float, sep: str = " ") -> str:
        """``2024-01-01 00:00:05.250+0000`` (receivedDate) or with ``T`` (chat timestamps)."""
        wall = self._wall(t)
        dt = datetime.fromtimestamp(int(wall), tz=timezone.utc)
        millis = int(round((wall - int(wall)) * 1000)) % 1000
        return dt.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + f".{millis:03d}+0000"

    def _contact(self, address: str) -> str:
        contact = self._contacts.get(address)
        if contact is None:
            contact = self._contacts[address] = self.ids.interaction_id()
        return contact


def _singular(media: str) -> str:
    """``chats`` -> ``chat``, ``emails`` -> ``email``, ``promotions`` -> ``promotion``."""
    media = str(media)
    if media in ("interactions", "interaction"):
        return "openmedia"
    return media[:-1] if media.endswith("s") and media not in ("openmedia",) else media
