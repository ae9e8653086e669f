"""A mitmproxy content view for CometD bodies: one line per Bayeux message.

    mitmproxy -s proxy_addons/bayeux_view.py ...      (or mitmweb; pick "Bayeux" as the view)

Each message of a long-poll body or WebSocket frame is shown with its channel, id,
clientId, successful/error and, for GWS notifications, messageType, notificationType
and the resource and state it concerns (the capture's classification), followed by its
data as indented JSON. Works with
mitmproxy 11 (``contentviews.View``) and 12 (``contentviews.Contentview``).
"""

from __future__ import annotations

import json

from mitmproxy import contentviews

from gwsreplay.capture import bayeux_extract
from gwsreplay.capture.classify import classify_bayeux

MAX_DATA_LINES = 200     # per message: a long chat transcript stays readable, a hostile one bounded


def render(data: bytes) -> str:
    """The text of the view (also handy outside mitmproxy)."""
    text = data.decode("utf-8", "replace")
    msgs, err, _ = bayeux_extract.decode(text)
    lines = []
    for i, m in enumerate(msgs):
        c = classify_bayeux(m)
        parts = [f"[{i}]", c.channel or "?"]
        for label, value in (("id", c.msg_id), ("clientId", c.client_id), ("connectionType", c.connection_type),
                             ("subscription", c.subscription), ("error", c.error)):
            if value is not None:
                parts.append(f"{label}={value}")
        if c.successful is not None:
            parts.append("ok" if c.successful else "FAILED")
        if c.message_type:
            parts.append(c.message_type + (f"/{c.notification_type}" if c.notification_type else ""))
        if c.resource_type:
            parts.append(f"{c.resource_type} {c.resource_id or '?'}" + (f" -> {c.resource_state}"
                                                                          if c.resource_state else ""))
        if c.reference_id:
            parts.append(f"referenceId={c.reference_id}")
        if c.error_message:
            parts.append(f"error={c.error_message!r}")
        lines.append("  ".join(parts))
        if c.data is not None:
            lines.extend(_pretty(c.data))
    if err:
        lines.append(f"(!) {err}")
    return "\n".join(lines) if lines else "(no Bayeux messages)"


def _pretty(data, limit: int = MAX_DATA_LINES) -> list[str]:
    """The message's data as indented JSON (what people read in mitmweb), cut after `limit` lines."""
    text = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False).splitlines()
    shown = ["      " + line for line in text[:limit]]
    if len(text) > limit:
        shown.append(f"      ... ({len(text) - limit} more lines)")
    return shown


def _is_bayeux(data: bytes, flow) -> float:
    path = getattr(getattr(flow, "request", None), "path", "") or ""
    if "/notifications" not in path:
        return 0
    head = data[:200].lstrip()
    return 2 if head[:1] in (b"[", b"{") and b'"channel"' in data[:4096] else 0


if hasattr(contentviews, "Contentview"):          # mitmproxy 12+
    class BayeuxContentview(contentviews.Contentview):  # type: ignore[misc, name-defined]
        name = "Bayeux"

        def prettify(self, data: bytes, metadata) -> str:
            return render(data)

        def render_priority(self, data: bytes, metadata) -> float:
            return _is_bayeux(data, getattr(metadata, "flow", None))

    contentviews.add(BayeuxContentview)
    addons: list = []
else:                                             # mitmproxy 11
    class ViewBayeux(contentviews.View):
        name = "Bayeux"

        def __call__(self, data: bytes, *, flow=None, **metadata):
            return "Bayeux", contentviews.base.format_text(render(data))

        def render_priority(self, data: bytes, *, flow=None, **metadata) -> float:
            return _is_bayeux(data, flow)

    _view = ViewBayeux()

    class _Register:
        def load(self, loader) -> None:
            contentviews.add(_view)

        def done(self) -> None:
            contentviews.remove(_view)

    addons = [_Register()]
