"""The `gwsreplay` console script: one module per subcommand, wired in main.py."""

from gwsreplay.cli.main import main

__all__ = ["main"]
