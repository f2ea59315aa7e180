"""Named locks with an expiry, so that one worker of many does a piece of periodic work (the bulk resync)."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base, UTCDateTime


class WorkerLock(Base):
    """``name`` is held by ``owner`` until ``expires_at``; an expired lock is anyone's to take."""

    __tablename__ = "worker_locks"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(sa.String(255))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


async def acquire(
    sessionmaker: async_sessionmaker[AsyncSession], name: str, owner: str, *, now: datetime, hold: timedelta
) -> bool:
    """Take or extend the lock ``name`` for ``owner`` until ``now + hold``; False while someone else holds it."""
    async with sessionmaker() as session, session.begin():
        taken = await session.execute(
            sa.update(WorkerLock)
            .where(WorkerLock.name == name, sa.or_(WorkerLock.owner == owner, WorkerLock.expires_at <= now))
            .values(owner=owner, expires_at=now + hold)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount:  # type: ignore[attr-defined]
            return True
    try:
        async with sessionmaker() as session, session.begin():
            session.add(WorkerLock(name=name, owner=owner, expires_at=now + hold))
    except IntegrityError:
        return False  # someone holds it (or took it between the two statements)
    return True


async def release(sessionmaker: async_sessionmaker[AsyncSession], name: str, owner: str) -> None:
    async with sessionmaker() as session, session.begin():
        await session.execute(sa.delete(WorkerLock).where(WorkerLock.name == name, WorkerLock.owner == owner))
