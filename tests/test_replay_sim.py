"""Replaying simulator-made captures against fresh simulators, end to end.

The captures come from `replay_fixtures`: the simulator and the capture proxy as
child processes, a fixed three-agent desktop script through the proxy, recorded
once per test session for each CometD transport.
"""

from __future__ import annotations

import json
import os
import subprocess

import duckdb
import pytest
from conftest import ROOT, gwsreplay_command
from replay_fixtures import SIM_AGENTS, SIM_SEED, capture

from gwsreplay.drivers.report import report_json, transcript
from gwsreplay.drivers.runner import ReplayOptions, replay
from gwsreplay.drivers.target_guard import ReplayRefused
from gwsreplay.replay.engine import EngineOptions
from gwsreplay.replay.recorded import read_plan
from gwsreplay.replay.users import UserMap

TRANSPORTS = ["long-polling", "websocket"]
FAST = EngineOptions(wait_timeout=5.0, drain_timeout=2.0)


async def run(plan, sim, **options):
    return await replay(plan, ReplayOptions(target=sim.url, engine=options.pop("engine", FAST), **options))


def no_divergence(result) -> None:
    assert not result.divergences, json.dumps(result.divergence_rows(), indent=1, default=str)[:3000]


# ----------------------------------------------------------------------------- the plan


def test_plan_of_the_scripted_capture():
    plan = read_plan(capture("long-polling"))
    assert [s.id for s in plan.sessions] == ["agent1", "agent2", "agent3"]
    a1, a2, a3 = plan.sessions
    assert {s.transport for s in plan.sessions} == {"long-polling"}
    assert a1.phones == {"7001"} and a2.phones == {"7002"}
    kinds = [s.kind for s in a1.steps]
    assert kinds[:3] == ["rest", "handshake", "subscribe"] and kinds.count("inject_call") == 2
    assert kinds.count("far_end_hangup") == 1 and not any(s.inferred for s in a1.steps)
    # agent2's Answer waits for its own Ringing and for agent1's Dialing
    answer = next(s for s in a2.steps if s.operation == "Answer")
    waited = {(w.session, plan.session(w.session).notes[w.note].label()) for w in answer.waits}
    assert ("agent2", "CallStateChangeMessage Ringing") in waited
    assert ("agent1", "CallStateChangeMessage Dialing") in waited
    # agent1's Dial to 7002 leaves only once agent2 is Ready
    dial = next(s for s in a1.steps if s.operation == "Dial")
    assert ("agent2", "DeviceStateChangeMessage Ready") in {
        (w.session, plan.session(w.session).notes[w.note].label()) for w in dial.waits}
    # agent3 answers the consult call agent1 started
    assert any(s.operation == "Answer" for s in a3.steps)


def without_control_requests(tmp_path):
    """The capture as if the control API had been called directly, not through the proxy."""
    db = tmp_path / "no_control.duckdb"
    con = duckdb.connect(str(db))
    con.execute(f"ATTACH '{capture('long-polling')}' AS src (READ_ONLY)")
    con.execute("COPY FROM DATABASE src TO no_control")
    con.execute("DELETE FROM exchanges WHERE starts_with(path, '/sim/')")
    con.close()
    return db


def test_plan_infers_external_events_when_the_capture_has_no_control_requests(tmp_path):
    a1 = read_plan(without_control_requests(tmp_path)).session("agent1")
    inferred = [(s.kind, s.external.get("from")) for s in a1.steps if s.inferred]
    assert inferred == [("inject_call", "5551234"), ("far_end_hangup", None), ("inject_call", "5559876")]
    inject = next(s for s in a1.steps if s.kind == "inject_call")
    assert inject.external["to"] == "7001" and inject.external["userData"] == {"Segment": "Gold"}


