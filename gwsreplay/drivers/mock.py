"""A mock GWS made from recorded sessions: the desktops talk, the recording answers.

`MockScript` (no I/O) holds the recorded session and decides:

* which recorded request an incoming one is: same method, same path once the
  mock's ids are turned back into recorded ones, same operationName, and the
  earliest such request not answered yet (its position in the sequence); a GET
  asked again gets its last answer again;
* what to answer: the recorded status and body with every id rewritten;
* which recorded notifications are due: in recorded order, each once the
  request it followed has been answered, after the recorded gap (divided by
  `speed`); notifications that followed an event from outside the desktop (a
  customer calling in, a far end hanging up, another agent's action) come at
  their recorded offset from the desktop's previous request.

Ids are rewritten consistently: every recorded call id, connId, device id and
user id gets a fresh value of the same shape (stable for a given `seed`), and
absolute URIs point at the mock. A request that matches nothing gets a
GWS-style error (HTTP 400, statusCode 2, the expected requests in the message)
and is logged as a divergence.

Several sessions at once (a transfer between two desktops): one `MockScript`
per session, each desktop picked by its user name (Basic credentials), ids
rewritten the same way in all of them (`fresh_id` depends on the recorded value
and the seed only). A notification is then also held until every other served
desktop has done what it had done before it in the recording, and comes at its
recorded gap after the latest of those requests: what one desktop's action
caused reaches the other desktop after that action, in recorded order.

`make_app()` wraps it in aiohttp: a fresh JSESSIONID and CSRF token for the
desktop, CORS for browser desktops, and the simulator's own CometD server
(`gwsreplay.sim.server.cometd_server.CometdServer`) on /api/v2/notifications, both
transports.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import random
import secrets
import string
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import hdrs, web

from gwsreplay.sim.server.cometd_server import CometdServer, HttpSession

from gwsreplay.replay.engine import EXTERNAL_KINDS
from gwsreplay.replay.idmap import IdMap, is_id_key, split_origin
from gwsreplay.replay.plan import SessionPlan, Step

log = logging.getLogger(__name__)

NOT_REWRITTEN = frozenset({"userName", "place", "referenceId"})
CORS_HEADERS = "Authorization, Content-Type, X-CSRF-TOKEN, ContactCenterId"


# ----------------------------------------------------------------------------- ids


def fresh_id(value: str, seed: int) -> str:
    """A new id with the shape of `value` (hex stays hex, digits stay digits, case kept)."""
    rng = random.Random(f"{seed}:{value}")
    is_hex = all(c in string.hexdigits or c == "-" for c in value)
    out = []
    for c in value:
        if c.isdigit():
            out.append(rng.choice(string.digits))
        elif is_hex and c in "abcdef":
            out.append(rng.choice("abcdef"))
        elif is_hex and c in "ABCDEF":
            out.append(rng.choice("ABCDEF"))
        elif c.isupper():
            out.append(rng.choice(string.ascii_uppercase))
        elif c.islower():
            out.append(rng.choice(string.ascii_lowercase))
        else:
            out.append(c)
    new = "".join(out)
    return new if new != value else new[::-1]


def rewriting_map(plan: SessionPlan, base_url: str, seed: int, origins: list[str]) -> IdMap:
    """recorded -> mock for every id in the session's answers and notifications."""
    idmap = IdMap()
    for origin in origins:
        idmap.add_origin(origin, base_url)

    def add(value: str) -> None:
        if len(value) >= 8 and any(c.isdigit() for c in value) and not idmap.knows(value):
            idmap.add(value, fresh_id(value, seed))

    def walk(doc: Any, key: str | None = None) -> None:
        if isinstance(doc, dict):
            for k, v in doc.items():
                if k not in ("userState", "capabilities", "userData"):
                    walk(v, k)
        elif isinstance(doc, list):
            for v in doc:
                walk(v, key)
        elif isinstance(doc, str) and is_id_key(key) and key not in NOT_REWRITTEN:
            uri = split_origin(doc)
            path = uri[1] if uri else doc if doc.startswith("/") else None
            if path is None:
                add(doc)
                return
            if uri:
                idmap.add_origin(uri[0], base_url)
            for segment in path.partition("?")[0].split("/"):
                if len(segment) >= 16:
                    add(segment)

    for step in plan.steps:
        walk(step.response)
        if step.kind == "rest":
            for segment in (step.path or "").split("/"):
                if len(segment) >= 16:
                    add(segment)
    for note in plan.notes:
        walk(note.data)
    return idmap


