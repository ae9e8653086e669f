"""The `gwsreplay` console script.

Each subcommand lives next to the code it drives, as a module exposing
``add_parser(subparsers)`` and ``run(args) -> int``. This file only wires them
together and turns expected failures into one clear line instead of a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

# (subcommand, module providing add_parser/run)
SUBCOMMANDS = [
    ("sim", "gws_simulator.cli"),
    ("agents", "gws_client.agents_cli"),
    ("record", "gws_capture.record_cli"),
    ("import", "gws_capture.import_cli"),
    ("export", "gws_capture.export_cli"),
    ("snapshot", "gws_capture.snapshot_cli"),
    ("replay", "gws_replayer.replay_cli"),
    ("mock", "gws_replayer.mock_cli"),
    ("report", "analysis.report_cli"),
    ("demo", "gwsreplay.demo"),
]


class UserError(Exception):
    """An expected failure: printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gwsreplay",
        description="Record, replay and analyse Genesys Web Services (GWS) REST + CometD traffic.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in SUBCOMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # subcommand not built yet
            raise
        p = module.add_parser(sub)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except UserError as exc:
        print(f"gwsreplay {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # last resort: one line for the user, the traceback on request
        if os.environ.get("GWSREPLAY_DEBUG"):
            traceback.print_exc()
        print(f"gwsreplay {args.command}: unexpected error: {type(exc).__name__}: {exc}\n"
              f"(set GWSREPLAY_DEBUG=1 to see the traceback; please report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
