"""Classification of the non-voice traffic: IM, chat, email, workitems, open media, workbins,
the Channels API, Digital User Events, and the simulator's control API.

The notifications below are the GWS 8.6 reference's samples, verbatim except where noted
(``L<n>`` = line of gws-8.6-api-reference.txt, quoted in media.md). When the reference
text is present (../shared/gws-reference/), every parseable notification sample of the
multimedia and channel sections is classified as well. The SQL the writer classifies with
(gwsreplay.capture/bayeux_sql.py) is checked against the Python rules on the same messages,
including the workbin item columns before the capture schema has them.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gwsreplay.capture import bayeux_sql, schema
from gwsreplay.capture.classify import classify_bayeux, classify_http
from gwsreplay.capture import sqlfiles
from gwsreplay.core import notifications
from gwsreplay.core.bayeux_classify import rule_for
from gwsreplay.core.notifications import ITEM_FIELDS
from gwsreplay.core.sqltext import sql_list, sql_literal
from gwsreplay.core.uris import id_from_uri, id_from_uri_sql

REFERENCE = Path(os.environ.get("GWS_REFERENCE", "/work/shared/gws-reference"))

# ----------------------------------------------------------------------------- samples

IM_TALKING = {  # L10797
    "messageType": "IMSessionStateChangeMessage",
    "notificationType": "StatusChange",
    "imSession": {
        "state": "Talking",
        "userData": {"favColor": "blue"},
        "id": "12398123091823091283012",
        "uri": "http://hpe-voicevm-64.genesyslab.com:8090/api/v2/im-sessions/00S4UMMDT8AHN1VL807GK2LAES000002",
        "path": "/im-sessions/12398123091823091283012",
        "participants": [{"digits": "3002", "e164Number": "3002", "formattedPhoneNumber": "3002",
                          "phoneNumber": "3002"}],
        "capabilities": ["Complete", "AttachUserData", "DeleteUserData", "UpdateUserData", "SendMessage"],
    },
}
IM_OVERVIEW = {  # L10640: the overview example, with its leading space in the state
    "messageType": "IMSessionStateChangeMessage", "notificationType": "StatusChange",
    "imSession": {"state": " Talking", "id": "00S4UMMDT8AHN1VL807GK2LAES000002",
                  "path": "/im-sessions/00S4UMMDT8AHN1VL807GK2LAES000002"},
}
IM_LOG = {  # L10878
    "messageType": "IMLogUpdateMessage",
    "notificationType": "NewMessage",
    "imSessionPath": "/im-sessions/12398123091823091283012",
    "message": "Hello! This is my first message.",
}
CHAT_CHATTING = {  # L11614
    "messageType": "ChatStateChangeMessage",
    "referenceId": 13,
    "notificationType": "StatusChange",
    "chat": {
        "state": "Chatting",
        "capabilities": ["Transfer", "Complete", "Leave", "InFocus", "SendMessage", "SendStartTypingNotification",
                         "SendStopTypingNotification"],
        "id": "0000Na9B26EF002X",
        "uri": "http://localhost:8080/api/v2/chats/0000Na9B26EF002X",
        "participants": [],
    },
}
CHAT_LOG = {  # L11880
    "messages": [{"index": 3, "from": {"nickname": "Kristi Sippola", "participantId": "00048aA4MHYA003H",
                                       "type": "Agent"},
                  "messageType": "Greeting", "text": "Hello, how can I help you?", "type": "Message",
                  "timestamp": "2017-05-09T11:07:48.000+0000", "timestampSeconds": 1494328068000,
                  "visibility": "All"}],
    "notificationType": "NewMessages",
    "messageType": "MessageLogUpdated",
    "chatUri": "http://localhost:8080/api/v2/chats/0000Wa9CAM6W00FN",
}
CHAT_LEFT = {  # L11951 (the source has a trailing comma after "uri")
    "messageType": "ChatStateChangeMessage",
    "referenceId": 17,
    "notificationType": "StatusChange",
    "chat": {"state": "LeftChat", "capabilities": ["Transfer", "Complete", "Leave", "InFocus"],
             "id": "0000Na9B26EF002X", "uri": "http://localhost:8080/api/v2/chats/0000Na9B26EF002X"},
}
CHAT_REVOKED = {  # L14953
    "chat": {"receivedDate": "2014-05-0511:09:45.000-0700", "participants": [], "capabilities": [],
             "uri": "http://10.10.15.212:9090/api/v2/chats/0001Da9PFC93000S", "state": "Revoked",
             "id": "0001Da9PFC93000S"},
    "notificationType": "StatusChange",
    "messageType": "ChatStateChangeMessage",
}
EMAIL_PROCESSING = {  # L16890 (userData shortened)
    "referenceId": 2,
    "notificationType": "StatusChange",
    "messageType": "EmailStateChangeMessage",
    "email": {
        "userData": {"Mailbox": "GWS@gplus-w2k3-gf80.emea.int.genesyslab.com", "ContactId": "0000Wa9CAM6W018X",
                     "RRequestedSkills": None, "Subject": "Test_V2"},
        "from": "qwerty@hpe-voicevm-34-23.genesyslab.com",
        "contactId": "0000Wa9CAM6W018X",
        "capabilities": ["Reply", "ReplyAll", "Transfer", "AddComment", "AttachUserData", "UpdateUserData",
                         "DeleteUserData", "SetDisposition", "SetInFocus", "Complete"],
        "uri": "http://localhost:8080/api/v2/email/00012a9HEEG0325N",
        "to": ["GWS@gplus-w2k3-gf80"],
        "state": "Processing",
        "revelantResponseTemplateGroups": [],
        "id": "00012a9HEEG0325N",
        "subject": "Test_V2",
    },
}
EMAIL_REPLY = {  # L17389
    "referenceId": 3,
    "notificationType": "StatusChange",
    "messageType": "EmailStateChangeMessage",
    "email": {
        "userData": {"ContactId": "0000Wa9CAM6W018X"},
        "from": "GWS@gplus-w2k3-gf80",
        "contactId": "0000Wa9CAM6W018X",
        "capabilities": ["Cancel", "Send", "AddComment", "AttachUserData", "UpdateUserData", "DeleteUserData",
                         "SetDisposition", "SetInFocus", "Transfer"],
        "uri": "http://localhost:8080/api/v2/email/01QG9WAK37H3802A",
        "to": ["qwerty@hpe-voicevm-34-23.genesyslab.com"],
        "state": "Composing",
        "parentId": "00012a9HEEG032YW",
        "id": "01QG9WAK37H3802A",
        "subject": "RE: Test_V2",
    },
}
OPENMEDIA_PROCESSING = {  # L24237
    "openmedia": {
        "userData": {},
        "receivedDate": "2014-03-26 16:02:22.000+0200",
        "uri": "http://localhost:8080/api/v2/openmedia/promotions/03W07R2K4VAYT010",
        "capabilities": ["Transfer", "AttachUserData", "UpdateUserData", "DeleteUserData", "SetInFocus", "Complete"],
        "state": "Processing",
        "mediaType": "promotion",
        "openmediaType": "Inbound",
        "id": "03W07R2K4VAYT010",
    },
    "referenceId": 6,
    "notificationType": "StatusChange",
    "messageType": "OpenmediaStateChangeMessage",
}
WORKITEM_INVITED = {  # L36497 (userData shortened)
    "workitem": {
        "userData": {"RTargetAgentSelected": "GWS1", "RRequestedSkills": None, "CustomerSegment": "default"},
        "receivedDate": "2014-03-27 12:01:03.000+0200",
        "uri": "http://localhost:8080/api/v2/workitems/0001MaAHMA9K000J",
        "capabilities": ["Accept", "Reject"],
        "state": "Invited",
        "workitemType": "Inbound",
        "id": "0001MaAHMA9K000J",
    },
    "notificationType": "StatusChange",
    "messageType": "WorkitemStateChangeMessage",
}
WORKBIN_SUBSCRIBED = {  # L33601
    "stateResource": "Subscribed",
    "id": "aee812a5-7396-4dd9-b180-230f1c1fb085",
    "messageType": "WorkbinSubscriptionStateChangeMessage",
}
WORKBIN_ITEM_ADDED = {  # L34738 (userData shortened)
    "action": "ItemAdded",
    "agentGroup": "MyAgentGroup",
    "chatStateResourceV2": {"capabilities": [], "chatType": "Inbound", "id": "0001BaBFVPR20035", "participants": [],
                            "receivedDate": "2016-04-08 15:05:57.000+0300",
                            "userData": {"ChatServerAppName": "esv_chat_srv", "RRequestedSkills": None,
                                         "Subject": "TestChatCustomer"}},
    "id": "6c715fa9-de16-4d23-b07c-cbcb1caf3e07",
    "messageType": "WorkbinStateChangeMessage",
}
WORKBIN_STATS = {  # L35310
    "workbinStats": {"abc2ad1b26ea4e9b8dd907eabe1672e4": {"MaxMovedToQueueAt": "2017-09-12T18:05:40Z",
                                                          "MinMovedToQueueAt": "2017-09-12T18:05:40Z",
                                                          "NumberOfInteractions": 1}},
    "id": "6c715fa9-de16-4d23-b07c-cbcb1caf3e07",
    "workbinType": "Agent",
    "messageType": "WorkbinStatsMessage",
    "referenceId": 7,
}
CHANNEL_READY = {  # L44962 (a whole Bayeux message)
    "channel": "/v2/me/channels",
    "data": {"channels": [{"channel": "chat", "dndState": "Off",
                           "userState": {"displayName": "Ready", "id": "9430250E-0A1B-421F-B372-F29E69366DED",
                                         "state": "Ready"}}],
             "messageType": "ChannelStateChangeMessageV2"},
}
CHANNEL_OFFLINE = {  # L45212
    "channel": "/v2/me/channels",
    "data": {"channels": [{"channel": "chat", "userState": {"displayName": "Offline",
                                                            "id": "0F7F5003-EF26-4D13-A6Ef-D0C7EC819BEB",
                                                            "state": "LoggedOut"}}],
             "messageType": "ChannelStateChangeMessageV2"},
}
MM_EVENT = {  # L16460
    "topic": "topic_0", "content": {"key": "value"}, "actorType": "Agent", "actorId": "a1",
    "messageType": "MultimediaEventNotificationMessage",
}
MM_SUBSCRIBED = {  # L16528
    "stateResource": "Subscribed", "referenceId": 7, "topics": ["topic_0", "topic_1"],
    "messageType": "MultimediaEventSubscriptionStateChangeMessage",
}
TWITTER_FAILED = {  # L31712
    "messageType": "TwitterOperationResponse", "referenceId": 2, "success": "false",
    "errorMessage": "Twitter user not found",
}

TOPICS = {"IMSession": "/v2/me/im-sessions", "IMLog": "/v2/me/im-sessions", "Chat": "/v2/me/chats",
          "MessageLog": "/v2/me/chats", "Email": "/v2/me/emails", "Openmedia": "/v2/me/openmedia",
          "Workitem": "/v2/me/workitems", "Workbin": "/v2/me/workbins", "Multimedia": "/v2/me/multimediaevents",
          "Twitter": "/v2/me/twitter"}


def wrap(data: dict) -> dict:
    """An operation sample's bare payload as the Bayeux message that carries it."""
    if "channel" in data and "data" in data:
        return data
    mt = data.get("messageType", "")
    topic = next((t for prefix, t in TOPICS.items() if mt.startswith(prefix)), "/v2/me/x")
    return {"channel": topic, "data": data}


