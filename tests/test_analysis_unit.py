"""analysis/ on hand-built captures whose answers are known in advance.

Captures are written in the real schema (gwsreplay.capture.schema) and classified by
the recorder's own code (analysis.synthetic.CaptureBuilder), so these tests
also pin down how the analysis reads what the recorder writes.
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from gwsreplay.analysis import (_build_notebooks, compare, coverage, db, errors, figures, headline, humanize, latency,
                                notebook, timeline)
from gwsreplay.analysis.state_models import MODELS, NEW
from gwsreplay.capture import schema as capture_schema
from gwsreplay.analysis.synthetic import CaptureBuilder, Device, call_data, device_data, error_data, media_data

T0 = datetime(2024, 5, 6, 10, 0, 0)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ms(n: float) -> timedelta:
    return timedelta(milliseconds=n)


def open_ro(path) -> duckdb.DuckDBPyConnection:
    return db.open_capture(path)


# ----------------------------------------------------------------------------- latency

# (agent, completion ms, ack ms) of the Hold operations that complete
HOLDS = [("agent1", 10, 1), ("agent1", 20, 2), ("agent1", 30, 3), ("agent1", 40, 4), ("agent1", 100, 5),
         ("agent2", 200, 6), ("agent2", 400, 8)]


@pytest.fixture(scope="module")
def latency_capture(tmp_path_factory):
    path = tmp_path_factory.mktemp("lat") / "latency.duckdb"
    con = duckdb.connect(str(path))
    b = CaptureBuilder(con)
    t = 0.0
    for i, (user, done_ms, ack_ms) in enumerate(HOLDS):
        call = f"CALL{i:028d}"
        b.exchange(at(t), user, "POST", f"/api/v2/me/calls/{call}", body={"operationName": "Hold"}, ack_ms=ack_ms)
        b.event(at(t) + ms(done_ms), user, call_data(call, "Held"))
        t += 60
    # a Hold that fails asynchronously with an ErrorMessage 7 ms after the request
    dev = Device("dev1", "7001")
    b.exchange(at(t), "agent1", "POST", "/api/v2/me/calls/CALLERR", body={"operationName": "Hold"}, ack_ms=2)
    b.event(at(t) + ms(7), "agent1", error_data(dev, "CALLERR", "Invalid call state"))
    t += 60
    # a Hold rejected at once: HTTP 400, statusCode 2
    b.exchange(at(t), "agent2", "POST", "/api/v2/me/calls/CALLBAD", body={"operationName": "Hold"}, status=400,
               response={"statusCode": 2, "statusMessage": "Invalid parameter"}, ack_ms=3)
    t += 60
    # a Hangup acknowledged and never confirmed
    b.exchange(at(t), "agent1", "POST", "/api/v2/me/calls/CALLLOST", body={"operationName": "Hangup"}, ack_ms=4)
    b.write()
    con.close()
    return path


def test_percentiles_per_operation_match_numpy(latency_capture):
    con = open_ro(latency_capture)
    stats = latency.latency_by_operation(con).set_index("operation_name")
    done = np.array([h[1] for h in HOLDS], dtype=float)
    hold = stats.loc["Hold"]
    assert hold["requests"] == len(HOLDS) + 2
    assert hold["n"] == len(HOLDS)
    assert hold["failed"] == 2
    assert hold["never_completed"] == 0
    for q, col in ((50, "p50"), (90, "p90"), (99, "p99")):
        assert hold[col] == pytest.approx(np.percentile(done, q), abs=1e-6)
    assert hold["max"] == pytest.approx(400)
    assert stats.loc["Hangup", "never_completed"] == 1
    assert stats.loc["Hangup", "n"] == 0


def test_known_percentile_values(latency_capture):
    """Linear interpolation, written out: agent1's five completions 10, 20, 30, 40, 100 ms."""
    con = open_ro(latency_capture)
    a1 = latency.latency_by_agent(con).set_index("user_name").loc["agent1"]
    assert a1["p50"] == pytest.approx(30.0)
    assert a1["p90"] == pytest.approx(40 + 0.6 * 60)       # position 3.6 between 40 and 100
    assert a1["p99"] == pytest.approx(40 + 0.96 * 60)
    assert a1["max"] == pytest.approx(100.0)
    a2 = latency.latency_by_agent(con).set_index("user_name").loc["agent2"]
    assert a2["p50"] == pytest.approx(300.0)


def test_ack_latency(latency_capture):
    con = open_ro(latency_capture)
    ack = latency.latency_stats(con, "operation", metric="ack").set_index("operation_name").loc["Hold"]
    # ack is measured for every answered request, failures included (the 400 and the ErrorMessage)
    acks = np.array([h[2] for h in HOLDS] + [2, 3], dtype=float)
    assert ack["n"] == len(acks)
    assert ack["p50"] == pytest.approx(np.percentile(acks, 50), abs=1e-3)
    assert ack["max"] == pytest.approx(8.0, abs=1e-3)


