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

from gwsreplay.core.errors import UserError

# (subcommand, module providing add_parser/run)
SUBCOMMANDS = [
    ("sim", "gwsreplay.cli.sim"),
    ("agents", "gwsreplay.cli.agents"),
    ("record", "gwsreplay.cli.record"),
    ("import", "gwsreplay.cli.import_capture"),
    ("export", "gwsreplay.cli.export"),
    ("snapshot", "gwsreplay.cli.snapshot"),
    ("replay", "gwsreplay.cli.replay"),
    ("mock", "gwsreplay.cli.mock"),
    ("report", "gwsreplay.cli.report"),
    ("demo", "gwsreplay.cli.demo"),
]


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
