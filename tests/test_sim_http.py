"""The simulator end to end over real HTTP: auth, session, CSRF, CORS, routing,
control API, stats, and a full agent-to-agent call seen through CometD.

Everything goes through sockets (GWSClient, CometdClient, raw aiohttp), so what
is asserted here is what a desktop or a capture proxy would see on the wire.
"""

from __future__ import annotations

import asyncio
import json
import base64
import re
import signal
import sys
import uuid
from pathlib import Path

import aiohttp
import pytest
from multidict import CIMultiDictProxy

from gwsreplay.client.rest import GWSClient

CSRF_FAILURE = "Missing or invalid Csrf token"
VOICE = "/api/v2/me/channels/voice"


def basic(user: str = "agent1", password: str = "password") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def raw(method: str, url: str, *, headers: dict | None = None, data: bytes | str | None = None,
              json_body=None) -> tuple[int, str, CIMultiDictProxy[str]]:
    """One request with no cookie jar at all: the test controls every header."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        async with http.request(method, url, headers=headers, data=data, json=json_body) as resp:
            return resp.status, await resp.text(), resp.headers


def jsessionid(headers) -> str | None:
    for value in headers.getall("Set-Cookie", []):
        match = re.match(r"JSESSIONID=([^;]+)", value)
        if match:
            return match.group(1)
    return None


# ---------------------------------------------------------------------- auth and session


async def test_version_needs_no_auth(sim):
    status, text, headers = await raw("GET", sim.url + "/api/v2/diagnostics/version")
    assert status == 200
    body = json.loads(text)
    assert body["statusCode"] == 0 and re.fullmatch(r"8\.6\.\d{3}\.\d{2}", body["version"])
    assert "X-CSRF-TOKEN" not in headers and jsessionid(headers) is None


async def test_version_with_credentials_hands_out_the_token(sim):
    """The reference's Python sample reads the CSRF token from an authenticated version call."""
    status, _, headers = await raw("GET", sim.url + "/api/v2/diagnostics/version", headers=basic())
    assert status == 200
    assert headers["X-CSRF-HEADER"] == "X-CSRF-TOKEN" and uuid.UUID(headers["X-CSRF-TOKEN"])
    assert jsessionid(headers)


@pytest.mark.parametrize("headers", [
    {},
    basic("agent1", "wrong"),
    basic("nobody", "password"),
    {"Authorization": "Basic not-base64!"},
    {"Authorization": "Bearer abc"},
    {"Cookie": "JSESSIONID=doesnotexist"},
], ids=["none", "wrong-password", "unknown-user", "garbled", "not-basic", "unknown-session"])
async def test_access_denied(sim, headers):
    status, text, resp_headers = await raw("GET", sim.url + "/api/v2/me", headers=headers)
    assert status == 401
    assert json.loads(text) == {"statusCode": 20, "statusMessage": "Access denied"}
    assert "WWW-Authenticate" not in resp_headers  # no browser login dialog
    assert jsessionid(resp_headers) is None


async def test_jsessionid_issued_then_reused(sim):
    status, _, headers = await raw("GET", sim.url + "/api/v2/me", headers=basic())
    assert status == 200
    cookie = next(v for v in headers.getall("Set-Cookie") if v.startswith("JSESSIONID="))
    session_id = jsessionid(headers)
    assert cookie == f"JSESSIONID={session_id}; Path=/; HttpOnly"
    token = headers["X-CSRF-TOKEN"]

    # the cookie alone authenticates, and is not re-issued
    status, _, headers = await raw("GET", sim.url + "/api/v2/me", headers={"Cookie": f"JSESSIONID={session_id}"})
    assert status == 200 and jsessionid(headers) is None
    assert headers["X-CSRF-TOKEN"] == token  # the token lives as long as the session
    # cookie + the same user's credentials: same session
    status, _, headers = await raw("GET", sim.url + "/api/v2/me",
                                   headers={"Cookie": f"JSESSIONID={session_id}", **basic()})
    assert status == 200 and jsessionid(headers) is None