# ----------------------------------------------------------------------------- replay against the simulator


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_replay_against_fresh_simulator_has_no_divergence_and_a_stable_transcript(sim_factory, transport):
    plan = read_plan(capture(transport))
    first = await run(plan, await sim_factory(seed=SIM_SEED, agents=SIM_AGENTS))
    no_divergence(first)
    second = await run(plan, await sim_factory(seed=SIM_SEED, agents=SIM_AGENTS))
    no_divergence(second)
    assert first.simulator and second.simulator
    t1, t2 = transcript(first), transcript(second)
    assert t1 == t2
    assert "<missing>" not in json.dumps(t1)
    # every recorded external event was injected through the control API
    injected = [o for r in first.runs for o in r.engine.outcomes if o.step.kind in ("inject_call", "far_end_hangup")]
    assert len(injected) == 3 and all(o.status == 200 and o.status_code == 0 for o in injected)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_replay_maps_every_id_when_the_simulator_has_another_seed(sim_factory, transport):
    plan = read_plan(capture(transport))
    result = await run(plan, await sim_factory(seed=SIM_SEED + 7, agents=SIM_AGENTS))
    no_divergence(result)
    idmap = result.states[0].idmap
    assert idmap.summary()["changed"] >= 10            # call ids, connIds, device ids, user ids ...
    assert list(idmap.origins.values()) == [result.target]
    same_seed = await run(plan, await sim_factory(seed=SIM_SEED, agents=SIM_AGENTS))
    assert transcript(result) == transcript(same_seed)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_replay_of_chat_email_workitem_and_im(sim_factory, transport):
    """Media events recorded as control requests (/sim/v1/chats, ...) are injected again; IM
    operations wait for the notification that created the session; ids map for every medium."""
    plan = read_plan(capture(transport, "media"))
    kinds = [s.kind for s in plan.session("agent1").steps]
    assert kinds.count("control") >= 3                     # chat, chat message, email
    first = await run(plan, await sim_factory(seed=SIM_SEED, agents=SIM_AGENTS))
    no_divergence(first)
    other_seed = await run(plan, await sim_factory(seed=SIM_SEED + 3, agents=SIM_AGENTS))
    no_divergence(other_seed)
    assert transcript(first) == transcript(other_seed)
    media = {n.resource_type for s in plan.sessions for n in s.notes}
    assert {"chat", "email", "workitem", "im-session"} <= media


async def test_replay_with_inferred_external_events(sim_factory, tmp_path):
    result = await run(read_plan(without_control_requests(tmp_path)), await sim_factory(seed=SIM_SEED, agents=SIM_AGENTS))
    no_divergence(result)


async def test_replay_as_other_users(sim_factory, tmp_path):
    """agent1..3 replayed as agent6..8: phone numbers in Dial/transfer bodies follow the users."""
    users = tmp_path / "users.toml"
    users.write_text('password = "password"\n[users]\nagent1 = "agent6"\nagent2 = "agent7"\nagent3 = "agent8"\n')
    plan = read_plan(capture("long-polling"))
    sim = await sim_factory(seed=SIM_SEED, agents=8)
    result = await run(plan, sim, users=UserMap.from_toml(users, simulator=True))
    no_divergence(result)
    assert [r.credentials.user for r in result.runs] == ["agent6", "agent7", "agent8"]
    assert result.states[0].idmap.forward["7002"] == "7007"


async def test_replay_at_recorded_speed_keeps_think_times(sim_factory):
    plan = read_plan(capture("long-polling"))
    recorded = plan.sessions[0].steps[-1].ts - plan.sessions[0].steps[0].ts
    sim = await sim_factory(seed=SIM_SEED, agents=SIM_AGENTS)
    fast = await run(plan, sim, engine=EngineOptions(speed=None, wait_timeout=5, drain_timeout=1))
    sim = await sim_factory(seed=SIM_SEED, agents=SIM_AGENTS)
    paced = await run(plan, sim, engine=EngineOptions(speed=1.0, wait_timeout=5, drain_timeout=1))
    span = lambda r: r.runs[0].engine.outcomes[-1].sent_at - r.runs[0].engine.outcomes[0].sent_at  # noqa: E731
    assert span(paced) >= 0.8 * recorded
    assert span(fast) < span(paced)


async def test_replay_on_a_gws_without_control_api_names_the_external_event(sim_factory):
    """Against a real GWS nobody can ring the agent: the replay says what it waits for."""
    plan = read_plan(capture("long-polling"))
    sim = await sim_factory(seed=SIM_SEED, agents=SIM_AGENTS)
    announced: list[str] = []
    result = await replay(plan, ReplayOptions(
        target=sim.url, simulator=False, engine=EngineOptions(wait_timeout=0.5, external_timeout=1, drain_timeout=0.3)),
        on_announce=announced.append)
    assert any("waiting for an external event: an inbound call from 5551234 to 7001" in t for t in announced)
    timeouts = [d for d in result.divergences if d.kind == "causality_timeout"]
    assert any("did not happen" in d.detail and "inbound call" in d.detail for d in timeouts)


