"""The official CometD JavaScript client against the simulator.

Two Node desktops (npm `cometd` 9 + `cometd-nodejs-client`) log in as agent1
and agent2 and go through an agent-to-agent call. If our Bayeux server bends
the protocol anywhere the official client would notice, this test fails.
"""

from __future__ import annotations

import pytest

from jsdesktop import JsDesktop, node_available

pytestmark = pytest.mark.skipif(not node_available(), reason="node or node_modules/cometd missing (run make node)")

VOICE = "/api/v2/me/channels/voice"


async def log_in(desktop: JsDesktop) -> str:
    """GET /me for cookie + CSRF, handshake, subscribe /v2/me/*, start the session, Ready.

    Returns the agent's device id.
    """
    me = await desktop.rest("GET", "/api/v2/me")
    assert me["status"] == 200 and me["body"]["statusCode"] == 0
    handshake = await desktop.connect()
    assert handshake["successful"], handshake
    assert handshake["transport"] == desktop.transport
    sub = await desktop.subscribe("/v2/me/*")
    assert sub["successful"], sub

    start = await desktop.rest("POST", "/api/v2/me", {"operationName": "StartContactCenterSession", "channels": ["voice"]})
    assert start["body"] == {"statusCode": 0}
    logged_in = await desktop.notification("/v2/me/devices", messageType="DeviceStateChangeMessage")
    device = logged_in["data"]["devices"][0]

    ready = await desktop.rest("POST", VOICE, {"operationName": "Ready"})
    assert ready["body"] == {"statusCode": 0}
    await desktop.notification("/v2/me/devices", devices__0__userState__state="Ready")
    return device["id"]


@pytest.mark.parametrize("transport", ["long-polling", "websocket"])
async def test_official_client_agent_to_agent_call(sim, transport):
    async with JsDesktop(sim.url, "agent1", transport=transport) as a1, \
               JsDesktop(sim.url, "agent2", transport=transport) as a2:
        device1 = await log_in(a1)
        await log_in(a2)

        dial = await a1.rest("POST", f"/api/v2/me/devices/{device1}/calls",
                             {"operationName": "Dial", "destination": {"phoneNumber": "7002"}})
        assert dial["body"] == {"statusCode": 0}
        dialing = await a1.notification("/v2/me/calls", call__state="Dialing")
        ringing = await a2.notification("/v2/me/calls", call__state="Ringing")
        assert dialing["data"]["messageType"] == "CallStateChangeMessage"
        assert dialing["data"]["notificationType"] == "StatusChange"
        assert ringing["data"]["call"]["callType"] == "Internal"
        assert "Answer" in ringing["data"]["call"]["capabilities"]
        call2 = ringing["data"]["call"]["id"]
        call1 = dialing["data"]["call"]["id"]

        answer = await a2.rest("POST", f"/api/v2/me/calls/{call2}", {"operationName": "Answer"})
        assert answer["body"] == {"statusCode": 0}
        await a2.notification("/v2/me/calls", call__state="Established", call__id=call2)
        await a1.notification("/v2/me/calls", call__state="Established", call__id=call1)

        hold = await a2.rest("POST", f"/api/v2/me/calls/{call2}", {"operationName": "Hold"})
        assert hold["body"] == {"statusCode": 0}
        held = await a2.notification("/v2/me/calls", call__state="Held", call__id=call2)
        assert "Retrieve" in held["data"]["call"]["capabilities"]

        retrieve = await a2.rest("POST", f"/api/v2/me/calls/{call2}", {"operationName": "Retrieve"})
        assert retrieve["body"] == {"statusCode": 0}
        await a2.notification("/v2/me/calls", call__state="Established", call__id=call2)

        hangup = await a1.rest("POST", f"/api/v2/me/calls/{call1}", {"operationName": "Hangup"})
        assert hangup["body"] == {"statusCode": 0}
        await a1.notification("/v2/me/calls", call__state="Released", call__id=call1)
        await a2.notification("/v2/me/calls", call__state="Released", call__id=call2)

        for desktop in (a1, a2):
            await desktop.disconnect()
            # nothing the official client saw was a failed meta reply
            assert not [e for e in desktop.events if e["event"] == "meta" and not e["successful"]]


async def test_official_client_handshake_refused_without_session(sim):
    """Without the HTTP session cookie, the CometD handshake is refused, as GWS ties CometD to JSESSIONID."""
    async with JsDesktop(sim.url, "agent1") as desktop:
        handshake = await desktop.connect()
        assert handshake["successful"] is False
