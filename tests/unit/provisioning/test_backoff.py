"""Retry timing: exponential growth, the cap, equal-jitter bounds and Retry-After as a floor."""

from __future__ import annotations

import random

import pytest

from tenantry.provisioning.backoff import MAX_RETRY_AFTER_SECONDS, backoff_delay


class Lowest(random.Random):
    """Jitter always at its lowest."""

    def uniform(self, a: float, b: float) -> float:
        return a


class Highest(random.Random):
    """Jitter always at its highest."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_the_delay_doubles_with_each_consecutive_failure() -> None:
    floors = [backoff_delay(n, base=1.0, cap=1000.0, rng=Lowest()) for n in range(1, 7)]
    ceilings = [backoff_delay(n, base=1.0, cap=1000.0, rng=Highest()) for n in range(1, 7)]

    assert floors == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
    assert ceilings == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]


def test_the_delay_stops_growing_at_the_cap() -> None:
    assert backoff_delay(9, base=2.0, cap=300.0, rng=Highest()) == 300.0
    assert backoff_delay(50, base=2.0, cap=300.0, rng=Highest()) == 300.0
    assert backoff_delay(50, base=2.0, cap=300.0, rng=Lowest()) == 150.0


@pytest.mark.parametrize("attempt", [1025, 5000, 10**9])
def test_a_step_failing_for_days_still_gets_a_capped_delay(attempt: int) -> None:
    assert backoff_delay(attempt, base=2.0, cap=300.0, rng=Highest()) == 300.0


@pytest.mark.parametrize("attempt", [0, -3])
def test_an_attempt_count_below_one_is_treated_as_the_first(attempt: int) -> None:
    assert backoff_delay(attempt, base=4.0, cap=100.0, rng=Highest()) == 4.0


@pytest.mark.parametrize(("attempt", "low", "high"), [(1, 1.0, 2.0), (3, 4.0, 8.0), (12, 30.0, 60.0)])
def test_jitter_stays_between_half_and_the_whole_exponential_delay_and_spreads_retries(
    attempt: int, low: float, high: float
) -> None:
    rng = random.Random(20240601)
    delays = [backoff_delay(attempt, base=2.0, cap=60.0, rng=rng) for _ in range(500)]

    assert min(delays) >= low
    assert max(delays) <= high
    assert len(set(delays)) > 400  # spread out, not one value


def test_without_an_rng_the_delay_is_still_within_bounds() -> None:
    delays = [backoff_delay(2, base=1.0, cap=10.0) for _ in range(100)]

    assert all(1.0 <= d <= 2.0 for d in delays)


def test_retry_after_is_a_floor_over_a_shorter_backoff() -> None:
    assert backoff_delay(1, base=1.0, cap=300.0, retry_after=120.0, rng=Highest()) == 120.0


def test_a_longer_backoff_wins_over_a_shorter_retry_after() -> None:
    assert backoff_delay(8, base=2.0, cap=300.0, retry_after=5.0, rng=Lowest()) == 128.0


def test_an_absurd_retry_after_is_bounded_to_an_hour() -> None:
    assert backoff_delay(1, base=1.0, cap=300.0, retry_after=10**9, rng=Lowest()) == MAX_RETRY_AFTER_SECONDS


@pytest.mark.parametrize("retry_after", [0.0, -5.0, None])
def test_a_missing_zero_or_negative_retry_after_is_ignored(retry_after: float | None) -> None:
    assert backoff_delay(3, base=1.0, cap=300.0, retry_after=retry_after, rng=Lowest()) == 2.0
