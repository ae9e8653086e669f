"""Load replay on Locust (gwsreplay.load): master + workers against the simulator, all child processes.

Locust monkey-patches with gevent, so nothing here imports gwsreplay.load: the
simulator, Locust's master and workers and `gwsreplay load` run as child
processes on 127.0.0.1, every one bounded in time.
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from urllib.request import urlopen

import aiohttp
import duckdb
import pytest

from conftest import ROOT, free_port, gwsreplay_command
from gwsreplay.client.control import ControlApi
from gwsreplay.client.desktop import Desktop
from gwsreplay.client.media_scenarios import InteractionMirror, Pace, chat_scenario, media_ready
from jsdesktop import JsDesktop, node_available
from replay_fixtures import _CACHE, record_capture, scripted_session

LOCUSTFILE = ROOT / "gwsreplay" / "load" / "locustfile.py"
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


# ----------------------------------------------------------------------------- captures


async def calls_transfer_and_chat(url: str, transport: str = "long-polling") -> None:
    """The scripted voice session (agent-to-agent call, inbound calls, a consult transfer), then agent4's chat."""
    await scripted_session(url, transport)
    agent = Desktop(url, "agent4", transport=transport)
    async with aiohttp.ClientSession() as http:
        try:
            await agent.login(channels=("voice", "chat"))
            await media_ready(agent, ("chat",))
            await chat_scenario(agent, InteractionMirror(agent), ControlApi(url, http),
                                Pace(random.Random(3), think_time=0.05, talk_time=0.05))
        finally:
            await agent.logout()


def _devices(body: dict) -> list[dict]:
    return (body.get("data") or body)["devices"]


async def two_js_desktops(url: str, transport: str = "long-polling") -> None:
    """Two official CometD JS desktops: log in, Ready, learn their number from GET /me/devices?fields=*,
    then open notifications, and call each other (Dial, Answer, AttachUserData, Hold, Retrieve, Hangup)."""
    async with JsDesktop(url, "agent1", transport=transport) as d1, JsDesktop(url, "agent2", transport=transport) as d2:
        numbers = {}
        for d in (d1, d2):
            await d.rest("GET", "/api/v2/me")
            await d.rest("POST", "/api/v2/me", {"operationName": "StartContactCenterSession", "channels": ["voice"]})
            await d.rest("POST", "/api/v2/me/channels/voice", {"operationName": "Ready"})
            numbers[d.user] = _devices((await d.rest("GET", "/api/v2/me/devices?fields=*"))["body"])[0]["phoneNumber"]
            await d.connect()
            await d.subscribe("/v2/me/*")
        for caller, callee in ((d1, d2), (d2, d1)):
            device = _devices((await caller.rest("GET", "/api/v2/me/devices?fields=*"))["body"])[0]["id"]
            await caller.rest("POST", f"/api/v2/me/devices/{device}/calls",
                              {"operationName": "Dial", "destination": {"phoneNumber": numbers[callee.user]}})
            call_id = (await callee.notification("/v2/me/calls", call__state="Ringing"))["data"]["call"]["id"]
            await callee.rest("POST", f"/api/v2/me/calls/{call_id}", {"operationName": "Answer"})
            await caller.notification("/v2/me/calls", call__state="Established")
            await callee.notification("/v2/me/calls", call__state="Established")
            for op, extra, wait in (("AttachUserData", {"userData": {"Case": "42"}}, {"call__userData__Case": "42"}),
                                    ("Hold", {}, {"call__state": "Held"}),
                                    ("Retrieve", {}, {"call__state": "Established"})):
                await callee.rest("POST", f"/api/v2/me/calls/{call_id}", {"operationName": op, **extra})
                await callee.notification("/v2/me/calls", **wait)
            await caller.rest("POST", f"/api/v2/me/calls/{call_id}", {"operationName": "Hangup"})
            await caller.notification("/v2/me/calls", call__state="Released")
            await callee.notification("/v2/me/calls", call__state="Released")
        for d in (d1, d2):
            await d.rest("POST", "/api/v2/me", {"operationName": "EndContactCenterSession"})
            await d.disconnect()


