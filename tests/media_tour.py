"""A scripted tour of every non-voice channel, recorded through the capture proxy.

`media_tour(url, transport)` drives three desktops (agent1..agent3) through the
simulator's Channels API, chat, email, workitem, open media, workbin and IM
features (and one agent-to-agent call), reaching every state transition the simulator can produce for them
(rejections re-routed to another agent, transfers, conferences, consultations
cancelled before and after they were accepted, workbins added to and pulled from
by the owner and by someone else, re-offers to an agent who had the interaction
before, a service outage). `record_media_tour(path)` records it with
tests/replay_fixtures.py's simulator + `gwsreplay record` children.

Used by tests/test_analysis_media.py (capture round trip, operation correlation,
coverage) and handy for anyone who needs a capture with everything in it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from gwsreplay.client.control import ControlApi
from gwsreplay.client.desktop import Desktop, DesktopError
from gwsreplay.capture.classify import classify_bayeux
from gwsreplay.client.media_scenarios import InteractionMirror, media_ready

CHANNELS = ("voice", "chat", "email", "workitem", "openmedia", "im")
MEDIA = ("chat", "email", "workitem", "openmedia", "im")
QUEUE = "/api/v2/queues/tour-queue"


class Agent:
    def __init__(self, url: str, name: str, transport: str):
        self.name = name
        self.desktop = Desktop(url, name, transport=transport)
        self.mirror = InteractionMirror(self.desktop)
        self.workbins: dict[str, str] = {}      # workbinName -> id

    async def op(self, path: str, operation: str, *, settle: bool = False, **params):
        """POST an operation; with ``settle``, also wait for this agent's next notification about
        the resource the URL names (a careful desktop: the effect of one operation is seen before
        the next one on the same interaction is sent, so each has an unambiguous outcome)."""
        if not path.startswith("/api/"):
            path = "/api/v2/me/" + path
        seen = len(self.desktop.notifications)
        result = await self.desktop.operation(path, operation, **params)
        if settle:
            rid = path.rstrip("/").rsplit("/", 1)[-1]
            await self.desktop.wait_until(lambda: any(
                classify_bayeux(n).resource_id == rid for n in self.desktop.notifications[seen:]))
        return result

    async def state(self, store: str, rid: str, state: str, timeout: float = 10.0) -> dict:
        return await self.mirror.wait_state(store, rid, state, timeout)

    async def load_workbins(self) -> None:
        body = (await self.desktop.rest.get("/api/v2/me/workbins", fields="*")).body
        self.workbins = {wb["workbinName"]: wb["id"] for wb in body["workbins"]}


async def _first(agents: list[Agent], store: str, predicate, timeout: float = 10.0) -> tuple[Agent, dict]:
    """Which of ``agents`` got a resource matching ``predicate`` (routing decides)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        for agent in agents:
            agent.mirror.update()
            found = next((r for r in getattr(agent.mirror, store).values() if predicate(r)), None)
            if found is not None:
                return agent, found
        await asyncio.sleep(0.02)
    raise DesktopError(f"nobody got the {store[:-1]} in {timeout} s")


async def _channels(a1: Agent, a3: Agent) -> None:
    await a1.op("channels/chat", "NotReady", reasonCode="Break")
    await a1.op("channels/chat", "Ready")
    await a1.op("channels/chat", "DoNotDisturbOn")
    await a1.op("channels/chat", "DoNotDisturbOff")
    await a1.op("channels/email", "Offline")
    await a1.op("channels/email", "Ready")              # logs in again, Ready
    await a1.op("channels/workitem", "Offline")
    await a1.op("channels/workitem", "NotReady")        # logs in again, NotReady
    await a1.op("channels/workitem", "Ready")
    await a3.op("/api/v2/me", "NotReady")                 # voice and every media channel
    await a3.op("channels/im", "Offline")                 # NotReady -> LoggedOut
    await a3.op("/api/v2/me", "DoNotDisturbOn")
    await a3.op("/api/v2/me", "DoNotDisturbOff")
    await a3.op("/api/v2/me", "Ready")
    await a3.mirror.desktop.wait_until(lambda: a3.mirror.update() or all(
        (a3.mirror.channels.get(c) or {}).get("userState", {}).get("state") == "Ready"
        for c in ("chat", "email", "workitem", "openmedia")))


