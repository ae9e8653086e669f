"""The one fake clock of the test suite.

Time moves only when a test says so (`advance`), and the timers that fall due on
the way fire in due order, as the asyncio loop would fire them: a model under
test sees exactly the scheduler protocol it sees in the simulator
(gwsreplay.sim.model.core.Scheduler: now() and call_later() -> handle.cancel()).
"""

from __future__ import annotations

import heapq
from typing import Any, Callable


class ManualClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.t = start
        self._queue: list[list[Any]] = []
        self._seq = 0

    def now(self) -> float:
        return self.t

    def call_later(self, delay: float, callback: Callable[[], None]) -> "_Handle":
        self._seq += 1
        entry = [self.t + delay, self._seq, callback, False]
        heapq.heappush(self._queue, entry)
        return _Handle(entry)

    def advance(self, seconds: float) -> None:
        """Move time forward, firing every timer that falls due on the way, in order."""
        end = self.t + seconds
        while self._queue and self._queue[0][0] <= end:
            due, _, callback, cancelled = heapq.heappop(self._queue)
            self.t = due
            if not cancelled:
                callback()
        self.t = end

    @property
    def pending(self) -> int:
        return sum(1 for entry in self._queue if not entry[3])


class _Handle:
    def __init__(self, entry: list[Any]) -> None:
        self._entry = entry

    def cancel(self) -> None:
        self._entry[3] = True
