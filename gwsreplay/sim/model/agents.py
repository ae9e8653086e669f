"""Agents, their agent states and the agent-state catalog (system + custom states).

Shared by every channel: voice keeps the agent's T-Server state on :class:`Agent`,
the media channels match their own Ready/NotReady states against the same catalog.
``L<n>`` = a line of ``gws-8.6-api-reference.txt``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from gwsreplay.sim.model.ids import IdGenerator
from gwsreplay.sim.model.roster import ROLE_SUPERVISOR, AgentStateSpec, UserSpec


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
#: A media channel's userState right after login (system GUIDs, L39245-39290).
NOT_READY_STATE = {"id": "900D55CC-2BB0-431F-8BF9-D3525B383BE6", "displayName": "Not Ready", "state": "NotReady"}

READY_WORKMODES = ("ManualIn", "AutoIn")                                    # L4656-4680
NOT_READY_WORKMODES = ("AuxWork", "AfterCallWork", "LegalGuard", "NoCallDisconnect", "WalkAway")  # L39235

DISPOSITIONS = (   # GET /settings/dispositions sample (L2924-2944)
    {"displayName": "Issue Escalated", "name": "EscalationCreated"},
    {"displayName": "Issue Resolved", "name": "IssueResolved"},
    {"displayName": "Update Provided", "name": "UpdateProvided"},
    {"displayName": "Information Requested", "name": "InfoRequested"},
)
DEFAULT_DISPOSITION_KEY = "DispositionCode"

#: Operations that only change the agent state: never governed by capabilities (L1051-1058).
SYSTEM_STATE_OPS = tuple(s.operation_name for s in SYSTEM_AGENT_STATES)


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


class AgentStates:
    """The agent-state operations of the node: the system ones, then the roster's custom ones."""

    def __init__(self, custom: Iterable[AgentStateSpec], ids: IdGenerator):
        self.states: list[AgentState] = list(SYSTEM_AGENT_STATES)
        for spec in custom:
            self.states.append(AgentState(spec.operation_name, spec.display_name, spec.state, spec.work_mode,
                                          spec.reason, id=ids.agent_state_id()))
        self.by_op = {s.operation_name: s for s in self.states}

    def settings(self) -> list[dict]:
        return [s.setting() for s in self.states]

    def match(self, state: str, work_mode: str | None, reason: str | None) -> dict:
        """Attach the id/displayName of the agent-state operation that matches (8.5.2
        "Agent State Matching"); an unmatched state has neither."""
        for spec in self.states:
            if (spec.state, spec.work_mode, spec.reason) == (state, work_mode, reason):
                return user_state(spec, work_mode, reason)
        for spec in self.states:
            if spec.state == state and spec.reason == reason and spec.work_mode is None:
                return user_state(spec, work_mode, reason)
        out = {"state": state}
        if work_mode:
            out["workMode"] = work_mode
        if reason:
            out["reason"] = reason
        return out


def user_state(spec: AgentState, work_mode: str | None = None, reason: str | None = None) -> dict:
    """The device/channel ``userState`` of an agent-state operation."""
    out = {"id": spec.id, "displayName": spec.display_name, "state": spec.state}
    work_mode = work_mode or spec.work_mode
    reason = reason or spec.reason
    if work_mode:
        out["workMode"] = work_mode
    if reason:
        out["reason"] = reason
    return out