async def test_replay_output_is_a_capture_with_run_ids(sim_factory, tmp_path):
    out = tmp_path / "replay.duckdb"
    plan = read_plan(capture("websocket"))
    for _ in range(2):
        result = await run(plan, await sim_factory(seed=SIM_SEED, agents=SIM_AGENTS), out=out)
        no_divergence(result)
    con = duckdb.connect(str(out), read_only=True)
    runs = con.execute("SELECT run_id, sessions, divergences FROM replay_runs ORDER BY started_at").fetchall()
    assert len(runs) == 2 and all(r[1:] == (3, 0) for r in runs)
    per_run = dict(con.execute("""
        SELECT e.run_id, count(*) FROM operations o JOIN exchanges e ON e.id = o.exchange_id
        WHERE o.operation_name = 'Answer' AND o.outcome = 'completed' GROUP BY ALL""").fetchall())
    assert sorted(per_run) == sorted(r[0] for r in runs) and set(per_run.values()) == {4}
    users = {r[0] for r in con.execute("SELECT DISTINCT user_name FROM bayeux_messages WHERE transport = 'websocket'").fetchall()}
    assert users == {"agent1", "agent2", "agent3"}
    assert con.execute("SELECT count(*) FROM exchanges WHERE run_id IS NULL").fetchone()[0] == 0
    # the analysis package reads it as a replay of the capture
    from gwsreplay.analysis import compare

    src = duckdb.connect(str(capture("websocket")), read_only=True)
    alias = compare.attach_replay(src, out)
    latency = compare.compare_latency(src, alias)
    assert "Answer" in set(latency["operation_name"])


# ----------------------------------------------------------------------------- safety and the CLI


def test_replaying_to_the_recorded_host_is_refused():
    plan = read_plan(capture("long-polling"))
    origin = plan.recorded_origins[0]
    with pytest.raises(ReplayRefused, match="recorded from"):
        import asyncio

        asyncio.run(replay(plan, ReplayOptions(target=origin)))


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(gwsreplay_command() + ["replay", *args], capture_output=True, text=True, cwd=str(ROOT),
                          timeout=timeout, env={**os.environ, "COLUMNS": "200"})


def test_cli_refusals_and_dry_run():
    db = str(capture("long-polling"))
    origin = read_plan(db).recorded_origins[0]
    missing_target = _cli("--db", db)
    assert missing_target.returncode == 2 and "--target" in missing_target.stderr
    refused = _cli("--db", db, "--target", origin)
    assert refused.returncode == 2 and "recorded from" in refused.stderr and "--allow-recorded-host" in refused.stderr
    dry = _cli("--db", db, "--target", origin, "--allow-recorded-host", "--dry-run", "--session", "agent2")
    assert dry.returncode == 0, dry.stderr
    assert "session agent2" in dry.stdout and "Answer" in dry.stdout and "Ringing" in dry.stdout
    unknown = _cli("--db", db, "--target", "http://127.0.0.1:1", "--session", "nobody", "--dry-run")
    assert unknown.returncode == 2 and "no session nobody" in unknown.stderr
    not_sim = _cli("--db", db, "--target", "http://127.0.0.1:1")
    assert not_sim.returncode == 2 and "--user-map" in not_sim.stderr


async def test_cli_replay_against_simulator_process(sim_process, tmp_path):
    sim = await sim_process("--agents", str(SIM_AGENTS), "--seed", str(SIM_SEED), "--answer-delay", "0.05")
    report = tmp_path / "report.json"
    out = tmp_path / "out.duckdb"
    import asyncio

    proc = await asyncio.create_subprocess_exec(
        *gwsreplay_command(), "replay", "--db", str(capture("websocket")), "--target", sim.url, "--all",
        "--out", str(out), "--report", str(report), "--quiet", cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, stderr.decode() + stdout.decode()
    assert "no divergence" in stdout.decode()
    data = json.loads(report.read_text())
    assert data["summary"]["divergences"] == 0 and data["summary"]["sessions"] == 3
    step = next(s for s in data["sessions"][1]["steps"] if "Answer" in s["label"])
    assert step["recorded"]["statusCode"] == step["live"]["statusCode"] == 0
    assert step["recorded"]["notifications"] == step["live"]["notifications"]
    assert out.exists()


async def test_divergence_gives_exit_code_and_report(sim_factory, tmp_path):
    """A simulator with agent2 missing from the roster: agent2 cannot log in, agent1's Dial goes nowhere."""
    from gwsreplay.sim.model.roster import Roster

    roster = Roster.default(4)
    del roster.users["agent2"]
    sim = await sim_factory(seed=SIM_SEED, roster=roster)
    plan = read_plan(capture("long-polling"))
    result = await run(plan, sim, engine=EngineOptions(wait_timeout=0.5, drain_timeout=0.3))
    assert result.exit_code == 1
    kinds = {d.kind for d in result.divergences}
    assert {"status", "causality_timeout"} <= kinds
    data = report_json(result)
    assert data["summary"]["divergences"] == len(result.divergences)
    assert any(d["session"] == "agent2" and d["kind"] == "status" for d in data["divergences"])
