"""The bulk resync reads each listing a page at a time: one page held, one store query per page, the same
verdicts wherever on the listing an object is, and nothing concluded from a listing that failed part-way; on
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
import sqlalchemy as sa

from tenantry.config import Settings
from tenantry.container import Container, build_container
from tenantry.integrations.errors import TransientStepError
from tenantry.integrations.ports import MarkedObject
from tenantry.provisioning import resync as resync_module
from tenantry.provisioning.resync import Resync, ResyncReport
from tenantry.provisioning.steps import Step, SurveyPages
from tenantry.states import StepName, StepStatus
from tenantry.tenants.models import TenantEvent, TenantStep
from tests.support.statements import recording
from tests.support.tenant_rows import tenant_row

AUTHENTIK = StepName.AUTHENTIK
Listing = list[list[MarkedObject]]


class Page(list[MarkedObject]):
    """A page of a listing that a test can hold a weak reference to."""


async def _refused(*_: object, **__: object) -> Any:
    raise AssertionError("the resync only lists and compares")


def listing_step(pages: SurveyPages | None, whole: Listing) -> Step:
    """The authentik step over a scripted listing: ``pages`` page by page (None: only the survey, as one list)."""

    async def survey() -> list[MarkedObject]:
        return [obj for page in whole for obj in page]

    async def ping() -> None:
        return None

    return Step(AUTHENTIK, _refused, _refused, _refused, ping, True, survey, _refused, survey_pages=pages)


def pages_of(listing: Listing) -> SurveyPages:
    async def pages() -> AsyncIterator[list[MarkedObject]]:
        for page in listing:
            yield Page(page)

    return pages


@pytest.fixture
async def container(make_settings: Callable[..., Settings]) -> AsyncIterator[Container]:
    built = build_container(make_settings(), steps=[])
    try:
        yield built
    finally:
        await built.aclose()


async def seed(container: Container, count: int) -> dict[str, str]:
    """``count`` tenants whose authentik step is healthy, storing the group ``g-<slug>``; slug -> tenant id."""
    tenants = [tenant_row(f"t{n:02d}") for n in range(count)]
    for tenant in tenants:
        (step,) = [s for s in tenant.steps if s.step == AUTHENTIK]
        step.status, step.observed_generation, step.outputs = StepStatus.OK, 1, {"groupPk": f"g-{tenant.slug}"}
    async with container.sessionmaker() as session, session.begin():
        session.add_all(tenants)
    return {t.slug: t.id for t in tenants}


def stored(tenants: dict[str, str], slug: str) -> MarkedObject:
    return MarkedObject(f"g-{slug}", f"tenant-{slug}", tenants[slug], {"groupPk": f"g-{slug}"}, slug)


def other(tenants: dict[str, str], slug: str, name: str) -> MarkedObject:
    """A group carrying the tenant's marker that is not the one its step stores."""
    return MarkedObject(name, name, tenants[slug], {"groupPk": name}, slug)


def by_name(slug: str) -> MarkedObject:
    """The tenant's stored group as listed when only its name ties it to the tenant."""
    return MarkedObject(f"g-{slug}", f"tenant-{slug}", None, {"groupPk": f"g-{slug}"}, slug)


def split(objects: Sequence[MarkedObject], size: int) -> Listing:
    return [list(objects[start : start + size]) for start in range(0, len(objects), size)]


async def resync(container: Container, step: Step, *, timeout: float = 5) -> ResyncReport:
    return await Resync(container.sessionmaker, [step], list_timeout_seconds=timeout).run_once()


async def store_state(container: Container) -> tuple[list[tuple[Any, ...]], int]:
    """Every authentik step's due time and data, and how many timeline events there are."""
    async with container.sessionmaker() as session:
        steps = await session.execute(
            sa.select(TenantStep.tenant_id, TenantStep.next_attempt_at, TenantStep.data)
            .where(TenantStep.step == AUTHENTIK)
            .order_by(TenantStep.tenant_id)
        )
        events = await session.scalar(sa.select(sa.func.count()).select_from(TenantEvent))
    return [tuple(row) for row in steps], events or 0


@pytest.mark.parametrize("failure", ["upstream error", "timeout"])
async def test_a_listing_that_fails_on_its_second_page_concludes_nothing(container: Container, failure: str) -> None:
    tenants = await seed(container, 6)
    first = [stored(tenants, "t00"), other(tenants, "t00", "twin-t00"), other(tenants, "t01", "new-t01")]

    async def pages() -> AsyncIterator[list[MarkedObject]]:
        yield first  # a twin, a replaced group, and four tenants whose group is not listed yet
        if failure == "timeout":
            await asyncio.sleep(30)
        raise TransientStepError("authentik answered 503")

    before = await store_state(container)
    report = await resync(container, listing_step(pages, [first]), timeout=0.5)

    expected = "authentik answered 503" if failure == "upstream error" else "no listing within 0.5s"
    assert report.failed == {"authentik": expected}
    assert (report.listed, report.compared, report.drifted, report.removed, report.kept) == ({}, 0, [], [], [])
    assert await store_state(container) == before  # nobody woken, no duplicate noted, no event


