"""Load replay: many virtual agents, each replaying a recorded session as its own user."""

from __future__ import annotations

import duckdb

from gwsreplay.replay.engine import EngineOptions, ReplayState, Report, Send, SessionEngine
from gwsreplay.replay.plan import SessionPlan, Step
from gwsreplay.replay.recorded import read_plan
from gwsreplay.drivers.report import summary, transcript
from gwsreplay.drivers.runner import ReplayOptions, replay
from gwsreplay.replay.users import UserMap
from replay_fixtures import SIM_SEED, capture


async def test_load_replay_runs_copies_of_the_capture_as_pool_users(sim_factory, tmp_path):
    plan = read_plan(capture("long-polling"))            # three sessions that call each other
    sim = await sim_factory(seed=SIM_SEED, agents=9)
    progress = []
    out = tmp_path / "load.duckdb"
    result = await replay(plan, ReplayOptions(
        target=sim.url, agents=9, ramp_up=0.5, out=out, users=UserMap.simulator(),
        engine=EngineOptions(wait_timeout=5, drain_timeout=2)), on_progress=progress.append)
    assert not result.divergences, result.divergence_rows()[:5]
    assert len(result.states) == 3 and len(result.runs) == 9
    assert sorted(r.credentials.user for r in result.runs) == sorted(f"agent{k}" for k in range(1, 10))
    # each copy calls within itself: copy 1's agent1 (agent4) dials copy 1's agent2 (agent5)
    assert result.states[1].idmap.forward["7002"] == "7005"
    assert result.states[2].idmap.forward["7003"] == "7009"
    # every copy behaved exactly like the recording
    assert transcript(result, 0) == transcript(result, 1) == transcript(result, 2)
    info = summary(result)
    assert info["operations"] > 9 * 10 and info["latency_p99_ms"] is not None and info["concurrent_peak"] >= 3
    assert progress and progress[-1].sessions_done == 9
    con = duckdb.connect(str(out), read_only=True)
    users = con.execute("SELECT count(DISTINCT user_name) FROM exchanges WHERE user_name IS NOT NULL").fetchone()[0]
    assert users == 9


async def test_load_rounds_agents_to_whole_copies_and_uses_the_map_pool(sim_factory, tmp_path):
    users = tmp_path / "users.toml"
    users.write_text('password = "password"\n[pool]\nusers = ["agent8", "agent7", "agent6"]\n')
    plan = read_plan(capture("websocket"))
    sim = await sim_factory(seed=SIM_SEED, agents=8)
    result = await replay(plan, ReplayOptions(target=sim.url, agents=4, users=UserMap.from_toml(users, simulator=True),
                                              engine=EngineOptions(wait_timeout=5, drain_timeout=2)))
    assert not result.divergences, result.divergence_rows()[:5]
    assert [r.credentials.user for r in result.runs] == ["agent8", "agent7", "agent6"]


# ----------------------------------------------------------------------------- numbers within a copy


def _devices_step(index: int, phone: str, device: str) -> Step:
    return Step(index=index, kind="rest", ts=0.2, end_ts=0.3, method="GET", path="/api/v2/me/devices",
                query={"fields": "*"}, status=200, status_code=0,
                response={"statusCode": 0, "devices": [{"id": device, "phoneNumber": phone}]})


def _dial_plan() -> tuple[SessionPlan, SessionPlan]:
    """agent1 dials agent2's recorded number; agent2's number is only in its own GET /me/devices answer
    (no device notification before the Dial, as with desktops that subscribe late): no recorded wait."""
    dial = Step(index=0, kind="rest", ts=1.0, end_ts=1.1, method="POST", path="/api/v2/me/devices/dev-a1/calls",
                body={"operationName": "Dial", "destination": {"phoneNumber": "7002"}}, operation="Dial",
                status=200, status_code=0, response={"statusCode": 0})
    p1 = SessionPlan("agent1", "agent1", None, "long-polling", 0.0, [dial], [], {"7001"}, set())
    p2 = SessionPlan("agent2", "agent2", None, "long-polling", 0.0,
                     [_devices_step(0, "7002", "dev-rec-a2-0000000000")], [], {"7002"}, set())
    return p1, p2


def test_a_dial_to_a_colleague_waits_until_the_copy_knows_the_live_number():
    p1, p2 = _dial_plan()
    assert not p1.steps[0].waits                          # nothing in the recording says to wait
    state = ReplayState([p1, p2])
    state.idmap.seed_users([("agent1", "agent3"), ("agent2", "agent4")])
    e1, e2 = SessionEngine(p1, state, EngineOptions(wait_timeout=5)), SessionEngine(p2, state)
    e1.start(0.0), e2.start(0.0)
    assert not [a for a in e1.poll(0.0) if isinstance(a, Send)]     # 7002 is not known in this copy yet
    assert e1.deadline == 5.0
    (get,) = [a for a in e2.poll(0.0) if isinstance(a, Send)]
    e2.on_answer(0, 0.1, status=200, body={"statusCode": 0, "devices": [{"id": "dev-live-a4-00000000",
                                                                         "phoneNumber": "7004"}]})
    (send,) = [a for a in e1.poll(0.1) if isinstance(a, Send)]
    assert send.body["destination"]["phoneNumber"] == "7004"        # this copy's agent2, not copy 0's 7002
    assert not e1.divergences


def test_a_number_never_learned_is_a_divergence_not_a_call_to_another_copy():
    p1, p2 = _dial_plan()
    state = ReplayState([p1, p2])
    e1 = SessionEngine(p1, state, EngineOptions(wait_timeout=2))
    e1.start(0.0)
    assert not [a for a in e1.poll(0.0) if isinstance(a, Send)]
    actions = e1.poll(2.0)
    (report,) = [a.divergence for a in actions if isinstance(a, Report)]
    assert report.kind == "causality_timeout" and "live number of agent2 (recorded 7002)" in report.detail
    assert [a for a in actions if isinstance(a, Send)]              # then the session goes on


def test_a_dial_waits_until_the_callee_is_as_far_as_in_the_recording():
    """The callee had subscribed before the caller dialed: its Ringing must not be sent to nobody."""
    p1, p2 = _dial_plan()
    subscribe = Step(index=1, kind="subscribe", ts=0.5, end_ts=0.6, operation="/meta/subscribe",
                     message={"channel": "/meta/subscribe", "subscription": "/v2/me/*"}, successful=True)
    p2.steps.append(subscribe)
    state = ReplayState([p1, p2])
    e1, e2 = SessionEngine(p1, state, EngineOptions(wait_timeout=5)), SessionEngine(p2, state)
    e1.start(0.0), e2.start(0.0)
    e2.poll(0.0)
    e2.on_answer(0, 0.1, status=200, body={"statusCode": 0, "devices": [{"id": "dev-live-a2-00000000",
                                                                         "phoneNumber": "7002"}]})
    assert state.idmap.knows("7002")
    assert not [a for a in e1.poll(0.1) if isinstance(a, Send)]     # number known, callee not subscribed yet
    e2.poll(0.1)
    e2.on_answer(1, 0.2, successful=True)
    (send,) = [a for a in e1.poll(0.2) if isinstance(a, Send)]
    assert send.body["destination"]["phoneNumber"] == "7002" and not e1.divergences