def test_latency_table_and_outcomes(latency_capture):
    con = open_ro(latency_capture)
    table = latency.latency_table(con).set_index("operation_name")
    assert table.loc["Hold", "completed"] == len(HOLDS)
    assert table.loc["Hold", "completion_p50"] == pytest.approx(40.0)
    failed = latency.failed_operations(con)
    assert sorted(failed["outcome"]) == ["error_message", "http_error"]
    lost = latency.never_completed(con)
    assert list(lost["operation_name"]) == ["Hangup"]
    ops = latency.operation_latencies(con, user="agent2")
    assert len(ops) == 3 and set(ops["user_name"]) == {"agent2"}


def test_latency_over_time_buckets(latency_capture):
    con = open_ro(latency_capture)
    series = latency.latency_over_time(con, 120, by=None)
    # requests every 60 s from 10:00:00: buckets of 2 minutes hold 2, 2, 2, 2, 2 requests
    assert list(series["requests"]) == [2, 2, 2, 2, 2]
    first = series.iloc[0]
    assert first["bucket"] == pd.Timestamp("2024-05-06 10:00:00")
    assert first["p50"] == pytest.approx(15.0)        # completions 10 and 20 ms
    assert latency.auto_bucket_seconds(con, buckets=10) == 60.0


# ----------------------------------------------------------------------------- coverage

@pytest.fixture(scope="module")
def coverage_capture(tmp_path_factory):
    path = tmp_path_factory.mktemp("cov") / "coverage.duckdb"
    con = duckdb.connect(str(path))
    b = CaptureBuilder(con)
    s = iter(range(1000))

    def ev(user, payload):
        b.event(at(next(s)), user, payload)

    # agent1, call A: Ringing -> Established -> Held -> Established -> Released
    for st in ("Ringing", "Established", "Held", "Established", "Released"):
        ev("agent1", call_data("A", st))
    # agent1, call B: Dialing, Dialing again (same state: collapses), Established, Released
    ev("agent1", call_data("B", "Dialing"))
    ev("agent1", call_data("B", "Dialing", notification_type="AttachedDataChanged"))
    ev("agent1", call_data("B", "Established"))
    ev("agent1", call_data("B", "Released"))
    # agent2 sees call A too (its own copy): Ringing -> Released (Reject)
    ev("agent2", call_data("A", "Ringing"))
    ev("agent2", call_data("A", "Released"))
    # agent2, call C: Ringing -> Held is not allowed (anomaly), then Released
    ev("agent2", call_data("C", "Ringing"))
    ev("agent2", call_data("C", "Held"))
    ev("agent2", call_data("C", "Released"))
    # an ErrorMessage about call C must not count as a call state
    ev("agent2", error_data(Device("d2", "7002"), "C", "Invalid call state"))

    # agent1 device: NotReady (first sight: no transition) -> Ready -> ACW -> Ready -> AuxWork -> LoggedOut
    d1 = Device("dev1", "7001", agent_state="NotReady")
    for st in ("NotReady", "Ready", "AfterCallWork", "Ready", "AuxWork", "Offline"):
        d1.agent_state = st
        ev("agent1", device_data(d1))
    # DND Off -> On -> Off, forwarding Off -> On -> Off (agent state stays LoggedOut)
    for dnd, fwd in ((True, None), (False, None), (False, "5001"), (False, None)):
        d1.dnd, d1.forward_to = dnd, fwd
        ev("agent1", device_data(d1))

    # agent2: one message with two devices; the second goes NotReady -> Ready
    d2a, d2b = Device("dev2a", "7002", agent_state="Ready"), Device("dev2b", "7003", agent_state="NotReady")
    two = {"messageType": "DeviceStateChangeMessage", "devices": [d2a.resource(), d2b.resource()]}
    ev("agent2", ("/v2/me/devices", two))
    d2b.agent_state = "Ready"
    two = {"messageType": "DeviceStateChangeMessage", "devices": [d2a.resource(), d2b.resource()]}
    ev("agent2", ("/v2/me/devices", two))
    # a custom agent state (NotReady + workMode Training): unknown to the model
    custom = d2a.resource()
    custom["userState"] = {"id": "x", "displayName": "Training", "state": "NotReady", "workMode": "Training"}
    ev("agent2", ("/v2/me/devices", {"messageType": "DeviceStateChangeMessage", "devices": [custom]}))

    # IM with the documented leading space (L10644), chat Invited -> Chatting -> Completed
    ev("agent1", media_data("im-session", "IM1", " Talking"))
    ev("agent1", media_data("im-session", "IM1", "Completed"))
    for st in ("Invited", "Chatting", "Completed"):
        ev("agent1", media_data("chat", "CH1", st))

    # operations: documented ones, one the catalog does not know
    b.exchange(at(500), "agent1", "POST", "/api/v2/me/calls/A", body={"operationName": "Answer"})
    b.exchange(at(501), "agent1", "POST", "/api/v2/me/calls/A", body={"operationName": "Hold"})
    b.exchange(at(502), "agent1", "POST", "/api/v2/me/calls/A", body={"operationName": "MakeCoffee"})
    b.exchange(at(503), "agent1", "POST", "/api/v2/me/channels/voice", body={"operationName": "Ready"})
    b.write()
    con.close()
    return path


