"""The documented operations, as data: which operationName is valid on which resource.

Operation coverage asks "which documented operations did this session exercise";
this is the list it is measured against: the Voice API (P§9.1, L3932-10599), the
agent-state operations of the Channels API and of the supervisor's agent-state
control (M§14, L44920-45227), and every non-voice operation of
``media_operations.csv`` (one row per operation or URL variant of the IM, chat,
customer chat, Digital User Events, email, Facebook, Facebook private messaging,
open media, SMS, Twitter, workbin and workitem APIs). A unit test checks the last
part against the CSV. Reference codes as in state_models.py.

Families are the capture's resource types (``exchanges.resource_type``, through
:func:`resource_family`), except the customer side of chat (``/api/v2/chats``
without ``/me``), which is its own family ``customer-chat``.
"""

from __future__ import annotations

import re

import pandas as pd

_USER_DATA = ("AttachUserData", "UpdateUserData", "DeleteUserData")

# (resource family, API section, operationNames, reference)
_CATALOG: list[tuple[str, str, tuple[str, ...], str]] = [
    # POST /api/v2/me (P§2.5, P§9.1; M§14 "Set all channels to ...")
    ("me", "Voice API / session", ("StartContactCenterSession", "EndContactCenterSession", "Ready", "NotReady",
                                   "DoNotDisturbOn", "DoNotDisturbOff"), "L4385, L4616, P§9.1, M§14"),
    # POST /api/v2/me/channels/voice: system agent states (L39210-39218) and
    # /me/channels/{media} Ready/NotReady (M§14).
    ("channel", "Voice API / agent state", ("Ready", "NotReady", "AuxWork", "AfterCallWork", "Offline"),
     "L4656-5009, L39210, L36720-36791"),
    # DND per media channel (the supervisor's /users/{id}/channels/{channel}, L45044-45163)
    ("channel", "Channels API / do not disturb", ("DoNotDisturbOn", "DoNotDisturbOff"), "L45044-45163, M§14"),
    # chat and SMS supervision: /users/{userId}/channels/{chat|smsession} (M§2, M§9)
    ("channel", "Chat API / supervision", ("Monitor", "Coach", "BargeIn", "CancelSupervisorMonitoring"),
     "L14970-15154, M§2"),
    # POST /api/v2/me/devices/{id} (P§9.1; samples L5010-5312, L9396-9766)
    ("device", "Voice API / device", ("DoNotDisturbOn", "DoNotDisturbOff", "ForwardCallsOn", "ForwardCallsOff",
                                      "Dial", "ListenIn", "Coach", "BargeIn", "CancelSupervisorMonitoring"),
     "L5010-5492, L9396-9766"),
    # POST /api/v2/me/calls/{id} (P§9.1)
    ("call", "Voice API / call", (
        "Answer", "Reject", "Hold", "Retrieve", "Hangup", "SendDtmf", "MuteCall", "UnmuteCall",
        "SetCallDisposition", "SingleStepConference", "InitiateConference", "CompleteConference",
        "RemoveParticipantFromConference", "ClearCall", "SingleStepTransfer", "InitiateTransfer",
        "CompleteTransfer", "SwapCalls", "MergeWithOtherCall", "AttachUserData", "UpdateUserData",
        "DeleteUserData", "DeleteUserDataPair", "SwitchToBargeIn", "SwitchToListenIn", "MuteMonitoredUser",
        "UnmuteMonitoredUser", "StartCallRecording", "PauseCallRecording", "ResumeCallRecording",
        "StopCallRecording"), "L5493-10599"),
    ("im-session", "IM Session API", ("InitiateIMSession", "SendMessage") + _USER_DATA + ("Complete",),
     "L10600-11179, M§1"),
    ("chat", "Chat API", (
        "Accept", "Reject", "SendMessage", "Leave", "Complete", "SendUrl", "AddAttachment", "RemoveAttachment",
        "UploadFile", "DeleteFile", "SendStartTypingNotification", "SendStopTypingNotification", "SetInFocus",
        "SetDisposition", "AddComment", "SendCustomNotice") + _USER_DATA + (
        "Transfer", "Invite", "Consult", "CancelConsult", "SendToAgents", "SendStartTypingToAgentsNotification",
        "SendStopTypingToAgentNotification", "RemoveParticipantFromConference", "SendCustomNoticeToAgents",
        "SendNicknameUpdatedNotice", "Intrude", "SwitchToBargeIn", "SwitchToMonitor", "SwitchToCoach"),
     "L11212-15765, M§2"),
    ("customer-chat", "Customer Chat API", ("RequestChat", "SendMessage", "SendStartTypingNotification",
                                            "SendStopTypingNotification", "Complete"), "L15766-16392, M§3"),
    ("multimediaevent", "Digital User Events API", ("Publish", "Subscribe", "Unsubscribe"), "L16393-16603, M§4"),
    ("email", "Email API", (
        "Accept", "Reject", "Create", "Save", "Cancel", "Reply", "ReplyAll", "Send", "SetDisposition", "Complete",
        ) + _USER_DATA + ("AddComment", "SetInFocus", "AddAttachment", "RemoveAttachment", "Transfer"),
     "L16604-18869, M§5"),
    ("facebook", "Facebook API", ("Accept", "Reject", "Create", "Save", "Cancel", "Reply", "Send", "SetDisposition",
                                  "Complete") + _USER_DATA + ("AddComment", "SetInFocus", "Transfer"),
     "L18870-20681, M§6"),
    ("facebooksession", "Facebook Private Messaging API", (
        "Accept", "Reject", "SendMessage", "SendUrl", "SetInFocus", "SetDisposition", "Leave", "Complete",
        ) + _USER_DATA + ("AddComment", "Transfer", "Consult", "SendToAgents", "RemoveParticipantFromConference",
                          "ReportResponseTemplateUsage"), "L20682-23996, M§7"),
    ("openmedia", "Open Media API", ("Create", "Accept", "Reject", "SetInFocus", "Complete", "AddContent",
                                     "GetContent") + _USER_DATA + ("Transfer",), "L23997-25175, M§8"),
    ("smsession", "SMS Session API", (
        "Accept", "Reject", "SendMessage", "Leave", "Complete", "SendUrl", "SendStartTypingNotification",
        "SendStopTypingNotification", "SetInFocus", "SetDisposition", "AddComment", "SendCustomNotice",
        ) + _USER_DATA + (
        "Transfer", "Invite", "Consult", "CancelConsult", "SendToAgents", "SendStartTypingToAgentsNotification",
        "SendStopTypingToAgentNotification", "RemoveParticipantFromConference", "SendCustomNoticeToAgents",
        "Intrude", "SwitchToBargeIn", "SwitchToMonitor", "SwitchToCoach"), "L25176-28730, M§9"),
    ("tweet", "Twitter API", ("Accept", "Reject", "Create", "Save", "Cancel", "Reply", "Send", "SetDisposition",
                              "Complete") + _USER_DATA + ("AddComment", "SetInFocus", "Transfer", "Follow",
                                                          "Unfollow", "Retweet"), "L29465-32014, M§11"),
    ("workitem", "Workitem API", ("Create", "Accept", "Reject", "SetInFocus", "Complete") + _USER_DATA + (
        "Transfer",), "L35618-36542, M§13"),
    ("workbin", "Workbins API", (
        "AddInteraction", "AddEmail", "AddChat", "AddWorkitem", "AddTweet", "AddFacebook", "AddFacebooksession",
        "AddOpenmedia", "PullInteraction", "PullChat", "PullEmail", "PullWorkitem", "PullTweet", "PullFacebook",
        "PullFacebooksession", "PullOpenmedia", "Subscribe", "Unsubscribe", "RequestStats", "RequestAgentStats"),
     "L32015-35617, M§12"),
]


