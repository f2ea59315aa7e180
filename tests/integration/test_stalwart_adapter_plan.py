"""The Stalwart adapter's dry run against the Stalwart sandbox: what ensure or delete would do, and no ``/set``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from tenantry.integrations.null import NotConfigured
from tenantry.integrations.ports import PlannedChange, TenantSpec
from tenantry.integrations.stalwart.adapter import StalwartMailProvider
from tenantry.integrations.stalwart.client import StalwartClient
from tenantry.integrations.stalwart.models import DomainUpdate, UserCreate
from tenantry.sandbox.stalwart import StalwartSandbox
from tests.support.adapter_sandboxes import jmap_methods, stalwart_client, stalwart_sandbox

TENANT = TenantSpec(
    id="5a1d2c3b-0000-4000-8000-00000000abcd",
    slug="acme",
    name="Acme",
    generation=1,
    mail_domain="acme.test",
    quota_bytes=10**9,
)
CUSTOM = replace(TENANT, mail_domain="mail.acme-corp.test")
MARKER = f"tenantry:tenant:{TENANT.id}"
DESCRIPTION = f"Tenantry tenant acme [{MARKER}]"


@pytest.fixture
def sandbox() -> StalwartSandbox:
    return stalwart_sandbox()


@pytest.fixture
async def client(sandbox: StalwartSandbox) -> AsyncIterator[StalwartClient]:
    async with stalwart_client(sandbox) as client:
        yield client


@pytest.fixture
def provider(client: StalwartClient) -> StalwartMailProvider:
    return StalwartMailProvider(client, domain_base="test")


async def plan_without_writing(
    provider: StalwartMailProvider,
    sandbox: StalwartSandbox,
    tenant: TenantSpec,
    ids: dict[str, str],
    *,
    teardown: bool = False,
) -> list[PlannedChange]:
    sandbox.controls.clear_log()
    plan = await provider.plan_tenant_domain(tenant, ids, teardown=teardown)
    methods = jmap_methods(sandbox)
    assert methods, "the plan read nothing"
    assert [name for name in methods if name.endswith("/set")] == []
    return plan


async def ready(provider: StalwartMailProvider, sandbox: StalwartSandbox, tenant: TenantSpec) -> dict[str, str]:
    """Ensure the tenant's domain with its DKIM keys in place; the ids ensure stored."""
    ids = (await provider.ensure_tenant_domain(tenant, {})).ids
    sandbox.generate_dkim_now(ids["domainId"])
    assert (await provider.ensure_tenant_domain(tenant, ids)).state == "ok"
    return ids


async def test_a_new_tenant_plans_the_domain_it_would_create(
    sandbox: StalwartSandbox, provider: StalwartMailProvider
) -> None:
    [change] = await plan_without_writing(provider, sandbox, TENANT, {})

    assert (change.target, change.action, change.note) == ("Stalwart domain acme.test", "create", "")
    assert change.changes == {
        "name": (None, "acme.test"),
        "description": (None, DESCRIPTION),
        "aliases": (None, []),
        "isEnabled": (None, True),
    }
    assert sandbox.domains() == []


async def test_the_domain_ensure_made_plans_unchanged_in_one_request(
    sandbox: StalwartSandbox, provider: StalwartMailProvider
) -> None:
    ids = await ready(provider, sandbox, TENANT)

    [stored] = await plan_without_writing(provider, sandbox, TENANT, ids)
    assert len(sandbox.controls.requests("POST", r"^/jmap")) == 1
    [found] = await plan_without_writing(provider, sandbox, TENANT, {})

    assert (stored.target, stored.action, stored.changes, stored.note) == (
        f"Stalwart domain acme.test ({ids['domainId']})",
        "unchanged",
        {},
        "",
    )
    assert (found.action, found.note) == ("unchanged", f"would adopt existing domain acme.test ({ids['domainId']})")


async def test_a_domain_enabled_out_of_band_while_suspended_plans_disabling_it_again(
    sandbox: StalwartSandbox, provider: StalwartMailProvider, client: StalwartClient
) -> None:
    suspended = replace(TENANT, suspended=True)
    ids = await ready(provider, sandbox, suspended)
    await client.update_domain(ids["domainId"], DomainUpdate(is_enabled=True))

    [change] = await plan_without_writing(provider, sandbox, suspended, ids)

    assert (change.action, change.changes) == ("update", {"isEnabled": (True, False)})
    await provider.ensure_tenant_domain(suspended, ids)
    [after] = await plan_without_writing(provider, sandbox, suspended, ids)
    assert after.action == "unchanged"


async def test_suspending_plans_disabling_the_domain_and_resuming_plans_enabling_it(
    sandbox: StalwartSandbox, provider: StalwartMailProvider
) -> None:
    ids = await ready(provider, sandbox, TENANT)
    suspended = replace(TENANT, suspended=True)

    [suspend] = await plan_without_writing(provider, sandbox, suspended, ids)
    await provider.ensure_tenant_domain(suspended, ids)
    [resume] = await plan_without_writing(provider, sandbox, TENANT, ids)

    assert (suspend.action, suspend.changes) == ("update", {"isEnabled": (True, False)})
    assert (resume.action, resume.changes) == ("update", {"isEnabled": (False, True)})


