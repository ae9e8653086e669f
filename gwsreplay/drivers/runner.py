"""The asyncio driver: sessions of a plan replayed against a live GWS (or the simulator).

One `SessionDriver` per replayed agent session runs a `SessionEngine` over a
`GWSClient` (REST, its own cookie jar and CSRF token) and a `CometdClient`
(the recording's transport), feeding it live answers and notifications and
doing what it asks. Sessions that share calls share a `ReplayState` (id map
and matchers): one per *copy* of the plan; a replay here is one copy (load
replay, many copies as pool users, is gwsreplay.load on Locust).

External events go through the simulator's control API when the target has
one (detected with GET /sim/v1/stats); otherwise the engine says which event
it waits for and the driver only passes that on.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import aiohttp

from gwsreplay.client.cometd import CometdClient, CometdError
from gwsreplay.client.rest import GWSClient
from gwsreplay.drivers.output import RecordingHttp, ReplayRecorder
from gwsreplay.drivers.target_guard import ReplayRefused, check_target
from gwsreplay.replay.compare import Divergence
from gwsreplay.replay.engine import (
    Announce,
    EngineOptions,
    Finished,
    ReplayState,
    Report,
    Send,
    SessionEngine,
)
from gwsreplay.replay.idmap import IdMap
from gwsreplay.replay.plan import ReplayPlan, SessionPlan
from gwsreplay.replay.precheck import TargetFacts, copies_for, problems, session_credentials
from gwsreplay.replay.users import Credentials, UserMap

log = logging.getLogger(__name__)

WAKE = ("wake",)
CLIENT_EXTENSIONS = frozenset({"ack"})   # recorded handshake ext fields not replayed (_handshake_ext)


@dataclass
class ReplayOptions:
    target: str
    engine: EngineOptions = field(default_factory=EngineOptions)
    users: UserMap = field(default_factory=UserMap.simulator)
    out: Path | None = None                # replay capture file (None: not recorded)
    run_id: str | None = None
    allow_recorded_host: bool = False
    simulator: bool | None = None          # None: detect /sim/v1/stats


@dataclass
class LiveStats:
    """Running figures for the progress line and the final summary."""

    started: float = field(default_factory=time.monotonic)
    sessions_total: int = 0
    sessions_done: int = 0
    agents_started: int = 0
    operations: int = 0
    notifications: int = 0
    divergences: int = 0
    active_peak: int = 0
    latencies_ms: deque = field(default_factory=lambda: deque(maxlen=20000))
    _window: deque = field(default_factory=lambda: deque(maxlen=5000))   # answer times, for ops/s

    @property
    def active(self) -> int:
        return self.agents_started - self.sessions_done

    def operation(self, latency_ms: float) -> None:
        self.operations += 1
        self.latencies_ms.append(latency_ms)
        self._window.append(time.monotonic())

    def ops_per_second(self, window: float = 5.0) -> float:
        now = time.monotonic()
        recent = [t for t in self._window if now - t <= window]
        span = min(window, now - self.started) or 1.0
        return len(recent) / span

    def percentile(self, p: float) -> float | None:
        if not self.latencies_ms:
            return None
        values = sorted(self.latencies_ms)
        return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


@dataclass
class SessionRun:
    """One replayed session: which copy, as which live user, and its engine (outcomes, divergences)."""

    copy: int
    plan: SessionPlan
    credentials: Credentials
    engine: SessionEngine
    agent_index: int


@dataclass
class ReplayResult:
    run_id: str
    target: str
    simulator: bool
    plan: ReplayPlan
    runs: list[SessionRun]
    states: list[ReplayState]
    started_at: float
    ended_at: float
    stats: LiveStats
    announcements: list[str] = field(default_factory=list)

    @property
    def divergences(self) -> list[Divergence]:
        return [d for r in self.runs for d in r.engine.divergences]

    def divergence_rows(self) -> list[dict]:
        return [{"copy": r.copy, "live_user": r.credentials.user, **d.as_dict()}
                for r in self.runs for d in r.engine.divergences]

    @property
    def exit_code(self) -> int:
        return 1 if self.divergences else 0


# ----------------------------------------------------------------------------- safety


async def detect_simulator(target: str, http: aiohttp.ClientSession) -> bool:
    try:
        async with http.get(target.rstrip("/") + "/sim/v1/stats", timeout=aiohttp.ClientTimeout(total=5)) as r:
            if r.status != 200:
                return False
            body = await r.json(content_type=None)
            return isinstance(body, dict) and "rest" in body
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
        return False


# ----------------------------------------------------------------------------- the run


async def target_facts(target: str, http: aiohttp.ClientSession, simulator: bool) -> TargetFacts:
    """What the target says about its users and places: the simulator's snapshot; nothing from a real GWS."""
    if not simulator:
        return TargetFacts()
    try:
        async with http.get(target.rstrip("/") + "/sim/v1/state", timeout=aiohttp.ClientTimeout(total=10)) as r:
            body = await r.json(content_type=None) if r.status == 200 else None
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
        body = None
    return TargetFacts.from_simulator_state(body) if isinstance(body, dict) else TargetFacts()


