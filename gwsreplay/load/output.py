"""The load run's replay output file, merged from every worker.

Each Locust worker keeps its live traffic as the capture proxy's raw records
(in memory: no DuckDB work while greenlets are timing requests) and writes them,
when the master asks at the end, to its own part file beside the output file
with the proxy's writer. The master then merges every part under one run id
(gwsreplay.capture.runfile), adds the run row and every worker's divergences
(sent over Locust's messages, so they arrive from other machines too). A part
written on another machine stays there, named in the log.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from gwsreplay.capture.writer import CaptureWriter
from gwsreplay.capture.runfile import add_run, merge_tables

log = logging.getLogger(__name__)
CHUNK = 5000


class PartWriter:
    """One worker's traffic: `submit` during the run, `write` once at the end."""

    def __init__(self, out: Path, worker: str, meta: dict[str, str]):
        self.path = out.with_name(f".{out.name}.{worker}.part")
        self.meta = meta
        self.records: list[Any] = []
        self.closed = False

    def submit(self, record: Any) -> None:
        if not self.closed:
            self.records.append(record)

    def write(self) -> Path:
        self.closed = True
        for stale in (self.path, Path(str(self.path) + ".wal")):
            stale.unlink(missing_ok=True)
        writer = CaptureWriter(self.path, meta={"source": "replay", **self.meta})
        try:
            for at in range(0, len(self.records), CHUNK):
                writer.write_records(self.records[at:at + CHUNK])
        finally:
            writer.close()
        self.records = []
        return self.path


@dataclass
class Part:
    """What a worker reports at the end (a Locust message: plain data)."""

    worker: str
    path: str | None
    records: int
    divergences: list[dict] = field(default_factory=list)

    def as_message(self) -> dict:
        return {"worker": self.worker, "path": self.path, "records": self.records, "divergences": self.divergences}

    @classmethod
    def from_message(cls, data: dict) -> "Part":
        return cls(data["worker"], data.get("path"), int(data.get("records") or 0), list(data.get("divergences") or []))


def merge_parts(out: Path, run_id: str, run: dict, parts: list[Part]) -> list[str]:
    """Append every worker's part and the run's divergences to `out`; the parts not found (other machines)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    missing = []
    divergences = [d for p in parts for d in p.divergences]
    con = duckdb.connect(str(out))
    try:
        for part in parts:
            if part.path is None:
                continue
            path = Path(part.path)
            if not path.is_file():
                missing.append(part.path)
                continue
            merge_tables(con, path, run_id)
        add_run(con, run_id, {**run, "ended_at": run.get("ended_at") or time.time()}, divergences)
    finally:
        con.close()
    for part in parts:
        if part.path and part.path not in missing:
            for leftover in (Path(part.path), Path(part.path + ".wal")):
                leftover.unlink(missing_ok=True)
    for path in missing:
        log.warning("a worker's traffic stays in %s on its machine (merge it with the others by hand)", path)
    return missing
