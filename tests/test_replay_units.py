"""The replayer's sans-IO core: id map, normalisation, matching and the session engine.

No sockets, no files: plans are built by hand and the engine runs on a fake clock.
"""

from __future__ import annotations

import pytest

from gwsreplay.drivers.target_guard import ReplayRefused, check_target
from gwsreplay.replay.compare import LiveNote, Matcher, Symbols, diff, normalize
from gwsreplay.replay.engine import (
    Announce,
    EngineOptions,
    Finished,
    ReplayState,
    Report,
    Send,
    SessionEngine,
)
from gwsreplay.replay.idmap import IdMap
from gwsreplay.replay.plan import Note, SessionPlan, Step, Wait
from gwsreplay.replay.users import Credentials, UserMap, UserMapError

REC_HOST = "http://gws-prod:8080"
LIVE_HOST = "http://127.0.0.1:9999"


def call_data(call_id: str, state: str, *, host: str = REC_HOST, conn: str = "0071023bda6f0001",
              device: str = "dev-rec-1111111111", phone: str = "7002", duration: str = "0") -> dict:
    return {"messageType": "CallStateChangeMessage", "notificationType": "StatusChange", "phoneNumber": "7001",
            "call": {"id": call_id, "connId": conn, "callUuid": call_id, "state": state,
                     "uri": f"{host}/api/v2/me/calls/{call_id}", "path": f"/calls/{call_id}",
                     "deviceUri": f"{host}/api/v2/devices/{device}", "duration": duration,
                     "participants": [{"phoneNumber": phone}], "capabilities": ["Hangup", "Hold"]}}


def device_data(device: str, state: str, phone: str = "7001") -> dict:
    return {"messageType": "DeviceStateChangeMessage",
            "devices": [{"id": device, "phoneNumber": phone, "userState": {"state": state}}]}


def note(session: str, index: int, ts: float, data: dict, step: int, channel: str | None = None) -> Note:
    call = data.get("call") or {}
    device = (data.get("devices") or [{}])[0]
    is_call = "call" in data
    return Note(session=session, index=index, ts=ts, channel=channel or ("/v2/me/calls" if is_call else "/v2/me/devices"),
                data=data, message_type=data["messageType"], notification_type=data.get("notificationType"),
                resource_type="call" if is_call else "device",
                resource_id=call.get("id") if is_call else device.get("id"),
                state=call.get("state") if is_call else device.get("userState", {}).get("state"),
                call_id=call.get("id"), step=step)


def rest(index: int, ts: float, path: str, op: str | None = None, *, waits=(), think: float = 0.0,
         body: dict | None = None, status_code: int = 0) -> Step:
    body = body if body is not None else ({"operationName": op} if op else None)
    return Step(index=index, kind="rest", ts=ts, end_ts=ts + 0.01, think=think, method="POST" if op else "GET",
                path=path, body=body, operation=op, status=200, status_code=status_code,
                response={"statusCode": status_code}, waits=tuple(waits))


REC_CALL = "REC0000000000000000000000000001"
LIVE_CALL = "LIVE000000000000000000000000009"


def answer_plan() -> SessionPlan:
    """Ringing arrives, Answer waits for it, then Established."""
    notes = [note("a1", 0, 1.0, call_data(REC_CALL, "Ringing"), 0),
             note("a1", 1, 2.2, call_data(REC_CALL, "Established"), 1)]
    steps = [rest(0, 0.5, "/api/v2/me/channels/voice", "Ready"),
             rest(1, 2.0, f"/api/v2/me/calls/{REC_CALL}", "Answer", waits=[Wait("a1", 0)], think=1.0)]
    return SessionPlan("a1", "agent1", None, "long-polling", 0.5, steps, notes, {"7001"}, set())


def engine_for(plan: SessionPlan, **options) -> SessionEngine:
    return SessionEngine(plan, ReplayState([plan]), EngineOptions(**options))


def sends(actions) -> list[Send]:
    return [a for a in actions if isinstance(a, Send)]


# ----------------------------------------------------------------------------- id map


