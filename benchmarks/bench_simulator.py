"""Simulator capacity: 1,000 logged-in agents on long-polls, notification latency at 200 ops/s.

Target (from the issue): one simulator process holds 1,000 logged-in agents with
open long-polls and delivers notifications with p99 under 50 ms at 200
operations/s, on a 2-core machine.

What it does:

1. starts ``python -m gwsreplay sim --agents N --seed 0 --host 127.0.0.1 --port <free>
   --answer-delay 0.05`` as a child process (the simulator under test, alone in its process);
2. starts ``--workers`` load-generator processes (multiprocessing, spawn; one is
   enough for the requirement's load, see benchmarks/README.md). Each
   owns a share of the agents, paired (agent1+agent2, agent3+agent4, ...), and
   logs them in as a desktop does, with bounded concurrency: ``GET /me``, CometD
   handshake, subscribe ``/v2/me/*``, ``StartContactCenterSession`` and the
   ``DeviceStateChangeMessage`` it causes. From then on every agent keeps a
   ``/meta/connect`` outstanding (a held long-poll), through the project's own
   ``GWSClient`` + ``CometdClient``;
3. drives ``--rate`` operations/s, evenly paced, for ``--warmup`` + ``--duration``
   seconds. Each operation goes to an idle pair: half are agent-state toggles
   (Ready/NotReady of one agent), half are call operations on the pair
   (A Dial B -> B Answer -> one of them Hangup, each step after the previous
   step's notifications arrived);
4. measures, for every notification an operation causes (1 for a toggle, 2 for
   each call step: both parties' CallStateChangeMessage), the time from just
   before the operation's HTTP request is handed to aiohttp to the moment the
   notification is decoded by the client (``CometdClient`` ``on_message`` hook).
   Also: request -> HTTP response, and HTTP response -> notification. The
   simulator emits synchronously while handling the request and writes the REST
   answer before the held long-poll task runs, so "response -> notification" is
   the client-side view of the server's emit -> deliver time (plus the client's
   own wake-up); it can be negative when the client happens to process the
   long-poll answer first;
5. prints p50/p90/p99/max, achieved ops/s (also as counted by the simulator's
   ``/sim/v1/stats``), errors, the simulator's CPU%, CPU-ms per operation, run-queue
   wait and RSS (``/proc/<pid>/stat`` and ``schedstat``), open long-polls, the load
   generator's own CPU and loop lag, how busy the machine was (``/proc/stat``,
   ``/proc/pressure/cpu``: the VM is shared, and competition for its 2 CPUs shows
   up directly in the p99), and a verdict against the target. Exit code 0 on PASS.

    .venv/bin/python benchmarks/bench_simulator.py [--agents 1000] [--rate 200] [--duration 30]
        [--transport long-polling|websocket] [--workers 1] [--warmup 3] [--json out.json]
        [--sim-root DIR]   # the simulator from another source tree, to A/B a patch

Everything is bounded (login, each operation, the whole run) and stays on
127.0.0.1; the child processes are stopped on exit, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import multiprocessing as mp
import os
import queue
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET_P99_MS = 50.0
TARGET_RATE = 200.0
TARGET_AGENTS = 1000
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

DEVICE = "DeviceStateChangeMessage"
CALL = "CallStateChangeMessage"
VOICE_CHANNEL = "/api/v2/me/channels/voice"


# ============================================================================ load generator (worker)


@dataclass(eq=False)
class Op:
    name: str
    t_sent: float
    measured: bool
    remaining: int = 0
    t_resp: float | None = None
    call_id: str | None = None
    arrivals: list[tuple[str, float]] = field(default_factory=list)  # (kind, t)
    done: asyncio.Future | None = None


@dataclass(eq=False)
class Expect:
    message_type: str
    state: str
    call_id: str | None  # None: any call (Dial: the id is not known yet)
    op: Op


@dataclass(eq=False)
class Agent:
    index: int  # 1-based, agentN
    name: str
    phone: str
    rest: Any = None
    cometd: Any = None
    device_id: str = ""
    ready: bool = False
    poll_open: bool = False
    pending: list[Expect] = field(default_factory=list)


@dataclass(eq=False)
class Pair:
    a: Agent
    b: Agent
    call_id: str | None = None
    ringing: bool = False  # the call is ringing at b (next: Answer), else established (next: Hangup)
    caller_hangs_up: bool = True


class _Sink:
    """Stands in for CometdClient.events: notifications are handled in the on_message hook."""

    def put_nowait(self, item: Any) -> None:
        pass


class Worker:
    def __init__(self, wid: int, base_url: str, indices: list[int], rate: float, transport: str,
                 concurrency: int, op_timeout: float, seed: int, out: Any):
        self.wid = wid
        self.base_url = base_url
        self.rate = rate
        self.transport = transport
        self.concurrency = concurrency
        self.op_timeout = op_timeout
        self.rng = random.Random(seed * 1000 + wid)
        self.out = out
        self.agents = [Agent(i, f"agent{i}", str(7000 + i)) for i in indices]
        self.pairs: list[Pair] = []
        self.measure_from = math.inf
        self.measure_to = math.inf
        self.latency: dict[str, list[float]] = {}  # kind -> request sent -> notification (ms)
        self.http_ms: list[float] = []
        self.after_response_ms: list[float] = []
        self.timeline: list[tuple[float, float]] = []  # (arrival time, request sent -> notification ms)
        self.op_counts: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.error_samples: list[str] = []
        self.unexpected = 0
        self.handshakes_out = 0
        self.notifications = 0
        self.ops_sent = 0
        self.ops_sent_measured = 0
        self.missed_ticks = 0
        self.lag_ms: list[float] = []
        self.min_polls_open = math.inf
        self.retired = 0  # pairs left out after a failed operation
        self.logged_in: list[Agent] = []
        self.idle: deque[Pair] = deque()
        self._tasks: set[asyncio.Task] = set()

    # ------------------------------------------------------------------ notifications

    def hook_for(self, agent: Agent):
        def on_message(direction: str, message: dict) -> None:
            channel = message.get("channel", "")
            if channel == "/meta/connect":
                agent.poll_open = direction == "out"
                return
            if channel.startswith("/meta/"):
                if channel == "/meta/handshake" and direction == "out":
                    self.handshakes_out += 1
                return
            if direction == "in":
                self.on_notification(agent, message, time.monotonic())
        return on_message

    def on_notification(self, agent: Agent, message: dict, t: float) -> None:
        self.notifications += 1
        data = message.get("data") or {}
        kind = data.get("messageType")
        state = call_id = None
        try:
            if kind == DEVICE:
                state = data["devices"][0]["userState"]["state"]
            elif kind == CALL and data.get("notificationType") == "StatusChange":
                state, call_id = data["call"]["state"], data["call"]["id"]
        except (KeyError, IndexError, TypeError):
            pass
        for i, exp in enumerate(agent.pending):
            if exp.message_type == kind and exp.state == state and exp.call_id in (None, call_id):
                del agent.pending[i]
                op = exp.op
                if call_id is not None:
                    op.call_id = call_id
                op.arrivals.append((state if kind == CALL else f"device {state}", t))
                op.remaining -= 1
                if op.remaining == 0 and op.done is not None and not op.done.done():
                    op.done.set_result(None)
                return
        self.unexpected += 1
        self._sample(f"unexpected notification for {agent.name}: {kind} {state}")

    # ------------------------------------------------------------------ operations

    async def operation(self, actor: Agent, name: str, path: str, body: dict,
                        expects: list[tuple[Agent, str, str, str | None]], *, measured: bool | None = None) -> Op | None:
        """Send one operation and wait for the notifications it must cause. None on any failure."""
        now = time.monotonic()
        op = Op(name, now, self.measure_from <= now < self.measure_to if measured is None else measured)
        op.done = asyncio.get_running_loop().create_future()
        registered = []
        for agent, message_type, state, call_id in expects:
            exp = Expect(message_type, state, call_id, op)
            agent.pending.append(exp)
            registered.append((agent, exp))
        op.remaining = len(registered)
        self.ops_sent += 1
        if op.measured:
            self.ops_sent_measured += 1
            self.op_counts[name] += 1
        try:
            op.t_sent = time.monotonic()
            response = await actor.rest.post(path, body)
            op.t_resp = time.monotonic()
            if response.status != 200 or response.status_code not in (0, 7):
                self._error(f"{name} refused: HTTP {response.status} {response.text[:120]}", "refused")
                return None
            if op.remaining:
                try:
                    await asyncio.wait_for(asyncio.shield(op.done), self.op_timeout)
                except asyncio.TimeoutError:
                    if op.remaining:
                        raise
        except asyncio.TimeoutError as exc:
            if op.t_resp is None:  # aiohttp's own timeouts are TimeoutErrors too
                self._error(f"{name} by {actor.name}: HTTP timeout {exc!r}", "http errors")
            else:
                self._error(f"{name} by {actor.name}: {op.remaining} notification(s) missing after "
                            f"{self.op_timeout} s", "lost notifications", op.remaining)
            return None
        except Exception as exc:  # aiohttp errors, resets: counted, never fatal
            self._error(f"{name} by {actor.name}: {type(exc).__name__}: {exc}", "http errors")
            return None
        finally:
            for agent, exp in registered:
                if exp in agent.pending:
                    agent.pending.remove(exp)
        if op.measured:
            self.http_ms.append((op.t_resp - op.t_sent) * 1000)
            for kind, t in op.arrivals:
                self.latency.setdefault(kind, []).append((t - op.t_sent) * 1000)
                self.after_response_ms.append((t - op.t_resp) * 1000)
                self.timeline.append((t, (t - op.t_sent) * 1000))
        return op

    def _error(self, text: str, bucket: str, n: int = 1) -> None:
        self.errors[bucket] += n
        self._sample(text)

    def _sample(self, text: str) -> None:
        if len(self.error_samples) < 10:
            self.error_samples.append(text)

    async def toggle(self, agent: Agent) -> bool:
        target = "NotReady" if agent.ready else "Ready"
        op = await self.operation(agent, target, VOICE_CHANNEL, {"operationName": target},
                                  [(agent, DEVICE, target, None)])
        if op is not None:
            agent.ready = not agent.ready
        return op is not None

    async def step(self, pair: Pair) -> None:
        """One operation of this pair; the pair is busy until its notifications arrived."""
        ok = False
        try:
            if pair.call_id is None:
                if self.rng.random() < 0.25:  # 0.25 -> 1 Dial + 1 Answer + 1 Hangup per 3 toggles: 50/50 mix
                    caller, callee = (pair.a, pair.b) if self.rng.random() < 0.5 else (pair.b, pair.a)
                    op = await self.operation(
                        caller, "Dial", f"/api/v2/me/devices/{caller.device_id}/calls",
                        {"operationName": "Dial", "destination": {"phoneNumber": callee.phone}},
                        [(caller, CALL, "Dialing", None), (callee, CALL, "Ringing", None)])
                    if op is not None and op.call_id:
                        pair.a, pair.b = caller, callee  # a: the caller from now on
                        pair.call_id, pair.ringing = op.call_id, True
                        pair.caller_hangs_up = self.rng.random() < 0.5
                        ok = True
                else:
                    ok = await self.toggle(pair.a if self.rng.random() < 0.5 else pair.b)
            elif pair.ringing:
                op = await self.operation(
                    pair.b, "Answer", f"/api/v2/me/calls/{pair.call_id}", {"operationName": "Answer"},
                    [(pair.b, CALL, "Established", pair.call_id), (pair.a, CALL, "Established", pair.call_id)])
                if op is not None:
                    pair.ringing = False
                    ok = True
            else:
                who, other = (pair.a, pair.b) if pair.caller_hangs_up else (pair.b, pair.a)
                op = await self.operation(
                    who, "Hangup", f"/api/v2/me/calls/{pair.call_id}", {"operationName": "Hangup"},
                    [(who, CALL, "Released", pair.call_id), (other, CALL, "Released", pair.call_id)])
                if op is not None:
                    pair.call_id = None
                    ok = True
        finally:
            if ok:
                self.idle.append(pair)
            else:  # its state is uncertain now: leave it out of the rest of the run
                self.retired += 1

    # ------------------------------------------------------------------ login

    async def login(self, agent: Agent) -> None:
        from gwsreplay.client.rest import GWSClient

        agent.rest = GWSClient(self.base_url, agent.name, "password")
        me = await agent.rest.me()
        if me.status != 200:
            raise RuntimeError(f"GET /me: HTTP {me.status} {me.text[:120]}")
        agent.device_id = me.body["user"]["devices"][0]["id"]
        agent.cometd = agent.rest.cometd(self.transport, on_message=self.hook_for(agent))
        agent.cometd.events = _Sink()
        await agent.cometd.handshake()
        await agent.cometd.subscribe("/v2/me/*")
        op = await self.operation(agent, "StartContactCenterSession", "/api/v2/me",
                                  {"operationName": "StartContactCenterSession", "channels": ["voice"]},
                                  [(agent, DEVICE, "NotReady", None)], measured=False)
        if op is None:
            raise RuntimeError("StartContactCenterSession failed or its notification never came")
        agent.ready = False

    async def login_all(self, timeout: float) -> tuple[list[Agent], list[str]]:
        sem = asyncio.Semaphore(self.concurrency)
        done: list[Agent] = []
        failures: list[str] = []

        async def one(agent: Agent) -> None:
            async with sem:
                try:
                    async with asyncio.timeout(30):
                        await self.login(agent)
                    done.append(agent)
                except Exception as exc:
                    failures.append(f"{agent.name}: {type(exc).__name__}: {exc}")
                finally:
                    self.out.put(("progress", self.wid, len(done), len(failures)))

        tasks = [asyncio.create_task(one(a)) for a in self.agents]
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            failures.append(f"{len(pending)} logins still running after {timeout} s")
            await asyncio.gather(*pending, return_exceptions=True)
        return done, failures

    # ------------------------------------------------------------------ steady load

    async def _lag_monitor(self, until: float) -> None:
        while time.monotonic() < until:
            t = time.monotonic()
            await asyncio.sleep(0.01)
            lag = (time.monotonic() - t - 0.01) * 1000
            if self.measure_from <= t < self.measure_to:
                self.lag_ms.append(lag)

    async def _ticker(self, until: float) -> None:
        while time.monotonic() < until:
            await asyncio.sleep(1.0)
            polls = sum(a.poll_open for a in self.logged_in)
            if self.measure_from <= time.monotonic() < self.measure_to:
                self.min_polls_open = min(self.min_polls_open, polls)
            self.out.put(("tick", self.wid, self.ops_sent, self.notifications, polls,
                          sum(self.errors.values()) + self.unexpected))

    async def run_load(self, t_start: float, warmup: float, duration: float) -> None:
        self.measure_from = t_start + warmup
        self.measure_to = self.measure_from + duration
        t_end = self.measure_to
        monitors = [asyncio.create_task(self._lag_monitor(t_end)), asyncio.create_task(self._ticker(t_end))]
        interval = 1.0 / self.rate
        k = 0
        while True:
            due = t_start + k * interval
            if due >= t_end:
                break
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            k += 1
            if time.monotonic() - due > 0.5:  # the generator fell half a second behind: that tick is lost
                self.missed_ticks += 1
                continue
            if not self.idle:
                self.missed_ticks += 1
                continue
            task = asyncio.create_task(self.step(self.idle.popleft()))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # let operations in flight finish (bounded by op_timeout each)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=self.op_timeout + 2)
        await asyncio.gather(*monitors, return_exceptions=True)

    def result(self, login_s: float, login_failures: list[str]) -> dict:
        return {
            "wid": self.wid,
            "agents": len(self.agents),
            "logged_in": len(self.logged_in),
            "login_s": login_s,
            "login_failures": login_failures[:10],
            "n_login_failures": len(login_failures),
            "latency": self.latency,
            "http_ms": self.http_ms,
            "after_response_ms": self.after_response_ms,
            "timeline": self.timeline,
            "op_counts": dict(self.op_counts),
            "errors": dict(self.errors),
            "error_samples": self.error_samples,
            "unexpected": self.unexpected,
            "retired": self.retired,
            "handshakes_out": self.handshakes_out,
            "ops_sent": self.ops_sent,
            "ops_sent_measured": self.ops_sent_measured,
            "missed_ticks": self.missed_ticks,
            "lag_ms": self.lag_ms,
            "polls_open": sum(a.poll_open for a in self.logged_in),
            "min_polls_open": self.min_polls_open if self.min_polls_open != math.inf else -1,
        }

    async def main(self, commands: Any, login_timeout: float) -> None:
        loop = asyncio.get_running_loop()
        t0 = time.monotonic()
        self.logged_in, failures = await self.login_all(login_timeout)
        login_s = time.monotonic() - t0
        by_index = {a.index: a for a in self.logged_in}
        for i in range(0, len(self.agents), 2):
            a, b = self.agents[i], self.agents[i + 1]
            if a.index in by_index and b.index in by_index:
                self.pairs.append(Pair(a, b))
        self.rng.shuffle(self.pairs)
        self.idle = deque(self.pairs)
        # The sessions, connectors and clients made by the ramp live until the end: keep them out of
        # the collector's way, so the generator's own GC pauses do not show up as latency.
        gc.collect()
        gc.freeze()
        self.out.put(("ready", self.wid, len(self.logged_in), failures[:5], len(failures)))
        try:
            command = await loop.run_in_executor(None, commands.get)
            if command[0] == "go":
                _, t_start, warmup, duration = command
                self.handshakes_out = 0  # from now on, any handshake is a re-handshake (402, expiry)
                await self.run_load(t_start, warmup, duration)
                self.out.put(("result", self.result(login_s, failures)))
        finally:
            await self.close_all()

    async def close_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for agent in self.agents:
            try:
                if agent.cometd is not None:
                    await agent.cometd.close()
                if agent.rest is not None:
                    await agent.rest.close()
            except Exception:
                pass


def worker_main(wid: int, base_url: str, indices: list[int], rate: float, transport: str, concurrency: int,
                op_timeout: float, login_timeout: float, seed: int, out: Any, commands: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    worker = Worker(wid, base_url, indices, rate, transport, concurrency, op_timeout, seed, out)
    try:
        asyncio.run(worker.main(commands, login_timeout))
    except Exception as exc:
        out.put(("crash", wid, f"{type(exc).__name__}: {exc}"))


# ============================================================================ parent: simulator and report


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def python_executable() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


@dataclass
class ProcSnap:
    t: float
    cpu_s: float  # user + system CPU seconds, /proc/<pid>/stat
    rss: int  # bytes
    wait_s: float  # seconds spent runnable but waiting for a CPU, /proc/<pid>/schedstat (main thread)


def proc_snap(pid: int) -> ProcSnap | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/schedstat") as f:
            wait_ns = int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    # after "comm)": fields[0] is field 3 (state); utime=14, stime=15, rss=24
    return ProcSnap(time.monotonic(), (int(fields[11]) + int(fields[12])) / CLK_TCK,
                    int(fields[21]) * PAGE_SIZE, wait_ns / 1e9)


def usage(first: ProcSnap | None, last: ProcSnap | None) -> dict:
    """CPU% of one core and run-queue wait (ms per second) between two snapshots."""
    if first is None or last is None or last.t <= first.t:
        return {"cpu_pct": math.nan, "runqueue_wait_ms_per_s": math.nan}
    span = last.t - first.t
    return {"cpu_pct": (last.cpu_s - first.cpu_s) / span * 100,
            "runqueue_wait_ms_per_s": (last.wait_s - first.wait_s) / span * 1000}


def system_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return total - idle, total


def cpu_pressure_us() -> int | None:
    """Total microseconds in which some task waited for a CPU (PSI, /proc/pressure/cpu)."""
    try:
        with open("/proc/pressure/cpu") as f:
            return int(f.readline().rsplit("total=", 1)[1])
    except (OSError, IndexError, ValueError):
        return None


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def established_connections(port: int) -> int:
    """ESTABLISHED TCP sockets whose local port is the simulator's (its accepted connections)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] == "01" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                        count += 1
        except OSError:
            pass
    return count


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summary(values: list[float]) -> dict:
    s = sorted(values)
    return {"n": len(s), "p50": percentile(s, 50), "p90": percentile(s, 90), "p99": percentile(s, 99),
            "max": s[-1] if s else math.nan}


