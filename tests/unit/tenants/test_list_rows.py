"""GET /tenants and GET /tenants/{slug}, written straight from rows, answer byte for byte what TenantOut (and
the ETag of the ORM tenant) make of the same tenants."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from fastapi import Request
from pydantic import TypeAdapter

from tenantry.auth.actor import Actor
from tenantry.config import Settings
from tenantry.container import Container
from tenantry.states import DomainProof, DomainStatus, StepName, StepStatus, TenantStatus
from tenantry.tenants.cursors import encode_created_cursor
from tenantry.tenants.etags import etag
from tenantry.tenants.listing import utc_text
from tenantry.tenants.models import DomainClaim, Tenant, TenantAdmin
from tenantry.tenants.presenter import present
from tenantry.tenants.repository import TenantRepository
from tenantry.tenants.schemas import TenantPage
from tests.support.api import api_client
from tests.support.tenant_rows import T0, tenant_row

US = timedelta(microseconds=1)


async def caller(request: Request) -> Actor:
    """The caller a test names in X-Caller (a platform admin without it)."""
    sub = request.headers.get("x-caller")
    return Actor(sub=sub, is_admin=sub is None)


@pytest.fixture
async def api(make_settings: Callable[..., Settings]) -> AsyncIterator[tuple[httpx.AsyncClient, Container]]:
    async with api_client(make_settings(run_worker_in_api=False), steps=[], actor_resolver=caller) as pair:
        yield pair


def claim(tenant: Tenant, domain: str, status: DomainStatus, **extra: Any) -> DomainClaim:
    verified = domain if status == DomainStatus.VERIFIED else None
    return DomainClaim(
        tenant_id=tenant.id, domain=domain, status=status, verified_domain=verified, token="t" * 32, **extra
    )


def varied() -> list[Tenant]:
    """Tenants that exercise every field: steps in each state, odd upstream ids, dates with and without
    microseconds, no steps, no claim, an alias claim, text that JSON must escape, and a tombstone."""
    healthy = tenant_row("alpha", created_at=T0 + 123456 * US)
    healthy.activated_at = T0 + timedelta(minutes=1)
    healthy.updated_by, healthy.created_by = "admin", "admin"
    for n, step in enumerate(healthy.steps):
        step.status, step.reason, step.message = StepStatus.OK, "Ready", f"{step.step} is ready"
        step.attempts, step.observed_generation = n + 1, 1
        step.last_attempt_at = step.last_success_at = step.last_transition_at = T0 + (n * 1000 + 7) * US
        step.next_attempt_at = T0 + timedelta(days=1)
        step.outputs = {"id": f"up-{n}", "pk": 40 + n, "flag": True}
        step.data = {"never": "listed"}
    healthy.domain_claims = [
        claim(healthy, "old.example.test", DomainStatus.VERIFIED, replaced_at=T0, proof=DomainProof.DNS),
        claim(healthy, healthy.mail_domain, DomainStatus.VERIFIED, proof=DomainProof.PLATFORM),
    ]
    troubled = tenant_row("bravo", name='Bravo « ünï » "quoted" \\ 🙂 \u2028', created_at=T0 + 123456 * US)
    troubled.owner_sub = None
    mail = next(s for s in troubled.steps if s.step == StepName.STALWART)
    mail.status, mail.reason, mail.retryable = StepStatus.ERROR, "Conflict", False
    mail.message = 'Stalwart said: "domain exists" <\x01>'
    mail.attempts, mail.last_attempt_at = 3, T0 + timedelta(hours=2)
    troubled.domain_claims = [claim(troubled, troubled.mail_domain, DomainStatus.UNVERIFIED)]
    bare = tenant_row("charlie", status=TenantStatus.PENDING, created_at=T0 + timedelta(seconds=5))
    bare.steps = []
    gone = tenant_row("delta", status=TenantStatus.DELETED, created_at=T0 + timedelta(seconds=6))
    gone.deleted_at = T0 + timedelta(days=2)
    later = [tenant_row(f"echo{i}", created_at=T0 + timedelta(seconds=10 + i)) for i in range(4)]
    return [healthy, troubled, bare, gone, *later]


async def store(container: Container, tenants: list[Tenant]) -> list[Tenant]:
    """Store the tenants; then read each back whole, as the single-tenant path loads it."""
    async with container.sessionmaker() as session:
        session.add_all(tenants)
        await session.commit()
    async with container.sessionmaker() as session:
        repo = TenantRepository(session)
        loaded = [await repo.by_id(t.id) for t in tenants]
    return sorted((t for t in loaded if t is not None), key=lambda t: (t.created_at, t.id))


def expected_page(tenants: list[Tenant], *, limit: int, offset: int = 0, more: bool, total: int | None = None) -> bytes:
    following = encode_created_cursor(tenants[-1].created_at, tenants[-1].id) if more else None
    page = TenantPage(items=[present(t) for t in tenants], total=total, limit=limit, offset=offset, next=following)
    return page.model_dump_json(by_alias=True).encode()


async def test_every_listed_tenant_has_the_fields_the_tenant_presenter_gives_it_conditions_included(api: Any) -> None:
    client, container = api
    tenants = [t for t in await store(container, varied()) if t.deleted_at is None]

    answer = await client.get("/tenants", params={"limit": 500})

    assert answer.status_code == 200
    listed = answer.json()["items"]
    assert [t["slug"] for t in listed] == [t.slug for t in tenants]
    for item, tenant in zip(listed, tenants, strict=True):
        wanted = present(tenant).model_dump(mode="json", by_alias=True)
        assert list(item) == list(wanted)  # same fields, same order
        for name, value in wanted.items():
            assert item[name] == value, (tenant.slug, name)
        for step, condition in wanted["conditions"].items():
            assert list(item["conditions"][step].items()) == list(condition.items()), (tenant.slug, step)
    assert listed[2]["conditions"] == {}  # charlie: no steps
    assert listed[2]["mailDomainStatus"] is None  # and no claim


async def test_pages_are_byte_for_byte_what_the_response_model_writes_for_the_same_tenants(api: Any) -> None:
    client, container = api
    tenants = [t for t in await store(container, varied()) if t.deleted_at is None]

    first = await client.get("/tenants", params={"limit": 3, "count": "true"})
    rest = await client.get("/tenants", params={"limit": 3, "cursor": first.json()["next"]})
    skipped = await client.get("/tenants", params={"limit": 2, "offset": 5})

    assert first.content == expected_page(tenants[:3], limit=3, more=True, total=len(tenants))
    assert rest.content == expected_page(tenants[3:6], limit=3, more=True)
    assert skipped.content == expected_page(tenants[5:], limit=2, offset=5, more=False)
    assert first.headers["content-type"] == "application/json"
    assert int(first.headers["content-length"]) == len(first.content)


async def test_a_status_filter_lists_tombstones_as_the_presenter_shows_them(api: Any) -> None:
    client, container = api
    tenants = await store(container, varied())
    gone = [t for t in tenants if t.deleted_at is not None]

    answer = await client.get("/tenants", params={"status": "deleted"})

    assert [t.slug for t in gone] == ["delta"]
    assert answer.content == expected_page(gone, limit=50, more=False)


def test_dates_are_written_as_pydantic_writes_an_aware_utc_datetime() -> None:
    dates = TypeAdapter(datetime)
    for at in (T0, T0 + 120000 * US, T0 + 5 * US, datetime(2027, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)):
        written = json.dumps(utc_text(at)).encode()
        assert written == dates.dump_json(at), at
        assert utc_text(at.replace(tzinfo=None)) == utc_text(at)  # SQLite's naive UTC
        assert utc_text(at.astimezone(timezone(timedelta(hours=-5)))) == utc_text(at)
    assert utc_text(None) is None


async def test_one_tenant_is_byte_for_byte_what_the_response_model_writes_with_the_same_etag(api: Any) -> None:
    client, container = api
    tenants = await store(container, varied())

    for tenant in tenants:
        answer = await client.get(f"/tenants/{tenant.slug}")

        assert answer.status_code == 200
        assert answer.content == present(tenant).model_dump_json(by_alias=True).encode(), tenant.slug
        assert answer.headers["etag"] == etag(tenant)
        assert list(answer.headers) == ["content-length", "content-type", "etag"]


async def test_one_tenant_is_shown_to_its_owner_and_admins_and_to_nobody_else(api: Any) -> None:
    client, container = api
    (tenant,) = await store(container, [tenant_row("foxtrot", owner="olive")])
    async with container.sessionmaker() as session:
        session.add(TenantAdmin(tenant_id=tenant.id, sub="adam", added_at=T0))
        await session.commit()
    expected = present(tenant).model_dump_json(by_alias=True).encode()

    answers = {sub: await client.get("/tenants/foxtrot", headers={"X-Caller": sub}) for sub in ("olive", "adam", "eve")}

    assert answers["olive"].content == answers["adam"].content == expected
    assert answers["eve"].status_code == 404
    assert answers["eve"].json() == {"error": "not_found", "detail": "no tenant 'foxtrot'"}
    missing = await client.get("/tenants/nobody")
    assert missing.status_code == 404
    assert missing.json() == {"error": "not_found", "detail": "no tenant 'nobody'"}


async def test_a_purged_slug_shows_its_latest_tombstone_and_a_live_tenant_wins_over_it(api: Any) -> None:
    client, container = api
    old, newer, live = (tenant_row("golf", status=TenantStatus.DELETED) for _ in range(3))
    old.deleted_at, newer.deleted_at = T0 + timedelta(days=1), T0 + timedelta(days=2)
    live.status = TenantStatus.ACTIVE
    await store(container, [old, newer])
    tombstone = await client.get("/tenants/golf")
    (live,) = await store(container, [live])

    shown = await client.get("/tenants/golf")

    assert tombstone.json()["id"] == newer.id
    assert shown.content == present(live).model_dump_json(by_alias=True).encode()