# ----------------------------------------------------------------------------- the script


@dataclass
class MockDivergence:
    at: float
    method: str
    path: str
    operation: str | None
    detail: str

    def as_dict(self) -> dict:
        return {"at": self.at, "method": self.method, "path": self.path, "operation": self.operation,
                "detail": self.detail}


@dataclass
class _Due:
    index: int
    channel: str
    data: dict


class MockScript:
    """The recorded session as a state machine driven by the desktop's requests and the clock."""

    def __init__(self, plan: SessionPlan, *, base_url: str, origins: list[str], seed: int = 0,
                 speed: float | None = 1.0, window: int = 25):
        self.plan = plan
        self.ids = rewriting_map(plan, base_url, seed, origins)
        self.speed = speed
        self.window = window
        self.done_at: dict[int, float] = {}            # step index -> when it happened live
        self.answered: list[int] = []                  # rest steps in the order the desktop sent them
        self.divergences: list[MockDivergence] = []
        self.pushed = 0                                # notes delivered, in recorded order
        self.started: float | None = None
        self.peers: list[MockScript] = []              # the other sessions served by the same mock

    def start(self, now: float) -> None:
        self.started = now

    # ------------------------------------------------------------------ requests

    def answer(self, method: str, path: str, body: Any, now: float) -> tuple[int, Any]:
        """The recorded answer to a desktop request (ids rewritten), or a GWS-style error."""
        if self.started is None:
            self.start(now)
        recorded_path = self.ids.recorded(path.partition("?")[0]).rstrip("/") or "/"
        operation = body.get("operationName") if isinstance(body, dict) else None
        step = self._match(method.upper(), recorded_path, operation)
        if step is None:
            expected = ", ".join(s.label() for s in self._pending()[:3]) or "nothing (the recording is over)"
            detail = (f"no recorded request matches {method} {path}"
                      + (f" ({operation})" if operation else "") + f"; expected next: {expected}")
            self.divergences.append(MockDivergence(now, method, path, operation, detail))
            return 400, {"statusCode": 2, "statusMessage": f"gwsreplay mock: {detail}"}
        if step.index not in self.done_at:
            self.done_at[step.index] = now
            self.answered.append(step.index)
        return step.status or 200, self.ids.substitute(step.response)

    def _pending(self) -> list[Step]:
        return [s for s in self.plan.steps if s.kind == "rest" and s.index not in self.done_at]

    def _match(self, method: str, path: str, operation: str | None) -> Step | None:
        def same(step: Step) -> bool:
            return (step.method == method and (step.path or "").rstrip("/") == path
                    and (step.operation or None) == (operation or None))

        for step in self._pending()[: self.window]:
            if same(step):
                return step
        if method == "GET":  # asked again: same answer as last time
            for index in reversed(self.answered):
                if same(self.plan.steps[index]):
                    return self.plan.steps[index]
        return None

    # ------------------------------------------------------------------ notifications

    def due(self, now: float) -> tuple[list[_Due], float | None]:
        """Notifications to push now, in recorded order, and when to ask again (None: on the next request)."""
        self._run_external_steps(now)
        out: list[_Due] = []
        while self.pushed + len(out) < len(self.plan.notes):
            note = self.plan.notes[self.pushed + len(out)]
            at = self._note_time(note.step, note.ts)
            if at is None:
                return out, self._next_external_time()
            if at > now:
                return out, at
            out.append(_Due(note.index, note.channel, self.ids.substitute(note.data)))
        return out, None

    def delivered(self, count: int) -> None:
        self.pushed += count

    def _note_time(self, step_index: int, ts: float) -> float | None:
        own = self.started if step_index < 0 else self._after(self, step_index, ts)
        if own is None:
            return None
        for peer in self.peers:   # what the other desktops had done by then must be done first
            before = [s.index for s in peer.plan.steps if s.kind == "rest" and s.ts < ts]
            if not before:
                continue
            at = self._after(peer, before[-1], ts)
            if at is None:
                return None
            own = max(own, at)
        return own

    def _after(self, script: MockScript, step_index: int, ts: float) -> float | None:
        """When something recorded at `ts` is due, given the live time of `script`'s step `step_index`."""
        base = script._step_time(step_index)
        if base is None:
            return None
        step = script.plan.steps[step_index]
        gap = max(0.0, ts - max(step.end_ts, step.ts))
        return base + (gap / self.speed if self.speed else 0.0)

    def _step_time(self, index: int) -> float | None:
        """When step `index` happened live: answered (desktop steps), or passed (meta and external steps)."""
        if index in self.done_at:
            return self.done_at[index]
        step = self.plan.steps[index]
        if step.kind == "rest":
            return None
        previous = self._step_time(index - 1) if index > 0 else self.started
        if previous is None:
            return None
        if step.kind in EXTERNAL_KINDS:
            before = self.plan.steps[index - 1] if index > 0 else None
            gap = max(0.0, step.ts - (max(before.end_ts, before.ts) if before else self.plan.started))
            return previous + (gap / self.speed if self.speed else 0.0)
        return previous  # meta steps: the CometD server answers them; they gate nothing here

    def _run_external_steps(self, now: float) -> None:
        for step in self.plan.steps:
            if step.kind in EXTERNAL_KINDS and step.index not in self.done_at:
                at = self._step_time(step.index)
                if at is not None and at <= now:
                    self.done_at[step.index] = at

    def _next_external_time(self) -> float | None:
        times = [self._step_time(s.index) for s in self.plan.steps
                 if s.kind in EXTERNAL_KINDS and s.index not in self.done_at]
        times = [t for t in times if t is not None]
        return min(times) if times else None

    def unanswered(self) -> list[Step]:
        """Recorded requests the desktop never sent (reported when the mock stops)."""
        return self._pending()


