"""The Stalwart mail step: create, adopt (only what is the tenant's), race, DKIM wait and unmanaged DKIM,
out-of-band deletion, teardown, error mapping, and how many requests each path takes."""

from __future__ import annotations

import httpx
import pytest

from tenantry.integrations.dns import DnsRecord
from tenantry.integrations.errors import PermanentStepError, TransientStepError
from tenantry.integrations.ports import StepResult, TenantSpec
from tenantry.integrations.stalwart.adapter import StalwartMailProvider
from tenantry.integrations.stalwart.client import StalwartClient
from tenantry.integrations.stalwart.zone import ZoneCache, parse_zone_file
from tests.support.fake_stalwart import API_KEY, BASE, TENANT, FakeStalwart

DOMAIN_BASE = "test"  # so TENANT's domain, acme.test, is its default domain
CUSTOM = TenantSpec(
    id="t1", slug="acme", name="Acme", generation=1, mail_domain="mail.acme-corp.example", quota_bytes=1 << 30
)
MARKED = "Acme's mail [tenantry:tenant:t1]"


async def ensure(
    fake: FakeStalwart,
    ids: dict[str, str] | None = None,
    *,
    tenant: TenantSpec = TENANT,
    domain_base: str = DOMAIN_BASE,
) -> StepResult:
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        provider = StalwartMailProvider(StalwartClient(http, BASE, api_key=API_KEY), domain_base=domain_base)
        return await provider.ensure_tenant_domain(tenant, ids or {})


async def delete(fake: FakeStalwart, ids: dict[str, str] | None = None, *, tenant: TenantSpec = TENANT) -> StepResult:
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        provider = StalwartMailProvider(StalwartClient(http, BASE, api_key=API_KEY), domain_base=DOMAIN_BASE)
        return await provider.delete_tenant_domain(tenant, ids or {})


def methods(fake: FakeStalwart) -> list[list[str]]:
    """The method names of every request the fake answered, one list per POST."""
    return [[name for name, _, _ in calls] for calls in fake.posts]


READ_STORED = ["x:DkimSignature/query", "x:DkimSignature/get", "x:Domain/get"]
FIND = ["x:Domain/query", "x:Domain/get"]
CREATE = ["x:Domain/set", "x:Domain/get"]  # the create and its read-back, by creation id


# --- ensure --------------------------------------------------------------------------------------------


async def test_new_tenant_domain_is_created_then_waits_for_dkim() -> None:
    fake = FakeStalwart()
    result = await ensure(fake)
    assert (result.state, result.reason) == ("pending", "WaitingForDkim")
    assert result.message == "Stalwart has not generated DKIM keys for acme.test yet"
    (domain,) = fake.domains.values()
    assert (domain["name"], domain["description"]) == ("acme.test", "Tenantry tenant acme [tenantry:tenant:t1]")
    assert result.ids == {"domainId": domain["id"]}
    assert any("Created Stalwart domain acme.test" in event for event in result.events)


async def test_domain_with_dkim_keys_is_ready_with_its_dns_records() -> None:
    fake = FakeStalwart()
    first = await ensure(fake)
    fake.add_dkim(first.ids["domainId"])
    result = await ensure(fake, first.ids)
    assert (result.state, result.reason) == ("ok", "Ready")
    assert result.ids == first.ids
    assert fake.creates == 1
    assert result.dns_records is not None
    purposes = [record.purpose for record in result.dns_records]
    assert purposes == ["MX", "SPF", "DKIM", "DMARC"]
    dkim = result.dns_records[2]
    assert dkim.type == "TXT"
    assert dkim.value.startswith("v=DKIM1; k=ed25519")
    assert result.events == []


async def test_a_second_ensure_with_an_unchanged_zone_does_not_parse_it_again() -> None:
    fake = FakeStalwart()
    domain_id = fake.add_domain("acme.test")
    fake.add_dkim(domain_id)
    parsed: list[str] = []

    def counting(text: str, origin: str) -> list[DnsRecord]:
        parsed.append(text)
        return parse_zone_file(text, origin)

    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        client = StalwartClient(http, BASE, api_key=API_KEY)
        provider = StalwartMailProvider(client, domain_base=DOMAIN_BASE, zones=ZoneCache(parse=counting))
        first = await provider.ensure_tenant_domain(TENANT, {"domainId": domain_id})
        second = await provider.ensure_tenant_domain(TENANT, {"domainId": domain_id})
        fake.add_dkim(domain_id)  # a new key changes the zone: it is read again
        third = await provider.ensure_tenant_domain(TENANT, {"domainId": domain_id})

    assert first.dns_records == second.dns_records
    assert len(third.dns_records or ()) == len(first.dns_records or ()) + 1 > 1
    assert len(parsed) == 2
    assert parsed[0] != parsed[1]


