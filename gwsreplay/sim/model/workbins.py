"""Workbins: each agent's personal bins where interactions wait, and their subscribers.

Any kind of interaction can be parked (AddX) and pulled back (PullX); what that
means for the interaction is its kind's handler (``Desk.kinds``: chats.py, items.py),
so this module knows no channel. ``L<n>`` = a line of ``gws-8.6-api-reference.txt``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from gwsreplay.core.uris import resource_id
from gwsreplay.sim.model.agents import Agent
from gwsreplay.sim.model.channels import MediaChannels
from gwsreplay.sim.model.core import Core
from gwsreplay.sim.model.errors import (
    SC_NOT_FOUND,
    SC_OK,
    GwsError,
    invalid,
    missing,
    unsupported,
)
from gwsreplay.sim.model.interactions import KINDS, Desk, Interaction, singular
from gwsreplay.sim.model.requests import (
    MEDIA_ALIASES,
    operation_name,
    project,
    split,
    string_param,
)
from gwsreplay.sim.model.states import IN_WORKBIN

CH_WORKBINS = "/v2/me/workbins"

# Personal workbins every agent gets, in this order (names from the GetWorkbins samples).
AGENT_WORKBINS = (
    ("email-draft-wb", "My Draft E-mails"),
    ("email-in-progress-wb", "My Inbound E-mails in Progress"),
    ("workitem-in-progress-wb", "My Workitems in Progress"),
    ("chat-in-progress-wb", "My Chats in Progress"),
)
WORKBIN_OPERATIONS = ("Subscribe", "Unsubscribe", "RequestStats", "AddInteraction", "PullInteraction") + \
    tuple(k.add_op for k in KINDS.values()) + tuple(k.pull_op for k in KINDS.values())


@dataclass(eq=False)
class Workbin:
    id: str
    name: str
    display_name: str
    owner: Agent
    type: str = "Agent"


class Workbins:
    def __init__(self, core: Core, channels: MediaChannels, desk: Desk):
        self.core = core
        self.channels = channels
        self.desk = desk
        self.workbins: dict[str, Workbin] = {}
        self.workbins_of: dict[str, list[Workbin]] = {}
        for agent in core.agents.values():
            self.workbins_of[agent.name] = []
            for name, display in AGENT_WORKBINS:
                wb = Workbin(desk.ids.uuid(), name, display, agent)
                self.workbins[wb.id] = wb
                self.workbins_of[agent.name].append(wb)
        self.subscribers: dict[str, list[str]] = {}      # workbin id -> agent names (subscription order)

    def routes(self) -> tuple:
        return (
            ("GET", r"/me/workbins", self._get_workbins(mine=True)),
            ("POST", r"/me/workbins", self._post_workbins),
            ("GET", r"/workbins", self._get_workbins(mine=False)),
            ("POST", r"/workbins", self._post_workbins),
            ("GET", r"/(?:me/)?workbins/(?P<wb_id>[^/]+)", self._get_workbin),
            ("POST", r"/(?:me/)?workbins/(?P<wb_id>[^/]+)", self._post_workbin),
            ("GET", r"/(?:me/)?workbins/(?P<wb_id>[^/]+)/(?P<media>[^/]+)", self._get_workbin_media),
        )

    # ================================================================== GET

    def _get_workbins(self, *, mine: bool) -> Callable:
        def handler(agent, params, query, body):
            ids = split(query.get("workbinIds"))
            if ids:
                bins = {i: self._resource(self._workbin(i), query) for i in ids}
                return {"statusCode": SC_OK, "workbins": bins}
            bins = self.workbins_of[agent.name] if mine else list(self.workbins.values())
            if query.get("fields") or query.get("subresources"):
                return {"statusCode": SC_OK, "workbins": [self._resource(wb, query) for wb in bins]}
            paths = [f"/workbins/{wb.id}" for wb in bins]
            return {"statusCode": SC_OK, "paths": paths, "uris": [self.core.api + p for p in paths]}
        return handler

    def _get_workbin(self, agent, params, query, body):
        return {"statusCode": SC_OK, "workbin": self._resource(self._workbin(params["wb_id"]), query)}

    def _get_workbin_media(self, agent, params, query, body):
        wb = self._workbin(params["wb_id"])
        media = params["media"]
        kind = singular(media)
        if kind not in KINDS:
            raise GwsError(SC_NOT_FOUND, f"Unknown media type {media}")
        items = [ix for ix in self.items(wb) if ix.kind == kind]
        return {"statusCode": SC_OK,
                kind: [project(self.desk.resource(ix, None), query.get("fields")) for ix in items]}

    def _workbin(self, wb_id: str) -> Workbin:
        wb = self.workbins.get(wb_id)
        if wb is None:
            raise GwsError(SC_NOT_FOUND, f"Workbin {wb_id} not found")
        return wb

    def items(self, wb: Workbin) -> list[Interaction]:
        return [ix for ix in self.desk.interactions.values() if ix.workbin == wb.id]

    def _resource(self, wb: Workbin, query: Mapping) -> dict:
        out = {"workbinName": wb.name, "id": wb.id, "displayName": wb.display_name,
               "uri": f"{self.core.api}/workbins/{wb.id}", "type": wb.type}
        wanted = split(query.get("subresources"))
        if wanted:
            everything = "*" in wanted
            for kind in KINDS.values():
                if everything or kind.name in wanted or kind.workbin_key in wanted:
                    out[kind.workbin_key] = [self.desk.resource(ix, None) for ix in self.items(wb)
                                             if ix.kind == kind.name]
        return out

    # ================================================================== POST

    def _post_workbins(self, agent, params, query, body):
        """POST /me/workbins?workbinIds=a,b (or /workbins?...): Subscribe / Unsubscribe several."""
        op = operation_name(body, MEDIA_ALIASES)
        if op not in ("Subscribe", "Unsubscribe"):
            raise unsupported(op)
        ids = split(query.get("workbinIds"))
        if not ids:
            raise missing("workbinIds")
        bins = [self._workbin(i) for i in ids]
        self.channels.require_services("workitem")
        refs = {}
        for wb in bins:
            refs[wb.id] = self.desk.next_ref(agent)
            self._subscription(agent, wb, op, refs[wb.id])
        return {"statusCode": SC_OK, "referenceIds": refs}

    def _post_workbin(self, agent, params, query, body):
        wb = self._workbin(params["wb_id"])
        op = operation_name(body, MEDIA_ALIASES)
        if op not in WORKBIN_OPERATIONS:
            raise unsupported(op)
        self.channels.require_services("workitem")
        if op in ("Subscribe", "Unsubscribe"):
            ref = self.desk.next_ref(agent)
            self._subscription(agent, wb, op, ref)
        elif op == "RequestStats":
            ref = self.desk.next_ref(agent)
            items = self.items(wb)
            self.core.emit(agent.name, CH_WORKBINS, {
                "messageType": "WorkbinStatsMessage", "id": wb.id, "workbinType": wb.type,
                "workbinStats": {wb.id: {"NumberOfInteractions": len(items)}}, "referenceId": ref})
        elif op.startswith("Add"):
            ref = self._add(agent, wb, op, body)
        else:
            ref = self._pull(agent, wb, op, body)
        return {"statusCode": SC_OK, "referenceId": ref}

    def _subscription(self, agent: Agent, wb: Workbin, op: str, ref: int) -> None:
        names = self.subscribers.setdefault(wb.id, [])
        if op == "Subscribe" and agent.name not in names:
            names.append(agent.name)
        elif op == "Unsubscribe" and agent.name in names:
            names.remove(agent.name)
        data = {"stateResource": "Subscribed" if op == "Subscribe" else "Unsubscribed", "id": wb.id,
                "messageType": "WorkbinSubscriptionStateChangeMessage", "referenceId": ref}
        if wb.owner is not agent:
            data["workbinUserId"] = wb.owner.user_id
        self.core.emit(agent.name, CH_WORKBINS, data)

    @staticmethod
    def _op_kind(op: str) -> str | None:
        for kind in KINDS.values():
            if op in (kind.add_op, kind.pull_op):
                return kind.name
        return None

    def _add(self, agent: Agent, wb: Workbin, op: str, body: Any) -> int:
        ref_value = body.get("uri", body.get("id"))
        if ref_value is None:
            raise missing("uri")
        if not isinstance(ref_value, str) or not ref_value.strip("/"):
            raise invalid("uri", "must be an interaction URI or id")
        ix_id = resource_id(ref_value) or ""
        ix = self.desk.interactions.get(ix_id)
        kind = self._op_kind(op)
        if ix is None or (kind != "openmedia" and ix.kind != kind) or (kind == "openmedia" and op != "AddInteraction"
                                                                        and ix.kind != "openmedia"):
            raise GwsError(SC_NOT_FOUND, f"Interaction {ix_id} not found")
        handler = self.desk.kinds[ix.kind]
        handler.check_parkable(ix, agent)
        ref = self.desk.next_ref(agent)
        handler.park(ix, agent, ref)
        ix.state = IN_WORKBIN
        ix.workbin = wb.id
        ix.user_data.update({"Workbin": wb.name, "WorkbinAgentId": wb.owner.name})
        self._emit(wb, "ItemAdded", ix)
        return ref

    def _pull(self, agent: Agent, wb: Workbin, op: str, body: Any) -> int:
        ref_value = body.get("id", body.get("uri"))
        if ref_value is None:
            raise missing("id")
        if not isinstance(ref_value, str) or not ref_value.strip("/"):
            raise invalid("id", "must be an interaction id")
        ix_id = resource_id(ref_value) or ""
        ix = self.desk.interactions.get(ix_id)
        kind = self._op_kind(op)
        if ix is None or ix.workbin != wb.id or (kind != "openmedia" and ix.kind != kind):
            raise GwsError(SC_NOT_FOUND, f"Interaction {ix_id} is not in workbin {wb.id}")
        nickname = string_param(body, "nickname", required=False)
        ref = self.desk.next_ref(agent)
        ix.workbin = None
        self._emit(wb, "ItemRemoved", ix)
        self.desk.kinds[ix.kind].unpark(ix, agent, ref, nickname)
        return ref

    def _emit(self, wb: Workbin, action: str, ix: Interaction) -> None:
        for name in self.subscribers.get(wb.id, ()):
            self.core.emit(name, CH_WORKBINS, {
                "workbinAgentId": wb.owner.name, "workbinUserId": wb.owner.user_id,
                "messageType": "WorkbinStateChangeMessage",
                f"{KINDS[ix.kind].key}StateResourceV2": self.desk.resource(ix, None, state=IN_WORKBIN),
                "action": action, "id": wb.id})

    def snapshot(self) -> dict:
        return {wb.id: {"name": wb.name, "owner": wb.owner.name,
                        "items": [ix.id for ix in self.items(wb)],
                        "subscribers": list(self.subscribers.get(wb.id, ()))}
                for wb in self.workbins.values()}
