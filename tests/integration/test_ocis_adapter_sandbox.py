"""The oCIS files adapter against the oCIS sandbox, in process over httpx.ASGITransport, with an app token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from tenantry.integrations.errors import PermanentStepError, TransientStepError
from tenantry.integrations.ocis.adapter import OcisFileProvider
from tenantry.integrations.ocis.client import OcisClient
from tenantry.integrations.ports import TenantSpec
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


@pytest.fixture
def sandbox() -> OcisSandbox:
    return OcisSandbox(app_tokens={SERVICE_USER: APP_TOKEN}, space_admins=[SERVICE_USER])


@pytest.fixture
async def provider(sandbox: OcisSandbox) -> AsyncIterator[OcisFileProvider]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox.app)) as http:
        client = OcisClient(http, BASE_URL, httpx.BasicAuth(SERVICE_USER, APP_TOKEN))
        yield OcisFileProvider(client)


def without_stamps(space: dict[str, object]) -> dict[str, object]:
    """A space as read, less the server's change stamps (modification time, ETags)."""
    root = dict(space["root"])  # type: ignore[call-overload]
    root.pop("eTag", None)
    return {**{k: v for k, v in space.items() if k not in {"lastModifiedDateTime", "root"}}, "root": root}


def creates(sandbox: OcisSandbox) -> int:
    return len(sandbox.controls.requests("POST", r"^/graph/v1\.0/drives$"))


async def test_ensure_creates_a_project_space_with_quota_and_marker(
    sandbox: OcisSandbox, provider: OcisFileProvider
) -> None:
    result = await provider.ensure_tenant_space(TENANT, {})

    space = sandbox.get_space(result.ids["driveId"])
    assert result.reason == "Created"
    assert space is not None
    assert (space["name"], space["driveType"]) == ("acme com", "project")
    assert MARKER in space["description"]
    assert space["quota"]["total"] == TENANT.quota_bytes
    assert result.data == {"quotaBytes": TENANT.quota_bytes, "webUrl": space["webUrl"]}


async def test_rerun_is_idempotent_with_a_single_create(sandbox: OcisSandbox, provider: OcisFileProvider) -> None:
    first = await provider.ensure_tenant_space(TENANT, {})
    again = await provider.ensure_tenant_space(TENANT, first.ids)
    adopted = await provider.ensure_tenant_space(TENANT, {})  # id lost: found again by marker

    assert creates(sandbox) == 1
    assert (again.reason, again.ids, again.events) == ("Ready", first.ids, [])
    assert (adopted.reason, adopted.ids) == ("Adopted", first.ids)
    assert len(sandbox.spaces()) == 1


async def test_same_name_without_marker_is_not_adopted(sandbox: OcisSandbox, provider: OcisFileProvider) -> None:
    stranger = sandbox.add_space("acme com", "another team's space")
    result = await provider.ensure_tenant_space(TENANT, {})

    assert result.reason == "Created"
    assert result.ids["driveId"] != stranger["id"]


async def test_quota_change_is_patched(sandbox: OcisSandbox, provider: OcisFileProvider) -> None:
    first = await provider.ensure_tenant_space(TENANT, {})
    bigger = replace(TENANT, quota_bytes=8_000_000_000, generation=2)
    result = await provider.ensure_tenant_space(bigger, first.ids)

    space = sandbox.get_space(first.ids["driveId"])
    assert space is not None
    assert space["quota"]["total"] == 8_000_000_000
    assert f"quota changed from {TENANT.quota_bytes} to 8000000000" in result.events
    assert len(sandbox.controls.requests("PATCH")) == 1


async def test_space_deleted_out_of_band_is_recreated(sandbox: OcisSandbox, provider: OcisFileProvider) -> None:
    first = await provider.ensure_tenant_space(TENANT, {})
    sandbox.delete_space(first.ids["driveId"])
    result = await provider.ensure_tenant_space(TENANT, first.ids)

    assert result.reason == "Created"
    assert result.ids["driveId"] != first.ids["driveId"]
    assert sandbox.get_space(result.ids["driveId"]) is not None
    assert any("deleted out of band; recreated" in e for e in result.events)


async def test_space_disabled_out_of_band_is_restored(sandbox: OcisSandbox, provider: OcisFileProvider) -> None:
    first = await provider.ensure_tenant_space(TENANT, {})
    sandbox.disable_space(first.ids["driveId"])
    result = await provider.ensure_tenant_space(TENANT, first.ids)

    space = sandbox.get_space(first.ids["driveId"])
    assert space is not None
    assert "deleted" not in space["root"]
    assert result.ids == first.ids
    assert creates(sandbox) == 1


