"""The agent's side of the API: /me, its session, agent state, devices, channels, settings.

StartContactCenterSession logs the agent in to voice and to its media channels
(channels.py) with partial success; EndContactCenterSession logs everything out and
fires ``Hooks.session_ended`` (voice ends supervision there). Agent-state operations
apply to voice and, on POST /me, to every media channel of the session.
``L<n>`` = a line of ``gws-8.6-api-reference.txt``.
"""

from __future__ import annotations

from typing import Any, Callable

from gwsreplay.sim.model.agents import (
    DISPOSITIONS, LOGGED_OUT_USER_STATE, NOT_READY_WORKMODES, READY_WORKMODES, Agent, user_state,
)
from gwsreplay.sim.model.channels import MediaChannels
from gwsreplay.sim.model.core import Core
from gwsreplay.sim.model.devices import SUPERVISOR_DEVICE_OPS, SWITCH_NAME, Devices
from gwsreplay.sim.model.errors import (
    SC_FORBIDDEN, SC_INTERNAL, SC_INVALID, SC_NO_PERMISSION, SC_NOT_FOUND, SC_OK, SC_PARTIAL, VOICE_UNAVAILABLE,
    GwsError, invalid, missing, unsupported,
)
from gwsreplay.sim.model.requests import (
    VOICE_ALIASES, collection, done, last_segment, operation_name, project, split,
)

# operationName -> handler name, one table per resource. Agent-state operations
# (system and custom) are accepted wherever ``agent_states=True`` is passed.
AGENT_STATE = "_op_agent_state"
ME_OPERATIONS = {
    "StartContactCenterSession": "_op_start_session",
    "EndContactCenterSession": "_op_end_session",
    "Ready": AGENT_STATE,
    "NotReady": AGENT_STATE,
    "DoNotDisturbOn": "_op_dnd",
    "DoNotDisturbOff": "_op_dnd",
}
VOICE_CHANNEL_OPERATIONS = {
    "DoNotDisturbOn": "_op_dnd",
    "DoNotDisturbOff": "_op_dnd",
    "ForwardCallsOn": "_op_forward_on",
    "ForwardCallsOff": "_op_forward_off",
}
DEVICE_OPERATIONS = {
    **VOICE_CHANNEL_OPERATIONS,
    "ListenIn": "_op_device_hook",
    "Coach": "_op_device_hook",
    "BargeIn": "_op_device_hook",
    "CancelSupervisorMonitoring": "_op_device_hook",
}


def place_of(agent: Agent, place: Any) -> bool:
    """Whether ``place`` names the agent's place. Besides the roster's place, the forms of
    the samples (L4445-4533): ``SIP_<DN>`` and the bare DN, the user name (``agent1``)
    and the user name with a domain (``agent1@pizza.com``)."""
    if not isinstance(place, str) or not place:
        return False
    name = agent.name.lower()
    return place == agent.spec.place or place in (f"SIP_{agent.phone}", agent.phone) \
        or place.lower() == name or place.lower().partition("@")[0] == name


