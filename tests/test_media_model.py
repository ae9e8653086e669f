"""The sans-IO multimedia model (gwsreplay.sim.model.multimedia) against the GWS 8.6 samples.

Channels, IM, chat, email, workitems, open media, workbins, the partial success of
StartContactCenterSession, errors and determinism. ``L<n>`` = a line in
gws-8.6-api-reference.txt; the sample flows are quoted in
/work/shared/gws-reference/media.md. Like test_voice_model.py: a manual clock and a
list-collecting ``emit``, no sockets.
"""

from __future__ import annotations

import json

import pytest
from manual_clock import ManualClock

from gwsreplay.capture.classify import classify_bayeux
from gwsreplay.sim.model.contact_center import ContactCenter
from gwsreplay.sim.model.roster import Roster

READY = {"id": "9430250E-0A1B-421F-B372-F29E69366DED", "displayName": "Ready", "state": "Ready"}
NOT_READY = {"id": "900D55CC-2BB0-431F-8BF9-D3525B383BE6", "displayName": "Not Ready", "state": "NotReady"}
ALL = ["voice", "chat", "email", "workitem", "openmedia", "im"]

# Capability sets of the samples (compared as sets).
CHAT_CHATTING = {"Transfer", "Leave", "Invite", "Consult", "SetInFocus", "SetDisposition", "AttachUserData",
                 "DeleteUserData", "UpdateUserData", "Complete", "SendMessage", "SendStartTypingNotification",
                 "SendStopTypingNotification"}                                           # L13240
EMAIL_PROCESSING = {"Reply", "ReplyAll", "Transfer", "AddComment", "AttachUserData", "UpdateUserData",
                    "DeleteUserData", "SetDisposition", "SetInFocus", "Complete"}        # L16890
EMAIL_COMPOSING = {"Cancel", "Send", "AddComment", "AttachUserData", "UpdateUserData", "DeleteUserData",
                   "SetDisposition", "SetInFocus", "Transfer"}                           # L17389
WORKITEM_PROCESSING = {"Transfer", "AttachUserData", "UpdateUserData", "DeleteUserData", "SetInFocus",
                       "Complete"}                                                       # L35859
IM_TALKING = {"Complete", "AttachUserData", "DeleteUserData", "UpdateUserData", "SendMessage"}   # L10797


class Sim:
    def __init__(self, agents=3, seed=0, multimedia=True, **kwargs):
        self.clock = ManualClock(start=500.0)
        self.events: list[tuple] = []
        self.cc = ContactCenter(Roster.default(agents), scheduler=self.clock, seed=seed,
                                base_url="http://127.0.0.1:8090", multimedia=multimedia,
                                emit=lambda user, channel, data: self.events.append((user, channel, data)),
                                **kwargs)
        self.media = self.cc.media

    def rest(self, user, method, path, body=None, query=None):
        status, payload = self.cc.rest(user, method, path, query or {}, body)
        json.dumps(payload)
        return status, payload

    def get(self, user, path, **query):
        return self.rest(user, "GET", path, None, query)

    def post(self, user, path, op, query=None, **params):
        return self.rest(user, "POST", path, {"operationName": op, **params}, query)

    def ok(self, user, path, op, query=None, **params):
        status, payload = self.post(user, path, op, query, **params)
        assert (status, payload.get("statusCode")) == (200, 0), payload
        return payload

    def login(self, *users, channels=ALL, ready=True):
        for user in users:
            self.ok(user, "/me", "StartContactCenterSession", channels=list(channels))
            if ready:
                self.ok(user, "/me", "Ready")
        self.clear()

    def clear(self):
        self.events.clear()

    def of(self, user, channel=None):
        return [d for u, c, d in self.events if u == user and (channel is None or c == channel)]

    def last(self, user, channel):
        found = self.of(user, channel)
        assert found, f"no {channel} notification for {user}: {self.events}"
        return found[-1]

    def chat(self, user="agent1", message="Hello", nickname="PersonP"):
        status, body = self.media.inject_chat({"nickname": nickname}, user, message)
        assert status == 200, body
        return body["id"]

    def accepted_chat(self, user="agent1"):
        chat_id = self.chat(user)
        self.ok(user, f"/me/chats/{chat_id}", "Accept", nickname="Marat")
        self.clear()
        return chat_id


@pytest.fixture
def sim():
    return Sim()


def caps(resource):
    return set(resource["capabilities"])


# ----------------------------------------------------------------------------- session and channels

def test_start_session_all_channels_emits_channel_states(sim):
    assert sim.ok("agent1", "/me", "StartContactCenterSession", channels=ALL) == {"statusCode": 0}
    channel_msgs = sim.of("agent1", "/v2/me/channels")
    assert [m["channels"][0]["channel"] for m in channel_msgs] == ["chat", "email", "workitem", "openmedia", "im"]
    for message in channel_msgs:
        assert message["messageType"] == "ChannelStateChangeMessageV2"
        assert message["channels"][0]["userState"] == NOT_READY and message["channels"][0]["dndState"] == "Off"
    _, body = sim.get("agent1", "/me/channels")
    names = [c["channel"] for c in body["channels"]]
    assert names == sorted(names) and set(names) == set(ALL)          # chat, email, ..., voice (L36578)
    chat = next(c for c in body["channels"] if c["channel"] == "chat")
    assert chat == {"channel": "chat", "userState": NOT_READY}          # GET shape: no dndState
    im = next(c for c in body["channels"] if c["channel"] == "im")
    assert {"phoneNumber", "switchName", "userActivity"} <= set(im)
    _, body = sim.get("agent1", "/me/channels/email")
    assert body["channels"] == {"channel": "email", "userState": NOT_READY}   # an object (L36694)


