"""The capture writer: a thread that batches records into DuckDB as Arrow tables.

``CaptureWriter.submit(record)`` never blocks: records go to a bounded queue. The
writer thread wakes every ``flush_interval`` seconds (default 0.2), converts what
arrived into rows (:class:`gwsreplay.capture.records.RowBuilder`), builds one
``pyarrow.Table`` per table and appends each with ``INSERT INTO t SELECT * FROM
batch``, all in one transaction. ``executemany`` is never used.

Queue full: the proxy must not block, so ``submit`` refuses the record, counts it
and logs an error (at most once a second); the writer then records the number of
refused records in ``capture_errors`` (kind ``dropped``) at its next flush, so a
capture that lost anything says so in the file itself. The queue is bounded both in
records (``max_queue``) and in body bytes (``max_queue_bytes``).

Bad records (anything the conversion chokes on) are written to ``capture_errors``
with the exception, and the writer carries on. ``close()`` drains the queue and
flushes everything.

Nothing is lost silently. A batch DuckDB cannot commit (disk full, I/O error) is
counted in ``stats.lost`` and, once a later batch commits (space came back), recorded
in ``capture_errors`` (kind ``batch_lost``, ``count`` = records). ``close()`` waits
for the writer as long as it makes progress (``progress`` is told how many records
are pending); if it stalls past ``timeout`` the records not written are counted in
``stats.abandoned`` and the connection is left open rather than closed under a
running insert. ``stats.unwritten`` is the sum: what ``gwsreplay record`` reports
and turns into its exit code.

Live snapshots: another process cannot open the file while this one writes
(DuckDB admits one writer process), so the writer polls for a request file
``<db>.snapshot-request`` (JSON ``{"out": PATH, "nonce": N}``) at each flush, copies
the database to ``PATH`` between two batches and answers in ``<db>.snapshot-done``.
``gwsreplay snapshot`` speaks this protocol; see docs/schema.md.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import duckdb
import pyarrow as pa

from gwsreplay.capture import bayeux_sql, opindex, schema
from gwsreplay.capture.arrow import rows_to_table
from gwsreplay.capture.bayeux_rows import patch_exchanges, python_bayeux_rows, recover_staged
from gwsreplay.capture.bayeux_sql import StagedBody
from gwsreplay.capture.records import (DEFAULT_MAX_BODY, ErrorRecord, HttpRecord, LateErrorRecord, WsEndRecord,
                                       WsFrameRecord)
from gwsreplay.capture.redact import Redactor
from gwsreplay.capture.rows import RowBuilder
from gwsreplay.capture.schema import CaptureErrorRow
from gwsreplay.core.sqltext import sql_literal

log = logging.getLogger(__name__)

_STOP = object()
_FLUSH = object()


@dataclass
class WriterStats:
    submitted: int = 0
    dropped: int = 0
    written: dict[str, int] = field(default_factory=lambda: {t: 0 for t in schema.TABLES})
    bad_records: int = 0
    flushes: int = 0
    last_flush_ms: float = 0.0
    lag_ms: float = 0.0            # age of the oldest record of the last batch when it was committed
    max_lag_ms: float = 0.0
    queued: int = 0
    users: set[str] = field(default_factory=set)
    last_error: str | None = None
    snapshots: int = 0
    lost: int = 0                  # records of batches DuckDB could not commit (disk full...)
    abandoned: int = 0             # records still pending when close() gave up waiting
    committed: int = 0             # records whose batch committed (bad records included)
    convert_s: float = 0.0         # cumulative time spent turning records into Arrow tables
    python_bodies: int = 0         # batches whose Bayeux bodies were classified in Python
    insert_s: float = 0.0          # cumulative time spent in DuckDB transactions

    def as_dict(self) -> dict[str, Any]:
        return {
            "submitted": self.submitted, "dropped": self.dropped, "written": dict(self.written),
            "bad_records": self.bad_records, "flushes": self.flushes, "lag_ms": round(self.lag_ms, 1),
            "max_lag_ms": round(self.max_lag_ms, 1), "queued": self.queued, "agents": len(self.users),
            "last_error": self.last_error, "snapshots": self.snapshots, "lost": self.lost,
            "abandoned": self.abandoned, "unwritten": self.unwritten,
        }

    @property
    def unwritten(self) -> int:
        """Records handed to the writer (or refused by it) that are not in the file."""
        return self.dropped + self.lost + self.abandoned

    @property
    def pending(self) -> int:
        """Records accepted and neither committed nor lost yet."""
        return max(0, self.submitted - self.committed - self.lost)


@dataclass
class _Prepared:
    tables: dict[str, pa.Table]
    staged: list[StagedBody]
    stage: pa.Table | None
    oldest: float
    t0: float
    records: int = 0               # records in this batch
    dropped_reported: int = 0      # loss rows this batch carries (given back if it fails)
    lost_reported: int = 0
    late_errors: list = field(default_factory=list)   # rows.LateError: errors for exchanges already built


def new_out() -> dict[str, list]:
    out: dict[str, list] = {t: [] for t in schema.TABLES}
    out["_bayeux_bodies"] = []
    out["_late_errors"] = []
    return out


def snapshot_paths(db_path: str | os.PathLike) -> tuple[Path, Path]:
    p = Path(db_path)
    return p.with_name(p.name + ".snapshot-request"), p.with_name(p.name + ".snapshot-done")


class CaptureWriter:
    """Owns the DuckDB connection and the writer thread."""

    def __init__(
        self,
        db_path: str | os.PathLike,
        *,
        redactor: Redactor | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        flush_interval: float = 0.2,
        max_queue: int = 200_000,
        max_queue_bytes: int = 512 * 1024 * 1024,
        meta: dict[str, str] | None = None,
        on_flush: Callable[[WriterStats], None] | None = None,
    ) -> None:
        self.db_path = str(db_path)
        self.redactor = redactor or Redactor()
        self.max_body = max_body
        self.flush_interval = flush_interval
        self.max_queue_bytes = max_queue_bytes
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._bytes = 0
        self._bytes_lock = threading.Lock()
        self.stats = WriterStats()
        self._dropped_unreported = 0
        self._lost_unreported = 0
        self._lost_why = ""
        self._loss_lock = threading.Lock()
        self._last_drop_log = 0.0
        self._last_loss_log = 0.0
        self._on_flush = on_flush
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()     # set by flush() and close() only, never per record
        self._closed = False
        self._req_path, self._done_path = snapshot_paths(self.db_path)
        Path(self.db_path).parent.mkdir(parents=True, exist_ok=True)
        self.con = duckdb.connect(self.db_path)
        base_meta = {
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "redaction": json.dumps(self.redactor.config()),
            "capture_max_body": str(max_body),
        }
        existing = schema.schema_version(self.con)
        if existing is not None:
            base_meta.pop("created_at")
            base_meta["reopened_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        base_meta.update(meta or {})
        schema.create_schema(self.con, base_meta)
        next_ids = {}
        for t in ("exchanges", "bayeux_messages", "websocket_frames"):
            next_ids[t] = int(self.con.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {t}").fetchall()[0][0])
        self.next_message = next_ids["bayeux_messages"]
        self.builder = RowBuilder(self.redactor, max_body=max_body, next_ids=next_ids)

    # ------------------------------------------------------------------ producer side
    def start(self) -> "CaptureWriter":
        if self._thread is None:
            self._ins_queue: queue.Queue = queue.Queue(maxsize=2)
            self._ins_thread = threading.Thread(target=self._run_inserter, name="gws-capture-insert", daemon=True)
            self._ins_thread.start()
            self._thread = threading.Thread(target=self._run, name="gws-capture-convert", daemon=True)
            self._thread.start()
        return self

    def submit(self, record: Any) -> bool:
        """Hand a record to the writer. Never blocks; False (and counted) if the queue is full."""
        if self._closed:
            self._drop(record)
            return False
        size = _record_bytes(record)
        if size and self._bytes + size > self.max_queue_bytes:
            self._drop(record)
            return False
        record.submitted = time.monotonic()
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self._drop(record)
            return False
        if size:
            with self._bytes_lock:
                self._bytes += size
        self.stats.submitted += 1
        return True

    def _drop(self, record: Any) -> None:
        with self._loss_lock:
            self.stats.dropped += 1
            self._dropped_unreported += 1
        now = time.monotonic()
        if now - self._last_drop_log > 1.0:
            self._last_drop_log = now
            log.error("gws capture: writer queue full, %d record(s) refused so far (%s); "
                      "the capture will record the loss in capture_errors",
                      self.stats.dropped, type(record).__name__)

    def flush(self, timeout: float = 10.0) -> None:
        """Ask the writer thread to flush now and wait until it has (for tests and snapshots)."""
        ev = threading.Event()
        self._queue.put((_FLUSH, ev))
        self._wake.set()
        ev.wait(timeout)

    def close(self, timeout: float = 60.0, progress: Callable[[int], None] | None = None) -> None:
        """Drain the queue, flush everything, checkpoint and close the file.

        Waits as long as the writer makes progress (``progress(pending)`` about once a
        second while records are pending); after ``timeout`` seconds without progress it
        gives up: the pending records are counted in ``stats.abandoned`` and the
        connection is left to the running insert (never closed under it)."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._put_control(_STOP)
            self._wake.set()
            if not self._wait_writer(timeout, progress):
                self.stats.abandoned = self.stats.pending
                log.error("gws capture: the writer made no progress for %.0f s; %d record(s) not written",
                          timeout, self.stats.abandoned)
                return
        else:
            self.write_records(self._drain_nowait())
        self._report_losses_now()
        opindex.build_quietly(self.con)      # the operations table, from everything written
        try:
            self.con.execute("CHECKPOINT")
        except duckdb.Error:
            pass
        self.con.close()

    def _put_control(self, item: Any) -> None:
        """Queue a control item even when the queue is full (it waits for room, not forever)."""
        deadline = time.monotonic() + 5.0
        while True:
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                if time.monotonic() > deadline or not self._thread.is_alive():
                    self._drain_into_abandoned()
                    self._queue.put_nowait(item)
                    return

    def _drain_into_abandoned(self) -> None:
        for rec in self._drain_nowait():
            self.stats.submitted -= 1
            self._drop(rec)

    def _wait_writer(self, timeout: float, progress: Callable[[int], None] | None) -> bool:
        """Join both threads while they make progress; False if they stalled ``timeout`` s."""
        last = (-1, -1)
        moved = time.monotonic()
        told = time.monotonic()
        for t in (self._thread, self._ins_thread):
            while t.is_alive():
                t.join(0.2)
                now = time.monotonic()
                state = (self.stats.committed + self.stats.lost, self._queue.qsize())
                if state != last:
                    last, moved = state, now
                elif now - moved > timeout:
                    return False
                if progress is not None and now - told >= 1.0 and self.stats.pending:
                    told = now
                    try:
                        progress(self.stats.pending)
                    except Exception:  # noqa: BLE001
                        pass
        return True

    def _report_losses_now(self) -> None:
        """Last chance for loss rows not yet in the file (the last batch failed)."""
        if not (self._dropped_unreported or self._lost_unreported):
            return
        prep = self._convert([])
        if prep is not None:
            self._commit(prep)

    # ------------------------------------------------------------------ threads
    # Two stages so that Python work (decode, redact, classify, Arrow) overlaps with
    # DuckDB's (which releases the GIL): the converter thread turns queued records into
    # Arrow tables, the insert thread owns the connection and commits them.
    MAX_BATCH_RECORDS = 100_000      # under load, bigger batches: DuckDB then writes row groups
    MAX_BATCH_BYTES = 128 * 1024 * 1024   # directly (compressed) instead of through the WAL
    # A batch allocates hundreds of thousands of tuples that never form cycles; letting the cyclic
    # GC run meanwhile makes it walk every live object again and again (half of the Arrow stage).
    PAUSE_GC = True
    # The Bayeux statement costs DuckDB 20-40 ms per execution whatever the input (planning its
    # hundreds of expressions), which is what a proxy at a few hundred requests/s pays five times
    # a second. A live batch with at most this many Bayeux bodies is classified in Python instead
    # (gwsreplay.capture.classify.classify_bayeux, the same rules: tests/test_capture_unit.py holds them
    # equal, column by column); bigger ones go to DuckDB, which is far faster per message.
    PY_BAYEUX_MAX_BODIES = 64
    # Live conversion gives the GIL away every this many records (about a millisecond of work)
    # instead of holding it for Python's 5 ms switch interval while mitmproxy's loop waits.
    YIELD_EVERY = 16

    def _run(self) -> None:
        _name_os_thread("gws-convert")
        stop = False
        behind = False
        while not stop:
            # Sleep through the interval instead of waking up for every record (a wake-up per
            # record costs the proxy's event loop a GIL hand-over each time); no sleep while the
            # previous batch left records behind.
            if not behind:
                self._wake.wait(self.flush_interval)
            self._wake.clear()
            items: list[Any] = []
            waiters: list[threading.Event] = []
            size = 0
            behind = True
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    behind = False
                    break
                if item is _STOP:
                    stop = True
                    break
                if isinstance(item, tuple) and item and item[0] is _FLUSH:
                    waiters.append(item[1])
                    break
                items.append(item)
                size += _record_bytes(item)
                if len(items) >= self.MAX_BATCH_RECORDS or size >= self.MAX_BATCH_BYTES:
                    break
            if stop:
                items.extend(self._drain_nowait())
            prep = None
            try:
                prep = self._convert(items, live=True)
            except Exception as exc:  # noqa: BLE001 - the writer must survive
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("gws capture: conversion failed")
                self._lose(len(items), f"conversion failed: {type(exc).__name__}: {exc}")
            self._ins_queue.put((prep, waiters))
        self._ins_queue.put(_STOP)

    def _run_inserter(self) -> None:
        _name_os_thread("gws-insert")
        while True:
            item = self._ins_queue.get()
            if item is _STOP:
                return
            prep, waiters = item
            try:
                if prep is not None:
                    self._commit(prep)
                self._check_snapshot_request()
            except Exception as exc:  # noqa: BLE001 - the writer must survive
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("gws capture: insert failed")
            for ev in waiters:
                ev.set()

    def _drain_nowait(self) -> list[Any]:
        items = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return items
            if item is _STOP:
                continue
            if isinstance(item, tuple) and item and item[0] is _FLUSH:
                item[1].set()
                continue
            items.append(item)

    def write_records(self, records: list[Any]) -> bool:
        """Synchronous path (importers, tests): convert and commit ``records`` now.
        False when the batch could not be committed (counted in ``stats.lost``)."""
        now = time.monotonic()
        for r in records:
            r.submitted = now
        self.stats.submitted += len(records)
        prep = self._convert(records)
        if prep is not None:
            return self._commit(prep)
        return True

    def _convert(self, items: list[Any], live: bool = False) -> "_Prepared | None":
        """Records -> Arrow tables for _commit. ``live``: the writer thread's periodic batches,
        where a few Bayeux bodies are classified in Python instead of by the DuckDB statement."""
        if not items and not self._dropped_unreported and not self._lost_unreported:
            return None
        if not self.PAUSE_GC:
            return self._convert_batch(items, live)
        with _gc_paused():
            return self._convert_batch(items, live)

    def _convert_batch(self, items: list[Any], live: bool = False) -> "_Prepared | None":
        t0 = time.monotonic()
        out: dict[str, list] = new_out()
        oldest = t0
        freed = 0
        b = self.builder
        for i, rec in enumerate(items):
            if live and i % self.YIELD_EVERY == self.YIELD_EVERY - 1:
                time.sleep(0)   # hand the GIL to the proxy's event loop if it is waiting for it
            oldest = min(oldest, rec.submitted or t0)
            freed += _record_bytes(rec)
            try:
                if isinstance(rec, HttpRecord):
                    b.http(rec, out)
                elif isinstance(rec, WsFrameRecord):
                    b.ws_frame(rec, out)
                elif isinstance(rec, WsEndRecord):
                    b.ws_end(rec, out)
                elif isinstance(rec, ErrorRecord):
                    b.error(rec, out)
                elif isinstance(rec, LateErrorRecord):
                    b.late_error(rec, out)
                else:
                    raise TypeError(f"unknown record type {type(rec).__name__}")
            except Exception as exc:  # noqa: BLE001 - record it, keep going
                self.stats.bad_records += 1
                out["capture_errors"].append(CaptureErrorRow(
                    ts=int(time.time() * 1e6), kind="bad_record", flow_id=getattr(rec, "flow_id", None), count=1,
                    error=f"{type(exc).__name__}: {exc}"[:2000]))
        if freed:
            with self._bytes_lock:
                self._bytes = max(0, self._bytes - freed)
        with self._loss_lock:
            n_dropped, self._dropped_unreported = self._dropped_unreported, 0
            n_lost, self._lost_unreported = self._lost_unreported, 0
            why = self._lost_why
        if n_dropped:
            out["capture_errors"].append(CaptureErrorRow(
                ts=int(time.time() * 1e6), kind="dropped", count=n_dropped,
                error=f"writer queue full: {n_dropped} record(s) refused"))
        if n_lost:
            out["capture_errors"].append(CaptureErrorRow(
                ts=int(time.time() * 1e6), kind="batch_lost", count=n_lost,
                error=f"{n_lost} record(s) could not be written: {why}"[:2000]))
        for row in out["exchanges"]:
            if row.user_name:
                self.stats.users.add(row.user_name)
        staged = out.pop("_bayeux_bodies")
        late = out.pop("_late_errors")
        if live and staged and len(staged) <= self.PY_BAYEUX_MAX_BODIES:
            rows = python_bayeux_rows(staged)
            if rows is not None:
                # before the damage rows of this batch, which get their ids last (as with the SQL)
                out["bayeux_messages"] = rows + out["bayeux_messages"]
                staged = []
                self.stats.python_bodies += 1
        tables = {name: rows_to_table(schema.TABLES[name], rows) for name, rows in out.items() if rows}
        stage = bayeux_sql.stage_table(staged) if staged else None
        self.stats.convert_s += time.monotonic() - t0
        return _Prepared(tables, staged, stage, oldest, t0, len(items), n_dropped, n_lost, late)

    def note_losses(self, *, dropped: int, lost: int, why: str) -> None:
        """Losses counted elsewhere (the proxy's side of a writer process): recorded in
        ``capture_errors`` at the next commit, not counted again in this writer's figures."""
        with self._loss_lock:
            self._dropped_unreported += dropped
            if lost:
                self._lost_unreported += lost
                self._lost_why = why[:500]

    def _lose(self, n: int, why: str, prep: "_Prepared | None" = None) -> None:
        """Count ``n`` records that will never be in the file; the next batch that commits
        records them (with any loss rows the failed batch carried)."""
        with self._loss_lock:
            self.stats.lost += n
            self._lost_unreported += n + (prep.lost_reported if prep else 0)
            self._dropped_unreported += prep.dropped_reported if prep else 0
            self._lost_why = why[:500]
        now = time.monotonic()
        if now - self._last_loss_log > 5.0:     # a full disk fails every batch: one line, not hundreds
            self._last_loss_log = now
            log.error("gws capture: %d record(s) could not be written so far (%s); recorded in "
                      "capture_errors once the file can be written again", self.stats.lost, why[:200])

    def _commit(self, prep: "_Prepared") -> bool:
        t1 = time.monotonic()
        ok = self._insert(prep.tables, prep.staged, prep.stage)
        if ok and prep.late_errors:
            ok = self._append_errors(prep.late_errors)
        if ok:
            self.stats.committed += prep.records
        else:
            self._lose(prep.records, self.stats.last_error or "insert failed", prep)
        now = time.monotonic()
        self.stats.insert_s += now - t1
        self.stats.flushes += 1
        self.stats.last_flush_ms = (now - prep.t0) * 1000
        self.stats.lag_ms = (now - prep.oldest) * 1000
        self.stats.max_lag_ms = max(self.stats.max_lag_ms, self.stats.lag_ms)
        self.stats.queued = self._queue.qsize()
        if self._on_flush is not None:
            try:
                self._on_flush(self.stats)
            except Exception:  # noqa: BLE001
                pass
        return ok

    def _insert(self, tables: dict[str, pa.Table], staged: list[StagedBody], stage: pa.Table | None) -> bool:
        if not tables and stage is None:
            return True
        con = self.con
        base = self.next_message
        written: dict[str, int] = {}
        try:
            con.execute("BEGIN TRANSACTION")
            n = 0
            if stage is not None:
                with _registered(con, "_bayeux_bodies", stage):
                    n = con.execute(bayeux_sql.INSERT_SQL, {"base": base}).fetchall()[0][0]
            written["bayeux_messages"] = n
            for name, tbl in tables.items():
                if name == "bayeux_messages":
                    tbl = _with_ids(tbl, base + n)
                with _registered(con, "_batch", tbl):
                    con.execute(f"INSERT INTO {name} SELECT * FROM _batch").fetchall()
                written[name] = written.get(name, 0) + tbl.num_rows
            con.execute("COMMIT")
        except duckdb.Error as exc:
            _rollback(con)
            if _is_io_error(exc):      # no point in a second try value by value
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                return False
            log.warning("gws capture: batch insert failed (%s); retrying value by value", exc)
            return self._insert_safe(tables, staged, str(exc))
        self.next_message = base + written["bayeux_messages"]
        for name, k in written.items():
            self.stats.written[name] += k
        return True

    def _append_errors(self, late: list) -> bool:
        """Append errors that came after their exchange was written (abandoned responses)."""
        tbl = pa.table({"id": pa.array([e.exchange_id for e in late], pa.int64()),
                        "error": pa.array([e.error for e in late], pa.string())})
        try:
            with _registered(self.con, "_late", tbl):
                self.con.execute("UPDATE exchanges SET error = coalesce(exchanges.error || '; ', '') || _late.error "
                                 "FROM _late WHERE exchanges.id = _late.id").fetchall()
        except duckdb.Error as exc:
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
            return False
        return True

    def _insert_safe(self, tables: dict[str, pa.Table], staged: list[StagedBody], why: str) -> bool:
        """Second chance for a batch DuckDB refused (JSON it cannot parse: a damaged body that
        looked complete, lone surrogates...): JSON values it rejects are kept as text where
        there is a text column, else NULL; Bayeux bodies it rejects are decoded leniently in
        Python (complete messages kept, one error row with the raw text) and their exchange
        gets the raw body and the error, as if they had been parsed in Python."""
        con = self.con
        base = self.next_message
        written: dict[str, int] = {}
        tables = dict(tables)
        try:
            con.execute("BEGIN TRANSACTION")
            n = 0
            if staged:
                with _registered(con, "_all_bodies", bayeux_sql.stage_table(staged)):
                    bad = {seq for seq, in con.execute(
                        "SELECT seq FROM _all_bodies WHERE try_cast(body AS JSON[]) IS NULL").fetchall()}
                    con.execute("CREATE OR REPLACE TEMP VIEW _bayeux_bodies AS SELECT * FROM _all_bodies "
                                "WHERE try_cast(body AS JSON[]) IS NOT NULL").fetchall()
                    try:
                        n = con.execute(bayeux_sql.INSERT_SQL, {"base": base}).fetchall()[0][0]
                    finally:
                        con.execute("DROP VIEW IF EXISTS _bayeux_bodies").fetchall()
                if bad:
                    restaged, errors, fixes = [], [], {}
                    for row in staged:
                        if row.seq in bad:
                            r, e, fix = recover_staged(row, self.max_body)
                            restaged += r
                            errors += e
                            fixes[(row.exchange_id, row.direction)] = fix
                    if restaged:
                        with _registered(con, "_bayeux_bodies", bayeux_sql.stage_table(
                                [r._replace(seq=i) for i, r in enumerate(restaged)])):
                            n += con.execute(bayeux_sql.INSERT_SQL, {"base": base + n}).fetchall()[0][0]
                    if errors:
                        err_tbl = rows_to_table(schema.BAYEUX_MESSAGES, errors)
                        if "bayeux_messages" in tables:
                            err_tbl = pa.concat_tables([tables["bayeux_messages"], err_tbl])
                        tables["bayeux_messages"] = err_tbl
                    if "exchanges" in tables and fixes:
                        tables["exchanges"] = patch_exchanges(tables["exchanges"], fixes)
            written["bayeux_messages"] = n
            for name, tbl in tables.items():
                if name == "bayeux_messages":
                    tbl = _with_ids(tbl, base + n)
                cols = []
                for c, typ in schema.TABLES[name]:
                    if typ == "JSON":
                        cols.append(f"try_cast({c} AS JSON) AS {c}")
                    elif name == "exchanges" and c in ("request_body_text", "response_body_text"):
                        j = c[: -len("_text")]
                        cols.append(f"coalesce({c}, CASE WHEN try_cast({j} AS JSON) IS NULL THEN {j} END) AS {c}")
                    else:
                        cols.append(c)
                with _registered(con, "_batch", tbl):
                    con.execute(f"INSERT INTO {name} BY NAME SELECT {', '.join(cols)} FROM _batch").fetchall()
                written[name] = written.get(name, 0) + tbl.num_rows
            with _registered(con, "_err", rows_to_table(schema.CAPTURE_ERRORS, [CaptureErrorRow(
                    ts=int(time.time() * 1e6), kind="invalid_json", count=1, error=why[:2000])])):
                con.execute("INSERT INTO capture_errors SELECT * FROM _err").fetchall()
            con.execute("COMMIT")
            self.next_message = base + written["bayeux_messages"]
            for name, k in written.items():
                self.stats.written[name] += k
            return True
        except Exception as exc:  # noqa: BLE001 - give up on this batch (counted by _commit), keep the writer alive
            _rollback(con)
            self.stats.last_error = f"{type(exc).__name__}: {why} / {exc}"
            return False

    # ------------------------------------------------------------------ snapshots
    def _check_snapshot_request(self) -> None:
        """Answer a ``<db>.snapshot-request``. Anyone who can write next to the capture can ask,
        so the output must be a ``.duckdb`` file in the capture's own folder, and an existing
        file there is only replaced when it is a snapshot of this capture."""
        req_path = self._req_path
        if not req_path.exists() and not req_path.is_symlink():
            return
        try:
            if req_path.is_symlink() or not req_path.is_file():
                raise ValueError("not a regular file")
            with open(req_path, "rb") as f:
                req = json.loads(f.read(4096))
            if not isinstance(req, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError):
            req = {}
        try:
            req_path.unlink()
        except OSError:
            return
        result: dict[str, Any] = {"nonce": req.get("nonce"), "out": req.get("out")}
        try:
            out = snapshot_target(self.db_path, req.get("out"))
            snapshot_connection(self.con, out, snapshot_of=self.db_path)
            self.stats.snapshots += 1
        except Exception as exc:  # noqa: BLE001
            result["error"] = f"{type(exc).__name__}: {exc}"
        _write_new(self._done_path, json.dumps(result).encode())


