"""The sans-IO voice model against the GWS 8.6 reference samples.

Every test drives :class:`ContactCenter` directly with a manual clock and a
list-collecting ``emit``; no sockets, no asyncio. ``L<n>`` = a line in
gws-8.6-api-reference.txt.
"""

from __future__ import annotations

import json
import re

import pytest
from manual_clock import ManualClock

from gwsreplay.sim.model.agents import OFFLINE_STATE_ID
from gwsreplay.sim.model.calls import CH_CALLS
from gwsreplay.sim.model.contact_center import ContactCenter
from gwsreplay.sim.model.core import CH_SERVICES
from gwsreplay.sim.model.devices import CH_DEVICES
from gwsreplay.sim.model.errors import http_status_for
from gwsreplay.sim.model.ids import IdGenerator
from gwsreplay.sim.model.roster import ROLE_AGENT, ROLE_SUPERVISOR, Roster

READY_ID = "9430250E-0A1B-421F-B372-F29E69366DED"
NOT_READY_ID = "900D55CC-2BB0-431F-8BF9-D3525B383BE6"
AUX_ID = "2B36138D-C564-4562-A8CB-3C32D564F296"
ACW_ID = "D3663509-3D82-4DD3-A82E-2EA8EFA02AEF"

BASE = "http://127.0.0.1:8090"
CALL_ID_RE = re.compile(r"^[0-9A-V]{32}$")
CONN_ID_RE = re.compile(r"^[0-9a-f]{16}$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

# Capability sets copied from the reference samples (compared as sets, P§12.1).
UD = {"AttachUserData", "UpdateUserData", "DeleteUserData", "DeleteUserDataPair"}
CAPS_DIALING = {"SendDtmf", "Hangup"} | UD                                      # Dial sample L5367-5395
CAPS_RINGING = {"Answer"} | UD                                                  # L1139-1172
CAPS_ESTABLISHED = {"SingleStepTransfer", "InitiateConference", "Hold", "SingleStepConference",
                    "InitiateTransfer", "SendDtmf", "Hangup"} | UD             # Answer sample L5493-5530
CAPS_HELD = {"SingleStepTransfer", "InitiateConference", "Retrieve", "SingleStepConference",
             "InitiateTransfer", "Hangup"} | UD                                 # Hold sample L5721-5748
CAPS_CONSULT_DIALING = CAPS_DIALING | {"SwapCalls", "CompleteTransfer"}          # L7338-7360
CAPS_HELD_WITH_CONSULT = CAPS_HELD | {"SwapCalls", "CompleteTransfer"}           # L7283-7310
CAPS_ESTABLISHED_WITH_HELD = CAPS_ESTABLISHED | {"SwapCalls", "CompleteTransfer", "CompleteConference"}  # L8700
CAPS_CONFERENCE_OWNER = CAPS_ESTABLISHED | {"RemoveParticipantFromConference", "MuteCall", "ClearCall"}  # L6436

# Key sets of the reference resources.
DEVICE_KEYS = {"id", "deviceState", "userState", "phoneNumber", "e164Number", "telephonyNetwork",
               "doNotDisturb", "voiceEnvironmentUri", "capabilities"}
CALL_KEYS = {"id", "state", "callUuid", "connId", "deviceUri", "participants", "dnis", "callType",
             "capabilities", "duration", "mute", "supervisorListeningIn", "monitoredUserMuted",
             "monitoring", "uri", "path"}
PARTICIPANT_KEYS = {"e164Number", "formattedPhoneNumber", "phoneNumber", "digits"}


# ----------------------------------------------------------------------------- harness

class Sim:
    def __init__(self, agents=3, supervisors=1, seed=0, roster=None, **kwargs):
        self.clock = ManualClock()
        self.events: list[tuple] = []
        self.roster = roster or Roster.default(agents, supervisors=supervisors)
        self.cc = ContactCenter(self.roster, scheduler=self.clock, seed=seed, base_url=BASE,
                                emit=lambda user, channel, data: self.events.append((user, channel, data)),
                                **kwargs)

    # requests
    def rest(self, user, method, path, body=None, query=None):
        status, payload = self.cc.rest(user, method, path, query or {}, body)
        json.dumps(payload)   # always JSON-serialisable
        return status, payload

    def get(self, user, path, **query):
        return self.rest(user, "GET", path, None, query)

    def post(self, user, path, op, **params):
        return self.rest(user, "POST", path, {"operationName": op, **params})

    def ok(self, user, path, op, **params):
        status, payload = self.post(user, path, op, **params)
        assert (status, payload.get("statusCode")) == (200, 0), payload
        return payload

    def refused(self, user, path, op, **params):
        """Outside the capabilities: statusCode 0 now ("sent to T-Server", L535), T-Server's
        ErrorMessage "Incorrect object state" after (L4222). Returns (channel, data)."""
        before = len(self.errors(user))
        status, payload = self.post(user, path, op, **params)
        assert (status, payload) == (200, {"statusCode": 0}), payload
        new = self.errors(user)[before:]
        assert [d["errorMessage"] for c, d in new] == ["Incorrect object state"], new
        return new[0]

    def conn_uri(self, call_id):
        """The callUri of an ErrorMessage: the call's connId, as the sample (L4222)."""
        call = self.cc.voice.calls.get(call_id) or self.cc.voice.ended[call_id]
        return f"{BASE}/api/v2/calls/{call.conn_id}"

    def call_op(self, user, call_id, op, **params):
        return self.ok(user, f"/me/calls/{call_id}", op, **params)

    def device(self, user):
        return self.cc.agents[user].device_id

    def phone(self, user):
        return self.cc.agents[user].phone

    def login(self, *users, ready=True):
        for user in users:
            self.ok(user, "/me", "StartContactCenterSession", channels=["voice"])
            if ready:
                self.ok(user, "/me/channels/voice", "Ready")
        self.clear()

    def dial(self, user, number, **params):
        return self.ok(user, f"/me/devices/{self.device(user)}/calls", "Dial",
                       destination={"phoneNumber": number}, **params)

    # notifications
    def clear(self):
        self.events.clear()

    def calls(self, user=None, nt=None):
        return [d for u, c, d in self.events
                if c == CH_CALLS and d["messageType"] == "CallStateChangeMessage"
                and (user is None or u == user) and (nt is None or d["notificationType"] == nt)]

    def last(self, user, nt=None):
        found = self.calls(user, nt)
        assert found, f"no call notification for {user}: {self.events}"
        return found[-1]["call"]

    def devices(self, user=None):
        return [d["devices"][0] for u, c, d in self.events
                if c == CH_DEVICES and d["messageType"] == "DeviceStateChangeMessage"
                and (user is None or u == user)]

    def errors(self, user=None):
        return [(c, d) for u, c, d in self.events if d.get("messageType") == "ErrorMessage"
                and (user is None or u == user)]

    def connected(self, a="agent1", b="agent2"):
        """a dials b, b answers; returns the call id."""
        self.dial(a, self.phone(b))
        call_id = self.last(a)["id"]
        self.call_op(b, call_id, "Answer")
        self.clear()
        return call_id

    def inbound(self, agent="agent1", caller="5551234", user_data=None, answer=True):
        status, payload = self.cc.inject_call(caller, self.phone(agent), user_data)
        assert (status, payload["statusCode"]) == (200, 0), payload
        if answer:
            self.call_op(agent, payload["id"], "Answer")
            self.clear()
        return payload["id"]


def monitor_of(sim, call_id, user):
    """The monitoring mode of ``user``'s leg (not on the vendor's call resource: the snapshot)."""
    call = next(c for c in sim.cc.snapshot()["calls"] if c["id"] == call_id)
    return next(p["monitor"] for p in call["parties"] if p["userName"] == user)


def caps(call) -> set:
    return set(call["capabilities"])


def numbers(call) -> list:
    return [p["phoneNumber"] for p in call["participants"]]


@pytest.fixture
def sim():
    return Sim(call_recording=False)


@pytest.fixture
def rsim():
    return Sim(call_recording=True)


# ----------------------------------------------------------------------------- roster and ids

def test_default_roster():
    roster = Roster.default(3, supervisors=1)
    assert list(roster.users) == ["agent1", "agent2", "agent3", "supervisor1"]
    a2 = roster.users["agent2"]
    assert (a2.password, a2.phone_number, a2.place, a2.roles) == ("password", "7002", "Place7002", (ROLE_AGENT,))
    assert roster.by_phone("7003").user_name == "agent3"
    assert roster.by_phone("9999") is None
    assert ROLE_SUPERVISOR in roster.users["supervisor1"].roles


def test_roster_from_toml(tmp_path):
    path = tmp_path / "users.toml"
    path.write_text('''
[[users]]
user_name = "alice"
phone_number = "5001"
first_name = "Alice"

[[users]]
user_name = "bob"
password = "secret"
roles = ["agent", "supervisor"]

[[agent_states]]
operationName = "Training"
displayName = "Training"
state = "NotReady"
workMode = "AuxWork"
reason = "Training"
''')
    roster = Roster.from_toml(path)
    alice, bob = roster.users["alice"], roster.users["bob"]
    assert (alice.phone_number, alice.place, alice.first_name, alice.password) == ("5001", "Place5001", "Alice",
                                                                                  "password")
    assert (bob.phone_number, bob.password, bob.roles) == ("7002", "secret", (ROLE_AGENT, ROLE_SUPERVISOR))
    assert roster.agent_states[0].operation_name == "Training"
    with pytest.raises(ValueError):
        Roster.from_dict({"users": [{"user_name": "x", "roles": ["wizard"]}]})
    with pytest.raises(ValueError):
        Roster.from_dict({"users": [{"user_name": "x", "phone_number": "1"}, {"user_name": "y", "phone_number": "1"}]})
    with pytest.raises(ValueError):
        Roster.from_dict({"users": [{"password": "x"}]})


def test_id_formats_and_determinism():
    a, b, c = IdGenerator(1), IdGenerator(1), IdGenerator(2)
    seq_a = [a.device_id(), a.user_id(), a.call_ids(), a.call_ids()]
    assert seq_a == [b.device_id(), b.user_id(), b.call_ids(), b.call_ids()]
    assert seq_a != [c.device_id(), c.user_id(), c.call_ids(), c.call_ids()]
    assert UUID_RE.match(seq_a[0])
    assert re.fullmatch(r"[0-9a-f]{32}", seq_a[1])
    (call1, conn1), (call2, conn2) = seq_a[2], seq_a[3]
    assert CALL_ID_RE.match(call1) and CALL_ID_RE.match(call2) and call1 != call2
    assert call1[:26] == call2[:26] and call1.endswith("000001") and call2.endswith("000002")
    assert CONN_ID_RE.match(conn1) and conn1.startswith("007102") and conn1 != conn2


# ----------------------------------------------------------------------------- GET resources

def test_get_me_matches_reference_shape(sim):
    status, body = sim.get("agent1", "/me")
    assert status == 200 and body["statusCode"] == 0
    user = body["user"]
    assert set(user) == {"id", "userName", "firstName", "lastName", "roles", "enabled",
                         "changePasswordOnFirstLogin", "uri", "path"}
    assert user["userName"] == "agent1" and user["roles"] == ["ROLE_AGENT"]
    assert user["uri"] == f"{BASE}/api/v2/users/{user['id']}" and user["path"] == f"/users/{user['id']}"


def test_get_me_subresources_recovers_state(sim):
    sim.login("agent1", "agent2")
    call_id = sim.connected()
    status, body = sim.get("agent1", "/me", subresources="*")
    user = body["user"]
    assert {"devices", "calls", "skills", "settings"} <= set(user)
    assert user["devices"][0]["id"] == sim.device("agent1")
    assert user["devices"][0]["userState"]["id"] == READY_ID
    assert [c["id"] for c in user["calls"]] == [call_id]
    assert user["calls"][0]["state"] == "Established"
    assert user["settings"] == {"GWS": {"roles": "Agent"}}
    # a subset
    _, body = sim.get("agent1", "/me", subresources="devices")
    assert "devices" in body["user"] and "calls" not in body["user"]


def test_devices_uris_vs_fields(sim):
    dev = sim.device("agent1")
    status, body = sim.get("agent1", "/me/devices")
    assert body == {"statusCode": 0, "uris": [f"{BASE}/api/v2/devices/{dev}"], "paths": [f"/devices/{dev}"]}
    _, body = sim.get("agent1", "/me/devices", fields="*")
    assert set(body) == {"statusCode", "devices"} and set(body["devices"][0]) == DEVICE_KEYS
    device = body["devices"][0]
    assert device["userState"] == {"id": OFFLINE_STATE_ID, "displayName": "Offline", "state": "LoggedOut"}
    assert device["voiceEnvironmentUri"].startswith(f"{BASE}/api/v2/voice-environments/")
    _, body = sim.get("agent1", "/me/devices", fields="id,phoneNumber")
    assert body["devices"] == [{"id": dev, "phoneNumber": "7001"}]
    _, body = sim.get("agent1", f"/me/devices/{dev}")
    assert body["device"]["id"] == dev
    # /devices/{id} reads any device; /me/devices/{id} only one's own
    other = sim.device("agent2")
    assert sim.get("agent1", f"/devices/{other}")[1]["device"]["phoneNumber"] == "7002"
    assert sim.get("agent1", f"/me/devices/{other}")[0] == 404
    status, body = sim.get("agent1", "/devices/nope")
    assert (status, body["statusCode"]) == (404, 6)
    assert len(sim.get("agent1", "/devices")[1]["uris"]) == 4


def test_calls_collection(sim):
    sim.login("agent1", "agent2")
    assert sim.get("agent1", "/me/calls")[1] == {"statusCode": 0, "uris": [], "paths": []}
    call_id = sim.connected()
    _, body = sim.get("agent1", "/me/calls")
    assert body["uris"] == [f"{BASE}/api/v2/me/calls/{call_id}"] and body["paths"] == [f"/calls/{call_id}"]
    _, body = sim.get("agent1", "/me/calls", fields="*")
    assert set(body["calls"][0]) >= CALL_KEYS
    _, body = sim.get("agent2", f"/me/calls/{call_id}")
    assert body["call"]["id"] == call_id and body["call"]["state"] == "Established"
    status, body = sim.get("agent3", f"/me/calls/{call_id}")
    assert (status, body["statusCode"]) == (404, 6)


def test_settings_and_services(sim):
    _, body = sim.get("agent1", "/settings/agent-states")
    assert body["key"] == "operationName"
    by_op = {s["operationName"]: s for s in body["settings"]}
    assert by_op["Ready"] == {"id": READY_ID, "operationName": "Ready", "displayName": "Ready", "state": "Ready"}
    assert by_op["NotReady"]["id"] == NOT_READY_ID and by_op["AuxWork"]["workMode"] == "AuxWork"
    assert by_op["AfterCallWork"]["id"] == ACW_ID and by_op["Offline"]["state"] == "Logout"
    assert sim.get("agent1", "/me/settings/agent-states")[1] == body
    _, body = sim.get("agent1", "/settings/dispositions")
    assert body["key"] == "name" and body["settings"][0] == {"displayName": "Issue Escalated",
                                                             "name": "EscalationCreated"}
    _, body = sim.get("agent1", "/services")
    assert len(body["uris"]) == 2 and body["paths"][0].startswith("/services/")
    _, body = sim.get("agent1", "/services", fields="*")
    voice = next(s for s in body["services"] if s["type"] == "Voice")
    assert voice == {"id": voice["id"], "name": "SIPS", "type": "Voice", "state": "Active"}
    _, body = sim.get("agent1", f"/services/{voice['id']}")
    assert body["service"] == [voice]


def test_channels(sim):
    sim.login("agent1")
    _, body = sim.get("agent1", "/me/channels")
    voice = body["channels"][0]
    assert voice["channel"] == "voice" and voice["phoneNumber"] == "7001"
    assert voice["userState"]["id"] == READY_ID and voice["userActivity"] == "Idle"
    _, body = sim.get("agent1", "/me/channels/voice")
    assert body["channels"]["channel"] == "voice"
    assert sim.get("agent1", "/me/channels/chat")[0] == 404


# ----------------------------------------------------------------------------- session and agent state

def test_start_session_logs_in_once(sim):
    assert sim.ok("agent1", "/me", "StartContactCenterSession", channels=["voice"]) == {"statusCode": 0}
    [device] = sim.devices("agent1")
    assert set(device) == DEVICE_KEYS
    assert device["userState"] == {"id": NOT_READY_ID, "displayName": "Not Ready", "state": "NotReady"}
    assert device["capabilities"] == ["ForwardCallsOn", "DoNotDisturbOn"]
    sim.clear()
    sim.ok("agent1", "/me", "StartContactCenterSession", channels=["voice"])
    assert sim.events == []   # "already logged in ... doesn't return a notification"


def test_start_session_errors_and_partial_success(sim):
    status, body = sim.post("agent1", "/me", "StartContactCenterSession")
    assert (status, body["statusCode"]) == (400, 1)
    status, body = sim.post("agent1", "/me", "StartContactCenterSession", channels=["voice"], workmode="aManualIn")
    assert (status, body) == (400, {"statusCode": 2, "statusMessage":
                                    "Parameter 'workmode' is invalid: \"The specified value is not within valid range\""})
    status, body = sim.post("agent1", "/me", "StartContactCenterSession", channels=["chat"])
    assert (status, body) == (403, {"statusCode": 3, "statusMessage": "Unsupported feature"})
    status, body = sim.post("agent1", "/me", "StartContactCenterSession", channels=["voice"], place="Elsewhere")
    assert (status, body["statusCode"]) == (400, 2)
    assert sim.events == []
    status, body = sim.post("agent1", "/me", "StartContactCenterSession", channels=["voice", "chat"],
                            place="Place7001", workmode="ManualIn")
    assert status == 200 and body == {
        "statusCode": 7,
        "succeeded": [{"channel": "voice", "statusCode": 0}],
        "failed": [{"channel": "multimedia", "statusCode": 3, "statusMessage": "Unsupported feature"}]}


def test_start_session_dynamic_phone_number(sim):
    body = sim.ok("agent1", "/me", "StartContactCenterSession", channels=["voice"], dynamicPhoneNumber="5559999")
    assert body["devices"][0]["dynamicPhoneNumber"] == "5559999"
    assert body["devices"][0]["channels"] == ["voice"]


def test_agent_state_operations(sim):
    sim.login("agent1", ready=False)
    path = "/me/channels/voice"
    expected = [
        ("Ready", {}, {"id": READY_ID, "displayName": "Ready", "state": "Ready"}),
        ("NotReady", {}, {"id": NOT_READY_ID, "displayName": "Not Ready", "state": "NotReady"}),
        ("AuxWork", {}, {"id": AUX_ID, "displayName": "AuxWork", "state": "NotReady", "workMode": "AuxWork"}),
        ("AfterCallWork", {"wrapUpTime": "0"},
         {"id": ACW_ID, "displayName": "AfterCallWork", "state": "NotReady", "workMode": "AfterCallWork"}),
        ("NotReady", {"workmode": "AuxWork"},
         {"id": AUX_ID, "displayName": "AuxWork", "state": "NotReady", "workMode": "AuxWork"}),
        ("NotReady", {"reasonCode": "Lunch"}, {"state": "NotReady", "reason": "Lunch"}),
        ("Ready", {"workmode": "AutoIn"},
         {"id": READY_ID, "displayName": "Ready", "state": "Ready", "workMode": "AutoIn"}),
        ("Offline", {}, {"id": OFFLINE_STATE_ID, "displayName": "Offline", "state": "LoggedOut"}),
    ]
    for op, params, user_state in expected:
        sim.clear()
        sim.ok("agent1", path, op, **params)
        [device] = sim.devices("agent1")
        assert device["userState"] == user_state, op
    # the device URL and /me take agent-state operations too
    sim.clear()
    sim.ok("agent1", f"/me/devices/{sim.device('agent1')}", "Ready")
    sim.ok("agent1", "/me", "NotReady")
    assert [d["userState"]["state"] for d in sim.devices("agent1")] == ["Ready", "NotReady"]


def test_duplicate_agent_state_is_ignored(sim):
    sim.login("agent1")
    sim.ok("agent1", "/me/channels/voice", "Ready")
    sim.ok("agent1", "/me/channels/voice", "Offline")
    sim.ok("agent1", "/me/channels/voice", "Offline")
    assert [d["userState"]["state"] for d in sim.devices()] == ["LoggedOut"]


def test_agent_state_without_session_logs_in(sim):
    # The CSRF sample (L3093-3133) and the curl tutorial (L700-715) send Ready/NotReady
    # with no StartContactCenterSession: they work, and log the agent in.
    assert sim.post("agent1", "/me", "Ready") == (200, {"statusCode": 0})
    [device] = sim.devices("agent1")
    assert device["userState"]["id"] == READY_ID
    assert sim.post("agent2", "/me/channels/voice", "NotReady") == (200, {"statusCode": 0})
    assert sim.devices("agent2")[-1]["userState"]["id"] == NOT_READY_ID


def test_agent_state_errors(sim):
    sim.login("agent1")
    status, body = sim.post("agent1", "/me/channels/voice", "Ready", workmode="AuxWork")
    assert (status, body["statusCode"]) == (400, 2)
    status, body = sim.post("agent1", "/me/channels/voice", "NotReady", workmode="ManualIn")
    assert (status, body["statusCode"]) == (400, 2)
    status, body = sim.post("agent1", "/me/channels/voice", "Dance")
    assert (status, body["statusCode"]) == (400, 2)
    status, body = sim.rest("agent1", "POST", "/me/channels/voice", {})
    assert (status, body["statusCode"]) == (400, 1)
    assert sim.events == []


def test_custom_agent_state():
    roster = Roster.from_dict({
        "users": [{"user_name": "agent1"}],
        "agent_states": [{"operationName": "Training", "displayName": "Training", "state": "NotReady",
                          "workMode": "AuxWork", "reason": "Training"}]})
    s = Sim(roster=roster)
    s.login("agent1")
    training = next(x for x in s.get("agent1", "/settings/agent-states")[1]["settings"]
                    if x["operationName"] == "Training")
    assert UUID_RE.match(training["id"])
    s.ok("agent1", "/me/channels/voice", "Training")
    assert s.devices("agent1")[-1]["userState"] == {"id": training["id"], "displayName": "Training",
                                                    "state": "NotReady", "workMode": "AuxWork",
                                                    "reason": "Training"}


def test_end_session_and_http_session_expiry(sim):
    sim.login("agent1")
    sim.ok("agent1", "/me", "EndContactCenterSession")
    assert sim.events == []   # 8.5.2: no notification
    agent = sim.cc.snapshot()["agents"][0]
    assert (agent["session"], agent["loggedIn"], agent["userState"]["state"]) == (False, False, "LoggedOut")
    sim.login("agent2")
    sim.cc.end_session("agent2")
    assert sim.cc.snapshot()["agents"][1]["loggedIn"] is False
    sim.cc.end_session("nobody")   # harmless


def test_do_not_disturb_and_forwarding(sim):
    sim.login("agent1")
    dev = f"/me/devices/{sim.device('agent1')}"
    sim.ok("agent1", dev, "DoNotDisturbOn")
    device = sim.devices("agent1")[-1]
    assert device["doNotDisturb"] == "On" and device["capabilities"] == ["ForwardCallsOn", "DoNotDisturbOff"]
    channel, error = sim.refused("agent1", dev, "DoNotDisturbOn")   # not a capability any more
    assert channel == CH_DEVICES and error == {"messageType": "ErrorMessage", "errorMessage": "Incorrect object state",
                                               "deviceUri": f"{BASE}/api/v2/devices/{sim.device('agent1')}"}
    assert sim.devices("agent1")[-1]["doNotDisturb"] == "On"
    strict = Sim(call_recording=False, sync_errors=True)          # --sync-errors: refused at once
    strict.login("agent1")
    strict.ok("agent1", dev.replace(sim.device("agent1"), strict.device("agent1")), "DoNotDisturbOn")
    status, body = strict.post("agent1", f"/me/devices/{strict.device('agent1')}", "DoNotDisturbOn")
    assert (status, body["statusCode"]) == (400, 2) and strict.errors() == []
    sim.ok("agent1", "/me", "DoNotDisturbOff")
    assert sim.devices("agent1")[-1]["doNotDisturb"] == "Off"
    sim.ok("agent1", dev, "ForwardCallsOn", destination="7002")
    device = sim.devices("agent1")[-1]
    assert device["forwardTo"] == "7002" and device["capabilities"] == ["ForwardCallsOff", "DoNotDisturbOn"]
    sim.ok("agent1", "/me/channels/voice", "ForwardCallsOff")
    device = sim.devices("agent1")[-1]
    assert "forwardTo" not in device and device["capabilities"][0] == "ForwardCallsOn"
    status, body = sim.post("agent1", dev, "ForwardCallsOn")
    assert (status, body["statusCode"]) == (400, 1)
    status, body = sim.post("agent1", dev, "ForwardCallsOn", destination="abc")
    assert (status, body["statusCode"]) == (400, 2)


def test_forwarded_calls_ring_the_forward_destination(sim):
    sim.login("agent1", "agent2", "agent3")
    sim.ok("agent2", f"/me/devices/{sim.device('agent2')}", "ForwardCallsOn", destination="7003")
    sim.clear()
    sim.dial("agent1", "7002")
    assert sim.calls("agent2") == []
    assert sim.last("agent3")["state"] == "Ringing"


# ----------------------------------------------------------------------------- agent-to-agent calls

def test_agent_to_agent_call(sim):
    sim.login("agent1", "agent2")
    sim.dial("agent1", "7002")
    dialing, ringing = sim.last("agent1"), sim.last("agent2")
    assert dialing["id"] == ringing["id"] and CALL_ID_RE.match(dialing["id"]) and CONN_ID_RE.match(dialing["connId"])
    call_id = dialing["id"]
    assert dialing["callUuid"] == call_id
    assert set(dialing) >= CALL_KEYS and set(ringing) >= CALL_KEYS
    assert (dialing["state"], dialing["callType"], caps(dialing)) == ("Dialing", "Internal", CAPS_DIALING)
    assert (ringing["state"], ringing["callType"], caps(ringing)) == ("Ringing", "Internal", CAPS_RINGING)
    assert dialing["participants"] == [{"e164Number": "", "formattedPhoneNumber": "7002", "phoneNumber": "7002",
                                        "digits": "7002"}]
    assert numbers(ringing) == ["7001"] and set(ringing["participants"][0]) == PARTICIPANT_KEYS
    assert dialing["uri"] == f"{BASE}/api/v2/me/calls/{call_id}" and dialing["path"] == f"/calls/{call_id}"
    assert dialing["deviceUri"] == f"{BASE}/api/v2/devices/{sim.device('agent1')}"
    assert ringing["deviceUri"] == f"{BASE}/api/v2/devices/{sim.device('agent2')}"
    assert dialing["dnis"] == "7002" and dialing["duration"] == "0" and dialing["mute"] == "Off"
    data = sim.calls("agent1")[0]
    assert data["phoneNumber"] == "7001" and data["extensions"] == {"WrapUpTime": 0, "BusinessCall": 0}
    assert data["notificationType"] == "StatusChange"

    sim.clear()
    sim.clock.advance(3)
    sim.call_op("agent2", call_id, "Answer")
    assert [(u, d["call"]["state"]) for u, c, d in sim.events] == [("agent2", "Established"),
                                                                   ("agent1", "Established")]
    for user in ("agent1", "agent2"):
        call = sim.last(user)
        assert caps(call) == CAPS_ESTABLISHED and call["duration"] == "3"

    sim.clear()
    sim.clock.advance(10)
    sim.call_op("agent1", call_id, "Hold")
    held = sim.last("agent1")
    assert (held["state"], caps(held), held["duration"]) == ("Held", CAPS_HELD, "13")
    assert sim.calls("agent2") == []
    sim.call_op("agent1", call_id, "Retrieve")
    assert sim.last("agent1")["state"] == "Established"

    sim.clear()
    sim.call_op("agent2", call_id, "Hangup")
    assert [(u, d["call"]["state"], d["call"]["capabilities"]) for u, c, d in sim.events] == [
        ("agent2", "Released", []), ("agent1", "Released", [])]
    assert numbers(sim.last("agent1")) == ["7002"]   # the Released call still names the other party
    assert sim.cc.calls == {} and sim.get("agent1", "/me/calls")[1]["uris"] == []


def test_caller_hangs_up_while_ringing(sim):
    sim.login("agent1", "agent2")
    sim.dial("agent1", "7002")
    call_id = sim.last("agent1")["id"]
    sim.clear()
    sim.call_op("agent1", call_id, "Hangup")
    assert [(u, d["call"]["state"]) for u, c, d in sim.events] == [("agent1", "Released"), ("agent2", "Released")]


def test_dial_with_user_data_and_data_operations(sim):
    sim.login("agent1", "agent2")
    sim.dial("agent1", "7002", userData={"CustomerSegment": "Gold"})
    call_id = sim.last("agent1")["id"]
    assert sim.last("agent1")["userData"] == {"CustomerSegment": "Gold"}
    assert sim.last("agent2")["userData"] == {"CustomerSegment": "Gold"}
    sim.clear()
    sim.call_op("agent1", call_id, "UpdateUserData",
                userData={"AccountNumber": "12345678", "CustomerSegment": "Platinum", "CustomerName": "James"})
    assert [(u, d["notificationType"]) for u, c, d in sim.events] == [("agent1", "AttachedDataChanged"),
                                                                      ("agent2", "AttachedDataChanged")]
    assert sim.last("agent2")["userData"] == {"CustomerSegment": "Platinum", "AccountNumber": "12345678",
                                              "CustomerName": "James"}
    sim.call_op("agent2", call_id, "AttachUserData", userData={"Extra": 1})
    sim.call_op("agent1", call_id, "DeleteUserDataPair", key="CustomerSegment")
    assert sim.last("agent1", "AttachedDataChanged")["userData"] == {"AccountNumber": "12345678",
                                                                     "CustomerName": "James", "Extra": 1}
    sim.call_op("agent1", call_id, "DeleteUserData")
    assert "userData" not in sim.last("agent1", "AttachedDataChanged")   # L9240: userData absent
    for op, params, code in (("AttachUserData", {}, 1), ("UpdateUserData", {"userData": "x"}, 2),
                             ("DeleteUserDataPair", {}, 1)):
        status, body = sim.post("agent1", f"/me/calls/{call_id}", op, **params)
        assert (status, body["statusCode"]) == (400, code), op


def test_send_dtmf_mute_and_disposition(sim):
    sim.login("agent1", "agent2")
    call_id = sim.connected()
    sim.call_op("agent1", call_id, "SendDtmf", digits="5")
    [event] = sim.calls()
    assert event["notificationType"] == "DtmfSent" and event["call"]["state"] == "Established"
    assert sim.post("agent1", f"/me/calls/{call_id}", "SendDtmf")[1]["statusCode"] == 1
    assert sim.post("agent1", f"/me/calls/{call_id}", "SendDTMF", digits="x!")[1]["statusCode"] == 2
    # MuteCall belongs to conferences (samples): not a capability of a two-party call
    channel, error = sim.refused("agent1", f"/me/calls/{call_id}", "MuteCall")
    assert channel == CH_CALLS and error["callUri"] == sim.conn_uri(call_id)
    assert sim.last("agent1")["mute"] == "Off"
    sim.clear()
    sim.call_op("agent1", call_id, "SetCallDisposition", disposition="Referred", dispositionKey="DispositionCode",
                callUuid=call_id)
    assert sim.last("agent1", "AttachedDataChanged")["userData"] == {"DispositionCode": "Referred"}
    assert sim.post("agent1", f"/me/calls/{call_id}", "SetCallDisposition")[1]["statusCode"] == 1
    sim.call_op("agent1", call_id, "Hangup")
    sim.clear()
    sim.call_op("agent1", call_id, "SetCallDisposition", disposition="IssueResolved")   # after release
    assert sim.events == []
    assert sim.post("agent1", f"/me/calls/{call_id}", "Hold")[0] == 404


# ----------------------------------------------------------------------------- external parties

def test_outbound_call_to_external_number(sim):
    sim.login("agent1")
    sim.dial("agent1", "5550100")
    call = sim.last("agent1")
    assert (call["state"], call["callType"], numbers(call)) == ("Dialing", "Outbound", ["5550100"])
    sim.clear()
    sim.clock.advance(0.5)
    assert sim.events == []
    sim.clock.advance(0.5)   # external_answer_delay = 1.0
    call = sim.last("agent1")
    assert (call["state"], call["duration"]) == ("Established", "1")
    status, body = sim.cc.far_end_hangup(call["id"])
    assert (status, body) == (200, {"statusCode": 0})
    assert sim.last("agent1")["state"] == "Released"
    assert sim.cc.far_end_hangup(call["id"]) == (404, {"statusCode": 6, "statusMessage":
                                                       f"Call {call['id']} not found"})


def test_hangup_before_external_answer_cancels_the_answer(sim):
    sim.login("agent1")
    sim.dial("agent1", "+15550100")
    call = sim.last("agent1")
    assert call["participants"][0]["e164Number"] == "+15550100"
    sim.call_op("agent1", call["id"], "Hangup")
    sim.clear()
    sim.clock.advance(5)
    assert sim.events == [] and sim.clock.pending == 0


def test_inbound_injected_call(sim):
    sim.login("agent1")
    status, body = sim.cc.inject_call("5551234", "7001", {"AccountNumber": "42"})
    assert status == 200 and body["statusCode"] == 0 and CALL_ID_RE.match(body["id"])
    call = sim.last("agent1")
    assert call["id"] == body["id"]
    assert (call["state"], call["callType"], call["ani"], call["dnis"]) == ("Ringing", "Inbound", "5551234", "7001")
    assert caps(call) == CAPS_RINGING | {"Reject"} and call["userData"] == {"AccountNumber": "42"}
    sim.call_op("agent1", body["id"], "Answer")
    assert sim.last("agent1")["state"] == "Established"
    sim.clear()
    sim.cc.far_end_hangup(body["id"])
    assert [d["call"]["state"] for d in sim.calls()] == ["Released"]


def test_reject_inbound_call(sim):
    sim.login("agent1")
    call_id = sim.inbound(answer=False)
    sim.clear()
    sim.call_op("agent1", call_id, "Reject")
    assert sim.last("agent1")["state"] == "Released" and sim.cc.calls == {}


def test_direct_call_cannot_be_rejected(sim):
    sim.login("agent1", "agent2")
    sim.dial("agent1", "7002")
    call_id = sim.last("agent2")["id"]
    channel, error = sim.refused("agent2", f"/me/calls/{call_id}", "Reject")
    assert channel == CH_CALLS and error["callUri"] == sim.conn_uri(call_id)
    assert sim.last("agent2")["state"] == "Ringing"


def test_inject_errors(sim):
    assert sim.cc.inject_call("5551234", "9999") == (404, {"statusCode": 6,
                                                           "statusMessage": "No agent has phone number 9999"})
    assert sim.cc.inject_call("", "7001")[0] == 400
    sim.login("agent1")
    sim.ok("agent1", "/me", "DoNotDisturbOn")
    status, body = sim.cc.inject_call("5551234", "7001")
    assert (status, body["statusCode"]) == (409, 19)


# ----------------------------------------------------------------------------- transfers

def test_single_step_transfer(sim):
    sim.login("agent1", "agent2")
    call_id = sim.inbound("agent1", user_data={"A": "1"})
    sim.call_op("agent1", call_id, "SingleStepTransfer", destination={"phoneNumber": "7002"},
                userData={"TransferReason": "Escalation"})
    released, ringing = sim.last("agent1"), sim.last("agent2")
    assert (released["state"], released["capabilities"]) == ("Released", [])
    assert released["userData"] == {"A": "1", "TransferReason": "Escalation"}
    assert (ringing["id"], ringing["state"], ringing["callType"]) == (call_id, "Ringing", "Inbound")
    assert numbers(ringing) == ["5551234"]
    sim.call_op("agent2", call_id, "Answer")
    assert sim.last("agent2")["state"] == "Established"
    status, body = sim.post("agent1", f"/me/calls/{call_id}", "SingleStepTransfer")
    assert (status, body["statusCode"]) == (404, 6)
    status, body = sim.post("agent2", f"/me/calls/{call_id}", "SingleStepTransfer")
    assert (status, body["statusCode"]) == (400, 1)


def test_two_step_transfer(sim):
    sim.login("agent1", "agent2")
    original = sim.inbound("agent1")
    sim.call_op("agent1", original, "InitiateTransfer", destination={"phoneNumber": "7002"})
    held, dialing = [d["call"] for d in sim.calls("agent1")]
    assert (held["id"], held["state"], caps(held)) == (original, "Held", CAPS_HELD_WITH_CONSULT)
    consult = dialing["id"]
    assert consult != original
    assert (dialing["state"], dialing["callType"], caps(dialing)) == ("Dialing", "Consult", CAPS_CONSULT_DIALING)
    assert dialing["parentCallUri"] == f"{BASE}/api/v2/me/calls/{original}"
    assert dialing["parentCallPath"] == f"/calls/{original}"
    ringing = sim.last("agent2")
    assert (ringing["id"], ringing["state"], ringing["callType"]) == (consult, "Ringing", "Consult")
    assert "parentCallUri" not in ringing
    sim.clear()
    sim.call_op("agent2", consult, "Answer")
    assert caps(sim.last("agent1")) == CAPS_ESTABLISHED_WITH_HELD
    sim.clear()
    sim.call_op("agent1", consult, "CompleteTransfer")
    assert [(u, d["call"]["id"], d["call"]["state"]) for u, c, d in sim.events] == [
        ("agent1", original, "Released"), ("agent1", consult, "Released"),
        ("agent2", consult, "Released"), ("agent2", original, "Established")]
    now = sim.last("agent2")
    assert numbers(now) == ["5551234"] and now["callType"] == "Inbound"
    assert list(sim.cc.calls) == [original]
    sim.clear()
    sim.cc.far_end_hangup(original)
    assert [(u, d["call"]["state"]) for u, c, d in sim.events] == [("agent2", "Released")]


def test_complete_transfer_while_consult_is_ringing(sim):
    sim.login("agent1", "agent2")
    original = sim.inbound("agent1")
    sim.call_op("agent1", original, "InitiateTransfer", destination={"phoneNumber": "7002"})
    consult = sim.last("agent1")["id"]
    sim.clear()
    sim.call_op("agent1", original, "CompleteTransfer", consultCallUri=f"{BASE}/api/v2/me/calls/{consult}")
    assert sim.last("agent2")["id"] == original and sim.last("agent2")["state"] == "Ringing"
    sim.call_op("agent2", original, "Answer")
    assert sim.last("agent2")["state"] == "Established"


def test_consult_to_external_and_swap(sim):
    sim.login("agent1")
    original = sim.inbound("agent1")
    sim.call_op("agent1", original, "InitiateTransfer", destination={"phoneNumber": "5550199"})
    consult = sim.last("agent1")["id"]
    sim.clear()
    # SwapCalls is listed while the consult call dials, but T-Server cannot hold a dialing call
    sim.call_op("agent1", consult, "SwapCalls", otherCallUri=f"{BASE}/api/v2/me/calls/{original}")
    [(channel, error)] = sim.errors("agent1")
    assert channel == CH_CALLS and error == {
        "messageType": "ErrorMessage", "deviceUri": f"{BASE}/api/v2/devices/{sim.device('agent1')}",
        "callUri": sim.conn_uri(consult), "errorMessage": "Incorrect object state"}
    sim.clock.advance(1)
    assert sim.last("agent1")["state"] == "Established"
    sim.clear()
    sim.call_op("agent1", consult, "SwapCalls", otherCallUri=f"{BASE}/api/v2/me/calls/{original}")
    assert [(d["call"]["id"], d["call"]["state"]) for d in sim.calls()] == [(consult, "Held"),
                                                                             (original, "Established")]
    sim.clear()
    sim.call_op("agent1", original, "SwapCalls")   # otherCallUri is found when omitted
    assert [(d["call"]["id"], d["call"]["state"]) for d in sim.calls()] == [(original, "Held"),
                                                                             (consult, "Established")]
    status, body = sim.post("agent1", f"/me/calls/{consult}", "SwapCalls", otherCallUri="/me/calls/nope")
    assert (status, body["statusCode"]) == (400, 2)


def test_plain_second_call_offers_swap_and_complete(sim):
    sim.login("agent1", "agent2", "agent3")
    first = sim.connected("agent1", "agent2")
    sim.call_op("agent1", first, "Hold")
    sim.dial("agent1", "7003")
    second = sim.last("agent1")
    assert second["callType"] == "Internal" and caps(second) == CAPS_CONSULT_DIALING
    sim.call_op("agent3", second["id"], "Answer")
    assert caps(sim.last("agent1")) == CAPS_ESTABLISHED_WITH_HELD


# ----------------------------------------------------------------------------- conferences

def test_two_step_conference_remove_and_clear(sim):
    sim.login("agent1", "agent2", "agent3")
    original = sim.inbound("agent1")
    sim.call_op("agent1", original, "InitiateConference", destination={"phoneNumber": "7002"})
    consult = sim.last("agent1")["id"]
    assert sim.last("agent1")["callType"] == "Consult"
    # not before the consult call is established: T-Server refuses, about the consult call
    assert sim.refused("agent1", f"/me/calls/{consult}", "CompleteConference")[1]["callUri"] == sim.conn_uri(consult)
    sim.call_op("agent2", consult, "Answer")
    sim.clear()
    sim.call_op("agent1", consult, "CompleteConference")
    assert [(u, d["call"]["id"], d["call"]["state"], d["notificationType"]) for u, c, d in sim.events] == [
        ("agent1", consult, "Released", "StatusChange"),
        ("agent2", consult, "Released", "StatusChange"),
        ("agent2", original, "Established", "StatusChange"),
        ("agent1", original, "Established", "ParticipantsUpdated")]
    owner = sim.last("agent1")
    assert sorted(numbers(owner)) == ["5551234", "7002"] and caps(owner) == CAPS_CONFERENCE_OWNER
    assert sorted(numbers(sim.last("agent2"))) == ["5551234", "7001"]
    assert "RemoveParticipantFromConference" not in caps(sim.last("agent2"))

    # mute inside a conference
    sim.call_op("agent2", original, "MuteCall")
    muted = sim.last("agent2")
    assert muted["mute"] == "On" and "UnmuteCall" in caps(muted) and "MuteCall" not in caps(muted)
    sim.call_op("agent2", original, "UnmuteCall")
    assert sim.last("agent2")["mute"] == "Off"

    sim.clear()
    sim.call_op("agent1", original, "RemoveParticipantFromConference", participant="7002")
    assert [(u, d["call"]["state"], d["notificationType"]) for u, c, d in sim.events] == [
        ("agent2", "Released", "StatusChange"), ("agent1", "Established", "ParticipantsUpdated")]
    assert numbers(sim.last("agent1")) == ["5551234"] and caps(sim.last("agent1")) == CAPS_ESTABLISHED

    # a participant that is not on the call: T-Server refuses asynchronously
    sim.call_op("agent1", original, "SingleStepConference", destination={"phoneNumber": "7003"})
    sim.call_op("agent3", original, "Answer")
    sim.clear()
    sim.call_op("agent1", original, "RemoveParticipantFromConference", participant="7999")
    [(channel, error)] = sim.errors("agent1")
    assert channel == CH_CALLS and error["callUri"] == sim.conn_uri(original)
    assert sim.post("agent1", f"/me/calls/{original}", "RemoveParticipantFromConference")[1]["statusCode"] == 1
    sim.clear()
    sim.call_op("agent3", original, "ClearCall")
    assert [(u, d["call"]["state"]) for u, c, d in sim.events] == [("agent3", "Released"), ("agent1", "Released")]
    assert sim.cc.calls == {}


def test_single_step_conference(sim):
    sim.login("agent1", "agent2")
    call_id = sim.inbound("agent1")
    sim.call_op("agent1", call_id, "SingleStepConference", destination={"phoneNumber": "7002"},
                userData={"AccountNumber": "12345"})
    [(u1, c1, first), (u2, c2, second)] = sim.events
    assert (u1, first["notificationType"]) == ("agent1", "ParticipantsUpdated")
    assert numbers(first["call"]) == ["7002", "5551234"]
    assert first["call"]["userData"] == {"AccountNumber": "12345", "FirstConferencePartyDN": "7001"}
    assert caps(first["call"]) == CAPS_CONFERENCE_OWNER
    assert (u2, second["call"]["state"], second["call"]["callType"]) == ("agent2", "Ringing", "Inbound")
    sim.call_op("agent2", call_id, "Answer")
    sim.clear()
    sim.call_op("agent1", call_id, "Hangup")   # the conference goes on without its owner
    assert [(u, d["call"]["state"], d["notificationType"]) for u, c, d in sim.events] == [
        ("agent1", "Released", "StatusChange"), ("agent2", "Established", "ParticipantsUpdated")]
    assert numbers(sim.last("agent2")) == ["5551234"]


def test_single_step_conference_external(sim):
    sim.login("agent1")
    call_id = sim.inbound("agent1")
    sim.call_op("agent1", call_id, "SingleStepConference", destination={"phoneNumber": "5550000"})
    assert sorted(numbers(sim.last("agent1"))) == ["5550000", "5551234"]
    sim.clock.advance(2)
    sim.clear()
    sim.cc.far_end_hangup(call_id)   # both external parties leave
    assert sim.last("agent1")["state"] == "Released"


# ----------------------------------------------------------------------------- recording

def test_call_recording(rsim):
    rsim.login("agent1", "agent2")
    call_id = rsim.connected()
    call = rsim.get("agent1", f"/me/calls/{call_id}")[1]["call"]
    assert call["recordingState"] == "Stopped" and caps(call) == CAPS_ESTABLISHED | {"StartCallRecording"}
    assert rsim.refused("agent1", f"/me/calls/{call_id}", "PauseCallRecording")[1]["callUri"] == rsim.conn_uri(call_id)
    steps = [("StartCallRecording", "Recording", {"PauseCallRecording", "StopCallRecording"}, "ON"),
             ("PauseCallRecording", "Paused", {"ResumeCallRecording", "StopCallRecording"}, "PAUSED"),
             ("ResumeCallRecording", "Recording", {"PauseCallRecording", "StopCallRecording"}, "ON"),
             ("StopCallRecording", "Stopped", {"StartCallRecording"}, "OFF")]
    for op, state, extra, flag in steps:
        rsim.clear()
        rsim.call_op("agent1", call_id, op)
        assert [(u, d["notificationType"]) for u, c, d in rsim.events] == [
            ("agent1", "CallRecordingStateChange"), ("agent2", "CallRecordingStateChange")]
        call = rsim.last("agent1")
        assert call["recordingState"] == state and caps(call) == CAPS_ESTABLISHED | extra
        assert call["userData"]["GSIP_RECORD"] == flag


# ----------------------------------------------------------------------------- supervision

def test_supervisor_listen_in_and_barge_in():
    s = Sim(call_recording=False)
    s.login("agent1", "agent2", "supervisor1")
    sup_dev = f"/me/devices/{s.device('supervisor1')}"
    target_uri = f"{BASE}/api/v2/devices/{s.device('agent1')}"
    device = s.get("supervisor1", sup_dev)[1]["device"]
    assert device["capabilities"] == ["ForwardCallsOn", "DoNotDisturbOn", "ListenIn", "Coach", "BargeIn"]
    s.ok("supervisor1", sup_dev, "ListenIn", targetDeviceUri=target_uri)
    device = s.devices("supervisor1")[-1]
    assert "CancelSupervisorMonitoring" in device["capabilities"]
    assert device["supervisorMonitoringState"] == {
        "state": "ListenIn", "mode": "AllCalls", "scope": "Call", "targetDeviceUri": target_uri,
        "phoneNumber": "7001", "switchName": "SIP_Switch"}
    s.clear()

    call_id = s.connected("agent2", "agent1")   # the monitored agent answers a call
    s.dial("agent2", "7001")  # noqa: a second, unanswered call must not pull the supervisor in twice
    s.clear()
    _, body = s.get("supervisor1", f"/me/calls/{call_id}")
    sup_call = body["call"]
    assert (sup_call["state"], sup_call["monitoring"], sup_call["mute"]) == ("Established", True, "On")
    assert "supervisorMonitoringState" not in sup_call and monitor_of(s, call_id, "supervisor1") == "ListenIn"
    assert sorted(numbers(sup_call)) == ["7001", "7002"]
    assert {"SwitchToBargeIn", "MuteMonitoredUser", "RemoveParticipantFromConference"} <= caps(sup_call)
    agent_call = s.get("agent1", f"/me/calls/{call_id}")[1]["call"]
    assert agent_call["supervisorListeningIn"] is True and numbers(agent_call) == ["7002"]
    assert s.get("agent2", f"/me/calls/{call_id}")[1]["call"]["supervisorListeningIn"] is True

    s.call_op("supervisor1", call_id, "SwitchToBargeIn")
    sup_call = s.last("supervisor1")
    assert (sup_call["mute"], monitor_of(s, call_id, "supervisor1")) == ("Off", "BargeIn")
    assert "SwitchToListenIn" in caps(sup_call)
    assert sorted(numbers(s.last("agent2", "ParticipantsUpdated"))) == ["7001", "7901"]

    s.call_op("supervisor1", call_id, "MuteMonitoredUser")
    assert s.last("supervisor1", "MonitoredUserMutedStateChange")["monitoredUserMuted"] is True
    assert s.last("agent1", "MonitoredUserMutedStateChange")["monitoredUserMuted"] is True
    s.call_op("supervisor1", call_id, "UnmuteMonitoredUser")
    assert s.last("agent1")["monitoredUserMuted"] is False

    s.clear()
    s.ok("supervisor1", sup_dev, "CancelSupervisorMonitoring")
    assert s.last("supervisor1")["state"] == "Released"
    device = s.devices("supervisor1")[-1]
    assert "supervisorMonitoringState" not in device and "CancelSupervisorMonitoring" not in device["capabilities"]
    assert numbers(s.last("agent2")) == ["7001"]
    assert s.get("agent1", f"/me/calls/{call_id}")[1]["call"]["state"] == "Established"


def test_barge_in_joins_a_call_in_progress_and_leaves_with_it():
    s = Sim(call_recording=False)
    s.login("agent1", "agent2", "supervisor1")
    call_id = s.connected("agent1", "agent2")
    s.ok("supervisor1", f"/me/devices/{s.device('supervisor1')}", "BargeIn",
         targetDeviceUri=f"{BASE}/api/v2/devices/{s.device('agent1')}", supervisorMonitoringMode="NextCall",
         supervisorMonitoringScope="Agent")
    assert s.last("supervisor1")["monitoring"] is True and monitor_of(s, call_id, "supervisor1") == "BargeIn"
    assert sorted(numbers(s.last("agent1", "ParticipantsUpdated"))) == ["7002", "7901"]
    assert s.last("agent1", "ParticipantsUpdated")["supervisorListeningIn"] is False
    s.clear()
    s.call_op("agent1", call_id, "Hangup")
    assert [(u, d["call"]["state"]) for u, c, d in s.events if c == CH_CALLS] == [
        ("agent1", "Released"), ("agent2", "Released"), ("supervisor1", "Released")]
    # NextCall: monitoring ends with the monitored call
    assert "supervisorMonitoringState" not in s.devices("supervisor1")[-1]


def test_coach_and_supervisor_errors():
    s = Sim(call_recording=False)
    sup_dev = f"/me/devices/{s.device('supervisor1')}"
    target = f"{BASE}/api/v2/devices/{s.device('agent1')}"
    status, body = s.post("supervisor1", sup_dev, "ListenIn", targetDeviceUri=target)
    assert (status, body["statusCode"]) == (400, 2)   # the supervisor is not logged in
    s.login("agent1", "supervisor1")
    status, body = s.post("agent1", f"/me/devices/{s.device('agent1')}", "ListenIn", targetDeviceUri=target)
    assert (status, body["statusCode"]) == (403, 5)
    assert s.post("supervisor1", sup_dev, "Coach")[1]["statusCode"] == 1
    assert s.post("supervisor1", sup_dev, "Coach", targetDeviceUri=f"{BASE}/api/v2/devices/x")[1]["statusCode"] == 2
    assert s.post("supervisor1", sup_dev, "Coach", targetDeviceUri=target,
                  supervisorMonitoringMode="Sometimes")[1]["statusCode"] == 2
    channel, error = s.refused("supervisor1", sup_dev, "CancelSupervisorMonitoring")   # not monitoring
    assert channel == CH_DEVICES and "callUri" not in error
    s.ok("supervisor1", sup_dev, "Coach", targetDeviceUri=target)
    assert s.devices("supervisor1")[-1]["supervisorMonitoringState"]["state"] == "Coach"
    s.ok("supervisor1", sup_dev, "CancelSupervisionMonitoring")   # the page-title spelling works too
    assert "supervisorMonitoringState" not in s.devices("supervisor1")[-1]


# ----------------------------------------------------------------------------- errors

def test_error_paths(sim):
    sim.login("agent1", "agent2")
    call_id = sim.connected()
    dev = sim.device("agent1")
    cases = [
        (("POST", f"/me/calls/{call_id}", {"operationName": "Fly"}), 400, 2),
        (("POST", f"/me/calls/{call_id}", {}), 400, 1),
        (("POST", f"/me/calls/{call_id}", None), 400, 1),
        (("POST", f"/me/calls/{call_id}", ["Answer"]), 400, 1),
        (("POST", f"/me/calls/{call_id}", {"operationName": 7}), 400, 2),
        (("POST", "/me/calls/0000000000000000000000000000000X", {"operationName": "Hangup"}), 404, 6),
        (("POST", f"/me/devices/{sim.device('agent2')}", {"operationName": "DoNotDisturbOn"}), 404, 6),
        (("POST", f"/me/devices/{dev}/calls", {"operationName": "Dial"}), 400, 1),
        (("POST", f"/me/devices/{dev}/calls", {"operationName": "Dial", "destination": {}}), 400, 1),
        (("POST", f"/me/devices/{dev}/calls", {"operationName": "Dial", "destination": [1]}), 400, 2),
        (("POST", f"/me/devices/{dev}/calls",
          {"operationName": "Dial", "destination": {"phoneNumber": "7002"}, "userData": 5}), 400, 2),
        (("POST", f"/me/devices/{dev}/calls", {"operationName": "Hangup"}), 400, 2),
        (("GET", "/nowhere", None), 404, 6),
        (("DELETE", "/me", None), 400, 2),
        (("PUT", f"/me/calls/{call_id}", {}), 400, 2),
    ]
    sim.clear()
    for (method, path, body), http, code in cases:
        status, payload = sim.rest("agent1", method, path, body)
        assert (status, payload["statusCode"]) == (http, code), (method, path, body, payload)
        assert set(payload) == {"statusCode", "statusMessage"}
    assert sim.events == []
    assert sim.rest("ghost", "GET", "/me")[0] == 401
    # not a capability: accepted, refused later by T-Server (L535, L4222)
    assert sim.refused("agent1", f"/me/calls/{call_id}", "Answer")[1]["callUri"] == sim.conn_uri(call_id)
    strict = Sim(call_recording=False, sync_errors=True)
    strict.login("agent1", "agent2")
    strict_call = strict.connected()
    status, payload = strict.post("agent1", f"/me/calls/{strict_call}", "Answer")
    assert (status, payload["statusCode"]) == (400, 2) and set(payload) == {"statusCode", "statusMessage"}
    assert strict.events == []


def test_asynchronous_dial_errors(sim):
    sim.login("agent1", "agent2")
    dev = sim.device("agent1")
    for bad in ("12ab", "7001"):   # an undialable number, one's own number
        sim.clear()
        sim.dial("agent1", bad)
        assert sim.events == [("agent1", CH_DEVICES, {
            "messageType": "ErrorMessage", "deviceUri": f"{BASE}/api/v2/devices/{dev}",
            "errorMessage": "Invalid Called Dn"})]
    sim.ok("agent2", "/me", "DoNotDisturbOn")
    sim.clear()
    sim.dial("agent1", "7002")
    assert [e[1]["errorMessage"] for e in sim.errors("agent1")] == ["DN is busy"]
    assert sim.cc.calls == {}
    call_id = sim.inbound("agent1")
    sim.call_op("agent1", call_id, "SingleStepTransfer", destination={"phoneNumber": "++"})
    [(channel, error)] = sim.errors("agent1")
    assert channel == CH_CALLS and error["callUri"] == sim.conn_uri(call_id)
    assert sim.get("agent1", f"/me/calls/{call_id}")[1]["call"]["state"] == "Established"


def test_voice_service_outage(sim):
    sim.login("agent1", "agent2")
    call_id = sim.connected()
    assert sim.cc.set_service_state("voice", "Inactive") == (200, {"statusCode": 0})
    [(user, channel, data)] = sim.events
    assert (user, channel) == (None, CH_SERVICES)
    assert data["messageType"] == "ServiceStateChangeMessage"
    assert {k: data["service"][k] for k in ("name", "type", "state")} == {"name": "SIPS", "type": "Voice",
                                                                          "state": "Inactive"}
    down = (503, {"statusCode": 4, "statusMessage": "Voice service is not available at this time"})
    assert sim.post("agent1", f"/me/calls/{call_id}", "Hold") == down
    assert sim.post("agent1", "/me/channels/voice", "NotReady") == down
    assert sim.post("agent1", f"/me/devices/{sim.device('agent1')}/calls", "Dial",
                    destination={"phoneNumber": "7002"}) == down
    assert sim.post("agent1", "/me", "StartContactCenterSession", channels=["voice"]) == down
    assert sim.cc.inject_call("5551234", "7001") == down
    assert sim.get("agent1", "/me/calls")[0] == 200   # reads still work
    assert sim.get("agent1", "/services", fields="*")[1]["services"][1]["state"] == "Inactive"
    sim.clear()
    sim.cc.set_service_state("voice", "Inactive")
    assert sim.events == []   # no change, no message
    sim.cc.set_service_state("Voice", "Active")
    assert sim.events[0][2]["service"]["state"] == "Active"
    sim.call_op("agent1", call_id, "Hold")
    assert sim.cc.set_service_state("chat", "Active")[0] == 404
    assert sim.cc.set_service_state("voice", "Sleepy")[0] == 400
    sim.ok("agent2", "/me", "EndContactCenterSession")


def test_status_code_mapping():
    table = {0: 200, 7: 200, 1: 400, 2: 400, 10: 400, 11: 400, 3: 403, 5: 403, 6: 404, 18: 409, 19: 409,
             20: 401, 4: 400, 8: 400, 12: 400}
    assert {code: http_status_for(code) for code in table} == table
    assert http_status_for(4, voice_down=True) == 503


def test_model_never_raises(sim):
    sim.login("agent1")
    weird = [None, [], "x", 5, {"operationName": None}, {"operationName": "Dial", "destination": None}]
    for path in ("/me", "/me/channels/voice", f"/me/devices/{sim.device('agent1')}",
                 f"/me/devices/{sim.device('agent1')}/calls", "/me/calls/abc"):
        for body in weird:
            status, payload = sim.rest("agent1", "POST", path, body)
            assert status >= 400 and payload["statusCode"] != 0


# ----------------------------------------------------------------------------- determinism and snapshot

def _scenario(seed: int) -> list:
    s = Sim(seed=seed)
    s.login("agent1", "agent2", "agent3", "supervisor1")
    s.ok("supervisor1", f"/me/devices/{s.device('supervisor1')}", "ListenIn",
         targetDeviceUri=f"{BASE}/api/v2/devices/{s.device('agent2')}")
    s.dial("agent1", "7002", userData={"k": "v"})
    call_id = s.last("agent1")["id"]
    s.clock.advance(2)
    s.call_op("agent2", call_id, "Answer")
    s.call_op("agent1", call_id, "InitiateConference", destination={"phoneNumber": "5550000"})
    s.clock.advance(1.5)
    consult = s.last("agent1")["id"]
    s.call_op("agent1", consult, "CompleteConference")
    s.call_op("agent1", call_id, "StartCallRecording")
    s.cc.inject_call("5551111", "7003", {"Segment": "Gold"})
    s.clock.advance(3)
    s.call_op("agent2", call_id, "Hangup")
    s.cc.set_service_state("voice", "Inactive")
    s.cc.set_service_state("voice", "Active")
    return s.events


def test_determinism():
    first, second = _scenario(7), _scenario(7)
    assert first == second and len(first) > 20
    other = _scenario(8)
    assert len(other) == len(first)
    ids = lambda events: [d["call"]["id"] for u, c, d in events if c == CH_CALLS and "call" in d]
    assert ids(first) != ids(other)
    assert json.dumps(first) != json.dumps(other)


def test_snapshot(sim):
    sim.login("agent1", "agent2")
    call_id = sim.connected()
    snap = sim.cc.snapshot()
    json.dumps(snap)
    assert [a["userName"] for a in snap["agents"]][:2] == ["agent1", "agent2"]
    a1 = snap["agents"][0]
    assert a1["loggedIn"] and a1["userState"]["state"] == "Ready" and a1["calls"] == [call_id]
    [call] = snap["calls"]
    assert call["id"] == call_id
    assert [(p["userName"], p["state"]) for p in call["parties"]] == [("agent1", "Established"),
                                                                      ("agent2", "Established")]
    assert len(snap["devices"]) == 4 and snap["services"][1]["type"] == "Voice"
    assert sim.cc.check_password("agent1", "password") and not sim.cc.check_password("agent1", "nope")
    assert not sim.cc.check_password("ghost", "password")


def test_coach_joins_next_call_hidden_and_unmuted():
    s = Sim(call_recording=False)
    s.login("agent1", "agent2", "supervisor1")
    s.ok("supervisor1", f"/me/devices/{s.device('supervisor1')}", "Coach",
         targetDeviceUri=f"{BASE}/api/v2/devices/{s.device('agent1')}")
    s.clear()
    call_id = s.inbound("agent1", answer=False)
    assert s.calls("supervisor1") == []          # not before the call is established
    s.call_op("agent1", call_id, "Answer")
    sup = s.last("supervisor1")
    assert (sup["state"], sup["mute"], monitor_of(s, call_id, "supervisor1")) == ("Established", "Off", "Coach")
    assert sorted(numbers(sup)) == ["5551234", "7001"]
    agent = s.last("agent1")
    assert agent["supervisorListeningIn"] is True and numbers(agent) == ["5551234"]
    # a transfer to agent2 (scope Call): the supervisor follows the call
    s.clear()
    s.call_op("agent1", call_id, "SingleStepTransfer", destination={"phoneNumber": "7002"})
    assert s.get("supervisor1", f"/me/calls/{call_id}")[1]["call"]["state"] == "Established"
    s.cc.far_end_hangup(call_id)
    assert s.last("supervisor1")["state"] == "Released"


def test_paths_are_normalised_and_device_calls_listed(sim):
    sim.login("agent1", "agent2")
    call_id = sim.connected()
    assert sim.get("agent1", "/me/")[1]["user"]["userName"] == "agent1"
    _, body = sim.get("agent1", f"/me/devices/{sim.device('agent1')}/calls")
    assert body["paths"] == [f"/calls/{call_id}"]
    assert sim.get("agent1", f"/me/devices/{sim.device('agent2')}/calls")[0] == 404
