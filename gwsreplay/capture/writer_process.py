"""The capture writer in a child process, so that mitmproxy's event loop keeps its GIL.

``ProcessWriter`` has the interface of :class:`gwsreplay.capture.writer.CaptureWriter`
(``start``, ``submit``, ``flush``, ``close``, ``stats``, ``db_path``); its child process
(``python -m gwsreplay.capture.writer_child``) runs a ``CaptureWriter``, which does all
the decoding, redaction, classification, Arrow and DuckDB work and answers snapshot
requests as before. The proxy's side only does what cannot be avoided:

* ``submit()`` appends the record to a bounded buffer (records and body bytes, the
  limits of ``CaptureWriter``) and never blocks; a record that does not fit is refused
  and counted as ``dropped``, and the count is handed to the child, which records it in
  ``capture_errors`` as today.
* A sender thread wakes every ``flush_interval / 4`` (not per record), turns the
  buffered records into tuples of their fields and writes them down a pipe in one
  pickle (protocol 5) per wake-up: a few microseconds per record under the GIL.
* A reader thread takes the child's statistics after every commit (the live line's
  written/dropped/lost counts), its answers to ``flush()`` and its final figures.

Guarantees (docs/schema.md, "The writer process"):

* SIGINT/SIGTERM of the proxy: ``close()`` sends what is buffered and asks the child to
  close; the child drains, commits, builds the operations table, checkpoints and sends its
  final figures, which ``stats`` shows.
* SIGKILL of the proxy: the child sees end-of-file on its pipe, commits every record it
  had received and closes the file. Lost: what the proxy had not handed over (the last
  sender interval, ``flush_interval / 4``, and the message being written; more only if
  the child had fallen behind and the pipe was full, up to the buffer's limit). When
  nothing is pending the child releases the file at once (the state is then that of a
  SIGKILL of the thread writer: every batch committed, no final checkpoint).
* The child dies (killed, crashed): the reader thread sees end-of-file without final
  figures; the records sent and not reported committed are counted in ``lost`` (an
  upper bound: a batch committed just before the death may be counted too), logged, and a
  new child is started on the same file (at most ``MAX_RESTARTS`` times), which records
  the loss in ``capture_errors`` (``batch_lost``). Without a child, records are dropped
  and counted.
* The child ignores SIGINT and SIGTERM (a Ctrl-C reaches the whole process group): it
  ends when the proxy closes it or when the proxy's side of the pipe closes.
"""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import os
import pickle
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from gwsreplay.capture import schema
from gwsreplay.capture.records import DEFAULT_MAX_BODY, HttpRecord, WsFrameRecord
from gwsreplay.capture.redact import Redactor
from gwsreplay.capture.writer_child import pack, read_frame, write_frame

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------- parent side

@dataclasses.dataclass
class ProcessWriterStats:
    """``WriterStats`` as the proxy sees it: the child's figures plus the proxy side's."""

    submitted: int = 0
    dropped: int = 0
    lost: int = 0
    abandoned: int = 0
    written: dict[str, int] = dataclasses.field(default_factory=lambda: {t: 0 for t in schema.TABLES})
    bad_records: int = 0
    committed: int = 0
    flushes: int = 0
    lag_ms: float = 0.0
    max_lag_ms: float = 0.0
    queued: int = 0
    agents: int = 0
    snapshots: int = 0
    last_error: str | None = None
    restarts: int = 0              # writer processes started again after one died
    child: dict[str, Any] = dataclasses.field(default_factory=dict)   # the child's last as_dict()

    @property
    def unwritten(self) -> int:
        return self.dropped + self.lost + self.abandoned

    pending: int = 0               # accepted here, fate not known yet

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.child)
        d.update({
            "submitted": self.submitted, "dropped": self.dropped, "written": dict(self.written),
            "bad_records": self.bad_records, "flushes": self.flushes, "lag_ms": round(self.lag_ms, 1),
            "max_lag_ms": round(self.max_lag_ms, 1), "queued": self.queued, "agents": self.agents,
            "last_error": self.last_error, "snapshots": self.snapshots, "lost": self.lost,
            "abandoned": self.abandoned, "unwritten": self.unwritten, "writer_restarts": self.restarts,
        })
        return d


