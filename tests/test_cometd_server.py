"""CometdServer driven by our own CometdClient (both transports) and by raw Bayeux POSTs.

The app here is the smallest possible wiring: every request under
/api/v2/notifications goes to the server, with a fixed HttpSession for the
cookie JSESSIONID=s1 (agent1) or s2 (agent2), and None otherwise.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web

from gwsreplay.core.bayeux import State
from gwsreplay.client.cometd import CometdClient, CometdError
from gwsreplay.sim.server.cometd_server import CometdServer, HttpSession
from jsdesktop import JsDesktop, node_available

pytestmark = pytest.mark.timeout(30)

PATH = "/api/v2/notifications"
SESSIONS = {
    "s1": HttpSession(id="s1", user_name="agent1", csrf_token="t1"),
    "s2": HttpSession(id="s2", user_name="agent2", csrf_token="t2"),
}
TRANSPORTS = ["long-polling", "websocket"]
CALL = {"messageType": "CallStateChangeMessage", "call": {"id": "c1", "state": "Ringing"}}


@dataclass
class Harness:
    cometd: CometdServer
    url: str
    https: list[aiohttp.ClientSession]
    paths: list[str]  # every request path the app saw

    def http(self, jsessionid: str | None = "s1") -> aiohttp.ClientSession:
        """An HTTP client carrying the cookie, as GWSClient's jar would."""
        http = aiohttp.ClientSession(cookies={"JSESSIONID": jsessionid} if jsessionid else None)
        self.https.append(http)
        return http

    def client(self, transport: str = "long-polling", jsessionid: str | None = "s1", **kw) -> CometdClient:
        return CometdClient(self.http(jsessionid), self.url, transport=transport,
                            headers={"X-CSRF-TOKEN": "t1"}, backoff_increment=0.05, **kw)


@pytest.fixture
async def start_server():
    """`await start_server(timeout_ms=..., max_interval_ms=...)` -> Harness; all stopped at teardown."""
    started: list[tuple[Harness, web.AppRunner]] = []

    async def start(*, timeout_ms: int = 1000, max_interval_ms: int = 1000) -> Harness:
        cometd = CometdServer(timeout_ms=timeout_ms, max_interval_ms=max_interval_ms, seed=1)
        paths: list[str] = []

        async def notifications(request: web.Request) -> web.StreamResponse:
            paths.append(request.path)
            return await cometd.handle_http(request, SESSIONS.get(request.cookies.get("JSESSIONID", "")))

        async def me(request: web.Request) -> web.Response:
            """Just enough of GET /api/v2/me for the official JS client's desktop: cookie + CSRF token."""
            return web.json_response({"statusCode": 0}, headers={
                "Set-Cookie": "JSESSIONID=s1; Path=/", "X-CSRF-HEADER": "X-CSRF-TOKEN", "X-CSRF-TOKEN": "t1"})

        app = web.Application()
        app.router.add_get("/api/v2/me", me)
        app.router.add_route("*", PATH, notifications)
        app.router.add_route("*", PATH + "/{tail:.*}", notifications)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        harness = Harness(cometd, f"http://{host}:{port}{PATH}", [], paths)
        started.append((harness, runner))
        return harness

    yield start
    for harness, runner in started:
        await harness.cometd.close()
        for http in harness.https:
            await http.close()
        await runner.cleanup()


async def post(http: aiohttp.ClientSession, url: str, body) -> tuple[int, list]:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    async with http.post(url, data=data, headers={"Content-Type": "application/json"}) as response:
        return response.status, json.loads(await response.read())


async def raw_handshake(http: aiohttp.ClientSession, url: str) -> str:
    status, [reply] = await post(http, url, [{"channel": "/meta/handshake", "id": "1", "version": "1.0",
                                              "supportedConnectionTypes": ["long-polling"]}])
    assert status == 200 and reply["successful"], reply
    return reply["clientId"]


def connect(client_id: str, id: str) -> dict:
    return {"channel": "/meta/connect", "clientId": client_id, "connectionType": "long-polling", "id": id}


async def eventually(predicate, timeout: float = 5.0) -> None:
    async def poll():
        while not predicate():
            await asyncio.sleep(0.01)
    await asyncio.wait_for(poll(), timeout)


def held(cometd: CometdServer, client_id: str) -> bool:
    client = cometd._clients.get(client_id)
    return client is not None and client.held is not None


