"""`gwsreplay load`: recorded agent sessions as load, on Locust.

    gwsreplay load --db captures/NAME.duckdb --target http://127.0.0.1:8090 --users 1000 --spawn-rate 20
                   --run-time 10m [--processes K] [--csv PREFIX] [--html FILE] [--web] [-- LOCUST OPTIONS...]

Runs Locust (headless unless --web) on the shipped locustfile
(gwsreplay/load/locustfile.py). Virtual agents come in whole copies of the
capture (a copy is all its recorded agents: they call each other), so --users
and --spawn-rate are divided by the agents of one copy. The target's roster is
checked before anything starts. Exit code: Locust's (1 if anything diverged).
See docs/replay.md, "Load".
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

from gwsreplay.core.errors import UserError
from gwsreplay.drivers.target_guard import ReplayRefused, check_target
from gwsreplay.load.roster import agents_per_copy, check_roster, simulator_facts
from gwsreplay.replay.plan import build_plan
from gwsreplay.replay.recorded import CaptureError, load_capture
from gwsreplay.replay.users import UserMap, UserMapError


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "load", help="replay recorded agent sessions as load on Locust (many virtual agents, processes, machines)",
        description="Replay the agent sessions of a capture as N virtual agents on Locust: whole copies of the "
                    "capture, each as its own users from the pool, with Locust's statistics (per operation: ack "
                    "and completion latency; notifications; divergences as failures), CSV/HTML reports and "
                    "web UI. Options after `--` go to Locust as they are.")
    p.add_argument("--db", required=True, type=Path, help="capture file (captures/NAME.duckdb)")
    p.add_argument("--target", required=True, help="GWS base URL, e.g. http://127.0.0.1:8090 (Locust's --host)")
    p.add_argument("--users", type=int, required=True, metavar="N", help="virtual agents (whole copies of the capture)")
    p.add_argument("--spawn-rate", type=float, default=10.0, metavar="R", help="virtual agents started per second")
    p.add_argument("--run-time", default=None, metavar="T", help="stop after T (30s, 10m, 1h30m); "
                                                                  "copies repeat until then")
    p.add_argument("--iterations", type=int, default=0, metavar="K",
                   help="instead of a run time: each copy replays the capture K times, then the run ends")
    p.add_argument("--processes", type=int, default=None, metavar="K",
                   help="Locust worker processes on this machine (-1: one per core)")
    p.add_argument("--csv", metavar="PREFIX", help="write Locust's CSV statistics (PREFIX_stats.csv, ...)")
    p.add_argument("--html", metavar="FILE", help="write Locust's HTML report")
    p.add_argument("--web", action="store_true", help="Locust's web UI (live charts) instead of headless")
    p.add_argument("--speed", default="1", help="1 (recorded pace), 4, any factor, or max")
    p.add_argument("--user-map", type=Path, metavar="FILE", help="TOML user map whose [pool] gives the users")
    p.add_argument("--out", type=Path, help="replay output file (default: NAME-load.duckdb next to the capture)")
    p.add_argument("--no-out", action="store_true", help="do not write the replay output file")
    p.add_argument("--wait-timeout", type=float, default=10.0, metavar="S",
                   help="seconds a request may wait for the notifications that preceded it")
    p.add_argument("--allow-recorded-host", action="store_true",
                   help="allow replaying to the host the capture was recorded from")
    p.add_argument("locust_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return p


def locustfile() -> str:
    spec = importlib.util.find_spec("gwsreplay.load.locustfile")
    assert spec is not None and spec.origin is not None
    return spec.origin


def run(args: argparse.Namespace) -> int:
    if args.users < 1:
        raise UserError("--users must be at least 1")
    if not args.run_time and not args.iterations:
        raise UserError("give --run-time T (e.g. 10m) or --iterations K")
    try:
        recorded = load_capture(args.db)
    except FileNotFoundError:
        raise UserError(f"capture not found: {args.db}") from None
    except CaptureError as exc:
        raise UserError(str(exc)) from None
    if not recorded.sessions:
        raise UserError(f"{args.db} holds no agent session")
    plan = build_plan(recorded)
    try:
        check_target(plan.recorded_origins, args.target, allow_recorded_host=args.allow_recorded_host)
    except ReplayRefused as exc:
        raise UserError(str(exc)) from None
    per_copy = agents_per_copy(plan)
    copies = max(1, args.users // per_copy)
    facts = simulator_facts(args.target)
    try:
        users = (UserMap.from_toml(args.user_map, simulator=facts is not None) if args.user_map
                 else UserMap.simulator() if facts is not None else None)
        if users is None:
            raise UserError(f"{args.target} is not the simulator and captures hold no passwords: "
                            f"give --user-map FILE with a [pool] (see docs/replay.md)")
        check_roster(plan, copies, users, facts)
    except UserMapError as exc:
        raise UserError(str(exc)) from None
    print(f"gwsreplay load: {copies * per_copy} virtual agents = {copies} copies of the capture's {per_copy} "
          f"agent(s), against {args.target}", file=sys.stderr, flush=True)
    command = locust_command(args, copies, per_copy)
    return subprocess.call(command)


def locust_command(args: argparse.Namespace, copies: int, per_copy: int) -> list[str]:
    """The Locust command line for these settings (Locust's -u and -r count copies)."""
    command = [sys.executable, "-m", "locust", "-f", locustfile(), "--host", args.target.rstrip("/"),
               "-u", str(copies), "-r", f"{max(args.spawn_rate / per_copy, 0.01):g}",
               "--capture", str(args.db), "--speed", str(args.speed), "--wait-timeout", str(args.wait_timeout)]
    command += ["--autostart"] if args.web else ["--headless"]
    if args.run_time:
        command += ["-t", args.run_time]
    if args.iterations:
        command += ["--gws-iterations", str(args.iterations)]
    if args.processes:
        command += ["--processes", str(args.processes)]
    if args.csv:
        command += ["--csv", args.csv]
    if args.html:
        command += ["--html", args.html]
    if args.user_map:
        command += ["--user-map", str(args.user_map)]
    if args.no_out:
        command += ["--no-out"]
    elif args.out:
        command += ["--out", str(args.out)]
    extra = list(args.locust_args or [])
    return command + (extra[1:] if extra[:1] == ["--"] else extra)
