"""The GWS 8.6 voice contact-center model, without I/O (sans-IO).

The HTTP app hands every ``/api/v2`` request (except notifications) to
:meth:`ContactCenter.rest` once auth, cookies and CSRF are done; the model answers
``(http_status, body)`` and pushes CometD notifications through ``emit``. Time
comes from a :class:`Scheduler` (the asyncio loop in the app, a manual clock in
tests). See ``docs/voice-model.md`` for the behaviour and every choice made where
the reference is silent; line numbers ``L<n>`` point into
``gws-8.6-api-reference.txt``.

Reading order: constants and tables (agent states, call capabilities, status
codes) -> data model (Agent, Call, Leg) -> :class:`ContactCenter`: routing table,
GET handlers, operation tables per resource, operation handlers, call mechanics,
resource rendering, control API.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

from gwsreplay.sim.model.ids import IdGenerator
from gwsreplay.sim.model.roster import ROLE_SUPERVISOR, AgentStateSpec, Roster, UserSpec

log = logging.getLogger(__name__)


class Scheduler(Protocol):
    def now(self) -> float: ...
    def call_later(self, delay: float, callback: Callable[[], None]) -> Any: ...  # result has .cancel()


Emit = Callable[[str | None, str, dict], None]   # (user_name or None for everyone, channel, data)

# ----------------------------------------------------------------------------- channels

CH_DEVICES = "/v2/me/devices"
CH_CALLS = "/v2/me/calls"
CH_SERVICES = "/notifications/services"

# ----------------------------------------------------------------------------- status codes

# Return values table (L2282-2323).
SC_OK = 0
SC_MISSING = 1          # a required parameter is missing
SC_INVALID = 2          # a parameter is not valid for the current state
SC_FORBIDDEN = 3
SC_INTERNAL = 4
SC_NO_PERMISSION = 5
SC_NOT_FOUND = 6
SC_PARTIAL = 7
SC_RANGE = 10
SC_READ_ONLY = 11
SC_EXISTS = 18
SC_IN_USE = 19
SC_NOT_AUTHENTICATED = 20

VOICE_UNAVAILABLE = "Voice service is not available at this time"   # L1319-1326


def http_status_for(status_code: int, *, voice_down: bool = False) -> int:
    """The project-wide statusCode -> HTTP status mapping (docs/voice-model.md)."""
    if status_code in (SC_OK, SC_PARTIAL):
        return 200
    if status_code in (SC_MISSING, SC_INVALID, SC_RANGE, SC_READ_ONLY):
        return 400
    if status_code in (SC_FORBIDDEN, SC_NO_PERMISSION):
        return 403
    if status_code == SC_NOT_FOUND:
        return 404
    if status_code == SC_INTERNAL:
        return 503 if voice_down else 400
    if status_code in (SC_EXISTS, SC_IN_USE):
        return 409
    if status_code == SC_NOT_AUTHENTICATED:
        return 401
    return 400


class GwsError(Exception):
    """A synchronous failure: becomes ``{"statusCode", "statusMessage"}`` + HTTP status."""

    def __init__(self, status_code: int, message: str, *, http_status: int | None = None):
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.http_status = http_status      # overrides http_status_for (a media service down: 503)


def _missing(name: str) -> GwsError:
    return GwsError(SC_MISSING, f"Parameter '{name}' is missing")


def _invalid(name: str, why: str = "The specified value is not within valid range") -> GwsError:
    # Wording of the only documented example (L4565-4569).
    return GwsError(SC_INVALID, f"Parameter '{name}' is invalid: \"{why}\"")


# ----------------------------------------------------------------------------- agent states

@dataclass(frozen=True)
class AgentState:
    operation_name: str
    display_name: str
    state: str                    # T-Server state: Ready | NotReady | Logout
    work_mode: str | None = None
    reason: str | None = None
    id: str = ""

    def setting(self) -> dict:
        out = {"id": self.id, "operationName": self.operation_name, "displayName": self.display_name,
               "state": self.state}
        if self.work_mode:
            out["workMode"] = self.work_mode
        if self.reason:
            out["reason"] = self.reason
        return out


# System agent states with their fixed GUIDs, in the order of the 8.6 sample (L39245-39290).
SYSTEM_AGENT_STATES: tuple[AgentState, ...] = (
    AgentState("NotReady", "Not Ready", "NotReady", id="900D55CC-2BB0-431F-8BF9-D3525B383BE6"),
    AgentState("Offline", "Offline", "Logout", id="0F7F5003-EF26-4D13-A6Ef-D0C7EC819BEB"),
    AgentState("AuxWork", "AuxWork", "NotReady", "AuxWork", id="2B36138D-C564-4562-A8CB-3C32D564F296"),
    AgentState("AfterCallWork", "AfterCallWork", "NotReady", "AfterCallWork",
               id="D3663509-3D82-4DD3-A82E-2EA8EFA02AEF"),
    AgentState("Ready", "Ready", "Ready", id="9430250E-0A1B-421F-B372-F29E69366DED"),
)
OFFLINE_STATE_ID = "0F7F5003-EF26-4D13-A6Ef-D0C7EC819BEB"
#: The device's userState once logged out, as in the Offline sample (L4935-4945).
LOGGED_OUT_USER_STATE = {"id": OFFLINE_STATE_ID, "displayName": "Offline", "state": "LoggedOut"}

READY_WORKMODES = ("ManualIn", "AutoIn")                                    # L4656-4680
NOT_READY_WORKMODES = ("AuxWork", "AfterCallWork", "LegalGuard", "NoCallDisconnect", "WalkAway")  # L39235

DISPOSITIONS = (   # GET /settings/dispositions sample (L2924-2944)
    {"displayName": "Issue Escalated", "name": "EscalationCreated"},
    {"displayName": "Issue Resolved", "name": "IssueResolved"},
    {"displayName": "Update Provided", "name": "UpdateProvided"},
    {"displayName": "Information Requested", "name": "InfoRequested"},
)
DEFAULT_DISPOSITION_KEY = "DispositionCode"

# ----------------------------------------------------------------------------- calls: states and capabilities

DIALING, RINGING, ESTABLISHED, HELD, RELEASED = "Dialing", "Ringing", "Established", "Held", "Released"
ACTIVE_STATES = (DIALING, ESTABLISHED)

INTERNAL, INBOUND, OUTBOUND, CONSULT = "Internal", "Inbound", "Outbound", "Consult"

USER_DATA_OPS = ("AttachUserData", "UpdateUserData", "DeleteUserData", "DeleteUserDataPair")

#: State -> capabilities of a plain two-party call, from the samples: Dialing (Dial,
#: L5367-5395), Ringing (L1139-1172), Established (Answer L5493-5530), Held (Hold
#: L5721-5748), Released (Hangup L5911-5925: empty).
CALL_CAPABILITIES: dict[str, tuple[str, ...]] = {
    DIALING: ("SendDtmf", "Hangup") + USER_DATA_OPS,
    RINGING: ("Answer",) + USER_DATA_OPS,
    ESTABLISHED: ("Hold", "Hangup", "SendDtmf", "SingleStepTransfer", "InitiateTransfer",
                  "SingleStepConference", "InitiateConference") + USER_DATA_OPS,
    HELD: ("Retrieve", "Hangup", "SingleStepTransfer", "InitiateTransfer",
           "SingleStepConference", "InitiateConference") + USER_DATA_OPS,
    RELEASED: (),
}
#: Added when the same device also has a call on hold (Dialing/Established side) or an
#: active call (Held side): consult samples L7338-7360, SwapCalls sample 2 L8660-8760.
WITH_OTHER_CALL = ("SwapCalls", "CompleteTransfer")
#: ... and CompleteConference once the active one is Established (L8700-8720).
WITH_OTHER_ESTABLISHED = ("CompleteConference",)
#: Established conference (three or more visible parties): SingleStepConference sample
#: L6436-6452, MuteCall sample L6115-6131. ClearCall is our addition (docs).
CONFERENCE = ("MuteCall", "ClearCall")
CONFERENCE_OWNER = ("RemoveParticipantFromConference",)
#: Recording state -> extra capabilities on an Established call (L10246-10262, L10330-10346,
#: L10500-10515).
RECORDING_CAPABILITIES = {
    "Stopped": ("StartCallRecording",),
    "Recording": ("PauseCallRecording", "StopCallRecording"),
    "Paused": ("ResumeCallRecording", "StopCallRecording"),
}
#: Supervisor's own leg (SwitchToBargeIn/SwitchToListenIn samples, L9960-9975, L10040-10055).
MONITOR_SWITCH = {"ListenIn": ("SwitchToBargeIn",), "Coach": ("SwitchToBargeIn",),
                  "BargeIn": ("SwitchToListenIn",)}

# Canonical order in which capabilities are listed (clients must treat them as a set).
CAPABILITY_ORDER = (
    "Answer", "Reject", "Retrieve", "Hold", "Hangup", "SendDtmf", "MuteCall", "UnmuteCall",
    "SingleStepTransfer", "InitiateTransfer", "SingleStepConference", "InitiateConference",
    "SwapCalls", "CompleteTransfer", "CompleteConference", "RemoveParticipantFromConference", "ClearCall",
    "AttachUserData", "UpdateUserData", "DeleteUserData", "DeleteUserDataPair",
    "StartCallRecording", "PauseCallRecording", "ResumeCallRecording", "StopCallRecording",
    "SwitchToBargeIn", "SwitchToListenIn", "MuteMonitoredUser", "UnmuteMonitoredUser",
)
_CAP_RANK = {name: i for i, name in enumerate(CAPABILITY_ORDER)}

EXTENSIONS = {"WrapUpTime": 0, "BusinessCall": 0}

MONITOR_STATES = ("ListenIn", "Coach", "BargeIn")
MONITOR_SCOPES = ("Call", "Agent")
MONITOR_MODES = ("AllCalls", "NextCall")

_DIALABLE = re.compile(r"^\+?[0-9*#]+$")
_DTMF = re.compile(r"^[0-9*#A-Da-d]+$")
_SWITCH_NAME = "SIP_Switch"


# ----------------------------------------------------------------------------- data model

@dataclass(eq=False)
class Monitoring:
    """A supervisor's monitoring subscription (device ``supervisorMonitoringState``)."""
    state: str          # ListenIn | Coach | BargeIn
    mode: str           # AllCalls | NextCall
    scope: str          # Call | Agent
    target: "Agent"


