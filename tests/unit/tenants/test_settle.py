"""Answering after the commit: a change already stored is never reported as failed for want of a connection."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth.actor import Actor
from tenantry.config import Settings
from tenantry.db.engine import create_engine, create_sessionmaker
from tenantry.states import TenantStatus
from tenantry.tenants.models import Tenant
from tenantry.tenants.repository import TenantRepository
from tenantry.tenants.schemas import TenantCreate
from tenantry.tenants.service import StepPlanView, TenantService

ADMIN = Actor(sub="admin", is_admin=True)


class Reconciled:
    """A run that did not finish in time to hand back what it recorded, so the answer reads the tenant again."""

    def hand_off(self, tenant: Tenant, now: datetime) -> None:
        return None  # the tenant is stored unleased, as without a provisioner

    async def reconcile_now(self, tenant_id: str, *, force: bool, wait: float, fresh: object = None) -> Tenant | None:
        return None

    async def plan(self, tenant_id: str) -> Sequence[StepPlanView] | None:
        return None


@contextlib.asynccontextmanager
async def pool_exhausted() -> AsyncIterator[AsyncSession]:
    raise sa_exc.TimeoutError("QueuePool limit of size 1 overflow 0 reached, connection timed out")
    yield  # pragma: no cover - never reached


async def test_a_committed_create_answers_with_what_it_stored_when_no_connection_is_free_to_read_it_back(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    engine = create_engine(settings)
    try:
        sessions = create_sessionmaker(engine)
        async with sessions() as session:
            service = TenantService(session, settings, provisioner=Reconciled(), sessions=pool_exhausted)  # type: ignore[arg-type]
            settling = await service.create_and_wait(TenantCreate(slug="acme", name="Acme"), ADMIN)
            await session.commit()
        answered = await settling.settle()
        async with sessions() as session:
            stored = await TenantRepository(session).by_slug("acme")
    finally:
        await engine.dispose()
    assert (answered.slug, answered.status, len(answered.steps)) == ("acme", TenantStatus.PENDING, 3)
    assert stored is not None
    assert stored.id == answered.id
