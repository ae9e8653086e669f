"""What the Jetty CometD server of GWS adds to plain Bayeux, kept out of cometd_server.py.

* `AckBatches`: the server side of CometD's acknowledged-messages extension
  (the official clients' AckExtension). A client that handshakes with
  ``ext.ack: true`` gets ``ext.ack: true`` back; from then on its events travel
  only in /meta/connect replies, each reply carries ``ext.ack: <batch>``, and
  the client's next connect acknowledges with ``ext.ack: <last batch seen>``.
  Events of batches it has not acknowledged are sent again with the next
  connect reply, so a reply lost with a dropped connection is not lost.
* `Browsers`: the BAYEUX_BROWSER cookie logic of CometD's long-polling
  transport: one held /meta/connect per browser; another client of the same
  browser is answered at once with ``advice.multiple-clients: true`` and a
  poll interval (a second tab).
* `UserMonitor`: GWS's user monitor: once a user's last CometD client is gone
  (expired or disconnected), the agent is logged out after ``logout_timeout``
  seconds unless a client of the same user has come back by then.

Behaviour and choices: docs/cometd.md.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from typing import Callable

log = logging.getLogger(__name__)

BROWSER_COOKIE = "BAYEUX_BROWSER"
MULTI_SESSION_INTERVAL_MS = 2000  # CometD's multiSessionInterval default
DEFAULT_LOGOUT_TIMEOUT = 60.0     # seconds


@dataclass
class AckBatches:
    """One client's acknowledged-messages state: the next batch number and what is not acknowledged."""

    batch: int = 0
    unacked: list[tuple[int, dict]] = field(default_factory=list)  # (batch, event) in delivery order

    @staticmethod
    def wanted(handshake: dict) -> bool:
        ext = handshake.get("ext")
        return isinstance(ext, dict) and ext.get("ack") is True

    def on_connect(self, message: dict) -> list[dict]:
        """Forget acknowledged batches; return the events to send again (not acknowledged)."""
        ext = message.get("ext")
        acked = ext.get("ack") if isinstance(ext, dict) else None
        if isinstance(acked, int) and not isinstance(acked, bool):
            self.unacked = [(b, e) for b, e in self.unacked if b > acked]
        again = [e for _, e in self.unacked]
        self.unacked = []
        return again

    def deliver(self, events: list[dict]) -> dict:
        """Put `events` into the next batch; returns the ext of the connect reply that carries them."""
        number = self.batch
        self.batch += 1
        self.unacked.extend((number, e) for e in events)
        return {"ack": number}


class Browsers:
    """Which clients of each browser (BAYEUX_BROWSER cookie) hold a long-poll right now."""

    def __init__(self, seed: int, max_per_browser: int = 1):
        self._random = random.Random(f"bayeux-browser/{seed}")
        self.max_per_browser = max_per_browser
        self._holding: dict[str, set[str]] = {}

    def new_id(self) -> str:
        return "%032x" % self._random.getrandbits(128)

    def may_hold(self, browser: str | None, client_id: str) -> bool:
        """Register `client_id` as holding a connect for `browser`; False if the browser has enough."""
        if not browser:
            return True
        holding = self._holding.setdefault(browser, set())
        if client_id in holding or len(holding) < self.max_per_browser:
            holding.add(client_id)
            return True
        return False

    def released(self, browser: str | None, client_id: str) -> None:
        holding = self._holding.get(browser or "")
        if holding is not None:
            holding.discard(client_id)
            if not holding:
                del self._holding[browser]

    @staticmethod
    def advice(timeout_ms: int) -> dict:
        return {"reconnect": "retry", "interval": MULTI_SESSION_INTERVAL_MS, "timeout": timeout_ms,
                "multiple-clients": True}


class UserMonitor:
    """Log out users whose CometD clients have all been gone for `timeout` seconds."""

    def __init__(self, timeout: float | None, on_logout: Callable[[str], None] | None):
        self.timeout = timeout
        self.on_logout = on_logout
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self.logged_out: list[str] = []  # users logged out by the monitor, in order (stats, tests)

    def gone(self, user_name: str) -> None:
        """The user's last client went away: start the clock."""
        if self.on_logout is None or self.timeout is None or self.timeout < 0:
            return
        self.back(user_name)
        loop = asyncio.get_running_loop()
        self._timers[user_name] = loop.call_later(self.timeout, self._fire, user_name)

    def back(self, user_name: str) -> None:
        """A client of the user exists again (or the user logged out anyway): stop the clock."""
        timer = self._timers.pop(user_name, None)
        if timer is not None:
            timer.cancel()

    def _fire(self, user_name: str) -> None:
        self._timers.pop(user_name, None)
        log.info("user monitor: %s has had no CometD session for %gs, logging out", user_name, self.timeout)
        self.logged_out.append(user_name)
        try:
            self.on_logout(user_name)
        except Exception:  # noqa: BLE001 - a timer callback must not take the loop's handler down
            log.exception("user monitor: logging out %s failed", user_name)

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
