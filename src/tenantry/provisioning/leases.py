"""One writer per tenant: time-limited leases on the tenant row, claimed atomically.

A lease is ``(lease_owner, lease_expires_at)`` on the tenant. Claims are compare-and-set updates, so they are
safe on SQLite (writers are serialised) and PostgreSQL alike. A worker that dies simply stops renewing: once
the lease expires another worker claims the tenant. Each call here is one short transaction of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tenantry.db.base import utcnow
from tenantry.provisioning import locks
from tenantry.provisioning.repository import ProvisioningRepository


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

    def expiry(self, now: datetime) -> datetime:
        """When a lease taken at ``now`` runs out."""
        return now + self._lease

    async def claim_due(self, owner: str, limit: int) -> list[str]:
        """Lease up to ``limit`` tenants whose reconcile is due and that nobody holds; returns their ids."""
        async with self._sessionmaker() as session, session.begin():
            return await ProvisioningRepository(session).claim_due(owner, limit, now=self._clock(), lease=self._lease)

    async def claim(self, tenant_id: str, owner: str) -> bool:
        """Lease one tenant now, due or not; False when someone else holds it."""
        async with self._sessionmaker() as session, session.begin():
            return await ProvisioningRepository(session).claim(tenant_id, owner, now=self._clock(), lease=self._lease)

    async def renew(self, tenant_id: str, owner: str) -> bool:
        """Extend a lease we hold; False means it was lost (expired and taken by someone else)."""
        async with self._sessionmaker() as session, session.begin():
            return await ProvisioningRepository(session).renew(tenant_id, owner, now=self._clock(), lease=self._lease)

    async def retry_permanent_errors(self) -> int:
        """At start: steps stopped by a permanent error are tried again at once (see the repository)."""
        async with self._sessionmaker() as session, session.begin():
            return await ProvisioningRepository(session).retry_permanent_errors(self._clock())

    async def release(self, tenant_id: str, owner: str) -> None:
        async with self._sessionmaker() as session, session.begin():
            await ProvisioningRepository(session).release(tenant_id, owner)

    async def hold_lock(self, name: str, owner: str, hold: timedelta) -> bool:
        """Take or extend the named lock for ``hold``; False while another owner holds it (see :mod:`.locks`)."""
        return await locks.acquire(self._sessionmaker, name, owner, now=self._clock(), hold=hold)
