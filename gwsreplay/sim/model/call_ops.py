"""Voice calls, part 3: the call operations, Dial, supervision and the voice control API.

POST /me/calls/{id} checks the operation against the leg's capabilities (the call
state table, states.py) and the handler moves the leg to the state the table
names; multi-party effects go through call_flow.py. Supervisors' device operations
(ListenIn, Coach, BargeIn, CancelSupervisorMonitoring) plug into the session's
device resource through ``Hooks.device_operations``. ``L<n>`` = a line of
``gws-8.6-api-reference.txt``.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from gwsreplay.sim.model.agents import DEFAULT_DISPOSITION_KEY, Agent, Monitoring
from gwsreplay.sim.model.call_flow import CallFlow
from gwsreplay.sim.model.calls import ACTIVE_STATES, CONSULT, INBOUND, INTERNAL, OUTBOUND, Calls, Leg
from gwsreplay.sim.model.core import Core
from gwsreplay.sim.model.devices import Devices
from gwsreplay.sim.model.errors import (
    INCORRECT_OBJECT_STATE, SC_IN_USE, SC_NOT_FOUND, SC_OK, GwsError, StateError, invalid, missing,
    not_valid_in_state,
)
from gwsreplay.sim.model.requests import (
    VOICE_ALIASES, collection, destination, done, handler_for, last_segment, operation_name,
    optional_user_data, project,
)
from gwsreplay.sim.model.states import CALL, DIALING, ESTABLISHED, HELD, RECORDING_TRANSITIONS, RINGING

MONITOR_SCOPES = ("Call", "Agent")
MONITOR_MODES = ("AllCalls", "NextCall")
_DTMF = re.compile(r"^[0-9*#A-Da-d]+$")

DEVICE_CALLS_OPERATIONS = {"Dial": "_op_dial"}
CALL_OPERATIONS = {
    # basic call control
    "Answer": "_op_answer",
    "Reject": "_op_reject",
    "Hold": "_op_to_next_state",
    "Retrieve": "_op_to_next_state",
    "Hangup": "_op_hangup",
    "SendDtmf": "_op_send_dtmf",
    "MuteCall": "_op_mute",
    "UnmuteCall": "_op_mute",
    "SetCallDisposition": "_op_set_disposition",
    # transfers and conferences
    "SingleStepTransfer": "_op_single_step_transfer",
    "InitiateTransfer": "_op_initiate_consult",
    "CompleteTransfer": "_op_complete_transfer",
    "SingleStepConference": "_op_single_step_conference",
    "InitiateConference": "_op_initiate_consult",
    "CompleteConference": "_op_complete_conference",
    "RemoveParticipantFromConference": "_op_remove_participant",
    "ClearCall": "_op_clear_call",
    "SwapCalls": "_op_swap_calls",
    # call data
    "AttachUserData": "_op_attach_user_data",
    "UpdateUserData": "_op_attach_user_data",
    "DeleteUserData": "_op_delete_user_data",
    "DeleteUserDataPair": "_op_delete_user_data_pair",
    # recording
    "StartCallRecording": "_op_recording",
    "PauseCallRecording": "_op_recording",
    "ResumeCallRecording": "_op_recording",
    "StopCallRecording": "_op_recording",
    # supervision (on the supervisor's own call)
    "SwitchToBargeIn": "_op_switch_monitoring",
    "SwitchToListenIn": "_op_switch_monitoring",
    "MuteMonitoredUser": "_op_mute_monitored",
    "UnmuteMonitoredUser": "_op_mute_monitored",
}


class CallOps:
    def __init__(self, core: Core, devices: Devices, calls: Calls, flow: CallFlow):
        self.core = core
        self.devices = devices
        self.calls = calls
        self.flow = flow
        core.hooks.device_operations.update({"ListenIn": self._op_monitor, "Coach": self._op_monitor,
                                             "BargeIn": self._op_monitor,
                                             "CancelSupervisorMonitoring": self._op_cancel_monitoring})
        core.hooks.session_ended.append(self._session_ended)

    def routes(self) -> tuple:
        return (
            ("GET", r"/me/devices/(?P<device_id>[^/]+)/calls", self._get_my_device_calls),
            ("POST", r"/me/devices/(?P<device_id>[^/]+)/calls", self._post_my_device_calls),
            ("GET", r"/me/calls", self._get_my_calls),
            ("GET", r"/me/calls/(?P<call_id>[^/]+)", self._get_my_call),
            ("POST", r"/me/calls/(?P<call_id>[^/]+)", self._post_my_call),
        )

    # ================================================================== control API

    def inject_call(self, from_number: str, to_number: str, user_data: dict | None = None) -> dict:
        """A caller rings an agent: Inbound from outside (via a queue), Internal from a DN of the roster."""
        self.core.require_voice()
        from_number, to_number = str(from_number), str(to_number)
        if not from_number:
            raise missing("from")
        if not to_number:
            raise missing("to")
        if user_data is not None and not isinstance(user_data, dict):
            raise invalid("userData", "must be a JSON object")
        target = self.core.agents_by_phone.get(to_number)
        if target is None:
            raise GwsError(SC_NOT_FOUND, f"No agent has phone number {to_number}")
        dest_agent, dest_number = self.flow.resolve_destination(to_number)
        if dest_agent is not None and dest_agent.dnd:
            raise GwsError(SC_IN_USE, f"Destination {dest_number} is busy (do not disturb)")
        # T-Server's rule: a caller that is a DN of the switch makes an Internal call, without ani (L1128)
        call_type = INTERNAL if from_number in self.core.agents_by_phone else INBOUND
        call = self.calls.new_call(dnis=to_number, ani=None if call_type == INTERNAL else from_number,
                                   user_data=user_data)
        self.calls.add_leg(call, from_number, None, DIALING, call_type)
        self.flow.deliver(call, dest_number, dest_agent, call_type, rejectable=True)
        return {"statusCode": SC_OK, "id": call.id}

    def far_end_hangup(self, call_id: str) -> dict:
        """The external party (or, on an agent-only call, everyone) hangs up."""
        self.core.require_voice()
        call = self.calls.calls.get(self.calls.call_id(call_id))
        if call is None:
            raise GwsError(SC_NOT_FOUND, f"Call {call_id} not found")
        externals = [leg for leg in call.active_legs() if leg.agent is None]
        if externals:
            self.flow.leave(call, externals)
        else:
            self.flow.release_call(call, first=None)
        return {"statusCode": SC_OK}

    # ================================================================== GET

    def _get_my_device_calls(self, agent, params, query, body):
        self.devices.check_mine(agent, params["device_id"])
        return self._get_my_calls(agent, params, query, body)

    def _get_my_calls(self, agent, params, query, body):
        legs = [self.calls.leg_of(agent, c) for c in self.calls.calls_of(agent)]
        return collection(self.core.api, "calls", legs, self.calls.resource, lambda leg: f"/calls/{leg.call.id}",
                          query, uri=lambda leg: self.calls.uri(leg.call))

    def _get_my_call(self, agent, params, query, body):
        leg = self.calls.my_leg(agent, params["call_id"])
        return {"statusCode": SC_OK, "call": project(self.calls.resource(leg), query.get("fields"))}

    # ================================================================== POST

    def _post_my_device_calls(self, agent, params, query, body):
        self.devices.check_mine(agent, params["device_id"])
        op = operation_name(body, VOICE_ALIASES)
        handler = handler_for(op, DEVICE_CALLS_OPERATIONS, self)
        self.core.require_voice()
        return done(handler(agent, op, body))

    def _post_my_call(self, agent, params, query, body):
        op = operation_name(body, VOICE_ALIASES)
        handler = handler_for(op, CALL_OPERATIONS, self)
        self.core.require_voice()
        call_id = params["call_id"]       # the call's id, or its connId (8.5.2, L2513-2551)
        if op == "SetCallDisposition":
            leg = self.calls.my_leg(agent, call_id, include_ended=True)
        else:
            leg = self.calls.my_leg(agent, call_id)
            caps = self.calls.capabilities(leg)
            if op not in caps and op not in CALL.ungoverned:
                raise not_valid_in_state(op, f"call {call_id}", leg.state, caps, notify=self._refusal(agent, leg))
        return done(handler(agent, op, leg, body))

    def _refusal(self, agent: Agent, leg: Leg):
        """T-Server's "Incorrect object state" about ``leg``'s call (errors.StateError)."""
        return lambda: self.calls.emit_error(agent, INCORRECT_OBJECT_STATE, call=leg.call)

    # ================================================================== dialing

    def _op_dial(self, agent, op, body):
        number = destination(body)
        user_data = optional_user_data(body.get("userData"))
        if self.flow.unreachable(agent, number, device_error=True):
            return None
        dest_agent, dest_number = self.flow.resolve_destination(number)
        call = self.calls.new_call(dnis=number, user_data=user_data)
        caller = self.calls.add_leg(call, agent.phone, agent, DIALING, INTERNAL if dest_agent else OUTBOUND)
        callee = self.calls.add_leg(call, dest_number, dest_agent, RINGING, INTERNAL)
        self.calls.emit(caller, "StatusChange")   # Dialing, the dialed number as participant (L5367)
        self.flow.start_ringing(callee)

    # ================================================================== basic call control

    def _op_answer(self, agent, op, leg, body):
        self.flow.establish(leg)

    def _op_reject(self, agent, op, leg, body):
        # "Web Services redirects the call to the queue from which it was delivered"
        # (L5592). There is no queue here: the call ends.
        self.flow.release_call(leg.call, first=leg)

    def _op_to_next_state(self, agent, op, leg, body):
        """Hold, Retrieve: only this leg changes state."""
        leg.state = CALL.next(leg.state, op)
        self.calls.emit(leg, "StatusChange")

    def _op_hangup(self, agent, op, leg, body):
        self.flow.leave(leg.call, [leg])

    def _op_send_dtmf(self, agent, op, leg, body):
        digits = body.get("digits")
        if digits is None or digits == "":
            raise missing("digits")
        if not isinstance(digits, (str, int)) or isinstance(digits, bool) or not _DTMF.match(str(digits)):
            raise invalid("digits")
        self.calls.emit(leg, "DtmfSent")

    def _op_mute(self, agent, op, leg, body):
        leg.mute = op == "MuteCall"
        self.calls.emit(leg, "StatusChange")

    def _op_set_disposition(self, agent, op, leg, body):
        disposition = body.get("disposition")
        if disposition is None or disposition == "":
            raise missing("disposition")
        key = body.get("dispositionKey") or DEFAULT_DISPOSITION_KEY
        if not leg.active:
            return None   # released: EventUserEvent to reporting, no notification (L6300-6305)
        leg.call.user_data[str(key)] = disposition
        self.calls.emit_to_call(leg, "AttachedDataChanged")

    # ================================================================== call data and recording

    def _op_attach_user_data(self, agent, op, leg, body):
        user_data = body.get("userData")
        if user_data is None:
            raise missing("userData")
        if not isinstance(user_data, Mapping):
            raise invalid("userData", "must be a JSON object")
        leg.call.user_data.update(user_data)
        self.calls.emit_to_call(leg, "AttachedDataChanged")

    def _op_delete_user_data(self, agent, op, leg, body):
        leg.call.user_data.clear()
        self.calls.emit_to_call(leg, "AttachedDataChanged")

    def _op_delete_user_data_pair(self, agent, op, leg, body):
        key = body.get("key")
        if key is None or key == "":
            raise missing("key")
        leg.call.user_data.pop(str(key), None)
        self.calls.emit_to_call(leg, "AttachedDataChanged")

    def _op_recording(self, agent, op, leg, body):
        state, flag = RECORDING_TRANSITIONS[op]
        leg.call.recording = state
        leg.call.user_data["GSIP_RECORD"] = flag      # as in the samples (L10250-10256)
        self.calls.emit_to_call(leg, "CallRecordingStateChange")

    # ================================================================== transfers and conferences

    def _op_single_step_transfer(self, agent, op, leg, body):
        number = destination(body)
        user_data = optional_user_data(body.get("userData"))
        call = leg.call
        if self.flow.unreachable(agent, number, call=call):
            return None
        call.user_data.update(user_data)
        dest_agent, dest_number = self.flow.resolve_destination(number)
        self.flow.release_legs([leg])
        self.calls.emit(leg, "StatusChange")
        new_leg = self.flow.deliver(call, dest_number, dest_agent, self.flow.joining_type(call))
        self.flow.drop_monitors_of(call, agent)
        for other in call.agent_legs():
            if other is not new_leg and other.monitor is None:
                self.calls.emit(other, "ParticipantsUpdated")
        self.flow.check_call_end(call)

    def _op_single_step_conference(self, agent, op, leg, body):
        number = destination(body)
        user_data = optional_user_data(body.get("userData"))
        call = leg.call
        if self.flow.unreachable(agent, number, call=call):
            return None
        call.user_data.update(user_data)
        call.user_data.setdefault("FirstConferencePartyDN", agent.phone)   # L6436-6452
        leg.conference_owner = True
        dest_agent, dest_number = self.flow.resolve_destination(number)
        new_leg = self.calls.add_leg(call, dest_number, dest_agent, RINGING, self.flow.joining_type(call))
        # Everyone already on the call sees the new participant first, the new party rings after.
        self.calls.emit_to_call(leg, "ParticipantsUpdated", exclude=(new_leg,))
        self.flow.start_ringing(new_leg)

    def _op_initiate_consult(self, agent, op, leg, body):
        """InitiateTransfer / InitiateConference: hold this call, dial a Consult call."""
        number = destination(body)
        user_data = optional_user_data(body.get("userData"))
        parent = leg.call
        if self.flow.unreachable(agent, number, call=parent):
            return None
        dest_agent, dest_number = self.flow.resolve_destination(number)
        consult = self.calls.new_call(dnis=number, user_data={**parent.user_data, **user_data})
        consult.parent = parent
        caller = self.calls.add_leg(consult, agent.phone, agent, DIALING, CONSULT)
        callee = self.calls.add_leg(consult, dest_number, dest_agent, RINGING, CONSULT)
        leg.state = CALL.next(leg.state, op)
        self.calls.emit(leg, "StatusChange")      # Held, already offering SwapCalls (L7283-7310)
        self.calls.emit(caller, "StatusChange")   # the Consult call, Dialing (L7338-7360)
        self.flow.start_ringing(callee)

    def _consult_pair(self, agent: Agent, leg: Leg, body) -> tuple[Leg, Leg]:
        """(held leg, active leg) of the agent for Complete*/SwapCalls."""
        other_uri = body.get("consultCallUri") or body.get("otherCallUri")
        if other_uri:
            other_id = self.calls.call_id(last_segment(other_uri))
            calls = self.calls.calls
            other = self.calls.leg_of(agent, calls.get(other_id)) if other_id in calls else None
            if other is None or other is leg:
                name = "consultCallUri" if body.get("consultCallUri") else "otherCallUri"
                raise invalid(name, f"No call of yours at {other_uri}")
        else:
            other = self.calls.other_leg(agent, leg)
            if other is None:
                raise StateError("There is no other call to complete with", notify=self._refusal(agent, leg))
        held, active = (leg, other) if leg.state == HELD else (other, leg)
        if held.state != HELD or active.state not in ACTIVE_STATES:
            raise StateError("One call must be held and the other dialing or established",
                             notify=self._refusal(agent, leg))
        return held, active

    def _op_complete_transfer(self, agent, op, leg, body):
        held, active = self._consult_pair(agent, leg, body)
        original, consult = held.call, active.call
        # The transferring agent leaves both calls: original first, then consult (L7765-7860).
        self.flow.release_legs([held])
        self.calls.emit(held, "StatusChange")
        self.flow.release_legs([active])
        self.calls.emit(active, "StatusChange")
        moved = self.flow.merge(consult, original)
        self.flow.drop_monitors_of(original, agent)
        for other in original.agent_legs():
            if other not in moved and other.monitor is None:
                self.calls.emit(other, "ParticipantsUpdated")
        self.flow.check_call_end(original)

    def _op_complete_conference(self, agent, op, leg, body):
        held, active = self._consult_pair(agent, leg, body)
        if active.state != ESTABLISHED:
            raise StateError("The consult call is not established yet", notify=self._refusal(agent, active))
        original, consult = held.call, active.call
        self.flow.release_legs([active])
        self.calls.emit(active, "StatusChange")      # the consult call is released (L6726-6770)
        moved = self.flow.merge(consult, original)
        held.state = CALL.next(held.state, op)       # Held -> Established
        held.conference_owner = True
        self.calls.emit(held, "ParticipantsUpdated")  # ... and the original call grows (L6773-6830)
        for other in original.agent_legs():
            if other is not held and other not in moved and other.monitor is None:
                self.calls.emit(other, "ParticipantsUpdated")

    def _op_remove_participant(self, agent, op, leg, body):
        participant = body.get("participant")
        if participant is None or participant == "":
            raise missing("participant")
        call = leg.call
        victim = next((p for p in call.active_legs()
                       if p.number == str(participant) and p is not leg and p.monitor is None), None)
        if victim is None:
            self.calls.emit_error(agent, "Invalid DN", call=call)   # T-Server refuses: asynchronous
            return None
        self.flow.leave(call, [victim], requester=leg)

    def _op_clear_call(self, agent, op, leg, body):
        self.flow.release_call(leg.call, first=leg)

    def _op_swap_calls(self, agent, op, leg, body):
        held, active = self._consult_pair(agent, leg, body)
        if active.state != ESTABLISHED:
            # SwapCalls is listed for a Dialing consult call (L8660-8700) but a call that
            # is still dialing cannot be held: T-Server refuses.
            self.calls.emit_error(agent, INCORRECT_OBJECT_STATE, call=active.call)
            return None
        active.state = CALL.next(active.state, op)     # Established -> Held
        self.calls.emit(active, "StatusChange")
        held.state = CALL.next(held.state, op)         # Held -> Established
        self.calls.emit(held, "StatusChange")

    # ================================================================== supervision (call)

    def _op_switch_monitoring(self, agent, op, leg, body):
        new_state = "BargeIn" if op == "SwitchToBargeIn" else "ListenIn"
        leg.monitor = new_state
        leg.mute = new_state == "ListenIn"
        if agent.monitoring is not None:
            agent.monitoring.state = new_state
        self.calls.emit(leg, "StatusChange")
        for other in leg.call.agent_legs():
            if other is not leg and other.monitor is None:
                self.calls.emit(other, "ParticipantsUpdated")

    def _op_mute_monitored(self, agent, op, leg, body):
        muted = op == "MuteMonitoredUser"
        target = agent.monitoring.target if agent.monitoring else None
        leg.monitored_user_muted = muted
        self.calls.emit(leg, "MonitoredUserMutedStateChange")
        target_leg = self.calls.leg_of(target, leg.call) if target else None
        if target_leg is not None:
            target_leg.monitored_user_muted = muted
            self.calls.emit(target_leg, "MonitoredUserMutedStateChange")

    # ================================================================== supervision (device)

    def _op_monitor(self, agent: Agent, op: str, body: Any) -> None:
        """ListenIn / Coach / BargeIn on a target device (L9560-9860)."""
        target_uri = body.get("targetDeviceUri")
        if target_uri is None or target_uri == "":
            raise missing("targetDeviceUri")
        target = self.core.agents_by_device.get(last_segment(target_uri))
        if target is None or target is agent:
            raise invalid("targetDeviceUri", f"No device to monitor at {target_uri}")
        scope = body.get("supervisorMonitoringScope", "Call")
        if scope not in MONITOR_SCOPES:
            raise invalid("supervisorMonitoringScope")
        mode = body.get("supervisorMonitoringMode", "AllCalls")
        if mode not in MONITOR_MODES:
            raise invalid("supervisorMonitoringMode")
        if agent.monitoring is not None:
            self.flow.stop_monitoring(agent, notify_device=False)
        agent.monitoring = Monitoring(state=op, mode=mode, scope=scope, target=target)
        self.devices.emit(agent)
        # Intrusion: a call the target already has is joined at once (docs/voice-model.md).
        for call in self.calls.calls_of(target):
            leg = self.calls.leg_of(target, call)
            if leg.state == ESTABLISHED and leg.monitor is None:
                self.flow.join_monitor(agent, call)
                break

    def _op_cancel_monitoring(self, agent: Agent, op: str, body: Any) -> None:
        self.flow.stop_monitoring(agent, notify_device=True)

    def _session_ended(self, agent: Agent) -> None:
        if agent.monitoring is not None:
            self.flow.stop_monitoring(agent, notify_device=False)
