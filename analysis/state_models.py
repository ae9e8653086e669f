"""Reference state models of GWS resources, written as data.

Each model lists the states a resource can be in and the transitions the GWS
reference documents (or that follow directly from it), with the operation or
event that drives each. ``coverage.py`` compares what a capture shows with
these models: which transitions were exercised, which were never reached, and
which observed transitions the model does not allow (anomalies).

Sources (``../shared/gws-reference/``):
  * ``L<n>``  a line in gws-8.6-api-reference.txt (the 8.6 API reference)
  * ``P§n``   a section of protocol.md (digest of the same reference)
  * ``M§n``   a section of media.md (digest of the non-voice APIs)
Transitions marked ``inferred=True`` are not shown by a sample: they follow from
a state description, from the capabilities a sample lists, or by analogy with a
sibling API (the note says which).

Only *state changes* are modelled. Operations that leave the state alone
(AttachUserData on an Established call, SendMessage in a chat, ...) are covered
by the operation coverage, not here; consecutive notifications with the same
state collapse into one observation.

How a model is read from a capture is also data. Calls and interactions come
from the columns the recorder already extracted (``resource_id`` and
``resource_state`` of the notifications whose ``messageType`` the model names,
i.e. ``data.<state_path>``). Agent state, DND and forwarding live in the device
objects of DeviceStateChangeMessage, and the per-channel agent state and DND in the
channel objects of ChannelStateChangeMessageV2: those models name the list
(``element``) and give a SQL expression over one of its objects, parsed once into the
typed struct ``d`` (``ELEMENTS``).

Interactions end for an agent (a chat Completed or Revoked, an email Sent...): a
model's ``terminal_states`` say so, and the same interaction coming back to that agent
with a StatusChange (re-offered after a Reject, transferred back, re-invited to a chat,
pulled from a workbin) is a new participation, i.e. a transition from ``(new)``. Any
other notification after a terminal state (a late PropertiesUpdated) stays a transition
from that state, so out-of-order delivery still shows as an anomaly. Calls have no
terminal state: a call that comes back after Released is an anomaly.
"""

from __future__ import annotations

from dataclasses import dataclass

from gwsreplay.core.operations import AGENT_STATE_OPERATIONS

#: Pseudo-state before a resource's first notification. A transition from NEW
#: says how a resource comes into existence (Dial creates a Dialing call).
NEW = "(new)"


@dataclass(frozen=True)
class Transition:
    source: str
    target: str
    #: operationNames and/or events ("event: ...") that drive the change.
    triggers: tuple[str, ...]
    ref: str
    inferred: bool = False


#: The fields of a device object the device models read; DeviceStateChangeMessage
#: data is parsed once into this structure (DuckDB ``from_json``).
DEVICE_STRUCTURE = ('{"devices": [{"id": "VARCHAR", "doNotDisturb": "VARCHAR", "forwardTo": "VARCHAR", '
                    '"capabilities": ["VARCHAR"], "userState": {"state": "VARCHAR", "workMode": "VARCHAR"}}]}')
#: The same for the channel objects of ChannelStateChangeMessageV2 (L44962: channel, dndState, userState).
CHANNEL_STRUCTURE = ('{"channels": [{"channel": "VARCHAR", "dndState": "VARCHAR", '
                     '"userState": {"state": "VARCHAR", "workMode": "VARCHAR"}}]}')


@dataclass(frozen=True)
class Element:
    """A list of objects in a notification's data, each carrying the state of one resource."""

    name: str          # the list's key in data ("devices", "channels"); also names the SQL CTE
    structure: str     # DuckDB from_json structure of data, reduced to what the models read
    id_sql: str        # SQL over one object ``d``: the resource id (a device id, a channel name)


ELEMENTS: dict[str, Element] = {
    "devices": Element("devices", DEVICE_STRUCTURE, "d.id"),
    "channels": Element("channels", CHANNEL_STRUCTURE, "d.channel"),
}