def test_partial_success_when_a_service_is_down(sim):
    assert sim.cc.set_service_state("chat", "Inactive") == (200, {"statusCode": 0})
    [(user, channel, data)] = sim.events
    assert (user, channel) == (None, "/notifications/services")
    assert data["service"]["type"] == "Chat" and data["service"]["state"] == "Inactive"
    status, body = sim.post("agent1", "/me", "StartContactCenterSession", channels=["voice", "chat", "email"])
    assert status == 200
    assert body == {"statusCode": 7,
                    "succeeded": [{"channel": "voice", "statusCode": 0}, {"channel": "email", "statusCode": 0}],
                    "failed": [{"channel": "chat", "statusCode": 4,
                                "statusMessage": "Chat service is not available at this time"}]}
    # all channels fail: one statusCode and statusMessage only (L4401)
    status, body = sim.post("agent2", "/me", "StartContactCenterSession", channels=["chat"])
    assert (status, body) == (503, {"statusCode": 4, "statusMessage": "Chat service is not available at this time"})
    # the Interaction Server ("workitem" on the control API) takes every multimedia channel down
    sim.cc.set_service_state("workitem", "Inactive")
    status, body = sim.post("agent3", "/me", "StartContactCenterSession", channels=["voice", "email", "workitem"])
    assert body["statusCode"] == 7 and [f["channel"] for f in body["failed"]] == ["email", "workitem"]
    # voice down, media up: partial success the other way round
    sim.cc.set_service_state("workitem", "Active")
    sim.cc.set_service_state("voice", "Inactive")
    status, body = sim.post("agent2", "/me", "StartContactCenterSession", channels=["voice", "workitem"])
    assert body["succeeded"] == [{"channel": "workitem", "statusCode": 0}]
    assert body["failed"] == [{"channel": "voice", "statusCode": 4,
                               "statusMessage": "Voice service is not available at this time"}]
    sim.cc.set_service_state("voice", "Active")
    status, body = sim.post("agent3", "/me", "StartContactCenterSession", channels=["voice", "fax"])
    assert body["statusCode"] == 7 and body["failed"][0]["channel"] == "fax"


def test_without_multimedia_the_reference_sample_answers():
    s = Sim(multimedia=False)
    status, body = s.post("agent1", "/me", "StartContactCenterSession", channels=["voice", "chat"])
    assert body["failed"] == [{"channel": "multimedia", "statusCode": 3, "statusMessage": "Unsupported feature"}]
    assert s.get("agent1", "/me/chats")[0] == 404


def test_channel_operations(sim):
    sim.login("agent1", ready=False)
    sim.ok("agent1", "/me/channels/chat", "Ready")
    [message] = sim.events
    assert message[:2] == ("agent1", "/v2/me/channels")
    assert message[2] == {"channels": [{"channel": "chat", "dndState": "Off", "userState": READY}],
                          "messageType": "ChannelStateChangeMessageV2"}
    sim.clear()
    sim.ok("agent1", "/me/channels/chat", "Ready")
    assert sim.events == []                                  # already Ready: ignored
    sim.ok("agent1", "/me/channels/chat", "DoNotDisturbOn")
    assert sim.last("agent1", "/v2/me/channels")["channels"][0]["dndState"] == "On"
    status, body = sim.post("agent1", "/me/channels/chat", "DoNotDisturbOn")
    assert (status, body["statusCode"]) == (400, 2)
    sim.ok("agent1", "/me/channels/email", "NotReady", reasonCode="Lunch")
    assert sim.last("agent1", "/v2/me/channels")["channels"][0]["userState"] == {"state": "NotReady",
                                                                                  "reason": "Lunch"}
    sim.clear()
    # all channels at once: the voice device and every media channel (Channels API); the
    # channels already NotReady are left alone (no notification), as voice
    sim.ok("agent1", "/me", "NotReady")
    assert [d["channels"][0]["channel"] for d in sim.of("agent1", "/v2/me/channels")] == ["chat", "email"]
    assert sim.of("agent1", "/v2/me/devices") == []       # the voice device was NotReady already
    sim.clear()
    sim.ok("agent1", "/me", "Ready")
    assert [d["channels"][0]["channel"] for d in sim.of("agent1", "/v2/me/channels")] == \
        ["chat", "email", "workitem", "openmedia", "im"]
    assert sim.of("agent1", "/v2/me/devices")[0]["devices"][0]["userState"]["state"] == "Ready"
    sim.ok("agent1", "/me/channels/workitem", "Offline")
    assert sim.last("agent1", "/v2/me/channels")["channels"][0]["userState"]["state"] == "LoggedOut"
    assert "workitem" not in [c["channel"] for c in sim.get("agent1", "/me/channels")[1]["channels"]]
    assert sim.get("agent1", "/me/channels/fax")[0] == 404
    status, body = sim.post("agent1", "/me/channels/chat", "Dance")
    assert (status, body["statusCode"]) == (400, 2)


def test_media_only_session_leaves_the_phone_alone(sim):
    sim.ok("agent1", "/me", "StartContactCenterSession", channels=["chat"])
    sim.ok("agent1", "/me", "Ready")
    assert sim.cc.agents["agent1"].logged_in is False
    assert sim.of("agent1", "/v2/me/devices") == []
    assert sim.last("agent1", "/v2/me/channels")["channels"][0]["userState"] == READY
    sim.ok("agent1", "/me", "EndContactCenterSession")
    assert sim.get("agent1", "/me/channels")[1]["channels"] == [sim.cc.voice_channel(sim.cc.agents["agent1"])]


# ----------------------------------------------------------------------------- chat