EXPECTED_CALL = {  # (source, target): count
    (NEW, "Ringing"): 3, (NEW, "Dialing"): 1, ("Ringing", "Established"): 1, ("Established", "Held"): 1,
    ("Held", "Established"): 1, ("Established", "Released"): 2, ("Dialing", "Established"): 1,
    ("Ringing", "Released"): 1, ("Ringing", "Held"): 1, ("Held", "Released"): 1,
}


def test_observed_call_transitions(coverage_capture):
    con = open_ro(coverage_capture)
    obs = coverage.observed_transitions(con, "call")
    got = {(s, t): c for s, t, c in zip(obs["source"], obs["target"], obs["count"])}
    assert got == EXPECTED_CALL


def test_call_coverage_status(coverage_capture):
    con = open_ro(coverage_capture)
    cov = coverage.transition_coverage(con, "call").set_index(["source", "target"])
    assert cov.loc[(NEW, "Ringing"), "status"] == "covered"
    assert cov.loc[("Ringing", "Held"), "status"] == "anomaly"
    missing = coverage.missing_transitions(con, "call")
    assert set(zip(missing["source"], missing["target"])) == {("Dialing", "Released"), (NEW, "Established")}
    anomalies = coverage.anomalies(con, "call")
    assert list(zip(anomalies["source"], anomalies["target"])) == [("Ringing", "Held")]
    assert anomalies.iloc[0]["example_user"] == "agent2"
    assert anomalies.iloc[0]["example_resource_id"] == "C"


def test_coverage_matrix(coverage_capture):
    con = open_ro(coverage_capture)
    cov = coverage.transition_coverage(con, "call")
    mat = coverage.coverage_matrix(cov, "call")
    assert list(mat.index) == [NEW, "Dialing", "Ringing", "Established", "Held", "Released"]
    assert list(mat.columns) == ["Dialing", "Ringing", "Established", "Held", "Released"]
    assert mat.loc[NEW, "Ringing"] == 3
    assert mat.loc["Dialing", "Released"] == 0          # allowed, never reached
    assert mat.loc["Ringing", "Held"] == 1              # anomaly
    assert np.isnan(mat.loc["Released", "Held"])         # neither allowed nor seen


def test_agent_state_dnd_forwarding(coverage_capture):
    con = open_ro(coverage_capture)
    obs = coverage.observed_transitions(con, ["agent_state", "dnd", "forwarding"])
    got = {(m, s, t): c for m, s, t, c in zip(obs["model"], obs["source"], obs["target"], obs["count"])}
    assert got == {
        ("agent_state", "NotReady", "Ready"): 2,                 # dev1, and dev2b in a two-device message
        ("agent_state", "Ready", "NotReady+AfterCallWork"): 1,
        ("agent_state", "NotReady+AfterCallWork", "Ready"): 1,
        ("agent_state", "Ready", "NotReady+AuxWork"): 1,
        ("agent_state", "NotReady+AuxWork", "LoggedOut"): 1,
        ("agent_state", "Ready", "NotReady+Training"): 1,        # custom state
        ("dnd", "Off", "On"): 1, ("dnd", "On", "Off"): 1,
        ("forwarding", "Off", "On"): 1, ("forwarding", "On", "Off"): 1,
    }
    summary = coverage.coverage_summary(coverage.transition_coverage(con)).set_index("model")
    assert summary.loc["dnd", "coverage_pct"] == 100.0
    assert summary.loc["agent_state", "covered"] == 5
    assert summary.loc["agent_state", "anomalies"] == 1
    assert summary.loc["agent_state", "missing"] == len(MODELS["agent_state"].transitions) - 5
    unknown = coverage.unknown_states(con, "agent_state")
    assert list(unknown["state"]) == ["NotReady+Training"]