@dataclass(frozen=True)
class StateModel:
    name: str
    title: str
    message_types: tuple[str, ...]
    #: Where the state is in the notification's ``data`` (documentation; the
    #: recorder extracts it into ``resource_state``).
    state_path: str
    #: Element models only: SQL over one object ``d`` of ``element`` -> state label.
    #: None: read the recorder's ``resource_id`` / ``resource_state`` columns.
    state_sql: str | None = None
    states: tuple[str, ...] = ()
    transitions: tuple[Transition, ...] = ()
    #: True when a resource's first notification shows its birth (a call appears
    #: as Dialing or Ringing). False for devices and channels: the first
    #: notification of a capture says where the agent already was, not how it got there.
    observes_creation: bool = True
    notes: str = ""
    #: The list of ``ELEMENTS`` the states are read from (with ``state_sql``).
    element: str | None = None
    #: States that end the agent's participation: a later StatusChange about the same
    #: resource for the same agent is a new participation (a transition from NEW).
    terminal_states: tuple[str, ...] = ()
    #: The channel the model belongs to (voice, chat, email, workitem, openmedia, im) or
    #: "media channels" for the per-channel agent models (their resource is the channel).
    channel: str = "voice"

    @property
    def edges(self) -> set[tuple[str, str]]:
        return {(t.source, t.target) for t in self.transitions}

    def allows(self, source: str, target: str) -> bool:
        return (source, target) in self.edges

    def transition(self, source: str, target: str) -> Transition | None:
        return next((t for t in self.transitions if (t.source, t.target) == (source, target)), None)


def _t(source, target, triggers, ref, inferred=False) -> Transition:
    if isinstance(triggers, str):
        triggers = (triggers,)
    return Transition(source, target, tuple(triggers), ref, inferred)


# --------------------------------------------------------------------------- voice

# Call states: "Dialing, Held, Established, and so on" (L4303); the states seen in
# the Voice API samples are Dialing, Ringing, Established, Held, Released (P§3.6).
CALL = StateModel(
    name="call",
    title="Voice call (CallStateChangeMessage.call.state)",
    message_types=("CallStateChangeMessage",),
    state_path="$.call.state",
    states=("Dialing", "Ringing", "Established", "Held", "Released"),
    transitions=(
        # Dial "initiates a new outbound call" (L5313); first notification Dialing (L5367).
        # InitiateTransfer/InitiateConference create the consult call "in the dialing
        # state" (L6576; samples L7338, L6682).
        _t(NEW, "Dialing", ("Dial", "InitiateTransfer", "InitiateConference"), "L5313, L5367, L6682, L7338"),
        # Inbound call delivered: "Since this call is ringing ..." (L1139-1172).
        _t(NEW, "Ringing", "event: inbound call delivered", "L1139"),
        # A party of a completed conference or transfer: "the two separate calls are brought
        # together" (L6726-6730) and T-Server moves the party onto the merged call, which it first
        # sees already Established (no sample shows that party's side).
        _t(NEW, "Established", ("event: call merged by CompleteConference / CompleteTransfer",),
           "L6726, L7765", inferred=True),
        # Consult call answered by the destination (InitiateTransfer sample L7461).
        _t("Dialing", "Established", "event: destination answered", "L7461"),
        # Hang up before the far end answers: Dialing capabilities "might be [\"HangUp\", \"Hold\"]" (L4310).
        _t("Dialing", "Released", ("Hangup", "event: destination busy or no answer"), "L4310, L5867", inferred=True),
        _t("Ringing", "Established", "Answer", "L5493, L5546"),
        # Reject redirects a queued call back to its queue (L5592, Released L5641).
        _t("Ringing", "Released", ("Reject", "event: caller abandoned"), "L5592, L5641"),
        # Hold (L5677, Held L5721); InitiateTransfer/InitiateConference hold the
        # current call (L6576; samples L7283, L6628); SwapCalls (L8275, L8377).
        _t("Established", "Held", ("Hold", "InitiateTransfer", "InitiateConference", "SwapCalls"),
           "L5677, L5721, L6628, L7283, L8377"),
        # Retrieve (L5774, Established L5818); SwapCalls (L8324); CompleteConference
        # brings the held call back (L6726, Established L6819).
        _t("Held", "Established", ("Retrieve", "SwapCalls", "CompleteConference"), "L5774, L5818, L6819, L8324"),
        # Hangup (L5867, Released L5911); SingleStepTransfer (L7061, L7114);
        # CompleteTransfer (L7765, L7813); CompleteConference releases the consult
        # call (L6773); ClearCall ends the conference (L6975, L7018); far-end hang-up.
        _t("Established", "Released",
           ("Hangup", "SingleStepTransfer", "CompleteTransfer", "CompleteConference", "ClearCall",
            "event: far end hung up"),
           "L5911, L6773, L7018, L7114, L7813"),
        # CompleteTransfer also releases the held original call (second Released, L7858);
        # Held capabilities include Hangup (L5752).
        _t("Held", "Released", ("CompleteTransfer", "Hangup", "event: far end hung up"), "L7858, L5752"),
    ),
)


