"""Recorded against live: normalisation, notification matching, divergences.

Live notifications are matched to recorded ones per session: a live message
pairs with the first unmatched recorded message of the same kind (channel,
messageType, notificationType, state) about the same resource, the resource
being known through the id map, or - for a call or device seen for the first
time - the first recorded one not yet mapped, preferring the one whose
participants agree ("the k-th call maps by order and participants"). A match
teaches the id map the live ids.

Comparison happens after normalisation, the same for both sides: live values
are put back into recorded terms (`IdMap.unmap`), ids are replaced by symbols
numbered in order of first appearance (so a transcript never shows an id, yet
two different calls stay different), URI hosts, durations and timestamps are
masked, capability lists are compared as sets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from gwsreplay.core.bayeux_classify import classify_bayeux

from gwsreplay.replay.idmap import IdMap, is_id_key, split_origin
from gwsreplay.replay.plan import Note, Step, participant_numbers

MASKED_KEYS = frozenset({"duration", "timestamp", "time", "startTime", "endTime", "startDate", "endDate",
                         "createdDate", "lastModified", "clientId", "JSESSIONID"})
SET_KEYS = frozenset({"capabilities"})
# resources whose "participants" tell two new ones of the same kind apart (matching by order and participants)
PARTICIPANT_RESOURCES = ("call", "imSession")
# resources of the session's own agent (its device, its media channels)
AGENT_RESOURCES = ("device", "channel")


# ----------------------------------------------------------------------------- normalisation


class Symbols:
    """Ids -> '<call#1>'-style symbols, numbered in order of first appearance."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}
        self._counts: dict[str, int] = {}

    def name(self, value: str, key: str) -> str:
        if value not in self._names:
            kind = {"connId": "conn", "callUuid": "call", "callId": "call"}.get(key, key)
            self._counts[kind] = self._counts.get(kind, 0) + 1
            self._names[value] = f"<{kind}#{self._counts[kind]}>"
        return self._names[value]


def normalize(document: Any, symbols: Symbols, key: str | None = None) -> Any:
    """A comparable copy: ids symbolised, hosts and times masked, capabilities sorted."""
    if isinstance(document, dict):
        return {k: normalize(v, symbols, k) for k, v in sorted(document.items())}
    if isinstance(document, list):
        items = [normalize(v, symbols, key) for v in document]
        if key in SET_KEYS:
            return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
        return items
    if isinstance(document, str):
        if _masked(key):
            return "<masked>"
        uri = split_origin(document)
        if uri:
            return "<host>" + _normalize_path(uri[1], symbols)
        if key is not None and (key == "path" or key.endswith("Path")) and document.startswith("/"):
            return _normalize_path(document, symbols)
        if is_id_key(key) and key not in ("userName", "place", "referenceId") and len(document) >= 8:
            return symbols.name(document, key)
        return document
    if _masked(key):
        return "<masked>"
    return document


def _masked(key: str | None) -> bool:
    """Durations and times change from run to run: `duration`, `receivedDate`, `startTime`, ..."""
    return key is not None and (key in MASKED_KEYS or key.endswith(("Date", "Time"))
                                or "timestamp" in key.lower())


def _normalize_path(path: str, symbols: Symbols) -> str:
    path = path.partition("?")[0]
    out = []
    for segment in path.split("/"):
        out.append(symbols.name(segment, "id") if _looks_like_id(segment) else segment)
    return "/".join(out)


def _looks_like_id(segment: str) -> bool:
    return len(segment) >= 16 and any(c.isdigit() for c in segment)


def normalize_path(path: str, idmap: IdMap | None, symbols: Symbols) -> str:
    """A request path in comparable form (live paths are unmapped first)."""
    if idmap is not None:
        path = idmap.recorded(path)
    return _normalize_path(path, symbols)


