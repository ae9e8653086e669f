"""The CLI as people expect it: every default in --help, one spelling per concept across subcommands.

Walks every subcommand's parser as `gwsreplay COMMAND --help` builds it (cli.main.build_parser).
"""

from __future__ import annotations

import argparse
import os
import subprocess

import pytest

from conftest import gwsreplay_command
from gwsreplay.cli.main import SUBCOMMANDS, build_parser
from gwsreplay.cli.options import shows_default
from replay_fixtures import capture

SERVERS = ("sim", "mock", "record")          # listen on --listen-host / --listen-port
CLIENTS = ("agents", "replay", "load")        # name the GWS with --target


def command_parser(command: str) -> argparse.ArgumentParser:
    parser = build_parser(command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


def visible(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.help is not argparse.SUPPRESS and a.option_strings
            and not isinstance(a, argparse._HelpAction)]


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(autouse=True)
def wide_help(monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")      # argparse wraps at hyphens too; one line per option here


@pytest.mark.parametrize("command", list(SUBCOMMANDS))
def test_every_default_is_shown_once_in_help(command):
    parser = command_parser(command)
    text = flat(parser.format_help())
    formatter = parser._get_formatter()
    for action in visible(parser):
        line = formatter._get_help_string(action) or ""
        said = line.count("(default") - line.count("%(default")       # "(default: 600)", "(default 600)", ...
        assert said <= 1, (command, action.option_strings, line)
        if shows_default(action):
            assert f"(default: {action.default})" in text, (command, action.option_strings, action.default)


def test_defaults_show_in_the_real_help_output():
    result = subprocess.run(gwsreplay_command() + ["sim", "--help"], capture_output=True, text=True, timeout=60,
                            env={"COLUMNS": "300", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    out = flat(result.stdout)
    for shown in ("--listen-port PORT port to listen on; 0 picks a free one (default: 8090)",
                  "(default: 127.0.0.1)", "--agents AGENTS default roster size agent1..agentN (default: 10)"):
        assert shown in out, out
    assert "--host" not in out and "--port " not in out and "--users" not in out


def test_one_spelling_per_concept():
    """An option stored under the same name is spelled the same way in every subcommand that has it."""
    spellings: dict[str, dict[str, str]] = {}
    for command in SUBCOMMANDS:
        for action in visible(command_parser(command)):
            long = [o for o in action.option_strings if o.startswith("--")]
            spellings.setdefault(action.dest, {})[command] = long[0] if long else action.option_strings[0]
    mixed = {dest: by for dest, by in spellings.items() if len(set(by.values())) > 1}
    assert not mixed, mixed
    for command in SERVERS:
        assert spellings["listen_host"][command] == "--listen-host"
        assert spellings["listen_port"][command] == "--listen-port"
    for command in CLIENTS:
        assert spellings["target"][command] == "--target"
    assert spellings["roster"] == {"sim": "--roster"}
    hidden_or_other = {"--host", "--port", "--url", "--gws", "--server", "--base-url", "--bind", "--all"}
    for command in SUBCOMMANDS:
        shown = {o for a in visible(command_parser(command)) for o in a.option_strings}
        assert not shown & hidden_or_other, (command, shown & hidden_or_other)


@pytest.mark.parametrize("command", ["sim", "mock"])
def test_the_older_spellings_still_work(command):
    extra = ["--db", "x.duckdb"] if command == "mock" else ["--users", "r.toml"]
    args = build_parser(command).parse_args([command, "--host", "0.0.0.0", "--port", "0", *extra])
    assert (args.listen_host, args.listen_port) == ("0.0.0.0", 0)
    if command == "sim":
        assert args.roster == "r.toml"
    default = build_parser(command).parse_args([command, *extra])
    assert (default.listen_host, default.listen_port) == ("127.0.0.1", 8090)


def test_replay_all_is_hidden_and_contradicts_session():
    args = build_parser("replay").parse_args(["replay", "--db", "x", "--target", "http://t", "--all"])
    assert args.all and args.session == []
    result = subprocess.run(gwsreplay_command() + ["replay", "--db", "x.duckdb", "--target", "http://127.0.0.1:9",
                                                   "--all", "--session", "agent1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stderr.strip() == (
        "gwsreplay replay: error: --session names the sessions to replay, --all asks for every one: give one of them")


def test_dry_run_is_readable_when_piped():
    """Piped, --dry-run is plain tab-separated lines, nothing cut at 80 columns (rich tables were)."""
    db = capture("long-polling")
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE")}
    result = subprocess.run(gwsreplay_command() + ["replay", "--db", str(db), "--target", "http://127.0.0.1:9",
                                                   "--dry-run", "--session", "agent1"],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"plan for {db} (recorded from http://")
    assert "session agent1: agent1, long-polling" in result.stdout
    header = lines.index("#\tat s\tthink s\tstep\trecorded\twaits for")
    steps = [ln.split("\t") for ln in lines[header + 1:] if ln]
    assert steps and all(len(s) == 6 for s in steps), steps[:3]
    assert [int(s[0]) for s in steps] == list(range(len(steps)))
    assert any(s[3] == "POST /me StartContactCenterSession" for s in steps), [s[3] for s in steps][:10]
    assert "…" not in result.stdout and "┃" not in result.stdout and "\x1b[" not in result.stdout
    assert any(len(ln) > 80 for ln in lines) or all(len(s[5]) == 0 for s in steps)
