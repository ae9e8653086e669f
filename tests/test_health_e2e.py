"""Desktop health end to end: desktops made to misbehave against the simulator, recorded by
``gwsreplay record`` (a child process), then analysed by analysis/health.py.

The simulator runs in-process with a short CometD timeout (1 s) and maxInterval (2.5 s), on a
loop of its own in a thread, so the recording is made once for the module:

* agent1 loses its network for 5.5 s while a connect is held (the connect is abandoned), comes
  back with its old clientId (402), handshakes again;
* agent2 opens a second tab on the same HTTP session, and sends a POST without its CSRF token (403);
* agent3 connects over WebSocket, loses the socket and goes on long-polling;
* agent4 (only when the simulator has GWS's user monitor): away longer than maxInterval plus the
  logout timeout, logged out by the server, comes back with a new session.

The multiple-clients advice and the user monitor are newer simulator features: their tests
say so and skip when the simulator does not have them yet (a quick probe decides).
"""

from __future__ import annotations

import asyncio
import inspect
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest

from conftest import start_sim
from gwsreplay.analysis import health
from gwsreplay.cli.processes import free_port, gwsreplay_command, stop
from gwsreplay.client.cometd import CometdClient
from gwsreplay.client.rest import GWSClient
from gwsreplay.sim.server.app import make_app

# maxInterval above CometD's 2 s multiple-clients interval, as in production (10 s), so a tab told
# to wait 2 s is not expired meanwhile
TIMEOUT_S, MAX_INTERVAL_S = 1.0, 2.5
CUT_S = 5.5
#: The user monitor's delay in this test (when the simulator has one): longer than agent1's cut.
LOGOUT_TIMEOUT_S = 6.0
HAS_USER_MONITOR = "logout_timeout" in inspect.signature(make_app).parameters


@dataclass
class Recording:
    db: Path
    multiple_clients: bool = False          # the probe saw advice.multiple-clients
    clients: dict[str, str] = field(default_factory=dict)
    notes: dict[str, object] = field(default_factory=dict)


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gwsreplay record exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the capture proxy did not listen")


async def _start(url: str, user: str) -> GWSClient:
    client = GWSClient(url, user, "password")
    assert (await client.me()).ok
    assert (await client.start_session()).status == 200
    return client


async def _cometd(client: GWSClient, transport: str = "long-polling", **kw) -> CometdClient:
    c = client.cometd(transport, **kw)
    await c.handshake()
    await c.subscribe("/v2/me/*")
    return c


async def _leave(client: GWSClient, *tabs: CometdClient) -> None:
    for tab in tabs:
        await tab.disconnect()
    await client.end_session()
    await client.close()


async def probe_multiple_clients(sim_url: str) -> bool:
    """Two CometD clients of one HTTP session straight to the simulator (not recorded): does the
    second long-poll get ``advice.multiple-clients``?"""
    seen: list[dict] = []
    client = GWSClient(sim_url, "agent9", "password")
    try:
        await client.me()
        hook = (lambda d, m: seen.append(m) if d == "in" else None)
        tabs = [await _cometd(client, on_message=hook) for _ in range(2)]
        await asyncio.sleep(2 * TIMEOUT_S + 0.5)
        for tab in tabs:
            await tab.close()
    finally:
        await client.close()
    return any((m.get("advice") or {}).get("multiple-clients") for m in seen)


async def network_cut(url: str, rec: Recording) -> None:
    client = await _start(url, "agent1")
    tab = await _cometd(client)
    assert (await client.ready()).ok
    await asyncio.sleep(TIMEOUT_S * 1.5)               # a connect is held now
    rec.clients["agent1-before"] = tab.session.client_id
    await tab.close()                                    # the network goes: the held connect is abandoned
    await asyncio.sleep(CUT_S)
    # back: the desktop polls with its old clientId, the server has forgotten it
    async with client.http.post(url + "/api/v2/notifications", headers=client.csrf_headers(),
                                json=[{"channel": "/meta/connect", "clientId": rec.clients["agent1-before"],
                                       "id": "99", "connectionType": "long-polling"}]) as r:
        rec.notes["agent1-back"] = await r.json()
    tab = await _cometd(client)
    rec.clients["agent1-after"] = tab.session.client_id
    assert (await client.not_ready()).ok
    await asyncio.sleep(0.5)
    await _leave(client, tab)


