"""Before a replay starts: can the target reproduce the recorded answers at all?

A replay that logs in a user without credentials, more virtual agents than the
target has users, or an agent at a place the target does not have, gets 401s and
"Place ... is not assigned" answers that tell nothing about the system under test.
:func:`problems` lists such cases, one clear sentence each, from the plan, the user
map and what is known of the target (:class:`TargetFacts`); the drivers (asyncio
runner, Locust) refuse the run when the list is not empty. No I/O here.

What is not known is not checked: a real GWS does not say how many users it has or
which places exist, so only the user map is checked against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gwsreplay.replay.idmap import IdMap
from gwsreplay.replay.plan import ReplayPlan
from gwsreplay.replay.users import Credentials, UserMap, UserMapError

LOGIN_OPERATION = "StartContactCenterSession"


@dataclass(frozen=True)
class TargetFacts:
    """What the target says about itself (the simulator: GET /sim/v1/state); None = not known."""

    #: live user name -> the places it may log in at (None: users not known)
    users: dict[str, frozenset[str]] | None = None
    source: str = "the target"
    #: a place of the form ``name@domain`` is accepted when ``name`` is in the user's places
    domain_forms: bool = field(default=True)

    @classmethod
    def from_simulator_state(cls, state: dict) -> "TargetFacts":
        """From the simulator's snapshot: each agent's place, ``SIP_<DN>``, its DN and its user name
        (the place forms of the 8.6 samples, L4445-4533)."""
        users: dict[str, frozenset[str]] = {}
        for agent in state.get("agents") or []:
            if not isinstance(agent, dict) or not isinstance(agent.get("userName"), str):
                continue
            phone = str(agent.get("phoneNumber") or "")
            forms = {agent["userName"], str(agent.get("place") or "")}
            if phone:
                forms |= {phone, f"SIP_{phone}"}
            users[agent["userName"]] = frozenset(f for f in forms if f)
        return cls(users, f"the simulator's {len(users)} agents")


def copies_for(plan: ReplayPlan, agents: int | None) -> int:
    """How many copies of the plan ``--agents N`` runs (one per N // sessions, at least one)."""
    return 1 if not agents else max(1, agents // max(len(plan.sessions), 1))


def session_credentials(plan: ReplayPlan, users: UserMap, copy: int, agents: int | None) -> dict[str, Credentials]:
    """Recorded user -> live credentials for one copy (UserMapError when the map has none)."""
    n = len(plan.sessions)
    out: dict[str, Credentials] = {}
    for session in plan.sessions:
        if session.user_name not in out:
            out[session.user_name] = (users.pool_user(copy * n + len(out)) if agents
                                      else users.for_recorded(session.user_name))
    return out


def problems(plan: ReplayPlan, users: UserMap, agents: int | None, target: TargetFacts) -> list[str]:
    """Every reason the run would send requests whose recorded answers it cannot reproduce."""
    out: list[str] = []
    copies = copies_for(plan, agents)
    assigned: list[dict[str, Credentials]] = []
    for copy in range(copies):
        try:
            assigned.append(session_credentials(plan, users, copy, agents))
        except UserMapError as exc:
            out.append(f"copy {copy + 1} of {copies}: {exc}" if agents else str(exc))
            break
    live_users = [c.user for creds in assigned for c in creds.values()]
    if target.users is not None:
        known = target.users
        needed = len(dict.fromkeys(live_users))
        if agents and needed > len(known):
            out.append(f"{agents} virtual agents need {needed} users, but {target.source} have {len(known)}: "
                       f"ask for at most {len(known) // max(len(plan.sessions), 1) * len(plan.sessions)}")
        # a single recorded user missing from the roster is not refused: its login fails and the report
        # says so (a status divergence), while its colleagues replay (tests/test_replay_sim.py)
        out += _place_problems(plan, assigned[:1], target)
    return out


def _place_problems(plan: ReplayPlan, assigned: list[dict[str, Credentials]], target: TargetFacts) -> list[str]:
    """Logins at a place the live user does not have on the target (first copy; copies log in alike)."""
    out: list[str] = []
    if not assigned or target.users is None:
        return out
    creds = assigned[0]
    seed = IdMap()
    seed.seed_users((recorded, c.user) for recorded, c in creds.items())
    for session in plan.sessions:
        live = creds.get(session.user_name)
        if live is None or live.user not in target.users:
            continue
        for step in session.steps:
            body = step.body if isinstance(step.body, dict) else {}
            place = body.get("place")
            if body.get("operationName") != LOGIN_OPERATION or not isinstance(place, str) or not place:
                continue
            sent = seed.live(place, "place")
            if not _place_ok(sent, target.users[live.user], target.domain_forms):
                have = ", ".join(sorted(target.users[live.user])) or "none"
                out.append(f"session {session.id}: step {step.index} logs {live.user} in at place {sent!r}, "
                           f"which {target.source} do not give {live.user} (its places: {have})")
    return out


def _place_ok(place: str, allowed: frozenset[str], domain_forms: bool) -> bool:
    if place in allowed:
        return True
    if domain_forms and "@" in place:
        name = place.partition("@")[0].lower()
        return any(name == a.lower() for a in allowed)
    return place.lower() in {a.lower() for a in allowed}
