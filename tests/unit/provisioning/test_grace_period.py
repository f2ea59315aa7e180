"""The deletion grace period on a hand-moved clock: restorable until it ends, purged once it has."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from tenantry.auth.actor import SYSTEM
from tenantry.config import Settings
from tenantry.container import Container, build_container
from tenantry.db.base import utcnow
from tenantry.provisioning.steps import build_steps
from tenantry.tenants.lifecycle import TenantLifecycle
from tenantry.tenants.models import Tenant
from tenantry.tenants.schemas import TenantCreate
from tenantry.tenants.service import TenantService
from tests.support.fakes import ScriptedProvider

OWNER = "worker:test"
GRACE = timedelta(days=7)


class MovedClock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


def service(container: Container, session: object) -> TenantService:
    return TenantService(
        session,  # type: ignore[arg-type]
        container.settings,
        provisioner=container.runner(),
        sessions=container.sessionmaker,
    )


async def reconcile(container: Container, tenant_id: str) -> Tenant:
    assert await container.leases.claim(tenant_id, OWNER)
    assert await container.reconciler.reconcile(tenant_id, OWNER)
    async with container.sessionmaker() as session:
        tenant = await session.get(Tenant, tenant_id)
        assert tenant is not None
        return tenant


async def test_a_deleted_tenant_is_restorable_during_the_grace_period_and_purged_after_it(
    make_settings: Callable[..., Settings],
) -> None:
    providers = [ScriptedProvider("group"), ScriptedProvider("domain"), ScriptedProvider("drive")]
    settings = make_settings(delete_grace_seconds=GRACE.total_seconds())
    container = build_container(settings, steps=build_steps(*providers))
    clock = MovedClock()
    container.reconciler._clock = clock  # the reconciler decides when a grace period is over
    try:
        ids = {}
        for slug in ("keep", "gone"):
            async with container.sessionmaker() as session, session.begin():
                ids[slug] = (await service(container, session).create(TenantCreate(slug=slug, name=slug), SYSTEM)).id
            assert (await reconcile(container, ids[slug])).status == "active"
            async with container.sessionmaker() as session, session.begin():
                await TenantLifecycle(service(container, session)).delete_and_wait(slug, SYSTEM)

        clock.now += GRACE - timedelta(minutes=1)  # the last minute of the grace period
        for slug in ("keep", "gone"):
            assert (await reconcile(container, ids[slug])).status == "deleting"
        assert all(p.teardowns == [] for p in providers)  # disabled, not removed
        async with container.sessionmaker() as session, session.begin():
            await TenantLifecycle(service(container, session)).restore_and_wait("keep", SYSTEM)
        assert (await reconcile(container, ids["keep"])).status == "active"

        clock.now += timedelta(minutes=2)  # the grace period is over
        purged = await reconcile(container, ids["gone"])
        assert purged.status == "deleted"
        assert purged.deleted_at == clock.now
        # Every upstream removed the purged tenant's object, once; the restored tenant kept everything.
        assert [p.teardowns for p in providers] == [["gone"], ["gone"], ["gone"]]
        assert all(ids["keep"] in p.objects and ids["gone"] not in p.objects for p in providers)
        assert (await reconcile(container, ids["keep"])).status == "active"
    finally:
        await container.aclose()