# ---------------------------------------------------------------------- through CometdClient


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_handshake_subscribe_publish(start_server, transport):
    h = await start_server()
    async with h.client(transport) as client:
        reply = await client.handshake()
        assert reply["version"] == "1.0" and reply["supportedConnectionTypes"] == ["long-polling", "websocket"]
        assert reply["advice"] == {"reconnect": "retry", "interval": 0, "timeout": 1000}
        sub = await client.subscribe("/v2/me/*")
        assert sub == {"channel": "/meta/subscribe", "id": sub["id"], "successful": True, "subscription": "/v2/me/*"}

        h.cometd.publish("agent1", "/v2/me/calls", CALL)
        h.cometd.publish("agent1", "/v2/me/calls/deeper", CALL)  # `*` is one segment only
        h.cometd.publish("agent2", "/v2/me/calls", CALL)  # another user's
        h.cometd.publish(None, "/v2/me/devices", {"n": 2})  # everybody's
        assert await asyncio.wait_for(client.events.get(), 5) == {"channel": "/v2/me/calls", "data": CALL}
        assert await asyncio.wait_for(client.events.get(), 5) == {"channel": "/v2/me/devices", "data": {"n": 2}}
        await client.disconnect()
        assert client.events.empty()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_double_wildcard_and_services(start_server, transport):
    h = await start_server()
    async with h.client(transport) as client:
        await client.handshake()
        await client.subscribe("/v2/me/**")
        await client.subscribe("/notifications/services")
        h.cometd.publish("agent1", "/v2/me/calls/deeper", {"n": 1})
        h.cometd.publish(None, "/notifications/services", {"n": 2})
        got = [await asyncio.wait_for(client.events.get(), 5) for _ in range(2)]
        assert [e["data"]["n"] for e in got] == [1, 2]
        await client.disconnect()


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("channel", ["/v2/other/x", "/meta/connect", "/v2/me", ""])
async def test_subscribe_forbidden(start_server, transport, channel):
    h = await start_server()
    async with h.client(transport) as client:
        await client.handshake()
        with pytest.raises(CometdError) as caught:
            await client.subscribe(channel)
        assert caught.value.reply["error"] == "403::Forbidden"
        assert client.session.wanted == set()
        await client.disconnect()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_unsubscribe(start_server, transport):
    h = await start_server()
    async with h.client(transport) as client:
        await client.handshake()
        await client.subscribe("/v2/me/*")
        await client.subscribe("/notifications/services")
        await client.unsubscribe("/v2/me/*")
        h.cometd.publish("agent1", "/v2/me/calls", CALL)
        h.cometd.publish(None, "/notifications/services", {"n": 1})
        # Events come in publish order, so the first one proves the unsubscribed one was not sent.
        assert (await asyncio.wait_for(client.events.get(), 5))["channel"] == "/notifications/services"
        assert client.session.subscriptions == {"/notifications/services"}
        await client.disconnect()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_402_rehandshake_and_resubscribe(start_server, transport):
    h = await start_server()
    async with h.client(transport) as client:
        await client.handshake()
        await client.subscribe("/v2/me/*")
        old = client.session.client_id
        await eventually(lambda: held(h.cometd, old))

        h.cometd.drop_http_session("s1")  # the cookie stays valid in this harness, so re-handshake works

        await eventually(lambda: client.session.client_id not in (None, old)
                         and client.session.subscriptions == {"/v2/me/*"})
        h.cometd.publish("agent1", "/v2/me/calls", CALL)
        assert (await asyncio.wait_for(client.events.get(), 5))["data"] == CALL
        await client.disconnect()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_no_session_handshake_refused(start_server, transport):
    h = await start_server()
    async with h.client(transport, jsessionid=None) as client:
        with pytest.raises(CometdError) as caught:
            await client.handshake()
        reply = caught.value.reply
        assert reply["error"] == "403::Handshake denied"
        assert reply["advice"]["reconnect"] == "none"
        assert client.session.state is State.DISCONNECTED
    assert h.cometd._clients == {}


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_disconnect(start_server, transport):
    h = await start_server(timeout_ms=5000)
    async with h.client(transport) as client:
        await client.handshake()
        client_id = client.session.client_id
        await eventually(lambda: held(h.cometd, client_id))
        started = asyncio.get_running_loop().time()
        reply = await client.disconnect()
        assert reply["successful"] is True
        assert asyncio.get_running_loop().time() - started < 2  # the held connect was released at once
        assert client.session.state is State.DISCONNECTED
    assert h.cometd._clients == {}
    status, [reply] = await post(h.http(), h.url, [connect(client_id, "9")])
    assert reply["error"] == "402::Unknown client"


