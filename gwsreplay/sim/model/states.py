"""Per-resource state tables: state -> guard -> operation -> next state.

In the spirit of h11's ``_state.py``: one table per resource says which operations a
state allows and where each leads, and both the ``capabilities`` a notification lists
and the check a POST goes through are read from it, so a capability and the
transition it allows cannot disagree. A row is split into guard groups: ``ALWAYS``
holds in the state, the others only when the resource's context says so (another
call on hold, a conference, another agent in the chat...). The channel modules
compute the guards; this module only knows the tables.

Capability lists come out in the table's order (groups in declaration order, first
occurrence wins), or in a canonical order when the table has one (calls). Sources:
``L<n>`` = a line of ``gws-8.6-api-reference.txt``, ``media.md`` =
``/work/shared/gws-reference/media.md``.
"""

from __future__ import annotations

from typing import Iterable, Mapping

ALWAYS = "always"
STAY = None          # the operation leaves the resource in its state

Row = Mapping[str, Mapping[str, "str | None"]]   # guard -> operation -> next state


class StateTable:
    """One resource's table. ``ungoverned`` operations are allowed whatever the state
    (and never listed as capabilities)."""

    def __init__(self, resource: str, rows: Mapping[str, Row], *, order: Iterable[str] | None = None,
                 ungoverned: Iterable[str] = ()):
        self.resource = resource
        self.rows = rows
        self.rank = {name: i for i, name in enumerate(order)} if order is not None else None
        self.ungoverned = tuple(ungoverned)

    def capabilities(self, state: str, guards: Iterable[str] = ()) -> list[str]:
        active = set(guards)
        caps: dict[str, None] = {}
        for guard, ops in self.rows.get(state, {}).items():
            if guard == ALWAYS or guard in active:
                caps.update(dict.fromkeys(ops))
        if self.rank is not None:
            return sorted(caps, key=self.rank.__getitem__)
        return list(caps)

    def allows(self, state: str, op: str, guards: Iterable[str] = ()) -> bool:
        return op in self.ungoverned or op in self.capabilities(state, guards)

    def next(self, state: str, op: str, guards: Iterable[str] | None = None) -> str:
        """Where ``op`` leads from ``state``. With ``guards``, a later active group overrides an
        earlier one; without, every group of the row counts and they must agree."""
        active = None if guards is None else set(guards)
        targets = [ops[op] for guard, ops in self.rows.get(state, {}).items()
                   if op in ops and (active is None or guard == ALWAYS or guard in active)]
        if not targets:
            raise LookupError(f"{self.resource}: {op} is not allowed in state {state}")
        if active is None and len(set(targets)) > 1:
            raise LookupError(f"{self.resource}: where {op} leads from {state} depends on guards")
        target = targets[-1]
        return state if target is STAY else target

    def operations(self) -> set[str]:
        """Every operation the table names (tests check each has a handler)."""
        return {op for row in self.rows.values() for ops in row.values() for op in ops} | set(self.ungoverned)


# ============================================================================ calls

DIALING, RINGING, ESTABLISHED, HELD, RELEASED = "Dialing", "Ringing", "Established", "Held", "Released"

_CALL_DATA = dict.fromkeys(("AttachUserData", "UpdateUserData", "DeleteUserData", "DeleteUserDataPair"), STAY)
_UNMUTE = {"muted": {"UnmuteCall": STAY}}

# Canonical order in which call capabilities are listed (clients must treat them as a set).
CALL_CAPABILITY_ORDER = (
    "Answer", "Reject", "Retrieve", "Hold", "Hangup", "SendDtmf", "MuteCall", "UnmuteCall",
    "SingleStepTransfer", "InitiateTransfer", "SingleStepConference", "InitiateConference",
    "SwapCalls", "CompleteTransfer", "CompleteConference", "RemoveParticipantFromConference", "ClearCall",
    "AttachUserData", "UpdateUserData", "DeleteUserData", "DeleteUserDataPair",
    "StartCallRecording", "PauseCallRecording", "ResumeCallRecording", "StopCallRecording",
    "SwitchToBargeIn", "SwitchToListenIn", "MuteMonitoredUser", "UnmuteMonitoredUser",
)

