"""`gwsreplay mock` serving several recorded sessions at once: two real desktops, no GWS.

agent1 calls agent2 in the scripted capture: agent2's desktop must get its Ringing only
after agent1's desktop has dialled, and each desktop its own recorded notifications, in
recorded order, with the ids the mock made up (the same ids on both desktops).
"""

from __future__ import annotations

import asyncio
import os
import subprocess

import pytest

from conftest import ROOT, gwsreplay_command
from gwsreplay.drivers.mock import MockScript
from gwsreplay.replay.compare import Symbols, normalize
from gwsreplay.replay.idmap import IdMap
from gwsreplay.replay.plan import build_plan
from gwsreplay.replay.recorded import load_capture, read_plan
from jsdesktop import JsDesktop, node_available
from replay_fixtures import capture
from test_mock_js import _query, start_mock

pytestmark = pytest.mark.timeout(180)

try:  # two Chromium pages: the browser desktop's fixtures (skipped without playwright)
    import test_browser_desktop as bd
    from test_browser_desktop import browser, record_proxy, static_desktop  # noqa: F401 - fixtures
except pytest.skip.Exception:
    bd = None


def scripts(speed=None):
    recorded = load_capture(capture("long-polling"))
    plan = build_plan(recorded, ["agent1", "agent2"])
    made = [MockScript(s, base_url="http://mock", origins=recorded.origins, speed=speed) for s in plan.sessions]
    made[0].peers, made[1].peers = [made[1]], [made[0]]
    for script in made:
        script.start(0.0)
    return made


def answer_until(script: MockScript, predicate, now: float) -> None:
    """Answer `script`'s recorded requests in order until one matches `predicate` (included)."""
    for step in script.plan.steps:
        if step.kind == "rest" and step.index not in script.done_at:
            status, _ = script.answer(step.method, step.path, step.body, now)
            assert status == step.status, step.label()
            if predicate(step):
                return
    raise AssertionError("no such step")


def test_a_notification_caused_by_the_other_desktop_waits_for_its_request():
    a1, a2 = scripts()
    dial = next(s for s in a1.plan.steps if s.operation == "Dial")
    ringing = next(n for n in a2.plan.notes if n.state == "Ringing")
    # agent2 has done everything it did before the ring; agent1 everything but the Dial.
    answer_until(a2, lambda s: s.ts > ringing.ts or s is max(
        (x for x in a2.plan.steps if x.kind == "rest" and x.ts < ringing.ts), key=lambda x: x.ts), 1.0)
    answer_until(a1, lambda s: s.index == dial.index - 1, 1.0)
    a1.delivered(len(a1.due(100.0)[0]))
    before = [d.data.get("call", {}).get("state") for d in a2.due(100.0)[0]]
    assert "Ringing" not in before                       # however long ago agent2's own last request was
    a2.delivered(len(before))
    status, _ = a1.answer(dial.method, dial.path, dial.body, 101.0)
    assert status == 200
    after = [d.data.get("call", {}).get("state") for d in a2.due(101.0)[0]]
    assert after and after[0] == "Ringing"               # now, right after the Dial (speed max)
    # one id map for both desktops: the call id agent2 sees is the one agent1's answers will name
    assert a1.ids.live(ringing.call_id) == a2.ids.live(ringing.call_id) != ringing.call_id


async def play(desktop: JsDesktop, session) -> list[dict]:
    """Do what the recorded session did, each request once its preceding notifications came."""
    learned = IdMap()
    received: list[dict] = []

    async def notifications_until(count: int) -> None:
        while len(received) < count:
            event = await desktop.wait_for(lambda e: e["event"] == "message", timeout=15)
            learned.learn(session.notes[len(received)].data, event["data"])
            received.append(event)

    for step in session.steps:
        await notifications_until(sum(1 for n in session.notes if n.ts < step.ts))
        if step.kind == "handshake":
            assert (await desktop.connect())["successful"]
        elif step.kind == "subscribe":
            assert (await desktop.subscribe(step.message["subscription"]))["successful"]
        elif step.kind == "disconnect":
            await desktop.disconnect()
        elif step.kind == "rest":
            answer = await desktop.rest(step.method, learned.substitute_path(step.path) + _query(step.query),
                                        learned.substitute(step.body))
            assert answer["status"] == step.status, (desktop.user, step.label(), answer)
            if isinstance(step.response, dict):
                learned.learn(step.response, answer["body"])
    await notifications_until(len(session.notes))
    return received


