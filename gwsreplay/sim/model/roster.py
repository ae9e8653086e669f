"""Who exists in the simulated contact center: users, their SIP devices, places.

Defaults: ``agent1..agentN``, password ``password``, one SIP device each whose
phone number is ``7000+K`` for ``agentK``, default place ``Place<number>``.

A custom roster comes from TOML::

    [[users]]
    user_name = "agent1"          # required
    password = "password"         # default "password"
    phone_number = "7001"         # default 7000+K (K = position in the file, from 1)
    first_name = "Ada"            # default "Agent"
    last_name = "Lovelace"        # default K
    place = "Place7001"           # default "Place<phone_number>"
    roles = ["agent"]             # agent | supervisor | admin | apiuser, or ROLE_*; default ["agent"]

    [[agent_states]]              # optional custom agent-state operations (Settings API)
    operationName = "Training"
    displayName = "Training"
    state = "NotReady"
    workMode = "AuxWork"
    reason = "Training"

No I/O except reading the TOML file in :meth:`Roster.from_toml`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

ROLE_AGENT = "ROLE_AGENT"
ROLE_SUPERVISOR = "ROLE_SUPERVISOR"
ROLE_ADMIN = "ROLE_ADMIN"
ROLE_APIUSER = "ROLE_APIUSER"

# Annex values (`[GWS] roles=agent,supervisor`) and their user-resource spelling (L1905-1930).
_ROLE_NAMES = {
    "agent": ROLE_AGENT,
    "supervisor": ROLE_SUPERVISOR,
    "admin": ROLE_ADMIN,
    "apiuser": ROLE_APIUSER,
}

#: First phone number of the default roster is DEFAULT_BASE + 1 ("7001").
DEFAULT_BASE = 7000
#: Supervisors of :meth:`Roster.default` get 7900+K ("7901"...).
SUPERVISOR_BASE = 7900


@dataclass(frozen=True)
class UserSpec:
    user_name: str            # "agent1"
    password: str             # "password"
    first_name: str
    last_name: str
    phone_number: str         # "7001" for agent1
    place: str                # "Place7001"
    roles: tuple[str, ...] = (ROLE_AGENT,)   # ROLE_SUPERVISOR for supervisors

    @property
    def is_supervisor(self) -> bool:
        return ROLE_SUPERVISOR in self.roles


@dataclass(frozen=True)
class AgentStateSpec:
    """A custom agent-state operation (Settings API ``agent-states`` group)."""

    operation_name: str
    display_name: str
    state: str                      # "Ready" | "NotReady"
    work_mode: str | None = None    # "AuxWork", "AfterCallWork", ...
    reason: str | None = None


def normalize_role(role: str) -> str:
    """``"supervisor"`` / ``"ROLE_SUPERVISOR"`` -> ``"ROLE_SUPERVISOR"``."""
    text = str(role).strip()
    if text.upper().startswith("ROLE_"):
        upper = text.upper()
        if upper in _ROLE_NAMES.values():
            return upper
        raise ValueError(f"unknown role {role!r}")
    try:
        return _ROLE_NAMES[text.lower()]
    except KeyError:
        raise ValueError(f"unknown role {role!r} (agent, supervisor, admin or apiuser)") from None


class Roster:
    """Users by user_name, in roster order, plus custom agent states."""

    def __init__(self, users: Iterable[UserSpec] = (), agent_states: Iterable[AgentStateSpec] = ()):
        self.users: dict[str, UserSpec] = {}
        self._by_phone: dict[str, UserSpec] = {}
        for user in users:
            if user.user_name in self.users:
                raise ValueError(f"duplicate user_name {user.user_name!r}")
            if user.phone_number in self._by_phone:
                raise ValueError(f"duplicate phone_number {user.phone_number!r}")
            self.users[user.user_name] = user
            self._by_phone[user.phone_number] = user
        self.agent_states: tuple[AgentStateSpec, ...] = tuple(agent_states)
        names = [s.operation_name for s in self.agent_states]
        if len(names) != len(set(names)):
            raise ValueError("duplicate agent state operationName")

    # ------------------------------------------------------------ constructors

    @classmethod
    def default(cls, agents: int, supervisors: int = 0) -> "Roster":
        """agent1..agentN (7001..), password "password"; optional supervisor1..M (7901..)."""
        users = [
            UserSpec(
                user_name=f"agent{k}",
                password="password",
                first_name="Agent",
                last_name=str(k),
                phone_number=str(DEFAULT_BASE + k),
                place=f"Place{DEFAULT_BASE + k}",
            )
            for k in range(1, agents + 1)
        ]
        users += [
            UserSpec(
                user_name=f"supervisor{k}",
                password="password",
                first_name="Supervisor",
                last_name=str(k),
                phone_number=str(SUPERVISOR_BASE + k),
                place=f"Place{SUPERVISOR_BASE + k}",
                roles=(ROLE_AGENT, ROLE_SUPERVISOR),
            )
            for k in range(1, supervisors + 1)
        ]
        return cls(users)

    @classmethod
    def from_toml(cls, path) -> "Roster":
        with open(Path(path), "rb") as fh:
            data = tomllib.load(fh)
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Roster":
        """The parsed TOML document (also handy in tests)."""
        raw_users = data.get("users", [])
        if not isinstance(raw_users, list):
            raise ValueError("'users' must be an array of tables ([[users]])")
        users = []
        for k, raw in enumerate(raw_users, start=1):
            if not isinstance(raw, Mapping):
                raise ValueError(f"users[{k - 1}] must be a table")
            unknown = set(raw) - {"user_name", "password", "phone_number", "first_name", "last_name",
                                  "place", "roles"}
            if unknown:
                raise ValueError(f"users[{k - 1}]: unknown keys {sorted(unknown)}")
            name = raw.get("user_name")
            if not isinstance(name, str) or not name:
                raise ValueError(f"users[{k - 1}]: 'user_name' is required")
            phone = str(raw.get("phone_number", DEFAULT_BASE + k))
            if not phone.isdigit():
                raise ValueError(f"user {name}: phone_number {phone!r} must be digits")
            roles = raw.get("roles", ["agent"])
            if isinstance(roles, str):
                roles = [r for r in roles.split(",") if r.strip()]
            roles = tuple(dict.fromkeys(normalize_role(r) for r in roles)) or (ROLE_AGENT,)
            users.append(UserSpec(
                user_name=name,
                password=str(raw.get("password", "password")),
                first_name=str(raw.get("first_name", "Agent")),
                last_name=str(raw.get("last_name", k)),
                phone_number=phone,
                place=str(raw.get("place", f"Place{phone}")),
                roles=roles,
            ))
        states = []
        for i, raw in enumerate(data.get("agent_states", [])):
            op = raw.get("operationName")
            state = raw.get("state")
            if not isinstance(op, str) or not op:
                raise ValueError(f"agent_states[{i}]: 'operationName' is required")
            if state not in ("Ready", "NotReady"):
                raise ValueError(f"agent_states[{i}]: 'state' must be Ready or NotReady")
            states.append(AgentStateSpec(
                operation_name=op,
                display_name=str(raw.get("displayName", op)),
                state=state,
                work_mode=raw.get("workMode"),
                reason=raw.get("reason"),
            ))
        return cls(users, states)

    # ------------------------------------------------------------ lookups

    def by_phone(self, number: str) -> UserSpec | None:
        return self._by_phone.get(str(number))

    def get(self, user_name: str) -> UserSpec | None:
        return self.users.get(user_name)

    def __len__(self) -> int:
        return len(self.users)

    def __iter__(self):
        return iter(self.users.values())