#: A call leg, as its agent sees it. Plain two-party call from the samples: Dialing (Dial,
#: L5367-5395), Ringing (L1139-1172), Established (Answer L5493-5530), Held (Hold
#: L5721-5748), Released (Hangup L5911-5925: empty). Guards (calls.py):
#: ``rejectable`` delivered via a queue; ``other_call`` the agent's other call is held
#: (this one active) or active (this one held): consult samples L7338-7360, SwapCalls
#: sample 2 L8660-8760; ``other_established`` ... and the active one is Established
#: (L8700-8720); ``conference`` three or more visible parties (SingleStepConference sample
#: L6436-6452, MuteCall sample L6115-6131; ClearCall is our addition); ``unmuted`` in such
#: a conference, not muted; ``owner`` conference owner or monitoring supervisor;
#: ``recording_*`` the call's recording state (L10246-10262, L10330-10346, L10500-10515);
#: ``monitor_*`` the supervisor's own leg (L9960-9975, L10040-10055); ``muted`` a muted
#: leg that is not an established monitor.
CALL = StateTable("call", {
    DIALING: {
        ALWAYS: {"SendDtmf": STAY, "Hangup": RELEASED, **_CALL_DATA},
        # SwapCalls is listed for a Dialing consult call but T-Server refuses it (call_ops.py)
        "other_call": {"SwapCalls": STAY, "CompleteTransfer": RELEASED},
        **_UNMUTE,
    },
    RINGING: {
        ALWAYS: {"Answer": ESTABLISHED, **_CALL_DATA},
        "rejectable": {"Reject": RELEASED},
        **_UNMUTE,
    },
    ESTABLISHED: {
        ALWAYS: {"Hold": HELD, "Hangup": RELEASED, "SendDtmf": STAY, "SingleStepTransfer": RELEASED,
                 "InitiateTransfer": HELD, "SingleStepConference": STAY, "InitiateConference": HELD,
                 **_CALL_DATA},
        "other_call": {"SwapCalls": HELD, "CompleteTransfer": RELEASED},
        "other_established": {"CompleteConference": RELEASED},     # this (consult) leg is released
        "conference": {"ClearCall": RELEASED},
        "unmuted": {"MuteCall": STAY},
        "owner": {"RemoveParticipantFromConference": STAY},
        "recording_stopped": {"StartCallRecording": STAY},
        "recording_recording": {"PauseCallRecording": STAY, "StopCallRecording": STAY},
        "recording_paused": {"ResumeCallRecording": STAY, "StopCallRecording": STAY},
        "monitor_listenin": {"SwitchToBargeIn": STAY},
        "monitor_coach": {"SwitchToBargeIn": STAY},
        "monitor_bargein": {"SwitchToListenIn": STAY},
        "monitored_user_unmuted": {"MuteMonitoredUser": STAY},
        "monitored_user_muted": {"UnmuteMonitoredUser": STAY},
        **_UNMUTE,
    },
    HELD: {
        ALWAYS: {"Retrieve": ESTABLISHED, "Hangup": RELEASED, "SingleStepTransfer": RELEASED,
                 "InitiateTransfer": HELD, "SingleStepConference": STAY, "InitiateConference": HELD,
                 **_CALL_DATA},
        "other_call": {"SwapCalls": ESTABLISHED, "CompleteTransfer": RELEASED},
        "other_established": {"CompleteConference": ESTABLISHED},  # the original call grows
        **_UNMUTE,
    },
    RELEASED: {},
}, order=CALL_CAPABILITY_ORDER, ungoverned=("SetCallDisposition",))

#: Recording operation -> (recordingState, GSIP_RECORD flag) (L10250-10256).
RECORDING_TRANSITIONS = {
    "StartCallRecording": ("Recording", "ON"),
    "PauseCallRecording": ("Paused", "PAUSED"),
    "ResumeCallRecording": ("Recording", "ON"),
    "StopCallRecording": ("Stopped", "OFF"),
}

# ============================================================================ devices

OFF, ON = "Off", "On"
#: Device resource, L4380-4390; DoNotDisturbOn sample L5040-5050. Listed in this order:
#: forwarding, do-not-disturb, then (supervisors) monitoring.
FORWARDING = StateTable("device forwarding", {OFF: {ALWAYS: {"ForwardCallsOn": ON}},
                                              ON: {ALWAYS: {"ForwardCallsOff": OFF}}})
DO_NOT_DISTURB = StateTable("device do-not-disturb", {OFF: {ALWAYS: {"DoNotDisturbOn": ON}},
                                                      ON: {ALWAYS: {"DoNotDisturbOff": OFF}}})