class _Control:
    __slots__ = ("arg", "kind")

    def __init__(self, kind: str, arg: Any = None) -> None:
        self.kind, self.arg = kind, arg


class WriterProcessError(RuntimeError):
    """The writer process could not start (its own error, e.g. the capture is held elsewhere)."""


class ProcessWriter:
    """``CaptureWriter``'s interface; the writing happens in a child process."""

    MAX_RESTARTS = 3
    SEND_MAX_RECORDS = 20_000        # per pickle: bounded memory and latency per message
    START_TIMEOUT = 60.0

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
        on_flush: Callable[[ProcessWriterStats], None] | None = None,
    ) -> None:
        self.db_path = str(db_path)
        self.flush_interval = flush_interval
        self.max_queue, self.max_queue_bytes = max_queue, max_queue_bytes
        self._config = {"db_path": self.db_path, "redactor": redactor or Redactor(), "max_body": max_body,
                        "flush_interval": flush_interval, "max_queue": max_queue,
                        "max_queue_bytes": max_queue_bytes, "meta": dict(meta or {})}
        self._on_flush = on_flush
        self.stats = ProcessWriterStats()
        self._lock = threading.Lock()           # stats, buffer bytes, generation bookkeeping
        self._buf: deque = deque()
        self._buf_records = 0
        self._buf_bytes = 0
        self._wake = threading.Event()
        self._closed = False                     # no more submits
        self._finished = threading.Event()       # the child sent its final figures (or is gone for good)
        self._waiters: dict[int, threading.Event] = {}
        self._token = 0
        self._progress_pending: int | None = None
        self._last_heard = time.monotonic()
        self._last_drop_log = 0.0
        # accounting across child generations
        self._dropped_local = 0                  # refused by this side
        self._drops_forwarded = 0                # of which handed to a child for capture_errors
        self._dead_lost = 0                      # sent to children that died, never reported committed
        self._abandoned_local = 0                # not handed over or not confirmed when close() gave up
        self._abandon_on_kill = False
        self._no_child = False                   # every restart failed or was used up
        self._lost_forwarded = 0
        self._base = _Totals()                   # figures of children that are gone
        self._cur = _Totals()                    # the current child's last report
        self._sent_gen = 0                       # records sent to the current child
        self._dead_why = ""
        self._sender: threading.Thread | None = None
        self._proc: subprocess.Popen | None = None
        self._spawn()

    # ------------------------------------------------------------------ child lifetime
    def _spawn(self) -> None:
        """Start a child and wait for it to open the capture (its error is raised here)."""
        proc = subprocess.Popen([sys.executable, "-m", "gwsreplay.capture.writer_child"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, close_fds=True)
        write_frame(proc.stdin, ("init", self._config))
        first = read_frame(proc.stdout)
        if first is None or first[0] != "ready":
            proc.stdin.close()
            proc.wait(10)
            raise WriterProcessError(first[1] if first else f"writer process exited ({proc.returncode})")
        self._proc = proc
        self._sent_gen = 0
        self._cur = _Totals()
        self._last_heard = time.monotonic()
        threading.Thread(target=self._read_child, args=(proc,), name="gws-writer-reader", daemon=True).start()

    def start(self) -> ProcessWriter:
        if self._sender is None:
            self._sender = threading.Thread(target=self._send_loop, name="gws-writer-sender", daemon=True)
            self._sender.start()
        return self

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    # ------------------------------------------------------------------ producer side
    def submit(self, record: Any) -> bool:
        """Hand a record over. Never blocks; False (and counted as dropped) if it does not fit."""
        size = _record_bytes(record)
        with self._lock:
            if (self._closed or self._no_child or self._buf_records >= self.max_queue
                    or (size and self._buf_bytes + size > self.max_queue_bytes)):
                self._dropped_local += 1
                self.stats.dropped += 1          # (what _refresh() would compute, without its cost)
                drop = True
            else:
                self._buf.append(record)
                self._buf_records += 1
                self._buf_bytes += size
                self.stats.submitted += 1
                drop = False
        if drop:
            now = time.monotonic()
            if now - self._last_drop_log > 1.0:
                self._last_drop_log = now
                log.error("gws capture: writer buffer full or writer process gone, %d record(s) refused so far "
                          "(%s); the capture will record the loss in capture_errors",
                          self._dropped_local, type(record).__name__)
            return False
        return True

    def flush(self, timeout: float = 10.0) -> None:
        """Everything submitted so far committed (for tests and snapshots), waited up to ``timeout``."""
        ev = threading.Event()
        with self._lock:
            self._token += 1
            self._waiters[self._token] = ev
            self._buf.append(_Control("flush", self._token))
        self._wake.set()
        ev.wait(timeout)

    def close(self, timeout: float = 60.0, progress: Callable[[int], None] | None = None) -> None:
        """Send the rest, let the child drain and close the file, take its final figures.

        The child waits as long as its writer makes progress (``progress(pending)`` about once
        a second); if the child itself stops answering for ``timeout`` + 10 s it is killed and
        the records not confirmed are counted as ``abandoned``."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._buf.append(_Control("close", timeout))
        self.start()                     # (never started: the sender still hands the buffer over)
        self._wake.set()
        told = 0.0
        while not self._finished.wait(0.2):
            now = time.monotonic()
            pending = self._progress_pending
            if progress is not None and pending and now - told >= 1.0:
                told = now
                try:
                    progress(pending)
                except Exception:  # noqa: BLE001
                    pass
            if now - self._last_heard > timeout + 10.0:
                log.error("gws capture: the writer process made no progress for %.0f s; stopping it", timeout)
                proc = self._proc
                if proc is not None:
                    with self._lock:
                        self._abandon_on_kill = True
                    proc.kill()
                self._finished.wait(10.0)
                break
        with self._lock:
            if self._buf_records:        # never sent (no child)
                self._abandoned_local += self._buf_records
                self._buf.clear()
                self._buf_records = self._buf_bytes = 0
            self._refresh()
        if self._proc is not None:
            try:
                self._proc.wait(30)
            except subprocess.TimeoutExpired:
                self._proc.kill()

    # ------------------------------------------------------------------ threads
    def _send_loop(self) -> None:
        _name_os_thread("gws-send")
        interval = max(0.005, min(0.05, self.flush_interval / 4))
        while True:
            self._wake.wait(interval)
            self._wake.clear()
            while True:
                proc = self._proc
                if proc is None and not self._no_child:
                    break                       # a new child is starting: keep the buffer
                batch, control, _ = self._take()
                if proc is None:
                    self._count_unsendable(batch, control)
                    if control is not None and control.kind == "close":
                        return
                    if not batch and control is None:
                        break
                    continue
                try:
                    with self._lock:
                        extra_drops = self._dropped_local - self._drops_forwarded
                        self._drops_forwarded += extra_drops
                        extra_lost = self._dead_lost - self._lost_forwarded
                        self._lost_forwarded += extra_lost
                        self._sent_gen += len(batch)
                    if extra_drops or extra_lost:
                        write_frame(proc.stdin, ("losses", extra_drops, extra_lost, self._dead_why))
                    if batch:
                        write_frame(proc.stdin, ("records", [pack(r) for r in batch]))
                    if control is not None:
                        write_frame(proc.stdin, (control.kind, control.arg))
                        if control.kind == "close":
                            proc.stdin.close()
                            return
                except (OSError, ValueError):
                    # the child is gone: the reader thread counts what it had; this batch never got there
                    with self._lock:
                        self._sent_gen -= len(batch)
                        self._dead_lost += len(batch)
                        self._drops_forwarded -= extra_drops
                        self._lost_forwarded -= extra_lost
                        self._refresh()
                    if control is not None:
                        self._buf.appendleft(control)
                    # the reader thread sees the end of file once it has read the child's last
                    # figures, counts the loss and starts a new child: wait for that
                    deadline = time.monotonic() + 30.0
                    while self._proc is proc and time.monotonic() < deadline:
                        time.sleep(0.05)
                    continue
                if not batch and control is None:
                    break

    def _take(self) -> tuple[list, _Control | None, int]:
        """Records buffered up to the next control item (or SEND_MAX_RECORDS), and that item."""
        batch: list = []
        freed = 0
        control = None
        buf = self._buf
        while buf and len(batch) < self.SEND_MAX_RECORDS:
            item = buf.popleft()
            if type(item) is _Control:
                control = item
                break
            batch.append(item)
            freed += _record_bytes(item)
        if batch:
            with self._lock:
                self._buf_records -= len(batch)
                self._buf_bytes = max(0, self._buf_bytes - freed)
        return batch, control, freed

    def _count_unsendable(self, batch: list, control: _Control | None) -> None:
        with self._lock:
            if batch:    # accepted while a child was there; none is now
                self._dead_lost += len(batch)
            self._refresh()
        if control is not None:
            if control.kind == "flush":
                ev = self._waiters.pop(control.arg, None)
                if ev is not None:
                    ev.set()
            elif control.kind == "close":
                self._finished.set()

    def _read_child(self, proc: subprocess.Popen) -> None:
        _name_os_thread("gws-read")
        while True:
            try:
                msg = read_frame(proc.stdout)
            except (OSError, pickle.UnpicklingError, EOFError, ValueError):
                msg = None
            if msg is None:
                break
            self._last_heard = time.monotonic()
            kind = msg[0]
            if kind == "stats":
                self._take_report(msg[1], proc)
            elif kind == "progress":
                self._progress_pending = msg[1]
            elif kind == "flushed":
                self._take_report(msg[2], proc)
                ev = self._waiters.pop(msg[1], None)
                if ev is not None:
                    ev.set()
            elif kind == "closed":
                self._take_report(msg[1], proc)
                proc.wait()
                self._finished.set()
                return
        self._child_gone(proc)

    def _take_report(self, d: dict, proc: subprocess.Popen) -> None:
        with self._lock:
            if proc is not self._proc:
                return                   # a child already counted as gone
            self._cur = _Totals.from_child(d)
            self.stats.child = {k: v for k, v in d.items() if k not in ("forwarded_dropped", "forwarded_lost")}
            self._refresh()
        if self._on_flush is not None:
            try:
                self._on_flush(self.stats)
            except Exception:  # noqa: BLE001
                pass

    def _child_gone(self, proc: subprocess.Popen) -> None:
        """The child ended without its final figures: count its unconfirmed records, maybe restart."""
        with self._lock:
            if self._proc is not proc:
                return
            self._proc = None
        try:
            code = proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        why = f"signal {-code}" if code is not None and code < 0 else f"exit status {code}"
        with self._lock:
            unconfirmed = max(0, self._sent_gen - self._cur.settled)
            if self._abandon_on_kill:
                self._abandoned_local += unconfirmed
            else:
                self._dead_lost += unconfirmed
            self._base = self._base + self._cur
            self._cur = _Totals()
            self._sent_gen = 0
            self._dead_why = f"the writer process died ({why}); {unconfirmed} record(s) sent to it not written"
            self.stats.last_error = self._dead_why
            self._refresh()
            restart = not self._closed and self.stats.restarts < self.MAX_RESTARTS
        log.error("gws capture: %s", self._dead_why)
        for ev in list(self._waiters.values()):
            ev.set()
        self._waiters.clear()
        if restart:
            try:
                self._spawn()
                with self._lock:
                    self.stats.restarts += 1
                log.warning("gws capture: writer process restarted (pid %s)", self.pid)
                self._wake.set()
                return
            except Exception as exc:  # noqa: BLE001
                log.error("gws capture: the writer process could not be restarted: %s", exc)
                with self._lock:
                    self.stats.restarts += 1
        with self._lock:
            self._no_child = True
        self._wake.set()
        if self._closed:
            self._finished.set()

    def _refresh(self) -> None:
        """stats = children's figures + this side's (under self._lock)."""
        t = self._base + self._cur
        s = self.stats
        s.dropped = self._dropped_local + t.dropped
        s.lost = self._dead_lost + t.lost
        s.abandoned = self._abandoned_local + t.abandoned
        s.committed = t.committed
        s.bad_records = t.bad_records
        s.flushes = t.flushes
        s.snapshots = t.snapshots
        s.written = {k: self._base.written.get(k, 0) + self._cur.written.get(k, 0) for k in schema.TABLES}
        s.lag_ms, s.max_lag_ms, s.agents = self._cur.lag_ms, max(s.max_lag_ms, self._cur.max_lag_ms), t.agents
        s.queued = self._buf_records + self._cur.queued
        s.pending = max(0, s.submitted - t.committed - t.lost - t.dropped - self._dead_lost - s.abandoned)
        if self._cur.last_error:
            s.last_error = self._cur.last_error


@dataclasses.dataclass
class _Totals:
    """The figures one child reported (its own counts, not the losses it was told about)."""

    dropped: int = 0
    lost: int = 0
    abandoned: int = 0
    committed: int = 0
    bad_records: int = 0
    flushes: int = 0
    snapshots: int = 0
    agents: int = 0
    queued: int = 0
    lag_ms: float = 0.0
    max_lag_ms: float = 0.0
    last_error: str | None = None
    written: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def settled(self) -> int:
        """Records of this child whose fate is known (committed, lost or refused by it)."""
        return self.committed + self.lost + self.dropped

    @classmethod
    def from_child(cls, d: dict) -> _Totals:
        return cls(dropped=d.get("dropped", 0), lost=d.get("lost", 0), abandoned=d.get("abandoned", 0),
                   committed=d.get("committed", 0), bad_records=d.get("bad_records", 0),
                   flushes=d.get("flushes", 0), snapshots=d.get("snapshots", 0), agents=d.get("agents", 0),
                   queued=d.get("queued", 0), lag_ms=d.get("lag_ms", 0.0), max_lag_ms=d.get("max_lag_ms", 0.0),
                   last_error=d.get("last_error"), written=dict(d.get("written", {})))

    def __add__(self, o: _Totals) -> _Totals:
        w = dict(self.written)
        for k, v in o.written.items():
            w[k] = w.get(k, 0) + v
        return _Totals(self.dropped + o.dropped, self.lost + o.lost, self.abandoned + o.abandoned,
                       self.committed + o.committed, self.bad_records + o.bad_records,
                       self.flushes + o.flushes, self.snapshots + o.snapshots, max(self.agents, o.agents),
                       o.queued, o.lag_ms, max(self.max_lag_ms, o.max_lag_ms), o.last_error or self.last_error, w)


def _name_os_thread(name: str) -> None:
    """The thread's OS-level name (top -H, the benchmarks' CPU by thread); Linux only, best effort."""
    try:
        ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)     # PR_SET_NAME
    except Exception:  # noqa: BLE001
        pass


def _record_bytes(rec: Any) -> int:
    t = type(rec)
    if t is HttpRecord:
        return len(rec.request_body or b"") + len(rec.response_body or b"")
    if t is WsFrameRecord:
        return len(rec.content or b"")
    return 0
