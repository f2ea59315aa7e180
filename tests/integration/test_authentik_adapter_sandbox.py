"""The authentik identity adapter against the authentik sandbox, in process over httpx.ASGITransport."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest

from tenantry.integrations.authentik.adapter import AuthentikIdentityProvider
from tenantry.integrations.authentik.client import AuthentikClient
from tenantry.integrations.errors import PermanentStepError, TransientStepError
from tenantry.integrations.ports import TenantSpec
from tenantry.sandbox.authentik import AuthentikSandbox

TOKEN = "sandbox-api-token"
BASE_URL = "http://authentik.sandbox"
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
    return AuthentikSandbox([TOKEN])


@pytest.fixture
async def http(sandbox: AuthentikSandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox.app)) as client:
        yield client


def adapter(http: httpx.AsyncClient, token: str = TOKEN) -> AuthentikIdentityProvider:
    return AuthentikIdentityProvider(AuthentikClient(http, BASE_URL, token))


def group_posts(sandbox: AuthentikSandbox) -> int:
    return len(sandbox.controls.requests("POST", r"/core/groups/$"))


async def test_ensure_creates_the_tenant_group(sandbox: AuthentikSandbox, http: httpx.AsyncClient) -> None:
    result = await adapter(http).ensure_tenant_group(TENANT, {})

    group = sandbox.get_group(result.ids["groupPk"])
    assert result.reason == "Created"
    assert group is not None
    assert group["name"] == "tenant-acme"
    assert group["attributes"] == OURS


async def test_second_run_is_idempotent_and_creates_nothing(sandbox: AuthentikSandbox, http: httpx.AsyncClient) -> None:
    provider = adapter(http)
    first = await provider.ensure_tenant_group(TENANT, {})
    again = await provider.ensure_tenant_group(TENANT, first.ids)
    fresh = await provider.ensure_tenant_group(TENANT, {})

    assert (again.reason, again.ids) == ("Ready", first.ids)
    assert (fresh.reason, fresh.ids) == ("Adopted", first.ids)
    # Without a stored pk the create goes first; authentik refuses the taken name and ours is adopted.
    posts = sandbox.controls.requests("POST", r"/core/groups/$")
    assert [r.status for r in posts] == [201, 400]
    assert len(sandbox.groups()) == 1
    assert sandbox.controls.requests("PATCH") == []


async def test_out_of_band_delete_is_repaired(sandbox: AuthentikSandbox, http: httpx.AsyncClient) -> None:
    provider = adapter(http)
    first = await provider.ensure_tenant_group(TENANT, {})
    sandbox.delete_group(first.ids["groupPk"])

    repaired = await provider.ensure_tenant_group(TENANT, first.ids)

    assert repaired.ids != first.ids
    assert sandbox.get_group(repaired.ids["groupPk"]) is not None
    assert any("deleted out of band; recreated" in event for event in repaired.events)


async def test_out_of_band_drift_is_repaired_keeping_foreign_attributes(
    sandbox: AuthentikSandbox, http: httpx.AsyncClient
) -> None:
    provider = adapter(http)
    first = await provider.ensure_tenant_group(TENANT, {})
    pk = first.ids["groupPk"]
    sandbox.update_group(
        pk, name="Acme (renamed)", attributes={"tenant_id": TENANT.id, "color": "blue"}, is_superuser=True
    )

    result = await provider.ensure_tenant_group(TENANT, first.ids)

    group = sandbox.get_group(pk)
    assert group is not None
    assert result.reason == "Ready"
    assert (group["name"], group["is_superuser"]) == ("tenant-acme", False)
    assert group["attributes"] == {**OURS, "color": "blue"}
    assert len(sandbox.controls.requests("PATCH")) == 1


async def test_concurrent_ensure_from_two_adapters_makes_exactly_one_group(sandbox: AuthentikSandbox) -> None:
    # Widen the check-then-insert window so both creates pass the uniqueness check, as in authentik.
    sandbox.insert_delay = 0.05
    transport = httpx.ASGITransport(app=sandbox.app)
    async with httpx.AsyncClient(transport=transport) as one, httpx.AsyncClient(transport=transport) as two:
        results = await asyncio.gather(
            adapter(one).ensure_tenant_group(TENANT, {}), adapter(two).ensure_tenant_group(TENANT, {})
        )

    named = [group for group in sandbox.groups() if group["name"] == "tenant-acme"]
    assert len(named) == 1
    assert {result.ids["groupPk"] for result in results} == {named[0]["pk"]}
    assert sorted(result.reason for result in results) == ["Adopted", "Created"]
    # Both POSTs reached the server: the loser's was refused and it adopted the winner's group.
    posts = sandbox.controls.requests("POST", r"/core/groups/$")
    assert sorted(post.status or 0 for post in posts) in ([201, 400], [201, 405])


async def test_eight_concurrent_ensures_all_succeed_on_one_group_though_losers_crash(
    sandbox: AuthentikSandbox,
) -> None:
    # As seen on authentik 2025.12.4: of eight racing creates, the ones past the uniqueness check crash on
    # the database's constraint and get the 405 crash page. Every ensure must still end on the one group.
    sandbox.insert_delay = 0.05
    transport = httpx.ASGITransport(app=sandbox.app)
    async with httpx.AsyncClient(transport=transport) as http:
        results = await asyncio.gather(*(adapter(http).ensure_tenant_group(TENANT, {}) for _ in range(8)))

    [group] = [group for group in sandbox.groups() if group["name"] == "tenant-acme"]
    assert {result.ids["groupPk"] for result in results} == {group["pk"]}
    assert sorted(result.reason for result in results) == ["Adopted"] * 7 + ["Created"]
    statuses = {post.status for post in sandbox.controls.requests("POST", r"/core/groups/$")}
    assert 405 in statuses
    assert statuses <= {201, 400, 405}


async def test_a_crashed_create_is_retried_as_transient_then_succeeds(
    sandbox: AuthentikSandbox, http: httpx.AsyncClient
) -> None:
    sandbox.controls.crash(r"/core/groups/$", method="POST", times=1)

    with pytest.raises(TransientStepError) as crashed:
        await adapter(http).ensure_tenant_group(TENANT, {})
    retried = await adapter(http).ensure_tenant_group(TENANT, {})

    assert crashed.value.reason == "UpstreamError"
    assert retried.reason == "Created"
    assert [group["name"] for group in sandbox.groups()] == ["tenant-acme"]


async def test_foreign_group_with_our_name_is_a_conflict(sandbox: AuthentikSandbox, http: httpx.AsyncClient) -> None:
    sandbox.add_group("tenant-acme", {"owner": "someone else"})

    with pytest.raises(PermanentStepError) as caught:
        await adapter(http).ensure_tenant_group(TENANT, {})

    assert caught.value.reason == "NameConflict"
    [refused] = sandbox.controls.requests("POST", r"/core/groups/$")
    assert refused.status == 400
    assert [(g["name"], g["attributes"]) for g in sandbox.groups()] == [("tenant-acme", {"owner": "someone else"})]


async def test_delete_removes_the_group_and_a_second_delete_is_done(
    sandbox: AuthentikSandbox, http: httpx.AsyncClient
) -> None:
    provider = adapter(http)
    created = await provider.ensure_tenant_group(TENANT, {})

    first = await provider.delete_tenant_group(TENANT, created.ids)
    second = await provider.delete_tenant_group(TENANT, created.ids)

    assert (first.reason, second.reason) == ("Deleted", "Deleted")
    assert sandbox.groups() == []


async def test_bad_token_is_permanent_and_injected_503_is_transient(
    sandbox: AuthentikSandbox, http: httpx.AsyncClient
) -> None:
    with pytest.raises(PermanentStepError) as rejected:
        await adapter(http, token="not-the-token").ping()
    sandbox.controls.fail(r"/core/groups/", 503, times=1)
    with pytest.raises(TransientStepError) as unavailable:
        await adapter(http).ping()

    assert rejected.value.reason == "AuthenticationFailed"
    assert unavailable.value.reason == "UpstreamError"
    await adapter(http).ping()


async def test_suspension_marks_the_group_and_resuming_restores_it_exactly(
    sandbox: AuthentikSandbox, http: httpx.AsyncClient
) -> None:
    first = await adapter(http).ensure_tenant_group(TENANT, {})
    (before,) = sandbox.groups()

    suspended = await adapter(http).ensure_tenant_group(dataclasses.replace(TENANT, suspended=True), first.ids)
    (marked,) = sandbox.groups()
    assert marked["attributes"]["suspended"] is True
    assert {k: v for k, v in marked["attributes"].items() if k != "suspended"} == before["attributes"]
    assert any("marked the tenant suspended" in event for event in suspended.events)
    again = await adapter(http).ensure_tenant_group(dataclasses.replace(TENANT, suspended=True), first.ids)
    assert again.events == []  # steady while suspended

    await adapter(http).ensure_tenant_group(TENANT, first.ids)
    assert sandbox.groups() == [before]  # every field as it was before the suspension


async def test_teardown_never_deletes_a_group_without_this_tenants_marker(
    sandbox: AuthentikSandbox, http: httpx.AsyncClient
) -> None:
    other = dataclasses.replace(TENANT, id="00000000-0000-4000-8000-000000000000", slug="other")
    theirs = await adapter(http).ensure_tenant_group(other, {})
    # A stored pk that (by a mix-up or a restore) points at another tenant's group.
    result = await adapter(http).delete_tenant_group(TENANT, theirs.ids)
    assert result.state == "ok"
    assert any("not marked as this tenant's" in event for event in result.events)
    assert [g["name"] for g in sandbox.groups()] == ["tenant-other"]


async def test_suspension_deactivates_the_accounts_tenantry_manages_and_resuming_reactivates_exactly_those(
    sandbox: AuthentikSandbox, http: httpx.AsyncClient
) -> None:
    first = await adapter(http).ensure_tenant_group(TENANT, {})
    group = first.ids["groupPk"]
    managed = {"managed_by": "tenantry", "tenant_id": TENANT.id}
    alice = sandbox.add_user("alice", attributes=managed, groups=[group])
    gone = sandbox.add_user("gone", attributes=managed, groups=[group])
    sandbox.directory.users[gone]["is_active"] = False  # already inactive before the suspension
    guest = sandbox.add_user("guest", groups=[group])  # a person Tenantry does not manage
    before = {pk: sandbox.user(pk) for pk in (alice, gone, guest)}

    suspended = await adapter(http).ensure_tenant_group(dataclasses.replace(TENANT, suspended=True), first.ids)
    assert sandbox.user(alice)["is_active"] is False

    def account(pk: int) -> tuple[bool, dict[str, object]]:
        return sandbox.user(pk)["is_active"], sandbox.user(pk)["attributes"]

    assert account(gone) == (False, managed)  # inactive already: not ours to reactivate later
    assert account(guest) == (True, {})
    assert "deactivated alice while the tenant is suspended" in suspended.events
    # Reactivated out of band while suspended: drift, repaired at the next run.
    sandbox.directory.users[alice]["is_active"] = True
    again = await adapter(http).ensure_tenant_group(dataclasses.replace(TENANT, suspended=True), first.ids)
    assert sandbox.user(alice)["is_active"] is False
    assert "deactivated alice while the tenant is suspended" in again.events

    resumed = await adapter(http).ensure_tenant_group(TENANT, first.ids)
    assert "reactivated alice" in resumed.events
    assert {pk: sandbox.user(pk) for pk in (alice, gone, guest)} == before  # exactly as before
    steady = await adapter(http).ensure_tenant_group(TENANT, first.ids)
    assert steady.events == []
