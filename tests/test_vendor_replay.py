"""Captures of the vendor's traffic plan and replay; a capture replays twice in a row without divergence.

The vendor captures are tests/vendor_har.py's HARs (8.6 and 8.5.2, one agent) imported with
``gwsreplay import``. They must plan and ``--dry-run`` (8.5.2's string participants broke the
plan), and a real replay of the vendor's agent-state sequences against ``gwsreplay sim`` may
diverge only where docs/vendor-differences.md lists the sample. A whole voice session of each version
(tests/vendor/voice_session.py: the samples stitched into one agent's shift) replays with every
operation's recorded outcome, and every divergence matches a tagged entry of that document
(:data:`EXPLAINS`: the divergence kind, JSON paths and operations each tag may explain). Replaying one simulator capture
twice against one simulator gives no divergence either time (the referenceId counter moved on:
referenceIds are mapped like any server-made value).
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT, gwsreplay_command
from replay_fixtures import SIM_AGENTS, SIM_SEED, capture
from vendor.voice_session import ROSTER_TOML, voice_session
from vendor_har import har_entries, record, sequences, write_har

from gwsreplay.drivers.runner import ReplayOptions, replay
from gwsreplay.drivers.target_guard import ReplayRefused
from gwsreplay.replay.compare import Divergence, diff
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


# ----------------------------------------------------------------------------- whole voice sessions


@dataclass(frozen=True)
class Explains:
    """What one tagged entry of docs/vendor-differences.md may explain in a replay."""

    tag: str
    kind: str                        # the divergence kind
    what: str                        # regex: a JSON path of a notification_differs, or the label of an unexpected one
    operation: str = "."             # regex on the step's label ("POST /me/channels/voice Ready")
    versions: tuple[str, ...] = ("8.6", "8.5.2")
    capabilities: frozenset[str] = frozenset()   # for $...capabilities: the operations that may differ


CALL_EXTRA_CAPABILITIES = frozenset({"Reject", "StartCallRecording", "Retrieve", "SwapCalls", "CompleteTransfer"})
EXPLAINS = (
    Explains("device-dnd-capabilities", "notification_differs", r"\$\.devices\[0\]\.capabilities",
             r"/channels/voice (Ready|NotReady|AuxWork)$", capabilities=frozenset({"DoNotDisturbOn"})),
    Explains("call-keys", "notification_differs",
             r"\$\.call\.(monitoring|recordingState|parentCallUri|parentCallPath)|\$\.extensions(\.\w+)?"),
    Explains("call-keys", "notification_differs", r"\$\.call\.capabilities", capabilities=CALL_EXTRA_CAPABILITIES),
    Explains("v852-call-shape", "notification_differs",
             r"\$\.call\.(callUuid|connId|monitoring|participants(\[\d+\])?|participantsInfo|path|parentCallPath)",
             versions=("8.5.2",)),
    Explains("login-notification", "notification_unexpected", r"DeviceStateChangeMessage NotReady",
             r"POST /me StartContactCenterSession$|/channels/voice Ready$"),
)


def _path(where: str) -> str:
    return re.match(r"\$[^\s:]*", where).group(0)


def _capability_change(d: Divergence, path: str) -> set[str]:
    def pick(doc):
        for key in re.findall(r"\.(\w+)(?:\[(\d+)\])?", path):
            doc = doc[key[0]] if not key[1] else doc[key[0]][int(key[1])]
        return set(doc)
    return pick(d.recorded) ^ pick(d.live)


def explain(d: Divergence, version: str) -> tuple[list[str], set[str]]:
    """The parts of a divergence no tagged entry explains (none: explained), and the tags that explained the rest."""
    fits = [e for e in EXPLAINS if e.kind == d.kind and version in e.versions and re.search(e.operation, d.label or "")]
    if d.kind == "notification_differs":
        left, used = [], set()
        for where in diff(d.recorded, d.live):
            path = _path(where)
            tags = {e.tag for e in fits if re.fullmatch(e.what, path)
                    and (not e.capabilities or _capability_change(d, path) <= e.capabilities)}
            used |= tags
            if not tags:
                left.append(f"{d.label}: {where}")
        return left, used
    tags = {e.tag for e in fits if d.kind == "notification_unexpected" and re.search(e.what, d.detail)}
    return ([] if tags else [f"{d.label}: {d.kind} {d.detail}"]), tags


def test_every_tag_is_a_documented_difference():
    text = DIFFERENCES.read_text()
    for tag in {e.tag for e in EXPLAINS}:
        heading = re.search(rf"^## .+`\[diff: {tag}\]`$", text, flags=re.M)
        assert heading, tag
        section = text[heading.end():].split("\n## ", 1)[0]
        assert "Reason" in section and "simulator" in section, tag


@pytest.mark.parametrize("version", ["8.6", "8.5.2"])
async def test_vendor_voice_session_replays_with_the_recorded_outcomes(version, tmp_path, sim_process):
    """Per operation the simulator gives the recorded outcome; what differs is a documented, tagged difference."""
    steps = voice_session(version)
    db = vendor_capture(tmp_path, version, steps, name=f"voice-{version}")
    plan = read_plan(db)
    assert [s.user_name for s in plan.sessions] == ["agent1"]
    roster = tmp_path / "roster.toml"
    roster.write_text(ROSTER_TOML)
    # 5001 and 5002 are DNs nobody answers; inbound calls are the plan's inferred inject_call steps
    sim = await sim_process("--roster", str(roster), "--answer-delay", "600", "--seed", "0")
    result = await replay(plan, ReplayOptions(target=sim.url, users=UserMap.simulator(), out=None,
                                              simulator=True, engine=FAST))
    outcomes = [o for run in result.runs for o in run.engine.outcomes]
    operations = [o for o in outcomes if o.step.kind == "rest" and o.step.operation]
    assert len(operations) >= (22 if version == "8.6" else 18)
    assert {o.step.operation for o in operations} >= {
        "StartContactCenterSession", "Ready", "Answer", "Hold", "Retrieve", "SendDtmf", "UpdateUserData",
        "DeleteUserDataPair", "DeleteUserData", "SingleStepTransfer", "InitiateTransfer", "CompleteTransfer",
        "AfterCallWork", "NotReady", "EndContactCenterSession"}
    # the recorded outcome of every operation: HTTP status and statusCode
    for o in operations:
        assert (o.status, o.status_code) == (o.step.status, o.step.status_code), (o.step.label(), o.status)
    injected = [o for o in outcomes if o.step.kind == "inject_call"]
    assert len(injected) == 3 and all(o.step.inferred and o.status == 200 for o in injected)
    # every recorded notification came (no notification_missing), and every divergence is explained
    assert not [d for d in result.divergences if d.kind in ("notification_missing", "causality_timeout", "status")]
    left: list[str] = []
    used: set[str] = set()
    for d in result.divergences:
        parts, tags = explain(d, version)
        left += parts
        used |= tags
    assert not left, left[:10]
    # each tag explains something here (8.5.2's call shape only in 8.5.2): the list is not padded
    assert used == {e.tag for e in EXPLAINS if version in e.versions}, used
    # a divergence the list does not name is not explained (the matchers are not vacuous)
    stray = Divergence("agent1", 5, "notification_differs", "x", {"call": {"dnis": "5000"}}, {"call": {"dnis": "5001"}},
                       label="POST /me/calls/x Answer")
    assert explain(stray, version)[0] and explain(Divergence("agent1", 5, "status", "x", label="Answer"), version)[0]


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