# (sample, message_type, resource_type, resource_id, resource_state, other fields)
SAMPLES = [
    (IM_TALKING, "IMSessionStateChangeMessage", "im-session", "12398123091823091283012", "Talking", {}),
    (IM_OVERVIEW, "IMSessionStateChangeMessage", "im-session", "00S4UMMDT8AHN1VL807GK2LAES000002", " Talking", {}),
    (IM_LOG, "IMLogUpdateMessage", "im-session", "12398123091823091283012", None, {}),
    (CHAT_CHATTING, "ChatStateChangeMessage", "chat", "0000Na9B26EF002X", "Chatting", {"reference_id": "13"}),
    (CHAT_LOG, "MessageLogUpdated", "chat", "0000Wa9CAM6W00FN", None, {"notification_type": "NewMessages"}),
    (CHAT_LEFT, "ChatStateChangeMessage", "chat", "0000Na9B26EF002X", "LeftChat", {"reference_id": "17"}),
    (CHAT_REVOKED, "ChatStateChangeMessage", "chat", "0001Da9PFC93000S", "Revoked", {}),
    (EMAIL_PROCESSING, "EmailStateChangeMessage", "email", "00012a9HEEG0325N", "Processing", {"reference_id": "2"}),
    (EMAIL_REPLY, "EmailStateChangeMessage", "email", "01QG9WAK37H3802A", "Composing", {"reference_id": "3"}),
    (OPENMEDIA_PROCESSING, "OpenmediaStateChangeMessage", "openmedia", "03W07R2K4VAYT010", "Processing",
     {"reference_id": "6"}),
    (WORKITEM_INVITED, "WorkitemStateChangeMessage", "workitem", "0001MaAHMA9K000J", "Invited", {}),
    (WORKBIN_SUBSCRIBED, "WorkbinSubscriptionStateChangeMessage", "workbin", "aee812a5-7396-4dd9-b180-230f1c1fb085",
     "Subscribed", {"item_id": None}),
    (WORKBIN_ITEM_ADDED, "WorkbinStateChangeMessage", "workbin", "6c715fa9-de16-4d23-b07c-cbcb1caf3e07", "ItemAdded",
     {"item_type": "chat", "item_id": "0001BaBFVPR20035", "item_state": None}),
    (WORKBIN_STATS, "WorkbinStatsMessage", "workbin", "6c715fa9-de16-4d23-b07c-cbcb1caf3e07", None,
     {"reference_id": "7"}),
    (CHANNEL_READY, "ChannelStateChangeMessageV2", "channel", "chat", "Ready", {"user_state": "Ready"}),
    (CHANNEL_OFFLINE, "ChannelStateChangeMessageV2", "channel", "chat", "LoggedOut", {"user_state": "LoggedOut"}),
    (MM_EVENT, "MultimediaEventNotificationMessage", "multimediaevent", "topic_0", None, {}),
    (MM_SUBSCRIBED, "MultimediaEventSubscriptionStateChangeMessage", "multimediaevent", None, "Subscribed",
     {"reference_id": "7"}),
    (TWITTER_FAILED, "TwitterOperationResponse", "tweet", None, None, {"error_message": "Twitter user not found"}),
]