def _agent_label_sql() -> str:
    """userState.state, plus '+workMode' for the NotReady work modes.

    ManualIn/AutoIn are the modes of Ready (L4656-4680) and say nothing about the
    agent state, so they are dropped; Logout (L39218) and LoggedOut (L4991 sample)
    are one state.
    """
    st, wm = "d.userState.state", "d.userState.workMode"
    return (f"CASE WHEN {st} = 'Logout' THEN 'LoggedOut' "
            f"WHEN coalesce({wm}, '') IN ('', 'ManualIn', 'AutoIn', 'Unknown') THEN {st} "
            f"ELSE {st} || '+' || {wm} END")


_LOGGED_IN = ("Ready", "NotReady", "NotReady+AuxWork", "NotReady+AfterCallWork")
# The operation that produces each logged-in state (agent-states table, L39210-39218), from the
# core's agent-state vocabulary: "NotReady+AuxWork" <- AuxWork.
_STATE_OP = {(f"{st}+{wm}" if wm else st): op for op, (st, wm) in AGENT_STATE_OPERATIONS.items()
             if (f"{st}+{wm}" if wm else st) in _LOGGED_IN}
_STATE_REF = {"Ready": "L4656", "NotReady": "L4727", "NotReady+AuxWork": "L4797",
              "NotReady+AfterCallWork": "L4868"}


def _agent_transitions() -> tuple[Transition, ...]:
    out: list[Transition] = []
    # "You can send any agent state operation at any time" (L39220): every
    # logged-in state reaches every other through that state's operation.
    for src in _LOGGED_IN:
        for dst in _LOGGED_IN:
            if src != dst:
                out.append(_t(src, dst, f"{_STATE_OP[dst]}", f"{_STATE_REF[dst]}, L39220"))
        # Offline -> userState LoggedOut (L4939, sample L4991); EndContactCenterSession
        # "logs out the agent" (L4622).
        out.append(_t(src, "LoggedOut", ("Offline", "EndContactCenterSession"), "L4939, L4991, L4622"))
    # StartContactCenterSession "logs in the user on that device" (L4385, L4402); the
    # state after login is T-Server's: NotReady+AuxWork in Sample 6 (L4572, L4600),
    # NotReady by default (inferred), Ready with workmode AutoIn (L4400-4410, inferred).
    out.append(_t("LoggedOut", "NotReady", ("StartContactCenterSession", "NotReady"), "L4385, L4402", inferred=True))
    out.append(_t("LoggedOut", "NotReady+AuxWork", ("StartContactCenterSession", "AuxWork"), "L4572, L4600"))
    out.append(_t("LoggedOut", "Ready", ("StartContactCenterSession", "Ready"), "L4385, L4656", inferred=True))
    return tuple(out)


AGENT_STATE = StateModel(
    name="agent_state",
    title="Agent state (device userState.state + workMode)",
    message_types=("DeviceStateChangeMessage",),
    state_path="$.devices[*].userState",
    state_sql=_agent_label_sql(),
    element="devices",
    states=_LOGGED_IN + ("LoggedOut",),
    transitions=_agent_transitions(),
    observes_creation=False,
    notes="Custom agent states (e.g. Training, P§7) show up as NotReady+<workMode> and are "
          "reported as states the model does not know.",
)

