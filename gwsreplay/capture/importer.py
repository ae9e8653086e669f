"""Import HAR and mitmproxy flow files into a capture (same schema as live recording)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from mitmproxy import io as mio

from gwsreplay.capture import har
from gwsreplay.capture.flows import flow_records
from gwsreplay.capture.redact import Redactor
from gwsreplay.capture.writer import CaptureWriter

BATCH = 5000


def _write(records: Iterable[Any], db: str | Path, meta: dict[str, str], redactor: Redactor | None,
           max_body: int | None) -> dict[str, int]:
    kw = {"max_body": max_body} if max_body else {}
    w = CaptureWriter(db, redactor=redactor or Redactor(), meta=meta, **kw)
    try:
        batch: list[Any] = []
        for rec in records:
            batch.append(rec)
            if len(batch) >= BATCH:
                w.write_records(batch)
                batch = []
        if batch:
            w.write_records(batch)
    finally:
        w.close()
    return dict(w.stats.written)


def import_har(path: str | Path, db: str | Path, *, redactor: Redactor | None = None,
               max_body: int | None = None) -> dict[str, int]:
    data = har.load(path)
    return _write(har.har_records(data), db, {"source": "har", "imported_from": Path(path).name},
                  redactor, max_body)


def import_mitm(path: str | Path, db: str | Path, *, redactor: Redactor | None = None,
                max_body: int | None = None) -> dict[str, int]:
    def records():
        with open(path, "rb") as f:
            for flow in mio.FlowReader(f).stream():
                yield from flow_records(flow, source="mitm")

    return _write(records(), db, {"source": "mitm", "imported_from": Path(path).name}, redactor, max_body)


def detect_kind(path: str | Path) -> str:
    p = Path(path)
    if p.suffix.lower() in (".har", ".json"):
        return "har"
    with open(p, "rb") as f:
        head = f.read(64).lstrip()
    return "har" if head[:1] == b"{" else "mitm"
