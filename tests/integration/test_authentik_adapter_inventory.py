"""The authentik adapter's listing of marked groups, deleting one of them, and ensure taking over a handed-over one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from tenantry.integrations.authentik import client as client_module
from tenantry.integrations.authentik.adapter import AuthentikIdentityProvider
from tenantry.integrations.errors import PermanentStepError
from tenantry.integrations.null import NotConfigured
from tenantry.integrations.ports import ADOPT, MarkedObject, TenantSpec
from tenantry.sandbox.authentik import AuthentikSandbox
from tests.support.adapter_sandboxes import authentik_provider, authentik_sandbox, authentik_writes

TENANT = TenantSpec(
    id="5a1d2c3b-0000-4000-8000-00000000abcd",
    slug="acme",
    name="Acme",
    generation=1,
    mail_domain="acme.example",
    quota_bytes=10**9,
)
OTHER = replace(TENANT, id="9f0e8d7c-0000-4000-8000-00000000beef", slug="beta")


@pytest.fixture
def sandbox() -> AuthentikSandbox:
    return authentik_sandbox()


@pytest.fixture
async def provider(sandbox: AuthentikSandbox) -> AsyncIterator[AuthentikIdentityProvider]:
    async with authentik_provider(sandbox) as provider:
        yield provider


writes = authentik_writes


async def test_every_group_marked_managed_by_tenantry_is_listed_with_the_tenant_it_names_and_nothing_is_written(
    sandbox: AuthentikSandbox, provider: AuthentikIdentityProvider
) -> None:
    acme = (await provider.ensure_tenant_group(TENANT, {})).ids["groupPk"]
    beta = (await provider.ensure_tenant_group(OTHER, {})).ids["groupPk"]
    sandbox.add_group("staff", {"tenant_id": "not-ours-without-managed-by"})
    sandbox.controls.clear_log()

    listed = await provider.list_tenant_groups()

    assert writes(sandbox) == []
    assert sorted(listed, key=lambda o: o.name) == [
        MarkedObject(acme, "tenant-acme", TENANT.id, {"groupPk": acme}, "acme"),
        MarkedObject(beta, "tenant-beta", OTHER.id, {"groupPk": beta}, "beta"),
    ]


async def test_the_paged_listing_is_the_listing_one_authentik_page_at_a_time(
    sandbox: AuthentikSandbox, provider: AuthentikIdentityProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "PAGE_SIZE", 2)
    for n in range(5):
        await provider.ensure_tenant_group(replace(TENANT, id=f"{n}{TENANT.id[1:]}", slug=f"t{n}"), {})
    sandbox.controls.clear_log()

    pages = [page async for page in provider.tenant_group_pages()]
    listed = await provider.list_tenant_groups()

    assert [len(page) for page in pages] == [2, 2, 1]
    assert [o for page in pages for o in page] == listed
    assert len(sandbox.controls.requests()) == 6  # three pages, each read once by either


async def test_a_listed_group_is_deleted_and_one_already_gone_counts_as_deleted(
    sandbox: AuthentikSandbox, provider: AuthentikIdentityProvider
) -> None:
    await provider.ensure_tenant_group(TENANT, {})
    (group,) = await provider.list_tenant_groups()

    result = await provider.delete_marked_group(group)
    again = await provider.delete_marked_group(group)

    assert (result.state, result.reason) == ("ok", "Deleted")
    assert sandbox.groups() == []
    assert (again.state, again.message) == ("ok", f"authentik group tenant-acme ({group.id}) was already gone")


async def test_a_group_whose_marker_changed_since_it_was_listed_is_left_alone(
    sandbox: AuthentikSandbox, provider: AuthentikIdentityProvider
) -> None:
    await provider.ensure_tenant_group(TENANT, {})
    (group,) = await provider.list_tenant_groups()
    sandbox.update_group(group.id, attributes={"managed_by": "tenantry", "tenant_id": OTHER.id})

    with pytest.raises(PermanentStepError) as refused:
        await provider.delete_marked_group(group)
    with pytest.raises(PermanentStepError):
        await provider.delete_marked_group(replace(group, tenant_id=None))

    assert refused.value.reason == "NotMarked"
    assert [g["pk"] for g in sandbox.groups()] == [group.id]


async def test_ensure_takes_over_a_group_handed_to_the_tenant_and_marks_it_as_its_own(
    sandbox: AuthentikSandbox, provider: AuthentikIdentityProvider
) -> None:
    pk = (await provider.ensure_tenant_group(OTHER, {})).ids["groupPk"]

    left_alone = await provider.ensure_tenant_group(TENANT, {"groupPk": pk})
    sandbox.delete_group(left_alone.ids["groupPk"])
    taken = await provider.ensure_tenant_group(TENANT, {"groupPk": pk, ADOPT: pk})

    assert left_alone.ids["groupPk"] != pk  # without the hand-over, another tenant's group is never touched
    assert taken.ids == {"groupPk": pk}
    assert any("took over group tenant-beta" in event for event in taken.events)
    (group,) = sandbox.groups()
    assert group["name"] == "tenant-acme"
    assert group["attributes"] == {"tenant_slug": "acme", "tenant_id": TENANT.id, "managed_by": "tenantry"}


async def test_the_null_adapter_lists_nothing() -> None:
    assert await NotConfigured("not configured").list_tenant_groups() == []
