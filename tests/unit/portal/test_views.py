"""Steps in plain words: a person can tell failing from slow, and when the next try is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tenantry.portal.views import bytes_words, due, relative, step_view
from tenantry.states import StepName, StepStatus
from tenantry.tenants.models import TenantStep

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def step(status: StepStatus, *, attempts: int = 1, retryable: bool = True, message: str = "") -> TenantStep:
    row = TenantStep.new(StepName.STALWART, message=message)
    row.status, row.attempts, row.retryable = status, attempts, retryable
    row.next_attempt_at = datetime.now(UTC) + timedelta(seconds=42)
    return row


@pytest.mark.parametrize(
    ("status", "attempts", "retryable", "state", "tone"),
    [
        (StepStatus.OK, 1, True, "Ready", "ok"),
        (StepStatus.SKIPPED, 0, True, "Not configured", "off"),
        (StepStatus.PENDING, 0, True, "Waiting to start", "working"),
        (StepStatus.PENDING, 2, True, "In progress", "working"),
        (StepStatus.ERROR, 3, True, "Failing, retrying by itself", "failing"),
        (StepStatus.ERROR, 1, False, "Stopped, needs a fix", "stopped"),
    ],
)
def test_each_step_state_has_words_and_a_tone(
    status: StepStatus, attempts: int, retryable: bool, state: str, tone: str
) -> None:
    view = step_view(step(status, attempts=attempts, retryable=retryable))
    assert (view.state, view.tone) == (state, tone)
    assert view.label == "Mail"


def test_a_failing_steps_summary_says_the_attempt_the_next_try_and_the_message() -> None:
    view = step_view(step(StepStatus.ERROR, attempts=3, message="Stalwart answered HTTP 503"))
    assert view.summary.startswith("Mail: failing, retrying by itself (attempt 3, next try in 4")
    assert view.summary.endswith("— Stalwart answered HTTP 503")


def test_times_read_as_a_person_says_them() -> None:
    assert relative(NOW + timedelta(seconds=12), NOW) == "in 12 s"
    assert relative(NOW - timedelta(minutes=3), NOW) == "3 min ago"
    assert relative(NOW, NOW) == "just now"
    assert due(NOW - timedelta(seconds=5), NOW) == "now"
    assert relative(NOW + timedelta(days=7), NOW) == "in 7 days"
    assert bytes_words(10 * 1024**3) == "10 GiB"
    assert bytes_words(1536 * 1024**2) == "1.5 GiB"