def cached_capture(name: str, script, tmp_factory, agents: int) -> Path:
    if name not in _CACHE:
        _CACHE[name] = record_capture(tmp_factory.mktemp(name) / f"{name}.duckdb", agents=agents, script=script)
    return _CACHE[name]


# ----------------------------------------------------------------------------- processes


@contextmanager
def simulator(agents: int, tmp: Path):
    """`gwsreplay sim` as a child process; yields its URL."""
    log = (tmp / "sim.log").open("wb")
    proc = subprocess.Popen(gwsreplay_command() + ["sim", "--port", "0", "--agents", str(agents), "--answer-delay",
                                                   "0.05"], stdout=subprocess.PIPE, stderr=log, env=ENV, cwd=ROOT)
    try:
        line = proc.stdout.readline().decode()
        assert "listening on " in line, line + (tmp / "sim.log").read_text()
        yield line.split("listening on ", 1)[1].split()[0]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def sim_stats(url: str) -> dict:
    with urlopen(url + "/sim/v1/stats", timeout=10) as r:
        return json.load(r)


def locust_rows(prefix: Path) -> list[dict]:
    with open(f"{prefix}_stats.csv", newline="") as f:
        return list(csv.DictReader(f))


def rest_count(rows: list[dict]) -> int:
    return sum(int(r["Request Count"]) for r in rows if r["Type"] == "REST")


def divergences(out: Path) -> list[tuple]:
    con = duckdb.connect(str(out), read_only=True)
    try:
        return con.execute("SELECT copy, session, live_user, label, kind, detail FROM divergences").fetchall()
    finally:
        con.close()


# ----------------------------------------------------------------------------- the Done-when test


