"""Faults and bad input: recorded with a parse error or an error column, and the proxy keeps serving."""

from __future__ import annotations

import base64
import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
import zlib
from pathlib import Path

import brotli
import duckdb
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gwsreplay.capture import bayeux_extract, bayeux_sql, schema
from gwsreplay.capture.records import DECODE_LIMIT, HttpRecord, WsFrameRecord, decode_content, make_body
from gwsreplay.capture.rows import RowBuilder
from gwsreplay.capture.redact import Redactor
from gwsreplay.capture.writer import CaptureWriter, new_out
from test_capture_proxy import Proxy, Upstream, free_port, req

T0 = 1_700_000_000.0
BC = "(SELECT count(*) FROM bayeux_messages m WHERE m.exchange_id = e.id AND m.parse_error IS NULL)"
CALL = {"channel": "/v2/me/calls", "data": {"messageType": "CallStateChangeMessage",
                                            "call": {"id": "007102385535e00a", "state": "Ringing"}}}
CONNECT = {"channel": "/meta/connect", "id": "5", "successful": True}


def poll(resp_body: bytes, *, req_body: bytes = b'[{"channel":"/meta/connect","id":"5"}]',
         resp_headers=(("Content-Type", "application/json"),), fid="f") -> HttpRecord:
    return HttpRecord(flow_id=fid, method="POST", host="gws", port=8090, path="/api/v2/notifications/connect",
                      request_headers=[("Content-Type", "application/json"), ("Cookie", "JSESSIONID=s")],
                      request_body=req_body, status=200, response_headers=list(resp_headers),
                      response_body=resp_body, ts_request_start=T0, ts_response_start=T0 + 1)


def write(tmp_path: Path, *records, **kw) -> duckdb.DuckDBPyConnection:
    db = tmp_path / "faults.duckdb"
    w = CaptureWriter(db, **kw)
    w.write_records(list(records))
    w.close()
    return duckdb.connect(str(db), read_only=True)


def test_invalid_json_long_poll_body(tmp_path):
    con = write(tmp_path, poll(b'[{"channel": "/meta/connect", oops}]'))
    ex = con.execute("SELECT response_body, response_body_text, response_body_encoding, response_body_error "
                     "FROM exchanges").fetchone()
    assert ex[0] is None and ex[1].startswith("[{") and ex[2] == "text" and "invalid JSON" in ex[3]
    bad = con.execute("SELECT parse_error, raw FROM bayeux_messages WHERE direction = 's2c'").fetchall()
    assert len(bad) == 1 and "invalid JSON" in bad[0][0] and "oops" in bad[0][1]
    assert con.execute("SELECT count(*) FROM bayeux_messages WHERE direction = 'c2s' "
                       "AND parse_error IS NULL").fetchone()[0] == 1


def test_truncated_bayeux_array_keeps_complete_messages(tmp_path):
    full = json.dumps([CALL, CALL, CONNECT])
    cut = full[: full.rindex("{") + 10]
    con = write(tmp_path, poll(cut.encode()))
    rows = con.execute("SELECT position, message_type, parse_error IS NOT NULL FROM bayeux_messages "
                       "WHERE direction = 's2c' ORDER BY position").fetchall()
    assert rows == [(0, "CallStateChangeMessage", False), (1, "CallStateChangeMessage", False), (2, None, True)]


def test_array_elements_that_are_not_objects(tmp_path):
    con = write(tmp_path, poll(json.dumps([CALL, 3, "x", None]).encode()))
    rows = con.execute("SELECT position, parse_error FROM bayeux_messages WHERE direction = 's2c' "
                       "ORDER BY id").fetchall()
    assert rows[0] == (0, None)
    assert all(r[1] for r in rows[1:]) and len(rows) == 4   # one error row per bad element


def test_binary_and_oversized_bodies(tmp_path):
    blob = os.urandom(5000)
    big = json.dumps([CALL] * 200 + [CONNECT]).encode()
    rest = poll(big, fid="rest")
    rest.path = "/api/v2/me/calls"
    con = write(tmp_path,
                poll(blob, resp_headers=[("Content-Type", "application/octet-stream")], fid="bin"),
                poll(big, fid="big"), rest,
                max_body=1000)
    r = con.execute("SELECT response_body IS NULL, response_body_truncated, length(response_body_text), "
                    "response_body_encoding FROM exchanges WHERE flow_id = 'rest'").fetchone()
    assert r == (True, True, 1000, "text")
    b = con.execute("SELECT response_body_encoding, response_body_truncated, response_body_size, "
                    "length(response_body_text) FROM exchanges WHERE flow_id = 'bin'").fetchone()
    assert b[0] == "base64" and b[1] and b[2] == 5000 and b[3] == len(base64.b64encode(blob[:1000]))
    g = con.execute("SELECT response_body IS NULL, response_body_encoding, response_body_size, "
                    f"{BC} FROM exchanges e WHERE flow_id = 'big'").fetchone()
    assert g == (True, "bayeux", len(big), 202)     # its messages are in bayeux_messages
    # every message of the oversized body is still extracted
    assert con.execute("SELECT count(*) FROM bayeux_messages m JOIN exchanges e ON e.id = m.exchange_id "
                       "WHERE e.flow_id = 'big' AND m.parse_error IS NULL").fetchone()[0] == 202


