"""From a capture file to replay plans: what each recorded agent session did, in order.

A capture holds exchanges and Bayeux messages; a replay needs, per agent
session, the ordered *steps* (REST requests, CometD handshake/subscribe/
disconnect, events from outside the desktop) and for each step the recorded
notifications it must not overtake. This module works that out once, with no
I/O (gwsreplay.replay.recorded reads the DuckDB file), so the engine only follows it.

Causality. A step waits for the recorded notifications that preceded it *for
the resources it touches*:

* a call operation (``/me/calls/{id}``, or a body naming a call URI) waits for
  everything any replayed session was told about that call before it (Answer
  waits for Ringing; agent 1's Hangup waits for agent 2's Established);
* an agent-level request (``/me``, ``/me/channels/...``, ``/me/devices/...``)
  waits for the session's own device and channel notifications;
* a request naming another recorded agent's phone number (Dial, transfer,
  conference) waits for that agent's device notifications too (Dial 7002
  leaves once agent 2 is Ready, as in the recording);
* session-level steps (disconnect, EndContactCenterSession, the last step)
  wait for every earlier notification of the session.

External events. Calls ringing with no request of a replayed session behind
them, and far ends hanging up, become injection steps at their recorded
moment: from the simulator's control requests when the capture holds them
(``POST /sim/v1/calls``, ``.../hangup`` through the proxy), otherwise inferred
(a call first seen Ringing that no replayed session knew; a Released that no
replayed session's request explains).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any, Iterable
from urllib.parse import urlsplit

from gwsreplay.core.operations import RELEASE_OPS
from gwsreplay.core.uris import id_from_uri

META_STEPS = ("/meta/handshake", "/meta/subscribe", "/meta/unsubscribe", "/meta/disconnect")
SYNC_OPS = frozenset({"EndContactCenterSession"})
# operations that make another agent's phone ring
CALL_CREATING_OPS = frozenset({"Dial", "InitiateTransfer", "InitiateConference", "SingleStepTransfer",
                               "SingleStepConference", "CompleteTransfer", "CompleteConference"})
CALL_WINDOW = 10.0   # seconds between such a request and the ring it causes
CALL_REF_KEYS = ("otherCallUri", "consultCallUri", "parentCallUri", "callUri", "otherCallId")
PHONE_REF_KEYS = ("destination", "participant", "phoneNumber", "to")


# ----------------------------------------------------------------------------- data


@dataclass(frozen=True, order=True)
class Wait:
    """A recorded notification (session id, index in that session's notes) a step must not overtake."""

    session: str
    note: int


@dataclass(frozen=True)
class Note:
    """One recorded notification as the session received it."""

    session: str
    index: int
    ts: float                  # seconds since the capture started
    channel: str
    data: dict
    message_type: str | None
    notification_type: str | None
    resource_type: str | None
    resource_id: str | None
    state: str | None
    call_id: str | None
    step: int = -1             # the last step sent before it arrived (-1: before the first)

    @property
    def resource(self) -> tuple[str, str]:
        """What causality keys on: ('call', id), ('agent', session) or ('other', message type)."""
        if self.resource_type == "call" and self.call_id:
            return ("call", self.call_id)
        if self.resource_type in ("device", "channel"):
            return ("agent", self.session)
        if self.resource_type and self.resource_id and self.resource_type != "service":
            return (self.resource_type, self.resource_id)   # chat, email, workitem, im-session, ...
        return ("other", self.message_type or self.channel)

    def label(self) -> str:
        parts = [self.message_type or self.channel]
        if self.notification_type and self.notification_type != "StatusChange":
            parts.append(self.notification_type)
        if self.state:
            parts.append(self.state)
        return " ".join(parts)


@dataclass(frozen=True)
class Step:
    """One thing the desktop (or the outside world) did, to be done again."""

    index: int
    kind: str                          # rest | handshake | subscribe | unsubscribe | disconnect
                                       # | inject_call | far_end_hangup | control (other /sim/v1 events)
    ts: float                          # recorded request time, seconds since the capture started
    end_ts: float                      # recorded answer time
    think: float = 0.0                 # recorded pause before it, once its waits were over
    method: str | None = None
    path: str | None = None            # '/api/v2/...' without the query
    query: dict = field(default_factory=dict)
    body: Any = None
    operation: str | None = None       # operationName, or the Bayeux channel for meta steps
    status: int | None = None          # recorded HTTP status
    status_code: int | None = None     # recorded GWS statusCode
    response: Any = None               # recorded response body
    message: dict | None = None        # recorded Bayeux request (meta steps)
    successful: bool | None = None     # recorded Bayeux reply
    external: dict | None = None       # inject_call: from, to, userData, call_id; far_end_hangup: call_id
    inferred: bool = False             # external event inferred from notifications, not recorded
    waits: tuple[Wait, ...] = ()
    exchange_id: int | None = None

    def label(self) -> str:
        if self.kind == "rest":
            op = f" {self.operation}" if self.operation else ""
            return f"{self.method} {_short_path(self.path or '')}{op}"
        if self.kind == "inject_call":
            return f"external: call {self.external.get('from')} -> {self.external.get('to')}"
        if self.kind == "far_end_hangup":
            return "external: far end hangs up"
        if self.kind == "control":
            return f"external: POST {self.path}"
        sub = (self.message or {}).get("subscription")
        return f"{self.operation}" + (f" {sub}" if sub else "")


@dataclass
class SessionPlan:
    id: str
    user_name: str
    session_key: str | None
    transport: str
    started: float                     # first step, seconds since the capture started
    steps: list[Step]
    notes: list[Note]
    phones: set[str] = field(default_factory=set)
    devices: set[str] = field(default_factory=set)


@dataclass
class ReplayPlan:
    capture: str
    started_at: float                  # epoch seconds of the capture's first step
    recorded_origins: list[str]        # scheme://host:port the capture was recorded from
    sessions: list[SessionPlan]

    @property
    def recorded_hosts(self) -> set[str]:
        return {urlsplit(o).netloc.lower() for o in self.recorded_origins}

    def session(self, session_id: str) -> SessionPlan:
        for s in self.sessions:
            if s.id == session_id:
                return s
        raise KeyError(session_id)

    def describe(self) -> dict:
        """The plan as JSON-able data (for --dry-run and tests)."""
        return {"capture": self.capture, "recorded_origins": self.recorded_origins, "sessions": [{
            "id": s.id, "user": s.user_name, "transport": s.transport, "phones": sorted(s.phones),
            "start_offset_s": round(s.started, 3), "notifications": len(s.notes),
            "steps": [{"index": st.index, "kind": st.kind, "label": st.label(), "at_s": round(st.ts, 3),
                       "think_s": round(st.think, 3), "status": st.status, "statusCode": st.status_code,
                       "waits_for": [f"{w.session}:{_note_label(self, w)}" for w in st.waits],
                       **({"inferred": True} if st.inferred else {})}
                      for st in s.steps]} for s in self.sessions]}


def _note_label(plan: ReplayPlan, wait: Wait) -> str:
    return plan.session(wait.session).notes[wait.note].label()


def _short_path(path: str) -> str:
    return path[len("/api/v2"):] if path.startswith("/api/v2/") else path


# ----------------------------------------------------------------------------- recorded input


@dataclass
class RawSession:
    """One recorded agent session as read from a capture: its steps and notifications."""

    id: str
    user_name: str
    session_key: str | None
    transport: str
    steps: list[Step]
    notes: list[Note]
    phones: set[str]
    devices: set[str]


@dataclass
class RecordedCapture:
    """Everything a plan is built from, read once from the DuckDB file."""

    path: str
    t0_us: int
    origins: list[str]
    sessions: list[RawSession]
    control: list[dict]                # recorded /sim/v1 call injections and hangups

    def session_ids(self) -> list[str]:
        return [s.id for s in self.sessions]


# ----------------------------------------------------------------------------- building


def build_plan(recorded: RecordedCapture, session_ids: Iterable[str] | None = None) -> ReplayPlan:
    """Plans for the chosen sessions (all by default), with waits and external events among them."""
    wanted = list(session_ids) if session_ids is not None else recorded.session_ids()
    unknown = [s for s in wanted if s not in recorded.session_ids()]
    if unknown:
        raise KeyError(f"no session {', '.join(unknown)} in {recorded.path} "
                       f"(sessions: {', '.join(recorded.session_ids())})")
    raw = [s for s in recorded.sessions if s.id in wanted]
    builder = _Builder(raw, recorded.control)
    sessions = builder.build()
    started_at = recorded.t0_us / 1e6 + min((s.started for s in sessions), default=0.0)
    return ReplayPlan(recorded.path, started_at, recorded.origins, sessions)


class _Builder:
    def __init__(self, sessions: list[RawSession], control: list[dict]):
        self.raw = sessions
        self.control = control
        self.by_phone = {p: s.id for s in sessions for p in s.phones}
        self.conn_to_call: dict[str, str] = {}
        self.call_notes: dict[str, list[Note]] = defaultdict(list)   # call id -> notes, all sessions
        for s in sessions:
            for n in s.notes:
                if n.call_id:
                    self.call_notes[n.call_id].append(n)
                    conn = (n.data.get("call") or {}).get("connId") if isinstance(n.data.get("call"), dict) else None
                    if conn:
                        self.conn_to_call[conn] = n.call_id
        for notes in self.call_notes.values():
            notes.sort(key=lambda n: n.ts)
        # any other resource with an id (chat, email, workitem, im-session): id -> notes, all sessions
        self.resource_notes: dict[str, list[Note]] = defaultdict(list)
        for s in sessions:
            for n in s.notes:
                kind, rid = n.resource
                if kind not in ("call", "agent", "other"):
                    self.resource_notes[rid].append(n)

    def build(self) -> list[SessionPlan]:
        steps = {s.id: list(s.steps) for s in self.raw}
        self._add_external(steps)
        plans = []
        for s in self.raw:
            ordered = sorted(steps[s.id], key=lambda st: st.ts)
            ordered = [replace(st, index=i) for i, st in enumerate(ordered)]
            notes = self._assign_steps(s.notes, ordered)
            plans.append(SessionPlan(s.id, s.user_name, s.session_key, s.transport,
                                     ordered[0].ts if ordered else 0.0, ordered, notes, s.phones, s.devices))
        notes_by_session = {p.id: p.notes for p in plans}
        for p in plans:
            p.steps = self._causality(p, notes_by_session)
        return plans

    # ---------------------------------------------------------------- external events

    def _add_external(self, steps: dict[str, list[Step]]) -> None:
        injected_calls: set[str] = set()
        hung_up: set[str] = set()
        for c in self.control:
            body = c["body"] if isinstance(c["body"], dict) else {}
            if c["path"] == "/sim/v1/calls":
                owner = self.by_phone.get(str(body.get("to")))
                call_id = (c["response"] or {}).get("id") if isinstance(c["response"], dict) else None
                if owner is None:
                    continue
                if call_id:
                    injected_calls.add(call_id)
                steps[owner].append(Step(
                    index=0, kind="inject_call", ts=c["ts"], end_ts=c["end_ts"], method="POST", path=c["path"],
                    status=c["status"], status_code=_status_code(c["response"]), response=c["response"],
                    external={"from": str(body.get("from")), "to": str(body.get("to")),
                              "userData": body.get("userData") or {}, "call_id": call_id},
                    exchange_id=c["id"]))
            elif not c["path"].startswith("/sim/v1/calls/"):
                owner = self._control_owner(c, body)
                if owner is None:
                    continue
                steps[owner].append(Step(
                    index=0, kind="control", ts=c["ts"], end_ts=c["end_ts"], method="POST", path=c["path"],
                    body=c["body"], status=c["status"], status_code=_status_code(c["response"]),
                    response=c["response"], external={"path": c["path"], "body": c["body"]},
                    exchange_id=c["id"]))
            else:
                call_id = c["path"].split("/")[4]
                owner = self._call_owner(call_id, c["ts"])
                if owner is None:
                    continue
                hung_up.add(call_id)
                steps[owner].append(Step(
                    index=0, kind="far_end_hangup", ts=c["ts"], end_ts=c["end_ts"], method="POST",
                    path=c["path"], status=c["status"], status_code=_status_code(c["response"]),
                    response=c["response"], external={"call_id": call_id}, exchange_id=c["id"]))
        for s in self.raw:
            for n in self._inferred_rings(s, injected_calls):
                call = n.data.get("call") or {}
                numbers = participant_numbers(call)
                steps[s.id].append(Step(
                    index=0, kind="inject_call", ts=max(n.ts - 0.001, 0.0), end_ts=n.ts, inferred=True,
                    external={"from": str(call.get("ani") or next(iter(numbers), "")),
                              "to": str(call.get("dnis") or n.data.get("phoneNumber") or next(iter(s.phones), "")),
                              "userData": call.get("userData") or {}, "call_id": n.call_id}))
        for n in self._inferred_hangups(steps, hung_up):
            steps[n.session].append(Step(
                index=0, kind="far_end_hangup", ts=max(n.ts - 0.001, 0.0), end_ts=n.ts, inferred=True,
                external={"call_id": n.call_id}))

    def _control_owner(self, control: dict, body: dict) -> str | None:
        """Whose session an external media event belongs to: the `to` user's, else whoever hears of it."""
        if isinstance(body.get("to"), str):
            mine = [s for s in self.raw if s.user_name == body["to"] and s.steps and s.steps[0].ts <= control["ts"]]
            if mine:
                return mine[-1].id
        response = control["response"] if isinstance(control["response"], dict) else {}
        ids = [seg for seg in control["path"].split("/") if seg in self.resource_notes]
        if isinstance(response.get("id"), str):
            ids.append(response["id"])
        for rid in ids:
            heard = [n for n in self.resource_notes.get(rid, []) if n.ts >= control["ts"] - 1.0]
            if heard:
                return min(heard, key=lambda n: n.ts).session
        return None

    def _call_owner(self, call_id: str, ts: float) -> str | None:
        notes = [n for n in self.call_notes.get(call_id, []) if n.ts <= ts + 1.0]
        return notes[0].session if notes else None

    def _inferred_rings(self, s: RawSession, injected: set[str]) -> list[Note]:
        """Calls this session first saw Ringing and no replayed session knew before."""
        out = []
        first: dict[str, Note] = {}
        for n in s.notes:
            if n.call_id and n.call_id not in first:
                first[n.call_id] = n
        for call_id, n in first.items():
            if n.state != "Ringing" or call_id in injected:
                continue
            if self._called_by_peer(s, n):
                continue  # another replayed agent's call (agent-to-agent, transfer, conference)
            out.append(n)
        return out

    def _called_by_peer(self, s: RawSession, ring: Note) -> bool:
        """Did another replayed session ask for this call to ring here (Dial, consult, single-step)?

        Decided from the requests, not from notification times: two agents'
        long-polls are answered independently, so the callee's Ringing may be
        recorded a few milliseconds before the caller's Dialing.
        """
        others = {m.session for m in self.call_notes[ring.call_id] if m.session != s.id}
        for other in self.raw:
            if other.id == s.id:
                continue
            for st in other.steps:
                if st.kind != "rest" or st.operation not in CALL_CREATING_OPS:
                    continue
                if not (ring.ts - CALL_WINDOW <= st.ts <= ring.ts + 0.05):
                    continue
                body = st.body if isinstance(st.body, dict) else {}
                if set(_phones_in(body)) & s.phones or other.id in others:
                    return True
        return False

    def _inferred_hangups(self, steps: dict[str, list[Step]], hung_up: set[str]) -> list[Note]:
        """Released notifications that no replayed session's request explains: the far end hung up."""
        out = []
        for s in self.raw:
            previous: dict[str, float] = {}
            for n in s.notes:
                if not n.call_id:
                    continue
                since = previous.get(n.call_id, -1.0)
                previous[n.call_id] = n.ts
                if n.state != "Released" or n.call_id in hung_up:
                    continue
                parties = {m.session for m in self.call_notes[n.call_id]}
                explained = any(
                    st.kind == "rest" and st.operation in RELEASE_OPS and since <= st.ts <= n.ts
                    for sid in parties for st in steps[sid])
                if not explained:
                    hung_up.add(n.call_id)
                    out.append(n)
        return out

    # ---------------------------------------------------------------- notes and waits

    @staticmethod
    def _assign_steps(notes: list[Note], steps: list[Step]) -> list[Note]:
        out = []
        i = -1
        for n in notes:
            while i + 1 < len(steps) and steps[i + 1].ts <= n.ts:
                i += 1
            out.append(replace(n, step=i))
        return out

    def _causality(self, plan: SessionPlan, notes_by_session: dict[str, list[Note]]) -> list[Step]:
        awaited: set[Wait] = set()
        out = []
        prev_end = plan.started
        for i, step in enumerate(plan.steps):
            waits = []
            for note in self._preceding(plan, step, i == len(plan.steps) - 1, notes_by_session):
                w = Wait(note.session, note.index)
                if w not in awaited:
                    awaited.add(w)
                    waits.append((note.ts, w))
            waits.sort()
            ready = max([prev_end] + [ts for ts, _ in waits])
            think = max(0.0, step.ts - ready) if i else 0.0
            out.append(replace(step, waits=tuple(w for _, w in waits), think=think))
            prev_end = max(step.end_ts, step.ts)
        return out

    def _preceding(self, plan: SessionPlan, step: Step, last: bool,
                   notes_by_session: dict[str, list[Note]]) -> list[Note]:
        """Recorded notifications before `step` about what it touches."""
        before = lambda n: n.ts < step.ts  # noqa: E731
        if step.kind in ("disconnect",) or last or step.operation in SYNC_OPS:
            return [n for n in plan.notes if before(n)]
        if step.kind in ("handshake", "subscribe", "unsubscribe"):
            return []
        calls, agents = self._touches(plan, step)
        found = []
        for rid in calls:
            found += [n for n in self.call_notes.get(rid, []) + self.resource_notes.get(rid, [])
                      if before(n) and n.session in notes_by_session]
        for sid in agents:
            found += [n for n in notes_by_session.get(sid, []) if before(n) and n.resource == ("agent", sid)]
        if _creates_im_session(step):
            # an agent is in one IM session at a time (GWS answers a second InitiateIMSession with
            # "Invalid state"): a new one waits for both parties' earlier IM sessions, as recorded
            for sid in agents:
                found += [n for n in notes_by_session.get(sid, []) if before(n) and n.resource_type == "im-session"]
        if step.kind == "rest" and step.method == "GET" and (step.path or "").rstrip("/").endswith("/me/calls"):
            found += [n for n in plan.notes if before(n) and n.resource_type == "call"]
        return found

    def _touches(self, plan: SessionPlan, step: Step) -> tuple[set[str], set[str]]:
        """(ids of calls and other resources, sessions whose agent state) the step depends on."""
        calls: set[str] = set()
        agents: set[str] = set()
        if step.kind == "inject_call":
            agents.add(plan.id)
            return calls, agents
        if step.kind == "far_end_hangup":
            calls.add(step.external["call_id"])
            return calls, agents
        path = step.path or ""
        segments = [seg for seg in path.split("/") if seg]
        if "calls" in segments:
            at = segments.index("calls")
            if at + 1 < len(segments):
                calls.add(self.conn_to_call.get(segments[at + 1], segments[at + 1]))
        calls.update(seg for seg in segments if seg in self.resource_notes)   # /me/chats/{id}, ...
        if step.kind == "control":
            agents.add(plan.id)
            return calls, agents
        if "me" in segments and not calls:
            agents.add(plan.id)
        if "devices" in segments:
            agents.add(plan.id)
        body = step.body if isinstance(step.body, dict) else {}
        for key in CALL_REF_KEYS:
            ref = id_from_uri(body.get(key)) if isinstance(body.get(key), str) else None
            if ref:
                calls.add(self.conn_to_call.get(ref, ref))
        for phone in _phones_in(body):
            if phone in self.by_phone:
                agents.add(self.by_phone[phone])
        return calls, agents


def _creates_im_session(step: Step) -> bool:
    """POST /me/im-sessions (InitiateIMSession): no id in the path, the session exists only in notifications."""
    if step.kind != "rest" or step.method != "POST":
        return False
    segments = [seg for seg in (step.path or "").split("?")[0].split("/") if seg]
    return bool(segments) and segments[-1] == "im-sessions"


def participant_numbers(resource: Any) -> list[str]:
    """The phone numbers of a call's (or IM session's) participants, in order. 8.6 lists objects
    (``{"phoneNumber": "5001", ...}``), 8.5.2 plain strings (``["5001"]`` beside ``participantsInfo``)."""
    if not isinstance(resource, dict):
        return []
    out = []
    for p in resource.get("participants") or []:
        number = p.get("phoneNumber") if isinstance(p, dict) else p
        if isinstance(number, (str, int)) and not isinstance(number, bool) and str(number):
            out.append(str(number))
    return out


def _phones_in(body: dict) -> list[str]:
    out = []
    for key in PHONE_REF_KEYS:
        value = body.get(key)
        if isinstance(value, dict):
            value = value.get("phoneNumber")
        if isinstance(value, (str, int)):
            out.append(str(value))
    return out


def _status_code(body: Any) -> int | None:
    if isinstance(body, dict) and isinstance(body.get("statusCode"), int):
        return body["statusCode"]
    return None
