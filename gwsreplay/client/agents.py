"""Scripted agents: many headless desktops working realistic voice sessions.

Each agent logs in, goes Ready and, until the duration is over, picks a
scenario with its own seeded random generator: an inbound call (injected
through the simulator's control API), an outbound call to an external number,
an agent-to-agent call, a transfer, a conference, a Not Ready break and, on
the media channels it logged in to, a chat, an email, a workitem or an IM. Calls
between agents need a partner who is free at that moment, so agents announce
when they are idle to a `Switchboard`, and a partner who is taken answers the
call instead of starting a scenario of its own.
"""

from __future__ import annotations

import asyncio
import functools
import random
from dataclasses import dataclass, field
from typing import Awaitable, Callable

import aiohttp

from gwsreplay.client.control import ControlApi, ControlError
from gwsreplay.client.desktop import Desktop, DesktopError
from gwsreplay.client.rest import ConnectOptions
from gwsreplay.client.media_scenarios import (
    InteractionMirror, Pace, chat_scenario, email_scenario, im_initiator, im_responder, media_ready,
    workitem_scenario, wrap_up_media,
)

SCENARIOS = ("inbound", "outbound", "agent_to_agent", "transfer", "conference", "not_ready_break",
             "chat", "email", "workitem", "im")
CHANNELS = ("voice", "chat", "email", "workitem", "im")


@dataclass
class AgentsConfig:
    target: str
    agents: int = 5
    duration: float = 60.0
    seed: int = 1
    transport: str = "long-polling"
    password: str = "password"
    first_agent: int = 1          # agentK for K in first_agent .. first_agent+agents-1
    think_time: float = 0.3       # seconds between steps; scaled by the random generator
    talk_time: float = 0.5
    scenarios: tuple[str, ...] = ()  # restrict to these scenario names; empty = all that apply
    channels: tuple[str, ...] = ("voice",)  # StartContactCenterSession channels; media ones add scenarios
    connect: ConnectOptions = ConnectOptions()  # CA file to verify HTTPS against, explicit proxy


@dataclass
class AgentsSummary:
    agents: int = 0
    logged_in: int = 0
    operations: int = 0
    errors: int = 0
    notifications: int = 0
    scenarios: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


@dataclass
class Reservation:
    """A partner asked this agent to take a call from it."""
    caller: str
    kind: str = "call"  # "call" or "im"
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Switchboard:
    """Who is idle, and who has been asked to take a call. Single event loop, no locks needed."""

    def __init__(self) -> None:
        self.idle: dict[str, "ScriptedAgent"] = {}
        self.reservations: dict[str, Reservation] = {}
        self._wakeups: dict[str, asyncio.Event] = {}

    def announce_idle(self, agent: "ScriptedAgent") -> asyncio.Event:
        self.idle[agent.name] = agent
        self._wakeups[agent.name] = asyncio.Event()
        return self._wakeups[agent.name]

    def leave(self, agent: "ScriptedAgent") -> Reservation | None:
        """Stop being idle; returns the reservation if somebody took this agent meanwhile."""
        self.idle.pop(agent.name, None)
        return self.reservations.get(agent.name)

    def reserve_partner(self, caller: "ScriptedAgent", rng: random.Random, kind: str = "call") -> "ScriptedAgent | None":
        candidates = sorted(name for name in self.idle if name != caller.name)
        if not candidates:
            return None
        name = rng.choice(candidates)
        partner = self.idle.pop(name)
        self.reservations[name] = Reservation(caller.name, kind)
        self._wakeups[name].set()
        return partner

    def finish(self, partner: "ScriptedAgent") -> None:
        reservation = self.reservations.pop(partner.name, None)
        if reservation:
            reservation.done.set()


