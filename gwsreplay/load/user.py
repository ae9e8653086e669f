"""The Locust side: one Locust user is one whole copy of the recorded plan.

A copy's agents call each other, so a copy is never split: `GwsCopyUser` runs
every session of its copy (one greenlet per agent, gwsreplay.load.driver) and
repeats the copy until the run ends (or `--gws-iterations` times). Copy numbers,
hence pool users, come from one allocator on the master (Locust custom
messages), so no two workers, on any machine, log in the same user. Figures go
to Locust's statistics as request entries:

    REST      "POST /me/calls/{id} Answer"      ack latency (request -> answer)
    COMPLETE  "POST /me/calls/{id} Answer"      completion latency (request -> its first notification)
    NOTIFY    "/v2/me/calls CallStateChangeMessage"   each notification (time since its step was sent)
    BAYEUX    "/meta/handshake", ...            CometD meta requests
    SIM       "external: call ... -> ..."       the simulator's control API (injected calls)
    CUT       "/meta/handshake", ...            CometD requests the end of the run cut short (not failures)
    DIVERGENCE  the kind                        each divergence, as a failure
"""

from __future__ import annotations

import itertools
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent
from gevent.event import AsyncResult, Event
from gevent.lock import Semaphore
from locust import User, constant, events, task
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner
from locust.stats import StatsEntry

from gwsreplay.replay.engine import EngineOptions
from gwsreplay.replay.plan import ReplayPlan
from gwsreplay.replay.recorded import read_plan
from gwsreplay.replay.users import UserMap

from gwsreplay.load.driver import CopyReplay
from gwsreplay.load.output import Part, PartWriter, merge_parts
from gwsreplay.load.roster import check_roster, copy_users, simulator_facts

log = logging.getLogger(__name__)


class DivergenceFailure(Exception):
    """A divergence, shown by Locust as a failure of the DIVERGENCE entry of its kind."""


# ----------------------------------------------------------------------------- per-process context


@dataclass
class LoadContext:
    """What every process of the run knows once its options are there (loaded on first use)."""

    plan: ReplayPlan
    users: UserMap
    target: str
    engine: EngineOptions
    iterations: int
    out: Path | None
    simulator: bool
    sink: PartWriter | None = None
    divergences: list[dict] = field(default_factory=list)


_context: LoadContext | None = None
_context_lock = Semaphore()


def context(environment) -> LoadContext:
    """The process's context, built from the (master's) options the first time a user needs it."""
    global _context
    with _context_lock:
        if _context is None:
            _context = build_context(environment.parsed_options, environment.host, _node(environment))
        return _context


def build_context(options: Any, host: str | None, node: str) -> LoadContext:
    if not getattr(options, "capture", None):
        raise ValueError("give --capture CAPTURE (the recorded sessions to replay)")
    target = (host or "").rstrip("/")
    plan = read_plan(options.capture)
    facts = simulator_facts(target)
    users = (UserMap.from_toml(options.user_map, simulator=facts is not None) if options.user_map
             else UserMap.simulator())
    speed = None if str(options.speed) == "max" else float(options.speed)
    out = _out_path(options)
    engine = EngineOptions(speed=speed, wait_timeout=options.wait_timeout, drain_timeout=options.drain_timeout,
                           can_inject=facts is not None)
    ctx = LoadContext(plan, users, target, engine, int(options.gws_iterations or 0), out, facts is not None)
    if out is not None:
        ctx.sink = PartWriter(out, node, {"replay_of": plan.capture, "target": target})
    return ctx


def _out_path(options: Any) -> Path | None:
    if getattr(options, "no_out", False):
        return None
    if options.out:
        return Path(options.out)
    capture = Path(options.capture)
    return capture.with_name(capture.stem + "-load.duckdb")


def _node(environment) -> str:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        return f"worker-{runner.client_id}"
    return "local"


# ----------------------------------------------------------------------------- the user


class LocustReporter:
    """Figures of the driver as Locust request events."""

    def __init__(self, environment):
        self.fire = environment.events.request.fire
        self.ctx = context(environment)

    def measure(self, kind: str, name: str, ms: float, *, length: int = 0, error: str | None = None) -> None:
        self.fire(request_type=kind, name=name, response_time=ms, response_length=length,
                  exception=None if error is None else ConnectionError(error), context={})

    def divergence(self, row: dict) -> None:
        self.ctx.divergences.append(row)
        what = row.get("label") or "session"
        self.fire(request_type="DIVERGENCE", name=row["kind"], response_time=0, response_length=0,
                  exception=DivergenceFailure(f"{row['session']}: {what}"), context={})


