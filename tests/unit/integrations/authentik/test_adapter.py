"""The authentik identity adapter: ensure/delete paths against an in-memory authentik behind MockTransport."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tenantry.integrations.authentik.adapter import AuthentikIdentityProvider
from tenantry.integrations.authentik.client import AuthentikClient
from tenantry.integrations.errors import PermanentStepError, TransientStepError
from tenantry.integrations.ports import IdentityProvider
from tests.support.fake_authentik import BASE_URL, OURS, TENANT, TOKEN, FakeAuthentik, crash_page, once


@pytest.fixture
def fake() -> FakeAuthentik:
    return FakeAuthentik()


@pytest.fixture
async def provider(fake: FakeAuthentik) -> Any:
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake.handler)) as http:
        yield AuthentikIdentityProvider(AuthentikClient(http, BASE_URL, TOKEN))


async def test_ensure_without_ids_creates_group_named_by_slug_with_our_marker(
    fake: FakeAuthentik, provider: AuthentikIdentityProvider
) -> None:
    result = await provider.ensure_tenant_group(TENANT, {})

    [group] = fake.groups.values()
    assert [(r.method, r.url.path) for r in fake.requests] == [("POST", "/api/v3/core/groups/")]
    assert (result.state, result.reason) == ("ok", "Created")
    assert result.ids == {"groupPk": group["pk"]}
    assert group["name"] == "tenant-acme"
    assert group["attributes"] == OURS
    assert group["is_superuser"] is False
    assert any("created group tenant-acme" in event for event in result.events)


async def test_custom_prefix_names_the_group(fake: FakeAuthentik) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake.handler)) as http:
        provider = AuthentikIdentityProvider(AuthentikClient(http, BASE_URL, TOKEN), group_prefix="ws-")
        await provider.ensure_tenant_group(TENANT, {})

    assert [group["name"] for group in fake.groups.values()] == ["ws-acme"]


async def test_ensure_with_stored_pk_and_no_drift_is_ready_without_writes(
    fake: FakeAuthentik, provider: AuthentikIdentityProvider
) -> None:
    pk = fake.add("tenant-acme", OURS)

    result = await provider.ensure_tenant_group(TENANT, {"groupPk": pk})

    assert (result.reason, result.ids, result.events) == ("Ready", {"groupPk": pk}, [])
    assert fake.calls("POST") == fake.calls("PATCH") == []


async def test_drift_is_repaired_with_one_patch_that_keeps_foreign_attributes(
    fake: FakeAuthentik, provider: AuthentikIdentityProvider
) -> None:
    pk = fake.add("Acme renamed", {"tenant_id": TENANT.id, "tenant_slug": "old", "color": "blue"}, is_superuser=True)

    result = await provider.ensure_tenant_group(TENANT, {"groupPk": pk})

    group = fake.groups[pk]
    assert len(fake.calls("PATCH")) == 1
    assert group["name"] == "tenant-acme"
    assert group["attributes"] == {**OURS, "color": "blue"}
    assert group["is_superuser"] is False
    assert result.reason == "Ready"
    assert any("repaired drift" in event and "tenant_slug" in event for event in result.events)


async def test_stored_group_deleted_out_of_band_is_recreated_and_reported(
    fake: FakeAuthentik, provider: AuthentikIdentityProvider
) -> None:
    gone = str(uuid.uuid4())

    result = await provider.ensure_tenant_group(TENANT, {"groupPk": gone})

    [group] = fake.groups.values()
    assert result.ids == {"groupPk": group["pk"]} != {"groupPk": gone}
    assert any("deleted out of band; recreated" in event and gone in event for event in result.events)


async def test_group_marked_with_our_tenant_id_is_adopted_when_its_name_refuses_the_create(
    fake: FakeAuthentik, provider: AuthentikIdentityProvider
) -> None:
    pk = fake.add("tenant-acme", {**OURS, "extra": 1})

    result = await provider.ensure_tenant_group(TENANT, {})

    assert (result.reason, result.ids) == ("Adopted", {"groupPk": pk})
    assert [(r.method, r.url.params.get("name")) for r in fake.requests] == [("POST", None), ("GET", "tenant-acme")]
    assert list(fake.groups) == [pk]
    assert any(f"adopted existing group tenant-acme ({pk})" in event for event in result.events)


async def test_marker_is_rechecked_when_server_ignores_the_attribute_filter() -> None:
    fake = FakeAuthentik(honour_attribute_filter=False)
    fake.add("tenant-other", {"tenant_id": "someone-else"})
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake.handler)) as http:
        provider = AuthentikIdentityProvider(AuthentikClient(http, BASE_URL, TOKEN))
        result = await provider.ensure_tenant_group(TENANT, {})

    assert result.reason == "Created"
    assert fake.groups[result.ids["groupPk"]]["name"] == "tenant-acme"
    assert fake.by_name("tenant-other")[0]["attributes"] == {"tenant_id": "someone-else"}


@pytest.mark.parametrize("attributes", [{"tenant_id": "another-tenant"}, {}])
async def test_same_named_group_that_is_not_ours_is_a_name_conflict(
    fake: FakeAuthentik, provider: AuthentikIdentityProvider, attributes: dict[str, Any]
) -> None:
    pk = fake.add("tenant-acme", attributes)

    with pytest.raises(PermanentStepError) as caught:
        await provider.ensure_tenant_group(TENANT, {})

    assert caught.value.reason == "NameConflict"
    assert "tenant-acme" in caught.value.message
    assert pk in caught.value.message
    assert "rename or delete" in caught.value.message
    assert list(fake.groups) == [pk]
    assert fake.groups[pk]["attributes"] == attributes
    assert fake.calls("PATCH") == []


async def test_stored_pk_of_another_tenants_group_is_left_alone(
    fake: FakeAuthentik, provider: AuthentikIdentityProvider
) -> None:
    foreign = fake.add("tenant-globex", {"tenant_id": "globex-id", "tenant_slug": "globex"})

    result = await provider.ensure_tenant_group(TENANT, {"groupPk": foreign})

    assert fake.groups[foreign]["name"] == "tenant-globex"
    assert result.reason == "Created"
    assert result.ids["groupPk"] != foreign


async def test_create_race_lost_with_400_adopts_the_winners_group(
    fake: FakeAuthentik, provider: AuthentikIdentityProvider
) -> None:
    def other_writer_wins(_: httpx.Request) -> None:
        fake.add("tenant-acme", OURS)  # lands between our lookup and our POST; the POST then gets a 400

    fake.interceptors.append(once("POST", other_writer_wins))

    result = await provider.ensure_tenant_group(TENANT, {})

    [group] = fake.by_name("tenant-acme")
    assert (result.reason, result.ids) == ("Adopted", {"groupPk": group["pk"]})
    assert len(fake.groups) == 1


async def test_create_race_lost_with_500_adopts_the_winners_group(
    fake: FakeAuthentik, provider: AuthentikIdentityProvider
) -> None:
    def other_writer_wins(_: httpx.Request) -> httpx.Response:
        fake.add("tenant-acme", OURS)
        return httpx.Response(500, text="Internal Server Error")

    fake.interceptors.append(once("POST", other_writer_wins))

    result = await provider.ensure_tenant_group(TENANT, {})

    [group] = fake.by_name("tenant-acme")
    assert (result.reason, result.ids) == ("Adopted", {"groupPk": group["pk"]})
    assert len(fake.calls("POST")) == 1


async def test_create_race_lost_with_the_405_crash_page_adopts_the_winners_group(
    fake: FakeAuthentik, provider: AuthentikIdentityProvider
) -> None:
    # authentik 2025.12: the loser's insert hits the unique constraint; the crash page answers 405.
    def other_writer_wins(request: httpx.Request) -> httpx.Response:
        fake.add("tenant-acme", OURS)
        return crash_page(request)

    fake.interceptors.append(once("POST", other_writer_wins))

    result = await provider.ensure_tenant_group(TENANT, {})

    [group] = fake.by_name("tenant-acme")
    assert (result.reason, result.ids) == ("Adopted", {"groupPk": group["pk"]})
    assert any("created concurrently" in event for event in result.events)


async def test_create_that_crashed_after_writing_adopts_its_own_group(
    fake: FakeAuthentik, provider: AuthentikIdentityProvider
) -> None:
    def applied_then_crashed(request: httpx.Request) -> httpx.Response:
        fake.serve(request)
        return crash_page(request)

    fake.interceptors.append(once("POST", applied_then_crashed))

    result = await provider.ensure_tenant_group(TENANT, {})

    [group] = fake.by_name("tenant-acme")
    assert (result.reason, result.ids, group["attributes"]) == ("Adopted", {"groupPk": group["pk"]}, OURS)


@pytest.mark.parametrize("method", ["POST", "PATCH", "DELETE"])
async def test_a_405_crash_with_nothing_to_adopt_is_transient_not_unexpected(
    fake: FakeAuthentik, provider: AuthentikIdentityProvider, method: str
) -> None:
    ids: dict[str, str] = {}
    if method != "POST":
        ids = {"groupPk": fake.add("tenant-acme", {**OURS, "tenant_slug": "drifted"})}
    fake.interceptors.append(once(method, crash_page))

    step = provider.delete_tenant_group if method == "DELETE" else provider.ensure_tenant_group
    with pytest.raises(TransientStepError) as caught:
        await step(TENANT, ids)

    assert caught.value.reason == "UpstreamError"
    assert "405" in caught.value.message
    assert len(fake.by_name("tenant-acme")) == (0 if method == "POST" else 1)


async def test_create_500_with_nothing_created_is_transient(
    fake: FakeAuthentik, provider: AuthentikIdentityProvider
) -> None:
    fake.interceptors.append(once("POST", lambda _: httpx.Response(500, text="boom")))

    with pytest.raises(TransientStepError) as caught:
        await provider.ensure_tenant_group(TENANT, {})

    assert caught.value.reason == "UpstreamError"
    assert fake.groups == {}


async def test_create_400_on_another_field_is_validation_failed(
    fake: FakeAuthentik, provider: AuthentikIdentityProvider
) -> None:
    fake.interceptors.append(
        once("POST", lambda _: httpx.Response(400, json={"attributes": ["Value must be valid JSON."]}))
    )

    with pytest.raises(PermanentStepError) as caught:
        await provider.ensure_tenant_group(TENANT, {})

    assert caught.value.reason == "ValidationFailed"
    assert "attributes: Value must be valid JSON." in caught.value.message


async def test_rejected_token_is_permanent_and_names_the_setting_not_the_token(fake: FakeAuthentik) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake.handler)) as http:
        provider = AuthentikIdentityProvider(AuthentikClient(http, BASE_URL, "wrong-token-value"))
        with pytest.raises(PermanentStepError) as caught:
            await provider.ensure_tenant_group(TENANT, {})

    assert caught.value.reason == "AuthenticationFailed"
    assert caught.value.message == (
        "authentik rejected the API token (403): Token invalid/expired; check TENANTRY_AUTHENTIK_TOKEN"
    )
    assert "wrong-token-value" not in str(caught.value)


async def test_token_without_the_group_permission_is_forbidden_and_names_the_permissions(
    fake: FakeAuthentik, provider: AuthentikIdentityProvider
) -> None:
    denied = {"detail": "You do not have permission to perform this action."}
    fake.interceptors.append(lambda _: httpx.Response(403, json=denied))

    with pytest.raises(PermanentStepError) as caught:
        await provider.ensure_tenant_group(TENANT, {})

    assert caught.value.reason == "Forbidden"
    assert "view_group" in caught.value.message
    assert TOKEN not in caught.value.message


async def test_503_is_transient_with_the_servers_retry_after(
    fake: FakeAuthentik, provider: AuthentikIdentityProvider
) -> None:
    fake.interceptors.append(lambda _: httpx.Response(503, headers={"Retry-After": "30"}, text="maintenance"))

    with pytest.raises(TransientStepError) as caught:
        await provider.ensure_tenant_group(TENANT, {})

    assert (caught.value.reason, caught.value.retry_after) == ("UpstreamError", 30.0)
    assert caught.value.message.startswith("authentik answered 503")


async def test_429_is_transient_rate_limited(fake: FakeAuthentik, provider: AuthentikIdentityProvider) -> None:
    fake.interceptors.append(
        lambda _: httpx.Response(429, headers={"Retry-After": "7"}, json={"detail": "Request was throttled."})
    )

    with pytest.raises(TransientStepError) as caught:
        await provider.ensure_tenant_group(TENANT, {})

    assert (caught.value.reason, caught.value.retry_after) == ("RateLimited", 7.0)


async def test_unreachable_server_is_transient_and_names_the_url(
    fake: FakeAuthentik, provider: AuthentikIdentityProvider
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    fake.interceptors.append(refuse)

    with pytest.raises(TransientStepError) as caught:
        await provider.ping()

    assert caught.value.reason == "UpstreamUnreachable"
    assert BASE_URL in caught.value.message


async def test_timeout_is_transient_upstream_timeout(fake: FakeAuthentik, provider: AuthentikIdentityProvider) -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    fake.interceptors.append(hang)

    with pytest.raises(TransientStepError) as caught:
        await provider.ensure_tenant_group(TENANT, {})

    assert caught.value.reason == "UpstreamTimeout"


async def test_repair_of_a_group_that_vanished_meanwhile_is_transient(
    fake: FakeAuthentik, provider: AuthentikIdentityProvider
) -> None:
    pk = fake.add("drifted", OURS)

    def vanish(_: httpx.Request) -> httpx.Response:
        fake.groups.pop(pk)
        return httpx.Response(404, json={"detail": "No Group matches the given query."})

    fake.interceptors.append(once("PATCH", vanish))

    with pytest.raises(TransientStepError) as caught:
        await provider.ensure_tenant_group(TENANT, {"groupPk": pk})

    assert caught.value.reason == "UpstreamChanged"


async def test_delete_by_stored_pk_removes_the_group(fake: FakeAuthentik, provider: AuthentikIdentityProvider) -> None:
    pk = fake.add("tenant-acme", OURS)

    result = await provider.delete_tenant_group(TENANT, {"groupPk": pk})

    assert (result.state, result.reason) == ("ok", "Deleted")
    assert fake.groups == {}


async def test_delete_of_an_already_gone_group_counts_as_done(
    fake: FakeAuthentik, provider: AuthentikIdentityProvider
) -> None:
    result = await provider.delete_tenant_group(TENANT, {"groupPk": str(uuid.uuid4())})

    assert (result.state, result.reason) == ("ok", "Deleted")
    assert any("already gone" in event for event in result.events)


async def test_delete_without_pk_removes_only_groups_marked_ours(
    fake: FakeAuthentik, provider: AuthentikIdentityProvider
) -> None:
    fake.add("tenant-acme", OURS)
    foreign = fake.add("tenant-globex", {"tenant_id": "globex-id"})

    result = await provider.delete_tenant_group(TENANT, {})

    assert result.reason == "Deleted"
    assert list(fake.groups) == [foreign]


async def test_ping_succeeds_with_a_valid_token(fake: FakeAuthentik, provider: AuthentikIdentityProvider) -> None:
    await provider.ping()

    [request] = fake.requests
    assert request.url.params["page_size"] == "1"


async def test_ping_with_rejected_token_raises_authentication_failed(fake: FakeAuthentik) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake.handler)) as http:
        provider: IdentityProvider = AuthentikIdentityProvider(AuthentikClient(http, BASE_URL, "nope"))
        with pytest.raises(PermanentStepError) as caught:
            await provider.ping()

    assert caught.value.reason == "AuthenticationFailed"
