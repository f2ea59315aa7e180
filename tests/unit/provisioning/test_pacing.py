"""A run's steps start paced: the longest chain of round trips at once, the others half a round trip later.

Timings here are lower bounds only (a step never starts before its offset); nothing asserts how fast anything is.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from tenantry.provisioning.pacing import MAX_OFFSET_SECONDS, Pacing
from tenantry.provisioning.steps import Step, build_steps
from tenantry.states import StepName
from tests.support.fakes import ScriptedProvider

GROUP, DOMAIN, SPACE = build_steps(ScriptedProvider("group"), ScriptedProvider("domain"), ScriptedProvider("drive"))
STEPS = [GROUP, DOMAIN, SPACE]
assert [s.round_trips for s in STEPS] == [1, 2, 1]


def timed(domain: float, group: float | None = 0.020, space: float | None = 0.020) -> Pacing:
    """A Pacing that has seen one ensure of each step taking these seconds (None: not seen)."""
    pacing = Pacing()
    for step, seconds in ((DOMAIN, domain), (GROUP, group), (SPACE, space)):
        if seconds is not None:
            pacing.observe(step, seconds)
    return pacing


def test_until_the_longest_step_has_been_seen_every_step_starts_at_once() -> None:
    pacing = Pacing()
    pacing.observe(GROUP, 0.5)  # a shorter step's time says nothing of the longest chain's round trip
    assert pacing.offsets(STEPS) == {GROUP.name: 0.0, DOMAIN.name: 0.0, SPACE.name: 0.0}
    # nor is a shorter step not yet timed held back: its slack is unknown
    assert timed(0.040, group=None, space=None).offsets(STEPS) == {GROUP.name: 0.0, DOMAIN.name: 0.0, SPACE.name: 0.0}


def test_the_shorter_steps_start_half_a_round_trip_of_the_longest_one_later() -> None:
    pacing = timed(0.040)  # two round trips of 20 ms; the others one of 20 ms
    assert pacing.offsets(STEPS) == pytest.approx({GROUP.name: 0.010, DOMAIN.name: 0.0, SPACE.name: 0.010})
    pacing.observe(DOMAIN, 0.080)  # a moving average: one slow run moves it a fifth of the way
    assert pacing.offsets(STEPS)[GROUP.name] == pytest.approx(0.010 + 0.2 * 0.010)


def test_a_shorter_chain_of_slower_round_trips_starts_only_as_late_as_its_slack_allows() -> None:
    # The domain's chain ends at 40 ms; a 35 ms group may start 5 ms late, a 60 ms space at once.
    assert timed(0.040, group=0.035, space=0.060).offsets(STEPS) == pytest.approx(
        {GROUP.name: 0.005, DOMAIN.name: 0.0, SPACE.name: 0.0}
    )


def test_steps_of_equal_chains_and_a_slow_upstream_are_bounded() -> None:
    pacing = timed(100.0)
    assert pacing.offsets(STEPS)[SPACE.name] == MAX_OFFSET_SECONDS
    assert pacing.offsets([DOMAIN, dataclasses.replace(SPACE, round_trips=2)]) == {DOMAIN.name: 0.0, SPACE.name: 0.0}
    assert pacing.offsets([]) == {}


async def test_the_longest_step_starts_first_the_others_at_their_offset_and_results_keep_step_order() -> None:
    pacing = timed(0.2, group=0.0, space=0.0)  # offset 0.05 s
    began: dict[StepName, float] = {}

    async def run(s: Step) -> str:
        began[s.name] = time.monotonic()
        await asyncio.sleep(0.1 if s is DOMAIN else 0.0)
        return str(s.name)

    results = await pacing.start(STEPS, run)

    assert results == ["authentik", "stalwart", "ocis"]
    assert list(began) == [DOMAIN.name, GROUP.name, SPACE.name]
    assert began[GROUP.name] - began[DOMAIN.name] >= 0.045
    assert began[SPACE.name] - began[DOMAIN.name] >= 0.045


async def test_when_the_longest_step_ends_early_the_others_start_then() -> None:
    pacing = timed(60.0, group=0.0, space=0.0)  # offset capped at 1 s
    ran: list[StepName] = []

    async def run(s: Step) -> None:
        ran.append(s.name)
        if s is DOMAIN:
            raise RuntimeError("refused at once")

    outcome = await asyncio.wait_for(asyncio.gather(pacing.start(STEPS, run), return_exceptions=True), timeout=0.9)

    assert isinstance(outcome[0], RuntimeError)
    assert sorted(ran) == sorted([GROUP.name, DOMAIN.name, SPACE.name])


async def test_cancelling_the_run_cancels_the_steps_waiting_to_start() -> None:
    pacing = timed(2.0, group=0.0, space=0.0)
    ran: list[StepName] = []

    async def run(s: Step) -> None:
        ran.append(s.name)
        await asyncio.sleep(10)

    running = pacing.start(STEPS, run)
    await asyncio.sleep(0.01)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    await asyncio.sleep(0.01)
    assert ran == [DOMAIN.name]
