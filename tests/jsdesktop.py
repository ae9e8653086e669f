"""Drive tests/js/desktop.mjs (the official CometD JS client) from async tests.

One `JsDesktop` is one Node process, one agent, one browser-like session.
Its stdout is read into an asyncio queue of JSON events so tests can wait for
a specific notification with a timeout instead of sleeping.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "js" / "desktop.mjs"


def node_available() -> bool:
    return shutil.which("node") is not None and (ROOT / "node_modules" / "cometd").is_dir()


class JsDesktop:
    def __init__(self, url: str, user: str, password: str = "password", transport: str = "long-polling"):
        self.url, self.user, self.password, self.transport = url, user, password, transport
        self.events: list[dict] = []  # everything seen, for assertions after the fact
        self._claimed: set[int] = set()  # indexes of events already returned by wait_for
        self._arrived = asyncio.Event()
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task | None = None
        self._tag = 0

    async def __aenter__(self) -> "JsDesktop":
        self._proc = await asyncio.create_subprocess_exec(
            "node", str(SCRIPT), "--url", self.url, "--user", self.user,
            "--password", self.password, "--transport", self.transport,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, cwd=str(ROOT),
        )
        self._reader = asyncio.create_task(self._read())
        await self.wait_for(lambda e: e["event"] == "ready", timeout=20)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._proc and self._proc.returncode is None:
            try:
                self._send({"cmd": "exit"})
                await asyncio.wait_for(self._proc.wait(), 5)
            except (asyncio.TimeoutError, BrokenPipeError, ConnectionResetError):
                self._proc.kill()
                await self._proc.wait()
        if self._reader:
            self._reader.cancel()

    async def _read(self) -> None:
        assert self._proc and self._proc.stdout
        async for line in self._proc.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            self.events.append(event)
            self._arrived.set()

    def _send(self, command: dict) -> None:
        assert self._proc and self._proc.stdin
        self._proc.stdin.write((json.dumps(command) + "\n").encode())

    async def wait_for(self, predicate: Callable[[dict], bool], timeout: float = 10) -> dict:
        """The oldest event not yet returned that matches predicate, waiting if none has come yet.

        Notifications often arrive before the REST answer of the operation that
        caused them, so waiting must look at what has already arrived too.
        """
        try:
            async with asyncio.timeout(timeout):
                while True:
                    for index, event in enumerate(self.events):
                        if index not in self._claimed and predicate(event):
                            self._claimed.add(index)
                            return event
                    self._arrived.clear()
                    await self._arrived.wait()
        except TimeoutError:
            stderr = b""
            if self._proc and self._proc.returncode is not None and self._proc.stderr:
                stderr = await self._proc.stderr.read()
            raise AssertionError(
                f"{self.user}: no matching event within {timeout}s; last events: "
                f"{self.events[-5:]} {stderr.decode(errors='replace')}"
            ) from None

    async def rest(self, method: str, path: str, body: Any = None, timeout: float = 10) -> dict:
        self._tag += 1
        tag = self._tag
        self._send({"cmd": "rest", "method": method, "path": path, "body": body, "tag": tag})
        return await self.wait_for(lambda e: e["event"] == "rest" and e.get("tag") == tag, timeout)

    async def connect(self, timeout: float = 10) -> dict:
        self._send({"cmd": "connect"})
        return await self.wait_for(lambda e: e["event"] == "handshake", timeout)

    async def subscribe(self, channel: str, timeout: float = 10) -> dict:
        self._tag += 1
        tag = self._tag
        self._send({"cmd": "subscribe", "channel": channel, "tag": tag})
        return await self.wait_for(lambda e: e["event"] == "subscribe" and e.get("tag") == tag, timeout)

    async def disconnect(self, timeout: float = 10) -> dict:
        self._send({"cmd": "disconnect"})
        return await self.wait_for(lambda e: e["event"] == "disconnected", timeout)

    async def notification(self, channel: str, timeout: float = 10, **match: Any) -> dict:
        """Wait for a data message on `channel` whose data matches the given dotted keys."""

        def matches(event: dict) -> bool:
            if event["event"] != "message" or event["channel"] != channel:
                return False
            return all(_dig(event["data"], key) == value for key, value in match.items())

        return await self.wait_for(matches, timeout)


def _dig(data: Any, dotted: str) -> Any:
    for part in dotted.split("__"):
        if isinstance(data, list):
            data = data[int(part)] if part.isdigit() and int(part) < len(data) else None
        elif isinstance(data, dict):
            data = data.get(part)
        else:
            return None
    return data
