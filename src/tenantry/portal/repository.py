"""All portal session queries. Repositories flush; the caller's unit of work commits."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.portal.models import PortalSession


class SessionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, session_id: str, *, for_update: bool = False) -> PortalSession | None:
        """The session, read afresh; ``for_update`` locks its row (PostgreSQL) so refreshes queue."""
        query = sa.select(PortalSession).where(PortalSession.id == session_id)
        if for_update:
            query = query.with_for_update()
        result = await self.session.execute(query.execution_options(populate_existing=True))
        return result.scalar_one_or_none()

    async def add(self, row: PortalSession) -> None:
        self.session.add(row)
        await self.session.flush()

    async def delete(self, row: PortalSession) -> None:
        await self.session.delete(row)
        await self.session.flush()

    async def forget_expired(self, *, now: datetime, limit: int = 100) -> None:
        """Drop sessions past their end, a batch at a time (called as sign-ins begin)."""
        stale = sa.select(PortalSession.id).where(PortalSession.expires_at < now).limit(limit)
        await self.session.execute(sa.delete(PortalSession).where(PortalSession.id.in_(stale)))