@pytest.mark.parametrize("sample,mt,rtype,rid,state,extra", SAMPLES,
                         ids=[f"{s[1]}-{s[4]}" for s in SAMPLES])
def test_reference_samples(sample, mt, rtype, rid, state, extra):
    c = classify_bayeux(wrap(sample))
    assert (c.message_type, c.resource_type, c.resource_id, c.resource_state) == (mt, rtype, rid, state)
    for field, value in extra.items():
        assert getattr(c, field) == value, field


def test_simulator_shapes():
    """What the simulator sends where the reference has no sample (media-model.md)."""
    item = {"workbinAgentId": "agent3", "workbinUserId": "u3", "messageType": "WorkbinStateChangeMessage",
            "emailStateResourceV2": {"userData": {}, "uri": "http://h/api/v2/email/0003Ha9R7UU40007",
                                     "state": "InWorkbin", "id": "0003Ha9R7UU40007"},
            "action": "ItemRemoved", "id": "wb-1"}
    c = classify_bayeux({"channel": "/v2/me/workbins", "data": item})
    assert (c.resource_type, c.resource_id, c.resource_state) == ("workbin", "wb-1", "ItemRemoved")
    assert (c.item_type, c.item_id, c.item_state) == ("email", "0003Ha9R7UU40007", "InWorkbin")
    # an item known by its uri only; open media items are "openmediaStateResourceV2"
    c = classify_bayeux({"channel": "/v2/me/workbins", "data": {
        "messageType": "WorkbinStateChangeMessage", "action": "ItemAdded", "id": "wb-2",
        "openmediaStateResourceV2": {"uri": "http://h/api/v2/openmedia/promotions/0003Ha9R7UU4000X"}}})
    assert (c.item_type, c.item_id, c.item_state) == ("openmedia", "0003Ha9R7UU4000X", None)
    # chat notificationType Error (a CancelConsult after the consultant joined, L14020)
    c = classify_bayeux({"channel": "/v2/me/chats", "data": {
        "messageType": "ChatStateChangeMessage", "referenceId": 9, "notificationType": "Error",
        "errorMessage": "Request failed", "chat": {"state": "Chatting", "id": "0003Ha9R7UU40001"}}})
    assert (c.notification_type, c.error_message, c.reference_id) == ("Error", "Request failed", "9")
    # every channel of the Channels API notification, one message per channel (DND on a media channel)
    c = classify_bayeux({"channel": "/v2/me/channels", "data": {"channels": [
        {"channel": "email", "dndState": "On", "userState": {"state": "NotReady", "reason": "Break"}}],
        "messageType": "ChannelStateChangeMessageV2"}})
    assert (c.resource_type, c.resource_id, c.resource_state, c.user_state) == ("channel", "email", "NotReady",
                                                                               "NotReady")
    # nothing of a voice call leaks into media rows
    for sample, *_ in SAMPLES:
        c = classify_bayeux(wrap(sample))
        assert c.call_id is None and c.conn_id is None and c.device_id is None


