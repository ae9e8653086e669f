"""Interactions (chats, emails, workitems, open media) and the desk that routes them.

Shared core of the interaction channels, in the role of Interaction Server: the
:class:`Interaction` record, the routing queue (least-loaded Ready agent, else
wait), referenceIds, the wall clock of timestamps, GET collections and the
resource/notification plumbing. What differs per kind (how an offer looks, which
agent holds it, the resource, parking in a workbin) is the kind's
:class:`KindHandler`, registered by its channel module (chats.py, emails.py,
workitems.py); workbins.py parks any kind through the same handlers.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Protocol

from gwsreplay.sim.model.agents import DEFAULT_DISPOSITION_KEY, Agent
from gwsreplay.sim.model.channels import MediaChannels
from gwsreplay.sim.model.core import Core
from gwsreplay.sim.model.errors import SC_INVALID, SC_NOT_FOUND, SC_OK, GwsError, invalid
from gwsreplay.sim.model.ids import MediaIdGenerator
from gwsreplay.sim.model.requests import keys_param, last_segment, project, string_param, user_data_param
from gwsreplay.sim.model.states import CHATTING, INVITED, LEFT_CHAT, QUEUED

EPOCH = 1704067200.0           # 2024-01-01T00:00:00Z: the model's wall clock starts here (docs)


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
    collection: str      # /me/<collection>


KINDS: dict[str, Kind] = {
    "chat": Kind("chat", "/v2/me/chats", "ChatStateChangeMessage", "chat", "chats", "chats", "AddChat", "PullChat",
                 "chats"),
    "email": Kind("email", "/v2/me/emails", "EmailStateChangeMessage", "email", "email", "emails", "AddEmail",
                  "PullEmail", "emails"),
    "workitem": Kind("workitem", "/v2/me/workitems", "WorkitemStateChangeMessage", "workitem", "workitems",
                     "workitems", "AddWorkitem", "PullWorkitem", "workitems"),
    "openmedia": Kind("openmedia", "/v2/me/openmedia", "OpenmediaStateChangeMessage", "openmedia", "openmedia",
                      "interactions", "AddInteraction", "PullInteraction", "openmedia"),
}


@dataclass(eq=False)
class ChatParty:
    """One agent's place in a chat, with its own state (as a call leg)."""
    agent: Agent
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
    owner: Agent | None = None
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

    def party(self, agent: Agent) -> ChatParty | None:
        """The agent's live place in the chat (None for other kinds)."""
        return next((p for p in self.parties if p.agent is agent and p.live), None)


class KindHandler(Protocol):
    """What a channel module tells the desk about its kind of interaction."""

    def offer(self, ix: Interaction, agent: Agent, *, role: str, inviter: ChatParty | None,
              ref: int | None) -> None: ...
    def requeue(self, ix: Interaction) -> None: ...                 # nobody to route to: it waits
    def holds(self, ix: Interaction, agent: Agent) -> bool: ...     # listed in the agent's /me/<kind>
    def counts(self, ix: Interaction, agent: Agent) -> bool: ...    # toward the agent's capacity
    def resource(self, ix: Interaction, agent: Agent | None, *, state: str | None,
                 party: ChatParty | None) -> dict: ...
    def check_parkable(self, ix: Interaction, agent: Agent) -> None: ...
    def park(self, ix: Interaction, agent: Agent, ref: int) -> None: ...      # into a workbin
    def unpark(self, ix: Interaction, agent: Agent, ref: int, nickname: str | None) -> None: ...
    def snapshot(self, ix: Interaction, out: dict) -> None: ...


