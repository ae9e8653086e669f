"""One virtual agent's HTTP session on Locust's own client (geventhttpclient).

REST and Bayeux long-polls share one `FastHttpSession`, so the JSESSIONID in its
cookie jar goes out on both, as a browser desktop's would. It behaves like
gwsreplay.client.rest.GWSClient (HTTP Basic on every request, the CSRF token read
from GET answers and sent back on unsafe methods) without asyncio. Every exchange
can be handed, as the capture proxy's raw record, to a `sink` (the replay output
file); timing and Locust reporting are the caller's business.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlencode, urlsplit

from locust.contrib.fasthttp import FastHttpSession

from gwsreplay.capture.records import HttpRecord

UNSAFE_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})
Sink = Callable[[Any], None]


class _Quiet:
    """A request event that reports nothing: the driver reports each exchange under its own name."""

    def fire(self, **_: Any) -> None:
        return None


@dataclass
class Answer:
    """One HTTP answer: status (0 when no answer came), parsed JSON body, raw body, headers, error."""

    status: int
    body: Any
    content: bytes
    headers: dict[str, str]
    error: str | None = None
    started: float = 0.0         # time.perf_counter() when sent
    ended: float = 0.0           # ... when the body was read

    @property
    def ms(self) -> float:
        return (self.ended - self.started) * 1000


class AgentHttp:
    """Basic auth, cookie jar, CSRF token: one agent, one browser-like session."""

    def __init__(self, base_url: str, user: str, password: str, *, sink: Sink | None = None,
                 network_timeout: float = 90.0):
        self.base_url = base_url.rstrip("/")
        self.user = user
        self.authorization = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.session = FastHttpSession(self.base_url, _Quiet(), None, network_timeout=network_timeout,
                                       connection_timeout=30.0, concurrency=4, max_retries=0)
        self.sink = sink
        self.csrf_header: str | None = None
        self.csrf_token: str | None = None
        parts = urlsplit(self.base_url)
        self._where = {"scheme": parts.scheme, "host": parts.hostname or "",
                       "port": parts.port or (443 if parts.scheme == "https" else 80)}

    # ------------------------------------------------------------------ REST

    def needs_csrf(self, method: str) -> bool:
        """An unsafe request with no token yet: the caller GETs /me first (as GWSClient does)."""
        return method.upper() in UNSAFE_METHODS and self.csrf_token is None

    def rest(self, method: str, path: str, *, query: dict | None = None, body: Any = None) -> Answer:
        method = method.upper()
        headers = {"Authorization": self.authorization, "Accept": "application/json"}
        if method in UNSAFE_METHODS and self.csrf_header and self.csrf_token:
            headers[self.csrf_header] = self.csrf_token
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        target = self._path(path) + (("?" + urlencode({k: str(v) for k, v in query.items() if v is not None}))
                                     if query else "")
        answer = self.exchange(method, target, data, headers)
        if method == "GET" and answer.status:
            token = answer.headers.get("x-csrf-token")
            if token:
                self.csrf_header = answer.headers.get("x-csrf-header") or "X-CSRF-TOKEN"
                self.csrf_token = token
        return answer

    def csrf_headers(self) -> dict[str, str]:
        return {self.csrf_header: self.csrf_token} if self.csrf_header and self.csrf_token else {}

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.session.cookiejar)

    def _path(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            parts = urlsplit(path)
            return parts.path + ("?" + parts.query if parts.query else "")
        return path if path.startswith("/") else "/api/v2/" + path

    # ------------------------------------------------------------------ raw exchange

    def exchange(self, method: str, target: str, data: bytes | None, headers: dict[str, str]) -> Answer:
        """One request over the agent's session; recorded to the sink with what went out and came back."""
        cookie = self.cookie_header()
        started_wall, started = time.time(), time.perf_counter()
        response = self.session.request(method, target, data=data, headers=headers)
        error = getattr(response, "error", None)
        status = int(getattr(response, "status_code", 0) or 0)
        try:
            content = response.content or b""
        except Exception as exc:  # noqa: BLE001 - a broken body is an answer too (transport divergence)
            content, error = b"", error or exc
        ended = time.perf_counter()
        response_headers = _headers(response)
        # any HTTP status is an answer (a refusal is compared with the recording); no status is a transport error
        answer = Answer(status, _json(content), content, {k.lower(): v for k, v in response_headers},
                        None if status else _error_text(error or "no answer"), started, ended)
        if self.sink is not None:
            sent = [*headers.items(), *([("Cookie", cookie)] if cookie else [])]
            self.sink(HttpRecord(
                flow_id=uuid.uuid4().hex, method=method, **self._where, path=target, http_version="HTTP/1.1",
                request_headers=sent, request_body=data, status=status or None,
                response_headers=response_headers, response_body=content if status else None,
                ts_request_start=started_wall, ts_request_end=started_wall,
                ts_response_start=started_wall + (ended - started) if status else None,
                ts_response_end=started_wall + (ended - started) if status else None,
                error=answer.error, source="replay", decoded=True))
        return answer


def _headers(response: Any) -> list[tuple[str, str]]:
    headers = getattr(response, "headers", None)
    if not headers:
        return []
    try:
        return [(str(k), str(v)) for k, v in headers.items()]
    except AttributeError:
        return []


def _json(content: bytes) -> Any:
    try:
        return json.loads(content) if content else None
    except ValueError:
        return None


def _error_text(error: Any) -> str | None:
    if error is None:
        return None
    return f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
