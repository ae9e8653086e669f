"""Load replay on Locust: >= 1,000 concurrent virtual agents at the recorded pace, 1 then 2 worker processes.

1. records one agent's session through the capture proxy (simulator + `gwsreplay
   record` as child processes): log in, Ready, an inbound call injected through
   the control API, Answer, Hold/Retrieve, AttachUserData, Hangup, AfterCallWork,
   an outbound call, Not Ready, log out, with think times of --think seconds
   (the capture benchmarks/bench_replay_load.py used for the asyncio runner; that
   benchmark went with the runner's load mode, it is in git history at df4aba6);
2. starts `gwsreplay sim --agents N+50` as a child process;
3. replays that session as --agents virtual agents (agent1..agentN) at the
   recorded pace (--speed 1), started over --ramp-up seconds, with Locust
   (`--processes 1`, then `--processes 2`: a master and that many workers),
   each copy once, and prints per run: concurrent agents held, REST ops/s, p50/p99
   ack latency (REST) and completion latency (operation -> its notification),
   divergences, Locust's CPU (master + workers) per agent; beside the figures the
   asyncio runner (`replay --agents`, now retired) gave on the same capture.

    .venv/bin/python benchmarks/bench_load_locust.py [--agents 1000] [--ramp-up 10] [--think 0.8]
        [--workers 1 2] [--quick] [--max-seconds 300]

--quick: 60 agents, think 0.3 s, ramp-up 3 s (a smoke run, about a minute).
Pass: every run held all its agents at once with zero divergences.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from gwsreplay.cli.processes import free_port, gwsreplay_command, stop, wait_http  # noqa: E402
from gwsreplay.client.desktop import Desktop  # noqa: E402

LOCUSTFILE = ROOT / "gwsreplay" / "load" / "locustfile.py"
# The asyncio runner (`gwsreplay replay --agents 500 --ramp-up 8`, benchmarks/bench_replay_load.py at df4aba6) on this
# capture (think 0.8 s, simulator answer delay 0.5 s), measured on this 2-core machine, shared with other
# work, just before it was retired. Two consecutive runs:
ASYNCIO_RUNNER = [
    {"agents": 500, "concurrent": 500, "ops_per_s": 338.5, "ack_p50_ms": 37.6, "ack_p99_ms": 666.9,
     "completion": None, "divergences": 0, "cpu_ms_per_agent": None, "wall_s": 20.7},
    {"agents": 500, "concurrent": 500, "ops_per_s": 229.3, "ack_p50_ms": 184.0, "ack_p99_ms": 921.5,
     "completion": None, "divergences": 0, "cpu_ms_per_agent": 22.4, "wall_s": 30.5},
]


def one_agent_script(think: float):
    """A single agent's shift, paced by `think` seconds between steps."""
    async def script(url: str, transport: str) -> None:
        import aiohttp

        agent = Desktop(url, "agent1", transport=transport)
        async with aiohttp.ClientSession() as control:
            try:
                await agent.login()
                await asyncio.sleep(think)
                await agent.agent_state("Ready")
                await agent.wait_device(lambda d: d.get("userState", {}).get("state") == "Ready")
                await asyncio.sleep(think)
                async with control.post(url + "/sim/v1/calls", json={"from": "5551234", "to": "7001",
                                                                     "userData": {"Segment": "Gold"}}) as r:
                    await r.read()
                call = await agent.wait_call(lambda c: c["state"] == "Ringing")
                await asyncio.sleep(think)
                for op, state in (("Answer", "Established"), ("Hold", "Held"), ("Retrieve", "Established")):
                    await agent.call_op(call["id"], op)
                    await agent.wait_call(lambda c: c["id"] == call["id"] and c["state"] == state)
                    await asyncio.sleep(think)
                await agent.call_op(call["id"], "AttachUserData", userData={"AccountNumber": "42"})
                await asyncio.sleep(think)
                await agent.call_op(call["id"], "Hangup")
                await agent.wait_call(lambda c: c["id"] == call["id"] and c["state"] == "Released")
                agent.forget_released()
                await agent.agent_state("AfterCallWork")
                await asyncio.sleep(think)
                await agent.dial("15550001")
                out = await agent.wait_call(lambda c: c["state"] == "Established")
                await asyncio.sleep(think)
                await agent.call_op(out["id"], "Hangup")
                await agent.wait_call(lambda c: c["id"] == out["id"] and c["state"] == "Released")
                await agent.agent_state("NotReady", reasonCode="Break")
                await agent.wait_device(lambda d: d.get("userState", {}).get("state") == "NotReady")
                await asyncio.sleep(think)
            finally:
                await agent.logout()
    return script