async def test_connect_held_across_disconnect_says_reconnect_none(start_server):
    h = await start_server(timeout_ms=5000)
    http = h.http()
    client_id = await raw_handshake(http, h.url)
    await post(http, h.url, [connect(client_id, "2")])
    poll = asyncio.create_task(post(http, h.url, [connect(client_id, "3")]))
    await eventually(lambda: held(h.cometd, client_id))
    status, [bye] = await post(http, h.url, [{"channel": "/meta/disconnect", "clientId": client_id, "id": "4"}])
    assert bye == {"channel": "/meta/disconnect", "id": "4", "successful": True}
    status, [reply] = await asyncio.wait_for(poll, 2)
    assert reply == {"channel": "/meta/connect", "id": "3", "successful": True,
                     "advice": {"reconnect": "none", "interval": 0}}


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_stats_match_what_the_client_saw(start_server, transport):
    h = await start_server(timeout_ms=200)
    seen = {"in": 0, "out": 0}
    async with h.client(transport, on_message=lambda direction, message: seen.__setitem__(
            direction, seen[direction] + 1)) as client:
        await client.handshake()
        await client.subscribe("/v2/me/*")
        for n in range(3):
            h.cometd.publish("agent1", "/v2/me/calls", {"n": n})
        for _ in range(3):
            await asyncio.wait_for(client.events.get(), 5)
        await asyncio.sleep(0.5)  # a few held connects time out and are renewed
        await client.disconnect()
    assert seen == {"out": client.messages_sent, "in": client.messages_received}
    assert h.cometd.stats() == {
        "received": {"total": client.messages_sent, "by_user": {"agent1": client.messages_sent}},
        "delivered": {"total": client.messages_received, "by_user": {"agent1": client.messages_received}},
    }


async def test_client_reopens_a_websocket_closed_under_it(start_server):
    h = await start_server(timeout_ms=5000, max_interval_ms=5000)
    async with h.client("websocket") as client:
        await client.handshake()
        await client.subscribe("/v2/me/*")
        client_id = client.session.client_id
        await eventually(lambda: held(h.cometd, client_id))
        [sock] = h.cometd._sockets
        await sock.ws.close()
        await eventually(lambda: len(h.cometd._sockets) == 1 and next(iter(h.cometd._sockets)) is not sock
                         and held(h.cometd, client_id))
        h.cometd.publish("agent1", "/v2/me/calls", CALL)
        assert (await asyncio.wait_for(client.events.get(), 5))["data"] == CALL
        assert client.session.client_id == client_id  # same Bayeux session, new socket
        await client.disconnect()


async def test_a_failing_hook_does_not_break_the_client(start_server):
    def hook(direction, message):
        raise RuntimeError("replayer bug")

    h = await start_server()
    async with h.client(on_message=hook) as client:
        await client.handshake()
        await client.subscribe("/v2/me/*")
        h.cometd.publish("agent1", "/v2/me/calls", CALL)
        assert (await asyncio.wait_for(client.events.get(), 5))["data"] == CALL
        await client.disconnect()


async def test_js_style_urls(start_server):
    """The official JS client POSTs to /api/v2/notifications/handshake, /connect, ..."""
    h = await start_server()
    async with h.client(append_message_type=True) as client:
        await client.handshake()
        await client.subscribe("/v2/me/*")
        h.cometd.publish("agent1", "/v2/me/calls", CALL)
        assert (await asyncio.wait_for(client.events.get(), 5))["data"] == CALL
        await client.disconnect()
    assert h.paths[:3] == [PATH + "/handshake", PATH + "/subscribe", PATH + "/connect"] or \
        h.paths[:3] == [PATH + "/handshake", PATH + "/connect", PATH + "/subscribe"]
    assert PATH + "/disconnect" in h.paths


# ---------------------------------------------------------------------- raw long-polling


async def test_events_batched_into_held_connect_reply(start_server):
    h = await start_server(timeout_ms=5000)
    http = h.http()
    client_id = await raw_handshake(http, h.url)
    status, replies = await post(http, h.url, [
        connect(client_id, "2"),
        {"channel": "/meta/subscribe", "clientId": client_id, "subscription": "/v2/me/*", "id": "3"},
    ])
    # Other messages in the POST: the connect is answered at once, after their replies.
    assert [r["channel"] for r in replies] == ["/meta/subscribe", "/meta/connect"]
    assert [r["id"] for r in replies] == ["3", "2"]

    poll = asyncio.create_task(post(http, h.url, [connect(client_id, "4")]))
    await eventually(lambda: held(h.cometd, client_id))
    for n in range(3):
        h.cometd.publish("agent1", f"/v2/me/x{n}", {"n": n})
    status, replies = await poll
    assert status == 200
    assert replies == [
        {"channel": "/v2/me/x0", "data": {"n": 0}},
        {"channel": "/v2/me/x1", "data": {"n": 1}},
        {"channel": "/v2/me/x2", "data": {"n": 2}},
        {"channel": "/meta/connect", "id": "4", "successful": True,
         "advice": {"reconnect": "retry", "interval": 0, "timeout": 5000}},
    ]