async def _chats(a1: Agent, a2: Agent, a3: Agent, control: ControlApi) -> None:
    # chat 1: rejected by agent1, routed on; a conference with agent1 (re-invited after its
    # Reject), who is then removed; a consultation cancelled before it was accepted; Leave alone
    chat1 = await control.inject_chat("Alice", a1.name, "Hello")
    await a1.state("chats", chat1, "Invited")
    await a1.op(f"chats/{chat1}", "Reject")
    await a1.state("chats", chat1, "Completed")
    x, _ = await _first([a2, a3], "chats", lambda c: c["id"] == chat1 and c.get("state") == "Invited")
    y = a3 if x is a2 else a2
    await x.op(f"chats/{chat1}", "Accept", nickname=x.name)
    await x.state("chats", chat1, "Chatting")
    await x.op(f"chats/{chat1}", "SendMessage", settle=True, text="Hi Alice")
    await x.op(f"chats/{chat1}", "Invite", targetUri=a1.name)
    await a1.state("chats", chat1, "Invited")
    await a1.op(f"chats/{chat1}", "Accept", nickname=a1.name)
    await a1.state("chats", chat1, "Chatting")
    await a1.op(f"chats/{chat1}", "SendToAgents", settle=True, text="I'll take the billing part")
    await x.op(f"chats/{chat1}", "RemoveParticipantFromConference", targetUri=a1.name)
    await a1.state("chats", chat1, "Completed")
    await x.op(f"chats/{chat1}", "Consult", targetUri=y.name)
    await y.state("chats", chat1, "Invited")
    await x.op(f"chats/{chat1}", "CancelConsult")
    await y.state("chats", chat1, "Revoked")
    await x.op(f"chats/{chat1}", "AddComment", settle=True, comment="VIP")
    await x.op(f"chats/{chat1}", "AttachUserData", settle=True, userData={"Topic": "billing"})
    await x.op(f"chats/{chat1}", "Leave")
    await x.state("chats", chat1, "LeftChat")
    await x.op(f"chats/{chat1}", "Complete")
    await x.state("chats", chat1, "Completed")

    # chat 2: transferred agent2 -> agent3; parked in agent3's workbin, pulled back by agent3,
    # parked again and pulled by agent1 (subscribed to that workbin)
    chat2 = await control.inject_chat("Bob", a2.name, "Hi")
    await a2.state("chats", chat2, "Invited")
    await a2.op(f"chats/{chat2}", "Accept", nickname=a2.name)
    await a2.state("chats", chat2, "Chatting")
    await a2.op(f"chats/{chat2}", "Transfer", targetUri=a3.name)
    await a2.state("chats", chat2, "Completed")
    await a3.state("chats", chat2, "Invited")
    await a3.op(f"chats/{chat2}", "Accept", nickname=a3.name)
    await a3.state("chats", chat2, "Chatting")
    wb = a3.workbins["chat-in-progress-wb"]
    await a1.op(f"/api/v2/workbins/{wb}", "Subscribe")
    await a3.op(f"workbins/{wb}", "AddChat", uri=f"/api/v2/chats/{chat2}")
    await a3.state("chats", chat2, "InWorkbin")
    await a3.op(f"workbins/{wb}", "PullChat", id=chat2)
    await a3.state("chats", chat2, "Chatting")
    await a3.op(f"workbins/{wb}", "AddChat", uri=f"/api/v2/chats/{chat2}")
    await a3.state("chats", chat2, "InWorkbin")
    await a1.op(f"/api/v2/workbins/{wb}", "PullChat", id=chat2, nickname=a1.name)
    await a1.state("chats", chat2, "Chatting")
    await a1.op(f"/api/v2/workbins/{wb}", "RequestStats")
    await a1.op(f"/api/v2/workbins/{wb}", "Unsubscribe")
    await a1.op(f"chats/{chat2}", "SendStartTypingNotification", settle=True)
    await a1.op(f"chats/{chat2}", "SendStopTypingNotification", settle=True)
    await a1.op(f"chats/{chat2}", "SendUrl", settle=True, url="https://example.com/order")
    await a1.op(f"chats/{chat2}", "SetDisposition", settle=True, disposition="Resolved")
    await a1.op(f"chats/{chat2}", "Complete")
    await a1.state("chats", chat2, "Completed")

    # chat 3: a consultation accepted, then cancelled (an Error notification), the consultant
    # leaves (Completed straight away), the customer leaves, the agent completes
    chat3 = await control.inject_chat("Carol", a1.name, "Help")
    await a1.state("chats", chat3, "Invited")
    await a1.op(f"chats/{chat3}", "Accept", nickname=a1.name)
    await a1.state("chats", chat3, "Chatting")
    await a1.op(f"chats/{chat3}", "Consult", targetUri=a2.name)
    await a2.state("chats", chat3, "Invited")
    await a2.op(f"chats/{chat3}", "Accept", nickname=a2.name)
    await a2.state("chats", chat3, "Chatting")
    await a1.op(f"chats/{chat3}", "CancelConsult")
    await a1.mirror.desktop.wait_until(lambda: a1.mirror.update() or any(
        e.get("messageType") == "ChatStateChangeMessage" for e in a1.mirror.errors))
    await a2.op(f"chats/{chat3}", "Leave")
    await a2.state("chats", chat3, "Completed")
    await control.chat_message(chat3, "Thanks, bye")
    await control.customer_leaves(chat3)
    await a1.op(f"chats/{chat3}", "Complete")
    await a1.state("chats", chat3, "Completed")

    # chat 4: agent2 leaves (alone with the customer: LeftChat), parks the chat, completes it later
    chat4 = await control.inject_chat("Dan", a2.name, "Are you there?")
    await a2.state("chats", chat4, "Invited")
    await a2.op(f"chats/{chat4}", "Accept", nickname=a2.name)
    await a2.state("chats", chat4, "Chatting")
    await a2.op(f"chats/{chat4}", "Leave", text="Back soon")
    await a2.state("chats", chat4, "LeftChat")
    wb = a2.workbins["chat-in-progress-wb"]
    await a2.op(f"workbins/{wb}", "AddChat", uri=f"/api/v2/chats/{chat4}")
    await a2.state("chats", chat4, "InWorkbin")
    await a2.op(f"workbins/{wb}", "PullChat", id=chat4)
    await a2.state("chats", chat4, "Chatting")
    await a2.op(f"chats/{chat4}", "Complete")
    await a2.state("chats", chat4, "Completed")


