"""The simulator's control API (/sim/v1): what comes from outside the desktop.

Inbound calls, far-end hang-ups, service outages, customer chats, emails and
workitems have no desktop request behind them; scripted agents and the
replayer ask the simulator to make them happen. Against a real GWS there is no
control API: `detect` returns None and callers say what they cannot inject.
"""

from __future__ import annotations

from typing import Any

import aiohttp


class ControlError(Exception):
    """The simulator refused a control request."""


class ControlApi:
    def __init__(self, target: str, http: aiohttp.ClientSession):
        self.target = target.rstrip("/")
        self.http = http

    @classmethod
    async def detect(cls, target: str, http: aiohttp.ClientSession) -> "ControlApi | None":
        try:
            async with http.get(f"{target.rstrip('/')}/sim/v1/stats") as response:
                return cls(target, http) if response.status == 200 else None
        except aiohttp.ClientError:
            return None

    async def _post(self, path: str, body: dict | None = None) -> dict:
        async with self.http.post(f"{self.target}{path}", json=body or {}) as response:
            payload = await response.json(content_type=None)
            if response.status != 200:
                raise ControlError(f"POST {path} failed: HTTP {response.status} {payload}")
            return payload

    async def stats(self) -> dict:
        async with self.http.get(f"{self.target}/sim/v1/stats") as response:
            return await response.json()

    # ---- voice -------------------------------------------------------------
    async def inject_call(self, from_number: str, to_number: str, user_data: dict | None = None) -> dict:
        return await self._post("/sim/v1/calls", {"from": from_number, "to": to_number, "userData": user_data or {}})

    async def far_end_hangup(self, call_id: str) -> dict:
        return await self._post(f"/sim/v1/calls/{call_id}/hangup")

    async def set_service(self, service: str, state: str) -> dict:
        return await self._post(f"/sim/v1/services/{service}", {"state": state})

    # ---- multimedia ----------------------------------------------------------
    async def inject_chat(self, nickname: str, to: str | None = None, message: str | None = None,
                          user_data: dict | None = None, subject: str | None = None) -> str:
        body: dict[str, Any] = {"from": {"nickname": nickname}, "to": to}
        for key, value in (("message", message), ("userData", user_data), ("subject", subject)):
            if value is not None:
                body[key] = value
        return (await self._post("/sim/v1/chats", body))["id"]

    async def chat_message(self, chat_id: str, text: str | None = None, kind: str = "Text") -> dict:
        return await self._post(f"/sim/v1/chats/{chat_id}/messages", {"text": text, "type": kind})

    async def customer_leaves(self, chat_id: str) -> dict:
        return await self._post(f"/sim/v1/chats/{chat_id}/leave")

    async def inject_email(self, from_address: str, to: str | None = None, subject: str = "",
                           body: str = "", user_data: dict | None = None) -> str:
        payload: dict[str, Any] = {"from": from_address, "to": to, "subject": subject, "body": body}
        if user_data is not None:
            payload["userData"] = user_data
        return (await self._post("/sim/v1/emails", payload))["id"]

    async def inject_workitem(self, to: str | None = None, user_data: dict | None = None,
                              media_type: str | None = None) -> str:
        payload: dict[str, Any] = {"to": to}
        if user_data is not None:
            payload["userData"] = user_data
        if media_type is not None:
            payload["mediaType"] = media_type
        return (await self._post("/sim/v1/workitems", payload))["id"]
