"""The shipped locustfile: recorded GWS agent sessions as Locust load.

    locust -f $(python -c 'import gwsreplay.load.locustfile as m; print(m.__file__)') \\
           --capture captures/NAME.duckdb --host http://gws:8090 -u 50 -r 5 -t 10m --headless

`--host` is the GWS to replay against; `-u` counts *copies* of the capture (a
copy is all its recorded agents, who call each other; `gwsreplay load --users N`
counts virtual agents and does the division). Run `--master` here and
`--worker --master-host HOST` on other machines to add load. The options below
(`--capture`, `--user-map`, `--speed`, `--out`, `--gws-iterations`, ...) are
declared through Locust's own command-line hook, so the master sends them to
its workers. See docs/replay.md, "Load".
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from locust import events
from locust.stats import StatsCSVFileWriter

from gwsreplay.replay.users import UserMapError

from gwsreplay.load.user import GwsCopyUser, check_before_start, register

__all__ = ["GwsCopyUser"]
log = logging.getLogger(__name__)


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    group = parser.add_argument_group("gwsreplay", "replay of recorded GWS agent sessions")
    group.add_argument("--capture", default="", help="capture file with the recorded agent sessions")
    group.add_argument("--user-map", default="", help="TOML user map; its [pool] gives the virtual agents' users "
                                                      "(default on the simulator: agent1, agent2, ...)")
    group.add_argument("--speed", default="1", help="1 = the recorded pace (default), 4 = four times faster, max")
    group.add_argument("--out", default="", help="replay output file (default: CAPTURE-load.duckdb beside it)")
    group.add_argument("--no-out", action="store_true", default=False, help="do not write the replay output file")
    group.add_argument("--gws-iterations", type=int, default=0,
                       help="replay each copy this many times, then stop (0: until --run-time)")
    group.add_argument("--gws-summary", default="", help="write the run's figures (count, p50/p99 per entry "
                                                         "type, divergences, peak copies) to this JSON file")
    group.add_argument("--wait-timeout", type=float, default=10.0,
                       help="seconds a request may wait for the notifications that preceded it")
    group.add_argument("--drain-timeout", type=float, default=5.0,
                       help="seconds a session waits for its last notifications")


@events.init.add_listener
def _init(environment, **_: Any) -> None:
    register(environment)
    try:
        check_before_start(environment)
    except FileNotFoundError as exc:
        _refuse(f"capture not found: {exc}")
    except (UserMapError, ValueError) as exc:
        _refuse(str(exc))


_locust_stats_writer = StatsCSVFileWriter.stats_writer


def _stats_writer_until_closed(self: StatsCSVFileWriter) -> None:
    """Locust 2.47 closes its CSV files at exit while this writer greenlet still runs, which then
    printed "I/O operation on closed file" tracebacks after `--csv` runs: the writer ends quietly."""
    try:
        _locust_stats_writer(self)
    except ValueError:
        if not self.requests_csv_filehandle.closed:
            raise


StatsCSVFileWriter.stats_writer = _stats_writer_until_closed


def _refuse(text: str) -> None:
    """One clear line, exit code 2, before any user starts."""
    print(f"gwsreplay load: error: {text}", file=sys.stderr, flush=True)
    sys.exit(2)
