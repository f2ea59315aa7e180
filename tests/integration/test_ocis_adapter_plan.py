"""The oCIS adapter's dry run against the oCIS sandbox: what ensure or purge would do, and no write."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from tenantry.integrations.null import NotConfigured
from tenantry.integrations.ocis.adapter import OcisFileProvider
from tenantry.integrations.ocis.client import OcisClient
from tenantry.integrations.ports import PlannedChange, TenantSpec
from tenantry.sandbox.ocis import OcisSandbox

SERVICE_USER = "svc-provisioner"
APP_TOKEN = "sandbox-app-token"
BASE_URL = "http://ocis.sandbox"
TENANT = TenantSpec(
    id="7c9e6679-7425-40de-944b-e07fc1f90ae7",
    slug="acme-com",
    name="acme.com",
    generation=1,
    mail_domain="acme.com",
    quota_bytes=5_000_000_000,
)
MARKER = f"tenantry:tenant:{TENANT.id}"
DESCRIPTION = f"Workspace files for acme.com [{MARKER}]"


@pytest.fixture
def sandbox() -> OcisSandbox:
    return OcisSandbox(app_tokens={SERVICE_USER: APP_TOKEN}, space_admins=[SERVICE_USER])


@pytest.fixture
async def client(sandbox: OcisSandbox) -> AsyncIterator[OcisClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox.app)) as http:
        yield OcisClient(http, BASE_URL, httpx.BasicAuth(SERVICE_USER, APP_TOKEN))


@pytest.fixture
def provider(client: OcisClient) -> OcisFileProvider:
    return OcisFileProvider(client)


def writes(sandbox: OcisSandbox) -> list[str]:
    return [
        f"{r.method} {r.path}" for r in sandbox.controls.requests() if r.method in {"POST", "PUT", "PATCH", "DELETE"}
    ]


async def plan_without_writing(
    provider: OcisFileProvider,
    sandbox: OcisSandbox,
    tenant: TenantSpec,
    ids: dict[str, str],
    *,
    teardown: bool = False,
) -> list[PlannedChange]:
    sandbox.controls.clear_log()
    plan = await provider.plan_tenant_space(tenant, ids, teardown=teardown)
    assert sandbox.controls.requests(), "the plan read nothing"
    assert writes(sandbox) == []
    return plan


async def test_a_new_tenant_plans_the_space_it_would_create(sandbox: OcisSandbox, provider: OcisFileProvider) -> None:
    [change] = await plan_without_writing(provider, sandbox, TENANT, {})

    assert (change.target, change.action, change.note) == ("oCIS space 'acme com'", "create", "")
    assert change.changes == {
        "name": (None, "acme com"),
        "quota": (None, 5_000_000_000),
        "description": (None, DESCRIPTION),
        "disabled": (None, False),
    }
    assert sandbox.spaces() == []


async def test_the_space_ensure_made_plans_unchanged_by_its_id_and_by_its_marker(
    sandbox: OcisSandbox, provider: OcisFileProvider
) -> None:
    ids = (await provider.ensure_tenant_space(TENANT, {})).ids
    drive_id = ids["driveId"]

    [stored] = await plan_without_writing(provider, sandbox, TENANT, ids)
    assert len(sandbox.controls.requests()) == 1  # the one GET of the stored space, as in ensure
    [found] = await plan_without_writing(provider, sandbox, TENANT, {})

    assert (stored.target, stored.action, stored.changes, stored.note) == (
        f"oCIS space 'acme com' ({drive_id})",
        "unchanged",
        {},
        "",
    )
    assert (found.action, found.note) == ("unchanged", f"would adopt space {drive_id} carrying our marker")


async def test_an_out_of_band_rename_and_quota_plan_an_update_of_exactly_those(
    sandbox: OcisSandbox, provider: OcisFileProvider, client: OcisClient
) -> None:
    ids = (await provider.ensure_tenant_space(TENANT, {})).ids
    await client.update_drive(ids["driveId"], name="Renamed", description=None, quota_total=1_000)

    [change] = await plan_without_writing(provider, sandbox, TENANT, ids)

    assert change.action == "update"
    assert change.changes == {"name": ("Renamed", "acme com"), "quota": (1_000, 5_000_000_000)}
    await provider.ensure_tenant_space(TENANT, ids)
    [after] = await plan_without_writing(provider, sandbox, TENANT, ids)
    assert after.action == "unchanged"


async def test_a_description_that_lost_our_marker_plans_restoring_it(
    sandbox: OcisSandbox, provider: OcisFileProvider, client: OcisClient
) -> None:
    ids = (await provider.ensure_tenant_space(TENANT, {})).ids
    await client.update_drive(ids["driveId"], name=None, description="edited by hand", quota_total=None)

    [change] = await plan_without_writing(provider, sandbox, TENANT, ids)

    assert (change.action, change.changes) == ("update", {"description": ("edited by hand", DESCRIPTION)})


async def test_a_changed_quota_in_the_spec_plans_the_quota(sandbox: OcisSandbox, provider: OcisFileProvider) -> None:
    ids = (await provider.ensure_tenant_space(TENANT, {})).ids

    [change] = await plan_without_writing(provider, sandbox, replace(TENANT, quota_bytes=8_000_000_000), ids)

    assert (change.action, change.changes) == ("update", {"quota": (5_000_000_000, 8_000_000_000)})


async def test_suspending_plans_disabling_the_space_and_resuming_plans_restoring_it(
    sandbox: OcisSandbox, provider: OcisFileProvider
) -> None:
    ids = (await provider.ensure_tenant_space(TENANT, {})).ids
    suspended = replace(TENANT, suspended=True)

    [suspend] = await plan_without_writing(provider, sandbox, suspended, ids)
    await provider.ensure_tenant_space(suspended, ids)
    [steady] = await plan_without_writing(provider, sandbox, suspended, ids)
    [resume] = await plan_without_writing(provider, sandbox, TENANT, ids)

    assert (suspend.action, suspend.changes) == ("update", {"disabled": (False, True)})
    assert (steady.action, steady.changes) == ("unchanged", {})
    assert (resume.action, resume.changes) == ("update", {"disabled": (True, False)})


async def test_while_suspended_a_disabled_space_is_not_repaired_so_a_quota_change_waits(
    sandbox: OcisSandbox, provider: OcisFileProvider
) -> None:
    suspended = replace(TENANT, suspended=True)
    ids = (await provider.ensure_tenant_space(suspended, {})).ids
    bigger = replace(suspended, quota_bytes=8_000_000_000)

    [change] = await plan_without_writing(provider, sandbox, bigger, ids)
    applied = await provider.ensure_tenant_space(bigger, ids)

    assert change.action == "unchanged"
    assert applied.events == []


async def test_a_disabled_space_found_by_marker_plans_its_restoring_and_adoption(
    sandbox: OcisSandbox, provider: OcisFileProvider
) -> None:
    drive_id = (await provider.ensure_tenant_space(TENANT, {})).ids["driveId"]
    sandbox.disable_space(drive_id)

    [active] = await plan_without_writing(provider, sandbox, TENANT, {})
    [suspended] = await plan_without_writing(provider, sandbox, replace(TENANT, suspended=True), {})

    assert (active.action, active.changes) == ("update", {"disabled": (True, False)})
    assert active.note == f"would adopt space {drive_id} carrying our marker"
    assert (suspended.action, suspended.changes) == ("unchanged", {})
    assert suspended.note.endswith("adopting restores it, and it would be disabled again while the tenant is suspended")


async def test_a_space_deleted_out_of_band_plans_its_recreation(
    sandbox: OcisSandbox, provider: OcisFileProvider
) -> None:
    ids = (await provider.ensure_tenant_space(TENANT, {})).ids
    sandbox.delete_space(ids["driveId"])

    [change] = await plan_without_writing(provider, sandbox, TENANT, ids)

    assert (change.action, change.note) == ("create", f"space {ids['driveId']} no longer exists")


async def test_a_space_without_our_marker_is_not_adopted_by_the_plan(
    sandbox: OcisSandbox, provider: OcisFileProvider
) -> None:
    sandbox.add_space("acme com", "another team's space")

    [change] = await plan_without_writing(provider, sandbox, TENANT, {})

    assert change.action == "create"


async def test_teardown_plans_disabling_then_purging_the_space(
    sandbox: OcisSandbox, provider: OcisFileProvider
) -> None:
    ids = (await provider.ensure_tenant_space(TENANT, {})).ids
    target = f"oCIS space 'acme com' ({ids['driveId']})"

    [live] = await plan_without_writing(provider, sandbox, TENANT, ids, teardown=True)
    await provider.disable_tenant_space(TENANT, ids)
    [disabled] = await plan_without_writing(provider, sandbox, TENANT, {}, teardown=True)
    await provider.purge_tenant_space(TENANT, ids)

    assert live == PlannedChange(target, "delete", {"name": ("acme com", None)}, "would be disabled, then purged")
    assert disabled == PlannedChange(
        target, "delete", {"name": ("acme com", None)}, "already disabled; would be purged"
    )
    assert await plan_without_writing(provider, sandbox, TENANT, ids, teardown=True) == []


async def test_an_unconfigured_files_upstream_plans_nothing() -> None:
    unset = NotConfigured("set TENANTRY_OCIS_URL")
    assert await unset.plan_tenant_space(TENANT, {}, teardown=False) == []
    assert await unset.plan_tenant_space(TENANT, {"driveId": "x"}, teardown=True) == []
