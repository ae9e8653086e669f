"""The gevent driver: one copy of a replay plan, its sessions in greenlets, against a live GWS.

The counterpart of gwsreplay.drivers.runner (asyncio) for Locust: the same
`SessionEngine`s sharing one `ReplayState` per copy (so agents that called each
other in the recording call each other within their copy), the same actions
done over `AgentHttp` and `GeventCometd`. What happens is told to a `Reporter`
(Locust's statistics) as it happens: each REST answer, each operation's
completion (its first notification), each notification, each divergence.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import gevent
from gevent.queue import Empty, Queue

from gwsreplay.replay.compare import Divergence
from gwsreplay.replay.engine import Announce, EngineOptions, Finished, ReplayState, Report, Send, SessionEngine
from gwsreplay.replay.idmap import IdMap
from gwsreplay.replay.plan import ReplayPlan, SessionPlan, Step
from gwsreplay.replay.users import Credentials

from gwsreplay.load.bayeux import BayeuxFailed, GeventCometd
from gwsreplay.load.http import AgentHttp, Sink

log = logging.getLogger(__name__)

WAKE = ("wake",)
_ID_SEGMENT = re.compile(r"^(?=.*\d)[0-9A-Za-z_.@-]{8,}$")


class Reporter(Protocol):
    """Where a copy's figures go (Locust's request events in gwsreplay.load.user)."""

    def measure(self, kind: str, name: str, ms: float, *, length: int = 0, error: str | None = None) -> None: ...

    def divergence(self, row: dict) -> None: ...


def operation_name(step: Step) -> str:
    """A step's entry in the statistics: 'POST /me/calls/{id} Answer' (ids templated, one entry per operation)."""
    if step.kind != "rest":
        return step.label()       # '/meta/subscribe /v2/me/*', 'external: call 5551234 -> 7001', ...
    path = (step.path or "").split("?")[0]
    if path.startswith("/api/v2/"):
        path = path[len("/api/v2"):]
    path = "/".join("{id}" if _ID_SEGMENT.match(seg) else seg for seg in path.split("/"))
    return f"{step.method} {path}" + (f" {step.operation}" if step.operation else "")


@dataclass
class CopyResult:
    copy: int
    divergences: list[dict] = field(default_factory=list)
    operations: int = 0
    notifications: int = 0
    announcements: list[str] = field(default_factory=list)


class CopyReplay:
    """One copy of the plan: every session, as the copy's live users, until all have finished."""

    def __init__(self, plan: ReplayPlan, copy: int, users: dict[str, Credentials], target: str,
                 options: EngineOptions, reporter: Reporter, *, sink: Sink | None = None):
        self.plan = plan
        self.copy = copy
        self.users = users
        self.target = target.rstrip("/")
        self.options = options
        self.reporter = reporter
        self.sink = sink
        self.result = CopyResult(copy)
        idmap = IdMap()
        for recorded, creds in users.items():
            idmap.add(recorded, creds.user)
        self.state = ReplayState(plan, idmap)
        self.control = AgentHttp(self.target, "control", "", sink=sink) if options.can_inject else None

    def run(self) -> CopyResult:
        """Blocks the calling greenlet until every session of the copy has finished."""
        t0 = time.monotonic()
        origin = min((s.started for s in self.plan.sessions), default=0.0)
        runners = []
        groups: dict[str, list[SessionRunner]] = {}
        for session in self.plan.sessions:
            offset = (session.started - origin) / self.options.speed if self.options.speed else 0.0
            engine = SessionEngine(session, self.state, self.options, start_delay=offset)
            runner = SessionRunner(self, session, self.users[session.user_name], engine, t0)
            runners.append(runner)
            groups.setdefault(session.user_name, []).append(runner)
        for runner in runners:
            runner.peers = [r for r in runners if r is not runner]
        greenlets = [gevent.spawn(_in_turn, group) for group in groups.values()]
        try:
            gevent.joinall(greenlets, raise_error=True)
        finally:
            gevent.killall([g for g in greenlets if not g.dead], block=True, timeout=10)
        return self.result

    def diverged(self, session: SessionPlan, creds: Credentials, divergence: Divergence) -> None:
        row = {"copy": self.copy, "live_user": creds.user, **divergence.as_dict()}
        self.result.divergences.append(row)
        self.reporter.divergence(row)


