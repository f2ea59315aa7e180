"""One writer per tenant: time-limited leases on the tenant row, claimed atomically.

A lease is ``(lease_owner, lease_expires_at)`` on the tenant. Claims are compare-and-set updates, so they are
safe on SQLite (writers are serialised) and PostgreSQL alike; on PostgreSQL the batch claim of due tenants
also uses ``FOR UPDATE SKIP LOCKED`` so workers polling at once skip each other's rows instead of queueing.
A worker that dies simply stops renewing: once the lease expires another worker claims the tenant.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tenantry.db.base import utcnow
from tenantry.tenants.models import Tenant


def _free(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(Tenant.lease_owner.is_(None), Tenant.lease_expires_at < now)


class LeaseManager:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        lease_seconds: float,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._lease = timedelta(seconds=lease_seconds)
        self._clock = clock

    async def claim_due(self, owner: str, limit: int) -> list[str]:
        """Lease up to ``limit`` tenants whose reconcile is due and that nobody holds; returns their ids."""
        now = self._clock()
        async with self._sessionmaker() as session, session.begin():
            due = (
                sa.select(Tenant.id)
                .where(Tenant.next_reconcile_at <= now, _free(now))
                .order_by(Tenant.next_reconcile_at)
                .limit(limit)
            )
            if session.bind.dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            result = await session.execute(
                sa.update(Tenant)
                .where(Tenant.id.in_(due.scalar_subquery()), _free(now))
                .values(lease_owner=owner, lease_expires_at=now + self._lease)
                .returning(Tenant.id)
                .execution_options(synchronize_session=False)
            )
            return list(result.scalars())

    async def claim(self, tenant_id: str, owner: str) -> bool:
        """Lease one tenant now, due or not; False when someone else holds it."""
        now = self._clock()
        async with self._sessionmaker() as session, session.begin():
            result = await session.execute(
                sa.update(Tenant)
                .where(Tenant.id == tenant_id, sa.or_(_free(now), Tenant.lease_owner == owner))
                .values(lease_owner=owner, lease_expires_at=now + self._lease)
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def renew(self, tenant_id: str, owner: str) -> bool:
        """Extend a lease we hold; False means it was lost (expired and taken by someone else)."""
        now = self._clock()
        async with self._sessionmaker() as session, session.begin():
            result = await session.execute(
                sa.update(Tenant)
                .where(Tenant.id == tenant_id, Tenant.lease_owner == owner)
                .values(lease_expires_at=now + self._lease)
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def release(self, tenant_id: str, owner: str) -> None:
        async with self._sessionmaker() as session, session.begin():
            await session.execute(
                sa.update(Tenant)
                .where(Tenant.id == tenant_id, Tenant.lease_owner == owner)
                .values(lease_owner=None, lease_expires_at=None)
                .execution_options(synchronize_session=False)
            )