def locust_run(args: argparse.Namespace, db: Path, sim_url: str, workers: int, tmp: Path) -> dict:
    """One Locust run (master + `workers` processes); its summary and CPU."""
    summary = tmp / f"summary-{workers}.json"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--processes", str(workers),
               "-u", str(args.agents), "-r", f"{args.agents / max(args.ramp_up, 0.1):g}",
               "-t", f"{int(args.max_seconds)}s", "--host", sim_url, "--capture", str(db), "--speed", "1",
               "--gws-iterations", "1", "--wait-timeout", "60", "--no-out", "--gws-summary", str(summary),
               "--only-summary", "--stop-timeout", "5"]
    log = tmp / f"locust-{workers}.log"
    with log.open("wb") as out:
        code = subprocess.call(command, stdout=out, stderr=subprocess.STDOUT, timeout=args.max_seconds + 120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if not summary.exists():
        raise SystemExit(f"Locust wrote no summary (exit {code}); see its log:\n{log.read_text()[-3000:]}")
    info = json.loads(summary.read_text())
    rest, complete = info["REST"], info["COMPLETE"]
    span = max((rest["last"] or 0) - (rest["first"] or 0), 1e-9)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {"agents": args.agents, "workers": workers, "concurrent": info["peak_copies"],
            "ops_per_s": round(rest["count"] / span, 1), "ops": rest["count"],
            "ack_p50_ms": rest["p50_ms"], "ack_p99_ms": rest["p99_ms"],
            "completion": (complete["p50_ms"], complete["p99_ms"]), "divergences": info["divergences"],
            "divergences_by_kind": info["divergences_by_kind"], "cpu_s": round(cpu, 2),
            "cpu_ms_per_agent": round(cpu / max(args.agents, 1) * 1000, 1),
            "wall_s": round(time.monotonic() - started, 1), "exit": code}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--ramp-up", type=float, default=10.0)
    parser.add_argument("--think", type=float, default=0.8, help="think time in the recorded session (s)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker processes, one run each")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="Locust's --run-time bound per run")
    parser.add_argument("--quick", action="store_true", help="60 agents, think 0.3 s, ramp-up 3 s")
    args = parser.parse_args()
    if args.quick:
        args.agents, args.think, args.ramp_up, args.max_seconds = 60, 0.3, 3.0, 120.0

    from replay_fixtures import record_capture

    results = []
    with tempfile.TemporaryDirectory(prefix="bench-locust-") as tmp_dir:
        tmp = Path(tmp_dir)
        db = tmp / "one-agent.duckdb"
        started = time.monotonic()
        record_capture(db, "long-polling", agents=2, script=one_agent_script(args.think))
        print(f"recorded one agent's session in {time.monotonic() - started:.1f}s")
        for workers in args.workers:
            port = free_port()
            sim_url = f"http://127.0.0.1:{port}"
            with (tmp / f"sim-{workers}.log").open("wb") as log:
                sim = subprocess.Popen(gwsreplay_command() + [
                    "sim", "--port", str(port), "--agents", str(args.agents + 50), "--answer-delay", "0.5"],
                    stdout=log, stderr=subprocess.STDOUT)
                try:
                    wait_http(f"{sim_url}/api/v2/diagnostics/version", process=sim)
                    print(f"Locust, {workers} worker process(es): {args.agents} agents, ramp-up {args.ramp_up}s, "
                          f"recorded pace ...", flush=True)
                    result = locust_run(args, db, sim_url, workers, tmp)
                    with urlopen(sim_url + "/sim/v1/stats", timeout=10) as r:
                        result["sim_rest"] = json.load(r)["rest"]["total"]
                finally:
                    stop(sim, signal.SIGINT)
            results.append(result)
    print()
    print(f"{'':28}" + "".join(f"{'Locust ' + str(r['workers']) + ' worker(s)':>22}" for r in results)
          + "".join(f"{'asyncio runner #' + str(k + 1):>22}" for k in range(len(ASYNCIO_RUNNER))))
    rows = [("virtual agents", "agents"), ("concurrent agents held", "concurrent"),
            ("REST ops/s", "ops_per_s"), ("ack p50 ms", "ack_p50_ms"), ("ack p99 ms", "ack_p99_ms"),
            ("completion p50/p99 ms", "completion"), ("divergences", "divergences"),
            ("CPU ms per agent", "cpu_ms_per_agent"), ("wall s", "wall_s")]
    for label, key in rows:
        cells = [r.get(key) for r in results] + [a.get(key) for a in ASYNCIO_RUNNER]
        print(f"{label:28}" + "".join(f"{_cell(c):>22}" for c in cells))
    for r in results:
        print(f"Locust {r['workers']}: {r['ops']} REST ops counted, the simulator answered {r['sim_rest']} "
              f"(one is this benchmark's readiness probe); "
              f"divergences {r['divergences_by_kind'] or 0}; Locust CPU {r['cpu_s']} s")
    ok = all(r["concurrent"] >= r["agents"] and r["divergences"] == 0 for r in results)
    print("PASS" if ok else "FAIL: fewer concurrent agents than asked, or divergences")
    return 0 if ok else 1


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, tuple):
        return "/".join(_cell(v) for v in value)
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
