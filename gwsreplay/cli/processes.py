"""Start gwsreplay's own servers as child processes and wait until they listen.

The demo and the end-to-end tests run the simulator and the capture proxy as
separate processes, as a user would, so each has its own event loop and a
crash in one is visible as an exit code rather than a hung test.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.error import URLError
from urllib.request import urlopen


def gwsreplay_command() -> list[str]:
    # -P: the user's working directory is not put on sys.path, so a stray aiohttp.py or
    # gwsreplay/ folder there cannot shadow the installed package in the children.
    return [sys.executable, "-P", "-m", "gwsreplay"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 20.0, process: subprocess.Popen | None = None) -> None:
    """Poll url until it answers (any HTTP status), or fail with the child's output."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            with urlopen(url, timeout=2):
                return
        except URLError as exc:
            if getattr(exc, "code", None):  # an HTTP error status is an answer
                return
            time.sleep(0.1)
        except (ConnectionError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


@contextmanager
def child(args: list[str], ready_url: str, *, log: Path | None = None, timeout: float = 30.0,
          stop_signal: int = signal.SIGINT, cwd: Path | None = None,
          env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """Run `args`, wait for ready_url, and stop the child with stop_signal on exit.

    The child runs in `cwd`, by default our own working directory: where the user is, not a
    checkout (the installed tool has none).
    """
    out = open(log, "wb") if log else subprocess.DEVNULL
    env = {**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env)
    try:
        wait_http(ready_url, timeout, process)
        yield process
    finally:
        stop(process, stop_signal)
        if log:
            out.close()


def stop(process: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 20.0) -> int:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def listening_port(line: str) -> int | None:
    match = re.search(r"http://[\d.]+:(\d+)", line)
    return int(match.group(1)) if match else None