class ScriptedAgent:
    def __init__(self, config: AgentsConfig, index: int, switchboard: Switchboard,
                 control: "ControlApi | None", summary: AgentsSummary):
        self.config = config
        self.name = f"agent{index}"
        self.phone = str(7000 + index)
        self.rng = random.Random(config.seed * 1000 + index)
        self.desktop = Desktop(config.target, self.name, config.password, transport=config.transport,
                               connect=config.connect)
        self.mirror = InteractionMirror(self.desktop)
        self.pace = Pace(self.rng, config.think_time, config.talk_time)
        self.media = tuple(c for c in config.channels if c != "voice")
        self.switchboard = switchboard
        self.control = control
        self.summary = summary

    async def pause(self, base: float) -> None:
        await asyncio.sleep(base * (0.5 + self.rng.random()))

    # ---- lifecycle -------------------------------------------------------
    async def run(self, stop_at: float) -> None:
        loop = asyncio.get_running_loop()
        try:
            await self.desktop.login(channels=self.config.channels)
            self.summary.logged_in += 1
            await self.desktop.agent_state("Ready")
            await media_ready(self.desktop, tuple(c for c in self.media if c != "im"))
            while loop.time() < stop_at:
                wakeup = self.switchboard.announce_idle(self)
                try:
                    await asyncio.wait_for(wakeup.wait(), self.config.think_time * (1 + 2 * self.rng.random()))
                except asyncio.TimeoutError:
                    pass
                reservation = self.switchboard.leave(self)
                if reservation:
                    await self.take_partner_call(reservation)
                elif loop.time() < stop_at:
                    await self.run_scenario()
        except (DesktopError, ControlError, aiohttp.ClientError, asyncio.TimeoutError) as exc:
            self.summary.failures.append(f"{self.name}: {exc}")
        finally:
            self.switchboard.leave(self)
            reservation = self.switchboard.reservations.get(self.name)
            if reservation:
                self.switchboard.finish(self)
            if self.media:
                await wrap_up_media(self.desktop, self.mirror)
            await self.wrap_up_calls()
            await self.desktop.logout()

    async def wrap_up_calls(self) -> None:
        """Hang up anything still active so a stopped run leaves no call behind."""
        for call in list(self.desktop.calls.values()):
            if call.get("state") in {"Established", "Held", "Dialing"}:
                try:
                    await self.desktop.call_op(call["id"], "Hangup", check=False)
                except aiohttp.ClientError:
                    pass

    async def run_scenario(self) -> None:
        scenarios: list[tuple[str, Callable[[], Awaitable[None]], int]] = [
            ("outbound", self.outbound_call, 3),
            ("agent_to_agent", self.agent_to_agent_call, 3),
            ("not_ready_break", self.not_ready_break, 1),
        ]
        if self.control is not None:
            scenarios += [
                ("inbound", self.inbound_call, 4),
                ("transfer", self.inbound_then_transfer, 2),
                ("conference", self.inbound_then_conference, 2),
            ]
            media = {"chat": chat_scenario, "email": email_scenario, "workitem": workitem_scenario}
            scenarios += [(name, functools.partial(media[name], self.desktop, self.mirror, self.control, self.pace), 3)
                          for name in self.media if name in media]
        if "im" in self.media:
            scenarios.append(("im", self.im_with_partner, 2))
        if self.config.scenarios:
            scenarios = [s for s in scenarios if s[0] in self.config.scenarios]
        if not scenarios:
            return
        names, functions, weights = zip(*scenarios)
        index = self.rng.choices(range(len(names)), weights=weights)[0]
        ran = await functions[index]()
        if ran is not False:
            self.summary.scenarios[names[index]] = self.summary.scenarios.get(names[index], 0) + 1
        self.desktop.forget_released()

    # ---- scenarios -------------------------------------------------------
    def _new_call(self, state: str, known: set[str]) -> Callable[[dict], bool]:
        return lambda c: c["id"] not in known and c.get("state") == state

    async def _ring_me(self) -> dict:
        known = set(self.desktop.calls)
        customer = f"555{self.rng.randrange(10000):04d}"
        await self.control.inject_call(customer, self.phone, {"CustomerSegment": self.rng.choice(["Gold", "Silver"])})
        return await self.desktop.wait_call(self._new_call("Ringing", known))

    async def _answer_customer(self) -> dict:
        call = await self._ring_me()
        await self.pause(self.config.think_time)
        await self.desktop.call_op(call["id"], "Answer")
        await self.desktop.wait_call(lambda c: c["id"] == call["id"] and c.get("state") == "Established")
        await self.desktop.call_op(call["id"], "AttachUserData", userData={"AccountNumber": str(self.rng.randrange(10**6))})
        return call

    async def _after_call_work(self) -> None:
        await self.desktop.agent_state("AfterCallWork")
        await self.pause(self.config.think_time)
        await self.desktop.agent_state("Ready")

    async def _hangup_and_wait(self, call_id: str) -> None:
        await self.desktop.call_op(call_id, "Hangup")
        await self.desktop.wait_call(lambda c: c["id"] == call_id and c.get("state") == "Released")

    async def inbound_call(self) -> None:
        call = await self._answer_customer()
        if self.rng.random() < 0.6:
            await self.desktop.call_op(call["id"], "Hold")
            await self.desktop.wait_call(lambda c: c["id"] == call["id"] and c.get("state") == "Held")
            await self.pause(self.config.talk_time)
            await self.desktop.call_op(call["id"], "Retrieve")
            await self.desktop.wait_call(lambda c: c["id"] == call["id"] and c.get("state") == "Established")
        await self.pause(self.config.talk_time)
        await self.desktop.call_op(call["id"], "SetCallDisposition", disposition=self.rng.choice(["IssueResolved", "InfoRequested"]))
        await self._hangup_and_wait(call["id"])
        await self._after_call_work()

    async def outbound_call(self) -> None:
        known = set(self.desktop.calls)
        await self.desktop.dial(f"1555{self.rng.randrange(10**6):06d}")
        call = await self.desktop.wait_call(self._new_call("Dialing", known))
        await self.desktop.wait_call(lambda c: c["id"] == call["id"] and c.get("state") == "Established")
        await self.desktop.call_op(call["id"], "SendDtmf", digits=str(self.rng.randrange(10)))
        await self.pause(self.config.talk_time)
        await self._hangup_and_wait(call["id"])

    async def not_ready_break(self) -> None:
        await self.desktop.agent_state("NotReady", reasonCode=self.rng.choice(["Break", "Lunch", "Training"]))
        await self.desktop.wait_device(lambda d: d.get("userState", {}).get("state") == "NotReady")
        await self.pause(self.config.think_time)
        await self.desktop.agent_state("Ready")

    async def agent_to_agent_call(self) -> bool | None:
        partner = self.switchboard.reserve_partner(self, self.rng)
        if partner is None:
            return False
        try:
            known = set(self.desktop.calls)
            await self.desktop.dial(partner.phone)
            call = await self.desktop.wait_call(self._new_call("Dialing", known))
            await self.desktop.wait_call(lambda c: c["id"] == call["id"] and c.get("state") == "Established")
            await self.pause(self.config.talk_time)
            await self._hangup_and_wait(call["id"])
        finally:
            await self._await_partner(partner)
        return None

    async def _consult_partner(self, operation: str, complete: str) -> bool | None:
        partner = self.switchboard.reserve_partner(self, self.rng)
        if partner is None:
            return False
        try:
            customer = await self._answer_customer()
            known = set(self.desktop.calls)
            await self.desktop.call_op(customer["id"], operation, destination={"phoneNumber": partner.phone})
            consult = await self.desktop.wait_call(lambda c: c["id"] not in known and c.get("state") in {"Dialing", "Established"})
            await self.desktop.wait_call(lambda c: c["id"] == consult["id"] and c.get("state") == "Established")
            await self.pause(self.config.think_time)
            await self.desktop.call_op(consult["id"], complete)
            if complete == "CompleteConference":
                await self.pause(self.config.talk_time)
                await self.desktop.call_op(customer["id"], "Hangup", check=False)
            await self.desktop.wait_call(lambda c: c["id"] == customer["id"] and c.get("state") == "Released", timeout=15)
        finally:
            await self._await_partner(partner)
        await self._after_call_work()
        return None

    async def inbound_then_transfer(self) -> bool | None:
        return await self._consult_partner("InitiateTransfer", "CompleteTransfer")

    async def inbound_then_conference(self) -> bool | None:
        return await self._consult_partner("InitiateConference", "CompleteConference")

    async def im_with_partner(self) -> bool | None:
        partner = self.switchboard.reserve_partner(self, self.rng, kind="im")
        if partner is None:
            return False
        try:
            await im_initiator(self.desktop, self.mirror, partner.phone, self.pace)
        finally:
            await self._await_partner(partner)
        return None

    async def _await_partner(self, partner: "ScriptedAgent") -> None:
        reservation = self.switchboard.reservations.get(partner.name)
        if reservation:
            try:
                await asyncio.wait_for(reservation.done.wait(), 20)
            except asyncio.TimeoutError:
                self.summary.failures.append(f"{self.name}: partner {partner.name} did not finish")

    # ---- partner side ------------------------------------------------------
    async def take_partner_call(self, reservation: Reservation) -> None:
        """Answer the call (or IM) a partner places to us, stay on it, and hang up what is left."""
        if reservation.kind == "im":
            try:
                await im_responder(self.desktop, self.mirror, self.pace, timeout=self.config.talk_time * 6 + 5)
            finally:
                self.switchboard.finish(self)
            return
        try:
            known = {c for c, call in self.desktop.calls.items() if call.get("state") == "Released"}
            call = await self.desktop.wait_call(lambda c: c["id"] not in known and c.get("state") == "Ringing")
            await self.pause(self.config.think_time)
            await self.desktop.call_op(call["id"], "Answer")
            # The caller hangs up, completes a transfer or leaves a conference; whatever
            # stays with us after a while (a transferred customer) we close ourselves.
            try:
                await self.desktop.wait_until(
                    lambda: all(c.get("state") == "Released" for c in self.desktop.calls.values()),
                    timeout=self.config.talk_time * 6 + 3)
            except DesktopError:
                for active in [c for c in self.desktop.calls.values() if c.get("state") in {"Established", "Held"}]:
                    await self.desktop.call_op(active["id"], "Hangup", check=False)
                    await self.desktop.wait_call(lambda c: c["id"] == active["id"] and c.get("state") == "Released")
        finally:
            self.switchboard.finish(self)
            self.desktop.forget_released()


