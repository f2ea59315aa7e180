"""The authentik adapter's dry run against the authentik sandbox: what ensure or delete would do, and no write."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from tenantry.integrations.authentik.adapter import AuthentikIdentityProvider
from tenantry.integrations.null import NotConfigured
from tenantry.integrations.ports import PlannedChange, TenantSpec
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
OURS = {"tenant_slug": "acme", "tenant_id": TENANT.id, "managed_by": "tenantry"}


@pytest.fixture
def sandbox() -> AuthentikSandbox:
    return authentik_sandbox()


@pytest.fixture
async def provider(sandbox: AuthentikSandbox) -> AsyncIterator[AuthentikIdentityProvider]:
    async with authentik_provider(sandbox) as provider:
        yield provider


writes = authentik_writes


async def plan_without_writing(
    provider: AuthentikIdentityProvider,
    sandbox: AuthentikSandbox,
    tenant: TenantSpec,
    ids: dict[str, str],
    *,
    teardown: bool = False,
) -> list[PlannedChange]:
    sandbox.controls.clear_log()
    plan = await provider.plan_tenant_group(tenant, ids, teardown=teardown)
    assert sandbox.controls.requests(), "the plan read nothing"
    assert writes(sandbox) == []
    return plan


async def test_a_new_tenant_plans_the_group_it_would_create(
    sandbox: AuthentikSandbox, provider: AuthentikIdentityProvider
) -> None:
    [change] = await plan_without_writing(provider, sandbox, TENANT, {})

    assert (change.target, change.action) == ("authentik group tenant-acme", "create")
    assert change.changes == {
        "name": (None, "tenant-acme"),
        "attributes.tenant_slug": (None, "acme"),
        "attributes.tenant_id": (None, TENANT.id),
        "attributes.managed_by": (None, "tenantry"),
    }
    assert sandbox.groups() == []


async def test_the_group_ensure_made_plans_unchanged_by_its_pk_and_by_its_marker(
    sandbox: AuthentikSandbox, provider: AuthentikIdentityProvider
) -> None:
    ids = (await provider.ensure_tenant_group(TENANT, {})).ids

    [stored] = await plan_without_writing(provider, sandbox, TENANT, ids)
    [found] = await plan_without_writing(provider, sandbox, TENANT, {})

    assert (stored.action, stored.changes, stored.note) == ("unchanged", {}, "")
    assert stored.target == f"authentik group tenant-acme ({ids['groupPk']})"
    assert (found.action, found.changes) == ("unchanged", {})
    assert found.note == f"would adopt group tenant-acme ({ids['groupPk']}) marked for this tenant"


async def test_out_of_band_drift_plans_an_update_of_exactly_the_fields_ensure_repairs(
    sandbox: AuthentikSandbox, provider: AuthentikIdentityProvider
) -> None:
    ids = (await provider.ensure_tenant_group(TENANT, {})).ids
    pk = ids["groupPk"]
    sandbox.update_group(
        pk, name="Acme (renamed)", attributes={"tenant_id": TENANT.id, "color": "blue"}, is_superuser=True
    )

    [change] = await plan_without_writing(provider, sandbox, TENANT, ids)

    assert (change.target, change.action) == (f"authentik group Acme (renamed) ({pk})", "update")
    assert change.changes == {
        "name": ("Acme (renamed)", "tenant-acme"),
        "attributes.tenant_slug": (None, "acme"),
        "attributes.managed_by": (None, "tenantry"),
        "is_superuser": (True, False),
    }  # the foreign key "color" is not ours: ensure leaves it, so the plan does not name it
    repaired = await provider.ensure_tenant_group(TENANT, ids)
    assert repaired.events
    [after] = await plan_without_writing(provider, sandbox, TENANT, ids)
    assert after.action == "unchanged"


async def test_a_changed_slug_plans_the_new_name_and_slug_attribute(
    sandbox: AuthentikSandbox, provider: AuthentikIdentityProvider
) -> None:
    ids = (await provider.ensure_tenant_group(TENANT, {})).ids

    [change] = await plan_without_writing(provider, sandbox, replace(TENANT, slug="acme-corp", generation=2), ids)

    assert change.action == "update"
    assert change.changes == {
        "name": ("tenant-acme", "tenant-acme-corp"),
        "attributes.tenant_slug": ("acme", "acme-corp"),
    }


async def test_suspension_plans_exactly_what_ensure_would_write_for_it(
    sandbox: AuthentikSandbox, provider: AuthentikIdentityProvider
) -> None:
    # The plan compares what ensure writes; whatever a suspension changes in the group, the two agree.
    ids = (await provider.ensure_tenant_group(TENANT, {})).ids
    suspended = replace(TENANT, suspended=True)

    [change] = await plan_without_writing(provider, sandbox, suspended, ids)
    applied = await provider.ensure_tenant_group(suspended, ids)

    assert (change.action == "unchanged") == (applied.events == [])
    [after] = await plan_without_writing(provider, sandbox, suspended, ids)
    assert after.action == "unchanged"


async def test_a_group_deleted_out_of_band_plans_its_recreation(
    sandbox: AuthentikSandbox, provider: AuthentikIdentityProvider
) -> None:
    ids = (await provider.ensure_tenant_group(TENANT, {})).ids
    sandbox.delete_group(ids["groupPk"])

    [change] = await plan_without_writing(provider, sandbox, TENANT, ids)

    assert (change.action, change.changes["name"]) == ("create", (None, "tenant-acme"))
    assert change.note == f"group {ids['groupPk']} was deleted out of band"


async def test_a_foreign_group_with_our_name_plans_a_create_that_would_stop(
    sandbox: AuthentikSandbox, provider: AuthentikIdentityProvider
) -> None:
    sandbox.add_group("tenant-acme", {"owner": "someone else"})

    [change] = await plan_without_writing(provider, sandbox, TENANT, {})

    assert change.action == "create"
    assert change.note.startswith("ensure would stop with NameConflict: authentik already has a group named")


async def test_a_stored_pk_marked_for_another_tenant_is_left_alone_and_ours_found_by_marker(
    sandbox: AuthentikSandbox, provider: AuthentikIdentityProvider
) -> None:
    theirs = sandbox.add_group("tenant-other", {"tenant_id": "someone-else"})
    ours = sandbox.add_group("tenant-acme", OURS)

    [change] = await plan_without_writing(provider, sandbox, TENANT, {"groupPk": theirs["pk"]})

    assert (change.target, change.action) == (f"authentik group tenant-acme ({ours['pk']})", "unchanged")
    assert f"stored group {theirs['pk']} is marked for tenant 'someone-else'" in change.note


async def test_teardown_plans_the_delete_of_the_group_delete_would_remove(
    sandbox: AuthentikSandbox, provider: AuthentikIdentityProvider
) -> None:
    ids = (await provider.ensure_tenant_group(TENANT, {})).ids
    pk = ids["groupPk"]

    by_pk = await plan_without_writing(provider, sandbox, TENANT, ids, teardown=True)
    by_marker = await plan_without_writing(provider, sandbox, TENANT, {}, teardown=True)

    expected = [PlannedChange(f"authentik group tenant-acme ({pk})", "delete", {"name": ("tenant-acme", None)})]
    assert by_pk == by_marker == expected
    assert sandbox.get_group(pk) is not None
    await provider.delete_tenant_group(TENANT, ids)
    assert await plan_without_writing(provider, sandbox, TENANT, ids, teardown=True) == []


async def test_an_unconfigured_identity_upstream_plans_nothing() -> None:
    unset = NotConfigured("set TENANTRY_AUTHENTIK_URL and TENANTRY_AUTHENTIK_TOKEN")
    assert await unset.plan_tenant_group(TENANT, {}, teardown=False) == []
    assert await unset.plan_tenant_group(TENANT, {"groupPk": "x"}, teardown=True) == []