def test_idmap_learns_ids_hosts_and_paths_from_parallel_documents():
    idmap = IdMap()
    idmap.learn(call_data(REC_CALL, "Ringing"),
                call_data(LIVE_CALL, "Ringing", host=LIVE_HOST, conn="00710200000000ff", device="dev-live-222222222"))
    assert idmap.forward[REC_CALL] == LIVE_CALL
    assert idmap.forward["0071023bda6f0001"] == "00710200000000ff"
    assert idmap.forward["dev-rec-1111111111"] == "dev-live-222222222"
    assert idmap.origins[REC_HOST] == LIVE_HOST
    # URLs and bodies are rewritten; the reverse direction gives recorded terms back
    assert idmap.substitute_path(f"/api/v2/me/calls/{REC_CALL}") == f"/api/v2/me/calls/{LIVE_CALL}"
    body = {"operationName": "CompleteTransfer", "otherCallUri": f"{REC_HOST}/api/v2/me/calls/{REC_CALL}"}
    assert idmap.substitute(body)["otherCallUri"] == f"{LIVE_HOST}/api/v2/me/calls/{LIVE_CALL}"
    assert idmap.recorded(f"{LIVE_HOST}/api/v2/me/calls/{LIVE_CALL}") == f"{REC_HOST}/api/v2/me/calls/{REC_CALL}"


def test_idmap_first_pair_wins_and_conflicts_are_counted():
    idmap = IdMap()
    assert idmap.add("rec-aaaaaaaa", "live-1111111")
    assert not idmap.add("rec-aaaaaaaa", "live-2222222")
    assert not idmap.add("rec-bbbbbbbb", "live-1111111")
    assert idmap.conflicts == 2 and idmap.forward == {"rec-aaaaaaaa": "live-1111111"}


def test_idmap_phone_numbers_only_where_a_number_is_meant():
    idmap = IdMap()
    idmap.learn(device_data("dev-a-00000000", "Ready", phone="7002"), device_data("dev-b-00000000", "Ready", phone="7008"))
    body = {"operationName": "Dial", "destination": {"phoneNumber": "7002"}, "userData": {"note": "7002"}}
    mapped = idmap.substitute(body)
    assert mapped["destination"]["phoneNumber"] == "7008"
    assert mapped["userData"]["note"] == "7002"                    # free text is left alone
    assert idmap.substitute({"operationName": "SendDtmf", "digits": "7002"})["digits"] == "7002"
    assert idmap.substitute({"operationName": "SingleStepTransfer", "destination": "7002"})["destination"] == "7008"


def test_idmap_does_not_learn_state_guids_or_capabilities():
    idmap = IdMap()
    rec = {"devices": [{"id": "dev-a-00000000", "userState": {"id": "GUID-NOT-READY-000"}, "capabilities": ["A"]}]}
    live = {"devices": [{"id": "dev-b-00000000", "userState": {"id": "GUID-READY-0000000"}, "capabilities": ["B"]}]}
    idmap.learn(rec, live)
    assert "GUID-NOT-READY-000" not in idmap.forward and idmap.forward["dev-a-00000000"] == "dev-b-00000000"


# ----------------------------------------------------------------------------- normalisation and matching


def test_normalize_masks_ids_hosts_durations_and_capability_order():
    symbols = Symbols()
    a = normalize(call_data(REC_CALL, "Established", duration="3"), symbols)
    live = call_data(LIVE_CALL, "Established", host=LIVE_HOST, duration="9")
    live["call"]["capabilities"] = ["Hold", "Hangup"]
    idmap = IdMap()
    idmap.learn(call_data(REC_CALL, "Established"), live)
    b = normalize(idmap.unmap(live), symbols)
    assert a == b
    assert a["call"]["id"] == a["call"]["callUuid"] == "<call#1>" and a["call"]["uri"].startswith("<host>/api/v2/me/calls/")
    assert a["call"]["duration"] == "<masked>"


def test_normalize_keeps_different_ids_apart():
    symbols = Symbols()
    a = normalize(call_data(REC_CALL, "Ringing"), symbols)
    b = normalize(call_data("REC0000000000000000000000000002", "Ringing"), symbols)
    assert a != b and diff(a, b)


