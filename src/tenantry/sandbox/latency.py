"""The latency a sandbox simulator adds to a request, kept to what was asked."""

from __future__ import annotations

import asyncio
import time


class Latency:
    """Injected delays that last as long as asked, on average.

    An event loop ends a sleep late: its timers count in whole milliseconds (libuv, epoll) and the task resumes
    only when the loop gets to it, so a 20 ms sleep takes about 20.8 ms. Each sleep here is shortened by the
    lateness seen so far (a moving average, at most ``MAX_CORRECTION``), so that a configured latency is the
    latency added; :meth:`wait` returns the delay measured.
    """

    MAX_CORRECTION = 0.002  # seconds: timer granularity, not a loop too busy to keep time
    WEIGHT = 0.1

    def __init__(self) -> None:
        self.lateness = 0.0

    async def wait(self, seconds: float) -> float:
        asked = max(0.0, seconds - self.lateness)
        began = time.monotonic()
        await asyncio.sleep(asked)
        took = time.monotonic() - began
        moved = self.lateness + self.WEIGHT * ((took - asked) - self.lateness)
        self.lateness = min(max(moved, 0.0), self.MAX_CORRECTION)
        return took
