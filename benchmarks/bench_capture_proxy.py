"""Proxy throughput: bare mitmdump, mitmdump -w, and the capture addon (thread and process writer), in one run.

Same upstream (the simulator, ``gwsreplay sim``, in a child process), same client load
(an aiohttp load generator in this process: a bounded number of requests at a bounded
concurrency), four proxies in reverse mode, each started once: bare ``mitmdump``,
``mitmdump -w FILE`` (mitmproxy's own flow recorder), the capture addon with
``capture_writer=thread`` (the writer threads in mitmproxy's process, as before) and with
``capture_writer=process`` (the writer in a child process). The measured rounds rotate the
order (A B C D, D C B A, B C D A, ...) so that machine noise falls on all of them, and each
proxy's figure is compared with bare mitmdump's of the same round (median of per-round
ratios).

Load mix, per 10 requests: 4 x ``GET /api/v2/diagnostics/version`` (no auth),
2 x ``GET /api/v2/me`` and 4 x ``POST /api/v2/me/channels/voice`` Ready/NotReady
(Basic auth, session cookie, CSRF token), spread over the agents. During every round a
few agents keep CometD long-polls open through the proxy under test (handshake,
``/v2/me/*``, ``/meta/connect`` loop), so the device notifications the POSTs cause flow
through it too and the addon records them. The long-poll traffic is not counted in the
requests/s.

Printed: requests/s per round and proxy, each proxy's ratio to bare beside its old value
(target for the process writer >= 0.95), the proxy processes' CPU per request (by thread,
and the writer process's), the client-side latency of each proxy at concurrency 1 (p50,
p99), and the load average. At the end the captures are closed (SIGINT) and checked:
every measured exchange recorded, nothing dropped.

    .venv/bin/python benchmarks/bench_capture_proxy.py [--requests 4000] [--concurrency 32]
        [--rounds 5] [--latency-requests 1500] [--agents 20] [--long-polls 4]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import os
import pickle
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import duckdb
from mitmproxy.test import tflow

from gwsreplay.capture.writer import CaptureWriter
from gwsreplay.capture.writer_child import pack
from gwsreplay.capture.writer_process import ProcessWriter
from gwsreplay.proxy.capture import Capture

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
MITMDUMP = BIN / "mitmdump"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                r.read()
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def thread_cpu(pid: int) -> dict[tuple[int, str], float]:
    """CPU seconds of each thread of a process ((tid, name) -> utime + stime)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        out[(int(tid), name)] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def by_role(pid: int, before: dict, after: dict) -> dict[str, float]:
    """CPU seconds per role between two thread_cpu() readings: event loop, capture threads, others."""
    roles: dict[str, float] = {}
    for (tid, name), cpu in after.items():
        role = "loop" if tid == pid else name if name.startswith("gws-") else "other threads"
        roles[role] = roles.get(role, 0.0) + cpu - before.get((tid, name), 0.0)
    return roles


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (and its reaped children) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / CLK_TCK


@dataclass
class Proc:
    name: str
    url: str
    proc: subprocess.Popen
    log: Path


def start(name: str, cmd: list[str], port: int, log: Path) -> Proc:
    proc = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/api/v2/diagnostics/version")
    return Proc(name, url, proc, log)


@dataclass
class Agent:
    user: str
    authorization: str
    cookie: str = ""
    csrf: str = ""
    next_ready: bool = True

    def headers(self, unsafe: bool = False) -> dict[str, str]:
        h = {"Authorization": self.authorization, "Cookie": self.cookie}
        if unsafe:
            h["X-CSRF-TOKEN"] = self.csrf
            h["Content-Type"] = "application/json"
        return h


async def login(http: aiohttp.ClientSession, base: str, agent: Agent) -> None:
    async with http.get(base + "/api/v2/me", headers={"Authorization": agent.authorization}) as r:
        await r.read()
        assert r.status == 200, r.status
        agent.cookie = "; ".join(f"{k}={v.value}" for k, v in r.cookies.items())
        agent.csrf = r.headers.get("X-CSRF-TOKEN", "")
    async with http.post(base + "/api/v2/me", json={"operationName": "StartContactCenterSession",
                                                   "channels": ["voice"]}, headers=agent.headers(True)) as r:
        await r.read()
        assert r.status == 200, await r.text()


