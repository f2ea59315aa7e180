"""The Stalwart sandbox's indexes stay in step with its tables through every create, rename and destroy: what a
query, a uniqueness rule or a link rule finds through them is what a scan of the table would find."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tenantry.sandbox.stalwart import StalwartSandbox
from tenantry.sandbox.stalwart_index import TableIndex
from tenantry.sandbox.stalwart_store import OBJECTS, StalwartStore

API_KEY = "API_c2FuZGJveC1rZXk"
USING = ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"]


@pytest.fixture
def sandbox() -> StalwartSandbox:
    return StalwartSandbox(api_keys=[API_KEY], fast_dkim=True)


@pytest.fixture
async def client(sandbox: StalwartSandbox) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(sandbox.app)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://stalwart.test", headers=headers) as c:
        yield c


async def _one(client: httpx.AsyncClient, name: str, args: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/jmap/", json={"using": USING, "methodCalls": [[name, args, "c"]]})
    [[answered, result, _]] = response.json()["methodResponses"]
    assert answered == name, result
    out: dict[str, Any] = result
    return out


async def _query(client: httpx.AsyncClient, obj: str, filter_: dict[str, Any]) -> list[str]:
    ids: list[str] = (await _one(client, f"x:{obj}/query", {"filter": filter_}))["ids"]
    return ids


async def _set(client: httpx.AsyncClient, obj: str, **args: Any) -> dict[str, Any]:
    return await _one(client, f"x:{obj}/set", args)


def assert_indexes_consistent(store: StalwartStore) -> None:
    for obj in OBJECTS:
        fresh = TableIndex.of(obj)
        for object_id, record in store.tables[obj].items():
            fresh.add(object_id, record)
        assert store.indexes[obj].snapshot() == fresh.snapshot(), obj


async def test_a_destroyed_domain_frees_its_name(sandbox: StalwartSandbox, client: httpx.AsyncClient) -> None:
    first = sandbox.add_domain("acme.test", dkimManagement={"@type": "Manual"})
    assert await _query(client, "Domain", {"name": "acme.test"}) == [first]
    assert (await _set(client, "Domain", destroy=[first]))["destroyed"] == [first]
    assert await _query(client, "Domain", {"name": "acme.test"}) == []
    second = (await _set(client, "Domain", create={"d": {"name": "acme.test"}}))["created"]["d"]["id"]
    assert await _query(client, "Domain", {"name": "acme.test"}) == [second]
    assert_indexes_consistent(sandbox.store)


async def test_a_renamed_domain_is_found_by_its_new_name_and_its_old_name_is_free(
    sandbox: StalwartSandbox, client: httpx.AsyncClient
) -> None:
    domain = sandbox.add_domain("old.test", aliases={"alias.test": True})
    other = sandbox.add_domain("other.test")
    updated = await _set(client, "Domain", update={domain: {"name": "new.test", "aliases": {}}})
    assert updated["updated"] == {domain: None}
    assert await _query(client, "Domain", {"name": "new.test"}) == [domain]
    assert await _query(client, "Domain", {"name": "old.test"}) == []
    assert await _query(client, "Domain", {"aliases": "alias.test"}) == []
    # The freed name and alias may be taken by another domain; the new name may not.
    taken = await _set(client, "Domain", update={other: {"aliases": {"old.test": True, "alias.test": True}}})
    assert taken["updated"] == {other: None}
    clash = await _set(client, "Domain", create={"x": {"name": "new.test"}})
    assert clash["notCreated"]["x"]["objectId"] == {"object": "Domain", "id": domain}
    alias_clash = await _set(client, "Domain", create={"y": {"name": "alias.test"}})
    assert alias_clash["notCreated"]["y"]["objectId"] == {"object": "Domain", "id": other}
    assert_indexes_consistent(sandbox.store)


async def test_dkim_keys_go_with_their_domain(sandbox: StalwartSandbox, client: httpx.AsyncClient) -> None:
    kept = sandbox.add_domain("kept.test")
    gone = sandbox.add_domain("gone.test")
    for domain in (kept, gone):
        sandbox.generate_dkim_now(domain)
    gone_keys = await _query(client, "DkimSignature", {"domainId": gone})
    assert len(gone_keys) == 2
    sandbox.delete_domain(gone)
    assert await _query(client, "DkimSignature", {"domainId": gone}) == []
    assert sandbox.dkim_keys(gone) == []
    assert len(sandbox.dkim_keys(kept)) == 2
    assert set(sandbox.store.tables["DkimSignature"]).isdisjoint(gone_keys)
    assert_indexes_consistent(sandbox.store)


async def test_a_domain_in_use_names_its_accounts_and_keys_and_is_kept(
    sandbox: StalwartSandbox, client: httpx.AsyncClient
) -> None:
    domain = sandbox.add_domain("busy.test")
    sandbox.generate_dkim_now(domain)
    elsewhere = sandbox.add_domain("elsewhere.test", dkimManagement={"@type": "Manual"})
    alias = {"name": "info", "domainId": domain}
    created = await _set(
        client,
        "Account",
        create={"a": {"@type": "Group", "name": "team", "domainId": elsewhere, "aliases": {"0": alias}}},
    )
    account = created["created"]["a"]["id"]
    refused = (await _set(client, "Domain", destroy=[domain]))["notDestroyed"][domain]
    linked = refused["linkedObjects"]
    assert linked[0] == {"object": "Account", "id": account}
    assert [item["object"] for item in linked[1:]] == ["DkimSignature", "DkimSignature"]
    # Once the alias goes, only the keys link to the domain.
    await _set(client, "Account", update={account: {"aliases": {}}})
    again = (await _set(client, "Domain", destroy=[domain]))["notDestroyed"][domain]["linkedObjects"]
    assert {item["object"] for item in again} == {"DkimSignature"}
    assert_indexes_consistent(sandbox.store)


async def test_an_address_is_free_again_once_its_account_is_renamed(
    sandbox: StalwartSandbox, client: httpx.AsyncClient
) -> None:
    domain = sandbox.add_domain("mail.test", dkimManagement={"@type": "Manual"})
    first = (await _set(client, "Account", create={"a": {"@type": "Group", "name": "sales", "domainId": domain}}))[
        "created"
    ]["a"]["id"]
    clash = await _set(client, "Account", create={"b": {"@type": "Group", "name": "sales", "domainId": domain}})
    assert clash["notCreated"]["b"]["objectId"] == {"object": "Account", "id": first}
    await _set(client, "Account", update={first: {"name": "support"}})
    assert await _query(client, "Account", {"name": "sales", "domainId": domain}) == []
    assert await _query(client, "Account", {"name": "support", "domainId": domain}) == [first]
    again = await _set(client, "Account", create={"b": {"@type": "Group", "name": "sales", "domainId": domain}})
    assert "b" in again["created"]
    assert_indexes_consistent(sandbox.store)


async def test_queries_through_an_index_answer_oldest_first_like_a_scan(
    sandbox: StalwartSandbox, client: httpx.AsyncClient
) -> None:
    domains = [sandbox.add_domain(f"d{n}.test", dkimManagement={"@type": "Manual"}) for n in range(12)]
    tenant = {domains[n]: "tenant-a" if n % 2 else "tenant-b" for n in range(12)}
    for domain, owner in reversed(tenant.items()):  # tagged newest first: index buckets fill out of order
        await _set(client, "Domain", update={domain: {"memberTenantId": owner}})
    found = await _query(client, "Domain", {"memberTenantId": "tenant-a"})
    assert found == list(reversed([d for d in domains if tenant[d] == "tenant-a"]))  # newest first by default
    ascending = await _one(
        client,
        "x:Domain/query",
        {"filter": {"memberTenantId": "tenant-a"}, "sort": [{"property": "id", "isAscending": True}]},
    )
    assert ascending["ids"] == [d for d in domains if tenant[d] == "tenant-a"]
    assert await _query(client, "Domain", {"memberTenantId": None}) == []


async def test_random_writes_leave_every_index_as_a_rebuild_would(
    sandbox: StalwartSandbox, client: httpx.AsyncClient
) -> None:
    rng = random.Random(5)
    names = [f"n{n}.test" for n in range(15)]
    domains: list[str] = []
    accounts: list[str] = []
    for _ in range(150):
        action = rng.choice(["domain", "rename", "alias", "account", "move", "destroy", "dkim"])
        if action == "domain" or not domains:
            result = await _set(client, "Domain", create={"d": {"name": rng.choice(names)}})
            domains += [result["created"]["d"]["id"]] if "created" in result else []
        elif action in ("rename", "alias"):
            change = {"name": rng.choice(names)} if action == "rename" else {"aliases": {rng.choice(names): True}}
            await _set(client, "Domain", update={rng.choice(domains): change})
        elif action == "account":
            body = {"@type": "Group", "name": f"a{rng.randrange(5)}", "domainId": rng.choice(domains)}
            result = await _set(client, "Account", create={"a": body})
            accounts += [result["created"]["a"]["id"]] if "created" in result else []
        elif action == "move" and accounts:
            await _set(client, "Account", update={rng.choice(accounts): {"domainId": rng.choice(domains)}})
        elif action == "destroy":
            target = rng.choice(domains + accounts)
            obj = "Domain" if target in domains else "Account"
            if "destroyed" in await _set(client, obj, destroy=[target]):
                (domains if obj == "Domain" else accounts).remove(target)
        elif action == "dkim":
            sandbox.generate_dkim_now(rng.choice(domains))
        assert_indexes_consistent(sandbox.store)
    for name in names:
        scanned = [i for i, d in sandbox.store.tables["Domain"].items() if d["name"] == name]
        assert await _query(client, "Domain", {"name": name}) == list(reversed(scanned))
