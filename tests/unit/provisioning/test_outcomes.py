"""Applying outcomes to step conditions, without a database: the rules the reconciler records by."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from tenantry.integrations.dns import DnsRecord, Purpose
from tenantry.provisioning.outcomes import DNS_RECORDS, Outcome, Timing, apply_outcome, is_due
from tenantry.states import StepName, StepStatus
from tenantry.tenants.models import TenantStep

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
TIMING = Timing(retry_base_seconds=2, retry_cap_seconds=300, resync_interval_seconds=600, pending_poll_seconds=5)
MAIL = StepName.STALWART


def apply(row: TenantStep, outcome: Outcome, *, generation: int = 1, now: datetime = NOW) -> list[tuple[str, str]]:
    notes = apply_outcome(row, outcome, generation=generation, now=now, timing=TIMING, rng=random.Random(7))
    return [(n.kind, n.message) for n in notes]


def ok(**kwargs: object) -> Outcome:
    return Outcome(MAIL, StepStatus.OK, "Ready", "domain in place", True, **kwargs)  # type: ignore[arg-type]


def transient(retry_after: float | None = None) -> Outcome:
    return Outcome(MAIL, StepStatus.ERROR, "UpstreamError", "Stalwart answered 503", True, retry_after)


def test_a_transient_error_counts_attempts_and_backs_off_within_the_exponential_window() -> None:
    row = TenantStep.new(MAIL)
    notes = apply(row, transient())
    assert (row.status, row.reason, row.retryable, row.attempts) == ("error", "UpstreamError", True, 1)
    assert notes == [("step.failed", "UpstreamError: Stalwart answered 503")]
    assert row.next_attempt_at is not None
    assert NOW + timedelta(seconds=1) <= row.next_attempt_at <= NOW + timedelta(seconds=2)
    apply(row, transient())
    apply(row, transient())
    assert row.attempts == 3
    assert NOW + timedelta(seconds=4) <= row.next_attempt_at <= NOW + timedelta(seconds=8)


def test_retry_after_is_a_floor_for_the_next_attempt() -> None:
    row = TenantStep.new(MAIL)
    apply(row, transient(retry_after=120))
    assert row.next_attempt_at == NOW + timedelta(seconds=120)


def test_a_permanent_error_waits_for_a_human_but_is_tried_again_on_a_slow_schedule() -> None:
    row = TenantStep.new(MAIL)
    apply(row, Outcome(MAIL, StepStatus.ERROR, "Forbidden", "needs sysDomainCreate", False))
    assert (row.status, row.retryable) == ("error", False)
    assert row.next_attempt_at == NOW + timedelta(seconds=TIMING.permanent_retry_seconds)


def test_success_after_failures_resets_the_streak_stores_ids_and_records_the_transition() -> None:
    row = TenantStep.new(MAIL)
    apply(row, transient())
    apply(row, transient())
    record = DnsRecord("MX", "acme.example.", "10 mx.example.", 3600, Purpose.MX)
    notes = apply(row, ok(ids={"domainId": "d1"}, dns_records=(record,), events=["created domain acme.example"]))
    assert (row.status, row.attempts, row.outputs) == ("ok", 3, {"domainId": "d1"})
    assert row.last_success_at == NOW
    # Healthy: the bulk resync watches it; on its own it is ensured again only after the full resync period.
    assert row.next_attempt_at == NOW + timedelta(seconds=TIMING.full_resync_seconds)
    assert row.data[DNS_RECORDS] == [record.to_json()]
    assert notes == [("step.ok", "Ready: domain in place"), ("step.change", "created domain acme.example")]
    apply(row, ok(ids={"domainId": "d1"}))
    assert row.attempts == 1  # a healthy step starts a fresh streak


def test_an_unchanged_status_records_no_transition() -> None:
    row = TenantStep.new(MAIL)
    apply(row, ok(ids={"domainId": "d1"}))
    row.last_transition_at = before = NOW - timedelta(hours=1)
    assert apply(row, ok(ids={"domainId": "d1"}), now=NOW + timedelta(minutes=10)) == []
    assert row.last_transition_at == before


def test_an_error_keeps_the_ids_the_step_owns() -> None:
    row = TenantStep.new(MAIL)
    apply(row, ok(ids={"domainId": "d1"}))
    apply(row, transient())
    assert row.outputs == {"domainId": "d1"}


def test_a_new_generation_restarts_the_attempt_count() -> None:
    row = TenantStep.new(MAIL)
    apply(row, transient())
    apply(row, transient())
    apply(row, transient(), generation=2)
    assert (row.attempts, row.observed_generation) == (1, 2)


def test_pending_is_polled_and_skipped_is_looked_at_again_at_resync() -> None:
    row = TenantStep.new(MAIL)
    apply(row, Outcome(MAIL, StepStatus.PENDING, "WaitingForDnsRecords", "DKIM keys not yet made", True))
    assert row.next_attempt_at == NOW + timedelta(seconds=5)
    skipped = TenantStep.new(MAIL)
    skipped.last_attempt_at = earlier = NOW - timedelta(days=1)
    apply(skipped, Outcome(MAIL, StepStatus.SKIPPED, "NotConfigured", "set TENANTRY_STALWART_URL", False))
    assert (skipped.attempts, skipped.last_attempt_at) == (0, earlier)
    assert skipped.next_attempt_at == NOW + timedelta(seconds=600)


@pytest.mark.parametrize(
    ("status", "observed", "next_in", "configured", "due"),
    [
        (StepStatus.OK, 1, 10, True, False),  # healthy, resync not yet
        (StepStatus.OK, 1, -1, True, True),  # resync time has come
        (StepStatus.OK, 0, 10, True, True),  # behind the spec
        (StepStatus.SKIPPED, 1, 10, True, True),  # configured since it was skipped
        (StepStatus.SKIPPED, 1, 10, False, False),
        (StepStatus.ERROR, 1, 3600, True, False),  # permanent error: waits for a human, or the slow retry
    ],
)
def test_is_due(status: StepStatus, observed: int, next_in: int | None, configured: bool, due: bool) -> None:
    row = TenantStep.new(MAIL)
    row.status, row.observed_generation = status, observed
    row.next_attempt_at = None if next_in is None else NOW + timedelta(seconds=next_in)
    assert is_due(row, 1, NOW, configured=configured) is due
    assert is_due(None, 1, NOW, configured=configured) is True
