"""GWS operations as data: which operationName exists on which resource, and what it does.

One place for the operation vocabulary the capture, the replayer and the analysis
share: the documented operations per resource family (the analysis' coverage catalog),
the notification each operation is expected to produce (the capture's correlation
rules, ``gwsreplay.capture.expectations``), the agent-state operations and the
operations after which a call may be released (the replayer's waits).

Reference codes: ``L<n>`` a line of gws-8.6-api-reference.txt, ``P§n`` a section of
protocol.md, ``M§n`` a section of media.md.
"""

from __future__ import annotations

_USER_DATA = ("AttachUserData", "UpdateUserData", "DeleteUserData")

#: (resource family, API section, operationNames, reference): the Voice API (P§9.1, L3932-10599),
#: the agent-state operations of the Channels API and of the supervisor's agent-state control
#: (M§14, L44920-45227) and every non-voice operation of media_operations.csv. Families are the
#: capture's resource types, except the customer side of chat (``customer-chat``).
DOCUMENTED_OPERATIONS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
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
)


def operations_of(family: str) -> frozenset[str]:
    """The documented operationNames of one resource family."""
    return frozenset(op for fam, _, ops, _ in DOCUMENTED_OPERATIONS if fam == family for op in ops)


# ----------------------------------------------------------------------------- agent state

#: Agent-state operation -> (userState.state, workMode or None) it leads to (8.6 L4656-5009:
#: AuxWork and AfterCallWork are NotReady with a workMode; Offline logs the agent out).
AGENT_STATE_OPERATIONS: dict[str, tuple[str, str | None]] = {
    "Ready": ("Ready", None),
    "NotReady": ("NotReady", None),
    "AfterCallWork": ("NotReady", "AfterCallWork"),
    "AuxWork": ("NotReady", "AuxWork"),
    "Offline": ("LoggedOut", None),
}

# ----------------------------------------------------------------------------- voice calls

#: Call operation -> the call state its CallStateChangeMessage shows once done
CALL_STATE_AFTER: dict[str, str] = {
    "Answer": "Established",
    "Hold": "Held",
    "Retrieve": "Established",
    "Hangup": "Released",
    "Reject": "Released",
    "ClearCall": "Released",
    "SingleStepTransfer": "Released",
    "CompleteTransfer": "Released",
}
#: Call operation -> the notificationType of the CallStateChangeMessage that shows it done
CALL_EVENT_AFTER: dict[str, str] = {
    "AttachUserData": "AttachedDataChanged",
    "UpdateUserData": "AttachedDataChanged",
    "DeleteUserData": "AttachedDataChanged",
    "DeleteUserDataPair": "AttachedDataChanged",
    "SetCallDisposition": "AttachedDataChanged",
    "SendDtmf": "DtmfSent",
    "SingleStepConference": "ParticipantsUpdated",
    "RemoveParticipantFromConference": "ParticipantsUpdated",
    "StartCallRecording": "CallRecordingStateChange",
    "StopCallRecording": "CallRecordingStateChange",
    "PauseCallRecording": "CallRecordingStateChange",
    "ResumeCallRecording": "CallRecordingStateChange",
}
#: Call operations shown by any change of the call (no particular state or event)
CALL_CHANGING_OPS = ("MuteCall", "UnmuteCall", "SwapCalls", "MergeWithOtherCall", "SwitchToBargeIn",
                     "SwitchToListenIn", "MuteMonitoredUser", "UnmuteMonitoredUser")
#: Operations that create a new call for the requester, first seen Dialing
CALL_DIALING_OPS = ("Dial", "InitiateTransfer", "InitiateConference")
#: Operations after which a call may go Released for the requester or its peers
RELEASE_OPS = frozenset({
    "Hangup", "Reject", "ClearCall", "SingleStepTransfer", "CompleteTransfer", "CompleteConference",
    "RemoveParticipantFromConference", "SingleStepConference", "InitiateTransfer", "InitiateConference",
    "MergeWithOtherCall", "SwapCalls", "EndContactCenterSession", "CancelSupervisorMonitoring",
})

# ----------------------------------------------------------------------------- devices, media

#: Operations shown by any DeviceStateChangeMessage of the agent
DEVICE_CHANGING_OPS = ("DoNotDisturbOn", "DoNotDisturbOff", "ForwardCallsOn", "ForwardCallsOff",
                       "StartContactCenterSession")
#: Operations shown by a ChannelStateChangeMessageV2 of the channel they name (DND of one channel)
CHANNEL_CHANGING_OPS = ("DoNotDisturbOn", "DoNotDisturbOff")
#: Reply creates a new outbound interaction in Composing (media_operations.csv); the inbound one
#: does not change. (operationName, resource type)
REPLY_OPERATIONS = (("Reply", "email"), ("ReplyAll", "email"), ("Reply", "facebook"), ("Reply", "tweet"))
#: Documented without a notification: EndContactCenterSession ("There are no notifications associated
#: with this operation", 8.5.2 L10358), SetInFocus of every medium, chat/SMS supervision requests on
#: /users/{id}/channels/{medium} ("HTTP only"), ReportResponseTemplateUsage, CancelConsult (an Error
#: notification on failure only), UnlockAccount (provisioning is synchronous).
#: (operationName, resource type or None for any)
ACK_ONLY_OPERATIONS: tuple[tuple[str, str | None], ...] = (
    ("EndContactCenterSession", None), ("SetInFocus", None), ("ReportResponseTemplateUsage", None),
    ("CancelConsult", None), ("UnlockAccount", None),
    ("Monitor", "channel"), ("Coach", "channel"), ("BargeIn", "channel"), ("CancelSupervisorMonitoring", "channel"),
)