def test_inbound_chat_invitation(sim):
    sim.login("agent1")
    chat_id = sim.chat("agent1", "Hello World")
    [message] = sim.of("agent1", "/v2/me/chats")
    assert message["messageType"] == "ChatStateChangeMessage" and message["notificationType"] == "StatusChange"
    assert "referenceId" not in message                     # nobody asked
    chat = message["chat"]
    assert chat["id"] == chat_id and len(chat_id) == 16
    assert chat["state"] == "Invited" and caps(chat) == {"Accept", "Reject"}
    assert chat["uri"] == f"http://127.0.0.1:8090/api/v2/chats/{chat_id}"   # no /me, as the samples
    assert chat["chatType"] == "Inbound" and chat["participants"][0]["type"] == "Customer"
    _, body = sim.get("agent1", "/me/chats")
    assert body["paths"] == [f"/chats/{chat_id}"]
    _, body = sim.get("agent1", f"/me/chats/{chat_id}")
    assert body["chat"]["state"] == "Invited"


def test_chat_accept_send_complete(sim):
    """Accept -> StatusChange, ParticipantsUpdated, MessageLogUpdated (history); SendMessage; Complete (L11591-12041)."""
    sim.login("agent1")
    chat_id = sim.chat("agent1", "Hello World")
    sim.clear()
    status, body = sim.post("agent1", f"/me/chats/{chat_id}", "Accept")
    assert (status, body) == (400, {"statusCode": 1, "statusMessage": "Parameter 'nickname' is missing"})
    assert sim.ok("agent1", f"/me/chats/{chat_id}", "Accept", nickname="Marat") == {"statusCode": 0}
    first, second, third = sim.of("agent1", "/v2/me/chats")
    assert (first["notificationType"], second["notificationType"]) == ("StatusChange", "ParticipantsUpdated")
    assert first["referenceId"] == second["referenceId"] and "referenceId" not in third
    assert first["chat"]["state"] == "Chatting" and caps(first["chat"]) >= CHAT_CHATTING
    assert [p["type"] for p in second["chat"]["participants"]] == ["Customer", "Agent"]
    assert set(second["chat"]["participants"][1]) == {"nickname", "type", "participantId"}
    assert third["messageType"] == "MessageLogUpdated" and third["notificationType"] == "NewMessages"
    assert third["chatUri"] == first["chat"]["uri"]
    assert [(m["index"], m["type"]) for m in third["messages"]] == [(1, "ParticipantJoined"), (2, "Text"),
                                                                     (3, "ParticipantJoined")]
    assert set(third["messages"][1]) == {"index", "type", "from", "text", "visibility", "timestamp",
                                         "timestampSeconds"}
    sim.clear()

    sim.clock.advance(2.5)
    sim.ok("agent1", f"/me/chats/{chat_id}", "SendStartTypingNotification")
    sim.ok("agent1", f"/me/chats/{chat_id}", "SendMessage", text="How may I help you?", messageType="Greeting")
    typing, text = sim.of("agent1", "/v2/me/chats")
    assert typing["messages"][0]["type"] == "TypingStarted"
    [entry] = text["messages"]
    assert entry["type"] == "Text" and entry["text"] == "How may I help you?" and entry["visibility"] == "All"
    assert entry["from"]["nickname"] == "Marat" and entry["index"] == 5
    assert entry["timestamp"] == "2024-01-01T00:00:02.500+0000" and entry["timestampSeconds"] == 1704067202500
    assert "messageType" not in entry               # only echoed with includeMessageType=true
    sim.clear()
    assert sim.media.customer_message(chat_id, "My order is late") == (200, {"statusCode": 0})
    assert sim.last("agent1", "/v2/me/chats")["messages"][0]["from"]["type"] == "Customer"
    _, body = sim.get("agent1", f"/me/chats/{chat_id}/messages", startIndex="5", count="1")
    assert [m["index"] for m in body["messages"]] == [5]

    sim.clear()
    sim.ok("agent1", f"/me/chats/{chat_id}", "Complete")
    [done] = sim.of("agent1", "/v2/me/chats")
    assert done["notificationType"] == "StatusChange" and done["chat"]["state"] == "Completed"
    # Completed chats carry no capabilities (L11817, L11973, L12042)
    assert "capabilities" not in done["chat"] and done["chat"]["participants"] == []
    assert sim.get("agent1", "/me/chats")[1]["paths"] == []
    assert sim.get("agent1", f"/me/chats/{chat_id}")[0] == 404
    assert sim.media.ended[chat_id].log[-1]["type"] == "ParticipantLeft"        # customer session ended
    assert sim.media.customer_message(chat_id, "hello?")[0] == 404