class SnapshotRefused(ValueError):
    """A snapshot request the writer will not carry out (output outside the capture's folder...)."""


def snapshot_target(db_path: str | os.PathLike, out: Any) -> Path:
    """The checked output of a snapshot request: a ``.duckdb`` file beside the capture, not a
    symlink, not the capture or its companions, and either new or a snapshot of this capture."""
    db = Path(db_path).resolve()
    if not isinstance(out, str) or not out:
        raise SnapshotRefused("no output file in the request")
    target = Path(out)
    if not target.is_absolute():
        target = db.parent / target
    if target.is_symlink():
        raise SnapshotRefused(f"{target} is a symbolic link")
    if target.parent.resolve() != db.parent or not target.name.endswith(".duckdb"):
        raise SnapshotRefused(f"{target}: a snapshot must be a .duckdb file in the capture's folder {db.parent}")
    target = db.parent / target.name
    if target == db:
        raise SnapshotRefused("the snapshot must be a different file")
    if target.exists() and not is_snapshot_of(target, db):
        raise SnapshotRefused(f"{target} exists and is not a snapshot of {db.name}; not replaced")
    return target


def is_snapshot_of(path: Path, db: str | os.PathLike) -> bool:
    """True when ``path`` is a DuckDB file whose meta says it is a snapshot of ``db``."""
    try:
        if not path.is_file() or path.is_symlink():
            return False
        with open(path, "rb") as f:
            if f.read(16)[8:12] != b"DUCK":
                return False
        con = duckdb.connect(str(path), read_only=True)
    except (OSError, duckdb.Error):
        return False
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'snapshot_of'").fetchall()
    except duckdb.Error:
        return False
    finally:
        con.close()
    return bool(row) and row[0][0] == str(Path(db).resolve())