def _in_turn(runners: list["SessionRunner"]) -> None:
    """One live user: its recorded sessions one after the other."""
    for runner in runners:
        runner.run()


class SessionRunner:
    """Runs one SessionEngine: does its actions in greenlets and feeds it what comes back."""

    def __init__(self, owner: CopyReplay, plan: SessionPlan, creds: Credentials, engine: SessionEngine, t0: float):
        self.owner = owner
        self.plan = plan
        self.creds = creds
        self.engine = engine
        self.t0 = t0
        self.peers: list[SessionRunner] = []
        self.inbox: Queue = Queue()
        self.http = AgentHttp(owner.target, creds.user, creds.password, sink=owner.sink)
        self.cometd: GeventCometd | None = None
        self.completed: set[int] = set()
        self._greenlets: set[gevent.Greenlet] = set()

    def run(self) -> None:
        try:
            self._loop()
        except gevent.GreenletExit:
            raise
        except Exception as exc:  # noqa: BLE001 - one broken session must not end the copy
            log.exception("session %s failed", self.plan.id)
            self.engine.stop("failed")
            self.owner.diverged(self.plan, self.creds, Divergence(
                self.plan.id, None, "transport", f"session failed: {type(exc).__name__}: {exc}"))
        finally:
            self._close()

    def _loop(self) -> None:
        self.engine.start(self.t0)
        while True:
            for action in self.engine.poll(time.monotonic()):
                self._act(action)
            if self.engine.done:
                return
            timeout = None if self.engine.deadline is None else max(0.0, self.engine.deadline - time.monotonic())
            try:
                event = self.inbox.get(timeout=timeout)
            except Empty:
                continue
            self._feed(event)

    # ------------------------------------------------------------------ events in

    def _feed(self, event: tuple) -> None:
        now = time.monotonic()
        if event[0] == "answer":
            _, index, kwargs = event
            self.engine.on_answer(index, now, **kwargs)
            for peer in self.peers:     # a peer's Dial may wait for this session's number or progress
                peer.inbox.put(WAKE)
        elif event[0] == "note":
            _, channel, data = event
            self.owner.result.notifications += 1
            note = self.engine.on_notification(channel, data, now)
            message_type = data.get("messageType") if isinstance(data, dict) else None
            since = self._sent_at(note.step if note is not None else None)
            self.owner.reporter.measure("NOTIFY", f"{channel} {message_type or ''}".strip(),
                                        (now - since) * 1000 if since else 0.0)
            if note is not None:
                self._completed(note.step, now)
                for peer in self.peers:
                    peer.inbox.put(WAKE)

    def _sent_at(self, index: int | None) -> float | None:
        if index is None or not (0 <= index < len(self.engine.outcomes)):
            return None
        return self.engine.outcomes[index].sent_at

    def _completed(self, index: int, now: float) -> None:
        """An operation's first notification: its completion latency (sent -> notified)."""
        if index < 0 or index in self.completed:
            return
        outcome = self.engine.outcomes[index]
        if outcome.step.kind != "rest" or outcome.sent_at is None:
            return
        self.completed.add(index)
        self.owner.reporter.measure("COMPLETE", operation_name(outcome.step), (now - outcome.sent_at) * 1000)

    # ------------------------------------------------------------------ actions out

    def _act(self, action: Any) -> None:
        if isinstance(action, Send):
            self._spawn(self._perform, action)
        elif isinstance(action, Announce):
            self.owner.result.announcements.append(action.text)
        elif isinstance(action, Report):
            self.owner.diverged(self.plan, self.creds, action.divergence)
        elif isinstance(action, Finished):
            pass

    def _perform(self, send: Send) -> None:
        step = send.step
        try:
            answer = self._do(send)
        except BayeuxFailed as exc:
            if self._cometd_closed():
                return          # the run ended under it (Locust stopped the user): counted as CUT by _bayeux
            answer = {"error": f"BayeuxFailed: {exc}"}
        except gevent.GreenletExit:
            raise
        except Exception as exc:  # noqa: BLE001 - the engine must get an answer, or it waits forever
            log.exception("step %s of %s failed", step.index, self.plan.id)
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        self.inbox.put(("answer", step.index, answer))

    def _do(self, send: Send) -> dict:
        step = send.step
        name = operation_name(step)
        if step.kind == "rest":
            if self.http.needs_csrf(send.method or ""):
                self._timed("REST", "GET /me (CSRF token)", lambda: self.http.rest("GET", "/api/v2/me"))
            answer = self._timed("REST", name, lambda: self.http.rest(send.method, send.path, query=send.query,
                                                                      body=send.body))
            self.owner.result.operations += 1
            if answer.error:
                return {"error": answer.error}
            return {"status": answer.status, "body": answer.body}
        if step.kind == "handshake":
            if self.cometd is not None:
                return {"successful": True}     # re-handshakes are the Bayeux client's own business
            self.cometd = GeventCometd(self.http, self.plan.transport, self._on_data)
            reply = self._bayeux(name, lambda: self.cometd.handshake((send.message or {}).get("ext")))
            return {"successful": bool(reply.get("successful"))}
        if step.kind in ("subscribe", "unsubscribe"):
            if self.cometd is None:
                return {"error": f"{step.kind} before any handshake"}
            message = {k: v for k, v in (send.message or {}).items() if k not in ("id", "clientId")}
            reply = self._bayeux(name, lambda: self.cometd.request(message))
            return {"successful": bool(reply.get("successful"))}
        if step.kind == "disconnect":
            if self.cometd is None:
                return {"successful": None}
            reply = self._bayeux(name, self.cometd.disconnect)
            return {"successful": bool(reply and reply.get("successful"))}
        ext = send.external or {}
        if step.kind == "inject_call":
            return self._control(name, "/sim/v1/calls", {"from": ext.get("from"), "to": ext.get("to"),
                                                         "userData": ext.get("userData") or {}})
        if step.kind == "far_end_hangup":
            return self._control(name, f"/sim/v1/calls/{ext.get('call_id')}/hangup", None)
        if step.kind == "control":
            return self._control(name, ext["path"], ext.get("body"))
        return {"error": f"unknown step kind {step.kind}"}

    def _timed(self, kind: str, name: str, call) -> Any:
        answer = call()
        self.owner.reporter.measure(kind, name, answer.ms, length=len(answer.content), error=answer.error)
        return answer

    def _bayeux(self, name: str, call) -> dict:
        started = time.perf_counter()
        try:
            reply = call() or {}
        except BayeuxFailed as exc:
            # cut by the end of the run is not a failure of the GWS, but it is counted and shown (CUT rows)
            kind, error = ("CUT", None) if self._cometd_closed() else ("BAYEUX", str(exc))
            self.owner.reporter.measure(kind, name, (time.perf_counter() - started) * 1000, error=error)
            raise
        error = None if reply.get("successful") or not reply else str(reply.get("error") or "refused")
        self.owner.reporter.measure("BAYEUX", name, (time.perf_counter() - started) * 1000, error=error)
        return reply

    def _cometd_closed(self) -> bool:
        return self.cometd is not None and self.cometd.closed

    def _control(self, name: str, path: str, body: Any) -> dict:
        if self.owner.control is None:
            return {"error": "no control API on the target"}
        answer = self._timed("SIM", name, lambda: self.owner.control.exchange(
            "POST", path, None if body is None else _dumps(body), {"Content-Type": "application/json"}))
        if answer.error:
            return {"error": answer.error}
        return {"status": answer.status, "body": answer.body}

    def _on_data(self, message: dict) -> None:
        self.inbox.put(("note", message.get("channel"), message.get("data")))

    def _spawn(self, fn, *args) -> None:
        greenlet = gevent.spawn(fn, *args)
        self._greenlets.add(greenlet)
        greenlet.link(self._greenlets.discard)

    def _close(self) -> None:
        if self.cometd is not None:
            self.cometd.close()
        gevent.killall(list(self._greenlets), block=True, timeout=5)


def _dumps(body: Any) -> bytes:
    return json.dumps(body).encode()
