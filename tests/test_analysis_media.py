"""Every channel through capture and analysis: a simulator session recorded through the proxy.

tests/media_tour.py drives three desktops through every transition the simulator's
multimedia model can produce (Channels API, chat, email, workitems, open media,
workbins, IM) plus one call, through ``gwsreplay record`` in front of ``gwsreplay
sim``. On that capture:

* the writer's SQL classification equals the Python rules on every recorded message;
* every channel's operations are correlated in the ``operations`` view with the
  notification that shows their effect (the new email of a Reply, the channel of a
  channel operation, the referenceId of a workbin operation...);
* coverage: no anomaly, nothing the models do not know, every media transition the
  simulator produces is covered, and every channel shows up in the coverage, latency,
  operation-coverage and timeline frames.

Plus fast unit tests of the media-specific analysis on hand-built captures.
"""

from __future__ import annotations

import csv
import json
import os
import re
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from gwsreplay.analysis import catalog, coverage, db, latency, timeline
from gwsreplay.analysis.state_models import MODELS, NEW
from gwsreplay.analysis.synthetic import CaptureBuilder, channel_data, media_data
from gwsreplay.capture.classify import classify_bayeux, classify_path
from media_tour import record_media_tour

REFERENCE = Path(os.environ.get("GWS_REFERENCE", "/work/shared/gws-reference"))
CHANNELS = ("voice", "chat", "email", "workitem", "openmedia", "im", "workbin", "all channels")


@pytest.fixture(scope="module", params=["long-polling", "websocket"])
def tour(request, tmp_path_factory) -> Path:
    return record_media_tour(tmp_path_factory.mktemp("tour") / f"tour-{request.param}.duckdb", request.param)


@pytest.fixture(scope="module")
def tour_lp(tmp_path_factory) -> Path:
    return record_media_tour(tmp_path_factory.mktemp("tour-lp") / "tour.duckdb")


def rows(con, sql: str, params=None) -> list[dict]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


# ----------------------------------------------------------------------------- the capture

FIELDS = ["message_type", "notification_type", "resource_type", "resource_id", "resource_state", "call_id",
          "conn_id", "device_id", "user_state", "reference_id", "error_message"]


def test_recorded_classification_equals_the_python_rules(tour):
    con = duckdb.connect(str(tour), read_only=True)
    try:
        notes = rows(con, f"SELECT channel, data, {', '.join(FIELDS)} FROM bayeux_messages "
                          "WHERE direction = 's2c' AND data IS NOT NULL AND NOT starts_with(channel, '/meta/')")
        assert len(notes) > 200
        for n in notes:
            c = classify_bayeux({"channel": n["channel"], "data": json.loads(n["data"])})
            assert {f: getattr(c, f) for f in FIELDS} == {f: n[f] for f in FIELDS}, n
        # every notification names its resource; every channel's topic is there
        unnamed = [n for n in notes if n["resource_type"] is None or n["resource_id"] is None]
        assert not unnamed, unnamed[:3]
        topics = {n["channel"] for n in notes}
        assert {"/v2/me/calls", "/v2/me/devices", "/v2/me/channels", "/v2/me/chats", "/v2/me/emails",
                "/v2/me/workitems", "/v2/me/openmedia", "/v2/me/im-sessions", "/v2/me/workbins"} <= topics
        # the control API's injections name what they injected
        injected = rows(con, "SELECT path, resource_type, resource_id, sub_resource, response_body FROM exchanges "
                             "WHERE api_area = 'sim' AND method = 'POST'")
        for x in injected:
            if x["path"] in ("/sim/v1/chats", "/sim/v1/emails", "/sim/v1/workitems"):
                assert x["resource_id"] == json.loads(x["response_body"])["id"], x
            elif x["path"].endswith("/messages") or x["path"].endswith("/leave"):
                assert x["resource_type"] == "chat" and x["resource_id"] == x["path"].split("/")[4]
        assert {x["resource_type"] for x in injected} == {"chat", "email", "workitem", "openmedia", "service"}
    finally:
        con.close()