# ----------------------------------------------------------------------------- HTTP

@pytest.mark.parametrize("method,path,body,response,expect", [
    # IM (L10774, L10852)
    ("POST", "/api/v2/me/im-sessions", {"operationName": "InitiateIMSession"}, {"statusCode": 0},
     ("multimedia", "im-session", None, None, None, "InitiateIMSession")),
    ("POST", "/api/v2/me/im-sessions/00446K0L8GAC3B9R807GK2LAES00000D", {"operationName": "SendMessage"}, None,
     ("multimedia", "im-session", "00446K0L8GAC3B9R807GK2LAES00000D", None, None, "SendMessage")),
    # chat (L11591), its transcript
    ("POST", "/api/v2/me/chats/0071023821aec011", {"operationName": "Accept"}, {"statusCode": 0},
     ("multimedia", "chat", "0071023821aec011", None, None, "Accept")),
    ("GET", "/api/v2/me/chats/0000Na9B26EF002X/messages?startIndex=1&count=5", None, None,
     ("multimedia", "chat", "0000Na9B26EF002X", "messages", None, None)),
    # email: Create on the collection, operations on one email (L17099, L17369)
    ("POST", "/api/v2/me/emails", {"operationName": "Create"}, None, ("multimedia", "email", None, None, None, "Create")),
    ("POST", "/api/v2/me/emails/0071023821aec011", {"operationName": "Reply"}, None,
     ("multimedia", "email", "0071023821aec011", None, None, "Reply")),
    # open media: the media type is the owner (L24217), Create on the type's collection
    ("POST", "/api/v2/me/openmedia/promotion/03W07R2K4VAYT010", {"operationName": "Accept"}, {"statusCode": 0,
                                                                                              "referenceId": 6},
     ("multimedia", "openmedia", "03W07R2K4VAYT010", None, "promotion", "Accept")),
    ("POST", "/api/v2/me/openmedia/promotion", {"operationName": "Create"}, None,
     ("multimedia", "openmedia", None, None, "promotion", "Create")),
    # workitems, workbins (own, someone else's, content by media type, several at once)
    ("POST", "/api/v2/me/workitems/03W07R2K4VAYT010", {"operationName": "Complete"}, None,
     ("multimedia", "workitem", "03W07R2K4VAYT010", None, None, "Complete")),
    ("POST", "/api/v2/workbins/6c715fa9-de16-4d23-b07c-cbcb1caf3e07", {"operationName": "PullChat"}, None,
     ("multimedia", "workbin", "6c715fa9-de16-4d23-b07c-cbcb1caf3e07", None, None, "PullChat")),
    ("GET", "/api/v2/me/workbins/6c715fa9/chats?fields=*", None, None,
     ("multimedia", "workbin", "6c715fa9", "chats", None, None)),
    ("POST", "/api/v2/me/workbins?workbinIds=a,b", {"operationName": "Subscribe"}, None,
     ("multimedia", "workbin", None, None, None, "Subscribe")),
    ("POST", "/api/v2/users/2d96456349284f45b6bc58790ccbd729/workbins/wb1", {"operationName": "AddEmail"}, None,
     ("multimedia", "workbin", "wb1", None, "2d96456349284f45b6bc58790ccbd729", "AddEmail")),
    # Channels API and the supervisor's agent-state control (L36728, L44940)
    ("POST", "/api/v2/me/channels/email", {"operationName": "DoNotDisturbOn"}, None,
     ("agent", "channel", "email", None, None, "DoNotDisturbOn")),
    ("GET", "/api/v2/me/channels", None, None, ("agent", "channel", None, None, None, None)),
    ("POST", "/api/v2/users/6c991eb2c1ba48d5b637d569a5295388/channels/chat", {"operationName": "Offline"}, None,
     ("agent", "channel", "chat", None, "6c991eb2c1ba48d5b637d569a5295388", "Offline")),
    # the supervisor's Intrude (L15155) is the agent-side chat API, not the customer's
    ("POST", "/api/v2/users/6c991eb2c1ba48d5b637d569a5295388/chats/0001BaBFVPR20035", {"operationName": "Intrude"},
     None, ("multimedia", "chat", "0001BaBFVPR20035", None, "6c991eb2c1ba48d5b637d569a5295388", "Intrude")),
    ("POST", "/api/v2/chats/0001BaBFVPR20035", {"operationName": "SendMessage"}, None,
     ("customer-chat", "chat", "0001BaBFVPR20035", None, None, "SendMessage")),
    # Digital User Events (media.md §4)
    ("POST", "/api/v2/me/multimediaevents", {"operationName": "Publish"}, None,
     ("multimedia", "multimediaevent", None, None, None, "Publish")),
    # the simulator's control API: the resource and its id, from the URL or from the answer
    ("POST", "/sim/v1/chats", {"from": {"nickname": "Bob"}, "to": "agent1"}, {"statusCode": 0, "id": "0003Ha9R7UU40001"},
     ("sim", "chat", "0003Ha9R7UU40001", None, None, None)),
    ("POST", "/sim/v1/chats/0003Ha9R7UU40001/messages", {"text": "Hi"}, {"statusCode": 0},
     ("sim", "chat", "0003Ha9R7UU40001", "messages", None, None)),
    ("POST", "/sim/v1/chats/0003Ha9R7UU40001/leave", None, {"statusCode": 0},
     ("sim", "chat", "0003Ha9R7UU40001", "leave", None, None)),
    ("POST", "/sim/v1/emails", {"from": "bob@example.com"}, {"statusCode": 0, "id": "0003Ha9R7UU40002"},
     ("sim", "email", "0003Ha9R7UU40002", None, None, None)),
    ("POST", "/sim/v1/workitems", {"to": "agent2"}, {"statusCode": 0, "id": "0003Ha9R7UU40003"},
     ("sim", "workitem", "0003Ha9R7UU40003", None, None, None)),
    ("POST", "/sim/v1/openmedia/promotion", {"to": "agent2"}, {"statusCode": 0, "id": "0003Ha9R7UU40004"},
     ("sim", "openmedia", "0003Ha9R7UU40004", None, "promotion", None)),
    ("POST", "/sim/v1/workitems", {"to": "agent2", "mediaType": "promotion"}, {"statusCode": 0, "id": "0003Ha9R7UU4"},
     ("sim", "openmedia", "0003Ha9R7UU4", None, "promotion", None)),
    ("POST", "/sim/v1/calls", {"from": "5551234", "to": "7001"}, {"statusCode": 0, "id": "CALL1"},
     ("sim", "call", "CALL1", None, None, None)),
    ("POST", "/sim/v1/calls/CALL1/hangup", None, {"statusCode": 0}, ("sim", "call", "CALL1", "hangup", None, None)),
    ("POST", "/sim/v1/services/chat", {"state": "Inactive"}, {"statusCode": 0},
     ("sim", "service", "chat", None, None, None)),
    ("GET", "/sim/v1/state", None, {"agents": []}, ("sim", "state", None, None, None, None)),
    ("POST", "/sim/v1/chats", {}, {"statusCode": 1, "statusMessage": "Missing from"},
     ("sim", "chat", None, None, None, None)),
])
def test_classify_media_http(method, path, body, response, expect):
    c = classify_http(method, path, body, response)
    assert (c.api_area, c.resource_type, c.resource_id, c.sub_resource, c.owner_id, c.operation_name) == expect


