"""The simulator's Bayeux 1.0 (CometD) server: long-polling and WebSocket on one URL.

A Bayeux client belongs to the HTTP session (JSESSIONID) that handshook it:
`publish()` reaches the clients of one user, `drop_http_session()` kills the
clients of one HTTP session. Choices where the reference is silent are listed
in docs/cometd.md.

Delivery model, per client:
- events wait in `queue` until a transport takes them;
- long-polling: the held `/meta/connect` is answered as soon as events are
  queued, with every queued event followed by the connect reply in one array;
- WebSocket: events are pushed as frames once the client has connected, and
  the connect reply is held until `timeout_ms`, like CometD's WebSocket transport.
A reply that cannot be written is not counted, and its events are queued again.

What Jetty CometD adds as GWS runs it (cometd_ext.py): the acknowledged-messages
extension (a client that asks for it gets its events only in connect replies,
in numbered batches sent again until acknowledged), one held long-poll per
browser (BAYEUX_BROWSER cookie; another tab gets `advice.multiple-clients`),
and the user monitor that logs out an agent left without any CometD client.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from aiohttp import WSMsgType, web

from gwsreplay.core.bayeux import (
    CONNECT,
    CONNECTION_TYPES,
    DISCONNECT,
    HANDSHAKE,
    SUBSCRIBE,
    UNSUBSCRIBE,
    BayeuxDecodeError,
    channel_matches,
    decode_lenient,
    decode_raw,
    encode,
    format_error,
)
from gwsreplay.sim.server.cometd_ext import (
    BROWSER_COOKIE,
    DEFAULT_LOGOUT_TIMEOUT,
    AckBatches,
    Browsers,
    UserMonitor,
)

log = logging.getLogger(__name__)

# Channels a client may subscribe to: its own GWS topics (/v2/me/..., wildcards included),
# the services topic and the metrics topic.
ME_PREFIX = "/v2/me/"
ALLOWED_CHANNELS = frozenset({"/notifications/services", "/me/internal"})

UNKNOWN_CLIENT = format_error(402, (), "Unknown client")
JSON_TYPE = "application/json;charset=UTF-8"


@dataclass
class HttpSession:
    """One authenticated HTTP session (JSESSIONID); owned by app.py."""

    id: str
    user_name: str
    csrf_token: str


@dataclass(eq=False)
class _Client:
    """One Bayeux client (one clientId)."""

    id: str
    http_session_id: str
    user_name: str
    subscriptions: set[str] = field(default_factory=set)
    queue: list[dict] = field(default_factory=list)
    socket: _Socket | None = None  # set once the client talks over a WebSocket
    connected: bool = False  # has sent a /meta/connect since its handshake
    held: asyncio.Future | None = None  # resolved to answer the held /meta/connect now
    expiry: asyncio.TimerHandle | None = None
    alive: bool = True
    disconnected: bool = False  # removed by its own /meta/disconnect
    ack: AckBatches | None = None  # it handshook with ext.ack: true

    def release_held(self) -> None:
        if self.held is not None and not self.held.done():
            self.held.set_result(None)


@dataclass(eq=False)
class _Socket:
    """One WebSocket; the lock keeps frames whole and in order."""

    ws: web.WebSocketResponse
    session: HttpSession | None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    dropped: bool = False  # its HTTP session was dropped: closing, frames are no longer answered

    @property
    def user_name(self) -> str | None:
        return self.session.user_name if self.session else None


class CometdServer:
    """Bayeux clients, their subscriptions and queues, and both transports' adapters."""

    def __init__(self, *, timeout_ms: int = 30000, max_interval_ms: int = 10000, seed: int = 0,
                 logout_timeout: float | None = DEFAULT_LOGOUT_TIMEOUT,
                 on_logout: Callable[[str], None] | None = None):
        """`on_logout(user_name)` is GWS's user monitor logging an agent out, `logout_timeout`
        seconds after its last client went away (None: no user monitor)."""
        self.timeout_ms = timeout_ms
        self.max_interval_ms = max_interval_ms
        self._random = random.Random(seed)
        self._browsers = Browsers(seed)
        self.monitor = UserMonitor(logout_timeout, on_logout)
        self._clients: dict[str, _Client] = {}
        self._by_user: dict[str, dict[str, _Client]] = {}  # user -> its clients, in handshake order
        self._sockets: set[_Socket] = set()
        self._tasks: set[asyncio.Task] = set()
        self._received: Counter[str] = Counter()
        self._delivered: Counter[str] = Counter()
        self._received_total = 0
        self._delivered_total = 0

    # ------------------------------------------------------------------ public API

    def publish(self, user_name: str | None, channel: str, data: dict) -> None:
        """Queue `{"channel", "data"}` for every matching client of `user_name` (None: everyone)."""
        for client in list(self._clients_of(user_name)):
            if any(channel_matches(pattern, channel) for pattern in client.subscriptions):
                client.queue.append({"channel": channel, "data": data})
                self._wake(client)

    def subscribed(self, user_name: str | None, channel: str) -> bool:
        """Whether a `publish(user_name, channel, ...)` now would reach at least one client."""
        return any(any(channel_matches(pattern, channel) for pattern in client.subscriptions)
                   for client in self._clients_of(user_name))

    def _clients_of(self, user_name: str | None):
        """The clients of one user (None: everyone), in handshake order, without scanning them all."""
        return (self._clients if user_name is None else self._by_user.get(user_name, {})).values()

    async def handle_http(self, request: web.Request, session: HttpSession | None) -> web.StreamResponse:
        """Everything under /api/v2/notifications: long-poll POSTs and the WebSocket upgrade."""
        if request.method == "POST":
            return await self._handle_long_poll(request, session)
        if request.method == "GET" and request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._handle_websocket(request, session)
        return web.Response(
            status=405 if request.method != "GET" else 400,
            text="POST Bayeux messages here, or upgrade to WebSocket\n",
            headers={"Allow": "GET, POST"},
        )

    def has_clients(self, session_id: str) -> bool:
        """Whether this HTTP session still has a live Bayeux client (keeps it from idling out)."""
        return any(c.http_session_id == session_id for c in self._clients.values()) or any(
            s.session is not None and s.session.id == session_id for s in self._sockets)

    def drop_http_session(self, session_id: str) -> None:
        """Kill every client of this HTTP session: held connects get 402 now, later messages too.

        Its WebSockets are closed (after that 402) and ignore what still arrives
        on them, so a client that handshakes again comes back through a new
        upgrade and the app's session check.
        """
        doomed = [c for c in self._clients.values() if c.http_session_id == session_id]
        for client in doomed:
            self._remove(client, monitor=False)
            self.monitor.back(client.user_name)  # logged out already: nothing left to monitor
        for sock in [s for s in self._sockets if s.session is not None and s.session.id == session_id]:
            sock.dropped = True
            if not any(c.socket is sock and c.held is not None for c in doomed):
                self._spawn(sock.ws.close())  # else _answer_ws_connect closes it after the 402

    def stats(self) -> dict:
        return {
            "received": {"total": self._received_total, "by_user": dict(self._received)},
            "delivered": {"total": self._delivered_total, "by_user": dict(self._delivered)},
        }

    async def close(self) -> None:
        """Answer held connects, close WebSockets, forget every client."""
        self.monitor.close()
        for client in list(self._clients.values()):
            self._remove(client, monitor=False)
        for sock in list(self._sockets):
            await sock.ws.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ------------------------------------------------------------------ long-polling

    async def _handle_long_poll(self, request: web.Request, session: HttpSession | None) -> web.StreamResponse:
        user = session.user_name if session else None
        messages, error = self._read_messages(await request.read(), user)
        if error is not None:
            response, _ = await self._write_http(request, [error], user, status=400)
            return response

        replies: list[dict] = []
        connect: tuple[_Client, dict] | None = None
        for message in messages:
            reply, client = self._process(message, session, socket=None)
            if client is None:
                replies.append(reply)
            elif connect is None:
                connect = (client, message)
            else:  # a second connect in the same POST is simply answered
                replies.append(self._connect_reply(client, message))
        headers = {}
        if not request.cookies.get(BROWSER_COOKIE) and any(
                r.get("channel") == HANDSHAKE and r.get("successful") for r in replies):
            # CometD's long-polling transport marks the browser on its first handshake.
            headers["Set-Cookie"] = f"{BROWSER_COOKIE}={self._browsers.new_id()}; Path=/; HttpOnly"
        if connect is None:
            response, _ = await self._write_http(request, replies, user, headers=headers)
            return response
        return await self._answer_long_poll_connect(request, user, replies, *connect)

    async def _answer_long_poll_connect(
        self, request: web.Request, user: str | None, replies: list[dict], client: _Client, message: dict
    ) -> web.StreamResponse:
        """Hold the connect if nothing is ready, then send other replies + events + connect reply."""
        # CometD answers the first connect after a handshake at once, and so do we
        # when other replies share the POST: holding them for 30 s would stall the client.
        hold = client.connected and not replies and not client.queue
        client.connected = True
        client.socket = None  # it long-polls now, even if it used a WebSocket before
        browser = request.cookies.get(BROWSER_COOKIE)
        advice = None
        if hold and not self._browsers.may_hold(browser, client.id):
            hold, advice = False, Browsers.advice(self.timeout_ms)  # another tab holds one already
        events: list[dict] = []
        written = False
        try:
            if hold:
                try:
                    await self._hold(client)
                finally:
                    self._browsers.released(browser, client.id)
            events, ext = self._take_events(client)
            response, written = await self._write_http(
                request, replies + events + [self._connect_reply(client, message, ext=ext, advice=advice)], user
            )
            return response
        finally:
            if not written and client.alive and client.ack is None:
                client.queue[:0] = events  # the client vanished: keep the events for its next connect
            self._schedule_expiry(client)

    def _take_events(self, client: _Client) -> tuple[list[dict], dict | None]:
        """The queued events for a connect reply, and (ack extension) the reply's ext with their batch."""
        events, client.queue = client.queue, []
        if client.ack is None or not client.alive:
            return events, None
        return events, client.ack.deliver(events)

    async def _hold(self, client: _Client) -> None:
        """Wait until events arrive, a newer connect comes, the client dies, or timeout."""
        held = client.held = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(held, self.timeout_ms / 1000)
        except asyncio.TimeoutError:
            pass
        finally:
            if client.held is held:
                client.held = None

    async def _write_http(
        self, request: web.Request, messages: list[dict], user: str | None, *, status: int = 200,
        headers: dict | None = None,
    ) -> tuple[web.StreamResponse, bool]:
        """Write the reply array and count it only if it reached the socket."""
        # A Response, not a StreamResponse: aiohttp then sends the headers and the body in one
        # write (a StreamResponse sends its headers alone at prepare(), so every long-poll
        # answer cost two send() calls and two TCP segments).
        response = web.Response(status=status, body=encode(messages),
                                headers={"Content-Type": JSON_TYPE, **(headers or {})})
        if request.transport is None or request.transport.is_closing():
            return response, False
        try:
            await response.prepare(request)
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            return response, False
        self._count_delivered(user, len(messages))
        return response, True

    # ------------------------------------------------------------------ WebSocket

    async def _handle_websocket(self, request: web.Request, session: HttpSession | None) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sock = _Socket(ws, session)
        self._sockets.add(sock)
        try:
            async for frame in ws:
                if frame.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    await self._on_frame(sock, frame.data)
        finally:
            self._sockets.discard(sock)
            for client in self._clients.values():
                if client.socket is sock:
                    client.socket = None
                    client.release_held()  # its reply cannot be written any more; expiry starts
        return ws

    async def _on_frame(self, sock: _Socket, data: bytes | str) -> None:
        messages, error = self._read_messages(data, sock.user_name)
        if sock.dropped:
            return
        if error is not None:
            await self._send_frame(sock, [error], sock.user_name)
            return
        replies = []
        for message in messages:
            reply, client = self._process(message, sock.session, socket=sock)
            if client is None:
                replies.append(reply)
                continue
            # A connect: push what is queued, then answer it in the background.
            first = not client.connected
            client.socket = sock
            client.connected = True
            if client.ack is None:
                self._flush_socket(client)
            # With acks, events travel only in connect replies: one with events goes at once.
            self._spawn(self._answer_ws_connect(client, message, sock, hold=not first and not (client.ack and client.queue)))
        if replies:
            await self._send_frame(sock, replies, sock.user_name)

    async def _answer_ws_connect(self, client: _Client, message: dict, sock: _Socket, *, hold: bool) -> None:
        """CometD's WebSocket transport holds the connect reply; events travel in their own frames."""
        try:
            if hold:
                await self._hold(client)
            if client.socket is sock:
                events, ext = self._take_events(client) if client.ack is not None else ([], None)
                await self._send_frame(sock, events + [self._connect_reply(client, message, ext=ext)],
                                       sock.user_name)
                if sock.dropped:
                    await sock.ws.close()  # after the 402, see drop_http_session
        finally:
            self._schedule_expiry(client)

    def _flush_socket(self, client: _Client) -> None:
        if client.socket is not None and client.connected and client.queue and client.ack is None:
            self._spawn(self._send_events(client, client.socket))

    async def _send_events(self, client: _Client, sock: _Socket) -> None:
        events, client.queue = client.queue, []
        if events and not await self._send_frame(sock, events, sock.user_name) and client.alive:
            client.queue[:0] = events

    async def _send_frame(self, sock: _Socket, messages: list[dict], user: str | None) -> bool:
        """Send one JSON-array frame; count it only if it was written."""
        async with sock.lock:
            if sock.ws.closed:
                return False
            try:
                await sock.ws.send_str(encode(messages).decode("utf-8"))
            except (ConnectionError, RuntimeError):
                return False
        self._count_delivered(user, len(messages))
        return True

    # ------------------------------------------------------------------ messages

    def _read_messages(self, body: bytes | str, user: str | None) -> tuple[list, dict | None]:
        """Parse a body and count it; returns (elements, None) or ([], error reply for a 400).

        The count is what `decode_lenient` recovers, i.e. exactly what the
        capture proxy records: JSON objects, including recovered leading
        objects of a broken body.
        """
        try:
            elements = decode_raw(body)
        except BayeuxDecodeError as exc:
            self._count_received(user, len(decode_lenient(body)[0]))
            return [], self._error_reply({}, 400, str(exc))
        self._count_received(user, sum(isinstance(e, dict) for e in elements))
        return elements, None

    def _process(
        self, message: object, session: HttpSession | None, *, socket: _Socket | None
    ) -> tuple[dict | None, _Client | None]:
        """Handle one message. Returns (reply, None), or (None, client) for a connect to answer later."""
        if not isinstance(message, dict) or not isinstance(message.get("channel"), str):
            return self._error_reply(message if isinstance(message, dict) else {}, 400, "Malformed message"), None
        channel = message["channel"]
        if channel == HANDSHAKE:
            return self._handshake(message, session, socket), None
        client_id = message.get("clientId")
        client = self._clients.get(client_id) if isinstance(client_id, str) else None
        if client is None or session is None or client.http_session_id != session.id:
            return self._reply(message, successful=False, error=UNKNOWN_CLIENT,
                               advice={"reconnect": "handshake", "interval": 0}), None
        if channel == CONNECT:
            if client.expiry is not None:
                client.expiry.cancel()
            client.release_held()  # one outstanding connect per client: answer the older one
            if client.ack is not None:  # not acknowledged: sent again with this connect's reply
                client.queue[:0] = client.ack.on_connect(message)
            return None, client
        if channel == SUBSCRIBE:
            return self._subscribe(client, message), None
        if channel == UNSUBSCRIBE:
            client.subscriptions.difference_update(_channels(message))
            return self._reply(message, successful=True, subscription=message.get("subscription")), None
        if channel == DISCONNECT:
            client.disconnected = True
            self._remove(client)
            return self._reply(message, successful=True), None
        return self._reply(message, successful=False, error=format_error(403, (), "Publish denied")), None

    def _handshake(self, message: dict, session: HttpSession | None, socket: _Socket | None) -> dict:
        if session is None:
            # Same wording as CometD 2/3's SecurityPolicy refusal; retrying cannot help.
            return self._reply(message, successful=False, error=format_error(403, (), "Handshake denied"),
                               advice={"reconnect": "none", "interval": 0})
        offered = message.get("supportedConnectionTypes")
        if not isinstance(offered, list) or not any(t in CONNECTION_TYPES for t in offered if isinstance(t, str)):
            return self._reply(message, successful=False, version="1.0",
                               error=format_error(406, (), "Unsupported connection types"),
                               supportedConnectionTypes=list(CONNECTION_TYPES),
                               advice={"reconnect": "none", "interval": 0})
        client = _Client(self._new_client_id(), session.id, session.user_name, socket=socket)
        self._clients[client.id] = client
        self._by_user.setdefault(client.user_name, {})[client.id] = client
        self.monitor.back(client.user_name)
        self._schedule_expiry(client)
        extra = {}
        if AckBatches.wanted(message):
            client.ack = AckBatches()
            extra["ext"] = {"ack": True}  # the format CometD 2/3 servers answer, understood by every client
        return self._reply(message, successful=True, clientId=client.id, version="1.0",
                           supportedConnectionTypes=list(CONNECTION_TYPES), advice=self._advice(), **extra)

    def _subscribe(self, client: _Client, message: dict) -> dict:
        channels = _channels(message)
        refused = [c for c in channels if not _may_subscribe(c)]
        if not channels or refused:
            return self._reply(message, successful=False, subscription=message.get("subscription"),
                               error=format_error(403, (), "Forbidden"))
        client.subscriptions.update(channels)
        return self._reply(message, successful=True, subscription=message.get("subscription"))

    def _connect_reply(self, client: _Client, message: dict, *, ext: dict | None = None,
                       advice: dict | None = None) -> dict:
        if client.disconnected:  # what CometD answers to the connect held across a disconnect
            return self._reply(message, successful=True, advice={"reconnect": "none", "interval": 0})
        if not client.alive:
            return self._reply(message, successful=False, error=UNKNOWN_CLIENT,
                               advice={"reconnect": "handshake", "interval": 0})
        if ext is None and client.ack is not None:
            ext = client.ack.deliver([])
        return self._reply(message, successful=True, advice=advice or self._advice(),
                           **({"ext": ext} if ext else {}))

    def _reply(self, message: dict, **fields) -> dict:
        reply = {"channel": message["channel"]}
        if "id" in message:
            reply["id"] = message["id"]
        reply.update(fields)
        return reply

    def _error_reply(self, message: dict, code: int, text: str) -> dict:
        channel = message.get("channel")
        reply = {"channel": channel if isinstance(channel, str) else "/meta/unknown", "successful": False,
                 "error": format_error(code, (), text)}
        if "id" in message:
            reply["id"] = message["id"]
        return reply

    def _advice(self) -> dict:
        return {"reconnect": "retry", "interval": 0, "timeout": self.timeout_ms}

    # ------------------------------------------------------------------ client lifecycle

    def _wake(self, client: _Client) -> None:
        if client.socket is not None and client.ack is None:
            self._flush_socket(client)
        else:
            client.release_held()

    def _schedule_expiry(self, client: _Client) -> None:
        """Start the max_interval clock: the client must send its next connect before it rings."""
        if client.expiry is not None:
            client.expiry.cancel()
        if client.alive and client.held is None:
            loop = asyncio.get_running_loop()
            client.expiry = loop.call_later(self.max_interval_ms / 1000, self._expire, client)

    def _expire(self, client: _Client) -> None:
        if client.held is None:  # a connect is being held: the client is alive
            log.info("bayeux client %s expired", client.id)
            self._remove(client)

    def _remove(self, client: _Client, *, monitor: bool = True) -> None:
        """Forget the client; with `monitor`, the user monitor starts if it was the user's last one."""
        client.alive = False
        client.queue.clear()
        self._clients.pop(client.id, None)
        same_user = self._by_user.get(client.user_name)
        if same_user is not None:
            same_user.pop(client.id, None)
            if not same_user:
                del self._by_user[client.user_name]
                if monitor:
                    self.monitor.gone(client.user_name)
        if client.expiry is not None:
            client.expiry.cancel()
        client.release_held()

    def _new_client_id(self) -> str:
        """A CometD-looking base-36 id, deterministic for a given seed."""
        number = self._random.getrandbits(128)
        digits = []
        while number:
            number, rest = divmod(number, 36)
            digits.append("0123456789abcdefghijklmnopqrstuvwxyz"[rest])
        return "".join(reversed(digits)) or "0"

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ counting

    def _count_received(self, user: str | None, n: int) -> None:
        self._received_total += n
        if user is not None and n:
            self._received[user] += n

    def _count_delivered(self, user: str | None, n: int) -> None:
        self._delivered_total += n
        if user is not None and n:
            self._delivered[user] += n


def _channels(message: dict) -> list[str]:
    value = message.get("subscription")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return []


def _may_subscribe(channel: str) -> bool:
    return channel in ALLOWED_CHANNELS or (channel.startswith(ME_PREFIX) and channel != ME_PREFIX)