class Session:
    def __init__(self, core: Core, devices: Devices, channels: MediaChannels | None):
        self.core = core
        self.devices = devices
        self.channels = channels     # None: a GWS without the api-multimedia feature

    def routes(self) -> tuple:
        """(method, path regex, handler) below /api/v2."""
        return (
            ("GET", r"/me", self._get_me),
            ("POST", r"/me", self._post_me),
            ("GET", r"/me/devices", self._get_my_devices),
            ("GET", r"/me/devices/(?P<device_id>[^/]+)", self._get_my_device),
            ("POST", r"/me/devices/(?P<device_id>[^/]+)", self._post_my_device),
            ("GET", r"/me/channels", self._get_my_channels),
            ("GET", r"/me/channels/(?P<channel>[^/]+)", self._get_my_channel),
            ("POST", r"/me/channels/(?P<channel>[^/]+)", self._post_my_channel),
            ("GET", r"/me/settings/agent-states", self._get_agent_states),
            ("GET", r"/settings/agent-states", self._get_agent_states),
            ("GET", r"/settings/dispositions", self._get_dispositions),
            ("GET", r"/devices", self._get_devices),
            ("GET", r"/devices/(?P<device_id>[^/]+)", self._get_device),
            ("GET", r"/services", self._get_services),
            ("GET", r"/services/(?P<service_id>[^/]+)", self._get_service),
        )

    # ================================================================== GET handlers

    def _get_me(self, agent, params, query, body):
        user = self.devices.user_resource(agent)
        subresources = split(query.get("subresources"))
        if subresources:
            everything = "*" in subresources or "**" in subresources
            if everything or "devices" in subresources:
                user["devices"] = [self.devices.resource(agent)]
            if everything or "skills" in subresources:
                user["skills"] = []
            if everything or "settings" in subresources:
                roles = ",".join(r.removeprefix("ROLE_").capitalize() for r in agent.spec.roles)
                user["settings"] = {"GWS": {"roles": roles}}
            for name, resources in self.core.hooks.subresources.items():
                if everything or name in subresources:
                    user[name] = resources(agent)
        return {"statusCode": SC_OK, "user": project(user, query.get("fields"))}

    def _get_my_devices(self, agent, params, query, body):
        return collection(self.core.api, "devices", [agent], self.devices.resource,
                          lambda a: f"/devices/{a.device_id}", query)

    def _get_my_device(self, agent, params, query, body):
        self.devices.check_mine(agent, params["device_id"])
        return {"statusCode": SC_OK, "device": project(self.devices.resource(agent), query.get("fields"))}

    def voice_channel(self, agent: Agent) -> dict:
        return {"channel": "voice", "phoneNumber": agent.phone, "switchName": SWITCH_NAME,
                "userActivity": self.core.hooks.activity["voice"](agent), "userState": dict(agent.user_state)}

    def _get_my_channels(self, agent, params, query, body):
        channels = [self.voice_channel(agent)]
        if self.channels is not None:   # by channel name, as the sample (chat, email, voice; L36578)
            channels = sorted(channels + self.channels.entries(agent), key=lambda c: c["channel"])
        return {"statusCode": SC_OK, "channels": channels}

    def _get_my_channel(self, agent, params, query, body):
        if params["channel"] != "voice" and self.channels is not None:
            return {"statusCode": SC_OK, "channels": self.channels.get_channel(agent, params["channel"])}
        if params["channel"] != "voice":
            raise GwsError(SC_NOT_FOUND, f"Channel {params['channel']} not found")
        # The sample answers GET /me/channels/{id} with a "channels" object (L36694-36715).
        return {"statusCode": SC_OK, "channels": self.voice_channel(agent)}

    def _get_agent_states(self, agent, params, query, body):
        return {"statusCode": SC_OK, "settings": self.core.agent_states.settings(), "key": "operationName"}

    def _get_dispositions(self, agent, params, query, body):
        return {"statusCode": SC_OK, "key": "name", "settings": [dict(d) for d in DISPOSITIONS]}

    def _get_devices(self, agent, params, query, body):
        return collection(self.core.api, "devices", list(self.core.agents.values()), self.devices.resource,
                          lambda a: f"/devices/{a.device_id}", query)

    def _get_device(self, agent, params, query, body):
        owner = self.core.agents_by_device.get(params["device_id"])
        if owner is None:
            raise GwsError(SC_NOT_FOUND, f"Device {params['device_id']} not found")
        return {"statusCode": SC_OK, "device": project(self.devices.resource(owner), query.get("fields"))}

    def _get_services(self, agent, params, query, body):
        return collection(self.core.api, "services", self.core.services, dict,
                          lambda s: f"/services/{s['id']}", query)

    def _get_service(self, agent, params, query, body):
        service = next((s for s in self.core.services if s["id"] == params["service_id"]), None)
        if service is None:
            raise GwsError(SC_NOT_FOUND, f"Service {params['service_id']} not found")
        return {"statusCode": SC_OK, "service": [dict(service)]}   # an array, as documented (L3690-3700)

    # ================================================================== POST dispatch

    def _operation(self, body: Any, table: dict, *, agent_states: bool) -> tuple[str, Callable]:
        op = operation_name(body, VOICE_ALIASES)
        name = table.get(op)
        if name is None and agent_states and op in self.core.agent_states.by_op:
            name = AGENT_STATE
        if name is None:
            raise unsupported(op)
        return op, getattr(self, name)

    def _post_me(self, agent, params, query, body):
        op, handler = self._operation(body, ME_OPERATIONS, agent_states=False)
        if op in ("StartContactCenterSession", "EndContactCenterSession"):
            return done(handler(agent, op, body))    # channel by channel (partial success)
        media = self.channels if self.channels is not None and self.channels.has_channels(agent) else None
        if media is None or not agent.media_only:
            self.core.require_voice()
            self.devices.check_capability(agent, op)
            handler(agent, op, body)
        if media is not None:      # "Set all channels to Ready/NotReady/DND" (Channels API, L36800)
            media.set_all(agent, op, body)
        return done(None)

    def _post_my_channel(self, agent, params, query, body):
        if params["channel"] != "voice" and self.channels is not None:
            return self.channels.channel_operation(agent, params["channel"], body)
        if params["channel"] != "voice":
            raise GwsError(SC_NOT_FOUND, f"Channel {params['channel']} not found")
        op, handler = self._operation(body, VOICE_CHANNEL_OPERATIONS, agent_states=True)
        self.core.require_voice()
        self.devices.check_capability(agent, op)
        return done(handler(agent, op, body))

    def _post_my_device(self, agent, params, query, body):
        self.devices.check_mine(agent, params["device_id"])
        op, handler = self._operation(body, DEVICE_OPERATIONS, agent_states=True)
        self.core.require_voice()
        if op in SUPERVISOR_DEVICE_OPS:
            if not agent.is_supervisor:
                raise GwsError(SC_NO_PERMISSION, "The user does not have permission to perform this operation")
            if op != "CancelSupervisorMonitoring" and not agent.logged_in:
                # Supervisor monitoring needs the supervisor logged in to the switch.
                raise GwsError(SC_INVALID, "The agent is not logged in: send StartContactCenterSession "
                                           "or an agent-state operation first")
        self.devices.check_capability(agent, op)
        return done(handler(agent, op, body))

    def _op_dnd(self, agent, op, body):
        self.devices.dnd(agent, op, body)

    def _op_forward_on(self, agent, op, body):
        self.devices.forward_on(agent, op, body)

    def _op_forward_off(self, agent, op, body):
        self.devices.forward_off(agent, op, body)

    def _op_device_hook(self, agent, op, body):
        return self.core.hooks.device_operations[op](agent, op, body)

    # ================================================================== session and agent state

    def _op_start_session(self, agent, op, body):
        channels = body.get("channels")
        if channels is None:
            raise missing("channels")
        if not isinstance(channels, list) or not channels or not all(isinstance(c, str) for c in channels):
            raise invalid("channels", "must be a non-empty array of channel names")
        workmode = body.get("workmode")
        if workmode is not None and workmode not in READY_WORKMODES:
            raise invalid("workmode")
        place = body.get("place")
        if place is not None and not place_of(agent, place):
            raise invalid("place", f"Place {place} is not assigned to the user")
        device_path = body.get("devicePath")
        if device_path is not None and last_segment(device_path) != agent.device_id:
            raise invalid("devicePath", f"Device {device_path} is not assigned to the user")
        # loginCode, agentLoginPassword, queue (L4420-4440) and 8.5.2's mobileSession go to
        # T-Server's RequestAgentLogin; any value is accepted, as a switch without login
        # validation does.
        for name in ("loginCode", "agentLoginPassword", "queue"):
            value = body.get(name)
            if value is not None and not isinstance(value, (str, int)):
                raise invalid(name, "must be a string")
        dynamic = body.get("dynamicPhoneNumber")
        # Any non-empty string: SIP Server judges the number (the sample sends the placeholder
        # "%dynamic_phone_number%", L4580).
        if dynamic is not None and (not isinstance(dynamic, str) or not dynamic.strip()):
            raise invalid("dynamicPhoneNumber")
        others = list(dict.fromkeys(c for c in channels if c.lower() != "voice"))
        wants_voice = len(others) < len(channels)
        succeeded: list[dict] = []
        failed: list[dict] = []
        if wants_voice:
            if self.core.voice_active:
                if dynamic is not None:
                    agent.dynamic_phone_number = dynamic
                if not agent.logged_in:
                    agent.logged_in = True
                    agent.user_state = user_state(self.core.agent_states.by_op["NotReady"])
                    self.devices.emit(agent)
                succeeded.append({"channel": "voice", "statusCode": SC_OK})
            else:
                failed.append({"channel": "voice", "statusCode": SC_INTERNAL, "statusMessage": VOICE_UNAVAILABLE})
        if others:
            if self.channels is None:
                # Without the multimedia feature: the reference's partial-success sample (L4500-4522).
                failed.append({"channel": "multimedia", "statusCode": SC_FORBIDDEN,
                               "statusMessage": "Unsupported feature"})
            else:
                ok, bad = self.channels.start_channels(agent, others)
                succeeded += ok
                failed += bad
        if not succeeded:
            # "If all channel operations fail, Web Services only returns a statusCode and
            # statusMessage for one of the channels." (L4401)
            first = failed[0]
            raise GwsError(first["statusCode"], first["statusMessage"],
                           http_status=503 if first["statusCode"] == SC_INTERNAL else None)
        agent.session = True
        agent.media_only = not wants_voice or not any(s["channel"] == "voice" for s in succeeded)
        result: dict = {}
        if failed:
            result = {"statusCode": SC_PARTIAL, "succeeded": succeeded, "failed": failed}
        if dynamic is not None and wants_voice and self.core.voice_active:
            result["devices"] = [self.devices.resource(agent)]
        return result

    def _op_end_session(self, agent, op, body):
        self.end(agent)

    def end(self, agent: Agent) -> None:
        # 8.5.2: "There are no notifications associated with this operation"; the HTTP
        # session (and with it every CometD client of the user) dies anyway.
        agent.session = False
        agent.media_only = False
        agent.logged_in = False
        agent.user_state = dict(LOGGED_OUT_USER_STATE)
        agent.dynamic_phone_number = None
        if self.channels is not None:
            self.channels.end_session(agent)
        for hook in self.core.hooks.session_ended:
            hook(agent)

    def _op_agent_state(self, agent, op, body):
        """Ready, NotReady, AuxWork, AfterCallWork, Offline and custom states (L4650-4990)."""
        spec = self.core.agent_states.by_op[op]
        if spec.state == "Logout":
            if agent.logged_in:
                agent.logged_in = False
                agent.user_state = dict(LOGGED_OUT_USER_STATE)
                self.devices.emit(agent)
            return None
        work_mode, reason = spec.work_mode, spec.reason
        workmode_param = body.get("workmode")
        if workmode_param is not None:
            valid = READY_WORKMODES if spec.state == "Ready" else NOT_READY_WORKMODES
            if workmode_param not in valid:
                raise invalid("workmode")
            work_mode = workmode_param
        reason_param = body.get("reasonCode", body.get("reason"))
        if reason_param is not None:
            if not isinstance(reason_param, (str, int)) or isinstance(reason_param, bool) or reason_param == "":
                raise invalid("reasonCode", "must be a non-empty string")
            if spec.state != "NotReady":
                raise invalid("reasonCode", "applies to NotReady states only")
            reason = str(reason_param)
        wrap_up = body.get("wrapUpTime")
        if wrap_up is not None and not str(wrap_up).isdigit():
            raise invalid("wrapUpTime")
        new_state = self.core.agent_states.match(spec.state, work_mode, reason)
        if agent.logged_in and new_state == agent.user_state:
            return None   # "if the current user is already in the NotReady state, the request is ignored"
        agent.logged_in = True
        agent.user_state = new_state
        self.devices.emit(agent)
        return None
