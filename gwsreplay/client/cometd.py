"""asyncio drivers for `BayeuxClientSession`: long-polling and WebSocket over aiohttp.

`CometdClient` owns no HTTP state: it borrows an `aiohttp.ClientSession`, so the
JSESSIONID cookie in that session's jar goes out on every POST and on the
WebSocket upgrade, and the CSRF header is passed in `headers`.

    client = CometdClient(http, base + "/api/v2/notifications", headers={"X-CSRF-TOKEN": token})
    await client.handshake()              # also starts the background /meta/connect loop
    await client.subscribe("/v2/me/*")
    event = await client.events.get()     # {"channel": "/v2/me/calls", "data": {...}}
    await client.disconnect()

After a 402 or advice reconnect=handshake the loop handshakes again and
re-subscribes on its own; it stops on reconnect=none or after disconnect().
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable, Literal

import aiohttp

from gwsreplay.core.bayeux import (
    BayeuxClientSession,
    BayeuxDecodeError,
    Data,
    State,
    decode,
    decode_lenient,
    encode,
    is_meta,
)

log = logging.getLogger(__name__)

Transport = Literal["long-polling", "websocket"]
MessageHook = Callable[[Literal["in", "out"], dict], None]


class CometdError(Exception):
    """A request failed: the server said successful=false, or no reply came."""

    def __init__(self, text: str, reply: dict | None = None):
        super().__init__(text)
        self.reply = reply


class CometdClient:
    """One Bayeux client on a borrowed aiohttp session; see the module docstring for the flow."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        url: str,
        *,
        transport: Transport = "long-polling",
        headers: dict | None = None,
        on_message: MessageHook | None = None,
        append_message_type: bool = False,
        reply_timeout: float = 30.0,
        backoff_increment: float = 1.0,
    ):
        """`append_message_type` POSTs a lone meta message to url + "/handshake", "/connect"...
        as the official JS client does; `reply_timeout` bounds the wait for any reply
        (a held connect gets the server's advised timeout on top)."""
        if transport not in ("long-polling", "websocket"):
            raise ValueError(f"unknown transport {transport!r}")
        self.http = http
        self.url = url.rstrip("/")
        self.transport = transport
        self.headers = dict(headers or {})
        self.on_message = on_message
        self.append_message_type = append_message_type
        self.reply_timeout = reply_timeout
        self.session = BayeuxClientSession(connection_type=transport, backoff_increment=backoff_increment)
        self.events: asyncio.Queue[dict] = asyncio.Queue()
        self.messages_sent = 0
        self.messages_received = 0
        self._waiters: dict[str, asyncio.Future] = {}
        self._tasks: set[asyncio.Task] = set()
        self._loop_task: asyncio.Task | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ws_lock = asyncio.Lock()

    async def __aenter__(self) -> CometdClient:
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    # ------------------------------------------------------------------ public API

    async def handshake(self, ext: dict | None = None) -> dict:
        """Handshake, then keep /meta/connect going in the background. Raises CometdError on refusal."""
        reply = await self._handshake(ext)
        if not reply.get("successful"):
            raise CometdError(f"handshake refused: {reply.get('error')}", reply)
        if self._loop_task is None or self._loop_task.done():
            self._loop_task = asyncio.get_running_loop().create_task(self._connect_loop())
        return reply

    async def subscribe(self, channel: str) -> dict:
        return self._checked(await self._exchange(self.session.subscribe(channel)))

    async def unsubscribe(self, channel: str) -> dict:
        return self._checked(await self._exchange(self.session.unsubscribe(channel)))

    async def request(self, message: dict) -> dict:
        """Send any message (e.g. a recorded /meta/subscribe) stamped for this session; return its reply."""
        return await self._exchange(self.session.prepare(message))

    async def disconnect(self) -> dict | None:
        """Say goodbye, let the connect loop end, and release everything. Returns the reply, if any."""
        reply = None
        if self.session.state is State.CONNECTED:
            try:
                reply = await self._exchange(self.session.disconnect())
            except (CometdError, aiohttp.ClientError, ConnectionError, asyncio.TimeoutError) as exc:
                log.info("disconnect got no reply: %s", exc)
        if self._loop_task is not None:
            # The server answers the held connect once the client is gone.
            await asyncio.wait([self._loop_task], timeout=self.reply_timeout)
        await self.close()
        return reply

    async def close(self) -> None:
        """Stop at once: cancel the loop and pending requests, close the WebSocket."""
        tasks = [t for t in (self._loop_task, *self._tasks) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._fail_waiters(CometdError("client closed"))
        if self._ws is not None:
            await self._ws.close()

    # ------------------------------------------------------------------ the connect loop

    async def _connect_loop(self) -> None:
        """Follow `next_action()`: connect (one at a time), re-handshake, or stop."""
        while True:
            action = self.session.next_action()
            if action.kind == "stop":
                return
            if action.delay:
                await asyncio.sleep(action.delay)
            try:
                if action.kind == "handshake":
                    await self._handshake()
                else:
                    timeout = self.reply_timeout + self.session.advice.get("timeout", 0) / 1000
                    await self._exchange(self.session.connect(), timeout=timeout)
            except (CometdError, aiohttp.ClientError, ConnectionError, asyncio.TimeoutError) as exc:
                log.info("bayeux %s failed: %s", action.kind, exc)
                self.session.transport_failed()

    async def _handshake(self, ext: dict | None = None) -> dict:
        reply = await self._exchange(self.session.handshake(ext))
        for message in self.session.take_outgoing():  # re-subscriptions, each in its own request
            self._spawn(self._exchange(message))
        return reply

    # ------------------------------------------------------------------ requests and replies

    async def _exchange(self, message: dict, *, timeout: float | None = None) -> dict:
        """Send one message and wait for the reply with the same id (bounded by `timeout`)."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters[message["id"]] = waiter
        try:
            async with asyncio.timeout(timeout or self.reply_timeout):
                await self._send([message])  # a long-poll POST returns with the reply inside
                return await waiter
        finally:
            self._waiters.pop(message["id"], None)

    async def _send(self, messages: list[dict]) -> None:
        for message in messages:
            self.messages_sent += 1
            self._notify("out", message)
        if self.transport == "websocket":
            ws = await self._websocket()
            await ws.send_str(encode(messages).decode("utf-8"))
        else:
            await self._post(messages)

    def _receive(self, messages: list[dict]) -> None:
        """Feed incoming messages to the session; route replies to waiters and data to `events`."""
        for message in messages:
            self.messages_received += 1
            self._notify("in", message)
        for event in self.session.receive(messages):
            if isinstance(event, Data):
                self.events.put_nowait(event.message)
                continue
            waiter = self._waiters.pop(str(event.id), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(event.message)

    def _notify(self, direction: Literal["in", "out"], message: dict) -> None:
        """Call the hook; a failing hook must not break the connect loop."""
        if self.on_message is None:
            return
        try:
            self.on_message(direction, message)
        except Exception:
            log.exception("on_message hook failed")

    def _checked(self, reply: dict) -> dict:
        if not reply.get("successful"):
            raise CometdError(f"{reply.get('channel')} refused: {reply.get('error')}", reply)
        return reply

    def _fail_waiters(self, exc: Exception) -> None:
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_exception(exc)
                waiter.exception()  # nobody may be waiting any more: mark it retrieved
        self._waiters.clear()

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._forget_task)

    def _forget_task(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.info("bayeux request failed: %s", task.exception())

    # ------------------------------------------------------------------ long-polling

    async def _post(self, messages: list[dict]) -> None:
        """One POST per batch; a held /meta/connect travels alone so other messages are not delayed."""
        url = self.url
        if self.append_message_type and len(messages) == 1 and is_meta(messages[0].get("channel", "")):
            url += messages[0]["channel"][len("/meta"):]
        headers = {"Content-Type": "application/json;charset=UTF-8", **self.headers}
        async with self.http.post(url, data=encode(messages), headers=headers) as response:
            body = await response.read()
        replies, error = decode_lenient(body)
        self._receive(replies)
        if response.status != 200 or error is not None:
            raise CometdError(f"HTTP {response.status} from {url}: {error or body[:200]!r}")
        unanswered = [m for m in messages if m["id"] in self._waiters and not self._waiters[m["id"]].done()]
        if unanswered:
            raise CometdError(f"no reply to {[m['channel'] for m in unanswered]}")

    # ------------------------------------------------------------------ WebSocket

    async def _websocket(self) -> aiohttp.ClientWebSocketResponse:
        """The open WebSocket, (re)opened on demand on the same URL with the ws scheme."""
        async with self._ws_lock:
            if self._ws is None or self._ws.closed:
                url = "ws" + self.url[len("http"):] if self.url.startswith("http") else self.url
                self._ws = await self.http.ws_connect(url, headers=self.headers)
                self._spawn(self._read_websocket(self._ws))
            return self._ws

    async def _read_websocket(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for frame in ws:
                if frame.type is not aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    self._receive(decode(frame.data))
                except BayeuxDecodeError as exc:
                    log.warning("undecodable WebSocket frame: %s", exc)
        finally:
            # Requests in flight on this socket will never be answered.
            self._fail_waiters(ConnectionError("WebSocket closed"))