def test_media_models(coverage_capture):
    con = open_ro(coverage_capture)
    obs = coverage.observed_transitions(con, ["im_session", "chat"])
    got = set(zip(obs["model"], obs["source"], obs["target"]))
    assert got == {("im_session", NEW, "Talking"), ("im_session", "Talking", "Completed"),
                   ("chat", NEW, "Invited"), ("chat", "Invited", "Chatting"), ("chat", "Chatting", "Completed")}
    assert coverage.anomalies(con, ["im_session", "chat"]).empty


def test_transition_occurrences_flag_allowed(coverage_capture):
    con = open_ro(coverage_capture)
    occ = coverage.transition_occurrences(con, "call", user="agent2")
    assert list(zip(occ["source"], occ["target"], occ["allowed"])) == [
        (NEW, "Ringing", True), ("Ringing", "Released", True),
        (NEW, "Ringing", True), ("Ringing", "Held", False), ("Held", "Released", True)]


def test_operation_and_capability_coverage(coverage_capture):
    con = open_ro(coverage_capture)
    ops = coverage.operation_coverage(con).set_index(["resource_family", "operation_name"])
    assert ops.loc[("call", "Answer"), "exercised"]
    assert not ops.loc[("call", "Retrieve"), "exercised"]
    assert ops.loc[("channel", "Ready"), "requests"] == 1
    assert not ops.loc[("call", "MakeCoffee"), "documented"]
    summary = coverage.operation_coverage_summary(coverage.operation_coverage(con)).set_index("resource_family")
    assert summary.loc["call", "exercised"] == 2 and summary.loc["call", "undocumented_used"] == 1
    caps = coverage.capability_coverage(con).set_index(["resource_type", "operation_name"])
    assert caps.loc[("call", "Answer"), "status"] == "used"              # offered while Ringing
    assert caps.loc[("call", "Retrieve"), "status"] == "offered, never used"
    assert caps.loc[("call", "MakeCoffee"), "status"] == "used, never offered"
    assert caps.loc[("device", "DoNotDisturbOn"), "status"] == "offered, never used"


def test_state_bands(coverage_capture):
    con = open_ro(coverage_capture)
    bands = timeline.state_bands(con, "agent1", ["agent_state"])
    assert list(bands["state"]) == ["NotReady", "Ready", "NotReady+AfterCallWork", "Ready", "NotReady+AuxWork",
                                    "LoggedOut"]
    # each band ends where the next begins; the device events are one second apart
    assert ((bands["end"] - bands["start"]).iloc[:-1] == pd.Timedelta(seconds=1)).all()
    calls = timeline.state_bands(con, "agent1", ["call"])
    assert "Released" not in set(calls["state"])


# ----------------------------------------------------------------------------- state models

@pytest.mark.parametrize("name", sorted(MODELS))
def test_state_models_are_consistent(name):
    m = MODELS[name]
    states = set(m.states) | {NEW}
    edges = [(t.source, t.target) for t in m.transitions]
    assert len(edges) == len(set(edges)), "duplicate transition"
    for t in m.transitions:
        assert t.source in states and t.target in states, t
        assert t.source != t.target, "self-transitions are not state changes"
        assert t.triggers and t.ref.strip(), t
        assert t.target != NEW
    if not m.observes_creation:
        assert all(t.source != NEW for t in m.transitions)


# ----------------------------------------------------------------------------- errors and timeline

@pytest.fixture(scope="module")
def cometd_capture(tmp_path_factory):
    path = tmp_path_factory.mktemp("err") / "errors.duckdb"
    con = duckdb.connect(str(path))
    b = CaptureBuilder(con)

    def meta(t, msg, direction):
        b.bayeux(at(t), "agent1", msg, direction=direction, session="s1")

    meta(0, {"channel": "/meta/handshake", "id": "1"}, "c2s")
    meta(0.01, {"channel": "/meta/handshake", "id": "1", "successful": True, "clientId": "c1"}, "s2c")
    meta(0.02, {"channel": "/meta/connect", "id": "2", "clientId": "c1"}, "c2s")
    meta(30.02, {"channel": "/meta/connect", "id": "2", "successful": True}, "s2c")
    meta(30.03, {"channel": "/meta/connect", "id": "3", "clientId": "c1"}, "c2s")     # re-polls at once
    meta(35.00, {"channel": "/meta/connect", "id": "3", "successful": True}, "s2c")
    meta(47.50, {"channel": "/meta/connect", "id": "4", "clientId": "c1"}, "c2s")     # 12.5 s gap
    meta(47.51, {"channel": "/meta/connect", "id": "4", "successful": False, "error": "402::Unknown client",
                 "advice": {"reconnect": "handshake"}}, "s2c")
    meta(47.60, {"channel": "/meta/handshake", "id": "5"}, "c2s")
    meta(47.61, {"channel": "/meta/handshake", "id": "5", "successful": True, "clientId": "c2"}, "s2c")
    meta(47.62, {"channel": "/meta/connect", "id": "6", "clientId": "c2"}, "c2s")
    b.exchange(at(50), "agent1", "POST", "/api/v2/me", body={"operationName": "StartContactCenterSession"},
               status=200, response={"statusCode": 7, "succeeded": [], "failed": []})
    b.exchange(at(51), "agent1", "GET", "/api/v2/me/calls", error="upstream timed out")
    b.event(at(52), "agent1", media_data("chat", "CH9", "Chatting", notification_type="Error"))
    b.write()
    con.close()
    return path


