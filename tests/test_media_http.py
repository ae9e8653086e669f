"""Multimedia end to end over real HTTP and CometD (GWSClient / CometdClient / Desktop).

An inbound chat injected through the control API, worked by an agent with
notifications asserted; the scripted email, workitem and IM scenarios of
gwsreplay.client/media_scenarios.py; the partial success of StartContactCenterSession;
workbins; the control API's input checks.
"""

from __future__ import annotations

import asyncio
import random

import aiohttp
import pytest

from gwsreplay.client.desktop import Desktop
from gwsreplay.client.control import ControlApi
from gwsreplay.client.media_scenarios import (
    InteractionMirror, Pace, chat_scenario, email_scenario, im_initiator, im_responder,
    media_ready, workitem_scenario,
)
from gwsreplay.client.rest import GWSClient

CHANNELS = ("voice", "chat", "email", "workitem", "im")


class Events:
    """A CometD client's events, matched by channel and data keys (others kept for later)."""

    def __init__(self, cometd):
        self.cometd = cometd
        self.backlog: list[dict] = []

    async def next(self, channel: str, timeout: float = 5, **match) -> dict:
        def matches(event):
            data = event.get("data") or {}
            return event["channel"] == channel and all(data.get(k) == v for k, v in match.items())

        for event in self.backlog:
            if matches(event):
                self.backlog.remove(event)
                return event["data"]
        try:
            async with asyncio.timeout(timeout):
                while True:
                    event = await self.cometd.events.get()
                    if matches(event):
                        return event["data"]
                    self.backlog.append(event)
        except TimeoutError:
            raise AssertionError(f"no {channel} event matching {match}; backlog {self.backlog}") from None


async def connect(client: GWSClient) -> Events:
    assert (await client.me()).ok
    cometd = client.cometd()
    await cometd.handshake()
    await cometd.subscribe("/v2/me/*")
    return Events(cometd)


async def control(sim, method: str, path: str, body=None):
    async with aiohttp.ClientSession() as http:
        async with http.request(method, sim.url + path, json=body) as response:
            return response.status, await response.json(content_type=None)


async def test_inbound_chat_over_http(sim):
    client = sim.client("agent1")
    events = await connect(client)
    response = await client.start_session(channels=["voice", "chat"])
    assert response.body == {"statusCode": 0}
    state = await events.next("/v2/me/channels", messageType="ChannelStateChangeMessageV2")
    assert state["channels"][0]["channel"] == "chat"

    status, body = await control(sim, "POST", "/sim/v1/chats",
                                 {"from": {"nickname": "PersonP"}, "to": "agent1", "message": "Hello World"})
    assert status == 200 and body["statusCode"] == 0
    chat_id = body["id"]
    invited = await events.next("/v2/me/chats", notificationType="StatusChange")
    assert invited["chat"]["id"] == chat_id and invited["chat"]["state"] == "Invited"
    assert set(invited["chat"]["capabilities"]) == {"Accept", "Reject"}

    path = f"/api/v2/me/chats/{chat_id}"
    assert (await client.operation(path, "Accept", nickname="Marat")).body == {"statusCode": 0}
    chatting = await events.next("/v2/me/chats", notificationType="StatusChange")
    participants = await events.next("/v2/me/chats", notificationType="ParticipantsUpdated")
    history = await events.next("/v2/me/chats", messageType="MessageLogUpdated")
    assert chatting["chat"]["state"] == "Chatting" and chatting["referenceId"] == participants["referenceId"]
    assert [m["type"] for m in history["messages"]] == ["ParticipantJoined", "Text", "ParticipantJoined"]
    assert history["messages"][1]["text"] == "Hello World"

    # agent -> customer
    assert (await client.operation(path, "SendStartTypingNotification")).ok
    assert (await client.operation(path, "SendMessage", text="How may I help you?")).ok
    typing = await events.next("/v2/me/chats", messageType="MessageLogUpdated")
    sent = await events.next("/v2/me/chats", messageType="MessageLogUpdated")
    assert typing["messages"][0]["type"] == "TypingStarted"
    assert sent["messages"][0]["text"] == "How may I help you?" and sent["messages"][0]["from"]["type"] == "Agent"
    # customer -> agent
    status, _ = await control(sim, "POST", f"/sim/v1/chats/{chat_id}/messages", {"text": "Where is my order?"})
    assert status == 200
    received = await events.next("/v2/me/chats", messageType="MessageLogUpdated")
    assert received["messages"][0]["from"] == {"nickname": "PersonP", "type": "Customer",
                                               "participantId": received["messages"][0]["from"]["participantId"]}
    # the transcript over GET
    response = await client.get(f"/api/v2/me/chats/{chat_id}/messages")
    assert [m["index"] for m in response.body["messages"]] == [1, 2, 3, 4, 5, 6]
    assert (await client.get("/api/v2/me/chats", fields="*")).body["chats"][0]["state"] == "Chatting"

    assert (await client.operation(path, "Complete")).ok
    completed = await events.next("/v2/me/chats", notificationType="StatusChange")
    assert completed["chat"]["state"] == "Completed"
    status, body = await control(sim, "POST", f"/sim/v1/chats/{chat_id}/messages", {"text": "hello?"})
    assert status == 404
    await events.cometd.close()


async def test_partial_success_over_http(sim):
    status, body = await control(sim, "POST", "/sim/v1/services/email", {"state": "Inactive"})
    assert (status, body) == (200, {"statusCode": 0})
    client = sim.client("agent2")
    events = await connect(client)
    response = await client.start_session(channels=["voice", "chat", "email"])
    assert response.status == 200
    assert response.body == {"statusCode": 7,
                             "succeeded": [{"channel": "voice", "statusCode": 0}, {"channel": "chat", "statusCode": 0}],
                             "failed": [{"channel": "email", "statusCode": 4,
                                         "statusMessage": "Email service is not available at this time"}]}
    response = await client.get("/api/v2/me/channels")
    assert [c["channel"] for c in response.body["channels"]] == ["chat", "voice"]
    status, _ = await control(sim, "POST", "/sim/v1/emails", {"from": "a@b.c", "to": None})
    assert status == 503
    await control(sim, "POST", "/sim/v1/services/email", {"state": "Active"})
    response = await client.start_session(channels=["email"])
    assert response.body == {"statusCode": 0}
    await events.cometd.close()


async def test_control_api_input_checks(sim):
    for path, body in [("/sim/v1/chats", {"to": "agent1"}), ("/sim/v1/chats", {"from": {"nickname": "X"}, "to": 7}),
                       ("/sim/v1/emails", {"from": "no-at-sign"}), ("/sim/v1/workitems", {"userData": [1]}),
                       ("/sim/v1/chats/nope/messages", {"text": "x"}), ("/sim/v1/chats/nope/leave", None)]:
        status, payload = await control(sim, "POST", path, body)
        assert 400 <= status < 500 and payload["statusCode"] in (1, 2, 6), (path, status, payload)
    async with aiohttp.ClientSession() as http:
        async with http.post(sim.url + "/sim/v1/chats", data=b"{not json") as response:
            assert response.status == 400
    # nobody logged in on chat: the chat waits for a Ready agent
    status, payload = await control(sim, "POST", "/sim/v1/chats", {"from": {"nickname": "Queued"}})
    assert status == 200
    state = await sim.state()
    assert state["media"]["waiting"] == [payload["id"]]


async def test_multimedia_can_be_turned_off(sim_factory):
    sim = await sim_factory(multimedia=False)
    status, payload = await control(sim, "POST", "/sim/v1/chats", {"from": {"nickname": "X"}})
    assert (status, payload["statusCode"]) == (404, 6)
    client = sim.client("agent1")
    response = await client.start_session(channels=["voice", "chat"])
    assert response.body["failed"] == [{"channel": "multimedia", "statusCode": 3,
                                        "statusMessage": "Unsupported feature"}]


@pytest.fixture
async def desktops(sim):
    made: list[Desktop] = []

    async def make(user: str, transport: str = "long-polling") -> tuple[Desktop, InteractionMirror]:
        desktop = Desktop(sim.url, user, transport=transport, wait_timeout=5)
        await desktop.login(channels=CHANNELS)
        made.append(desktop)
        return desktop, InteractionMirror(desktop)

    yield make
    for desktop in made:
        await desktop.logout()