@pytest.mark.parametrize("encoding,encode", [
    ("gzip", gzip.compress),
    ("br", brotli.compress),
    ("deflate", zlib.compress),
    ("gzip, br", lambda b: brotli.compress(gzip.compress(b))),
])
def test_content_encodings_are_decoded(tmp_path, encoding, encode):
    body = json.dumps([CALL, CONNECT]).encode()
    con = write(tmp_path, poll(encode(body), resp_headers=[("Content-Type", "application/json"),
                                                           ("Content-Encoding", encoding)]))
    assert con.execute(f"SELECT response_body_encoding, response_body_size, {BC} FROM exchanges e"
                       ).fetchone() == ("bayeux", len(body), 3)


def test_broken_gzip_is_recorded_not_fatal(tmp_path):
    con = write(tmp_path, poll(b"\x1f\x8b\x08garbage", resp_headers=[("Content-Encoding", "gzip")]))
    err = con.execute("SELECT response_body_error, response_body_encoding FROM exchanges").fetchone()
    assert "gzip failed" in err[0] and err[1] == "base64"


def test_non_utf8_bodies(tmp_path):
    latin = "café olé".encode("latin-1")
    con = write(tmp_path,
                poll(latin, resp_headers=[("Content-Type", "text/plain; charset=iso-8859-1")], fid="latin"),
                poll(b'[{"channel":"/x","data":"\xff\xfe"}]', fid="badutf8"))
    assert con.execute("SELECT response_body_text FROM exchanges WHERE flow_id = 'latin'").fetchone()[0] == "café olé"
    r = con.execute("SELECT response_body_encoding, response_body_error FROM exchanges "
                    "WHERE flow_id = 'badutf8'").fetchone()
    assert r[0] == "base64" and "UTF-8" in r[1]


def test_unexpected_websocket_frames(tmp_path):
    frames = [
        (True, True, b'[{"channel":"/meta/connect","id":"1"}]'),
        (False, True, b"not json at all"),
        (False, False, b"\x00\x01\x02"),
        (False, True, b"42"),
        (False, True, b'{"channel":"/v2/me/calls","data":{"messageType":"CallStateChangeMessage"}}'),
        (False, True, json.dumps([CALL])[:-5].encode()),
    ]
    recs = [WsFrameRecord(flow_id="ws", index=i, ts=T0 + i, from_client=fc, is_text=txt, content=c)
            for i, (fc, txt, c) in enumerate(frames)]
    con = write(tmp_path, *recs)
    rows = con.execute("SELECT frame_index, opcode, (SELECT count(*) FROM bayeux_messages m WHERE m.frame_index = "
                       "f.frame_index AND m.parse_error IS NULL), parse_error IS NOT NULL, content_encoding "
                       "FROM websocket_frames f ORDER BY frame_index").fetchall()
    assert rows == [(0, "text", 1, False, None), (1, "text", 0, True, "text"), (2, "binary", 0, True, "base64"),
                    (3, "text", 0, True, "text"), (4, "text", 1, False, None), (5, "text", 0, True, "text")]
    assert con.execute("SELECT count(*) FROM bayeux_messages WHERE parse_error IS NOT NULL").fetchone()[0] == 4


def test_invalid_json_for_duckdb_falls_back_per_value(tmp_path):
    # Python's json accepts a lone surrogate escape; the batch must still be written
    con = write(tmp_path, poll(b'[{"channel":"/x","data":{"s":"\\ud800"}}]'))
    assert con.execute("SELECT count(*) FROM exchanges").fetchone()[0] == 1
    assert con.execute("SELECT count(*) FROM bayeux_messages").fetchone()[0] >= 2


# --------------------------------------------------------------------------- real proxy faults