def test_cometd_errors_and_gaps(cometd_capture):
    con = open_ro(cometd_capture)
    fails = errors.cometd_failures(con)
    assert list(fails["error_code"]) == [402] and list(fails["reconnect_advice"]) == ["handshake"]
    hs = errors.handshakes(con).set_index("user_name").loc["agent1"]
    assert hs["handshakes"] == 2 and hs["rehandshakes"] == 1 and hs["unknown_client_402"] == 1
    gaps = errors.longpoll_gaps(con, threshold_s=5)
    assert list(gaps["gap_s"].round(3)) == [12.5]
    assert errors.longpoll_gaps(con, threshold_s=15).empty


def test_rest_errors(cometd_capture):
    con = open_ro(cometd_capture)
    status = errors.status_errors(con)
    assert list(status["status_code"]) == [7] and status.iloc[0]["partial_success"]
    http = errors.http_errors(con)
    assert list(http["error"]) == ["upstream timed out"]
    notes = errors.error_notifications(con)
    assert list(notes["notification_type"]) == ["Error"]
    summary = errors.error_summary(con).set_index("kind")["count"]
    assert summary["CometD 402 (unknown client)"] == 1
    assert summary["long-poll gaps > 5 s"] == 1


def test_agent_timeline_lanes(cometd_capture):
    con = open_ro(cometd_capture)
    tl = timeline.agent_timeline(con, "agent1")
    # routine successful connects are left out; handshakes, the failure, REST and notifications stay
    assert set(tl["lane"]) == {"CometD", "REST", "/v2/me/chats"}
    assert (tl["label"] == "/meta/connect reply").sum() == 1
    assert not tl.loc[tl["label"] == "/meta/connect reply", "ok"].iloc[0]
    assert tl["ts"].is_monotonic_increasing
    ag = timeline.agents(con).set_index("user_name").loc["agent1"]
    assert ag["failed_requests"] == 1        # the timeout; statusCode 7 is a partial success


# ----------------------------------------------------------------------------- replay comparison

def _ops_capture(path, completions: list[float], run_ids: list[str | None] | None = None):
    con = duckdb.connect(str(path))
    b = CaptureBuilder(con)
    for i, done in enumerate(completions):
        call = f"R{i:031d}"
        b.exchange(at(i), "agent1", "POST", f"/api/v2/me/calls/{call}", body={"operationName": "Answer"})
        b.event(at(i) + ms(done), "agent1", call_data(call, "Established"))
    b.write()
    if run_ids is not None:      # as gwsreplay.replay/output.py merges runs into one file
        con.execute("ALTER TABLE exchanges ADD COLUMN run_id VARCHAR")
        for i, run in enumerate(run_ids, start=1):
            con.execute("UPDATE exchanges SET run_id = ? WHERE id = ?", [run, i])
        con.execute("CREATE TABLE replay_runs (run_id VARCHAR, target VARCHAR, divergences INTEGER)")
        con.execute("INSERT INTO replay_runs VALUES ('r1', 'sim', 0), ('r2', 'sim', 3)")
    con.close()
    return path


def test_compare_with_replay_file(tmp_path):
    rec = _ops_capture(tmp_path / "rec.duckdb", [10, 20, 30])
    rep = _ops_capture(tmp_path / "rec-replay.duckdb", [15, 30, 45])
    con = open_ro(rec)
    assert compare.sides(con) is None
    assert compare.compare_latency(con).empty
    assert compare.attach_replay(con, tmp_path / "missing.duckdb") is None
    alias = compare.attach_replay(con, rep)
    row = compare.compare_latency(con, alias).set_index("operation_name").loc["Answer"]
    assert row["recorded_p50"] == pytest.approx(20) and row["replayed_p50"] == pytest.approx(30)
    assert row["p50_delta_ms"] == pytest.approx(10) and row["p50_ratio"] == pytest.approx(1.5)
    dist = compare.latency_distributions(con, alias)
    assert dist["source"].value_counts().to_dict() == {"recorded": 3, "replayed": 3}
    assert (compare.outcome_divergences(con, alias)["difference"] == 0).all()


