"""The `gwsreplay` console script.

Each subcommand is a module of this package exposing ``add_parser(subparsers)``
and ``run(args) -> int``. Only the chosen subcommand's module is imported, so
`gwsreplay sim` does not load mitmproxy and `gwsreplay --help` loads nothing
heavy; the one-line summaries below are what `gwsreplay --help` lists. This file
also turns expected failures (gwsreplay.core.errors.UserError) into one clear
line instead of a traceback: the only place that knows exit codes.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from gwsreplay import __version__
from gwsreplay.cli.options import show_defaults
from gwsreplay.core.errors import UserError

# subcommand -> (module providing add_parser/run, one-line summary)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "sim": ("gwsreplay.cli.sim", "run the GWS simulator (REST + CometD + control API on one port)"),
    "agents": ("gwsreplay.cli.agents", "run scripted agent desktops against a GWS"),
    "record": ("gwsreplay.cli.record", "record GWS REST + CometD through a proxy into a DuckDB capture"),
    "import": ("gwsreplay.cli.import_capture", "import a browser HAR or a mitmproxy flow file into a capture"),
    "export": ("gwsreplay.cli.export", "export a capture's tables and views as Parquet"),
    "snapshot": ("gwsreplay.cli.snapshot", "copy a (live) capture for analysis"),
    "index": ("gwsreplay.cli.index", "(re)compute a capture's operations table (older captures, edited rules)"),
    "merge": ("gwsreplay.cli.merge", "combine captures of several proxies into one (ids re-based, clocks compared)"),
    "replay": ("gwsreplay.cli.replay", "replay recorded agent sessions against a GWS (ids mapped, causality kept)"),
    "load": ("gwsreplay.cli.load", "replay recorded agent sessions as load on Locust (virtual agents, workers)"),
    "mock": ("gwsreplay.cli.mock", "act as GWS toward a desktop, answering from a recorded session"),
    "report": ("gwsreplay.cli.report", "run the analysis notebooks headless and write a self-contained HTML report"),
    "demo": ("gwsreplay.cli.demo", "simulator + capture proxy + scripted agents + replay + report, end to end"),
}

DESCRIPTION = "Record, replay and analyse Genesys Web Services (GWS) REST + CometD traffic."


def _top_parser() -> argparse.ArgumentParser:
    commands = "\n".join(f"  {name:<10} {summary}" for name, (_, summary) in SUBCOMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="gwsreplay", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"commands:\n{commands}\n\n`gwsreplay COMMAND --help` shows a command's options.")
    parser.add_argument("--version", action="version", version=f"gwsreplay {__version__}")
    parser.add_argument("command", metavar="COMMAND", choices=list(SUBCOMMANDS), help="one of the commands below")
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def build_parser(command: str) -> argparse.ArgumentParser:
    """The full parser of one subcommand (its module imported now)."""
    module = importlib.import_module(SUBCOMMANDS[command][0])
    parser = argparse.ArgumentParser(prog="gwsreplay", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    command_parser = module.add_parser(sub)
    command_parser.set_defaults(_run=module.run)
    show_defaults(command_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _top_parser().parse_args(argv[:1] if argv and not argv[0].startswith("-") else argv).command
    try:
        args = build_parser(command).parse_args(argv)
        return int(args._run(args) or 0)
    except UserError as exc:
        print(f"gwsreplay {command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # last resort: one line for the user, the traceback on request
        if os.environ.get("GWSREPLAY_DEBUG"):
            traceback.print_exc()
        print(f"gwsreplay {command}: unexpected error: {type(exc).__name__}: {exc}\n"
              f"(set GWSREPLAY_DEBUG=1 to see the traceback; please report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