async def test_stale_cookie_with_credentials_gets_a_new_session(sim):
    status, _, headers = await raw("GET", sim.url + "/api/v2/me",
                                   headers={"Cookie": "JSESSIONID=hac082exio454jqck6ieqm4j", **basic()})
    assert status == 200
    assert jsessionid(headers) not in (None, "hac082exio454jqck6ieqm4j")


async def test_wrong_password_is_refused_even_with_a_valid_cookie(sim):
    client = sim.client("agent1")
    assert (await client.me()).status == 200
    status, _, _ = await raw("GET", sim.url + "/api/v2/me",
                             headers={"Cookie": client.cookie_header(), **basic("agent1", "wrong")})
    assert status == 401


async def test_other_users_credentials_get_their_own_session(sim):
    client = sim.client("agent1")
    await client.me()
    status, text, headers = await raw("GET", sim.url + "/api/v2/me",
                                      headers={"Cookie": client.cookie_header(), **basic("agent2")})
    assert status == 200 and json.loads(text)["user"]["userName"] == "agent2"
    assert jsessionid(headers) not in (None, client.session_id)


async def test_gws_response_headers(sim):
    client = sim.client()
    response = await client.me()
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers.getall("Cache-Control") == ["no-cache", "no-store"]
    assert response.headers["Pragma"] == "no-cache"
    assert response.headers["Expires"] == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert response.headers["Server"].startswith("Jetty(")


async def test_session_secrets_are_random_even_with_the_same_seed(sim_factory):
    """Ids follow --seed, session secrets never: a seeded JSESSIONID would be guessable."""
    seen = []
    for seed in (5, 5):
        server = await sim_factory(seed=seed)
        client = server.client()
        await client.me()
        seen.append((client.session_id, client.csrf_token))
    (id1, token1), (id2, token2) = seen
    assert id1 != id2 and token1 != token2
    assert re.fullmatch(r"[0-9a-z]{26}", id1) and uuid.UUID(token1).version == 4


# ---------------------------------------------------------------------- CSRF


async def test_csrf_token_on_get_responses_only(sim):
    client = sim.client()
    me = await client.me()
    assert me.headers["X-CSRF-HEADER"] == "X-CSRF-TOKEN"
    assert uuid.UUID(me.headers["X-CSRF-TOKEN"]).version == 4
    ready = await client.ready()
    assert ready.status == 200 and ready.body == {"statusCode": 0}
    assert "X-CSRF-TOKEN" not in ready.headers  # the documented POST response carries none


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_unsafe_methods_need_the_token(sim, method):
    client = sim.client()
    await client.me()
    missing = await client.request(method, "me", json_body={"operationName": "Ready"}, csrf=False)
    assert (missing.status, missing.text) == (403, CSRF_FAILURE)
    client.csrf_token = str(uuid.UUID(int=1))
    wrong = await client.request(method, "me", json_body={"operationName": "Ready"})
    assert (wrong.status, wrong.text) == (403, CSRF_FAILURE)


async def test_token_is_bound_to_its_session(sim):
    first, second = sim.client(), sim.client()
    await first.me()
    await second.me()
    assert first.csrf_token != second.csrf_token
    second.csrf_token = first.csrf_token  # right token, wrong JSESSIONID
    response = await second.ready()
    assert (response.status, response.text) == (403, CSRF_FAILURE)


async def test_token_without_cookie_store_is_refused(sim):
    """protocol.md §2.2: without the cookie GWS cannot tie the token to a session."""
    client = sim.client()
    await client.me()
    status, text, _ = await raw("POST", sim.url + VOICE, json_body={"operationName": "Ready"},
                                headers={**basic(), "X-CSRF-TOKEN": client.csrf_token})
    assert (status, text) == (403, CSRF_FAILURE)


async def test_no_csrf_mode(sim_factory):
    server = await sim_factory(csrf=False)
    status, _, headers = await raw("GET", server.url + "/api/v2/me", headers=basic())
    assert status == 200 and "X-CSRF-TOKEN" not in headers and "X-CSRF-HEADER" not in headers
    status, text, _ = await raw("POST", server.url + VOICE, json_body={"operationName": "Ready"}, headers=basic())
    assert status == 200 and json.loads(text) == {"statusCode": 0}
    client = server.client()
    assert (await client.ready()).ok
    assert client.csrf_token is None


