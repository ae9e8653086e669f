"""Who the virtual agents are: copies of the plan and their users, checked before the run starts.

No Locust here (the CLI imports it before any process is monkey-patched). The
rules are gwsreplay.replay.precheck's, shared with the asyncio runner: a copy
is all the plan's sessions; copy c takes the pool users from c * sessions on
(`session_credentials`), so copies handed out by one allocator (the Locust
master) never log in the same user twice, whichever worker runs them; and a run
needing more users than the target has (or users it lacks, places it does not
give) is refused with one sentence per reason.
"""

from __future__ import annotations

import json
from urllib.error import URLError
from urllib.request import urlopen

from gwsreplay.replay.plan import ReplayPlan
from gwsreplay.replay.precheck import TargetFacts, problems, session_credentials
from gwsreplay.replay.users import Credentials, UserMap, UserMapError


def agents_per_copy(plan: ReplayPlan) -> int:
    """Virtual agents in one copy of the plan (its sessions)."""
    return max(len(plan.sessions), 1)


def copy_users(plan: ReplayPlan, users: UserMap, copy: int) -> dict[str, Credentials]:
    """Recorded user -> live credentials for one copy, from the pool."""
    return session_credentials(plan, users, copy, agents=agents_per_copy(plan))


def simulator_facts(target: str, timeout: float = 5.0) -> TargetFacts | None:
    """What the simulator says of its users (GET /sim/v1/state), or None when the target is no simulator."""
    try:
        with urlopen(target.rstrip("/") + "/sim/v1/state", timeout=timeout) as response:
            state = json.load(response)
    except (URLError, OSError, ValueError):
        return None
    return TargetFacts.from_simulator_state(state) if isinstance(state, dict) else None


def check_roster(plan: ReplayPlan, copies: int, users: UserMap, facts: TargetFacts | None) -> None:
    """Refuse (UserMapError, one sentence per reason) a run the target cannot serve, before anything starts."""
    found = problems(plan, users, copies * agents_per_copy(plan), facts or TargetFacts())
    if found:
        raise UserMapError("; ".join(found))
