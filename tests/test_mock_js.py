"""`gwsreplay mock` toward desktops: the official CometD JS client, and raw HTTP.

The JS desktop (tests/js/desktop.mjs) replays what agent2 did in the scripted
capture, the way a desktop would: it only knows the ids the mock gives it
(learned from the answers and notifications it receives, never the recorded
ones), and it sends each request once the notifications that preceded it in
the recording have arrived. It must receive the recorded notification sequence.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal

import aiohttp
import pytest

from conftest import ROOT, gwsreplay_command
from gwsreplay.replay.compare import Symbols, normalize
from gwsreplay.replay.idmap import IdMap
from gwsreplay.drivers.mock import MockScript, fresh_id
from gwsreplay.replay.plan import build_plan
from gwsreplay.replay.recorded import load_capture, read_plan
from jsdesktop import JsDesktop, node_available
from replay_fixtures import capture


class MockProcess:
    def __init__(self, proc: asyncio.subprocess.Process, url: str):
        self.proc, self.url = proc, url

    async def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGINT)
        _, stderr = await asyncio.wait_for(self.proc.communicate(), 20)
        return self.proc.returncode, stderr.decode()


async def start_mock(db, session: str, *extra: str) -> MockProcess:
    proc = await asyncio.create_subprocess_exec(
        *gwsreplay_command(), "mock", "--db", str(db), "--session", session, "--port", "0", *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=str(ROOT),
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    assert "listening on " in line, line + (await proc.stderr.read()).decode()
    return MockProcess(proc, line.split("listening on ", 1)[1].split()[0])


@pytest.mark.skipif(not node_available(), reason="node or node_modules/cometd missing (run make node)")
@pytest.mark.parametrize("transport", ["long-polling", "websocket"])
async def test_official_cometd_client_gets_the_recorded_notifications_from_the_mock(transport):
    db = capture(transport)
    plan = read_plan(db, ["agent2"])
    session = plan.sessions[0]
    mock = await start_mock(db, "agent2", "--speed", "4")
    learned = IdMap()            # recorded -> what the mock told this desktop
    received: list[dict] = []
    try:
        async with JsDesktop(mock.url, "agent2", transport=transport) as desktop:

            async def notifications_until(count: int) -> None:
                while len(received) < count:
                    event = await desktop.wait_for(lambda e: e["event"] == "message", timeout=10)
                    note = session.notes[len(received)]
                    learned.learn(note.data, event["data"])
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
                    path = learned.substitute_path(step.path) + _query(step.query)
                    answer = await desktop.rest(step.method, path, learned.substitute(step.body))
                    assert answer["status"] == step.status, (step.label(), answer)
                    assert answer["body"].get("statusCode") == step.status_code
                    if isinstance(step.response, dict):
                        learned.learn(step.response, answer["body"])
            await notifications_until(len(session.notes))
    finally:
        code, stderr = await mock.stop()
    assert code == 0, stderr
    assert "0 unmatched" in stderr
    # the recorded sequence, in recorded order, identical once ids are symbolised ...
    assert [(e["channel"]) for e in received] == [n.channel for n in session.notes]
    recorded_symbols, live_symbols = Symbols(), Symbols()
    assert [normalize(e["data"], live_symbols) for e in received] == \
           [normalize(n.data, recorded_symbols) for n in session.notes]
    # ... but with ids the mock made up, not the recorded ones
    recorded_calls = {n.call_id for n in session.notes if n.call_id}
    live_calls = {e["data"]["call"]["id"] for e in received if "call" in e["data"]}
    assert recorded_calls and not recorded_calls & live_calls


def _query(query: dict) -> str:
    from urllib.parse import urlencode

    return "?" + urlencode(query) if query else ""


async def test_mock_answers_unmatched_requests_with_a_gws_error_and_counts_them(tmp_path):
    db = capture("long-polling")
    log = tmp_path / "mock.jsonl"
    mock = await start_mock(db, "agent1", "--speed", "max", "--log", str(log))
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            auth = {"Authorization": "Basic YWdlbnQxOnBhc3N3b3Jk"}
            async with http.get(mock.url + "/api/v2/me?subresources=*", headers=auth) as r:
                me = await r.json()
                assert r.status == 200 and me["user"]["userName"] == "agent1"
                token = r.headers["X-CSRF-TOKEN"]
                assert "JSESSIONID" in r.headers.get("Set-Cookie", "")
            # a recorded id never leaves the mock: device ids are rewritten
            recorded_device = next(iter(read_plan(db, ["agent1"]).sessions[0].devices))
            assert me["user"]["devices"][0]["id"] == fresh_id(recorded_device, 0) != recorded_device
            async with http.get(mock.url + "/api/v2/me?subresources=*") as r:     # asked again: same answer
                assert (await r.json()) == me
            async with http.post(mock.url + "/api/v2/me/calls/nope", json={"operationName": "Answer"},
                                 headers={"X-CSRF-TOKEN": token}) as r:
                body = await r.json()
                assert r.status == 400 and body["statusCode"] == 2
                assert "no recorded request matches POST /api/v2/me/calls/nope (Answer)" in body["statusMessage"]
                assert "StartContactCenterSession" in body["statusMessage"]    # what was expected instead
    finally:
        code, stderr = await mock.stop()
    assert code == 1 and "1 unmatched" in stderr and "never asked" in stderr
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert any("divergence" in e for e in entries)


def test_mock_script_orders_notifications_after_the_requests_they_followed():
    recorded = load_capture(capture("long-polling"))
    plan = build_plan(recorded, ["agent2"]).sessions[0]
    script = MockScript(plan, base_url="http://mock", origins=recorded.origins, speed=None)
    script.start(0.0)
    assert script.due(0.0)[0] == []
    # The first notification (logged in NotReady) follows StartContactCenterSession, but the desktop
    # does not wait for it before its next request (GET /me/devices): in the recording it arrived
    # after whichever of the two had been sent last, and the plan attaches it to that step. The mock
    # must hold it until exactly that request has been answered - no sooner, whichever it is.
    first = plan.notes[0]
    assert first.data["messageType"] == "DeviceStateChangeMessage"
    follows = plan.steps[first.step]
    assert follows.kind == "rest" and follows.operation in ("StartContactCenterSession", None), follows.label()
    rest = [s for s in plan.steps if s.kind == "rest" and s.index <= first.step]
    assert any(s.operation == "StartContactCenterSession" for s in rest)
    for k, step in enumerate(rest):
        now = 0.1 * (k + 1)
        status, body = script.answer(step.method, step.path, step.body, now)
        assert status == 200 and body["statusCode"] == 0, step.label()
        due, _ = script.due(now)
        if step is not follows:
            assert due == [], step.label()                                      # not before its request
    assert [d.data["messageType"] for d in due] == ["DeviceStateChangeMessage"]   # logged in NotReady
    assert "http://mock/api/v2/" in json.dumps(due[0].data)                          # uris point at the mock
