"""What each tenant path asks of the store, counted statement by statement on SQLite and PostgreSQL.

The counts are exact: a change that adds a round trip to a hot path shows up here, not in production.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tenantry.auth.actor import Actor
from tenantry.config import Settings
from tenantry.db.engine import create_engine, create_sessionmaker
from tenantry.provisioning.steps import build_steps
from tenantry.tenants.models import Tenant
from tenantry.tenants.schemas import TenantCreate, TenantUpdate
from tenantry.tenants.service import StepPlanView, TenantService
from tests.support.api import api_client
from tests.support.fakes import ScriptedProvider
from tests.support.statements import Statements, recording

ADMIN = Actor(sub="admin", is_admin=True)
WHOLE_TENANT = ("tenant_steps", "tenant_admins", "domain_claims")
STEP_DATA = re.compile(r"\btenant_steps(_\d+)?\.data\b")


@dataclass
class NoReconcile:
    """A provisioner that records what it was asked to reconcile and touches nothing (so it hands back no
    recorded tenant, and the answer reads the tenant once)."""

    asked: list[str] = field(default_factory=list)

    def hand_off(self, tenant: Tenant, now: datetime) -> None:
        return None  # the tenant is stored unleased, as without a provisioner

    async def reconcile_now(self, tenant_id: str, *, force: bool, wait: float, fresh: object = None) -> Tenant | None:
        self.asked.append(tenant_id)
        return None

    async def plan(self, tenant_id: str) -> Sequence[StepPlanView] | None:
        return None


@dataclass
class Store:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    settings: Settings
    provisioner: NoReconcile

    def service(self, session: AsyncSession) -> TenantService:
        return TenantService(session, self.settings, provisioner=self.provisioner, sessions=self.sessions)


@pytest.fixture
async def store(make_settings: Callable[..., Settings]) -> AsyncIterator[Store]:
    settings = make_settings()
    engine = create_engine(settings)
    try:
        yield Store(engine, create_sessionmaker(engine), settings, NoReconcile())
    finally:
        await engine.dispose()


async def create(store: Store, slug: str) -> None:
    async with store.sessions() as session:
        await store.service(session).create(TenantCreate(slug=slug, name=slug.title()), ADMIN)
        await session.commit()


def one_query_for_the_whole_tenant(seen: Statements) -> None:
    selects = seen.of("SELECT")
    assert len(selects) == 1, seen.summary()
    assert all(f"JOIN {table} " in selects[0] for table in WHOLE_TENANT), selects[0]


async def test_a_create_checks_its_names_once_writes_each_table_once_and_reads_the_result_once(store: Store) -> None:
    with recording(store.engine) as seen:
        async with store.sessions() as session:
            settling = await store.service(session).create_and_wait(TenantCreate(slug="acme", name="Acme"), ADMIN)
            await session.commit()
        in_the_unit_of_work = list(seen.sql)
        seen.clear()
        settled = await settling.settle()
    assert settled.slug == "acme"
    # The slug and every name the mail domain could clash with, in one statement; then one INSERT per table.
    assert [s.split()[0] for s in in_the_unit_of_work] == ["SELECT", "INSERT", "INSERT", "INSERT", "INSERT"]
    assert [s.split()[2] for s in in_the_unit_of_work[1:]] == [
        "tenants",
        "domain_claims",
        "tenant_steps",
        "tenant_events",
    ]
    # After the reconcile, the tenant as it left it: one statement, in a transaction of its own.
    one_query_for_the_whole_tenant(seen)
    assert seen.transactions.count("BEGIN") <= 1
    assert store.provisioner.asked == [settled.id]


async def test_a_create_with_a_taken_slug_is_refused_by_the_same_single_check(store: Store) -> None:
    from tenantry.errors import ConflictError

    await create(store, "acme")
    with recording(store.engine) as seen:
        async with store.sessions() as session:
            with pytest.raises(ConflictError, match="a tenant with slug 'acme' already exists"):
                await store.service(session).create(TenantCreate(slug="acme", name="Again"), ADMIN)
    assert [s.split()[0] for s in seen.sql] == ["SELECT"]


async def test_a_patch_reads_the_tenant_once_writes_the_change_and_its_event_and_reads_the_result_once(
    store: Store,
) -> None:
    await create(store, "acme")
    with recording(store.engine) as seen:
        async with store.sessions() as session:
            settling = await store.service(session).update_and_wait("acme", TenantUpdate(name="Acme Two"), ADMIN)
            await session.commit()
        in_the_unit_of_work = list(seen.sql)
        seen.clear()
        settled = await settling.settle()
    assert settled.name == "Acme Two"
    assert [s.split()[0] for s in in_the_unit_of_work] == ["SELECT", "UPDATE", "INSERT"]
    assert all(f"JOIN {table} " in in_the_unit_of_work[0] for table in WHOLE_TENANT)
    one_query_for_the_whole_tenant(seen)


async def test_a_patch_that_changes_nothing_writes_nothing_and_reads_once(store: Store) -> None:
    await create(store, "acme")
    with recording(store.engine) as seen:
        async with store.sessions() as session:
            settling = await store.service(session).update_and_wait("acme", TenantUpdate(name="Acme"), ADMIN)
            await session.commit()
        assert (await settling.settle()).generation == 1
    one_query_for_the_whole_tenant(seen)


def three_steps() -> list[object]:
    return build_steps(ScriptedProvider("group"), ScriptedProvider("domain"), ScriptedProvider("drive"))


async def test_get_one_tenant_is_one_select_and_neither_it_nor_the_list_reads_step_data_or_counts_unless_asked(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(run_worker_in_api=False)
    async with api_client(settings, steps=three_steps()) as (client, container):  # type: ignore[arg-type]
        for slug in ("acme", "bees", "cats"):
            assert (await client.post("/tenants", json={"slug": slug, "name": slug})).status_code == 201
        with recording(container.engine) as one:
            shown = await client.get("/tenants/acme")
        with recording(container.engine) as listed:
            page = await client.get("/tenants", params={"limit": 2})
        with recording(container.engine) as counted:
            with_total = await client.get("/tenants", params={"count": "true"})
    assert shown.status_code == 200
    assert shown.json()["provisioningStatus"] == {"authentik": "ok", "stalwart": "ok", "ocis": "ok"}
    (read,) = one.of("SELECT")  # the tenant with its steps and its claim, in one statement
    assert all(f"JOIN {table} " in read for table in ("tenant_steps", "domain_claims")), read
    assert not STEP_DATA.search(read)  # a tenant shows no step data, so it reads none
    assert one.transactions.count("BEGIN") <= 1

    assert [t["slug"] for t in page.json()["items"]] == ["acme", "bees"]
    assert page.json()["total"] is None
    assert len(listed.sql) == 1, listed.summary()
    assert "count(" not in listed.sql[0].lower()
    assert not STEP_DATA.search(listed.sql[0])
    assert "tenant_admins" not in listed.sql[0]  # a list shows no admins, so it loads none

    assert with_total.json()["total"] == 3
    assert len(counted.sql) == 2
    assert len([s for s in counted.sql if "count(" in s.lower()]) == 1
    assert not [s for s in counted.sql if STEP_DATA.search(s)]
