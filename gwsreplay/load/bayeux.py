"""A gevent driver for `BayeuxClientSession`: long-polling over the agent's HTTP session, or WebSocket.

The counterpart of gwsreplay.client.cometd (asyncio) for Locust's greenlets: the
same sans-IO state machine (gwsreplay.core.bayeux) decides what to send, this
module only moves bytes. Long-polling POSTs go through the agent's `AgentHttp`
(same cookie jar, CSRF header); WebSocket uses websocket-client on gevent-patched
sockets, with the session cookie on the upgrade as a browser sends it. Pushed
data messages go to `on_data(message)`; `/meta/connect` runs in its own greenlet
and re-handshakes (with re-subscription) when the server asks.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Callable

import gevent
import websocket
from gevent.event import AsyncResult
from gevent.lock import Semaphore

from gwsreplay.capture.records import HttpRecord, WsEndRecord, WsFrameRecord
from gwsreplay.core.bayeux import BayeuxClientSession, BayeuxDecodeError, Data, State, decode, decode_lenient, encode

from gwsreplay.load.http import AgentHttp

log = logging.getLogger(__name__)


class BayeuxFailed(Exception):
    """No reply came (transport error or timeout), or the server refused."""

    def __init__(self, text: str, reply: dict | None = None):
        super().__init__(text)
        self.reply = reply


class GeventCometd:
    """One Bayeux client of one agent: `handshake`, `request` (recorded meta messages), `disconnect`, `close`."""

    def __init__(self, http: AgentHttp, transport: str, on_data: Callable[[dict], None], *,
                 reply_timeout: float = 30.0):
        self.http = http
        self.url = http.base_url + "/api/v2/notifications"
        self.transport = transport
        self.on_data = on_data
        self.reply_timeout = reply_timeout
        self.session = BayeuxClientSession(connection_type=transport)
        self._waiters: dict[str, AsyncResult] = {}
        self._loop: gevent.Greenlet | None = None
        self._greenlets: set[gevent.Greenlet] = set()
        self._ws: websocket.WebSocket | None = None
        self._ws_lock = Semaphore()
        self._ws_flow: str | None = None
        self._ws_started = 0.0
        self._ws_frames = 0
        self.closed = False

    # ------------------------------------------------------------------ public

    def handshake(self, ext: dict | None = None) -> dict:
        reply = self._handshake(ext)
        if reply.get("successful") and (self._loop is None or self._loop.dead):
            self._loop = gevent.spawn(self._connect_loop)
        return reply

    def request(self, message: dict) -> dict:
        """Send a (recorded) message stamped for this session; its reply."""
        return self._exchange(self.session.prepare(message))

    def disconnect(self) -> dict | None:
        reply = None
        if self.session.state is State.CONNECTED:
            try:
                reply = self._exchange(self.session.disconnect())
            except BayeuxFailed as exc:
                log.info("disconnect got no reply: %s", exc)
        self.close()            # the held /meta/connect is not waited for: the session is over
        return reply

    def close(self) -> None:
        self.closed = True
        greenlets = [g for g in (self._loop, *self._greenlets) if g is not None and g is not gevent.getcurrent()]
        gevent.killall(greenlets, block=True, timeout=5)
        for waiter in self._waiters.values():
            if not waiter.ready():
                waiter.set_exception(BayeuxFailed("client closed"))
        self._waiters.clear()
        self._close_ws()

    # ------------------------------------------------------------------ the connect loop

    def _connect_loop(self) -> None:
        while not self.closed:
            action = self.session.next_action()
            if action.kind == "stop":
                return
            if action.delay:
                gevent.sleep(action.delay)
            try:
                if action.kind == "handshake":
                    self._handshake()
                else:
                    timeout = self.reply_timeout + self.session.advice.get("timeout", 0) / 1000
                    self._exchange(self.session.connect(), timeout=timeout)
            except BayeuxFailed as exc:
                if self.closed:
                    return
                log.info("bayeux %s failed: %s", action.kind, exc)
                self.session.transport_failed()

    def _handshake(self, ext: dict | None = None) -> dict:
        reply = self._exchange(self.session.handshake(ext))
        for message in self.session.take_outgoing():   # re-subscriptions
            self._spawn(self._exchange_quietly, message)
        return reply

    def _exchange_quietly(self, message: dict) -> None:
        try:
            self._exchange(message)
        except BayeuxFailed as exc:
            log.info("bayeux request failed: %s", exc)

    # ------------------------------------------------------------------ requests and replies

    def _exchange(self, message: dict, *, timeout: float | None = None) -> dict:
        waiter = AsyncResult()
        self._waiters[message["id"]] = waiter
        try:
            self._send([message])
            return waiter.get(timeout=timeout or self.reply_timeout)
        except gevent.Timeout:
            raise BayeuxFailed(f"no reply to {message.get('channel')} within {timeout or self.reply_timeout}s") \
                from None
        finally:
            self._waiters.pop(message["id"], None)

    def _send(self, messages: list[dict]) -> None:
        if self.transport == "websocket":
            self._ws_send(messages)
        else:
            self._post(messages)

    def _receive(self, messages: list[dict]) -> None:
        for event in self.session.receive(messages):
            if isinstance(event, Data):
                self.on_data(event.message)
                continue
            waiter = self._waiters.get(str(event.id))
            if waiter is not None and not waiter.ready():
                waiter.set(event.message)

    def _spawn(self, fn, *args) -> None:
        greenlet = gevent.spawn(fn, *args)
        self._greenlets.add(greenlet)
        greenlet.link(self._greenlets.discard)

    # ------------------------------------------------------------------ long-polling

    def _post(self, messages: list[dict]) -> None:
        headers = {"Content-Type": "application/json;charset=UTF-8", **self.http.csrf_headers()}
        answer = self.http.exchange("POST", "/api/v2/notifications", encode(messages), headers)
        if answer.error is not None:
            raise BayeuxFailed(answer.error)
        replies, error = decode_lenient(answer.content)
        self._receive(replies)
        if answer.status != 200 or error is not None:
            raise BayeuxFailed(f"HTTP {answer.status}: {error or answer.content[:200]!r}")

    # ------------------------------------------------------------------ WebSocket

    def _ws_send(self, messages: list[dict]) -> None:
        ws = self._websocket()
        text = encode(messages).decode("utf-8")
        try:
            ws.send(text)
        except (websocket.WebSocketException, OSError) as exc:
            self._close_ws()
            raise BayeuxFailed(f"WebSocket send failed: {exc}") from None
        self._frame(True, text.encode())

    def _websocket(self) -> websocket.WebSocket:
        with self._ws_lock:
            if self._ws is None or not self._ws.connected:
                url = "ws" + self.url[len("http"):]
                headers = [f"{k}: {v}" for k, v in self.http.csrf_headers().items()]
                cookie = self.http.cookie_header()
                if cookie:
                    headers.append(f"Cookie: {cookie}")
                started = time.time()
                try:
                    self._ws = websocket.create_connection(url, header=headers, timeout=None, enable_multithread=False)
                except (websocket.WebSocketException, OSError) as exc:
                    raise BayeuxFailed(f"WebSocket upgrade failed: {exc}") from None
                self._record_upgrade(started, headers)
                self._spawn(self._read, self._ws)
            return self._ws

    def _read(self, ws: websocket.WebSocket) -> None:
        try:
            while True:
                text = ws.recv()
                if not text:
                    return
                self._frame(False, text.encode() if isinstance(text, str) else text)
                try:
                    self._receive(decode(text))
                except BayeuxDecodeError as exc:
                    log.warning("undecodable WebSocket frame: %s", exc)
        except (websocket.WebSocketException, OSError):
            return
        finally:
            for waiter in list(self._waiters.values()):   # requests on this socket will never be answered
                if not waiter.ready():
                    waiter.set_exception(BayeuxFailed("WebSocket closed"))

    def _close_ws(self) -> None:
        if self._ws is not None:
            try:
                self._ws.close(timeout=1)
            except (websocket.WebSocketException, OSError):
                pass
            self._ws = None
        if self._ws_flow is not None and self.http.sink is not None:
            self._close_ws_record()

    def _record_upgrade(self, started: float, headers: list[str]) -> None:
        if self.http.sink is None:
            return
        if self._ws_flow is not None:
            self._close_ws_record()
        self._ws_flow, self._ws_started, self._ws_frames = uuid.uuid4().hex, started, 0
        sent = [tuple(h.split(": ", 1)) for h in headers]
        status = getattr(self._ws, "status", 101) or 101
        self.http.sink(HttpRecord(
            flow_id=self._ws_flow, method="GET", **self.http._where, path="/api/v2/notifications",
            http_version="HTTP/1.1", is_websocket=True, source="replay", decoded=True, request_headers=sent,
            status=status, reason="Switching Protocols", response_headers=[],
            ts_request_start=started, ts_request_end=started, ts_response_start=time.time(),
            ts_response_end=time.time()))

    def _close_ws_record(self) -> None:
        self.http.sink(WsEndRecord(flow_id=self._ws_flow, ts_start=self._ws_started, ts_end=time.time(),
                                   frames=self._ws_frames, closed_by_client=True))
        self._ws_flow = None

    def _frame(self, from_client: bool, content: bytes) -> None:
        if self.http.sink is None or self._ws_flow is None:
            return
        self.http.sink(WsFrameRecord(flow_id=self._ws_flow, index=self._ws_frames, ts=time.time(),
                                     from_client=from_client, is_text=True, content=content))
        self._ws_frames += 1