# doNotDisturb is "On" or "Off" (L4377); DoNotDisturbOn/Off on the device (L5010,
# L5084) or on all channels via POST /api/v2/me (L36879, M§14).
DND = StateModel(
    name="dnd",
    title="Do not disturb (device doNotDisturb)",
    message_types=("DeviceStateChangeMessage",),
    state_path="$.devices[*].doNotDisturb",
    state_sql="d.doNotDisturb",
    element="devices",
    states=("Off", "On"),
    transitions=(
        _t("Off", "On", "DoNotDisturbOn", "L5010, L5067"),
        _t("On", "Off", "DoNotDisturbOff", "L5084, L5141"),
    ),
    observes_creation=False,
)

# Forwarding has no state field: ForwardCallsOn adds forwardTo and swaps the
# ForwardCallsOn capability for ForwardCallsOff (L5158, sample L5220-5224). The
# ForwardCallsOff sample (L5236, L5296-5300) repeats the On sample, so the capability wins
# over forwardTo when they disagree.
FORWARDING = StateModel(
    name="forwarding",
    title="Call forwarding (device forwardTo / ForwardCalls* capability)",
    message_types=("DeviceStateChangeMessage",),
    state_path="$.devices[*].forwardTo, $.devices[*].capabilities",
    state_sql=("CASE WHEN list_contains(d.capabilities, 'ForwardCallsOff') THEN 'On' "
               "WHEN list_contains(d.capabilities, 'ForwardCallsOn') THEN 'Off' "
               "WHEN coalesce(d.forwardTo, '') <> '' THEN 'On' ELSE 'Off' END"),
    element="devices",
    states=("Off", "On"),
    transitions=(
        _t("Off", "On", "ForwardCallsOn", "L5158, L5220"),
        _t("On", "Off", "ForwardCallsOff", "L5236"),
    ),
    observes_creation=False,
)

# --------------------------------------------------------------------------- media

# IM states: "Initiating" (EventDialing), "Talking" (EventEstablished),
# "Alerting" (EventRinging), "Completed" (EventReleased) (L10739; M§1).
IM_SESSION = StateModel(
    name="im_session",
    channel="im",
    title="IM session (IMSessionStateChangeMessage.imSession.state)",
    message_types=("IMSessionStateChangeMessage",),
    state_path="$.imSession.state",   # trimmed: L10644 has " Talking"
    states=("Initiating", "Alerting", "Talking", "Completed"),
    terminal_states=("Completed",),
    transitions=(
        # The InitiateIMSession sample goes straight to Talking (L10748, L10802).
        _t(NEW, "Talking", "InitiateIMSession", "L10748, L10802"),
        _t(NEW, "Initiating", "InitiateIMSession", "L10739", inferred=True),
        # The destination's side: EventRinging, then EventEstablished (L10739).
        _t(NEW, "Alerting", "event: inbound IM (EventRinging)", "L10739", inferred=True),
        _t("Initiating", "Talking", "event: EventEstablished", "L10739", inferred=True),
        _t("Alerting", "Talking", "event: EventEstablished", "L10739", inferred=True),
        # Complete (L11107, Completed L11154); either party completing releases both (two-party call).
        _t("Talking", "Completed", ("Complete", "event: EventReleased"), "L11107, L11154"),
        _t("Initiating", "Completed", "event: EventReleased", "L10739", inferred=True),
        _t("Alerting", "Completed", "event: EventReleased", "L10739", inferred=True),
    ),
)