class GwsCopyUser(User):
    """One copy of the recorded sessions (all its agents), replayed as pool users; see the module docstring."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.ctx = context(self.environment)
        self.copy = slots.acquire(self.environment)
        self.iterations = 0

    @task
    def replay_copy(self) -> None:
        if self.ctx.iterations and self.iterations >= self.ctx.iterations:
            raise StopUser()
        users = copy_users(self.ctx.plan, self.ctx.users, self.copy)
        sink = self.ctx.sink.submit if self.ctx.sink is not None else None
        CopyReplay(self.ctx.plan, self.copy, users, self.ctx.target, self.ctx.engine,
                   LocustReporter(self.environment), sink=sink).run()
        self.iterations += 1
        if self.ctx.iterations and self.iterations >= self.ctx.iterations:
            self.environment.runner.send_message("gws_done", {"copy": self.copy})
            raise StopUser()

    def on_stop(self) -> None:
        if getattr(self, "copy", None) is not None:
            self.environment.runner.send_message("gws_release", {"copy": self.copy})
            self.copy = None


# ----------------------------------------------------------------------------- copy numbers, done, flush


class Slots:
    """Copy numbers: handed out by the master (or the local runner), asked for by users over messages."""

    def __init__(self) -> None:
        self.free: list[int] = []
        self.next = itertools.count()
        self.waiting: dict[str, AsyncResult] = {}

    # user side (worker or local)
    def acquire(self, environment, timeout: float = 60.0) -> int:
        request = uuid.uuid4().hex
        result = self.waiting[request] = AsyncResult()
        environment.runner.send_message("gws_slot_request", {"request": request})
        try:
            return int(result.get(timeout=timeout))
        finally:
            self.waiting.pop(request, None)

    def on_slot(self, environment, msg, **_: Any) -> None:
        result = self.waiting.get(msg.data["request"])
        if result is not None:
            result.set(msg.data["copy"])

    # allocator side (master or local)
    def on_request(self, environment, msg, **_: Any) -> None:
        copy = min(self.free) if self.free else next(self.next)
        if copy in self.free:
            self.free.remove(copy)
        environment.runner.send_message("gws_slot", {"request": msg.data["request"], "copy": copy},
                                        client_id=msg.node_id)

    def on_release(self, environment, msg, **_: Any) -> None:
        self.free.append(int(msg.data["copy"]))


slots = Slots()


class RunEnd:
    """Master (or local) side: ends the run once every copy did its iterations; merges the output."""

    def __init__(self) -> None:
        self.done = 0
        self.parts: list[Part] = []
        self.expected = 0
        self.arrived = Event()
        self.run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        self.started_at = time.time()
        self.merged = False
        self.peak_users = 0

    def watch_users(self, environment) -> None:
        """Sample the number of running copies (for the summary's 'concurrent agents held')."""
        while True:
            self.peak_users = max(self.peak_users, environment.runner.user_count)
            gevent.sleep(0.5)

    def on_done(self, environment, msg, **_: Any) -> None:
        self.done += 1
        runner = environment.runner
        if self.done >= max(1, runner.target_user_count or 0):
            log.info("every copy has done its iterations: stopping")
            gevent.spawn_later(0.2, runner.quit if environment.parsed_options.headless else runner.stop)

    def on_part(self, environment, msg, **_: Any) -> None:
        self.parts.append(Part.from_message(msg.data))
        if len(self.parts) >= self.expected:
            self.arrived.set()

    def collect(self, environment, timeout: float = 120.0) -> None:
        """Ask every worker for its part (test_stopping on the master), wait, merge into the output file."""
        if self.merged:
            return
        self.merged = True
        runner = environment.runner
        if isinstance(runner, MasterRunner):
            clients = [c.id for c in runner.clients.all]
            self.expected = len(clients)
            for client in clients:
                runner.send_message("gws_flush", {}, client_id=client)
            if clients and not self.arrived.wait(timeout):
                log.error("only %d of %d workers sent their part of the replay output", len(self.parts), len(clients))
        else:
            self.expected = 1
            flush(environment)
        self.merge(environment)

    def merge(self, environment) -> None:
        options = environment.parsed_options
        divergences = [d for p in self.parts for d in p.divergences]
        kinds: dict[str, int] = {}
        for d in divergences:
            kinds[d["kind"]] = kinds.get(d["kind"], 0) + 1
        log.info("gwsreplay: %d divergence(s) %s", len(divergences), kinds or "")
        if getattr(options, "gws_summary", ""):
            Path(options.gws_summary).write_text(json.dumps(summary(environment, self, kinds), indent=2))
        out = _out_path(options) if getattr(options, "capture", None) else None
        if out is None:
            return
        run = {"capture": options.capture, "target": environment.host, "started_at": self.started_at,
               "ended_at": time.time(), "speed": options.speed, "sessions": None,
               "agents": None, "options": {"locust": True, "workers": len(self.parts),
                                           "iterations": options.gws_iterations}}
        merge_parts(out, self.run_id, run, self.parts)
        log.info("gwsreplay: replay output in %s (run %s, %d worker part(s))", out, self.run_id, len(self.parts))


run_end = RunEnd()


def summary(environment, end: RunEnd, kinds: dict[str, int]) -> dict:
    """The run's figures by entry type (REST ack latency, COMPLETE latency, ...), for benchmarks and CI."""
    figures: dict[str, Any] = {"divergences": sum(kinds.values()), "divergences_by_kind": kinds,
                               "peak_copies": end.peak_users, "workers": len(end.parts),
                               "started_at": end.started_at, "ended_at": time.time()}
    for kind in ("REST", "COMPLETE", "NOTIFY", "BAYEUX", "SIM", "CUT"):
        total = StatsEntry(environment.stats, kind, kind)
        for entry in environment.stats.entries.values():
            if entry.method == kind:
                total.extend(entry)
        figures[kind] = {"count": total.num_requests, "failures": total.num_failures,
                         "first": total.start_time, "last": total.last_request_timestamp,
                         "p50_ms": total.get_response_time_percentile(0.5) if total.num_requests else None,
                         "p99_ms": total.get_response_time_percentile(0.99) if total.num_requests else None}
    return figures


def flush(environment, msg=None, **_: Any) -> None:
    """Worker (or local) side: write this process's part and report it with the divergences."""
    ctx = _context
    if ctx is None:
        part = Part(_node(environment), None, 0, [])
    else:
        records = len(ctx.sink.records) if ctx.sink is not None else 0
        path = str(ctx.sink.write()) if ctx.sink is not None else None
        part = Part(_node(environment), path, records, list(ctx.divergences))
    send_stats = getattr(environment.runner, "_send_stats", None)
    if isinstance(environment.runner, WorkerRunner) and send_stats is not None:
        send_stats()        # the statistics so far reach the master before it writes its CSV/HTML
    environment.runner.send_message("gws_part", part.as_message())


def register(environment) -> None:
    """Hook the messages above on this process's runner (init event)."""
    runner = environment.runner
    if runner is None:
        return
    if not isinstance(runner, WorkerRunner):       # master or local: the allocator and the run's end
        runner.register_message("gws_slot_request", slots.on_request)
        runner.register_message("gws_release", slots.on_release)
        runner.register_message("gws_done", run_end.on_done)
        runner.register_message("gws_part", run_end.on_part)
    if not isinstance(runner, MasterRunner):       # worker or local: users and their traffic
        runner.register_message("gws_slot", slots.on_slot)
        runner.register_message("gws_flush", flush, concurrent=True)


@events.test_stopping.add_listener
def _on_test_stopping(environment, **_: Any) -> None:
    if not isinstance(environment.runner, WorkerRunner):
        run_end.collect(environment)


@events.test_start.add_listener
def _on_test_start(environment, **_: Any) -> None:
    if not isinstance(environment.runner, WorkerRunner):
        run_end.started_at = time.time()
        gevent.spawn(run_end.watch_users, environment)


def check_before_start(environment) -> None:
    """On the master (or alone): refuse more copies than the roster holds, before anything starts."""
    options = environment.parsed_options
    if isinstance(environment.runner, WorkerRunner) or not getattr(options, "capture", None):
        return
    copies = int(getattr(options, "num_users", 0) or 0)
    if not copies:
        return
    plan = read_plan(options.capture)
    facts = simulator_facts((environment.host or "").rstrip("/"))
    users = (UserMap.from_toml(options.user_map, simulator=facts is not None) if options.user_map
             else UserMap.simulator())
    check_roster(plan, copies, users, facts)
