"""Retry timing: exponential backoff with jitter, honouring an upstream's Retry-After."""

from __future__ import annotations

import random

MAX_RETRY_AFTER_SECONDS = 3600.0
MAX_EXPONENT = 64


def backoff_delay(
    attempt: int, *, base: float, cap: float, retry_after: float | None = None, rng: random.Random | None = None
) -> float:
    """Seconds to wait before attempt ``attempt + 1`` after ``attempt`` consecutive failures (1-based).

    "Equal jitter": half the exponential delay is fixed, half random, so retries of many tenants spread
    out while each still waits at least ``base * 2**(attempt-1) / 2``. An upstream's ``Retry-After`` is a
    floor (it knows best when it will be back), bounded to an hour against absurd values.
    """
    rng = rng or random.SystemRandom()
    # The exponent is bounded so that a step failing for days (over a thousand attempts) still gets a finite
    # delay instead of an OverflowError; any real base reaches the cap long before 2**64.
    exponential = min(cap, base * 2.0 ** min(max(0, attempt - 1), MAX_EXPONENT))
    delay = exponential / 2 + rng.uniform(0, exponential / 2)
    if retry_after is not None and retry_after > 0:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER_SECONDS))
    return float(delay)