# Chat states are not enumerated by the reference (M§2, M§15.1); these are the
# ones its samples show. InWorkbin comes from the Workbins API (M§12). A chat has one
# party per agent: each agent's copy has its own state.
CHAT = StateModel(
    name="chat",
    channel="chat",
    title="Chat (ChatStateChangeMessage.chat.state)",
    message_types=("ChatStateChangeMessage",),
    state_path="$.chat.state",
    states=("Invited", "Chatting", "LeftChat", "Completed", "Revoked", "InWorkbin"),
    terminal_states=("Completed", "Revoked"),
    transitions=(
        # An invitation: routing, a Transfer, an Invite or a Consult names the agent; agent-side
        # Invited appears only in the supervisor Intrude sample (L15155, L15243).
        _t(NEW, "Invited", ("event: chat offered", "Transfer", "Invite", "Consult", "Intrude"), "L15243, L13563",
           inferred=True),
        # A chat pulled from a workbin by an agent who was not in it joins that agent Chatting
        # (PullChat with a nickname, L33441; enableJoinOnPullChat, M§12).
        _t(NEW, "Chatting", "PullChat", "L33441", inferred=True),
        _t("Invited", "Chatting", "Accept", "L11560, L11620"),
        # Reject: "presented to another agent", Completed (L11765, L11822).
        _t("Invited", "Completed", "Reject", "L11765, L11822"),
        # A consultation cancelled before the consultant accepted (CancelConsult, L13979), or an
        # invitation whose inviter left: the invitation is withdrawn.
        _t("Invited", "Revoked", ("CancelConsult", "event: inviter left"), "L13979", inferred=True),
        # Leave outside a conference -> LeftChat (L11904, L11957); a party removed from a
        # conference is LeftChat too (RemoveParticipantFromConference, Agent2's side L14443) ...
        _t("Chatting", "LeftChat", ("Leave", "RemoveParticipantFromConference"), "L11904, L11957, L14443"),
        # ... inside a conference/consultation -> Completed (L11977); Complete (L11985, L12046);
        # Transfer: no notification sample (L13563), sender side by analogy with workitems.
        _t("Chatting", "Completed", ("Complete", "Leave", "Transfer"), "L11977, L11985, L12046"),
        # LeftChat capabilities still offer Complete (L11957-11965); a removed conference party goes
        # LeftChat then Completed (media_operations.csv, RemoveParticipantFromConference).
        _t("LeftChat", "Completed", ("Complete", "RemoveParticipantFromConference"), "L11957", inferred=True),
        # Supervisor's copy when the chat is completed or queued (L14962).
        _t("Chatting", "Revoked", "event: chat completed or placed in a queue", "L14953, L14962"),
        _t("Chatting", "InWorkbin", "AddChat", "L33346", inferred=True),
        # AddChat names no state condition (L33346): a chat the agent left but did not complete.
        _t("LeftChat", "InWorkbin", "AddChat", "L33346", inferred=True),
        _t("InWorkbin", "Chatting", "PullChat", "L33441", inferred=True),
    ),
)

# Email states: Invited (Inbound), Processing (Inbound), Composing (Outbound),
# Completed (L16824); samples add Sent and Canceled (M§5).
EMAIL = StateModel(
    name="email",
    channel="email",
    title="Email (EmailStateChangeMessage.email.state)",
    message_types=("EmailStateChangeMessage",),
    state_path="$.email.state",
    states=("Invited", "Processing", "Composing", "Sent", "Canceled", "Completed", "InWorkbin"),
    terminal_states=("Completed", "Sent", "Canceled"),
    transitions=(
        # An inbound email offered by routing, or a transferred one (the Transfer sample L18728
        # shows the receiving side).
        _t(NEW, "Invited", ("event: inbound email offered", "Transfer"), "L16824, L18728", inferred=True),
        # Create (L17099, Composing L17147); Reply/ReplyAll create the outbound reply
        # in Composing (L17323, L17428); a draft pulled from a workbin by another agent (L33441).
        _t(NEW, "Composing", ("Create", "Reply", "ReplyAll", "PullEmail"), "L17099, L17147, L17323, L17428"),
        # An inbound email pulled from a workbin by an agent who did not have it (L33441).
        _t(NEW, "Processing", "PullEmail", "L33441", inferred=True),
        _t("Invited", "Processing", "Accept", "L16838, L16965"),
        # A transferred draft (Composing offers Transfer, L17389) is worked on as a draft.
        _t("Invited", "Composing", "Accept", "L17389", inferred=True),
        _t("Invited", "Completed", "Reject", "L16983, L17079"),
        _t("Composing", "Sent", "Send", "L17536, L17652"),
        _t("Composing", "Canceled", "Cancel", "L17264, L17314"),
        # Complete (L17824, L17949); Transfer's sample (L18728) shows the receiving
        # side, the sender's Completed is by analogy with workitems (L36409).
        _t("Processing", "Completed", ("Complete", "Transfer"), "L17824, L17949"),
        _t("Composing", "Completed", "Transfer", "L17389, L36409", inferred=True),
        _t("Processing", "InWorkbin", "AddEmail", "L33332", inferred=True),
        _t("InWorkbin", "Processing", "PullEmail", "L33441", inferred=True),
        # Drafts live in their own workbin (email-draft-wb; AddEmail names no state, L33332).
        _t("Composing", "InWorkbin", "AddEmail", "L33332", inferred=True),
        _t("InWorkbin", "Composing", "PullEmail", "L33441", inferred=True),
    ),
)