def test_matcher_maps_the_kth_new_call_by_order_and_participants():
    notes = [note("a1", 0, 1.0, call_data("REC-CALL-A-0000000", "Ringing", phone="5550001"), 0),
             note("a1", 1, 2.0, call_data("REC-CALL-B-0000000", "Ringing", phone="5550002"), 0)]
    idmap = IdMap()
    matcher = Matcher(notes, idmap)
    # the second recorded call rings first live: participants tell them apart
    second = LiveNote.from_message("/v2/me/calls", call_data("LIVE-CALL-B-000000", "Ringing", phone="5550002"), 0)
    first = LiveNote.from_message("/v2/me/calls", call_data("LIVE-CALL-A-000000", "Ringing", phone="5550001"), 0)
    assert matcher.offer(second, 0).index == 1
    assert matcher.offer(first, 0).index == 0
    assert idmap.forward["REC-CALL-A-0000000"] == "LIVE-CALL-A-000000"
    # a message about a known call only matches that call's recorded messages
    again = LiveNote.from_message("/v2/me/calls", call_data("LIVE-CALL-A-000000", "Ringing", phone="5550001"), 0)
    assert matcher.offer(again, 0) is None and len(matcher.unexpected) == 1


# ----------------------------------------------------------------------------- engine


def test_step_waits_for_the_notification_that_preceded_it():
    engine = engine_for(answer_plan())
    engine.start(100.0)
    first = sends(engine.poll(100.0))
    assert [s.step.operation for s in first] == ["Ready"]
    engine.on_answer(0, 100.1, status=200, body={"statusCode": 0})
    assert sends(engine.poll(100.1)) == []                       # Answer held: no Ringing yet
    assert engine.deadline == pytest.approx(110.1)               # until the wait timeout
    engine.on_notification("/v2/me/calls", call_data(LIVE_CALL, "Ringing", host=LIVE_HOST), 100.3)
    answer = sends(engine.poll(100.3))
    assert answer and answer[0].path == f"/api/v2/me/calls/{LIVE_CALL}"   # id learned from the Ringing


def test_causality_timeout_is_a_divergence_and_the_session_goes_on():
    engine = engine_for(answer_plan(), wait_timeout=2.0)
    engine.start(0.0)
    engine.poll(0.0)
    engine.on_answer(0, 0.1, status=200, body={"statusCode": 0})
    assert sends(engine.poll(0.1)) == []
    actions = engine.poll(2.2)
    reports = [a.divergence for a in actions if isinstance(a, Report)]
    assert reports[0].kind == "causality_timeout" and "Ringing" in reports[0].detail
    assert sends(actions)[0].step.operation == "Answer"          # continue: sent anyway


def test_on_divergence_stop_ends_the_session():
    engine = engine_for(answer_plan(), wait_timeout=2.0, on_divergence="stop")
    engine.start(0.0)
    engine.poll(0.0)
    engine.on_answer(0, 0.1, status=200, body={"statusCode": 0})
    engine.poll(0.1)
    actions = engine.poll(2.5)
    assert not sends(actions)
    assert any(isinstance(a, Finished) and a.reason == "stopped" for a in actions)
    assert engine.done


@pytest.mark.parametrize(("speed", "delay"), [(1.0, 1.0), (4.0, 0.25), (None, 0.0)])
def test_think_time_is_divided_by_speed(speed, delay):
    engine = engine_for(answer_plan(), speed=speed)
    engine.start(0.0)
    engine.poll(0.0)
    engine.on_answer(0, 0.1, status=200, body={"statusCode": 0})
    engine.on_notification("/v2/me/calls", call_data(LIVE_CALL, "Ringing"), 0.2)
    actions = engine.poll(0.2)
    if not delay:
        assert sends(actions)
        return
    assert not sends(actions) and engine.deadline == pytest.approx(0.2 + delay)
    assert not sends(engine.poll(0.2 + delay - 0.01))
    assert sends(engine.poll(0.2 + delay))


