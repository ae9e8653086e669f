"""Captures to replay, made the way a user makes them: simulator + capture proxy + desktops.

`record_capture(path, transport)` starts ``gwsreplay sim`` and ``gwsreplay
record`` as child processes, drives a fixed scripted session through the proxy
(three Desktops, no randomness), and stops the proxy with SIGINT so the file is
complete. The script covers what replay has to get right:

* agent1 <-> agent2: Dial, Answer, Hold, Retrieve, Hangup (causality across sessions);
* an inbound call injected through the control API (through the proxy, so the
  capture holds it), answered, AttachUserData, then the far end hangs up;
* an outbound call to an external number (established by the simulator's timer),
  SendDtmf, Hangup; a Not Ready break with a reason code; AfterCallWork;
* agent3: a consult transfer from agent1 (InitiateTransfer, CompleteTransfer).

Used by tests/test_replay_*.py, tests/test_mock_*.py, tests/test_load_locust.py and benchmarks/bench_load_locust.py.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import threading
from pathlib import Path

import aiohttp

from gwsreplay.client.desktop import Desktop
from gwsreplay.cli.processes import free_port, gwsreplay_command, stop, wait_http

SIM_AGENTS = 4
SIM_SEED = 0
ANSWER_DELAY = 0.05


async def scripted_session(url: str, transport: str = "long-polling") -> None:
    """The fixed desktop script, against `url` (the capture proxy)."""
    a1, a2, a3 = (Desktop(url, f"agent{k}", transport=transport) for k in (1, 2, 3))
    control = aiohttp.ClientSession()
    try:
        for desktop in (a1, a2, a3):
            await desktop.login()
            await desktop.agent_state("Ready")
            await desktop.wait_device(lambda d: d.get("userState", {}).get("state") == "Ready")

        # agent1 calls agent2
        await a1.dial("7002")
        ringing = await a2.wait_call(lambda c: c["state"] == "Ringing")
        await a2.call_op(ringing["id"], "Answer")
        call = await a1.wait_call(lambda c: c["state"] == "Established")
        await a2.wait_call(lambda c: c["id"] == ringing["id"] and c["state"] == "Established")
        await a2.call_op(ringing["id"], "Hold")
        await a2.wait_call(lambda c: c["id"] == ringing["id"] and c["state"] == "Held")
        await a2.call_op(ringing["id"], "Retrieve")
        await a2.wait_call(lambda c: c["id"] == ringing["id"] and c["state"] == "Established")
        await a1.call_op(call["id"], "Hangup")
        await a1.wait_call(lambda c: c["id"] == call["id"] and c["state"] == "Released")
        await a2.wait_call(lambda c: c["id"] == ringing["id"] and c["state"] == "Released")
        a1.forget_released(), a2.forget_released()

        # a customer calls agent1, then hangs up
        async with control.post(url + "/sim/v1/calls", json={"from": "5551234", "to": "7001",
                                                             "userData": {"Segment": "Gold"}}) as r:
            injected = await r.json()
        inbound = await a1.wait_call(lambda c: c["state"] == "Ringing")
        await a1.call_op(inbound["id"], "Answer")
        await a1.wait_call(lambda c: c["id"] == inbound["id"] and c["state"] == "Established")
        await a1.call_op(inbound["id"], "AttachUserData", userData={"AccountNumber": "12345"})
        await a1.wait_call(lambda c: c["id"] == inbound["id"] and (c.get("userData") or {}).get("AccountNumber"))
        async with control.post(f"{url}/sim/v1/calls/{injected['id']}/hangup") as r:
            await r.read()
        await a1.wait_call(lambda c: c["id"] == inbound["id"] and c["state"] == "Released")
        a1.forget_released()
        await a1.agent_state("AfterCallWork")
        await a1.wait_device(lambda d: d.get("userState", {}).get("workMode") == "AfterCallWork")

        # agent2 calls out, sends a digit, hangs up; then takes a break
        await a2.dial("15550001")
        out = await a2.wait_call(lambda c: c["state"] == "Established")
        await a2.call_op(out["id"], "SendDtmf", digits="5")
        await a2.call_op(out["id"], "Hangup")
        await a2.wait_call(lambda c: c["id"] == out["id"] and c["state"] == "Released")
        a2.forget_released()
        await a2.agent_state("NotReady", reasonCode="Break")
        await a2.wait_device(lambda d: d.get("userState", {}).get("state") == "NotReady")

        # agent1 takes a customer and transfers it to agent3 after consulting
        await a1.agent_state("Ready")
        await a1.wait_device(lambda d: d.get("userState", {}).get("state") == "Ready")
        async with control.post(url + "/sim/v1/calls", json={"from": "5559876", "to": "7001"}) as r:
            await r.read()
        customer = await a1.wait_call(lambda c: c["state"] == "Ringing")
        await a1.call_op(customer["id"], "Answer")
        await a1.wait_call(lambda c: c["id"] == customer["id"] and c["state"] == "Established")
        await a1.call_op(customer["id"], "InitiateTransfer", destination={"phoneNumber": "7003"})
        consult_ring = await a3.wait_call(lambda c: c["state"] == "Ringing")
        await a3.call_op(consult_ring["id"], "Answer")
        consult = await a1.wait_call(lambda c: c["id"] != customer["id"] and c["state"] == "Established")
        await a1.call_op(consult["id"], "CompleteTransfer")
        await a1.wait_call(lambda c: c["id"] == customer["id"] and c["state"] == "Released")
        await a1.wait_call(lambda c: c["id"] == consult["id"] and c["state"] == "Released")
        transferred = await a3.wait_call(lambda c: c["id"] == customer["id"] and c["state"] == "Established")
        await a3.call_op(transferred["id"], "Hangup")
        await a3.wait_call(lambda c: c["id"] == customer["id"] and c["state"] == "Released")
    finally:
        for desktop in (a1, a2, a3):
            await desktop.logout()
        await control.close()


async def media_session(url: str, transport: str = "long-polling") -> None:
    """Two agents on every channel: a chat, an email, a workitem, and an IM between them."""
    import random

    from gwsreplay.client.control import ControlApi
    from gwsreplay.client.media_scenarios import (InteractionMirror, Pace, chat_scenario, email_scenario, im_initiator,
                                            im_responder, media_ready, workitem_scenario)

    channels = ("voice", "chat", "email", "workitem", "im")
    a1, a2 = (Desktop(url, f"agent{k}", transport=transport) for k in (1, 2))
    async with aiohttp.ClientSession() as http:
        control = ControlApi(url, http)
        try:
            for desktop in (a1, a2):
                await desktop.login(channels=channels)
                await media_ready(desktop, channels)
            m1, m2 = InteractionMirror(a1), InteractionMirror(a2)
            pace = Pace(random.Random(7), think_time=0.05, talk_time=0.05)
            await chat_scenario(a1, m1, control, pace)
            await workitem_scenario(a2, m2, control, pace)
            await email_scenario(a1, m1, control, pace)
            await asyncio.gather(im_initiator(a1, m1, "7002", pace), im_responder(a2, m2, pace, timeout=10))
        finally:
            for desktop in (a1, a2):
                await desktop.logout()


def record_capture(db: Path, transport: str = "long-polling", *, agents: int = SIM_AGENTS, seed: int = SIM_SEED,
                   script=scripted_session) -> Path:
    """Simulator + capture proxy as child processes, the script through the proxy, SIGINT to flush."""
    db = Path(db)
    for stale in (db, Path(str(db) + ".wal")):
        stale.unlink(missing_ok=True)
    sim_port, proxy_port = free_port(), free_port()
    sim_url, proxy_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{proxy_port}"
    logs = db.with_suffix(".log").open("wb")
    sim = subprocess.Popen(gwsreplay_command() + [
        "sim", "--port", str(sim_port), "--agents", str(agents), "--seed", str(seed),
        "--answer-delay", str(ANSWER_DELAY)], stdout=logs, stderr=subprocess.STDOUT)
    proxy = None
    try:
        wait_http(f"{sim_url}/api/v2/diagnostics/version", process=sim)
        proxy = subprocess.Popen(gwsreplay_command() + [
            "record", "--upstream", sim_url, "--listen-port", str(proxy_port), "--db", str(db), "--quiet"],
            stdout=logs, stderr=subprocess.STDOUT)
        # the readiness probe goes to the simulator, not through the proxy: no stray exchange
        _wait_port(proxy_port, proxy)
        _in_thread(script(proxy_url, transport))
    finally:
        if proxy is not None:
            stop(proxy, signal.SIGINT)
        stop(sim, signal.SIGINT)
        logs.close()
    return db


def _wait_port(port: int, process: subprocess.Popen, timeout: float = 30.0) -> None:
    import socket
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gwsreplay record exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the capture proxy did not listen on {port}")


def _in_thread(coro) -> None:
    """Run a coroutine to completion on its own loop in a thread (safe from inside pytest-asyncio)."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(120)
    if errors:
        raise errors[0]


# ----------------------------------------------------------------------------- shared, made once

_CACHE: dict[str, Path] = {}
_DIR: Path | None = None


def capture(transport: str = "long-polling", script: str = "voice") -> Path:
    """The scripted capture (`voice`: scripted_session, `media`: media_session) for `transport`,
    recorded once per test session (in a temp dir)."""
    global _DIR
    key = f"{script}-{transport}"
    if key not in _CACHE:
        if _DIR is None:
            import atexit
            import shutil
            import tempfile

            _DIR = Path(tempfile.mkdtemp(prefix="gwsreplay-captures-"))
            atexit.register(shutil.rmtree, _DIR, True)
        _CACHE[key] = record_capture(_DIR / f"{key}.duckdb", transport,
                                     script=media_session if script == "media" else scripted_session)
    return _CACHE[key]