async def _emails(a1: Agent, a2: Agent, a3: Agent, control: ControlApi) -> None:
    # email 1: rejected by agent1; the next agent replies (a draft saved, parked, pulled back and
    # cancelled), replies to all (sent), parks the inbound; the third agent pulls it and transfers
    # it to agent1, who had rejected it, and completes it
    email1 = await control.inject_email("dave@example.com", a1.name, "Order 42", "Where is it?")
    await a1.state("emails", email1, "Invited")
    await a1.op(f"emails/{email1}", "Reject")
    await a1.state("emails", email1, "Completed")
    x, _ = await _first([a2, a3], "emails", lambda e: e["id"] == email1 and e.get("state") == "Invited")
    y = a3 if x is a2 else a2
    await x.op(f"emails/{email1}", "Accept")
    await x.state("emails", email1, "Processing")
    await x.op(f"emails/{email1}", "Reply", queueUri=QUEUE)
    _, draft = await _first([x], "emails", lambda e: e.get("parentId") == email1 and e.get("state") == "Composing")
    await x.op(f"emails/{draft['id']}", "Save", settle=True, email={"body": "Working on it"})
    wb = x.workbins["email-draft-wb"]
    await x.op(f"workbins/{wb}", "AddEmail", uri=f"/api/v2/email/{draft['id']}")
    await x.state("emails", draft["id"], "InWorkbin")
    await x.op(f"workbins/{wb}", "PullEmail", id=draft["id"])
    await x.state("emails", draft["id"], "Composing")
    await x.op(f"emails/{draft['id']}", "Cancel")
    await x.state("emails", draft["id"], "Canceled")
    await x.op(f"emails/{email1}", "ReplyAll", queueUri=QUEUE)
    _, draft2 = await _first([x], "emails", lambda e: e.get("parentId") == email1 and e.get("state") == "Composing")
    await x.op(f"emails/{draft2['id']}", "Send", queueName="outbound", email={"body": "Shipped today"})
    await x.state("emails", draft2["id"], "Sent")
    await x.op(f"emails/{email1}", "SetDisposition", settle=True, disposition="Answered")
    await x.op(f"emails/{email1}", "AddComment", settle=True, comment="replied")
    wb = x.workbins["email-in-progress-wb"]
    await x.op(f"workbins/{wb}", "AddEmail", uri=f"/api/v2/email/{email1}")
    await x.state("emails", email1, "InWorkbin")
    await x.op(f"workbins/{wb}", "PullEmail", id=email1)
    await x.state("emails", email1, "Processing")
    await x.op(f"workbins/{wb}", "AddEmail", uri=f"/api/v2/email/{email1}")
    await x.state("emails", email1, "InWorkbin")
    await y.op(f"/api/v2/workbins/{wb}", "PullEmail", id=email1)
    await y.state("emails", email1, "Processing")
    await y.op(f"emails/{email1}", "Transfer", userUri=a1.name)
    await y.state("emails", email1, "Completed")
    await a1.state("emails", email1, "Invited")
    await a1.op(f"emails/{email1}", "Accept")
    await a1.state("emails", email1, "Processing")
    await a1.op(f"emails/{email1}", "Complete")
    await a1.state("emails", email1, "Completed")

    # email 2: an outbound email created by agent2, transferred as a draft to agent3, who sends it
    known = set(a2.mirror.emails)
    await a2.op("emails", "Create", queueUri=QUEUE)
    _, new = await _first([a2], "emails", lambda e: e["id"] not in known and e.get("state") == "Composing")
    await a2.op(f"emails/{new['id']}", "Transfer", userUri=a3.name)
    await a2.state("emails", new["id"], "Completed")
    await a3.state("emails", new["id"], "Invited")
    await a3.op(f"emails/{new['id']}", "Accept")
    await a3.state("emails", new["id"], "Composing")
    await a3.op(f"emails/{new['id']}", "Send", queueName="outbound",
                email={"to": ["erin@example.com"], "subject": "News", "body": "Hello"})
    await a3.state("emails", new["id"], "Sent")


