"""Import HAR and mitmproxy flow files into a capture (same schema as live recording).

An import is all or nothing: it writes into a temporary copy beside the capture (a copy
of it when appending) that replaces the capture only once everything is written, so a
failure leaves the target as it was. It is idempotent: the SHA-256 of every imported
file is kept in ``meta`` (key ``imported:<sha256>``) and the same file is refused a
second time unless ``append`` says to import it again. Entries that cannot be imported
(NaN or out-of-range timings, a bad WebSocket timestamp) are skipped one by one, not
with their batch, and counted in :class:`ImportResult`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import duckdb
from mitmproxy import io as mio

from gwsreplay.capture import har
from gwsreplay.capture.flows import flow_records
from gwsreplay.capture.redact import Redactor
from gwsreplay.capture.writer import CaptureWriter
from gwsreplay.core.errors import UserError

BATCH = 5000


class ImportRefused(UserError):
    """The import was not done (already imported, or it failed and the capture is untouched)."""


@dataclass
class ImportResult:
    written: dict[str, int]
    skipped: list[har.SkippedEntry] = field(default_factory=list)
    bad_records: int = 0

    def __getitem__(self, table: str) -> int:      # result["exchanges"], as the old dict result
        return self.written[table]


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def already_imported(db: Path, digest: str) -> str | None:
    """When ``db`` already holds the file with this digest: when (and as what) it was imported."""
    if not db.exists():
        return None
    con = duckdb.connect(str(db), read_only=True)
    try:
        row = con.execute("SELECT value FROM meta WHERE key = ?", [f"imported:{digest}"]).fetchall()
    except duckdb.Error:
        return None
    finally:
        con.close()
    return row[0][0] if row else None


def _write(records: Iterable[Any], src: Path, db: str | Path, meta: dict[str, str], redactor: Redactor | None,
           max_body: int | None, *, append: bool = False,
           progress: Callable[[int], None] | None = None) -> ImportResult:
    db = Path(db)
    digest = file_sha256(src)
    before = already_imported(db, digest)
    if before is not None and not append:
        raise ImportRefused(f"{src.name} is already in {db} (imported {before}); give --append to import it again")
    db.parent.mkdir(parents=True, exist_ok=True)
    tmp = db.with_name(f".{db.name}.import-{os.getpid()}.duckdb")
    _remove(tmp)
    ok = False
    try:
        if db.exists():                     # appending: work on a copy, the capture stays as it is
            shutil.copyfile(db, tmp)
            if Path(str(db) + ".wal").exists():
                shutil.copyfile(str(db) + ".wal", str(tmp) + ".wal")
        result = _write_into(records, tmp, meta, redactor, max_body, progress)
        con = duckdb.connect(str(tmp))
        try:
            con.execute("DELETE FROM meta WHERE key = ?", [f"imported:{digest}"])
            con.execute("INSERT INTO meta VALUES (?, ?)", [
                f"imported:{digest}", f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} from {src.name}"])
            con.execute("CHECKPOINT")
        finally:
            con.close()
        _remove(Path(str(db) + ".wal"))
        os.replace(tmp, db)
        ok = True
        return result
    finally:
        if not ok:
            _remove(tmp)


def _write_into(records: Iterable[Any], db: Path, meta: dict[str, str], redactor: Redactor | None,
                max_body: int | None, progress: Callable[[int], None] | None) -> ImportResult:
    kw = {"max_body": max_body} if max_body else {}
    w = CaptureWriter(db, redactor=redactor or Redactor(), meta=meta, **kw)
    skipped: list[har.SkippedEntry] = []
    entries = 0
    try:
        batch: list[Any] = []
        for rec in records:
            if isinstance(rec, har.SkippedEntry):
                skipped.append(rec)
                continue
            if isinstance(rec, har.EntryDone):
                entries += 1
                if progress is not None:
                    progress(entries)
                continue
            batch.append(rec)
            if len(batch) >= BATCH:
                _commit(w, batch)
                batch = []
        if batch:
            _commit(w, batch)
    finally:
        w.close()
    if w.stats.unwritten:
        raise ImportRefused(f"{w.stats.unwritten} record(s) could not be written ({w.stats.last_error}); "
                            f"nothing imported")
    return ImportResult(dict(w.stats.written), skipped, w.stats.bad_records)


def _commit(w: CaptureWriter, batch: list[Any]) -> None:
    if not w.write_records(batch):
        raise ImportRefused(f"writing failed ({w.stats.last_error}); nothing imported, the capture is untouched")


def _remove(p: Path) -> None:
    for f in (p, Path(str(p) + ".wal")):
        try:
            f.unlink()
        except FileNotFoundError:
            pass


def har_entry_count(path: str | Path) -> tuple[dict, int]:
    data = har.load(path)
    return data, len((data.get("log") or {}).get("entries") or [])


def import_har(path: str | Path, db: str | Path, *, redactor: Redactor | None = None, max_body: int | None = None,
               append: bool = False, progress: Callable[[int], None] | None = None,
               data: dict | None = None) -> ImportResult:
    data = har.load(path) if data is None else data
    return _write(har.har_records(data, progress_marks=True), Path(path), db,
                  {"source": "har", "imported_from": Path(path).name}, redactor, max_body,
                  append=append, progress=progress)


def import_mitm(path: str | Path, db: str | Path, *, redactor: Redactor | None = None, max_body: int | None = None,
                append: bool = False, progress: Callable[[int], None] | None = None) -> ImportResult:
    def records():
        with open(path, "rb") as f:
            for flow in mio.FlowReader(f).stream():
                yield from flow_records(flow, source="mitm")
                yield har.EntryDone()

    return _write(records(), Path(path), db, {"source": "mitm", "imported_from": Path(path).name}, redactor,
                  max_body, append=append, progress=progress)


def detect_kind(path: str | Path) -> str:
    p = Path(path)
    if p.suffix.lower() in (".har", ".json"):
        return "har"
    with open(p, "rb") as f:
        head = f.read(64).lstrip()
    return "har" if head[:1] == b"{" else "mitm"
