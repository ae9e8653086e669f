"""A headless agent desktop: one agent's REST session, CometD session and state.

It mirrors what a real desktop knows — its device and its calls — from the
notifications it receives, so scripts can say "wait until this call rings"
instead of sleeping. Scripted agents, the demo and tests are built on it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from gwsreplay.client.cometd import CometdClient
from gwsreplay.client.rest import ConnectOptions, GWSClient

VOICE_CHANNEL = "/api/v2/me/channels/voice"


class DesktopError(Exception):
    """An operation was refused (statusCode != 0) or an expected notification never came."""


@dataclass
class OperationResult:
    operation: str
    http_status: int
    status_code: int | None
    latency_ms: float
    body: Any = None


@dataclass
class DesktopCounters:
    operations: int = 0
    errors: int = 0
    notifications: int = 0
    latencies_ms: list[float] = field(default_factory=list)


class Desktop:
    def __init__(self, base_url: str, user_name: str, password: str = "password",
                 *, transport: str = "long-polling", wait_timeout: float = 10.0,
                 connect: ConnectOptions | None = None):
        self.user_name = user_name
        self.rest = GWSClient(base_url, user_name, password, connect=connect)
        self.transport = transport
        self.wait_timeout = wait_timeout
        self.cometd: CometdClient | None = None
        self.device: dict = {}
        self.calls: dict[str, dict] = {}  # call id -> latest call resource
        self.notifications: list[dict] = []  # every data message, in arrival order
        self.counters = DesktopCounters()
        self._changed = asyncio.Condition()
        self._pump: asyncio.Task | None = None

    # ---- session -------------------------------------------------------
    async def login(self, channels: tuple[str, ...] = ("voice",)) -> str:
        """GET /me (cookie + CSRF), CometD handshake + /v2/me/*, StartContactCenterSession, device.

        Returns the device id.
        """
        await self.rest.me()
        self.cometd = self.rest.cometd(self.transport)
        await self.cometd.handshake()
        await self.cometd.subscribe("/v2/me/*")
        self._pump = asyncio.create_task(self._pump_notifications(), name=f"pump-{self.user_name}")
        await self.operation("/api/v2/me", "StartContactCenterSession", channels=list(channels))
        devices = await self.rest.get("/api/v2/me/devices", fields="*")
        self.device = devices.body["devices"][0]
        return self.device["id"]

    async def logout(self) -> None:
        """Disconnect CometD first, then end the session (as the GWS sample does)."""
        if self.cometd is not None:
            try:
                await self.cometd.disconnect()
            except Exception:  # the session may already be gone; logging out matters more
                pass
        try:
            await self.operation("/api/v2/me", "EndContactCenterSession", check=False)
        finally:
            if self._pump:
                self._pump.cancel()
            await self.rest.close()

    # ---- operations ----------------------------------------------------
    async def operation(self, path: str, operation_name: str, *, check: bool = True, **params: Any) -> OperationResult:
        started = time.perf_counter()
        response = await self.rest.post(path, {"operationName": operation_name, **params})
        latency = (time.perf_counter() - started) * 1000
        body = response.body if isinstance(response.body, dict) else {}
        result = OperationResult(operation_name, response.status, body.get("statusCode"), latency, response.body)
        self.counters.operations += 1
        self.counters.latencies_ms.append(latency)
        if response.status != 200 or result.status_code not in (0, 7):
            self.counters.errors += 1
            if check:
                raise DesktopError(f"{self.user_name} {operation_name} -> HTTP {response.status} {response.body}")
        return result

    async def agent_state(self, operation_name: str, **params: Any) -> OperationResult:
        return await self.operation(VOICE_CHANNEL, operation_name, **params)

    async def dial(self, number: str, **params: Any) -> OperationResult:
        return await self.operation(f"/api/v2/me/devices/{self.device['id']}/calls", "Dial",
                                    destination={"phoneNumber": number}, **params)

    async def call_op(self, call_id: str, operation_name: str, **params: Any) -> OperationResult:
        return await self.operation(f"/api/v2/me/calls/{call_id}", operation_name, **params)

    # ---- waiting on notifications --------------------------------------
    async def wait_call(self, predicate: Callable[[dict], bool], timeout: float | None = None) -> dict:
        """The first call (current state) satisfying predicate, waiting for notifications if needed."""
        return await self._wait(lambda: next((c for c in self.calls.values() if predicate(c)), None), timeout)

    async def wait_device(self, predicate: Callable[[dict], bool], timeout: float | None = None) -> dict:
        return await self._wait(lambda: self.device if self.device and predicate(self.device) else None, timeout)

    async def wait_until(self, condition: Callable[[], bool], timeout: float | None = None) -> None:
        await self._wait(lambda: True if condition() else None, timeout)

    async def _wait(self, probe: Callable[[], Any], timeout: float | None) -> Any:
        try:
            async with asyncio.timeout(timeout or self.wait_timeout):
                async with self._changed:
                    while (found := probe()) is None:
                        await self._changed.wait()
                    return found
        except TimeoutError:
            raise DesktopError(f"{self.user_name}: timed out waiting for a notification") from None

    async def _pump_notifications(self) -> None:
        assert self.cometd is not None
        while True:
            message = await self.cometd.events.get()
            data = message.get("data") or {}
            self.notifications.append(message)
            self.counters.notifications += 1
            kind = data.get("messageType")
            if kind == "DeviceStateChangeMessage" and data.get("devices"):
                self.device = data["devices"][0]
            elif kind == "CallStateChangeMessage" and data.get("call"):
                call = data["call"]
                self.calls[call["id"]] = call  # released calls stay until forget_released()
            async with self._changed:
                self._changed.notify_all()

    def forget_released(self) -> None:
        for call_id in [c for c, call in self.calls.items() if call.get("state") == "Released"]:
            del self.calls[call_id]
