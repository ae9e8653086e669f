"""The writer process's side of gwsreplay.capture.writer_process: ``python -m gwsreplay.capture.writer_child``.

Reads framed pickles from stdin (``init`` with the CaptureWriter's settings, then
``records``, ``losses``, ``flush``, ``close``), runs a :class:`CaptureWriter` on them and
writes its figures back on a descriptor of its own (``ready``, ``stats`` after every
commit, ``flushed``, ``progress``, ``closed``). End of file on stdin without ``close``
means the proxy died: the records received are written, then the process ends.
The wire format (records as tuples of their fields, length-prefixed pickles) is here
too, shared by both sides.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import signal
import struct
import sys
import threading
from operator import attrgetter
from typing import Any, BinaryIO

from gwsreplay.capture.records import (
    ErrorRecord,
    HttpRecord,
    LateErrorRecord,
    WsEndRecord,
    WsFrameRecord,
)
from gwsreplay.capture.writer import CaptureWriter

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<I")
_RECORD_TYPES: tuple[type, ...] = (HttpRecord, WsFrameRecord, WsEndRecord, ErrorRecord, LateErrorRecord)
_GETTERS = {cls: (i, attrgetter(*(f.name for f in dataclasses.fields(cls)))) for i, cls in enumerate(_RECORD_TYPES)}


def pack(record: Any) -> tuple:
    """A record as ``(type index, field values...)``: pickles far faster than the object."""
    entry = _GETTERS.get(type(record))
    if entry is None:
        return (-1, record)
    i, getter = entry
    return (i, *getter(record))


def unpack(values: tuple) -> Any:
    if values[0] < 0:
        return values[1]
    return _RECORD_TYPES[values[0]](*values[1:])


def write_frame(out: BinaryIO, msg: Any) -> None:
    data = pickle.dumps(msg, protocol=5)
    out.write(_HEADER.pack(len(data)))
    out.write(data)
    out.flush()


def read_frame(inp: BinaryIO) -> Any:
    """The next message, or None at end of file (the other side is gone)."""
    head = inp.read(_HEADER.size)
    if len(head) < _HEADER.size:
        return None
    (n,) = _HEADER.unpack(head)
    data = inp.read(n)
    if len(data) < n:
        return None
    return pickle.loads(data)


class _Child:
    """The child's main thread: records from the pipe into a CaptureWriter, figures back."""

    def __init__(self, inp: BinaryIO, out: BinaryIO) -> None:
        self.inp, self.out = inp, out
        self.out_lock = threading.Lock()
        self.writer: CaptureWriter | None = None
        self.lock_fd: int | None = None

    def send(self, msg: Any) -> None:
        with self.out_lock:
            try:
                write_frame(self.out, msg)
            except (OSError, ValueError):
                pass          # the proxy is gone; the pipe's end-of-file tells the main loop

    def report(self) -> dict:
        w = self.writer
        d = w.stats.as_dict()
        d["committed"] = w.stats.committed
        d["convert_s"] = round(w.stats.convert_s, 4)     # for the benchmarks: where the child's time goes
        d["insert_s"] = round(w.stats.insert_s, 4)
        return d

    def run(self) -> int:
        first = read_frame(self.inp)
        if first is None or first[0] != "init":
            return 2
        cfg = first[1]
        try:
            self.writer = CaptureWriter(
                cfg["db_path"], redactor=cfg["redactor"], max_body=cfg["max_body"],
                flush_interval=cfg["flush_interval"], max_queue=cfg["max_queue"],
                max_queue_bytes=cfg["max_queue_bytes"], meta=cfg["meta"],
                on_flush=lambda _stats: self.send(("stats", self.report())))
        except Exception as exc:  # noqa: BLE001 - said by the proxy's side
            self.send(("error", f"{type(exc).__name__}: {exc}"))
            return 1
        # Our own descriptor on the file: closing it releases this process's POSIX locks on
        # it, DuckDB's included, at once when the proxy died and nothing is pending.
        self.lock_fd = os.open(cfg["db_path"], os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            self.writer.con.execute("SET enable_progress_bar = false")   # a long statement's bar on stderr
        except Exception:  # noqa: BLE001
            pass
        # No event loop to hand the GIL to in this process: convert without the periodic sleep(0).
        self.writer.YIELD_EVERY = 1 << 30
        w = self.writer.start()
        self.send(("ready", self.report()))
        while True:
            msg = read_frame(self.inp)
            if msg is None:
                return self.orphaned()
            kind = msg[0]
            if kind == "records":
                for values in msg[1]:
                    w.submit(unpack(values))
            elif kind == "losses":
                w.note_losses(dropped=msg[1], lost=msg[2], why=msg[3])
            elif kind == "flush":
                w.flush()
                self.send(("flushed", msg[1], self.report()))
            elif kind == "close":
                w.close(msg[1], progress=lambda pending: self.send(("progress", pending)))
                self.send(("closed", self.report()))
                return 0

    def orphaned(self) -> int:
        """The proxy's end of the pipe closed without a close request: it died. Write what
        arrived; with nothing pending, let go of the file at once."""
        w = self.writer
        if w.stats.pending == 0:
            os.close(self.lock_fd)        # releases DuckDB's lock before the process teardown
            os._exit(0)
        log.warning("gws capture: the proxy is gone; writing the %d record(s) it handed over", w.stats.pending)
        w.close(60.0)
        return 0


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # Ctrl-C reaches the whole group: the proxy closes us
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    # The figures' pipe gets a descriptor of its own and descriptor 1 becomes stderr: nothing
    # else (DuckDB's progress bar on a long statement, a stray print) may write into the frames.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return _Child(sys.stdin.buffer, out).run()


if __name__ == "__main__":
    sys.exit(main())
