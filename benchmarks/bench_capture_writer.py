"""Capture writer ingest rate (target: >= 100,000 Bayeux messages/s).

Feeds long-poll exchanges carrying realistic GWS notifications (and WebSocket frames)
through gwsreplay.capture.writer.CaptureWriter, from submit() to the last commit, and
prints messages/s for the whole path (decode, redact, classify, Arrow, DuckDB), the
split between conversion and insertion and the CPU used.

The whole path runs ``--rounds`` times for the writer as it was before the last tuning
(``BeforeWriter``: converter woken by every record, cyclic GC running during batch
conversion, headers decoded/redacted/serialised and cookies and tokens hashed again for
every exchange) and as it is, alternating, and prints both side by side.

    .venv/bin/python benchmarks/bench_capture_writer.py [--messages 500000] [--per-poll 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

from gwsreplay.capture import bayeux_sql, schema
from gwsreplay.capture.arrow import rows_to_table
from gwsreplay.capture.records import HttpRecord, WsFrameRecord
from gwsreplay.capture.redact import Redactor
from gwsreplay.capture.rows import RowBuilder
from gwsreplay.capture.writer import CaptureWriter, new_out


def call_event(i: int) -> dict:
    cid = f"013V08JRL498H10I04000VTAES{i:06d}"
    return {"channel": "/v2/me/calls", "data": {
        "messageType": "CallStateChangeMessage", "notificationType": "StatusChange", "phoneNumber": "7001",
        "extensions": {"WrapUpTime": 0, "BusinessCall": 0},
        "call": {"id": cid, "state": ("Ringing", "Established", "Held", "Released")[i % 4], "callUuid": cid,
                 "connId": f"{i:016x}", "deviceUri": "http://127.0.0.1:8090/api/v2/devices/efe1ab32",
                 "participants": [{"e164Number": "", "formattedPhoneNumber": "5000", "phoneNumber": "5000",
                                   "digits": "5000"}],
                 "dnis": "7001", "callType": "Inbound", "duration": "3", "mute": "Off",
                 "capabilities": ["Answer", "Hangup", "Hold", "AttachUserData", "SingleStepTransfer"],
                 "uri": f"http://127.0.0.1:8090/api/v2/me/calls/{cid}", "path": f"/calls/{cid}"}}}


def device_event(i: int) -> dict:
    return {"channel": "/v2/me/devices", "data": {"messageType": "DeviceStateChangeMessage", "devices": [{
        "id": "9c14cad7-17c4-48d0-8492-7cf0ff92c224", "deviceState": "Active",
        "userState": {"id": "900D55CC", "displayName": "Ready", "state": ("Ready", "NotReady")[i % 2]},
        "phoneNumber": "7001", "doNotDisturb": "Off", "capabilities": ["ForwardCallsOn", "DoNotDisturbOn"]}]}}


def make_records(n_messages: int, per_poll: int, ws_share: float) -> list:
    t = time.time()
    recs: list = [HttpRecord(  # the agent's first request: Basic auth, the server sets the session cookie
        flow_id="login", method="GET", host="127.0.0.1", port=8090, path="/api/v2/me",
        request_headers=[("Authorization", "Basic YWdlbnQxOnBhc3N3b3Jk")], status=200,
        response_headers=[("Set-Cookie", "JSESSIONID=abc; Path=/"), ("Content-Type", "application/json")],
        response_body=b'{"statusCode":0}', ts_request_start=t, ts_response_start=t),
        HttpRecord(  # the WebSocket upgrade carrying the frames below
            flow_id="ws1", method="GET", host="127.0.0.1", port=8090, path="/api/v2/notifications",
            request_headers=[("Cookie", "JSESSIONID=abc"), ("Upgrade", "websocket")], status=101,
            is_websocket=True, ts_request_start=t, ts_response_start=t)]
    i = 0
    k = 0
    while i < n_messages:
        msgs = [call_event(i + j) if (i + j) % 3 else device_event(i + j) for j in range(per_poll - 1)]
        msgs.append({"channel": "/meta/connect", "id": str(k), "successful": True,
                     "advice": {"interval": 0, "timeout": 30000, "reconnect": "retry"}})
        body = json.dumps(msgs).encode()
        req = json.dumps([{"channel": "/meta/connect", "clientId": "abc123", "id": str(k),
                           "connectionType": "long-polling"}]).encode()
        if (k % 100) < ws_share * 100:
            recs.append(WsFrameRecord(flow_id="ws1", index=k, ts=t, from_client=False, is_text=True, content=body))
            i += per_poll
        else:
            recs.append(HttpRecord(
                flow_id=f"f{k}", method="POST", host="127.0.0.1", port=8090, path="/api/v2/notifications/connect",
                request_headers=[("Cookie", "JSESSIONID=abc"), ("Content-Type", "application/json"),
                                 ("X-CSRF-TOKEN", "tok")],
                request_body=req, status=200, response_headers=[("Content-Type", "application/json")],
                response_body=body, ts_request_start=t, ts_request_end=t, ts_response_start=t + 0.01,
                ts_response_end=t + 0.01))
            i += per_poll + 1
        k += 1
    return recs


def count_messages(recs: list) -> int:
    n = 0
    for r in recs:
        if isinstance(r, HttpRecord):
            if "notifications" in r.path and not r.is_websocket:
                n += len(json.loads(r.request_body)) + len(json.loads(r.response_body))
        else:
            n += len(json.loads(r.content))
    return n


class BeforeRedactor(Redactor):
    """Redaction as it was: every cookie and token hashed again on every request, every field
    name searched for in every body."""

    def hash(self, value):
        if isinstance(value, str):
            value = value.encode("utf-8", "surrogateescape")
        return "hmac:" + hmac.new(self._key, value, hashlib.sha256).hexdigest()[:16]

    def might_contain(self, raw: bytes) -> bool:
        if not self.enabled:
            return False
        if self.paths:
            return True
        low = raw.lower()
        return any(n.encode() in low for n in self.field_names)


class BeforeRowBuilder(RowBuilder):
    """Header decoding, redaction and JSON done again for every exchange (no memo)."""

    def _headers(self, fields, request):
        self._req_headers.clear()
        self._resp_headers.clear()
        return super()._headers(fields, request)


class BeforeWriter(CaptureWriter):
    """The writer before this round of tuning: the converter woken up by every record, the
    cyclic GC left running while a batch is converted (it then walks every live row tuple again
    and again), the redaction and header handling above."""
    PAUSE_GC = False

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("redactor", BeforeRedactor())
        super().__init__(*args, **kwargs)
        self.builder.__class__ = BeforeRowBuilder

    def _run(self) -> None:
        """The converter loop as it was: a blocking get() per record until the interval ends."""
        import queue

        from gwsreplay.capture import writer

        stop = False
        while not stop:
            deadline = time.monotonic() + self.flush_interval
            items, waiters, size = [], [], 0
            while True:
                remaining = deadline - time.monotonic()
                try:
                    item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is writer._STOP:
                    stop = True
                    break
                if isinstance(item, tuple) and item and item[0] is writer._FLUSH:
                    waiters.append(item[1])
                    break
                items.append(item)
                size += writer._record_bytes(item)
                if len(items) >= self.MAX_BATCH_RECORDS or size >= self.MAX_BATCH_BYTES:
                    break
            if stop:
                items.extend(self._drain_nowait())
            self._ins_queue.put((self._convert(items), waiters))
        self._ins_queue.put(writer._STOP)


def run_writer(cls: type[CaptureWriter], recs: list, d: str, tag: str) -> dict:
    db = Path(d) / f"bench-{tag}.duckdb"
    w = cls(db, flush_interval=0.2, max_queue=len(recs) + 10)
    w.start()
    c0 = time.process_time()
    t0 = time.perf_counter()
    for r in recs:
        w.submit(r)
    t_submit = time.perf_counter() - t0
    w.close()
    t_total = time.perf_counter() - t0
    cpu = time.process_time() - c0
    written = w.stats.written["bayeux_messages"]
    out = {"rate": written / t_total, "seconds": t_total, "cpu": cpu, "written": written, "flushes": w.stats.flushes,
           "lag": w.stats.max_lag_ms, "convert": w.stats.convert_s, "insert": w.stats.insert_s,
           "size": db.stat().st_size, "submit": t_submit}
    with duckdb.connect(str(db), read_only=True) as con:
        out["check"] = con.execute("SELECT count(*), min(id), max(id), count(DISTINCT id) FROM bayeux_messages").fetchone()
    db.unlink()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=500_000)
    ap.add_argument("--per-poll", type=int, default=10)
    ap.add_argument("--ws-share", type=float, default=0.3, help="share of batches arriving as WebSocket frames")
    ap.add_argument("--rounds", type=int, default=3, help="runs of each writer, alternating before/after")
    args = ap.parse_args()

    recs = make_records(args.messages, args.per_poll, args.ws_share)
    n_msgs = count_messages(recs)
    print(f"records: {len(recs)} ({sum(isinstance(r, HttpRecord) for r in recs)} long-poll exchanges, "
          f"{sum(isinstance(r, WsFrameRecord) for r in recs)} WebSocket frames), Bayeux messages: {n_msgs}; "
          f"{os.cpu_count()} CPUs, DuckDB {duckdb.__version__}")
    # 1. conversion alone (decode, redact, classify -> row tuples), then Arrow
    rb = RowBuilder(Redactor())
    out = new_out()
    t0 = time.perf_counter()
    for r in recs:
        (rb.http if isinstance(r, HttpRecord) else rb.ws_frame)(r, out)
    t_conv = time.perf_counter() - t0
    t0 = time.perf_counter()
    staged = out.pop("_bayeux_bodies")
    tables = {k: rows_to_table(schema.TABLES[k], v) for k, v in out.items() if v}
    tables["_bayeux_bodies"] = bayeux_sql.stage_table(staged)
    t_arrow = time.perf_counter() - t0
    print(f"Python conversion  : {n_msgs / t_conv:>10,.0f} msg/s  ({t_conv:.2f} s)")
    print(f"Arrow tables only  : {n_msgs / t_arrow:>10,.0f} msg/s  ({t_arrow:.2f} s, {len(tables)} tables)")
    del out, tables, staged, rb

    # 2. the whole path through the writer threads, before and after, alternating
    results: dict[str, list[dict]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory() as d:
        for k in range(args.rounds):
            order = ("before", "after") if k % 2 == 0 else ("after", "before")
            for tag in order:
                r = run_writer(BeforeWriter if tag == "before" else CaptureWriter, recs, d, f"{tag}{k}")
                assert r["check"] == (n_msgs, 1, n_msgs, n_msgs), r["check"]
                results[tag].append(r)
                print(f"  round {k + 1} {tag:6}: {r['rate']:>9,.0f} msg/s  {r['seconds']:5.2f} s  CPU {r['cpu']:5.2f} s "
                      f"({r['written'] / r['cpu']:,.0f} msg/CPU-s)  flushes {r['flushes']}  convert {r['convert']:.2f} s"
                      f"  DuckDB {r['insert']:.2f} s  max lag {r['lag']:.0f} ms  file {r['size'] / 1e6:.1f} MB", flush=True)

    def med(tag: str, key: str) -> float:
        return statistics.median(r[key] for r in results[tag])

    print("                       before        after   (median of rounds)")
    print(f"submit() us/record : {med('before', 'submit') * 1e6 / len(recs):>10.2f} "
          f"{med('after', 'submit') * 1e6 / len(recs):>12.2f}   (the producer: mitmproxy's event loop)")
    print(f"end to end msg/s   : {med('before', 'rate'):>10,.0f} {med('after', 'rate'):>12,.0f}")
    print(f"seconds            : {med('before', 'seconds'):>10.2f} {med('after', 'seconds'):>12.2f}")
    print(f"CPU s, all threads : {med('before', 'cpu'):>10.2f} {med('after', 'cpu'):>12.2f}")
    print(f"convert thread s   : {med('before', 'convert'):>10.2f} {med('after', 'convert'):>12.2f}")
    print(f"DuckDB thread s    : {med('before', 'insert'):>10.2f} {med('after', 'insert'):>12.2f}")
    print(f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
          f"target 100,000 msg/s: {'met' if med('after', 'rate') >= 100_000 else 'NOT met'}")


if __name__ == "__main__":
    main()