async def _workitems(a1: Agent, a2: Agent, a3: Agent, control: ControlApi) -> None:
    item = await control.inject_workitem(a1.name, {"Task": "Callback"})
    await a1.state("workitems", item, "Invited")
    await a1.op(f"workitems/{item}", "Reject")
    await a1.state("workitems", item, "Completed")
    x, _ = await _first([a2, a3], "workitems", lambda w: w["id"] == item and w.get("state") == "Invited")
    await x.op(f"workitems/{item}", "Accept")
    await x.state("workitems", item, "Processing")
    await x.op(f"workitems/{item}", "AttachUserData", settle=True, userData={"Step": "1"})
    await x.op(f"workitems/{item}", "UpdateUserData", settle=True, userData={"Step": "2"})
    await x.op(f"workitems/{item}", "DeleteUserData", settle=True, keys=["Step"])
    await x.op(f"workitems/{item}", "SetInFocus", inFocus=True)
    wb = x.workbins["workitem-in-progress-wb"]
    await x.op(f"workbins/{wb}", "AddWorkitem", uri=f"/api/v2/workitems/{item}")
    await x.state("workitems", item, "InWorkbin")
    await x.op(f"workbins/{wb}", "PullWorkitem", id=item)
    await x.state("workitems", item, "Processing")
    await x.op(f"workitems/{item}", "Transfer", targetUri=a1.name)
    await x.state("workitems", item, "Completed")
    await a1.state("workitems", item, "Invited")
    await a1.op(f"workitems/{item}", "Accept")
    await a1.state("workitems", item, "Processing")
    await a1.op(f"workitems/{item}", "Complete")
    await a1.state("workitems", item, "Completed")

    known = set(a2.mirror.workitems)
    await a2.op("workitems", "Create", queueUri=QUEUE, userData={"Task": "Follow-up"})
    _, created = await _first([a2], "workitems", lambda w: w["id"] not in known and w.get("state") == "Processing")
    await a2.op(f"workitems/{created['id']}", "Complete")
    await a2.state("workitems", created["id"], "Completed")

    # open media of type "promotion"
    promo = await control.inject_workitem(a3.name, {"Offer": "10%"}, media_type="promotion")
    await a3.state("openmedia", promo, "Invited")
    await a3.op(f"openmedia/promotion/{promo}", "Accept")
    await a3.state("openmedia", promo, "Processing")
    await a3.op(f"openmedia/promotion/{promo}", "AddContent", settle=True)
    await a3.op(f"openmedia/promotion/{promo}", "GetContent", settle=True)
    wb = a3.workbins["workitem-in-progress-wb"]
    await a3.op(f"workbins/{wb}", "AddInteraction", uri=f"/api/v2/openmedia/promotions/{promo}")
    await a3.state("openmedia", promo, "InWorkbin")
    await a3.op(f"workbins/{wb}", "PullInteraction", id=promo)
    await a3.state("openmedia", promo, "Processing")
    await a3.op(f"openmedia/promotion/{promo}", "Complete")
    await a3.state("openmedia", promo, "Completed")
    known = set(a3.mirror.openmedia)
    await a3.op("openmedia/promotion", "Create", queueUri=QUEUE)
    _, made = await _first([a3], "openmedia", lambda o: o["id"] not in known and o.get("state") == "Processing")
    await a3.op(f"openmedia/promotion/{made['id']}", "Transfer", targetUri=a2.name)
    await a2.state("openmedia", made["id"], "Invited")
    await a2.op(f"openmedia/promotion/{made['id']}", "Reject")
    await a2.state("openmedia", made["id"], "Completed")


