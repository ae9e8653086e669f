"""The official CometD JS client with the AckExtension and the ReloadExtension, both transports.

Against the simulator (acks, a page reload that keeps the clientId and loses nothing,
a second tab getting multiple-clients advice), through the capture proxy (ext with
ack batch numbers and advice recorded as sent), replayed, and served by the mock.
"""

from __future__ import annotations

import asyncio
import json

import duckdb
import pytest

from conftest import ROOT
from jsdesktop import JsDesktop, node_available
from replay_fixtures import record_capture
from test_mock_js import start_mock

from gwsreplay.drivers.runner import ReplayOptions, replay
from gwsreplay.replay.engine import EngineOptions
from gwsreplay.replay.recorded import read_plan

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.skipif(not node_available(), reason="node or node_modules/cometd missing (run make node)")]

SCRIPT = ROOT / "tests" / "js" / "ext-desktop.mjs"
TRANSPORTS = ["long-polling", "websocket"]
VOICE = "/api/v2/me/channels/voice"


class ExtDesktop(JsDesktop):
    """tests/js/ext-desktop.mjs: one browser whose pages load the AckExtension and the ReloadExtension."""

    def __init__(self, url: str, user: str, transport: str = "long-polling", *, ack: bool = True,
                 reload: bool = True):
        super().__init__(url, user, transport=transport)
        self.ack, self.reload_ext = ack, reload

    async def __aenter__(self) -> "ExtDesktop":
        self._proc = await asyncio.create_subprocess_exec(
            "node", str(SCRIPT), "--url", self.url, "--user", self.user, "--password", self.password,
            "--transport", self.transport, "--ack", "1" if self.ack else "0", "--reload", "1" if self.reload_ext else "0",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            cwd=str(ROOT))
        self._reader = asyncio.create_task(self._read())
        await self.wait_for(lambda e: e["event"] == "ready", timeout=20)
        return self

    async def reload(self) -> dict:
        """Reload the page; returns the new page's (replayed) handshake."""
        self._send({"cmd": "reload"})
        return await self.wait_for(lambda e: e["event"] == "handshake" and e["page"] > 0, timeout=10)

    async def tab(self) -> dict:
        self._send({"cmd": "tab"})
        return await self.wait_for(lambda e: e["event"] == "handshake" and e["page"] > 0, timeout=10)

    async def op(self, path: str, operation: str, **params) -> dict:
        answer = await self.rest("POST", path, {"operationName": operation, **params})
        assert answer["status"] == 200 and answer["body"]["statusCode"] == 0, answer
        return answer


def agent_state(state: str):
    """A DeviceStateChangeMessage saying the agent is now `state`."""
    def match(event: dict) -> bool:
        data = event.get("data") or {}
        return (event["event"] == "message" and data.get("messageType") == "DeviceStateChangeMessage"
                and any((d.get("userState") or {}).get("state") == state for d in data.get("devices") or []))
    return match


async def session_with_ack_and_reload(url: str, transport: str) -> list[dict]:
    """Log in, get notifications with acks, reload the page while an operation's notifications are
    on their way, and get them on the new page. Returns every event the desktop saw."""
    async with ExtDesktop(url, "agent1", transport) as desktop:
        await desktop.rest("GET", "/api/v2/me")
        first = await desktop.connect()
        assert first["successful"] and first["transport"] == transport
        assert first["ext"] == {"ack": True}, first                  # the server speaks the ack extension
        assert (await desktop.subscribe("/v2/me/*"))["successful"]
        await desktop.op("/api/v2/me", "StartContactCenterSession", channels=["voice"])
        await desktop.wait_for(agent_state("NotReady"))
        await desktop.op(VOICE, "Ready")
        await desktop.wait_for(agent_state("Ready"))
        # Let the page acknowledge that batch (its next connect says so) before it reloads: the new
        # page's AckExtension starts over from batch 0, so a batch the old page saw but had not
        # acknowledged yet would come again, as from Jetty's CometD (a duplicate in the capture).
        await asyncio.sleep(0.5)
        again = await desktop.reload()
        # The ReloadExtension replays the old handshake: same clientId, no new handshake on the wire.
        assert again["clientId"] == first["clientId"] and again["ext"]["reload"] is True
        await desktop.op(VOICE, "NotReady")
        event = await desktop.wait_for(agent_state("NotReady"))
        assert event["page"] == 1                                       # the new page got it
        await desktop.wait_for(lambda e: e["event"] == "connect" and e["page"] == 1)
        await desktop.disconnect()
        acks = [e["ext"]["ack"] for e in desktop.events if e["event"] == "connect" and e["page"] == 0]
        assert acks and acks == sorted(acks) and all(isinstance(a, int) for a in acks)
        assert not [e for e in desktop.events if e["event"] == "meta" and not e["successful"]
                    and e["error"] not in (None,)]
        return list(desktop.events)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_ack_and_reload_extensions_against_the_simulator(sim, transport):
    events = await session_with_ack_and_reload(sim.url, transport)
    assert not sim.cometd._clients                                      # disconnected cleanly
    assert any(e["event"] == "message" and e["page"] == 0 for e in events)
    assert sim.contact_center.agents["agent1"].logged_in                 # no user-monitor logout on a reload


