"""Who the virtual agents are: copies of the plan, their users from the pool, and the roster limit.

No Locust here (the CLI imports it before any process is monkey-patched). A copy
of the plan takes `users_per_copy` consecutive users of the pool: copy c gets pool
users c*u .. c*u+u-1, so copies handed out by one allocator (the Locust master)
never log in the same user twice, whichever worker runs them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.error import URLError
from urllib.request import urlopen

from gwsreplay.replay.plan import ReplayPlan
from gwsreplay.replay.users import Credentials, UserMap, UserMapError


@dataclass(frozen=True)
class Roster:
    """The live users a load run may log in: how many, and where the number comes from."""

    size: int | None               # None: no known limit (a pattern without count on a real GWS)
    source: str


def recorded_users(plan: ReplayPlan) -> list[str]:
    """The recorded users of a plan, in order of first appearance (one live user each per copy)."""
    return list(dict.fromkeys(s.user_name for s in plan.sessions))


def copy_users(plan: ReplayPlan, users: UserMap, copy: int) -> dict[str, Credentials]:
    """Recorded user -> live credentials for one copy, from the pool."""
    names = recorded_users(plan)
    return {name: users.pool_user(copy * len(names) + k) for k, name in enumerate(names)}


def simulator_roster(target: str, timeout: float = 5.0) -> int | None:
    """The simulator's number of agents (GET /sim/v1/state), or None when the target is no simulator."""
    try:
        with urlopen(target.rstrip("/") + "/sim/v1/state", timeout=timeout) as response:
            body = json.load(response)
    except (URLError, OSError, ValueError):
        return None
    agents = body.get("agents") if isinstance(body, dict) else None
    return len(agents) if isinstance(agents, list) else None


def roster(users: UserMap, simulator_agents: int | None) -> Roster:
    """How many users the pool can give: the map's pool, capped by the simulator's roster."""
    listed = len(users.pool)
    from_pattern = None if users.pattern is None else users.count
    pool = None if users.pattern is not None and from_pattern is None else listed + (from_pattern or 0)
    if simulator_agents is not None:
        first = users.first if users.pattern else 1
        sim_pool = listed + max(0, simulator_agents - first + 1) if users.pattern else listed
        size = sim_pool if pool is None else min(pool, sim_pool)
        return Roster(size, f"the simulator's {simulator_agents} agents")
    return Roster(pool, "the user map's pool")


def check_roster(plan: ReplayPlan, copies: int, limit: Roster) -> None:
    """Refuse (UserMapError) a run needing more users than the roster holds, before anything starts."""
    per_copy = len(recorded_users(plan))
    needed = copies * per_copy
    if limit.size is not None and needed > limit.size:
        raise UserMapError(
            f"{copies} copies of the capture's {per_copy} agent(s) need {needed} users, "
            f"but the target has {limit.size} ({limit.source}): ask for at most "
            f"{limit.size // per_copy * per_copy} virtual agents, or give more users")