async def _voice(a1: Agent, a2: Agent) -> None:
    await a1.desktop.dial("7002")
    ringing = await a2.desktop.wait_call(lambda c: c["state"] == "Ringing")
    await a2.desktop.call_op(ringing["id"], "Answer")
    call = await a1.desktop.wait_call(lambda c: c["state"] == "Established")
    await a1.desktop.call_op(call["id"], "Hangup")
    await a2.desktop.wait_call(lambda c: c["id"] == ringing["id"] and c["state"] == "Released")


async def _im(a1: Agent, a2: Agent) -> None:
    known = set(a1.mirror.im_sessions)
    await a1.op("im-sessions", "InitiateIMSession", destination={"phoneNumber": "7002"}, userData={"Topic": "tour"})
    _, session = await _first([a1], "im_sessions", lambda s: s["id"] not in known and s.get("state") == "Talking")
    path = f"im-sessions/{session['id']}"
    await a2.state("im_sessions", session["id"], "Talking")
    await a1.op(path, "SendMessage", settle=True, text="ping", destination={"phoneNumber": "7002"},
                devicePath=f"/devices/{a1.desktop.device['id']}")
    await a2.op(path, "SendMessage", settle=True, text="pong", destination={"phoneNumber": "7001"},
                devicePath=f"/devices/{a2.desktop.device['id']}")
    await a1.mirror.wait_im_messages(session["id"], 2)
    await a2.op(path, "AttachUserData", settle=True, userData={"Seen": "yes"})
    await a1.op(path, "UpdateUserData", settle=True, userData={"Seen": "twice"})
    await a1.op(path, "DeleteUserData", settle=True, key="Seen")
    await a2.op(path, "Complete")
    await a1.state("im_sessions", session["id"], "Completed")


async def media_tour(url: str, transport: str = "long-polling") -> None:
    a1, a2, a3 = (Agent(url, f"agent{k}", transport) for k in (1, 2, 3))
    async with aiohttp.ClientSession() as http:
        control = ControlApi(url, http)
        try:
            for agent in (a1, a2, a3):
                await agent.desktop.login(channels=CHANNELS)
                await agent.desktop.agent_state("Ready")
                await media_ready(agent.desktop, MEDIA)
                await agent.load_workbins()
            await _channels(a1, a3)
            await _voice(a1, a2)
            await _chats(a1, a2, a3, control)
            await _emails(a1, a2, a3, control)
            await _workitems(a1, a2, a3, control)
            await _im(a1, a2)
            # a service outage: the chat channel's operations are refused (503, statusCode 4)
            await control.set_service("chat", "Inactive")
            await a1.desktop.operation("/api/v2/me/channels/chat", "NotReady", check=False)
            await control.set_service("chat", "Active")
        finally:
            for agent in (a1, a2, a3):
                await agent.desktop.logout()


def record_media_tour(db: Path, transport: str = "long-polling") -> Path:
    from replay_fixtures import record_capture

    return record_capture(Path(db), transport, agents=3, script=media_tour)