async def second_tab(url: str, rec: Recording) -> None:
    client = await _start(url, "agent2")
    first = await _cometd(client)
    second = await _cometd(client)
    rec.clients["agent2-first"], rec.clients["agent2-second"] = first.session.client_id, second.session.client_id
    await asyncio.sleep(3 * TIMEOUT_S)
    refused = await client.request("POST", "me", json_body={"operationName": "Ready"}, csrf=False)
    rec.notes["agent2-no-csrf"] = refused.status
    await _leave(client, second, first)


async def websocket_fallback(url: str, rec: Recording) -> None:
    client = await _start(url, "agent3")
    ws = await _cometd(client, "websocket")
    rec.clients["agent3-ws"] = ws.session.client_id
    await asyncio.sleep(TIMEOUT_S * 1.5)
    await ws.close()                                     # the socket dies; the desktop long-polls instead
    lp = await _cometd(client)
    rec.clients["agent3-lp"] = lp.session.client_id
    await asyncio.sleep(TIMEOUT_S * 1.5)
    await _leave(client, lp)


async def user_monitor(url: str, rec: Recording) -> None:
    client = await _start(url, "agent4")
    tab = await _cometd(client)
    await asyncio.sleep(0.3)
    await tab.close()
    # expired after the timeout + maxInterval, logged out LOGOUT_TIMEOUT_S later
    await asyncio.sleep(TIMEOUT_S + MAX_INTERVAL_S + LOGOUT_TIMEOUT_S + 1.5)
    assert (await client.me()).status == 200            # Basic credentials: a new HTTP session
    devices = await client.devices()
    rec.notes["agent4-state"] = devices.body["devices"][0]["userState"]["state"]
    tab = await _cometd(client)
    await asyncio.sleep(0.3)
    await tab.disconnect()
    await client.close()


