"""Voice calls, part 1: the call data model, the live-call store and how a call is shown.

A :class:`Call` has one :class:`Leg` per party (an agent's device with its own view of
the call, or an external number). :class:`Calls` keeps the live and recently ended
calls, derives each leg's capabilities from the call state table (states.py) and
renders the Call resource and its notifications. The mechanics that move legs
between states are call_flow.py; the operations, call_ops.py. ``L<n>`` = a line of
``gws-8.6-api-reference.txt``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from gwsreplay.sim.model.agents import Agent
from gwsreplay.sim.model.core import Core
from gwsreplay.sim.model.devices import CH_CALLS, Devices, participant
from gwsreplay.sim.model.errors import SC_NOT_FOUND, GwsError
from gwsreplay.sim.model.states import CALL, DIALING, ESTABLISHED, HELD, RELEASED, RINGING

EXTENSIONS = {"WrapUpTime": 0, "BusinessCall": 0}

ACTIVE_STATES = (DIALING, ESTABLISHED)
INTERNAL, INBOUND, OUTBOUND, CONSULT = "Internal", "Inbound", "Outbound", "Consult"


@dataclass(eq=False)
class Leg:
    """One party of a call: an agent's device (with its own view of the call) or an
    external number."""
    call: "Call"
    number: str
    agent: Agent | None
    state: str
    call_type: str
    started: float
    mute: bool = False
    rejectable: bool = False            # delivered "via a queue" (injected): Reject allowed
    conference_owner: bool = False
    monitor: str | None = None          # supervisor leg: ListenIn | Coach | BargeIn
    monitored_user_muted: bool = False
    released_at: float | None = None
    final_participants: list | None = None
    timer: Any = None                   # pending far-end answer

    @property
    def active(self) -> bool:
        return self.state != RELEASED

    @property
    def visible(self) -> bool:
        """Counted as a participant by the others (hidden monitors are not)."""
        return self.monitor is None or self.monitor == "BargeIn"


@dataclass(eq=False)
class Call:
    id: str
    conn_id: str
    dnis: str
    created: float
    ani: str | None = None
    legs: list[Leg] = field(default_factory=list)
    user_data: dict = field(default_factory=dict)
    recording: str = "Stopped"
    parent: "Call | None" = None
    seq: int = 0                        # creation order, to list an agent's calls as self.calls does

    @property
    def uuid(self) -> str:
        return self.id

    def active_legs(self) -> list[Leg]:
        return [leg for leg in self.legs if leg.active]

    def parties(self) -> list[Leg]:
        """Active legs that make the call a call (monitors excluded)."""
        return [leg for leg in self.legs if leg.active and leg.monitor is None]

    def agent_legs(self) -> list[Leg]:
        return [leg for leg in self.legs if leg.active and leg.agent is not None]


class Calls:
    """The live calls (creation order), an index of each agent's calls, the ended ones."""

    def __init__(self, core: Core, devices: Devices, *, call_recording: bool = True, ended_kept: int = 1000):
        self.core = core
        self.devices = devices
        self.call_recording = call_recording
        self.calls: dict[str, Call] = {}
        #: connId -> call id, live and ended: 8.5.2 and the 8.6 state-recovery sample
        #: (L2513-2551) address a call by its connId.
        self._by_conn: dict[str, str] = {}
        self._by_agent: dict[Agent, dict[str, Call]] = {}  # live calls each agent has a leg on
        self._seq = 0
        self.ended: OrderedDict[str, Call] = OrderedDict()   # for SetCallDisposition after release
        self._ended_kept = ended_kept
        core.hooks.activity["voice"] = self.activity
        core.hooks.subresources["calls"] = self.resources_of

    # ================================================================== store

    def new_call(self, *, dnis: str, ani: str | None = None, user_data: dict | None = None) -> Call:
        call_id, conn_id = self.core.ids.call_ids()
        self._seq += 1
        call = Call(id=call_id, conn_id=conn_id, dnis=dnis, ani=ani, created=self.core.scheduler.now(),
                    user_data=dict(user_data or {}), seq=self._seq)
        self.calls[call.id] = call
        self._by_conn[conn_id] = call.id
        return call

    def add_leg(self, call: Call, number: str, agent: Agent | None, state: str, call_type: str) -> Leg:
        leg = Leg(call=call, number=number, agent=agent, state=state, call_type=call_type,
                  started=self.core.scheduler.now())
        call.legs.append(leg)
        self.index(leg)
        return leg

    def index(self, leg: Leg) -> None:
        if leg.agent is not None:
            self._by_agent.setdefault(leg.agent, {})[leg.call.id] = leg.call

    def unindex(self, agent: Agent, call: Call) -> None:
        self._by_agent.get(agent, {}).pop(call.id, None)

    def forget_if_done(self, call: Call) -> None:
        if call.id in self.calls and not call.active_legs():
            del self.calls[call.id]
            for leg in call.legs:
                mine = self._by_agent.get(leg.agent) if leg.agent is not None else None
                if mine is not None:
                    mine.pop(call.id, None)
                    if not mine:
                        del self._by_agent[leg.agent]
            self.ended[call.id] = call
            while len(self.ended) > self._ended_kept:
                _, old = self.ended.popitem(last=False)
                self._by_conn.pop(old.conn_id, None)

    # ================================================================== lookups

    def calls_of(self, agent: Agent) -> list[Call]:
        """The live calls on which the agent has an active leg, in creation order (indexed:
        scanning every live call here made each call notification O(calls))."""
        mine = self._by_agent.get(agent)
        if not mine:
            return []
        calls = [c for c in mine.values() if any(leg.agent is agent and leg.active for leg in c.legs)]
        if len(calls) > 1:
            calls.sort(key=lambda c: c.seq)
        return calls

    @staticmethod
    def leg_of(agent: Agent | None, call: Call | None) -> Leg | None:
        if agent is None or call is None:
            return None
        return next((leg for leg in call.legs if leg.agent is agent and leg.active), None)

    def call_id(self, id_or_conn_id: str) -> str:
        """The call id of a call named by its id or by its connId."""
        return self._by_conn.get(id_or_conn_id, id_or_conn_id)

    def my_leg(self, agent: Agent, call_id: str, *, include_ended: bool = False) -> Leg:
        call_id = self.call_id(call_id)
        call = self.calls.get(call_id)
        leg = self.leg_of(agent, call)
        if leg is None and include_ended:
            call = call or self.ended.get(call_id)
            if call is not None:
                leg = next((x for x in reversed(call.legs) if x.agent is agent), None)
        if leg is None:
            raise GwsError(SC_NOT_FOUND, f"Call {call_id} not found")
        return leg

    def other_leg(self, agent: Agent, leg: Leg) -> Leg | None:
        """The agent's other call for SwapCalls/Complete*: held if ``leg`` is active and
        vice versa (consult calls preferred)."""
        want = ACTIVE_STATES if leg.state == HELD else (HELD,)
        candidates = [self.leg_of(agent, c) for c in self.calls_of(agent) if c is not leg.call]
        candidates = [c for c in candidates if c is not None and c.state in want and c.monitor is None]
        for c in candidates:
            if c.call.parent is leg.call or leg.call.parent is c.call:
                return c
        return candidates[-1] if candidates else None

    # ================================================================== capabilities

    def guards(self, leg: Leg) -> set[str]:
        """The context the call state table's guard groups ask about (states.CALL)."""
        state, guards = leg.state, set()
        if state == RELEASED:
            return guards
        if state == RINGING and leg.rejectable:
            guards.add("rejectable")
        if leg.agent is not None and leg.monitor is None and state in (DIALING, ESTABLISHED, HELD):
            other = self.other_leg(leg.agent, leg)
            if other is not None:
                guards.add("other_call")
                active = other if state == HELD else leg
                if active.state == ESTABLISHED:
                    guards.add("other_established")
        if state == ESTABLISHED:
            visible = [p for p in leg.call.active_legs() if p.visible]
            conference = len(visible) >= 3 or leg.monitor is not None
            if conference and leg.monitor is None:
                guards.add("conference")
                if not leg.mute:
                    guards.add("unmuted")
            if conference and (leg.conference_owner or leg.monitor is not None):
                guards.add("owner")
            if self.call_recording:
                guards.add("recording_" + leg.call.recording.lower())
            if leg.monitor is not None:
                guards.add("monitor_" + leg.monitor.lower())
                guards.add("monitored_user_muted" if leg.monitored_user_muted else "monitored_user_unmuted")
        if leg.mute and not (state == ESTABLISHED and leg.monitor is not None):
            guards.add("muted")
        return guards

    def capabilities(self, leg: Leg) -> list[str]:
        return CALL.capabilities(leg.state, self.guards(leg))

    # ================================================================== resources

    def uri(self, call: Call) -> str:
        return f"{self.core.api}/me/calls/{call.id}"

    def participants(self, leg: Leg) -> list[dict]:
        if leg.final_participants is not None:
            return leg.final_participants
        others = [p for p in leg.call.active_legs() if p is not leg and (p.visible or leg.monitor is not None)]
        if leg.monitor is not None:
            others = [p for p in others if p.monitor is None]
        return [participant(p.number) for p in reversed(others)]

    def duration(self, leg: Leg) -> str:
        end = leg.released_at if leg.released_at is not None else self.core.scheduler.now()
        return str(max(0, int(end - leg.started)))

    def resource(self, leg: Leg) -> dict:
        """The call as ``leg``'s agent sees it (Call resource, L4228-4325)."""
        call = leg.call
        resource = {
            "id": call.id,
            "connId": call.conn_id,
            "state": leg.state,
            "callUuid": call.uuid,
            "deviceUri": self.devices.uri(leg.agent) if leg.agent else None,
            "uri": self.uri(call),
            "path": f"/calls/{call.id}",
            "participants": self.participants(leg),
            "dnis": call.dnis,
        }
        if call.ani:
            resource["ani"] = call.ani
        resource["callType"] = leg.call_type
        resource["capabilities"] = self.capabilities(leg)
        if call.user_data:
            resource["userData"] = dict(call.user_data)
        if call.parent is not None and leg.agent is not None and any(
                p.agent is leg.agent for p in call.parent.legs):
            resource["parentCallUri"] = self.uri(call.parent)
            resource["parentCallPath"] = f"/calls/{call.parent.id}"
        resource["duration"] = self.duration(leg)
        resource["mute"] = "On" if leg.mute else "Off"
        if self.call_recording:
            resource["recordingState"] = call.recording
        resource["supervisorListeningIn"] = leg.monitor is None and any(
            p.monitor in ("ListenIn", "Coach") for p in call.active_legs())
        resource["monitoredUserMuted"] = leg.monitored_user_muted
        # The monitor's mode (ListenIn/Coach/BargeIn) is not on the call: the samples show it by
        # the capabilities (SwitchToBargeIn/SwitchToListenIn) and on the device (L9790-10000).
        resource["monitoring"] = leg.monitor is not None
        return resource

    def resources_of(self, agent: Agent) -> list[dict]:
        """GET /me?subresources=calls."""
        return [self.resource(self.leg_of(agent, c)) for c in self.calls_of(agent)]

    def activity(self, agent: Agent) -> str:
        """The voice channel's ``userActivity``."""
        busy = any(self.leg_of(agent, c).state != RINGING for c in self.calls_of(agent))
        return "BusyOnCall" if busy else "Idle"

    def snapshot(self) -> list[dict]:
        return [
            {
                "id": c.id, "connId": c.conn_id, "callUuid": c.uuid, "dnis": c.dnis, "ani": c.ani,
                "userData": dict(c.user_data), "recordingState": c.recording,
                "parentCallId": c.parent.id if c.parent else None,
                "parties": [
                    {"phoneNumber": leg.number, "userName": leg.agent.name if leg.agent else None,
                     "state": leg.state, "callType": leg.call_type, "mute": leg.mute,
                     "monitor": leg.monitor, "duration": self.duration(leg)}
                    for leg in c.active_legs()
                ],
            }
            for c in self.calls.values()
        ]

    # ================================================================== notifications

    def emit(self, leg: Leg, notification_type: str) -> None:
        if leg.agent is None:
            return
        self.core.emit(leg.agent.name, CH_CALLS, {
            "notificationType": notification_type,
            "call": self.resource(leg),
            "phoneNumber": leg.agent.phone,
            "extensions": dict(EXTENSIONS),
            "messageType": "CallStateChangeMessage",
        })

    def emit_to_call(self, leg: Leg, notification_type: str, exclude: tuple = ()) -> None:
        """``leg``'s agent first, then every other agent on the call."""
        self.emit(leg, notification_type)
        for other in leg.call.agent_legs():
            if other is not leg and other not in exclude:
                self.emit(other, notification_type)

    def emit_error(self, agent: Agent, message: str, *, call: Call | None = None) -> None:
        """ErrorMessage (L4185-4225). The sample names the call by its connId
        (``.../api/v2/calls/0071023821aec021``), as T-Server does."""
        self.devices.emit_error(agent, message,
                                call_uri=f"{self.core.api}/calls/{call.conn_id}" if call is not None else None)
