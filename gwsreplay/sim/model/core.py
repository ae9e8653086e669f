"""The shared core of one simulated GWS node: clock, emit, ids, agents, services, routes, hooks.

Every channel module (calls, chats, emails, workitems, workbins, IM) is built on one
:class:`Core` and talks to the others only through it: a channel registers its
routes with :meth:`Core.add_routes` and plugs into cross-channel events through
:class:`Hooks` (the agent's session ends, a service comes back, an agent goes Ready
on a media channel...). The facade (contact_center.py) wires them.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Protocol

from gwsreplay.sim.model.agents import Agent, AgentStates
from gwsreplay.sim.model.errors import (
    SC_INTERNAL, SC_INVALID, SC_NOT_FOUND, VOICE_UNAVAILABLE, GwsError, render_error,
)
from gwsreplay.sim.model.ids import IdGenerator
from gwsreplay.sim.model.roster import Roster


class Scheduler(Protocol):
    def now(self) -> float: ...
    def call_later(self, delay: float, callback: Callable[[], None]) -> Any: ...  # result has .cancel()


Emit = Callable[[str | None, str, dict], None]   # (user_name or None for everyone, channel, data)
#: Handler of one route: (agent, path params, query, body) -> response body.
Handler = Callable[[Agent, dict, dict, Any], dict]

CH_SERVICES = "/notifications/services"


class Hooks:
    """Where channel modules meet without importing each other; called in registration order."""

    def __init__(self) -> None:
        #: The agent's contact-center session ended (EndContactCenterSession or expiry).
        self.session_ended: list[Callable[[Agent], None]] = []
        #: A service came back (POST /sim/v1/services/{type} Active): waiting work may route.
        self.service_active: list[Callable[[], None]] = []
        #: An agent went Ready on a media channel: waiting work may route.
        self.channel_ready: list[Callable[[], None]] = []
        #: channel -> the agent's ``userActivity`` on it (voice: BusyOnCall, im: BusyOnIM).
        self.activity: dict[str, Callable[[Agent], str]] = {}
        #: Device operations a channel adds (supervision): operationName -> handler(agent, op, body).
        self.device_operations: dict[str, Callable[[Agent, str, Any], Any]] = {}
        #: GET /me?subresources=<name> -> the agent's resources of that name (calls).
        self.subresources: dict[str, Callable[[Agent], list]] = {}


class Core:
    """What every channel shares. Ids are drawn here first, so they depend on the seed and
    roster only: voice environment, Provisioning service, then per user its id and device."""

    def __init__(self, roster: Roster, *, scheduler: Scheduler, emit: Emit, seed: int = 0,
                 base_url: str = "http://127.0.0.1:8090", sync_errors: bool = False):
        self.roster = roster
        #: False (GWS): an operation outside the resource's capabilities answers statusCode 0
        #: and the refusal comes later as an error notification (T-Server's, L535, L4222).
        #: True: the old synchronous refusal (HTTP 400, statusCode 2), for tests that want it.
        self.sync_errors = sync_errors
        self.scheduler = scheduler
        self.emit = emit
        self.seed = seed
        self.base_url = base_url.rstrip("/")
        self.api = self.base_url + "/api/v2"
        self.ids = IdGenerator(seed)
        self.voice_environment_id = self.ids.uuid()
        self.services: list[dict] = [
            {"id": self.ids.service_id(), "name": "Provisioning", "type": "Provisioning", "state": "Active"},
            # The Voice service id is the voice environment id, as in the samples (L1285, L1089).
            {"id": self.voice_environment_id, "name": "SIPS", "type": "Voice", "state": "Active"},
        ]
        self.agents: dict[str, Agent] = {}
        self.agents_by_device: dict[str, Agent] = {}
        self.agents_by_phone: dict[str, Agent] = {}
        for spec in roster.users.values():
            agent = Agent(spec=spec, user_id=self.ids.user_id(), device_id=self.ids.device_id())
            self.agents[spec.user_name] = agent
            self.agents_by_device[agent.device_id] = agent
            self.agents_by_phone[spec.phone_number] = agent
        self.agent_states = AgentStates(roster.agent_states, self.ids)
        self.hooks = Hooks()
        self._routes: list[tuple[str, re.Pattern, Handler]] = []

    # ------------------------------------------------------------------ routes

    def add_routes(self, routes) -> None:
        """(method, path regex below /api/v2, handler) rows; first match wins."""
        self._routes += [(m, re.compile(p), h) for m, p, h in routes]

    def route(self, method: str, path: str) -> tuple[Handler, dict]:
        path_matched = False
        for route_method, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            path_matched = True
            if route_method == method:
                return handler, match.groupdict()
        if path_matched:
            raise GwsError(SC_INVALID, f"Method {method} is not supported on {path}")
        raise GwsError(SC_NOT_FOUND, f"Resource {path} not found")

    # ------------------------------------------------------------------ errors and services

    def error(self, err: GwsError) -> tuple[int, dict]:
        """The one rendering of a refusal: statusCode 4 is a 503 while voice is down."""
        return render_error(err, voice_down=err.status_code == SC_INTERNAL and not self.voice_active)

    @property
    def voice_active(self) -> bool:
        return next(s for s in self.services if s["type"] == "Voice")["state"] == "Active"

    def require_voice(self) -> None:
        if not self.voice_active:
            raise GwsError(SC_INTERNAL, VOICE_UNAVAILABLE)

    def service_active(self, service_type: str) -> bool:
        if service_type == "Voice":
            return self.voice_active
        return all(s["state"] == "Active" for s in self.services if s["type"] == service_type)

    def agent_by_user(self, last: str) -> Agent | None:
        """A user id or user name (the last segment of a user URI or path)."""
        return next((a for a in self.agents.values() if a.user_id == last), None) or self.agents.get(last)