def _completion(con) -> list[dict]:
    return rows(con, f"""
        SELECT o.*, {latency.CHANNEL_SQL.replace('resource_', 'o.resource_')} AS chan,
               m.message_type AS m_type, m.notification_type AS m_note, m.resource_type AS m_rtype,
               m.resource_id AS m_rid, m.resource_state AS m_state, m.reference_id AS m_ref, m.data AS m_data,
               m.user_name AS m_user
        FROM operations o LEFT JOIN bayeux_messages m ON m.id = o.outcome_message_id
        ORDER BY o.requested_at""")


def test_every_channel_operation_is_correlated_with_its_notification(tour):
    con = db.open_capture(tour)
    ops = _completion(con)
    assert {o["chan"] for o in ops} >= set(CHANNELS)
    rules = {(r[0], r[1]) for r in con.execute("SELECT operation_name, resource_type FROM operation_expectations")
             .fetchall()}
    wrong, known_gaps = [], []
    for o in ops:
        op, rtype, rid = o["operation_name"], o["resource_type"], o["resource_id"]
        where = f"{o['user_name']} {o['chan']} {op} {rid}"
        if o["m_user"] is not None:
            assert o["m_user"] == o["user_name"], where
        if o["status"] != 200:
            # the chat service outage: refused at once
            assert (o["outcome"], o["status"], o["status_code"]) == ("http_error", 503, 4), where
            continue
        if op in ("SetInFocus", "EndContactCenterSession") or (op == "CancelConsult" and o["outcome"] != "failed"):
            if o["outcome"] != "acknowledged":
                wrong.append((where, o["outcome"], "documented without a notification"))
            continue
        if o["outcome"] == "failed":
            # CancelConsult once the consultant joined: the Error notification with its referenceId
            assert op == "CancelConsult" and o["m_note"] == "Error" and o["m_ref"] == o["reference_id"], where
            continue
        if op == "Consult" and o["outcome"] == "no_notification":
            continue     # cancelled before the consultant joined: nothing for the requester (L14020)
        if o["outcome"] != "completed":
            known_gap = rtype == "channel" and op.startswith("DoNotDisturb") and (op, "channel") not in rules
            (known_gaps if known_gap else wrong).append((where, o["outcome"], o["match_kind"]))
            continue
        data = json.loads(o["m_data"])
        if o["chan"] == "voice":
            assert o["m_type"] in ("CallStateChangeMessage", "DeviceStateChangeMessage"), where
        elif rtype == "channel":
            # /me/channels/{channel}: that channel's ChannelStateChangeMessageV2
            assert (o["m_rtype"], o["m_rid"]) == ("channel", rid), where
        elif rtype == "me":
            assert o["m_rtype"] in ("device", "channel"), where
        elif rtype == "workbin":
            # every workbin answer carries a referenceId: the notification it matched carries it too, or
            # it is the workbin's own news (ItemAdded / ItemRemoved to its subscribers, the same instant)
            assert o["reference_id"], where
            assert o["m_ref"] == o["reference_id"] or (o["m_rtype"], o["m_rid"]) == ("workbin", rid), where
        elif op in ("Reply", "ReplyAll"):
            # a new outbound email in Composing whose parent is the inbound one
            email = data["email"]
            assert (o["m_rtype"], o["m_state"], email.get("parentId")) == ("email", "Composing", rid), where
        elif rid is None:
            # Create, InitiateIMSession: the first notification of the new resource
            assert o["m_rtype"] == rtype and o["m_state"] in ("Composing", "Processing", "Talking"), where
            first = con.execute("SELECT min(ts) FROM bayeux_messages WHERE user_name = ? AND resource_id = ?",
                                [o["user_name"], o["m_rid"]]).fetchone()[0]
            assert first >= o["requested_at"], where
        else:
            assert (o["m_rtype"], o["m_rid"]) == (rtype, rid), where
            if o["reference_id"] is not None and o["m_ref"] is not None and o["m_ref"] != o["reference_id"]:
                # a notification caused by another operation (its referenceId says so) arrived first: the
                # view takes the first candidate by time (known gap of gwsreplay.capture/schema.py, reported)
                known_gaps.append((where, f"matched referenceId {o['m_ref']}, the answer's is {o['reference_id']}"))
    assert not wrong, wrong
    if known_gaps:
        # gwsreplay.capture/schema.py (not analysis): no rule for DoNotDisturbOn/Off on /me/channels/{channel}, and
        # a notification naming another operation's referenceId may be taken as this one's outcome
        pytest.xfail(f"operations view gaps: {known_gaps}")


