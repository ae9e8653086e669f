"""The capture addon in a real mitmdump, in front of a tiny aiohttp upstream on 127.0.0.1.

* canary: a password, an agentLoginPassword, a cookie and a CSRF token sent through
  the proxy never appear in the DuckDB file's bytes (nor its WAL);
* SIGINT flushes everything, including a long-poll held at shutdown;
* SIGKILL leaves a file that opens, missing at most the last flush interval;
* WebSocket frames are decoded into Bayeux messages.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[1]
MITMDUMP = Path(sys.executable).with_name("mitmdump")

CANARY_PW = "Canary-Pw-7f3a91"
CANARY_LOGIN_PW = "Canary-Login-55e2"
CANARY_TOKEN = "canary-csrf-0b8d4c"
CANARY_COOKIE = "canarysession9q8w7e"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Upstream:
    """A minimal GWS-ish server: /api/v2/me, /api/v2/notifications (long-poll + WebSocket)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.hold = asyncio.Event()

    def _run(self) -> None:
        from aiohttp import web

        asyncio.set_event_loop(self.loop)

        async def me(request: web.Request) -> web.StreamResponse:
            if request.method == "GET":
                return web.json_response(
                    {"statusCode": 0, "user": {"userName": "agent1"}},
                    headers={"X-CSRF-HEADER": "X-CSRF-TOKEN", "X-CSRF-TOKEN": CANARY_TOKEN,
                             "Set-Cookie": f"JSESSIONID={CANARY_COOKIE}; Path=/"})
            await request.read()
            return web.json_response({"statusCode": 0})

        def bayeux_reply(msgs: list) -> list:
            out = []
            for m in msgs:
                r = {"channel": m.get("channel"), "id": m.get("id"), "successful": True}
                if m.get("channel") == "/meta/handshake":
                    r["clientId"] = "client-1"
                out.append(r)
            out.insert(0, {"channel": "/v2/me/devices", "data": {
                "messageType": "DeviceStateChangeMessage",
                "devices": [{"id": "dev-1", "userState": {"state": "Ready"}}]}})
            return out

        async def notifications(request: web.Request) -> web.StreamResponse:
            if request.headers.get("Upgrade", "").lower() == "websocket":
                ws = web.WebSocketResponse()
                await ws.prepare(request)
                async for msg in ws:
                    if msg.type == web.WSMsgType.TEXT:
                        try:
                            msgs = json.loads(msg.data)
                        except ValueError:
                            continue
                        await ws.send_str(json.dumps(bayeux_reply(msgs)))
                return ws
            msgs = await request.json()
            if any(m.get("channel") == "/meta/connect" for m in msgs) and request.query.get("hold"):
                await asyncio.sleep(30)
            return web.json_response(bayeux_reply(msgs))

        app = web.Application()
        app.router.add_route("*", "/api/v2/me", me)
        app.router.add_route("*", "/api/v2/me/{tail:.*}", me)
        app.router.add_route("*", "/api/v2/notifications{tail:.*}", notifications)
        runner = web.AppRunner(app)
        self.loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", self.port)
        self.loop.run_until_complete(site.start())
        self.ready.set()
        self.loop.run_forever()

    def __enter__(self) -> "Upstream":
        self.thread.start()
        self.ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"port {port} not listening")


class Proxy:
    def __init__(self, upstream_port: int, db: Path, *extra: str) -> None:
        self.port = free_port()
        self.db = db
        self.log = db.with_suffix(".log")
        cmd = [str(MITMDUMP), "-q", "-s", str(ROOT / "proxy_addons" / "capture.py"),
               "--mode", f"reverse:http://127.0.0.1:{upstream_port}", "--listen-host", "127.0.0.1",
               "-p", str(self.port), "--set", f"capture_db={db}", *extra]
        self.proc = subprocess.Popen(cmd, stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        wait_port(self.port)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)


def req(url: str, method: str = "GET", body=None, headers: dict | None = None, timeout: float = 10):
    data = json.dumps(body).encode() if body is not None else None
    r = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        r.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(r, timeout=timeout) as resp:
        return resp.status, dict(resp.headers), resp.read()


