"""GWSClient: one agent's HTTP session against GWS (or the simulator).

It behaves like the documented desktop (protocol.md §2-§3): HTTP Basic on
every request, a JSESSIONID kept in its own cookie jar, and the CSRF token
read from GET responses and sent back on PUT/POST/DELETE. Errors are data, not
exceptions: every call returns a `Response`, whatever the status, so tests and
the replayer can look at refusals as closely as at successes.

Paths: anything starting with ``/api/`` is used as given (``/api/v2/me``,
``/api/v1/stats/...``); anything else is taken relative to ``/api/v2``
(``"me/calls"`` and ``"/me/calls"`` both mean ``/api/v2/me/calls``).
"""

from __future__ import annotations

import base64
import json
import ssl
from dataclasses import dataclass
from typing import Any, Iterable

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from gwsreplay.client.cometd import CometdClient


VOICE_CHANNEL = "/api/v2/me/channels/voice"
UNSAFE_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})


@dataclass
class Response:
    """One HTTP answer: ``body`` is the parsed JSON, or None when it is not JSON."""

    status: int
    body: Any
    headers: CIMultiDictProxy[str]
    text: str

    @property
    def status_code(self) -> int | None:
        """The GWS ``statusCode`` of the body, if there is one."""
        return self.body.get("statusCode") if isinstance(self.body, dict) else None

    @property
    def ok(self) -> bool:
        """HTTP 200 and statusCode 0 (full success; 7 is partial success)."""
        return self.status == 200 and self.status_code == 0


@dataclass(frozen=True)
class ConnectOptions:
    """How the client reaches GWS: the PEM CA file HTTPS is verified against (None: the
    system's CAs) and an explicit HTTP(S) proxy URL (None: direct). Environment variables
    are not consulted, so a test on loopback never wanders through a configured proxy."""

    ca_file: str | None = None
    proxy: str | None = None

    def session(self, **kwargs: Any) -> aiohttp.ClientSession:
        tls: ssl.SSLContext | bool = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else True
        if self.proxy:  # a session-wide proxy needs aiohttp 3.10+
            kwargs["proxy"] = self.proxy
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls), **kwargs)