def test_operations_wait_for_the_right_state(tour):
    """The correlated notification shows the operation's effect, not just any news of the resource."""
    con = db.open_capture(tour)
    expect = {("chat", "Accept"): {"Chatting"}, ("chat", "Reject"): {"Completed"},
              ("chat", "Complete"): {"Completed"},
              ("email", "Accept"): {"Processing", "Composing"},        # a transferred draft stays a draft
              ("email", "Send"): {"Sent"}, ("email", "Cancel"): {"Canceled"},
              ("workitem", "Accept"): {"Processing"}, ("workitem", "Complete"): {"Completed"},
              ("openmedia", "Accept"): {"Processing"}, ("im-session", "Complete"): {"Completed"},
              ("channel", "Offline"): {"LoggedOut"}}
    seen = set()
    for o in _completion(con):
        key = (o["resource_type"], o["operation_name"])
        if key in expect and o["outcome"] == "completed":
            assert o["m_state"] in expect[key], o
            seen.add(key)
    assert seen == set(expect)


# ----------------------------------------------------------------------------- coverage

# what the tour reaches, per model (every media transition the simulator can produce)
COVERED = {
    "channel_state": {("NotReady", "Ready"), ("Ready", "NotReady"), ("Ready", "LoggedOut"), ("NotReady", "LoggedOut"),
                      ("LoggedOut", "NotReady"), ("LoggedOut", "Ready")},
    "channel_dnd": {("Off", "On"), ("On", "Off")},
    "im_session": {(NEW, "Talking"), (NEW, "Alerting"), ("Alerting", "Talking"), ("Talking", "Completed")},
    "chat": {(NEW, "Invited"), (NEW, "Chatting"), ("Invited", "Chatting"), ("Invited", "Completed"),
             ("Invited", "Revoked"), ("Chatting", "LeftChat"), ("Chatting", "Completed"), ("LeftChat", "Completed"),
             ("Chatting", "InWorkbin"), ("LeftChat", "InWorkbin"), ("InWorkbin", "Chatting")},
    "email": {(t.source, t.target) for t in MODELS["email"].transitions},
    "workitem": {(t.source, t.target) for t in MODELS["workitem"].transitions},
    "openmedia": {(t.source, t.target) for t in MODELS["openmedia"].transitions},
    "call": {(NEW, "Dialing"), (NEW, "Ringing"), ("Dialing", "Established"), ("Ringing", "Established"),
             ("Established", "Released")},
}


def test_coverage_of_a_simulator_capture(tour_lp):
    con = db.open_capture(tour_lp)
    observed = coverage.observed_transitions(con)
    cov = coverage.transition_coverage(con, observed=observed)
    # correct simulator behaviour is never an anomaly, and every state is a known one
    assert coverage.anomalies(con, observed=observed).empty, coverage.anomalies(con, observed=observed)
    assert coverage.unknown_states(con).empty
    for model, edges in COVERED.items():
        got = set(map(tuple, cov[(cov["model"] == model) & (cov["status"] == "covered")][["source", "target"]]
                      .itertuples(index=False)))
        assert edges <= got, (model, edges - got)
    # what stays missing is what the simulator never does
    missing = coverage.missing_transitions(con, observed=observed)
    media_missing = set(map(tuple, missing[missing["model"].isin(list(COVERED)) & (missing["model"] != "call")]
                            [["model", "source", "target"]].itertuples(index=False)))
    assert media_missing == {("chat", "Chatting", "Revoked"), ("im_session", NEW, "Initiating"),
                             ("im_session", "Initiating", "Talking"), ("im_session", "Initiating", "Completed"),
                             ("im_session", "Alerting", "Completed")}
    summary = coverage.coverage_summary(cov).set_index("model")
    assert set(summary["channel"]) == {"voice", "media channels", "im", "chat", "email", "workitem", "openmedia"}
    for model in ("channel_state", "channel_dnd", "email", "workitem", "openmedia"):
        assert summary.loc[model, "coverage_pct"] == 100.0, model
    # the per-channel agent models, per channel
    per_channel = coverage.channel_transitions(con)
    assert set(per_channel["channel"]) == {"chat", "email", "workitem", "openmedia", "im"}
    assert per_channel["allowed"].all()
    # each heatmap has every channel model's states
    for model in ("channel_state", "chat", "email", "openmedia"):
        mat = coverage.coverage_matrix(cov, model)
        assert set(MODELS[model].states) <= set(mat.columns)