@pytest.mark.skipif(not node_available(), reason="node or node_modules/cometd missing (run make node)")
@pytest.mark.parametrize("transport", ["long-polling", "websocket"])
async def test_two_official_js_desktops_against_one_mock(transport):
    db = capture(transport)
    plan = read_plan(db, ["agent1", "agent2"])
    mock = await start_mock(db, "agent1", "--session", "agent2", "--speed", "max")
    try:
        async with JsDesktop(mock.url, "agent1", transport=transport) as d1, \
                JsDesktop(mock.url, "agent2", transport=transport) as d2:
            got1, got2 = await asyncio.gather(play(d1, plan.sessions[0]), play(d2, plan.sessions[1]))
    finally:
        code, stderr = await mock.stop()
    assert code == 0 and "0 unmatched" in stderr, stderr
    for got, session in ((got1, plan.sessions[0]), (got2, plan.sessions[1])):
        live, recorded = Symbols(), Symbols()     # the recorded sequence, once ids are symbolised
        assert [normalize(e["data"], live) for e in got] == [normalize(n.data, recorded) for n in session.notes]
    # the call between them carries the same made-up id on both desktops
    calls1 = {e["data"]["call"]["id"] for e in got1 if "call" in e["data"]}
    calls2 = {e["data"]["call"]["id"] for e in got2 if "call" in e["data"]}
    assert calls1 & calls2
    assert not calls1 & {n.call_id for n in plan.sessions[0].notes}


async def test_mock_serves_every_session_by_default():
    db = capture("long-polling")
    proc = await asyncio.create_subprocess_exec(
        *gwsreplay_command(), "mock", "--db", str(db), "--port", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=str(ROOT))
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    proc.send_signal(2)
    await asyncio.wait_for(proc.communicate(), 20)
    assert "sessions agent1 (agent1), agent2 (agent2), agent3 (agent3)" in line, line


def test_mock_refuses_a_bad_port_in_one_line():
    db = capture("long-polling")
    proc = subprocess.run([*gwsreplay_command(), "mock", "--db", str(db), "--port", "99999"],
                          capture_output=True, text=True, cwd=str(ROOT), timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "--port must be from 0 to 65535" in proc.stderr


async def _call_between_two_pages(p1, p2, transport: str, base_url: str | None) -> None:
    """agent1 dials agent2 (7002), agent2 answers, agent1 hangs up; both log out."""
    await p1.login(transport, base_url, user="agent1")
    await p2.login(transport, base_url, user="agent2")
    await p1.agent_state("btn-ready", "Ready")
    await p2.agent_state("btn-ready", "Ready")
    await p1.page.fill("#dial-number", "7002")
    await p1.page.click("#btn-dial")
    await p2.page.wait_for_selector("li.call[data-state='Ringing']")
    await p2.call_operation("Answer", "Established")
    await p1.page.wait_for_selector("li.call[data-state='Established']")
    await p1.call_operation("Hangup", "Released")
    await p2.page.wait_for_selector("li.call[data-state='Released']")
    await p1.logout()
    await p2.logout()


@pytest.mark.skipif(bd is None or not os.path.exists(bd.CHROMIUM if bd else ""), reason="no playwright/Chromium")
async def test_two_chromium_desktops_against_one_mock(browser, sim_process, record_proxy, static_desktop, tmp_path):
    transport = "long-polling"
    sim = await sim_process("--agents", "3", "--answer-delay", "0.05")
    db = tmp_path / "two-pages.duckdb"
    proxy = await record_proxy(sim.url, db)
    pages = [await bd.DesktopPage.open(browser, proxy.url + "/sim/desktop/", f"multi-rec-{k}") for k in (1, 2)]
    await _call_between_two_pages(*pages, transport, None)
    recorded = [[bd.notification_key(n["channel"], n["data"]) for n in await p.notifications()] for p in pages]
    for p in pages:
        await p.close()
    assert await proxy.stop() == 0, proxy.output()
    await sim.stop()
    assert all(recorded) and any(k[2] == "Ringing" for k in recorded[1] if len(k) > 2)

    _, help_text = await asyncio.to_thread(bd.mock_help)
    mock = bd.MockProcess(db, tmp_path / "mock.log", help_text)     # every session of the capture
    try:
        await mock.wait_listening()
        origin = await bd.page_origin_for(mock.url, static_desktop)
        pages = [await bd.DesktopPage.open(browser, origin + "/sim/desktop/", f"multi-mock-{k}") for k in (1, 2)]
        await _call_between_two_pages(*pages, transport, mock.url)
        replayed = [[bd.notification_key(n["channel"], n["data"]) for n in await p.notifications()] for p in pages]
        errors = [e for p in pages for e in p.errors]
        for p in pages:
            await p.close()
    finally:
        code = await asyncio.to_thread(mock.stop)
    assert replayed == recorded
    assert errors == [], errors
    assert code == 0, mock.output()
