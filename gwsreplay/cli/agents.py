"""`gwsreplay agents`: drive N scripted desktops against a GWS (the simulator by default)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gwsreplay.cli.options import check_reachable
from gwsreplay.client.agents import (
    CHANNELS,
    SCENARIOS,
    AgentsConfig,
    AgentsSummary,
    run_agents,
)
from gwsreplay.client.rest import ConnectOptions
from gwsreplay.core.errors import UserError


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("agents", help="run scripted agent desktops against a GWS",
                              description="Run N scripted agents through realistic voice sessions.")
    p.add_argument("--target", default="http://127.0.0.1:8090", help="GWS base URL")
    p.add_argument("--agents", type=int, default=5, help="number of agents, agent1..agentN")
    p.add_argument("--first-agent", type=int, default=1, help="number of the first agent")
    p.add_argument("--duration", type=float, default=60, help="seconds of activity before logging out")
    p.add_argument("--seed", type=int, default=1, help="scenario choices")
    p.add_argument("--transport", choices=["long-polling", "websocket"], default="long-polling")
    p.add_argument("--password", default="password")
    p.add_argument("--channels", default="voice", metavar="LIST",
                   help=f"comma-separated channels to log in to: {', '.join(CHANNELS)}")
    p.add_argument("--scenarios", default="", metavar="LIST",
                   help=f"comma-separated subset of: {', '.join(SCENARIOS)} (default: all)")
    p.add_argument("--think-time", type=float, default=0.3, help="seconds between steps")
    p.add_argument("--ca", metavar="FILE",
                   help="verify an https:// target against this PEM CA file (e.g. the one `gwsreplay sim --tls` "
                        "prints, or mitmproxy's CA behind `gwsreplay record`) instead of the system's CAs")
    p.add_argument("--proxy", metavar="URL",
                   help="reach the target through this explicit HTTP proxy, e.g. `gwsreplay record --mode regular` "
                        "at http://127.0.0.1:8080 (environment proxy variables are not used)")
    return p


def config_from_args(args: argparse.Namespace) -> AgentsConfig:
    return AgentsConfig(target=args.target, agents=args.agents, duration=args.duration, seed=args.seed,
                        transport=args.transport, password=args.password, first_agent=args.first_agent,
                        think_time=args.think_time, talk_time=args.think_time * 2,
                        scenarios=tuple(s for s in args.scenarios.split(",") if s),
                        channels=tuple(c for c in args.channels.split(",") if c),
                        connect=ConnectOptions(ca_file=args.ca, proxy=args.proxy))


def run_with_progress(config: AgentsConfig) -> AgentsSummary:
    """Run the agents with a live progress line; returns the summary."""
    console = Console(stderr=True)
    with Progress(TextColumn("[bold]agents[/]"), BarColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[line]}"), console=console, transient=False) as progress:
        task = progress.add_task("agents", total=config.duration, line="starting")
        loop_start: list[float] = []

        def on_progress(summary: AgentsSummary) -> None:
            now = asyncio.get_running_loop().time()
            if not loop_start:
                loop_start.append(now)
            progress.update(task, completed=min(config.duration, now - loop_start[0]), line=(
                f"logged in {summary.logged_in}/{summary.agents}  ops {summary.operations}  "
                f"notifications {summary.notifications}  errors {summary.errors}"))

        summary = asyncio.run(run_agents(config, on_progress))
        progress.update(task, completed=config.duration)
    return summary


def print_summary(summary: AgentsSummary) -> None:
    table = Table(title="Scripted agents", show_header=False)
    table.add_row("agents logged in", f"{summary.logged_in}/{summary.agents}")
    table.add_row("operations", str(summary.operations))
    table.add_row("operation errors", str(summary.errors))
    table.add_row("notifications received", str(summary.notifications))
    for name, count in sorted(summary.scenarios.items()):
        table.add_row(f"scenario {name}", str(count))
    Console().print(table)
    for failure in summary.failures[:10]:
        Console(stderr=True).print(f"[yellow]failure:[/] {failure}")


def run(args: argparse.Namespace) -> int:
    if args.agents < 1:
        raise UserError("--agents must be at least 1")
    if args.ca and not Path(args.ca).is_file():
        raise UserError(f"--ca {args.ca}: no such file")
    bad_channels = set(filter(None, args.channels.split(","))) - set(CHANNELS)
    if bad_channels:
        raise UserError(f"unknown channel(s) {', '.join(sorted(bad_channels))}; choose from {', '.join(CHANNELS)}")
    unknown = set(filter(None, args.scenarios.split(","))) - set(SCENARIOS)
    if unknown:
        raise UserError(f"unknown scenario(s) {', '.join(sorted(unknown))}; choose from {', '.join(SCENARIOS)}")
    if args.proxy:
        check_reachable(args.proxy, what="the proxy", hint="is `gwsreplay record` running there?")
    else:
        check_reachable(args.target, hint="is the simulator / GWS running?")
    summary = run_with_progress(config_from_args(args))
    print_summary(summary)
    if summary.logged_in == 0:
        raise UserError(f"no agent could log in to {args.target}")
    return 1 if summary.failures else 0