async def test_first_connect_is_not_held_later_ones_are(start_server):
    h = await start_server(timeout_ms=300)
    http = h.http()
    client_id = await raw_handshake(http, h.url)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await post(http, h.url, [connect(client_id, "2")])
    assert loop.time() - started < 0.2
    started = loop.time()
    status, [reply] = await post(http, h.url, [connect(client_id, "3")])
    assert reply["successful"] and loop.time() - started >= 0.29


async def test_new_connect_releases_the_held_one(start_server):
    h = await start_server(timeout_ms=5000)
    http = h.http()
    client_id = await raw_handshake(http, h.url)
    await post(http, h.url, [connect(client_id, "2")])
    first = asyncio.create_task(post(http, h.url, [connect(client_id, "3")]))
    await eventually(lambda: held(h.cometd, client_id))
    second = asyncio.create_task(post(http, h.url, [connect(client_id, "4")]))
    status, [reply] = await asyncio.wait_for(first, 2)
    assert reply["id"] == "3" and reply["successful"]
    assert not second.done()
    await h.cometd.close()
    status, [reply] = await asyncio.wait_for(second, 2)
    assert reply["id"] == "4" and reply["error"] == "402::Unknown client"


async def test_session_expires_without_connect(start_server):
    h = await start_server(timeout_ms=100, max_interval_ms=200)
    http = h.http()
    client_id = await raw_handshake(http, h.url)
    await post(http, h.url, [connect(client_id, "2")])  # answered at once; the clock starts
    await asyncio.sleep(0.1)
    status, [reply] = await post(http, h.url, [connect(client_id, "3")])  # in time: held 100 ms
    assert reply["successful"]
    await asyncio.sleep(0.35)
    status, [reply] = await post(http, h.url, [connect(client_id, "4")])
    assert status == 200
    assert reply == {"channel": "/meta/connect", "id": "4", "successful": False, "error": "402::Unknown client",
                     "advice": {"reconnect": "handshake", "interval": 0}}


async def test_held_connect_keeps_the_session_alive(start_server):
    h = await start_server(timeout_ms=600, max_interval_ms=200)
    http = h.http()
    client_id = await raw_handshake(http, h.url)
    await post(http, h.url, [connect(client_id, "2")])
    status, [reply] = await post(http, h.url, [connect(client_id, "3")])  # held 600 ms > max_interval
    assert reply["successful"]
    status, [reply] = await post(http, h.url, [connect(client_id, "4")])
    assert reply["successful"]


async def test_client_ids_are_seeded(start_server):
    a, b = await start_server(), await start_server()
    ids_a = [await raw_handshake(a.http(), a.url) for _ in range(2)]
    ids_b = [await raw_handshake(b.http(), b.url) for _ in range(2)]
    assert ids_a == ids_b and ids_a[0] != ids_a[1]


async def test_messages_need_a_known_client_of_this_http_session(start_server):
    h = await start_server()
    client_id = await raw_handshake(h.http("s1"), h.url)
    sub = {"channel": "/meta/subscribe", "clientId": client_id, "subscription": "/v2/me/*", "id": "2"}
    for http in (h.http("s2"), h.http(None)):  # another user's session, no session
        status, [reply] = await post(http, h.url, [sub])
        assert reply["error"] == "402::Unknown client"
    status, [reply] = await post(h.http(), h.url, [{**sub, "clientId": None}])
    assert reply["error"] == "402::Unknown client"


@pytest.mark.parametrize("body", [b"{not json", b"[{\"channel\": \"/meta/connect\"},", b"42", b"\xff\xfe", b""])
async def test_malformed_body_is_400_not_500(start_server, body):
    h = await start_server()
    status, replies = await post(h.http(), h.url, body)
    assert status == 400
    assert replies[0]["successful"] is False and replies[0]["error"].startswith("400::")


