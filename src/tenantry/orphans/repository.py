"""The queries the orphans feature needs: who holds which upstream object, and the tenant's lease."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.states import StepName
from tenantry.tenants.models import Tenant, TenantStep


class OrphanRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def live_outputs(self) -> list[tuple[str, str, StepName | None, dict[str, str]]]:
        """``(tenant id, slug, step, stored ids)`` of every live tenant (a tenant without steps once, step None)."""
        rows = await self.session.execute(
            sa.select(Tenant.id, Tenant.slug, TenantStep.step, TenantStep.outputs)
            .outerjoin(TenantStep, TenantStep.tenant_id == Tenant.id)
            .where(Tenant.deleted_at.is_(None))
        )
        return [(tenant_id, slug, step, dict(outputs or {})) for tenant_id, slug, step, outputs in rows]

    async def purged_slugs(self, tenant_ids: Collection[str]) -> dict[str, str]:
        """The slugs of the tombstones among ``tenant_ids``, by id."""
        if not tenant_ids:
            return {}
        rows = await self.session.execute(
            sa.select(Tenant.id, Tenant.slug).where(Tenant.id.in_(list(tenant_ids)), Tenant.deleted_at.is_not(None))
        )
        return {str(tenant_id): str(slug) for tenant_id, slug in rows}

    async def step(self, tenant_id: str, step: StepName) -> TenantStep | None:
        """The tenant's step row as committed now (read afresh, not from the session's identity map)."""
        result = await self.session.execute(
            sa.select(TenantStep)
            .where(TenantStep.tenant_id == tenant_id, TenantStep.step == step)
            .execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def lease_free(self, tenant_id: str, now: datetime) -> bool:
        """Whether nobody holds the tenant's lease (a plain read: it takes no lock)."""
        row = (
            await self.session.execute(
                sa.select(Tenant.lease_owner, Tenant.lease_expires_at).where(Tenant.id == tenant_id)
            )
        ).one_or_none()
        if row is None or row.lease_owner is None:
            return True
        return row.lease_expires_at is not None and row.lease_expires_at < now

    async def fence(self, tenant_id: str, now: datetime) -> bool:
        """Lock the tenant's row while nobody holds its lease, until the unit of work ends; False if someone does.

        A write that changes nothing, like the reconciler's fence: a worker's claim (a compare-and-set update of
        the same row) waits for our commit and then reads what we wrote.
        """
        free = sa.or_(Tenant.lease_owner.is_(None), Tenant.lease_expires_at < now)
        result = await self.session.execute(
            sa.update(Tenant)
            .where(Tenant.id == tenant_id, free)
            .values(lease_expires_at=Tenant.lease_expires_at)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]
