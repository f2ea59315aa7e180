"""Finding tenants by cursor (filters, search, visibility) and checking a new workspace's names as they are typed."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import pytest
import sqlalchemy as sa

from tenantry.auth.actor import Actor
from tenantry.config import Settings
from tenantry.db.engine import create_engine, create_sessionmaker
from tenantry.errors import ForbiddenError, InvalidInputError
from tenantry.states import StepName, StepStatus, TenantStatus
from tenantry.tenants.directory import TenantDirectory, suggest_slug
from tenantry.tenants.models import Tenant, TenantAdmin, TenantStep
from tenantry.tenants.service import TenantService
from tests.support.tenant_rows import T0
from tests.support.tenant_rows import tenant_row as tenant

ADMIN = Actor(sub="admin", is_admin=True)
BOB = Actor(sub="bob", is_admin=False)


@pytest.fixture
async def directory(make_settings: Callable[..., Settings]) -> AsyncIterator[tuple[TenantDirectory, TenantService]]:
    settings = make_settings()
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            service = TenantService(session, settings)
            yield TenantDirectory(service), service
    finally:
        await engine.dispose()


async def add(service: TenantService, *tenants: Tenant) -> None:
    service.session.add_all(tenants)
    await service.session.flush()


async def all_pages(found: TenantDirectory, actor: Actor, **filters: object) -> list[list[str]]:
    pages, after = [], None
    while True:
        page = await found.browse(actor, after=after, limit=2, **filters)  # type: ignore[arg-type]
        pages.append([t.slug for t in page.items])
        if page.next_cursor is None:
            return pages
        after = page.next_cursor


async def test_pages_follow_the_cursor_by_slug_without_repeating_or_skipping(directory) -> None:
    found, service = directory
    await add(service, *(tenant(s) for s in ("echo", "alpha", "delta", "bravo", "charlie")))
    assert await all_pages(found, ADMIN) == [["alpha", "bravo"], ["charlie", "delta"], ["echo"]]


async def test_an_ordinary_user_sees_only_what_they_own_or_administer(directory) -> None:
    found, service = directory
    shared = tenant("shared", owner="carol")
    shared.admins.append(TenantAdmin(sub="bob", added_at=T0, added_by="carol"))
    await add(service, tenant("mine"), tenant("theirs", owner="carol"), shared)
    assert await all_pages(found, BOB) == [["mine", "shared"]]
    assert await all_pages(found, ADMIN) == [["mine", "shared"], ["theirs"]]


async def test_the_operators_view_is_for_platform_admins_only(directory) -> None:
    found, _ = directory
    with pytest.raises(ForbiddenError, match="platform admins"):
        await found.browse(BOB, everyone=True)


async def test_filters_by_status_by_a_step_in_error_and_by_slug_or_name_in_any_case(directory) -> None:
    found, service = directory
    failing = tenant("failing")
    failing.steps[1].status = StepStatus.ERROR
    await add(
        service,
        tenant("acme", name="Acme Corp"),
        tenant("globex", name="Globex 100%_off"),
        tenant("paused", status=TenantStatus.SUSPENDED),
        failing,
    )
    assert await all_pages(found, ADMIN, status=TenantStatus.SUSPENDED) == [["paused"]]
    assert await all_pages(found, ADMIN, troubled=True) == [["failing"]]
    assert await all_pages(found, ADMIN, text="CORP") == [["acme"]]
    assert await all_pages(found, ADMIN, text="lob") == [["globex"]]
    assert await all_pages(found, ADMIN, text="0%_") == [["globex"]]  # LIKE wildcards are taken literally
    assert await all_pages(found, ADMIN, text="_") == [["globex"]]


async def test_a_cursor_not_from_a_page_is_refused_as_bad_input(directory) -> None:
    found, _ = directory
    with pytest.raises(InvalidInputError):
        await found.browse(ADMIN, after="not-a-cursor!")


async def test_availability_names_each_problem_next_to_its_field(directory) -> None:
    found, service = directory
    await add(service, tenant("taken"))
    assert await found.availability(BOB, slug="fresh", name="Fresh", mail_domain=None) == {}
    assert "already taken" in (await found.availability(BOB, slug="taken", name="T", mail_domain=None))["slug"]
    assert "reserved" in (await found.availability(BOB, slug="admin", name="A", mail_domain=None))["slug"]
    assert "lowercase" in (await found.availability(BOB, slug="Bad_Slug", name="B", mail_domain=None))["slug"]
    problems = await found.availability(BOB, slug="fresh", name="F", mail_domain="other.mail.example.test")
    assert "platform" in problems["mailDomain"]
    assert "blank" in (await found.availability(BOB, slug="fresh", name="   ", mail_domain=None))["name"]


@pytest.mark.parametrize(
    ("name", "slug"),
    [("Acme Corp", "acme-corp"), ("Café Übersee", "cafe-ubersee"), ("  --Hi--  ", ""), ("ab--cd", "ab-cd"), ("x", "")],
)
def test_a_slug_is_suggested_from_the_name(name: str, slug: str) -> None:
    assert suggest_slug(name) == slug


@pytest.mark.slow
async def test_a_page_stays_fast_with_a_hundred_thousand_tenants(directory) -> None:
    found, service = directory
    session = service.session
    rows = [
        {
            "id": f"{i:08d}-0000-0000-0000-000000000000",
            "slug": f"t{i:06d}",
            "name": f"Tenant {i}",
            "status": "active",
            "generation": 1,
            "mail_domain": f"t{i:06d}.mail.example.test",
            "quota_bytes": 1,
            "owner_sub": f"user{i % 1000}",
            "created_at": T0,
            "updated_at": T0,
            "lifecycle": "active",
        }
        for i in range(100_000)
    ]
    await session.execute(sa.insert(Tenant.__table__), rows)
    steps = [
        {
            "tenant_id": r["id"],
            "step": StepName.STALWART.value,
            "status": "error" if i % 5000 == 0 else "ok",
            "reason": "r",
            "message": "m",
            "retryable": True,
            "attempts": 1,
            "observed_generation": 1,
            "outputs": {},
            "data": {},
        }
        for i, r in enumerate(rows)
    ]
    await session.execute(sa.insert(TenantStep.__table__), steps)
    await session.flush()
    middle = (await found.browse(ADMIN, limit=50, text="t05")).next_cursor
    timings = {}
    for label, kwargs in {
        "first": {},
        "deep": {"after": middle},
        "trouble": {"troubled": True},
        "search": {"text": "tenant 99999"},
        "mine": {},
    }.items():
        actor = Actor(sub="user7", is_admin=False) if label == "mine" else ADMIN
        start = time.perf_counter()
        page = await found.browse(actor, limit=50, **kwargs)  # type: ignore[arg-type]
        timings[label] = time.perf_counter() - start
        assert page.items, label
    assert max(timings.values()) < 1.0, timings
