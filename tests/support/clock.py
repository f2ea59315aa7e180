"""A clock tests move by hand, so expiry and refresh intervals pass without sleeping."""

from __future__ import annotations


class ManualClock:
    """Float seconds, as ``time.time``/``time.monotonic`` give them; changes only through ``now`` or ``advance``."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
