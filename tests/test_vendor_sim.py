"""The simulator against the vendor's own samples (tests/vendor/corpus-*.json): issue 10, test (4).

Every vendor request body the simulator can receive is sent verbatim (only the ids of the
vendor's resources are replaced by the simulator's), per operation, after a short
scripted prelude that puts the resource in the state the sample shows. The simulator must
answer the vendor's statusCode (the sample's HTTP response, or 0 when the sample prints
only notifications) and, for a success, no error notification may follow. The
notifications it emits must carry the vendor's keys, enumerations and capability sets.

Where the simulator deliberately differs, the record id is listed in
``docs/vendor-differences.md`` (:data:`DIFFERENCES` names each entry), and the test
checks that the listed records really differ as documented, so the list cannot go stale.
8.5.2 samples address calls by their connId: their call operations are posted to
``/me/calls/{connId}``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from manual_clock import ManualClock

from gwsreplay.core.operations import operations_of
from gwsreplay.sim.model.contact_center import ContactCenter
from gwsreplay.sim.model.roster import Roster

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "tests" / "vendor"
DIFFERENCES_DOC = ROOT / "docs" / "vendor-differences.md"
BASE = "http://127.0.0.1:8090"

CORPUS = {v: json.loads((VENDOR / f"corpus-{v}.json").read_text()) for v in ("8.6", "8.5.2")}
RECORDS = {r["id"]: r for c in CORPUS.values() for r in c["records"]}

#: The vendor's DNs (5000 SIP_5000, 5001, 5002, 5005 the agent of most call samples, 15001,
#: 15002 the dialed DN of the 8.6 samples, 16001 the IM destination) as agents of the roster.
ROSTER = Roster.from_dict({
    "users": [
        {"user_name": "agent1", "phone_number": "5000"},
        {"user_name": "agent2", "phone_number": "5001"},
        {"user_name": "agent3", "phone_number": "5002"},
        {"user_name": "agent4", "phone_number": "5005"},
        {"user_name": "agent5", "phone_number": "15001"},
        {"user_name": "agent6", "phone_number": "15002"},
        {"user_name": "agent7", "phone_number": "16001"},
        {"user_name": "supervisor1", "phone_number": "5003", "roles": ["agent", "supervisor"]},
    ],
    # 8.5.2's custom agent state sample (L1496)
    "agent_states": [{"operationName": "Training", "displayName": "Training", "state": "NotReady",
                      "workMode": "AuxWork", "reason": "Training"}],
})
ACTOR = "agent4"          # 5005
PEER = "agent3"           # 5002: on the prelude's call, never a destination of a sample

#: docs/vendor-differences.md entries (their headings), each with the records it explains.
DIFFERENCES = {
    "Device capabilities in Ready, NotReady and AuxWork": (
        "gws86-L4696", "gws86-L4766", "gws86-L4836", "gws852-L8852", "gws852-L8935", "gws852-L9005"),
    "The ForwardCallsOff sample repeats ForwardCallsOn": ("gws86-L5276", "gws852-L5768"),
    "Chat capability InFocus": ("gws86-L11615", "gws86-L11640", "gws86-L11952", "gws86-L13006", "gws86-L13086"),
    "Attachments, files and supervision of chats and emails": (
        "gws86-L12640", "gws86-L18524", "gws86-L18676"),
}


class Sim:
    def __init__(self, *, multimedia=True):
        self.clock = ManualClock()
        self.events: list[tuple] = []
        self.cc = ContactCenter(ROSTER, scheduler=self.clock, seed=0, base_url=BASE, call_recording=True,
                                multimedia=multimedia, external_answer_delay=1.0,
                                emit=lambda user, channel, data: self.events.append((user, channel, data)))

    def post(self, user, path, body):
        status, payload = self.cc.rest(user, "POST", path, {}, body)
        return status, payload

    def ok(self, user, path, op, **params):
        status, payload = self.post(user, path, {"operationName": op, **params})
        assert (status, payload.get("statusCode")) == (200, 0), (user, path, op, payload)
        return payload

    def dev(self, user):
        return self.cc.agents[user].device_id

    def phone(self, user):
        return self.cc.agents[user].phone

    def login(self, *users, ready=True):
        for user in users:
            self.ok(user, "/me", "StartContactCenterSession", channels=["voice", "chat", "email", "workitem",
                                                                         "openmedia", "im"])
            if ready:
                self.ok(user, "/me", "Ready")

    def dial(self, user, number):
        self.ok(user, f"/me/devices/{self.dev(user)}/calls", "Dial", destination={"phoneNumber": number})
        return self.last_call(user)

    def last_call(self, user):
        return [d["call"] for u, c, d in self.events if u == user and d.get("messageType") == "CallStateChangeMessage"][-1]

    def connected(self, a=ACTOR, b=PEER):
        call = self.dial(a, self.phone(b))
        self.ok(b, f"/me/calls/{call['id']}", "Answer")
        return call["id"]

    def errors(self, user):
        return [d for u, c, d in self.events if u == user and (
            d.get("messageType") == "ErrorMessage" or d.get("notificationType") == "Error")]


# ----------------------------------------------------------------------------- corpus reading

def _data(record):
    body = record.get("body")
    if isinstance(body, dict) and isinstance(body.get("data"), dict):
        return body["data"]
    return body if isinstance(body, dict) else {}


def expected_status(record) -> int:
    """The statusCode of the first response the sample prints after the request, else 0."""
    seq = record.get("sequence")
    for other in sorted(RECORDS.values(), key=lambda r: (r["source"], r["line"])):
        if seq and other.get("sequence") == seq and other["kind"] == "response":
            body = other.get("body")
            if isinstance(body, dict) and isinstance(body.get("statusCode"), int):
                return body["statusCode"]
    return 0


def requests(pattern: str, ops=None) -> list[dict]:
    """Vendor POST requests whose path or url_template matches ``pattern``."""
    out = []
    for record in RECORDS.values():
        body = record.get("body")
        if record["kind"] != "request" or not isinstance(body, dict) or not isinstance(body.get("operationName"), str):
            continue
        where = [w for w in (record.get("path"), record.get("url_template")) if w]
        if any(re.fullmatch(pattern, w) for w in where) and (ops is None or body["operationName"] in ops):
            out.append(record)
    return sorted(out, key=lambda r: r["id"])


# ----------------------------------------------------------------------------- voice preludes

AGENT_STATE_OPS = ("Ready", "NotReady", "AuxWork", "AfterCallWork", "Offline", "Training")
DEVICE_OPS = ("DoNotDisturbOn", "DoNotDisturbOff", "ForwardCallsOn", "ForwardCallsOff", "ListenIn", "Coach",
              "BargeIn", "CancelSupervisorMonitoring")
VENDOR_TARGET_DEVICE = "9c14cad7-17c4-48d0-8492-7cf0ff92c224"    # targetDeviceUri of the supervision samples


def voice_prelude(sim: Sim, record) -> tuple[str, str, dict]:
    """(user, path, body) for one vendor voice request, in the state its sample shows."""
    body = dict(record["body"])
    op = body["operationName"]
    by_conn = record["version"] == "8.5.2"          # 8.5.2 names calls by connId

    def call_path(call_id):
        call = sim.cc.voice.calls.get(call_id)
        return f"/me/calls/{call.conn_id if by_conn else call_id}"

    if op == "StartContactCenterSession":
        return "agent1", "/me", body
    if op in AGENT_STATE_OPS:
        sim.login(ACTOR, ready=op != "Ready")
        return ACTOR, "/me/channels/voice", body
    if record.get("path", "").rstrip("/").endswith("/api/v2/me") or op == "EndContactCenterSession":
        sim.login(ACTOR, ready=False)
        if op == "DoNotDisturbOff":
            sim.ok(ACTOR, "/me", "DoNotDisturbOn")
        return ACTOR, "/me", body
    if op in DEVICE_OPS:
        user = "supervisor1" if op in ("ListenIn", "Coach", "BargeIn", "CancelSupervisorMonitoring") else ACTOR
        sim.login(user, ACTOR)
        if op == "DoNotDisturbOff":
            sim.ok(user, "/me", "DoNotDisturbOn")
        if op == "ForwardCallsOff":
            sim.ok(user, f"/me/devices/{sim.dev(user)}", "ForwardCallsOn", destination="5001")
        if op == "CancelSupervisorMonitoring":
            sim.ok(user, f"/me/devices/{sim.dev(user)}", "ListenIn", targetDeviceUri=f"/devices/{sim.dev(ACTOR)}")
        if "targetDeviceUri" in body:
            body["targetDeviceUri"] = body["targetDeviceUri"].replace(VENDOR_TARGET_DEVICE, sim.dev(ACTOR))
        return user, f"/me/devices/{sim.dev(user)}", body
    if op == "Dial":
        sim.login(ACTOR, "agent2", "agent6")
        return ACTOR, f"/me/devices/{sim.dev(ACTOR)}/calls", body
    # call operations
    sim.login(ACTOR, PEER, "agent1", "agent2", "agent5", "agent6", "supervisor1")
    if op == "Answer":
        call = sim.dial(PEER, sim.phone(ACTOR))
        return ACTOR, call_path(call["id"]), body
    if op == "Reject":
        status, payload = sim.cc.inject_call("5551234", sim.phone(ACTOR))
        return ACTOR, call_path(payload["id"]), body
    if op in ("SwitchToBargeIn", "SwitchToListenIn", "MuteMonitoredUser", "UnmuteMonitoredUser"):
        sim.ok("supervisor1", f"/me/devices/{sim.dev('supervisor1')}", "ListenIn",
               targetDeviceUri=f"/devices/{sim.dev(ACTOR)}")
        call_id = sim.connected()
        path = call_path(call_id)
        if op == "SwitchToListenIn":
            sim.ok("supervisor1", path, "SwitchToBargeIn")
        if op == "UnmuteMonitoredUser":
            sim.ok("supervisor1", path, "MuteMonitoredUser")
        return "supervisor1", path, body
    call_id = sim.connected()
    path = call_path(call_id)
    if op == "Retrieve":
        sim.ok(ACTOR, path, "Hold")
    elif op in ("MuteCall", "UnmuteCall", "ClearCall", "RemoveParticipantFromConference"):
        joiner = body.get("participant", sim.phone("agent6"))
        sim.ok(ACTOR, path, "SingleStepConference", destination={"phoneNumber": joiner})
        joiner_agent = sim.cc.core.agents_by_phone[joiner].name
        sim.ok(joiner_agent, path, "Answer")
        if op == "UnmuteCall":
            sim.ok(ACTOR, path, "MuteCall")
    elif op in ("CompleteTransfer", "CompleteConference", "SwapCalls"):
        kind = "InitiateConference" if op == "CompleteConference" else "InitiateTransfer"
        sim.ok(ACTOR, path, kind, destination={"phoneNumber": "5001"})
        consult = sim.last_call(ACTOR)["id"]
        sim.ok("agent2", call_path(consult), "Answer")
        if op == "SwapCalls" and "otherCallUri" in body:    # the held original is the "other" call
            vendor_other = body["otherCallUri"].rstrip("/").rsplit("/", 1)[-1]
            body["otherCallUri"] = body["otherCallUri"].replace(vendor_other, path.rsplit("/", 1)[-1])
        path = call_path(consult)
    elif op in ("PauseCallRecording", "StopCallRecording", "ResumeCallRecording"):
        sim.ok(ACTOR, path, "StartCallRecording")
        if op == "ResumeCallRecording":
            sim.ok(ACTOR, path, "PauseCallRecording")
    return ACTOR, path, body


VOICE_REQUESTS = requests(r"/api/v2/me/?|.*/me/channels/voice|.*/me/devices/.*|.*/me/calls/.*")


@pytest.mark.parametrize("record", VOICE_REQUESTS, ids=lambda r: f"{r['id']}-{r['body']['operationName']}")
def test_voice_request_answers_the_vendor_status(record):
    # the partial-success sample (L4495) is a GWS without the api-multimedia feature
    multimedia = record["body"]["operationName"] != "StartContactCenterSession"
    sim = Sim(multimedia=multimedia)
    user, path, body = voice_prelude(sim, record)
    sim.events.clear()
    status, payload = sim.post(user, path, body)
    want = expected_status(record)
    assert payload["statusCode"] == want, (record["id"], path, body, payload)
    if want == 0:
        assert status == 200
        assert sim.errors(user) == [], (record["id"], sim.errors(user))   # and no refusal follows


def test_voice_requests_cover_the_operations():
    """The corpus really exercises the voice API here (the selection above is not empty by accident)."""
    ops = {r["body"]["operationName"] for r in VOICE_REQUESTS}
    assert {"StartContactCenterSession", "Answer", "SwapCalls", "CompleteConference", "ListenIn",
            "MuteMonitoredUser", "ResumeCallRecording", "Training"} <= ops
    assert sum(r["version"] == "8.5.2" for r in VOICE_REQUESTS) >= 50


# ----------------------------------------------------------------------------- login and connId forms

def test_place_forms_of_the_samples():
    """SIP_5000, agent1 and agent1@pizza.com (L4445-4533) name agent1's place; others do not."""
    for place in ("SIP_5000", "5000", "agent1", "agent1@pizza.com", "Place5000"):
        sim = Sim()
        assert sim.post("agent1", "/me", {"operationName": "StartContactCenterSession", "channels": ["voice"],
                                          "place": place, "loginCode": "8000", "queue": "9000"})[1] == {"statusCode": 0}
    sim = Sim()
    status, payload = sim.post("agent1", "/me", {"operationName": "StartContactCenterSession", "channels": ["voice"],
                                                 "place": "SIP_5001"})
    assert (status, payload["statusCode"]) == (400, 2) and "SIP_5001" in payload["statusMessage"]


