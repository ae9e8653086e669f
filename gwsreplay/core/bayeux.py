"""Bayeux 1.0 without I/O: the wire codec and the client state machine.

Everything here is pure: bytes and dicts in, bytes and dicts out. The asyncio
drivers (`gwsreplay.client/cometd.py`), the simulator's CometD server, the capture
proxy and the replayer all share it, so they agree on what a message is.

Wire facts this module relies on (see docs/cometd.md):
- a body is a JSON array of messages; a single object is accepted too;
- `/meta/*` replies echo the request `id`; `id` is a client counter ("1", "2", ...);
- `error` is `code:args:message`, e.g. "402::Unknown client" or "403:x,y:denied";
- `advice.reconnect` is "retry", "handshake" or "none"; newer advice supersedes older.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal

META_PREFIX = "/meta/"
HANDSHAKE = "/meta/handshake"
CONNECT = "/meta/connect"
SUBSCRIBE = "/meta/subscribe"
UNSUBSCRIBE = "/meta/unsubscribe"
DISCONNECT = "/meta/disconnect"

CONNECTION_TYPES = ("long-polling", "websocket")


# --------------------------------------------------------------------------- codec


class BayeuxDecodeError(ValueError):
    """A body that is not valid JSON or not a Bayeux message array."""


def decode_raw(body: bytes | str) -> list[Any]:
    """Parse a body into its list of elements without judging the elements.

    Servers use this to answer each malformed element with its own error reply
    instead of rejecting the whole batch. Raises `BayeuxDecodeError` when the
    body is not JSON, or is JSON but neither an array nor an object.
    """
    text = _to_text(body, strict=True)
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise BayeuxDecodeError(f"invalid JSON: {exc}") from None
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return value
    raise BayeuxDecodeError(
        f"expected a JSON array of messages or one message object, got {type(value).__name__}"
    )


def decode(body: bytes | str) -> list[dict]:
    """Parse a body into Bayeux messages (dicts); a single object becomes a list of one."""
    elements = decode_raw(body)
    for index, element in enumerate(elements):
        if not isinstance(element, dict):
            raise BayeuxDecodeError(
                f"message {index} is a {type(element).__name__}, expected a JSON object"
            )
    return elements


def decode_lenient(body: bytes | str) -> tuple[list[dict], str | None]:
    """Recover every complete message from a possibly broken body; never raises.

    The capture proxy sees truncated and invalid bodies (aborted long-polls,
    size limits). It keeps the complete leading elements of a cut-off array and
    reports what went wrong as a string (None when the body was clean).
    """
    try:
        return decode(body), None
    except BayeuxDecodeError as exc:
        strict_error = str(exc)

    text = _to_text(body, strict=False)
    decoder = json.JSONDecoder()
    pos = _skip_ws(text, 0)
    if text.startswith("{", pos):
        element, _, error = _raw_decode(decoder, text, pos)
        if isinstance(element, dict):
            return [element], strict_error
        return [], error or strict_error
    if not text.startswith("[", pos):
        return [], strict_error

    messages: list[dict] = []
    pos = _skip_ws(text, pos + 1)
    if text.startswith("]", pos):
        return messages, strict_error
    while True:
        element, pos, error = _raw_decode(decoder, text, pos)
        if error is not None:
            return messages, f"{strict_error}; kept {len(messages)} complete message(s)"
        if isinstance(element, dict):
            messages.append(element)
        pos = _skip_ws(text, pos)
        if text.startswith(",", pos):
            pos = _skip_ws(text, pos + 1)
        else:
            return messages, f"{strict_error}; kept {len(messages)} complete message(s)"


def encode(messages: dict | Iterable[dict]) -> bytes:
    """Serialise messages as the compact JSON array Bayeux puts on the wire."""
    if isinstance(messages, dict):
        messages = [messages]
    return json.dumps(list(messages), separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _to_text(body: bytes | str, *, strict: bool) -> str:
    if isinstance(body, str):
        return body
    try:
        return bytes(body).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if strict:
            raise BayeuxDecodeError(f"body is not UTF-8: {exc}") from None
        return bytes(body).decode("utf-8-sig", errors="replace")


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _raw_decode(decoder: json.JSONDecoder, text: str, pos: int) -> tuple[Any, int, str | None]:
    try:
        value, end = decoder.raw_decode(text, pos)
    except (ValueError, RecursionError) as exc:
        return None, pos, str(exc)
    return value, end, None


# --------------------------------------------------------------------------- channels and errors


def is_meta(channel: str) -> bool:
    return isinstance(channel, str) and channel.startswith(META_PREFIX)


def channel_matches(pattern: str, channel: str) -> bool:
    """Bayeux channel globbing: `*` matches one segment, a trailing `**` one or more.

    "/v2/me/*" matches "/v2/me/calls" but neither "/v2/me" nor "/v2/me/calls/x";
    "/v2/me/**" matches both "/v2/me/calls" and "/v2/me/calls/x".
    """
    if pattern == channel:
        return True
    wanted = pattern.split("/")
    actual = channel.split("/")
    if wanted[-1] == "**":
        if len(actual) < len(wanted):
            return False
        wanted, actual = wanted[:-1], actual[: len(wanted) - 1]
    elif len(wanted) != len(actual):
        return False
    return all(w == a or (w == "*" and a != "") for w, a in zip(wanted, actual))


@dataclass(frozen=True)
class BayeuxError:
    """A parsed `error` field: "402::Unknown client" -> code 402, args [], message "Unknown client"."""

    code: int | None
    args: list[str]
    message: str

    def __str__(self) -> str:
        return format_error(self.code, self.args, self.message)


def parse_error(text: str | None) -> BayeuxError:
    """Parse every form seen in the wild; a string without a numeric code is all message."""
    text = "" if text is None else str(text)
    parts = text.split(":", 2)
    if len(parts) < 2 or not parts[0].strip().isdigit():
        return BayeuxError(None, [], text)
    code = int(parts[0])
    if len(parts) == 2:  # "402:Unknown client", tolerated
        return BayeuxError(code, [], parts[1])
    args = parts[1].split(",") if parts[1] else []
    return BayeuxError(code, args, parts[2])


def format_error(code: int | None, args: Iterable[str] = (), message: str = "") -> str:
    if code is None:
        return message
    return f"{code}:{','.join(args)}:{message}"


# --------------------------------------------------------------------------- client state machine


class State(enum.Enum):
    UNCONNECTED = "unconnected"  # no clientId: must handshake
    HANDSHAKING = "handshaking"  # handshake sent, reply pending
    CONNECTED = "connected"  # holds a clientId: keep /meta/connect going
    DISCONNECTED = "disconnected"  # done: disconnect sent or server said reconnect=none


@dataclass(frozen=True)
class Reply:
    """A reply from the server (any `/meta/*` message, or a publish acknowledgement)."""

    channel: str
    successful: bool
    error: BayeuxError | None
    message: dict
    request: dict | None  # the message we sent with the same id, if we know it

    @property
    def id(self) -> str | None:
        return self.message.get("id")


@dataclass(frozen=True)
class Data:
    """An application message pushed by the server, e.g. a GWS notification."""

    channel: str
    data: Any
    message: dict


@dataclass(frozen=True)
class NextAction:
    """What the driver should do once nothing is outstanding: handshake, connect or stop, after `delay` seconds."""

    kind: Literal["handshake", "connect", "stop"]
    delay: float = 0.0


@dataclass
class BayeuxClientSession:
    """The client half of Bayeux, with no I/O.

    The driver asks for messages to send (`handshake()`, `connect()`,
    `subscribe()`, ... or `prepare()` for a recorded message), hands every
    message it receives to `receive()`, sends whatever `take_outgoing()` holds
    (re-subscriptions after a re-handshake), and after each handshake or
    connect reply asks `next_action()` what to do next.

    Subscriptions are remembered, so after a 402 (or advice reconnect=handshake)
    a new handshake is followed by the same subscriptions, as CometD clients do.
    """

    connection_type: str = "long-polling"
    supported_connection_types: tuple[str, ...] | None = None
    backoff_increment: float = 1.0  # seconds added after each failed attempt
    max_backoff: float = 60.0

    # state, read freely, changed only by the methods below
    state: State = field(default=State.UNCONNECTED, init=False)
    client_id: str | None = field(default=None, init=False)
    advice: dict = field(default_factory=dict, init=False)
    subscriptions: set[str] = field(default_factory=set, init=False)  # confirmed by the server
    wanted: set[str] = field(default_factory=set, init=False)  # to restore after a re-handshake
    backoff: float = field(default=0.0, init=False)
    _next_id: int = field(default=0, init=False, repr=False)
    _pending: dict[str, dict] = field(default_factory=dict, init=False, repr=False)  # id -> sent message
    _outgoing: list[dict] = field(default_factory=list, init=False, repr=False)

    # -- building messages

    def handshake(self, ext: dict | None = None) -> dict:
        types = self.supported_connection_types or (self.connection_type,)
        message = {
            "channel": HANDSHAKE,
            "version": "1.0",
            "minimumVersion": "1.0",
            "supportedConnectionTypes": list(types),
        }
        if ext is not None:
            message["ext"] = ext
        return self.prepare(message)

    def connect(self) -> dict:
        return self.prepare({"channel": CONNECT, "connectionType": self.connection_type})

    def subscribe(self, channel: str) -> dict:
        return self.prepare({"channel": SUBSCRIBE, "subscription": channel})

    def unsubscribe(self, channel: str) -> dict:
        return self.prepare({"channel": UNSUBSCRIBE, "subscription": channel})

    def disconnect(self) -> dict:
        return self.prepare({"channel": DISCONNECT})

    def prepare(self, message: dict) -> dict:
        """Stamp any message (built here or recorded elsewhere) for this session.

        Gives it a fresh `id` and the current `clientId` (none on a handshake)
        and tracks what it means for the session, so a replayer can send
        recorded `/meta/subscribe` messages and still get re-subscription.
        """
        message = dict(message)
        self._next_id += 1
        message["id"] = str(self._next_id)
        channel = message.get("channel")
        if channel == HANDSHAKE:
            message.pop("clientId", None)
            self.state = State.HANDSHAKING
            self.client_id = None
        elif self.client_id is not None:
            message["clientId"] = self.client_id
        if channel == SUBSCRIBE:
            self.wanted.update(_subscription_list(message))
        elif channel == UNSUBSCRIBE:
            self.wanted.difference_update(_subscription_list(message))
        elif channel == DISCONNECT:
            self.state = State.DISCONNECTED
        self._pending[message["id"]] = message
        return message

    def take_outgoing(self) -> list[dict]:
        """Messages the session decided to send by itself (re-subscriptions)."""
        outgoing, self._outgoing = self._outgoing, []
        return outgoing

    # -- consuming messages

    def receive(self, messages: Iterable[dict]) -> list[Reply | Data]:
        """Update the state from incoming messages and return them as events, in order."""
        events: list[Reply | Data] = []
        for message in messages:
            channel = message.get("channel", "")
            if not is_meta(channel) and "successful" not in message:
                events.append(Data(channel, message.get("data"), message))
                continue
            request = self._pending.pop(str(message.get("id")), None)
            error = parse_error(message["error"]) if "error" in message else None
            reply = Reply(channel, bool(message.get("successful")), error, message, request)
            if isinstance(message.get("advice"), dict):
                self.advice = {**self.advice, **message["advice"]}
            self._on_reply(reply)
            events.append(reply)
        return events

    def transport_failed(self) -> None:
        """The handshake or connect in flight got no reply (network error): back off and retry."""
        if self.state is State.HANDSHAKING:
            self.state = State.UNCONNECTED
        self._increase_backoff()

    def next_action(self) -> NextAction:
        """What to do after a handshake or connect reply (or a transport failure)."""
        if self.state is State.DISCONNECTED:
            return NextAction("stop")
        delay = self.advice.get("interval", 0) / 1000 + self.backoff
        if self.state is State.CONNECTED:
            return NextAction("connect", delay)
        return NextAction("handshake", delay)

    # -- internals

    def _on_reply(self, reply: Reply) -> None:
        stale = reply.request is not None and reply.request.get("clientId") != self.client_id
        if reply.channel == HANDSHAKE:
            self._on_handshake_reply(reply)
        elif stale or self.state is State.DISCONNECTED:
            return  # a reply for an earlier clientId must not disturb the current one
        elif reply.error is not None and reply.error.code == 402:
            self._forget_client_id()
        elif reply.channel == CONNECT:
            self._on_connect_reply(reply)
        elif reply.channel == SUBSCRIBE:
            channels = _subscription_list(reply.request or reply.message)
            if reply.successful:
                self.subscriptions.update(channels)
            else:  # refused (403...): retrying after a re-handshake would fail again
                self.wanted.difference_update(channels)
        elif reply.channel == UNSUBSCRIBE and reply.successful:
            self.subscriptions.difference_update(_subscription_list(reply.request or reply.message))

    def _on_handshake_reply(self, reply: Reply) -> None:
        if self.state is State.DISCONNECTED:
            return
        if reply.successful and reply.message.get("clientId"):
            self.client_id = reply.message["clientId"]
            self.state = State.CONNECTED
            self.backoff = 0.0
            self.subscriptions.clear()
            self._outgoing.extend(self.subscribe(channel) for channel in sorted(self.wanted))
        elif self._reconnect(reply) == "none":
            self.state = State.DISCONNECTED
        else:
            self.state = State.UNCONNECTED
            self._increase_backoff()

    def _on_connect_reply(self, reply: Reply) -> None:
        reconnect = self._reconnect(reply)
        if reconnect == "none":
            self.state = State.DISCONNECTED
        elif reconnect == "handshake":
            self._forget_client_id()
        elif reply.successful:
            self.backoff = 0.0
        else:
            self._increase_backoff()

    def _reconnect(self, reply: Reply) -> str | None:
        """The advice that governs this reply: its own, or the last known one if it failed."""
        advice = reply.message.get("advice")
        if isinstance(advice, dict) and "reconnect" in advice:
            return advice["reconnect"]
        return None if reply.successful else self.advice.get("reconnect")

    def _forget_client_id(self) -> None:
        self.client_id = None
        self.state = State.UNCONNECTED
        self.subscriptions.clear()

    def _increase_backoff(self) -> None:
        self.backoff = min(self.backoff + self.backoff_increment, self.max_backoff)


def _subscription_list(message: dict) -> list[str]:
    """`subscription` may be one channel or a list of channels."""
    value = message.get("subscription")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []
