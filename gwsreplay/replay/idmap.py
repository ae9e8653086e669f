"""Recorded -> live values: learned from what the live GWS says, applied to what we send.

A replay cannot send a recorded request as it is: the call ids, connIds,
device ids, user ids, absolute ``uri`` hosts and phone numbers (when users are
mapped) all differ in the live run. `IdMap` learns pairs by walking a recorded
JSON document and its live counterpart side by side (the same notification or
the same GET answer) and collecting the values under identifier keys; it then
rewrites URLs and request bodies (`live()`, `substitute()`, `substitute_path()`)
and, for comparisons, turns live documents back into recorded terms (`unmap()`).

Cookies, CSRF tokens and CometD clientIds are not mapped here: the live HTTP
and Bayeux clients hold their own, and none of them is ever put into a replayed
request from the recording.

No I/O; one map per replayed copy of the capture (sessions share it because
two agents on one call see the same call id).
"""

from __future__ import annotations

from typing import Any, Iterable
from urllib.parse import urlsplit, urlunsplit

# keys whose string values are identifiers worth learning
ID_KEYS = frozenset({
    "id", "connId", "callUuid", "callId", "deviceId", "userId", "referenceId", "employeeId",
    "uri", "path", "deviceUri", "callUri", "parentCallUri", "parentCallPath", "otherCallUri",
    "consultCallUri", "voiceEnvironmentUri", "userUri", "place", "userName",
})
PHONE_KEYS = frozenset({"phoneNumber", "e164Number", "formattedPhoneNumber", "dnis", "ani", "digits"})
# where a phone number may be substituted in a request body (not "digits": DTMF)
PHONE_TARGET_KEYS = frozenset({"phoneNumber", "destination", "participant", "number", "to",
                               "e164Number", "dnis", "ani"})
# state GUIDs, capability names, etc. live under these: never learned from
SKIP_KEYS = frozenset({"userState", "capabilities", "userData", "extensions", "settings"})


REFERENCE_KEY = "referenceId"
_NONE = object()


def _is_reference(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, str) and value != "")


def is_id_key(key: str | None) -> bool:
    """`id`, `connId`, `uri`... and by GWS naming any `...Id`, `...Uri`, `...Path` (participantId, callUri)."""
    return key is not None and (key in ID_KEYS or key.endswith(("Id", "Uri", "Path")))


def _kind(key: str | None) -> str | None:
    if key in PHONE_KEYS:
        return "phone"
    if is_id_key(key):
        return "id"
    return None


def split_origin(value: str) -> tuple[str, str] | None:
    """'http://h:1/api/v2/x' -> ('http://h:1', '/api/v2/x'); None when not an absolute http(s) URI."""
    if not value.startswith(("http://", "https://", "ws://", "wss://")):
        return None
    parts = urlsplit(value)
    if not parts.netloc:
        return None
    rest = urlunsplit(("", "", parts.path, parts.query, parts.fragment))
    return f"{parts.scheme}://{parts.netloc}", rest