async def test_garbage_messages_get_their_own_error_reply(start_server):
    h = await start_server()
    http = h.http()
    client_id = await raw_handshake(http, h.url)
    status, replies = await post(http, h.url, [
        1, "x", {"id": "a"}, {"channel": 5, "id": "b"},
        {"channel": "/meta/subscribe", "clientId": ["unhashable"], "id": "c"},
        {"channel": "/meta/subscribe", "clientId": client_id, "subscription": [1], "id": "d"},
        {"channel": "/v2/me/calls", "clientId": client_id, "data": {}, "id": "e"},
        {"channel": "/meta/handshake", "supportedConnectionTypes": [["x"]], "id": "f"},
        {"channel": "/meta/subscribe", "clientId": client_id, "subscription": "/v2/me/*", "id": "g"},
    ])
    assert status == 200
    assert [(r.get("id"), r["successful"], r.get("error")) for r in replies] == [
        (None, False, "400::Malformed message"),
        (None, False, "400::Malformed message"),
        ("a", False, "400::Malformed message"),
        ("b", False, "400::Malformed message"),
        ("c", False, "402::Unknown client"),
        ("d", False, "403::Forbidden"),
        ("e", False, "403::Publish denied"),
        ("f", False, "406::Unsupported connection types"),
        ("g", True, None),
    ]
    assert h.cometd.stats()["received"]["total"] == 1 + 7  # the handshake + the JSON objects


async def test_wrong_method(start_server):
    h = await start_server()
    async with h.http().get(h.url) as response:
        assert response.status == 400
    async with h.http().put(h.url, data=b"[]") as response:
        assert response.status == 405


async def test_close_releases_held_connects_and_websockets(start_server):
    h = await start_server(timeout_ms=30000)
    lp, ws = h.client("long-polling"), h.client("websocket")
    for client in (lp, ws):
        await client.handshake()
        await eventually(lambda: held(h.cometd, client.session.client_id))
    started = asyncio.get_running_loop().time()
    await h.cometd.close()
    assert asyncio.get_running_loop().time() - started < 5
    assert h.cometd._clients == {}
    await lp.close()
    await ws.close()


# ---------------------------------------------------------------------- raw WebSocket


async def test_websocket_frames(start_server):
    h = await start_server(timeout_ms=5000)
    async with h.http().ws_connect(h.url.replace("http", "ws", 1)) as ws:
        async def exchange(messages) -> list:
            await ws.send_str(json.dumps(messages))
            return json.loads((await asyncio.wait_for(ws.receive(), 5)).data)

        [hs] = await exchange([{"channel": "/meta/handshake", "id": "1", "supportedConnectionTypes": ["websocket"]}])
        cid = hs["clientId"]
        [sub] = await exchange([{"channel": "/meta/subscribe", "clientId": cid, "subscription": "/v2/me/*", "id": "2"}])
        assert sub["successful"]
        [first] = await exchange([{**connect(cid, "3"), "connectionType": "websocket"}])
        assert first["successful"]  # the first connect is answered at once

        await ws.send_str(json.dumps([{**connect(cid, "4"), "connectionType": "websocket"}]))
        await eventually(lambda: held(h.cometd, cid))
        for n in range(2):
            h.cometd.publish("agent1", "/v2/me/calls", {"n": n})
        frame = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
        assert frame == [{"channel": "/v2/me/calls", "data": {"n": 0}}, {"channel": "/v2/me/calls", "data": {"n": 1}}]
        assert held(h.cometd, cid)  # events do not release a WebSocket connect

        await ws.send_str("nope")
        [error] = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
        assert error["successful"] is False and error["error"].startswith("400::invalid JSON")


# ---------------------------------------------------------------------- clients that vanish


async def test_reply_to_a_vanished_long_poll_is_not_counted_and_its_events_wait(start_server):
    h = await start_server(timeout_ms=5000)
    http = h.http()
    client_id = await raw_handshake(http, h.url)
    await post(http, h.url, [connect(client_id, "2"),
                             {"channel": "/meta/subscribe", "clientId": client_id, "subscription": "/v2/me/*",
                              "id": "3"}])
    doomed = aiohttp.ClientSession(cookies={"JSESSIONID": "s1"})
    poll = asyncio.create_task(post(doomed, h.url, [connect(client_id, "4")]))
    await eventually(lambda: held(h.cometd, client_id))
    poll.cancel()
    await doomed.close()  # the TCP connection under the held connect goes away
    await asyncio.sleep(0.1)
    delivered = h.cometd.stats()["delivered"]["total"]

    h.cometd.publish("agent1", "/v2/me/calls", {"n": 1})
    await eventually(lambda: not held(h.cometd, client_id))
    assert h.cometd.stats()["delivered"]["total"] == delivered

    status, replies = await post(http, h.url, [connect(client_id, "5")])
    assert replies[0] == {"channel": "/v2/me/calls", "data": {"n": 1}}
    assert h.cometd.stats()["delivered"]["total"] == delivered + 2