async def check_before_run(plan: ReplayPlan, options: ReplayOptions, http: aiohttp.ClientSession,
                           simulator: bool) -> None:
    """Refuse (ReplayRefused) a run that would send requests whose recorded answers it cannot get:
    users without credentials, users the target lacks, places the target does not have."""
    found = problems(plan, options.users, None, await target_facts(options.target, http, simulator))
    if found:
        raise ReplayRefused("the replay cannot reproduce the recording:\n  - " + "\n  - ".join(found))


async def replay(plan: ReplayPlan, options: ReplayOptions,
                 on_progress: Callable[[LiveStats], None] | None = None,
                 on_announce: Callable[[str], None] | None = None) -> ReplayResult:
    """Replay `plan` against `options.target`; returns outcomes and divergences of every session."""
    check_target(plan.recorded_origins, options.target, allow_recorded_host=options.allow_recorded_host)
    run_id = options.run_id or time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    target = options.target.rstrip("/")
    stats = LiveStats()
    announcements: list[str] = []

    def announce(text: str) -> None:
        announcements.append(text)
        if on_announce:
            on_announce(text)

    control_http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    try:
        simulator = options.simulator
        if simulator is None:
            simulator = await detect_simulator(target, control_http)
        await check_before_run(plan, options, control_http, simulator)
    except BaseException:
        await control_http.close()
        raise
    recorder = ReplayRecorder(options.out, run_id, {"replay_of": plan.capture, "target": target}) if options.out else None
    started_at = time.time()
    try:
        engine_options = EngineOptions(**{**options.engine.__dict__, "can_inject": simulator})
        control = recorder.http(control_http) if recorder else control_http
        runs, states, groups = _assign(plan, options, engine_options)
        stats.sessions_total = len(runs)
        t0 = asyncio.get_running_loop().time()
        drivers = [SessionDriver(run, states[run.copy], target, control if simulator else None,
                                 recorder, stats, announce, t0) for run in runs]
        for driver in drivers:
            driver.peers = [d for d in drivers if d.info.copy == driver.info.copy and d is not driver]
        tasks = [asyncio.create_task(_run_agent(group, drivers)) for group in groups]
        progress = asyncio.create_task(_progress(stats, on_progress)) if on_progress else None
        try:
            await asyncio.gather(*tasks)
        finally:
            if progress:
                progress.cancel()
                await asyncio.gather(progress, return_exceptions=True)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if on_progress:
            on_progress(stats)
    finally:
        ended_at = time.time()
        await control_http.close()
    result = ReplayResult(run_id, target, simulator, plan, runs, states, started_at, ended_at, stats, announcements)
    if recorder:
        await asyncio.to_thread(recorder.close, {
            "capture": plan.capture, "target": target, "started_at": started_at, "ended_at": ended_at,
            "speed": engine_options.speed or "max", "sessions": len(plan.sessions), "agents": len(runs),
            "options": {"wait_timeout": engine_options.wait_timeout, "on_divergence": engine_options.on_divergence,
                        "simulator": simulator}}, result.divergence_rows())
    return result


