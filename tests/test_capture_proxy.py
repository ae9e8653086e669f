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


# --------------------------------------------------------------------------- in front of the simulator

SIM_CANARY_PW = "Sim-Canary-Pw-93ab1c"


def _file_bytes(db: Path) -> bytes:
    blob = db.read_bytes()
    wal = Path(str(db) + ".wal")
    return blob + (wal.read_bytes() if wal.exists() else b"")


async def test_canary_through_the_simulator(tmp_path, sim_factory):
    from gwsreplay.sim.model.roster import Roster, UserSpec

    roster = Roster([UserSpec("agent1", SIM_CANARY_PW, "Agent", "1", "7001", "Place7001")])
    sim = await sim_factory(roster=roster)
    db = tmp_path / "sim-canary.duckdb"
    proxy = Proxy(sim.port, db)
    try:
        from gwsreplay.client.rest import GWSClient

        async with GWSClient(f"http://127.0.0.1:{proxy.port}", "agent1", SIM_CANARY_PW) as client:
            assert (await client.me()).ok
            token = client.csrf_headers().get("X-CSRF-TOKEN")
            session_id = client.session_id
            assert token and session_id
            async with client.cometd("long-polling") as cometd:
                await cometd.handshake()
                await cometd.subscribe("/v2/me/*")
                assert (await client.start_session(place="Place7001")).status == 200
                assert (await client.ready()).ok
                await asyncio.sleep(0.5)
                await cometd.disconnect()
            await client.end_session()
    finally:
        assert await asyncio.to_thread(proxy.stop) == 0
    blob = _file_bytes(db)
    for secret in (SIM_CANARY_PW, token, session_id):
        assert secret.encode() not in blob, secret
    assert base64.b64encode(f"agent1:{SIM_CANARY_PW}".encode()) not in blob
    con = duckdb.connect(str(db), read_only=True)
    ops = dict(con.execute("SELECT operation_name, outcome FROM operations").fetchall())
    assert ops["Ready"] == "completed"
    assert con.execute("SELECT count(*) FROM sessions WHERE user_name = 'agent1'").fetchone()[0] >= 1
    assert con.execute("SELECT count(*) FROM bayeux_messages WHERE user_name IS NULL").fetchone()[0] == 0


@pytest.mark.parametrize("transport", ["long-polling", "websocket"])
async def test_capture_counts_match_the_simulator(tmp_path, sim, transport):
    """Scripted agents through the proxy: the capture holds exactly what the simulator
    served (REST requests under /api/v2) and received/delivered (Bayeux messages)."""
    from gwsreplay.client.agents import AgentsConfig, run_agents

    db = tmp_path / f"counts-{transport}.duckdb"
    proxy = Proxy(sim.port, db)
    try:
        summary = await run_agents(AgentsConfig(target=f"http://127.0.0.1:{proxy.port}", agents=3, duration=4.0,
                                                seed=5, transport=transport, think_time=0.05, talk_time=0.1))
        assert summary.logged_in == 3 and summary.operations > 10, summary
        await asyncio.sleep(0.3)
    finally:
        assert await asyncio.to_thread(proxy.stop) == 0
    stats = await sim.stats()
    con = duckdb.connect(str(db), read_only=True)
    rest = con.execute("SELECT count(*) FROM exchanges WHERE path LIKE '/api/v2/%' "
                       "AND NOT is_bayeux AND status IS NOT NULL").fetchone()[0]
    received = con.execute("SELECT count(*) FROM bayeux_messages WHERE direction = 'c2s' "
                           "AND parse_error IS NULL").fetchone()[0]
    delivered = con.execute("SELECT count(*) FROM bayeux_messages WHERE direction = 's2c' "
                            "AND parse_error IS NULL").fetchone()[0]
    assert rest == stats["rest"]["total"]
    assert received == stats["bayeux"]["received"]["total"]
    assert delivered == stats["bayeux"]["delivered"]["total"]
    # per agent, too
    by_user = dict(con.execute("SELECT user_name, count(*) FROM bayeux_messages WHERE direction = 's2c' "
                               "GROUP BY ALL").fetchall())
    for user, n in stats["bayeux"]["delivered"]["by_user"].items():
        assert by_user.get(user) == n, user
    assert con.execute("SELECT count(*) FROM bayeux_messages WHERE parse_error IS NOT NULL").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM capture_errors WHERE kind <> 'upstream_connect_error'"
                       ).fetchone()[0] == 0
    outcomes = dict(con.execute("SELECT outcome, count(*) FROM operations GROUP BY ALL").fetchall())
    assert outcomes.get("completed", 0) > 0


