"""Owned interactions (emails, workitems, open media): one agent works an item at a time.

Shared core of emails.py and workitems.py: the :class:`~interactions.KindHandler`
answers for owned items, POST dispatch checked against the kind's state table
(states.py), Create, and the operations both kinds have (Accept, Reject, Complete,
Transfer, SetInFocus, properties). A kind adds its own operations and resource.
"""

from __future__ import annotations

from typing import Callable, Mapping

from gwsreplay.sim.model.agents import Agent
from gwsreplay.sim.model.channels import MediaChannels
from gwsreplay.sim.model.core import Core
from gwsreplay.sim.model.errors import (
    OPERATION_FAILED, SC_INVALID, SC_OK, GwsError, invalid, missing, not_valid_in_state, unsupported,
)
from gwsreplay.sim.model.interactions import KINDS, ChatParty, Desk, Interaction, apply_properties
from gwsreplay.sim.model.requests import MEDIA_ALIASES, handler_for, operation_name, queue_param, string_param
from gwsreplay.sim.model.states import COMPOSING, IN_WORKBIN, INVITED, PROCESSING, QUEUED, StateTable

#: Operations every owned kind has: operationName -> method name.
OWNED_OPERATIONS = {
    "Accept": "_item_accept", "Reject": "_item_reject", "Complete": "_item_complete",
    "Transfer": "_item_transfer", "SetInFocus": "_item_in_focus",
    "AttachUserData": "_item_properties", "UpdateUserData": "_item_properties",
    "DeleteUserData": "_item_properties",
}