class GWSClient:
    """One user's HTTP session: Basic auth, JSESSIONID cookie jar, CSRF token.

    ``http``: an aiohttp session to use instead of creating one. Cookies live in
    the session's jar, so give each user its own session, with a jar that accepts
    IP hosts (``aiohttp.CookieJar(unsafe=True)``); it is not closed by `close()`.
    ``connect``: CA file and proxy for the session made here (ignored with ``http``).
    """

    def __init__(self, base_url: str, user_name: str, password: str, *,
                 http: aiohttp.ClientSession | None = None, connect: ConnectOptions | None = None):
        self.base_url = base_url.rstrip("/")
        self.user_name = user_name
        self.password = password
        credentials = base64.b64encode(f"{user_name}:{password}".encode()).decode()
        self._authorization = f"Basic {credentials}"  # built by hand: aiohttp 3.14 deprecates BasicAuth
        self._owns_http = http is None
        self.http = http or (connect or ConnectOptions()).session(
            cookie_jar=aiohttp.CookieJar(unsafe=True),  # 127.0.0.1 is an IP host
            timeout=aiohttp.ClientTimeout(total=60),
        )
        self.csrf_header: str | None = None
        self.csrf_token: str | None = None
        self._csrf_probed = False  # a GET came back without a token: CSRF is off

    # ------------------------------------------------------------------ raw HTTP

    def url(self, path: str) -> str:
        if path.startswith("/api/"):
            return self.base_url + path
        return f"{self.base_url}/api/v2/{path.lstrip('/')}"

    async def request(self, method: str, path: str, *, json_body: Any = None,
                      params: dict[str, Any] | None = None, csrf: bool = True) -> Response:
        """Send one request; ``csrf=False`` leaves the token out (for tests of the 403)."""
        method = method.upper()
        headers = {"Authorization": self._authorization}
        if method in UNSAFE_METHODS and csrf:
            await self._ensure_csrf()
            if self.csrf_header and self.csrf_token:
                headers[self.csrf_header] = self.csrf_token
        data = None
        if json_body is not None:
            data = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        async with self.http.request(method, self.url(path), params=_query(params), data=data,
                                     headers=headers) as resp:
            text = await resp.text()
            response = Response(resp.status, _json_or_none(text), resp.headers, text)
        if method == "GET":
            self._remember_csrf(response)
        return response

    async def get(self, path: str, **params: Any) -> Response:
        return await self.request("GET", path, params=params)

    async def post(self, path: str, json: Any = None) -> Response:  # noqa: A002 - mirrors aiohttp
        return await self.request("POST", path, json_body=json)

    async def put(self, path: str, json: Any = None) -> Response:  # noqa: A002
        return await self.request("PUT", path, json_body=json)

    async def delete(self, path: str, json: Any = None) -> Response:  # noqa: A002
        return await self.request("DELETE", path, json_body=json)

    async def operation(self, path: str, operation_name: str, **params: Any) -> Response:
        """POST ``{"operationName": ..., **params}``; None-valued params are left out."""
        body = {"operationName": operation_name}
        body.update({key: value for key, value in params.items() if value is not None})
        return await self.post(path, body)

    # ------------------------------------------------------------------ CSRF and cookies

    def _remember_csrf(self, response: Response) -> None:
        token = response.headers.get("X-CSRF-TOKEN")
        if token:
            self.csrf_header = response.headers.get("X-CSRF-HEADER", "X-CSRF-TOKEN")
            self.csrf_token = token
        self._csrf_probed = True

    async def _ensure_csrf(self) -> None:
        """The token comes from GET responses; fetch /me once if we have none yet."""
        if self.csrf_token is None and not self._csrf_probed:
            await self.get("me")

    def forget_csrf(self) -> None:
        """Drop the token (the HTTP session it belonged to is gone)."""
        self.csrf_header = self.csrf_token = None
        self._csrf_probed = False

    def cookie_header(self) -> str:
        """The ``Cookie`` header value this client would send (for JS and WebSocket clients)."""
        cookies = self.http.cookie_jar.filter_cookies(URL(self.base_url + "/api/v2/"))
        return "; ".join(f"{name}={morsel.value}" for name, morsel in cookies.items())

    @property
    def session_id(self) -> str | None:
        """The current JSESSIONID, if the server has issued one."""
        cookies = self.http.cookie_jar.filter_cookies(URL(self.base_url + "/api/v2/"))
        morsel = cookies.get("JSESSIONID")
        return morsel.value if morsel else None

    def csrf_headers(self) -> dict[str, str]:
        return {self.csrf_header: self.csrf_token} if self.csrf_header and self.csrf_token else {}

    # ------------------------------------------------------------------ GWS helpers

    async def me(self, subresources: str | None = "*") -> Response:
        return await self.get("me", **({"subresources": subresources} if subresources else {}))

    async def devices(self, fields: str = "*") -> Response:
        return await self.get("me/devices", fields=fields)

    async def calls(self, fields: str = "*") -> Response:
        return await self.get("me/calls", fields=fields)

    async def start_session(self, channels: Iterable[str] = ("voice",), place: str | None = None,
                            **params: Any) -> Response:
        return await self.operation("me", "StartContactCenterSession", channels=list(channels),
                                    place=place, **params)

    async def end_session(self) -> Response:
        """EndContactCenterSession; on success the server killed the cookie and the token."""
        response = await self.operation("me", "EndContactCenterSession")
        if response.ok:
            self.forget_csrf()
        return response

    async def ready(self, **params: Any) -> Response:
        return await self.operation(VOICE_CHANNEL, "Ready", **params)

    async def not_ready(self, reason_code: str | None = None, workmode: str | None = None) -> Response:
        return await self.operation(VOICE_CHANNEL, "NotReady", reasonCode=reason_code, workmode=workmode)

    async def dial(self, device_id: str, number: str, user_data: dict | None = None,
                   **params: Any) -> Response:
        return await self.operation(f"me/devices/{device_id}/calls", "Dial",
                                    destination={"phoneNumber": number}, userData=user_data, **params)

    async def call_op(self, call_id: str, operation_name: str, **params: Any) -> Response:
        return await self.operation(f"me/calls/{call_id}", operation_name, **params)

    # ------------------------------------------------------------------ CometD

    def cometd(self, transport: str = "long-polling", **options: Any) -> CometdClient:
        """A CometD client on this HTTP session: same cookie jar, CSRF header.

        Call it after a GET (e.g. `me()`) so the CSRF token is known, as the
        reference's sample does. ``options`` go to `CometdClient` as they are.
        """
        return CometdClient(self.http, self.base_url + "/api/v2/notifications",
                            transport=transport, headers=self.csrf_headers(), **options)

    async def close(self) -> None:
        if self._owns_http:
            await self.http.close()

    async def __aenter__(self) -> "GWSClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


def _query(params: dict[str, Any] | None) -> dict[str, str] | None:
    if not params:
        return None
    return {key: str(value) for key, value in params.items() if value is not None}


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None