def test_status_and_content_divergences_and_drain():
    engine = engine_for(answer_plan(), drain_timeout=1.0)
    engine.start(0.0)
    engine.poll(0.0)
    engine.on_answer(0, 0.1, status=400, body={"statusCode": 2, "statusMessage": "nope"})
    live = call_data(LIVE_CALL, "Ringing", phone="9999")                  # wrong party
    engine.on_notification("/v2/me/calls", live, 0.2)
    engine.on_notification("/v2/me/services", {"messageType": "ServiceStateChangeMessage"}, 0.3)
    engine.poll(0.3)
    engine.on_answer(1, 0.4, status=200, body={"statusCode": 0})
    engine.poll(0.4)                                                     # drains: Established never comes
    actions = engine.poll(1.5)
    kinds = [d.kind for d in engine.divergences]
    assert kinds == ["status", "notification_differs", "notification_unexpected", "notification_missing"]
    assert "participants" in engine.divergences[1].detail
    assert isinstance(actions[-1], Finished) and engine.done


def external_plan() -> SessionPlan:
    notes = [note("a1", 0, 1.0, call_data(REC_CALL, "Ringing", phone="5551234"), 0)]
    inject = Step(index=0, kind="inject_call", ts=0.9, end_ts=0.95, status=200, status_code=0,
                  external={"from": "5551234", "to": "7001", "userData": {"Segment": "Gold"}, "call_id": REC_CALL})
    answer = rest(1, 2.0, f"/api/v2/me/calls/{REC_CALL}", "Answer", waits=[Wait("a1", 0)])
    return SessionPlan("a1", "agent1", None, "long-polling", 0.9, [inject, answer], notes, {"7001"}, set())


def test_external_event_is_injected_with_mapped_numbers():
    plan = external_plan()
    state = ReplayState([plan])
    state.idmap.add("7001", "7005", "phone")
    engine = SessionEngine(plan, state, EngineOptions(can_inject=True))
    engine.start(0.0)
    (send,) = sends(engine.poll(0.0))
    assert send.external == {"from": "5551234", "to": "7005", "userData": {"Segment": "Gold"}, "call_id": REC_CALL}
    engine.on_answer(0, 0.1, status=200, body={"statusCode": 0, "id": LIVE_CALL})
    assert state.idmap.forward[REC_CALL] == LIVE_CALL              # the injected call is known at once


def test_external_event_on_a_real_gws_is_announced_and_waited_for_longer():
    engine = engine_for(external_plan(), can_inject=False, wait_timeout=1.0, external_timeout=5.0)
    engine.start(0.0)
    actions = engine.poll(0.0)
    (announce,) = [a for a in actions if isinstance(a, Announce)]
    assert "inbound call from 5551234 to 7001" in announce.text and "Segment" in announce.text
    assert not sends(actions) and engine.outcomes[0].skipped
    assert engine.deadline == pytest.approx(5.0)                   # external_timeout, not wait_timeout
    actions = engine.poll(5.0)
    (timeout,) = [a.divergence for a in actions if isinstance(a, Report)]
    assert timeout.kind == "causality_timeout" and "external event" in timeout.detail


def test_cross_session_wait_is_satisfied_by_the_other_session():
    n2 = note("a2", 0, 1.0, device_data("dev-a2-000000000", "Ready", phone="7002"), 0)
    p2 = SessionPlan("a2", "agent2", None, "long-polling", 0.0, [rest(0, 0.5, "/api/v2/me/channels/voice", "Ready")],
                     [n2], {"7002"}, set())
    dial = rest(0, 1.5, "/api/v2/me/devices/dev-a1/calls", body={"operationName": "Dial",
                                                                  "destination": {"phoneNumber": "7002"}},
                op="Dial", waits=[Wait("a2", 0)])
    p1 = SessionPlan("a1", "agent1", None, "long-polling", 0.0, [dial], [], {"7001"}, set())
    state = ReplayState([p1, p2])
    e1, e2 = SessionEngine(p1, state), SessionEngine(p2, state)
    e1.start(0.0), e2.start(0.0)
    assert not sends(e1.poll(0.0))
    e2.poll(0.0)
    e2.on_notification("/v2/me/devices", device_data("dev-live-a2-0000", "Ready", phone="7012"), 0.1)
    (send,) = sends(e1.poll(0.1))
    assert send.body["destination"]["phoneNumber"] == "7012"       # agent2's live number, learned by e2


# ----------------------------------------------------------------------------- users