def fmt(stats: dict) -> str:
    return (f"p50 {stats['p50']:7.2f}  p90 {stats['p90']:7.2f}  p99 {stats['p99']:7.2f}  "
            f"max {stats['max']:7.2f}  (n={stats['n']})")


class Simulator:
    """The simulator child process: started, watched through /proc, stopped with SIGINT."""

    def __init__(self, args: argparse.Namespace, logdir: Path):
        self.port = free_port()
        self.command = [python_executable(), "-m", "gwsreplay", "sim", "--agents", str(args.agents),
                        "--seed", "0", "--host", "127.0.0.1", "--port", str(self.port),
                        "--answer-delay", "0.05"]
        self.stderr_path = logdir / "simulator.stderr"
        self._stderr = open(self.stderr_path, "wb")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # `python -m` puts the working directory first on sys.path: --sim-root picks the source tree
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=self._stderr,
                                        cwd=args.sim_root, env=env)
        self.pid = self.process.pid
        self.url = self._wait_listening(timeout=60)

    def _wait_listening(self, timeout: float) -> str:
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: lines.put(self.process.stdout.readline()), daemon=True).start()
        try:
            line = lines.get(timeout=timeout).decode(errors="replace").strip()
        except queue.Empty:
            raise RuntimeError(f"the simulator printed nothing within {timeout} s") from None
        if "listening on " not in line:
            raise RuntimeError(f"the simulator did not start: {line!r}; stderr: {self.stderr_tail()}")
        return line.split("listening on ", 1)[1].split()[0]

    def stderr_tail(self, n: int = 2000) -> str:
        try:
            return self.stderr_path.read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._stderr.close()
        return self.process.returncode


