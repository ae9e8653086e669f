"""Scripted multimedia work for headless desktops: chats, emails, workitems, IM.

Built on :class:`gwsreplay.client.desktop.Desktop` without changing it:

* :class:`InteractionMirror` keeps the latest chat / email / workitem / open-media /
  IM-session resources, chat transcripts, IM messages and media channel states,
  folded from ``desktop.notifications`` (every CometD data message, in arrival
  order); ``wait_*`` block on ``desktop.wait_until``, which wakes on every message.
* the injectors (``inject_chat``, ``inject_email``, ...) are in :mod:`gwsreplay.client.control`.
* The scenario functions (``chat_scenario``, ``email_scenario``,
  ``workitem_scenario``, ``im_initiator`` / ``im_responder``) each work one
  interaction from arrival to completion and raise ``DesktopError`` if an
  operation is refused or an expected notification never comes.

Hooking them into ``gwsreplay agents --channels ...`` is described in
docs/media-model.md ("Scripted agents").
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Callable

from gwsreplay.client.control import ControlApi
from gwsreplay.client.desktop import Desktop
from gwsreplay.core.uris import resource_id

MEDIA_CHANNELS = ("chat", "email", "workitem", "im")
# messageType -> (store name, resource key)
_STATE_MESSAGES = {
    "ChatStateChangeMessage": ("chats", "chat"),
    "EmailStateChangeMessage": ("emails", "email"),
    "WorkitemStateChangeMessage": ("workitems", "workitem"),
    "OpenmediaStateChangeMessage": ("openmedia", "openmedia"),
    "IMSessionStateChangeMessage": ("im_sessions", "imSession"),
}
TERMINAL = {"Completed", "Sent", "Canceled", "Revoked", "InWorkbin"}


@dataclass
class InteractionMirror:
    """What a desktop knows about its non-voice interactions, from the notifications."""

    desktop: Desktop
    chats: dict[str, dict] = field(default_factory=dict)
    emails: dict[str, dict] = field(default_factory=dict)
    workitems: dict[str, dict] = field(default_factory=dict)
    openmedia: dict[str, dict] = field(default_factory=dict)
    im_sessions: dict[str, dict] = field(default_factory=dict)
    chat_messages: dict[str, list[dict]] = field(default_factory=dict)   # chat id -> log entries (by index)
    im_messages: dict[str, list[str]] = field(default_factory=dict)      # IM session id -> messages
    channels: dict[str, dict] = field(default_factory=dict)              # channel -> latest entry
    workbin_events: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)                     # notificationType Error
    _seen: int = 0

    def update(self) -> None:
        notifications = self.desktop.notifications
        while self._seen < len(notifications):
            data = notifications[self._seen].get("data") or {}
            self._seen += 1
            if isinstance(data, dict):
                self._fold(data)

    def _fold(self, data: dict) -> None:
        kind = data.get("messageType")
        if data.get("notificationType") == "Error":
            self.errors.append(data)
        if kind in _STATE_MESSAGES:
            store, key = _STATE_MESSAGES[kind]
            resource = data.get(key)
            if isinstance(resource, dict) and resource.get("id"):
                getattr(self, store)[resource["id"]] = resource
        elif kind == "MessageLogUpdated":
            chat_id = resource_id(data.get("chatUri")) or ""
            log = self.chat_messages.setdefault(chat_id, [])
            known = {m.get("index") for m in log}
            log.extend(m for m in data.get("messages", []) if m.get("index") not in known)
        elif kind == "IMLogUpdateMessage":
            im_id = resource_id(data.get("imSessionPath")) or ""
            self.im_messages.setdefault(im_id, []).append(data.get("message"))
        elif kind == "ChannelStateChangeMessageV2":
            for entry in data.get("channels", []):
                self.channels[entry.get("channel")] = entry
        elif kind in ("WorkbinStateChangeMessage", "WorkbinSubscriptionStateChangeMessage"):
            self.workbin_events.append(data)

    async def wait(self, store: str, predicate: Callable[[dict], bool], timeout: float | None = None) -> dict:
        """The first resource of ``store`` (``"chats"``, ``"emails"``...) satisfying predicate."""
        found: list[dict] = []

        def probe() -> bool:
            self.update()
            match = next((r for r in getattr(self, store).values() if predicate(r)), None)
            if match is not None:
                found.append(match)
            return match is not None

        await self.desktop.wait_until(probe, timeout)
        return found[0]

    async def wait_state(self, store: str, resource_id: str, state: str, timeout: float | None = None) -> dict:
        return await self.wait(store, lambda r: r["id"] == resource_id and r.get("state") == state, timeout)

    async def wait_chat_message(self, chat_id: str, predicate: Callable[[dict], bool],
                                timeout: float | None = None) -> dict:
        found: list[dict] = []

        def probe() -> bool:
            self.update()
            match = next((m for m in self.chat_messages.get(chat_id, []) if predicate(m)), None)
            if match is not None:
                found.append(match)
            return match is not None

        await self.desktop.wait_until(probe, timeout)
        return found[0]

    async def wait_im_messages(self, im_id: str, count: int, timeout: float | None = None) -> list[str]:
        def probe() -> bool:
            self.update()
            return len(self.im_messages.get(im_id, [])) >= count

        await self.desktop.wait_until(probe, timeout)
        return self.im_messages[im_id]

    def active(self) -> dict[str, list[str]]:
        """Ids of interactions that are not over, per store (for wrap-up)."""
        self.update()
        return {store: [i for i, r in getattr(self, store).items() if r.get("state") not in TERMINAL]
                for store in ("chats", "emails", "workitems", "openmedia", "im_sessions")}


@dataclass
class Pace:
    """Think and talk times (seconds, scaled by the generator like agents.py)."""

    rng: random.Random
    think_time: float = 0.3
    talk_time: float = 0.5

    async def think(self) -> None:
        await asyncio.sleep(self.think_time * (0.5 + self.rng.random()))

    async def talk(self) -> None:
        await asyncio.sleep(self.talk_time * (0.5 + self.rng.random()))


async def media_ready(desktop: Desktop, channels: tuple[str, ...] = MEDIA_CHANNELS) -> None:
    """Ready on each media channel of the session (POST /me/channels/{channel})."""
    for channel in channels:
        if channel != "voice":
            await desktop.operation(f"/api/v2/me/channels/{channel}", "Ready")


# ----------------------------------------------------------------------------- scenarios

async def chat_scenario(desktop: Desktop, mirror: InteractionMirror, control: ControlApi, pace: Pace) -> str:
    """A customer chat: invitation, Accept, typing + messages both ways, disposition, Complete."""
    customer = f"Customer{pace.rng.randrange(1000):03d}"
    chat_id = await control.inject_chat(customer, desktop.user_name, "Hello, I have a question",
                                        user_data={"CustomerSegment": pace.rng.choice(["Gold", "Silver"])})
    await mirror.wait_state("chats", chat_id, "Invited")
    await pace.think()
    path = f"/api/v2/me/chats/{chat_id}"
    await desktop.operation(path, "Accept", nickname=desktop.user_name)
    await mirror.wait_state("chats", chat_id, "Chatting")
    await desktop.operation(path, "SendStartTypingNotification")
    await desktop.operation(path, "SendMessage", text="Hello, how can I help you?")
    await pace.talk()
    await control.chat_message(chat_id, "Where is my order?")
    await mirror.wait_chat_message(chat_id, lambda m: m.get("text") == "Where is my order?")
    await desktop.operation(path, "SendMessage", text="It ships tomorrow.")
    await desktop.operation(path, "SetDisposition", disposition=pace.rng.choice(["IssueResolved", "InfoRequested"]))
    await pace.talk()
    await desktop.operation(path, "Complete")
    await mirror.wait_state("chats", chat_id, "Completed")
    return chat_id


async def email_scenario(desktop: Desktop, mirror: InteractionMirror, control: ControlApi,
                         pace: Pace) -> str:
    """An inbound email: Accept, Reply (a new outbound draft), Send the reply, Complete the inbound."""
    sender = f"customer{pace.rng.randrange(1000):03d}@example.com"
    email_id = await control.inject_email(sender, desktop.user_name, "Order status", "Where is my order?")
    await mirror.wait_state("emails", email_id, "Invited")
    await pace.think()
    path = f"/api/v2/me/emails/{email_id}"
    await desktop.operation(path, "Accept")
    await mirror.wait_state("emails", email_id, "Processing")
    await desktop.operation(path, "Reply", queueUri="/api/v2/queues/email-outbound")
    draft = await mirror.wait("emails", lambda e: e.get("parentId") == email_id and e.get("state") == "Composing")
    await pace.talk()
    await desktop.operation(f"/api/v2/me/emails/{draft['id']}", "Send", queueName="email-outbound",
                            email={"body": "Your order ships tomorrow.", "to": draft.get("to") or [sender],
                                   "from": draft.get("from")})
    await mirror.wait_state("emails", draft["id"], "Sent")
    await desktop.operation(path, "Complete")
    await mirror.wait_state("emails", email_id, "Completed")
    return email_id


async def workitem_scenario(desktop: Desktop, mirror: InteractionMirror, control: ControlApi,
                            pace: Pace) -> str:
    """A workitem: invitation, Accept, UpdateUserData, Complete."""
    item_id = await control.inject_workitem(desktop.user_name, {"Task": pace.rng.choice(["Callback", "Refund"])})
    await mirror.wait_state("workitems", item_id, "Invited")
    await pace.think()
    path = f"/api/v2/me/workitems/{item_id}"
    await desktop.operation(path, "Accept")
    await mirror.wait_state("workitems", item_id, "Processing")
    await pace.talk()
    await desktop.operation(path, "UpdateUserData", userData={"Outcome": "Done"})
    await desktop.operation(path, "Complete")
    await mirror.wait_state("workitems", item_id, "Completed")
    return item_id


async def im_initiator(desktop: Desktop, mirror: InteractionMirror, partner_phone: str, pace: Pace) -> str:
    """Agent-to-agent IM: InitiateIMSession, say something, wait for the answer, Complete."""
    known = set(mirror.im_sessions)
    await desktop.operation("/api/v2/me/im-sessions", "InitiateIMSession",
                            destination={"phoneNumber": partner_phone}, userData={"Topic": "handover"})
    session = await mirror.wait("im_sessions", lambda s: s["id"] not in known and s.get("state") == "Talking")
    path = f"/api/v2/me/im-sessions/{session['id']}"
    await desktop.operation(path, "SendMessage", text="Can you take my 3 pm callback?",
                            destination={"phoneNumber": partner_phone}, devicePath=f"/devices/{desktop.device['id']}")
    await mirror.wait_im_messages(session["id"], 2)           # ours, then the partner's answer
    await pace.think()
    await desktop.operation(path, "Complete")
    await mirror.wait_state("im_sessions", session["id"], "Completed")
    return session["id"]


async def im_responder(desktop: Desktop, mirror: InteractionMirror, pace: Pace,
                       timeout: float | None = None) -> str:
    """The partner's side: the session appears (Alerting -> Talking), answer once, wait for the end."""
    known = {i for i, s in mirror.im_sessions.items() if s.get("state") == "Completed"}
    session = await mirror.wait("im_sessions", lambda s: s["id"] not in known and s.get("state") == "Talking",
                                timeout)
    await mirror.wait_im_messages(session["id"], 1, timeout)
    await pace.think()
    partner = session["participants"][0]["phoneNumber"] if session.get("participants") else ""
    await desktop.operation(f"/api/v2/me/im-sessions/{session['id']}", "SendMessage", text="Sure, I will.",
                            destination={"phoneNumber": partner}, devicePath=f"/devices/{desktop.device['id']}")
    await mirror.wait_state("im_sessions", session["id"], "Completed", timeout)
    return session["id"]


async def wrap_up_media(desktop: Desktop, mirror: InteractionMirror) -> None:
    """Complete whatever is still open (a stopped run leaves nothing behind)."""
    paths = {"chats": "/api/v2/me/chats/", "emails": "/api/v2/me/emails/", "workitems": "/api/v2/me/workitems/",
             "im_sessions": "/api/v2/me/im-sessions/"}
    for store, ids in mirror.active().items():
        if store not in paths:
            continue
        for item_id in ids:
            resource = getattr(mirror, store)[item_id]
            capabilities = resource.get("capabilities") or []
            operation = next((op for op in ("Complete", "Cancel", "Reject") if op in capabilities), None)
            if operation:
                await desktop.operation(paths[store] + item_id, operation, check=False)