def test_user_map_file_and_pool(tmp_path):
    path = tmp_path / "users.toml"
    path.write_text('password = "pw"\n[users]\nagent1 = "agent7"\nagent2 = { user = "agent8", password = "x" }\n'
                    '[pool]\nusers = ["lead"]\npattern = "agent{n}"\nfirst = 100\ncount = 2\n')
    users = UserMap.from_toml(path)
    assert users.for_recorded("agent1") == Credentials("agent7", "pw")
    assert users.for_recorded("agent2") == Credentials("agent8", "x")
    with pytest.raises(UserMapError):
        users.for_recorded("agent3")
    assert [users.pool_user(i).user for i in range(3)] == ["lead", "agent100", "agent101"]
    with pytest.raises(UserMapError):
        users.pool_user(3)
    assert UserMap.simulator().for_recorded("agent3") == Credentials("agent3", "password")


# ----------------------------------------------------------------------------- plan building


def test_callee_ringing_recorded_before_the_callers_dialing_is_not_an_external_call():
    """Two long-polls are answered independently: the callee's Ringing may carry an earlier
    timestamp than the caller's Dialing. The Dial request decides, not the notification times."""
    from gwsreplay.replay.plan import RawSession, RecordedCapture, build_plan

    call = "CALL000000000000000000000000001"
    dial = rest(0, 1.000, "/api/v2/me/devices/dev-a1/calls",
                body={"operationName": "Dial", "destination": {"phoneNumber": "7002"}}, op="Dial")
    a1 = RawSession("a1", "agent1", None, "long-polling", [dial],
                     [note("a1", 0, 1.020, call_data(call, "Dialing", phone="7002"), 0)], {"7001"}, set())
    answer = rest(0, 1.100, f"/api/v2/me/calls/{call}", "Answer")
    hangup = rest(1, 1.200, f"/api/v2/me/calls/{call}", "Hangup")
    a2 = RawSession("a2", "agent2", None, "long-polling", [answer, hangup],
                     [note("a2", 0, 1.015, call_data(call, "Ringing", phone="7001"), 0)], {"7002"}, set())
    plan = build_plan(RecordedCapture("mem", 0, [], [a1, a2], []))
    assert [s.kind for s in plan.session("a2").steps] == ["rest", "rest"]  # no inferred injection
    waits = plan.session("a2").steps[0].waits
    assert Wait("a1", 0) in waits and Wait("a2", 0) in waits             # Answer waits for both
    # without agent1 in the replay the same Ringing has no cause among the replayed: injected
    alone = build_plan(RecordedCapture("mem", 0, [], [a1, a2], []), ["a2"]).session("a2")
    assert [s.kind for s in alone.steps] == ["inject_call", "rest", "rest"]
    assert alone.steps[0].external["from"] == "7001" and alone.steps[0].inferred


# ----------------------------------------------------------------------------- IM sessions

IM_CHANNEL = "/v2/me/im-sessions"


def im_data(im_id: str, state: str, peer: str, *, host: str = REC_HOST) -> dict:
    """An IMSessionStateChangeMessage as GWS sends it: the session id appears nowhere else
    (InitiateIMSession answers only {"statusCode": 0})."""
    return {"messageType": "IMSessionStateChangeMessage", "notificationType": "StatusChange",
            "imSession": {"state": state, "id": im_id, "uri": f"{host}/api/v2/im-sessions/{im_id}",
                          "path": f"/im-sessions/{im_id}", "capabilities": [],
                          "participants": [{"e164Number": "", "formattedPhoneNumber": peer, "phoneNumber": peer,
                                            "digits": peer}]}}


def im_log(im_id: str) -> dict:
    return {"messageType": "IMLogUpdateMessage", "notificationType": "NewMessage",
            "imSessionPath": f"/im-sessions/{im_id}", "message": "hello"}


def im_note(session: str, index: int, ts: float, data: dict, step: int) -> Note:
    c = LiveNote.from_message(IM_CHANNEL, data, ts)
    return Note(session=session, index=index, ts=ts, channel=IM_CHANNEL, data=data, message_type=c.message_type,
                notification_type=c.notification_type, resource_type=c.resource_type, resource_id=c.resource_id,
                state=c.state, call_id=None, step=step)


