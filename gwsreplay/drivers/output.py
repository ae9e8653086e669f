"""The replay, recorded in the capture schema plus a run id.

The notebooks compare recorded and replayed latencies through the `operations`
view, so the live traffic of a replay is written exactly as the capture proxy
would write it: every HTTP exchange and WebSocket frame goes, as the same raw
records the proxy produces, through `gwsreplay.capture.writer.CaptureWriter` (so
classification, Bayeux extraction and redaction are the proxy's own). No proxy
sits in between: `RecordingHttp` wraps the aiohttp session that `GWSClient`
and `CometdClient` use and hands each finished exchange to the writer.

A run is written to a temporary file first and merged into the output file at
the end with a `run_id` column added to every table (ids shifted past what the
file holds), so one output file can hold many runs; `replay_runs` describes
each run and `divergences` holds the divergence report.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import duckdb

from gwsreplay.capture.records import HttpRecord, WsEndRecord, WsFrameRecord
from gwsreplay.capture.writer import CaptureWriter
from gwsreplay.core.bayeux import encode
from gwsreplay.capture.runfile import merge_run




class ReplayRecorder:
    """Owns the capture writer of one run and merges its file into the output at the end."""

    def __init__(self, out: str | Path, run_id: str, meta: dict[str, str] | None = None):
        self.out = Path(out)
        self.run_id = run_id
        self.tmp = self.out.with_name(f".{self.out.name}.{run_id}.tmp")
        for stale in (self.tmp, Path(str(self.tmp) + ".wal")):
            stale.unlink(missing_ok=True)
        self.writer = CaptureWriter(self.tmp, meta={"source": "replay", "run_id": run_id, **(meta or {})},
                                    flush_interval=0.5).start()

    def http(self, session: aiohttp.ClientSession, *, websocket: bool = False) -> "RecordingHttp":
        return RecordingHttp(session, self.writer.submit, websocket=websocket)

    def close(self, run: dict, divergences: list[dict]) -> None:
        """Flush, then append this run (tables + run row + divergences) to the output file."""
        self.writer.close()
        self.out.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(self.out))
        try:
            merge_run(con, self.tmp, self.run_id, run, divergences)
        finally:
            con.close()
        for leftover in (self.tmp, Path(str(self.tmp) + ".wal")):
            leftover.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- the HTTP facade


class RecordingHttp:
    """The parts of `aiohttp.ClientSession` that GWSClient and CometdClient use, recording each exchange.

    REST requests and long-poll POSTs become one `HttpRecord` each (request as
    sent, with its cookie and CSRF header; response as received); a WebSocket
    becomes the upgrade exchange plus one frame record per Bayeux message,
    fed by `ws_message` (CometdClient's `on_message` hook).
    """

    def __init__(self, http: aiohttp.ClientSession, submit, *, websocket: bool = False):
        self._http = http
        self._submit = submit
        self._websocket = websocket
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ws_flow: str | None = None
        self._ws_started: float | None = None
        self._ws_frames = 0
        self._pending_frames: list[tuple[float, bool, bytes]] = []

    @property
    def cookie_jar(self) -> aiohttp.abc.AbstractCookieJar:
        return self._http.cookie_jar

    @property
    def closed(self) -> bool:
        return self._http.closed

    def request(self, method: str, url: str, **kwargs: Any) -> "_RecordedRequest":
        if "json" in kwargs:  # serialise here so the recorded body is the one sent
            payload = kwargs.pop("json")
            if payload is not None:
                kwargs["data"] = json.dumps(payload).encode()
                kwargs["headers"] = {**(kwargs.get("headers") or {}), "Content-Type": "application/json"}
        return _RecordedRequest(self, self._http.request(method, url, **kwargs), method, url, kwargs.get("data"))

    def post(self, url: str, **kwargs: Any) -> "_RecordedRequest":
        return self.request("POST", url, **kwargs)

    def get(self, url: str, **kwargs: Any) -> "_RecordedRequest":
        return self.request("GET", url, **kwargs)

    async def ws_connect(self, url: str, **kwargs: Any) -> aiohttp.ClientWebSocketResponse:
        started = time.time()
        ws = await self._http.ws_connect(url, **kwargs)
        self.end_websocket()
        response = getattr(ws, "_response", None)
        flow = uuid.uuid4().hex
        self._submit(HttpRecord(
            flow_id=flow, method="GET", **_where(response.url if response is not None else url),
            http_version="HTTP/1.1", is_websocket=True, source="replay", decoded=True,
            request_headers=_sent_headers(response, kwargs.get("headers")),
            status=response.status if response is not None else 101,
            reason=response.reason if response is not None else "Switching Protocols",
            response_headers=list(response.raw_headers) if response is not None else [],
            ts_request_start=started, ts_request_end=started, ts_response_start=time.time(),
            ts_response_end=time.time()))
        self._ws, self._ws_flow, self._ws_started, self._ws_frames = ws, flow, started, 0
        pending, self._pending_frames = self._pending_frames, []
        for frame in pending:
            self._frame(*frame)
        return ws

    def ws_message(self, direction: str, message: dict) -> None:
        """CometdClient's on_message hook: one frame record per Bayeux message on the WebSocket."""
        if not self._websocket:
            return
        frame = (time.time(), direction == "out", encode([message]))
        if self._ws is None or self._ws.closed and direction == "out":
            self._pending_frames.append(frame)  # the socket is about to be (re)opened for it
        else:
            self._frame(*frame)

    def _frame(self, ts: float, from_client: bool, content: bytes) -> None:
        self._submit(WsFrameRecord(flow_id=self._ws_flow, index=self._ws_frames, ts=ts, from_client=from_client,
                                   is_text=True, content=content))
        self._ws_frames += 1

    def end_websocket(self) -> None:
        if self._ws_flow is not None:
            self._submit(WsEndRecord(flow_id=self._ws_flow, ts_start=self._ws_started, ts_end=time.time(),
                                     frames=self._ws_frames, closed_by_client=True))
            self._ws_flow = None

    async def close(self) -> None:
        self.end_websocket()
        await self._http.close()


class _RecordedRequest:
    """`async with http.request(...) as response:` that records the exchange on the way out."""

    def __init__(self, owner: RecordingHttp, context, method: str, url: str, data: Any):
        self.owner, self.context, self.method, self.url, self.data = owner, context, method, url, data
        self.response: _Response | None = None

    async def __aenter__(self) -> "_Response":
        self.started = time.time()
        try:
            response = await self.context.__aenter__()
        except Exception as exc:
            self._record(None, f"{type(exc).__name__}: {exc}")
            raise
        self.headers_at = time.time()
        self.response = _Response(response)
        return self.response

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            self._record(self.response, None)
        finally:
            return await self.context.__aexit__(*exc_info)

    def _record(self, response: "_Response | None", error: str | None) -> None:
        now = time.time()
        raw = response.raw if response is not None else None
        body = self.data if isinstance(self.data, (bytes, bytearray)) else (
            self.data.encode() if isinstance(self.data, str) else None)
        self.owner._submit(HttpRecord(
            flow_id=uuid.uuid4().hex, method=self.method, **_where(raw.url if raw is not None else self.url),
            http_version="HTTP/1.1", request_headers=_sent_headers(raw, None), request_body=bytes(body) if body else None,
            status=raw.status if raw is not None else None, reason=raw.reason if raw is not None else None,
            response_headers=list(raw.raw_headers) if raw is not None else [],
            response_body=response.body if response is not None else None,
            ts_request_start=self.started, ts_request_end=self.started,
            ts_response_start=getattr(self, "headers_at", None) if raw is not None else None,
            ts_response_end=now if raw is not None else None, error=error, source="replay", decoded=True))


class _Response:
    """The aiohttp response, with its body kept once read."""

    def __init__(self, raw: aiohttp.ClientResponse):
        self.raw = raw
        self.body: bytes | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)

    async def read(self) -> bytes:
        if self.body is None:
            self.body = await self.raw.read()
        return self.body

    async def text(self, encoding: str | None = None, errors: str = "strict") -> str:
        data = await self.read()
        return data.decode(encoding or self.raw.get_encoding(), errors)

    async def json(self, *, loads=json.loads, **_: Any) -> Any:
        text = await self.text()
        return loads(text) if text.strip() else None


def _where(url: Any) -> dict:
    from yarl import URL

    url = URL(str(url))
    return {"scheme": url.scheme.replace("ws", "http", 1) if url.scheme.startswith("ws") else url.scheme,
            "host": url.host or "", "port": url.port, "path": url.raw_path_qs}


def _sent_headers(response: aiohttp.ClientResponse | None, fallback: Any) -> list[tuple[str, str]]:
    if response is not None and response.request_info is not None:
        return list(response.request_info.headers.items())
    return list((fallback or {}).items())
