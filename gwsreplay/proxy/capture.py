"""Record GWS REST and CometD traffic into a DuckDB capture file.

    mitmdump -s proxy_addons/capture.py --mode reverse:http://127.0.0.1:8090 -p 8080 \
        --set capture_db=captures/NAME.duckdb

Options (``--set name=value``):

    capture_db                 DuckDB file to write (recording is off while empty)
    capture_max_body           bytes of each body kept in the file (default 1 MiB; longer: truncated, flagged)
    capture_flush_ms           writer flush interval in ms (default 200)
    capture_redact             redact secrets (default true; false is the explicit opt-out)
    capture_redact_headers     extra headers whose values are replaced by keyed hashes
    capture_redact_json_paths  extra JSON paths (``$.a.b``, ``a[*].b``) or field names to mask
    capture_writer             ``thread`` (default: the writer threads in this process) or ``process`` (a
                               child process, off mitmproxy's GIL); default from $GWSREPLAY_CAPTURE_WRITER

With mitmproxy's default ``connection_strategy=eager`` an unreachable upstream drops
the desktop before its request is read; that is logged in ``capture_errors``. Add
``--set connection_strategy=lazy`` (``gwsreplay record`` does) to get the request
recorded as an exchange with its error instead.

The hooks only copy references into a record and hand it to a writer thread
through a bounded queue (gwsreplay.capture.writer); they never block mitmproxy's event
loop. Recorded WebSocket messages are trimmed from ``flow.websocket.messages``
(only the last is kept) so shift-long connections do not grow without bound.
Schema: docs/schema.md.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence

from mitmproxy import ctx, http
from mitmproxy.addonmanager import Loader

from gwsreplay.capture.flows import http_record, ws_end_record, ws_frame_record
from gwsreplay.capture.records import DEFAULT_MAX_BODY, ErrorRecord, LateErrorRecord
from gwsreplay.capture.redact import Redactor
from gwsreplay.capture.writer import CaptureWriter
from gwsreplay.capture.writer_process import ProcessWriter

logger = logging.getLogger(__name__)

RECORDED_MARK = "gwsreplay.capture.recorded"   # flow.metadata: recorded (or refused) once, skip it
WRITERS = {"process": ProcessWriter, "thread": CaptureWriter}


class Capture:
    def __init__(self) -> None:
        self.writer: CaptureWriter | ProcessWriter | None = None
        self._db: str | None = None
        self._ws_frames: dict[str, int] = {}
        self._ws_errors: dict[str, str] = {}
        self._inflight: dict[str, http.HTTPFlow] = {}
        self.flows = 0
        self.upstream_errors = 0       # connections to the upstream that failed
        self.refused = 0               # bodies over mitmproxy's body_size_limit
        self.final_stats: dict | None = None
        self.close_progress = None     # callable(pending records) while the writer catches up at shutdown

    # ------------------------------------------------------------------ options
    def load(self, loader: Loader) -> None:
        loader.add_option("capture_db", str, "", "DuckDB capture file to record GWS REST and CometD traffic into.")
        loader.add_option("capture_max_body", int, DEFAULT_MAX_BODY,
                          "Bytes of each request/response body kept in the capture (longer bodies are truncated).")
        loader.add_option("capture_flush_ms", int, 200, "Capture writer flush interval in milliseconds.")
        loader.add_option("capture_redact", bool, True,
                          "Redact passwords, cookies and CSRF tokens in the capture (false: keep them verbatim).")
        loader.add_option("capture_redact_headers", Sequence[str], [],
                          "Extra header names whose values are stored as keyed hashes.")
        loader.add_option("capture_redact_json_paths", Sequence[str], [],
                          "Extra JSON paths ($.a.b, a[*].b) or field names to mask in bodies.")
        default_writer = os.environ.get("GWSREPLAY_CAPTURE_WRITER", "thread")
        loader.add_option("capture_writer", str, default_writer if default_writer in WRITERS else "thread",
                          "Where the capture writer runs: process (a child process, off mitmproxy's GIL) or "
                          "thread (in the proxy's process).", choices=sorted(WRITERS))

    def configure(self, updated: set[str]) -> None:
        if not any(k.startswith("capture_") for k in updated):
            return
        db = ctx.options.capture_db
        if self.writer is not None and (db != self._db or updated & {
                "capture_max_body", "capture_flush_ms", "capture_redact", "capture_writer",
                "capture_redact_headers", "capture_redact_json_paths"}):
            self.writer.close()
            self.writer = None
        if db and self.writer is None:
            redactor = Redactor(
                ctx.options.capture_redact,
                headers=ctx.options.capture_redact_headers,
                json_paths=ctx.options.capture_redact_json_paths,
            )
            self.writer = WRITERS[ctx.options.capture_writer](
                db,
                redactor=redactor,
                max_body=ctx.options.capture_max_body,
                flush_interval=max(ctx.options.capture_flush_ms, 1) / 1000.0,
                meta={"source": "proxy", "mode": ",".join(getattr(ctx.options, "mode", []) or [])},
            ).start()
            self._db = db
            logger.info(f"gws capture: recording into {db}")
        self._db = db

    # ------------------------------------------------------------------ hooks
    def request(self, flow: http.HTTPFlow) -> None:
        if self.writer is not None:
            self._inflight[flow.id] = flow

    def response(self, flow: http.HTTPFlow) -> None:
        self._record(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        if flow.metadata.get(RECORDED_MARK):
            if flow.error is None:
                return
            if flow.websocket is not None:
                self._ws_errors[flow.id] = flow.error.msg
            elif self.writer is not None:
                # the response was recorded, then the client went away before it was delivered
                self.writer.submit(LateErrorRecord(flow.id, f"response not delivered: {flow.error.msg}"))
            return
        if flow.error is not None and "body_size_limit" in flow.error.msg and self.writer is not None:
            self.refused += 1
            self.writer.submit(ErrorRecord(kind="body_refused", flow_id=flow.id, ts=time.time(),
                                           error=f"{flow.request.method} {flow.request.path[:200]}: {flow.error.msg}"))
        self._record(flow)

    def server_connect_error(self, data) -> None:
        # With connection_strategy=eager (mitmproxy's default) an unreachable upstream
        # drops the client before any request is read: there is no flow to record, so
        # the failure goes to capture_errors. With lazy, the flow itself carries the error.
        if self.writer is None:
            return
        self.upstream_errors += 1
        try:
            client = data.client.peername if data.client else None
            server = data.server.address if data.server else None
            err = data.server.error if data.server else None
            self.writer.submit(ErrorRecord(kind="upstream_connect_error", flow_id=None,
                                           error=f"{err} (client {client}, upstream {server})", ts=time.time()))
        except Exception:  # noqa: BLE001 - never break the proxy
            pass

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        w = self.writer
        ws = flow.websocket
        if w is None or ws is None or not ws.messages:
            return
        idx = self._ws_frames.get(flow.id, 0)
        self._ws_frames[flow.id] = idx + 1
        try:
            w.submit(ws_frame_record(flow, ws.messages[-1], idx))
        except Exception as exc:  # noqa: BLE001 - never break the proxy
            self._bad(flow, exc)
        # keep only the newest message (later addons may still look at messages[-1])
        if len(ws.messages) > 1:
            del ws.messages[:-1]

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        frames = self._ws_frames.pop(flow.id, 0)
        err = self._ws_errors.pop(flow.id, None)
        if self.writer is not None:
            try:
                self.writer.submit(ws_end_record(flow, frames, err))
            except Exception as exc:  # noqa: BLE001 - never break the proxy
                self._bad(flow, exc)

    def done(self) -> None:
        self.close(progress=self.close_progress)

    def close(self, timeout: float = 60.0, progress=None) -> None:
        """Record what is still open and close the writer (``progress(pending)`` while it catches up)."""
        w, self.writer = self.writer, None
        if w is None:
            return
        # requests seen whose answer never came (held long-polls at shutdown)
        for flow in list(self._inflight.values()):
            if not flow.metadata.get(RECORDED_MARK):
                flow.metadata[RECORDED_MARK] = True
                w.submit(http_record(flow, error="capture ended before the response"))
        self._inflight.clear()
        for fid, n in list(self._ws_frames.items()):
            w.submit(ErrorRecord(kind="websocket_open_at_end", flow_id=fid, count=n,
                                 error="capture ended while the WebSocket was open", ts=time.time()))
        self._ws_frames.clear()
        w.close(timeout, progress)
        s = w.stats
        self.final_stats = s.as_dict()
        logger.info(f"gws capture: {self.flows} flows, {s.written['bayeux_messages']} Bayeux messages "
                    f"written to {w.db_path}; dropped {s.dropped}, lost {s.lost}, not written at close "
                    f"{s.abandoned}, bad records {s.bad_records}")

    # ------------------------------------------------------------------ helpers
    def _record(self, flow: http.HTTPFlow) -> None:
        self._inflight.pop(flow.id, None)
        w = self.writer
        if w is None or flow.metadata.get(RECORDED_MARK):
            return
        flow.metadata[RECORDED_MARK] = True
        self.flows += 1
        try:
            rec = http_record(flow)
        except Exception as exc:  # noqa: BLE001 - never break the proxy
            self._bad(flow, exc)
            return
        w.submit(rec)

    def _bad(self, flow: http.HTTPFlow, exc: Exception) -> None:
        if self.writer is not None:
            self.writer.submit(ErrorRecord(kind="bad_flow", flow_id=flow.id, error=f"{type(exc).__name__}: {exc}",
                                           ts=time.time()))

    def stats(self) -> dict:
        d = self.writer.stats.as_dict() if self.writer is not None else dict(self.final_stats or {})
        d["flows"] = self.flows
        d["upstream_errors"] = self.upstream_errors
        d["refused"] = self.refused
        return d


addons = [Capture()]