@dataclass(eq=False)
class Agent:
    spec: UserSpec
    user_id: str
    device_id: str
    session: bool = False               # StartContactCenterSession done, not ended
    logged_in: bool = False             # logged in to the switch (not Offline)
    user_state: dict = field(default_factory=lambda: dict(LOGGED_OUT_USER_STATE))
    dnd: bool = False
    forward_to: str | None = None
    dynamic_phone_number: str | None = None
    monitoring: Monitoring | None = None
    media_only: bool = False            # session started without "voice" (multimedia channels only)

    @property
    def name(self) -> str:
        return self.spec.user_name

    @property
    def phone(self) -> str:
        return self.spec.phone_number

    @property
    def is_supervisor(self) -> bool:
        return ROLE_SUPERVISOR in self.spec.roles


@dataclass(eq=False)
class Leg:
    """One party of a call: an agent's device (with its own view of the call) or an
    external number."""
    call: "Call"
    number: str
    agent: Agent | None
    state: str
    call_type: str
    started: float
    mute: bool = False
    rejectable: bool = False            # delivered "via a queue" (injected): Reject allowed
    conference_owner: bool = False
    monitor: str | None = None          # supervisor leg: ListenIn | Coach | BargeIn
    monitored_user_muted: bool = False
    released_at: float | None = None
    final_participants: list | None = None
    timer: Any = None                   # pending far-end answer

    @property
    def active(self) -> bool:
        return self.state != RELEASED

    @property
    def visible(self) -> bool:
        """Counted as a participant by the others (hidden monitors are not)."""
        return self.monitor is None or self.monitor == "BargeIn"


@dataclass(eq=False)
class Call:
    id: str
    conn_id: str
    dnis: str
    created: float
    ani: str | None = None
    legs: list[Leg] = field(default_factory=list)
    user_data: dict = field(default_factory=dict)
    recording: str = "Stopped"
    parent: "Call | None" = None
    seq: int = 0                        # creation order, to list an agent's calls as self.calls does

    @property
    def uuid(self) -> str:
        return self.id

    def active_legs(self) -> list[Leg]:
        return [leg for leg in self.legs if leg.active]

    def parties(self) -> list[Leg]:
        """Active legs that make the call a call (monitors excluded)."""
        return [leg for leg in self.legs if leg.active and leg.monitor is None]

    def agent_legs(self) -> list[Leg]:
        return [leg for leg in self.legs if leg.active and leg.agent is not None]


# ----------------------------------------------------------------------------- operation tables

#: Operations that only change the agent state: never governed by capabilities (L1051-1058).
SYSTEM_STATE_OPS = tuple(s.operation_name for s in SYSTEM_AGENT_STATES)
DEVICE_FEATURE_OPS = ("DoNotDisturbOn", "DoNotDisturbOff", "ForwardCallsOn", "ForwardCallsOff")
SUPERVISOR_DEVICE_OPS = ("ListenIn", "Coach", "BargeIn", "CancelSupervisorMonitoring")
OPERATION_ALIASES = {
    # The page title says "CancelSupervisionMonitoring"; its operationName is
    # CancelSupervisorMonitoring (L9880-9895). Accept both.
    "CancelSupervisionMonitoring": "CancelSupervisorMonitoring",
    # The page title says "SendDTMF"; the operationName is SendDtmf (L5960-5975).
    "SendDTMF": "SendDtmf",
}


