"""Users and their SIP devices: resources, device capabilities and the device features
(do-not-disturb, call forwarding) every channel sees the same way.

The device's capabilities come from the device state tables (states.py); the
supervision operations they list are carried out by the voice channel (call_ops.py),
plugged in through ``Hooks.device_operations``.
"""

from __future__ import annotations

import re
from typing import Mapping

from gwsreplay.sim.model.agents import Agent
from gwsreplay.sim.model.core import Core
from gwsreplay.sim.model.errors import (
    INCORRECT_OBJECT_STATE, SC_NOT_FOUND, GwsError, StateError, invalid, missing,
)
from gwsreplay.sim.model.states import (
    DO_NOT_DISTURB, FORWARDING, IDLE, MONITORING, OFF, ON, SUPERVISION,
)

CH_DEVICES = "/v2/me/devices"
CH_CALLS = "/v2/me/calls"
DIALABLE = re.compile(r"^\+?[0-9*#]+$")
SWITCH_NAME = "SIP_Switch"

DEVICE_FEATURE_OPS = ("DoNotDisturbOn", "DoNotDisturbOff", "ForwardCallsOn", "ForwardCallsOff")
SUPERVISOR_DEVICE_OPS = ("ListenIn", "Coach", "BargeIn", "CancelSupervisorMonitoring")


def participant(number: str) -> dict:
    """A call or IM participant, as the samples render a phone number."""
    return {"e164Number": number if number.startswith("+") else "", "formattedPhoneNumber": number,
            "phoneNumber": number, "digits": number.lstrip("+")}


class Devices:
    def __init__(self, core: Core):
        self.core = core

    def check_mine(self, agent: Agent, device_id: str) -> None:
        if device_id != agent.device_id:
            raise GwsError(SC_NOT_FOUND, f"Device {device_id} not found")

    # ------------------------------------------------------------------ capabilities

    def capabilities(self, agent: Agent) -> list[str]:
        """DoNotDisturb/Forward for everyone; supervisors add the monitoring operations
        (Device resource, L4380-4390; DoNotDisturbOn sample L5040-5050)."""
        guards = ("supervisor",) if agent.is_supervisor else ()
        return (FORWARDING.capabilities(ON if agent.forward_to else OFF)
                + DO_NOT_DISTURB.capabilities(ON if agent.dnd else OFF)
                + SUPERVISION.capabilities(MONITORING if agent.monitoring is not None else IDLE, guards))

    def check_capability(self, agent: Agent, op: str) -> None:
        """T-Server refuses a device operation the device does not offer now: an
        ErrorMessage on /v2/me/devices (errors.StateError)."""
        if op in DEVICE_FEATURE_OPS or op in SUPERVISOR_DEVICE_OPS:
            caps = self.capabilities(agent)
            if op not in caps:
                raise StateError(f"Operation {op} is not valid for device {agent.device_id} in its "
                                 f"current state (capabilities: {', '.join(caps)})",
                                 notify=lambda: self.emit_error(agent, INCORRECT_OBJECT_STATE))

    # ------------------------------------------------------------------ resources

    def user_resource(self, agent: Agent) -> dict:
        api = self.core.api
        return {
            "id": agent.user_id,
            "userName": agent.name,
            "firstName": agent.spec.first_name,
            "lastName": agent.spec.last_name,
            "roles": list(agent.spec.roles),
            "enabled": True,
            "changePasswordOnFirstLogin": False,
            "uri": f"{api}/users/{agent.user_id}",
            "path": f"/users/{agent.user_id}",
        }

    def uri(self, agent: Agent) -> str:
        return f"{self.core.api}/devices/{agent.device_id}"

    def resource(self, agent: Agent) -> dict:
        device = {
            "id": agent.device_id,
            "deviceState": "Active",
            "userState": dict(agent.user_state),
            "phoneNumber": agent.phone,
        }
        if agent.dynamic_phone_number:
            device["description"] = ""        # as the dynamic-phone-number sample (L4593)
        device.update({
            "e164Number": agent.phone,
            "telephonyNetwork": "Private",
            "doNotDisturb": "On" if agent.dnd else "Off",
        })
        if agent.forward_to:
            device["forwardTo"] = agent.forward_to
        device["voiceEnvironmentUri"] = f"{self.core.api}/voice-environments/{self.core.voice_environment_id}"
        device["capabilities"] = self.capabilities(agent)
        monitoring = self.monitoring_state(agent)
        if monitoring is not None:
            device["supervisorMonitoringState"] = monitoring
        if agent.dynamic_phone_number:
            device["channels"] = ["voice"]
            device["dynamicPhoneNumber"] = agent.dynamic_phone_number
        return device

    def monitoring_state(self, agent: Agent) -> dict | None:
        mon = agent.monitoring
        if mon is None:
            return None
        return {"state": mon.state, "mode": mon.mode, "scope": mon.scope,
                "targetDeviceUri": self.uri(mon.target),
                "phoneNumber": mon.target.phone, "switchName": SWITCH_NAME}

    def emit(self, agent: Agent) -> None:
        self.core.emit(agent.name, CH_DEVICES, {"messageType": "DeviceStateChangeMessage",
                                                "devices": [self.resource(agent)]})

    def emit_error(self, agent: Agent, message: str, *, call_uri: str | None = None) -> None:
        """ErrorMessage (L4185-4225): on /v2/me/calls when it names a call, else /v2/me/devices."""
        data = {"messageType": "ErrorMessage", "deviceUri": self.uri(agent)}
        if call_uri is not None:
            data["callUri"] = call_uri
        data["errorMessage"] = message
        self.core.emit(agent.name, CH_CALLS if call_uri is not None else CH_DEVICES, data)

    # ------------------------------------------------------------------ device features

    def dnd(self, agent: Agent, op: str, body) -> None:
        agent.dnd = DO_NOT_DISTURB.next(ON if agent.dnd else OFF, op) == ON
        self.emit(agent)

    def forward_on(self, agent: Agent, op: str, body) -> None:
        destination = body.get("destination")
        if isinstance(destination, Mapping):
            destination = destination.get("phoneNumber")
        if destination is None or destination == "":
            raise missing("destination")
        destination = str(destination)
        if not DIALABLE.match(destination) or destination == agent.phone:
            raise invalid("destination")
        agent.forward_to = destination
        self.emit(agent)

    def forward_off(self, agent: Agent, op: str, body) -> None:
        agent.forward_to = None
        self.emit(agent)
