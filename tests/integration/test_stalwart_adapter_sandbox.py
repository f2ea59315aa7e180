"""The Stalwart mail adapter against the Stalwart sandbox, in process over httpx.ASGITransport."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from tenantry.integrations.errors import PermanentStepError, TransientStepError
from tenantry.integrations.ports import TenantSpec
from tenantry.integrations.stalwart.adapter import StalwartMailProvider
from tenantry.integrations.stalwart.client import StalwartClient
from tenantry.sandbox.stalwart import StalwartSandbox
from tests.support.clock import ManualClock

API_KEY = "sandbox-stalwart-api-key"
BASE_URL = "http://stalwart.sandbox"
DOMAIN_BASE = "test"  # TENANT's acme.test is its default domain
TENANT = TenantSpec(
    id="5a1d2c3b-0000-4000-8000-00000000abcd",
    slug="acme",
    name="Acme",
    generation=1,
    mail_domain="acme.test",
    quota_bytes=10**9,
)
CUSTOM = TenantSpec(
    id=TENANT.id, slug="acme", name="Acme", generation=1, mail_domain="mail.acme-corp.test", quota_bytes=10**9
)
MARKER = f"tenantry:tenant:{TENANT.id}"
DKIM_DELAY = 30.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sandbox(clock: ManualClock) -> StalwartSandbox:
    return StalwartSandbox(api_keys=[API_KEY], dkim_delay=DKIM_DELAY, clock=clock, fast_dkim=True)


@pytest.fixture
async def http(sandbox: StalwartSandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox.app)) as client:
        yield client


def adapter(http: httpx.AsyncClient, api_key: str = API_KEY) -> StalwartMailProvider:
    return StalwartMailProvider(StalwartClient(http, BASE_URL, api_key=api_key), domain_base=DOMAIN_BASE)


def domain_changes(sandbox: StalwartSandbox) -> int:
    """The /set calls that update or destroy (a create of a taken name is refused and changes nothing)."""
    bodies = [r.body for r in sandbox.controls.requests("POST", r"^/jmap/?$")]
    return sum(
        1
        for body in bodies
        if isinstance(body, dict)
        for name, args, _ in body.get("methodCalls", [])
        if name.endswith("/set") and (args.get("update") or args.get("destroy"))
    )


def jmap_posts(sandbox: StalwartSandbox) -> int:
    return len(sandbox.controls.requests("POST", r"^/jmap"))


def domain_creates(sandbox: StalwartSandbox) -> int:
    bodies = [r.body for r in sandbox.controls.requests("POST", r"^/jmap/?$")]
    return sum(
        1
        for body in bodies
        if isinstance(body, dict)
        for name, args, _ in body.get("methodCalls", [])
        if name == "x:Domain/set" and "create" in args
    )


async def test_new_domain_waits_for_dkim_then_is_ready_with_its_records(
    sandbox: StalwartSandbox, http: httpx.AsyncClient, clock: ManualClock
) -> None:
    first = await adapter(http).ensure_tenant_domain(TENANT, {})
    assert (first.state, first.reason) == ("pending", "WaitingForDkim")
    (domain,) = sandbox.domains()
    assert first.ids == {"domainId": domain["id"]}
    assert (domain["name"], domain["description"]) == ("acme.test", f"Tenantry tenant acme [{MARKER}]")

    clock.now += DKIM_DELAY + 1
    ready = await adapter(http).ensure_tenant_domain(TENANT, first.ids)
    assert (ready.state, ready.reason) == ("ok", "Ready")
    assert ready.ids == first.ids
    records = [r.to_json() for r in ready.dns_records or ()]
    purposes = {record["purpose"] for record in records}
    assert {"MX", "SPF", "DKIM"} <= purposes
    dkim_values = [r["value"] for r in records if r["purpose"] == "DKIM"]
    assert len(dkim_values) == len(sandbox.dkim_keys(domain["id"]))
    assert all(value.startswith("v=DKIM1;") for value in dkim_values)


async def test_second_run_creates_nothing(
    sandbox: StalwartSandbox, http: httpx.AsyncClient, clock: ManualClock
) -> None:
    first = await adapter(http).ensure_tenant_domain(TENANT, {})
    clock.now += DKIM_DELAY + 1
    again = await adapter(http).ensure_tenant_domain(TENANT, first.ids)
    once_more = await adapter(http).ensure_tenant_domain(TENANT, again.ids)
    assert domain_creates(sandbox) == 1
    assert len(sandbox.domains()) == 1
    assert once_more.ids == first.ids
    assert once_more.events == []


async def test_steady_state_ensure_is_one_post(
    sandbox: StalwartSandbox, http: httpx.AsyncClient, clock: ManualClock
) -> None:
    first = await adapter(http).ensure_tenant_domain(TENANT, {})
    clock.now += DKIM_DELAY + 1
    sandbox.controls.clear_log()
    ready = await adapter(http).ensure_tenant_domain(TENANT, first.ids)
    assert (ready.state, ready.reason) == ("ok", "Ready")
    assert jmap_posts(sandbox) == 1
    sandbox.controls.clear_log()
    again = await adapter(http).ensure_tenant_domain(TENANT, ready.ids)
    assert (again.state, again.data) == ("ok", ready.data)
    assert jmap_posts(sandbox) == 1


async def test_steady_state_while_waiting_for_dkim_is_one_post(
    sandbox: StalwartSandbox, http: httpx.AsyncClient
) -> None:
    first = await adapter(http).ensure_tenant_domain(TENANT, {})
    sandbox.controls.clear_log()
    waiting = await adapter(http).ensure_tenant_domain(TENANT, first.ids)
    assert (waiting.state, waiting.reason, waiting.ids) == ("pending", "WaitingForDkim", first.ids)
    assert jmap_posts(sandbox) == 1


async def test_first_creation_takes_two_posts(sandbox: StalwartSandbox, http: httpx.AsyncClient) -> None:
    await adapter(http).ensure_tenant_domain(TENANT, {})
    calls = [[name for name, _, _ in r.body["methodCalls"]] for r in sandbox.controls.requests("POST", r"^/jmap")]
    assert calls == [
        ["x:Domain/set", "x:Domain/get"],
        ["x:DkimSignature/query", "x:DkimSignature/get", "x:Domain/get"],
    ]


async def test_adoption_takes_two_posts(sandbox: StalwartSandbox, http: httpx.AsyncClient) -> None:
    domain_id = sandbox.add_domain("acme.test")
    sandbox.generate_dkim_now(domain_id)
    result = await adapter(http).ensure_tenant_domain(TENANT, {})
    assert result.reason == "Ready"
    assert jmap_posts(sandbox) == 2


async def test_existing_domain_is_adopted(sandbox: StalwartSandbox, http: httpx.AsyncClient) -> None:
    domain_id = sandbox.add_domain("acme.test")
    sandbox.generate_dkim_now(domain_id)
    result = await adapter(http).ensure_tenant_domain(TENANT, {})
    assert (result.state, result.ids) == ("ok", {"domainId": domain_id})
    assert [d["id"] for d in sandbox.domains()] == [domain_id]
    assert (domain_creates(sandbox), domain_changes(sandbox)) == (1, 0)  # the create was refused


async def test_existing_unmarked_default_domain_is_adopted_as_is(
    sandbox: StalwartSandbox, http: httpx.AsyncClient
) -> None:
    domain_id = sandbox.add_domain("acme.test", description="set up by hand")
    result = await adapter(http).ensure_tenant_domain(TENANT, {})
    assert (result.reason, result.ids) == ("WaitingForDkim", {"domainId": domain_id})
    assert [(d["id"], d["description"]) for d in sandbox.domains()] == [(domain_id, "set up by hand")]
    assert domain_changes(sandbox) == 0


async def test_existing_unmarked_custom_domain_is_a_conflict_and_nothing_changes(
    sandbox: StalwartSandbox, http: httpx.AsyncClient
) -> None:
    domain_id = sandbox.add_domain("mail.acme-corp.test", description="Customer X production")
    sandbox.generate_dkim_now(domain_id)
    before = sandbox.domains()
    keys_before = sandbox.dkim_keys(domain_id)
    with pytest.raises(PermanentStepError) as caught:
        await adapter(http).ensure_tenant_domain(CUSTOM, {})
    assert caught.value.reason == "DomainConflict"
    assert domain_id in caught.value.message
    assert MARKER in caught.value.message
    assert sandbox.domains() == before
    assert sandbox.dkim_keys(domain_id) == keys_before
    assert domain_changes(sandbox) == 0


async def test_existing_custom_domain_marked_for_the_tenant_is_adopted(
    sandbox: StalwartSandbox, http: httpx.AsyncClient
) -> None:
    domain_id = sandbox.add_domain("mail.acme-corp.test", description=f"Acme, moved in by ops ({MARKER})")
    sandbox.generate_dkim_now(domain_id)
    result = await adapter(http).ensure_tenant_domain(CUSTOM, {})
    assert (result.state, result.ids) == ("ok", {"domainId": domain_id})
    assert domain_changes(sandbox) == 0


async def test_new_custom_domain_is_created_marked_and_found_again_by_its_marker(
    sandbox: StalwartSandbox, http: httpx.AsyncClient
) -> None:
    first = await adapter(http).ensure_tenant_domain(CUSTOM, {})
    (domain,) = sandbox.domains()
    assert MARKER in domain["description"]
    again = await adapter(http).ensure_tenant_domain(CUSTOM, {})  # the stored id was lost
    assert again.ids == first.ids
    assert [d["id"] for d in sandbox.domains()] == [first.ids["domainId"]]


async def test_manual_dkim_domain_without_keys_fails_permanently_instead_of_waiting(
    sandbox: StalwartSandbox, http: httpx.AsyncClient, clock: ManualClock
) -> None:
    domain_id = sandbox.add_domain("acme.test", dkimManagement={"@type": "Manual"})
    clock.now += DKIM_DELAY + 1
    with pytest.raises(PermanentStepError) as caught:
        await adapter(http).ensure_tenant_domain(TENANT, {})
    assert caught.value.reason == "DkimNotManaged"
    assert "add a DKIM key for acme.test in Stalwart" in caught.value.message
    assert "switch its DKIM management to Automatic" in caught.value.message
    sandbox.controls.clear_log()
    with pytest.raises(PermanentStepError) as again:
        await adapter(http).ensure_tenant_domain(TENANT, {"domainId": domain_id})
    assert again.value.reason == "DkimNotManaged"
    assert jmap_posts(sandbox) == 1
    assert sandbox.dkim_keys(domain_id) == []


async def test_domain_created_just_before_our_create_is_adopted(sandbox: StalwartSandbox) -> None:
    winner: list[str] = []

    class RacingTransport(httpx.ASGITransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "POST" and not winner:
                calls = json.loads(request.content)["methodCalls"]
                if any(name == "x:Domain/set" and "create" in args for name, args, _ in calls):
                    winner.append(sandbox.add_domain("acme.test"))
            return await super().handle_async_request(request)

    async with httpx.AsyncClient(transport=RacingTransport(app=sandbox.app)) as http:
        result = await adapter(http).ensure_tenant_domain(TENANT, {})
    assert result.ids == {"domainId": winner[0]}
    assert result.events == [f"Adopted existing Stalwart domain acme.test ({winner[0]})"]
    assert [d["id"] for d in sandbox.domains()] == winner


async def test_unmarked_custom_domain_created_just_before_our_create_is_a_conflict(sandbox: StalwartSandbox) -> None:
    theirs: list[str] = []

    class RacingTransport(httpx.ASGITransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "POST" and not theirs:
                calls = json.loads(request.content)["methodCalls"]
                if any(name == "x:Domain/set" and "create" in args for name, args, _ in calls):
                    theirs.append(sandbox.add_domain("mail.acme-corp.test", description="not Acme's"))
            return await super().handle_async_request(request)

    async with httpx.AsyncClient(transport=RacingTransport(app=sandbox.app)) as http:
        with pytest.raises(PermanentStepError) as caught:
            await adapter(http).ensure_tenant_domain(CUSTOM, {})
    assert caught.value.reason == "DomainConflict"
    assert [(d["id"], d["description"]) for d in sandbox.domains()] == [(theirs[0], "not Acme's")]


async def test_delete_without_a_stored_id_leaves_an_unmarked_custom_domain_alone(
    sandbox: StalwartSandbox, http: httpx.AsyncClient
) -> None:
    domain_id = sandbox.add_domain("mail.acme-corp.test")
    sandbox.generate_dkim_now(domain_id)
    result = await adapter(http).delete_tenant_domain(CUSTOM, {})
    assert result.state == "ok"
    assert [d["id"] for d in sandbox.domains()] == [domain_id]
    assert sandbox.dkim_keys(domain_id) != []


async def test_concurrent_first_runs_end_with_one_domain(sandbox: StalwartSandbox, http: httpx.AsyncClient) -> None:
    results = await asyncio.gather(*(adapter(http).ensure_tenant_domain(TENANT, {}) for _ in range(3)))
    (domain,) = sandbox.domains()
    assert {r.ids["domainId"] for r in results} == {domain["id"]}


async def test_domain_deleted_out_of_band_is_recreated(sandbox: StalwartSandbox, http: httpx.AsyncClient) -> None:
    first = await adapter(http).ensure_tenant_domain(TENANT, {})
    sandbox.delete_domain(first.ids["domainId"])
    second = await adapter(http).ensure_tenant_domain(TENANT, first.ids)
    (domain,) = sandbox.domains()
    assert second.ids == {"domainId": domain["id"]}
    assert any("deleted outside Tenantry" in event for event in second.events)


async def test_wrong_api_key_is_permanent(http: httpx.AsyncClient) -> None:
    with pytest.raises(PermanentStepError) as caught:
        await adapter(http, api_key="not-the-key").ensure_tenant_domain(TENANT, {})
    assert caught.value.reason == "AuthenticationFailed"
    assert "not-the-key" not in caught.value.message


async def test_unavailable_server_is_transient_and_the_next_run_succeeds(
    sandbox: StalwartSandbox, http: httpx.AsyncClient
) -> None:
    sandbox.fail_requests(503, times=1)
    with pytest.raises(TransientStepError) as caught:
        await adapter(http).ensure_tenant_domain(TENANT, {})
    assert caught.value.reason == "UpstreamError"
    result = await adapter(http).ensure_tenant_domain(TENANT, {})
    assert result.reason == "WaitingForDkim"


async def test_rate_limit_carries_retry_after(sandbox: StalwartSandbox, http: httpx.AsyncClient) -> None:
    sandbox.fail_requests(429, retry_after=5, times=1)
    with pytest.raises(TransientStepError) as caught:
        await adapter(http).ensure_tenant_domain(TENANT, {})
    assert (caught.value.reason, caught.value.retry_after) == ("RateLimited", 5.0)


async def test_delete_removes_the_domain_and_is_idempotent(sandbox: StalwartSandbox, http: httpx.AsyncClient) -> None:
    domain_id = sandbox.add_domain("acme.test")
    sandbox.generate_dkim_now(domain_id)
    result = await adapter(http).delete_tenant_domain(TENANT, {"domainId": domain_id})
    assert (result.state, result.reason) == ("ok", "Deleted")
    assert sandbox.domains() == []
    again = await adapter(http).delete_tenant_domain(TENANT, {"domainId": domain_id})
    assert again.state == "ok"


async def test_ping_authenticates(http: httpx.AsyncClient) -> None:
    await adapter(http).ping()
    with pytest.raises(PermanentStepError):
        await adapter(http, api_key="wrong").ping()


async def test_a_domain_switch_renames_the_domain_in_place_and_keeps_the_old_name_as_an_alias(
    sandbox: StalwartSandbox, http: httpx.AsyncClient, clock: ManualClock
) -> None:
    first = await adapter(http).ensure_tenant_domain(TENANT, {})
    clock.now += DKIM_DELAY + 1
    await adapter(http).ensure_tenant_domain(TENANT, first.ids)
    switched = dataclasses.replace(TENANT, mail_domain="acme-corp.test", mail_aliases=("acme.test",))

    moved = await adapter(http).ensure_tenant_domain(switched, first.ids)

    assert (moved.state, moved.ids) == ("ok", first.ids)  # the same domain: accounts and keys move with it
    (domain,) = sandbox.domains()
    assert (domain["name"], domain["aliases"]) == ("acme-corp.test", {"acme.test": True})
    assert moved.events == ["Renamed Stalwart domain acme.test to acme-corp.test, keeping acme.test as an alias"]
    assert all(r.name.endswith("acme-corp.test.") or r.purpose == "SPF" for r in moved.dns_records or ())
    # Steady state: nothing more to change.
    assert (await adapter(http).ensure_tenant_domain(switched, first.ids)).events == []
    # Releasing the old name removes the alias; an alias added out of band is drift and goes too.
    released = dataclasses.replace(switched, mail_aliases=())
    done = await adapter(http).ensure_tenant_domain(released, first.ids)
    assert sandbox.domains()[0].get("aliases", {}) == {}
    assert done.events == ["Set the aliases of Stalwart domain acme-corp.test to none"]


async def test_suspension_disables_the_domain_and_resuming_restores_it_exactly(
    sandbox: StalwartSandbox, http: httpx.AsyncClient, clock: ManualClock
) -> None:
    first = await adapter(http).ensure_tenant_domain(TENANT, {})
    clock.now += DKIM_DELAY + 1
    await adapter(http).ensure_tenant_domain(TENANT, first.ids)
    (before,) = sandbox.domains()
    assert before["isEnabled"] is True

    suspended = await adapter(http).ensure_tenant_domain(dataclasses.replace(TENANT, suspended=True), first.ids)
    assert (suspended.state, suspended.reason) == ("ok", "Disabled")
    assert sandbox.domains()[0]["isEnabled"] is False
    assert suspended.events == ["Disabled Stalwart domain acme.test"]
    again = await adapter(http).ensure_tenant_domain(dataclasses.replace(TENANT, suspended=True), first.ids)
    assert again.events == []  # steady while suspended: nothing more to change
    resumed = await adapter(http).ensure_tenant_domain(TENANT, first.ids)
    assert resumed.reason == "Ready"
    (after,) = sandbox.domains()
    assert after == before  # every field as it was before the suspension
