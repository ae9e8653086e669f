"""Consistent copies of a capture, also while a recorder is writing it.

DuckDB admits one process per database file; while ``gwsreplay record`` (or mitmdump
with the capture addon) writes a capture, no other process can open it, even read-only.
:func:`snapshot` therefore:

1. tries to open the capture itself: if nobody holds it, copies it directly;
2. otherwise asks the writer: it creates ``<db>.snapshot-request`` (JSON ``{"out", "nonce"}``),
   the writer thread copies the database between two batches
   (``ATTACH out; COPY FROM DATABASE``) and answers in ``<db>.snapshot-done``.

The copy is a normal capture file (same schema, views included) that notebooks open
read-only while recording goes on. Its ``operations`` table is computed on the copy
(:func:`gwsreplay.capture.opindex.build`, in this process, not in the recorder's).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path

import duckdb

from gwsreplay.capture import opindex
from gwsreplay.capture.writer import is_snapshot_of, snapshot_paths
from gwsreplay.core.sqltext import sql_literal


class SnapshotError(RuntimeError):
    pass


def default_out(db: str | Path) -> Path:
    p = Path(db)
    return p.with_name(p.stem + ".snapshot" + (p.suffix or ".duckdb"))


def _is_lock_error(exc: Exception) -> bool:
    return "lock" in str(exc).lower()


def snapshot(db: str | Path, out: str | Path | None = None, *, timeout: float = 30.0) -> Path:
    db = Path(db)
    out = Path(out) if out else default_out(db)
    if not db.exists():
        raise SnapshotError(f"no such capture: {db}")
    if out.resolve() == db.resolve():
        raise SnapshotError("the snapshot must be a different file")
    if out.is_symlink() or (out.exists() and not is_snapshot_of(out, db)):
        raise SnapshotError(f"{out} exists and is not a snapshot of {db.name}; not replaced (give another --out)")
    try:
        return _copy_offline(db, out)
    except duckdb.Error as exc:
        if not _is_lock_error(exc):
            raise
    _ask_writer(db, out, timeout)
    opindex.build_file(out)
    return out


def _copy_offline(db: Path, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    for p in (tmp, Path(str(tmp) + ".wal")):
        if p.exists():
            p.unlink()
    con = duckdb.connect(str(tmp))
    ok = False
    try:
        con.execute(f"ATTACH {sql_literal(db)} AS _src (READ_ONLY)")
        dst = con.execute("SELECT current_database()").fetchall()[0][0]
        con.execute(f'COPY FROM DATABASE _src TO "{dst}"')
        con.execute("DETACH _src")
        con.execute("DELETE FROM meta WHERE key = 'snapshot_of'")
        con.execute("INSERT INTO meta VALUES ('snapshot_of', ?)", [str(db.resolve())])
        opindex.build(con)
        con.execute("CHECKPOINT")
        ok = True
    finally:
        con.close()
        if not ok:
            for p in (tmp, Path(str(tmp) + ".wal")):
                if p.exists():
                    p.unlink()
    os.replace(tmp, out)
    return out


def _ask_writer(db: Path, out: Path, timeout: float) -> Path:
    """The writer only writes beside the capture: elsewhere, it writes a temporary snapshot
    there, which this process (with the user's rights) then moves to ``out``."""
    req, done = snapshot_paths(db)
    nonce = uuid.uuid4().hex
    deadline = time.monotonic() + timeout
    beside = out.parent.resolve() == db.parent.resolve() and out.name.endswith(".duckdb")
    asked = out if beside else db.with_name(f"{db.stem}.snapshot-{nonce[:12]}.duckdb")
    payload = json.dumps({"out": str(asked.resolve()), "nonce": nonce}).encode()
    while True:
        try:
            fd = os.open(req, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            if time.monotonic() > deadline:
                raise SnapshotError(f"another snapshot request is pending ({req})") from None
            time.sleep(0.05)
            continue
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        break
    while time.monotonic() < deadline:
        try:
            answer = json.loads(done.read_text())
        except (OSError, ValueError):
            answer = None
        if answer and answer.get("nonce") == nonce:
            try:
                done.unlink()
            except OSError:
                pass
            if answer.get("error"):
                raise SnapshotError(f"the writer could not snapshot: {answer['error']}")
            if asked != out:
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(asked), str(out))
            return out
        time.sleep(0.05)
    try:
        req.unlink()
    except OSError:
        pass
    raise SnapshotError(f"{db} is locked by another process that did not answer the snapshot request "
                        f"within {timeout:.0f} s (is it a gwsreplay recorder?)")
