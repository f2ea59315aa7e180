"""Leases on SQLite and PostgreSQL: claim, claim_due, renew, release, expiry, and concurrent batch claims."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tenantry.auth.actor import SYSTEM
from tenantry.config import Settings
from tenantry.db.base import utcnow
from tenantry.db.engine import create_engine, create_sessionmaker
from tenantry.provisioning.leases import LeaseManager
from tenantry.tenants.models import Tenant
from tenantry.tenants.schemas import TenantCreate
from tenantry.tenants.service import TenantService

LEASE = 30.0

Store = tuple[Settings, async_sessionmaker[AsyncSession]]


class Clock:
    """A settable clock, so expiry is a matter of moving time rather than waiting.

    It starts a minute ahead of real time, so tenants created during a test (due "now") are due by it.
    """

    def __init__(self) -> None:
        self.now = utcnow() + timedelta(minutes=1)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
async def store(make_settings: Callable[..., Settings]) -> AsyncIterator[Store]:
    settings = make_settings()
    engine = create_engine(settings)
    try:
        yield settings, create_sessionmaker(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def manager(store: Store, clock: Clock) -> LeaseManager:
    return LeaseManager(store[1], lease_seconds=LEASE, clock=clock)


async def add_tenants(store: Store, *slugs: str) -> list[str]:
    settings, sessionmaker = store
    async with sessionmaker() as session, session.begin():
        service = TenantService(session, settings)
        tenants = [await service.create(TenantCreate(slug=slug, name=slug), SYSTEM) for slug in slugs]
    return [t.id for t in tenants]


async def set_row(store: Store, tenant_id: str, **values: object) -> None:
    async with store[1]() as session, session.begin():
        await session.execute(sa.update(Tenant).where(Tenant.id == tenant_id).values(**values))


async def lease_of(store: Store, tenant_id: str) -> tuple[str | None, datetime | None]:
    async with store[1]() as session:
        row = (
            await session.execute(sa.select(Tenant.lease_owner, Tenant.lease_expires_at).where(Tenant.id == tenant_id))
        ).one()
        return row[0], row[1]


async def test_claim_takes_a_free_tenant_and_refuses_it_to_another_owner_while_held(store, clock) -> None:
    (tenant,) = await add_tenants(store, "acme")
    leases = manager(store, clock)

    assert await leases.claim(tenant, "a") is True
    assert await leases.claim(tenant, "b") is False

    owner, expires = await lease_of(store, tenant)
    assert owner == "a"
    assert expires == clock.now + timedelta(seconds=LEASE)


async def test_the_holder_may_claim_again_which_extends_its_lease(store, clock) -> None:
    (tenant,) = await add_tenants(store, "acme")
    leases = manager(store, clock)
    assert await leases.claim(tenant, "a")
    clock.advance(10)

    assert await leases.claim(tenant, "a") is True

    assert await lease_of(store, tenant) == ("a", clock.now + timedelta(seconds=LEASE))


async def test_claiming_an_unknown_tenant_fails(store, clock) -> None:
    assert await manager(store, clock).claim("00000000-0000-0000-0000-000000000000", "a") is False


async def test_an_expired_lease_can_be_claimed_by_another_owner_and_the_old_holder_learns_it_lost(store, clock) -> None:
    (tenant,) = await add_tenants(store, "acme")
    leases = manager(store, clock)
    assert await leases.claim(tenant, "a")

    clock.advance(LEASE - 1)
    assert await leases.claim(tenant, "b") is False
    clock.advance(2)
    assert await leases.claim(tenant, "b") is True

    assert (await lease_of(store, tenant))[0] == "b"
    assert await leases.renew(tenant, "a") is False
    assert (await lease_of(store, tenant))[0] == "b"


async def test_renew_extends_the_holders_lease_and_nobody_elses(store, clock) -> None:
    (tenant,) = await add_tenants(store, "acme")
    leases = manager(store, clock)
    assert await leases.claim(tenant, "a")
    clock.advance(20)

    assert await leases.renew(tenant, "b") is False
    assert await lease_of(store, tenant) == ("a", clock.now + timedelta(seconds=LEASE - 20))
    assert await leases.renew(tenant, "a") is True
    assert await lease_of(store, tenant) == ("a", clock.now + timedelta(seconds=LEASE))


async def test_release_frees_the_tenant_but_only_for_its_holder(store, clock) -> None:
    (tenant,) = await add_tenants(store, "acme")
    leases = manager(store, clock)
    assert await leases.claim(tenant, "a")

    await leases.release(tenant, "b")
    assert (await lease_of(store, tenant))[0] == "a"
    await leases.release(tenant, "a")

    assert await lease_of(store, tenant) == (None, None)
    assert await leases.claim(tenant, "b") is True


async def test_claim_due_takes_due_unheld_tenants_oldest_first_up_to_the_limit(store, clock) -> None:
    ids = dict(zip("abcdefg", await add_tenants(store, *(f"co-{c}" for c in "abcdefg")), strict=True))
    now = clock.now
    for key, due_in in {"a": -30, "b": -20, "c": -10, "d": 60, "f": -40, "g": -25}.items():
        await set_row(store, ids[key], next_reconcile_at=now + timedelta(seconds=due_in))
    await set_row(store, ids["e"], next_reconcile_at=None)  # nothing scheduled
    await set_row(store, ids["f"], lease_owner="other", lease_expires_at=now + timedelta(seconds=5))  # held
    await set_row(store, ids["g"], lease_owner="crashed", lease_expires_at=now - timedelta(seconds=1))  # expired
    leases = manager(store, clock)

    first = await leases.claim_due("w", limit=3)
    second = await leases.claim_due("w", limit=3)
    third = await leases.claim_due("w", limit=3)

    assert set(first) == {ids["a"], ids["g"], ids["b"]}
    assert second == [ids["c"]]
    assert third == []
    for key in "abcg":
        assert await lease_of(store, ids[key]) == ("w", now + timedelta(seconds=LEASE))
    assert (await lease_of(store, ids["f"]))[0] == "other"
    assert await lease_of(store, ids["d"]) == (None, None)


async def test_a_tenant_becomes_claimable_again_once_its_holders_lease_expires(store, clock) -> None:
    (tenant,) = await add_tenants(store, "acme")
    leases = manager(store, clock)
    assert await leases.claim_due("a", limit=10) == [tenant]
    assert await leases.claim_due("b", limit=10) == []

    clock.advance(LEASE + 1)

    assert await leases.claim_due("b", limit=10) == [tenant]
    assert (await lease_of(store, tenant))[0] == "b"


@pytest.mark.slow
async def test_concurrent_batch_claimers_never_claim_the_same_tenant(store, clock) -> None:
    ids = await add_tenants(store, *(f"co-{n:02d}" for n in range(40)))
    claimers = [manager(store, clock) for _ in range(4)]

    async def drain(leases: LeaseManager, owner: str) -> list[str]:
        taken: list[str] = []
        while batch := await leases.claim_due(owner, limit=3):
            taken.extend(batch)
        return taken

    results = await asyncio.gather(*(drain(leases, f"w{n}") for n, leases in enumerate(claimers)))

    everything = [tenant for taken in results for tenant in taken]
    assert sorted(everything) == sorted(ids)  # each tenant exactly once
    for n, taken in enumerate(results):
        for tenant in taken:
            assert (await lease_of(store, tenant))[0] == f"w{n}"


async def test_claim_due_skips_rows_another_transaction_has_locked_instead_of_waiting(store, clock) -> None:
    settings, sessionmaker = store
    if settings.is_sqlite:
        pytest.skip("row locks (and SKIP LOCKED) exist only on PostgreSQL; SQLite serialises writers instead")
    locked, free = await add_tenants(store, "locked", "free")
    leases = manager(store, clock)

    async with sessionmaker() as other, other.begin():
        await other.execute(sa.select(Tenant.id).where(Tenant.id == locked).with_for_update())
        # A claimer that waited for the lock would never return while it is held: the timeout only
        # turns that hang into a failure.
        during = await asyncio.wait_for(leases.claim_due("w", limit=10), timeout=10)
    after = await leases.claim_due("w", limit=10)

    assert during == [free]
    assert after == [locked]
