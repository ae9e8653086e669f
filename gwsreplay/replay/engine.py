"""The replay engine of one agent session, without I/O.

The driver tells the engine what happened (`start`, `on_answer`,
`on_notification`, and simply calling `poll` again when time passes) and the
engine answers with actions: send this step (with ids mapped), announce an
external event it cannot cause itself, report a divergence, or finish. Between
two events the driver sleeps until `deadline` at most. Time is whatever clock
the driver passes in (seconds), so the unit tests run on a fake one.

Rules, in the order `poll` applies them:

1. one step at a time: the next step waits for the answers of the steps before it,
   except where the recording overlapped (1b): a REST request sent, in the
   recording, before the answers of the REST requests still in flight came
   (a start-up burst of GETs, a Hold while an AttachUserData is in flight) may
   go while they are in flight in the replay too; what each step waits for
   (rules 2-3) is the same either way;
2. causality: a step waits until the recorded notifications it must not
   overtake (`Step.waits`, computed by `plan.py`) have been matched live, in any
   session of the same replay; past `wait_timeout` that is a divergence, the
   missing notifications are given up, and the session goes on or stops
   (`on_divergence`); likewise (2b) a request naming the recorded number of an
   agent of the same copy (Dial 7002) waits until the copy has learned that
   agent's live number (from its device answers or notifications) and that
   agent's session has answered the steps it had done by then in the recording
   (so the callee is subscribed), so copies call within themselves and never
   another copy's agent;
3. think time: once its waits are over, a step waits the recorded pause divided
   by `speed` (none at speed max);
4. after the last step, the session drains: it waits (up to `drain_timeout`) for
   the notifications still expected, then reports what never came.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Union

from gwsreplay.replay.compare import Divergence, LiveNote, Matcher, StepOutcome, Symbols, diff, normalize, status_divergence
from gwsreplay.replay.idmap import IdMap
from gwsreplay.replay.plan import Note, ReplayPlan, SessionPlan, Step, Wait

EXTERNAL_KINDS = ("inject_call", "far_end_hangup", "control")


@dataclass
class EngineOptions:
    speed: float | None = None         # None: as fast as causality allows ("max")
    wait_timeout: float = 10.0         # seconds a step may wait for its notifications
    external_timeout: float = 60.0     # ... when they depend on an external event we could not cause
    drain_timeout: float = 5.0         # seconds to wait for the last notifications after the last step
    on_divergence: str = "continue"    # or "stop"
    can_inject: bool = True            # the target has the simulator's control API


# ----------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class Send:
    """Do one step now. For REST: method, path (ids mapped), query, body; for meta steps: message;
    for external events: `external` with the live phone numbers / call id."""

    step: Step
    method: str | None = None
    path: str | None = None
    query: dict = field(default_factory=dict)
    body: Any = None
    message: dict | None = None
    external: dict | None = None


@dataclass(frozen=True)
class Announce:
    """Something the operator must know (an external event to cause by hand)."""

    text: str


@dataclass(frozen=True)
class Report:
    divergence: Divergence


@dataclass(frozen=True)
class Finished:
    reason: str                        # completed | stopped


Action = Union[Send, Announce, Report, Finished]


# ----------------------------------------------------------------------------- shared state


class ReplayState:
    """What the sessions of one replayed copy share: the id map and every session's matcher."""

    def __init__(self, plan: ReplayPlan | list[SessionPlan], idmap: IdMap | None = None):
        sessions = plan.sessions if isinstance(plan, ReplayPlan) else plan
        self.idmap = idmap or IdMap()
        self.matchers = {s.id: Matcher(s.notes, self.idmap, s.id, s.steps) for s in sessions}
        self.notes = {s.id: s.notes for s in sessions}
        # recorded phone number -> the session whose agent it is (to be learned live within this copy)
        self.phone_owner = {p: s.id for s in sessions for p in sorted(s.phones)}
        # ... every session with that number, in start order (a user may log in more than once)
        self.phone_sessions: dict[str, list[SessionPlan]] = {}
        for s in sorted(sessions, key=lambda s: s.started):
            for p in s.phones:
                self.phone_sessions.setdefault(p, []).append(s)
        self.sessions = {s.id: s for s in sessions}
        self.sent_upto: dict[str, int] = {}          # session -> steps sent (in order)
        self.answered_steps: dict[str, set[int]] = {}  # session -> steps answered
        self.version = 0                # bumped on every match: waiting engines re-check

    def satisfied(self, wait: Wait) -> bool:
        matcher = self.matchers.get(wait.session)
        return matcher is None or matcher.done(wait.note)

    def note(self, wait: Wait) -> Note:
        return self.notes[wait.session][wait.note]

    def give_up(self, wait: Wait) -> None:
        matcher = self.matchers.get(wait.session)
        if matcher is not None:
            matcher.give_up(wait.note)

    def callee_not_ready(self, step: Step, session: str, *, can_inject: bool = True) -> list[str]:
        """The colleagues (recorded numbers) that `step` calls before it may: their live number is not
        known in this copy yet, or their session is not as far as it was, in the recording, at the
        time of this step (`_behind`: a Dial must not ring an agent that cannot hear it yet)."""
        if not self.phone_owner:
            return []
        if step.kind == "rest":
            named = self.idmap.unmapped_phones(step.body, self.phone_owner, known=True)
        elif step.kind == "inject_call" and step.external and can_inject:
            named = self.idmap.unmapped_phones({"to": step.external.get("to")}, self.phone_owner, known=True)
        else:
            return []
        return [p for p in dict.fromkeys(named)
                if not self.idmap.knows(p) or self._behind(self.owner_at(p, step.ts), step, session)]

    def owner_at(self, phone: str, ts: float) -> str:
        """The session that had `phone` at recorded time `ts` (the last one started by then)."""
        candidates = self.phone_sessions.get(phone) or []
        started = [s for s in candidates if s.started <= ts]
        return (started or candidates)[-1 if started else 0].id if candidates else self.phone_owner[phone]

    def _behind(self, owner: str, step: Step, session: str) -> bool:
        """Has the colleague's session not yet sent the steps it had sent by `step`'s recorded time,
        or not yet been answered for its handshake and subscriptions among them (it could not hear a call)?"""
        if owner == session or owner not in self.sessions:
            return False
        earlier = [st for st in self.sessions[owner].steps if st.ts < step.ts]
        if self.sent_upto.get(owner, 0) < len(earlier):
            return True
        answered = self.answered_steps.get(owner, set())
        return any(st.index not in answered for st in earlier if st.kind in ("handshake", "subscribe"))

    def sent(self, session: str, index: int) -> None:
        self.sent_upto[session] = max(self.sent_upto.get(session, 0), index + 1)

    def answered(self, session: str, index: int) -> None:
        self.answered_steps.setdefault(session, set()).add(index)
        self.version += 1