async def test_a_second_tab_gets_multiple_clients_advice_and_both_get_events(sim):
    async with ExtDesktop(sim.url, "agent1", "long-polling", reload=False) as browser:
        await browser.rest("GET", "/api/v2/me")
        first = await browser.connect()
        assert first["successful"]
        assert (await browser.subscribe("/v2/me/*"))["successful"]
        tab = await browser.tab()
        assert tab["successful"] and tab["clientId"] != first["clientId"]
        advised = await browser.wait_for(lambda e: e["event"] == "connect" and e["page"] == 1 and
                                         (e["advice"] or {}).get("multiple-clients") is True, timeout=15)
        assert advised["advice"]["interval"] == 2000
        await browser.op("/api/v2/me", "StartContactCenterSession", channels=["voice"])
        pages = set()
        while pages != {0, 1}:
            pages.add((await browser.wait_for(agent_state("NotReady"), timeout=15))["page"])


# ---------------------------------------------------------------------- capture, replay, mock


_captures: dict[str, object] = {}


def ext_capture(tmp_path_factory, transport: str):
    """The ack + reload session recorded through the capture proxy (once per transport)."""
    if transport not in _captures:
        db = tmp_path_factory.mktemp("ext") / f"ack-reload-{transport}.duckdb"
        _captures[transport] = record_capture(db, transport, script=session_with_ack_and_reload)
    return _captures[transport]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_capture_records_ack_ext_and_advice_as_sent(tmp_path_factory, transport):
    db = ext_capture(tmp_path_factory, transport)
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT direction, channel, successful, ext, advice FROM bayeux_messages "
                           "WHERE channel IN ('/meta/handshake', '/meta/connect') ORDER BY ts, position").fetchall()
    handshakes = [(d, json.loads(x) if x else None) for d, c, _, x, _ in rows if c == "/meta/handshake"]
    assert {json.dumps(x) for _, x in handshakes} == {json.dumps({"ack": True})}   # asked and granted, once
    assert len(handshakes) == 2                                                  # the reload did not handshake
    replies = [(json.loads(x or "null"), json.loads(a or "null")) for d, c, ok, x, a in rows
               if c == "/meta/connect" and ok is not None]
    requests = [json.loads(x or "null") for d, c, ok, x, a in rows if c == "/meta/connect" and ok is None]
    batches = [x["ack"] for x, _ in replies if x]
    assert batches and all(isinstance(b, int) for b in batches)
    assert all(a and a.get("reconnect") in ("retry", "none") for _, a in replies)  # advice kept
    assert replies[0][1] == {"reconnect": "retry", "interval": 0, "timeout": 30000}
    acks = [x["ack"] for x in requests if x and "ack" in x]
    # acknowledgements on the wire; the reloaded page starts over from batch 0
    assert any(acks[i] == 0 and max(acks[:i]) > 0 for i in range(1, len(acks))), acks


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_replay_of_an_ack_and_reload_capture(tmp_path_factory, sim_factory, transport):
    db = ext_capture(tmp_path_factory, transport)
    plan = read_plan(db)
    assert [s.kind for s in plan.sessions[0].steps].count("handshake") == 1
    sim = await sim_factory(seed=7)
    result = await replay(plan, ReplayOptions(target=sim.url, engine=EngineOptions(wait_timeout=5, drain_timeout=2)))
    assert not result.divergences, json.dumps(result.divergence_rows(), default=str)[:2000]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_mock_serves_a_desktop_with_ack_and_reload(tmp_path_factory, transport):
    db = ext_capture(tmp_path_factory, transport)
    mock = await start_mock(db, "agent1", "--speed", "max")
    try:
        await session_with_ack_and_reload(mock.url, transport)
    finally:
        code, stderr = await mock.stop()
    assert code == 0 and "0 unmatched" in stderr, stderr