# ----------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class LiveNote:
    channel: str
    data: dict
    ts: float
    message_type: str | None
    notification_type: str | None
    resource_type: str | None
    resource_id: str | None
    state: str | None

    @classmethod
    def from_message(cls, channel: str, data: Any, ts: float) -> "LiveNote":
        c = classify_bayeux({"channel": channel, "data": data})
        return cls(channel, data if isinstance(data, dict) else {}, ts, c.message_type, c.notification_type,
                   c.resource_type, c.resource_id, c.resource_state)

    def label(self) -> str:
        parts = [self.message_type or self.channel]
        if self.notification_type and self.notification_type != "StatusChange":
            parts.append(self.notification_type)
        if self.state:
            parts.append(self.state)
        return " ".join(parts)


def _passive(step: Step) -> bool:
    """A step that cannot change the agent's state: a GET, or a Bayeux meta step."""
    if step.kind == "rest":
        return (step.method or "").upper() in ("GET", "HEAD")
    return step.kind in ("handshake", "subscribe", "unsubscribe")


def _reach(steps: list[Step]) -> list[int]:
    """reach[r + 1]: with steps up to r sent, the last step a notification of the agent may have been
    recorded after: the next state-changing step after r (the passive steps before it included)."""
    last = len(steps) - 1
    reach = [last] * (len(steps) + 1)
    first_active = last
    for j in range(last, -1, -1):
        if not _passive(steps[j]):
            first_active = j
        reach[j] = first_active
    return reach


def _kind(channel: str, message_type: str | None, notification_type: str | None, state: str | None) -> tuple:
    return (channel, message_type, notification_type, state)


class Matcher:
    """Pairs one session's live notifications with its recorded ones, teaching the id map."""

    def __init__(self, notes: list[Note], idmap: IdMap, scope: str | None = None, steps: list[Step] | None = None):
        self.notes = notes
        self.idmap = idmap
        self.scope = scope          # the session: referenceIds are learned per session
        self._reach = _reach(steps or [])
        self.matched: dict[int, LiveNote] = {}
        self.given_up: set[int] = set()
        self.unexpected: list[tuple[LiveNote, int]] = []     # (note, step in flight when it came)
        self._by_kind: dict[tuple, list[int]] = {}
        for n in notes:
            self._by_kind.setdefault(_kind(n.channel, n.message_type, n.notification_type, n.state), []).append(n.index)

    def offer(self, live: LiveNote, step: int) -> Note | None:
        """Match a live notification; None (and remembered as unexpected) when nothing fits."""
        candidates = [i for i in self._by_kind.get(_kind(live.channel, live.message_type, live.notification_type,
                                                         live.state), []) if i not in self.matched]
        if live.resource_type in AGENT_RESOURCES:
            # The agent's own state changes only on its own requests: not a note recorded after steps the
            # replay has not reached (an unrecorded login notification must not take the place of a later
            # NotReady's). The recording may have sent the next state-changing request (and any GETs or
            # subscribes before it) before this notification arrived, so the reach goes that far. Calls
            # and interactions may come early: another party's doing (a colleague's IM, a ring).
            reach = self._reach[step + 1] if step + 1 < len(self._reach) else step
            candidates = [i for i in candidates if self.notes[i].step <= reach]
        note = self._choose(live, candidates)
        if note is None:
            self.unexpected.append((live, step))
            return None
        self.matched[note.index] = live
        self.given_up.discard(note.index)
        self.idmap.learn(note.data, live.data, scope=self.scope)
        return note

    def _choose(self, live: LiveNote, candidates: list[int]) -> Note | None:
        if not candidates:
            return None
        if live.resource_id is None:
            return self.notes[candidates[0]]
        known = self.idmap.reverse.get(live.resource_id)
        if known is not None:
            same = [i for i in candidates if self.notes[i].resource_id == known]
            return self.notes[same[0]] if same else None
        # a resource seen for the first time: the first recorded one not mapped yet
        fresh = [i for i in candidates if self.notes[i].resource_id is None
                 or self.notes[i].resource_id not in self.idmap.forward]
        if not fresh:
            return None
        first_resource = self.notes[fresh[0]].resource_id
        same_resource = [i for i in fresh if self.notes[i].resource_id == first_resource]
        wanted = _participants(self.idmap.unmap(live.data, scope=self.scope))
        for i in fresh:
            if _participants(self.notes[i].data) == wanted:
                return self.notes[i]
        return self.notes[same_resource[0]]

    def done(self, index: int) -> bool:
        return index in self.matched or index in self.given_up

    def give_up(self, index: int) -> None:
        if index not in self.matched:
            self.given_up.add(index)

    def missing(self) -> list[Note]:
        return [n for n in self.notes if n.index not in self.matched]


