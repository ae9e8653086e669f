"""`gwsreplay demo`: the main job on the embedded defaults, end to end.

1. start the GWS simulator (a child process on a free loopback port);
2. start the capture proxy in front of it (`gwsreplay record`, another child);
3. run scripted agents through the proxy for a short while;
4. stop the proxy (SIGINT flushes the capture) and summarise captures/demo.duckdb,
   checking it against the simulator's own counters: nothing lost, nothing doubled;
5. replay every recorded session against a fresh simulator and print the divergences;
6. render the HTML report (latency, coverage, timelines, recorded vs replayed).
"""

from __future__ import annotations

import argparse
import json
import signal
from pathlib import Path
from urllib.request import urlopen

import duckdb
from rich.console import Console
from rich.table import Table

from gwsreplay.analysis.report import build_report
from gwsreplay.cli.agents import AgentsConfig, print_summary, run_with_progress
from gwsreplay.cli.demo_replay import replay_demo_capture
from gwsreplay.cli.processes import child, free_port, gwsreplay_command


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("demo", help="simulator + capture proxy + scripted agents + report, end to end",
                              description="Record scripted agents through the capture proxy in front of the "
                                          "simulator into captures/demo.duckdb, summarise it and render a report.")
    p.add_argument("--agents", type=int, default=6, help="simulated agents, agent1..agentN")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of agent activity")
    p.add_argument("--seed", type=int, default=0, help="seed of the simulator's ids and the agents' choices")
    p.add_argument("--transport", choices=["long-polling", "websocket"], default="long-polling",
                   help="the agents' CometD transport")
    p.add_argument("--out", type=Path, default=Path("captures"),
                   help="output folder, relative to the current directory")
    p.add_argument("--no-report", action="store_true", help="skip the HTML report")
    return p


def _stats(sim_url: str) -> dict:
    with urlopen(f"{sim_url}/sim/v1/stats", timeout=5) as response:
        return json.load(response)


def run(args: argparse.Namespace) -> int:
    console = Console()
    args.out = args.out.resolve()   # the children get absolute paths; they share our cwd anyway
    args.out.mkdir(parents=True, exist_ok=True)
    db = args.out / "demo.duckdb"
    for stale in (db, db.with_suffix(".duckdb.wal")):
        stale.unlink(missing_ok=True)
    sim_port, proxy_port = free_port(), free_port()
    sim_url, proxy_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{proxy_port}"

    console.rule("[bold]gwsreplay demo")
    console.print(f"simulator      {sim_url}  ({args.agents} agents, seed {args.seed})")
    console.print(f"capture proxy  {proxy_url}  -> {db.relative_to(Path.cwd()) if db.is_relative_to(Path.cwd()) else db}")
    sim_cmd = gwsreplay_command() + ["sim", "--listen-port", str(sim_port), "--agents", str(args.agents),
                                     "--seed", str(args.seed), "--answer-delay", "0.3"]
    proxy_cmd = gwsreplay_command() + ["record", "--upstream", sim_url, "--listen-port", str(proxy_port),
                                       "--db", str(db), "--quiet"]
    with child(sim_cmd, f"{sim_url}/api/v2/diagnostics/version", log=args.out / "demo-simulator.log"):
        before = _stats(sim_url)
        with child(proxy_cmd, f"{proxy_url}/api/v2/diagnostics/version", log=args.out / "demo-proxy.log",
                   stop_signal=signal.SIGINT):
            config = AgentsConfig(target=proxy_url, agents=args.agents, duration=args.duration,
                                  seed=args.seed + 1, transport=args.transport,
                                  channels=("voice", "chat", "email", "workitem", "im"))
            summary = run_with_progress(config)
        after = _stats(sim_url)
    print_summary(summary)

    served = {
        "rest": after["rest"]["total"] - before["rest"]["total"],
        "bayeux": (after["bayeux"]["delivered"]["total"] - before["bayeux"]["delivered"]["total"]
                   + after["bayeux"]["received"]["total"] - before["bayeux"]["received"]["total"]),
    }
    captured = summarize_capture(db, console)
    lossless = captured["rest"] == served["rest"] and captured["bayeux"] == served["bayeux"]
    verdict = "[green]nothing lost, nothing doubled[/]" if lossless else "[red]MISMATCH[/]"
    console.print(f"simulator served {served['rest']} REST requests and {served['bayeux']} Bayeux messages; "
                  f"the capture holds {captured['rest']} and {captured['bayeux']}: {verdict}")

    console.rule("[bold]replay of the demo capture against a fresh simulator")
    replay_code = replay_demo_capture(db, agents=args.agents, seed=args.seed, answer_delay=0.3,
                                      out=args.out / "demo-replay.duckdb", console=console)

    if not args.no_report:
        report = args.out / "demo-report.html"
        build_report(db, report)
        console.print(f"report         {report}")
    console.print(f"capture        {db}")
    ok = summary.logged_in == args.agents and not summary.failures and lossless and replay_code == 0
    return 0 if ok else 1


def summarize_capture(db: Path, console) -> dict:
    """Print what the capture holds; return the counts compared with the simulator's."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rest = con.execute("SELECT count(*) FROM exchanges WHERE NOT coalesce(is_bayeux, false) "
                           "AND NOT coalesce(is_websocket, false) AND starts_with(path, '/api/v2')").fetchone()[0]
        bayeux = con.execute("SELECT count(*) FROM bayeux_messages").fetchone()[0]
        agents = con.execute("SELECT count(DISTINCT user_name) FROM exchanges WHERE user_name IS NOT NULL").fetchone()[0]
        ops = con.execute("""
            SELECT operation_name, count(*) AS n,
                   round(quantile_cont(ack_latency_ms, 0.5), 1) AS ack_p50,
                   round(quantile_cont(completion_latency_ms, 0.5), 1) AS done_p50,
                   round(quantile_cont(completion_latency_ms, 0.99), 1) AS done_p99,
                   count(*) FILTER (WHERE outcome = 'completed') AS completed
            FROM operations GROUP BY ALL ORDER BY n DESC""").fetchall()
    finally:
        con.close()
    table = Table(title=f"Capture: {rest} REST exchanges, {bayeux} Bayeux messages, {agents} agents")
    for column in ("operation", "n", "ack p50 ms", "done p50 ms", "done p99 ms", "done"):
        table.add_column(column, justify="left" if column == "operation" else "right")
    for name, n, ack, done, done99, completed in ops:
        table.add_row(name, str(n), str(ack), str(done), str(done99), str(completed))
    console.print(table)
    return {"rest": rest, "bayeux": bayeux, "agents": agents}