# ----------------------------------------------------------------------------- engine


class SessionEngine:
    def __init__(self, plan: SessionPlan, state: ReplayState, options: EngineOptions | None = None,
                 *, start_delay: float = 0.0):
        self.plan = plan
        self.state = state
        self.options = options or EngineOptions()
        self.start_delay = start_delay
        self.matcher = state.matchers[plan.id]
        self.outcomes = [StepOutcome(step) for step in plan.steps]
        self.divergences: list[Divergence] = []
        self.done = False
        self.finish_reason: str | None = None
        self.deadline: float | None = None
        self._next = 0                      # the next step to send
        self._inflight: set[int] = set()    # steps sent, not answered yet
        self._ready_at: float | None = None
        self._wait_started: float | None = None
        self._satisfied_at: float | None = None
        self._awaiting_external: str | None = None
        self._drain_until: float | None = None
        self._queued: list[Action] = []
        self._numbers_given_up: set[str] = set()

    # ------------------------------------------------------------------ events

    def start(self, now: float) -> None:
        self._ready_at = now + self.start_delay

    def on_answer(self, index: int, now: float, *, status: int | None = None, body: Any = None,
                  successful: bool | None = None, error: str | None = None) -> None:
        """The answer to step `index`: HTTP status + JSON body, or a Bayeux reply's success, or an error."""
        outcome = self.outcomes[index]
        step = outcome.step
        outcome.answered_at = now
        outcome.status, outcome.successful, outcome.error = status, successful, error
        if isinstance(body, dict):
            outcome.status_code = body.get("statusCode") if isinstance(body.get("statusCode"), int) else None
            if isinstance(step.response, dict):
                self.state.idmap.learn(step.response, body, scope=self.plan.id)
            if step.kind == "inject_call" and step.external.get("call_id") and isinstance(body.get("id"), str):
                self.state.idmap.add(step.external["call_id"], body["id"])
        self._diverge(status_divergence(self.plan.id, outcome))
        self.state.answered(self.plan.id, index)
        if index in self._inflight:
            self._inflight.discard(index)
            self._ready_at = now
            self._wait_started = self._satisfied_at = None

    def skip(self, index: int, now: float, reason: str) -> None:
        """The driver could not do step `index` (an external event on a real GWS): go on without it."""
        self.outcomes[index].skipped = reason
        self.on_answer(index, now)

    def on_notification(self, channel: str, data: Any, now: float) -> Note | None:
        """A live notification for this session; returns the recorded one it matched, if any."""
        live = LiveNote.from_message(channel, data, now)
        step = self._next - 1              # the last step sent
        note = self.matcher.offer(live, step)
        self.state.version += 1
        if note is None:
            self._diverge(Divergence(self.plan.id, max(step, 0), "notification_unexpected",
                                     f"unexpected {live.label()} on {channel}", None,
                                     normalize(self.state.idmap.unmap(live.data, scope=self.plan.id), Symbols()),
                                     label=self._label(step)))
            return None
        symbols = Symbols()
        recorded = normalize(note.data, symbols)
        observed = normalize(self.state.idmap.unmap(live.data, scope=self.plan.id), symbols)
        if recorded != observed:
            where = diff(recorded, observed)
            self._diverge(Divergence(self.plan.id, max(note.step, 0), "notification_differs",
                                     f"{note.label()}: " + "; ".join(where[:3]) + (" ..." if len(where) > 3 else ""),
                                     recorded, observed, label=self._label(note.step)))
        return note

    # ------------------------------------------------------------------ actions

    def poll(self, now: float) -> list[Action]:
        """What to do now; afterwards `deadline` says when to poll again if nothing happens."""
        self.deadline = None
        if not self.done and self._ready_at is not None:
            self._advance(now)
        actions, self._queued = self._queued, []
        return actions

    def _advance(self, now: float) -> None:
        while not self.done:
            if self._next >= len(self.plan.steps):
                if not self._inflight:
                    self._drain(now)
                return
            step = self.plan.steps[self._next]
            if self._inflight and not self._overlapped(step):
                return
            if now < self._ready_at:
                self.deadline = self._ready_at
                return
            if not self._waits_over(step, now) or not self._callee_ready(step, now):
                return
            if self.done:
                return
            if self._satisfied_at is None:
                self._satisfied_at = max(now, self._ready_at)
            send_at = self._satisfied_at + (step.think / self.options.speed if self.options.speed else 0.0)
            if now < send_at:
                self.deadline = send_at
                return
            self._send(step, now)

    def _overlapped(self, step: Step) -> bool:
        """Rule 1b: in the recording, `step` was sent before every step now in flight was answered."""
        steps = self.plan.steps
        return step.kind == "rest" and all(
            steps[i].kind == "rest" and step.ts < steps[i].end_ts for i in self._inflight)

    def _waits_over(self, step: Step, now: float) -> bool:
        pending = [w for w in step.waits if not self.state.satisfied(w)]
        if not pending:
            self._awaiting_external = None
            return True
        if self._wait_started is None:
            self._wait_started = now
        timeout = self.options.external_timeout if self._awaiting_external else self.options.wait_timeout
        if now < self._wait_started + timeout:
            self.deadline = self._wait_started + timeout
            return False
        labels = [f"{w.session}: {self.state.note(w).label()}" for w in pending]
        why = f" (the external event '{self._awaiting_external}' did not happen)" if self._awaiting_external else ""
        self._diverge(Divergence(self.plan.id, step.index, "causality_timeout",
                                 f"waited {timeout:g}s for {', '.join(labels)}{why}",
                                 labels, None, label=step.label()))
        for w in pending:
            self.state.give_up(w)
        self._awaiting_external = None
        return not self.done

    def _callee_ready(self, step: Step, now: float) -> bool:
        """Rule 2b: a request naming a colleague's recorded number waits until the copy knows the
        colleague's live number and the colleague's session is as far as it was in the recording."""
        missing = [p for p in self.state.callee_not_ready(step, self.plan.id, can_inject=self.options.can_inject)
                   if p not in self._numbers_given_up]
        if not missing:
            return True
        if self._wait_started is None:
            self._wait_started = now
        if now < self._wait_started + self.options.wait_timeout:
            self.deadline = self._wait_started + self.options.wait_timeout
            return False
        whose = ", ".join(f"{self.state.owner_at(p, step.ts)} (recorded {p})" for p in missing)
        self._diverge(Divergence(self.plan.id, step.index, "causality_timeout",
                                 f"waited {self.options.wait_timeout:g}s for the live number of {whose}"
                                 f" and for that session to be as far as recorded",
                                 missing, None, label=step.label()))
        self._numbers_given_up.update(missing)
        return not self.done

    def _send(self, step: Step, now: float) -> None:
        idmap = self.state.idmap
        outcome = self.outcomes[step.index]
        outcome.sent_at = now
        self._inflight.add(step.index)
        self._next = step.index + 1
        self._wait_started = self._satisfied_at = None
        self.state.sent(self.plan.id, step.index)
        if step.kind in EXTERNAL_KINDS:
            external = dict(step.external)
            if step.kind == "inject_call":
                external["to"] = idmap.live(external["to"], "to")
                external["from"] = idmap.live(external["from"], "from")
            elif step.kind == "far_end_hangup":
                external["call_id"] = idmap.live(external["call_id"])
            else:
                external["path"] = idmap.substitute_path(external["path"])
                external["body"] = idmap.substitute(external["body"])
            if not self.options.can_inject:
                text = _external_text(self.plan, step, external)
                self._awaiting_external = text
                self._queued.append(Announce(f"{self.plan.id}: waiting for an external event: {text}"))
                self.skip(step.index, now, "external event left to the target")
                return
            self._queued.append(Send(step, external=external))
            return
        if step.kind == "rest":
            self._queued.append(Send(
                step, method=step.method, path=idmap.substitute_path(step.path or ""),
                query={k: idmap.live(v, k) if isinstance(v, str) else v for k, v in (step.query or {}).items()},
                body=idmap.substitute(step.body, scope=self.plan.id)))
            return
        self._queued.append(Send(step, message=idmap.substitute(step.message)))

    def _drain(self, now: float) -> None:
        pending = [n for n in self.matcher.notes if not self.matcher.done(n.index)]
        if pending:
            if self._drain_until is None:
                self._drain_until = now + self.options.drain_timeout
            if now < self._drain_until:
                self.deadline = self._drain_until
                return
        self._finish("completed")

    def _finish(self, reason: str) -> None:
        if self.done:
            return
        for note in self.matcher.missing():
            if note.index in self.matcher.given_up:
                continue
            self.divergences.append(d := Divergence(
                self.plan.id, max(note.step, 0), "notification_missing", f"no live {note.label()} on {note.channel}",
                normalize(note.data, Symbols()), None, label=self._label(note.step)))
            self._queued.append(Report(d))
        self.done = True
        self.finish_reason = reason
        self._queued.append(Finished(reason))

    def stop(self, reason: str = "stopped") -> list[Action]:
        """End the session now (another session stopped the run, or the driver gave up)."""
        self._finish(reason)
        actions, self._queued = self._queued, []
        return actions

    # ------------------------------------------------------------------ helpers

    def _diverge(self, divergence: Divergence | None) -> None:
        if divergence is None:
            return
        self.divergences.append(divergence)
        if 0 <= (divergence.step or 0) < len(self.outcomes):
            self.outcomes[divergence.step or 0].divergences.append(divergence)
        self._queued.append(Report(divergence))
        if self.options.on_divergence == "stop" and not self.done:
            self._finish("stopped")

    def _label(self, index: int | None) -> str | None:
        if index is None or not (0 <= index < len(self.plan.steps)):
            return None
        return self.plan.steps[index].label()


def _external_text(plan: SessionPlan, step: Step, ext: dict) -> str:
    at = f"recorded at +{step.ts:.1f}s"
    if step.kind == "inject_call":
        data = f" with userData {ext['userData']}" if ext.get("userData") else ""
        return f"an inbound call from {ext.get('from')} to {ext.get('to')}{data} ({at})"
    if step.kind == "control":
        return f"what the simulator's POST {ext.get('path')} {json.dumps(ext.get('body'))} did ({at})"
    return f"the far end hanging up the call of {plan.user_name} ({at})"
