"""Instant messaging between two agents (IM sessions on SIP Server).

Each agent's view of a session follows the IM state table (states.IM). IM runs on
the Voice service and its session id is a SIP Server call UUID, drawn from the
node's call ids. An agent busy in IM shows ``BusyOnIM`` on its im channel
(``Hooks.activity``). ``L<n>`` = a line of ``gws-8.6-api-reference.txt``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from gwsreplay.sim.model.agents import Agent
from gwsreplay.sim.model.channels import MediaChannels
from gwsreplay.sim.model.core import Core
from gwsreplay.sim.model.devices import participant
from gwsreplay.sim.model.errors import (
    SC_INVALID, SC_NOT_FOUND, SC_OK, GwsError, invalid, missing, not_valid_in_state, unsupported,
)
from gwsreplay.sim.model.requests import (
    MEDIA_ALIASES, handler_for, last_segment, operation_name, project, string_param, user_data_param,
)
from gwsreplay.sim.model.states import ALERTING, COMPLETED, IM, TALKING

CH_IM = "/v2/me/im-sessions"

IM_OPERATIONS = {
    "SendMessage": "_im_send", "AttachUserData": "_im_user_data", "UpdateUserData": "_im_user_data",
    "DeleteUserData": "_im_user_data", "Complete": "_im_complete",
}


@dataclass(eq=False)
class ImSession:
    id: str
    user_data: dict
    states: dict            # agent name -> state
    agents: list            # [initiator, destination]


class InstantMessaging:
    def __init__(self, core: Core, channels: MediaChannels):
        self.core = core
        self.channels = channels
        self.sessions: dict[str, ImSession] = {}
        core.hooks.activity["im"] = self.activity

    def routes(self) -> tuple:
        return (
            ("GET", r"/me/im-sessions", self._get_im_sessions),
            ("POST", r"/me/im-sessions", self._post_im_sessions),
            ("GET", r"/me/im-sessions/(?P<im_id>[^/]+)", self._get_im_session),
            ("POST", r"/me/im-sessions/(?P<im_id>[^/]+)", self._post_im_session),
        )

    def activity(self, agent: Agent) -> str:
        """The im channel's ``userActivity``."""
        busy = any(agent.name in s.states for s in self.sessions.values())
        return "BusyOnIM" if busy else "Idle"

    def _get_im_sessions(self, agent, params, query, body):
        sessions = [s for s in self.sessions.values() if agent.name in s.states]
        if query.get("fields"):
            return {"imSessions": [project(self._resource(s, agent), query["fields"]) for s in sessions],
                    "statusCode": SC_OK}
        paths = [f"/im-sessions/{s.id}" for s in sessions]
        return {"statusCode": SC_OK, "uris": [self.core.api + p for p in paths], "paths": paths}

    def _get_im_session(self, agent, params, query, body):
        session = self._mine(agent, params["im_id"])
        return {"statusCode": SC_OK, "imSession": project(self._resource(session, agent), query.get("fields"))}

    def _mine(self, agent: Agent, im_id: str) -> ImSession:
        session = self.sessions.get(im_id)
        if session is None or agent.name not in session.states:
            raise GwsError(SC_NOT_FOUND, f"IM session {im_id} not found")
        return session

    def _post_im_sessions(self, agent, params, query, body):
        op = operation_name(body, MEDIA_ALIASES)
        if op != "InitiateIMSession":
            raise unsupported(op)
        destination = body.get("destination")
        if destination is None:
            raise missing("destination")
        number = destination.get("phoneNumber") if isinstance(destination, Mapping) else destination
        if not isinstance(number, (str, int)) or isinstance(number, bool) or str(number) == "":
            raise invalid("destination", "must be {\"phoneNumber\": ...}")
        user_data = body.get("userData")
        if user_data is not None and not isinstance(user_data, Mapping):
            raise invalid("userData", "must be a JSON object")
        device_path = body.get("devicePath")
        if device_path is not None and last_segment(device_path) != agent.device_id:
            raise invalid("devicePath", f"Device {device_path} is not assigned to the user")
        self.channels.require_services("im")
        other = self.core.agents_by_phone.get(str(number))
        if other is None or other is agent:
            raise invalid("destination", f"{number} is not an IM-capable extension")
        for who in (agent, other):
            if any(who.name in s.states for s in self.sessions.values()):
                # "An agent can't participate in more than one IM session at a time" (L10760)
                raise GwsError(SC_INVALID, "Invalid state")
        im_id, _ = self.core.ids.call_ids()     # "the associated SIP server call UUID"
        session = ImSession(im_id, dict(user_data or {}), {agent.name: TALKING, other.name: ALERTING},
                            [agent, other])
        self.sessions[im_id] = session
        self._emit(session, agent, "StatusChange")
        self._emit(session, other, "StatusChange")      # EventRinging ...
        session.states[other.name] = TALKING             # ... auto-answered: EventEstablished
        self._emit(session, other, "StatusChange")
        return {"statusCode": SC_OK}

    def _post_im_session(self, agent, params, query, body):
        op = operation_name(body, MEDIA_ALIASES)
        handler = handler_for(op, IM_OPERATIONS, self)
        session = self._mine(agent, params["im_id"])
        self.channels.require_services("im")
        state = session.states[agent.name]
        caps = IM.capabilities(state)
        if op not in caps:
            raise not_valid_in_state(op, f"IM session {session.id}", state, caps)
        handler(session, agent, op, body)
        return {"statusCode": SC_OK}

    def _im_send(self, session, agent, op, body):
        text = string_param(body, "text")
        for who in session.agents:
            self.core.emit(who.name, CH_IM, {"messageType": "IMLogUpdateMessage", "notificationType": "NewMessage",
                                             "imSessionPath": f"/im-sessions/{session.id}", "message": text})

    def _im_user_data(self, session, agent, op, body):
        if op == "DeleteUserData":
            key = body.get("key", body.get("keys"))
            if key is None:
                raise missing("key")
            keys = [key] if isinstance(key, str) else key
            if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
                raise invalid("key", "must be a key name")
            for k in keys:
                session.user_data.pop(k, None)
        else:
            session.user_data.update(user_data_param(body))
        for who in session.agents:
            self._emit(session, who, "AttachedDataChanged")

    def _im_complete(self, session, agent, op, body):
        new_state = IM.next(session.states[agent.name], op)
        for who in session.agents:       # two parties: releasing one releases the call
            session.states[who.name] = new_state
        self._emit(session, agent, "StatusChange")
        for who in session.agents:
            if who is not agent:
                self._emit(session, who, "StatusChange")
        del self.sessions[session.id]

    def _resource(self, session: ImSession, agent: Agent) -> dict:
        other = next((a for a in session.agents if a is not agent), agent)
        state = session.states.get(agent.name, COMPLETED)
        return {
            "state": state,
            "userData": dict(session.user_data),
            "id": session.id,
            "uri": f"{self.core.api}/im-sessions/{session.id}",
            "path": f"/im-sessions/{session.id}",
            "participants": [participant(other.phone)],
            "capabilities": IM.capabilities(state),
        }

    def _emit(self, session: ImSession, agent: Agent, notification_type: str) -> None:
        self.core.emit(agent.name, CH_IM, {"messageType": "IMSessionStateChangeMessage",
                                           "notificationType": notification_type,
                                           "imSession": self._resource(session, agent)})

    def snapshot(self) -> list[dict]:
        return [{"id": s.id, "states": dict(s.states), "userData": dict(s.user_data)} for s in self.sessions.values()]