def test_chat_properties_and_capability_errors(sim):
    sim.login("agent1")
    chat_id = sim.chat("agent1")
    sim.clear()
    status, body = sim.post("agent1", f"/me/chats/{chat_id}", "SendMessage", text="too early")
    # Outside the capabilities: accepted (statusCode 0), then Interaction Server's refusal as an
    # Error notification (L13752), with the request's referenceId.
    assert (status, body) == (200, {"statusCode": 0})     # SendMessage answers without referenceId
    [error] = sim.of("agent1", "/v2/me/chats")
    assert (error["notificationType"], error["errorMessage"], error["referenceId"]) == ("Error", "Operation failed", 1)
    assert error["chat"]["state"] == "Invited" and caps(error["chat"]) == {"Accept", "Reject"}
    # --sync-errors: the old synchronous refusal
    strict = Sim(sync_errors=True)
    strict.login("agent1")
    strict_chat = strict.chat("agent1")
    strict.clear()
    status, body = strict.post("agent1", f"/me/chats/{strict_chat}", "SendMessage", text="too early")
    assert status == 400 and body["statusCode"] == 2 and "Invited" in body["statusMessage"]
    assert strict.of("agent1", "/v2/me/chats") == []
    sim.ok("agent1", f"/me/chats/{chat_id}", "Accept", nickname="Marat")
    sim.clear()
    sim.ok("agent1", f"/me/chats/{chat_id}", "SetDisposition", disposition="IssueResolved")
    sim.ok("agent1", f"/me/chats/{chat_id}", "AddComment", comment="Some chat comment text")
    sim.ok("agent1", f"/me/chats/{chat_id}", "AttachUserData", userData={"key1": "value1", "key2": "value2"})
    sim.ok("agent1", f"/me/chats/{chat_id}", "DeleteUserData", keys=["key2"])
    sim.ok("agent1", f"/me/chats/{chat_id}", "SetInFocus", inFocus=True)       # no notification
    messages = sim.of("agent1", "/v2/me/chats")
    assert [m["notificationType"] for m in messages] == ["PropertiesUpdated"] * 4
    assert [m["referenceId"] for m in messages] == [3, 4, 5, 6]        # per agent; the refused one 1, Accept 2
    assert messages[-1]["chat"]["userData"]["DispositionCode"] == "IssueResolved"
    assert messages[-1]["chat"]["userData"]["key1"] == "value1" and "key2" not in messages[-1]["chat"]["userData"]
    assert messages[-1]["chat"]["comment"] == "Some chat comment text"
    assert sim.post("agent1", f"/me/chats/{chat_id}", "DeleteUserData")[1]["statusCode"] == 1
    assert sim.post("agent1", "/me/chats/NOSUCHCHAT", "SendMessage", text="x")[0] == 404
    assert sim.post("agent2", f"/me/chats/{chat_id}", "SendMessage", text="x")[0] == 404   # not agent2's
    # aliases from the reference: InFocus (older samples)
    sim.ok("agent1", f"/me/chats/{chat_id}", "InFocus", inFocus=False)
    sim.clear()
    sim.ok("agent1", f"/me/chats/{chat_id}", "Leave")
    [left] = sim.of("agent1", "/v2/me/chats")
    assert left["chat"]["state"] == "LeftChat"
    assert caps(left["chat"]) == {"SetInFocus", "Complete", "SetDisposition", "AddComment", "AttachUserData",
                                  "DeleteUserData", "UpdateUserData"}
    sim.ok("agent1", f"/me/chats/{chat_id}", "Complete")
    assert sim.last("agent1", "/v2/me/chats")["chat"]["state"] == "Completed"


def test_chat_reject_routes_to_another_agent(sim):
    sim.login("agent1", "agent2")
    status, body = sim.media.inject_chat({"nickname": "Bob"})
    chat_id = body["id"]
    assert sim.last("agent1", "/v2/me/chats")["chat"]["state"] == "Invited"     # least loaded, roster order
    sim.clear()
    sim.ok("agent1", f"/me/chats/{chat_id}", "Reject")
    [rejected] = sim.of("agent1", "/v2/me/chats")
    assert rejected["chat"]["state"] == "Completed" and rejected["chat"]["participants"] == []
    assert rejected["referenceId"] >= 1
    assert sim.last("agent2", "/v2/me/chats")["chat"]["state"] == "Invited"
    sim.ok("agent2", f"/me/chats/{chat_id}", "Reject")
    assert sim.media.waiting[0].id == chat_id                 # nobody left: it waits in the queue
    sim.ok("agent3", "/me", "StartContactCenterSession", channels=["chat"])
    sim.clear()
    sim.ok("agent3", "/me/channels/chat", "Ready")           # a Ready agent takes it
    assert sim.last("agent3", "/v2/me/chats")["chat"]["id"] == chat_id


def test_chat_transfer_invite_consult(sim):
    sim.login("agent1", "agent2", "agent3")
    chat_id = sim.accepted_chat("agent1")
    agent2_uri = f"http://127.0.0.1:8090/api/v2/users/{sim.cc.agents['agent2'].user_id}"
    # Invite: a conference; the HTTP answer carries the referenceId (L13657)
    body = sim.ok("agent1", f"/me/chats/{chat_id}", "Invite", targetUri=agent2_uri)
    assert isinstance(body["referenceId"], int)
    assert sim.last("agent2", "/v2/me/chats")["chat"]["state"] == "Invited"
    sim.clear()
    sim.ok("agent2", f"/me/chats/{chat_id}", "Accept", nickname="BFriend")
    inviter = sim.of("agent1", "/v2/me/chats")
    assert [m.get("notificationType") for m in inviter] == ["ParticipantsUpdated", "NewMessages"]
    assert caps(inviter[0]["chat"]) >= CHAT_CHATTING | {"SendToAgents", "SendStartTypingToAgentsNotification",
                                                        "SendStopTypingToAgentsNotification"}
    sim.clear()
    sim.ok("agent1", f"/me/chats/{chat_id}", "SendToAgents", text="psst")
    assert sim.last("agent2", "/v2/me/chats")["messages"][0]["visibility"] == "Agents"
    sim.ok("agent1", f"/me/chats/{chat_id}", "SendStopTypingToAgentNotification")     # the table's spelling
    # Leave while in a conference: straight to Completed (L11972)
    sim.clear()
    sim.ok("agent2", f"/me/chats/{chat_id}", "Leave")
    assert sim.last("agent2", "/v2/me/chats")["chat"]["state"] == "Completed"
    assert sim.last("agent1", "/v2/me/chats")["messages"][0]["type"] == "ParticipantLeft"
    # Consult, then CancelConsult before the consultant accepts: no notification to the requester
    sim.ok("agent1", f"/me/chats/{chat_id}", "Consult", targetPath=f"/users/{sim.cc.agents['agent3'].user_id}")
    sim.clear()
    body = sim.ok("agent1", f"/me/chats/{chat_id}", "CancelConsult")
    assert "referenceId" in body and sim.of("agent1") == []
    assert sim.last("agent3", "/v2/me/chats")["chat"]["state"] == "Revoked"
    # Consult accepted, then CancelConsult: an Error notification (L14020)
    sim.ok("agent1", f"/me/chats/{chat_id}", "Consult", targetUri="agent3")
    sim.ok("agent3", f"/me/chats/{chat_id}", "Accept", nickname="Helper")
    assert sim.last("agent3", "/v2/me/chats")["messages"][-1]["visibility"] == "Agents"
    sim.clear()
    body = sim.ok("agent1", f"/me/chats/{chat_id}", "CancelConsult")
    error = sim.last("agent1", "/v2/me/chats")
    assert error["notificationType"] == "Error" and error["referenceId"] == body["referenceId"]
    # Transfer to agent2: the sender is done, agent2 is invited
    sim.ok("agent3", f"/me/chats/{chat_id}", "Leave")
    sim.clear()
    sim.ok("agent1", f"/me/chats/{chat_id}", "Transfer", targetUri=agent2_uri)
    assert sim.last("agent1", "/v2/me/chats")["chat"]["state"] == "Completed"
    assert sim.last("agent2", "/v2/me/chats")["chat"]["state"] == "Invited"
    # still Invited: Transfer is outside agent2's capabilities, refused later (Error notification)
    sim.clear()
    assert sim.post("agent2", f"/me/chats/{chat_id}", "Transfer", targetUri="nobody") == (200, {"statusCode": 0})
    assert sim.last("agent2", "/v2/me/chats")["notificationType"] == "Error"
    sim.ok("agent2", f"/me/chats/{chat_id}", "Accept", nickname="Second")
    assert sim.post("agent2", f"/me/chats/{chat_id}", "Transfer", targetUri="nobody")[0] == 400


