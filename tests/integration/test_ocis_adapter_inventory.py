"""The oCIS adapter's listing of marked project spaces, purging one of them, and ensure re-marking a handed-over one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from tenantry.integrations.errors import PermanentStepError
from tenantry.integrations.null import NotConfigured
from tenantry.integrations.ocis.adapter import OcisFileProvider
from tenantry.integrations.ocis.client import OcisClient
from tenantry.integrations.ocis.inventory import marked_space_pages
from tenantry.integrations.ports import ADOPT, MarkedObject, TenantSpec
from tenantry.sandbox.ocis import OcisSandbox

SERVICE_USER = "svc-provisioner"
APP_TOKEN = "sandbox-app-token"
BASE_URL = "http://ocis.sandbox"
TENANT = TenantSpec(
    id="7c9e6679-7425-40de-944b-e07fc1f90ae7",
    slug="acme",
    name="Acme",
    generation=1,
    mail_domain="acme.com",
    quota_bytes=5_000_000_000,
)
OTHER = replace(TENANT, id="9f0e8d7c-0000-4000-8000-00000000beef", slug="beta", name="Beta")


@pytest.fixture
def sandbox() -> OcisSandbox:
    return OcisSandbox(app_tokens={SERVICE_USER: APP_TOKEN}, space_admins=[SERVICE_USER])


@pytest.fixture
async def provider(sandbox: OcisSandbox) -> AsyncIterator[OcisFileProvider]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox.app)) as http:
        yield OcisFileProvider(OcisClient(http, BASE_URL, httpx.BasicAuth(SERVICE_USER, APP_TOKEN)))


def writes(sandbox: OcisSandbox) -> list[str]:
    return [
        f"{r.method} {r.path}" for r in sandbox.controls.requests() if r.method in {"POST", "PUT", "PATCH", "DELETE"}
    ]


async def test_every_marked_space_is_listed_disabled_ones_too_and_nothing_is_written(
    sandbox: OcisSandbox, provider: OcisFileProvider
) -> None:
    acme = (await provider.ensure_tenant_space(TENANT, {})).ids["driveId"]
    beta = (await provider.ensure_tenant_space(OTHER, {})).ids["driveId"]
    sandbox.disable_space(beta)
    sandbox.add_space("Team", description="no marker here")
    sandbox.controls.clear_log()

    listed = await provider.list_tenant_spaces()

    assert writes(sandbox) == []
    assert sorted(listed, key=lambda o: o.name) == [
        MarkedObject(acme, "Acme", TENANT.id, {"driveId": acme}),
        MarkedObject(beta, "Beta", OTHER.id, {"driveId": beta}),
    ]


async def test_the_paged_listing_groups_the_one_streamed_listing_into_pages(
    sandbox: OcisSandbox, provider: OcisFileProvider
) -> None:
    for n in range(5):
        sandbox.add_space(f"T{n}", description=f"[tenantry:tenant:{n}{TENANT.id[1:]}]")
        sandbox.add_space(f"Team {n}", description="no marker here")
    sandbox.controls.clear_log()

    pages = [page async for page in marked_space_pages(provider, "driveId", size=2)]
    whole = [page async for page in provider.tenant_space_pages()]
    listed = await provider.list_tenant_spaces()

    assert [len(page) for page in pages] == [2, 2, 1]
    assert [o for page in pages for o in page] == [o for page in whole for o in page] == listed
    assert [len(page) for page in whole] == [5]  # a few hundred a page by default
    assert [f"{r.method} {r.path}" for r in sandbox.controls.requests()] == ["GET /graph/v1.0/drives"] * 3


async def test_a_listed_space_is_disabled_then_purged_and_the_others_marked_alike_stay(
    sandbox: OcisSandbox, provider: OcisFileProvider
) -> None:
    await provider.ensure_tenant_space(TENANT, {})
    twin = sandbox.add_space("Acme twin", description=f"copy [tenantry:tenant:{TENANT.id}]")["id"]
    listed = {o.id: o for o in await provider.list_tenant_spaces()}
    (first,) = [o for o in listed.values() if o.id != twin]

    result = await provider.purge_marked_space(first)
    again = await provider.purge_marked_space(first)

    assert (result.state, result.reason, result.events) == (
        "ok",
        "Purged",
        [f"disabled space {first.id}", f"purged space {first.id}"],
    )
    assert [s["id"] for s in sandbox.spaces()] == [twin]  # only the one asked for, not every space so marked
    assert (again.state, again.message) == ("ok", f"oCIS space 'Acme' ({first.id}) was already gone")


async def test_a_space_whose_marker_changed_since_it_was_listed_is_left_alone(
    sandbox: OcisSandbox, provider: OcisFileProvider
) -> None:
    drive_id = (await provider.ensure_tenant_space(TENANT, {})).ids["driveId"]
    (space,) = await provider.list_tenant_spaces()
    await provider.ensure_tenant_space(OTHER, {"driveId": drive_id})  # now marked for another tenant

    with pytest.raises(PermanentStepError) as refused:
        await provider.purge_marked_space(space)

    assert refused.value.reason == "NotMarked"
    assert [s["id"] for s in sandbox.spaces()] == [drive_id]


async def test_ensure_marks_a_space_handed_to_the_tenant_as_its_own(
    sandbox: OcisSandbox, provider: OcisFileProvider
) -> None:
    drive_id = (await provider.ensure_tenant_space(OTHER, {})).ids["driveId"]

    taken = await provider.ensure_tenant_space(TENANT, {"driveId": drive_id, ADOPT: drive_id})

    assert taken.ids == {"driveId": drive_id}
    (space,) = sandbox.spaces()
    assert (space["name"], space["description"]) == ("Acme", f"Workspace files for Acme [tenantry:tenant:{TENANT.id}]")


async def test_the_null_adapter_lists_nothing() -> None:
    assert await NotConfigured("not configured").list_tenant_spaces() == []
