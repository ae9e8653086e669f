"""Load replay: many virtual agents, each replaying a recorded session as its own user.

The runs go through `gwsreplay load` (Locust, child processes); the engine's rule
that keeps every copy's calls within the copy is unit-tested at the end.
"""

from __future__ import annotations

import json
import os
import subprocess

import duckdb

from conftest import gwsreplay_command
from gwsreplay.replay.engine import EngineOptions, ReplayState, Report, Send, SessionEngine
from gwsreplay.replay.plan import SessionPlan, Step
from replay_fixtures import capture
from test_load_locust import sim_stats, simulator


def _load(db, url: str, users: int, tmp_path, *extra: str) -> subprocess.CompletedProcess:
    """`gwsreplay load` (Locust in child processes: nothing here imports gevent), each copy once."""
    return subprocess.run(gwsreplay_command() + [
        "load", "--db", str(db), "--target", url, "--users", str(users), "--spawn-rate", "50", "--iterations", "1",
        "--speed", "max", "--wait-timeout", "5", "--out", str(tmp_path / "load.duckdb"), *extra, "--",
        "--only-summary", "--gws-summary", str(tmp_path / "summary.json")],
        capture_output=True, text=True, timeout=150, cwd=tmp_path, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _rest_by_user(out) -> dict[str, list[tuple]]:
    """Each live user's REST requests in order, ids templated: (method, path, operation, status, statusCode)."""
    con = duckdb.connect(str(out), read_only=True)
    try:
        rows = con.execute("""
            SELECT user_name, method, path, request_body->>'operationName', status,
                   (response_body->>'statusCode')::INTEGER
            FROM exchanges WHERE path LIKE '/api/v2/me%' ORDER BY ts_request_start""").fetchall()
    finally:
        con.close()
    out_rows: dict[str, list[tuple]] = {}
    for user, method, path, operation, status, code in rows:
        template = "/".join("{id}" if any(c.isdigit() for c in seg) and len(seg) >= 8 else seg
                            for seg in path.split("?")[0].split("/"))
        out_rows.setdefault(user, []).append((method, template, operation, status, code))
    return out_rows


def _dials(out) -> list[tuple[str, str, str]]:
    con = duckdb.connect(str(out), read_only=True)
    try:
        return con.execute("""
            SELECT user_name, request_body->>'operationName',
                   json_extract_string(request_body, '$.destination.phoneNumber')
            FROM exchanges WHERE request_body->>'operationName' IN ('Dial', 'InitiateTransfer')
            ORDER BY ts_request_start""").fetchall()
    finally:
        con.close()


def test_load_replay_runs_copies_of_the_capture_as_pool_users(tmp_path):
    db = capture("long-polling")                          # three sessions that call each other
    with simulator(9, tmp_path) as url:
        result = _load(db, url, 9, tmp_path, "--csv", str(tmp_path / "stats"))
        rest_total = sim_stats(url)["rest"]["total"]
    assert result.returncode == 0, result.stderr[-3000:]
    assert "9 virtual agents = 3 copies" in result.stderr
    out = tmp_path / "load.duckdb"
    con = duckdb.connect(str(out), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM divergences").fetchone()[0] == 0
        users = con.execute("SELECT count(DISTINCT user_name) FROM exchanges WHERE user_name IS NOT NULL").fetchone()[0]
    finally:
        con.close()
    assert users == 9
    by_user = _rest_by_user(out)
    assert sorted(by_user) == sorted(f"agent{k}" for k in range(1, 10))
    # each copy calls within itself: copy 1's agent1 (agent4) dials copy 1's agent2 (agent5), copy 2's
    # agent1 (agent7) transfers to copy 2's agent3 (agent9)
    dials = _dials(out)
    assert ("agent4", "Dial", "7005") in dials and ("agent7", "InitiateTransfer", "7009") in dials
    assert not [d for d in dials if d[1] == "Dial" and d[2].startswith("700") and d[0] != "agent1"
                and d[2] in ("7001", "7002", "7003")]
    # every copy behaved exactly like the recording: the same requests with the same answers, per agent
    for k in (1, 2, 3):
        assert by_user[f"agent{k}"] == by_user[f"agent{k + 3}"] == by_user[f"agent{k + 6}"]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["REST"]["count"] == rest_total > 9 * 10 and summary["REST"]["p99_ms"] is not None
    assert summary["peak_copies"] == 3 and summary["divergences"] == 0
    assert sum(1 for rows in by_user.values() for r in rows if r[2] == "EndContactCenterSession") == 9


def test_load_rounds_agents_to_whole_copies_and_uses_the_map_pool(tmp_path):
    users = tmp_path / "users.toml"
    users.write_text('password = "password"\n[pool]\nusers = ["agent8", "agent7", "agent6"]\n')
    with simulator(8, tmp_path) as url:
        result = _load(capture("websocket"), url, 4, tmp_path, "--user-map", str(users))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "3 virtual agents = 1 copies" in result.stderr
    out = tmp_path / "load.duckdb"
    assert not duckdb.connect(str(out), read_only=True).execute("SELECT * FROM divergences").fetchall()
    # recorded agent1, agent2, agent3 -> agent8, agent7, agent6, in order
    assert set(_rest_by_user(out)) == {"agent8", "agent7", "agent6"}
    dials = _dials(out)
    assert ("agent8", "Dial", "7007") in dials and ("agent7", "Dial", "15550001") in dials
    assert ("agent8", "InitiateTransfer", "7006") in dials


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