async def test_events_wait_for_a_new_websocket_after_the_old_one_dies(start_server):
    h = await start_server(timeout_ms=5000, max_interval_ms=5000)
    ws_url = h.url.replace("http", "ws", 1)

    async def send(ws, messages):
        await ws.send_str(json.dumps(messages))

    async def receive(ws):
        return json.loads((await asyncio.wait_for(ws.receive(), 5)).data)

    http = h.http()
    ws = await http.ws_connect(ws_url)
    await send(ws, [{"channel": "/meta/handshake", "id": "1", "supportedConnectionTypes": ["websocket"]}])
    client_id = (await receive(ws))[0]["clientId"]
    await send(ws, [{"channel": "/meta/subscribe", "clientId": client_id, "subscription": "/v2/me/*", "id": "2"},
                    {**connect(client_id, "3"), "connectionType": "websocket"}])
    assert {m["id"] for m in (await receive(ws)) + (await receive(ws))} == {"2", "3"}
    await send(ws, [{**connect(client_id, "4"), "connectionType": "websocket"}])
    await eventually(lambda: held(h.cometd, client_id))
    await ws.close()
    await eventually(lambda: not held(h.cometd, client_id))

    h.cometd.publish("agent1", "/v2/me/calls", {"n": 1})
    async with http.ws_connect(ws_url) as ws:
        await send(ws, [{**connect(client_id, "5"), "connectionType": "websocket"}])
        assert await receive(ws) == [{"channel": "/v2/me/calls", "data": {"n": 1}}]
        await eventually(lambda: held(h.cometd, client_id))
    stats = h.cometd.stats()
    assert stats["received"]["total"] == 5 and stats["delivered"]["total"] == 4  # replies 1, 2, 3 + the event


# ---------------------------------------------------------------------- the official JS client


@pytest.mark.skipif(not node_available(), reason="node or node_modules/cometd missing (run make node)")
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_official_client_rehandshakes_after_402(start_server, transport):
    h = await start_server(timeout_ms=500)
    async with JsDesktop(h.url[: -len(PATH)], "agent1", transport=transport) as desktop:
        await desktop.rest("GET", "/api/v2/me")
        first = await desktop.connect()
        assert first["successful"] and first["transport"] == transport
        assert (await desktop.subscribe("/v2/me/*"))["successful"]
        await eventually(lambda: held(h.cometd, first["clientId"]))

        h.cometd.drop_http_session("s1")
        # Over WebSocket the client may first report a local failure: the socket closes under a
        # handshake it sent right after the 402. It retries on a new socket.
        second = await desktop.wait_for(lambda e: e["event"] == "handshake" and e["successful"]
                                        and e["clientId"] != first["clientId"])
        # As the GWS sample does in its /meta/handshake listener (protocol.md §3.2).
        assert (await desktop.subscribe("/v2/me/*"))["successful"]
        h.cometd.publish("agent1", "/v2/me/calls", CALL)
        assert (await desktop.notification("/v2/me/calls"))["data"] == CALL
        await desktop.disconnect()
        # The only failures the server caused are the 402s we provoked (error None: the client's own).
        assert not [e for e in desktop.events if e["event"] == "meta" and not e["successful"]
                    and e["error"] not in (None, "402::Unknown client")]


# ---------------------------------------------------------------------- CometD as GWS runs it (cometd_ext.py)


def ack_connect(client_id: str, id: str, ack: int | None) -> dict:
    return {**connect(client_id, id), **({"ext": {"ack": ack}} if ack is not None else {})}


async def ack_handshake(http: aiohttp.ClientSession, url: str, transport: str = "long-polling") -> str:
    status, [reply] = await post(http, url, [{"channel": "/meta/handshake", "id": "1", "version": "1.0",
                                              "supportedConnectionTypes": [transport], "ext": {"ack": True}}])
    assert reply["successful"] and reply["ext"] == {"ack": True}, reply
    return reply["clientId"]


