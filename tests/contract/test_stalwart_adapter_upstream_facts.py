"""The Stalwart adapter holds up against upstream facts the sandbox now reproduces (issue 10).

Each test names the upstream behaviour it leans on: set responses without empty collections, a name that is
another domain's alias refused on ``name``, a domain kept by its own DKIM keys, a zone file with long TXT
values split into parenthesised chunks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tenantry.integrations.errors import PermanentStepError
from tenantry.integrations.ports import TenantSpec
from tenantry.integrations.stalwart.adapter import StalwartMailProvider
from tenantry.integrations.stalwart.client import StalwartClient
from tenantry.sandbox.stalwart import StalwartSandbox

API_KEY = "facts-key"
BASE_URL = "http://stalwart.facts"
TENANT = TenantSpec(
    id="0f0e0d0c-0000-4000-8000-0000000000aa",
    slug="acme",
    name="Acme",
    generation=1,
    mail_domain="acme.test",
    quota_bytes=10**9,
)


@pytest.fixture
def sandbox() -> StalwartSandbox:
    # Real RSA-2048 keys: their DKIM records are longer than one 255-byte TXT string.
    return StalwartSandbox(api_keys=[API_KEY])


@pytest.fixture
async def provider(sandbox: StalwartSandbox) -> AsyncIterator[StalwartMailProvider]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox.app)) as http:
        yield StalwartMailProvider(StalwartClient(http, BASE_URL, api_key=API_KEY), domain_base="test")


async def test_a_name_that_is_another_domains_alias_is_a_conflict_not_an_adoption(
    sandbox: StalwartSandbox, provider: StalwartMailProvider
) -> None:
    other = sandbox.add_domain("other.test", aliases={"acme.test": True}, dkimManagement={"@type": "Manual"})
    with pytest.raises(PermanentStepError) as caught:
        await provider.ensure_tenant_domain(TENANT, {})
    assert caught.value.reason == "DomainConflict"
    assert "alias of Stalwart domain other.test" in caught.value.message
    assert [d["id"] for d in sandbox.domains()] == [other]


@pytest.mark.slow  # two RSA-2048 keys
async def test_ready_domain_reads_the_split_dkim_record_whole_and_deletes_through_its_keys(
    sandbox: StalwartSandbox, provider: StalwartMailProvider
) -> None:
    first = await provider.ensure_tenant_domain(TENANT, {})
    domain_id = first.ids["domainId"]
    sandbox.generate_dkim_now(domain_id)
    [domain] = sandbox.domains()
    assert " IN TXT (\n" in domain["dnsZoneFile"]

    ready = await provider.ensure_tenant_domain(TENANT, first.ids)
    assert ready.state == "ok"
    rsa = next(key for key in sandbox.dkim_keys(domain_id) if key["@type"] == "Dkim1RsaSha256")
    record = next(r for r in ready.dns_records or () if r.name.startswith(f"{rsa['selector']}._domainkey."))
    assert record.value == f"v=DKIM1; k=rsa; h=sha256; p={rsa['publicKey']}"

    deleted = await provider.delete_tenant_domain(TENANT, first.ids)
    assert deleted.reason == "Deleted"
    assert sandbox.domains() == []
    assert sandbox.store.tables["DkimSignature"] == {}