@pytest.mark.parametrize("twin_at", [0, -1], ids=["twin-first", "twin-last"])
async def test_a_twin_on_another_page_than_the_group_it_doubles_is_a_duplicate(
    container: Container, twin_at: int
) -> None:
    tenants = await seed(container, 6)
    listing = split([stored(tenants, slug) for slug in tenants], 2)
    listing[twin_at].append(other(tenants, "t03", "twin-t03"))  # t03's own group is on the second page

    report = await resync(container, listing_step(pages_of(listing), listing))
    _, events = await store_state(container)
    async with container.sessionmaker() as session:
        t03 = await session.get(TenantStep, (tenants["t03"], AUTHENTIK))

    assert (report.listed, report.compared, report.drifted) == ({"authentik": 7}, 6, [])
    assert report.kept == [(tenants["t03"], "authentik", "twin-t03")]
    assert t03 is not None
    assert t03.data["duplicates"] == ["twin-t03"]
    assert events == 1  # the duplicate's note


async def test_each_verdict_is_the_same_wherever_on_the_listing_its_objects_are(container: Container) -> None:
    tenants = await seed(container, 8)
    objects = [
        by_name("t01"),  # t01's stored group, but only its name ties it to t01 ...
        stored(tenants, "t00"),
        by_name("t02"),  # t02's, tied to it by its name alone: in sync
        stored(tenants, "t03"),
        other(tenants, "t03", "twin-t03"),
        other(tenants, "t04", "new-t04"),  # t04's stored group is gone, another carries its marker
        stored(tenants, "t05"),
        stored(tenants, "t06"),
        other(tenants, "t01", "new-t01"),  # ... and a group whose marker names t01 wins over it
        # t07: nothing listed
    ]

    whole = await resync(container, listing_step(None, [objects]))
    paged = await resync(container, listing_step(pages_of(split(objects, 2)), [objects]))

    assert sorted(whole.drifted) == sorted(
        [
            (tenants["t01"], "authentik", "the authentik object it stores is gone; new-t01 carries its marker"),
            (tenants["t04"], "authentik", "the authentik object it stores is gone; new-t04 carries its marker"),
            (tenants["t07"], "authentik", "no authentik object carrying this workspace's marker"),
        ]
    )
    assert whole.kept == [(tenants["t03"], "authentik", "twin-t03")]
    assert (paged.listed, paged.compared, paged.drifted, paged.kept) == (
        whole.listed,
        whole.compared,
        whole.drifted,
        whole.kept,
    )


async def test_the_resync_holds_one_page_of_the_listing_at_a_time(container: Container) -> None:
    tenants = await seed(container, 12)
    listing = split([stored(tenants, slug) for slug in tenants], 3)
    handed: list[weakref.ref[Page]] = []
    still_held: list[int] = []

    async def pages() -> AsyncIterator[list[MarkedObject]]:
        for objects in listing:
            gc.collect()
            # The pages handed out before that the resync still holds.
            still_held.append(sum(ref() is not None for ref in handed))
            page = Page(objects)
            handed.append(weakref.ref(page))
            yield page
            del page

    report = await resync(container, listing_step(pages, listing))

    assert (report.compared, report.drifted, report.kept) == (12, [], [])
    assert still_held == [0, 0, 0, 0]


@pytest.mark.parametrize(("lookup", "per_page"), [(500, 1), (2, 3)])
async def test_the_rows_of_a_page_are_read_in_one_query_per_few_hundred_tenants(
    container: Container, monkeypatch: pytest.MonkeyPatch, lookup: int, per_page: int
) -> None:
    monkeypatch.setattr(resync_module, "_LOOKUP", lookup)
    tenants = await seed(container, 15)
    listing = split([stored(tenants, slug) for slug in tenants], 5)

    with recording(container.engine) as seen:
        report = await resync(container, listing_step(pages_of(listing), listing))

    assert (report.compared, report.drifted) == (15, [])
    reads = [s for s in seen.of("SELECT") if s in seen.touching("tenant_steps")]
    assert len(reads) == 3 * per_page + 1, seen.summary()  # each page's rows, then the healthy rows once
