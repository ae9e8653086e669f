"""Who replays whom: recorded user -> live user and password.

Captures hold no passwords, so a replay needs credentials from somewhere: a
TOML map file, or - on the simulator, whose users all have the password
"password" - the recorded user names themselves (and agentK for load runs).

    password = "password"            # for users below given without one

    [users]                          # recorded user -> replay user
    agent1 = "agent7"
    agent2 = { user = "agent8", password = "secret" }

    [pool]                           # gwsreplay load --users N: virtual agents take these in order
    users = ["agent100", "agent101"] # and/or a numbered range:
    pattern = "agent{n}"
    first = 1
    count = 600
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path


class UserMapError(ValueError):
    """A map file that cannot be used, or a user it does not cover."""


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str


@dataclass
class UserMap:
    users: dict[str, Credentials] = field(default_factory=dict)
    pool: list[Credentials] = field(default_factory=list)
    pattern: str | None = None
    first: int = 1
    count: int | None = None
    password: str | None = None
    identity: bool = False              # unmapped recorded users keep their name (simulator)

    @classmethod
    def simulator(cls) -> "UserMap":
        """The simulator's defaults: same user names, agentK for load, password 'password'."""
        return cls(password="password", pattern="agent{n}", identity=True)

    @classmethod
    def from_toml(cls, path: str | Path, *, simulator: bool = False) -> "UserMap":
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise UserMapError(f"cannot read user map {path}: {exc}") from None
        password = data.get("password", "password" if simulator else None)
        users: dict[str, Credentials] = {}
        for recorded, value in (data.get("users") or {}).items():
            users[recorded] = _credentials(value, password, f"users.{recorded}")
        pool_data = data.get("pool") or {}
        pool = [_credentials(v, password, "pool.users") for v in pool_data.get("users") or []]
        return cls(users=users, pool=pool, pattern=pool_data.get("pattern") or ("agent{n}" if simulator else None),
                   first=int(pool_data.get("first", 1)), count=pool_data.get("count"), password=password,
                   identity=simulator)

    def for_recorded(self, recorded_user: str) -> Credentials:
        """The live credentials of a recorded user (plain replay)."""
        if recorded_user in self.users:
            return self.users[recorded_user]
        if self.identity and self.password is not None:
            return Credentials(recorded_user, self.password)
        raise UserMapError(f"no replay user for recorded user {recorded_user!r}: add it to the user map "
                           f"([users] {recorded_user} = {{ user = \"...\", password = \"...\" }})")

    def pool_user(self, index: int) -> Credentials:
        """The index-th (0-based) user of the load pool: listed users first, then the pattern."""
        if index < len(self.pool):
            return self.pool[index]
        n = index - len(self.pool)
        if self.pattern and self.password is not None and (self.count is None or n < self.count):
            return Credentials(self.pattern.format(n=self.first + n), self.password)
        raise UserMapError(f"the user pool has no user number {index + 1}: list more users in [pool] "
                           f"or give pattern/count")


def _credentials(value, password: str | None, where: str) -> Credentials:
    if isinstance(value, str):
        if password is None:
            raise UserMapError(f"{where}: no password (give password = \"...\" at the top or per user)")
        return Credentials(value, password)
    if isinstance(value, dict) and isinstance(value.get("user"), str):
        pw = value.get("password", password)
        if pw is None:
            raise UserMapError(f"{where}: no password for {value['user']}")
        return Credentials(value["user"], str(pw))
    raise UserMapError(f"{where}: expected \"user\" or {{ user = ..., password = ... }}, got {value!r}")
