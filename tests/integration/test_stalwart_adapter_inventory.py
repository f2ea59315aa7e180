"""The Stalwart adapter's listing of marked domains, deleting one (its DKIM keys first), and ensure marking a
domain handed over to a tenant."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from tenantry.integrations.errors import PermanentStepError
from tenantry.integrations.null import NotConfigured
from tenantry.integrations.ports import ADOPT, MarkedObject, TenantSpec
from tenantry.integrations.stalwart import client as client_module
from tenantry.integrations.stalwart.adapter import StalwartMailProvider
from tenantry.integrations.stalwart.client import StalwartClient
from tenantry.integrations.stalwart.models import UserCreate
from tenantry.sandbox.stalwart import StalwartSandbox
from tests.support.adapter_sandboxes import jmap_methods, stalwart_client, stalwart_sandbox

TENANT = TenantSpec(
    id="5a1d2c3b-0000-4000-8000-00000000abcd",
    slug="acme",
    name="Acme",
    generation=1,
    mail_domain="acme.mail.test",
    quota_bytes=10**9,
)
OTHER = replace(TENANT, id="9f0e8d7c-0000-4000-8000-00000000beef", slug="beta", mail_domain="beta.mail.test")


@pytest.fixture
def sandbox() -> StalwartSandbox:
    return stalwart_sandbox()


@pytest.fixture
async def client(sandbox: StalwartSandbox) -> AsyncIterator[StalwartClient]:
    async with stalwart_client(sandbox) as client:
        yield client


@pytest.fixture
def provider(client: StalwartClient) -> StalwartMailProvider:
    return StalwartMailProvider(client, domain_base="mail.test")


async def test_marked_and_default_domains_are_listed_and_nothing_is_written(
    sandbox: StalwartSandbox, provider: StalwartMailProvider
) -> None:
    acme = (await provider.ensure_tenant_domain(TENANT, {})).ids["domainId"]
    custom = sandbox.add_domain("mail.acme-corp.test", description=f"moved by ops [tenantry:tenant:{OTHER.id}]")
    bare = sandbox.add_domain("gamma.mail.test")  # a default domain without a marker: only its name says so
    sandbox.add_domain("unrelated.test", description="someone else's")
    sandbox.add_domain("deep.gamma.mail.test")  # not <slug>.<base>
    sandbox.controls.clear_log()

    listed = await provider.list_tenant_domains()

    assert [name for name in jmap_methods(sandbox) if name.endswith("/set")] == []
    assert sorted(listed, key=lambda o: o.name) == [
        MarkedObject(acme, "acme.mail.test", TENANT.id, {"domainId": acme}, "acme"),
        MarkedObject(bare, "gamma.mail.test", None, {"domainId": bare}, "gamma"),
        MarkedObject(custom, "mail.acme-corp.test", OTHER.id, {"domainId": custom}),
    ]


async def test_listing_reads_every_page_of_ids(
    sandbox: StalwartSandbox, provider: StalwartMailProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "QUERY_PAGE", 2)
    monkeypatch.setattr(client_module, "GET_BATCH", 2)
    for n in range(5):
        sandbox.add_domain(f"t{n}.mail.test")

    listed = await provider.list_tenant_domains()

    assert sorted(o.slug or "" for o in listed) == ["t0", "t1", "t2", "t3", "t4"]


async def test_the_paged_listing_is_the_listing_one_get_batch_at_a_time(
    sandbox: StalwartSandbox, provider: StalwartMailProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "GET_BATCH", 2)
    for n in range(5):
        sandbox.add_domain(f"t{n}.mail.test")
    sandbox.add_domain("unrelated.test")

    pages = [page async for page in provider.tenant_domain_pages()]
    listed = await provider.list_tenant_domains()

    assert len(pages) == 3  # six domains read two at a time; the unmarked one is left out of its page
    assert sorted(len(page) for page in pages) == [1, 2, 2]
    assert [o for page in pages for o in page] == listed


async def test_a_listed_domain_is_deleted_with_its_dkim_keys_first(
    sandbox: StalwartSandbox, provider: StalwartMailProvider
) -> None:
    domain_id = (await provider.ensure_tenant_domain(TENANT, {})).ids["domainId"]
    sandbox.generate_dkim_now(domain_id)
    assert sandbox.dkim_keys(domain_id)
    (domain,) = await provider.list_tenant_domains()

    result = await provider.delete_marked_domain(domain)
    again = await provider.delete_marked_domain(domain)

    assert (result.state, result.reason) == ("ok", "Deleted")
    assert sandbox.domains() == []
    assert sandbox.dkim_keys(domain_id) == []
    assert (again.state, again.reason) == ("ok", "Deleted")


async def test_a_domain_with_accounts_is_refused_and_one_remarked_since_listing_is_left_alone(
    sandbox: StalwartSandbox, provider: StalwartMailProvider, client: StalwartClient
) -> None:
    domain_id = (await provider.ensure_tenant_domain(TENANT, {})).ids["domainId"]
    custom = sandbox.add_domain("mail.acme-corp.test", description=f"[tenantry:tenant:{OTHER.id}]")
    await client.create_account(UserCreate(name="alice", domain_id=domain_id))
    listed = {o.id: o for o in await provider.list_tenant_domains()}
    sandbox.delete_domain(custom)
    sandbox.add_domain("mail.acme-corp.test", description="taken over by hand")
    (recreated,) = [d for d in sandbox.domains() if d["name"] == "mail.acme-corp.test"]

    with pytest.raises(PermanentStepError) as in_use:
        await provider.delete_marked_domain(listed[domain_id])
    with pytest.raises(PermanentStepError) as unmarked:
        await provider.delete_marked_domain(replace(listed[custom], id=recreated["id"]))

    assert in_use.value.reason == "DomainInUse"
    assert unmarked.value.reason == "NotMarked"
    assert len(sandbox.domains()) == 2


async def test_ensure_marks_a_domain_handed_to_the_tenant_as_its_own(
    sandbox: StalwartSandbox, provider: StalwartMailProvider
) -> None:
    domain_id = sandbox.add_domain("acme.mail.test", description=f"Tenantry tenant acme [tenantry:tenant:{OTHER.id}]")
    sandbox.generate_dkim_now(domain_id)

    plain = await provider.ensure_tenant_domain(TENANT, {"domainId": domain_id})
    unchanged = next(d for d in sandbox.domains() if d["id"] == domain_id)["description"]
    taken = await provider.ensure_tenant_domain(TENANT, {"domainId": domain_id, ADOPT: domain_id})

    assert plain.ids == {"domainId": domain_id}
    assert unchanged == f"Tenantry tenant acme [tenantry:tenant:{OTHER.id}]"
    assert taken.ids == {"domainId": domain_id}
    (domain,) = sandbox.domains()
    assert domain["description"] == f"Tenantry tenant acme [tenantry:tenant:{TENANT.id}]"
    assert "Marked Stalwart domain acme.mail.test as this tenant's" in taken.events


async def test_the_null_adapter_lists_nothing() -> None:
    assert await NotConfigured("not configured").list_tenant_domains() == []
