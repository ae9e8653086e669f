"""The documented operations, as data: which operationName is valid on which resource.

Operation coverage asks "which documented operations did this session exercise";
this is the list it is measured against. It covers the areas the project
simulates and captures: the Voice API (P§9.1, L3932-10599), IM sessions (M§1),
agent-side chat (M§2), email (M§5), workitems (M§13), workbins (M§12) and the
Channels API (M§14). Reference codes as in state_models.py.
"""

from __future__ import annotations

import re

import pandas as pd

# (resource family, API section, operationNames, reference)
_CATALOG: list[tuple[str, str, tuple[str, ...], str]] = [
    # POST /api/v2/me (P§2.5, P§9.1; M§14 "Set all channels to ...")
    ("me", "Voice API / session", ("StartContactCenterSession", "EndContactCenterSession", "Ready", "NotReady",
                                   "DoNotDisturbOn", "DoNotDisturbOff"), "L4385, L4616, P§9.1, M§14"),
    # POST /api/v2/me/channels/voice: system agent states (L39210-39218) and
    # /me/channels/{media} Ready/NotReady (M§14).
    ("channel", "Voice API / agent state", ("Ready", "NotReady", "AuxWork", "AfterCallWork", "Offline"),
     "L4656-5009, L39210"),
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
    ("im-session", "IM Session API", ("InitiateIMSession", "SendMessage", "AttachUserData", "UpdateUserData",
                                      "DeleteUserData", "Complete"), "L10600-11179, M§1"),
    ("chat", "Chat API", (
        "Accept", "Reject", "SendMessage", "Leave", "Complete", "SendUrl", "AddAttachment", "RemoveAttachment",
        "UploadFile", "DeleteFile", "SendStartTypingNotification", "SendStopTypingNotification", "SetInFocus",
        "SetDisposition", "AddComment", "SendCustomNotice", "AttachUserData", "UpdateUserData", "DeleteUserData",
        "Transfer", "Invite", "Consult", "CancelConsult", "SendToAgents", "SendStartTypingToAgentsNotification",
        "SendStopTypingToAgentNotification", "RemoveParticipantFromConference", "SendCustomNoticeToAgents",
        "SendNicknameUpdatedNotice"), "L11212-15765, M§2"),
    ("email", "Email API", (
        "Accept", "Reject", "Create", "Save", "Cancel", "Reply", "ReplyAll", "Send", "SetDisposition", "Complete",
        "AttachUserData", "UpdateUserData", "DeleteUserData", "AddComment", "SetInFocus", "AddAttachment",
        "RemoveAttachment", "Transfer"), "L16604-18869, M§5"),
    ("workitem", "Workitem API", ("Create", "Accept", "Reject", "SetInFocus", "Complete", "AttachUserData",
                                  "UpdateUserData", "DeleteUserData", "Transfer"), "L35618-36542, M§13"),
    ("workbin", "Workbins API", ("AddInteraction", "AddEmail", "AddChat", "AddWorkitem", "PullInteraction",
                                 "PullChat", "PullEmail", "PullWorkitem", "Subscribe", "Unsubscribe",
                                 "RequestStats", "RequestAgentStats"), "L32015-35617, M§12"),
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


def resource_family(resource_type: str | None) -> str | None:
    """Normalise a captured resource_type ("calls", "im_sessions", ...) to a catalog family."""
    if resource_type is None or (isinstance(resource_type, float)):
        return None
    key = resource_type.strip().lower()
    if key in _FAMILY_ALIASES:
        return _FAMILY_ALIASES[key]
    key = re.sub(r"[_ ]", "-", key)
    return _FAMILY_ALIASES.get(key, key[:-1] if key.endswith("s") else key)
