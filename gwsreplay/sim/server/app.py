"""The simulator's aiohttp application: one port for REST, CometD and the control API.

This module is the only place that knows about HTTP. It does what GWS's servlet
container and Spring Security do in front of the API (Basic auth, the JSESSIONID
session, the CSRF token, CORS, no-cache headers) and hands everything else to
the sans-IO pieces:

- ``/api/v2/notifications[/...]``  -> ``CometdServer.handle_http``
- ``/api/v2/...`` (everything else) -> ``ContactCenter.rest``
- ``/sim/v1/...``                   -> the control API (no auth): inject calls,
  far-end hangups, service outages, stats and a state snapshot.

Choices that the GWS reference leaves open are recorded in docs/simulator.md.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import secrets
import time
import uuid
from collections import Counter
from typing import Any, Callable

from aiohttp import hdrs, web

from gwsreplay.sim.model.contact_center import ContactCenter
from gwsreplay.sim.model.roster import Roster
from gwsreplay.sim.server.cometd_server import CometdServer, HttpSession
from gwsreplay.sim.server.desktop import add_routes as add_desktop_routes
from gwsreplay.sim.server.http_helpers import CONTACT_CENTER, gws_error, json_response, read_json_body
from gwsreplay.sim.server.media_control import add_media_routes

log = logging.getLogger(__name__)

GWS_VERSION = "8.6.000.24"
SERVER_HEADER = "Jetty(9.4.51.v20230217)"
API = "/api/v2"
CONTROL = "/sim/v1/"
NOTIFICATIONS = "/api/v2/notifications"
CSRF_HEADER = "X-CSRF-TOKEN"
CSRF_FAILURE = "Missing or invalid Csrf token"  # protocol.md §2.3, verbatim
UNSAFE_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})
CORS_ALLOW_HEADERS = "Authorization, Content-Type, X-CSRF-TOKEN, ContactCenterId"
CORS_ALLOW_METHODS = "GET, POST, PUT, DELETE, OPTIONS"

# Typed application keys, for tests and the CLI.
FRONT = web.AppKey("gws_front", "Front")
COMETD = web.AppKey("cometd", CometdServer)

# Per-request state (web.RequestKey exists from aiohttp 3.14; plain strings before).
_RequestKey = getattr(web, "RequestKey", None)


def _request_key(name: str, kind: type) -> Any:
    return _RequestKey(name, kind) if _RequestKey is not None else name


_SESSION = _request_key("gws_session", HttpSession)  # the HttpSession the request ran under
_NEW_SESSION = _request_key("gws_new_session", bool)  # this request created it: send Set-Cookie
_USER = _request_key("gws_user", str)                 # user name for the stats ("" = nobody)


def make_app(
    roster: Roster,
    *,
    seed: int = 0,
    csrf: bool = True,
    base_url: str = "http://127.0.0.1:8090",
    external_answer_delay: float = 1.0,
    cometd_timeout_ms: int = 30000,
    cometd_max_interval_ms: int = 10000,
    multimedia: bool = True,
    session_timeout: float = 1800.0,
    sync_errors: bool = False,
    logout_timeout: float | None = 60.0,
) -> web.Application:
    """Build the simulator application (the caller runs it with any aiohttp runner).

    `logout_timeout`: GWS's user monitor logs an agent out this many seconds after its
    last CometD client went away (None: never)."""
    cometd = CometdServer(timeout_ms=cometd_timeout_ms, max_interval_ms=cometd_max_interval_ms, seed=seed,
                          logout_timeout=logout_timeout, on_logout=lambda user: front.log_out_user(user))
    contact_center = ContactCenter(
        roster,
        scheduler=AsyncioScheduler(),
        emit=cometd.publish,
        seed=seed,
        base_url=base_url,
        external_answer_delay=external_answer_delay,
        multimedia=multimedia,  # chat, email, workitems, IM, workbins (issue 6, gwsreplay.sim.model.multimedia)
        sync_errors=sync_errors,  # True: refuse operations outside capabilities at once (docs/simulator.md)
    )
    front = Front(contact_center, cometd, seed=seed, csrf=csrf, session_timeout=session_timeout)

    app = web.Application(middlewares=[front.count_rest, front.last_resort, front.control_api_guard,
                                       front.preflight])
    app[FRONT] = front
    app[CONTACT_CENTER] = contact_center
    app[COMETD] = cometd
    app.on_response_prepare.append(front.decorate_response)
    # on_shutdown runs before aiohttp waits for in-flight handlers, so closing the
    # CometD server here releases held /meta/connect polls and WebSockets at once
    # instead of letting shutdown sit out a 30 s long-poll.
    app.on_shutdown.append(_close_cometd)
    app.cleanup_ctx.append(front.expire_idle_sessions)

    r = app.router
    r.add_get(f"{API}/diagnostics/version", front.version)
    r.add_route("*", NOTIFICATIONS, front.notifications)
    r.add_route("*", NOTIFICATIONS + "/{tail:.*}", front.notifications)
    r.add_route("*", API, front.rest)
    r.add_route("*", API + "/{tail:.*}", front.rest)
    r.add_post("/sim/v1/calls", front.sim_inject_call)
    r.add_post("/sim/v1/calls/{call_id}/hangup", front.sim_far_end_hangup)
    r.add_post("/sim/v1/services/{service_type}", front.sim_service_state)
    r.add_get("/sim/v1/stats", front.sim_stats)
    r.add_get("/sim/v1/state", front.sim_state)

    # --- browser agent desktop (static files, issue 7; see gwsreplay.sim.server.desktop) ---
    add_desktop_routes(r)  # GET /sim/desktop/..., cometd served from node_modules/cometd

    # --- multimedia control API (issue 6; see gwsreplay.sim.server.media_control) ---
    add_media_routes(app)  # POST /sim/v1/chats, /sim/v1/chats/{id}/messages|leave, /emails, /workitems, /openmedia/{t}
    return app


def _same_origin(request: web.Request) -> bool:
    """No Origin (curl, scripts, the tests) or this server's own origin (the desktop page)."""
    origin = request.headers.get(hdrs.ORIGIN)
    if not origin:
        return True
    return origin.rstrip("/").lower() == f"{request.scheme}://{request.host}".lower()