async def test_retired_keys_alone_do_not_count_as_ready() -> None:
    fake = FakeStalwart()
    domain_id = fake.add_domain("acme.test")
    fake.add_dkim(domain_id, stage="retired")
    result = await ensure(fake, {"domainId": domain_id})
    assert result.reason == "WaitingForDkim"


async def test_existing_domain_with_our_name_is_adopted_not_duplicated() -> None:
    fake = FakeStalwart()
    domain_id = fake.add_domain("acme.test")
    result = await ensure(fake)
    assert result.ids == {"domainId": domain_id}
    assert fake.creates == 0
    assert list(fake.domains) == [domain_id]
    assert any("Adopted existing" in event for event in result.events)


async def test_concurrent_create_is_resolved_by_adopting_the_existing_object() -> None:
    fake = FakeStalwart()
    winner: list[str] = []

    def someone_else_creates_first() -> None:
        fake.before_create = None
        winner.append(fake.add_domain("acme.test"))

    fake.before_create = someone_else_creates_first
    result = await ensure(fake)
    assert result.ids == {"domainId": winner[0]}
    assert len(fake.domains) == 1
    # Creating first, a concurrent create is just a taken name: the holder named by the refusal is adopted.
    assert result.events == [f"Adopted existing Stalwart domain acme.test ({winner[0]})"]
    assert methods(fake) == [CREATE, READ_STORED]


async def test_concurrently_created_unmarked_custom_domain_is_a_conflict_not_adopted() -> None:
    fake = FakeStalwart()
    theirs: list[str] = []

    def someone_else_creates_first() -> None:
        fake.before_create = None
        theirs.append(fake.add_domain("mail.acme-corp.example", description="Someone else's"))

    fake.before_create = someone_else_creates_first
    with pytest.raises(PermanentStepError) as caught:
        await ensure(fake, tenant=CUSTOM)
    assert caught.value.reason == "DomainConflict"
    assert theirs[0] in caught.value.message
    assert fake.domains[theirs[0]]["description"] == "Someone else's"
    assert list(fake.domains) == theirs
    # The read of the holder that checked the description is the one that would have served the step.
    assert methods(fake) == [CREATE, READ_STORED]


async def test_concurrently_created_marked_custom_domain_is_adopted() -> None:
    fake = FakeStalwart()
    winner: list[str] = []

    def another_worker_creates_first() -> None:
        fake.before_create = None
        winner.append(fake.add_domain("mail.acme-corp.example", description=MARKED))

    fake.before_create = another_worker_creates_first
    result = await ensure(fake, tenant=CUSTOM)
    assert (result.reason, result.ids) == ("WaitingForDkim", {"domainId": winner[0]})
    assert result.events == [f"Adopted existing Stalwart domain mail.acme-corp.example ({winner[0]})"]


async def test_concurrently_created_domain_gone_again_before_the_read_back_is_retried() -> None:
    fake = FakeStalwart()
    fake.set_error = {
        "type": "primaryKeyViolation",
        "properties": ["name"],
        "objectId": {"object": "Domain", "id": "fleeting"},
    }
    with pytest.raises(TransientStepError) as caught:
        await ensure(fake, tenant=CUSTOM)
    assert caught.value.reason == "UpstreamChanged"


async def test_existing_default_domain_is_adopted_without_a_marker() -> None:
    fake = FakeStalwart()
    domain_id = fake.add_domain("acme.test", description="made by hand")
    result = await ensure(fake)
    assert result.ids == {"domainId": domain_id}
    assert fake.domains[domain_id]["description"] == "made by hand"