def test_compare_runs_inside_one_file(tmp_path):
    path = _ops_capture(tmp_path / "runs.duckdb", [10, 20, 50, 70, 5], [None, None, "r1", "r1", "r2"])
    con = open_ro(path)
    runs = compare.replay_runs(con)
    assert list(runs["run_id"]) == ["r1", "r2"]
    assert list(runs["divergences"]) == [0, 3]        # the replayer's own replay_runs table, joined
    r1 = compare.compare_latency(con, run_id="r1").set_index("operation_name").loc["Answer"]
    assert r1["recorded_n"] == 2 and r1["replayed_n"] == 2
    assert r1["replayed_p50"] == pytest.approx(60)
    latest = compare.compare_latency(con).set_index("operation_name").loc["Answer"]   # default: latest run
    assert latest["replayed_n"] == 1 and latest["replayed_p50"] == pytest.approx(5)
    div = compare.outcome_divergences(con, run_id="r2")
    assert div.iloc[0]["difference"] == -1


# ----------------------------------------------------------------------------- db helpers

def test_open_capture_read_only_and_missing(tmp_path, latency_capture):
    with pytest.raises(db.CaptureNotFound):
        db.open_capture(tmp_path / "nope.duckdb")
    con = db.open_capture(latency_capture)
    with pytest.raises(duckdb.Error):
        con.execute("DELETE FROM exchanges")
    info = db.capture_info(con)
    assert info.loc[0, "schema_version"] == str(capture_schema.SCHEMA_VERSION)
    assert info.loc[0, "exchanges"] == len(HOLDS) + 3


def test_resolve_capture_path(tmp_path):
    assert db.resolve_capture_path("../captures/demo.duckdb", tmp_path / "notebooks") == \
        (tmp_path / "captures" / "demo.duckdb").resolve()
    assert db.resolve_capture_path("/abs/x.duckdb", tmp_path) == db.resolve_capture_path("/abs/x.duckdb")


def test_docs_carry_the_generated_model_tables():
    """docs/analysis.md holds ``python -m analysis.state_models`` verbatim: regenerate it when a model changes."""
    from pathlib import Path

    from gwsreplay.analysis.state_models import markdown_tables
    text = (Path(__file__).resolve().parent.parent / "docs" / "analysis.md").read_text(encoding="utf-8")
    assert markdown_tables().strip() in text


# ----------------------------------------------------------------------------- scope (time window, agent)

def test_scope_filters_latency_and_errors(latency_capture):
    con = open_ro(latency_capture)
    everything = latency.operation_latencies(con)
    assert len(everything) == len(HOLDS) + 3
    # requests every 60 s from T0: [T0, T0 + 120 s) holds the first two Holds (the end is exclusive)
    window = db.Scope.of(at(0), at(120))
    ops = latency.operation_latencies(con, scope=window)
    assert len(ops) == 2 and list(ops["completion_latency_ms"]) == [pytest.approx(10), pytest.approx(20)]
    assert latency.latency_stats(con, None, scope=window).loc[0, "p50"] == pytest.approx(15.0)
    # agent2: its two completed Holds and the one rejected with HTTP 400
    agent2 = db.Scope.of(agent="agent2")
    assert len(latency.operation_latencies(con, scope=agent2)) == 3
    stats = latency.latency_stats(con, "operation", scope=agent2).set_index("operation_name").loc["Hold"]
    assert (stats["requests"], stats["n"], stats["failed"]) == (3, 2, 1)
    assert len(latency.failed_operations(con, scope=agent2)) == 1
    assert len(latency.never_completed(con, scope=agent2)) == 0
    assert len(latency.never_completed(con)) == 1
    assert len(errors.http_errors(con, agent2)) == 1 and len(errors.http_errors(con, db.Scope.of(agent="agent1"))) == 0
    assert len(errors.error_notifications(con, db.Scope.of(agent="agent1"))) == 1
    assert len(errors.error_notifications(con, agent2)) == 0
    # both: agent1 in the first four minutes (Holds 0-3; Holds 4-6 are later or agent2's)
    both = db.Scope.of(at(0), at(240), "agent1")
    assert len(latency.operation_latencies(con, scope=both)) == 4
    assert list(timeline.agents(con, both)["user_name"]) == ["agent1"]
    assert timeline.agents(con, both).loc[0, "operations"] == 4
    info = db.capture_info(con, both).iloc[0]
    assert info["agents"] == 1 and info["exchanges"] == 4
    # an agent that is not there selects nothing, and a quote in its name is data, not SQL
    assert latency.operation_latencies(con, scope=db.Scope.of(agent="x' OR 'a'='a")).empty