# ----------------------------------------------------------------------------- email

def test_email_accept_reply_send_complete(sim):
    """Inbound Accept -> Reply -> Send (outbound) -> Complete (inbound), L16872-17882."""
    sim.login("agent1")
    status, body = sim.media.inject_email("qwerty@example.com", "agent1", "Test_V2", "Body text")
    email_id = body["id"]
    invited = sim.last("agent1", "/v2/me/emails")
    assert invited["messageType"] == "EmailStateChangeMessage"
    assert invited["email"]["state"] == "Invited" and caps(invited["email"]) == {"Accept", "Reject"}
    assert invited["email"]["uri"] == f"http://127.0.0.1:8090/api/v2/email/{email_id}"   # singular (L16890)
    sim.clear()
    sim.ok("agent1", f"/me/emails/{email_id}", "Accept")
    [accepted] = sim.of("agent1", "/v2/me/emails")
    email = accepted["email"]
    assert accepted["notificationType"] == "StatusChange" and accepted["referenceId"] == 1
    assert email["state"] == "Processing" and caps(email) == EMAIL_PROCESSING
    assert email["from"] == "qwerty@example.com" and email["subject"] == "Test_V2"
    assert email["userData"]["ContactId"] == email["contactId"]
    sim.clear()
    assert sim.post("agent1", f"/me/emails/{email_id}", "Reply")[1]["statusCode"] == 1    # queueUri
    sim.ok("agent1", f"/me/emails/{email_id}", "Reply", queueUri="http://127.0.0.1:8090/api/v2/queues/q1")
    [reply] = sim.of("agent1", "/v2/me/emails")
    draft = reply["email"]
    assert draft["state"] == "Composing" and caps(draft) >= EMAIL_COMPOSING
    assert draft["parentId"] == email_id and draft["subject"] == "RE: Test_V2"
    assert draft["to"] == ["qwerty@example.com"] and draft["id"] != email_id
    sim.clear()
    sim.ok("agent1", f"/me/emails/{draft['id']}", "Save", email={"to": ["qwerty@example.com"],
                                                                 "from": draft["from"], "body": "Draft"})
    assert sim.last("agent1", "/v2/me/emails")["notificationType"] == "EmailSaved"
    assert sim.post("agent1", f"/me/emails/{draft['id']}", "Send")[1] == {
        "statusCode": 1, "statusMessage": "Parameter 'queueName' is missing"}
    sim.ok("agent1", f"/me/emails/{draft['id']}", "Send", queueName="Forwarde-mails",
           email={"body": "Feelslikegood.", "subject": "HelloEmail"})
    sent = sim.last("agent1", "/v2/me/emails")["email"]
    assert sent["state"] == "Sent" and sent["capabilities"] == [] and sent["body"] == "Feelslikegood."
    sim.ok("agent1", f"/me/emails/{email_id}", "Complete")
    completed = sim.last("agent1", "/v2/me/emails")["email"]
    assert completed["state"] == "Completed" and completed["capabilities"] == []
    assert sim.get("agent1", "/me/emails")[1]["paths"] == []


def test_email_create_cancel_transfer_reject(sim):
    sim.login("agent1", "agent2")
    assert sim.post("agent1", "/me/emails", "Create")[1]["statusCode"] == 1
    sim.ok("agent1", "/me/emails", "Create", queueUri="q", userData={"Campaign": "spring"})
    draft = sim.last("agent1", "/v2/me/emails")["email"]
    assert draft["state"] == "Composing" and draft["userData"] == {"Campaign": "spring"}
    sim.ok("agent1", f"/me/emails/{draft['id']}", "Cancel")
    assert sim.last("agent1", "/v2/me/emails")["email"]["state"] == "Canceled"
    _, body = sim.media.inject_email({"address": "a@b.c"}, "agent1", "Hi")
    email_id = body["id"]
    sim.ok("agent1", f"/me/emails/{email_id}", "Accept")
    sim.clear()
    sim.ok("agent1", f"/me/emails/{email_id}", "Transfer", userUri=f"/users/{sim.cc.agents['agent2'].user_id}")
    assert sim.last("agent1", "/v2/me/emails")["email"]["state"] == "Completed"
    assert sim.last("agent2", "/v2/me/emails")["email"]["state"] == "Invited"
    sim.clear()
    sim.ok("agent2", f"/me/emails/{email_id}", "Reject")      # back to routing: agent1 is Ready
    assert sim.last("agent2", "/v2/me/emails")["email"]["state"] == "Completed"
    assert sim.last("agent1", "/v2/me/emails")["email"]["state"] == "Invited"
    assert sim.media.inject_email("not-an-address")[0] == 400