def test_http_and_notification_name_the_same_resource():
    """An operation and the notification showing its effect join on (resource_type, resource_id)."""
    pairs = [
        ("/api/v2/me/chats/0000Na9B26EF002X", CHAT_CHATTING),
        ("/api/v2/me/chats/0000Wa9CAM6W00FN", CHAT_LOG),
        ("/api/v2/me/emails/00012a9HEEG0325N", EMAIL_PROCESSING),
        ("/api/v2/me/openmedia/promotion/03W07R2K4VAYT010", OPENMEDIA_PROCESSING),
        ("/api/v2/me/workitems/0001MaAHMA9K000J", WORKITEM_INVITED),
        ("/api/v2/me/im-sessions/12398123091823091283012", IM_LOG),
        ("/api/v2/me/workbins/aee812a5-7396-4dd9-b180-230f1c1fb085", WORKBIN_SUBSCRIBED),
        ("/api/v2/me/channels/chat", CHANNEL_READY),
    ]
    for path, note in pairs:
        h, n = classify_http("POST", path, {"operationName": "X"}), classify_bayeux(wrap(note))
        assert (h.resource_type, h.resource_id) == (n.resource_type, n.resource_id), path


# ----------------------------------------------------------------------------- the whole reference

_MEDIA_TYPES = {
    "IMSessionStateChangeMessage": ("im-session", "imSession"), "ChatStateChangeMessage": ("chat", "chat"),
    "EmailStateChangeMessage": ("email", "email"), "FacebookStateChangeMessage": ("facebook", "facebook"),
    "FacebooksessionStateChangeMessage": ("facebooksession", "facebooksession"),
    "facebooksessionStateChangeMessage": ("facebooksession", "facebooksession"),
    "TwitterStateChangeMessage": ("tweet", "twitter"), "OpenmediaStateChangeMessage": ("openmedia", "openmedia"),
    "WorkitemStateChangeMessage": ("workitem", "workitem"), "SMSsessionStateChangeMessage": ("smsession", "smssession"),
    "IMLogUpdateMessage": ("im-session", None), "MessageLogUpdated": (None, None),
    "WorkbinStateChangeMessage": ("workbin", None), "WorkbinSubscriptionStateChangeMessage": ("workbin", None),
    "WorkbinStatsMessage": ("workbin", None), "ChannelStateChangeMessageV2": ("channel", None),
    "MultimediaEventNotificationMessage": ("multimediaevent", None),
    "MultimediaEventSubscriptionStateChangeMessage": ("multimediaevent", None),
    "TwitterOperationResponse": ("tweet", None),
}
# (first line, last line) of the multimedia APIs, the Channels API, and the supervisor's channel control
_SECTIONS = ((10600, 36936), (44900, 45300))


