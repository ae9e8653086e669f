"""The workitem and open-media channels: items of work an agent accepts, works and completes.

Owned kinds (items.py) with their state tables (states.WORKITEM, states.OPENMEDIA).
An open-media interaction is a workitem of a named media type (``promotion``...)
with the UCS content operations; both come from the control API
(``inject_workitem``) or from the agent's Create.
"""

from __future__ import annotations

import re
from typing import Any

from gwsreplay.sim.model.channels import MediaChannels
from gwsreplay.sim.model.core import Core
from gwsreplay.sim.model.errors import SC_OK, invalid
from gwsreplay.sim.model.interactions import Desk, Interaction, singular
from gwsreplay.sim.model.items import OWNED_OPERATIONS, OwnedItems
from gwsreplay.sim.model.requests import optional_user_data, string_param
from gwsreplay.sim.model.states import OPENMEDIA, PROCESSING, WORKITEM, StateTable

_MEDIA_TYPE = re.compile(r"[A-Za-z0-9_-]+")


class Workitems(OwnedItems):
    """Both kinds, ``workitem`` and ``openmedia``, one handler."""

    operations = {**OWNED_OPERATIONS, "AddContent": "_item_content", "GetContent": "_item_content"}

    def __init__(self, core: Core, channels: MediaChannels, desk: Desk):
        super().__init__(core, channels, desk)
        desk.kinds["workitem"] = self
        desk.kinds["openmedia"] = self

    def routes(self) -> tuple:
        return (
            ("GET", r"/me/workitems", self.desk.get_collection("workitem")),
            ("POST", r"/me/workitems", self.post_create("workitem")),
            ("GET", r"/me/workitems/(?P<ix_id>[^/]+)", self.desk.get_one("workitem")),
            ("POST", r"/me/workitems/(?P<ix_id>[^/]+)", self._post_item),
            ("GET", r"/me/openmedia/(?P<media_type>[^/]+)", self.desk.get_collection("openmedia")),
            ("POST", r"/me/openmedia/(?P<media_type>[^/]+)", self.post_create("openmedia")),
            ("GET", r"/me/openmedia/(?P<media_type>[^/]+)/(?P<ix_id>[^/]+)", self.desk.get_one("openmedia")),
            ("POST", r"/me/openmedia/(?P<media_type>[^/]+)/(?P<ix_id>[^/]+)", self._post_item),
        )

    def table(self, ix: Interaction) -> StateTable:
        return OPENMEDIA if ix.kind == "openmedia" else WORKITEM

    # ================================================================== control API

    def inject_workitem(self, to: Any = None, user_data: Any = None, media_type: Any = None) -> dict:
        """A new workitem (or open-media interaction of ``media_type``) for ``to`` or a Ready agent."""
        if media_type is not None and (not isinstance(media_type, str) or not _MEDIA_TYPE.fullmatch(media_type)):
            raise invalid("mediaType", "must be a media type name")
        kind = "openmedia" if media_type and media_type != "workitem" else "workitem"
        target = self.desk.inject_target(to, kind)
        user_data = optional_user_data(user_data)
        self.channels.require_services(kind)
        ix = self.desk.new_interaction(kind)
        ix.media_type = media_type if kind == "openmedia" else None
        ix.user_data = {"RTenant": "Environment", "ServiceType": "default", **user_data}
        self.desk.deliver(ix, target)
        return {"statusCode": SC_OK, "id": ix.id}

    # ================================================================== agent side

    def created(self, ix: Interaction, params: dict, parent: str | None) -> None:
        ix.state = PROCESSING
        if ix.kind == "openmedia":
            ix.media_type = singular(params["media_type"])

    def _post_item(self, agent, params, query, body):
        kind = "openmedia" if "media_type" in params else "workitem"
        return self.post_owned(agent, kind, params, body)

    def _item_content(self, ix, agent, op, body, ref):
        string_param(body, "threadId", required=False)
        ix.ucs_content = "Available"
        self.desk.emit_ix(ix, agent, "StatusChange", ref=ref)

    # ================================================================== resource

    def resource(self, ix: Interaction, agent, *, state: str | None = None, party=None) -> dict:
        state = state or ix.state
        out: dict = {"userData": dict(ix.user_data), "receivedDate": self.desk.iso(ix.received),
                     "uri": self.desk.uri(ix), "capabilities": self.capabilities(ix, state), "state": state}
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