async def test_ack_extension_batches_are_sent_again_until_acknowledged(start_server):
    h = await start_server(timeout_ms=5000)
    http = h.http()
    client_id = await ack_handshake(http, h.url)
    sub = {"channel": "/meta/subscribe", "clientId": client_id, "subscription": "/v2/me/*", "id": "2"}
    status, replies = await post(http, h.url, [sub, ack_connect(client_id, "3", None)])
    assert replies[-1]["ext"] == {"ack": 0} and replies[-1]["successful"]

    h.cometd.publish("agent1", "/v2/me/x", {"n": 1})
    h.cometd.publish("agent1", "/v2/me/x", {"n": 2})
    status, replies = await post(http, h.url, [ack_connect(client_id, "4", 0)])
    assert [r.get("data") for r in replies[:-1]] == [{"n": 1}, {"n": 2}]
    assert replies[-1]["ext"] == {"ack": 1}
    # That reply was lost on the way: the client reconnects still acknowledging batch 0 only,
    # so batch 1 comes again at once, followed by what arrived since, in one new batch.
    h.cometd.publish("agent1", "/v2/me/x", {"n": 3})
    status, replies = await post(http, h.url, [ack_connect(client_id, "5", 0)])
    assert [r.get("data") for r in replies[:-1]] == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert replies[-1]["ext"] == {"ack": 2}
    # Acknowledged: nothing is sent again, the connect is held until something new comes.
    poll = asyncio.create_task(post(http, h.url, [ack_connect(client_id, "6", 2)]))
    await eventually(lambda: held(h.cometd, client_id))
    h.cometd.publish("agent1", "/v2/me/x", {"n": 4})
    status, replies = await poll
    assert [r.get("data") for r in replies[:-1]] == [{"n": 4}] and replies[-1]["ext"] == {"ack": 3}


async def test_ack_extension_over_websocket_events_only_in_connect_replies(start_server):
    h = await start_server(timeout_ms=5000, max_interval_ms=5000)
    http = h.http()
    ws = await http.ws_connect(h.url.replace("http", "ws", 1))

    async def exchange(messages):
        await ws.send_str(json.dumps(messages))
        return json.loads((await asyncio.wait_for(ws.receive(), 5)).data)

    [reply] = await exchange([{"channel": "/meta/handshake", "id": "1", "supportedConnectionTypes": ["websocket"],
                               "ext": {"ack": True}}])
    client_id = reply["clientId"]
    assert reply["ext"] == {"ack": True}
    assert (await exchange([{"channel": "/meta/subscribe", "clientId": client_id,
                             "subscription": "/v2/me/*", "id": "2"}]))[0]["successful"]
    [first] = await exchange([{**ack_connect(client_id, "3", None), "connectionType": "websocket"}])
    assert first["ext"] == {"ack": 0}
    await ws.send_str(json.dumps([{**ack_connect(client_id, "4", 0), "connectionType": "websocket"}]))
    await eventually(lambda: held(h.cometd, client_id))
    h.cometd.publish("agent1", "/v2/me/x", {"n": 1})
    frame = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
    # One frame: the event, then the connect reply that carries its batch number.
    assert frame[0] == {"channel": "/v2/me/x", "data": {"n": 1}}
    assert frame[1]["channel"] == "/meta/connect" and frame[1]["ext"] == {"ack": 1}
    await ws.close()
    # The socket died before the client could acknowledge: a new one gets batch 1 again.
    async with http.ws_connect(h.url.replace("http", "ws", 1)) as ws2:
        await ws2.send_str(json.dumps([{**ack_connect(client_id, "5", 0), "connectionType": "websocket"}]))
        frame = json.loads((await asyncio.wait_for(ws2.receive(), 5)).data)
        assert frame[0]["data"] == {"n": 1} and frame[1]["ext"] == {"ack": 2}


async def test_clients_without_ack_get_no_ext(start_server):
    h = await start_server()
    http = h.http()
    client_id = await raw_handshake(http, h.url)
    status, [reply] = await post(http, h.url, [connect(client_id, "2")])
    assert "ext" not in reply