# Workitem states are not enumerated; the samples show Invited, Processing,
# Completed, and the Workbins API adds InWorkbin (M§13).
WORKITEM = StateModel(
    name="workitem",
    channel="workitem",
    title="Workitem (WorkitemStateChangeMessage.workitem.state)",
    message_types=("WorkitemStateChangeMessage",),
    state_path="$.workitem.state",
    states=("Invited", "Processing", "Completed", "InWorkbin"),
    terminal_states=("Completed",),
    transitions=(
        # An invitation, e.g. after a transfer (L36497, L36535).
        _t(NEW, "Invited", ("event: workitem offered", "Transfer"), "L36535"),
        # Create (L35754, L35799); pulled from a workbin by an agent who did not have it (L33441).
        _t(NEW, "Processing", ("Create", "PullWorkitem"), "L35754, L35799, L33441"),
        _t("Invited", "Processing", "Accept", "L35818, L35857"),
        _t("Invited", "Completed", "Reject", "L35911, L35950"),
        # Complete (L36034, L36085); Transfer completes the sender's copy (L36409).
        _t("Processing", "Completed", ("Complete", "Transfer"), "L36034, L36085, L36409"),
        _t("Processing", "InWorkbin", "AddWorkitem", "L33357"),
        _t("InWorkbin", "Processing", "PullWorkitem", "L33441"),
    ),
)

# Open media (M§8): the workitem model's states and transitions on its own API; no state
# enumeration, the samples show Invited (L24121), Processing and Completed.
OPENMEDIA = StateModel(
    name="openmedia",
    channel="openmedia",
    title="Open media (OpenmediaStateChangeMessage.openmedia.state)",
    message_types=("OpenmediaStateChangeMessage",),
    state_path="$.openmedia.state",
    states=("Invited", "Processing", "Completed", "InWorkbin"),
    terminal_states=("Completed",),
    transitions=(
        # An invitation (resource sample L24121; the Transfer target's, L25166).
        _t(NEW, "Invited", ("event: interaction offered", "Transfer"), "L24121, L25166"),
        # Create (L24130, Processing L24175); pulled from a (group) workbin (PullInteraction, M§12).
        _t(NEW, "Processing", ("Create", "PullInteraction"), "L24130, L24175"),
        _t("Invited", "Processing", "Accept", "L24195, L24275"),
        _t("Invited", "Completed", "Reject", "L24286, L24362"),
        # Complete (L24411, L24497); Transfer completes the sender's copy (L25039, L25116).
        _t("Processing", "Completed", ("Complete", "Transfer"), "L24411, L24497, L25116"),
        _t("Processing", "InWorkbin", "AddInteraction", "L33357", inferred=True),
        _t("InWorkbin", "Processing", "PullInteraction", "L33441", inferred=True),
    ),
)

# --------------------------------------------------------------------------- channels