async def test_existing_unmarked_custom_domain_is_a_conflict_and_nothing_is_changed() -> None:
    fake = FakeStalwart()
    domain_id = fake.add_domain("mail.acme-corp.example", description="Customer X production")
    before = {key: dict(value) for key, value in fake.domains.items()}
    with pytest.raises(PermanentStepError) as caught:
        await ensure(fake, tenant=CUSTOM)
    assert caught.value.reason == "DomainConflict"
    assert caught.value.message == (
        f"mail.acme-corp.example already exists in Stalwart (domain {domain_id}) and is not marked as tenant "
        'acme\'s; an operator who wants it adopted can add "tenantry:tenant:t1" to its description in Stalwart'
    )
    assert fake.domains == before
    assert methods(fake) == [CREATE, READ_STORED]


async def test_existing_custom_domain_carrying_our_marker_is_adopted() -> None:
    fake = FakeStalwart()
    domain_id = fake.add_domain("mail.acme-corp.example", description=MARKED)
    fake.add_dkim(domain_id)
    result = await ensure(fake, tenant=CUSTOM)
    assert (result.reason, result.ids) == ("Ready", {"domainId": domain_id})
    assert fake.creates == 0
    assert any("Adopted existing" in event for event in result.events)


@pytest.mark.parametrize(
    "description", ["[tenantry:tenant:t10]", "tenantry:tenant:t1-old", "x-tenantry:tenant:t1", "tenantry:tenant:", None]
)
async def test_a_marker_naming_another_tenant_or_none_does_not_count(description: str | None) -> None:
    fake = FakeStalwart()
    fake.add_domain("mail.acme-corp.example", description=description)
    with pytest.raises(PermanentStepError) as caught:
        await ensure(fake, tenant=CUSTOM)
    assert caught.value.reason == "DomainConflict"


async def test_marker_an_operator_adds_by_hand_is_enough() -> None:
    fake = FakeStalwart()
    domain_id = fake.add_domain("mail.acme-corp.example", description="Acme prod; TENANTRY:TENANT:T1")
    result = await ensure(fake, tenant=CUSTOM)
    assert result.ids == {"domainId": domain_id}


async def test_without_a_domain_base_even_the_default_name_needs_the_marker() -> None:
    fake = FakeStalwart()
    fake.add_domain("acme.test")
    with pytest.raises(PermanentStepError) as caught:
        await ensure(fake, domain_base="")
    assert caught.value.reason == "DomainConflict"


async def test_the_default_domain_is_judged_under_the_configured_base_only() -> None:
    fake = FakeStalwart()
    fake.add_domain("acme.test")
    with pytest.raises(PermanentStepError) as caught:
        await ensure(fake, domain_base="other.example")
    assert caught.value.reason == "DomainConflict"


async def test_manual_dkim_domain_without_an_active_key_is_a_permanent_error() -> None:
    fake = FakeStalwart()
    domain_id = fake.add_domain("acme.test", dkimManagement={"@type": "Manual"})
    fake.add_dkim(domain_id, stage="retired")
    with pytest.raises(PermanentStepError) as caught:
        await ensure(fake, {"domainId": domain_id})
    assert caught.value.reason == "DkimNotManaged"
    assert caught.value.message == (
        "acme.test has no active DKIM key and its DKIM management in Stalwart is Manual, so Stalwart will not "
        "generate one; add a DKIM key for acme.test in Stalwart or switch its DKIM management to Automatic"
    )
    assert methods(fake) == [READ_STORED]


async def test_adopted_manual_dkim_domain_without_keys_is_a_permanent_error() -> None:
    fake = FakeStalwart()
    fake.add_domain("acme.test", dkimManagement={"@type": "Manual"})
    with pytest.raises(PermanentStepError) as caught:
        await ensure(fake)
    assert caught.value.reason == "DkimNotManaged"


async def test_manual_dkim_domain_with_an_active_key_is_ready() -> None:
    fake = FakeStalwart()
    domain_id = fake.add_domain("acme.test", dkimManagement={"@type": "Manual"})
    fake.add_dkim(domain_id)
    result = await ensure(fake, {"domainId": domain_id})
    assert (result.state, result.reason) == ("ok", "Ready")


async def test_domain_whose_dkim_management_is_not_reported_keeps_waiting() -> None:
    fake = FakeStalwart()
    domain_id = fake.add_domain("acme.test")
    del fake.domains[domain_id]["dkimManagement"]
    result = await ensure(fake, {"domainId": domain_id})
    assert (result.state, result.reason) == ("pending", "WaitingForDkim")