def test_scope_reads_history_whole_then_keeps_the_window(coverage_capture):
    """A call already Established when the window opens is not taken for a new one."""
    con = open_ro(coverage_capture)
    # agent1's call A: Ringing at 0 s, Established 1 s, Held 2 s, Established 3 s, Released 4 s
    window = db.Scope.of(at(2), at(4))
    obs = coverage.observed_transitions(con, "call", scope=window)
    got = {(s, t): c for s, t, c in zip(obs["source"], obs["target"], obs["count"])}
    assert got == {("Established", "Held"): 1, ("Held", "Established"): 1}
    agent2 = coverage.observed_transitions(con, "call", scope=db.Scope.of(agent="agent2"))
    got = {(s, t): c for s, t, c in zip(agent2["source"], agent2["target"], agent2["count"])}
    assert got == {(NEW, "Ringing"): 2, ("Ringing", "Released"): 1, ("Ringing", "Held"): 1, ("Held", "Released"): 1}
    assert list(coverage.anomalies(con, "call", scope=db.Scope.of(agent="agent1"))["source"]) == []
    assert len(coverage.anomalies(con, "call", scope=db.Scope.of(agent="agent2"))) == 1
    # operations: four requested at 500-503 s, two of them in [500, 502)
    used = coverage.operations_used(con, scope=db.Scope.of(at(500), at(502)))
    assert used["requests"].sum() == 2
    # bands are computed over the whole capture and cut to the window
    bands = timeline.state_bands(con, "agent1", ["call"], scope=db.Scope.of(at(1.5), at(2.5)))
    a = bands[bands["resource_id"] == "A"]
    assert list(a["state"]) == ["Established", "Held"]
    assert list(a["start"]) == [pd.Timestamp(at(1.5)), pd.Timestamp(at(2))]
    assert list(a["end"]) == [pd.Timestamp(at(2)), pd.Timestamp(at(2.5))]


def test_scope_of_parameters():
    s = db.Scope.of("2024-05-06 10:40", "2024-05-06T10:45:30", "agent1")
    assert s.time_from == datetime(2024, 5, 6, 10, 40) and s.time_to == datetime(2024, 5, 6, 10, 45, 30)
    assert s.where("ts") == ("ts >= TIMESTAMP '2024-05-06 10:40:00' AND ts < TIMESTAMP '2024-05-06 10:45:30' "
                             "AND user_name = 'agent1'")
    # a time with a zone is converted to the capture's naive UTC
    assert db.Scope.of("2024-05-06 12:40+02:00").time_from == datetime(2024, 5, 6, 10, 40)
    assert db.Scope.of(None, "", None).whole and db.scoped("exchanges", db.Scope()) == "exchanges"
    assert db.Scope.of(None, None, "o'neil").where("ts") == "user_name = 'o''neil'"
    with pytest.raises(ValueError, match="empty time window"):
        db.Scope.of("2024-05-06 10:45", "2024-05-06 10:40")
    with pytest.raises(ValueError):
        db.Scope.of("not a time")


# ----------------------------------------------------------------------------- the report's headline

def test_headline_known_answers(latency_capture):
    con = open_ro(latency_capture)
    h = headline.compute(con)
    # 7 Holds that complete, a Hold failing with an ErrorMessage, one rejected with HTTP 400, a lost Hangup
    assert (h.operations, h.completed, h.failed, h.never_completed) == (10, 7, 2, 1)
    assert h.error_rate_pct == pytest.approx(20.0)
    assert h.agents == 2 and h.sessions == 0
    done = np.array([d for _, d, _ in HOLDS], dtype=float)
    acks = np.array([a for _, _, a in HOLDS] + [2, 3, 4], dtype=float)
    assert h.completion_p50_ms == pytest.approx(np.percentile(done, 50))
    assert h.completion_p99_ms == pytest.approx(np.percentile(done, 99))
    assert h.ack_p50_ms == pytest.approx(np.percentile(acks, 50), abs=1e-3)
    assert h.ack_p99_ms == pytest.approx(np.percentile(acks, 99), abs=1e-3)
    # from the first request to the Hangup's answer (ack 4 ms + 1 ms transfer) 540 s later
    assert h.started_at == T0 and h.duration_s == pytest.approx(540.005)
    assert [r.operation for r in h.slowest] == ["voice Hold"]
    assert h.slowest[0].p99_ms == pytest.approx(np.percentile(done, 99))
    assert [(r.operation, r.failed, r.requests) for r in h.most_failed] == [("voice Hold", 2, 9)]
    texts = [f.text for f in h.findings]
    assert "1 operation without an outcome (no notification showed their effect)" in texts
    assert "2 failed operations" in texts
    assert "1 × HTTP errors" in texts and "1 × statusCode != 0" in texts
    assert all(f.section in {headline.section(k) for k in headline.SECTIONS} for f in h.findings)
    table = dict(headline.summary_table(h).itertuples(index=False))
    assert table["Error rate"] == "20.0 % of operations failed"
    assert table["Completion latency"] == (f"p50 {np.percentile(done, 50):,.0f} ms, "
                                           f"p99 {np.percentile(done, 99):,.0f} ms")
    assert table["Agents, sessions"] == "2 agents, 0 sessions"
    assert table["Capture span"] == "2024-05-06 10:00:00.000 → 10:09:00.005 UTC (9 min 00 s)"
    # the headline follows the scope
    h2 = headline.compute(con, db.Scope.of(agent="agent2"))
    assert (h2.operations, h2.failed, h2.agents) == (3, 1, 1)
    assert h2.error_rate_pct == pytest.approx(100 / 3)


