"""A worker told to stop finishes or abandons its runs and hands their tenants back at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tenantry.auth.actor import SYSTEM
from tenantry.config import Settings
from tenantry.container import build_container
from tenantry.provisioning.steps import build_steps
from tenantry.provisioning.worker import Worker
from tenantry.tenants.models import Tenant
from tenantry.tenants.schemas import TenantCreate
from tenantry.tenants.service import TenantService
from tests.support.fakes import ScriptedProvider


async def test_a_stopping_worker_releases_the_leases_of_the_runs_it_abandons(
    make_settings: Callable[..., Settings],
) -> None:
    slow = ScriptedProvider("drive", delay=60)
    settings = make_settings(create_wait_seconds=0, lease_seconds=60)
    container = build_container(
        settings, steps=build_steps(ScriptedProvider("group"), ScriptedProvider("domain"), slow)
    )
    try:
        async with container.sessionmaker() as session:
            tenant = await TenantService(session, settings).create(TenantCreate(slug="acme", name="Acme"), SYSTEM)
            await session.commit()
        worker = Worker(
            container.reconciler,
            container.leases,
            poll_seconds=0.05,
            batch_size=5,
            concurrency=5,
            shutdown_grace_seconds=0.2,
        )
        running = asyncio.create_task(worker.run())
        for _ in range(200):
            if slow.concurrent:
                break
            await asyncio.sleep(0.02)
        assert slow.concurrent == 1  # the slow step is in flight
        async with container.sessionmaker() as session:
            assert (await session.get(Tenant, tenant.id)).lease_owner == worker.owner  # type: ignore[union-attr]

        worker.stop()
        await asyncio.wait_for(running, timeout=5)  # well before the 60 s step or the 60 s lease

        assert slow.concurrent == 0  # the abandoned step was cancelled, not left calling the upstream
        async with container.sessionmaker() as session:
            after = await session.get(Tenant, tenant.id)
            assert after is not None
            assert (after.lease_owner, after.lease_expires_at) == (None, None)  # free for the next worker now
    finally:
        await container.aclose()