def _write_new(path: Path, data: bytes) -> None:
    """Write ``path`` through a fresh temporary file (never following a planted symlink)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _name_os_thread(name: str) -> None:
    """Give the current thread an OS-level name (top -H, /proc/*/task/*/comm); Linux only, best effort."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.prctl(15, name.encode()[:15], 0, 0, 0)   # PR_SET_NAME
    except Exception:  # noqa: BLE001
        pass


class _gc_paused:
    """Cyclic garbage collection off for a ``with`` block (left alone if someone else turned it off).

    Process-wide, so kept short: one batch conversion. Nothing is lost, the next collection
    after the block sees the same objects."""

    def __enter__(self) -> None:
        self.was_enabled = gc.isenabled()
        if self.was_enabled:
            gc.disable()

    def __exit__(self, *exc: Any) -> None:
        if self.was_enabled:
            gc.enable()


class _registered:
    """``con.register(name, obj)`` for the duration of a ``with`` block (unregister never masks errors)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, name: str, obj: Any) -> None:
        self.con, self.name, self.obj = con, name, obj

    def __enter__(self) -> None:
        self.con.register(self.name, self.obj)

    def __exit__(self, *exc: Any) -> None:
        try:
            self.con.unregister(self.name)
        except duckdb.Error:
            pass


def _is_io_error(exc: Exception) -> bool:
    """Disk full, read-only file system, I/O error: the file cannot be written at all now."""
    text = str(exc).lower()
    return isinstance(exc, duckdb.IOException) or any(
        w in text for w in ("no space left", "could not write", "read-only file system", "failed to commit"))


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass


def _with_ids(tbl: pa.Table, start: int) -> pa.Table:
    ids = pa.array(range(start, start + tbl.num_rows), pa.int64())
    return tbl.set_column(0, "id", ids)


def snapshot_connection(con: duckdb.DuckDBPyConnection, out: str | os.PathLike, *,
                        snapshot_of: str | os.PathLike | None = None) -> None:
    """Copy the database behind ``con`` into a new file ``out`` (atomically replaced, mode 0600);
    ``snapshot_of``: recorded in the copy's meta, so a later snapshot may replace it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    for p in (tmp, Path(str(tmp) + ".wal")):
        if p.exists() or p.is_symlink():
            p.unlink()
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600))
    tmp.unlink()      # (DuckDB makes the file; the name was free and is ours)
    db = con.execute("SELECT current_database()").fetchall()[0][0]
    con.execute(f"ATTACH {sql_literal(tmp)} AS _snap")
    try:
        con.execute(f'COPY FROM DATABASE "{db}" TO _snap')
        if snapshot_of is not None:
            con.execute("DELETE FROM _snap.meta WHERE key = 'snapshot_of'")
            con.execute("INSERT INTO _snap.meta VALUES ('snapshot_of', ?)", [str(Path(snapshot_of).resolve())])
    finally:
        con.execute("DETACH _snap")
    os.chmod(tmp, 0o600)
    os.replace(tmp, out)


def _record_bytes(rec: Any) -> int:
    if isinstance(rec, HttpRecord):
        return len(rec.request_body or b"") + len(rec.response_body or b"")
    if isinstance(rec, WsFrameRecord):
        return len(rec.content or b"")
    return 0
