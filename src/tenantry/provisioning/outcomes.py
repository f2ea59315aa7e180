"""Applying a step's outcome to its stored conditions, and rolling a tenant's status up: pure, no store."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tenantry.integrations.dns import DnsRecord
from tenantry.provisioning.backoff import backoff_delay
from tenantry.states import SETTLED_STEP_STATUSES, Lifecycle, StepName, StepStatus, TenantStatus
from tenantry.tenants.models import TenantStep

DNS_RECORDS = "dnsRecords"
_EVENT_KINDS = {
    StepStatus.OK: "step.ok",
    StepStatus.PENDING: "step.pending",
    StepStatus.ERROR: "step.failed",
    StepStatus.SKIPPED: "step.skipped",
}


@dataclass(frozen=True)
class Timing:
    """When steps are tried again: backoff for retryable errors, polling for pending ones, resync for healthy."""

    retry_base_seconds: float
    retry_cap_seconds: float
    resync_interval_seconds: float
    pending_poll_seconds: float
    permanent_retry_seconds: float = 3600.0
    full_resync_seconds: float = 86400.0


@dataclass
class Outcome:
    """What one attempt of one step came to, before it is applied to the stored conditions.

    ``retry_after`` is the upstream's own hint for a transient error; ``ids`` replace the ids the step owns
    when given (None keeps them: an error says nothing about what exists upstream); ``data`` (facts worth
    showing) and ``dns_records`` are merged into what the step stored before; ``poll_after`` overrides
    when a pending step is looked at again.
    """

    step: StepName
    status: StepStatus
    reason: str
    message: str
    retryable: bool
    retry_after: float | None = None
    ids: dict[str, str] | None = None
    data: dict[str, Any] = field(default_factory=dict)
    dns_records: tuple[DnsRecord, ...] | None = None
    events: list[str] = field(default_factory=list)
    poll_after: float | None = None
    create_refused: bool = False  # the create this attempt began was refused: no earlier create is in doubt


@dataclass(frozen=True)
class Note:
    """A timeline entry the caller stores: ``kind`` is dotted (``step.failed``), ``step`` the step it is about."""

    kind: str
    message: str
    step: StepName | None = None


def apply_outcome(
    row: TenantStep, outcome: Outcome, *, generation: int, now: datetime, timing: Timing, rng: random.Random
) -> list[Note]:
    """Update ``row`` (conditions, attempts, next attempt, owned ids) from ``outcome``; returns the notes to record.

    Attempts count the current streak: they restart when the step was healthy or the spec changed since.
    """
    previous = (row.status, row.reason)
    fresh_streak = row.status in SETTLED_STEP_STATUSES or row.observed_generation < generation
    if outcome.status == StepStatus.SKIPPED:
        row.attempts = 0
    else:
        row.attempts = 1 if fresh_streak else row.attempts + 1
        row.last_attempt_at = now
    row.status, row.reason, row.message, row.retryable = (
        outcome.status,
        outcome.reason,
        outcome.message,
        outcome.retryable,
    )
    row.observed_generation = generation
    row.next_attempt_at = _next_attempt(row.attempts, outcome, now, timing, rng)
    if outcome.ids is not None:
        row.outputs = dict(outcome.ids)  # the ids the step owns now (replaced, not merged)
        if outcome.ids:
            row.create_started_at = None  # whatever an earlier create made is the object the step now owns
    if outcome.create_refused:
        row.create_started_at = None
    if outcome.data:
        row.data = {**(row.data or {}), **outcome.data}
    if outcome.dns_records is not None:
        row.data = {**(row.data or {}), DNS_RECORDS: [record.to_json() for record in outcome.dns_records]}
    if outcome.status == StepStatus.OK:
        row.last_success_at = now
    notes: list[Note] = []
    if (row.status, row.reason) != previous:
        row.last_transition_at = now
        notes.append(Note(_EVENT_KINDS[row.status], f"{row.reason}: {row.message}", row.step))
    notes.extend(Note("step.change", change, row.step) for change in outcome.events)
    return notes


def _next_attempt(
    attempts: int, outcome: Outcome, now: datetime, timing: Timing, rng: random.Random
) -> datetime | None:
    if outcome.status == StepStatus.ERROR:
        if not outcome.retryable:
            # A permanent error needs a human (a new generation or a forced reconcile retries at once), but is
            # not final: the configuration may be fixed without anyone telling Tenantry.
            return now + timedelta(seconds=timing.permanent_retry_seconds)
        delay = backoff_delay(
            attempts,
            base=timing.retry_base_seconds,
            cap=timing.retry_cap_seconds,
            retry_after=outcome.retry_after,
            rng=rng,
        )
    elif outcome.status == StepStatus.PENDING:
        delay = timing.pending_poll_seconds if outcome.poll_after is None else outcome.poll_after
    elif outcome.status == StepStatus.OK:
        # A healthy step's drift is found by the bulk resync; on its own it is ensured again only rarely, for
        # what a listing cannot show.
        delay = timing.full_resync_seconds
    else:
        # Skipped steps are looked at every resync interval, so an upstream that gets configured later is picked
        # up by itself (that costs no upstream request).
        delay = timing.resync_interval_seconds
    return now + timedelta(seconds=delay)


def is_due(row: TenantStep | None, generation: int, now: datetime, *, configured: bool) -> bool:
    """Whether a step runs in this reconcile: new, behind the spec, skipped but configured since, or its time
    for a retry, a poll or the resync has come."""
    if row is None or row.observed_generation < generation:
        return True
    if row.status == StepStatus.SKIPPED and configured:
        return True
    return row.next_attempt_at is not None and row.next_attempt_at <= now


def roll_up(lifecycle: Lifecycle, deleted: bool, activated: bool, statuses: Iterable[StepStatus]) -> TenantStatus:
    """A suspended or deleting tenant says so (its steps say how far that got); otherwise pending until every
    step is ok/skipped, then active; an active tenant with a failing step is degraded."""
    if deleted:
        return TenantStatus.DELETED
    if lifecycle != Lifecycle.ACTIVE:
        return TenantStatus(lifecycle.value)
    statuses = list(statuses)
    if all(s in SETTLED_STEP_STATUSES for s in statuses):
        return TenantStatus.ACTIVE
    if activated:
        return TenantStatus.DEGRADED if StepStatus.ERROR in statuses else TenantStatus.ACTIVE
    return TenantStatus.PENDING