class OwnedItems:
    """Base of an owned kind; subclasses set ``operations`` and ``table`` and render the resource."""

    operations: Mapping[str, str] = OWNED_OPERATIONS
    #: Answers to POST /me/<kind>/{id} carry the referenceId (Workitem/Open Media, L35848, L24226).
    reply_reference = True

    def __init__(self, core: Core, channels: MediaChannels, desk: Desk):
        self.core = core
        self.channels = channels
        self.desk = desk

    def table(self, ix: Interaction) -> StateTable:
        raise NotImplementedError

    def guards(self, ix: Interaction) -> tuple[str, ...]:
        return ()

    def capabilities(self, ix: Interaction, state: str | None = None) -> list[str]:
        return self.table(ix).capabilities(state or ix.state, self.guards(ix))

    # ================================================================== KindHandler

    def offer(self, ix: Interaction, agent: Agent, *, role: str = "owner", inviter: ChatParty | None = None,
              ref: int | None = None) -> None:
        ix.owner = agent
        ix.state = INVITED
        self.desk.emit_ix(ix, agent, "StatusChange")

    def requeue(self, ix: Interaction) -> None:
        ix.owner, ix.state = None, QUEUED

    def holds(self, ix: Interaction, agent: Agent) -> bool:
        return ix.owner is agent and ix.state in (INVITED, PROCESSING, COMPOSING)

    def counts(self, ix: Interaction, agent: Agent) -> bool:
        return ix.owner is agent and ix.state in (INVITED, PROCESSING)

    def check_parkable(self, ix: Interaction, agent: Agent) -> None:
        if ix.owner is not agent or ix.state not in (PROCESSING, COMPOSING):
            raise GwsError(SC_INVALID, f"Interaction {ix.id} is not being handled by {agent.name}")

    def park(self, ix: Interaction, agent: Agent, ref: int) -> None:
        ix.resume_state = ix.state
        ix.state = IN_WORKBIN
        ix.owner = None
        self.desk.emit_ix(ix, agent, "StatusChange", ref=ref)

    def unpark(self, ix: Interaction, agent: Agent, ref: int, nickname: str | None) -> None:
        ix.owner = agent
        ix.state = ix.resume_state or PROCESSING
        self.desk.emit_ix(ix, agent, "StatusChange", ref=ref)

    def snapshot(self, ix: Interaction, out: dict) -> None:
        pass

    # ================================================================== Create

    def post_create(self, kind: str) -> Callable:
        """POST /me/emails, /me/workitems, /me/openmedia/{mediaType}: Create."""
        def handler(agent, params, query, body):
            op = operation_name(body, MEDIA_ALIASES)
            if op != "Create":
                raise unsupported(op)
            self.channels.require_services(kind)
            if not self.channels.logged_in(agent, kind):
                raise GwsError(SC_INVALID, f"The agent is not logged in to the {kind} channel")
            queue_param(body)
            parent = string_param(body, "parentId", required=False)
            user_data = body.get("userData")
            if user_data is not None and not isinstance(user_data, Mapping):
                raise invalid("userData", "must be a JSON object")
            ref = self.desk.next_ref(agent)
            ix = self.desk.new_interaction(kind, direction="Outbound")
            ix.owner, ix.parent_id = agent, parent
            ix.user_data = dict(user_data or {})
            self.created(ix, params, parent)
            self.desk.emit_ix(ix, agent, "StatusChange", ref=ref)
            out = {"statusCode": SC_OK}
            if self.reply_reference:
                out["referenceId"] = ref
            return out
        return handler

    def created(self, ix: Interaction, params: dict, parent: str | None) -> None:
        """Set the state (and kind's fields) of an interaction the agent just created."""
        ix.state = PROCESSING

    # ================================================================== POST /me/<kind>/{id}

    def post_owned(self, agent, kind, params, body):
        op = operation_name(body, MEDIA_ALIASES)
        handler = handler_for(op, self.operations, self)
        ix = self.desk.my_interaction(agent, kind, params["ix_id"], params.get("media_type"))
        self.channels.require_services(kind)
        caps = self.capabilities(ix)
        ref = self.desk.next_ref(agent)
        out = {"statusCode": SC_OK}
        if self.reply_reference:
            out["referenceId"] = ref
        if op not in caps:    # Interaction Server refuses: an Error notification (L24606)
            raise not_valid_in_state(op, f"{KINDS[kind].key} {ix.id}", ix.state, caps, answer=out,
                                     notify=lambda: self.desk.emit_ix(ix, agent, "Error", ref=ref,
                                                                      error=OPERATION_FAILED))
        handler(ix, agent, op, body, ref)
        return out

    def _next_state(self, ix: Interaction, op: str) -> str:
        return self.table(ix).next(ix.state, op, self.guards(ix))

    def _item_accept(self, ix, agent, op, body, ref):
        # a transferred draft comes back to Composing; everything else is worked in Processing
        ix.state = self._next_state(ix, op)
        self.desk.emit_ix(ix, agent, "StatusChange", ref=ref)

    def _item_reject(self, ix, agent, op, body, ref):
        self.desk.emit_ix(ix, agent, "StatusChange", ref=ref, state=self._next_state(ix, op))
        ix.owner, ix.state = None, QUEUED
        ix.rejected_by.add(agent.name)
        self.desk.route(ix)

    def _item_complete(self, ix, agent, op, body, ref):
        string_param(body, "queueName", required=False)
        ix.state = self._next_state(ix, op)
        self.desk.emit_ix(ix, agent, "StatusChange", ref=ref)
        self.desk.finish(ix)

    def _item_transfer(self, ix, agent, op, body, ref):
        target = self.desk.resolve_user(body, "userUri" if ix.kind == "email" else "targetUri", "targetUri",
                                        "targetPath")
        queue = string_param(body, "queueName", required=False)
        if target is None and queue is None:
            raise missing("userUri" if ix.kind == "email" else "targetUri")
        if target is not None:
            if target is agent:
                raise invalid("targetUri", "cannot transfer to oneself")
            if not self.channels.logged_in(target, ix.kind):
                raise invalid("targetUri", f"{target.name} is not logged in to the {ix.kind} channel")
        # the sender sees it Completed (media.md)
        self.desk.emit_ix(ix, agent, "StatusChange", ref=ref, state=self._next_state(ix, op))
        ix.owner = None
        if target is not None:
            self.desk.offer(ix, target)
        else:
            self.desk.route(ix, exclude=(agent,))

    def _item_in_focus(self, ix, agent, op, body, ref):
        if not isinstance(body.get("inFocus", True), (bool, str)):
            raise invalid("inFocus", "must be true or false")

    def _item_properties(self, ix, agent, op, body, ref):
        apply_properties(ix, op, body)
        self.desk.emit_ix(ix, agent, "PropertiesUpdated", ref=ref)
