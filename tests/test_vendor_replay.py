"""Captures of the vendor's traffic plan and replay; a capture replays twice in a row without divergence.

The vendor captures are tests/vendor_har.py's HARs (8.6 and 8.5.2, one agent) imported with
``gwsreplay import``. They must plan and ``--dry-run`` (8.5.2's string participants broke the
plan), and a real replay of the vendor's agent-state sequences against ``gwsreplay sim`` may
diverge only where docs/vendor-differences.md lists the sample. Replaying one simulator capture
twice against one simulator gives no divergence either time (the referenceId counter moved on:
referenceIds are mapped like any server-made value).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, gwsreplay_command
from replay_fixtures import SIM_AGENTS, SIM_SEED, capture
from vendor_har import har_entries, record, sequences, write_har

from gwsreplay.drivers.runner import ReplayOptions, replay
from gwsreplay.drivers.target_guard import ReplayRefused
from gwsreplay.replay.engine import EngineOptions
from gwsreplay.replay.precheck import TargetFacts, problems
from gwsreplay.replay.recorded import read_plan
from gwsreplay.replay.users import UserMap

DIFFERENCES = ROOT / "docs" / "vendor-differences.md"
FAST = EngineOptions(wait_timeout=2.0, drain_timeout=1.0)


def vendor_capture(tmp: Path, version: str, steps: list | None = None, name: str | None = None) -> Path:
    if steps is None:
        steps = list(sequences(version).items())
        if version == "8.5.2":      # a call that rings first: planned as an inferred inject_call
            steps = [("ring", [record(version, "gws852-L1260")])] + steps
    entries, _ = har_entries(steps)
    name = name or f"vendor-{version}"
    har = write_har(tmp / f"{name}.har", entries)
    db = tmp / f"{name}.duckdb"
    done = subprocess.run([*gwsreplay_command(), "import", str(har), "--db", str(db)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return db


@pytest.mark.parametrize("version", ["8.6", "8.5.2"])
def test_vendor_capture_plans_and_dry_runs(version, tmp_path):
    db = vendor_capture(tmp_path, version)
    plan = read_plan(db)
    assert [s.user_name for s in plan.sessions] == ["agent1"]
    steps = plan.sessions[0].steps
    assert sum(1 for s in steps if s.operation) >= (300 if version == "8.6" else 50)
    if version == "8.5.2":
        ring = [s for s in steps if s.kind == "inject_call" and s.inferred]
        assert ring and ring[0].external["from"] == "5001"     # "participants": ["5001"]
    done = subprocess.run([*gwsreplay_command(), "replay", "--db", str(db), "--target", "http://127.0.0.1:9",
                           "--dry-run"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "session agent1" in done.stdout


def _listed_in_differences() -> set[str]:
    return set(re.findall(r"gws(?:86|852)-L\d+", DIFFERENCES.read_text()))


@pytest.mark.parametrize("version, ids", [
    ("8.6", ["gws86-S4680", "gws86-S4750", "gws86-S4820"]),
    ("8.5.2", ["gws852-S8812", "gws852-S8895", "gws852-S8965"]),
])
async def test_vendor_agent_state_replays_against_the_simulator(version, ids, tmp_path, sim_process):
    """Ready, NotReady, AuxWork as the vendor printed them; any divergence is a listed difference."""
    seqs = sequences(version)
    ids = [i for i in ids if i in seqs] or [s for s, recs in seqs.items()
                                            if recs[0].get("operationName") in ("Ready", "NotReady", "AuxWork")
                                            and recs[0]["path"].endswith("/channels/voice")][:3]
    assert ids
    db = vendor_capture(tmp_path, version, [(i, seqs[i]) for i in ids], name=f"states-{version}")
    sim = await sim_process("--agents", "2", "--seed", "0")
    result = await replay(read_plan(db), ReplayOptions(target=sim.url, users=UserMap.simulator(), out=None,
                                                       simulator=True, engine=FAST))
    listed = _listed_in_differences()
    records = {r["id"]: r for i in ids for r in seqs[i]}
    note_ids = [r for r in records if records[r]["kind"] == "notification"]
    for d in result.divergences:
        # the device capabilities of Ready/NotReady/AuxWork: "Device capabilities in Ready, NotReady and AuxWork"
        assert d.kind == "notification_differs" and "capabilities" in d.detail, d
        assert all(r in listed for r in note_ids), (d, "not explained by docs/vendor-differences.md")
    # what the simulator must reproduce: every request answered with the vendor's status
    rest = [o for run in result.runs for o in run.engine.outcomes if o.step.kind == "rest"]
    assert len(rest) == 4 and all((o.status, o.status_code) == (200, 0) for o in rest)


async def test_replaying_one_capture_twice_gives_no_divergence(sim_process):
    """The second run finds the simulator's counters (referenceId, ids) moved on: still no divergence."""
    plan = read_plan(capture("long-polling", "media"))     # chats, emails, workitems: referenceIds
    sim = await sim_process("--agents", str(SIM_AGENTS), "--seed", str(SIM_SEED), "--answer-delay", "0.05")
    for attempt in (1, 2):
        result = await replay(plan, ReplayOptions(target=sim.url, users=UserMap.simulator(), out=None,
                                                  simulator=True, engine=EngineOptions(wait_timeout=5.0,
                                                                                       drain_timeout=2.0)))
        assert not result.divergences, (attempt, [(d.detail, d.recorded, d.live) for d in result.divergences][:3])
    # the second run met other referenceIds than recorded, and mapped them
    assert any(state.idmap.references for state in result.states)


