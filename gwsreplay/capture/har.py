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
import json
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

from gwsreplay.capture.records import HttpRecord, WsEndRecord, WsFrameRecord


def _ts(iso: str | None) -> float | None:
    if not iso:
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
    return float(v) / 1000.0 if isinstance(v, (int, float)) and v > 0 else 0.0


def load(path: str | Path) -> dict:
    with open(path, "rb") as f:
        return json.loads(f.read().decode("utf-8-sig"))


def har_records(har: dict, *, source: str = "har") -> Iterator[Any]:
    entries = (har.get("log") or {}).get("entries") or []
    indexed = sorted(enumerate(entries), key=lambda ie: (_ts(ie[1].get("startedDateTime")) or 0.0, ie[0]))
    for i, e in indexed:
        req = e.get("request") or {}
        resp = e.get("response") or {}
        url = req.get("url") or ""
        u = urlsplit(url)
        path = u.path or "/"
        if u.query:
            path += "?" + u.query
        start = _ts(e.get("startedDateTime"))
        timings = e.get("timings") or {}
        req_end = resp_start = resp_end = None
        if start is not None:
            req_end = start + sum(_t(timings, k) for k in ("blocked", "dns", "connect", "send"))
            resp_start = req_end + _t(timings, "wait")
            total = e.get("time")
            resp_end = start + float(total) / 1000.0 if isinstance(total, (int, float)) and total >= 0 else resp_start
        status = resp.get("status")
        ws_msgs = e.get("_webSocketMessages")
        is_ws = bool(ws_msgs) or status == 101 or e.get("_resourceType") == "websocket"
        flow_id = f"{source}:{i}"
        err = None
        if not status:           # Chrome writes status 0 for failed/cancelled requests
            err = resp.get("_error") or e.get("_error") or "no response (status 0 in HAR)"
            status = None
        rec = HttpRecord(
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
        )
        yield rec
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
                ts = m.get("time")
                ts = float(ts) if isinstance(ts, (int, float)) else last
                last = ts
                yield WsFrameRecord(flow_id=flow_id, index=n, ts=ts or 0.0, from_client=m.get("type") == "send",
                                    is_text=opcode == 1, content=content)
                n += 1
            yield WsEndRecord(flow_id=flow_id, ts_start=resp_start, ts_end=last, frames=n)
