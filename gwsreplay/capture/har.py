"""HAR (browser DevTools export) -> raw capture records, no mitmproxy needed.

Reads HAR 1.2 as written by Chrome, Firefox and mitmproxy's ``save.har``, including
Chrome's ``_webSocketMessages`` (``type`` send/receive, ``time`` in epoch seconds,
``opcode`` 1 text / 2 binary, ``data``). HAR bodies are already content-decoded
(``content.encoding == "base64"`` means base64 of the bytes).

Timestamps: request start = ``startedDateTime``; request end = start + blocked + dns
+ connect + send; response start = request end + wait; response end = start + time.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator, NamedTuple
from urllib.parse import urlsplit

from gwsreplay.capture.records import HttpRecord, WsEndRecord, WsFrameRecord


def _ts(iso: str | None) -> float | None:
    if not iso or not isinstance(iso, str):
        return None
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _body(obj: dict | None, key: str = "text") -> bytes | None:
    if not obj:
        return None
    text = obj.get(key)
    if text is None:
        return None
    if obj.get("encoding") == "base64":
        try:
            return base64.b64decode(text)
        except (ValueError, TypeError):
            return text.encode("utf-8", "surrogateescape")
    return text.encode("utf-8", "surrogateescape")


def _headers(items: Any) -> list[tuple[str, str]]:
    out = []
    for h in items or []:
        if isinstance(h, dict) and "name" in h:
            name = str(h["name"])
            if name.startswith(":"):       # HTTP/2 pseudo headers
                continue
            out.append((name, str(h.get("value", ""))))
    return out


def _t(timings: dict, key: str) -> float:
    v = timings.get(key)
    return float(v) / 1000.0 if isinstance(v, (int, float)) and math.isfinite(v) and v > 0 else 0.0


def load(path: str | Path) -> dict:
    with open(path, "rb") as f:
        return json.loads(f.read().decode("utf-8-sig"))


class SkippedEntry(NamedTuple):
    """An entry left out of the import, and why (the others are imported)."""

    index: int
    reason: str


class EntryDone(NamedTuple):
    """Marks the end of one entry's records (import progress)."""


class _Skip(Exception):
    pass


# timestamps outside these bounds (epoch seconds) are damage, not traffic
_TS_MIN, _TS_MAX = 0.0, 32503680000.0      # 1970 .. 3000


def _check_ts(value: float | None, what: str) -> float | None:
    if value is None:
        return None
    if not math.isfinite(value) or not _TS_MIN <= value <= _TS_MAX:
        raise _Skip(f"{what} out of range ({value!r})")
    return value


def _number(obj: dict, key: str, what: str) -> float | None:
    v = obj.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    if not math.isfinite(v):
        raise _Skip(f"{what} is {v!r}")
    return float(v)


def har_records(har: dict, *, source: str = "har", progress_marks: bool = False) -> Iterator[Any]:
    """Every entry's records, in start order; an entry that cannot be imported becomes one
    :class:`SkippedEntry` (its neighbours are unaffected). ``progress_marks``: an
    :class:`EntryDone` after each entry."""
    entries = (har.get("log") or {}).get("entries") or []
    indexed = sorted(enumerate(entries), key=lambda ie: (_ts(ie[1].get("startedDateTime")) or 0.0, ie[0])
                     if isinstance(ie[1], dict) else (0.0, ie[0]))
    for i, e in indexed:
        try:
            if not isinstance(e, dict):
                raise _Skip("not an object")
            records = _entry_records(i, e, source)
        except _Skip as exc:
            yield SkippedEntry(i, str(exc))
        except (ValueError, TypeError, binascii.Error) as exc:
            yield SkippedEntry(i, f"{type(exc).__name__}: {exc}"[:300])
        else:
            yield from records
        if progress_marks:
            yield EntryDone()


def _entry_records(i: int, e: dict, source: str) -> list[Any]:
    out: list[Any] = []
    req = e.get("request") or {}
    resp = e.get("response") or {}
    url = req.get("url") or ""
    u = urlsplit(url)
    path = u.path or "/"
    if u.query:
        path += "?" + u.query
    start = _check_ts(_ts(e.get("startedDateTime")), "startedDateTime")
    timings = e.get("timings") or {}
    for k in ("blocked", "dns", "connect", "send", "wait", "receive", "ssl"):
        _number(timings, k, f"timings.{k}")
    total = _number(e, "time", "time")
    req_end = resp_start = resp_end = None
    if start is not None:
        req_end = _check_ts(start + sum(_t(timings, k) for k in ("blocked", "dns", "connect", "send")),
                            "request end")
        resp_start = _check_ts(req_end + _t(timings, "wait"), "response start")
        resp_end = _check_ts(start + total / 1000.0 if total is not None and total >= 0 else resp_start,
                             "response end")
    status = resp.get("status")
    ws_msgs = e.get("_webSocketMessages")
    is_ws = bool(ws_msgs) or status == 101 or e.get("_resourceType") == "websocket"
    flow_id = f"{source}:{i}"
    err = None
    if not status:           # Chrome writes status 0 for failed/cancelled requests
        err = resp.get("_error") or e.get("_error") or "no response (status 0 in HAR)"
        status = None
    out.append(HttpRecord(
        flow_id=flow_id,
        method=req.get("method") or "GET",
        scheme=u.scheme.replace("ws", "http") if u.scheme else "http",
        host=u.hostname or "",
        port=u.port or (443 if u.scheme in ("https", "wss") else 80),
        path=path,
        http_version=req.get("httpVersion"),
        request_headers=_headers(req.get("headers")),
        request_body=_body(req.get("postData")),
        status=status,
        reason=resp.get("statusText"),
        response_headers=_headers(resp.get("headers")),
        response_body=_body(resp.get("content")),
        ts_request_start=start,
        ts_request_end=req_end,
        ts_response_start=resp_start,
        ts_response_end=resp_end,
        server_addr=e.get("serverIPAddress"),
        error=err,
        is_websocket=is_ws,
        source=source,
        decoded=True,
    ))
    if is_ws:
        n = 0
        last = resp_start
        for m in ws_msgs or []:
            if not isinstance(m, dict):
                continue
            opcode = m.get("opcode", 1)
            if opcode not in (1, 2):
                continue
            data = m.get("data") or ""
            content = base64.b64decode(data) if opcode == 2 else str(data).encode("utf-8", "surrogateescape")
            ts = _number(m, "time", f"WebSocket message {n} time")
            ts = _check_ts(ts, f"WebSocket message {n} time") if ts is not None else last
            last = ts
            out.append(WsFrameRecord(flow_id=flow_id, index=n, ts=ts or 0.0, from_client=m.get("type") == "send",
                                     is_text=opcode == 1, content=content))
            n += 1
        out.append(WsEndRecord(flow_id=flow_id, ts_start=resp_start, ts_end=last, frames=n))
    return out