async def test_a_clash_on_aliases_at_create_is_a_permanent_conflict() -> None:
    # Stalwart says "aliases" when an alias sent with the domain clashes; a name that is another
    # domain's alias is refused on "name" (see the contract test of the adapter against the sandbox).
    fake = FakeStalwart()
    fake.set_error = {
        "type": "primaryKeyViolation",
        "properties": ["aliases"],
        "objectId": {"object": "Domain", "id": "other"},
    }
    with pytest.raises(PermanentStepError) as caught:
        await ensure(fake)
    assert caught.value.reason == "DomainConflict"
    assert "alias" in caught.value.message


async def test_domain_deleted_out_of_band_is_recreated_with_an_event() -> None:
    fake = FakeStalwart()
    result = await ensure(fake, {"domainId": "vanished"})
    (domain_id,) = fake.domains
    assert result.ids == {"domainId": domain_id}
    assert domain_id != "vanished"
    assert any("deleted outside Tenantry" in event for event in result.events)


async def test_stored_id_now_naming_another_domain_is_left_alone() -> None:
    fake = FakeStalwart()
    other = fake.add_domain("other.test")
    result = await ensure(fake, {"domainId": other})
    assert result.ids["domainId"] != other
    assert fake.domains[other]["name"] == "other.test"
    assert any("other.test" in event for event in result.events)


async def test_unreadable_zone_file_is_a_permanent_error() -> None:
    fake = FakeStalwart()
    domain_id = fake.add_domain("acme.test")
    fake.add_dkim(domain_id)
    fake.zone_override = 'acme.test. IN TXT "unterminated\n'
    with pytest.raises(PermanentStepError) as caught:
        await ensure(fake, {"domainId": domain_id})
    assert caught.value.reason == "InvalidDnsZone"


async def test_domain_whose_zone_has_no_records_yet_waits_for_them() -> None:
    fake = FakeStalwart()
    domain_id = fake.add_domain("acme.test")
    fake.add_dkim(domain_id)
    fake.zone_override = ""
    result = await ensure(fake, {"domainId": domain_id})
    assert (result.state, result.reason) == ("pending", "WaitingForDnsRecords")
    assert result.message == "Stalwart has no DNS records for acme.test yet"
    assert result.ids == {"domainId": domain_id}


# --- round trips ---------------------------------------------------------------------------------------


async def test_steady_state_is_one_request_reading_the_keys_before_the_zone() -> None:
    fake = FakeStalwart()
    domain_id = fake.add_domain("acme.test")
    fake.add_dkim(domain_id)
    result = await ensure(fake, {"domainId": domain_id})
    assert result.reason == "Ready"
    ((query, get, domain),) = fake.posts
    assert [query[0], get[0], domain[0]] == READ_STORED
    assert query[1]["filter"] == {"domainId": domain_id}
    assert get[1]["#ids"] == {"resultOf": query[2], "name": "x:DkimSignature/query", "path": "/ids"}
    assert domain[1]["ids"] == [domain_id]
    assert domain[1]["properties"] == [
        "id",
        "name",
        "aliases",
        "isEnabled",
        "description",
        "dkimManagement",
        "dnsZoneFile",
    ]


async def test_steady_state_without_active_keys_is_one_request_too() -> None:
    fake = FakeStalwart()
    domain_id = fake.add_domain("acme.test")
    result = await ensure(fake, {"domainId": domain_id})
    assert result.reason == "WaitingForDkim"
    assert methods(fake) == [READ_STORED]


async def test_adopting_an_existing_domain_takes_two_requests() -> None:
    fake = FakeStalwart()
    domain_id = fake.add_domain("acme.test")
    fake.add_dkim(domain_id)
    result = await ensure(fake)
    assert (result.reason, result.ids) == ("Ready", {"domainId": domain_id})
    assert methods(fake) == [CREATE, READ_STORED]
    # The refused create named the holder (objectId): it is read by id, never looked up by name.
    assert fake.posts[1][2][1]["ids"] == [domain_id]


async def test_first_creation_takes_two_requests_create_with_read_back_then_keys_and_zone() -> None:
    fake = FakeStalwart()
    result = await ensure(fake)
    assert result.reason == "WaitingForDkim"
    assert methods(fake) == [CREATE, READ_STORED]
    assert fake.posts[0][1][1]["ids"] == ["#new"]
    assert fake.posts[1][2][1]["ids"] == [result.ids["domainId"]]