def test_dynamic_phone_number_device_has_the_sample_keys():
    sim = Sim()
    record = RECORDS["gws86-L4580"]
    _, payload = sim.post("agent1", "/me", record["body"])
    vendor = next(r for r in RECORDS.values() if r["id"] == "gws86-L4593")["body"]["devices"][0]
    assert set(payload["devices"][0]) == set(vendor)
    assert payload["devices"][0]["dynamicPhoneNumber"] == "%dynamic_phone_number%"


def test_connid_addresses_the_call_and_the_error_names_it():
    """The state-recovery sample (L2513-2551) and 8.5.2 name calls by connId; T-Server's
    ErrorMessage names the call by connId too (L4222)."""
    sim = Sim()
    sim.login(ACTOR, PEER)
    call_id = sim.connected()
    conn_id = sim.cc.voice.calls[call_id].conn_id
    assert re.fullmatch(r"[0-9a-f]{16}", conn_id)
    sim.events.clear()
    assert sim.post(ACTOR, f"/me/calls/{conn_id}", {"operationName": "Answer"}) == (200, {"statusCode": 0})
    [error] = [(u, c, d) for u, c, d in sim.events if d.get("messageType") == "ErrorMessage"]
    vendor = RECORDS["gws86-L4217"]["body"]
    assert error == (ACTOR, "/v2/me/calls", {
        "messageType": "ErrorMessage", "deviceUri": f"{BASE}/api/v2/devices/{sim.dev(ACTOR)}",
        "callUri": f"{BASE}/api/v2/calls/{conn_id}", "errorMessage": "Incorrect object state"})
    assert set(vendor["data"]) == set(error[2]) and vendor["channel"] == error[1]
    assert re.fullmatch(r".*/api/v2/calls/[0-9a-f]{16}", vendor["data"]["callUri"])
    assert sim.post(ACTOR, f"/me/calls/{conn_id}", {"operationName": "Hold"}) == (200, {"statusCode": 0})
    assert sim.cc.voice.calls[call_id].legs[0].state == "Held"


