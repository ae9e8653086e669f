"""The one check every command runs before it opens a capture file.

A user's mistakes (a text file given as ``--db``, a read-only folder, a second recorder
on the same file, a capture from a newer gwsreplay, a DuckDB file that is something
else, a file cut in half) each get one line naming the problem and what to do, as a
:class:`CaptureProblem` (a UserError), before anything is created or changed.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import duckdb

from gwsreplay.capture.schema import SCHEMA_VERSION
from gwsreplay.core.errors import UserError

DUCKDB_MAGIC = b"DUCK"      # bytes 8..12 of every DuckDB database file


class CaptureProblem(UserError):
    """The file cannot be used as a capture; the message says why and what to do."""


def check_capture(path: str | Path, mode: str = "read") -> None:
    """Raise CaptureProblem unless ``path`` can be used as a capture.

    ``mode``: ``read`` (replay, mock, report, export), ``write`` (record, import: the file may
    not exist yet, its folder must be writable), ``snapshot`` (read, and a capture held by a
    running recorder is fine: the recorder makes the copy)."""
    p = Path(path)
    if not p.exists():
        if mode == "write":
            _check_folder(p)
            return
        raise CaptureProblem(f"no such capture: {p}")
    if p.is_dir():
        raise CaptureProblem(f"{p} is a folder; give a capture file, e.g. {p / 'NAME.duckdb'}")
    try:
        with open(p, "rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise CaptureProblem(f"cannot read {p}: {exc.strerror or exc}") from None
    if len(head) == 0 and mode == "write":
        raise CaptureProblem(f"{p} is an empty file, not a capture; remove it or give another --db")
    if head[8:12] != DUCKDB_MAGIC:
        what = "a new file name, e.g. " + str(p.with_suffix(".duckdb")) if p.suffix != ".duckdb" else "another file"
        raise CaptureProblem(f"{p} is not a DuckDB capture file (not written by gwsreplay); "
                             f"{'give ' + what if mode == 'write' else 'check the path'}")
    if mode == "write":
        _check_folder(p)
    try:
        con = duckdb.connect(str(p), read_only=True)
    except duckdb.Error as exc:
        text = str(exc)
        if "lock" in text.lower():
            if mode == "snapshot":
                return
            pid = re.search(r"PID (\d+)", text)
            who = f"process {pid.group(1)}" if pid else "another process"
            if mode == "write":
                raise CaptureProblem(f"{p} is being written by {who} (a second recorder?); "
                                     f"record into another file or stop that one first") from None
            raise CaptureProblem(f"{p} is being recorded by {who}; run `gwsreplay snapshot --db {p}` "
                                 f"and use the snapshot") from None
        raise CaptureProblem(f"{p} is damaged and cannot be opened ({_first_line(text)}); "
                             f"a snapshot or the original recording may still be intact") from None
    try:
        _check_schema(con, p, mode)
    finally:
        con.close()


def _check_schema(con: duckdb.DuckDBPyConnection, p: Path, mode: str) -> None:
    try:
        tables = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}
        if "meta" not in tables:
            if not tables and mode == "write":
                return          # an empty DuckDB file: the writer makes the schema
            raise CaptureProblem(f"{p} is a DuckDB file but not a gwsreplay capture (no meta table"
                                 f"{'; tables: ' + ', '.join(sorted(tables)[:5]) if tables else ''})")
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
    except duckdb.Error as exc:
        raise CaptureProblem(f"{p} is damaged and cannot be read ({_first_line(str(exc))})") from None
    if not row:
        raise CaptureProblem(f"{p} has no schema_version in its meta table: not a gwsreplay capture")
    try:
        version = int(row[0][0])
    except (TypeError, ValueError):
        raise CaptureProblem(f"{p} has an unknown schema_version {row[0][0]!r}; "
                             f"this gwsreplay reads version {SCHEMA_VERSION}") from None
    if version > SCHEMA_VERSION:
        raise CaptureProblem(f"{p} was written by a newer gwsreplay (schema_version {version}; this one "
                             f"reads up to {SCHEMA_VERSION}): upgrade gwsreplay")
    if version < 1:
        raise CaptureProblem(f"{p} has an unknown schema_version {version}")


def _check_folder(p: Path) -> None:
    """The capture's folder (or its first existing ancestor) must accept new files."""
    folder = p.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise CaptureProblem(f"cannot write in {folder}: {exc.strerror or exc}; give --db in a writable folder"
                             ) from None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:200] if text.strip() else "unknown error"