# ----------------------------------------------------------------------------- workitems and open media

def test_workitem_accept_complete_with_reference_ids(sim):
    """Invitation -> Accept -> Complete (L36497, L35839-36087)."""
    sim.login("agent1")
    _, body = sim.media.inject_workitem("agent1", {"RStrategyName": "Workitem"})
    item_id = body["id"]
    invited = sim.last("agent1", "/v2/me/workitems")
    assert set(invited) == {"workitem", "notificationType", "messageType"}
    assert set(invited["workitem"]) == {"userData", "receivedDate", "uri", "capabilities", "state", "id",
                                        "workitemType"}
    assert invited["workitem"]["uri"] == f"http://127.0.0.1:8090/api/v2/workitems/{item_id}"
    assert caps(invited["workitem"]) == {"Accept", "Reject"}
    body = sim.ok("agent1", f"/me/workitems/{item_id}", "Accept")
    accepted = sim.last("agent1", "/v2/me/workitems")
    assert body == {"statusCode": 0, "referenceId": accepted["referenceId"]}          # L35848
    assert accepted["workitem"]["state"] == "Processing" and caps(accepted["workitem"]) == WORKITEM_PROCESSING
    body = sim.ok("agent1", f"/me/workitems/{item_id}", "UpdateUserData", userData={"UserData1": "DATA1"})
    updated = sim.last("agent1", "/v2/me/workitems")
    assert updated["notificationType"] == "PropertiesUpdated" and updated["referenceId"] == body["referenceId"]
    body = sim.ok("agent1", f"/me/workitems/{item_id}", "Complete")
    completed = sim.last("agent1", "/v2/me/workitems")
    assert completed["workitem"]["state"] == "Completed" and completed["workitem"]["capabilities"] == []
    assert completed["referenceId"] == body["referenceId"]
    assert sim.post("agent1", f"/me/workitems/{item_id}", "Complete")[0] == 404


def test_workitem_transfer_create_and_open_media(sim):
    sim.login("agent1", "agent2")
    _, body = sim.media.inject_workitem("agent1")
    item_id = body["id"]
    sim.ok("agent1", f"/me/workitems/{item_id}", "Accept")
    sim.clear()
    sim.ok("agent1", f"/me/workitems/{item_id}", "Transfer", targetUri=f"/users/{sim.cc.agents['agent2'].user_id}")
    assert sim.last("agent1", "/v2/me/workitems")["workitem"]["state"] == "Completed"
    target = sim.last("agent2", "/v2/me/workitems")
    assert target["workitem"]["state"] == "Invited" and "referenceId" not in target     # (media.md)
    body = sim.ok("agent1", "/me/workitems", "Create", queueUri="q")
    created = sim.last("agent1", "/v2/me/workitems")
    assert created["workitem"]["state"] == "Processing" and created["referenceId"] == body["referenceId"]
    # open media: /me/openmedia/{mediaType}/{id}, uri with the plural media type (L24237)
    _, body = sim.media.inject_workitem("agent1", media_type="promotion")
    om_id = body["id"]
    invited = sim.last("agent1", "/v2/me/openmedia")
    assert invited["messageType"] == "OpenmediaStateChangeMessage"
    assert invited["openmedia"]["uri"].endswith(f"/api/v2/openmedia/promotions/{om_id}")
    assert invited["openmedia"]["mediaType"] == "promotion" and invited["openmedia"]["openmediaType"] == "Inbound"
    sim.ok("agent1", f"/me/openmedia/promotion/{om_id}", "Accept")
    sim.ok("agent1", f"/me/openmedia/promotion/{om_id}", "AddContent")
    assert sim.last("agent1", "/v2/me/openmedia")["openmedia"]["ucsContent"] == "Available"
    assert sim.get("agent1", "/me/openmedia/promotion")[1]["paths"] == [f"/openmedia/promotion/{om_id}"]
    sim.ok("agent1", f"/me/openmedia/promotion/{om_id}", "Complete")


# ----------------------------------------------------------------------------- workbins

