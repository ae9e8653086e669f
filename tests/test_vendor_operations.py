"""The vendor's request/response/notification sequences, imported as a HAR, correlated in `operations`.

tests/vendor_har.py lays the sequences of tests/vendor/corpus-*.json out as one agent's
traffic (each sequence 30 s after the previous one, notifications as long-poll answers
or WebSocket messages) and ``gwsreplay import`` reads it. Each operation must get its
own outcome: a notification printed after it (never a neighbour's), found by a rule
that says which (matched_by), whenever the sample's notifications name the operation's
resource. Hand-built neighbours check the cases docs/schema.md ("Correlation") settles:
an ErrorMessage naming the call by connId, StartContactCenterSession without a
notification (8.6 L4436), a supervisor's agent-state request on /users/{id}/channels.
"""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from conftest import gwsreplay_command
from vendor_har import START, as_bayeux, har_entries, notifications, record, sequences, write_har

from gwsreplay.analysis import coverage
from gwsreplay.core.bayeux_classify import classify_bayeux

VERSIONS = ("8.6", "8.5.2")


def import_har(tmp: Path, name: str, entries: list[dict]) -> duckdb.DuckDBPyConnection:
    har = write_har(tmp / f"{name}.har", entries)
    db = tmp / f"{name}.duckdb"
    done = subprocess.run([*gwsreplay_command(), "import", str(har), "--db", str(db)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return duckdb.connect(str(db), read_only=True)


@pytest.fixture(scope="module", params=[(v, t) for v in VERSIONS for t in ("long-polling", "websocket")],
                ids=lambda p: f"{p[0]}-{p[1]}")
def imported(request, tmp_path_factory):
    version, transport = request.param
    seqs = sequences(version)
    entries, placed = har_entries(list(seqs.items()), transport=transport)
    con = import_har(tmp_path_factory.mktemp("vendor"), f"vendor-{version}", entries)
    yield version, seqs, placed, con
    con.close()


def _own_notes(con, seqs, placed) -> dict[int, str]:
    """bayeux message id -> the sequence it was printed in (by the time it was placed at)."""
    by_ts = {t.replace(tzinfo=None): rid for rid, t in placed["notes"].items()}
    seq_of = {r["id"]: s for s, recs in seqs.items() for r in recs}
    rows = con.execute("SELECT id, ts FROM bayeux_messages WHERE direction = 's2c' "
                       "AND message_type IS NOT NULL").fetchall()
    return {mid: seq_of[by_ts[ts]] for mid, ts in rows if ts in by_ts}


def _operations(con) -> list[dict]:
    cur = con.execute("SELECT exchange_id, requested_at, operation_name, resource_type, resource_id, status_code, "
                      "outcome, outcome_message_id, matched_by, match_kind, reference_id, path FROM operations ORDER BY requested_at")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def _names_resource(note_body: dict, rid: str | None, reference_id: str | None) -> bool:
    """The sample notification is about the request's resource (by what the classifier reads) and does
    not name another referenceId (8.6 L19532 answers referenceId 16 and notifies 19: not taken)."""
    c = classify_bayeux(as_bayeux(note_body))
    if c.reference_id is not None and reference_id is not None and c.reference_id != reference_id:
        return False
    return rid is not None and rid in (c.resource_id, c.call_id, c.conn_id, c.item_id)


def test_each_operation_gets_its_own_outcome(imported):
    version, seqs, placed, con = imported
    own = _own_notes(con, seqs, placed)
    seq_at = {t.replace(tzinfo=None): s for s, t in placed["request"].items()}
    ops = _operations(con)
    assert len(ops) == sum(1 for recs in seqs.values() if recs[0].get("operationName")
                           or (isinstance(recs[0].get("body"), dict) and recs[0]["body"].get("operationName")))
    matched = 0
    seen: set[str] = set()      # resources of the notifications laid out so far (the vendor reuses ids)
    for op in ops:
        seq = seq_at[op["requested_at"]]
        if op["outcome_message_id"] is not None:
            # never a neighbour's notification, and always with the rule that found it
            assert own.get(op["outcome_message_id"]) == seq, (seq, op)
            assert op["matched_by"] in ("reference_id", "error_message", "rule"), (seq, op)
            matched += 1
        else:
            assert op["matched_by"] is None, (seq, op)
        notes = [r["body"] for r in seqs[seq] if r["kind"] == "notification" and isinstance(r["body"], dict)]
        about = {classify_bayeux(as_bayeux(b)).resource_id for b in notes} - {None}
        expected = any(_names_resource(b, op["resource_id"], op["reference_id"]) for b in notes) if op["match_kind"] != "new_resource" \
            else bool(about - seen)     # a resource born here (not one an earlier sample already showed)
        seen |= about
        # one agent's stream holds every sample here; a supervisor's request on /users/{id}/... is answered in
        # the target agent's stream (test_supervisor_agent_state_is_in_the_target_agents_stream)
        expected = expected and "/users/" not in op["path"]
        if op["outcome"] != "http_error" and op["match_kind"] not in ("ack_only", None) and expected:
            assert op["outcome"] != "no_notification", (seq, op)
        if op["status_code"] not in (None, 0, 7):
            assert op["outcome"] == "http_error", (seq, op)
    assert matched >= (135 if version == "8.6" else 40)


@pytest.mark.parametrize("version", VERSIONS)
def test_call_error_by_connid_goes_to_the_call_not_to_the_next_dial(version, tmp_path):
    """Answer on a call, then a Dial, then the vendor's two errors (8.6 L4217, 8.5.2 L1748): the call's
    error (callUri = the connId) is the Answer's, the device's "Invalid Called Dn" the Dial's."""
    if version == "8.6":
        ring = record(version, "gws86-L1128")                 # call 011DJV...00000B, connId 007102385535e00a
        call_id = ring["body"]["data"]["call"]["id"]
        conn = ring["body"]["data"]["call"]["connId"]
    else:
        ring = record(version, "gws852-L1260")                # 8.5.2: the id is the connId
        call_id = conn = ring["body"]["data"]["call"]["id"]
    errors = [r for r in sequences_free_errors(version)]
    call_error = next(r for r in errors if "callUri" in r["body"]["data"])
    device_error = next(r for r in errors if "callUri" not in r["body"]["data"])
    uri = call_error["body"]["data"]["callUri"]
    call_error = {**call_error, "body": {**call_error["body"], "data": {
        **call_error["body"]["data"], "callUri": uri[:uri.rindex("/") + 1] + conn}}}
    answer = {"kind": "request", "method": "POST", "path": f"/api/v2/me/calls/{call_id}",
              "body": {"operationName": "Answer"}, "id": "answer"}
    dial = {"kind": "request", "method": "POST", "path": "/api/v2/me/devices/d1/calls",
            "body": {"operationName": "Dial", "destination": {"phoneNumber": "15002"}}, "id": "dial"}
    ok = {"kind": "response", "body": {"statusCode": 0}}
    steps = [("ring", [ring]), ("answer", [answer, ok]), ("dial", [dial, ok]),
             ("e1", [call_error]), ("e2", [device_error])]
    entries, _ = har_entries(steps, spacing=0.2)
    con = import_har(tmp_path, "errors", entries)
    got = {op: (outcome, detail, by) for op, outcome, detail, by in con.execute(
        "SELECT operation_name, outcome, outcome_detail, matched_by FROM operations").fetchall()}
    assert got == {"Answer": ("error_message", "Incorrect object state", "error_message"),
                   "Dial": ("error_message", "Invalid Called Dn", "error_message")}


def sequences_free_errors(version: str) -> list[dict]:
    return [r for r in notifications(version) if (r["body"].get("data") or {}).get("messageType") == "ErrorMessage"]


def test_login_without_notification_does_not_take_the_next_ready(tmp_path):
    """8.6 L4436: StartContactCenterSession of an agent already logged in "may not result in a
    notification"; the Ready sent next has its own DeviceStateChangeMessage."""
    seqs = sequences("8.6")
    login = next(recs for s, recs in seqs.items() if recs[0].get("operationName") == "StartContactCenterSession")
    login = [r for r in login if r["kind"] != "notification"]
    ready = seqs["gws86-S4680"]
    entries, _ = har_entries([("login", login), ("ready", ready)], spacing=0.5)
    con = import_har(tmp_path, "login", entries)
    got = dict(con.execute("SELECT operation_name, outcome FROM operations").fetchall())
    assert got == {"StartContactCenterSession": "no_notification", "Ready": "completed"}


def test_supervisor_agent_state_is_in_the_target_agents_stream(tmp_path):
    """L44945: a supervisor's Ready on /users/{id}/channels/chat; the agent gets the notification."""
    seqs = sequences("8.6")
    sup = seqs["gws86-S44945"]
    target_id = sup[0]["path"].split("/")[4]
    chat_ready = {"kind": "notification", "id": "n1", "body": {"channel": "/v2/me/channels", "data": {
        "messageType": "ChannelStateChangeMessageV2", "notificationType": "StateChange",
        "channels": [{"channel": "chat", "userState": {"state": "Ready"}}]}}}
    me = {"kind": "request", "method": "GET", "path": "/api/v2/me", "body": None, "id": "me"}
    me_answer = {"kind": "response", "body": {"statusCode": 0, "user": {"id": target_id, "userName": "agent7"}}}
    agent, _ = har_entries([("me", [me, me_answer])], user="agent7", start=START - timedelta(seconds=5))
    supervisor, _ = har_entries([("sup", [r for r in sup if r["kind"] != "notification"])], user="super1")
    # the supervisor's own channels change too (a distractor): not the outcome
    own, _ = har_entries([("own", [{**chat_ready, "id": "n0"}])], user="super1",
                         start=START + timedelta(milliseconds=20))
    note, _ = har_entries([("note", [chat_ready])], user="agent7", start=START + timedelta(milliseconds=80))
    con = import_har(tmp_path, "supervisor", agent + supervisor + own + note)
    row = con.execute("SELECT o.user_name, o.outcome, m.user_name FROM operations o "
                      "JOIN bayeux_messages m ON m.id = o.outcome_message_id WHERE o.operation_name = 'Ready'").fetchone()
    assert row == ("super1", "completed", "agent7")


def test_mid_shift_calls_are_not_anomalies(imported):
    """The samples start with calls already Held or Released (their birth is not in the capture)."""
    _, _, _, con = imported
    first = con.execute("""SELECT arg_min(resource_state, ts) FROM bayeux_messages
                           WHERE resource_type = 'call' AND message_type = 'CallStateChangeMessage'
                           GROUP BY resource_id""").fetchall()
    assert {"Held", "Released", "Established"} & {s for (s,) in first}   # the case exists
    anomalies = coverage.anomalies(con, "call")
    assert not set(anomalies["source"]) & {"(new)"}, anomalies