def raise_fd_limit(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=TARGET_AGENTS, help="logged-in agents (even; default %(default)s)")
    ap.add_argument("--rate", type=float, default=TARGET_RATE, help="operations/s to drive (default %(default)s)")
    ap.add_argument("--duration", type=float, default=30.0, help="measured seconds (default %(default)s)")
    ap.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds of load first (default %(default)s)")
    ap.add_argument("--transport", choices=("long-polling", "websocket"), default="long-polling")
    ap.add_argument("--workers", type=int, default=1,
                    help="load-generator processes (default %(default)s; see benchmarks/README.md)")
    ap.add_argument("--concurrency", type=int, default=25, help="logins in flight per worker (default %(default)s)")
    ap.add_argument("--op-timeout", type=float, default=5.0,
                    help="seconds an operation's notifications may take before they count as lost")
    ap.add_argument("--login-timeout", type=float, default=300.0, help="bound on the whole login ramp (s)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the operation mix")
    ap.add_argument("--sim-root", metavar="DIR", default=str(ROOT),
                    help="run the simulator from this source tree (default: this checkout); "
                         "to compare a patched copy against the original")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args(argv)
    if args.agents < 2 or args.agents % 2 or args.agents > 20000:
        ap.error("--agents must be even, between 2 and 20000")
    if not 0 < args.rate <= 5000:
        ap.error("--rate must be in (0, 5000]")
    if not 0 < args.duration <= 3600 or not 0 <= args.warmup <= 600:
        ap.error("--duration must be in (0, 3600] and --warmup in [0, 600]")
    if not 1 <= args.workers <= 16 or args.workers > args.agents // 2:
        ap.error("--workers must be 1..16 and at most agents/2")
    if not 1 <= args.concurrency <= 1000 or not 0 < args.op_timeout <= 60 or not 0 < args.login_timeout <= 3600:
        ap.error("--concurrency 1..1000, --op-timeout (0, 60], --login-timeout (0, 3600]")
    return args


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    args = parse_args(argv)
    console = Console(stderr=True)
    fd_limit = raise_fd_limit(4 * args.agents + 1024)  # inherited by the simulator and the workers
    load_before = os.getloadavg()
    ctx = mp.get_context("spawn")
    results_q = ctx.Queue()
    workers: list[tuple[Any, Any]] = []
    logdir = Path(tempfile.mkdtemp(prefix="bench_simulator_"))
    sim: Simulator | None = None
    try:
        sim = Simulator(args, logdir)
        console.print(f"simulator pid {sim.pid} on {sim.url}: {' '.join(sim.command[1:])}")

        # --- workers: pairs of agents dealt round-robin, so each worker gets whole pairs
        n_pairs = args.agents // 2
        shares: list[list[int]] = [[] for _ in range(args.workers)]
        for p in range(n_pairs):
            shares[p % args.workers].extend((2 * p + 1, 2 * p + 2))
        for wid, indices in enumerate(shares):
            commands = ctx.Queue()
            proc = ctx.Process(
                target=worker_main, name=f"bench-worker-{wid}", daemon=True,
                args=(wid, sim.url, indices, args.rate * len(indices) / args.agents, args.transport,
                      args.concurrency, args.op_timeout, args.login_timeout, args.seed, results_q, commands))
            proc.start()
            workers.append((proc, commands))

        # --- login ramp
        progress_by_worker: dict[int, tuple[int, int]] = {}
        ready: dict[int, tuple] = {}
        t_login = time.monotonic()
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeElapsedColumn(), console=console, transient=False) as progress:
            bar = progress.add_task("logging in", total=args.agents)
            deadline = time.monotonic() + args.login_timeout + 60
            while len(ready) < args.workers:
                if time.monotonic() > deadline:
                    raise RuntimeError("login ramp did not finish in time")
                _check_alive(workers, sim)
                try:
                    message = results_q.get(timeout=0.5)
                except queue.Empty:
                    continue
                if message[0] == "progress":
                    progress_by_worker[message[1]] = (message[2], message[3])
                    ok = sum(v[0] for v in progress_by_worker.values())
                    bad = sum(v[1] for v in progress_by_worker.values())
                    progress.update(bar, completed=ok + bad,
                                    description=f"logging in ({bad} failed)" if bad else "logging in")
                elif message[0] == "ready":
                    ready[message[1]] = message[2:]
                elif message[0] == "crash":
                    raise RuntimeError(f"worker {message[1]} crashed: {message[2]}")
        login_wall = time.monotonic() - t_login
        logged_in = sum(r[0] for r in ready.values())
        for wid, (n, samples, n_failed) in sorted(ready.items()):
            for s in samples:
                console.print(f"[red]worker {wid} login failure:[/red] {s}")
        polls_before = established_connections(sim.port)

        # --- steady load
        stats_before = get_json(f"{sim.url}/sim/v1/stats")
        t_start = time.monotonic() + 0.5  # the workers' clocks are the same CLOCK_MONOTONIC
        for _, commands in workers:
            commands.put(("go", t_start, args.warmup, args.duration))
        measure_from, measure_to = t_start + args.warmup, t_start + args.warmup + args.duration
        watched = {"simulator": sim.pid, **{proc.name: proc.pid for proc, _ in workers}}
        window: dict[str, list[ProcSnap]] = {name: [] for name in watched}  # 1-s snapshots in the window
        sys_window: list[tuple[float, float]] = []
        sim_snaps: list[ProcSnap] = []
        ticks: dict[int, tuple] = {}
        results: list[dict] = []
        stats_after = None
        with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                      console=console, transient=False) as progress:
            bar = progress.add_task("warm-up", total=args.warmup + args.duration)
            next_sample = t_start
            while len(results) < args.workers:
                now = time.monotonic()
                if now > measure_to + args.op_timeout + 60:
                    raise RuntimeError("workers did not report in time")
                _check_alive(workers, sim, allow_exit=True)
                if now >= next_sample:
                    next_sample += 1.0
                    in_window = measure_from <= now <= measure_to + 0.5
                    for name, pid in watched.items():
                        snap = proc_snap(pid)
                        if snap is not None and name == "simulator":
                            sim_snaps.append(snap)
                        if snap is not None and in_window:
                            window[name].append(snap)
                    if in_window:
                        sys_window.append((*system_cpu(), time.monotonic(), cpu_pressure_us()))
                    if now >= measure_to and stats_after is None:
                        stats_after = get_json(f"{sim.url}/sim/v1/stats")
                        t_stats_after = time.monotonic()
                        polls_end = established_connections(sim.port)
                        fds_end = open_fds(sim.pid)
                    elapsed = min(now - t_start, args.warmup + args.duration)
                    phase = "warm-up" if now < measure_from else ("measuring" if now < measure_to else "draining")
                    cpu_now = usage(*sim_snaps[-2:])["cpu_pct"] if len(sim_snaps) > 1 else 0.0
                    progress.update(bar, completed=max(0.0, elapsed), description=(
                        f"{phase:9s} ops {sum(t[0] for t in ticks.values()):6d}  "
                        f"notifs {sum(t[1] for t in ticks.values()):6d}  "
                        f"polls {sum(t[2] for t in ticks.values()):5d}  errors {sum(t[3] for t in ticks.values()):3d}  "
                        f"sim CPU {cpu_now:5.1f}%"))
                try:
                    message = results_q.get(timeout=0.2)
                except queue.Empty:
                    continue
                if message[0] == "tick":
                    ticks[message[1]] = message[2:]
                elif message[0] == "result":
                    results.append(message[1])
                elif message[0] == "crash":
                    raise RuntimeError(f"worker {message[1]} crashed: {message[2]}")
        if stats_after is None:
            stats_after = get_json(f"{sim.url}/sim/v1/stats")
            t_stats_after = time.monotonic()
            polls_end = established_connections(sim.port)
            fds_end = open_fds(sim.pid)

        report = build_report(args, sim, results, window, sim_snaps, sys_window, stats_before, stats_after,
                              polls_before, polls_end, fds_end, logged_in, login_wall, load_before, fd_limit,
                              t_stats_after - t_start)
        print_report(report)
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=2, default=str))
        return 0 if report["verdict"]["pass"] else 1
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]")
        return 130
    finally:
        for proc, commands in workers:
            try:
                commands.put(("quit",))
            except Exception:
                pass
        for proc, _ in workers:
            proc.join(timeout=15)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
        keep_log = False
        if sim is not None:
            code = sim.stop()
            errors = sim.stderr_tail()
            if code not in (0, None) or "Traceback" in errors or "ERROR" in errors:
                keep_log = True
                console.print(f"[red]simulator exited with {code}; its stderr ({sim.stderr_path}):[/red]\n{errors}")
        if not keep_log:
            shutil.rmtree(logdir, ignore_errors=True)


