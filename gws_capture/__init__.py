"""The capture file: schema, classification, redaction, writer, import/export.

Public API (see docs/schema.md):

* ``CaptureWriter(db, redactor=..., max_body=..., flush_interval=...)`` - ``start()``,
  ``submit(record)`` (never blocks), ``flush()``, ``close()``; ``write_records(list)``
  synchronously; ``stats``.
* records: ``HttpRecord``, ``WsFrameRecord``, ``WsEndRecord``, ``ErrorRecord``
  (``gws_capture.flows`` builds them from mitmproxy flows, ``gws_capture.har`` from HARs).
* ``Redactor(enabled=True, headers=(), json_paths=())``.
* ``classify_http(method, path, request_json, response_json)``, ``classify_bayeux(message)``.
* ``gws_capture.snapshot.snapshot(db, out=None)``: a consistent copy, also of a capture being recorded.
* ``import_har(path, db)``, ``import_mitm(path, db)``; ``export_parquet(db, dir)``.
* ``SCHEMA_VERSION``, ``create_schema(con)``.
"""

from .classify import classify_bayeux, classify_http
from .records import ErrorRecord, HttpRecord, WsEndRecord, WsFrameRecord
from .redact import Redactor
from .schema import SCHEMA_VERSION, create_schema
from .writer import CaptureWriter


def import_har(path, db, **kw):
    from .importer import import_har as _import_har

    return _import_har(path, db, **kw)


def import_mitm(path, db, **kw):
    from .importer import import_mitm as _import_mitm

    return _import_mitm(path, db, **kw)


def export_parquet(db, out_dir):
    from .export_cli import export_parquet as _export

    return _export(db, out_dir)


__all__ = [
    "CaptureWriter", "HttpRecord", "WsFrameRecord", "WsEndRecord", "ErrorRecord", "Redactor",
    "classify_http", "classify_bayeux", "import_har", "import_mitm", "export_parquet",
    "SCHEMA_VERSION", "create_schema",
]
