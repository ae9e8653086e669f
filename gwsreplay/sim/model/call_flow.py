"""Voice calls, part 2: the mechanics that move legs between states.

Ringing and answering (an external number answers after ``external_answer_delay``),
leaving and releasing, merging a consult call into its original call, T-Server's
asynchronous refusals, and supervisors joining the calls of the agents they monitor.
The operations that drive them are call_ops.py.
"""

from __future__ import annotations

import logging

from gwsreplay.sim.model.agents import Agent
from gwsreplay.sim.model.calls import INBOUND, INTERNAL, Call, Calls, Leg
from gwsreplay.sim.model.core import Core
from gwsreplay.sim.model.devices import DIALABLE, Devices
from gwsreplay.sim.model.states import CALL, DIALING, ESTABLISHED, RELEASED, RINGING

log = logging.getLogger(__name__)


class CallFlow:
    def __init__(self, core: Core, devices: Devices, calls: Calls, *, external_answer_delay: float = 1.0):
        self.core = core
        self.devices = devices
        self.calls = calls
        self.external_answer_delay = external_answer_delay

    # ================================================================== destinations

    def resolve_destination(self, number: str) -> tuple[Agent | None, str]:
        """Agent or external number, after one hop of call forwarding."""
        agent = self.core.agents_by_phone.get(number)
        if agent is not None and agent.forward_to and agent.forward_to != number:
            forwarded = agent.forward_to
            return self.core.agents_by_phone.get(forwarded), forwarded
        return agent, number

    def unreachable(self, agent: Agent, number: str, *, device_error: bool = False,
                    call: Call | None = None) -> bool:
        """T-Server refusals, reported asynchronously as ErrorMessage: an undialable number,
        the agent's own number, a number already on the call, a destination in DND."""
        message = None
        if not DIALABLE.match(number) or number == agent.phone:
            message = "Invalid Called Dn"
        elif call is not None and any(leg.number == number for leg in call.active_legs()):
            message = "Invalid Called Dn"
        else:
            dest_agent, _ = self.resolve_destination(number)
            if dest_agent is not None and dest_agent.dnd:
                message = "DN is busy"
        if message is None:
            return False
        self.calls.emit_error(agent, message, call=None if device_error else call)
        return True

    @staticmethod
    def joining_type(call: Call) -> str:
        """callType for an agent who joins an existing call (transfer/conference target)."""
        return INBOUND if any(leg.agent is None for leg in call.active_legs()) else INTERNAL

    # ================================================================== ringing and answering

    def deliver(self, call: Call, number: str, dest_agent: Agent | None, call_type: str, *,
                rejectable: bool = False) -> Leg:
        """Bring a new party into ``call``: an agent's phone rings, an external number
        answers after ``external_answer_delay``."""
        leg = self.calls.add_leg(call, number, dest_agent, RINGING, call_type)
        leg.rejectable = rejectable and dest_agent is not None
        self.start_ringing(leg)
        return leg

    def start_ringing(self, leg: Leg) -> None:
        if leg.agent is not None:
            self.calls.emit(leg, "StatusChange")
        else:
            leg.timer = self.core.scheduler.call_later(
                self.external_answer_delay, lambda: self._guard(self._external_answers, leg))

    def _external_answers(self, leg: Leg) -> None:
        leg.timer = None
        if leg.state == RINGING:
            self.establish(leg)

    @staticmethod
    def _guard(fn, *args) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("voice model timer failed")

    def establish(self, leg: Leg) -> None:
        """``leg`` answers: it and every Dialing party of its call become Established."""
        call = leg.call
        established = [leg] + [other for other in call.active_legs() if other is not leg and other.state == DIALING]
        leg.state = CALL.next(leg.state, "Answer")      # Ringing -> Established
        for party in established[1:]:
            party.state = ESTABLISHED                    # the far end answered the Dialing party
        for party in established:
            self.calls.emit(party, "StatusChange")
        for party in established:
            self.maybe_monitor(party)

    # ================================================================== leaving and releasing

    def release_legs(self, legs: list[Leg]) -> None:
        """Mark legs Released, freezing what each saw (participants, duration)."""
        frozen = [(leg, self.calls.participants(leg)) for leg in legs]
        now = self.core.scheduler.now()
        for leg, participants in frozen:
            leg.state = RELEASED
            leg.released_at = now
            leg.final_participants = participants
            leg.mute = False
            if leg.timer is not None:
                _cancel(leg.timer)
                leg.timer = None

    def leave(self, call: Call, legs: list[Leg], *, requester: Leg | None = None) -> None:
        """Some parties hang up; the call ends when fewer than two parties remain."""
        legs = [leg for leg in legs if leg.active]
        remaining = [p for p in call.parties() if p not in legs]
        if len(remaining) < 2 and any(leg.monitor is None for leg in legs):
            self.release_call(call, first=legs[0] if legs else None)
            return
        self.release_legs(legs)
        for leg in legs:
            self.calls.emit(leg, "StatusChange")
            self._after_monitor_left(leg)
        for leg in legs:
            if leg.agent is not None and leg.monitor is None:
                self.drop_monitors_of(call, leg.agent)
        if any(leg.visible for leg in legs):
            ordered = call.agent_legs()
            if requester is not None and requester in ordered:
                ordered.remove(requester)
                ordered.insert(0, requester)
            for other in ordered:
                self.calls.emit(other, "ParticipantsUpdated")
        elif legs and legs[0].monitor is not None:
            # a hidden monitor left: the monitored agent's supervisorListeningIn changes
            for other in call.agent_legs():
                if other.monitor is None:
                    self.calls.emit(other, "ParticipantsUpdated")
        self.calls.forget_if_done(call)

    def drop_monitors_of(self, call: Call, agent: Agent) -> None:
        """Agent-scope monitoring ends when the monitored agent leaves the call."""
        for leg in call.active_legs():
            sup = leg.agent
            if leg.monitor is not None and sup and sup.monitoring and sup.monitoring.target is agent:
                if sup.monitoring.scope == "Agent" or not any(
                        p.agent is not None and p.monitor is None for p in call.active_legs()):
                    self.leave(call, [leg])

    def check_call_end(self, call: Call) -> None:
        if call.active_legs() and len(call.parties()) < 2:
            self.release_call(call, first=None)
        self.calls.forget_if_done(call)

    def release_call(self, call: Call, *, first: Leg | None) -> None:
        """Everyone is released; ``first`` is notified first."""
        legs = call.active_legs()
        if first is not None and first in legs:
            legs.remove(first)
            legs.insert(0, first)
        self.release_legs(legs)
        for leg in legs:
            self.calls.emit(leg, "StatusChange")
        for leg in legs:
            self._after_monitor_left(leg)
        self.calls.forget_if_done(call)

    def _after_monitor_left(self, leg: Leg) -> None:
        sup = leg.agent
        if leg.monitor is not None and sup is not None and sup.monitoring is not None \
                and sup.monitoring.mode == "NextCall":
            sup.monitoring = None
            self.devices.emit(sup)

    # ================================================================== merging

    def merge(self, source: Call, target: Call) -> list[Leg]:
        """Move the remaining parties of ``source`` into ``target`` (T-Server's
        EventPartyChanged): their agents see the source call Released, then the target call."""
        for leg in [x for x in source.active_legs() if x.monitor is not None]:
            self.leave(source, [leg])
        moving = source.active_legs()
        for leg in moving:
            if leg.agent is not None:
                self._emit_released_view(leg)
        for leg in moving:
            source.legs.remove(leg)
            leg.call = target
            if leg.agent is not None:
                leg.call_type = self.joining_type(target)
                if not any(x.agent is leg.agent for x in source.legs):
                    self.calls.unindex(leg.agent, source)
            target.legs.append(leg)
            self.calls.index(leg)
        for leg in moving:
            if leg.agent is not None:
                self.calls.emit(leg, "StatusChange")
        for leg in moving:
            if leg.state == ESTABLISHED:
                self.maybe_monitor(leg)
        self.calls.forget_if_done(source)
        return moving

    def _emit_released_view(self, leg: Leg) -> None:
        """Tell ``leg``'s agent that its current call is Released, without releasing the leg."""
        saved = leg.state, leg.released_at, leg.final_participants
        leg.final_participants = self.calls.participants(leg)
        leg.state, leg.released_at = RELEASED, self.core.scheduler.now()
        try:
            self.calls.emit(leg, "StatusChange")
        finally:
            leg.state, leg.released_at, leg.final_participants = saved

    # ================================================================== supervisors joining calls

    def join_monitor(self, supervisor: Agent, call: Call) -> None:
        mon = supervisor.monitoring
        if mon is None or self.calls.leg_of(supervisor, call) is not None:
            return
        if any(self.calls.leg_of(supervisor, c).monitor for c in self.calls.calls_of(supervisor)):
            return   # one monitored call at a time
        leg = self.calls.add_leg(call, supervisor.phone, supervisor, ESTABLISHED, INTERNAL)
        leg.monitor = mon.state
        leg.mute = mon.state == "ListenIn"
        self.calls.emit(leg, "StatusChange")
        self._announce_monitor_change(call, leg)

    def _announce_monitor_change(self, call: Call, monitor_leg: Leg) -> None:
        """BargeIn is a visible participant for everyone; ListenIn/Coach only change the
        monitored agent's ``supervisorListeningIn``."""
        target = monitor_leg.agent.monitoring.target if monitor_leg.agent.monitoring else None
        for leg in call.agent_legs():
            if leg is monitor_leg or leg.monitor is not None:
                continue
            if monitor_leg.visible or leg.agent is target:
                self.calls.emit(leg, "ParticipantsUpdated")

    def maybe_monitor(self, leg: Leg) -> None:
        """A monitored agent's call became Established: bring their supervisors in."""
        if leg.agent is None or leg.monitor is not None:
            return
        for sup in self.core.agents.values():
            if sup.monitoring is not None and sup.monitoring.target is leg.agent:
                self.join_monitor(sup, leg.call)

    def stop_monitoring(self, supervisor: Agent, *, notify_device: bool) -> None:
        supervisor.monitoring = None
        for call in list(self.calls.calls_of(supervisor)):
            leg = self.calls.leg_of(supervisor, call)
            if leg.monitor is not None:
                self.leave(call, [leg])
        if notify_device:
            self.devices.emit(supervisor)


def _cancel(handle) -> None:
    try:
        handle.cancel()
    except Exception:
        pass