def _lenient(text: str) -> str:
    text = re.sub(r"\bNone\b", "null", text)
    return re.sub(r",(\s*[}\]])", r"\1", text)


def reference_notifications() -> list[tuple[int, dict]]:
    """Every notification sample of those sections that parses (PDF page breaks split some)."""
    path = REFERENCE / "gws-8.6-api-reference.txt"
    if not path.exists():
        return []
    out, block, start = [], None, 0
    for n, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
        if line.strip().startswith("```"):
            if block is None:
                block, start = [], n
            else:
                text = "\n".join(block)
                block = None
                if '"messageType"' in text and any(a <= start <= b for a, b in _SECTIONS):
                    try:
                        obj = json.loads(_lenient(text))
                    except ValueError:
                        continue
                    if isinstance(obj, dict):
                        out.append((start, obj))
        elif block is not None:
            block.append(line)
    return out


def test_every_reference_notification_sample():
    samples = reference_notifications()
    if not samples:
        pytest.skip(f"no GWS reference at {REFERENCE}")
    seen = set()
    for line, obj in samples:
        msg = wrap(obj)
        data = msg["data"]
        c = classify_bayeux(msg)
        rtype, key = _MEDIA_TYPES.get(c.message_type, (None, None))
        if c.message_type not in _MEDIA_TYPES:
            continue
        seen.add(c.message_type)
        if rtype is not None:
            assert c.resource_type == rtype, (line, c)
        resource = data.get(key) if key else None
        if isinstance(resource, dict) and resource.get("id") is not None:
            assert c.resource_id == str(resource["id"]), line
            assert c.resource_state == resource.get("state"), line
        if c.message_type == "MessageLogUpdated":
            assert c.resource_type in ("chat", "smsession", "facebooksession") and c.resource_id, line
        if c.message_type == "ChannelStateChangeMessageV2":
            assert c.resource_id == data["channels"][0]["channel"], line
        if c.message_type == "WorkbinStateChangeMessage":
            assert c.item_type and c.item_id, line
    # every family the reference shows a notification sample for was met
    assert {"IMSessionStateChangeMessage", "IMLogUpdateMessage", "ChatStateChangeMessage", "MessageLogUpdated",
            "EmailStateChangeMessage", "OpenmediaStateChangeMessage", "WorkitemStateChangeMessage",
            "WorkbinStateChangeMessage", "WorkbinSubscriptionStateChangeMessage", "WorkbinStatsMessage",
            "ChannelStateChangeMessageV2", "SMSsessionStateChangeMessage", "TwitterStateChangeMessage"} <= seen


