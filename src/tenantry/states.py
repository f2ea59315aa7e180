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


class DomainStatus(StrEnum):
    """Where a tenant's claim to its mail domain stands.

    ``unverified`` until the ownership record is found in DNS (or the platform vouches for the name);
    ``verified`` holds the name against every other tenant; ``expired`` when proof did not come in time;
    ``taken`` when another tenant proved the same name first.
    """

    UNVERIFIED = "unverified"
    VERIFIED = "verified"
    EXPIRED = "expired"
    TAKEN = "taken"


class DomainProof(StrEnum):
    """How a verified claim was established."""

    PLATFORM = "platform"  # <slug>.<base>: the platform's own namespace
    DNS = "dns"  # the TXT challenge was found
    ADMIN = "admin"  # a platform admin waived the proof (recorded in the events)
    EXISTING = "existing"  # held before proof was required (migrated as it was)


class Lifecycle(StrEnum):
    """Where the tenant is meant to be: the lifecycle part of its desired state.

    ``deleting`` covers the grace period (everything disabled, restorable) and the purge after it.
    """

    ACTIVE = "active"
    SUSPENDED = "suspended"
    DELETING = "deleting"
