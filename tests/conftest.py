"""Fixtures for the whole suite: the GWS simulator in-process or as a subprocess.

- ``sim``: a simulator on 127.0.0.1 (random port) in this test's event loop,
  with short delays (external parties answer after 0.05 s, /meta/connect is held
  2 s) so tests run fast. Default roster agent1..agent10, seed 0, CSRF on.
- ``sim_factory``: ``await sim_factory(csrf=False, seed=3, agents=2, ...)`` for
  other options; every simulator it starts is stopped at teardown.
- ``sim_process``: ``await sim_process("--agents", "3")`` runs ``gwsreplay sim
  --port 0 ...`` as a separate process (for proxies, browsers, signal tests).
- ``free_port()``: a port nothing listens on right now.

Every in-process simulator fails the test at teardown if a request reached the
last-resort error handler: the simulator must never answer a 500.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from manual_clock import ManualClock

ROOT = Path(__file__).resolve().parent.parent

SIM_DEFAULTS: dict[str, Any] = {
    "external_answer_delay": 0.05,
    "cometd_timeout_ms": 2000,
}


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (racy by nature; prefer --port 0 where possible)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _listen(host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


@dataclass
class SimServer:
    """A running in-process simulator and shortcuts to its control API."""

    url: str
    app: web.Application
    runner: web.AppRunner
    _clients: list = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def front(self):
        from gwsreplay.sim.server.app import FRONT

        return self.app[FRONT]

    @property
    def contact_center(self):
        from gwsreplay.sim.server.app import CONTACT_CENTER

        return self.app[CONTACT_CENTER]

    @property
    def cometd(self):
        from gwsreplay.sim.server.app import COMETD

        return self.app[COMETD]

    def client(self, user_name: str = "agent1", password: str = "password"):
        """A GWSClient for this simulator, closed at teardown."""
        from gwsreplay.client.rest import GWSClient

        client = GWSClient(self.url, user_name, password)
        self._clients.append(client)
        return client

    async def _control(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as http:
            async with http.request(method, self.url + path, json=body) as resp:
                return resp.status, await resp.json(content_type=None)

    async def stats(self) -> dict:
        """GET /sim/v1/stats (REST requests answered, Bayeux messages received/delivered)."""
        status, body = await self._control("GET", "/sim/v1/stats")
        assert status == 200, body
        return body

    async def state(self) -> dict:
        status, body = await self._control("GET", "/sim/v1/state")
        assert status == 200, body
        return body

    async def inject_call(self, from_number: str, to_number: str, user_data: dict | None = None) -> tuple[int, Any]:
        body: dict[str, Any] = {"from": from_number, "to": to_number}
        if user_data is not None:
            body["userData"] = user_data
        return await self._control("POST", "/sim/v1/calls", body)

    async def far_end_hangup(self, call_id: str) -> tuple[int, Any]:
        return await self._control("POST", f"/sim/v1/calls/{call_id}/hangup")

    async def set_service(self, state: str, service: str = "voice") -> tuple[int, Any]:
        return await self._control("POST", f"/sim/v1/services/{service}", {"state": state})

    async def close(self) -> None:
        for client in self._clients:
            await client.close()
        await self.runner.cleanup()


async def start_sim(*, agents: int = 10, roster=None, **options: Any) -> SimServer:
    """Start a simulator on 127.0.0.1:<random> in the running loop (make_app options pass through)."""
    from gwsreplay.sim.model.roster import Roster
    from gwsreplay.sim.server.app import make_app

    sock = _listen()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = make_app(roster or Roster.default(agents), **{"base_url": url, **SIM_DEFAULTS, **options})
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return SimServer(url=url, app=app, runner=runner)


@pytest.fixture
async def sim_factory() -> AsyncIterator[Callable[..., Awaitable[SimServer]]]:
    started: list[SimServer] = []

    async def factory(**options: Any) -> SimServer:
        server = await start_sim(**options)
        started.append(server)
        return server

    yield factory
    internal_errors = 0
    for server in started:
        internal_errors += server.front.internal_errors
        await server.close()
    assert internal_errors == 0, "the simulator hit its last-resort handler (see the logged traceback)"


@pytest.fixture
async def sim(sim_factory) -> SimServer:
    return await sim_factory()


# ---------------------------------------------------------------------- subprocess


def gwsreplay_command() -> list[str]:
    """The console script of this venv, or ``python -m gwsreplay`` if it is not installed."""
    script = Path(sys.executable).with_name("gwsreplay")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gwsreplay"]


@dataclass
class SimProcess:
    """``gwsreplay sim`` in a child process; stdout after the listening line is in ``output``."""

    url: str
    proc: asyncio.subprocess.Process
    first_line: str
    stderr_path: Path
    output: list[str] = field(default_factory=list)
    _drain: asyncio.Task | None = None

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        """Send ``sig`` and wait for the exit code (killed if it does not exit in time)."""
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._drain:
            await asyncio.wait([self._drain], timeout=1)
        return self.proc.returncode

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""


@pytest.fixture
async def sim_process(tmp_path) -> AsyncIterator[Callable[..., Awaitable[SimProcess]]]:
    started: list[SimProcess] = []

    async def factory(*args: str, timeout: float = 20) -> SimProcess:
        stderr_path = tmp_path / f"sim-{len(started)}.stderr"
        with stderr_path.open("wb") as stderr:
            proc = await asyncio.create_subprocess_exec(
                *gwsreplay_command(), "sim", "--port", "0", *args,
                stdout=asyncio.subprocess.PIPE, stderr=stderr, cwd=str(ROOT),
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        assert proc.stdout is not None
        try:
            line = (await asyncio.wait_for(proc.stdout.readline(), timeout)).decode().strip()
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise AssertionError(f"gwsreplay sim did not start: {stderr_path.read_text()}") from None
        if "listening on " not in line:
            await proc.wait()
            raise AssertionError(f"gwsreplay sim did not start: {line!r} {stderr_path.read_text()}")
        url = line.split("listening on ", 1)[1].split()[0]
        process = SimProcess(url=url, proc=proc, first_line=line, stderr_path=stderr_path)
        process._drain = asyncio.create_task(_drain(proc.stdout, process.output))
        started.append(process)
        return process

    yield factory
    for process in started:
        await process.stop()


async def _drain(stream: asyncio.StreamReader, into: list[str]) -> None:
    async for line in stream:
        into.append(line.decode(errors="replace").rstrip("\n"))


# ---------------------------------------------------------------------- a real capture, once


@pytest.fixture(scope="session")
def simulator_capture(tmp_path_factory) -> Path:
    """A capture the simulator produced: scripted agents on every channel through the capture
    proxy (both child processes), plus its replay against a fresh simulator next to it
    (NAME-replay.duckdb), as `make demo` makes them. Used by the notebook and report tests."""
    from replay_fixtures import ANSWER_DELAY, SIM_SEED, record_capture

    from gwsreplay.cli.demo_replay import replay_demo_capture
    from gwsreplay.client.agents import CHANNELS, AgentsConfig, run_agents

    agents = 4

    async def every_channel(url: str, transport: str) -> None:
        summary = await run_agents(AgentsConfig(target=url, agents=agents, duration=6, seed=4, transport=transport,
                                                think_time=0.1, talk_time=0.2, channels=CHANNELS))
        assert summary.failures == [], summary.failures

    db = record_capture(tmp_path_factory.mktemp("simulator-capture") / "agents.duckdb", agents=agents,
                        script=every_channel)
    replay_demo_capture(db, agents=agents, seed=SIM_SEED, answer_delay=ANSWER_DELAY,
                        out=db.with_name("agents-replay.duckdb"))
    return db


@pytest.fixture
def manual_clock():
    """The suite's one fake clock (tests/manual_clock.py): time moves on advance(), due timers fire in order."""
    return ManualClock()
