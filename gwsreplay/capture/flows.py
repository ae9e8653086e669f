"""mitmproxy flow -> raw capture records (the only module here that imports mitmproxy).

Used by the proxy addon (live) and by ``gwsreplay import FILE.mitm``. The functions
only copy references (bytes are immutable) and a few scalars, so they are cheap
enough for mitmproxy's event loop; all parsing happens on the writer thread.
"""

from __future__ import annotations

from typing import Iterable

from mitmproxy import http

from gwsreplay.capture.records import HttpRecord, WsEndRecord, WsFrameRecord


def _addr(addr) -> str | None:
    if not addr:
        return None
    try:
        host, port = addr[0], addr[1]
    except (TypeError, IndexError):
        return str(addr)
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def http_record(flow: http.HTTPFlow, *, source: str = "proxy", error: str | None = None) -> HttpRecord:
    req = flow.request
    resp = flow.response
    server = flow.server_conn
    rec = HttpRecord(
        flow_id=flow.id,
        method=req.method,
        scheme=req.scheme,
        host=req.host,
        port=req.port,
        path=req.path,
        http_version=req.http_version,
        request_headers=list(req.headers.fields),
        request_body=req.raw_content,
        ts_request_start=req.timestamp_start,
        ts_request_end=req.timestamp_end,
        client_addr=_addr(flow.client_conn.peername) if flow.client_conn else None,
        server_addr=_addr((server.peername or server.address)) if server else None,
        error=error if error is not None else (flow.error.msg if flow.error else None),
        is_websocket=flow.websocket is not None,
        source=source,
    )
    if resp is not None:
        rec.status = resp.status_code
        rec.reason = resp.reason
        rec.response_headers = list(resp.headers.fields)
        rec.response_body = resp.raw_content
        rec.ts_response_start = resp.timestamp_start
        rec.ts_response_end = resp.timestamp_end
    return rec


def ws_frame_record(flow: http.HTTPFlow, message, index: int) -> WsFrameRecord:
    return WsFrameRecord(
        flow_id=flow.id,
        index=index,
        ts=message.timestamp,
        from_client=message.from_client,
        is_text=message.is_text,
        content=message.content,
        dropped=message.dropped,
        injected=message.injected,
    )


def ws_end_record(flow: http.HTTPFlow, frames: int, error: str | None = None) -> WsEndRecord:
    ws = flow.websocket
    return WsEndRecord(
        flow_id=flow.id,
        ts_start=flow.response.timestamp_start if flow.response is not None else None,
        ts_end=ws.timestamp_end if ws is not None else None,
        frames=frames,
        closed_by_client=ws.closed_by_client if ws is not None else None,
        close_code=ws.close_code if ws is not None else None,
        close_reason=ws.close_reason if ws is not None else None,
        error=error if error is not None else (flow.error.msg if flow.error else None),
    )


def flow_records(flow, *, source: str = "mitm") -> Iterable:
    """Every record of a finished flow (for flow files): exchange, frames, end."""
    if not isinstance(flow, http.HTTPFlow):
        return
    yield http_record(flow, source=source)
    if flow.websocket is not None:
        n = 0
        for i, m in enumerate(flow.websocket.messages):
            yield ws_frame_record(flow, m, i)
            n += 1
        yield ws_end_record(flow, n)
