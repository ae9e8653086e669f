"""Capture writer ingest rate (target: >= 250,000 Bayeux messages/s end to end, issue 15).

Feeds long-poll exchanges carrying realistic GWS notifications (and WebSocket frames)
through the capture writer, from submit() to the last commit, and prints messages/s for
the whole path (decode, redact, classify, Arrow, DuckDB), the split between conversion
and insertion and the CPU used (all processes).

Stages alone, each beside its old figure: the Python conversion (records -> rows), the
Arrow tables, the DuckDB classification statement alone (staged bodies -> classified Arrow,
in memory), and the Arrow-only ingest (the classified tables appended to a capture file,
no classification): the floor under the end-to-end rate. Then the lever: the
classification split over N DuckDB connections (threads: DuckDB releases the GIL) whose
Arrow batches one inserter appends, N = 1 and 2.

The whole path runs ``--rounds`` times, alternating, for the writer as it was before its
last tuning (``BeforeWriter``: converter woken by every record, cyclic GC running during
batch conversion, headers decoded/redacted/serialised and cookies and tokens hashed again
for every exchange), the thread writer (``CaptureWriter``) and the process writer
(``ProcessWriter``: the same CaptureWriter in a child process, records handed over a pipe).

    .venv/bin/python benchmarks/bench_capture_writer.py [--messages 500000] [--per-poll 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import resource
import statistics
import tempfile
import threading
import time
from pathlib import Path

import duckdb
import pyarrow as pa

from gwsreplay.capture import bayeux_sql, schema
from gwsreplay.capture.arrow import rows_to_table
from gwsreplay.capture.records import HttpRecord, WsFrameRecord
from gwsreplay.capture.redact import Redactor
from gwsreplay.capture.rows import RowBuilder
from gwsreplay.capture.writer import CaptureWriter, new_out
from gwsreplay.capture.writer_process import ProcessWriter

# Figures before issue 15 (docs/performance.md): end to end 85,600 msg/s, the same batches as
# bare Arrow tables into DuckDB about 250,000/s, the Python conversion 570,000/s.
OLD = {"conversion": 570_000, "ingest": 250_000, "after": 85_600}
TARGET = 250_000
# the classification statement as a SELECT (the INSERT's target left out): classified rows as Arrow
SELECT_SQL = bayeux_sql.INSERT_SQL.split("INSERT INTO bayeux_messages BY NAME", 1)[1]


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


def child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_writer(cls: type, recs: list, d: str, tag: str) -> dict:
    db = Path(d) / f"bench-{tag}.duckdb"
    w = cls(db, flush_interval=0.2, max_queue=len(recs) + 10)
    w.start()
    c0, k0 = time.process_time(), child_cpu()
    t0 = time.perf_counter()
    for r in recs:
        w.submit(r)
    t_submit = time.perf_counter() - t0
    w.close()
    t_total = time.perf_counter() - t0
    cpu, child = time.process_time() - c0, child_cpu() - k0     # the writer process, once reaped
    written = w.stats.written["bayeux_messages"]
    extra = getattr(w.stats, "child", None) or {}
    out = {"rate": written / t_total, "seconds": t_total, "cpu": cpu + child, "parent_cpu": cpu, "written": written,
           "flushes": w.stats.flushes, "lag": w.stats.max_lag_ms,
           "convert": getattr(w.stats, "convert_s", extra.get("convert_s", 0.0)),
           "insert": getattr(w.stats, "insert_s", extra.get("insert_s", 0.0)),
           "size": db.stat().st_size, "submit": t_submit}
    with duckdb.connect(str(db), read_only=True) as con:
        out["check"] = con.execute("SELECT count(*), min(id), max(id), count(DISTINCT id) FROM bayeux_messages").fetchone()
    db.unlink()
    return out


def classify(stage: pa.Table, threads: int = 1) -> pa.Table:
    """The classification statement alone, on an in-memory connection: classified rows as Arrow."""
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.register("_bayeux_bodies", stage)
    tbl = con.sql(SELECT_SQL, params={"base": 1}).to_arrow_table()
    con.close()
    return tbl


def ingest(tables: dict[str, pa.Table], d: str, tag: str, batch: int = 100_000) -> tuple[float, int]:
    """Arrow-only ingest: classified tables appended to a fresh capture file, ``batch`` messages per
    transaction (the writer's batch under load), no classification. Returns (seconds, messages)."""
    db = Path(d) / f"ingest-{tag}.duckdb"
    con = duckdb.connect(str(db))
    schema.create_schema(con, {})
    msgs = tables["bayeux_messages"]
    others = {k: v for k, v in tables.items() if k != "bayeux_messages"}
    t0 = time.perf_counter()
    for k in range(0, msgs.num_rows, batch):
        con.execute("BEGIN TRANSACTION")
        con.register("_b", msgs.slice(k, batch))
        con.execute("INSERT INTO bayeux_messages BY NAME SELECT * FROM _b")
        con.unregister("_b")
        if k == 0:
            for name, tbl in others.items():
                con.register("_b", tbl)
                con.execute(f"INSERT INTO {name} SELECT * FROM _b")
                con.unregister("_b")
        con.execute("COMMIT")
    con.execute("CHECKPOINT")
    secs = time.perf_counter() - t0
    con.close()
    db.unlink()
    return secs, msgs.num_rows


def split_classification(stage: pa.Table, tables: dict[str, pa.Table], workers: int, d: str,
                         batch_bodies: int = 10_000) -> tuple[float, int]:
    """The lever: staged bodies in batches, classified by ``workers`` DuckDB connections in
    parallel threads (the GIL is released inside DuckDB), one inserter appending their Arrow
    batches in order with their ids. Returns (seconds, messages)."""
    db = Path(d) / f"split-{workers}.duckdb"
    con = duckdb.connect(str(db))
    schema.create_schema(con, {})
    slices = [stage.slice(k, batch_bodies) for k in range(0, stage.num_rows, batch_bodies)]
    results: list[pa.Table | None] = [None] * len(slices)
    ready = [threading.Event() for _ in slices]

    def work(k0: int) -> None:
        c = duckdb.connect()
        c.execute("SET threads = 1")
        for k in range(k0, len(slices), workers):
            c.register("_bayeux_bodies", slices[k])
            results[k] = c.sql(SELECT_SQL, params={"base": 0}).to_arrow_table()
            c.unregister("_bayeux_bodies")
            ready[k].set()
        c.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    next_id, n = 1, 0
    group: list[pa.Table] = []
    for k in range(len(slices)):
        ready[k].wait()
        tbl = results[k]
        results[k] = None
        group.append(tbl.set_column(0, "id", pa.array(range(next_id, next_id + tbl.num_rows), pa.int64())))
        next_id += tbl.num_rows
        if sum(t.num_rows for t in group) >= 100_000 or k == len(slices) - 1:
            con.execute("BEGIN TRANSACTION")
            con.register("_b", pa.concat_tables(group))
            con.execute("INSERT INTO bayeux_messages BY NAME SELECT * FROM _b")
            con.unregister("_b")
            con.execute("COMMIT")
            n += sum(t.num_rows for t in group)
            group = []
    for name, tbl in tables.items():
        if name != "bayeux_messages":
            con.register("_b", tbl)
            con.execute(f"INSERT INTO {name} SELECT * FROM _b")
            con.unregister("_b")
    con.execute("CHECKPOINT")
    secs = time.perf_counter() - t0
    for t in threads:
        t.join()
    con.close()
    db.unlink()
    return secs, n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=500_000)
    ap.add_argument("--per-poll", type=int, default=10)
    ap.add_argument("--ws-share", type=float, default=0.3, help="share of batches arriving as WebSocket frames")
    ap.add_argument("--rounds", type=int, default=3, help="runs of each writer, alternating")
    args = ap.parse_args()

    load0 = os.getloadavg()
    recs = make_records(args.messages, args.per_poll, args.ws_share)
    n_msgs = count_messages(recs)
    print(f"records: {len(recs)} ({sum(isinstance(r, HttpRecord) for r in recs)} long-poll exchanges, "
          f"{sum(isinstance(r, WsFrameRecord) for r in recs)} WebSocket frames), Bayeux messages: {n_msgs}; "
          f"{os.cpu_count()} CPUs, DuckDB {duckdb.__version__}, load average {load0[0]:.1f} {load0[1]:.1f} {load0[2]:.1f}")
    # 1. the stages alone: conversion (decode, redact, classify HTTP -> row tuples), Arrow,
    #    the classification statement, the Arrow-only ingest
    rb = RowBuilder(Redactor())
    out = new_out()
    t0 = time.perf_counter()
    for r in recs:
        (rb.http if isinstance(r, HttpRecord) else rb.ws_frame)(r, out)
    t_conv = time.perf_counter() - t0
    t0 = time.perf_counter()
    staged = out.pop("_bayeux_bodies")
    out.pop("_late_errors", None)
    tables = {k: rows_to_table(schema.TABLES[k], v) for k, v in out.items() if v}
    stage = bayeux_sql.stage_table(staged)
    t_arrow = time.perf_counter() - t0
    del out, staged, rb
    t0 = time.perf_counter()
    classified = classify(stage)
    t_class = time.perf_counter() - t0
    t0 = time.perf_counter()
    classified_mt = classify(stage, threads=os.cpu_count() or 1)
    t_class_mt = time.perf_counter() - t0
    assert classified.num_rows == classified_mt.num_rows == n_msgs, (classified.num_rows, n_msgs)
    del classified_mt
    tables["bayeux_messages"] = classified
    with tempfile.TemporaryDirectory() as d:
        ingests = [ingest(tables, d, f"i{k}") for k in range(2)]
    t_ingest = min(s for s, _ in ingests)
    print("stage alone                          msg/s      (s)      old msg/s   CPU us/msg")
    print(f"Python conversion              : {n_msgs / t_conv:>10,.0f} ({t_conv:5.2f})  {OLD['conversion']:>10,}"
          f"   {t_conv / n_msgs * 1e6:6.2f}")
    print(f"Arrow tables                   : {n_msgs / t_arrow:>10,.0f} ({t_arrow:5.2f})           -"
          f"   {t_arrow / n_msgs * 1e6:6.2f}")
    print(f"classification statement (1 thread) : {n_msgs / t_class:>5,.0f} ({t_class:5.2f})           -"
          f"   {t_class / n_msgs * 1e6:6.2f}")
    print(f"classification statement ({os.cpu_count()} threads): {n_msgs / t_class_mt:>5,.0f} ({t_class_mt:5.2f})"
          f"   (row_number() keeps it mostly serial)")
    print(f"Arrow-only ingest (classified) : {n_msgs / t_ingest:>10,.0f} ({t_ingest:5.2f})  {OLD['ingest']:>10,}"
          f"   {t_ingest / n_msgs * 1e6:6.2f}")
    per_msg = (t_conv + t_arrow + t_class + t_ingest) / n_msgs
    print(f"sum of the stages: {per_msg * 1e6:.2f} CPU us/msg -> at most {1 / per_msg:,.0f} msg/s on one core, "
          f"{(os.cpu_count() or 1) / per_msg:,.0f} msg/s on {os.cpu_count()} cores if every stage ran in parallel "
          f"and nothing else ran")

    # 2. the lever: classification split over N DuckDB connections, one inserter
    with tempfile.TemporaryDirectory() as d:
        for workers in (1, 2, 1, 2):
            secs, n = split_classification(stage, tables, workers, d)
            assert n == n_msgs
            print(f"split classification, {workers} worker(s) + 1 inserter (staged -> committed): "
                  f"{n / secs:>9,.0f} msg/s  ({secs:.2f} s)", flush=True)
    del tables, classified, stage

    # 3. the whole path, before / thread / process writer, alternating
    with tempfile.TemporaryDirectory() as d:      # the writer process's own start-up and close, no records
        k0 = child_cpu()
        ProcessWriter(Path(d) / "empty.duckdb").start().close()
        startup_cpu = child_cpu() - k0
    print(f"whole path ({args.rounds} rounds, alternating); the process writer's CPU includes its process's "
          f"start-up and close, {startup_cpu:.2f} s without records")
    kinds = {"before": BeforeWriter, "after": CaptureWriter, "process": ProcessWriter}
    results: dict[str, list[dict]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory() as d:
        for k in range(args.rounds):
            order = tuple(kinds) if k % 2 == 0 else tuple(reversed(kinds))
            for tag in order:
                r = run_writer(kinds[tag], recs, d, f"{tag}{k}")
                assert r["check"] == (n_msgs, 1, n_msgs, n_msgs), r["check"]
                results[tag].append(r)
                print(f"  round {k + 1} {tag:7}: {r['rate']:>9,.0f} msg/s  {r['seconds']:5.2f} s  CPU {r['cpu']:5.2f} s "
                      f"(proxy side {r['parent_cpu']:.2f} s; {r['written'] / r['cpu']:,.0f} msg/CPU-s)  flushes "
                      f"{r['flushes']}  convert {r['convert']:.2f} s  DuckDB {r['insert']:.2f} s  max lag "
                      f"{r['lag']:.0f} ms  file {r['size'] / 1e6:.1f} MB", flush=True)

    def med(tag: str, key: str) -> float:
        return statistics.median(r[key] for r in results[tag])

    def col(key: str, fmt: str) -> str:
        return " ".join(format(med(t, key), fmt) for t in kinds)

    print("                        before       thread      process   (median of rounds)")
    subm = " ".join(f"{med(t, 'submit') * 1e6 / len(recs):>12.2f}" for t in kinds)
    print(f"submit() us/record : {subm}   (the producer: mitmproxy's event loop)")
    print(f"end to end msg/s   : {col('rate', '>12,.0f')}   (old: thread writer {OLD['after']:,})")
    print(f"seconds            : {col('seconds', '>12.2f')}")
    print(f"CPU s, all procs   : {col('cpu', '>12.2f')}")
    print(f"CPU s, proxy side  : {col('parent_cpu', '>12.2f')}   (process writer: what stays on the proxy's GIL)")
    print(f"convert thread s   : {col('convert', '>12.2f')}")
    print(f"DuckDB thread s    : {col('insert', '>12.2f')}")
    ratio = [a["rate"] / b["rate"] for a, b in zip(results["process"], results["after"])]
    print(f"process / thread writer, per round: {', '.join(f'{x:.2f}' for x in ratio)} (median "
          f"{statistics.median(ratio):.2f}); process writer / Arrow-only ingest of this run: "
          f"{med('process', 'rate') / (n_msgs / t_ingest):.2f}")
    load1 = os.getloadavg()
    print(f"load average {load0[0]:.1f} at the start, {load1[0]:.1f} now, on {os.cpu_count()} CPUs; "
          f"target {TARGET:,} msg/s end to end: {'met' if med('process', 'rate') >= TARGET else 'NOT met'}")


if __name__ == "__main__":
    main()