async def _record(db: Path) -> Recording:
    options = {"cometd_timeout_ms": int(TIMEOUT_S * 1000), "cometd_max_interval_ms": int(MAX_INTERVAL_S * 1000)}
    if HAS_USER_MONITOR:
        options["logout_timeout"] = LOGOUT_TIMEOUT_S
    sim = await start_sim(**options)
    rec = Recording(db)
    port = free_port()
    proxy = None
    try:
        rec.multiple_clients = await probe_multiple_clients(sim.url)
        proxy = await asyncio.to_thread(
            subprocess.Popen, [*gwsreplay_command(), "record", "--upstream", sim.url, "--listen-port", str(port),
                               "--db", str(db), "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await asyncio.to_thread(_wait_port, port, proxy)
        url = f"http://127.0.0.1:{port}"
        scripts = [network_cut(url, rec), second_tab(url, rec), websocket_fallback(url, rec)]
        if HAS_USER_MONITOR:
            scripts.append(user_monitor(url, rec))
        await asyncio.gather(*scripts)
    finally:
        if proxy is not None:
            assert await asyncio.to_thread(stop, proxy, signal.SIGINT) == 0
        await sim.close()
    return rec


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Recording:
    db = tmp_path_factory.mktemp("health-e2e") / "misbehaving.duckdb"
    result: list = []

    def run() -> None:
        try:
            result.append(asyncio.run(_record(db)))
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            result.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(180)
    assert result, "the recording did not finish"
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


@pytest.fixture
def con(recording):
    c = duckdb.connect(str(recording.db), read_only=True)
    yield c
    c.close()


def test_network_cut_is_away_then_402_and_rehandshake(recording, con):
    assert recording.notes["agent1-back"][0]["error"].startswith("402")
    away = health.away_gaps(con, max_interval_s=MAX_INTERVAL_S)
    cut = away[away["user_name"] == "agent1"]
    assert len(cut) == 1, away
    row = cut.iloc[0]
    assert row["client_id"] == recording.clients["agent1-before"]
    # from the end of the abandoned connect's hold to the return: the cut minus what was left of the hold
    assert CUT_S - TIMEOUT_S - 0.5 < row["gap_s"] < CUT_S + 2
    assert row["came_back_with"] == "connect" and row["session_lost"] and row["back_error"].startswith("402")
    assert "agent2" not in set(away["user_name"])          # two tabs polling are not away
    stalled = health.stalled_connects(con)
    mine = stalled[stalled["user_name"] == "agent1"]
    assert len(mine) == 1 and mine["client_id"].iloc[0] == recording.clients["agent1-before"]
    assert mine["http_error"].notna().all()
    again = health.rehandshakes(con)
    again = again[again["user_name"] == "agent1"]
    assert again[["client_id", "new_client_id"]].values.tolist() == \
        [[recording.clients["agent1-before"], recording.clients["agent1-after"]]]
    assert again["handshake_successful"].all() and again["after_s"].iloc[0] < 2
    assert health.reconnect_storms(con).empty               # two handshakes 5.5 s apart are no storm
    # by GWS's rules a 1 s logout timeout would have logged agent1 out; the default 60 s did not
    logouts = health.server_logouts(con, logout_timeout_s=1.0, max_interval_s=MAX_INTERVAL_S)
    assert "agent1" in set(logouts.loc[logouts["evidence"] == "user monitor", "user_name"])
    assert "agent1" not in set(health.server_logouts(con, max_interval_s=MAX_INTERVAL_S)["user_name"])


def test_second_tab_is_two_clients_at_once(recording, con):
    both = health.concurrent_clients(con)
    rows = both[both["user_name"] == "agent2"]
    assert {frozenset(p) for p in rows[["client_id", "other_client_id"]].values.tolist()} == \
        {frozenset((recording.clients["agent2-first"], recording.clients["agent2-second"]))}
    assert rows["overlap_s"].iloc[0] > 2 * TIMEOUT_S
    assert set(both["user_name"]) == {"agent2"}


def test_websocket_fallback_to_long_polling(recording, con):
    fb = health.transport_fallbacks(con)
    assert fb[["user_name", "websocket_client_id", "client_id"]].values.tolist() == \
        [["agent3", recording.clients["agent3-ws"], recording.clients["agent3-lp"]]]


def test_http_errors_and_all_events(recording, con):
    assert recording.notes["agent2-no-csrf"] == 403
    err = health.http_errors(con)
    assert ((err["user_name"] == "agent2") & (err["status"] == 403)).sum() == 1
    assert (err["user_name"] == "agent1").any()            # the abandoned connect: no response
    ev = health.events(con, max_interval_s=MAX_INTERVAL_S)
    kinds = set(ev["kind"])
    assert {"away", "stalled_connect", "rehandshake", "concurrent_clients", "transport_fallback",
            "http_error"} <= kinds
    table = health.per_agent(ev).set_index("user_name")
    assert table.loc["agent1", "away"] == 1 and table.loc["agent3", "transport_fallback"] == 1


def test_multiple_clients_advice(recording, con):
    if not recording.multiple_clients:
        pytest.skip("the simulator does not send advice.multiple-clients yet (probe: two long-polls of one "
                    "HTTP session got none); the detector is unit-tested in test_analysis_health.py")
    advice = health.multiple_clients(con)
    assert set(advice["user_name"]) == {"agent2"}
    assert set(advice["client_id"]) <= {recording.clients["agent2-first"], recording.clients["agent2-second"]}


def test_user_monitor_logout(recording, con):
    if not HAS_USER_MONITOR:
        pytest.skip("the simulator has no user monitor yet (make_app takes no logout_timeout); the detector "
                    "is unit-tested in test_analysis_health.py")
    assert recording.notes["agent4-state"] == "LoggedOut"   # the simulator did log agent4 out
    logouts = health.server_logouts(con, logout_timeout_s=LOGOUT_TIMEOUT_S, max_interval_s=MAX_INTERVAL_S)
    assert set(logouts["user_name"]) == {"agent4"}
    away = health.away_gaps(con, max_interval_s=MAX_INTERVAL_S)
    back = away[away["user_name"] == "agent4"].iloc[0]
    assert back["came_back_with"] == "handshake" and back["gap_s"] > MAX_INTERVAL_S + LOGOUT_TIMEOUT_S