# ----------------------------------------------------------------------------- the server


@dataclass
class MockState:
    scripts: list[MockScript]
    cometd: CometdServer
    sessions: dict[str, HttpSession] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    log_file: Any = None
    requests: int = 0
    owner: dict[str, MockScript] = field(default_factory=dict)  # JSESSIONID -> the session it plays

    @property
    def script(self) -> MockScript:
        """The first (with one session: the) script."""
        return self.scripts[0]

    def script_for(self, user_name: str | None) -> MockScript | None:
        """The session a desktop logging in as `user_name` plays (any name when only one is served)."""
        if len(self.scripts) == 1:
            return self.scripts[0]
        return next((s for s in self.scripts if s.plan.user_name == user_name), None)


MOCK = web.AppKey("gwsreplay_mock", MockState)
PUSHER = web.AppKey("gwsreplay_mock_pusher", asyncio.Task)


def make_app(plan: SessionPlan | list[SessionPlan], *, base_url: str, origins: list[str], seed: int = 0,
             speed: float | None = 1.0, cometd_timeout_ms: int = 30000, log_file: Any = None) -> web.Application:
    """The mock GWS for one recorded session, or several at once (one desktop each), as an aiohttp application."""
    plans = plan if isinstance(plan, list) else [plan]
    scripts = [MockScript(p, base_url=base_url, origins=origins, seed=seed, speed=speed) for p in plans]
    for script in scripts:
        script.peers = [s for s in scripts if s is not script]
    # No user monitor: a desktop the mock serves is never logged out behind its back.
    state = MockState(scripts, CometdServer(timeout_ms=cometd_timeout_ms, seed=seed, logout_timeout=None),
                      log_file=log_file)
    app = web.Application(middlewares=[_cors])
    app[MOCK] = state
    app.router.add_route("*", "/api/v2/notifications", _notifications)
    app.router.add_route("*", "/api/v2/notifications/{tail:.*}", _notifications)
    app.router.add_route("*", "/api/{tail:.*}", _rest)
    app.on_response_prepare.append(_cors_headers)
    app.on_startup.append(_start_pusher)
    app.on_shutdown.append(_stop)
    return app


@web.middleware
async def _cors(request: web.Request, handler) -> web.StreamResponse:
    """Preflights are answered here; the other CORS headers are added in `_cors_headers`."""
    if request.method == "OPTIONS":
        response = web.Response(status=200)
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, DELETE, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
        response.headers["Access-Control-Max-Age"] = "1800"
        return response
    return await handler(request)


async def _cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """On every response, also those the CometD server prepares itself (browser desktops are cross-origin)."""
    origin = request.headers.get("Origin")
    if origin and not isinstance(response, web.WebSocketResponse):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Access-Control-Expose-Headers"] = "X-CSRF-HEADER, X-CSRF-TOKEN"
        response.headers["Vary"] = "Origin"