async def test_second_long_poll_from_the_same_browser_gets_multiple_clients_advice(start_server):
    h = await start_server(timeout_ms=3000)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                     cookies={"JSESSIONID": "s1"}) as browser:
        async with browser.post(h.url, json=[{"channel": "/meta/handshake", "id": "1", "version": "1.0",
                                              "supportedConnectionTypes": ["long-polling"]}]) as r:
            first = (await r.json())[0]["clientId"]
            assert "BAYEUX_BROWSER=" in r.headers["Set-Cookie"]     # the browser is marked once
        second = await raw_handshake(browser, h.url)                 # a second tab, same cookies
        assert len([c for c in browser.cookie_jar if c.key == "BAYEUX_BROWSER"]) == 1
        for client_id in (first, second):
            await post(browser, h.url, [connect(client_id, "c")])   # first connects: answered at once
        tab1 = asyncio.create_task(post(browser, h.url, [connect(first, "2")]))
        await eventually(lambda: held(h.cometd, first))
        loop = asyncio.get_running_loop()
        started = loop.time()
        status, [reply] = await post(browser, h.url, [connect(second, "3")])
        assert loop.time() - started < 1.0                           # not held
        assert reply["successful"] and reply["advice"] == {
            "reconnect": "retry", "interval": 2000, "timeout": 3000, "multiple-clients": True}
        # Another browser (no BAYEUX_BROWSER cookie of this one) holds its own long-poll.
        other = h.http()
        third = await raw_handshake(other, h.url)
        await post(other, h.url, [connect(third, "c")])
        tab3 = asyncio.create_task(post(other, h.url, [connect(third, "4")]))
        await eventually(lambda: held(h.cometd, third))
        h.cometd.publish("agent1", "/v2/me/x", {"n": 1})          # no subscribers: nothing released
        await h.cometd.close()
        for task in (tab1, tab3):
            status, [reply] = await asyncio.wait_for(task, 3)
            assert "multiple-clients" not in reply.get("advice", {})
        # Once the first tab no longer holds a connect, the second may.
        assert h.cometd._browsers._holding == {}


@pytest.mark.parametrize("how", ["disconnect", "expiry"])
async def test_user_monitor_logs_out_after_the_last_client_is_gone(how):
    logged_out: list[str] = []
    cometd = CometdServer(timeout_ms=100, max_interval_ms=150, seed=1, logout_timeout=0.3,
                          on_logout=logged_out.append)
    session = SESSIONS["s1"]
    reply, _ = cometd._process({"channel": "/meta/handshake", "supportedConnectionTypes": ["long-polling"]},
                               session, socket=None)
    client_id = reply["clientId"]
    if how == "disconnect":
        cometd._process({"channel": "/meta/disconnect", "clientId": client_id}, session, socket=None)
    await asyncio.sleep(0.35)
    assert logged_out == ([] if how == "expiry" else ["agent1"])    # expiry: 150 ms + 300 ms
    await asyncio.sleep(0.2)
    assert logged_out == ["agent1"] and cometd.monitor.logged_out == ["agent1"]
    await cometd.close()


async def test_user_monitor_forgives_a_client_that_comes_back_in_time():
    logged_out: list[str] = []
    cometd = CometdServer(seed=1, logout_timeout=0.2, on_logout=logged_out.append)
    handshake = {"channel": "/meta/handshake", "supportedConnectionTypes": ["long-polling"]}
    reply, _ = cometd._process(handshake, SESSIONS["s1"], socket=None)
    cometd._process({"channel": "/meta/disconnect", "clientId": reply["clientId"]}, SESSIONS["s1"], socket=None)
    await asyncio.sleep(0.1)
    cometd._process(handshake, SESSIONS["s1"], socket=None)        # a reload: new client, same user
    await asyncio.sleep(0.25)
    assert logged_out == []
    cometd.drop_http_session("s1")                                    # EndContactCenterSession: not the monitor's
    await asyncio.sleep(0.25)
    assert logged_out == []
    await cometd.close()


async def test_sim_user_monitor_logs_the_agent_out_as_end_contact_center_session(sim_factory):
    """Through the simulator: the desktop's CometD session goes away and does not come back."""
    sim = await sim_factory(logout_timeout=0.3)
    client = sim.client("agent1")
    await client.me()
    assert (await client.start_session()).ok
    assert (await client.ready()).ok
    cometd = client.cometd()
    await cometd.handshake()
    await cometd.disconnect()
    assert sim.contact_center.agents["agent1"].logged_in
    await eventually(lambda: not sim.contact_center.agents["agent1"].logged_in, timeout=3)
    assert sim.cometd.monitor.logged_out == ["agent1"]
    assert client.session_id not in sim.front.sessions    # the cookie died, as on EndContactCenterSession
    me = await client.me()                                    # credentials again: a new session, logged out
    assert me.ok and client.session_id in sim.front.sessions
    assert not sim.contact_center.agents["agent1"].session
    agent2 = sim.client("agent2")                  # an agent that never had CometD is left alone
    await agent2.me()
    assert (await agent2.start_session()).ok
    await asyncio.sleep(0.4)
    assert sim.contact_center.agents["agent2"].logged_in