@pytest.mark.parametrize("strategy", ["lazy", "eager"])
def test_upstream_down_is_recorded_and_proxy_keeps_serving(tmp_path, strategy):
    dead = free_port()
    db = tmp_path / "down.duckdb"
    proxy = Proxy(dead, db, "--set", f"connection_strategy={strategy}")
    try:
        for _ in range(3):
            try:
                status = req(proxy.url("/api/v2/me"))[0]
            except Exception as exc:  # noqa: BLE001 - 502 or a dropped connection
                status = getattr(exc, "code", None)
            assert status in (None, 502)
        assert proxy.proc.poll() is None          # still serving
    finally:
        proxy.stop()
    con = duckdb.connect(str(db), read_only=True)
    errors = con.execute("SELECT count(*) FROM capture_errors WHERE kind = 'upstream_connect_error'").fetchone()[0]
    assert errors >= 3        # (eager: the proxy's readiness probe counts too)
    rows = con.execute("SELECT status, error FROM exchanges").fetchall()
    if strategy == "lazy":
        assert len(rows) == 3 and all(r[0] is None and r[1] for r in rows)


def test_slow_upstream_and_client_dropping_a_long_poll(tmp_path):
    with Upstream() as up:
        db = tmp_path / "drop.duckdb"
        proxy = Proxy(up.port, db)
        try:
            s = socket.create_connection(("127.0.0.1", proxy.port))
            body = json.dumps([{"channel": "/meta/connect", "id": "held", "clientId": "c1"}]).encode()
            s.sendall(b"POST /api/v2/notifications?hold=1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            time.sleep(0.5)
            # meanwhile the proxy keeps serving others
            t0 = time.monotonic()
            for _ in range(5):
                assert req(proxy.url("/api/v2/me"))[0] == 200
            assert time.monotonic() - t0 < 5
            s.close()                      # the desktop goes away with its poll held
            time.sleep(1.0)
        finally:
            proxy.stop()
        con = duckdb.connect(str(db), read_only=True)
        held = con.execute(f"SELECT status, error, {BC} FROM exchanges e WHERE query = 'hold=1'").fetchone()
        assert held[0] is None and held[1] and held[2] == 1
        assert con.execute("SELECT count(*) FROM exchanges WHERE path = '/api/v2/me' AND status = 200"
                           ).fetchone()[0] == 5


# --------------------------------------------------------------------------- fuzz

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)
bayeux_msgs = st.lists(st.fixed_dictionaries(
    {"channel": st.sampled_from(["/meta/connect", "/v2/me/calls", "/v2/me/devices", "/x"])},
    optional={"id": st.text(max_size=5), "clientId": st.text(max_size=5), "successful": st.booleans(),
              "advice": json_values, "data": st.one_of(json_values, st.fixed_dictionaries({
                  "messageType": st.sampled_from(["CallStateChangeMessage", "DeviceStateChangeMessage",
                                                  "ErrorMessage", "ChatStateChangeMessage", "Other"]),
                  "call": json_values, "devices": json_values, "chat": json_values}))}), max_size=6)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(msgs=bayeux_msgs, cut=st.integers(min_value=0, max_value=10_000))
def test_fuzz_decoder_recovers_a_prefix(msgs, cut):
    text = json.dumps(msgs)
    got, err, _ = bayeux_extract.decode(text)
    assert got == msgs and err is None
    prefix = text[: cut % (len(text) + 1)]
    got, err, _ = bayeux_extract.decode(prefix)
    assert got == msgs[: len(got)]
    if prefix != text:
        assert err is not None or got == msgs


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode),
                      bayeux_msgs.map(lambda m: json.dumps(m).encode()),
                      st.tuples(bayeux_msgs, st.integers(0, 500)).map(lambda t: json.dumps(t[0])[: t[1]].encode())),
       frame=st.binary(max_size=200), is_text=st.booleans())
def test_fuzz_extraction_path_never_raises(body, frame, is_text):
    rb = RowBuilder(Redactor(), max_body=100)
    out = new_out()
    rb.http(poll(body, req_body=body), out)
    rb.ws_frame(WsFrameRecord(flow_id="w", index=0, ts=T0, from_client=False, is_text=is_text, content=frame), out)
    assert len(out["exchanges"]) == 1 and len(out["websocket_frames"]) == 1
    assert all(len(r) == len(schema.BAYEUX_MESSAGES) for r in out["bayeux_messages"])
    assert all(len(r) == len(bayeux_sql.STAGE_COLUMNS) for r in out["_bayeux_bodies"])
    make_body(body, [("Content-Encoding", "gzip")], False, 100, Redactor())