async def _close_cometd(app: web.Application) -> None:
    await app[COMETD].close()


class AsyncioScheduler:
    """The model's clock and timers on the running asyncio loop.

    ``now()`` is ``time.monotonic()``, which is what ``loop.time()`` returns on
    the default loop, so it also works before the loop starts.
    """

    def now(self) -> float:
        return time.monotonic()

    def call_later(self, delay: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(delay, callback)


def access_denied() -> web.Response:
    # No WWW-Authenticate challenge on purpose: a browser desktop would pop up
    # its own login dialog instead of letting the page handle the 401.
    return gws_error(401, 20, "Access denied")


def csrf_denied() -> web.Response:
    return web.Response(status=403, text=CSRF_FAILURE, content_type="text/plain")


class Front:
    """What sits in front of the model: sessions, auth, CSRF, CORS, routing, stats."""

    def __init__(self, contact_center: ContactCenter, cometd: CometdServer, *, seed: int, csrf: bool,
                 session_timeout: float = 1800.0):
        self.contact_center = contact_center
        self.cometd = cometd
        self.csrf = csrf
        self.sessions: dict[str, HttpSession] = {}
        # Like a servlet container's session timeout: a session nobody used for this
        # long, with no CometD client left, is forgotten (clients that drop cookies
        # would otherwise grow the table for ever). The agent stays logged in, as
        # T-Server keeps the login; logging out is the user monitor's job (log_out_user).
        self.session_timeout = session_timeout
        self._last_used: dict[str, float] = {}
        self.rest_total = 0
        self.rest_by_user: Counter[str] = Counter()
        self.internal_errors = 0

    # ------------------------------------------------------------------ middlewares

    @web.middleware
    async def count_rest(self, request: web.Request, handler) -> web.StreamResponse:
        """Count every answered request under /api/v2 except CometD, whatever its status."""
        if not _is_rest_path(request.path):
            return await handler(request)
        try:
            response = await handler(request)
        except web.HTTPException:
            self._count(request)
            raise
        self._count(request)  # a cancelled request (client gone) was never answered
        return response

    def _count(self, request: web.Request) -> None:
        self.rest_total += 1
        self.rest_by_user[request.get(_USER, "")] += 1

    @web.middleware
    async def last_resort(self, request: web.Request, handler) -> web.StreamResponse:
        """Never a 500 with a traceback: log it, answer GWS-style statusCode 4.

        Reaching this is a simulator bug; tests assert ``internal_errors == 0``.
        """
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            # aiohttp's own refusals (no route, wrong method, body too large) as JSON too
            response = gws_error(exc.status, 6 if exc.status == 404 else 2, exc.reason)
            if hdrs.ALLOW in exc.headers:
                response.headers[hdrs.ALLOW] = exc.headers[hdrs.ALLOW]
            return response
        except (asyncio.CancelledError, ConnectionError):
            raise
        except Exception:
            self.internal_errors += 1
            log.exception("internal error answering %s %s", request.method, request.path_qs)
            return gws_error(503, 4, "Internal error")

    @web.middleware
    async def control_api_guard(self, request: web.Request, handler) -> web.StreamResponse:
        """The control API (/sim/v1) has no auth, so it takes no orders from web pages of other
        origins: a browser sends Origin on cross-site POSTs, and CORS is never granted there."""
        if (request.path.startswith(CONTROL) and request.method not in ("GET", "HEAD")
                and not _same_origin(request)):
            return gws_error(403, 3, "The control API refuses requests from other origins")
        return await handler(request)

    @web.middleware
    async def preflight(self, request: web.Request, handler) -> web.StreamResponse:
        """Answer CORS preflights under /api/v2 without auth (decorate_response adds the rest);
        nothing else is open to other origins."""
        if request.method != "OPTIONS":
            return await handler(request)
        if not request.path.startswith(API):
            return web.Response(status=403, text="CORS is not granted outside /api/v2")
        return web.Response(
            status=200,
            headers={
                "Access-Control-Allow-Methods": CORS_ALLOW_METHODS,
                "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
                "Access-Control-Max-Age": "1800",
                hdrs.ALLOW: CORS_ALLOW_METHODS,
            },
        )

    async def decorate_response(self, request: web.Request, response: web.StreamResponse) -> None:
        """Headers every response gets, added just before they are sent (WebSocket upgrades too)."""
        origin = request.headers.get(hdrs.ORIGIN)
        if origin and request.path.startswith(API):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Access-Control-Expose-Headers"] = "X-CSRF-HEADER, X-CSRF-TOKEN"
            response.headers.add(hdrs.VARY, "Origin")
        response.headers[hdrs.SERVER] = SERVER_HEADER
        if not request.path.startswith(API):
            return
        if response.status != 101:
            response.headers[hdrs.CACHE_CONTROL] = "no-cache"
            response.headers.add(hdrs.CACHE_CONTROL, "no-store")
            response.headers[hdrs.PRAGMA] = "no-cache"
            response.headers[hdrs.EXPIRES] = "Thu, 01 Jan 1970 00:00:00 GMT"
        session: HttpSession | None = request.get(_SESSION)
        if session is None or session.id not in self.sessions:
            return  # no session, or EndContactCenterSession just invalidated it
        if request.get(_NEW_SESSION):
            # A raw header: aiohttp serialises response.cookies before this hook runs.
            response.headers.add(hdrs.SET_COOKIE, f"JSESSIONID={session.id}; Path=/; HttpOnly")
        if self.csrf and request.method in ("GET", "HEAD"):
            response.headers["X-CSRF-HEADER"] = CSRF_HEADER
            response.headers["X-CSRF-TOKEN"] = session.csrf_token

    # ------------------------------------------------------------------ sessions

    def _cookie_session(self, request: web.Request) -> HttpSession | None:
        session_id = request.cookies.get("JSESSIONID")
        return self.sessions.get(session_id) if session_id else None

    def _new_session(self, user_name: str) -> HttpSession:
        """Session secrets are random even when --seed makes every id reproducible: a seeded
        JSESSIONID or CSRF token would be guessable from another simulator with the same seed."""
        session_id = "".join(secrets.choice("0123456789abcdefghijklmnopqrstuvwxyz") for _ in range(26))
        token = str(uuid.UUID(int=secrets.randbits(128), version=4))
        session = HttpSession(id=session_id, user_name=user_name, csrf_token=token)
        self.sessions[session_id] = session
        return session

    async def expire_idle_sessions(self, app: web.Application):
        """cleanup_ctx: sweep idle sessions every minute (or every timeout, if shorter)."""
        async def sweep() -> None:
            while True:
                await asyncio.sleep(min(60.0, self.session_timeout))
                self.forget_idle_sessions()

        task = asyncio.create_task(sweep())
        yield
        task.cancel()

    def forget_idle_sessions(self, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        idle = [sid for sid in self.sessions
                if now - self._last_used.get(sid, now) > self.session_timeout and not self.cometd.has_clients(sid)]
        for sid in idle:
            self.sessions.pop(sid, None)
            self._last_used.pop(sid, None)
        return len(idle)

    def log_out_user(self, user_name: str) -> None:
        """GWS's user monitor: the agent's CometD sessions are gone; end its sessions as
        EndContactCenterSession would (cookies and CSRF tokens die, the agent is logged out)."""
        sessions = [s for s in self.sessions.values() if s.user_name == user_name]
        for session in sessions:
            self._invalidate(session)
        if not sessions:
            self.contact_center.end_session(user_name)

    def _invalidate(self, session: HttpSession) -> None:
        """EndContactCenterSession: cookie, CSRF token and CometD sessions all die."""
        self.sessions.pop(session.id, None)
        self._last_used.pop(session.id, None)
        self.cometd.drop_http_session(session.id)
        self.contact_center.end_session(session.user_name)

    def _authenticate(self, request: web.Request, *, required: bool) -> HttpSession | None | web.Response:
        """Resolve the request's HttpSession, as Spring Security's Basic filter would.

        Valid Basic credentials win: they reuse the cookie's session if it belongs
        to the same user, else create a new session (a stale cookie gets a new
        JSESSIONID, as in the reference). Wrong credentials are a 401 even with a
        valid cookie. Without credentials the cookie's session is used.
        Returns the session, None (anonymous, only when not ``required``) or a 401.
        """
        session = self._cookie_session(request)
        header = request.headers.get(hdrs.AUTHORIZATION)
        if header:
            credentials = _decode_basic(header)
            if credentials is None or not self.contact_center.check_password(*credentials):
                return access_denied()
            if session is None or session.user_name != credentials[0]:
                session = self._new_session(credentials[0])
                request[_NEW_SESSION] = True
        if session is None:
            return access_denied() if required else None
        self._last_used[session.id] = time.monotonic()
        request[_SESSION] = session
        request[_USER] = session.user_name
        return session

    def _csrf_refused(self, request: web.Request) -> bool:
        """True when an unsafe request lacks the token bound to its JSESSIONID.

        Checked before authentication, as Spring Security's CsrfFilter runs before
        the Basic filter: so Basic credentials alone never make a POST acceptable.
        """
        if not self.csrf or request.method not in UNSAFE_METHODS:
            return False
        session = self._cookie_session(request)
        if session is not None:
            request[_USER] = session.user_name  # for the stats only
        return session is None or request.headers.get(CSRF_HEADER) != session.csrf_token

    # ------------------------------------------------------------------ /api/v2

    async def version(self, request: web.Request) -> web.Response:
        """No auth needed; with valid credentials it also hands out the CSRF token
        (the reference's Python sample reads it from here)."""
        if request.headers.get(hdrs.AUTHORIZATION) or request.cookies.get("JSESSIONID"):
            self._authenticate(request, required=False)  # a 401 here is ignored on purpose
        return json_response(200, {"statusCode": 0, "version": GWS_VERSION})

    async def rest(self, request: web.Request) -> web.Response:
        if self._csrf_refused(request):
            return csrf_denied()
        session = self._authenticate(request, required=True)
        if isinstance(session, web.Response):
            return session
        body = await read_json_body(request)
        if isinstance(body, web.Response):
            return body
        path = _api_subpath(request.path)
        method = "GET" if request.method == "HEAD" else request.method
        query = {key: request.query[key] for key in request.query}
        status, payload = self.contact_center.rest(session.user_name, method, path, query, body)
        if (
            method == "POST"
            and path == "/me"
            and body.get("operationName") == "EndContactCenterSession"
            and payload.get("statusCode") == 0
        ):
            self._invalidate(session)
        return json_response(status, payload)

    async def notifications(self, request: web.Request) -> web.StreamResponse:
        """CometD: CSRF for POSTs, then the session (or None) goes to the Bayeux server."""
        if self._csrf_refused(request):
            return csrf_denied()
        session = self._authenticate(request, required=False)
        if isinstance(session, web.Response):
            return session
        return await self.cometd.handle_http(request, session)

    # ------------------------------------------------------------------ /sim/v1

    async def sim_inject_call(self, request: web.Request) -> web.Response:
        body = await read_json_body(request, required=True)
        if isinstance(body, web.Response):
            return body
        from_number, to_number, user_data = body.get("from"), body.get("to"), body.get("userData")
        for name, value in (("from", from_number), ("to", to_number)):
            if not isinstance(value, (str, int)) or isinstance(value, bool) or str(value) == "":
                return gws_error(400, 1, f"'{name}' must be a non-empty phone number string")
        if user_data is not None and not isinstance(user_data, dict):
            return gws_error(400, 2, "'userData' must be a JSON object")
        status, payload = self.contact_center.inject_call(str(from_number), str(to_number), user_data)
        return json_response(status, payload)

    async def sim_far_end_hangup(self, request: web.Request) -> web.Response:
        status, payload = self.contact_center.far_end_hangup(request.match_info["call_id"])
        return json_response(status, payload)

    async def sim_service_state(self, request: web.Request) -> web.Response:
        body = await read_json_body(request, required=True)
        if isinstance(body, web.Response):
            return body
        state = body.get("state")
        if not isinstance(state, str) or not state:
            return gws_error(400, 1, "'state' is required: \"Active\" or \"Inactive\"")
        status, payload = self.contact_center.set_service_state(request.match_info["service_type"], state)
        return json_response(status, payload)

    async def sim_stats(self, request: web.Request) -> web.Response:
        return json_response(200, self.stats())

    async def sim_state(self, request: web.Request) -> web.Response:
        return json_response(200, self.contact_center.snapshot())

    def stats(self) -> dict:
        return {
            "rest": {"total": self.rest_total, "by_user": dict(self.rest_by_user)},
            "bayeux": self.cometd.stats(),
        }


# ---------------------------------------------------------------------- helpers


def _is_rest_path(path: str) -> bool:
    in_api = path == API or path.startswith(API + "/")
    in_notifications = path == NOTIFICATIONS or path.startswith(NOTIFICATIONS + "/")
    return in_api and not in_notifications


def _api_subpath(path: str) -> str:
    """"/api/v2/me/calls/" -> "/me/calls" (Spring MVC's trailing-slash match)."""
    sub = path[len(API):]
    if len(sub) > 1 and sub.endswith("/"):
        sub = sub.rstrip("/")
    return sub or "/"


def _decode_basic(header: str) -> tuple[str, str] | None:
    """``Basic base64(user:password)`` -> (user, password); None when malformed."""
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (ValueError, binascii.Error):  # UnicodeDecodeError is a ValueError
        return None
    user_name, colon, password = decoded.partition(":")
    return (user_name, password) if colon else None
