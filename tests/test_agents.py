"""Scripted agents against the simulator: every scenario runs, nothing fails, counts agree."""

from __future__ import annotations

import pytest

from gwsreplay.client.agents import AgentsConfig, run_agents


@pytest.mark.parametrize("transport", ["long-polling", "websocket"])
async def test_scripted_agents_work_every_scenario(sim_factory, transport):
    sim = await sim_factory(agents=4)
    config = AgentsConfig(target=sim.url, agents=4, duration=8, seed=3, transport=transport,
                          think_time=0.1, talk_time=0.2)
    summary = await run_agents(config)

    assert summary.failures == []
    assert summary.logged_in == 4
    assert summary.errors == 0
    # partner scenarios depend on who is idle when, so only the solo ones are certain here
    assert {"inbound", "outbound"} <= set(summary.scenarios), summary.scenarios
    stats = await sim.stats()
    # each agent also sent GETs (me, devices) that are not operations
    assert stats["rest"]["total"] > summary.operations
    assert stats["bayeux"]["delivered"]["total"] > summary.notifications
    state = await sim.state()
    active = [p for c in state["calls"] for p in c["parties"] if p["userName"] and p["state"] != "Released"]
    assert active == [], "agents left calls behind"
    assert all(not a["loggedIn"] for a in state["agents"]), "agents did not log out"


async def test_transfers_and_conferences_between_agents(sim_factory):
    sim = await sim_factory(agents=4)
    config = AgentsConfig(target=sim.url, agents=4, duration=8, seed=5, think_time=0.1, talk_time=0.2,
                          scenarios=("transfer", "conference", "agent_to_agent"))
    summary = await run_agents(config)
    assert summary.failures == [] and summary.errors == 0
    assert {"transfer", "conference", "agent_to_agent"} == set(summary.scenarios), summary.scenarios


async def test_agents_work_every_media_channel(sim_factory):
    sim = await sim_factory(agents=4)
    config = AgentsConfig(target=sim.url, agents=4, duration=8, seed=2, think_time=0.1, talk_time=0.2,
                          channels=("voice", "chat", "email", "workitem", "im"),
                          scenarios=("chat", "email", "workitem", "im"))
    summary = await run_agents(config)
    assert summary.failures == [] and summary.errors == 0
    assert {"chat", "email", "workitem", "im"} == set(summary.scenarios), summary.scenarios
    media = (await sim.state())["media"]
    done = {"Completed", "Sent", "Canceled", "Revoked"}
    open_items = [i for i in media["interactions"] + media["imSessions"] if i.get("state") not in done]
    assert open_items == [], "agents left interactions open"


async def test_agents_without_control_api_skip_inbound(sim_factory, monkeypatch):
    """Against a GWS without /sim/v1 (a real one), inbound scenarios are not attempted."""
    from gwsreplay.client import agents

    async def no_control(cls, target, http):
        return None

    monkeypatch.setattr(agents.ControlApi, "detect", classmethod(no_control))
    sim = await sim_factory(agents=2)
    summary = await run_agents(AgentsConfig(target=sim.url, agents=2, duration=4, seed=1, think_time=0.1, talk_time=0.1))
    assert summary.failures == []
    assert not {"inbound", "transfer", "conference"} & set(summary.scenarios)