def test_matcher_maps_the_kth_new_im_session_by_participants():
    """agent5 took an IM from agent6 (session E), later one from agent2 (session R). Live, R's
    Alerting came first: matched by order alone it took E's recorded ids, and every later IM
    request and notification of both sessions went wrong (the demo's 44 divergences)."""
    rec_e, rec_r = "REC0000000000000000000000IM00E", "REC0000000000000000000000IM00R"
    live_r, live_e = "LIVE000000000000000000000IM0R1", "LIVE000000000000000000000IM0E1"
    notes = [im_note("agent5", 0, 10.0, im_data(rec_e, "Alerting", "7006"), 0),
             im_note("agent5", 1, 10.0, im_data(rec_e, "Talking", "7006"), 0),
             im_note("agent5", 2, 10.1, im_log(rec_e), 0),
             im_note("agent5", 3, 16.0, im_data(rec_r, "Alerting", "7002"), 1),
             im_note("agent5", 4, 16.0, im_data(rec_r, "Talking", "7002"), 1),
             im_note("agent5", 5, 16.1, im_log(rec_r), 1)]
    idmap = IdMap()
    matcher = Matcher(notes, idmap)
    live = lambda data: LiveNote.from_message(IM_CHANNEL, data, 0)  # noqa: E731
    assert matcher.offer(live(im_data(live_r, "Alerting", "7002", host=LIVE_HOST)), 0).index == 3
    assert idmap.forward[rec_r] == live_r and rec_e not in idmap.forward
    assert matcher.offer(live(im_data(live_r, "Talking", "7002", host=LIVE_HOST)), 0).index == 4
    assert matcher.offer(live(im_log(live_r)), 0).index == 5
    assert idmap.substitute_path(f"/api/v2/me/im-sessions/{rec_r}") == f"/api/v2/me/im-sessions/{live_r}"
    # the other session, when it comes, takes the recorded ids left
    assert matcher.offer(live(im_data(live_e, "Alerting", "7006", host=LIVE_HOST)), 0).index == 0
    assert matcher.offer(live(im_log(live_e)), 0).index == 2
    assert idmap.forward[rec_e] == live_e and idmap.conflicts == 0 and not matcher.unexpected


def test_initiate_im_session_waits_for_both_parties_earlier_im_sessions():
    """An agent is in one IM session at a time (a second InitiateIMSession is "Invalid state").
    agent2's IM to agent5 was recorded after agent5's IM with agent6 ended; at full speed agent2
    got there first and took agent5, then agent6's IM failed. The new IM now waits for them."""
    from gwsreplay.replay.plan import RawSession, RecordedCapture, build_plan

    rec_e, rec_r = "REC0000000000000000000000IM00E", "REC0000000000000000000000IM00R"
    initiate = lambda ts, to: rest(0, ts, "/api/v2/me/im-sessions", "InitiateIMSession",  # noqa: E731
                                   body={"operationName": "InitiateIMSession", "destination": {"phoneNumber": to}})
    logout = lambda ts: rest(9, ts, "/api/v2/me/channels/im", "NotReady")  # noqa: E731 - not the last step: that one waits for all
    a6 = RawSession("agent6", "agent6", None, "long-polling",
                     [initiate(10.0, "7005"), rest(1, 11.0, f"/api/v2/me/im-sessions/{rec_e}", "Complete"), logout(30)],
                     [note("agent6", 0, 0.5, device_data("dev-6", "Ready", "7006"), -1),
                      im_note("agent6", 1, 10.01, im_data(rec_e, "Talking", "7005"), 0),
                      im_note("agent6", 2, 11.01, im_data(rec_e, "Completed", "7005"), 1)], {"7006"}, {"dev-6"})
    a5 = RawSession("agent5", "agent5", None, "long-polling",
                     [rest(0, 0.4, "/api/v2/me/channels/im", "Ready")],
                     [note("agent5", 0, 0.5, device_data("dev-5", "Ready", "7005"), 0),
                      im_note("agent5", 1, 10.01, im_data(rec_e, "Alerting", "7006"), 0),
                      im_note("agent5", 2, 10.01, im_data(rec_e, "Talking", "7006"), 0),
                      im_note("agent5", 3, 11.01, im_data(rec_e, "Completed", "7006"), 0),
                      im_note("agent5", 4, 16.01, im_data(rec_r, "Alerting", "7002"), 0)], {"7005"}, {"dev-5"})
    a2 = RawSession("agent2", "agent2", None, "long-polling",
                     [rest(0, 0.4, "/api/v2/me/channels/im", "Ready"), initiate(16.0, "7005"), logout(30)],
                     [note("agent2", 0, 0.5, device_data("dev-2", "Ready", "7002"), 0),
                      im_note("agent2", 1, 16.01, im_data(rec_r, "Talking", "7005"), 1)], {"7002"}, {"dev-2"})
    plan = build_plan(RecordedCapture("mem", 0, [], [a6, a5, a2], []))
    waits = set(plan.session("agent2").steps[1].waits)
    assert Wait("agent5", 0) in waits                                    # agent5 logged in, as before
    assert {Wait("agent5", 1), Wait("agent5", 2), Wait("agent5", 3)} <= waits   # and its IM with agent6 is over
    assert Wait("agent5", 4) not in waits and Wait("agent2", 1) not in waits    # not the new session's own
    # other requests on IM sessions keep waiting only for their own session
    complete = set(plan.session("agent6").steps[1].waits)
    assert Wait("agent5", 0) not in complete and Wait("agent6", 1) in complete