IDLE, MONITORING = "Idle", "Monitoring"
SUPERVISION = StateTable("device supervision", {
    IDLE: {"supervisor": {"ListenIn": MONITORING, "Coach": MONITORING, "BargeIn": MONITORING}},
    MONITORING: {"supervisor": {"ListenIn": MONITORING, "Coach": MONITORING, "BargeIn": MONITORING,
                                "CancelSupervisorMonitoring": IDLE}},
})

# ============================================================================ interactions

QUEUED, INVITED, PROCESSING, COMPOSING, COMPLETED = "Queued", "Invited", "Processing", "Composing", "Completed"
SENT, CANCELED, IN_WORKBIN, REVOKED = "Sent", "Canceled", "InWorkbin", "Revoked"
CHATTING, LEFT_CHAT = "Chatting", "LeftChat"
TALKING, ALERTING = "Talking", "Alerting"

_MEDIA_DATA = dict.fromkeys(("AttachUserData", "UpdateUserData", "DeleteUserData"), STAY)
_INVITED = {ALWAYS: {"Accept": PROCESSING, "Reject": COMPLETED}}   # Reject: the rejecter's view

#: One agent's place in a chat. Chatting: user-data/disposition samples (L13240) +
#: SendUrl/SendCustomNotice (attachment samples) + AddComment (a documented operation no
#: sample lists); ``with_agents`` another agent chats too (Invite/Consult samples,
#: L13850), and Leave then completes (L11951 vs L11972); ``conference`` both visible to
#: all; ``consulting`` a consultant this agent invited is still there. LeftChat: the
#: "removed from conference" sample (media.md) + AddComment.
CHAT = StateTable("chat", {
    INVITED: {ALWAYS: {"Accept": CHATTING, "Reject": COMPLETED}},
    CHATTING: {
        ALWAYS: {"Transfer": COMPLETED, "Leave": LEFT_CHAT, "Invite": STAY, "Consult": STAY, "SetInFocus": STAY,
                 "SetDisposition": STAY, "AddComment": STAY, "AttachUserData": STAY, "DeleteUserData": STAY,
                 "UpdateUserData": STAY, "Complete": COMPLETED, "SendMessage": STAY,
                 "SendStartTypingNotification": STAY, "SendStopTypingNotification": STAY, "SendUrl": STAY,
                 "SendCustomNotice": STAY},
        "with_agents": {"SendToAgents": STAY, "SendStartTypingToAgentsNotification": STAY,
                        "SendStopTypingToAgentsNotification": STAY, "SendCustomNoticeToAgents": STAY,
                        "Leave": COMPLETED},
        "conference": {"RemoveParticipantFromConference": STAY},
        "consulting": {"CancelConsult": STAY},
    },
    LEFT_CHAT: {ALWAYS: {"SetInFocus": STAY, "Complete": COMPLETED, "SetDisposition": STAY, "AddComment": STAY,
                         "AttachUserData": STAY, "DeleteUserData": STAY, "UpdateUserData": STAY}},
})

#: Email (L16890 Processing; L17389 + Save Composing). ``draft``: a transferred
#: outbound draft is accepted back into Composing.
EMAIL = StateTable("email", {
    INVITED: {**_INVITED, "draft": {"Accept": COMPOSING}},
    PROCESSING: {ALWAYS: {"Reply": STAY, "ReplyAll": STAY, "Transfer": COMPLETED, "AddComment": STAY,
                          **_MEDIA_DATA, "SetDisposition": STAY, "SetInFocus": STAY, "Complete": COMPLETED}},
    COMPOSING: {ALWAYS: {"Cancel": CANCELED, "Send": SENT, "Save": STAY, "AddComment": STAY, **_MEDIA_DATA,
                         "SetDisposition": STAY, "SetInFocus": STAY, "Transfer": COMPLETED}},
})

_WORKITEM_PROCESSING = {"Transfer": COMPLETED, **_MEDIA_DATA, "SetInFocus": STAY, "Complete": COMPLETED}
#: Workitem (L35859) and open media (L24237 + the UCS operations).
WORKITEM = StateTable("workitem", {INVITED: _INVITED, PROCESSING: {ALWAYS: _WORKITEM_PROCESSING}})
OPENMEDIA = StateTable("openmedia", {
    INVITED: _INVITED,
    PROCESSING: {ALWAYS: {**_WORKITEM_PROCESSING, "AddContent": STAY, "GetContent": STAY}},
})

#: An IM session, per agent (L10797).
IM = StateTable("im", {TALKING: {ALWAYS: {"Complete": COMPLETED, "AttachUserData": STAY, "DeleteUserData": STAY,
                                          "UpdateUserData": STAY, "SendMessage": STAY}}})