def test_workbins(sim):
    sim.login("agent1")
    _, body = sim.get("agent1", "/me/workbins")
    assert len(body["paths"]) == 4 and body["uris"][0].endswith(body["paths"][0])
    _, body = sim.get("agent1", "/me/workbins", fields="*")
    wb = next(w for w in body["workbins"] if w["workbinName"] == "workitem-in-progress-wb")
    assert set(wb) == {"workbinName", "id", "displayName", "uri", "type"} and wb["type"] == "Agent"
    assert len(sim.get("agent1", "/workbins")[1]["paths"]) == 12          # everybody's
    sim.clear()
    body = sim.ok("agent1", f"/me/workbins/{wb['id']}", "Subscribe")
    assert sim.of("agent1", "/v2/me/workbins") == [{"stateResource": "Subscribed", "id": wb["id"],
                                                    "messageType": "WorkbinSubscriptionStateChangeMessage",
                                                    "referenceId": body["referenceId"]}]
    _, item = sim.media.inject_workitem("agent1")
    sim.ok("agent1", f"/me/workitems/{item['id']}", "Accept")
    sim.clear()
    body = sim.ok("agent1", f"/workbins/{wb['id']}", "AddWorkitem", uri=f"http://x/api/v2/workitems/{item['id']}")
    parked = sim.last("agent1", "/v2/me/workitems")
    assert parked["workitem"]["state"] == "InWorkbin" and parked["workitem"]["capabilities"] == []
    assert parked["referenceId"] == body["referenceId"]
    added = sim.last("agent1", "/v2/me/workbins")
    assert added["messageType"] == "WorkbinStateChangeMessage" and added["action"] == "ItemAdded"
    assert added["id"] == wb["id"] and added["workitemStateResourceV2"]["id"] == item["id"]
    _, content = sim.get("agent1", f"/me/workbins/{wb['id']}/workitem", fields="*")
    assert [w["id"] for w in content["workitem"]] == [item["id"]]
    _, content = sim.get("agent1", f"/me/workbins/{wb['id']}", subresources="*")
    assert content["workbin"]["workitems"][0]["state"] == "InWorkbin"
    assert sim.get("agent1", "/me/workitems")[1]["paths"] == []
    sim.ok("agent1", f"/me/workbins/{wb['id']}", "PullWorkitem", id=item["id"])
    assert sim.last("agent1", "/v2/me/workitems")["workitem"]["state"] == "Processing"
    assert sim.last("agent1", "/v2/me/workbins")["action"] == "ItemRemoved"
    # several at once: referenceIds map
    ids = ",".join(w["id"] for w in body_workbins(sim))
    body = sim.ok("agent1", "/me/workbins", "Unsubscribe", query={"workbinIds": ids})
    assert set(body["referenceIds"]) == set(ids.split(","))
    assert sim.get("agent1", "/me/workbins/nope")[0] == 404


def body_workbins(sim):
    return sim.get("agent1", "/me/workbins", fields="*")[1]["workbins"][:2]


# ----------------------------------------------------------------------------- IM

def test_im_session_between_two_agents(sim):
    """InitiateIMSession -> SendMessage -> Complete, both sides (L10774-11145)."""
    sim.login("agent1", "agent2")
    assert sim.ok("agent1", "/me/im-sessions", "InitiateIMSession", destination={"phoneNumber": "7002"},
                  userData={"favColor": "blue"}) == {"statusCode": 0}
    [mine] = sim.of("agent1", "/v2/me/im-sessions")
    theirs = sim.of("agent2", "/v2/me/im-sessions")
    session = mine["imSession"]
    assert mine["messageType"] == "IMSessionStateChangeMessage" and mine["notificationType"] == "StatusChange"
    assert session["state"] == "Talking" and caps(session) == IM_TALKING
    assert session["userData"] == {"favColor": "blue"}
    assert session["path"] == f"/im-sessions/{session['id']}" and len(session["id"]) == 32
    assert session["uri"] == f"http://127.0.0.1:8090/api/v2/im-sessions/{session['id']}"
    assert session["participants"] == [{"digits": "7002", "e164Number": "", "formattedPhoneNumber": "7002",
                                         "phoneNumber": "7002"}]
    assert [m["imSession"]["state"] for m in theirs] == ["Alerting", "Talking"]
    assert theirs[-1]["imSession"]["participants"][0]["phoneNumber"] == "7001"
    status, body = sim.post("agent1", "/me/im-sessions", "InitiateIMSession", destination={"phoneNumber": "7003"})
    assert (status, body) == (400, {"statusCode": 2, "statusMessage": "Invalid state"})    # one at a time
    sim.clear()
    sim.ok("agent2", f"/me/im-sessions/{session['id']}", "SendMessage", text="Hello! This is my first message.",
           destination={"phoneNumber": "7001"})
    expected = {"messageType": "IMLogUpdateMessage", "notificationType": "NewMessage",
                "imSessionPath": f"/im-sessions/{session['id']}", "message": "Hello! This is my first message."}
    assert sim.of("agent1", "/v2/me/im-sessions") == [expected] == sim.of("agent2", "/v2/me/im-sessions")
    sim.clear()
    sim.ok("agent1", f"/me/im-sessions/{session['id']}", "AttachUserData", userData={"User Data 1": "important data"})
    sim.ok("agent1", f"/me/im-sessions/{session['id']}", "DeleteUserData", key="favColor")
    changed = sim.of("agent2", "/v2/me/im-sessions")
    assert [m["notificationType"] for m in changed] == ["AttachedDataChanged"] * 2
    assert changed[-1]["imSession"]["userData"] == {"User Data 1": "important data"}
    _, body = sim.get("agent2", "/me/im-sessions", fields="*")
    assert body["imSessions"][0]["id"] == session["id"]
    sim.clear()
    sim.ok("agent1", f"/me/im-sessions/{session['id']}", "Complete")
    assert [m["imSession"]["state"] for _, _, m in sim.events] == ["Completed", "Completed"]
    assert sim.of("agent2")[0]["imSession"]["capabilities"] == []
    assert sim.post("agent2", f"/me/im-sessions/{session['id']}", "SendMessage", text="x")[0] == 404
    assert sim.post("agent1", "/me/im-sessions", "InitiateIMSession", destination={"phoneNumber": "5551234"}
                    )[1]["statusCode"] == 2


# ----------------------------------------------------------------------------- services, errors, determinism

def test_service_down_refuses_operations_but_not_reads(sim):
    sim.login("agent1")
    chat_id = sim.accepted_chat("agent1")
    sim.cc.set_service_state("chat", "Inactive")
    assert sim.post("agent1", f"/me/chats/{chat_id}", "SendMessage", text="x") == (
        503, {"statusCode": 4, "statusMessage": "Chat service is not available at this time"})
    assert sim.get("agent1", f"/me/chats/{chat_id}")[0] == 200
    assert sim.media.inject_chat({"nickname": "X"})[0] == 503
    sim.cc.set_service_state("chat", "Active")
    sim.ok("agent1", f"/me/chats/{chat_id}", "SendMessage", text="x")
    names = {s["name"] for s in sim.get("agent1", "/services", fields="*")[1]["services"]}
    assert {"InteractionServer", "ChatServer", "UCS"} <= names


