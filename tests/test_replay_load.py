"""Load replay: many virtual agents, each replaying a recorded session as its own user."""

from __future__ import annotations

import duckdb

from gwsreplay.replay.engine import EngineOptions
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
