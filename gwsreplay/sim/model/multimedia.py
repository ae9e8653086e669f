"""The multimedia side of a node, composed: media channels, the interaction desk, chat,
email, workitems/open media, workbins and IM.

Part of the facade: it builds the channel modules on the shared core in the order
their ids are drawn (media services, then workbins) and answers the multimedia
control API (``/sim/v1/chats``, ``/emails``, ``/workitems``, ``/openmedia``), turning a
refusal into ``(http_status, body)`` as ``ContactCenter.rest`` does. Behaviour:
docs/media-model.md.
"""

from __future__ import annotations

from typing import Any

from gwsreplay.sim.model.channels import MediaChannels
from gwsreplay.sim.model.chats import Chats
from gwsreplay.sim.model.core import Core
from gwsreplay.sim.model.emails import DEFAULT_MAILBOX, Emails
from gwsreplay.sim.model.errors import GwsError
from gwsreplay.sim.model.ids import MediaIdGenerator
from gwsreplay.sim.model.im import InstantMessaging
from gwsreplay.sim.model.interactions import Desk, Interaction
from gwsreplay.sim.model.workbins import Workbin, Workbins
from gwsreplay.sim.model.workitems import Workitems


class Multimedia:
    """Everything non-voice of one simulated GWS node."""

    def __init__(self, core: Core, *, seed: int = 0, capacity: int = 3, mailbox: str = DEFAULT_MAILBOX,
                 ended_kept: int = 1000):
        self.core = core
        # Its own seeded stream, so that enabling multimedia never changes a voice id.
        self.ids = MediaIdGenerator(seed)
        self.channels = MediaChannels(core, self.ids)
        self.desk = Desk(core, self.channels, self.ids, capacity=capacity, ended_kept=ended_kept)
        self.workbins = Workbins(core, self.channels, self.desk)
        self.im = InstantMessaging(core, self.channels)
        self.chats = Chats(core, self.channels, self.desk)
        self.emails = Emails(core, self.channels, self.desk, mailbox=mailbox)
        self.workitems = Workitems(core, self.channels, self.desk)

    def routes(self) -> tuple:
        """(method, path regex, handler) below /api/v2."""
        return (self.im.routes() + self.chats.routes() + self.emails.routes() + self.workitems.routes()
                + self.workbins.routes())

    # ------------------------------------------------------------------ control API

    def inject_chat(self, from_: Any, to: Any = None, message: Any = None, user_data: Any = None,
                    subject: Any = None) -> tuple[int, dict]:
        """A customer starts a chat: routed to ``to`` (a user name) or to a Ready agent."""
        return self._answer(self.chats.inject_chat, from_, to, message, user_data, subject)

    def customer_message(self, chat_id: str, text: Any, kind: Any = "Text") -> tuple[int, dict]:
        """The customer types or sends a message (or leaves: ``kind="ParticipantLeft"``)."""
        return self._answer(self.chats.customer_message, chat_id, text, kind)

    def inject_email(self, from_: Any, to: Any = None, subject: Any = None, body: Any = None,
                     user_data: Any = None, mailbox: Any = None) -> tuple[int, dict]:
        """An inbound email arrives: routed to ``to`` (a user name) or to a Ready agent."""
        return self._answer(self.emails.inject_email, from_, to, subject, body, user_data, mailbox)

    def inject_workitem(self, to: Any = None, user_data: Any = None, media_type: Any = None) -> tuple[int, dict]:
        """A new workitem (or open-media interaction of ``media_type``) for ``to`` or a Ready agent."""
        return self._answer(self.workitems.inject_workitem, to, user_data, media_type)

    def _answer(self, fn, *args) -> tuple[int, dict]:
        try:
            return 200, fn(*args)
        except GwsError as err:
            return self.core.error(err)

    # ------------------------------------------------------------------ state, for tests and the snapshot

    @property
    def services(self) -> list[dict]:
        return self.channels.services

    @property
    def interactions(self) -> dict[str, Interaction]:
        return self.desk.interactions

    @property
    def ended(self) -> dict[str, Interaction]:
        return self.desk.ended

    @property
    def waiting(self) -> list[Interaction]:
        return self.desk.waiting

    @property
    def workbins_of(self) -> dict[str, list[Workbin]]:
        return self.workbins.workbins_of

    def snapshot(self) -> dict:
        interactions, waiting = self.desk.snapshot()
        return {
            "services": [dict(s) for s in self.channels.services],
            "channels": self.channels.snapshot(),
            "interactions": interactions,
            "waiting": waiting,
            "imSessions": self.im.snapshot(),
            "workbins": self.workbins.snapshot(),
        }