def _session(request: web.Request, state: MockState, *, create: bool) -> tuple[HttpSession | None, bool]:
    """The desktop's HTTP session: its JSESSIONID if we issued it, else a fresh one for the session
    its Basic user name plays (with one session served, any credentials do)."""
    cookie = request.cookies.get("JSESSIONID")
    if cookie and cookie in state.sessions:
        return state.sessions[cookie], False
    if not create:
        return None, False
    script = state.script_for(_basic_user(request.headers.get(hdrs.AUTHORIZATION, "")))
    if script is None:
        return None, False
    session = HttpSession(id=secrets.token_hex(13).upper(), user_name=script.plan.user_name,
                          csrf_token=str(uuid.uuid4()))
    state.sessions[session.id] = session
    state.owner[session.id] = script
    return session, True


def _basic_user(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(value.strip(), validate=True).decode("utf-8", "replace").partition(":")[0]
    except (ValueError, binascii.Error):
        return None


async def _rest(request: web.Request) -> web.StreamResponse:
    state = request.app[MOCK]
    session, new = _session(request, state, create=True)
    if session is None:
        users = ", ".join(s.plan.user_name for s in state.scripts)
        return web.json_response({"statusCode": 3, "statusMessage": f"gwsreplay mock: log in as one of {users}"},
                                 status=401, headers={"WWW-Authenticate": 'Basic realm="gwsreplay mock"'})
    script = state.owner[session.id]
    text = await request.text()
    try:
        body = json.loads(text) if text.strip() else None
    except ValueError:
        body = None
    loop = asyncio.get_running_loop()
    for other in state.scripts:           # one clock for every desktop: the first request starts it
        if other.started is None:
            other.start(loop.time())
    status, answer = script.answer(request.method, request.path_qs, body, loop.time())
    state.requests += 1
    if status == 400 and isinstance(answer, dict) and "gwsreplay mock" in str(answer.get("statusMessage")):
        _log(state, {"divergence": {"session": script.plan.id, **script.divergences[-1].as_dict()}})
        log.warning(answer["statusMessage"])
    response = web.json_response(answer, status=status) if answer is not None else web.Response(status=status)
    if new:
        response.headers.add(hdrs.SET_COOKIE, f"JSESSIONID={session.id}; Path=/; HttpOnly")
    if request.method in ("GET", "HEAD"):
        response.headers["X-CSRF-HEADER"] = "X-CSRF-TOKEN"
        response.headers["X-CSRF-TOKEN"] = session.csrf_token
    state.wake.set()
    return response


async def _notifications(request: web.Request) -> web.StreamResponse:
    state = request.app[MOCK]
    session, _ = _session(request, state, create=False)
    try:
        return await state.cometd.handle_http(request, session)
    finally:
        state.wake.set()   # a subscribe may have made notifications deliverable


async def _start_pusher(app: web.Application) -> None:
    app[PUSHER] = asyncio.get_running_loop().create_task(_push(app[MOCK]))


async def _push(state: MockState) -> None:
    """Publish recorded notifications when due (and once the desktop has subscribed to their channel)."""
    loop = asyncio.get_running_loop()
    while True:
        wake_at: list[float] = []
        for script in state.scripts:
            again = _push_due(state, script, loop.time())
            if again is not None:
                wake_at.append(again)
        timeout = None if not wake_at else max(0.0, min(wake_at) - loop.time())
        state.wake.clear()
        try:
            await asyncio.wait_for(state.wake.wait(), timeout)
        except asyncio.TimeoutError:
            pass


def _push_due(state: MockState, script: MockScript, now: float) -> float | None:
    """Publish what is due for one session's desktop; returns when to look again (None: on the next request)."""
    due, again = script.due(now) if script.started is not None else ([], None)
    user = script.plan.user_name
    sent = 0
    for item in due:
        if not state.cometd.subscribed(user, item.channel):
            again = now + 0.05
            break
        state.cometd.publish(user, item.channel, item.data)
        entry = {"pushed": item.index, "channel": item.channel}
        _log(state, {**entry, "session": script.plan.id} if len(state.scripts) > 1 else entry)
        sent += 1
    script.delivered(sent)
    return again


async def _stop(app: web.Application) -> None:
    task = app.get(PUSHER)
    if task:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await app[MOCK].cometd.close()


def _log(state: MockState, entry: dict) -> None:
    if state.log_file is not None:
        state.log_file.write(json.dumps({"ts": time.time(), **entry}) + "\n")
        state.log_file.flush()
