"""The console script on bad input: one clear line, a non-zero exit code, never a traceback."""

from __future__ import annotations

import subprocess

import pytest

from conftest import gwsreplay_command


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(gwsreplay_command() + list(args), capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def not_a_capture(tmp_path):
    path = tmp_path / "notes.duckdb"
    path.write_text("this is not a DuckDB file")
    return str(path)


@pytest.mark.parametrize("args", [
    ["replay", "--db", "{bad}", "--target", "http://127.0.0.1:9"],
    ["mock", "--db", "{bad}"],
    ["report", "--db", "{bad}"],
    ["export", "--db", "{bad}", "--parquet", "{tmp}/out"],
    ["replay", "--db", "{tmp}/missing.duckdb", "--target", "http://127.0.0.1:9"],
    ["import", "{tmp}/missing.har"],
    ["import", "{bad}", "--format", "har"],
    ["sim", "--users", "{tmp}/missing.toml"],
    ["record", "--upstream", "not-a-url", "--db", "{tmp}/x.duckdb"],
    ["agents", "--target", "http://127.0.0.1:9", "--agents", "1", "--duration", "1", "--channels", "fax"],
])
def test_bad_input_gets_one_clear_line(args, not_a_capture, tmp_path):
    args = [a.format(bad=not_a_capture, tmp=tmp_path) for a in args]
    result = run(*args)
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    assert f"gwsreplay {args[0]}: error:" in result.stderr