# ----------------------------------------------------------------------------- SQL == Python

FIELDS = ["channel", "client_id", "msg_id", "successful", "error", "connection_type", "subscription",
          "message_type", "notification_type", "resource_type", "resource_id", "resource_state", "call_id",
          "conn_id", "device_id", "user_state", "reference_id", "error_message"]


def sql_classify(messages: list, item_columns: tuple[str, ...] = ITEM_FIELDS) -> list[dict]:
    """Run the writer's SQL (with ``item_columns``) over one staged body holding ``messages``."""
    con = duckdb.connect()
    try:
        cols = schema.BAYEUX_MESSAGES + [(c, "VARCHAR") for c in item_columns
                                         if c not in dict(schema.BAYEUX_MESSAGES)]
        con.execute(f"CREATE TABLE bayeux_messages ({', '.join(f'{c} {t}' for c, t in cols)})")
        staged = bayeux_sql.stage_table([(0, 0, 1_700_000_000_000_000, "s2c", "long-polling", 1, "f", None,
                                          "agent1", None, json.dumps(messages))])
        con.register("_bayeux_bodies", staged)
        con.execute(bayeux_sql.insert_sql(item_columns), {"base": 1})
        cur = con.execute(f"SELECT {', '.join(FIELDS + list(item_columns))}, data FROM bayeux_messages ORDER BY id")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]
    finally:
        con.close()


def assert_sql_matches_python(messages: list) -> None:
    rows = sql_classify(messages)
    assert len(rows) == len(messages)
    for m, row in zip(messages, rows):
        c = classify_bayeux(m)
        py = {f: getattr(c, f) for f in FIELDS + list(ITEM_FIELDS)}
        sql = {f: row[f] for f in FIELDS + list(ITEM_FIELDS)}
        assert sql == py, (m, {k: (py[k], sql[k]) for k in py if py[k] != sql[k]})


def test_sql_matches_python_on_the_samples():
    corpus = [wrap(s) for s, *_ in SAMPLES] + [wrap(o) for _, o in reference_notifications()]
    corpus += [{"channel": "/v2/me/workbins", "data": {
        "messageType": "WorkbinStateChangeMessage", "action": "ItemAdded", "id": "wb",
        "chatStateResourceV2": "not an object", "emailStateResourceV2": {"path": "/emails/E%201", "state": "InWorkbin"},
        "workitemStateResourceV2": {"id": 17}}}]
    assert_sql_matches_python(corpus)


