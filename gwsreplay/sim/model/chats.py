"""The chat channel: a customer chats with one or more agents, each with its own view.

Each agent in a chat is a :class:`~interactions.ChatParty` whose state follows the
chat state table (states.CHAT): Invited -> Chatting -> LeftChat/Completed. The
customer's side comes from the control API (``inject_chat``, ``customer_message``).
Behaviour and choices: ``docs/media-model.md``; ``L<n>`` = a line of
``gws-8.6-api-reference.txt``; ``media.md`` = ``/work/shared/gws-reference/media.md``.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from gwsreplay.sim.model.agents import Agent
from gwsreplay.sim.model.channels import MediaChannels
from gwsreplay.sim.model.core import Core
from gwsreplay.sim.model.errors import (
    OPERATION_FAILED, SC_INVALID, SC_NOT_FOUND, SC_OK, GwsError, invalid, missing, not_valid_in_state,
)
from gwsreplay.sim.model.interactions import ChatParty, Desk, Interaction, apply_properties
from gwsreplay.sim.model.requests import MEDIA_ALIASES, handler_for, operation_name, optional_user_data, string_param
from gwsreplay.sim.model.states import CHAT, CHATTING, COMPLETED, IN_WORKBIN, INVITED, LEFT_CHAT, QUEUED, REVOKED

CH_CHATS = "/v2/me/chats"
_NICK = re.compile(r"\S")

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
#: Chat operations whose HTTP answer carries the referenceId (samples L13657, L13834, L14006).
CHAT_REPLY_REFERENCE = ("Invite", "Consult", "CancelConsult")


class Chats:
    def __init__(self, core: Core, channels: MediaChannels, desk: Desk):
        self.core = core
        self.channels = channels
        self.desk = desk
        desk.kinds["chat"] = self

    def routes(self) -> tuple:
        return (
            ("GET", r"/me/chats", self.desk.get_collection("chat")),
            ("GET", r"/me/chats/(?P<ix_id>[^/]+)", self.desk.get_one("chat")),
            ("POST", r"/me/chats/(?P<ix_id>[^/]+)", self._post_chat),
            ("GET", r"/me/chats/(?P<ix_id>[^/]+)/messages", self._get_chat_messages),
        )

    # ================================================================== capabilities

    @staticmethod
    def guards(ix: Interaction, party: ChatParty) -> set[str]:
        """The context the chat state table's guard groups ask about (states.CHAT)."""
        guards = set()
        others = [p for p in ix.chatting() if p is not party]
        if others:
            guards.add("with_agents")
            if party.visibility == "All" and any(p.visibility == "All" for p in others):
                guards.add("conference")
        if any(p.inviter is party and p.role == "consult" and p.live for p in ix.parties):
            guards.add("consulting")
        return guards

    def capabilities(self, ix: Interaction, party: ChatParty | None) -> list[str]:
        if party is None:
            return []
        return CHAT.capabilities(party.state, self.guards(ix, party))

    # ================================================================== control API (the customer)

    def inject_chat(self, from_: Any, to: Any = None, message: Any = None, user_data: Any = None,
                    subject: Any = None) -> dict:
        """A customer starts a chat: routed to ``to`` (a user name) or to a Ready agent."""
        nickname = from_.get("nickname") if isinstance(from_, Mapping) else from_
        if not isinstance(nickname, str) or not _NICK.search(nickname):
            raise missing("from.nickname")
        target = self.desk.inject_target(to, "chat")
        user_data = optional_user_data(user_data)
        if message is not None and not isinstance(message, str):
            raise invalid("message", "must be a string")
        if subject is not None and not isinstance(subject, str):
            raise invalid("subject", "must be a string")
        self.channels.require_services("chat")
        ix = self.desk.new_interaction("chat")
        ix.customer = {"nickname": nickname, "type": "Customer", "participantId": self.desk.ids.participant_id()}
        ix.customer_present = True
        ix.user_data = {"Subject": subject or "Chat", "FirstName": nickname, **user_data}
        self._log(ix, "ParticipantJoined", ix.customer)
        if message:
            self._log(ix, "Text", ix.customer, text=message)
        self.desk.deliver(ix, target)
        return {"statusCode": SC_OK, "id": ix.id}

    def customer_message(self, chat_id: str, text: Any, kind: Any = "Text") -> dict:
        """The customer types or sends a message (or leaves: ``kind="ParticipantLeft"``)."""
        ix = self.desk.interactions.get(chat_id)
        if ix is None or ix.kind != "chat":
            raise GwsError(SC_NOT_FOUND, f"Chat {chat_id} not found")
        kind = kind or "Text"
        if kind not in ("Text", "TypingStarted", "TypingStopped", "ParticipantLeft"):
            raise invalid("type", "must be Text, TypingStarted, TypingStopped or ParticipantLeft")
        if kind == "Text" and (not isinstance(text, str) or text == ""):
            raise missing("text")
        if not ix.customer_present:
            raise GwsError(SC_INVALID, f"The customer has left chat {chat_id}")
        self.channels.require_services("chat")
        fields = {"text": text} if kind == "Text" else {}
        entry = self._log(ix, kind, ix.customer, **fields)
        if kind == "ParticipantLeft":
            ix.customer_present = False
            for party in ix.chatting():
                self._emit_chat(party, "ParticipantsUpdated")
        self._emit_log(ix, [entry])
        return {"statusCode": SC_OK}

    # ================================================================== KindHandler (interactions.py)

    def offer(self, ix: Interaction, agent: Agent, *, role: str = "owner", inviter: ChatParty | None = None,
              ref: int | None = None) -> None:
        party = ChatParty(agent, INVITED, role=role, visibility="Agents" if role == "consult" else "All",
                          inviter=inviter, invite_ref=ref)
        ix.parties.append(party)
        if ix.state == QUEUED:
            ix.state = "Active"
        self._emit_chat(party, "StatusChange")

    def requeue(self, ix: Interaction) -> None:
        if not ix.live_parties():
            ix.state = QUEUED

    def holds(self, ix: Interaction, agent: Agent) -> bool:
        return ix.party(agent) is not None

    def counts(self, ix: Interaction, agent: Agent) -> bool:
        return ix.party(agent) is not None

    def check_parkable(self, ix: Interaction, agent: Agent) -> None:
        party = ix.party(agent)
        if party is None or party.state not in (CHATTING, LEFT_CHAT):
            raise GwsError(SC_INVALID, f"Chat {ix.id} is not being handled by {agent.name}")

    def park(self, ix: Interaction, agent: Agent, ref: int) -> None:
        party = ix.party(agent)
        entry = self._log(ix, "ParticipantLeft", self._from(party)) if party.state == CHATTING else None
        party.state = IN_WORKBIN
        self._emit_chat(party, "StatusChange", ref)
        ix.parties.remove(party)
        if entry:
            self._part(ix, party, [entry])
        ix.resume_state = CHATTING

    def unpark(self, ix: Interaction, agent: Agent, ref: int, nickname: str | None) -> None:
        ix.state = "Active"
        party = ChatParty(agent, CHATTING, nickname=nickname or agent.spec.first_name,
                          participant_id=self.desk.ids.participant_id())
        ix.parties.append(party)
        self._log(ix, "ParticipantJoined", self._from(party))
        self._emit_chat(party, "StatusChange", ref)
        self._emit_log(ix, [e for e in ix.log if self._visible(e, party)], only=[party])

    def snapshot(self, ix: Interaction, out: dict) -> None:
        out["parties"] = [{"userName": p.agent.name, "state": p.state, "role": p.role} for p in ix.parties]
        out["customerPresent"] = ix.customer_present
        out["messages"] = [dict(e) for e in ix.log]

    # ================================================================== agent side

    def _post_chat(self, agent, params, query, body):
        op = operation_name(body, MEDIA_ALIASES)
        handler = handler_for(op, CHAT_OPERATIONS, self)
        ix = self.desk.my_interaction(agent, "chat", params["ix_id"])
        party = ix.party(agent)
        self.channels.require_services("chat")
        caps = self.capabilities(ix, party)
        ref = self.desk.next_ref(agent)
        out = {"statusCode": SC_OK}
        if op in CHAT_REPLY_REFERENCE:
            out["referenceId"] = ref
        if op not in caps:    # Interaction Server refuses: an Error notification (L13752)
            raise not_valid_in_state(op, f"chat {ix.id}", party.state, caps, answer=out,
                                     notify=lambda: self._emit_chat(party, "Error", ref, error=OPERATION_FAILED))
        handler(ix, party, op, body, ref)
        return out

    def _chat_accept(self, ix, party, op, body, ref):
        nickname = string_param(body, "nickname")
        party.state = CHAT.next(party.state, op, self.guards(ix, party))
        party.nickname = nickname
        party.participant_id = self.desk.ids.participant_id()
        entry = self._log(ix, "ParticipantJoined", self._from(party), visibility=party.visibility)
        self._emit_chat(party, "StatusChange", ref)
        self._emit_chat(party, "ParticipantsUpdated", ref)
        self._emit_log(ix, [e for e in ix.log if self._visible(e, party)], only=[party])
        others = [p for p in ix.chatting() if p is not party]
        for other in others:
            self._emit_chat(other, "ParticipantsUpdated")
        self._emit_log(ix, [entry], only=others)

    def _chat_reject(self, ix, party, op, body, ref):
        party.state = CHAT.next(party.state, op, self.guards(ix, party))
        self._emit_chat(party, "StatusChange", ref)
        ix.parties.remove(party)
        if party.role == "owner":
            ix.rejected_by.add(party.agent.name)
            if not ix.live_parties():
                self.desk.route(ix)
        elif party.inviter is not None and party.inviter.state == CHATTING:
            self._emit_chat(party.inviter, "Error", party.invite_ref,
                            error=f"{party.agent.name} rejected the invitation")

    def _chat_send(self, ix, party, op, body, ref):
        entry_type, visibility, param = CHAT_SENDS[op]
        fields = {}
        if param is not None:   # Notice text goes into the text field (Message Types table, L11540)
            fields["url" if param == "url" else "text"] = string_param(body, param)
        for name in ("messageType", "treatAs"):
            if body.get(name) is not None and not isinstance(body.get(name), str):
                raise invalid(name, "must be a string")
        entry = self._log(ix, entry_type, self._from(party), visibility=visibility, **fields)
        self._emit_log(ix, [entry])

    def _chat_in_focus(self, ix, party, op, body, ref):
        if not isinstance(body.get("inFocus", True), (bool, str)):
            raise invalid("inFocus", "must be true or false")
        # No notification is documented for SetInFocus (media.md §15.9).

    def _chat_properties(self, ix, party, op, body, ref):
        apply_properties(ix, op, body)
        self._emit_chat(party, "PropertiesUpdated", ref)
        for other in ix.live_parties():
            if other is not party and other.state != INVITED:
                self._emit_chat(other, "PropertiesUpdated")

    def _chat_text_first(self, ix, party, body) -> list[dict]:
        """Leave/Complete/Transfer take an optional goodbye ``text``."""
        text = string_param(body, "text", required=False)
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
        party.state = CHAT.next(party.state, op, self.guards(ix, party))   # L11951 vs L11972
        self._emit_chat(party, "StatusChange", ref)
        if party.state == COMPLETED:      # in a conference: the others go on
            ix.parties.remove(party)
        self._part(ix, party, entries)
        self._revoke_invites_of(ix, party)

    def _chat_complete(self, ix, party, op, body, ref):
        entries = self._chat_text_first(ix, party, body)
        if party.state == CHATTING:
            entries.append(self._log(ix, "ParticipantLeft", self._from(party), visibility=party.visibility))
        party.state = CHAT.next(party.state, op, self.guards(ix, party))
        self._emit_chat(party, "StatusChange", ref)
        ix.parties.remove(party)
        self._part(ix, party, entries)
        self._revoke_invites_of(ix, party)
        if not ix.live_parties():
            if ix.customer_present:   # "Ends customer session if not already ended"
                ix.customer_present = False
                self._log(ix, "ParticipantLeft", ix.customer)
            self.desk.finish(ix)

    def _chat_transfer(self, ix, party, op, body, ref):
        target = self.desk.resolve_user(body, "targetUri", "targetPath")
        queue = string_param(body, "queueName", required=False)
        if target is None and queue is None:
            raise missing("targetUri")
        if target is not None:
            self._check_target(ix, party, target)
        entries = self._chat_text_first(ix, party, body)
        entries.append(self._log(ix, "ParticipantLeft", self._from(party), visibility=party.visibility))
        party.state = CHAT.next(party.state, op, self.guards(ix, party))
        self._emit_chat(party, "StatusChange", ref)
        ix.parties.remove(party)
        self._part(ix, party, entries)
        self._revoke_invites_of(ix, party)
        if target is not None:
            self.desk.offer(ix, target)
        else:
            ix.rejected_by.discard(party.agent.name)
            self.desk.route(ix, exclude=(party.agent,))

    def _check_target(self, ix: Interaction, party: ChatParty, target: Agent) -> None:
        if target is party.agent or ix.party(target) is not None:
            raise invalid("targetUri", f"{target.name} is already in chat {ix.id}")
        if not self.channels.logged_in(target, "chat"):
            raise invalid("targetUri", f"{target.name} is not logged in to the chat channel")

    def _chat_invite(self, ix, party, op, body, ref):
        target = self.desk.resolve_user(body, "targetUri", "targetPath")
        if target is None:
            raise missing("targetUri")
        self._check_target(ix, party, target)
        self.desk.offer(ix, target, role="conference" if op == "Invite" else "consult", inviter=party, ref=ref)

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
        target = self.desk.resolve_user(body, "targetUri", "targetPath")
        if target is None:
            raise missing("targetUri")
        removed = ix.party(target)
        if removed is None or removed is party or removed.state != CHATTING:
            raise invalid("targetUri", f"{target.name} is not chatting in {ix.id}")
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
        ix = self.desk.my_interaction(agent, "chat", params["ix_id"])
        party = ix.party(agent)
        entries = [e for e in ix.log if self._visible(e, party)]
        try:
            start = int(query.get("startIndex", 1))
            count = int(query["count"]) if "count" in query else None
        except (TypeError, ValueError):
            raise invalid("startIndex", "startIndex and count must be integers") from None
        entries = [e for e in entries if e["index"] >= start]
        if count is not None:
            entries = entries[:max(count, 0)]
        return {"statusCode": SC_OK, "messages": [dict(e) for e in entries]}

    # ================================================================== transcript

    def _log(self, ix: Interaction, entry_type: str, sender: dict | None, *, visibility: str = "All",
             **fields: Any) -> dict:
        now = self.core.scheduler.now()
        entry: dict = {"index": len(ix.log) + 1, "type": entry_type}
        if sender is not None:
            entry["from"] = dict(sender)
        entry.update(fields)
        entry["visibility"] = visibility
        entry["timestamp"] = self.desk.iso(now, sep="T")
        entry["timestampSeconds"] = int(self.desk.wall(now) * 1000)   # milliseconds, as the samples
        ix.log.append(entry)
        return entry

    @staticmethod
    def _from(party: ChatParty) -> dict:
        return {"nickname": party.nickname, "type": "Agent", "participantId": party.participant_id}

    @staticmethod
    def _visible(entry: dict, party: ChatParty | None) -> bool:
        return entry.get("visibility") in ("All", "Agents")    # agents see everything but Supervisors

    # ================================================================== resource and notifications

    def resource(self, ix: Interaction, agent: Agent | None, *, state: str | None = None,
                 party: ChatParty | None = None) -> dict:
        party = party or (ix.party(agent) if agent is not None else None)
        state = state or (party.state if party is not None else ix.state)
        ended = state in (COMPLETED, REVOKED, IN_WORKBIN)
        out: dict = {"state": state}
        if state != COMPLETED:   # Completed chats carry no capabilities (L11817, L11973, L12042)
            out["capabilities"] = self.capabilities(ix, party) if party is not None and not ended else []
        out.update({"id": ix.id, "uri": self.desk.uri(ix)})
        participants = []
        if not ended:
            if ix.customer_present and ix.customer:
                participants.append(dict(ix.customer))
            for p in ix.chatting():
                participants.append(self._from(p))
        out["participants"] = participants
        out["userData"] = dict(ix.user_data)
        out["chatType"] = ix.direction
        out["receivedDate"] = self.desk.iso(ix.received)
        if ix.comment:
            out["comment"] = ix.comment
        return out

    def _emit_chat(self, party: ChatParty, notification_type: str, ref: int | None = None, *,
                   error: str | None = None) -> None:
        data: dict = {"messageType": "ChatStateChangeMessage"}
        if ref is not None:
            data["referenceId"] = ref
        data["notificationType"] = notification_type
        if error is not None:
            data["errorMessage"] = error
        data["chat"] = self.resource(self._ix_of(party), None, party=party)
        self.core.emit(party.agent.name, CH_CHATS, data)

    def _ix_of(self, party: ChatParty) -> Interaction:
        for ix in list(self.desk.interactions.values()) + list(self.desk.ended.values()):
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
                self.core.emit(party.agent.name, CH_CHATS, {
                    "messageType": "MessageLogUpdated", "notificationType": "NewMessages",
                    "messages": visible, "chatUri": self.desk.uri(ix)})
