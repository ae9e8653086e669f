"""Replay keeps the recorded overlap: requests in flight together in the recording may be
in flight together in the replay (engine rule 1b), still waiting for the same notifications.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from gwsreplay.client.rest import GWSClient
from gwsreplay.drivers.runner import ReplayOptions, replay
from gwsreplay.replay.engine import EngineOptions, ReplayState, Send, SessionEngine
from gwsreplay.replay.plan import Note, SessionPlan, Step, Wait
from gwsreplay.replay.recorded import read_plan
from replay_fixtures import record_capture

pytestmark = pytest.mark.timeout(120)


def rest(index: int, ts: float, end_ts: float, path: str = "/api/v2/me", waits=()) -> Step:
    return Step(index=index, kind="rest", ts=ts, end_ts=end_ts, method="GET", path=path,
                response={"statusCode": 0}, status=200, status_code=0, waits=tuple(waits))


def engine(steps: list[Step], notes: list[Note] = ()) -> SessionEngine:
    plan = SessionPlan(id="a1", user_name="agent1", session_key=None, transport="long-polling", started=0.0,
                       steps=steps, notes=list(notes))
    return SessionEngine(plan, ReplayState([plan]), EngineOptions(speed=None))


def sent(actions) -> list[int]:
    return [a.step.index for a in actions if isinstance(a, Send)]


def test_requests_that_overlapped_in_the_recording_go_together():
    e = engine([rest(0, 0.0, 0.5), rest(1, 0.1, 0.4), rest(2, 0.2, 0.45), rest(3, 1.0, 1.1)])
    e.start(0.0)
    assert sent(e.poll(0.0)) == [0, 1, 2]           # the start-up burst
    e.on_answer(1, 0.1, status=200, body={"statusCode": 0})
    e.on_answer(0, 0.2, status=200, body={"statusCode": 0})
    assert sent(e.poll(0.2)) == []                    # step 3 came after every answer: it waits for step 2
    e.on_answer(2, 0.3, status=200, body={"statusCode": 0})
    assert sent(e.poll(0.3)) == [3]


def test_no_overlap_when_the_recording_had_none():
    e = engine([rest(0, 0.0, 0.1), rest(1, 0.2, 0.3)])
    e.start(0.0)
    assert sent(e.poll(0.0)) == [0]
    assert sent(e.poll(0.05)) == []
    e.on_answer(0, 0.1, status=200, body={"statusCode": 0})
    assert sent(e.poll(0.1)) == [1]


def test_an_overlapping_request_still_waits_for_its_notifications():
    note = Note(session="a1", index=0, ts=0.05, channel="/v2/me/devices",
                data={"messageType": "DeviceStateChangeMessage", "devices": [{"userState": {"state": "Ready"}}]},
                message_type="DeviceStateChangeMessage", notification_type=None, resource_type="device",
                resource_id=None, state="Ready", call_id=None, step=0)
    e = engine([rest(0, 0.0, 0.5), rest(1, 0.1, 0.4, "/api/v2/me/devices", waits=[Wait("a1", 0)])], [note])
    e.start(0.0)
    assert sent(e.poll(0.0)) == [0]                   # step 1 overlapped, but its notification has not come
    assert e.on_notification(note.channel, note.data, 0.05) == note
    assert sent(e.poll(0.05)) == [1]                  # now it goes, step 0 still in flight


# ---------------------------------------------------------------------- end to end


async def overlapping_session(url: str, transport: str) -> None:
    """A desktop that overlaps: a start-up burst of GETs, and a Hold while an AttachUserData is in flight."""
    async with GWSClient(url, "agent1", "password") as client:
        await client.me()
        cometd = client.cometd(transport)
        await cometd.handshake()
        await cometd.subscribe("/v2/me/*")

        async def wait_call(state: str) -> dict:
            while True:
                message = await asyncio.wait_for(cometd.events.get(), 10)
                call = (message.get("data") or {}).get("call") or {}
                if call.get("state") == state:
                    return call

        await client.start_session()
        await asyncio.gather(client.get("me/devices"), client.get("me/calls"), client.get("me/channels"),
                             client.get("me", subresources="*"))
        await client.ready()
        async with aiohttp.ClientSession() as control:
            async with control.post(url + "/sim/v1/calls", json={"from": "5551234", "to": "7001"}) as r:
                injected = await r.json()
            call = await wait_call("Ringing")
            await client.call_op(call["id"], "Answer")
            await wait_call("Established")
            await asyncio.gather(client.call_op(call["id"], "AttachUserData", userData={"k": "v"}),
                                 client.call_op(call["id"], "Hold"))
            await wait_call("Held")
            async with control.post(f"{url}/sim/v1/calls/{injected['id']}/hangup") as r:
                await r.read()
            await wait_call("Released")
        await cometd.disconnect()
        await cometd.close()
        await client.end_session()


def overlapping_pairs(steps: list[Step]) -> list[tuple[Step, Step]]:
    rests = [s for s in steps if s.kind == "rest"]
    return [(a, b) for i, a in enumerate(rests) for b in rests[i + 1:] if b.ts < a.end_ts]


async def test_replay_of_a_capture_whose_requests_overlap(tmp_path, sim_factory):
    db = record_capture(tmp_path / "overlap.duckdb", "long-polling", script=overlapping_session)
    plan = read_plan(db)
    session = plan.sessions[0]
    pairs = overlapping_pairs(session.steps)
    assert any(b.operation == "Hold" or a.operation == "Hold" for a, b in pairs), [
        (a.label(), b.label()) for a, b in pairs]
    assert sum(1 for a, b in pairs if a.method == b.method == "GET") >= 1
    sim = await sim_factory(seed=5)
    result = await replay(plan, ReplayOptions(target=sim.url, engine=EngineOptions(wait_timeout=5, drain_timeout=2)))
    assert not result.divergences, json.dumps(result.divergence_rows(), default=str)[:2000]
    outcomes = result.runs[0].engine.outcomes
    together = [(a, b) for a, b in pairs if outcomes[b.index].sent_at < outcomes[a.index].answered_at]
    assert together, "no recorded overlap was kept in the replay"
    # ... and nothing that was not overlapping in the recording overlapped in the replay
    rests = [s for s in session.steps if s.kind == "rest"]
    for a, b in zip(rests, rests[1:]):
        if (a, b) not in pairs and b.ts >= a.end_ts:
            assert outcomes[b.index].sent_at >= outcomes[a.index].answered_at, (a.label(), b.label())