def _check_alive(workers: list, sim: Simulator, allow_exit: bool = False) -> None:
    if sim.process.poll() is not None:
        raise RuntimeError(f"the simulator exited with {sim.process.returncode}: {sim.stderr_tail()}")
    for proc, _ in workers:
        if not proc.is_alive() and not (allow_exit and proc.exitcode == 0):
            raise RuntimeError(f"{proc.name} exited with {proc.exitcode}")


def build_report(args, sim, results, window, sim_snaps, sys_window, stats_before, stats_after, polls_before,
                 polls_end, fds_end, logged_in, login_wall, load_before, fd_limit, stats_span) -> dict:
    merged: dict[str, list[float]] = {}
    for r in results:
        for kind, values in r["latency"].items():
            merged.setdefault(kind, []).extend(values)
    all_notif = [v for values in merged.values() for v in values]
    http_ms = [v for r in results for v in r["http_ms"]]
    after = [v for r in results for v in r["after_response_ms"]]
    lag = [v for r in results for v in r["lag_ms"]]
    errors: Counter[str] = Counter()
    for r in results:
        errors.update(r["errors"])
    unexpected = sum(r["unexpected"] for r in results)
    handshakes = sum(r["handshakes_out"] for r in results)
    op_counts: Counter[str] = Counter()
    for r in results:
        op_counts.update(r["op_counts"])
    ops_measured = sum(r["ops_sent_measured"] for r in results)
    achieved = ops_measured / args.duration
    rest_delta = stats_after["rest"]["total"] - stats_before["rest"]["total"]
    bayeux_delta = stats_after["bayeux"]["delivered"]["total"] - stats_before["bayeux"]["delivered"]["total"]
    sim_window = window["simulator"]
    sim_usage = usage(sim_window[0] if sim_window else None, sim_window[-1] if sim_window else None)
    per_second = [usage(x, y)["cpu_pct"] for x, y in zip(sim_window, sim_window[1:])]
    worker_usage = {name: usage(snaps[0], snaps[-1]) for name, snaps in window.items()
                    if name != "simulator" and snaps}
    machine_busy = ((sys_window[-1][0] - sys_window[0][0]) / (sys_window[-1][1] - sys_window[0][1])
                    * 100 * os.cpu_count() if len(sys_window) > 1 else math.nan)
    pressure = ((sys_window[-1][3] - sys_window[0][3]) / 1e6 / (sys_window[-1][2] - sys_window[0][2]) * 100
                if len(sys_window) > 1 and sys_window[0][3] is not None else math.nan)
    # Latency in the seconds when nothing waited for a CPU much (PSI "some" < 10% in that second):
    # what the simulator and the client do without other processes competing for the 2 cores.
    quiet_seconds = []
    for x, y in zip(sys_window, sys_window[1:]):
        if x[3] is not None and y[3] is not None and (y[3] - x[3]) / 1e6 / (y[2] - x[2]) < 0.10:
            quiet_seconds.append((x[2], y[2]))
    quiet_latency = [ms for r in results for t, ms in r["timeline"]
                     if any(a <= t < b for a, b in quiet_seconds)]
    polls_open = sum(r["polls_open"] for r in results)
    min_polls = sum(r["min_polls_open"] for r in results)
    total_errors = sum(errors.values()) + unexpected + handshakes
    notif = summary(all_notif)
    verdict_checks = {
        "all agents logged in": logged_in == args.agents,
        "long-polls open at the end": polls_open == logged_in,
        f"rate >= 98% of {args.rate:g} ops/s": achieved >= 0.98 * args.rate,
        "no errors": total_errors == 0,
        f"p99 < {TARGET_P99_MS:g} ms": notif["p99"] < TARGET_P99_MS,
    }
    meets_issue = (args.agents >= TARGET_AGENTS and args.rate >= TARGET_RATE
                   and args.transport == "long-polling" and all(verdict_checks.values()))
    return {
        "command": " ".join(["gwsreplay"] + sim.command[3:]),
        "sim_root": args.sim_root,
        "simulator_pid": sim.pid,
        "setup": {"agents": args.agents, "rate": args.rate, "duration": args.duration, "warmup": args.warmup,
                  "transport": args.transport, "workers": args.workers, "cpus": os.cpu_count(),
                  "loadavg_before": load_before, "fd_limit": fd_limit},
        "login": {"logged_in": logged_in, "wall_s": login_wall,
                  "failures": sum(r["n_login_failures"] for r in results),
                  "failure_samples": [s for r in results for s in r["login_failures"]][:5]},
        "ops": {"measured": ops_measured, "achieved_per_s": achieved, "by_name": dict(op_counts),
                "missed_ticks": sum(r["missed_ticks"] for r in results),
                "server_rest_per_s": rest_delta / stats_span},
        "errors": {**dict(errors), "unexpected notifications": unexpected,
                   "re-handshakes": handshakes, "total": total_errors,
                   "pairs retired": sum(r["retired"] for r in results),
                   "samples": [s for r in results for s in r["error_samples"]][:8]},
        "latency_ms": {"notification": notif,
                       "by_kind": {kind: summary(values) for kind, values in sorted(merged.items())},
                       "http_response": summary(http_ms),
                       "response_to_notification": summary(after),
                       "notification_in_quiet_seconds": summary(quiet_latency)},
        "quiet_seconds": len(quiet_seconds),
        "window_seconds": max(0, len(sys_window) - 1),
        "notifications_per_s": len(all_notif) / args.duration,
        "server_bayeux_delivered": bayeux_delta,
        "long_polls": {"open_at_end": polls_open, "min_during_run": min_polls,
                       "server_tcp_connections_before": polls_before, "server_tcp_connections_end": polls_end},
        "simulator": {"cpu_pct_avg": sim_usage["cpu_pct"],
                      "cpu_ms_per_op": sim_usage["cpu_pct"] * 10 / achieved if achieved else math.nan,
                      "cpu_pct_max_1s": max(per_second, default=math.nan),
                      "runqueue_wait_ms_per_s": sim_usage["runqueue_wait_ms_per_s"],
                      "rss_mb_max": max((x.rss for x in sim_snaps), default=0) / 2**20,
                      "open_fds": fds_end},
        "load_generator": {"workers": worker_usage, "loop_lag_ms": summary(lag)},
        "machine_busy_pct_of_one_core": machine_busy,
        "cpu_pressure_some_pct": pressure,
        "verdict": {"pass": meets_issue, "checks": verdict_checks},
    }