# ----------------------------------------------------------------------------- pre-run checks

def test_pre_run_checks_name_every_problem(tmp_path):
    seqs = sequences("8.6")
    login = next((s, recs) for s, recs in seqs.items()
                 if isinstance(recs[0].get("body"), dict) and recs[0]["body"].get("place") == "SIP_5000")
    plan = read_plan(vendor_capture(tmp_path, "8.6", [login], name="login"))
    sim = TargetFacts.from_simulator_state({"agents": [
        {"userName": "agent1", "phoneNumber": "7001", "place": "Place7001"},
        {"userName": "agent2", "phoneNumber": "7002", "place": "Place7002"}]})
    # the place SIP_5000 is not agent1's on this roster
    found = problems(plan, UserMap.simulator(), None, sim)
    assert len(found) == 1 and "SIP_5000" in found[0] and "agent1" in found[0]
    # with a roster whose agent1 has DN 5000 the same login is fine
    vendor_roster = TargetFacts.from_simulator_state({"agents": [
        {"userName": "agent1", "phoneNumber": "5000", "place": "SIP_5000"}]})
    assert problems(plan, UserMap.simulator(), None, vendor_roster) == []
    # no credentials for the recorded user (a real GWS, a map without it)
    found = problems(plan, UserMap(users={}, password=None), None, TargetFacts())
    assert len(found) == 1 and "no replay user for recorded user 'agent1'" in found[0]
    # more virtual agents than the roster
    found = problems(plan, UserMap.simulator(), 5, vendor_roster)
    assert any("5 virtual agents need 5 users" in f and "have 1" in f for f in found), found


async def test_replay_refuses_before_sending_anything(tmp_path, sim_process):
    seqs = sequences("8.6")
    login = next((s, recs) for s, recs in seqs.items()
                 if isinstance(recs[0].get("body"), dict) and recs[0]["body"].get("place") == "SIP_5000")
    plan = read_plan(vendor_capture(tmp_path, "8.6", [login], name="login"))
    sim = await sim_process("--agents", "2")
    with pytest.raises(ReplayRefused, match="SIP_5000"):
        await replay(plan, ReplayOptions(target=sim.url, users=UserMap.simulator(), out=None, simulator=True,
                                         engine=FAST))
    stats = json.loads(subprocess.run(["curl", "-s", sim.url + "/sim/v1/stats"], capture_output=True,
                                      text=True).stdout or "{}")
    assert stats.get("rest", {}).get("total", 0) == 0
