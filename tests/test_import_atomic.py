"""Import: all or nothing, once per file unless --append, and entries that cannot be imported are
skipped one by one, counted and reported (exit code 3)."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import duckdb
import pytest

from conftest import gwsreplay_command
from gwsreplay.capture import importer
from gwsreplay.capture.importer import ImportRefused, import_har
from gwsreplay.capture.writer import CaptureWriter

T = "2024-05-01T10:00:{:02d}.000Z"


def entry(i: int, **extra) -> dict:
    e = {"startedDateTime": T.format(i % 60), "time": 10,
         "request": {"method": "GET", "url": f"http://gws:8090/api/v2/me?i={i}", "headers": []},
         "response": {"status": 200, "headers": [{"name": "Content-Type", "value": "application/json"}],
                      "content": {"mimeType": "application/json", "text": '{"statusCode":0}'}},
         "timings": {"send": 1, "wait": 5}}
    e.update(extra)
    return e


def write_har(path: Path, entries: list[dict]) -> Path:
    path.write_text(json.dumps({"log": {"version": "1.2", "entries": entries}}))   # NaN written as NaN
    return path


def count(db: Path, sql: str = "SELECT count(*) FROM exchanges") -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(gwsreplay_command() + list(args), capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("appending", [False, True])
def test_a_failed_import_leaves_the_target_untouched(tmp_path, monkeypatch, appending):
    db = tmp_path / "cap.duckdb"
    if appending:
        import_har(write_har(tmp_path / "first.har", [entry(i) for i in range(5)]), db)
    before = db.read_bytes() if appending else None
    monkeypatch.setattr(importer, "BATCH", 10)
    calls = []
    real = CaptureWriter.write_records

    def fail_on_third(self, records):
        calls.append(len(records))
        if len([n for n in calls if n]) == 3:
            self.stats.last_error = "IOException: No space left on device"
            self.stats.lost += len(records)
            return False
        return real(self, records)

    monkeypatch.setattr(CaptureWriter, "write_records", fail_on_third)
    with pytest.raises(ImportRefused, match="nothing imported"):
        import_har(write_har(tmp_path / "big.har", [entry(i) for i in range(60)]), db)
    assert [n for n in calls if n] == [10, 10, 10]     # two batches were written... into the temporary copy
    if appending:
        assert db.read_bytes() == before and count(db) == 5
    else:
        assert not db.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["big.har"] + (["first.har", "cap.duckdb"] if appending else []))


def test_a_broken_flow_file_imports_nothing(tmp_path):
    db = tmp_path / "cap.duckdb"
    import_har(write_har(tmp_path / "first.har", [entry(i) for i in range(3)]), db)
    before = db.read_bytes()
    bad = tmp_path / "broken.mitm"
    bad.write_bytes(b"\x00\x01 this is not a flow file" * 100)
    result = run("import", str(bad), "--db", str(db), "--format", "mitm")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "nothing imported" in result.stderr
    assert db.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if ".import-" in p.name]


def test_the_same_file_twice_is_refused_unless_append(tmp_path):
    db = tmp_path / "cap.duckdb"
    har = write_har(tmp_path / "a.har", [entry(i) for i in range(4)])
    first = run("import", str(har), "--db", str(db))
    assert first.returncode == 0 and "4 exchanges" in first.stdout, first.stderr
    again = run("import", str(har), "--db", str(db))
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert "a.har is already in" in again.stderr and "--append" in again.stderr
    assert count(db) == 4
    other = write_har(tmp_path / "b.har", [entry(i) for i in range(2)])
    assert run("import", str(other), "--db", str(db)).returncode == 0      # another file appends
    assert count(db) == 6
    forced = run("import", str(har), "--db", str(db), "--append")
    assert forced.returncode == 0 and count(db) == 10
    assert count(db, "SELECT count(*) FROM meta WHERE key LIKE 'imported:%'") == 2


def test_bad_entries_are_skipped_one_by_one_counted_and_reported(tmp_path):
    entries = [entry(i) for i in range(6)]
    entries[1]["time"] = float("nan")
    entries[2]["timings"]["wait"] = float("inf")
    ws = entry(3, _resourceType="websocket")
    ws["response"]["status"] = 101
    ws["_webSocketMessages"] = [{"type": "send", "time": 1714557602.1, "opcode": 1, "data": "[]"},
                                {"type": "receive", "time": 1e300, "opcode": 1, "data": "[]"}]
    entries[3] = ws
    good_ws = copy.deepcopy(ws)
    good_ws["_webSocketMessages"][1]["time"] = 1714557602.2
    entries[4] = good_ws
    db = tmp_path / "cap.duckdb"
    result = run("import", str(write_har(tmp_path / "bad.har", entries)), "--db", str(db))
    assert result.returncode == 3, result.stderr
    assert "3 exchanges" in result.stdout and "3 entries skipped" in result.stdout
    assert "skipped entry 1: time is nan" in result.stderr
    assert "skipped entry 2: timings.wait is inf" in result.stderr
    assert "skipped entry 3: WebSocket message 1 time out of range" in result.stderr
    assert "Traceback" not in result.stderr
    assert count(db) == 3 and count(db, "SELECT count(*) FROM websocket_frames") == 2