def print_report(r: dict) -> None:
    s, lat = r["setup"], r["latency_ms"]
    print()
    print("== gwsreplay simulator benchmark ==")
    print(f"simulator      : {r['command']}  (pid {r['simulator_pid']}"
          + (f", from {r['sim_root']})" if Path(r["sim_root"]).resolve() != ROOT else ")"))
    print(f"load generator : {s['workers']} process(es), {s['transport']}, target {s['rate']:g} ops/s, "
          f"{s['duration']:g} s measured after {s['warmup']:g} s warm-up")
    print(f"machine        : {s['cpus']} CPUs, load average before start {s['loadavg_before'][0]:.2f}, "
          f"fd limit {s['fd_limit']}")
    lg = r["login"]
    print(f"login          : {lg['logged_in']}/{s['agents']} agents in {lg['wall_s']:.1f} s "
          f"({lg['logged_in'] / max(lg['wall_s'], 1e-9):.0f}/s), {lg['failures']} failed")
    for sample in lg["failure_samples"]:
        print(f"                 {sample}")
    ops = r["ops"]
    print(f"operations     : {ops['measured']} in the measured window = {ops['achieved_per_s']:.1f} ops/s "
          f"(simulator counted {ops['server_rest_per_s']:.1f} REST requests/s, warm-up included), "
          f"missed ticks {ops['missed_ticks']}")
    print("mix            : " + ", ".join(f"{k} {v}" for k, v in sorted(ops["by_name"].items())))
    e = r["errors"]
    print(f"errors         : {e['total']} (" + ", ".join(
        f"{k} {v}" for k, v in e.items() if k not in ("total", "samples")) + ")")
    for sample in e["samples"]:
        print(f"                 {sample}")
    print(f"notifications  : {lat['notification']['n']} matched in the window ({r['notifications_per_s']:.0f}/s); "
          f"simulator delivered {r['server_bayeux_delivered']} Bayeux messages (events + meta replies)")
    print("latency (ms), request sent -> notification received at the client:")
    print(f"  all            : {fmt(lat['notification'])}")
    for kind, st in lat["by_kind"].items():
        print(f"  {kind:15s}: {fmt(st)}")
    print(f"latency (ms), request sent -> HTTP response : {fmt(lat['http_response'])}")
    print(f"latency (ms), HTTP response -> notification : {fmt(lat['response_to_notification'])}")
    print(f"latency (ms), request sent -> notification, only the {r['quiet_seconds']} of {r['window_seconds']} "
          f"seconds with CPU pressure < 10%: {fmt(lat['notification_in_quiet_seconds'])}")
    lp = r["long_polls"]
    print(f"long-polls     : {lp['open_at_end']} /meta/connect outstanding at the end (min {lp['min_during_run']} "
          f"during the window); simulator TCP connections {lp['server_tcp_connections_before']} before, "
          f"{lp['server_tcp_connections_end']} at the end")
    sm = r["simulator"]
    print(f"simulator      : CPU {sm['cpu_pct_avg']:.1f}% of one core (max 1-s {sm['cpu_pct_max_1s']:.1f}%), "
          f"{sm['cpu_ms_per_op']:.2f} CPU-ms per operation, waiting for a CPU {sm['runqueue_wait_ms_per_s']:.0f} ms/s, "
          f"RSS max {sm['rss_mb_max']:.0f} MB, open fds {sm['open_fds']}")
    lgen = r["load_generator"]
    print("load generator : CPU " + " + ".join(f"{u['cpu_pct']:.0f}%" for u in lgen["workers"].values())
          + " of one core, waiting for a CPU " + " + ".join(
              f"{u['runqueue_wait_ms_per_s']:.0f}" for u in lgen["workers"].values()) + " ms/s")
    print(f"                 event-loop lag (ms) {fmt(lgen['loop_lag_ms'])}")
    others = (r["machine_busy_pct_of_one_core"] - sm["cpu_pct_avg"]
              - sum(u["cpu_pct"] for u in lgen["workers"].values()))
    print(f"machine        : {r['machine_busy_pct_of_one_core']:.0f}% busy of {s['cpus'] * 100}% "
          f"(simulator + load generator + {others:.0f}% other processes); "
          f"CPU pressure: some task waited for a CPU {r['cpu_pressure_some_pct']:.0f}% of the time")
    if others > 25 or r["cpu_pressure_some_pct"] > 20:
        print(f"WARNING        : other processes used {others:.0f}% of a core during the window and tasks waited "
              f"for a CPU {r['cpu_pressure_some_pct']:.0f}% of the time: these latencies include that contention; "
              f"rerun on a quiet machine to judge the simulator alone")
    v = r["verdict"]
    failed = [name for name, ok in v["checks"].items() if not ok]
    p99 = lat["notification"]["p99"]
    if v["pass"]:
        print(f"verdict        : PASS - p99 {p99:.1f} ms < {TARGET_P99_MS:g} ms at {ops['achieved_per_s']:.0f} ops/s "
              f"with {lg['logged_in']} agents holding long-polls")
    else:
        why = ", ".join(failed) if failed else "run below the issue's load (agents/rate/transport)"
        print(f"verdict        : FAIL ({why}) - p99 {p99:.1f} ms at {ops['achieved_per_s']:.0f} ops/s "
              f"with {lg['logged_in']} agents; target p99 < {TARGET_P99_MS:g} ms at {TARGET_RATE:g} ops/s "
              f"with {TARGET_AGENTS} agents")


if __name__ == "__main__":
    sys.exit(main())