async def test_a_refusal_that_names_no_holder_looks_the_name_up() -> None:
    fake = FakeStalwart()
    domain_id = fake.add_domain("acme.test")
    fake.set_error = {"type": "primaryKeyViolation", "properties": ["name"]}
    result = await ensure(fake)
    assert (result.reason, result.ids) == ("WaitingForDkim", {"domainId": domain_id})
    assert methods(fake) == [CREATE, FIND, READ_STORED]


async def test_stored_domain_deleted_out_of_band_is_found_again_by_name_in_the_next_request() -> None:
    fake = FakeStalwart()
    domain_id = fake.add_domain("acme.test")
    fake.add_dkim(domain_id)
    result = await ensure(fake, {"domainId": "vanished"})
    assert (result.reason, result.ids) == ("Ready", {"domainId": domain_id})
    assert methods(fake) == [READ_STORED, CREATE, READ_STORED]
    assert result.events == [
        "Stalwart domain acme.test (vanished) was deleted outside Tenantry",
        f"Adopted existing Stalwart domain acme.test ({domain_id})",
    ]


# --- error translation ---------------------------------------------------------------------------------


async def test_rejected_api_key_is_permanent_and_names_the_setting_not_the_key() -> None:
    fake = FakeStalwart()
    fake.fail_with = httpx.Response(
        401,
        json={
            "type": "about:blank",
            "status": 401,
            "title": "Unauthorized",
            "detail": "You have to authenticate first.",
        },
    )
    with pytest.raises(PermanentStepError) as caught:
        await ensure(fake)
    assert caught.value.reason == "AuthenticationFailed"
    assert caught.value.message.startswith("Stalwart rejected the API key (401): You have to authenticate")
    assert "TENANTRY_STALWART_API_KEY" in caught.value.message
    assert API_KEY not in caught.value.message


async def test_unavailable_server_is_transient() -> None:
    fake = FakeStalwart()
    fake.fail_with = httpx.Response(503, json={"status": 503, "title": "Service Unavailable"})
    with pytest.raises(TransientStepError) as caught:
        await ensure(fake)
    assert caught.value.reason == "UpstreamError"


async def test_rate_limit_is_transient_with_the_servers_retry_after() -> None:
    fake = FakeStalwart()
    fake.fail_with = httpx.Response(429, headers={"Retry-After": "12"}, json={"title": "Too Many Requests"})
    with pytest.raises(TransientStepError) as caught:
        await ensure(fake)
    assert (caught.value.reason, caught.value.retry_after) == ("RateLimited", 12.0)