def _participants(data: dict) -> list[str]:
    """The other parties of a call or IM session (their phone numbers), to tell the k-th new one apart."""
    if not isinstance(data, dict):
        return []
    resource = next((data[k] for k in PARTICIPANT_RESOURCES if isinstance(data.get(k), dict)), None)
    if resource is None:
        return []
    return sorted(participant_numbers(resource))


# ----------------------------------------------------------------------------- divergences


@dataclass
class Divergence:
    """Something the live run did differently from the recording."""

    session: str
    step: int | None
    kind: str            # status | notification_missing | notification_unexpected | notification_differs
                         # | causality_timeout | external_event | transport | bayeux
    detail: str
    recorded: Any = None
    live: Any = None
    label: str | None = None    # the step, for people

    def as_dict(self) -> dict:
        return {"session": self.session, "step": self.step, "label": self.label, "kind": self.kind,
                "detail": self.detail, "recorded": self.recorded, "live": self.live}


def diff(recorded: Any, live: Any, path: str = "$") -> list[str]:
    """Where two normalised documents differ, as short JSON paths."""
    if isinstance(recorded, dict) and isinstance(live, dict):
        out = []
        for k in sorted(set(recorded) | set(live)):
            if k not in live:
                out.append(f"{path}.{k} missing")
            elif k not in recorded:
                out.append(f"{path}.{k} unexpected")
            else:
                out += diff(recorded[k], live[k], f"{path}.{k}")
        return out
    if isinstance(recorded, list) and isinstance(live, list) and len(recorded) == len(live):
        out = []
        for i, (r, v) in enumerate(zip(recorded, live)):
            out += diff(r, v, f"{path}[{i}]")
        return out
    if recorded != live:
        return [f"{path}: {_short(recorded)} != {_short(live)}"]
    return []


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass
class StepOutcome:
    """What one step did live, next to what it did in the recording."""

    step: Step
    sent_at: float | None = None
    answered_at: float | None = None
    status: int | None = None
    status_code: int | None = None
    successful: bool | None = None
    error: str | None = None
    skipped: str | None = None
    divergences: list[Divergence] = field(default_factory=list)


def status_divergence(session: str, outcome: StepOutcome) -> Divergence | None:
    """Recorded and live answers of one step differ (HTTP status, statusCode, Bayeux success)."""
    step = outcome.step
    if outcome.skipped:
        return None
    if outcome.error:
        return Divergence(session, step.index, "transport", outcome.error, label=step.label())
    if step.kind in ("handshake", "subscribe", "unsubscribe", "disconnect"):
        if step.successful is not None and outcome.successful is not None and step.successful != outcome.successful:
            return Divergence(session, step.index, "bayeux", f"{step.operation} successful "
                              f"{step.successful} -> {outcome.successful}", step.successful, outcome.successful,
                              label=step.label())
        return None
    if step.status is None:
        return None
    if (step.status, step.status_code) != (outcome.status, outcome.status_code):
        return Divergence(session, step.index, "status",
                          f"HTTP {step.status} statusCode {step.status_code} -> "
                          f"HTTP {outcome.status} statusCode {outcome.status_code}",
                          {"status": step.status, "statusCode": step.status_code},
                          {"status": outcome.status, "statusCode": outcome.status_code}, label=step.label())
    return None