async def run_agents(config: AgentsConfig, on_progress: Callable[[AgentsSummary], None] | None = None) -> AgentsSummary:
    """Run the agents until config.duration is over, then log everybody out."""
    summary = AgentsSummary(agents=config.agents)
    switchboard = Switchboard()
    async with config.connect.session() as http:
        control = await ControlApi.detect(config.target, http)
        if control is None and set(config.channels) - {"voice", "im"}:
            summary.failures.append("no control API at the target: chats, emails and workitems cannot be injected")
        loop = asyncio.get_running_loop()
        stop_at = loop.time() + config.duration
        agents = [ScriptedAgent(config, config.first_agent + i, switchboard, control, summary) for i in range(config.agents)]
        tasks = [asyncio.create_task(agent.run(stop_at)) for agent in agents]
        while not all(task.done() for task in tasks):
            await asyncio.wait(tasks, timeout=0.25)
            _add_counters(summary, agents)
            if on_progress:
                on_progress(summary)
        for task in tasks:
            if task.exception():
                summary.failures.append(repr(task.exception()))
    _add_counters(summary, agents)
    return summary


def _add_counters(summary: AgentsSummary, agents: list[ScriptedAgent]) -> None:
    summary.operations = sum(a.desktop.counters.operations for a in agents)
    summary.errors = sum(a.desktop.counters.errors for a in agents)
    summary.notifications = sum(a.desktop.counters.notifications for a in agents)