def capture_counts(db: Path) -> dict:
    """What the capture says was served: REST exchanges and Bayeux messages, in total and per agent."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rest = dict(con.execute("SELECT user_name, count(*) FROM exchanges WHERE path LIKE '/api/v2/%' "
                                "AND NOT is_bayeux AND status IS NOT NULL GROUP BY ALL").fetchall())
        msgs = {d: dict(con.execute("SELECT user_name, count(*) FROM bayeux_messages WHERE direction = ? "
                                    "AND parse_error IS NULL GROUP BY ALL", [d]).fetchall())
                for d in ("c2s", "s2c")}
        errors = con.execute("SELECT kind, count(*) FROM capture_errors GROUP BY ALL").fetchall()
        damaged = con.execute("SELECT count(*) FROM bayeux_messages WHERE parse_error IS NOT NULL").fetchone()[0]
    finally:
        con.close()
    return {"rest": rest, "received": msgs["c2s"], "delivered": msgs["s2c"], "errors": errors, "damaged": damaged}


def assert_counts_match(counts: dict, stats: dict) -> None:
    for what, served in (("rest", stats["rest"]), ("received", stats["bayeux"]["received"]),
                         ("delivered", stats["bayeux"]["delivered"])):
        assert sum(counts[what].values()) == served["total"], (what, counts[what], served)
        assert {u: n for u, n in counts[what].items() if u is not None} == served["by_user"], (what, counts[what],
                                                                                              served)
    assert counts["errors"] == [] and counts["damaged"] == 0, counts


@pytest.mark.parametrize("transport", ["long-polling", "websocket"])
async def test_official_js_client_counts_match_the_simulator(tmp_path, sim, transport):
    """The official CometD JS client (Node, npm cometd) as two desktops through the capture proxy:
    login, Ready, an agent-to-agent call held, retrieved and hung up, CometD disconnect, end of
    session. After SIGINT the capture holds exactly the REST requests the simulator served and
    the Bayeux messages it received and delivered, in total and per agent."""
    from jsdesktop import JsDesktop, node_available
    from test_js_cometd import log_in

    if not node_available():
        pytest.skip("node or node_modules/cometd missing (run make node)")
    db = tmp_path / f"js-{transport}.duckdb"
    proxy = Proxy(sim.port, db)
    try:
        async with JsDesktop(proxy.url(""), "agent1", transport=transport) as a1, \
                   JsDesktop(proxy.url(""), "agent2", transport=transport) as a2:
            device1 = await log_in(a1)
            await log_in(a2)
            dial = await a1.rest("POST", f"/api/v2/me/devices/{device1}/calls",
                                 {"operationName": "Dial", "destination": {"phoneNumber": "7002"}})
            assert dial["body"] == {"statusCode": 0}
            call1 = (await a1.notification("/v2/me/calls", call__state="Dialing"))["data"]["call"]["id"]
            call2 = (await a2.notification("/v2/me/calls", call__state="Ringing"))["data"]["call"]["id"]
            for desktop, call, op, state in ((a2, call2, "Answer", "Established"), (a2, call2, "Hold", "Held"),
                                             (a2, call2, "Retrieve", "Established"),
                                             (a1, call1, "Hangup", "Released")):
                answer = await desktop.rest("POST", f"/api/v2/me/calls/{call}", {"operationName": op})
                assert answer["body"] == {"statusCode": 0}, (op, answer)
                await desktop.notification("/v2/me/calls", call__state=state, call__id=call)
            await a2.notification("/v2/me/calls", call__state="Released", call__id=call2)
            for desktop in (a1, a2):
                await desktop.disconnect()
                end = await desktop.rest("POST", "/api/v2/me", {"operationName": "EndContactCenterSession"})
                assert end["body"] == {"statusCode": 0}
                assert not [e for e in desktop.events if e["event"] == "meta" and not e["successful"]]
        stats = await sim.stats()
    finally:
        assert await asyncio.to_thread(proxy.stop, signal.SIGINT) == 0
    counts = capture_counts(db)
    assert set(counts["delivered"]) == {"agent1", "agent2"}
    assert stats["bayeux"]["delivered"]["total"] > 20 and stats["rest"]["total"] == 13
    assert_counts_match(counts, stats)
    con = duckdb.connect(str(db), read_only=True)
    transports = {r[0] for r in con.execute("SELECT DISTINCT transport FROM bayeux_messages").fetchall()}
    assert transports == {transport}
    outcomes = dict(con.execute("SELECT operation_name || ':' || user_name, outcome FROM operations").fetchall())
    assert outcomes["Hold:agent2"] == outcomes["Retrieve:agent2"] == outcomes["Hangup:agent1"] == "completed"
    assert outcomes["EndContactCenterSession:agent1"] == "acknowledged"


def test_gwsreplay_record_cli_flushes_on_sigint(tmp_path, upstream):
    from conftest import gwsreplay_command

    db = tmp_path / "cli.duckdb"
    port = free_port()
    proc = subprocess.Popen([*gwsreplay_command(), "record", "--upstream", f"http://127.0.0.1:{upstream.port}",
                             "--listen-port", str(port), "--db", str(db)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_port(port)
        for i in range(25):
            req(f"http://127.0.0.1:{port}/api/v2/notifications", "POST",
                [{"channel": "/meta/connect", "id": str(i)}], headers={"Authorization": basic("agent9", "pw")})
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "capture closed" in err and "25 exchanges" in err and "75 Bayeux messages" in err
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM bayeux_messages").fetchone()[0] == 75
    assert con.execute("SELECT DISTINCT user_name FROM bayeux_messages").fetchall() == [("agent9",)]


def test_snapshot_while_mitmdump_records(tmp_path, upstream):
    from gwsreplay.capture.snapshot import snapshot

    db = tmp_path / "live.duckdb"
    proxy = Proxy(upstream.port, db, "--set", "capture_flush_ms=50")
    try:
        for i in range(10):
            req(proxy.url("/api/v2/notifications"), "POST", [{"channel": "/meta/connect", "id": str(i)}])
        time.sleep(0.3)
        with pytest.raises(duckdb.Error):
            duckdb.connect(str(db), read_only=True)         # held by the recorder
        out = snapshot(db, tmp_path / "snap.duckdb", timeout=20)
        con = duckdb.connect(str(out), read_only=True)
        assert con.execute("SELECT count(*) FROM exchanges").fetchone()[0] == 10
        assert con.execute("SELECT count(*) FROM bayeux_messages").fetchone()[0] == 30
        assert con.execute("SELECT count(*) FROM sessions").fetchone()[0] >= 0     # views came along
        con.close()
        req(proxy.url("/api/v2/notifications"), "POST", [{"channel": "/meta/connect", "id": "x"}])
    finally:
        proxy.stop()
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM exchanges").fetchone()[0] == 11