# ----------------------------------------------------------------------------- the recorded-host guard

RECORDED_HERE = ["http://127.0.0.1:8090"]


@pytest.mark.parametrize("target", [
    "http://127.0.0.1:8090", "http://localhost:8090", "http://127.1:8090", "http://2130706433:8090",
    "http://[::ffff:127.0.0.1]:8090", "http://127.0.0.1.:8090", "http://0.0.0.0:8090", "http://LOCALHOST:8090/",
])
def test_every_spelling_of_the_recorded_host_is_refused(target):
    with pytest.raises(ReplayRefused, match="recorded from"):
        check_target(RECORDED_HERE, target)
    check_target(RECORDED_HERE, target, allow_recorded_host=True)     # explicitly allowed


@pytest.mark.parametrize("target", ["http://127.0.0.1:8091", "http://127.0.0.2:8090"])
def test_other_ports_and_addresses_are_allowed(target):
    check_target(RECORDED_HERE, target)


def test_a_recorded_name_that_does_not_resolve_is_compared_by_name():
    recorded = ["https://gws.example.invalid"]
    with pytest.raises(ReplayRefused):
        check_target(recorded, "https://GWS.example.invalid:443/")
    check_target(recorded, "http://127.0.0.1:8090")
    with pytest.raises(ReplayRefused, match="http"):
        check_target(recorded, "ftp://127.0.0.1")


def test_an_agent_notification_matches_up_to_the_next_state_changing_step():
    """Recorded: the login's NotReady arrived after the desktop had already sent GET /me/devices and
    Ready (note.step = Ready). Live it may come before Ready leaves: it must still match. A NotReady
    recorded after After Call Work (steps later) must not take an unrecorded login notification."""
    dev = "dev-rec-1111111111"
    steps = [rest(0, 0.0, "/api/v2/me", "StartContactCenterSession"),
             rest(1, 0.1, "/api/v2/me/devices"),
             rest(2, 0.2, "/api/v2/me/channels/voice", "Ready"),
             rest(3, 5.0, "/api/v2/me/channels/voice", "NotReady")]
    notes = [note("a1", 0, 0.3, device_data(dev, "NotReady"), 2),
             note("a1", 1, 0.4, device_data(dev, "Ready"), 2),
             note("a1", 2, 5.1, device_data(dev, "NotReady"), 3)]
    matcher = Matcher(notes, IdMap(), "a1", steps)
    live = LiveNote.from_message("/v2/me/devices", device_data("dev-live", "NotReady"), 0.3)
    assert matcher.offer(live, 0).index == 0               # only the login sent: still within reach
    unrecorded = LiveNote.from_message("/v2/me/devices", device_data("dev-live", "NotReady"), 0.35)
    assert matcher.offer(unrecorded, 0) is None            # the next NotReady is beyond Ready: unexpected
    assert matcher.offer(unrecorded, 3).index == 2         # once NotReady is sent, it is its answer
