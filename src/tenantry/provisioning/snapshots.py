"""What a run starts from: a tenant's desired state as the upstream adapters take it, its mail domain claim, a
tenant handed over by its create, and when the tenant is next due."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tenantry.integrations.ports import TenantSpec
from tenantry.provisioning.verification import ClaimSnapshot
from tenantry.states import Lifecycle, StepName
from tenantry.tenants.models import Tenant


def tenant_spec(tenant: Tenant) -> TenantSpec:
    return TenantSpec(
        id=tenant.id,
        slug=tenant.slug,
        name=tenant.name,
        generation=tenant.generation,
        mail_domain=tenant.mail_domain,
        quota_bytes=tenant.quota_bytes,
        mail_aliases=tuple(tenant.mail_aliases),
        suspended=tenant.lifecycle != Lifecycle.ACTIVE,
    )


@dataclass(frozen=True)
class FreshTenant:
    """A tenant as its create committed it, leased to ``owner``, with the creates ``pre_noted`` for its run."""

    tenant: Tenant
    owner: str
    pre_noted: frozenset[StepName]


def next_run(tenant: Tenant, generation: int, now: datetime) -> datetime | None:
    """The earliest time anything of the tenant is due: a step's next attempt, or the end of its grace period."""
    if tenant.deleted_at is not None:
        return None
    times = [s.next_attempt_at for s in tenant.steps if s.next_attempt_at is not None]
    if tenant.generation != generation:  # changed while we ran: go again at once
        times.append(now)
    if tenant.lifecycle == Lifecycle.DELETING and tenant.purge_at is not None:
        times.append(tenant.purge_at)
    return min(times) if times else None


def claim_snapshot(tenant: Tenant) -> ClaimSnapshot | None:
    claim = tenant.claim_for(tenant.mail_domain)
    if claim is None:
        return None
    return ClaimSnapshot(
        id=claim.id,
        tenant_id=tenant.id,
        slug=tenant.slug,
        domain=claim.domain,
        token=claim.token,
        status=claim.status,
        expires_at=claim.expires_at,
        checks=claim.checks,
    )
