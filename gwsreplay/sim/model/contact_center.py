"""One simulated GWS 8.6 node with its T-Server, without I/O (sans-IO): the facade.

The HTTP app hands every ``/api/v2`` request (except notifications) to
:meth:`ContactCenter.rest` once auth, cookies and CSRF are done; the model answers
``(http_status, body)`` and pushes CometD notifications through ``emit``. Time comes
from a :class:`~core.Scheduler` (the asyncio loop in the app, a manual clock in tests).

This module only composes. The shared core (core.py, agents.py, devices.py,
session.py, channels.py, requests.py, states.py, errors.py) carries what every
channel needs; each channel is its own module(s) and imports no other channel:
voice calls (calls.py, call_flow.py, call_ops.py), and, with ``multimedia=True``
(multimedia.py), chats.py, emails.py, workitems.py, workbins.py, im.py on the
interaction desk (interactions.py, items.py). Behaviour: docs/voice-model.md,
docs/media-model.md.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

from gwsreplay.sim.model.agents import Agent
from gwsreplay.sim.model.call_flow import CallFlow
from gwsreplay.sim.model.call_ops import CallOps
from gwsreplay.sim.model.calls import Call, Calls
from gwsreplay.sim.model.core import CH_SERVICES, Core, Emit, Scheduler
from gwsreplay.sim.model.devices import Devices
from gwsreplay.sim.model.errors import SC_INTERNAL, SC_NOT_AUTHENTICATED, SC_NOT_FOUND, SC_OK, GwsError, StateError, invalid
from gwsreplay.sim.model.multimedia import Multimedia
from gwsreplay.sim.model.roster import Roster
from gwsreplay.sim.model.session import Session

log = logging.getLogger(__name__)


class ContactCenter:
    """One simulated GWS 8.6 node with its T-Server, for every user of a roster."""

    def __init__(self, roster: Roster, *, scheduler: Scheduler, emit: Emit, seed: int = 0,
                 base_url: str = "http://127.0.0.1:8090", external_answer_delay: float = 1.0,
                 call_recording: bool = True, ended_calls_kept: int = 1000, multimedia: bool = False,
                 sync_errors: bool = False):
        self.core = Core(roster, scheduler=scheduler, emit=emit, seed=seed, base_url=base_url,
                         sync_errors=sync_errors)
        self.devices = Devices(self.core)
        # Multimedia (chat, email, workitems, open media, IM, workbins, media channels):
        # docs/media-model.md. Off, this node answers as a GWS without the
        # api-multimedia feature.
        self.media = Multimedia(self.core, seed=seed) if multimedia else None
        self.session = Session(self.core, self.devices, self.media.channels if self.media is not None else None)
        self.voice = Calls(self.core, self.devices, call_recording=call_recording, ended_kept=ended_calls_kept)
        self.flow = CallFlow(self.core, self.devices, self.voice, external_answer_delay=external_answer_delay)
        self.call_ops = CallOps(self.core, self.devices, self.voice, self.flow)
        self.core.add_routes(self.session.routes() + self.call_ops.routes()
                             + (self.media.routes() if self.media is not None else ()))

    # ------------------------------------------------------------------ state others read

    @property
    def agents(self) -> dict[str, Agent]:
        return self.core.agents

    @property
    def calls(self) -> dict[str, Call]:
        """The live calls, in creation order."""
        return self.voice.calls

    @property
    def services(self) -> list[dict]:
        return self.core.services

    @property
    def voice_environment_id(self) -> str:
        return self.core.voice_environment_id

    @property
    def scheduler(self) -> Scheduler:
        return self.core.scheduler

    def voice_channel(self, agent: Agent) -> dict:
        """The agent's voice entry of GET /me/channels."""
        return self.session.voice_channel(agent)

    # ================================================================== public API

    def check_password(self, user_name: str, password: str) -> bool:
        agent = self.core.agents.get(user_name)
        return agent is not None and agent.spec.password == password

    def rest(self, user_name: str, method: str, path: str, query: Mapping[str, str], body: Any
             ) -> tuple[int, dict]:
        """Answer one ``/api/v2`` request; never raises."""
        try:
            agent = self.core.agents.get(user_name)
            if agent is None:
                raise GwsError(SC_NOT_AUTHENTICATED, "Access denied")
            norm = "/" + path.strip("/") if path.strip("/") else "/"
            handler, params = self.core.route(method.upper(), norm)
            return 200, handler(agent, params, query or {}, body)
        except StateError as err:
            if self.core.sync_errors or err.notify is None:
                return self.core.error(err)
            err.notify()       # GWS's asynchronous refusal (errors.StateError)
            return 200, dict(err.answer)
        except GwsError as err:
            return self.core.error(err)
        except Exception:  # the model must never take the server down
            log.exception("voice model failed on %s %s", method, path)
            return self.core.error(GwsError(SC_INTERNAL, "Internal error"))

    def end_session(self, user_name: str) -> None:
        """The HTTP session died (EndContactCenterSession or expiry): log the agent out."""
        agent = self.core.agents.get(user_name)
        if agent is not None:
            self.session.end(agent)

    def inject_call(self, from_number: str, to_number: str, user_data: dict | None = None
                    ) -> tuple[int, dict]:
        """Control API: an external caller rings an agent (Inbound call, via a queue)."""
        try:
            return 200, self.call_ops.inject_call(from_number, to_number, user_data)
        except GwsError as err:
            return self.core.error(err)

    def far_end_hangup(self, call_id: str) -> tuple[int, dict]:
        """Control API: the external party (or, on an agent-only call, everyone) hangs up."""
        try:
            return 200, self.call_ops.far_end_hangup(call_id)
        except GwsError as err:
            return self.core.error(err)

    def set_service_state(self, service_type: str, state: str) -> tuple[int, dict]:
        """Control API: ``("voice", "Inactive")`` emits ServiceStateChangeMessage to everyone."""
        service = next((s for s in self.core.services if s["type"].lower() == str(service_type).lower()), None)
        if service is None and self.media is not None:
            service = self.media.channels.find_service(service_type)   # "chat", "email", "workitem", "UCS", ...
        if service is None:
            return self.core.error(GwsError(SC_NOT_FOUND, f"No service of type {service_type!r}"))
        if state not in ("Active", "Inactive", "ReadOnly"):
            return self.core.error(invalid("state"))
        if service["state"] != state:
            service["state"] = state
            self.core.emit(None, CH_SERVICES, {"messageType": "ServiceStateChangeMessage", "service": dict(service)})
            if state == "Active":
                for hook in self.core.hooks.service_active:
                    hook()
        return 200, {"statusCode": SC_OK}

    def snapshot(self) -> dict:
        """Everything a test or the desktop page wants to see, JSON-ready."""
        return {
            "time": self.core.scheduler.now(),
            "services": [dict(s) for s in self.core.services],
            "agents": [
                {
                    "userName": a.name, "userId": a.user_id, "phoneNumber": a.phone, "place": a.spec.place,
                    "roles": list(a.spec.roles), "session": a.session, "loggedIn": a.logged_in,
                    "userState": dict(a.user_state), "deviceId": a.device_id,
                    "doNotDisturb": "On" if a.dnd else "Off", "forwardTo": a.forward_to,
                    "supervisorMonitoringState": self.devices.monitoring_state(a),
                    "calls": [c.id for c in self.voice.calls_of(a)],
                }
                for a in self.core.agents.values()
            ],
            "devices": [self.devices.resource(a) for a in self.core.agents.values()],
            "calls": self.voice.snapshot(),
            **({"media": self.media.snapshot()} if self.media is not None else {}),
        }