async def test_disable_then_purge_are_each_idempotent(sandbox: OcisSandbox, provider: OcisFileProvider) -> None:
    ids = (await provider.ensure_tenant_space(TENANT, {})).ids

    disabled = [await provider.disable_tenant_space(TENANT, ids) for _ in range(2)]
    space = sandbox.get_space(ids["driveId"])
    assert space is not None
    assert space["root"]["deleted"] == {"state": "trashed"}

    purged = [await provider.purge_tenant_space(TENANT, ids) for _ in range(2)]
    assert [r.reason for r in disabled] == ["Disabled", "AlreadyDisabled"]
    assert [r.reason for r in purged] == ["Purged", "NotFound"]
    assert sandbox.spaces() == []
    assert len(sandbox.controls.requests("DELETE")) == 2  # one disable, one purge


async def test_wrong_app_token_is_a_permanent_authentication_failure(sandbox: OcisSandbox) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox.app)) as http:
        provider = OcisFileProvider(OcisClient(http, BASE_URL, httpx.BasicAuth(SERVICE_USER, "wrong")))
        with pytest.raises(PermanentStepError) as info:
            await provider.ensure_tenant_space(TENANT, {})
    assert info.value.reason == "AuthenticationFailed"


async def test_user_without_space_admin_role_gets_a_forbidden_step(sandbox: OcisSandbox) -> None:
    sandbox.app_tokens["plain-user"] = "plain-token"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox.app)) as http:
        provider = OcisFileProvider(OcisClient(http, BASE_URL, httpx.BasicAuth("plain-user", "plain-token")))
        with pytest.raises(PermanentStepError) as info:
            await provider.ensure_tenant_space(TENANT, {})
    assert info.value.reason == "Forbidden"


async def test_injected_503_is_transient(sandbox: OcisSandbox, provider: OcisFileProvider) -> None:
    sandbox.controls.fail(r"^/graph/", 503, times=1, retry_after=4)
    with pytest.raises(TransientStepError) as info:
        await provider.ensure_tenant_space(TENANT, {})
    assert (info.value.reason, info.value.retry_after) == ("UpstreamError", 4.0)

    result = await provider.ensure_tenant_space(TENANT, {})
    assert result.reason == "Created"


async def test_suspension_disables_the_space_and_resuming_restores_it_exactly(
    provider: OcisFileProvider, sandbox: OcisSandbox
) -> None:
    first = await provider.ensure_tenant_space(TENANT, {})
    drive_id = first.ids["driveId"]
    before = sandbox.get_space(drive_id)
    assert before is not None

    suspended = await provider.ensure_tenant_space(replace(TENANT, suspended=True), first.ids)
    assert (suspended.state, suspended.reason, suspended.ids) == ("ok", "Disabled", first.ids)
    disabled = sandbox.get_space(drive_id)
    assert disabled is not None
    assert disabled["root"]["deleted"]["state"] == "trashed"
    steady = await provider.ensure_tenant_space(replace(TENANT, suspended=True), first.ids)
    assert steady.events == []  # stays disabled, nothing more to change

    resumed = await provider.ensure_tenant_space(TENANT, first.ids)
    assert resumed.reason == "Ready"
    after = sandbox.get_space(drive_id)
    assert after is not None
    # Every field as it was before the suspension, except what the server stamps on any change.
    assert without_stamps(after) == without_stamps(before)
    assert len(sandbox.spaces()) == 1


async def test_a_disabled_space_carrying_our_marker_is_found_again_without_its_id(
    sandbox: OcisSandbox, provider: OcisFileProvider
) -> None:
    # oCIS keeps a disabled space's description readable, so the marker still finds it.
    first = await provider.ensure_tenant_space(TENANT, {})
    sandbox.disable_space(first.ids["driveId"])
    adopted = await provider.ensure_tenant_space(TENANT, {})
    space = sandbox.get_space(first.ids["driveId"])

    assert (adopted.reason, adopted.ids) == ("Adopted", first.ids)
    assert space is not None
    assert "deleted" not in space["root"]


async def test_purge_without_a_stored_id_removes_a_disabled_space_found_by_marker(
    sandbox: OcisSandbox, provider: OcisFileProvider
) -> None:
    ids = (await provider.ensure_tenant_space(TENANT, {})).ids
    await provider.disable_tenant_space(TENANT, ids)
    purged = await provider.purge_tenant_space(TENANT, {})

    assert purged.reason == "Purged"
    assert sandbox.spaces() == []