def request_for(i: int, agents: list[Agent]) -> tuple[str, str, Agent | None, dict | None]:
    kind = i % 10
    agent = agents[(i // 10) % len(agents)]
    if kind < 4:
        return "GET", "/api/v2/diagnostics/version", None, None
    if kind < 6:
        return "GET", "/api/v2/me", agent, None
    op = "Ready" if agent.next_ready else "NotReady"
    agent.next_ready = not agent.next_ready
    return "POST", "/api/v2/me/channels/voice", agent, {"operationName": op}


async def load(http: aiohttp.ClientSession, base: str, agents: list[Agent], n: int, concurrency: int,
               offset: int = 0) -> tuple[float, list[float], int]:
    """n requests at most ``concurrency`` at a time; returns (seconds, latencies in ms, errors)."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(offset, offset + n))

    async def worker() -> None:
        nonlocal errors
        for i in counter:
            method, path, agent, body = request_for(i, agents)
            headers = agent.headers(method == "POST") if agent else {}
            t = time.perf_counter()
            try:
                async with http.request(method, base + path, json=body, headers=headers) as r:
                    await r.read()
                    if r.status != 200:
                        errors += 1
            except aiohttp.ClientError:
                errors += 1
            latencies.append((time.perf_counter() - t) * 1000)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - t0, latencies, errors


class LongPolls:
    """A few agents with a CometD long-poll session open through one proxy."""

    def __init__(self, base: str, users: list[str]) -> None:
        self.base, self.users = base, users
        self.clients: list = []
        self.cometds: list = []
        self.received = 0

    async def __aenter__(self) -> "LongPolls":
        from gwsreplay.client.rest import GWSClient

        for user in self.users:
            client = GWSClient(self.base, user, "password")
            assert (await client.me()).ok
            cometd = client.cometd("long-polling")
            await cometd.__aenter__()
            await cometd.handshake()
            await cometd.subscribe("/v2/me/*")
            self.clients.append(client)
            self.cometds.append(cometd)
        return self

    async def __aexit__(self, *exc) -> None:
        for cometd in self.cometds:
            try:
                await asyncio.wait_for(cometd.disconnect(), 10)
            except Exception:  # noqa: BLE001
                pass
            await cometd.__aexit__(None, None, None)
        for client in self.clients:
            await client.close()


NAMES = ("bare", "flowfile", "thread", "process")
LABELS = {"bare": "bare mitmdump", "flowfile": "mitmdump -w", "thread": "addon, thread writer",
          "process": "addon, process writer"}
# ratio to bare mitmdump before the process writer (docs/performance.md, issue 15): the addon
# 0.80-0.85 (its writer threads in mitmproxy's process), mitmdump -w 0.77
OLD_RATIO = {"flowfile": "0.77", "thread": "0.80-0.85", "process": "(new)"}
TARGET = 0.95


def _dict_of_lists() -> dict[str, list]:
    return {n: [] for n in NAMES}


@dataclass
class Figures:
    rps: dict[str, list[float]] = field(default_factory=_dict_of_lists)
    cpu_ms: dict[str, list[float]] = field(default_factory=_dict_of_lists)
    main_ms: dict[str, list[float]] = field(default_factory=_dict_of_lists)
    roles: dict[str, list[dict]] = field(default_factory=_dict_of_lists)
    lat: dict[str, list[float]] = field(default_factory=_dict_of_lists)
    errors: int = 0
    requests: dict[str, int] = field(default_factory=lambda: {n: 0 for n in NAMES})
    load: list[float] = field(default_factory=list)


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (the writer process of the process writer)."""
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            out += [int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
        except OSError:
            pass
    return out


def proc_cpu(pid: int) -> tuple[float, dict, dict[int, float]]:
    """(process CPU, per-thread CPU, each child's CPU) now."""
    return cpu_seconds(pid), thread_cpu(pid), {c: cpu_seconds(c) for c in children(pid)}


def pin(pid: int, cpus: set[int]) -> None:
    """Every thread of ``pid`` onto ``cpus`` (sched_setaffinity acts on one thread at a time)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except OSError:
            pass


def pin_all(procs: dict[str, "Proc"]) -> str:
    """--pin: each proxy's own process on CPU 0, everything else (upstream, load generator, the
    writer process) on CPU 1: a proxy with a core of its own and a spare core for the rest, as on
    a proxy host with cores to spare, instead of everything competing for both cores."""
    for name in NAMES:
        pin(procs[name].proc.pid, {0})
        for child in children(procs[name].proc.pid):
            pin(child, {1})
    pin(procs["sim"].proc.pid, {1})
    pin(os.getpid(), {1})
    return "pinned: proxies on CPU 0; upstream, load generator and writer process on CPU 1"


def hook_cost(n: int = 20_000) -> dict[str, tuple[float, float]]:
    """CPU µs per flow of the addon's request + response hooks (record built and submitted) on the
    event loop, in this process over mitmproxy test flows, GC off; and for the process writer the
    sender's pack + pickle per record. Nothing leaves the buffer (writers not started)."""
    flows = []
    for _ in range(n):
        f = tflow.tflow(resp=True)
        f.request.headers["Authorization"] = "Basic YWdlbnQxOnB3"
        f.request.headers["Cookie"] = "JSESSIONID=abc"
        f.response.content = b'{"statusCode":0,"user":{"userName":"agent1"}}'
        flows.append(f)
    out = {}
    with tempfile.TemporaryDirectory() as d:
        for name, cls in (("thread", CaptureWriter), ("process", ProcessWriter)):
            for f in flows:
                f.metadata.clear()
            cap = Capture()
            cap.writer = w = cls(Path(d) / f"{name}.duckdb", max_queue=n + 10)
            gc.disable()
            try:
                c0 = time.thread_time()
                for f in flows:
                    cap.request(f)
                    cap.response(f)
                hooks = (time.thread_time() - c0) / n * 1e6
                send = 0.0
                if name == "process":
                    recs = list(w._buf)
                    c0 = time.thread_time()
                    for k in range(0, len(recs), 1000):
                        pickle.dumps(("records", [pack(r) for r in recs[k:k + 1000]]), protocol=5)
                    send = (time.thread_time() - c0) / len(recs) * 1e6
            finally:
                gc.enable()
            w.start()
            w.close()
            out[name] = (hooks, send)
    return out


def order_of(r: int) -> tuple[str, ...]:
    """Round r's order: rotated by r, reversed every other round (each proxy in each position)."""
    k = r // 2 % len(NAMES)
    rot = NAMES[k:] + NAMES[:k]
    return rot if r % 2 == 0 else tuple(reversed(rot))


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    if not v:
        return float("nan")
    k = (len(v) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


async def run(args: argparse.Namespace, procs: dict[str, Proc], upstream: str) -> Figures:
    fig = Figures()
    agents = [Agent(f"agent{k}", "Basic " + base64.b64encode(f"agent{k}:password".encode()).decode())
              for k in range(1, args.agents + 1)]
    connector = aiohttp.TCPConnector(limit=args.concurrency + 4)
    async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                     timeout=aiohttp.ClientTimeout(total=60)) as http:
        for agent in agents:
            await login(http, upstream, agent)
        poll_users = [a.user for a in agents[: args.long_polls]]
        # warm-up: every proxy, both connections pools, JIT-free but caches and sockets
        for name in NAMES:
            await load(http, procs[name].url, agents, 500, args.concurrency)
        offset = 0
        print(f"throughput: {args.requests} requests per round at concurrency {args.concurrency}, "
              f"{args.long_polls} long-polls open, {args.rounds} rounds per proxy (order rotated)")
        for r in range(args.rounds):
            fig.load.append(os.getloadavg()[0])
            for name in order_of(r):
                p = procs[name]
                async with LongPolls(p.url, poll_users):
                    await asyncio.sleep(0.2)
                    cpu0, th0, ch0 = proc_cpu(p.proc.pid)
                    secs, lat, errors = await load(http, p.url, agents, args.requests, args.concurrency, offset)
                    cpu1, th1, ch1 = proc_cpu(p.proc.pid)
                roles = {k: v * 1000 / args.requests for k, v in by_role(p.proc.pid, th0, th1).items()}
                child = sum(v - ch0.get(c, 0.0) for c, v in ch1.items())
                if ch1:
                    roles["writer process"] = child * 1000 / args.requests
                cpu = cpu1 - cpu0 + child
                fig.main_ms[name].append(roles.get("loop", 0.0))
                fig.roles[name].append(roles)
                offset += args.requests
                fig.errors += errors
                fig.requests[name] += args.requests
                rps = args.requests / secs
                fig.rps[name].append(rps)
                fig.cpu_ms[name].append(cpu * 1000 / args.requests)
                print(f"  round {r + 1} {name:8} {rps:8.0f} req/s   {secs:6.2f} s   CPU "
                      f"{cpu * 1000 / args.requests:5.2f} ms/request ("
                      + ", ".join(f"{k} {v:.2f}" for k, v in sorted(roles.items()) if v >= 0.005) + ")   "
                      f"client p50 {pct(lat, .5):6.2f} ms "
                      f"p99 {pct(lat, .99):7.2f} ms   errors {errors}", flush=True)
        print(f"latency: {args.latency_requests} requests per round at concurrency 1, "
              f"{args.latency_rounds} rounds per proxy (order rotated)")
        for r in range(args.latency_rounds):
            for name in order_of(r):
                p = procs[name]
                async with LongPolls(p.url, poll_users):
                    await asyncio.sleep(0.2)
                    _, lat, errors = await load(http, p.url, agents, args.latency_requests, 1, offset)
                offset += args.latency_requests
                fig.errors += errors
                fig.requests[name] += args.latency_requests
                fig.lat[name] += lat
                print(f"  round {r + 1} {name:8}  p50 {pct(lat, .5):6.3f} ms   p99 {pct(lat, .99):6.3f} ms   "
                      f"errors {errors}", flush=True)
        for agent in agents:
            async with http.post(upstream + "/api/v2/me", json={"operationName": "EndContactCenterSession"},
                                 headers=agent.headers(True)) as resp:
                await resp.read()
    return fig


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=4000, help="measured requests per throughput round")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=6, help="throughput rounds per proxy (order rotated)")
    ap.add_argument("--latency-requests", type=int, default=1000, help="requests per latency round (concurrency 1)")
    ap.add_argument("--latency-rounds", type=int, default=2)
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--long-polls", type=int, default=4)
    ap.add_argument("--pin", action="store_true",
                    help="each proxy on CPU 0, the rest (upstream, load, writer process) on CPU 1")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-proxy-"))
    dbs = {"thread": tmp / "capture-thread.duckdb", "process": tmp / "capture-process.duckdb"}
    sim_port = free_port()
    ports = {n: free_port() for n in NAMES}
    upstream = f"http://127.0.0.1:{sim_port}"
    common = ["-q", "--mode", f"reverse:{upstream}", "--listen-host", "127.0.0.1"]
    addon = ["-s", str(ROOT / "proxy_addons" / "capture.py")]
    extra = {"bare": [], "flowfile": ["-w", str(tmp / "flows.mitm")],
             "thread": [*addon, "--set", f"capture_db={dbs['thread']}", "--set", "capture_writer=thread"],
             "process": [*addon, "--set", f"capture_db={dbs['process']}", "--set", "capture_writer=process"]}
    procs: dict[str, Proc] = {}
    load0 = os.getloadavg()
    hc = hook_cost()
    print("addon hooks on the event loop (request + response, record built and submitted; in-process, GC off): "
          f"thread writer {hc['thread'][0]:.1f} us/flow, process writer {hc['process'][0]:.1f} us/flow "
          f"+ its sender's pack and pickle {hc['process'][1]:.1f} us/record (another thread, same GIL)")
    try:
        procs["sim"] = start("sim", [str(BIN / "gwsreplay"), "sim", "--port", str(sim_port), "--agents",
                                     str(args.agents), "--answer-delay", "0.05"], sim_port, tmp / "sim.log")
        for name in NAMES:
            procs[name] = start(name, [str(MITMDUMP), *common, "-p", str(ports[name]), *extra[name]],
                                ports[name], tmp / f"{name}.log")
        print(f"upstream {upstream} (gwsreplay sim, {args.agents} agents); "
              + "; ".join(f"{LABELS[n]} :{ports[n]}" for n in NAMES)
              + f"; {os.cpu_count()} cores, load average {load0[0]:.1f} {load0[1]:.1f} {load0[2]:.1f}")
        if args.pin:
            print(pin_all(procs))
        fig = asyncio.run(run(args, procs, upstream))
    finally:
        for name in (*reversed(NAMES), "sim"):
            p = procs.get(name)
            if p is not None and p.proc.poll() is None:
                p.proc.send_signal(signal.SIGINT)
                try:
                    p.proc.wait(60)
                except subprocess.TimeoutExpired:
                    p.proc.kill()

    med = statistics.median
    bare = fig.rps["bare"]
    ratios = {n: [x / b for x, b in zip(fig.rps[n], bare)] for n in NAMES}
    print("summary (requests/s per round; ratio = median over rounds of this proxy / bare in the same round)")
    for n in NAMES:
        line = f"  {LABELS[n]:22} {' '.join(f'{x:6.0f}' for x in fig.rps[n])}   median {med(fig.rps[n]):6.0f}"
        if n != "bare":
            line += (f"   ratio {med(ratios[n]):.3f} (rounds {', '.join(f'{x:.2f}' for x in ratios[n])}; "
                     f"old {OLD_RATIO[n]})")
        print(line)
    ok = med(ratios["process"]) >= TARGET
    print(f"  target: process writer >= {TARGET} of bare: {'met' if ok else 'NOT met'} "
          f"({med(ratios['process']):.3f}; thread writer {med(ratios['thread']):.3f}, mitmdump -w "
          f"{med(ratios['flowfile']):.3f} in the same run)")
    print("  CPU per request (median; ms): " + ", ".join(
        f"{LABELS[n]} {med(fig.cpu_ms[n]):.2f} (event loop {med(fig.main_ms[n]):.2f})" for n in NAMES))
    for n in ("thread", "process"):
        roles = sorted({k for r in fig.roles[n] for k in r})
        print(f"  {LABELS[n]}, CPU per request by thread / process (median): " + ", ".join(
            f"{k} {med(r.get(k, 0.0) for r in fig.roles[n]):.3f} ms" for k in roles))
    lb = fig.lat["bare"]
    print(f"  latency at concurrency 1 (client side): bare p50 {pct(lb, .5):.3f} ms p99 {pct(lb, .99):.3f} ms; "
          + "; ".join(f"{LABELS[n]} p50 {pct(fig.lat[n], .5) - pct(lb, .5):+.3f} ms p99 "
                      f"{pct(fig.lat[n], .99) - pct(lb, .99):+.3f} ms" for n in NAMES if n != "bare"))
    load1 = os.getloadavg()
    print(f"  load average: {load0[0]:.1f} at the start, {', '.join(f'{x:.1f}' for x in fig.load)} at each "
          f"round, {load1[0]:.1f} at the end ({os.cpu_count()} cores)")
    print(f"  errors: {fig.errors}")

    bad = False
    for n, db in dbs.items():
        con = duckdb.connect(str(db), read_only=True)
        measured = con.execute(
            "SELECT count(*) FROM exchanges WHERE path IN ('/api/v2/diagnostics/version', '/api/v2/me', "
            "'/api/v2/me/channels/voice')").fetchone()[0]
        polls = con.execute("SELECT count(*) FROM exchanges WHERE is_bayeux").fetchone()[0]
        msgs = con.execute("SELECT count(*) FROM bayeux_messages").fetchone()[0]
        lost = con.execute("SELECT coalesce(sum(count), 0) FROM capture_errors WHERE kind IN "
                           "('dropped', 'batch_lost')").fetchone()[0]
        con.close()
        expected = 500 + fig.requests[n]
        bad = bad or lost > 0 or measured < expected
        print(f"capture ({LABELS[n]}): {measured} measured exchanges (sent through it: {expected} incl. 500 "
              f"warm-up, plus the long-poll logins), {polls} long-poll exchanges, {msgs} Bayeux messages, "
              f"dropped or lost {lost}")
    return 0 if ok and not fig.errors and not bad else 1


if __name__ == "__main__":
    sys.exit(main())