def test_email_reply_with_queue_name():
    record = RECORDS["gws86-L17478"]
    sim = Sim()
    sim.login("agent1")
    status, body = sim.cc.media.inject_email("customer@example.com", to="agent1", subject="Hi")
    sim.ok("agent1", f"/me/emails/{body['id']}", "Accept")
    sim.events.clear()
    assert sim.post("agent1", f"/me/emails/{body['id']}", record["body"]) == (200, {"statusCode": 0})
    assert [d["email"]["state"] for u, c, d in sim.events if c == "/v2/me/emails"] == ["Composing"]


# ----------------------------------------------------------------------------- notifications

def _vendor_devices(sections):
    out = []
    for record in RECORDS.values():
        data = _data(record)
        if record["kind"] == "notification" and record["section"] in sections and data.get("devices"):
            out.append((record, data["devices"][0]))
    return sorted(out, key=lambda x: x[0]["id"])


DEVICE_SECTIONS = {"Ready": "Ready", "Not Ready": "NotReady", "Aux Work": "AuxWork", "After Call Work": "AfterCallWork",
                   "Offline": "Offline", "DoNotDisturbOn": "DoNotDisturbOn", "DoNotDisturbOff": "DoNotDisturbOff",
                   "ForwardCallsOn": "ForwardCallsOn", "ForwardCallsOff": "ForwardCallsOff", "ListenIn": "ListenIn",
                   "Coach": "Coach", "CancelSupervisorMonitoring": "CancelSupervisorMonitoring",
                   "CancelSupervisionMonitoring": "CancelSupervisorMonitoring"}