def test_master_and_two_workers_replay_calls_transfers_and_a_chat_as_104_agents(tmp_path, tmp_path_factory):
    db = cached_capture("calls-chat", calls_transfer_and_chat, tmp_path_factory, agents=4)
    copies, per_copy = 26, 4                      # agent1..agent4 per copy: 104 virtual agents
    out, prefix, html = tmp_path / "load.duckdb", tmp_path / "stats", tmp_path / "report.html"
    port = free_port()
    with simulator(copies * per_copy, tmp_path) as url:
        common = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]
        master_log = (tmp_path / "master.log").open("wb")
        master = subprocess.Popen(common + [
            "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port), "--expect-workers", "2",
            "--headless", "-u", str(copies), "-r", "20", "-t", "150s", "--host", url, "--capture", str(db),
            "--gws-iterations", "1", "--speed", "max", "--out", str(out), "--csv", str(prefix), "--html", str(html),
            "--only-summary"], stdout=master_log, stderr=subprocess.STDOUT, env=ENV, cwd=tmp_path)
        workers = [subprocess.Popen(common + ["--worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
                                    stdout=subprocess.DEVNULL, stderr=(tmp_path / f"worker{k}.log").open("wb"),
                                    env=ENV, cwd=tmp_path) for k in range(2)]
        try:
            code = master.wait(180)
            for w in workers:
                w.wait(30)
        finally:
            for p in (master, *workers):
                if p.poll() is None:
                    p.kill()
                    p.wait()
            master_log.close()
        stats = sim_stats(url)
    log = (tmp_path / "master.log").read_text(errors="replace")
    assert code == 0, log[-3000:]
    assert not divergences(out)
    rows = locust_rows(prefix)
    assert rest_count(rows) == stats["rest"]["total"] > copies * 40          # every REST request, once
    names = {r["Name"] for r in rows}
    for operation in ("POST /me/devices/{id}/calls Dial", "POST /me/calls/{id} Answer",
                      "POST /me/calls/{id} InitiateTransfer", "POST /me/calls/{id} CompleteTransfer",
                      "POST /me/chats/{id} Accept", "POST /me/chats/{id} Complete"):
        assert operation in names, sorted(names)
    assert {"REST", "COMPLETE", "NOTIFY", "BAYEUX", "SIM"} <= {r["Type"] for r in rows}
    completion = next(r for r in rows if r["Type"] == "COMPLETE" and r["Name"] == "POST /me/calls/{id} Answer")
    assert int(completion["Request Count"]) == copies * 4                     # 4 answers per copy
    report = html.read_text()
    assert "POST /me/calls/{id} CompleteTransfer" in report and "POST /me/chats/{id} Accept" in report
    con = duckdb.connect(str(out), read_only=True)
    try:
        users = {r[0] for r in con.execute("SELECT DISTINCT user_name FROM exchanges WHERE user_name LIKE 'agent%'")
                 .fetchall()}
        (options,) = con.execute("SELECT options FROM replay_runs").fetchone()
        rest_rows = con.execute("SELECT count(*) FROM exchanges WHERE path LIKE '/api/v2/%' "
                                "AND path NOT LIKE '/api/v2/notifications%'").fetchone()[0]
    finally:
        con.close()
    assert users == {f"agent{k}" for k in range(1, copies * per_copy + 1)}      # every worker's agents
    assert json.loads(options)["workers"] == 2
    assert rest_rows == stats["rest"]["total"]


@pytest.mark.skipif(not node_available(), reason="node or node_modules/cometd missing (run make node)")
def test_two_js_desktops_calling_each_other_replay_as_100_agents(tmp_path, tmp_path_factory):
    """Each copy must call its own agents: the callee's number, learned from GET /me/devices, maps per copy."""
    db = cached_capture("js-desktops", two_js_desktops, tmp_path_factory, agents=2)
    out, prefix = tmp_path / "load.duckdb", tmp_path / "stats"
    with simulator(100, tmp_path) as url:
        result = subprocess.run(gwsreplay_command() + [
            "load", "--db", str(db), "--target", url, "--users", "100", "--spawn-rate", "100", "--iterations", "1",
            "--speed", "max", "--processes", "2", "--out", str(out), "--csv", str(prefix), "--", "--only-summary"],
            capture_output=True, text=True, timeout=180, cwd=tmp_path, env=ENV)
        stats = sim_stats(url)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "100 virtual agents = 50 copies" in result.stderr
    assert not divergences(out)
    assert rest_count(locust_rows(prefix)) == stats["rest"]["total"] == 100 * 12
    con = duckdb.connect(str(out), read_only=True)
    try:
        dials = con.execute("""SELECT user_name, json_extract_string(request_body, '$.destination.phoneNumber')
                               FROM exchanges WHERE request_body->>'operationName' = 'Dial'""").fetchall()
    finally:
        con.close()
    assert len(dials) == 100
    # agentK's copy partner is agentK+1 (odd K) or agentK-1 (even K): nobody dials another copy's 7002
    for user, number in dials:
        k = int(user[len("agent"):])
        assert int(number) - 7000 == (k + 1 if k % 2 else k - 1), (user, number)


def test_more_agents_than_the_roster_is_refused_before_the_run(tmp_path, tmp_path_factory):
    db = cached_capture("js-desktops", two_js_desktops, tmp_path_factory, agents=2) if node_available() else \
        cached_capture("calls-chat", calls_transfer_and_chat, tmp_path_factory, agents=4)
    with simulator(10, tmp_path) as url:
        result = subprocess.run(gwsreplay_command() + [
            "load", "--db", str(db), "--target", url, "--users", "40", "--run-time", "5s"],
            capture_output=True, text=True, timeout=60, cwd=tmp_path, env=ENV)
        plain = subprocess.run([sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", "20",
                                "-t", "5s", "--host", url, "--capture", str(db)],
                               capture_output=True, text=True, timeout=60, cwd=tmp_path, env=ENV)
        assert sim_stats(url)["rest"]["total"] == 0                 # nothing started
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "the simulator's 10 agents" in errors[0], result.stderr
    assert plain.returncode == 2 and "the simulator's 10 agents" in plain.stderr
