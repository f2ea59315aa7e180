"""GET /tenants a page at a time by cursor: every tenant once, in order, even when many share a created_at."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tenantry.config import Settings
from tenantry.container import Container
from tenantry.db.base import utcnow
from tenantry.states import TenantStatus
from tenantry.tenants.models import Tenant
from tests.support.api import api_client
from tests.support.tenant_rows import T0, tenant_row

COUNT = 250
SAME_SECOND = 25  # tenants per created_at: ties are the rule here, not the exception


@pytest.fixture
async def api(make_settings: Callable[..., Settings]) -> AsyncIterator[tuple[httpx.AsyncClient, Container]]:
    async with api_client(make_settings(run_worker_in_api=False), steps=[]) as (client, container):
        yield client, container


async def store(container: Container, *tenants: Any) -> None:
    async with container.sessionmaker() as session:
        session.add_all(tenants)
        await session.commit()


async def walk(client: httpx.AsyncClient, **params: Any) -> list[list[dict[str, Any]]]:
    """Every page from the first, following ``next`` until it is null."""
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        answer = await client.get("/tenants", params=query)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        pages.append(body["items"])
        cursor = body["next"]
        if cursor is None:
            return pages
        assert len(pages) <= COUNT, "the cursor does not advance"


def tombstone(slug: str) -> Any:
    gone = tenant_row(slug, created_at=T0, status=TenantStatus.DELETED)
    gone.deleted_at = T0 + timedelta(days=1)
    return gone


async def test_pages_walk_every_tenant_once_in_created_order_when_created_at_ties(api: Any) -> None:
    client, container = api
    rows = [tenant_row(f"t{i:03d}", created_at=T0 + timedelta(seconds=i // SAME_SECOND)) for i in range(COUNT)]
    await store(container, *rows, tombstone("gone"))
    pages = await walk(client, limit=17)
    walked = [t["id"] for page in pages for t in page]
    assert [len(page) for page in pages] == [17] * 14 + [COUNT - 17 * 14]
    assert len(walked) == len(set(walked)) == COUNT
    assert set(walked) == {t.id for t in rows}  # and not the tombstone
    created = [t["createdAt"] for page in pages for t in page]
    assert created == sorted(created)
    everything = (await client.get("/tenants", params={"limit": 500})).json()
    assert walked == [t["id"] for t in everything["items"]]
    assert everything["next"] is None


async def test_a_tenant_deleted_while_paging_makes_the_walk_skip_nothing_else(api: Any) -> None:
    client, container = api
    rows = [tenant_row(f"t{i:03d}", created_at=T0 + timedelta(seconds=i)) for i in range(12)]
    await store(container, *rows)
    first = (await client.get("/tenants", params={"limit": 5})).json()
    # A tenant already read goes away: with offsets the next page would start one too far and skip t005.
    async with container.sessionmaker() as session:
        read = await session.get(Tenant, rows[0].id)
        assert read is not None
        read.deleted_at = utcnow()
        await session.commit()
    await store(container, tenant_row("late", created_at=utcnow()))
    rest: list[str] = []
    cursor = first["next"]
    while cursor:
        body = (await client.get("/tenants", params={"limit": 5, "cursor": cursor})).json()
        rest += [t["slug"] for t in body["items"]]
        cursor = body["next"]
    assert [t["slug"] for t in first["items"]] == [t.slug for t in rows[:5]]
    assert rest == [t.slug for t in rows[5:]] + ["late"]


async def test_filters_and_offset_still_apply_and_a_count_is_given_only_when_asked(api: Any) -> None:
    client, container = api
    rows = [tenant_row(f"t{i:03d}", created_at=T0 + timedelta(seconds=i)) for i in range(6)]
    rows[1].status = rows[4].status = TenantStatus.DEGRADED
    await store(container, *rows)
    degraded = (await client.get("/tenants", params={"status": "degraded", "count": "true"})).json()
    assert ([t["slug"] for t in degraded["items"]], degraded["total"]) == (["t001", "t004"], 2)
    skipped = (await client.get("/tenants", params={"offset": 2, "limit": 2})).json()
    assert ([t["slug"] for t in skipped["items"]], skipped["total"], skipped["offset"]) == (["t002", "t003"], None, 2)
    after = (await client.get("/tenants", params={"cursor": skipped["next"], "limit": 10})).json()
    assert [t["slug"] for t in after["items"]] == ["t004", "t005"]


def cursor_of(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor",
        "%%%",
        cursor_of({"createdAt": "2026-12-01T00:00:00+00:00"}),
        cursor_of(["2026-12-01T00:00:00+00:00"]),
        cursor_of(["yesterday", "3f1c"]),
        cursor_of(["2026-12-01T00:00:00", "3f1c"]),  # no zone: not one this API hands out
        cursor_of([20261201, "3f1c"]),
    ],
)
async def test_a_cursor_no_page_handed_out_is_refused_with_422_naming_it(api: Any, cursor: str) -> None:
    client, _ = api
    answer = await client.get("/tenants", params={"cursor": cursor})
    assert answer.status_code == 422
    assert answer.json() == {
        "error": "validation_error",
        "detail": [{"field": "cursor", "message": "is not a cursor from a previous page"}],
    }


async def test_the_openapi_document_describes_the_cursor_the_count_and_next(api: Any) -> None:
    client, _ = api
    document = (await client.get("/openapi.json")).json()
    listed = document["paths"]["/tenants"]["get"]
    names = {p["name"] for p in listed["parameters"]}
    assert {"status", "limit", "offset", "cursor", "count"} <= names
    page = document["components"]["schemas"]["TenantPage"]["properties"]
    assert {"items", "total", "limit", "offset", "next"} <= set(page)