@pytest.mark.parametrize("record,vendor", _vendor_devices(DEVICE_SECTIONS), ids=lambda x: x["id"] if "id" in x else "")
def test_device_notification_matches_the_vendor(record, vendor):
    """The device after the section's operation: keys, userState, DND and the capability set."""
    op = DEVICE_SECTIONS[record["section"]]
    supervisor = "ListenIn" in (vendor.get("capabilities") or [])
    user = "supervisor1" if supervisor else ACTOR
    sim = Sim()
    sim.login(user, ACTOR, ready=vendor["userState"].get("state") == "Ready")
    dev = f"/me/devices/{sim.dev(user)}"
    if vendor["doNotDisturb"] == "On" or op == "DoNotDisturbOff":
        sim.ok(user, dev, "DoNotDisturbOn")
    if op == "ForwardCallsOff":
        sim.ok(user, dev, "ForwardCallsOn", destination="5001")
    if op == "CancelSupervisorMonitoring":
        sim.ok(user, dev, "ListenIn", targetDeviceUri=f"/devices/{sim.dev(ACTOR)}")
    target = {"targetDeviceUri": f"/devices/{sim.dev(ACTOR)}"} if op in ("ListenIn", "Coach") else {}
    forward = {"destination": "5001"} if op == "ForwardCallsOn" else {}
    path = "/me/channels/voice" if op in AGENT_STATE_OPS else dev
    if not (op == "DoNotDisturbOn" and vendor["doNotDisturb"] == "On" and sim.cc.agents[user].dnd):
        sim.ok(user, path, op, **target, **forward)
    mine = [d["devices"][0] for u, c, d in sim.events if u == user and d.get("messageType") == "DeviceStateChangeMessage"][-1]
    assert mine["userState"]["state"] == vendor["userState"]["state"]
    assert mine["doNotDisturb"] == vendor["doNotDisturb"]
    if "capabilities" not in vendor:      # BargeIn sample L9645 prints none
        return
    assert set(mine) - {"forwardTo"} == set(vendor) - {"forwardTo"}
    listed = [name for name, ids in DIFFERENCES.items() if record["id"] in ids]
    if not listed:
        assert set(mine["capabilities"]) == set(vendor["capabilities"]), record["id"]
    elif listed == ["Device capabilities in Ready, NotReady and AuxWork"]:
        # the samples list ForwardCallsOn only; we add the do-not-disturb operation the device allows
        assert set(mine["capabilities"]) == set(vendor["capabilities"]) | {"DoNotDisturbOn"}, record["id"]
    else:   # ForwardCallsOff repeats ForwardCallsOn: we show forwarding off
        assert listed == ["The ForwardCallsOff sample repeats ForwardCallsOn"]
        assert "forwardTo" in vendor and "forwardTo" not in mine and "ForwardCallsOn" in mine["capabilities"]


