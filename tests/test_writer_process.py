"""The capture writer in a child process (gwsreplay.capture.writer_process.ProcessWriter).

* the same records give the same file as the thread writer;
* records the proxy's side refuses are counted as dropped and recorded in capture_errors;
* the child killed: the parent counts the records it had not committed as lost, starts a
  new child, which records the loss in capture_errors, and the capture goes on;
* the parent SIGKILLed: the child writes every record it had received and closes the file;
* the addon with ``capture_writer=thread`` still records (the proxy tests run the default,
  ``process``; ``GWSREPLAY_CAPTURE_WRITER=thread`` runs them all on the thread writer);
* Ctrl-C to the whole process group: the child ignores it, the proxy closes it, nothing lost.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest
from test_capture_proxy import (
    MITMDUMP,
    ROOT,
    Proxy,
    Upstream,
    free_port,
    req,
    wait_port,
)

from gwsreplay.capture.records import HttpRecord
from gwsreplay.capture.writer import CaptureWriter
from gwsreplay.capture.writer_child import pack, unpack
from gwsreplay.capture.writer_process import ProcessWriter


def poll(i: int, user: str = "agent1") -> HttpRecord:
    body = (b'[{"channel":"/v2/me/devices","data":{"messageType":"DeviceStateChangeMessage","devices":'
            b'[{"id":"d1","userState":{"state":"Ready"}}]}},{"channel":"/meta/connect","id":"%d",'
            b'"successful":true}]' % i)
    t = time.time()
    return HttpRecord(flow_id=f"f{i}", method="POST", host="127.0.0.1", port=8090,
                      path="/api/v2/notifications/connect",
                      request_headers=[("Cookie", "JSESSIONID=s1"), ("Authorization", "Basic YWdlbnQxOnB3")],
                      request_body=b'[{"channel":"/meta/connect","id":"%d","clientId":"c1"}]' % i,
                      status=200, response_headers=[("Content-Type", "application/json")], response_body=body,
                      ts_request_start=t, ts_request_end=t, ts_response_start=t, ts_response_end=t)


def counts(db: Path) -> dict:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {
            "exchanges": con.execute("SELECT count(*) FROM exchanges").fetchone()[0],
            "bayeux": con.execute("SELECT count(*) FROM bayeux_messages").fetchone()[0],
            "errors": dict(con.execute("SELECT kind, sum(count) FROM capture_errors GROUP BY kind").fetchall()),
        }
    finally:
        con.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:   # a zombie waiting for its new parent counts as gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pid: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while alive(pid):
        assert time.monotonic() < deadline, f"process {pid} still running"
        time.sleep(0.05)


def test_pack_round_trip():
    rec = poll(7)
    assert unpack(pack(rec)) == rec
    assert unpack(pack("not a record")) == "not a record"


def test_same_file_as_the_thread_writer(tmp_path):
    rows = {}
    for name, cls in (("thread", CaptureWriter), ("process", ProcessWriter)):
        db = tmp_path / f"{name}.duckdb"
        w = cls(db, flush_interval=0.05).start()
        for i in range(50):
            assert w.submit(poll(i))
        w.flush()
        assert w.stats.written["exchanges"] == 50          # flush() waits for the commit, figures included
        w.close()
        assert w.stats.written["bayeux_messages"] == 150 and w.stats.unwritten == 0
        con = duckdb.connect(str(db), read_only=True)
        rows[name] = con.execute("SELECT id, exchange_id, channel, message_type, user_name, raw FROM bayeux_messages "
                                 "ORDER BY id").fetchall()
        con.close()
    assert rows["process"] == rows["thread"]
    assert rows["process"][0][4] == "agent1"


def test_refused_records_are_dropped_and_recorded(tmp_path):
    db = tmp_path / "drop.duckdb"
    w = ProcessWriter(db, max_queue=10)          # not started: nothing leaves the buffer yet
    accepted = [w.submit(poll(i)) for i in range(15)]
    assert accepted == [True] * 10 + [False] * 5
    assert w.stats.dropped == 5 and w.stats.unwritten == 5
    w.start()
    w.close()
    assert w.stats.dropped == 5 and w.stats.written["exchanges"] == 10
    c = counts(db)
    assert c["exchanges"] == 10 and c["errors"] == {"dropped": 5}


def test_child_killed_parent_counts_the_loss_and_a_new_child_records_it(tmp_path, caplog):
    db = tmp_path / "childkill.duckdb"
    w = ProcessWriter(db, flush_interval=0.05).start()
    for i in range(10):
        w.submit(poll(i))
    w.flush()
    assert w.stats.committed == 10
    first = w.pid
    os.kill(first, signal.SIGSTOP)               # it reads nothing more: the next records stay unconfirmed
    for i in range(10, 15):
        w.submit(poll(i))
    time.sleep(0.5)                              # sent down the pipe (the sender wakes every 12.5 ms)
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while w.stats.restarts == 0:
        assert time.monotonic() < deadline, "no new writer process"
        time.sleep(0.05)
    assert w.pid != first
    assert w.stats.lost == 5 and "died (signal 9)" in (w.stats.last_error or "")
    assert any("writer process died" in r.message for r in caplog.records)
    for i in range(15, 18):
        w.submit(poll(i))
    w.close()
    assert w.stats.lost == 5 and w.stats.dropped == 0 and w.stats.unwritten == 5
    assert w.stats.as_dict()["writer_restarts"] == 1
    c = counts(db)
    assert c["exchanges"] == 13
    assert c["errors"] == {"batch_lost": 5}


def test_parent_sigkill_child_writes_what_it_received(tmp_path):
    db = tmp_path / "orphan.duckdb"
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT / 'tests')!r})
        from test_writer_process import poll
        from gwsreplay.capture.writer_process import ProcessWriter
        w = ProcessWriter({str(db)!r}, flush_interval=30.0).start()   # the child commits nothing by itself
        for i in range(40):
            w.submit(poll(i))
        time.sleep(0.5)                                                 # handed over (sender: every 50 ms)
        print(w.pid, flush=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        child = int(parent.stdout.readline())
        assert alive(child)
    finally:
        parent.kill()
        parent.wait()
    wait_gone(child)
    c = counts(db)
    assert c["exchanges"] == 40 and c["bayeux"] == 120 and c["errors"] == {}


def test_addon_with_the_thread_writer(tmp_path):
    with Upstream() as upstream:
        db = tmp_path / "thread.duckdb"
        proxy = Proxy(upstream.port, db, "--set", "capture_writer=thread")
        try:
            for i in range(20):
                req(proxy.url("/api/v2/notifications"), "POST", [{"channel": "/meta/connect", "id": str(i)}])
            children = subprocess.run(["pgrep", "-P", str(proxy.proc.pid)], check=False, capture_output=True, text=True).stdout
            assert children.strip() == ""            # no writer process
        finally:
            assert proxy.stop(signal.SIGINT) == 0
    c = counts(db)
    assert c["exchanges"] == 20 and c["bayeux"] == 60


def test_ctrl_c_to_the_process_group_loses_nothing(tmp_path):
    with Upstream() as upstream:
        db = tmp_path / "group.duckdb"
        port = free_port()
        proc = subprocess.Popen([str(MITMDUMP), "-q", "-s", str(ROOT / "proxy_addons" / "capture.py"),
                                 "--mode", f"reverse:http://127.0.0.1:{upstream.port}", "--listen-host", "127.0.0.1",
                                 "-p", str(port), "--set", f"capture_db={db}", "--set", "capture_writer=process"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_port(port)
            children = subprocess.run(["pgrep", "-P", str(proc.pid)], check=False, capture_output=True, text=True).stdout.split()
            assert len(children) == 1                # the writer process
            for i in range(30):
                req(f"http://127.0.0.1:{port}/api/v2/notifications", "POST",
                    [{"channel": "/meta/connect", "id": str(i)}])
        finally:
            os.killpg(proc.pid, signal.SIGINT)       # as a terminal's Ctrl-C: both processes get it
            assert proc.wait(30) == 0
        wait_gone(int(children[0]))
    c = counts(db)
    assert c["exchanges"] == 30 and c["bayeux"] == 90 and c["errors"] == {}


@pytest.mark.parametrize("writer", ["process", "thread"])
def test_record_cli_final_line_has_the_writers_figures(tmp_path, writer):
    from conftest import gwsreplay_command

    with Upstream() as upstream:
        db = tmp_path / f"cli-{writer}.duckdb"
        port = free_port()
        proc = subprocess.Popen([*gwsreplay_command(), "record", "--upstream", f"http://127.0.0.1:{upstream.port}",
                                 "--listen-port", str(port), "--db", str(db), "--writer", writer, "--quiet"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_port(port)
            for i in range(12):
                req(f"http://127.0.0.1:{port}/api/v2/notifications", "POST", [{"channel": "/meta/connect", "id": str(i)}])
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "12 exchanges, 36 Bayeux messages" in err and "dropped 0, lost 0, not written at close 0" in err
