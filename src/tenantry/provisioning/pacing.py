"""When each step of a run starts: the one with the longest chain of round trips at once, the others half a
round trip of that step later.

A tenant is ready when its slowest step is, and the slowest is the one that calls its upstream the most times
one after another (Stalwart: the domain, then its keys). Started together, the steps build and send their
requests at the same moment and their answers come back at the same moment, so the longest chain's next
request waits while the process handles the other steps' answers. Started half a round trip later, a step
with a shorter chain has its requests and answers handled while the longest chain waits on the network, and
still ends before it: ``k`` round trips plus half of one is less than ``K`` for any ``k < K``.

The round trips are measured: per step, a moving average of its ensures' time per round trip. A step starts
later only by the slack it has, so that it never ends after the longest one would: a shorter chain of slower
round trips (an upstream slower than the longest step's) starts sooner or at once. A step not yet timed, or
whose longest companion has not been, starts at once, and every step starts when the longest one ends (an
error, an answer from a cache).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from tenantry.provisioning.steps import Step
from tenantry.states import StepName

T = TypeVar("T")

WEIGHT = 0.2  # of the newest measurement in the moving average
MAX_OFFSET_SECONDS = 1.0  # a slow upstream delays the others' start by at most this much


class Pacing:
    """Per step, the time one of its round trips takes; and the start of a run's steps from it."""

    def __init__(self) -> None:
        self._trip: dict[StepName, float] = {}

    def observe(self, step: Step, seconds: float) -> None:
        """An ensure of ``step`` that reached its upstream and was answered took ``seconds``."""
        per_trip = seconds / max(step.round_trips, 1)
        seen = self._trip.get(step.name)
        self._trip[step.name] = per_trip if seen is None else seen + WEIGHT * (per_trip - seen)

    def offsets(self, steps: Sequence[Step]) -> dict[StepName, float]:
        """Seconds after the start of a run at which each of ``steps`` starts (see the module)."""
        longest = max(steps, key=lambda step: step.round_trips, default=None)
        trip = self._trip.get(longest.name) if longest is not None else None
        offsets = {step.name: 0.0 for step in steps}
        if longest is None or trip is None:
            return offsets
        for step in steps:
            own = self._trip.get(step.name)
            if step.round_trips < longest.round_trips and own is not None:
                slack = longest.round_trips * trip - step.round_trips * own
                offsets[step.name] = max(0.0, min(trip / 2, slack, MAX_OFFSET_SECONDS))
        return offsets

    def start(self, steps: Sequence[Step], run: Callable[[Step], Coroutine[Any, Any, T]]) -> asyncio.Future[list[T]]:
        """``run`` every step, each at its offset (the longest chain first), results in the order of ``steps``."""
        offsets = self.offsets(steps)
        ordered = sorted(steps, key=lambda step: -step.round_trips)
        if not ordered:
            return asyncio.gather()
        lead = asyncio.ensure_future(run(ordered[0]))

        async def later(step: Step) -> T:
            await asyncio.wait({lead}, timeout=offsets[step.name])
            return await run(step)

        started = {ordered[0].name: lead}
        for step in ordered[1:]:
            started[step.name] = asyncio.ensure_future(later(step) if offsets[step.name] > 0 else run(step))
        return asyncio.gather(*(started[step.name] for step in steps))
