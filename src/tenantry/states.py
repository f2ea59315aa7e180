"""The vocabulary every layer shares: the provisioning steps, their statuses and the tenant's status."""

from __future__ import annotations

from enum import StrEnum


class StepName(StrEnum):
    """One step per upstream, named after it."""

    AUTHENTIK = "authentik"
    STALWART = "stalwart"
    OCIS = "ocis"


STEP_ORDER: tuple[StepName, ...] = (StepName.AUTHENTIK, StepName.STALWART, StepName.OCIS)


class StepStatus(StrEnum):
    OK = "ok"
    SKIPPED = "skipped"
    ERROR = "error"
    PENDING = "pending"


class TenantStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    DEGRADED = "degraded"
    SUSPENDED = "suspended"
    DELETING = "deleting"
    DELETED = "deleted"


SETTLED_STEP_STATUSES = frozenset({StepStatus.OK, StepStatus.SKIPPED})
LIFECYCLE_STATUSES = frozenset({TenantStatus.SUSPENDED, TenantStatus.DELETING, TenantStatus.DELETED})