def test_headline_anomalies_and_links(coverage_capture):
    con = open_ro(coverage_capture)
    h = headline.compute(con)
    assert [(a.model, a.source, a.target, a.example_user) for a in h.anomalies if a.model == "call"] == \
        [("call", "Ringing", "Held", "agent2")]
    assert any("operation used that the reference does not document" in f.text for f in h.findings)  # MakeCoffee
    assert any("the models do not know" in f.text for f in h.findings)                                # Training
    anchors = {headline.section(k) for k in headline.SECTIONS}
    page = headline.to_html(h, anchors)
    assert 'id="headline"' in page and page.count('class="summary"') == 1
    assert set(re.findall(r'href="#([^"]+)"', page)) <= anchors
    assert 'href="#coverage-anomalies-observed-transitions-the-model-does-not-allow"' in page
    # without the sections (a report of some notebooks only) nothing links nowhere
    assert "href=" not in headline.to_html(h, set())


def test_headline_sections_are_notebook_headings():
    """Every section the headline links to is a heading of the notebook it names."""
    for notebook_name, heading in headline.SECTIONS.values():
        if heading is None:
            continue
        nb = _build_notebooks.NOTEBOOKS[notebook_name + ".ipynb"]
        assert any(line.lstrip("#").strip() == heading for c in nb.cells if c.cell_type == "markdown"
                   for line in c.source.splitlines() if line.startswith("#")), (notebook_name, heading)


def test_numbers_for_people():
    assert humanize.ms(4.234) == "4.2 ms" and humanize.ms(1234.5) == "1,234 ms" and humanize.ms(None) == "–"
    assert humanize.pct(12.345) == "12.3 %" and humanize.count(1234567) == "1,234,567"
    assert humanize.duration(0.25) == "250 ms" and humanize.duration(6.24) == "6.2 s"
    assert humanize.duration(245) == "4 min 05 s" and humanize.duration(3725) == "1 h 02 min"
    df = pd.DataFrame({"exchange_id": [12345], "requests": [12345], "p99": [1234.5678], "ok": [True]})
    page = humanize.frame_html(df)
    assert ">12345<" in page and ">12,345<" in page and ">1,234.6<" in page and ">True<" in page


def test_log_axes_read_in_milliseconds():
    assert figures.log_ticks(3.2, 1870) == [5, 10, 20, 50, 100, 200, 500, 1000, 2000]
    assert figures.log_ticks(0.4, 90000) == [1, 10, 100, 1000, 10000, 100000]
    assert [figures.tick_label(v) for v in (0.5, 20, 1000)] == ["0.5", "20", "1,000"]
    ops = pd.DataFrame({"channel_operation": ["voice Hold"] * 3, "completion_latency_ms": [8.0, 40.0, 900.0],
                        "outcome": ["completed"] * 3, "user_name": ["a"] * 3,
                        "requested_at": pd.to_datetime([T0] * 3), "resource_id": ["c"] * 3})
    fig = figures.latency_box(ops, by="channel_operation")
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis.exponentformat == "none"
    assert list(fig.layout.yaxis.ticktext) == ["10", "20", "50", "100", "200", "500", "1,000"]
    assert "1,000" in fig.layout.yaxis.ticktext and not any("e" in t for t in fig.layout.yaxis.ticktext)


def test_notebook_setup(tmp_path, latency_capture):
    """One call: the capture path resolved against the notebook's folder, opened, and the scope."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    relative = Path(os.path.relpath(latency_capture, folder))
    con, scope, path = notebook.setup(relative, time_from="2024-05-06 10:00", agent="agent2", base=folder,
                                      show=False)
    assert path == Path(latency_capture).resolve()
    assert scope == db.Scope(datetime(2024, 5, 6, 10, 0), None, "agent2")
    assert len(latency.operation_latencies(con, scope=scope)) == 3
    with pytest.raises(duckdb.Error):
        con.execute("DELETE FROM exchanges")