def test_operation_and_capability_coverage_of_a_simulator_capture(tour_lp):
    con = db.open_capture(tour_lp)
    ops = coverage.operation_coverage(con)
    assert ops[ops["exercised"]]["documented"].all(), ops[~ops["documented"]]
    summary = coverage.operation_coverage_summary(ops).set_index("resource_family")
    for family in ("chat", "email", "workitem", "openmedia", "im-session", "workbin", "channel", "me"):
        assert summary.loc[family, "exercised"] > 0, family
    assert summary.loc["im-session", "coverage_pct"] == 100.0
    assert summary.loc["workitem", "coverage_pct"] == 100.0
    acked = ops[ops["acknowledged"] > 0]
    assert {"SetInFocus", "EndContactCenterSession", "CancelConsult"} <= set(acked["operation_name"])
    caps = coverage.capability_coverage(con)
    for rtype in ("chat", "email", "workitem", "openmedia", "im-session"):
        assert (caps[(caps["resource_type"] == rtype)]["status"] == "used").any(), rtype
    # the chat's agent-only typing operation is offered under another name; compared as one
    typing = caps[(caps["resource_type"] == "chat")
                  & (caps["operation_name"] == "SendStopTypingToAgentsNotification")]
    assert len(typing) == 1


def test_latency_and_timelines_show_every_channel(tour_lp):
    con = db.open_capture(tour_lp)
    table = latency.latency_table(con, "channel").set_index("channel")
    assert set(CHANNELS) <= set(table.index)
    for channel in CHANNELS:
        assert table.loc[channel, "completed"] > 0, channel
        assert table.loc[channel, "completion_p50"] > 0, channel
    per_op = latency.latency_table(con, "channel_operation")
    assert {"chat Accept", "email Accept", "workitem Accept", "openmedia Accept", "im InitiateIMSession",
            "workbin AddChat", "chat Ready", "voice Dial", "all channels StartContactCenterSession"} \
        <= set(per_op["channel_operation"])
    ops = latency.operation_latencies(con)
    assert [latency.channel_of(t, i) for t, i in zip(ops["resource_type"], ops["resource_id"])] == \
        list(ops["channel"])
    activity = timeline.channel_activity(con)
    assert set(CHANNELS) <= set(activity["channel"])
    assert {"request", "notification", "injection"} <= set(activity["kind"])
    assert "control API" in set(activity["user_name"])
    bands = timeline.state_bands(con, "agent1")
    assert {"agent_state", "channel_state", "channel_dnd", "call", "chat", "email", "workitem", "im_session"} \
        <= set(bands["model"])
    assert set(bands[bands["model"] == "channel_state"]["resource_id"]) >= {"chat", "email", "workitem"}
    assert "InWorkbin" not in set(bands["state"])
    events = timeline.agent_timeline(con, "agent1")
    assert {"/v2/me/channels", "/v2/me/chats", "/v2/me/emails", "/v2/me/workitems", "/v2/me/im-sessions",
            "/v2/me/workbins", "/v2/me/calls"} <= set(events["lane"])


# ----------------------------------------------------------------------------- the catalog

def test_catalog_documents_every_media_operation():
    """Every (family, operationName) of media_operations.csv is in analysis/catalog.py."""
    path = REFERENCE / "media_operations.csv"
    if not path.exists():
        pytest.skip(f"no {path}")
    doc = catalog.documented_operations()
    have = set(zip(doc["resource_family"], doc["operation_name"]))
    assert len(have) == len(doc), "duplicate catalog rows"
    needed = set()
    with path.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            ops = [o.strip() for o in row["operationName"].split("|") if o.strip()]
            for url in row["url_template"].split(" OR "):
                c = classify_path(re.sub(r"\{[^}]+\}", "X", url.strip().split("?")[0]))
                family = catalog.resource_family(c.resource_type, c.api_area)
                needed |= {(family, op) for op in ops}
    assert needed and not needed - have, sorted(needed - have)
    assert {"customer-chat", "openmedia", "multimediaevent", "smsession", "tweet", "facebook",
            "facebooksession"} <= set(doc["resource_family"])


