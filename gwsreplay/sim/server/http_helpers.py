"""What the simulator's HTTP handlers share: GWS-style JSON answers, the request body
reader and the application key of the model.

Its own module so that app.py (the front) and media_control.py (the multimedia
control API) both import it instead of each other.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import hdrs, web

from gwsreplay.sim.model.contact_center import ContactCenter

CONTACT_CENTER = web.AppKey("contact_center", ContactCenter)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    """JSON with the bare ``Content-Type: application/json`` GWS sends (no charset)."""
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        headers={hdrs.CONTENT_TYPE: "application/json", **(headers or {})},
    )


def gws_error(http_status: int, status_code: int, message: str) -> web.Response:
    return json_response(http_status, {"statusCode": status_code, "statusMessage": message})


async def read_json_body(request: web.Request, *, required: bool | None = None) -> Any:
    """Parse the request body, or return the GWS-style 400 to send instead.

    POST and PUT need a JSON object; DELETE may have one; GET bodies are ignored.
    """
    if required is None:
        if request.method in ("GET", "HEAD"):
            return None
        required = request.method in ("POST", "PUT", "PATCH")
    raw = await request.read()
    if not raw.strip():
        if required:
            return gws_error(400, 1, "Request body is missing: a JSON object is required")
        return None
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        return gws_error(400, 2, f"Request body is not valid JSON: {_short(exc)}")
    if not isinstance(body, dict):
        return gws_error(400, 2, "Request body must be a JSON object")
    return body


def _short(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."