async def test_an_alias_added_to_the_spec_plans_exactly_the_aliases(
    sandbox: StalwartSandbox, provider: StalwartMailProvider
) -> None:
    ids = await ready(provider, sandbox, TENANT)

    [change] = await plan_without_writing(provider, sandbox, replace(TENANT, mail_aliases=("acme-old.test",)), ids)

    assert (change.action, change.changes) == ("update", {"aliases": ([], ["acme-old.test"])})


async def test_a_domain_switch_plans_the_rename_in_place_keeping_the_old_name_as_an_alias(
    sandbox: StalwartSandbox, provider: StalwartMailProvider
) -> None:
    ids = await ready(provider, sandbox, TENANT)
    switched = replace(TENANT, mail_domain="acme-corp.test", mail_aliases=("acme.test",))

    [change] = await plan_without_writing(provider, sandbox, switched, ids)

    assert (change.target, change.action) == (f"Stalwart domain acme.test ({ids['domainId']})", "update")
    assert change.changes == {"name": ("acme.test", "acme-corp.test"), "aliases": ([], ["acme.test"])}
    assert change.note == "renamed in place to acme-corp.test, keeping acme.test as an alias"
    await provider.ensure_tenant_domain(switched, ids)
    [after] = await plan_without_writing(provider, sandbox, switched, ids)
    assert after.action == "unchanged"


async def test_an_unmarked_custom_domain_plans_a_create_that_would_stop_with_a_domain_conflict(
    sandbox: StalwartSandbox, provider: StalwartMailProvider
) -> None:
    domain_id = sandbox.add_domain("mail.acme-corp.test", description="Customer X production")

    [change] = await plan_without_writing(provider, sandbox, CUSTOM, {})

    assert change.action == "create"
    assert change.note.startswith(
        f"ensure would stop with DomainConflict: mail.acme-corp.test already exists in Stalwart (domain {domain_id})"
    )
    assert MARKER in change.note


async def test_a_custom_domain_marked_for_the_tenant_plans_its_adoption_and_settings(
    sandbox: StalwartSandbox, provider: StalwartMailProvider
) -> None:
    domain_id = sandbox.add_domain("mail.acme-corp.test", description=f"moved in by ops ({MARKER})", isEnabled=False)

    [change] = await plan_without_writing(provider, sandbox, CUSTOM, {})

    assert (change.action, change.changes) == ("update", {"isEnabled": (False, True)})
    assert change.note == f"would adopt existing domain mail.acme-corp.test ({domain_id})"


async def test_a_domain_deleted_out_of_band_plans_its_recreation(
    sandbox: StalwartSandbox, provider: StalwartMailProvider
) -> None:
    ids = await ready(provider, sandbox, TENANT)
    sandbox.delete_domain(ids["domainId"])

    [change] = await plan_without_writing(provider, sandbox, TENANT, ids)

    assert change.action == "create"
    assert change.note == f"stored domain acme.test ({ids['domainId']}) was deleted outside Tenantry"


async def test_teardown_plans_the_domain_and_its_dkim_keys_and_what_would_block_it(
    sandbox: StalwartSandbox, provider: StalwartMailProvider, client: StalwartClient
) -> None:
    ids = await ready(provider, sandbox, TENANT)
    selectors = ", ".join(sorted(key["selector"] for key in sandbox.dkim_keys(ids["domainId"])))
    target = f"Stalwart domain acme.test ({ids['domainId']})"

    [change] = await plan_without_writing(provider, sandbox, TENANT, ids, teardown=True)
    assert (change.target, change.action, change.changes) == (target, "delete", {"name": ("acme.test", None)})
    assert change.note == f"its DKIM keys ({selectors}) would be destroyed first"
    assert await plan_without_writing(provider, sandbox, TENANT, {}, teardown=True) == [change]  # found by name
    await client.create_account(UserCreate(name="alice", domain_id=ids["domainId"]))
    [blocked] = await plan_without_writing(provider, sandbox, TENANT, ids, teardown=True)

    assert blocked.action == "delete"
    assert "Stalwart refuses while accounts link to it (alice@acme.test)" in blocked.note
    assert "delete would stop with DomainInUse" in blocked.note


async def test_teardown_plans_nothing_once_the_domain_is_gone(
    sandbox: StalwartSandbox, provider: StalwartMailProvider
) -> None:
    ids = await ready(provider, sandbox, TENANT)
    await provider.delete_tenant_domain(TENANT, ids)

    assert await plan_without_writing(provider, sandbox, TENANT, ids, teardown=True) == []
    assert await plan_without_writing(provider, sandbox, TENANT, {}, teardown=True) == []


async def test_teardown_without_a_stored_id_leaves_an_unmarked_custom_domain_alone(
    sandbox: StalwartSandbox, provider: StalwartMailProvider
) -> None:
    domain_id = sandbox.add_domain("mail.acme-corp.test")

    [change] = await plan_without_writing(provider, sandbox, CUSTOM, {}, teardown=True)

    assert (change.target, change.action) == (f"Stalwart domain mail.acme-corp.test ({domain_id})", "unchanged")
    assert change.note == "not marked as this tenant's: delete leaves it alone"


async def test_an_unconfigured_mail_upstream_plans_nothing() -> None:
    unset = NotConfigured("set TENANTRY_STALWART_URL and TENANTRY_STALWART_API_KEY")
    assert await unset.plan_tenant_domain(TENANT, {}, teardown=False) == []
    assert await unset.plan_tenant_domain(TENANT, {"domainId": "b"}, teardown=True) == []