# Per-channel agent state (Channels API, M§14): "Set channel to Ready / NotReady" (L36720,
# L36756), "Set all channels to Ready / NotReady" (L36792, L36828) and the supervisor's
# Offline (L45168); notified as ChannelStateChangeMessageV2 on /v2/me/channels (the
# supervisor samples L44962-45227, one channel per message). Voice is read from devices
# (agent_state). The label is the device model's: userState.state (+ a NotReady workMode).
_CHANNEL_ON = ("Ready", "NotReady")
CHANNEL_STATE = StateModel(
    name="channel_state",
    channel="media channels",
    title="Agent state per media channel (ChannelStateChangeMessageV2 channels[*].userState)",
    message_types=("ChannelStateChangeMessageV2",),
    state_path="$.channels[*].userState",
    state_sql=_agent_label_sql(),
    element="channels",
    states=_CHANNEL_ON + ("LoggedOut",),
    observes_creation=False,
    transitions=(
        _t("NotReady", "Ready", "Ready", "L36720, L36792, L44920"),
        _t("Ready", "NotReady", "NotReady", "L36756, L36828, L44982"),
        # Offline (supervisor sample L45168, userState LoggedOut L45222)
        _t("Ready", "LoggedOut", "Offline", "L45168, L45222"),
        _t("NotReady", "LoggedOut", "Offline", "L45168, L45222"),
        # Logging in to a channel: StartContactCenterSession lists it (the agent starts NotReady,
        # Sample 4), or a state operation names a channel the agent is not logged in to (as the
        # voice agent-state operations do without a session, L39220).
        _t("LoggedOut", "NotReady", ("StartContactCenterSession", "NotReady", "DoNotDisturbOn"),
           "L4385, L36756", inferred=True),
        _t("LoggedOut", "Ready", "Ready", "L36720, L39220", inferred=True),
    ),
    notes="EndContactCenterSession logs every channel out without a notification (as voice), so the "
          "next session's first channel message follows the last state of the previous one.",
)

# Per-channel do-not-disturb: dndState "On"/"Off" of the same messages (DoNotDisturbOn/Off on a
# channel L45106, L45044, or on all channels L36864, L36900); the DoNotDisturbOn sample spells it
# "0n" (L45146), read as On. A LoggedOut channel has no dndState (L45222).
CHANNEL_DND = StateModel(
    name="channel_dnd",
    channel="media channels",
    title="Do not disturb per media channel (ChannelStateChangeMessageV2 channels[*].dndState)",
    message_types=("ChannelStateChangeMessageV2",),
    state_path="$.channels[*].dndState",
    state_sql=("CASE upper(replace(d.dndState, '0', 'O')) WHEN 'ON' THEN 'On' WHEN 'OFF' THEN 'Off' "
               "ELSE d.dndState END"),
    element="channels",
    states=("Off", "On"),
    observes_creation=False,
    transitions=(
        _t("Off", "On", "DoNotDisturbOn", "L45106, L45146, L36864"),
        _t("On", "Off", "DoNotDisturbOff", "L45044, L36900"),
    ),
)

MODELS: dict[str, StateModel] = {
    m.name: m for m in (CALL, AGENT_STATE, DND, FORWARDING, CHANNEL_STATE, CHANNEL_DND, IM_SESSION, CHAT, EMAIL,
                        WORKITEM, OPENMEDIA)
}


def get_model(name: str) -> StateModel:
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown state model {name!r}; known: {', '.join(MODELS)}") from None


def markdown_tables() -> str:
    """The models as the markdown tables of docs/analysis.md (``python -m analysis.state_models``)."""
    out = []
    for m in MODELS.values():
        kind = (m.element or "devices")[:-1]
        src = ("read from the recorder's `resource_id` / `resource_state` columns" if m.state_sql is None
               else f"read from each {kind} object of the message (parsed once, `{kind.upper()}_STRUCTURE`)")
        creation = "" if m.observes_creation else \
            f" A {kind}'s first notification is not a transition (it shows where the agent already was)."
        terminal = (f" Terminal: {', '.join(m.terminal_states)} (a later StatusChange about it for the same "
                    f"agent is a new participation, from {NEW})." if m.terminal_states else "")
        notes = f" {m.notes}" if m.notes else ""
        out += [f"#### `{m.name}`: {m.title}", "",
                f"States: {', '.join(m.states)}. `{m.state_path}` of {', '.join(m.message_types)}, "
                f"{src}.{creation}{terminal}{notes}",
                "", "| from | to | driven by | reference |", "|---|---|---|---|"]
        out += [f"| {t.source} | {t.target} | {', '.join(t.triggers)} | {t.ref}{' (inferred)' if t.inferred else ''} |"
                for t in m.transitions]
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(markdown_tables())
