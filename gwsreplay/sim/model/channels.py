"""Media channels (chat, email, workitem, openmedia, im): the agent's state on each and the
multimedia services they need.

Shared core of the media side: the session logs an agent in to its channels here,
routing reads who is Ready, and every media operation checks its channel's services
here. What depends on a channel's work (``userActivity`` on im) comes through
``Hooks.activity``; an agent going Ready fires ``Hooks.channel_ready``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from gwsreplay.sim.model.agents import LOGGED_OUT_USER_STATE, NOT_READY_STATE, Agent
from gwsreplay.sim.model.core import Core
from gwsreplay.sim.model.devices import SWITCH_NAME
from gwsreplay.sim.model.errors import (
    SC_FORBIDDEN, SC_INTERNAL, SC_INVALID, SC_NOT_FOUND, SC_OK, GwsError, invalid, unsupported,
)
from gwsreplay.sim.model.ids import MediaIdGenerator
from gwsreplay.sim.model.requests import MEDIA_ALIASES, operation_name

CH_CHANNELS = "/v2/me/channels"

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
#: POST /me/channels/{channel} for a media channel (Channels API, L36728-36790).
CHANNEL_OPERATIONS = ("Ready", "NotReady", "Offline", "DoNotDisturbOn", "DoNotDisturbOff")


@dataclass(eq=False)
class ChannelState:
    name: str
    user_state: dict
    dnd: bool = False


class MediaChannels:
    def __init__(self, core: Core, ids: MediaIdGenerator):
        self.core = core
        self.services: list[dict] = [
            {"id": ids.uuid(), "name": "InteractionServer", "type": "MultiMediaState", "state": "Active"},
            {"id": ids.uuid(), "name": "ChatServer", "type": "Chat", "state": "Active"},
            {"id": ids.uuid(), "name": "UCS", "type": "MultiMediaContent", "state": "Active"},
        ]
        core.services.extend(self.services)
        self.channels: dict[str, dict[str, ChannelState]] = {name: {} for name in core.agents}

    # ------------------------------------------------------------------ session

    def start_channels(self, agent: Agent, names: list[str]) -> tuple[list[dict], list[dict]]:
        """StartContactCenterSession for the non-voice channels: (succeeded, failed) entries."""
        succeeded, failed = [], []
        for raw in names:
            name = raw.lower()
            if name not in MEDIA_CHANNELS:
                failed.append({"channel": raw, "statusCode": SC_FORBIDDEN, "statusMessage": "Unsupported feature"})
                continue
            down = self.down_service(name)
            if down is not None:
                failed.append({"channel": name, "statusCode": SC_INTERNAL, "statusMessage": down})
                continue
            self._login(agent, name)
            succeeded.append({"channel": name, "statusCode": SC_OK})
        return succeeded, failed

    def end_session(self, agent: Agent) -> None:
        """EndContactCenterSession: log out of every media channel, no notification (as voice)."""
        self.channels[agent.name].clear()

    def has_channels(self, agent: Agent) -> bool:
        return bool(self.channels[agent.name])

    def logged_in(self, agent: Agent, channel: str) -> bool:
        return channel in self.channels[agent.name]

    def ready(self, agent: Agent, channel: str) -> bool:
        """Routable: logged in, Ready and not in do-not-disturb."""
        state = self.channels[agent.name].get(channel)
        return state is not None and not state.dnd and state.user_state.get("state") == "Ready"

    # ------------------------------------------------------------------ GET / POST /me/channels

    def entries(self, agent: Agent) -> list[dict]:
        return [self.entry(agent, ch) for ch in self.channels[agent.name].values()]

    def get_channel(self, agent: Agent, name: str) -> dict:
        name = name.lower()
        if name not in MEDIA_CHANNELS:
            raise GwsError(SC_NOT_FOUND, f"Channel {name} not found")
        state = self.channels[agent.name].get(name)
        if state is None:
            state = ChannelState(name, dict(LOGGED_OUT_USER_STATE))
        return self.entry(agent, state)

    def channel_operation(self, agent: Agent, name: str, body: Any) -> dict:
        name = name.lower()
        if name not in MEDIA_CHANNELS:
            raise GwsError(SC_NOT_FOUND, f"Channel {name} not found")
        op = operation_name(body, MEDIA_ALIASES)
        if op not in CHANNEL_OPERATIONS:
            raise unsupported(op)
        self.require_services(name)
        self.set_state(agent, name, op, body)
        return {"statusCode": SC_OK}

    def set_all(self, agent: Agent, op: str, body: Any) -> None:
        """POST /me Ready/NotReady/DoNotDisturbOn/Off: every media channel of the session too."""
        for name in list(self.channels[agent.name]):
            if self.down_service(name) is None:
                self.set_state(agent, name, op, body, quiet_repeat=True)

    def set_state(self, agent: Agent, name: str, op: str, body: Any, *, quiet_repeat=False) -> None:
        channels = self.channels[agent.name]
        current = channels.get(name)
        if op == "Offline":
            if current is not None:
                del channels[name]
                self._emit(agent, ChannelState(name, dict(LOGGED_OUT_USER_STATE)))
            return
        if op in ("DoNotDisturbOn", "DoNotDisturbOff"):
            on = op == "DoNotDisturbOn"
            if current is None:
                current = self._login(agent, name, notify=False)
            elif current.dnd == on:
                if quiet_repeat:
                    return
                raise GwsError(SC_INVALID, f"Operation {op} is not valid for channel {name} in its current state")
            current.dnd = on
            self._emit(agent, current)
            return
        params = body if isinstance(body, Mapping) else {}
        reason = params.get("reasonCode", params.get("reason"))
        if reason is not None and (not isinstance(reason, (str, int)) or isinstance(reason, bool) or reason == ""):
            raise invalid("reasonCode", "must be a non-empty string")
        if reason is not None and op != "NotReady":
            raise invalid("reasonCode", "applies to NotReady only")
        new_state = self.core.agent_states.match(op, None, str(reason) if reason is not None else None)
        if current is None:
            current = self._login(agent, name, notify=False)
        elif current.user_state == new_state:
            return           # already there: ignored, as voice
        current.user_state = new_state
        self._emit(agent, current)
        if op == "Ready":
            for hook in self.core.hooks.channel_ready:
                hook()

    def _login(self, agent: Agent, name: str, *, notify: bool = True) -> ChannelState:
        channels = self.channels[agent.name]
        state = channels.get(name)
        if state is None:
            state = channels[name] = ChannelState(name, dict(NOT_READY_STATE))
            if notify:
                self._emit(agent, state)
        return state

    def entry(self, agent: Agent, state: ChannelState, *, notification: bool = False) -> dict:
        entry: dict = {"channel": state.name}
        if state.name == "im":   # "voice and instant-message only" (L36600)
            entry.update({"phoneNumber": agent.phone, "switchName": SWITCH_NAME,
                          "userActivity": self.core.hooks.activity["im"](agent)})
        if notification and state.user_state.get("state") != "LoggedOut":
            entry["dndState"] = "On" if state.dnd else "Off"
        entry["userState"] = dict(state.user_state)
        return entry

    def _emit(self, agent: Agent, state: ChannelState) -> None:
        """ChannelStateChangeMessageV2 on /v2/me/channels (Supervisor Agent State Control samples, L44960)."""
        self.core.emit(agent.name, CH_CHANNELS, {"channels": [self.entry(agent, state, notification=True)],
                                                 "messageType": "ChannelStateChangeMessageV2"})

    # ------------------------------------------------------------------ services

    def find_service(self, name: str) -> dict | None:
        key = str(name).lower()
        wanted = SERVICE_ALIASES.get(key, key).lower()
        for service in self.services:
            if service["type"].lower() == wanted or service["name"].lower() == key:
                return service
        return None

    def down_service(self, channel: str) -> str | None:
        """The statusMessage when a service of the channel is down, else None."""
        for service_type in CHANNEL_SERVICES[channel]:
            if not self.core.service_active(service_type):
                return f"{CHANNEL_LABELS[channel]} service is not available at this time"
        return None

    def require_services(self, channel: str) -> None:
        message = self.down_service(channel)
        if message is not None:
            raise GwsError(SC_INTERNAL, message, http_status=503)

    def snapshot(self) -> dict:
        return {name: [self.entry(self.core.agents[name], st) for st in chans.values()]
                for name, chans in self.channels.items() if chans}