@pytest.mark.parametrize(
    ("exc", "reason"),
    [(httpx.ConnectError("refused"), "UpstreamUnreachable"), (httpx.ConnectTimeout("slow"), "UpstreamTimeout")],
)
async def test_network_failures_are_transient(exc: Exception, reason: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        provider = StalwartMailProvider(StalwartClient(http, BASE, api_key=API_KEY))
        with pytest.raises(TransientStepError) as caught:
            await provider.ensure_tenant_domain(TENANT, {})
    assert caught.value.reason == reason


async def test_forbidden_query_names_the_missing_permission() -> None:
    fake = FakeStalwart()
    fake.method_errors = {"x:Domain/query": "forbidden"}
    with pytest.raises(PermanentStepError) as caught:
        await delete(fake)
    assert caught.value.reason == "Forbidden"
    assert "sysDomainQuery" in caught.value.message


async def test_forbidden_domain_read_is_reported_before_a_forbidden_key_query() -> None:
    fake = FakeStalwart()
    domain_id = fake.add_domain("acme.test")
    fake.method_errors = {"x:DkimSignature/query": "forbidden", "x:Domain/get": "forbidden"}
    with pytest.raises(PermanentStepError) as caught:
        await ensure(fake, {"domainId": domain_id})
    assert caught.value.reason == "Forbidden"
    assert "sysDomainGet" in caught.value.message
    assert "sysDkimSignature" not in caught.value.message


async def test_forbidden_key_query_names_its_permission_not_the_failed_reference() -> None:
    fake = FakeStalwart()
    domain_id = fake.add_domain("acme.test")
    fake.method_errors = {"x:DkimSignature/query": "forbidden"}
    with pytest.raises(PermanentStepError) as caught:
        await ensure(fake, {"domainId": domain_id})
    assert caught.value.reason == "Forbidden"
    assert "sysDkimSignatureQuery" in caught.value.message


async def test_forbidden_create_names_the_create_permission() -> None:
    fake = FakeStalwart()
    fake.set_error = {"type": "forbidden", "description": "You are not authorized to perform this action"}
    with pytest.raises(PermanentStepError) as caught:
        await ensure(fake)
    assert (caught.value.reason, "sysDomainCreate" in caught.value.message) == ("Forbidden", True)


async def test_invalid_domain_name_is_a_permanent_validation_failure_naming_the_property() -> None:
    fake = FakeStalwart()
    fake.set_error = {"type": "invalidPatch", "description": "Invalid domain name", "properties": ["name"]}
    with pytest.raises(PermanentStepError) as caught:
        await ensure(fake)
    assert caught.value.reason == "ValidationFailed"
    assert "(name)" in caught.value.message


async def test_server_unavailable_method_error_is_transient() -> None:
    fake = FakeStalwart()
    fake.method_errors = {"x:Domain/set": "serverUnavailable"}
    with pytest.raises(TransientStepError):
        await ensure(fake)


async def test_server_without_jmap_management_is_reported_as_unsupported() -> None:
    fake = FakeStalwart()
    fake.method_errors = {"x:Domain/set": "unknownMethod", "x:Domain/get": "unknownMethod"}
    with pytest.raises(PermanentStepError) as caught:
        await ensure(fake)
    assert caught.value.reason == "UnsupportedUpstream"
    assert "x:Domain/set" in caught.value.message
    assert "0.16" in caught.value.message


async def test_ping_checks_authentication() -> None:
    fake = FakeStalwart()
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        provider = StalwartMailProvider(StalwartClient(http, BASE, api_key=API_KEY))
        await provider.ping()
        fake.fail_with = httpx.Response(401, json={"title": "Unauthorized"})
        with pytest.raises(PermanentStepError) as caught:
            await provider.ping()
    assert caught.value.reason == "AuthenticationFailed"


# --- delete --------------------------------------------------------------------------------------------


async def test_delete_destroys_the_domain_and_its_dkim_keys() -> None:
    fake = FakeStalwart()
    domain_id = fake.add_domain("acme.test")
    fake.add_dkim(domain_id)
    result = await delete(fake, {"domainId": domain_id})
    assert (result.state, result.reason) == ("ok", "Deleted")
    assert fake.domains == {}
    assert fake.dkim == {}


async def test_delete_of_an_already_deleted_domain_counts_as_done() -> None:
    result = await delete(FakeStalwart(), {"domainId": "gone"})
    assert (result.state, result.reason) == ("ok", "Deleted")


async def test_delete_without_a_stored_id_finds_the_domain_by_name() -> None:
    fake = FakeStalwart()
    fake.add_domain("acme.test")
    fake.add_domain("keep.test")
    await delete(fake)
    assert [d["name"] for d in fake.domains.values()] == ["keep.test"]


async def test_delete_without_a_stored_id_leaves_an_unmarked_custom_domain_alone() -> None:
    fake = FakeStalwart()
    domain_id = fake.add_domain("mail.acme-corp.example", description="Customer X production")
    fake.add_dkim(domain_id)
    result = await delete(fake, tenant=CUSTOM)
    assert result.state == "ok"
    assert "not marked as this tenant's" in result.message
    assert domain_id in fake.domains
    assert len(fake.dkim) == 1


async def test_delete_without_a_stored_id_removes_a_marked_custom_domain() -> None:
    fake = FakeStalwart()
    fake.add_domain("mail.acme-corp.example", description=MARKED)
    result = await delete(fake, tenant=CUSTOM)
    assert (result.state, result.reason) == ("ok", "Deleted")
    assert fake.domains == {}


async def test_delete_of_a_domain_with_accounts_is_refused_naming_them() -> None:
    fake = FakeStalwart()
    domain_id = fake.add_domain("acme.test")
    fake.accounts = {"u1": domain_id, "u2": domain_id}
    with pytest.raises(PermanentStepError) as caught:
        await delete(fake, {"domainId": domain_id})
    assert caught.value.reason == "DomainInUse"
    assert "Account u1" in caught.value.message
    assert "Account u2" in caught.value.message
    assert domain_id in fake.domains
