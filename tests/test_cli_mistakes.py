"""A user's mistakes with capture files: one line naming the problem, exit 2, no traceback, nothing half-written."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import duckdb
import pytest

from conftest import gwsreplay_command
from gwsreplay.capture.schema import SCHEMA_VERSION
from gwsreplay.capture.writer import CaptureWriter
from test_capture_faults import CALL, poll
from test_capture_proxy import Upstream, free_port, wait_port


def run(*args: str, timeout: float = 60, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(gwsreplay_command() + list(args), capture_output=True, text=True, timeout=timeout,
                          cwd=cwd)


def one_line(result: subprocess.CompletedProcess, command: str, *words: str, code: int = 2) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    text = result.stderr + result.stdout
    assert "Traceback" not in text and "please report" not in text, text
    lines = [ln for ln in result.stderr.strip().splitlines() if ln.startswith(f"gwsreplay {command}: error:")]
    assert len(lines) == 1, result.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def make_capture(path: Path, n: int = 50) -> Path:
    w = CaptureWriter(path)
    w.write_records([poll(json.dumps([CALL] * 20).encode(), fid=str(i)) for i in range(n)])
    w.close()
    return path


def files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


@pytest.fixture
def upstream():
    with Upstream() as u:
        yield u


def record_args(up_port: int, db: Path, port: int | None = None) -> list[str]:
    return ["record", "--upstream", f"http://127.0.0.1:{up_port}", "--listen-port", str(port or free_port()),
            "--db", str(db), "--quiet"]


def test_record_into_a_text_file(tmp_path, upstream):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    result = run(*record_args(upstream.port, notes))
    one_line(result, "record", "notes.txt is not a DuckDB capture file", "notes.duckdb")
    assert notes.read_text() == "my notes\n" and files(tmp_path) == {"notes.txt"}


def test_record_into_a_read_only_folder(tmp_path, upstream):
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() != 0:
        os.chmod(ro, 0o555)
    else:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)], capture_output=True,
                           text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a read-only tmpfs here: {r.stderr.strip()}")
    try:
        result = run(*record_args(upstream.port, ro / "x.duckdb"))
        one_line(result, "record", f"cannot write in {ro}")
        assert files(ro) == set()
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", "-l", str(ro)], capture_output=True)
        else:
            os.chmod(ro, 0o755)


def test_a_second_recorder_on_the_same_file(tmp_path, upstream):
    db = tmp_path / "shared.duckdb"
    port = free_port()
    first = subprocess.Popen(gwsreplay_command() + record_args(upstream.port, db, port),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_port(port)
        result = run(*record_args(upstream.port, db))
        one_line(result, "record", "shared.duckdb is being written by process", "second recorder")
        assert first.poll() is None
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=60)
    assert first.returncode == 0


@pytest.mark.parametrize("command", ["export", "replay", "report", "mock", "snapshot", "record", "import"])
def test_a_capture_of_a_newer_schema_is_refused_by_every_command(tmp_path, command):
    db = make_capture(tmp_path / "future.duckdb", n=2)
    con = duckdb.connect(str(db))
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
    con.close()
    before = db.read_bytes()
    har = tmp_path / "in.har"
    har.write_text(json.dumps({"log": {"entries": []}}))
    args = {"export": ["export", "--db", str(db), "--parquet", str(tmp_path / "pq")],
            "replay": ["replay", "--db", str(db), "--target", "http://127.0.0.1:9", "--dry-run"],
            "report": ["report", "--db", str(db), "--out", str(tmp_path / "r.html")],
            "mock": ["mock", "--db", str(db), "--port", str(free_port())],
            "snapshot": ["snapshot", "--db", str(db)],
            "record": ["record", "--upstream", "http://127.0.0.1:9", "--db", str(db)],
            "import": ["import", str(har), "--db", str(db)]}[command]
    result = run(*args)
    one_line(result, command, "newer gwsreplay", f"schema_version {SCHEMA_VERSION + 1}", "upgrade")
    assert db.read_bytes() == before
    assert files(tmp_path) <= {"future.duckdb", "in.har"}


@pytest.mark.parametrize("command", ["export", "replay", "report"])
def test_a_duckdb_file_that_is_not_a_capture(tmp_path, command):
    db = tmp_path / "other.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE sales AS SELECT 1 AS x")
    con.close()
    args = {"export": ["export", "--db", str(db), "--parquet", str(tmp_path / "pq")],
            "replay": ["replay", "--db", str(db), "--target", "http://127.0.0.1:9", "--dry-run"],
            "report": ["report", "--db", str(db), "--out", str(tmp_path / "r.html")]}[command]
    one_line(run(*args), command, "is a DuckDB file but not a gwsreplay capture", "sales")
    assert files(tmp_path) == {"other.duckdb"}


@pytest.mark.parametrize("command", ["export", "report", "replay"])
def test_a_half_truncated_capture(tmp_path, command):
    db = make_capture(tmp_path / "cut.duckdb", n=300)
    os.truncate(db, db.stat().st_size // 2)
    args = {"export": ["export", "--db", str(db), "--parquet", str(tmp_path / "pq")],
            "replay": ["replay", "--db", str(db), "--target", "http://127.0.0.1:9", "--dry-run"],
            "report": ["report", "--db", str(db), "--out", str(tmp_path / "r.html")]}[command]
    one_line(run(*args), command, "cut.duckdb is damaged")
    assert files(tmp_path) == {"cut.duckdb"}


def test_an_unreachable_upstream_is_said_at_start(tmp_path):
    db = tmp_path / "never.duckdb"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    result = run("record", "--upstream", f"http://127.0.0.1:{dead}", "--listen-port", str(free_port()),
                 "--db", str(db))
    one_line(result, "record", f"upstream http://127.0.0.1:{dead} is not reachable (connection refused)",
             "--no-upstream-check")
    assert files(tmp_path) == set()


def test_ctrl_c_with_desktops_connected_is_quiet(tmp_path, upstream):
    db = tmp_path / "ctrlc.duckdb"
    port = free_port()
    proc = subprocess.Popen(gwsreplay_command() + record_args(upstream.port, db, port),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    socks = []
    try:
        wait_port(port)
        body = json.dumps([{"channel": "/meta/connect", "id": "h", "clientId": "c1"}]).encode()
        for _ in range(5):          # five desktops with a long-poll held
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"POST /api/v2/notifications?hold=1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            socks.append(s)
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        for s in socks:
            s.close()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "CancelledError" not in err, err
    assert "capture closed" in err and "dropped 0, lost 0, not written at close 0" in err
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM exchanges WHERE error = 'capture ended before the response'"
                           ).fetchone()[0] == 5
    finally:
        con.close()


# ----------------------------------------------------------------------------- ports and targets


def server_args(command: str, tmp_path: Path, port_option: str, port: str) -> list[str]:
    """sim, mock or record with everything right but the port."""
    if command == "sim":
        return ["sim", port_option, port]
    if command == "mock":
        return ["mock", "--db", str(make_capture(tmp_path / "m.duckdb", n=2)), port_option, port]
    return ["record", "--upstream", "http://127.0.0.1:9", "--no-upstream-check", "--db", str(tmp_path / "r.duckdb"),
            port_option, port]


@pytest.mark.parametrize("command, port_option", [
    ("sim", "--port"), ("sim", "--listen-port"), ("mock", "--port"), ("mock", "--listen-port"),
    ("record", "--listen-port")])
@pytest.mark.parametrize("port", ["99999", "65536", "-1", "eighty"])
def test_a_port_outside_0_65535(tmp_path, command, port_option, port):
    """`sim --port 99999` used to listen on 34463 (99999 mod 65536) without a word."""
    args = server_args(command, tmp_path, port_option, port)
    before = files(tmp_path)
    result = run(*args, timeout=30)
    one_line(result, command, port_option, "0 to 65535", port)
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert files(tmp_path) == before


@pytest.mark.parametrize("command", ["sim", "mock", "record"])
def test_a_port_already_in_use(tmp_path, command):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        args = server_args(command, tmp_path, "--listen-port", str(port))
        before = files(tmp_path)
        result = run(*args, timeout=30)
    one_line(result, command, f"cannot listen on 127.0.0.1:{port}", f"port {port} is already in use",
             "--listen-port")
    assert files(tmp_path) == before                # record made no capture file


@pytest.mark.parametrize("via_proxy", [False, True])
def test_agents_against_a_dead_target(via_proxy):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    url = f"http://127.0.0.1:{dead}"
    args = ["agents", "--agents", "1", "--duration", "1"]
    args += ["--target", "http://127.0.0.1:8090", "--proxy", url] if via_proxy else ["--target", url]
    result = run(*args, timeout=30)
    line = one_line(result, "agents", f"cannot reach {'the proxy ' if via_proxy else ''}{url}: connection refused",
                    "gwsreplay record" if via_proxy else "is the simulator / GWS running?")
    assert "ClientConnectorError" not in result.stderr + result.stdout, line