@pytest.fixture
async def media_control(sim):
    async with aiohttp.ClientSession() as http:
        yield ControlApi(sim.url, http)


@pytest.mark.parametrize("transport", ["long-polling", "websocket"])
async def test_scripted_chat_email_workitem(sim, desktops, media_control, transport):
    desktop, mirror = await desktops("agent1", transport)
    await media_ready(desktop, ("chat", "email", "workitem"))
    pace = Pace(random.Random(1), think_time=0.01, talk_time=0.01)
    chat_id = await chat_scenario(desktop, mirror, media_control, pace)
    email_id = await email_scenario(desktop, mirror, media_control, pace)
    item_id = await workitem_scenario(desktop, mirror, media_control, pace)
    assert desktop.counters.errors == 0
    assert mirror.chats[chat_id]["state"] == "Completed"
    assert [m["type"] for m in mirror.chat_messages[chat_id]][:3] == ["ParticipantJoined", "Text",
                                                                     "ParticipantJoined"]
    assert mirror.emails[email_id]["state"] == "Completed"
    sent = [e for e in mirror.emails.values() if e.get("parentId") == email_id]
    assert sent[0]["state"] == "Sent" and sent[0]["subject"] == "RE: Order status"
    assert mirror.workitems[item_id]["state"] == "Completed"
    assert mirror.channels["chat"]["userState"]["state"] == "Ready"
    assert mirror.active() == {"chats": [], "emails": [], "workitems": [], "openmedia": [], "im_sessions": []}
    state = await sim.state()
    assert state["media"]["interactions"] == []


async def test_im_between_two_agents(sim, desktops):
    (one, one_mirror), (two, two_mirror) = await desktops("agent1"), await desktops("agent2", "websocket")
    pace = Pace(random.Random(2), think_time=0.01, talk_time=0.01)
    responder = asyncio.create_task(im_responder(two, two_mirror, pace))
    im_id = await im_initiator(one, one_mirror, "7002", pace)
    assert await responder == im_id
    assert one_mirror.im_messages[im_id] == two_mirror.im_messages[im_id] == [
        "Can you take my 3 pm callback?", "Sure, I will."]
    assert one_mirror.im_sessions[im_id]["state"] == two_mirror.im_sessions[im_id]["state"] == "Completed"
    alerting = [n["data"]["imSession"]["state"] for n in two.notifications
                if n["data"].get("messageType") == "IMSessionStateChangeMessage"]
    assert alerting == ["Alerting", "Talking", "Completed"]
    assert one.counters.errors == two.counters.errors == 0


async def test_workbin_over_http(sim, desktops, media_control):
    desktop, mirror = await desktops("agent1")
    bins = (await desktop.rest.get("/api/v2/me/workbins", fields="*")).body["workbins"]
    wb = next(b for b in bins if b["workbinName"] == "workitem-in-progress-wb")
    result = await desktop.operation(f"/api/v2/me/workbins/{wb['id']}", "Subscribe")
    assert isinstance(result.body["referenceId"], int)
    item_id = await media_control.inject_workitem("agent1")
    await mirror.wait_state("workitems", item_id, "Invited")
    await desktop.operation(f"/api/v2/me/workitems/{item_id}", "Accept")
    await mirror.wait_state("workitems", item_id, "Processing")
    await desktop.operation(f"/api/v2/workbins/{wb['id']}", "AddWorkitem",
                            uri=f"{sim.url}/api/v2/workitems/{item_id}")
    await mirror.wait_state("workitems", item_id, "InWorkbin")
    content = await desktop.rest.get(f"/api/v2/me/workbins/{wb['id']}/workitem", fields="*")
    assert [w["id"] for w in content.body["workitem"]] == [item_id]
    await desktop.operation(f"/api/v2/workbins/{wb['id']}", "PullWorkitem", id=item_id)
    await mirror.wait_state("workitems", item_id, "Processing")
    await desktop.wait_until(lambda: (mirror.update() or True) and len(mirror.workbin_events) >= 3)
    assert [e.get("stateResource") or e.get("action") for e in mirror.workbin_events] == [
        "Subscribed", "ItemAdded", "ItemRemoved"]
    await desktop.operation(f"/api/v2/me/workitems/{item_id}", "Complete")
    await mirror.wait_state("workitems", item_id, "Completed")