def _vendor_calls():
    out = []
    for record in RECORDS.values():
        data = _data(record)
        if record["kind"] == "notification" and isinstance(data.get("call"), dict):
            out.append((record, data))
    return out


def test_call_notifications_use_the_vendor_vocabulary():
    """A scripted tour of calls emits only the vendor's keys, enumerations, capability names and
    extensions keys; every key every vendor call carries is there."""
    vendor = _vendor_calls()
    call_keys = set().union(*(set(d["call"]) for _, d in vendor))
    always = set.intersection(*(set(d["call"]) for r, d in vendor if r["version"] == "8.6"))
    states = {d["call"].get("state") for _, d in vendor}
    call_types = {d["call"].get("callType") for _, d in vendor} - {None}
    types = {d.get("notificationType") for _, d in vendor} - {None}
    caps = set().union(*(set(d["call"].get("capabilities") or []) for _, d in vendor))
    extensions = set().union(*(set(d.get("extensions") or {}) for _, d in vendor))
    top = set().union(*(set(d) for _, d in vendor))

    sim = Sim()
    sim.login(ACTOR, PEER, "agent2", "agent6", "supervisor1")
    sim.ok("supervisor1", f"/me/devices/{sim.dev('supervisor1')}", "ListenIn",
           targetDeviceUri=f"/devices/{sim.dev(ACTOR)}")
    call_id = sim.connected()                                 # Dial 5002 (an internal DN): Internal
    path = f"/me/calls/{call_id}"
    sim.ok(ACTOR, path, "SendDtmf", digits="5")
    sim.ok(ACTOR, path, "AttachUserData", userData={"AccountNumber": "12345"})
    sim.ok(ACTOR, path, "StartCallRecording")
    sim.ok(ACTOR, path, "InitiateConference", destination={"phoneNumber": "5001"})
    consult = sim.last_call(ACTOR)["id"]
    sim.ok("agent2", f"/me/calls/{consult}", "Answer")
    sim.ok(ACTOR, f"/me/calls/{consult}", "CompleteConference")
    sim.ok(ACTOR, path, "MuteCall")
    sim.ok(ACTOR, path, "Hangup")
    sim.dial(ACTOR, "15002")                                  # the 8.6 samples' DN: Internal (L5367)
    emitted = [d for u, c, d in sim.events if d.get("messageType") == "CallStateChangeMessage"]
    assert len(emitted) > 20
    for data in emitted:
        call = data["call"]
        assert set(call) <= call_keys | {"recordingState"} and always <= set(call), set(call) ^ call_keys
        assert call["state"] in states and call["callType"] in call_types and data["notificationType"] in types
        # capability names are the samples' or documented call operations (no InFocus-style variants)
        assert set(call["capabilities"]) <= caps | operations_of("call"), set(call["capabilities"]) - caps
        assert set(data["extensions"]) <= extensions and set(data) <= top
    assert {d["call"]["callType"] for d in emitted} == {"Internal", "Consult"}


