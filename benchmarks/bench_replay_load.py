"""Load replay: >= 500 concurrent replayed agents from one process against the simulator.

1. records one agent's session through the capture proxy (simulator + `gwsreplay
   record` as child processes): log in, Ready, an inbound call injected through
   the control API, Answer, AttachUserData, Hold/Retrieve, Hangup, an outbound
   call, AfterCallWork, Not Ready, log out, with think times of --think seconds;
2. starts `gwsreplay sim --agents 600` as a child process;
3. replays that session as --agents virtual agents (agent1..agentN) at the
   recorded pace, started over --ramp-up seconds, from this one process, and
   prints the figures (peak concurrent agents, operations/s, p50/p99 latency,
   notifications, divergences, what the simulator served).

    .venv/bin/python benchmarks/bench_replay_load.py [--agents 500] [--ramp-up 8] [--think 0.8]
        [--transport long-polling|websocket] [--out FILE] [--max-seconds 240]

Bounded: the whole replay is cancelled after --max-seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from gwsreplay.client.desktop import Desktop  # noqa: E402
from gwsreplay.cli.processes import free_port, gwsreplay_command, stop, wait_http  # noqa: E402


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


async def run(args: argparse.Namespace, db: Path, sim_url: str, out: Path | None) -> dict:
    from gwsreplay.replay.engine import EngineOptions
    from gwsreplay.replay.recorded import read_plan
    from gwsreplay.drivers.report import progress_line, summary
    from gwsreplay.drivers.runner import ReplayOptions, replay

    plan = read_plan(db)
    last = [0.0]

    def on_progress(stats) -> None:
        now = time.monotonic()
        if now - last[0] >= 2.0:
            last[0] = now
            print("  " + progress_line(stats), flush=True)

    options = ReplayOptions(target=sim_url, agents=args.agents, ramp_up=args.ramp_up, out=out, simulator=True,
                            engine=EngineOptions(speed=args.speed, wait_timeout=60, drain_timeout=10))
    result = await asyncio.wait_for(replay(plan, options, on_progress=on_progress), args.max_seconds)
    info = summary(result)
    info["recorded_session_s"] = round(plan.sessions[0].steps[-1].ts - plan.sessions[0].steps[0].ts, 2)
    info["divergence_examples"] = [d["detail"] for d in result.divergence_rows()[:5]]
    return info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--ramp-up", type=float, default=8.0)
    parser.add_argument("--think", type=float, default=0.8, help="think time in the recorded session (s)")
    parser.add_argument("--speed", type=float, default=1.0, help="replay speed (default: the recorded pace)")
    parser.add_argument("--transport", choices=["long-polling", "websocket"], default="long-polling")
    parser.add_argument("--sim-agents", type=int, default=600)
    parser.add_argument("--out", type=Path, help="record the replay here (default: not recorded)")
    parser.add_argument("--max-seconds", type=float, default=240.0)
    args = parser.parse_args()

    from replay_fixtures import record_capture

    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        db = Path(tmp) / "one-agent.duckdb"
        started = time.monotonic()
        record_capture(db, args.transport, agents=2, script=one_agent_script(args.think))
        print(f"recorded one agent's session ({args.transport}) in {time.monotonic() - started:.1f}s: {db}")
        port = free_port()
        sim_url = f"http://127.0.0.1:{port}"
        log = open(Path(tmp) / "sim.log", "wb")
        sim = subprocess.Popen(gwsreplay_command() + ["sim", "--port", str(port), "--agents", str(args.sim_agents),
                                                      "--answer-delay", "0.5"], stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_http(f"{sim_url}/api/v2/diagnostics/version", process=sim)
            print(f"simulator {sim_url} ({args.sim_agents} agents); replaying as {args.agents} agents, "
                  f"ramp-up {args.ramp_up}s, speed {args.speed}")
            cpu = time.process_time()
            info = asyncio.run(run(args, db, sim_url, args.out))
            info["cpu_s"] = round(time.process_time() - cpu, 2)
            with urlopen(sim_url + "/sim/v1/stats", timeout=10) as r:
                sim_stats = json.load(r)
        finally:
            stop(sim, signal.SIGINT)
            log.close()
    print()
    print(f"agents replayed            {info['sessions']} (peak concurrent {info['concurrent_peak']})")
    print(f"recorded session length    {info['recorded_session_s']} s")
    print(f"wall time                  {info['duration_s']} s")
    print(f"REST operations            {info['operations']} ({info['ops_per_s']}/s overall)")
    print(f"REST latency               p50 {info['latency_p50_ms']} ms, p99 {info['latency_p99_ms']} ms")
    print(f"notifications received     {info['notifications']}")
    print(f"replayer CPU               {info['cpu_s']} s ({info['cpu_s'] / max(info['sessions'], 1) * 1000:.1f} ms "
          f"per agent, {info['cpu_s'] / max(info['duration_s'], 1e-9) * 100:.0f}% of a core)")
    print(f"divergences                {info['divergences']} {info['divergences_by_kind'] or ''}")
    for example in info["divergence_examples"]:
        print(f"  e.g. {example}")
    print(f"simulator served           {sim_stats['rest']['total']} REST requests, "
          f"{sim_stats['bayeux']['delivered']['total']} Bayeux messages delivered")
    ok = info["concurrent_peak"] >= min(args.agents, 500) and info["divergences"] == 0
    print("PASS" if ok else "FAIL: fewer concurrent agents than asked, or divergences")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