def _assign(plan: ReplayPlan, options: ReplayOptions, engine_options: EngineOptions
            ) -> tuple[list[SessionRun], list[ReplayState], list[list[int]]]:
    """The plan's one copy, a live user for every session, and the order each live user runs its sessions."""
    n = len(plan.sessions)
    copies = copies_for(plan, None)
    origin = min((s.started for s in plan.sessions), default=0.0)
    runs: list[SessionRun] = []
    states: list[ReplayState] = []
    groups: dict[tuple[int, str], list[int]] = {}
    for copy in range(copies):
        idmap = IdMap()
        state = ReplayState(plan, idmap)
        states.append(state)
        users: dict[str, Credentials] = session_credentials(plan, options.users, copy, None)
        for j, session in enumerate(plan.sessions):
            creds = users[session.user_name]
            idmap.add(session.user_name, creds.user)
            agent_index = copy * n + j
            offset = (session.started - origin) / engine_options.speed if engine_options.speed else 0.0
            engine = SessionEngine(session, state, engine_options, start_delay=offset)
            runs.append(SessionRun(copy, session, creds, engine, agent_index))
            groups.setdefault((copy, creds.user), []).append(len(runs) - 1)
    return runs, states, list(groups.values())


async def _run_agent(indexes: list[int], drivers: list["SessionDriver"]) -> None:
    """One live user: its recorded sessions one after the other."""
    for i in indexes:
        await drivers[i].run()


async def _progress(stats: LiveStats, on_progress: Callable[[LiveStats], None]) -> None:
    while True:
        await asyncio.sleep(0.25)
        on_progress(stats)


# ----------------------------------------------------------------------------- one session