def basic(user: str, pw: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


@pytest.fixture
def upstream():
    with Upstream() as u:
        yield u


def test_canary_secrets_never_reach_the_file(tmp_path, upstream):
    db = tmp_path / "canary.duckdb"
    proxy = Proxy(upstream.port, db)
    try:
        st, hdrs, _ = req(proxy.url("/api/v2/me"), headers={"Authorization": basic("agent1", CANARY_PW)})
        assert st == 200 and hdrs["X-CSRF-TOKEN"] == CANARY_TOKEN
        common = {"Cookie": f"JSESSIONID={CANARY_COOKIE}", "X-CSRF-TOKEN": CANARY_TOKEN}
        req(proxy.url("/api/v2/me"), "POST", {"operationName": "StartContactCenterSession", "channels": ["voice"],
                                              "place": "Place7001", "agentLoginPassword": CANARY_LOGIN_PW},
            headers={**common, "Authorization": basic("agent1", CANARY_PW)})
        req(proxy.url("/api/v2/notifications"), "POST",
            [{"channel": "/meta/handshake", "id": "1", "ext": {"password": CANARY_PW}}], headers=common)
        req(proxy.url(f"/api/v2/me?password={CANARY_PW}"), headers=common)
    finally:
        assert proxy.stop() == 0
    blob = db.read_bytes()
    wal = Path(str(db) + ".wal")
    if wal.exists():
        blob += wal.read_bytes()
    for canary in (CANARY_PW, CANARY_LOGIN_PW, CANARY_TOKEN, CANARY_COOKIE):
        for enc in (canary.encode(), canary.encode("utf-16-le"), base64.b64encode(canary.encode())):
            assert enc not in blob, canary
    basic_b64 = basic("agent1", CANARY_PW).split()[1].encode()
    assert basic_b64 not in blob
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("SELECT user_name, session_key, request_headers FROM exchanges ORDER BY id").fetchall()
    assert len(rows) == 4
    assert all(r[0] == "agent1" for r in rows)
    # the session cookie hashes the same way in Set-Cookie and Cookie: sessions correlate
    assert len(con.execute("SELECT * FROM sessions").fetchall()) == 1
    assert "Basic agent1:<redacted>" in rows[0][2]
    body = con.execute("SELECT request_body->>'$.agentLoginPassword' FROM exchanges WHERE id = 2").fetchone()[0]
    assert body == "<redacted>"


def test_sigint_flushes_everything_including_a_held_long_poll(tmp_path, upstream):
    db = tmp_path / "sigint.duckdb"
    proxy = Proxy(upstream.port, db)
    n = 150
    try:
        cookie = {"Cookie": "JSESSIONID=s1"}
        for i in range(n):
            req(proxy.url("/api/v2/notifications"), "POST",
                [{"channel": "/meta/connect", "id": str(i), "clientId": "client-1"}], headers=cookie)
        # a long-poll held by the upstream when the proxy is stopped
        t = threading.Thread(target=lambda: _swallow(lambda: req(
            proxy.url("/api/v2/notifications?hold=1"), "POST",
            [{"channel": "/meta/connect", "id": "held", "clientId": "client-1"}], headers=cookie, timeout=20)))
        t.start()
        time.sleep(0.5)
    finally:
        assert proxy.stop(signal.SIGINT) == 0
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM exchanges").fetchone()[0] == n + 1
    # each answered connect: 1 request message + 2 response messages; the held one: 1
    assert con.execute("SELECT count(*) FROM bayeux_messages").fetchone()[0] == 3 * n + 1
    held = con.execute("SELECT error, status FROM exchanges WHERE query = 'hold=1'").fetchone()
    assert held[0] and held[1] is None
    assert con.execute("SELECT count(*) FROM capture_errors WHERE kind = 'dropped'").fetchone()[0] == 0


def test_sigterm_flushes_too(tmp_path, upstream):
    db = tmp_path / "sigterm.duckdb"
    proxy = Proxy(upstream.port, db)
    try:
        for _ in range(20):
            req(proxy.url("/api/v2/me"), headers={"Authorization": basic("agent2", "pw")})
    finally:
        proxy.stop(signal.SIGTERM)
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM exchanges").fetchone()[0] == 20


def test_sigkill_leaves_a_file_that_opens(tmp_path, upstream):
    db = tmp_path / "sigkill.duckdb"
    proxy = Proxy(upstream.port, db, "--set", "capture_flush_ms=100")
    n = 100
    for i in range(n):
        req(proxy.url("/api/v2/notifications"), "POST", [{"channel": "/meta/connect", "id": str(i)}])
    time.sleep(1.0)   # well past the flush interval
    proxy.stop(signal.SIGKILL)
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM exchanges").fetchone()[0] == n
    assert con.execute("SELECT count(*) FROM bayeux_messages").fetchone()[0] == 3 * n


def test_websocket_frames_become_bayeux_messages(tmp_path, upstream):
    import aiohttp

    db = tmp_path / "ws.duckdb"
    proxy = Proxy(upstream.port, db)

    async def client() -> None:
        async with aiohttp.ClientSession(cookies={"JSESSIONID": "wsess"}) as s:
            async with s.ws_connect(f"ws://127.0.0.1:{proxy.port}/api/v2/notifications") as ws:
                await ws.send_str(json.dumps([{"channel": "/meta/handshake", "id": "1"}]))
                await ws.receive()
                for i in range(5):
                    await ws.send_str(json.dumps([{"channel": "/meta/connect", "id": str(i + 2),
                                                   "clientId": "client-1", "connectionType": "websocket"}]))
                    await ws.receive()
                await ws.send_str("this is not json")
                await ws.send_bytes(b"\x00\x01binary")
                await asyncio.sleep(0.3)

    try:
        asyncio.run(client())
        time.sleep(0.3)
    finally:
        proxy.stop()
    con = duckdb.connect(str(db), read_only=True)
    ex = con.execute("SELECT id, status, is_websocket FROM exchanges").fetchall()
    assert len(ex) == 1 and ex[0][1] == 101 and ex[0][2]
    frames = con.execute("SELECT count(*), count(parse_error) FROM websocket_frames").fetchone()
    assert frames == (14, 2)
    counts = dict(con.execute("SELECT direction, count(*) FROM bayeux_messages WHERE parse_error IS NULL "
                              "GROUP BY ALL").fetchall())
    assert counts == {"c2s": 6, "s2c": 12}
    assert con.execute("SELECT count(*) FROM bayeux_messages WHERE parse_error IS NOT NULL").fetchone()[0] == 2
    assert con.execute("SELECT DISTINCT exchange_id FROM bayeux_messages").fetchall() == [(ex[0][0],)]
    conn = con.execute("SELECT frames, close_code FROM websocket_connections").fetchone()
    assert conn[0] == 14


def _swallow(fn) -> None:
    try:
        fn()
    except Exception:  # noqa: BLE001
        pass
