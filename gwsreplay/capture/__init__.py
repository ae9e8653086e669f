"""The capture file: schema, classification, redaction, writer, import/export.

Public API (see docs/schema.md):

* ``CaptureWriter(db, redactor=..., max_body=..., flush_interval=...)`` - ``start()``,
  ``submit(record)`` (never blocks), ``flush()``, ``close()``; ``write_records(list)``
  synchronously; ``stats``.
* records: ``HttpRecord``, ``WsFrameRecord``, ``WsEndRecord``, ``ErrorRecord``
  (``gwsreplay.capture.flows`` builds them from mitmproxy flows, ``gwsreplay.capture.har`` from HARs).
* ``Redactor(enabled=True, headers=(), json_paths=())``.
* ``classify_http(method, path, request_json, response_json)``, ``classify_bayeux(message)``.
* ``gwsreplay.capture.snapshot.snapshot(db, out=None)``: a consistent copy, also of a capture being recorded.
* ``import_har(path, db)``, ``import_mitm(path, db)``; ``export_parquet(db, dir)``.
* ``SCHEMA_VERSION``, ``create_schema(con)``.
"""

from gwsreplay.capture.classify import classify_bayeux, classify_http
from gwsreplay.capture.export import export_parquet
from gwsreplay.capture.importer import import_har, import_mitm
from gwsreplay.capture.records import ErrorRecord, HttpRecord, WsEndRecord, WsFrameRecord
from gwsreplay.capture.redact import Redactor
from gwsreplay.capture.schema import SCHEMA_VERSION, create_schema
from gwsreplay.capture.writer import CaptureWriter

__all__ = [
    "CaptureWriter", "HttpRecord", "WsFrameRecord", "WsEndRecord", "ErrorRecord", "Redactor",
    "classify_http", "classify_bayeux", "import_har", "import_mitm", "export_parquet",
    "SCHEMA_VERSION", "create_schema",
]