class SessionDriver:
    """Runs one SessionEngine: performs its actions and feeds it what comes back."""

    def __init__(self, run: SessionRun, state: ReplayState, target: str, control: Any,
                 recorder: ReplayRecorder | None, stats: LiveStats, announce: Callable[[str], None],
                 t0: float = 0.0):
        self.info = run
        self.t0 = t0
        self.engine = run.engine
        self.state = state
        self.target = target
        self.control = control
        self.recorder = recorder
        self.stats = stats
        self.announce = announce
        self.peers: list[SessionDriver] = []
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.client: GWSClient | None = None
        self.http: Any = None
        self.cometd: CometdClient | None = None
        self._tasks: set[asyncio.Task] = set()
        self._began = False

    async def run_session(self) -> None:
        loop = asyncio.get_running_loop()
        plan = self.info.plan
        creds = self.info.credentials
        session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                        timeout=aiohttp.ClientTimeout(total=60))
        self.http = self.recorder.http(session, websocket=plan.transport == "websocket") if self.recorder else session
        self.client = GWSClient(self.target, creds.user, creds.password, http=self.http)
        self.engine.start(self.t0 or loop.time())
        try:
            while True:
                for action in self.engine.poll(loop.time()):
                    self._act(action)
                if self.engine.done:
                    break
                timeout = None if self.engine.deadline is None else max(0.0, self.engine.deadline - loop.time())
                try:
                    event = await asyncio.wait_for(self.inbox.get(), timeout)
                except asyncio.TimeoutError:
                    continue
                self._feed(event, loop.time())
        finally:
            await self._close(session)
            if self._began:
                self.stats.sessions_done += 1
            else:
                self.stats.sessions_total -= 1

    async def run(self) -> None:
        try:
            await self.run_session()
        except Exception as exc:  # noqa: BLE001 - one broken session must not end the run
            log.exception("session %s failed", self.info.plan.id)
            for action in self.engine.stop("failed"):
                if isinstance(action, Report):
                    self.stats.divergences += 1
            self.engine.divergences.append(Divergence(self.info.plan.id, None, "transport",
                                                      f"session failed: {type(exc).__name__}: {exc}"))

    # ------------------------------------------------------------------ events in

    def _feed(self, event: tuple, now: float) -> None:
        kind = event[0]
        if kind == "answer":
            _, index, kwargs = event
            self.engine.on_answer(index, now, **kwargs)
            for peer in self.peers:     # a peer's Dial may wait for this session's number or progress
                peer.inbox.put_nowait(WAKE)
        elif kind == "note":
            _, channel, data = event
            self.stats.notifications += 1
            if self.engine.on_notification(channel, data, now) is not None:
                for peer in self.peers:
                    peer.inbox.put_nowait(WAKE)

    # ------------------------------------------------------------------ actions out

    def _act(self, action: Any) -> None:
        if isinstance(action, Send):
            if not self._began:  # counted from its first request, not from when it was scheduled
                self._began = True
                self.stats.agents_started += 1
                self.stats.active_peak = max(self.stats.active_peak, self.stats.active)
            task = asyncio.get_running_loop().create_task(self._perform(action))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif isinstance(action, Announce):
            self.announce(action.text)
        elif isinstance(action, Report):
            self.stats.divergences += 1
        elif isinstance(action, Finished):
            pass

    async def _perform(self, send: Send) -> None:
        step = send.step
        started = time.perf_counter()
        try:
            answer = await self._do(send)
        except (aiohttp.ClientError, asyncio.TimeoutError, CometdError, ConnectionError, OSError) as exc:
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        except Exception as exc:  # noqa: BLE001 - the engine must get an answer, or it waits forever
            log.exception("step %s of %s failed", step.index, self.info.plan.id)
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        if step.kind == "rest":
            self.stats.operation((time.perf_counter() - started) * 1000)
        self.inbox.put_nowait(("answer", step.index, answer))

    async def _do(self, send: Send) -> dict:
        step = send.step
        assert self.client is not None
        if step.kind == "rest":
            response = await self.client.request(send.method, send.path, json_body=send.body,
                                                 params=send.query or None)
            return {"status": response.status, "body": response.body}
        if step.kind == "handshake":
            if self.cometd is not None:
                return {"successful": True}   # re-handshakes are the CometD client's own business
            hook = self.http.ws_message if isinstance(self.http, RecordingHttp) else None
            self.cometd = self.client.cometd(self.info.plan.transport, on_message=hook)
            try:
                reply = await self.cometd.handshake(_handshake_ext(send.message))
            except CometdError as exc:
                return {"successful": False, "error": None if exc.reply else str(exc)}
            self._spawn(self._pump(self.cometd))
            return {"successful": bool(reply.get("successful"))}
        if step.kind in ("subscribe", "unsubscribe"):
            if self.cometd is None:
                return {"error": f"{step.kind} before any handshake"}
            message = {k: v for k, v in (send.message or {}).items() if k not in ("id", "clientId")}
            reply = await self.cometd.request(message)
            return {"successful": bool(reply.get("successful"))}
        if step.kind == "disconnect":
            if self.cometd is None:
                return {"successful": None}
            reply = await self.cometd.disconnect()
            return {"successful": bool(reply and reply.get("successful"))}
        if step.kind == "inject_call":
            ext = send.external or {}
            return await self._control("/sim/v1/calls", {"from": ext.get("from"), "to": ext.get("to"),
                                                         "userData": ext.get("userData") or {}})
        if step.kind == "far_end_hangup":
            return await self._control(f"/sim/v1/calls/{(send.external or {}).get('call_id')}/hangup", None)
        if step.kind == "control":
            return await self._control(send.external["path"], send.external.get("body"))
        return {"error": f"unknown step kind {step.kind}"}

    async def _control(self, path: str, body: Any) -> dict:
        if self.control is None:
            return {"error": "no control API on the target"}
        async with self.control.post(self.target + path, json=body) as response:
            return {"status": response.status, "body": await response.json(content_type=None)}

    async def _pump(self, cometd: CometdClient) -> None:
        while True:
            message = await cometd.events.get()
            self.inbox.put_nowait(("note", message.get("channel"), message.get("data")))

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _close(self, session: aiohttp.ClientSession) -> None:
        if self.cometd is not None:
            await self.cometd.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if isinstance(self.http, RecordingHttp):
            await self.http.close()
        else:
            await session.close()


def _handshake_ext(message: dict | None) -> dict | None:
    """The recorded handshake's ext without what only the desktop's own CometD library speaks:
    ``ack`` (the AckExtension) would make the server hold every event for acknowledgements
    our client does not send. (The ReloadExtension leaves nothing in a handshake on the wire.)"""
    ext = (message or {}).get("ext")
    if not isinstance(ext, dict):
        return ext
    return {k: v for k, v in ext.items() if k not in CLIENT_EXTENSIONS} or None