def test_control_api_validation(sim):
    sim.login("agent1", channels=["voice"])
    assert sim.media.inject_chat(None)[1]["statusCode"] == 1
    assert sim.media.inject_chat({"nickname": "Bob"}, "agent1")[1]["statusCode"] == 2    # not on chat
    assert sim.media.inject_chat({"nickname": "Bob"}, "agent99")[0] == 404
    assert sim.media.inject_chat({"nickname": "Bob"}, 5)[0] == 400
    assert sim.media.inject_chat({"nickname": "Bob"}, None, user_data=[1])[0] == 400
    assert sim.media.inject_workitem(None, media_type="bad type")[0] == 400
    assert sim.media.customer_message("nope", "x")[0] == 404
    status, body = sim.media.inject_chat({"nickname": "Bob"})          # nobody Ready: queued
    assert status == 200 and sim.media.waiting[0].id == body["id"]
    assert sim.media.customer_message(body["id"], None)[1]["statusCode"] == 1


def test_model_never_raises(sim):
    sim.login("agent1")
    chat_id = sim.chat("agent1")
    weird = [None, [], "x", 5, {"operationName": None}, {"operationName": 7}, {"operationName": "Accept",
             "nickname": ["x"]}, {"operationName": "Transfer", "targetUri": {"a": 1}},
             {"operationName": "SendMessage", "text": None}, {"operationName": "Subscribe"}]
    paths = ["/me/chats/" + chat_id, "/me/emails", "/me/emails/x", "/me/workitems", "/me/workitems/x",
             "/me/openmedia/promotion", "/me/im-sessions", "/me/im-sessions/x", "/me/workbins",
             "/workbins/x", "/me/channels/chat", "/me/channels/fax"]
    for path in paths:
        for body in weird:
            sim.clear()
            status, payload = sim.rest("agent1", "POST", path, body)
            if status == 200:
                # an operation outside the chat's capabilities is passed on unchecked: statusCode 0,
                # then Interaction Server's Error notification (docs/media-model.md)
                assert path == "/me/chats/" + chat_id and payload["statusCode"] == 0, (path, body, payload)
                assert [m["notificationType"] for m in sim.of("agent1", "/v2/me/chats")] == ["Error"], body
                continue
            assert status >= 400 and payload["statusCode"] != 0, (path, body, payload)


def _scripted(seed, multimedia=True):
    s = Sim(seed=seed, multimedia=multimedia)
    s.login("agent1", "agent2", channels=ALL if multimedia else ["voice"])
    if multimedia:
        chat_id = s.chat("agent1")
        s.ok("agent1", f"/me/chats/{chat_id}", "Accept", nickname="A")
        s.ok("agent1", f"/me/chats/{chat_id}", "SendMessage", text="hi")
        s.ok("agent1", "/me/im-sessions", "InitiateIMSession", destination={"phoneNumber": "7002"})
        _, body = s.media.inject_email("c@d.e", None, "s")
        _, body = s.media.inject_workitem(None)
    s.cc.inject_call("5551234", "7001")
    return s


def test_determinism():
    a, b, c = _scripted(0), _scripted(0), _scripted(1)
    assert a.events == b.events
    assert json.dumps(a.events) != json.dumps(c.events)
    # multimedia has its own id stream: turning it on changes no voice id (IM sessions are
    # SIP Server calls, so they do take call ids, as GWS)
    voice_only = _scripted(0, multimedia=False)
    with_media = Sim(seed=0)
    with_media.login("agent1", "agent2", channels=["voice"])
    with_media.cc.inject_call("5551234", "7001")
    assert list(voice_only.cc.calls) == list(with_media.cc.calls)
    assert voice_only.cc.agents["agent1"].device_id == a.cc.agents["agent1"].device_id
    assert voice_only.cc.voice_environment_id == a.cc.voice_environment_id


def test_every_notification_is_classified(sim):
    """The capture's classifier finds resource type, id and state in every message we emit (issue 6)."""
    sim.login("agent1", "agent2")
    chat_id = sim.chat("agent1")
    sim.ok("agent1", f"/me/chats/{chat_id}", "Accept", nickname="A")
    sim.ok("agent1", f"/me/chats/{chat_id}", "SendMessage", text="hi")
    _, body = sim.media.inject_email("c@d.e", "agent1", "s")
    sim.ok("agent1", f"/me/emails/{body['id']}", "Accept")
    _, body = sim.media.inject_workitem("agent1")
    sim.ok("agent1", f"/me/workitems/{body['id']}", "Accept")
    _, body = sim.media.inject_workitem("agent1", media_type="promotion")
    sim.ok("agent1", "/me/im-sessions", "InitiateIMSession", destination={"phoneNumber": "7002"})
    wb = sim.media.workbins_of["agent1"][0].id
    sim.ok("agent1", f"/me/workbins/{wb}", "Subscribe")
    sim.ok("agent1", "/me/channels/chat", "NotReady")
    expected_types = {"/v2/me/chats": "chat", "/v2/me/emails": "email", "/v2/me/workitems": "workitem",
                      "/v2/me/openmedia": "openmedia", "/v2/me/im-sessions": "im-session",
                      "/v2/me/workbins": "workbin", "/v2/me/channels": "channel"}
    seen = set()
    for user, channel, data in sim.events:
        if channel not in expected_types:
            continue
        c = classify_bayeux({"channel": channel, "data": data})
        assert c.resource_type == expected_types[channel], (channel, data)
        assert c.resource_id, (channel, data)
        if data["messageType"] not in ("MessageLogUpdated", "IMLogUpdateMessage"):
            assert c.resource_state, (channel, data)
        seen.add(channel)
    assert seen == set(expected_types)