def test_writer_sql_follows_the_capture_schema():
    """The item columns are written once bayeux_messages declares them, and never before."""
    declared = set(dict(schema.BAYEUX_MESSAGES))
    assert set(bayeux_sql.ITEM_COLUMNS) == declared & set(ITEM_FIELDS)
    for column in ITEM_FIELDS:
        assert (f" AS {column}," in bayeux_sql.INSERT_SQL) == (column in declared)
    # without item columns the SQL still classifies everything else the same way
    rows = sql_classify([wrap(WORKBIN_ITEM_ADDED)], item_columns=())
    assert (rows[0]["resource_type"], rows[0]["resource_id"]) == ("workbin", "6c715fa9-de16-4d23-b07c-cbcb1caf3e07")


_scalar = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.text(alphabet="abcXYZ019/-_:.% ", max_size=12))
_value = st.recursive(_scalar, lambda ch: st.lists(ch, max_size=2) | st.dictionaries(
    st.sampled_from(["id", "state", "uri", "path"]), ch, max_size=3), max_leaves=6)
_item = st.fixed_dictionaries({}, optional={k: _value for k in ("id", "state", "uri", "path")})
_media_data = st.fixed_dictionaries(
    {"messageType": st.sampled_from(["WorkbinStateChangeMessage", "WorkbinStatsMessage",
                                     "WorkbinSubscriptionStateChangeMessage", "MultimediaEventNotificationMessage",
                                     "MultimediaEventSubscriptionStateChangeMessage", "TwitterOperationResponse",
                                     "OpenmediaStateChangeMessage", "IMLogUpdateMessage", "MessageLogUpdated"])},
    optional={**{f"{k}StateResourceV2": _item | _value for k in ("chat", "email", "workitem", "openmedia", "tweet")},
              "id": _scalar, "action": _scalar, "stateResource": _scalar, "topic": _value,
              "errorMessage": _scalar, "notificationType": _scalar, "openmedia": _item | _value,
              "interaction": _item, "imSessionUri": _value, "chatPath": _value, "smsessionUri": _value})


@settings(max_examples=int(os.environ.get("GWS_FUZZ_EXAMPLES", "40")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(datas=st.lists(_media_data, min_size=1, max_size=20))
def test_fuzz_media_sql_matches_python(datas):
    assert_sql_matches_python([{"channel": "/v2/me/workbins", "data": d} for d in datas])


# ----------------------------------------------------------------------------- the rule table and the SQL files

def test_rule_table_names_each_message_type_once():
    """A messageType in two rules would make the second one dead in both classifiers."""
    seen: dict[str, str] = {}
    for r in notifications.RULES:
        for mt in r.message_types:
            assert mt not in seen, (mt, seen.get(mt), r.kind)
            seen[mt] = r.kind
    assert set(notifications.MEDIA_MESSAGES) <= set(seen)
    # the channels rule also takes any message on /v2/me/channels, but not one an earlier rule names
    assert rule_for("WorkbinStatsMessage", "/v2/me/channels").kind == "channel"
    assert rule_for("CallStateChangeMessage", "/v2/me/channels").kind == "call"
    assert rule_for("NoSuchMessage", "/v2/me/calls") is None


def test_rules_refuse_a_field_read_before_it_is_computed():
    with pytest.raises(ValueError):
        notifications.rule("x", "XMessage", resource_id=notifications.Ref("call_id"),
                           call_id=notifications.Val("call.id"))
    with pytest.raises(ValueError):
        notifications.rule("x", "XMessage", no_such_column=notifications.Lit("a"))


def test_sql_files_are_filled_completely():
    for sql in (bayeux_sql.INSERT_SQL, bayeux_sql.insert_sql(()), schema.OPERATIONS_SQL):
        assert "{{" not in sql and "}}" not in sql
    with pytest.raises(KeyError):
        sqlfiles.fill("SELECT {{a}}, {{b}}", a="1")
    with pytest.raises(ValueError):
        sqlfiles.fill("SELECT {{a}}", a="1", b="2")
    assert sqlfiles.fill("SELECT {{a}} -- {x}", a="'q'") == "SELECT 'q' -- {x}"
    assert sql_literal("O'Brien") == "'O''Brien'" and sql_list(["a", "b'"]) == "'a', 'b'''"


def test_id_from_uri_is_the_same_in_sql():
    con = duckdb.connect()
    try:
        for uri in ("http://h/api/v2/me/calls/0001?x=1", "/api/v2/me/emails/E%201/", "no-slash", "",
                    "/a/b#frag", "http://h/"):
            sql = con.execute(f"SELECT {id_from_uri_sql('?')}", [uri]).fetchall()[0][0]
            assert sql == id_from_uri(uri), uri
    finally:
        con.close()