def test_fuzzed_rows_are_accepted_by_duckdb(tmp_path):
    """Random bodies through the whole writer: the file always takes them."""
    import random

    rnd = random.Random(7)
    recs = []
    for i in range(300):
        kind = rnd.randrange(4)
        if kind == 0:
            body = os.urandom(rnd.randrange(200))
        elif kind == 1:
            body = json.dumps([CALL, {"x": rnd.random()}])[: rnd.randrange(80)].encode()
        elif kind == 2:
            body = bytes(rnd.randrange(32, 127) for _ in range(rnd.randrange(100)))
        else:
            body = json.dumps([{"channel": "/v2/me/calls", "data": {"s": "\\ud800" * rnd.randrange(2)}}]).encode()
        recs.append(poll(body, req_body=body, fid=str(i)))
    con = write(tmp_path, *recs)
    assert con.execute("SELECT count(*) FROM exchanges").fetchone()[0] == 300


# --------------------------------------------------------------------------- loss accounting

@pytest.fixture
def small_fs(tmp_path):
    """A 6 MiB tmpfs made by the test (root only): a disk that fills up."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(directory: Path) -> Path:
    filler = directory / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"x" * 65536)
                f.flush()
        except OSError:
            pass
    return filler


def test_disk_full_counts_the_loss_and_records_it_once_space_returns(small_fs, caplog):
    w = CaptureWriter(small_fs / "full.duckdb", flush_interval=0.05).start()
    for i in range(5):
        assert w.submit(poll(json.dumps([CONNECT]).encode(), fid=f"a{i}"))
    w.flush()
    assert w.stats.committed == 5
    filler = fill(small_fs)
    with caplog.at_level("ERROR", logger="gwsreplay.capture.writer"):
        for round_ in range(3):
            for i in range(10):
                w.submit(poll(json.dumps([CONNECT, CALL]).encode(), fid=f"b{round_}.{i}"))
            w.flush()
    assert w.stats.lost == 30 and w.stats.unwritten == 30
    # one line for the whole episode, not a traceback per batch
    lines = [r for r in caplog.records if "could not be written" in r.getMessage()]
    assert len(lines) == 1 and not any(r.exc_info for r in caplog.records)
    filler.unlink()
    for i in range(5):
        w.submit(poll(json.dumps([CONNECT]).encode(), fid=f"c{i}"))
    w.close()
    assert w.stats.lost == 30 and w.stats.committed == 10 and w.stats.abandoned == 0
    con = duckdb.connect(str(small_fs / "full.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM exchanges").fetchone()[0] == 10
        lost = con.execute("SELECT sum(count), min(error) FROM capture_errors WHERE kind = 'batch_lost'").fetchone()
        assert lost[0] == 30 and "No space left" in lost[1]
    finally:
        con.close()


def test_close_waits_for_a_writer_that_is_behind_and_reports_progress(tmp_path):
    w = CaptureWriter(tmp_path / "slow.duckdb", flush_interval=0.01)
    w.MAX_BATCH_RECORDS = 1
    real = w._insert

    def slow(*a):
        time.sleep(0.3)
        return real(*a)

    w._insert = slow
    w.start()
    for i in range(6):
        w.submit(poll(json.dumps([CONNECT]).encode(), fid=f"s{i}"))
    seen: list[int] = []
    w.close(timeout=5, progress=seen.append)
    assert w.stats.committed == 6 and w.stats.unwritten == 0
    assert seen and seen == sorted(seen, reverse=True) and seen[0] <= 6
    con = duckdb.connect(str(tmp_path / "slow.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM exchanges").fetchone()[0] == 6


def test_close_gives_up_on_a_stalled_writer_but_never_closes_under_it(tmp_path):
    w = CaptureWriter(tmp_path / "stall.duckdb", flush_interval=0.01)
    w.MAX_BATCH_RECORDS = 1
    real = w._insert
    release = threading.Event()

    def stalled(*a):
        release.wait(30)
        return real(*a)

    w._insert = stalled
    w.start()
    for i in range(4):
        w.submit(poll(json.dumps([CONNECT]).encode(), fid=f"s{i}"))
    t0 = time.monotonic()
    w.close(timeout=0.5)
    assert time.monotonic() - t0 < 5
    assert w.stats.abandoned == 4 and w.stats.unwritten == 4
    assert w._ins_thread.is_alive()
    release.set()                 # the insert that was running finishes on an open connection
    w._ins_thread.join(10)
    assert not w._ins_thread.is_alive() and w.stats.last_error is None
    assert w.con.execute("SELECT count(*) FROM exchanges").fetchone()[0] == 4
    w.con.close()


# --------------------------------------------------------------------------- decompression bombs

BOMB_SIZE = 1 << 30            # each bomb expands to 1 GiB
BOMB_BOUND = 200 << 20         # stated bound: peak Python memory while decoding one, for a 64 MiB decode cap


def _bomb(encoding: str) -> bytes:
    chunk = b"\0" * (16 << 20)
    if encoding == "br":
        c = brotli.Compressor(quality=5)
        parts = [c.process(chunk) for _ in range(BOMB_SIZE // len(chunk))]
        return b"".join(parts) + c.finish()
    if encoding == "zstd":
        c = zstandard.ZstdCompressor(level=3).compressobj()
        parts = [c.compress(chunk) for _ in range(BOMB_SIZE // len(chunk))]
        return b"".join(parts) + c.flush()
    wbits = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}[encoding]
    c = zlib.compressobj(9, zlib.DEFLATED, wbits)
    parts = [c.compress(chunk) for _ in range(BOMB_SIZE // len(chunk))]
    return b"".join(parts) + c.flush()


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd"])
def test_decompression_bombs_stay_under_the_memory_bound(encoding):
    bomb = _bomb(encoding)
    assert len(bomb) < 2 << 20            # a small body...
    tracemalloc.start()
    try:
        data, err, cut = decode_content(bomb, encoding)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert err is None and cut and len(data) == DECODE_LIMIT       # ...cut at the cap, not expanded to 1 GiB
    assert peak < BOMB_BOUND, f"{encoding}: peak {peak >> 20} MiB"
    del data
    body = make_body(bomb, [("Content-Encoding", encoding), ("Content-Type", "application/json")], False,
                     1024, Redactor())
    assert body.truncated and "decode limit" in (body.error or "")


# --------------------------------------------------------------------------- a recorder stopped with a backlog

BIG_ANSWER_MESSAGES = 15_000          # per long-poll answer: the writer needs seconds for six of them


class BigAnswers:
    """An upstream whose every long-poll answer is a large Bayeux batch (a desktop back from a break)."""

    def __init__(self) -> None:
        import asyncio

        from aiohttp import web

        self.port = free_port()
        body = json.dumps([{"channel": "/meta/connect", "id": "5", "successful": True}]
                          + [{**CALL, "id": str(i)} for i in range(BIG_ANSWER_MESSAGES)]).encode()
        self.loop = asyncio.new_event_loop()
        started = threading.Event()

        async def answer(request: web.Request) -> web.Response:
            await request.read()
            return web.Response(body=body, content_type="application/json")

        async def main() -> None:
            app = web.Application(client_max_size=1 << 20)
            app.router.add_route("*", "/{tail:.*}", answer)
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port).start()
            started.set()

        threading.Thread(target=lambda: (self.loop.run_until_complete(main()), self.loop.run_forever()),
                         daemon=True).start()
        assert started.wait(10)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


def test_record_stopped_with_a_backlog_writes_it_all_before_exiting(tmp_path):
    """SIGINT while the writer is seconds behind (six 15,000-message long-poll answers): the recorder
    waits for the writer, says so, and the file holds every exchange and message (on a 64 MiB tmpfs
    made by the test, as the disk-full test; the old recorder wrote 1 of 6 and said nothing)."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    upstream = BigAnswers()
    port = free_port()
    db = mnt / "backlog.duckdb"
    cmd = [sys.executable, "-m", "gwsreplay", "record", "--upstream", f"http://127.0.0.1:{upstream.port}",
           "--listen-port", str(port), "--db", str(db)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        for _ in range(6):
            status, _, answer = req(f"http://127.0.0.1:{port}/api/v2/notifications/connect", "POST",
                                    [{"channel": "/meta/connect", "id": "5", "clientId": "c1"}], timeout=30)
            assert status == 200 and len(json.loads(answer)) == BIG_ANSWER_MESSAGES + 1
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
        upstream.close()
    try:
        assert proc.returncode == 0, out[-2000:]
        assert "Traceback" not in out
        assert "writing the last" in out             # there was a backlog when Ctrl-C came, and it was said
        con = duckdb.connect(str(db), read_only=True)
        try:
            assert con.execute("SELECT count(*) FROM exchanges WHERE path LIKE '/api/v2/notifications%'").fetchone()[0] == 6
            assert con.execute("SELECT count(*) FROM bayeux_messages WHERE direction = 's2c'").fetchone()[0] \
                == 6 * (BIG_ANSWER_MESSAGES + 1)
            assert con.execute("SELECT coalesce(sum(count), 0) FROM capture_errors "
                               "WHERE kind IN ('dropped', 'batch_lost', 'abandoned')").fetchone()[0] == 0
        finally:
            con.close()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