class IdMap:
    """Pairs of recorded and live values; the first pair learned for a value wins."""

    def __init__(self) -> None:
        self.forward: dict[str, str] = {}   # recorded -> live
        self.reverse: dict[str, str] = {}   # live -> recorded
        self.kinds: dict[str, str] = {}     # recorded value -> "id" | "phone"
        self.origins: dict[str, str] = {}   # recorded scheme://host:port -> live
        # referenceIds are the server's request counter (numbers, 1, 2, 3...), counted per session: a
        # namespace of their own per scope (the replayed session), so that recorded 1 -> live 8 never
        # touches an id "1" nor another agent's 1; values keep their JSON type
        self.references: dict[str | None, dict[str, Any]] = {}        # scope -> str(recorded) -> live
        self.references_back: dict[str | None, dict[str, Any]] = {}   # scope -> str(live) -> recorded
        self.conflicts = 0

    # ------------------------------------------------------------------ learning

    def add(self, recorded: str, live: str, kind: str = "id") -> bool:
        """Record one pair. Refused (False) if either side is already paired with something else."""
        if not isinstance(recorded, str) or not isinstance(live, str) or len(recorded) < 2 or len(live) < 2:
            return False
        if self.forward.get(recorded) == live:
            return True
        if recorded in self.forward or live in self.reverse:
            self.conflicts += 1
            return False
        self.forward[recorded] = live
        self.reverse[live] = recorded
        self.kinds[recorded] = kind
        return True

    def add_reference(self, recorded: Any, live: Any, scope: str | None = None) -> bool:
        """Pair a recorded referenceId with the live one the server gave the same request (in ``scope``)."""
        if not (_is_reference(recorded) and _is_reference(live)):
            return False
        forward = self.references.setdefault(scope, {})
        back = self.references_back.setdefault(scope, {})
        have = forward.get(str(recorded), _NONE)
        if have is not _NONE:
            return str(have) == str(live)
        if str(live) in back:
            self.conflicts += 1
            return False
        forward[str(recorded)] = live
        back[str(live)] = recorded
        return True

    def add_origin(self, recorded: str, live: str) -> None:
        """Map an absolute URI base ('http://gws-prod:8080') to the live one."""
        self.origins.setdefault(recorded.rstrip("/"), live.rstrip("/"))

    def learn(self, recorded: Any, live: Any, key: str | None = None, *, phones: bool = False,
              scope: str | None = None) -> None:
        """Walk two documents of the same shape and pair the values under identifier keys.

        Phone numbers are learned only from device resources (an agent's own
        number), never from call participants: a call to the wrong party must
        show up as a divergence, not be explained away as a mapping.
        """
        if key in SKIP_KEYS:
            return
        if key == REFERENCE_KEY:
            self.add_reference(recorded, live, scope)
            return
        if key == "devices":
            phones = True
        elif key in ("call", "calls", "participants"):
            phones = False
        if isinstance(recorded, dict) and isinstance(live, dict):
            for k, value in recorded.items():
                if k in live:
                    self.learn(value, live[k], k, phones=phones, scope=scope)
        elif isinstance(recorded, list) and isinstance(live, list):
            if len(recorded) == len(live):
                for r, v in zip(recorded, live):
                    self.learn(r, v, key, phones=phones, scope=scope)
        elif isinstance(recorded, str) and isinstance(live, str):
            kind = _kind(key)
            if kind == "id" or (kind == "phone" and phones):
                self._learn_value(recorded, live, kind)

    def _learn_value(self, recorded: str, live: str, kind: str) -> None:
        r_uri, l_uri = split_origin(recorded), split_origin(live)
        if r_uri and l_uri:
            self.add_origin(r_uri[0], l_uri[0])
            self._learn_path(r_uri[1], l_uri[1])
        elif recorded.startswith("/") and live.startswith("/"):
            self._learn_path(recorded, live)
        else:
            self.add(recorded, live, kind)

    def _learn_path(self, recorded: str, live: str) -> None:
        r_parts, l_parts = recorded.split("/"), live.split("/")
        if len(r_parts) != len(l_parts):
            return
        for r, v in zip(r_parts, l_parts):
            if r != v or r in self.forward:
                self.add(r, v)
            elif len(r) >= 16:  # an id that happens to be equal: pin it so nothing else claims it
                self.add(r, v)

    # ------------------------------------------------------------------ applying

    def knows(self, recorded: str) -> bool:
        return recorded in self.forward

    def unmapped_phones(self, document: Any, wanted: Iterable[str], key: str | None = None, *,
                        known: bool = False) -> list[str]:
        """The recorded phone numbers among `wanted` that a request would send unmapped (all of those
        it names with `known=True`).

        A copy's agents learn each other's live numbers from device answers and
        notifications; until then a Dial to a colleague would go to the recorded
        number, that is to another copy's agent.
        """
        wanted = wanted if isinstance(wanted, (set, frozenset, dict)) else set(wanted)
        if isinstance(document, dict):
            return [p for k, v in document.items() for p in self.unmapped_phones(v, wanted, k, known=known)]
        if isinstance(document, list):
            return [p for v in document for p in self.unmapped_phones(v, wanted, key, known=known)]
        if isinstance(document, str) and key in PHONE_TARGET_KEYS and document in wanted \
                and (known or document not in self.forward):
            return [document]
        return []

    def live(self, value: str, key: str | None = None) -> str:
        """The live counterpart of one recorded string (an id, a phone number, a URI or a path)."""
        mapped = self.forward.get(value)
        if mapped is not None and (self.kinds.get(value) != "phone" or key is None or key in PHONE_TARGET_KEYS):
            return mapped
        uri = split_origin(value)
        if uri:
            origin = self.origins.get(uri[0], uri[0])
            return origin + self.substitute_path(uri[1])
        if value.startswith("/"):
            return self.substitute_path(value)
        return value

    def substitute_path(self, path: str) -> str:
        """Map every path segment that is a known id ('/api/v2/me/calls/X' -> '.../Y')."""
        path, sep, query = path.partition("?")
        segments = [self.forward.get(s, s) if self.kinds.get(s) != "phone" else s for s in path.split("/")]
        return "/".join(segments) + sep + query

    def substitute(self, document: Any, key: str | None = None, scope: str | None = None) -> Any:
        """A copy of a recorded request body with every known value replaced by its live one."""
        if key == REFERENCE_KEY and _is_reference(document):
            return self.references.get(scope, {}).get(str(document), document)
        if isinstance(document, dict):
            return {k: self.substitute(v, k, scope) for k, v in document.items()}
        if isinstance(document, list):
            return [self.substitute(v, key, scope) for v in document]
        if isinstance(document, str):
            return self.live(document, key)
        return document

    def recorded(self, value: str) -> str:
        """The recorded counterpart of one live string (ids, URIs and paths)."""
        back = self.reverse.get(value)
        if back is not None:
            return back
        uri = split_origin(value)
        if uri:
            reverse_origins = {v: k for k, v in self.origins.items()}
            return reverse_origins.get(uri[0], uri[0]) + self._unmap_path(uri[1])
        if value.startswith("/"):
            return self._unmap_path(value)
        return value

    def _unmap_path(self, path: str) -> str:
        path, sep, query = path.partition("?")
        return "/".join(self.reverse.get(s, s) for s in path.split("/")) + sep + query

    def unmap(self, document: Any, key: str | None = None, scope: str | None = None) -> Any:
        """A copy of a live document in recorded terms, for comparing with the recording."""
        if key == REFERENCE_KEY and _is_reference(document):
            return self.references_back.get(scope, {}).get(str(document), document)
        if isinstance(document, dict):
            return {k: self.unmap(v, k, scope) for k, v in document.items()}
        if isinstance(document, list):
            return [self.unmap(v, key, scope) for v in document]
        if isinstance(document, str):
            return self.recorded(document)
        return document

    def seed_users(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Recorded user name -> live user name (from the user map)."""
        for recorded, live in pairs:
            self.add(recorded, live)

    def summary(self) -> dict:
        changed = {k: v for k, v in self.forward.items() if k != v}
        return {"pairs": len(self.forward), "changed": len(changed), "origins": dict(self.origins),
                "references": sum(len(r) for r in self.references.values()), "conflicts": self.conflicts}
