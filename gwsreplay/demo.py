"""`gwsreplay demo`: the main job on the embedded defaults, end to end.

1. start the GWS simulator (a child process on a free loopback port);
2. run scripted agents against it for a short while;
3. print what happened, from the agents' side and from the simulator's counters.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from urllib.request import urlopen

from gwsreplay.processes import ROOT, child, free_port, gwsreplay_command


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("demo", help="run the simulator and scripted agents end to end",
                              description="Start the simulator, run scripted agents, print a summary.")
    p.add_argument("--agents", type=int, default=6)
    p.add_argument("--duration", type=float, default=20.0, help="seconds of agent activity (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=ROOT / "captures", help="output folder (default: captures/)")
    return p


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from gws_client.agents_cli import AgentsConfig, print_summary, run_with_progress

    console = Console()
    args.out.mkdir(parents=True, exist_ok=True)
    sim_port = free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    sim_log = args.out / "demo-simulator.log"
    console.rule("[bold]gwsreplay demo")
    console.print(f"simulator: {sim_url} ({args.agents} agents, seed {args.seed}), log {sim_log}")
    sim_cmd = gwsreplay_command() + ["sim", "--port", str(sim_port), "--agents", str(args.agents),
                                     "--seed", str(args.seed), "--answer-delay", "0.3"]
    with child(sim_cmd, f"{sim_url}/api/v2/diagnostics/version", log=sim_log):
        config = AgentsConfig(target=sim_url, agents=args.agents, duration=args.duration, seed=args.seed + 1)
        summary = run_with_progress(config)
        print_summary(summary)
        with urlopen(f"{sim_url}/sim/v1/stats", timeout=5) as response:
            stats = json.load(response)
    console.print(f"simulator answered {stats['rest']['total']} REST requests and delivered "
                  f"{stats['bayeux']['delivered']['total']} Bayeux messages")
    return 0 if summary.logged_in == args.agents and not summary.failures else 1
