"""The replay step of `gwsreplay demo`: the demo capture, replayed against a fresh simulator.

`gwsreplay/demo.py` records scripted agents through the capture proxy into
captures/demo.duckdb; this replays every recorded session against a new
simulator started with the same roster size, seed and answer delay, records the
replay next to the capture (captures/demo-replay.duckdb, where the
replay_comparison notebook looks for it) and prints the divergence summary.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from gwsreplay.cli.processes import child, free_port, gwsreplay_command
from gwsreplay.cli.replay import run_with_progress
from gwsreplay.drivers.report import print_report
from gwsreplay.drivers.runner import ReplayOptions
from gwsreplay.replay.engine import EngineOptions
from gwsreplay.replay.recorded import read_plan
from gwsreplay.replay.users import UserMap


def replay_demo_capture(db: Path, *, agents: int, seed: int, answer_delay: float = 0.3,
                        out: Path | None = None, console=None) -> int:
    """Replay `db` against a fresh simulator child process; print the summary; 0 when nothing diverged."""
    console = console or Console()
    db = Path(db)
    out = Path(out) if out else db.with_name(db.stem + "-replay.duckdb")
    for stale in (out, Path(str(out) + ".wal")):   # a replay of an earlier demo capture
        stale.unlink(missing_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = gwsreplay_command() + ["sim", "--listen-port", str(port), "--agents", str(agents), "--seed", str(seed),
                                     "--answer-delay", str(answer_delay)]
    plan = read_plan(db)
    console.print(f"replay         {len(plan.sessions)} recorded session(s) against a fresh simulator {url} "
                  f"(seed {seed}) -> {out.name}")
    with child(command, f"{url}/api/v2/diagnostics/version", log=out.with_name("demo-replay-simulator.log")):
        result = run_with_progress(plan, ReplayOptions(target=url, out=out, simulator=True, users=UserMap.simulator(),
                                                       engine=EngineOptions()), console=console)
    print_report(result, console)
    return result.exit_code