async def test_cometd_long_poll_needs_the_token(sim):
    client = sim.client()
    await client.me()
    handshake = [{"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["long-polling"]}]
    refused = await client.request("POST", "notifications", json_body=handshake, csrf=False)
    assert (refused.status, refused.text) == (403, CSRF_FAILURE)
    accepted = await client.post("notifications", handshake)
    assert accepted.status == 200 and accepted.body[0]["successful"] is True


# ---------------------------------------------------------------------- CORS


async def test_cors_preflight_needs_no_auth(sim):
    origin = "http://desktop.example:3000"
    status, text, headers = await raw("OPTIONS", sim.url + "/api/v2/me/calls/ABC", headers={
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, x-csrf-token",
    })
    assert status == 200 and text == ""
    assert headers["Access-Control-Allow-Origin"] == origin
    assert headers["Access-Control-Allow-Credentials"] == "true"
    allowed = {h.strip().lower() for h in headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "x-csrf-token", "contactcenterid"} <= allowed
    assert {"GET", "POST", "PUT", "DELETE"} <= {m.strip() for m in headers["Access-Control-Allow-Methods"].split(",")}


async def test_cors_headers_on_answers(sim):
    origin = "https://wwe.example"
    status, _, headers = await raw("GET", sim.url + "/api/v2/me", headers={"Origin": origin, **basic()})
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == origin  # echoed, never "*"
    assert headers["Access-Control-Allow-Credentials"] == "true"
    exposed = {h.strip() for h in headers["Access-Control-Expose-Headers"].split(",")}
    assert exposed == {"X-CSRF-HEADER", "X-CSRF-TOKEN"}
    status, _, headers = await raw("GET", sim.url + "/api/v2/me", headers={"Origin": origin})
    assert status == 401 and headers["Access-Control-Allow-Origin"] == origin  # the page can read the 401
    status, _, headers = await raw("GET", sim.url + "/api/v2/me", headers=basic())
    assert "Access-Control-Allow-Origin" not in headers  # no Origin, no CORS


async def test_the_control_api_takes_no_orders_from_other_origins(sim):
    """A web page on another origin cannot drive the simulator: no CORS on /sim/v1, cross-origin POSTs refused."""
    call = json.dumps({"from": "5551234", "to": "7001"})
    status, _, headers = await raw("OPTIONS", sim.url + "/sim/v1/calls", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert status == 403 and "Access-Control-Allow-Origin" not in headers
    status, text, headers = await raw("POST", sim.url + "/sim/v1/calls", data=call, headers={
        "Origin": "https://evil.example", "Content-Type": "text/plain"})
    assert status == 403 and "other origins" in text and "Access-Control-Allow-Origin" not in headers
    status, _, headers = await raw("GET", sim.url + "/sim/v1/stats", headers={"Origin": "https://evil.example"})
    assert status == 200 and "Access-Control-Allow-Origin" not in headers      # the page cannot read it
    own = sim.url.rstrip("/")
    status, _, _ = await raw("POST", sim.url + "/sim/v1/calls", data=call, headers={
        "Origin": own, "Content-Type": "application/json"})
    assert status == 200                                                        # the desktop page's own origin


# ---------------------------------------------------------------------- bad input never gives a 500


@pytest.mark.parametrize("data, status_code", [
    (b"{not json", 2),
    (b'{"operationName": "Ready"', 2),
    (b"\xff\xfe\x00garbage", 2),
    (b"[" * 100_000, 2),
    (b'["Ready"]', 2),
    (b'"Ready"', 2),
    (b"42", 2),
    (b"", 1),
    (b"   ", 1),
])
async def test_bad_request_bodies(sim, data, status_code):
    client = sim.client()
    await client.me()
    status, text, headers = await raw("POST", sim.url + "/api/v2/me", data=data, headers={
        "Cookie": client.cookie_header(), **client.csrf_headers(), "Content-Type": "application/json"})
    body = json.loads(text)
    assert status == 400 and body["statusCode"] == status_code and body["statusMessage"]
    assert headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("path", ["/api/v2/nothing/here", "/api/v2/me/calls/NOSUCHCALL", "/api/v2"])
async def test_unknown_resources(sim, path):
    client = sim.client()
    response = await client.get(path)
    assert response.status == 404 and response.status_code == 6


async def test_unknown_operation_and_bad_state_are_not_500(sim):
    client = sim.client()
    unknown = await client.operation("me", "NoSuchOperation")
    assert unknown.status == 400 and unknown.status_code in (1, 2, 3)
    hangup = await client.call_op("NOSUCHCALL", "Hangup")
    assert hangup.status in (400, 404) and hangup.status_code in (2, 6)


async def test_router_refusals_are_json_too(sim):
    client = sim.client()
    await client.me()
    for method, path, want in [("GET", "/sim/v1/nothing", 404), ("POST", "/sim/v1/stats", 405), ("GET", "/", 404)]:
        status, text, _ = await raw(method, sim.url + path)
        assert status == want and json.loads(text)["statusCode"] in (2, 6)
    status, text, _ = await raw("POST", sim.url + "/api/v2/me", data=b"{" + b" " * 2_000_000 + b"}", headers={
        "Cookie": client.cookie_header(), **client.csrf_headers()})
    assert status == 413 and json.loads(text)["statusCode"] == 2


# ---------------------------------------------------------------------- control API


@pytest.mark.parametrize("path, data", [
    ("/sim/v1/calls", b"not json"),
    ("/sim/v1/calls", b"[]"),
    ("/sim/v1/calls", b""),
    ("/sim/v1/calls", b'{"to": "7001"}'),
    ("/sim/v1/calls", b'{"from": "5551234"}'),
    ("/sim/v1/calls", b'{"from": {}, "to": "7001"}'),
    ("/sim/v1/calls", b'{"from": "5551234", "to": true}'),
    ("/sim/v1/calls", b'{"from": "5551234", "to": "7001", "userData": [1]}'),
    ("/sim/v1/services/voice", b'{"state": "Sleeping"}'),
    ("/sim/v1/services/voice", b"{}"),
    ("/sim/v1/services/voice", b"nope"),
])
async def test_control_api_rejects_bad_input(sim, path, data):
    status, text, headers = await raw("POST", sim.url + path, data=data)
    body = json.loads(text)
    assert status == 400 and body["statusCode"] in (1, 2) and body["statusMessage"], body


async def test_control_api_unknown_targets(sim):
    status, body = await sim.far_end_hangup("NOSUCHCALL")
    assert status == 404 and body["statusCode"] == 6
    status, body = await sim.inject_call("5551234", "7999")  # nobody has 7999
    assert status in (400, 404) and body["statusCode"] in (2, 6)
    status, body = await sim.set_service("Inactive", service="fax")
    assert status in (400, 404) and body["statusCode"] in (2, 6)


async def test_control_api_needs_no_auth_and_stats_shape(sim):
    stats = await sim.stats()
    assert stats["rest"] == {"total": 0, "by_user": {}}
    assert set(stats["bayeux"]) >= {"received", "delivered"}
    state = await sim.state()
    assert isinstance(state, dict)


# ---------------------------------------------------------------------- CometD-driven scenarios

# dig(event, "data__call__state"): walk dicts and list indexes, None when absent
from jsdesktop import _dig as dig  # noqa: E402




class Agent:
    """One agent desktop for these tests: GWSClient + CometdClient + received events."""

    def __init__(self, sim, user_name: str, transport: str = "long-polling"):
        self.user_name = user_name
        self.rest: GWSClient = sim.client(user_name)
        self.transport = transport
        self.cometd = None
        self.device_id: str | None = None
        self.seen: list[dict] = []  # every Bayeux message in or out, for 402 checks

    async def connect(self, *channels: str) -> None:
        """GET /me (cookie + token), handshake, subscribe: the documented order."""
        me = await self.rest.me()
        assert me.ok, me.body
        self.cometd = self.rest.cometd(self.transport, on_message=lambda d, m: self.seen.append(m))
        await self.cometd.handshake()
        for channel in channels or ("/v2/me/*",):
            await self.cometd.subscribe(channel)

    async def log_in(self) -> str:
        await self.connect()
        assert (await self.rest.start_session()).body == {"statusCode": 0}
        event = await self.event("/v2/me/devices", data__messageType="DeviceStateChangeMessage")
        self.device_id = event["data"]["devices"][0]["id"]
        assert (await self.rest.ready()).body == {"statusCode": 0}
        await self.event("/v2/me/devices", data__devices__0__userState__state="Ready")
        return self.device_id

    async def event(self, channel: str, timeout: float = 5, **match) -> dict:
        """The next event on ``channel`` matching the dotted keys; others are dropped."""
        async def find() -> dict:
            while True:
                event = await self.cometd.events.get()
                if event["channel"] == channel and all(dig(event, k) == v for k, v in match.items()):
                    return event

        try:
            return await asyncio.wait_for(find(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"{self.user_name}: no {channel} event matching {match}") from None

    async def call_op(self, call_id: str, operation: str, **params) -> None:
        response = await self.rest.call_op(call_id, operation, **params)
        assert response.body == {"statusCode": 0}, (operation, response.status, response.body)

    async def close(self) -> None:
        if self.cometd is not None:
            await self.cometd.close()


@pytest.fixture
async def agents(sim):
    """``agent = await agents("agent1", "websocket")``; CometD clients closed at teardown."""
    made: list[Agent] = []

    async def make(user_name: str, transport: str = "long-polling") -> Agent:
        agent = Agent(sim, user_name, transport)
        made.append(agent)
        return agent

    yield make
    for agent in made:
        await agent.close()


@pytest.mark.parametrize("transport", ["long-polling", "websocket"])
async def test_agent_to_agent_call(sim, agents, transport):
    a1, a2 = await agents("agent1", transport), await agents("agent2", transport)
    device1 = await a1.log_in()
    await a2.log_in()

    dial = await a1.rest.dial(device1, "7002")
    assert (dial.status, dial.body) == (200, {"statusCode": 0})
    dialing = await a1.event("/v2/me/calls", data__call__state="Dialing")
    ringing = await a2.event("/v2/me/calls", data__call__state="Ringing")
    for event in (dialing, ringing):
        assert event["data"]["messageType"] == "CallStateChangeMessage"
        assert event["data"]["call"]["callType"] == "Internal"
    assert "Answer" in ringing["data"]["call"]["capabilities"]
    call1, call2 = dialing["data"]["call"]["id"], ringing["data"]["call"]["id"]

    await a2.call_op(call2, "Answer")
    await a2.event("/v2/me/calls", data__call__state="Established", data__call__id=call2)
    await a1.event("/v2/me/calls", data__call__state="Established", data__call__id=call1)

    await a2.call_op(call2, "Hold")
    held = await a2.event("/v2/me/calls", data__call__state="Held", data__call__id=call2)
    assert "Retrieve" in held["data"]["call"]["capabilities"]
    await a2.call_op(call2, "Retrieve")
    await a2.event("/v2/me/calls", data__call__state="Established", data__call__id=call2)

    await a1.call_op(call1, "Hangup")
    await a1.event("/v2/me/calls", data__call__state="Released", data__call__id=call1)
    await a2.event("/v2/me/calls", data__call__state="Released", data__call__id=call2)

    calls = await a1.rest.calls()
    assert calls.ok and calls.body.get("calls", []) == []
    # nothing on the way was a failed Bayeux reply
    assert not [m for a in (a1, a2) for m in a.seen if m.get("successful") is False]


@pytest.mark.parametrize("transport, csrf", [("long-polling", True), ("long-polling", False), ("websocket", True)])
async def test_end_session_invalidates_cookie_token_and_cometd(sim_factory, transport, csrf):
    server = await sim_factory(csrf=csrf)
    agent = Agent(server, "agent1", transport)
    try:
        await agent.log_in()
        old_cookie, old_token = agent.rest.cookie_header(), agent.rest.csrf_token
        old_client_id = agent.cometd.session.client_id
        # stop the background loop so that it cannot re-handshake under our feet
        ws_alive = transport == "websocket"

        end = await agent.rest.end_session()
        assert end.body == {"statusCode": 0}
        assert agent.rest.csrf_token is None  # the client forgets the dead token

        # the cookie alone is dead; with the old token a POST is refused too
        status, _, _ = await raw("GET", server.url + "/api/v2/me", headers={"Cookie": old_cookie})
        assert status == 401
        if csrf:
            status, text, _ = await raw("POST", server.url + VOICE, json_body={"operationName": "Ready"},
                                        headers={"Cookie": old_cookie, "X-CSRF-TOKEN": old_token, **basic()})
            assert (status, text) == (403, CSRF_FAILURE)

        stale = {"channel": "/meta/subscribe", "subscription": "/v2/me/calls", "clientId": old_client_id, "id": "99"}
        if ws_alive:
            # the same WebSocket, whose HTTP session is gone: the next message gets 402
            reply = await agent.cometd.request({"channel": "/meta/subscribe", "subscription": "/v2/me/calls"})
            assert reply["successful"] is False and reply["error"].startswith("402")
        elif csrf:
            # old cookie + old token: refused before Bayeux sees it
            status, text, _ = await raw("POST", server.url + "/api/v2/notifications", json_body=[stale],
                                        headers={"Cookie": old_cookie, "X-CSRF-TOKEN": old_token})
            assert (status, text) == (403, CSRF_FAILURE)
        else:
            status, text, _ = await raw("POST", server.url + "/api/v2/notifications", json_body=[stale],
                                        headers={"Cookie": old_cookie})
            assert status == 200 and json.loads(text)[0]["error"].startswith("402")

        # a fresh HTTP session cannot adopt the old Bayeux client either
        await agent.rest.me()
        assert agent.rest.cookie_header() != old_cookie
        assert csrf == (agent.rest.csrf_token is not None and agent.rest.csrf_token != old_token)
        response = await agent.rest.post("notifications", [stale])
        assert response.status == 200
        assert response.body[0]["successful"] is False and response.body[0]["error"] == "402::Unknown client"
    finally:
        await agent.close()
        await server.close()


async def test_inject_call_rings_agent_and_far_end_hangs_up(sim, agents):
    agent = await agents("agent1")
    await agent.log_in()
    status, body = await sim.inject_call("5551234", "7001", {"CustomerId": "42"})
    assert status == 200 and body["statusCode"] == 0, body
    ringing = await agent.event("/v2/me/calls", data__call__state="Ringing")
    call = ringing["data"]["call"]
    assert call["callType"] == "Inbound" and call["userData"].get("CustomerId") == "42"
    assert "Answer" in call["capabilities"]

    await agent.call_op(call["id"], "Answer")
    await agent.event("/v2/me/calls", data__call__state="Established", data__call__id=call["id"])

    status, body = await sim.far_end_hangup(call["id"])
    assert status == 200 and body["statusCode"] == 0, body
    await agent.event("/v2/me/calls", data__call__state="Released", data__call__id=call["id"])
    status, body = await sim.far_end_hangup(call["id"])  # gone now
    assert status == 404 and body["statusCode"] == 6


async def test_voice_service_outage(sim, agents):
    agent = await agents("agent1")
    await agent.log_in()
    await agent.cometd.subscribe("/notifications/services")

    status, body = await sim.set_service("Inactive")
    assert status == 200 and body["statusCode"] == 0, body
    event = await agent.event("/notifications/services", data__messageType="ServiceStateChangeMessage")
    assert "Inactive" in json.dumps(event["data"])
    ready = await agent.rest.ready()
    assert ready.status == 503 and ready.status_code == 4 and ready.body["statusMessage"]
    dial = await agent.rest.dial(agent.device_id, "7002")
    assert dial.status == 503 and dial.status_code == 4

    status, body = await sim.set_service("Active")
    assert status == 200 and body["statusCode"] == 0
    event = await agent.event("/notifications/services", data__messageType="ServiceStateChangeMessage")
    assert "Active" in json.dumps(event["data"])
    assert (await agent.rest.ready()).ok


async def test_stats_count_exactly(sim):
    url = sim.url
    # unauthenticated: version, 401, preflight -> by_user ""
    await raw("GET", url + "/api/v2/diagnostics/version")
    await raw("GET", url + "/api/v2/me")
    await raw("OPTIONS", url + "/api/v2/me", headers={"Origin": "http://x", "Access-Control-Request-Method": "POST"})
    # agent1: GET /me, a CSRF refusal (cookie known), a 400, a 404, a good POST
    client = sim.client("agent1")
    await client.me()
    await client.request("POST", VOICE, json_body={"operationName": "Ready"}, csrf=False)
    await raw("POST", url + "/api/v2/me", data=b"{", headers={"Cookie": client.cookie_header(), **client.csrf_headers()})
    await client.get("nothing/here")
    await client.start_session()
    # agent2 once; control API and CometD are not REST requests
    await sim.client("agent2").me()
    await sim.state()
    handshake = await client.post("notifications", [{"channel": "/meta/handshake", "version": "1.0",
                                                      "supportedConnectionTypes": ["long-polling"]}])
    client_id = handshake.body[0]["clientId"]
    await client.post("notifications", [
        {"channel": "/meta/subscribe", "subscription": "/v2/me/*", "clientId": client_id, "id": "2"},
        {"channel": "/meta/subscribe", "subscription": "/v2/me/calls", "clientId": client_id, "id": "3"},
    ])

    stats = await sim.stats()
    assert stats["rest"] == {"total": 9, "by_user": {"": 3, "agent1": 5, "agent2": 1}}
    assert stats["bayeux"]["received"]["total"] == 3
    assert stats["bayeux"]["delivered"]["total"] == 3
    assert stats["bayeux"]["received"]["by_user"] == {"agent1": 3}


# ---------------------------------------------------------------------- the CLI as a process


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_gwsreplay_sim_process(sim_process, sig):
    process = await sim_process("--agents", "3", "--seed", "4")
    assert re.fullmatch(r"GWS simulator listening on http://127\.0\.0\.1:\d+ \(3 agents, seed 4\)", process.first_line)
    status, text, _ = await raw("GET", process.url + "/api/v2/diagnostics/version")
    assert status == 200 and json.loads(text)["statusCode"] == 0
    status, _, _ = await raw("GET", process.url + "/api/v2/me", headers=basic("agent3"))
    assert status == 200
    status, _, _ = await raw("GET", process.url + "/api/v2/me", headers=basic("agent4"))
    assert status == 401
    assert await process.stop(sig) == 0
    assert "Traceback" not in process.stderr()


async def test_gwsreplay_sim_stops_while_long_polls_are_held(sim_process):
    process = await sim_process("--no-csrf")
    async with GWSClient(process.url, "agent1", "password") as client:
        await client.me()
        cometd = client.cometd()
        await cometd.handshake()
        await cometd.subscribe("/v2/me/*")
        await asyncio.sleep(0.3)  # the connect loop is now parked on the server (30 s hold)
        started = asyncio.get_running_loop().time()
        assert await process.stop(signal.SIGTERM) == 0
        assert asyncio.get_running_loop().time() - started < 5
        await cometd.close()
    assert "Traceback" not in process.stderr()


@pytest.mark.parametrize("content", ["[[users]\nuser_name=", '[[users]]\nuser_name = "a"\nroles = ["boss"]\n', None])
async def test_gwsreplay_sim_bad_users_file(tmp_path, content):
    path = tmp_path / "users.toml"
    if content is not None:
        path.write_text(content)
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("gwsreplay")), "sim", "--port", "0", "--users", str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 2
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gwsreplay sim: error:") and str(path) in lines[0]
    assert stdout == b""


async def test_idle_http_sessions_are_forgotten_but_not_while_cometd_is_open(sim_factory):
    """A client that never keeps its cookie must not grow the session table for ever."""
    sim = await sim_factory(agents=2, session_timeout=60)
    front = sim.front
    idle = sim.client("agent1")
    assert (await idle.get("me")).status == 200
    busy = sim.client("agent2")
    assert (await busy.get("me")).status == 200
    cometd = busy.cometd("long-polling")
    await cometd.handshake()
    assert len(front.sessions) == 2

    import time
    assert front.forget_idle_sessions(now=time.monotonic() + 61) == 1
    assert [s.user_name for s in front.sessions.values()] == ["agent2"]
    # the forgotten cookie is stale now: Basic credentials create a fresh session
    again = await idle.get("me")
    assert again.status == 200 and "JSESSIONID" in again.headers.get("Set-Cookie", "")
    await cometd.disconnect()