class ContactCenter:
    """One simulated GWS 8.6 node with its T-Server, for every user of a roster."""

    def __init__(self, roster: Roster, *, scheduler: Scheduler, emit: Emit, seed: int = 0,
                 base_url: str = "http://127.0.0.1:8090", external_answer_delay: float = 1.0,
                 call_recording: bool = True, ended_calls_kept: int = 1000, multimedia: bool = False):
        self.roster = roster
        self.scheduler = scheduler
        self._emit = emit
        self.seed = seed
        self.base_url = base_url.rstrip("/")
        self.api = self.base_url + "/api/v2"
        self.external_answer_delay = external_answer_delay
        self.call_recording = call_recording
        self.ids = IdGenerator(seed)

        # Fixed resources first, so their ids depend on the seed and roster only.
        self.voice_environment_id = self.ids.uuid()
        self.services: list[dict] = [
            {"id": self.ids.service_id(), "name": "Provisioning", "type": "Provisioning", "state": "Active"},
            # The Voice service id is the voice environment id, as in the samples (L1285, L1089).
            {"id": self.voice_environment_id, "name": "SIPS", "type": "Voice", "state": "Active"},
        ]
        self.agents: dict[str, Agent] = {}
        self.agents_by_device: dict[str, Agent] = {}
        self.agents_by_phone: dict[str, Agent] = {}
        for spec in roster.users.values():
            agent = Agent(spec=spec, user_id=self.ids.user_id(), device_id=self.ids.device_id())
            self.agents[spec.user_name] = agent
            self.agents_by_device[agent.device_id] = agent
            self.agents_by_phone[spec.phone_number] = agent
        self.agent_states: list[AgentState] = list(SYSTEM_AGENT_STATES)
        for custom in roster.agent_states:
            self.agent_states.append(self._custom_state(custom))
        self.agent_states_by_op = {s.operation_name: s for s in self.agent_states}

        self.calls: dict[str, Call] = {}                 # live calls, creation order
        self._calls_by_agent: dict[Agent, dict[str, Call]] = {}  # live calls each agent has a leg on
        self._call_seq = 0
        self.ended: OrderedDict[str, Call] = OrderedDict()   # for SetCallDisposition after release
        self._ended_kept = ended_calls_kept
        self._route_table: list | None = None
        # Multimedia (chat, email, workitems, open media, IM, workbins, media channels):
        # gwsreplay.sim/media.py, docs/media-model.md. Off, this node answers as a GWS
        # without the api-multimedia feature. Its ids come from their own seeded stream,
        # so turning it on changes no voice id.
        self.media = None
        if multimedia:
            from gwsreplay.sim.model.media import Multimedia
            self.media = Multimedia(self, seed=seed)
            self.services.extend(self.media.services)

    def _custom_state(self, spec: AgentStateSpec) -> AgentState:
        return AgentState(spec.operation_name, spec.display_name, spec.state, spec.work_mode, spec.reason,
                          id=self.ids.agent_state_id())

    # ================================================================== public API

    def check_password(self, user_name: str, password: str) -> bool:
        agent = self.agents.get(user_name)
        return agent is not None and agent.spec.password == password

    def rest(self, user_name: str, method: str, path: str, query: Mapping[str, str], body: Any
             ) -> tuple[int, dict]:
        """Answer one ``/api/v2`` request; never raises."""
        try:
            agent = self.agents.get(user_name)
            if agent is None:
                raise GwsError(SC_NOT_AUTHENTICATED, "Access denied")
            norm = "/" + path.strip("/") if path.strip("/") else "/"
            handler, params = self._route(method.upper(), norm)
            result = handler(agent, params, query or {}, body)
            return 200, result
        except GwsError as err:
            return self._error(err)
        except Exception:  # the model must never take the server down
            log.exception("voice model failed on %s %s", method, path)
            return self._error(GwsError(SC_INTERNAL, "Internal error"))

    def end_session(self, user_name: str) -> None:
        """The HTTP session died (EndContactCenterSession or expiry): log the agent out."""
        agent = self.agents.get(user_name)
        if agent is not None:
            self._end_contact_center_session(agent)

    def inject_call(self, from_number: str, to_number: str, user_data: dict | None = None
                    ) -> tuple[int, dict]:
        """Control API: an external caller rings an agent (Inbound call, via a queue)."""
        try:
            self._require_voice()
            from_number, to_number = str(from_number), str(to_number)
            if not from_number:
                raise _missing("from")
            if not to_number:
                raise _missing("to")
            if user_data is not None and not isinstance(user_data, dict):
                raise _invalid("userData", "must be a JSON object")
            target = self.agents_by_phone.get(to_number)
            if target is None:
                raise GwsError(SC_NOT_FOUND, f"No agent has phone number {to_number}")
            dest_agent, dest_number = self._resolve_destination(to_number)
            if dest_agent is not None and dest_agent.dnd:
                raise GwsError(SC_IN_USE, f"Destination {dest_number} is busy (do not disturb)")
            call = self._new_call(dnis=to_number, ani=from_number, user_data=user_data)
            caller = self._add_leg(call, from_number, None, DIALING, INBOUND)
            self._deliver(call, dest_number, dest_agent, INBOUND, rejectable=True)
            return 200, {"statusCode": SC_OK, "id": call.id}
        except GwsError as err:
            return self._error(err)

    def far_end_hangup(self, call_id: str) -> tuple[int, dict]:
        """Control API: the external party (or, on an agent-only call, everyone) hangs up."""
        try:
            self._require_voice()
            call = self.calls.get(call_id)
            if call is None:
                raise GwsError(SC_NOT_FOUND, f"Call {call_id} not found")
            externals = [leg for leg in call.active_legs() if leg.agent is None]
            if externals:
                self._leave(call, externals)
            else:
                self._release_call(call, first=None)
            return 200, {"statusCode": SC_OK}
        except GwsError as err:
            return self._error(err)

    def set_service_state(self, service_type: str, state: str) -> tuple[int, dict]:
        """Control API: ``("voice", "Inactive")`` emits ServiceStateChangeMessage to everyone."""
        service = next((s for s in self.services if s["type"].lower() == str(service_type).lower()), None)
        if service is None and self.media is not None:
            service = self.media.find_service(service_type)   # "chat", "email", "workitem", "UCS", ...
        if service is None:
            return self._error(GwsError(SC_NOT_FOUND, f"No service of type {service_type!r}"))
        if state not in ("Active", "Inactive", "ReadOnly"):
            return self._error(_invalid("state"))
        if service["state"] != state:
            service["state"] = state
            self._emit(None, CH_SERVICES, {"messageType": "ServiceStateChangeMessage", "service": dict(service)})
            if state == "Active" and self.media is not None:
                self.media._dispatch_waiting()
        return 200, {"statusCode": SC_OK}

    def snapshot(self) -> dict:
        """Everything a test or the desktop page wants to see, JSON-ready."""
        return {
            "time": self.scheduler.now(),
            "services": [dict(s) for s in self.services],
            "agents": [
                {
                    "userName": a.name, "userId": a.user_id, "phoneNumber": a.phone, "place": a.spec.place,
                    "roles": list(a.spec.roles), "session": a.session, "loggedIn": a.logged_in,
                    "userState": dict(a.user_state), "deviceId": a.device_id,
                    "doNotDisturb": "On" if a.dnd else "Off", "forwardTo": a.forward_to,
                    "supervisorMonitoringState": self._monitoring_state(a),
                    "calls": [c.id for c in self._calls_of(a)],
                }
                for a in self.agents.values()
            ],
            "devices": [self._device_resource(a) for a in self.agents.values()],
            "calls": [
                {
                    "id": c.id, "connId": c.conn_id, "callUuid": c.uuid, "dnis": c.dnis, "ani": c.ani,
                    "userData": dict(c.user_data), "recordingState": c.recording,
                    "parentCallId": c.parent.id if c.parent else None,
                    "parties": [
                        {"phoneNumber": leg.number, "userName": leg.agent.name if leg.agent else None,
                         "state": leg.state, "callType": leg.call_type, "mute": leg.mute,
                         "monitor": leg.monitor, "duration": self._duration(leg)}
                        for leg in c.active_legs()
                    ],
                }
                for c in self.calls.values()
            ],
            **({"media": self.media.snapshot()} if self.media is not None else {}),
        }

    # ================================================================== routing

    def _routes(self):
        """(method, path regex, handler): read top-down to see the whole API surface."""
        return (
            ("GET", r"/me", self._get_me),
            ("POST", r"/me", self._post_me),
            ("GET", r"/me/devices", self._get_my_devices),
            ("GET", r"/me/devices/(?P<device_id>[^/]+)", self._get_my_device),
            ("POST", r"/me/devices/(?P<device_id>[^/]+)", self._post_my_device),
            ("GET", r"/me/devices/(?P<device_id>[^/]+)/calls", self._get_my_device_calls),
            ("POST", r"/me/devices/(?P<device_id>[^/]+)/calls", self._post_my_device_calls),
            ("GET", r"/me/calls", self._get_my_calls),
            ("GET", r"/me/calls/(?P<call_id>[^/]+)", self._get_my_call),
            ("POST", r"/me/calls/(?P<call_id>[^/]+)", self._post_my_call),
            ("GET", r"/me/channels", self._get_my_channels),
            ("GET", r"/me/channels/(?P<channel>[^/]+)", self._get_my_channel),
            ("POST", r"/me/channels/(?P<channel>[^/]+)", self._post_my_channel),
            ("GET", r"/me/settings/agent-states", self._get_agent_states),
            ("GET", r"/settings/agent-states", self._get_agent_states),
            ("GET", r"/settings/dispositions", self._get_dispositions),
            ("GET", r"/devices", self._get_devices),
            ("GET", r"/devices/(?P<device_id>[^/]+)", self._get_device),
            ("GET", r"/services", self._get_services),
            ("GET", r"/services/(?P<service_id>[^/]+)", self._get_service),
        )

    def _route(self, method: str, path: str):
        if self._route_table is None:
            routes = self._routes() + (self.media.routes() if self.media is not None else ())
            self._route_table = [(m, re.compile(p), h) for m, p, h in routes]
        path_matched = False
        for route_method, pattern, handler in self._route_table:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            path_matched = True
            if route_method == method:
                return handler, match.groupdict()
        if path_matched:
            raise GwsError(SC_INVALID, f"Method {method} is not supported on {path}")
        raise GwsError(SC_NOT_FOUND, f"Resource {path} not found")

    def _error(self, err: GwsError) -> tuple[int, dict]:
        voice_down = err.status_code == SC_INTERNAL and not self.voice_active
        status = err.http_status or http_status_for(err.status_code, voice_down=voice_down)
        return status, {
            "statusCode": err.status_code, "statusMessage": err.message}

    @property
    def voice_active(self) -> bool:
        return self._voice_service()["state"] == "Active"

    def _voice_service(self) -> dict:
        return next(s for s in self.services if s["type"] == "Voice")

    def _require_voice(self) -> None:
        if not self.voice_active:
            raise GwsError(SC_INTERNAL, VOICE_UNAVAILABLE)

    # ================================================================== GET handlers

    def _get_me(self, agent, params, query, body):
        user = self._user_resource(agent)
        subresources = _split(query.get("subresources"))
        if subresources:
            everything = "*" in subresources or "**" in subresources
            if everything or "devices" in subresources:
                user["devices"] = [self._device_resource(agent)]
            if everything or "skills" in subresources:
                user["skills"] = []
            if everything or "settings" in subresources:
                roles = ",".join(r.removeprefix("ROLE_").capitalize() for r in agent.spec.roles)
                user["settings"] = {"GWS": {"roles": roles}}
            if everything or "calls" in subresources:
                user["calls"] = [self._call_resource(self._leg_of(agent, c)) for c in self._calls_of(agent)]
        return {"statusCode": SC_OK, "user": _project(user, query.get("fields"))}

    def _get_my_devices(self, agent, params, query, body):
        return self._collection("devices", [agent], self._device_resource,
                                lambda a: f"/devices/{a.device_id}", query)

    def _get_my_device(self, agent, params, query, body):
        self._my_device(agent, params["device_id"])
        return {"statusCode": SC_OK, "device": _project(self._device_resource(agent), query.get("fields"))}

    def _get_my_device_calls(self, agent, params, query, body):
        self._my_device(agent, params["device_id"])
        return self._get_my_calls(agent, params, query, body)

    def _get_my_calls(self, agent, params, query, body):
        legs = [self._leg_of(agent, c) for c in self._calls_of(agent)]
        return self._collection("calls", legs, self._call_resource, lambda leg: f"/calls/{leg.call.id}", query,
                                uri=lambda leg: self._call_uri(leg.call))

    def _get_my_call(self, agent, params, query, body):
        leg = self._my_leg(agent, params["call_id"])
        return {"statusCode": SC_OK, "call": _project(self._call_resource(leg), query.get("fields"))}

    def _get_my_channels(self, agent, params, query, body):
        channels = [self._voice_channel(agent)]
        if self.media is not None:   # by channel name, as the sample (chat, email, voice; L36578)
            channels = sorted(channels + self.media.channel_entries(agent), key=lambda c: c["channel"])
        return {"statusCode": SC_OK, "channels": channels}

    def _get_my_channel(self, agent, params, query, body):
        if params["channel"] != "voice" and self.media is not None:
            return {"statusCode": SC_OK, "channels": self.media.get_channel(agent, params["channel"])}
        if params["channel"] != "voice":
            raise GwsError(SC_NOT_FOUND, f"Channel {params['channel']} not found")
        # The sample answers GET /me/channels/{id} with a "channels" object (L36694-36715).
        return {"statusCode": SC_OK, "channels": self._voice_channel(agent)}

    def _get_agent_states(self, agent, params, query, body):
        return {"statusCode": SC_OK, "settings": [s.setting() for s in self.agent_states], "key": "operationName"}

    def _get_dispositions(self, agent, params, query, body):
        return {"statusCode": SC_OK, "key": "name", "settings": [dict(d) for d in DISPOSITIONS]}

    def _get_devices(self, agent, params, query, body):
        return self._collection("devices", list(self.agents.values()), self._device_resource,
                                lambda a: f"/devices/{a.device_id}", query)

    def _get_device(self, agent, params, query, body):
        owner = self.agents_by_device.get(params["device_id"])
        if owner is None:
            raise GwsError(SC_NOT_FOUND, f"Device {params['device_id']} not found")
        return {"statusCode": SC_OK, "device": _project(self._device_resource(owner), query.get("fields"))}

    def _get_services(self, agent, params, query, body):
        return self._collection("services", self.services, dict, lambda s: f"/services/{s['id']}", query)

    def _get_service(self, agent, params, query, body):
        service = next((s for s in self.services if s["id"] == params["service_id"]), None)
        if service is None:
            raise GwsError(SC_NOT_FOUND, f"Service {params['service_id']} not found")
        return {"statusCode": SC_OK, "service": [dict(service)]}   # an array, as documented (L3690-3700)

    def _collection(self, plural, items, render, path_of, query, uri=None):
        """``uris``+``paths`` without ``fields``; full objects with it (L2325-2437)."""
        fields = query.get("fields")
        if fields:
            return {"statusCode": SC_OK, plural: [_project(render(i), fields) for i in items]}
        paths = [path_of(i) for i in items]
        uris = [uri(i) for i in items] if uri else [self.api + p for p in paths]
        return {"statusCode": SC_OK, "uris": uris, "paths": paths}

    # ================================================================== POST dispatch

    # operationName -> handler name, one table per resource. Agent-state operations
    # (system and custom) are accepted wherever AGENT_STATE is listed.
    AGENT_STATE = "_op_agent_state"
    ME_OPERATIONS = {
        "StartContactCenterSession": "_op_start_session",
        "EndContactCenterSession": "_op_end_session",
        "Ready": AGENT_STATE,
        "NotReady": AGENT_STATE,
        "DoNotDisturbOn": "_op_dnd_on",
        "DoNotDisturbOff": "_op_dnd_off",
    }
    VOICE_CHANNEL_OPERATIONS = {
        "DoNotDisturbOn": "_op_dnd_on",
        "DoNotDisturbOff": "_op_dnd_off",
        "ForwardCallsOn": "_op_forward_on",
        "ForwardCallsOff": "_op_forward_off",
    }
    DEVICE_OPERATIONS = {
        "DoNotDisturbOn": "_op_dnd_on",
        "DoNotDisturbOff": "_op_dnd_off",
        "ForwardCallsOn": "_op_forward_on",
        "ForwardCallsOff": "_op_forward_off",
        "ListenIn": "_op_monitor",
        "Coach": "_op_monitor",
        "BargeIn": "_op_monitor",
        "CancelSupervisorMonitoring": "_op_cancel_monitoring",
    }
    DEVICE_CALLS_OPERATIONS = {
        "Dial": "_op_dial",
    }
    CALL_OPERATIONS = {
        # basic call control
        "Answer": "_op_answer",
        "Reject": "_op_reject",
        "Hold": "_op_hold",
        "Retrieve": "_op_retrieve",
        "Hangup": "_op_hangup",
        "SendDtmf": "_op_send_dtmf",
        "MuteCall": "_op_mute",
        "UnmuteCall": "_op_unmute",
        "SetCallDisposition": "_op_set_disposition",
        # transfers and conferences
        "SingleStepTransfer": "_op_single_step_transfer",
        "InitiateTransfer": "_op_initiate_consult",
        "CompleteTransfer": "_op_complete_transfer",
        "SingleStepConference": "_op_single_step_conference",
        "InitiateConference": "_op_initiate_consult",
        "CompleteConference": "_op_complete_conference",
        "RemoveParticipantFromConference": "_op_remove_participant",
        "ClearCall": "_op_clear_call",
        "SwapCalls": "_op_swap_calls",
        # call data
        "AttachUserData": "_op_attach_user_data",
        "UpdateUserData": "_op_attach_user_data",
        "DeleteUserData": "_op_delete_user_data",
        "DeleteUserDataPair": "_op_delete_user_data_pair",
        # recording
        "StartCallRecording": "_op_recording",
        "PauseCallRecording": "_op_recording",
        "ResumeCallRecording": "_op_recording",
        "StopCallRecording": "_op_recording",
        # supervision (on the supervisor's own call)
        "SwitchToBargeIn": "_op_switch_monitoring",
        "SwitchToListenIn": "_op_switch_monitoring",
        "MuteMonitoredUser": "_op_mute_monitored",
        "UnmuteMonitoredUser": "_op_mute_monitored",
    }
    #: Call operations allowed whatever the capabilities say.
    UNGOVERNED_CALL_OPERATIONS = ("SetCallDisposition",)

    def _operation(self, body: Any, table: dict, *, agent_states: bool) -> tuple[str, Callable]:
        if not isinstance(body, Mapping):
            raise _missing("operationName")
        op = body.get("operationName")
        if op is None or op == "":
            raise _missing("operationName")
        if not isinstance(op, str):
            raise _invalid("operationName", "must be a string")
        op = OPERATION_ALIASES.get(op, op)
        name = table.get(op)
        if name is None and agent_states and op in self.agent_states_by_op:
            name = self.AGENT_STATE
        if name is None:
            raise _invalid("operationName", f"Operation {op} is not supported on this resource")
        return op, getattr(self, name)

    def _post_me(self, agent, params, query, body):
        op, handler = self._operation(body, self.ME_OPERATIONS, agent_states=False)
        if op in ("StartContactCenterSession", "EndContactCenterSession"):
            return self._done(handler(agent, op, body))    # channel by channel (partial success)
        media = self.media if self.media is not None and self.media.has_channels(agent) else None
        if media is None or not agent.media_only:
            self._require_voice()
            self._check_device_capability(agent, op)
            handler(agent, op, body)
        if media is not None:      # "Set all channels to Ready/NotReady/DND" (Channels API, L36800)
            media.set_all_channels(agent, op, body)
        return self._done(None)

    def _post_my_channel(self, agent, params, query, body):
        if params["channel"] != "voice" and self.media is not None:
            return self.media.channel_operation(agent, params["channel"], body)
        if params["channel"] != "voice":
            raise GwsError(SC_NOT_FOUND, f"Channel {params['channel']} not found")
        op, handler = self._operation(body, self.VOICE_CHANNEL_OPERATIONS, agent_states=True)
        self._require_voice()
        self._check_device_capability(agent, op)
        return self._done(handler(agent, op, body))

    def _post_my_device(self, agent, params, query, body):
        self._my_device(agent, params["device_id"])
        op, handler = self._operation(body, self.DEVICE_OPERATIONS, agent_states=True)
        self._require_voice()
        if op in SUPERVISOR_DEVICE_OPS:
            if not agent.is_supervisor:
                raise GwsError(SC_NO_PERMISSION, "The user does not have permission to perform this operation")
            if op != "CancelSupervisorMonitoring":
                self._require_login(agent)
        self._check_device_capability(agent, op)
        return self._done(handler(agent, op, body))

    def _post_my_device_calls(self, agent, params, query, body):
        self._my_device(agent, params["device_id"])
        op, handler = self._operation(body, self.DEVICE_CALLS_OPERATIONS, agent_states=False)
        self._require_voice()
        return self._done(handler(agent, op, body))

    def _post_my_call(self, agent, params, query, body):
        op, handler = self._operation(body, self.CALL_OPERATIONS, agent_states=False)
        self._require_voice()
        call_id = params["call_id"]
        if op == "SetCallDisposition":
            leg = self._my_leg(agent, call_id, include_ended=True)
        else:
            leg = self._my_leg(agent, call_id)
            caps = self._capabilities(leg)
            if op not in caps and op not in self.UNGOVERNED_CALL_OPERATIONS:
                raise GwsError(SC_INVALID, f"Operation {op} is not valid for call {call_id} in state "
                                           f"{leg.state} (capabilities: {', '.join(caps) or 'none'})")
        return self._done(handler(agent, op, leg, body))

    @staticmethod
    def _done(result: dict | None) -> dict:
        out = {"statusCode": SC_OK}
        if result:
            out.update(result)
        return out

    def _require_login(self, agent: Agent) -> None:
        """Supervisor monitoring needs the supervisor logged in to the switch."""
        if not agent.logged_in:
            raise GwsError(SC_INVALID, "The agent is not logged in: send StartContactCenterSession "
                                       "or an agent-state operation first")

    def _check_device_capability(self, agent: Agent, op: str) -> None:
        if op in DEVICE_FEATURE_OPS or op in SUPERVISOR_DEVICE_OPS:
            caps = self._device_capabilities(agent)
            if op not in caps:
                raise GwsError(SC_INVALID, f"Operation {op} is not valid for device {agent.device_id} in its "
                                           f"current state (capabilities: {', '.join(caps)})")

    # ================================================================== session and agent state

    def _op_start_session(self, agent, op, body):
        channels = body.get("channels")
        if channels is None:
            raise _missing("channels")
        if not isinstance(channels, list) or not channels or not all(isinstance(c, str) for c in channels):
            raise _invalid("channels", "must be a non-empty array of channel names")
        workmode = body.get("workmode")
        if workmode is not None and workmode not in READY_WORKMODES:
            raise _invalid("workmode")
        place = body.get("place")
        if place is not None and place != agent.spec.place:
            raise _invalid("place", f"Place {place} is not assigned to the user")
        device_path = body.get("devicePath")
        if device_path is not None and str(device_path).rstrip("/").rsplit("/", 1)[-1] != agent.device_id:
            raise _invalid("devicePath", f"Device {device_path} is not assigned to the user")
        dynamic = body.get("dynamicPhoneNumber")
        if dynamic is not None and (not isinstance(dynamic, str) or not _DIALABLE.match(dynamic)):
            raise _invalid("dynamicPhoneNumber")
        others = list(dict.fromkeys(c for c in channels if c.lower() != "voice"))
        wants_voice = len(others) < len(channels)
        succeeded: list[dict] = []
        failed: list[dict] = []
        if wants_voice:
            if self.voice_active:
                if dynamic is not None:
                    agent.dynamic_phone_number = dynamic
                if not agent.logged_in:
                    agent.logged_in = True
                    agent.user_state = self._user_state(self.agent_states_by_op["NotReady"])
                    self._emit_device(agent)
                succeeded.append({"channel": "voice", "statusCode": SC_OK})
            else:
                failed.append({"channel": "voice", "statusCode": SC_INTERNAL, "statusMessage": VOICE_UNAVAILABLE})
        if others:
            if self.media is None:
                # Without the multimedia feature: the reference's partial-success sample (L4500-4522).
                failed.append({"channel": "multimedia", "statusCode": SC_FORBIDDEN,
                               "statusMessage": "Unsupported feature"})
            else:
                ok, bad = self.media.start_channels(agent, others)
                succeeded += ok
                failed += bad
        if not succeeded:
            # "If all channel operations fail, Web Services only returns a statusCode and
            # statusMessage for one of the channels." (L4401)
            first = failed[0]
            raise GwsError(first["statusCode"], first["statusMessage"],
                           http_status=503 if first["statusCode"] == SC_INTERNAL else None)
        agent.session = True
        agent.media_only = not wants_voice or not any(s["channel"] == "voice" for s in succeeded)
        result: dict = {}
        if failed:
            result = {"statusCode": SC_PARTIAL, "succeeded": succeeded, "failed": failed}
        if dynamic is not None and wants_voice and self.voice_active:
            result["devices"] = [self._device_resource(agent)]
        return result

    def _op_end_session(self, agent, op, body):
        self._end_contact_center_session(agent)

    def _end_contact_center_session(self, agent: Agent) -> None:
        # 8.5.2: "There are no notifications associated with this operation"; the HTTP
        # session (and with it every CometD client of the user) dies anyway.
        agent.session = False
        agent.media_only = False
        agent.logged_in = False
        agent.user_state = dict(LOGGED_OUT_USER_STATE)
        agent.dynamic_phone_number = None
        if self.media is not None:
            self.media.end_session(agent)
        if agent.monitoring is not None:
            self._stop_monitoring(agent, notify_device=False)

    def _op_agent_state(self, agent, op, body):
        """Ready, NotReady, AuxWork, AfterCallWork, Offline and custom states (L4650-4990)."""
        spec = self.agent_states_by_op[op]
        if spec.state == "Logout":
            if agent.logged_in:
                agent.logged_in = False
                agent.user_state = dict(LOGGED_OUT_USER_STATE)
                self._emit_device(agent)
            return None
        work_mode, reason = spec.work_mode, spec.reason
        workmode_param = body.get("workmode")
        if workmode_param is not None:
            valid = READY_WORKMODES if spec.state == "Ready" else NOT_READY_WORKMODES
            if workmode_param not in valid:
                raise _invalid("workmode")
            work_mode = workmode_param
        reason_param = body.get("reasonCode", body.get("reason"))
        if reason_param is not None:
            if not isinstance(reason_param, (str, int)) or isinstance(reason_param, bool) or reason_param == "":
                raise _invalid("reasonCode", "must be a non-empty string")
            if spec.state != "NotReady":
                raise _invalid("reasonCode", "applies to NotReady states only")
            reason = str(reason_param)
        wrap_up = body.get("wrapUpTime")
        if wrap_up is not None and not str(wrap_up).isdigit():
            raise _invalid("wrapUpTime")
        new_state = self._match_user_state(spec.state, work_mode, reason)
        if agent.logged_in and new_state == agent.user_state:
            return None   # "if the current user is already in the NotReady state, the request is ignored"
        agent.logged_in = True
        agent.user_state = new_state
        self._emit_device(agent)
        return None

    def _match_user_state(self, state: str, work_mode: str | None, reason: str | None) -> dict:
        """Attach the id/displayName of the agent-state operation that matches (8.5.2
        "Agent State Matching"); an unmatched state has neither."""
        for spec in self.agent_states:
            if (spec.state, spec.work_mode, spec.reason) == (state, work_mode, reason):
                return self._user_state(spec, work_mode, reason)
        for spec in self.agent_states:
            if spec.state == state and spec.reason == reason and spec.work_mode is None:
                return self._user_state(spec, work_mode, reason)
        out = {"state": state}
        if work_mode:
            out["workMode"] = work_mode
        if reason:
            out["reason"] = reason
        return out

    @staticmethod
    def _user_state(spec: AgentState, work_mode: str | None = None, reason: str | None = None) -> dict:
        out = {"id": spec.id, "displayName": spec.display_name, "state": spec.state}
        work_mode = work_mode or spec.work_mode
        reason = reason or spec.reason
        if work_mode:
            out["workMode"] = work_mode
        if reason:
            out["reason"] = reason
        return out

    # ================================================================== device features

    def _op_dnd_on(self, agent, op, body):
        agent.dnd = True
        self._emit_device(agent)

    def _op_dnd_off(self, agent, op, body):
        agent.dnd = False
        self._emit_device(agent)

    def _op_forward_on(self, agent, op, body):
        destination = body.get("destination")
        if isinstance(destination, Mapping):
            destination = destination.get("phoneNumber")
        if destination is None or destination == "":
            raise _missing("destination")
        destination = str(destination)
        if not _DIALABLE.match(destination) or destination == agent.phone:
            raise _invalid("destination")
        agent.forward_to = destination
        self._emit_device(agent)

    def _op_forward_off(self, agent, op, body):
        agent.forward_to = None
        self._emit_device(agent)

    # ================================================================== supervision (device)

    def _op_monitor(self, agent, op, body):
        """ListenIn / Coach / BargeIn on a target device (L9560-9860)."""
        target_uri = body.get("targetDeviceUri")
        if target_uri is None or target_uri == "":
            raise _missing("targetDeviceUri")
        target = self.agents_by_device.get(str(target_uri).rstrip("/").rsplit("/", 1)[-1])
        if target is None or target is agent:
            raise _invalid("targetDeviceUri", f"No device to monitor at {target_uri}")
        scope = body.get("supervisorMonitoringScope", "Call")
        if scope not in MONITOR_SCOPES:
            raise _invalid("supervisorMonitoringScope")
        mode = body.get("supervisorMonitoringMode", "AllCalls")
        if mode not in MONITOR_MODES:
            raise _invalid("supervisorMonitoringMode")
        if agent.monitoring is not None:
            self._stop_monitoring(agent, notify_device=False)
        agent.monitoring = Monitoring(state=op, mode=mode, scope=scope, target=target)
        self._emit_device(agent)
        # Intrusion: a call the target already has is joined at once (docs/voice-model.md).
        for call in self._calls_of(target):
            leg = self._leg_of(target, call)
            if leg.state == ESTABLISHED and leg.monitor is None:
                self._join_monitor(agent, call)
                break

    def _op_cancel_monitoring(self, agent, op, body):
        self._stop_monitoring(agent, notify_device=True)

    def _stop_monitoring(self, supervisor: Agent, *, notify_device: bool) -> None:
        supervisor.monitoring = None
        for call in list(self._calls_of(supervisor)):
            leg = self._leg_of(supervisor, call)
            if leg.monitor is not None:
                self._leave(call, [leg])
        if notify_device:
            self._emit_device(supervisor)

    def _join_monitor(self, supervisor: Agent, call: Call) -> None:
        mon = supervisor.monitoring
        if mon is None or self._leg_of(supervisor, call) is not None:
            return
        if any(self._leg_of(supervisor, c).monitor for c in self._calls_of(supervisor)):
            return   # one monitored call at a time
        leg = self._add_leg(call, supervisor.phone, supervisor, ESTABLISHED, INTERNAL)
        leg.monitor = mon.state
        leg.mute = mon.state == "ListenIn"
        self._emit_call(leg, "StatusChange")
        self._announce_monitor_change(call, leg)

    def _announce_monitor_change(self, call: Call, monitor_leg: Leg) -> None:
        """BargeIn is a visible participant for everyone; ListenIn/Coach only change the
        monitored agent's ``supervisorListeningIn``."""
        target = monitor_leg.agent.monitoring.target if monitor_leg.agent.monitoring else None
        for leg in call.agent_legs():
            if leg is monitor_leg or leg.monitor is not None:
                continue
            if monitor_leg.visible or leg.agent is target:
                self._emit_call(leg, "ParticipantsUpdated")

    def _maybe_monitor(self, leg: Leg) -> None:
        """A monitored agent's call became Established: bring their supervisors in."""
        if leg.agent is None or leg.monitor is not None:
            return
        for sup in self.agents.values():
            if sup.monitoring is not None and sup.monitoring.target is leg.agent:
                self._join_monitor(sup, leg.call)

    # ================================================================== dialing

    def _op_dial(self, agent, op, body):
        number = self._destination(body)
        user_data = self._optional_user_data(body)
        if self._unreachable(agent, number, device_error=True):
            return None
        dest_agent, dest_number = self._resolve_destination(number)
        call = self._new_call(dnis=number, user_data=user_data)
        caller = self._add_leg(call, agent.phone, agent, DIALING, INTERNAL if dest_agent else OUTBOUND)
        callee = self._add_leg(call, dest_number, dest_agent, RINGING, INTERNAL)
        self._emit_call(caller, "StatusChange")   # Dialing, the dialed number as participant (L5367)
        self._start_ringing(callee)

    def _destination(self, body) -> str:
        destination = body.get("destination")
        if destination is None:
            raise _missing("destination")
        if isinstance(destination, Mapping):
            number = destination.get("phoneNumber")
            if number is None or number == "":
                raise _missing("destination.phoneNumber")
        elif isinstance(destination, (str, int)) and not isinstance(destination, bool):
            number = destination
        else:
            raise _invalid("destination", "must be an object with a phoneNumber")
        return str(number)

    @staticmethod
    def _optional_user_data(body) -> dict:
        user_data = body.get("userData")
        if user_data is None:
            return {}
        if not isinstance(user_data, Mapping):
            raise _invalid("userData", "must be a JSON object")
        return dict(user_data)

    def _unreachable(self, agent: Agent, number: str, *, device_error: bool = False,
                     call: Call | None = None) -> bool:
        """T-Server refusals, reported asynchronously as ErrorMessage: an undialable number,
        the agent's own number, a number already on the call, a destination in DND."""
        message = None
        if not _DIALABLE.match(number) or number == agent.phone:
            message = "Invalid Called Dn"
        elif call is not None and any(leg.number == number for leg in call.active_legs()):
            message = "Invalid Called Dn"
        else:
            dest_agent, _ = self._resolve_destination(number)
            if dest_agent is not None and dest_agent.dnd:
                message = "DN is busy"
        if message is None:
            return False
        self._emit_error(agent, message, call=None if device_error else call)
        return True

    def _resolve_destination(self, number: str) -> tuple[Agent | None, str]:
        """Agent or external number, after one hop of call forwarding."""
        agent = self.agents_by_phone.get(number)
        if agent is not None and agent.forward_to and agent.forward_to != number:
            forwarded = agent.forward_to
            return self.agents_by_phone.get(forwarded), forwarded
        return agent, number

    def _deliver(self, call: Call, number: str, dest_agent: Agent | None, call_type: str, *,
                 rejectable: bool = False) -> Leg:
        """Bring a new party into ``call``: an agent's phone rings, an external number
        answers after ``external_answer_delay``."""
        leg = self._add_leg(call, number, dest_agent, RINGING, call_type)
        leg.rejectable = rejectable and dest_agent is not None
        self._start_ringing(leg)
        return leg

    def _start_ringing(self, leg: Leg) -> None:
        if leg.agent is not None:
            self._emit_call(leg, "StatusChange")
        else:
            leg.timer = self.scheduler.call_later(
                self.external_answer_delay, lambda: self._guard(self._external_answers, leg))

    def _external_answers(self, leg: Leg) -> None:
        leg.timer = None
        if leg.state == RINGING:
            self._establish(leg)

    def _guard(self, fn, *args) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("voice model timer failed")

    def _establish(self, leg: Leg) -> None:
        """``leg`` answers: it and every Dialing party of its call become Established."""
        call = leg.call
        established = [leg] + [other for other in call.active_legs() if other is not leg and other.state == DIALING]
        for party in established:
            party.state = ESTABLISHED
        for party in established:
            self._emit_call(party, "StatusChange")
        for party in established:
            self._maybe_monitor(party)

    # ================================================================== basic call control

    def _op_answer(self, agent, op, leg, body):
        self._establish(leg)

    def _op_reject(self, agent, op, leg, body):
        # "Web Services redirects the call to the queue from which it was delivered"
        # (L5592). There is no queue here: the call ends.
        self._release_call(leg.call, first=leg)

    def _op_hold(self, agent, op, leg, body):
        leg.state = HELD
        self._emit_call(leg, "StatusChange")

    def _op_retrieve(self, agent, op, leg, body):
        leg.state = ESTABLISHED
        self._emit_call(leg, "StatusChange")

    def _op_hangup(self, agent, op, leg, body):
        self._leave(leg.call, [leg])

    def _op_send_dtmf(self, agent, op, leg, body):
        digits = body.get("digits")
        if digits is None or digits == "":
            raise _missing("digits")
        if not isinstance(digits, (str, int)) or isinstance(digits, bool) or not _DTMF.match(str(digits)):
            raise _invalid("digits")
        self._emit_call(leg, "DtmfSent")

    def _op_mute(self, agent, op, leg, body):
        leg.mute = True
        self._emit_call(leg, "StatusChange")

    def _op_unmute(self, agent, op, leg, body):
        leg.mute = False
        self._emit_call(leg, "StatusChange")

    def _op_set_disposition(self, agent, op, leg, body):
        disposition = body.get("disposition")
        if disposition is None or disposition == "":
            raise _missing("disposition")
        key = body.get("dispositionKey") or DEFAULT_DISPOSITION_KEY
        if not leg.active:
            return None   # released: EventUserEvent to reporting, no notification (L6300-6305)
        leg.call.user_data[str(key)] = disposition
        self._emit_to_call(leg, "AttachedDataChanged")

    # ================================================================== call data

    def _op_attach_user_data(self, agent, op, leg, body):
        user_data = body.get("userData")
        if user_data is None:
            raise _missing("userData")
        if not isinstance(user_data, Mapping):
            raise _invalid("userData", "must be a JSON object")
        leg.call.user_data.update(user_data)
        self._emit_to_call(leg, "AttachedDataChanged")

    def _op_delete_user_data(self, agent, op, leg, body):
        leg.call.user_data.clear()
        self._emit_to_call(leg, "AttachedDataChanged")

    def _op_delete_user_data_pair(self, agent, op, leg, body):
        key = body.get("key")
        if key is None or key == "":
            raise _missing("key")
        leg.call.user_data.pop(str(key), None)
        self._emit_to_call(leg, "AttachedDataChanged")

    # ================================================================== recording

    RECORDING_TRANSITIONS = {
        "StartCallRecording": ("Recording", "ON"),
        "PauseCallRecording": ("Paused", "PAUSED"),
        "ResumeCallRecording": ("Recording", "ON"),
        "StopCallRecording": ("Stopped", "OFF"),
    }

    def _op_recording(self, agent, op, leg, body):
        state, flag = self.RECORDING_TRANSITIONS[op]
        leg.call.recording = state
        leg.call.user_data["GSIP_RECORD"] = flag      # as in the samples (L10250-10256)
        self._emit_to_call(leg, "CallRecordingStateChange")

    # ================================================================== transfers and conferences

    def _op_single_step_transfer(self, agent, op, leg, body):
        number = self._destination(body)
        user_data = self._optional_user_data(body)
        call = leg.call
        if self._unreachable(agent, number, call=call):
            return None
        call.user_data.update(user_data)
        dest_agent, dest_number = self._resolve_destination(number)
        self._release_legs([leg])
        self._emit_call(leg, "StatusChange")
        new_leg = self._deliver(call, dest_number, dest_agent, self._joining_type(call))
        self._drop_monitors_of(call, agent)
        for other in call.agent_legs():
            if other is not new_leg and other.monitor is None:
                self._emit_call(other, "ParticipantsUpdated")
        self._check_call_end(call)

    def _op_single_step_conference(self, agent, op, leg, body):
        number = self._destination(body)
        user_data = self._optional_user_data(body)
        call = leg.call
        if self._unreachable(agent, number, call=call):
            return None
        call.user_data.update(user_data)
        call.user_data.setdefault("FirstConferencePartyDN", agent.phone)   # L6436-6452
        leg.conference_owner = True
        dest_agent, dest_number = self._resolve_destination(number)
        new_leg = self._add_leg(call, dest_number, dest_agent, RINGING, self._joining_type(call))
        # Everyone already on the call sees the new participant first, the new party rings after.
        self._emit_to_call(leg, "ParticipantsUpdated", exclude=(new_leg,))
        self._start_ringing(new_leg)

    def _op_initiate_consult(self, agent, op, leg, body):
        """InitiateTransfer / InitiateConference: hold this call, dial a Consult call."""
        number = self._destination(body)
        user_data = self._optional_user_data(body)
        parent = leg.call
        if self._unreachable(agent, number, call=parent):
            return None
        dest_agent, dest_number = self._resolve_destination(number)
        consult = self._new_call(dnis=number, user_data={**parent.user_data, **user_data})
        consult.parent = parent
        caller = self._add_leg(consult, agent.phone, agent, DIALING, CONSULT)
        callee = self._add_leg(consult, dest_number, dest_agent, RINGING, CONSULT)
        leg.state = HELD
        self._emit_call(leg, "StatusChange")      # Held, already offering SwapCalls (L7283-7310)
        self._emit_call(caller, "StatusChange")   # the Consult call, Dialing (L7338-7360)
        self._start_ringing(callee)

    def _consult_pair(self, agent: Agent, leg: Leg, body) -> tuple[Leg, Leg]:
        """(held leg, active leg) of the agent for Complete*/SwapCalls."""
        other_uri = body.get("consultCallUri") or body.get("otherCallUri")
        if other_uri:
            other_id = str(other_uri).rstrip("/").rsplit("/", 1)[-1]
            other = self._leg_of(agent, self.calls.get(other_id)) if other_id in self.calls else None
            if other is None or other is leg:
                name = "consultCallUri" if body.get("consultCallUri") else "otherCallUri"
                raise _invalid(name, f"No call of yours at {other_uri}")
        else:
            other = self._other_leg(agent, leg)
            if other is None:
                raise GwsError(SC_INVALID, "There is no other call to complete with")
        held, active = (leg, other) if leg.state == HELD else (other, leg)
        if held.state != HELD or active.state not in ACTIVE_STATES:
            raise GwsError(SC_INVALID, "One call must be held and the other dialing or established")
        return held, active

    def _op_complete_transfer(self, agent, op, leg, body):
        held, active = self._consult_pair(agent, leg, body)
        original, consult = held.call, active.call
        # The transferring agent leaves both calls: original first, then consult (L7765-7860).
        self._release_legs([held])
        self._emit_call(held, "StatusChange")
        self._release_legs([active])
        self._emit_call(active, "StatusChange")
        moved = self._merge(consult, original)
        self._drop_monitors_of(original, agent)
        for other in original.agent_legs():
            if other not in moved and other.monitor is None:
                self._emit_call(other, "ParticipantsUpdated")
        self._check_call_end(original)

    def _op_complete_conference(self, agent, op, leg, body):
        held, active = self._consult_pair(agent, leg, body)
        if active.state != ESTABLISHED:
            raise GwsError(SC_INVALID, "The consult call is not established yet")
        original, consult = held.call, active.call
        self._release_legs([active])
        self._emit_call(active, "StatusChange")      # the consult call is released (L6726-6770)
        moved = self._merge(consult, original)
        held.state = ESTABLISHED
        held.conference_owner = True
        self._emit_call(held, "ParticipantsUpdated")  # ... and the original call grows (L6773-6830)
        for other in original.agent_legs():
            if other is not held and other not in moved and other.monitor is None:
                self._emit_call(other, "ParticipantsUpdated")

    def _merge(self, source: Call, target: Call) -> list[Leg]:
        """Move the remaining parties of ``source`` into ``target`` (T-Server's
        EventPartyChanged): their agents see the source call Released, then the target call."""
        for leg in [x for x in source.active_legs() if x.monitor is not None]:
            self._leave(source, [leg])
        moving = source.active_legs()
        for leg in moving:
            if leg.agent is not None:
                self._emit_released_view(leg)
        for leg in moving:
            source.legs.remove(leg)
            leg.call = target
            if leg.agent is not None:
                leg.call_type = self._joining_type(target)
                if not any(x.agent is leg.agent for x in source.legs):
                    self._calls_by_agent.get(leg.agent, {}).pop(source.id, None)
            target.legs.append(leg)
            self._index_leg(leg)
        for leg in moving:
            if leg.agent is not None:
                self._emit_call(leg, "StatusChange")
        for leg in moving:
            if leg.state == ESTABLISHED:
                self._maybe_monitor(leg)
        self._forget_if_done(source)
        return moving

    def _emit_released_view(self, leg: Leg) -> None:
        """Tell ``leg``'s agent that its current call is Released, without releasing the leg."""
        saved = leg.state, leg.released_at, leg.final_participants
        leg.final_participants = self._participants(leg)
        leg.state, leg.released_at = RELEASED, self.scheduler.now()
        try:
            self._emit_call(leg, "StatusChange")
        finally:
            leg.state, leg.released_at, leg.final_participants = saved

    def _op_remove_participant(self, agent, op, leg, body):
        participant = body.get("participant")
        if participant is None or participant == "":
            raise _missing("participant")
        call = leg.call
        victim = next((p for p in call.active_legs()
                       if p.number == str(participant) and p is not leg and p.monitor is None), None)
        if victim is None:
            self._emit_error(agent, "Invalid DN", call=call)   # T-Server refuses: asynchronous
            return None
        self._leave(call, [victim], requester=leg)

    def _op_clear_call(self, agent, op, leg, body):
        self._release_call(leg.call, first=leg)

    def _op_swap_calls(self, agent, op, leg, body):
        held, active = self._consult_pair(agent, leg, body)
        if active.state != ESTABLISHED:
            # SwapCalls is listed for a Dialing consult call (L8660-8700) but a call that
            # is still dialing cannot be held: T-Server refuses.
            self._emit_error(agent, "Incorrect object state", call=active.call)
            return None
        active.state = HELD
        self._emit_call(active, "StatusChange")
        held.state = ESTABLISHED
        self._emit_call(held, "StatusChange")

    # ================================================================== supervision (call)

    def _op_switch_monitoring(self, agent, op, leg, body):
        new_state = "BargeIn" if op == "SwitchToBargeIn" else "ListenIn"
        leg.monitor = new_state
        leg.mute = new_state == "ListenIn"
        if agent.monitoring is not None:
            agent.monitoring.state = new_state
        self._emit_call(leg, "StatusChange")
        for other in leg.call.agent_legs():
            if other is not leg and other.monitor is None:
                self._emit_call(other, "ParticipantsUpdated")

    def _op_mute_monitored(self, agent, op, leg, body):
        muted = op == "MuteMonitoredUser"
        target = agent.monitoring.target if agent.monitoring else None
        leg.monitored_user_muted = muted
        self._emit_call(leg, "MonitoredUserMutedStateChange")
        target_leg = self._leg_of(target, leg.call) if target else None
        if target_leg is not None:
            target_leg.monitored_user_muted = muted
            self._emit_call(target_leg, "MonitoredUserMutedStateChange")

    # ================================================================== call mechanics

    def _new_call(self, *, dnis: str, ani: str | None = None, user_data: dict | None = None) -> Call:
        call_id, conn_id = self.ids.call_ids()
        self._call_seq += 1
        call = Call(id=call_id, conn_id=conn_id, dnis=dnis, ani=ani, created=self.scheduler.now(),
                    user_data=dict(user_data or {}), seq=self._call_seq)
        self.calls[call.id] = call
        return call

    def _add_leg(self, call: Call, number: str, agent: Agent | None, state: str, call_type: str) -> Leg:
        leg = Leg(call=call, number=number, agent=agent, state=state, call_type=call_type,
                  started=self.scheduler.now())
        call.legs.append(leg)
        self._index_leg(leg)
        return leg

    def _index_leg(self, leg: Leg) -> None:
        if leg.agent is not None:
            self._calls_by_agent.setdefault(leg.agent, {})[leg.call.id] = leg.call

    @staticmethod
    def _joining_type(call: Call) -> str:
        """callType for an agent who joins an existing call (transfer/conference target)."""
        return INBOUND if any(leg.agent is None for leg in call.active_legs()) else INTERNAL

    def _release_legs(self, legs: list[Leg]) -> None:
        """Mark legs Released, freezing what each saw (participants, duration)."""
        frozen = [(leg, self._participants(leg)) for leg in legs]
        now = self.scheduler.now()
        for leg, participants in frozen:
            leg.state = RELEASED
            leg.released_at = now
            leg.final_participants = participants
            leg.mute = False
            if leg.timer is not None:
                _cancel(leg.timer)
                leg.timer = None

    def _leave(self, call: Call, legs: list[Leg], *, requester: Leg | None = None) -> None:
        """Some parties hang up; the call ends when fewer than two parties remain."""
        legs = [leg for leg in legs if leg.active]
        remaining = [p for p in call.parties() if p not in legs]
        if len(remaining) < 2 and any(leg.monitor is None for leg in legs):
            self._release_call(call, first=legs[0] if legs else None)
            return
        self._release_legs(legs)
        for leg in legs:
            self._emit_call(leg, "StatusChange")
            self._after_monitor_left(leg)
        for leg in legs:
            if leg.agent is not None and leg.monitor is None:
                self._drop_monitors_of(call, leg.agent)
        if any(leg.visible for leg in legs):
            ordered = call.agent_legs()
            if requester is not None and requester in ordered:
                ordered.remove(requester)
                ordered.insert(0, requester)
            for other in ordered:
                self._emit_call(other, "ParticipantsUpdated")
        elif legs and legs[0].monitor is not None:
            # a hidden monitor left: the monitored agent's supervisorListeningIn changes
            for other in call.agent_legs():
                if other.monitor is None:
                    self._emit_call(other, "ParticipantsUpdated")
        self._forget_if_done(call)

    def _drop_monitors_of(self, call: Call, agent: Agent) -> None:
        """Agent-scope monitoring ends when the monitored agent leaves the call."""
        for leg in call.active_legs():
            sup = leg.agent
            if leg.monitor is not None and sup and sup.monitoring and sup.monitoring.target is agent:
                if sup.monitoring.scope == "Agent" or not any(
                        p.agent is not None and p.monitor is None for p in call.active_legs()):
                    self._leave(call, [leg])

    def _check_call_end(self, call: Call) -> None:
        if call.active_legs() and len(call.parties()) < 2:
            self._release_call(call, first=None)
        self._forget_if_done(call)

    def _release_call(self, call: Call, *, first: Leg | None) -> None:
        """Everyone is released; ``first`` is notified first."""
        legs = call.active_legs()
        if first is not None and first in legs:
            legs.remove(first)
            legs.insert(0, first)
        self._release_legs(legs)
        for leg in legs:
            self._emit_call(leg, "StatusChange")
        for leg in legs:
            self._after_monitor_left(leg)
        self._forget_if_done(call)

    def _after_monitor_left(self, leg: Leg) -> None:
        sup = leg.agent
        if leg.monitor is not None and sup is not None and sup.monitoring is not None \
                and sup.monitoring.mode == "NextCall":
            sup.monitoring = None
            self._emit_device(sup)

    def _forget_if_done(self, call: Call) -> None:
        if call.id in self.calls and not call.active_legs():
            del self.calls[call.id]
            for leg in call.legs:
                mine = self._calls_by_agent.get(leg.agent) if leg.agent is not None else None
                if mine is not None:
                    mine.pop(call.id, None)
                    if not mine:
                        del self._calls_by_agent[leg.agent]
            self.ended[call.id] = call
            while len(self.ended) > self._ended_kept:
                self.ended.popitem(last=False)

    # ================================================================== lookups

    def _my_device(self, agent: Agent, device_id: str) -> None:
        if device_id != agent.device_id:
            raise GwsError(SC_NOT_FOUND, f"Device {device_id} not found")

    def _calls_of(self, agent: Agent) -> list[Call]:
        """The live calls on which the agent has an active leg, in creation order (indexed:
        scanning every live call here made each call notification O(calls))."""
        mine = self._calls_by_agent.get(agent)
        if not mine:
            return []
        calls = [c for c in mine.values() if any(leg.agent is agent and leg.active for leg in c.legs)]
        if len(calls) > 1:
            calls.sort(key=lambda c: c.seq)
        return calls

    @staticmethod
    def _leg_of(agent: Agent | None, call: Call | None) -> Leg | None:
        if agent is None or call is None:
            return None
        return next((leg for leg in call.legs if leg.agent is agent and leg.active), None)

    def _my_leg(self, agent: Agent, call_id: str, *, include_ended: bool = False) -> Leg:
        call = self.calls.get(call_id)
        leg = self._leg_of(agent, call)
        if leg is None and include_ended:
            call = call or self.ended.get(call_id)
            if call is not None:
                leg = next((x for x in reversed(call.legs) if x.agent is agent), None)
        if leg is None:
            raise GwsError(SC_NOT_FOUND, f"Call {call_id} not found")
        return leg

    def _other_leg(self, agent: Agent, leg: Leg) -> Leg | None:
        """The agent's other call for SwapCalls/Complete*: held if ``leg`` is active and
        vice versa (consult calls preferred)."""
        want = ACTIVE_STATES if leg.state == HELD else (HELD,)
        candidates = [self._leg_of(agent, c) for c in self._calls_of(agent) if c is not leg.call]
        candidates = [c for c in candidates if c is not None and c.state in want and c.monitor is None]
        for c in candidates:
            if c.call.parent is leg.call or leg.call.parent is c.call:
                return c
        return candidates[-1] if candidates else None

    # ================================================================== capabilities

    def _capabilities(self, leg: Leg) -> list[str]:
        state = leg.state
        caps = list(CALL_CAPABILITIES[state])
        if state == RELEASED:
            return caps
        call = leg.call
        if state == RINGING and leg.rejectable:
            caps.append("Reject")
        if leg.agent is not None and leg.monitor is None:
            other = self._other_leg(leg.agent, leg) if state in (DIALING, ESTABLISHED, HELD) else None
            if other is not None:
                caps += WITH_OTHER_CALL
                active = other if state == HELD else leg
                if active.state == ESTABLISHED:
                    caps += WITH_OTHER_ESTABLISHED
        if state == ESTABLISHED:
            visible = [p for p in call.active_legs() if p.visible]
            if len(visible) >= 3 or leg.monitor is not None:
                if leg.monitor is None:
                    caps.append("UnmuteCall" if leg.mute else "MuteCall")
                    caps.append("ClearCall")
                if leg.conference_owner or leg.monitor is not None:
                    caps += CONFERENCE_OWNER
            elif leg.mute:
                caps.append("UnmuteCall")
            if self.call_recording:
                caps += RECORDING_CAPABILITIES[call.recording]
            if leg.monitor is not None:
                caps += MONITOR_SWITCH[leg.monitor]
                caps.append("UnmuteMonitoredUser" if leg.monitored_user_muted else "MuteMonitoredUser")
        elif leg.mute:
            caps.append("UnmuteCall")
        return sorted(dict.fromkeys(caps), key=_CAP_RANK.__getitem__)

    def _device_capabilities(self, agent: Agent) -> list[str]:
        """DoNotDisturb/Forward for everyone; supervisors add the monitoring operations
        (Device resource, L4380-4390; DoNotDisturbOn sample L5040-5050)."""
        caps = ["ForwardCallsOff" if agent.forward_to else "ForwardCallsOn",
                "DoNotDisturbOff" if agent.dnd else "DoNotDisturbOn"]
        if agent.is_supervisor:
            caps += ["ListenIn", "Coach", "BargeIn"]
            if agent.monitoring is not None:
                caps.append("CancelSupervisorMonitoring")
        return caps

    # ================================================================== resources

    def _user_resource(self, agent: Agent) -> dict:
        return {
            "id": agent.user_id,
            "userName": agent.name,
            "firstName": agent.spec.first_name,
            "lastName": agent.spec.last_name,
            "roles": list(agent.spec.roles),
            "enabled": True,
            "changePasswordOnFirstLogin": False,
            "uri": f"{self.api}/users/{agent.user_id}",
            "path": f"/users/{agent.user_id}",
        }

    def _device_uri(self, agent: Agent) -> str:
        return f"{self.api}/devices/{agent.device_id}"

    def _device_resource(self, agent: Agent) -> dict:
        device = {
            "id": agent.device_id,
            "deviceState": "Active",
            "userState": dict(agent.user_state),
            "phoneNumber": agent.phone,
            "e164Number": agent.phone,
            "telephonyNetwork": "Private",
            "doNotDisturb": "On" if agent.dnd else "Off",
        }
        if agent.forward_to:
            device["forwardTo"] = agent.forward_to
        device["voiceEnvironmentUri"] = f"{self.api}/voice-environments/{self.voice_environment_id}"
        device["capabilities"] = self._device_capabilities(agent)
        monitoring = self._monitoring_state(agent)
        if monitoring is not None:
            device["supervisorMonitoringState"] = monitoring
        if agent.dynamic_phone_number:
            device["channels"] = ["voice"]
            device["dynamicPhoneNumber"] = agent.dynamic_phone_number
        return device

    def _monitoring_state(self, agent: Agent) -> dict | None:
        mon = agent.monitoring
        if mon is None:
            return None
        return {"state": mon.state, "mode": mon.mode, "scope": mon.scope,
                "targetDeviceUri": self._device_uri(mon.target),
                "phoneNumber": mon.target.phone, "switchName": _SWITCH_NAME}

    def _voice_channel(self, agent: Agent) -> dict:
        busy = any(self._leg_of(agent, c).state != RINGING for c in self._calls_of(agent))
        return {"channel": "voice", "phoneNumber": agent.phone, "switchName": _SWITCH_NAME,
                "userActivity": "BusyOnCall" if busy else "Idle", "userState": dict(agent.user_state)}

    def _call_uri(self, call: Call) -> str:
        return f"{self.api}/me/calls/{call.id}"

    def _participants(self, leg: Leg) -> list[dict]:
        if leg.final_participants is not None:
            return leg.final_participants
        others = [p for p in leg.call.active_legs() if p is not leg and (p.visible or leg.monitor is not None)]
        if leg.monitor is not None:
            others = [p for p in others if p.monitor is None]
        return [_participant(p.number) for p in reversed(others)]

    def _duration(self, leg: Leg) -> str:
        end = leg.released_at if leg.released_at is not None else self.scheduler.now()
        return str(max(0, int(end - leg.started)))

    def _call_resource(self, leg: Leg) -> dict:
        """The call as ``leg``'s agent sees it (Call resource, L4228-4325)."""
        call = leg.call
        resource = {
            "id": call.id,
            "connId": call.conn_id,
            "state": leg.state,
            "callUuid": call.uuid,
            "deviceUri": self._device_uri(leg.agent) if leg.agent else None,
            "uri": self._call_uri(call),
            "path": f"/calls/{call.id}",
            "participants": self._participants(leg),
            "dnis": call.dnis,
        }
        if call.ani:
            resource["ani"] = call.ani
        resource["callType"] = leg.call_type
        resource["capabilities"] = self._capabilities(leg)
        if call.user_data:
            resource["userData"] = dict(call.user_data)
        if call.parent is not None and leg.agent is not None and any(
                p.agent is leg.agent for p in call.parent.legs):
            resource["parentCallUri"] = self._call_uri(call.parent)
            resource["parentCallPath"] = f"/calls/{call.parent.id}"
        resource["duration"] = self._duration(leg)
        resource["mute"] = "On" if leg.mute else "Off"
        if self.call_recording:
            resource["recordingState"] = call.recording
        resource["supervisorListeningIn"] = leg.monitor is None and any(
            p.monitor in ("ListenIn", "Coach") for p in call.active_legs())
        resource["monitoredUserMuted"] = leg.monitored_user_muted
        resource["monitoring"] = leg.monitor is not None
        if leg.monitor is not None:
            resource["supervisorMonitoringState"] = {"state": leg.monitor}
        return resource

    # ================================================================== notifications

    def _emit_device(self, agent: Agent) -> None:
        self._emit(agent.name, CH_DEVICES, {"messageType": "DeviceStateChangeMessage",
                                            "devices": [self._device_resource(agent)]})

    def _emit_call(self, leg: Leg, notification_type: str) -> None:
        if leg.agent is None:
            return
        self._emit(leg.agent.name, CH_CALLS, {
            "notificationType": notification_type,
            "call": self._call_resource(leg),
            "phoneNumber": leg.agent.phone,
            "extensions": dict(EXTENSIONS),
            "messageType": "CallStateChangeMessage",
        })

    def _emit_to_call(self, leg: Leg, notification_type: str, exclude: tuple = ()) -> None:
        """``leg``'s agent first, then every other agent on the call."""
        self._emit_call(leg, notification_type)
        for other in leg.call.agent_legs():
            if other is not leg and other not in exclude:
                self._emit_call(other, notification_type)

    def _emit_error(self, agent: Agent, message: str, *, call: Call | None = None) -> None:
        """ErrorMessage (L4185-4225): callUri uses /api/v2/calls/{id}, as in the sample."""
        data = {"messageType": "ErrorMessage", "deviceUri": self._device_uri(agent)}
        if call is not None:
            data["callUri"] = f"{self.api}/calls/{call.id}"
        data["errorMessage"] = message
        self._emit(agent.name, CH_CALLS if call is not None else CH_DEVICES, data)


# ----------------------------------------------------------------------------- helpers

def _participant(number: str) -> dict:
    return {"e164Number": number if number.startswith("+") else "", "formattedPhoneNumber": number,
            "phoneNumber": number, "digits": number.lstrip("+")}


def _split(value: str | None) -> list[str]:
    if not value:
        return []
    return [v.strip() for v in str(value).split(",") if v.strip()]


def _project(obj: dict, fields: str | None) -> dict:
    """``fields=*`` (or absent) keeps everything; ``fields=id,state`` keeps those keys."""
    names = _split(fields)
    if not names or "*" in names:
        return obj
    return {k: v for k, v in obj.items() if k in names}


def _cancel(handle: Any) -> None:
    try:
        handle.cancel()
    except Exception:
        pass