# ----------------------------------------------------------------------------- hand-built captures

T0 = datetime(2024, 5, 6, 10, 0, 0)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def media_capture(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("media") / "media.duckdb"
    con = duckdb.connect(str(path))
    b = CaptureBuilder(con)
    # agent1: an email rejected, re-offered after a transfer back, completed; then a late
    # PropertiesUpdated showing Processing after Completed (out of order: an anomaly)
    for t, state, note in ((0, "Invited", "StatusChange"), (1, "Completed", "StatusChange"),
                           (5, "Invited", "StatusChange"), (6, "Processing", "StatusChange"),
                           (7, "Completed", "StatusChange"), (7.1, "Processing", "PropertiesUpdated")):
        b.event(at(t), "agent1", media_data("email", "E1", state, notification_type=note))
    # agent1's chat channel: login NotReady (not a transition), Ready, DND "0n" (the sample's
    # spelling), Off, Offline (no dndState), back
    for t, state, dnd in ((0, "NotReady", False), (1, "Ready", False), (2, "Ready", "0n"), (3, "Ready", False),
                          (4, "LoggedOut", None), (5, "NotReady", False)):
        b.event(at(t), "agent1", channel_data("chat", state, dnd=dnd))
    # agent2's email channel starts Ready (first message: where the agent already was)
    b.event(at(0), "agent2", channel_data("email", "Ready"))
    b.event(at(2), "agent2", channel_data("email", "NotReady"))
    b.write()
    con.close()
    return path


def test_terminal_states_start_a_new_participation(media_capture):
    con = db.open_capture(media_capture)
    occ = coverage.transition_occurrences(con, "email")
    got = list(zip(occ["source"], occ["target"], occ["allowed"]))
    assert got == [(NEW, "Invited", True), ("Invited", "Completed", True), (NEW, "Invited", True),
                   ("Invited", "Processing", True), ("Processing", "Completed", True),
                   ("Completed", "Processing", False)]
    assert list(coverage.anomalies(con, "email")[["source", "target"]].itertuples(index=False, name=None)) == \
        [("Completed", "Processing")]


def test_channel_models(media_capture):
    con = db.open_capture(media_capture)
    occ = coverage.transition_occurrences(con, ["channel_state", "channel_dnd"])
    got = {(m, u, r, s, t) for m, u, r, s, t in zip(occ["model"], occ["user_name"], occ["resource_id"],
                                                     occ["source"], occ["target"])}
    assert got == {("channel_state", "agent1", "chat", "NotReady", "Ready"),
                   ("channel_state", "agent1", "chat", "Ready", "LoggedOut"),
                   ("channel_state", "agent1", "chat", "LoggedOut", "NotReady"),
                   ("channel_dnd", "agent1", "chat", "Off", "On"),
                   ("channel_dnd", "agent1", "chat", "On", "Off"),
                   ("channel_state", "agent2", "email", "Ready", "NotReady")}
    assert occ["allowed"].all()
    obs = coverage.state_observations(con, "channel_dnd")
    assert set(obs["state"].dropna()) == {"On", "Off"}          # "0n" read as On
    bands = timeline.state_bands(con, "agent1", ["channel_state", "channel_dnd"])
    assert list(bands[bands["model"] == "channel_state"]["state"]) == ["NotReady", "Ready", "LoggedOut", "NotReady"]
    per_channel = coverage.channel_transitions(con)
    assert set(per_channel["channel"]) == {"chat", "email"}


def test_channel_of_an_operation():
    assert latency.channel_of("call") == latency.channel_of("device") == "voice"
    assert latency.channel_of("channel", "chat") == "chat"
    assert latency.channel_of("channel", "voice") == "voice"
    assert latency.channel_of("me") == "all channels"
    assert latency.channel_of("im-session") == "im"
    assert latency.channel_of("workbin") == "workbin"
    assert latency.channel_of(None) == "other"
