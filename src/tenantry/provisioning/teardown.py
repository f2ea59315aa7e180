"""Deletion as a finalizer: after the grace period, each upstream is torn down in reverse dependency order.

Files go first (the space is disabled, then purged), then mail (what links to the domain, then the domain),
then identity (the group). A step is torn down only once every step after it is, so an upstream that is down
holds the deletion where it stands instead of leaving objects orphaned in the others. When every step has
confirmed, the tenant becomes a tombstone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from tenantry.provisioning.steps import Step
from tenantry.states import Lifecycle, StepName, StepStatus
from tenantry.tenants.models import Tenant, TenantStep

TORN_DOWN = "Deleted"


def is_purging(tenant: Tenant, now: datetime) -> bool:
    """Whether the tenant's grace period is over and its upstream objects are to be removed."""
    return (
        tenant.lifecycle == Lifecycle.DELETING
        and tenant.deleted_at is None
        and tenant.purge_at is not None
        and tenant.purge_at <= now
    )


def _since_purge(row: TenantStep, purge_at: datetime) -> bool:
    return row.last_attempt_at is not None and row.last_attempt_at >= purge_at


def torn_down(row: TenantStep | None, purge_at: datetime) -> bool:
    """A step's objects are gone: it confirmed a teardown since the purge began (or has no upstream at all)."""
    if row is None:
        return False
    if row.status == StepStatus.SKIPPED:
        return True
    return row.status == StepStatus.OK and row.reason == TORN_DOWN and _since_purge(row, purge_at)


def teardown_due(row: TenantStep | None, purge_at: datetime, now: datetime) -> bool:
    """The step's first teardown attempt since the purge began, or a retry whose time has come."""
    if row is None or not _since_purge(row, purge_at):
        return True
    return row.next_attempt_at is not None and row.next_attempt_at <= now


def remaining(steps: Sequence[Step], stored: Mapping[StepName, TenantStep], purge_at: datetime) -> list[Step]:
    """The steps still to tear down, in the order they must go (the reverse of provisioning)."""
    return [step for step in reversed(steps) if not torn_down(stored.get(step.name), purge_at)]