def documented_operations() -> pd.DataFrame:
    """One row per (resource family, operationName) the reference documents."""
    rows = [
        {"resource_family": fam, "api": api, "operation_name": op, "ref": ref}
        for fam, api, ops, ref in _CATALOG for op in ops
    ]
    return pd.DataFrame(rows)


_FAMILY_ALIASES = {
    "users": "me", "user": "me", "me": "me",
    "channels": "channel", "devices": "device", "calls": "call",
    "im-sessions": "im-session", "imsessions": "im-session", "imsession": "im-session", "im_sessions": "im-session",
    "chats": "chat", "emails": "email", "workitems": "workitem", "workbins": "workbin",
}


def resource_family(resource_type: str | None, api_area: str | None = None) -> str | None:
    """Normalise a captured resource_type ("calls", "im_sessions", ...) to a catalog family.

    With the exchange's ``api_area``, the customer side of chat is ``customer-chat``.
    """
    if api_area == "customer-chat":
        return "customer-chat"
    if resource_type is None or (isinstance(resource_type, float)):
        return None
    key = resource_type.strip().lower()
    if key in _FAMILY_ALIASES:
        return _FAMILY_ALIASES[key]
    key = re.sub(r"[_ ]", "-", key)
    return _FAMILY_ALIASES.get(key, key[:-1] if key.endswith("s") else key)