class Desk:
    """The live interactions (creation order), the routing queue, the recently ended ones."""

    def __init__(self, core: Core, channels: MediaChannels, ids: MediaIdGenerator, *, capacity: int = 3,
                 ended_kept: int = 1000):
        self.core = core
        self.channels = channels
        self.ids = ids
        self.capacity = capacity
        self.kinds: dict[str, KindHandler] = {}
        self.interactions: dict[str, Interaction] = {}   # live, creation order
        self.ended: OrderedDict[str, Interaction] = OrderedDict()
        self._ended_kept = ended_kept
        self.waiting: list[Interaction] = []              # routing queue, arrival order
        self._refs: Counter[str] = Counter()
        self._t0 = core.scheduler.now()
        core.hooks.channel_ready.append(self.dispatch_waiting)
        core.hooks.service_active.append(self.dispatch_waiting)

    # ================================================================== routing

    def new_interaction(self, kind: str, *, direction: str = "Inbound") -> Interaction:
        ix = Interaction(kind=kind, id=self.ids.interaction_id(), received=self.core.scheduler.now(),
                         direction=direction)
        self.interactions[ix.id] = ix
        return ix

    def deliver(self, ix: Interaction, target: Agent | None) -> None:
        if target is not None:
            self.offer(ix, target)
        else:
            self.route(ix)

    def route(self, ix: Interaction, *, exclude: tuple = ()) -> bool:
        """Offer ``ix`` to the least-loaded Ready agent of its channel, or queue it."""
        best, best_key = None, None
        for index, agent in enumerate(self.core.agents.values()):
            if (not self.channels.ready(agent, ix.kind) or agent.name in ix.rejected_by or agent in exclude
                    or ix.party(agent) is not None):
                continue
            load = self._load(agent, ix.kind)
            if load >= self.capacity:
                continue
            if best_key is None or (load, index) < best_key:
                best, best_key = agent, (load, index)
        if best is None:
            self.kinds[ix.kind].requeue(ix)
            if ix not in self.waiting:
                self.waiting.append(ix)
            return False
        if ix in self.waiting:
            self.waiting.remove(ix)
        self.offer(ix, best)
        return True

    def dispatch_waiting(self) -> None:
        for ix in list(self.waiting):
            if ix.id in self.interactions:
                self.route(ix)
            else:
                self.waiting.remove(ix)

    def _load(self, agent: Agent, kind: str) -> int:
        handler = self.kinds[kind]
        return sum(1 for ix in self.interactions.values() if ix.kind == kind and handler.counts(ix, agent))

    def offer(self, ix: Interaction, agent: Agent, *, role: str = "owner", inviter: ChatParty | None = None,
              ref: int | None = None) -> None:
        """An invitation: the agent's view goes Invited (caps Accept, Reject), no referenceId."""
        if ix in self.waiting:
            self.waiting.remove(ix)
        self.kinds[ix.kind].offer(ix, agent, role=role, inviter=inviter, ref=ref)

    def finish(self, ix: Interaction) -> None:
        """The interaction is over for everyone: forget it (kept a while for the control API)."""
        self.interactions.pop(ix.id, None)
        if ix in self.waiting:
            self.waiting.remove(ix)
        self.ended[ix.id] = ix
        while len(self.ended) > self._ended_kept:
            self.ended.popitem(last=False)

    # ================================================================== GET /me/<kind>

    def get_collection(self, kind: str) -> Callable:
        def handler(agent, params, query, body):
            items = self.mine(agent, kind, params.get("media_type"))
            fields = query.get("fields")
            if fields:
                return {"statusCode": SC_OK,
                        KINDS[kind].collection: [project(self.resource(ix, agent), fields) for ix in items]}
            paths = [self.path(ix) for ix in items]
            return {"statusCode": SC_OK, "uris": [self.core.api + "/me" + p for p in paths], "paths": paths}
        return handler

    def get_one(self, kind: str) -> Callable:
        def handler(agent, params, query, body):
            ix = self.my_interaction(agent, kind, params["ix_id"], params.get("media_type"))
            return {"statusCode": SC_OK, KINDS[kind].key: project(self.resource(ix, agent), query.get("fields"))}
        return handler

    def mine(self, agent: Agent, kind: str, media_type: str | None = None) -> list[Interaction]:
        handler = self.kinds[kind]
        return [ix for ix in self.interactions.values()
                if ix.kind == kind and (media_type is None or ix.media_type == singular(media_type))
                and handler.holds(ix, agent)]

    def my_interaction(self, agent: Agent, kind: str, ix_id: str, media_type: str | None = None) -> Interaction:
        ix = self.interactions.get(ix_id)
        if ix is None or ix not in self.mine(agent, kind, media_type):
            label = "Open media interaction" if kind == "openmedia" else kind.capitalize()
            raise GwsError(SC_NOT_FOUND, f"{label} {ix_id} not found")
        return ix

    # ================================================================== shared request helpers

    def next_ref(self, agent: Agent) -> int:
        self._refs[agent.name] += 1
        return self._refs[agent.name]

    def resolve_user(self, body: Mapping, *names: str) -> Agent | None:
        """targetUri / targetPath / userUri -> an agent (uri or path ending in the user id or name)."""
        for name in names:
            value = body.get(name)
            if value is None:
                continue
            if not isinstance(value, str) or not value.strip("/"):
                raise invalid(name, "must be a user URI or path")
            last = last_segment(value)
            agent = self.core.agent_by_user(last)
            if agent is None:
                raise invalid(name, f"No user {last}")
            return agent
        return None

    def inject_target(self, to: Any, kind: str) -> Agent | None:
        """The control API's ``to``: a user name or phone number logged in to ``kind``, or None."""
        if to is None or to == "":
            return None
        if not isinstance(to, str):
            raise invalid("to", "must be a user name or null")
        agent = self.core.agents.get(to) or self.core.agents_by_phone.get(to)
        if agent is None:
            raise GwsError(SC_NOT_FOUND, f"No user {to}")
        if not self.channels.logged_in(agent, kind):
            raise GwsError(SC_INVALID, f"{agent.name} is not logged in to the {kind} channel")
        return agent

    # ================================================================== resources and notifications

    def path(self, ix: Interaction) -> str:
        if ix.kind == "openmedia":
            return f"/openmedia/{ix.media_type}/{ix.id}"
        return f"/{KINDS[ix.kind].collection}/{ix.id}"

    def uri(self, ix: Interaction) -> str:
        if ix.kind == "openmedia":   # plural media type, no /me (L24237)
            return f"{self.core.api}/openmedia/{ix.media_type}s/{ix.id}"
        return f"{self.core.api}/{KINDS[ix.kind].uri_segment}/{ix.id}"

    def resource(self, ix: Interaction, agent: Agent | None, *, state: str | None = None,
                 party: ChatParty | None = None) -> dict:
        return self.kinds[ix.kind].resource(ix, agent, state=state, party=party)

    def emit_ix(self, ix: Interaction, agent: Agent, notification_type: str, *, ref: int | None = None,
                state: str | None = None, error: str | None = None) -> None:
        kind = KINDS[ix.kind]
        data: dict = {kind.key: self.resource(ix, agent, state=state)}
        if ref is not None:
            data["referenceId"] = ref
        if error is not None:
            data["errorMessage"] = error
        data["notificationType"] = notification_type
        data["messageType"] = kind.message_type
        self.core.emit(agent.name, kind.channel, data)

    def snapshot(self) -> tuple[list[dict], list[str]]:
        """(interactions, waiting ids) for the control API's state snapshot."""
        return [self._snapshot_interaction(ix) for ix in self.interactions.values()], [ix.id for ix in self.waiting]

    def _snapshot_interaction(self, ix: Interaction) -> dict:
        out = {"id": ix.id, "kind": ix.kind, "state": ix.state, "direction": ix.direction,
               "owner": ix.owner.name if ix.owner else None, "workbin": ix.workbin,
               "userData": dict(ix.user_data)}
        self.kinds[ix.kind].snapshot(ix, out)
        if ix.media_type:
            out["mediaType"] = ix.media_type
        return out

    # ================================================================== time

    def wall(self, t: float) -> float:
        return EPOCH + (t - self._t0)

    def iso(self, t: float, sep: str = " ") -> str:
        """``2024-01-01 00:00:05.250+0000`` (receivedDate) or with ``T`` (chat timestamps)."""
        wall = self.wall(t)
        dt = datetime.fromtimestamp(int(wall), tz=timezone.utc)
        millis = int(round((wall - int(wall)) * 1000)) % 1000
        return dt.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + f".{millis:03d}+0000"


def apply_properties(ix: Interaction, op: str, body: Mapping[str, Any]) -> None:
    """SetDisposition, AddComment, Attach/Update/DeleteUserData (validated before any change)."""
    if op == "SetDisposition":
        disposition = string_param(body, "disposition")
        key = string_param(body, "dispositionKey", required=False) or DEFAULT_DISPOSITION_KEY
        ix.user_data[key] = disposition
    elif op == "AddComment":
        ix.comment = string_param(body, "comment")
    elif op in ("AttachUserData", "UpdateUserData"):
        ix.user_data.update(user_data_param(body))
    elif op == "DeleteUserData":
        for key in keys_param(body):
            ix.user_data.pop(key, None)


def singular(media: str) -> str:
    """``chats`` -> ``chat``, ``emails`` -> ``email``, ``promotions`` -> ``promotion``."""
    media = str(media)
    if media in ("interactions", "interaction"):
        return "openmedia"
    return media[:-1] if media.endswith("s") and media not in ("openmedia",) else media
