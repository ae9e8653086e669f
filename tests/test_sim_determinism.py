"""Determinism over the wire: same seed + same requests -> the same CometD streams.

Two fresh simulators with the same seed serve the same scripted session (two
agents, an agent-to-agent call with hold/retrieve, an injected inbound call,
user data). Each agent's notification stream must be identical between the two
runs, ids included; only `duration` (wall-clock seconds) is left out and the
simulator's port in absolute uris is replaced by a placeholder.
"""

from __future__ import annotations

import json

from gwsreplay.client.control import ControlApi
from gwsreplay.client.desktop import Desktop


def _strip_durations(value):
    if isinstance(value, dict):
        return {k: _strip_durations(v) for k, v in value.items() if k != "duration"}
    if isinstance(value, list):
        return [_strip_durations(v) for v in value]
    return value


async def scripted_session(sim) -> dict[str, list[dict]]:
    a1 = Desktop(sim.url, "agent1")
    a2 = Desktop(sim.url, "agent2")
    for desktop in (a1, a2):
        await desktop.login()
        await desktop.agent_state("Ready")
        await desktop.wait_device(lambda d: d["userState"]["state"] == "Ready")

    await a1.dial("7002")
    ringing = await a2.wait_call(lambda c: c["state"] == "Ringing")
    await a2.call_op(ringing["id"], "Answer")
    mine = await a1.wait_call(lambda c: c["state"] == "Established")
    await a2.wait_call(lambda c: c["id"] == ringing["id"] and c["state"] == "Established")
    await a1.call_op(mine["id"], "AttachUserData", userData={"Case": "42"})
    await a1.wait_call(lambda c: c["id"] == mine["id"] and (c.get("userData") or {}).get("Case") == "42")
    await a1.call_op(mine["id"], "Hold")
    await a1.wait_call(lambda c: c["id"] == mine["id"] and c["state"] == "Held")
    await a1.call_op(mine["id"], "Retrieve")
    await a1.wait_call(lambda c: c["id"] == mine["id"] and c["state"] == "Established")
    await a1.call_op(mine["id"], "Hangup")
    await a2.wait_call(lambda c: c["id"] == ringing["id"] and c["state"] == "Released")

    control = ControlApi(sim.url, a1.rest.http)
    await control.inject_call("5551234", "7002", {"Segment": "Gold"})
    inbound = await a2.wait_call(lambda c: c["state"] == "Ringing" and c["callType"] == "Inbound")
    await a2.call_op(inbound["id"], "Answer")
    await a2.wait_call(lambda c: c["id"] == inbound["id"] and c["state"] == "Established")
    await a2.call_op(inbound["id"], "Hangup")
    await a2.wait_call(lambda c: c["id"] == inbound["id"] and c["state"] == "Released")

    # absolute uris carry the simulator's own (random) port
    streams = {d.user_name: json.loads(json.dumps(_strip_durations(d.notifications)).replace(sim.url, "BASE"))
               for d in (a1, a2)}
    for desktop in (a1, a2):
        await desktop.logout()
    return streams


async def test_same_seed_same_notification_streams(sim_factory):
    first = await scripted_session(await sim_factory(agents=3, seed=11))
    second = await scripted_session(await sim_factory(agents=3, seed=11))
    for user in ("agent1", "agent2"):
        assert len(first[user]) >= 8
        assert json.dumps(first[user], sort_keys=True) == json.dumps(second[user], sort_keys=True), user


async def test_other_seed_other_ids(sim_factory):
    first = await scripted_session(await sim_factory(agents=3, seed=11))
    other = await scripted_session(await sim_factory(agents=3, seed=12))
    ids = lambda stream: {n["data"]["call"]["id"] for n in stream if "call" in n["data"]}
    assert ids(first["agent1"]) and not ids(first["agent1"]) & ids(other["agent1"])