def test_completed_chat_has_no_capabilities():
    sim = Sim()
    sim.login("agent1")
    status, body = sim.cc.media.inject_chat({"nickname": "Bob"}, "agent1", "hello")
    sim.ok("agent1", f"/me/chats/{body['id']}", "Accept", nickname="A")
    sim.ok("agent1", f"/me/chats/{body['id']}", "Complete")
    done = [d["chat"] for u, c, d in sim.events if d.get("messageType") == "ChatStateChangeMessage"][-1]
    vendor = _data(RECORDS["gws86-L11817"])["chat"]
    assert done["state"] == vendor["state"] == "Completed" and "capabilities" not in done and "capabilities" not in vendor


def test_the_differences_are_documented():
    """docs/vendor-differences.md lists every difference this test allows, with its records, and is short."""
    text = DIFFERENCES_DOC.read_text()
    # a heading may end with its tag for tests/test_vendor_replay.py: "## Name `[diff: tag]`"
    headings = [re.sub(r"\s*`\[diff: [a-z0-9-]+\]`$", "", h) for h in re.findall(r"^## (.+)$", text, flags=re.M)]
    assert set(DIFFERENCES) <= set(headings) and len(headings) <= 10
    for name, ids in DIFFERENCES.items():
        section = text.split(f"## {name}", 1)[1].split("\n## ", 1)[0]
        assert "Reason" in section, name
        for record_id in ids:
            assert record_id in RECORDS and record_id in section, (name, record_id)


@pytest.mark.parametrize("record_id", DIFFERENCES["Attachments, files and supervision of chats and emails"])
def test_documents_are_not_simulated(record_id):
    """The listed document operations are refused as unsupported (the documented difference)."""
    record = RECORDS[record_id]
    assert expected_status(record) == 0
    sim = Sim()
    sim.login("agent1")
    if "/emails/" in (record.get("path") or ""):
        _, body = sim.cc.media.inject_email("customer@example.com", to="agent1", subject="Hi")
        path = f"/me/emails/{body['id']}"
    else:
        _, body = sim.cc.media.inject_chat({"nickname": "Bob"}, "agent1", "hello")
        path = f"/me/chats/{body['id']}"
    sim.ok("agent1", path, "Accept", nickname="A")
    status, payload = sim.post("agent1", path, record["body"])
    assert (status, payload["statusCode"]) == (400, 2) and "not supported" in payload["statusMessage"]


def test_unimplemented_vendor_apis_answer_404():
    sim = Sim()
    sim.login("agent1")
    for path in ("/me/facebook/1", "/me/tweets/1", "/me/smsessions/1", "/me/outbound-records/9", "/chats",
                 "/me/multimediaevents", "/ucs/interactions"):
        assert sim.post("agent1", path, {"operationName": "Accept"})[0] == 404, path
