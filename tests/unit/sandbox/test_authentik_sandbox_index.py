"""The authentik sandbox's indexes stay in step with its groups and users through every create, rename,
change and delete: what the API finds by name, attribute, member or link is what a full scan would find."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator

import httpx
import pytest

from tenantry.sandbox.authentik import AuthentikSandbox
from tenantry.sandbox.authentik_index import GroupIndex
from tenantry.sandbox.authentik_store import Directory

TOKEN = "sandbox-api-token"
GROUPS = "/api/v3/core/groups/"
USERS = "/api/v3/core/users/"


@pytest.fixture
def sandbox() -> AuthentikSandbox:
    sandbox = AuthentikSandbox([TOKEN])
    for group in sandbox.groups(builtin=True):
        sandbox.delete_group(group["pk"])
    return sandbox


@pytest.fixture
async def client(sandbox: AuthentikSandbox) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(sandbox.app)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://authentik.test", headers=headers) as c:
        yield c


async def _names(client: httpx.AsyncClient, **params: str | int) -> list[str]:
    response = await client.get(GROUPS, params=params)
    assert response.status_code == 200, response.text
    return [g["name"] for g in response.json()["results"]]


def rebuilt(directory: Directory) -> GroupIndex:
    """The index built afresh from the stored groups, to compare with the one kept up to date."""
    index = GroupIndex()
    for group in directory.groups.values():
        index.add(group.sort_key, group.attributes)
        index.link_parents(group.pk, (), group.parents)
        index.link_users(group.pk, (), group.users)
    return index


def assert_index_consistent(directory: Directory) -> None:
    assert vars(directory.index) == vars(rebuilt(directory))


async def test_a_renamed_group_is_found_by_its_new_name_and_not_its_old_one(
    sandbox: AuthentikSandbox, client: httpx.AsyncClient
) -> None:
    pk = (await client.post(GROUPS, json={"name": "tenant-old"})).json()["pk"]
    renamed = await client.patch(f"{GROUPS}{pk}/", json={"name": "tenant-new"})
    assert renamed.status_code == 200
    assert await _names(client, name="tenant-new") == ["tenant-new"]
    assert await _names(client, name="tenant-old") == []
    assert sandbox.directory.group_named("tenant-old") is None
    # The old name is free again; the new one is taken.
    assert (await client.post(GROUPS, json={"name": "tenant-old"})).status_code == 201
    taken = await client.post(GROUPS, json={"name": "tenant-new"})
    assert taken.json() == {"name": ["Group with this name already exists."]}
    assert_index_consistent(sandbox.directory)


async def test_a_renamed_group_moves_to_its_new_place_in_the_listing(
    sandbox: AuthentikSandbox, client: httpx.AsyncClient
) -> None:
    for name in ("b", "c", "d"):
        sandbox.add_group(name, {"managed_by": "tenantry"})
    d = sandbox.directory.group_named("d")
    assert d is not None
    sandbox.update_group(d.pk, name="a")
    assert await _names(client) == ["a", "b", "c"]
    assert await _names(client, attributes=json.dumps({"managed_by": "tenantry"})) == ["a", "b", "c"]


async def test_a_deleted_group_frees_its_name_and_leaves_every_filter(
    sandbox: AuthentikSandbox, client: httpx.AsyncClient
) -> None:
    pk = (await client.post(GROUPS, json={"name": "gone", "attributes": {"tenant_id": "t1"}})).json()["pk"]
    assert (await client.delete(f"{GROUPS}{pk}/")).status_code == 204
    assert await _names(client, name="gone") == []
    assert await _names(client, attributes=json.dumps({"tenant_id": "t1"})) == []
    assert (await client.post(GROUPS, json={"name": "gone"})).status_code == 201
    assert_index_consistent(sandbox.directory)


async def test_changed_attributes_are_found_by_their_new_values_only(
    sandbox: AuthentikSandbox, client: httpx.AsyncClient
) -> None:
    body = {"name": "acme", "attributes": {"tenant_id": "t1", "managed_by": "tenantry"}}
    pk = (await client.post(GROUPS, json=body)).json()["pk"]
    await client.patch(f"{GROUPS}{pk}/", json={"attributes": {"tenant_id": "t2"}})
    assert await _names(client, attributes=json.dumps({"tenant_id": "t2"})) == ["acme"]
    assert await _names(client, attributes=json.dumps({"tenant_id": "t1"})) == []
    assert await _names(client, attributes=json.dumps({"managed_by": "tenantry"})) == []
    assert_index_consistent(sandbox.directory)


async def test_indexed_attribute_values_keep_json_kinds_apart(
    sandbox: AuthentikSandbox, client: httpx.AsyncClient
) -> None:
    sandbox.add_group("int", {"n": 1})
    sandbox.add_group("float", {"n": 1.0})
    sandbox.add_group("text", {"n": "1"})
    sandbox.add_group("bool", {"n": True})
    sandbox.add_group("null", {"n": None})
    sandbox.add_group("list", {"n": [1]})
    assert await _names(client, attributes=json.dumps({"n": 1})) == ["float", "int"]
    assert await _names(client, attributes=json.dumps({"n": "1"})) == ["text"]
    assert await _names(client, attributes=json.dumps({"n": True})) == ["bool"]
    assert await _names(client, attributes=json.dumps({"n": None})) == ["null"]
    assert await _names(client, attributes=json.dumps({"n": [1]})) == ["list"]


async def test_pages_of_an_attribute_filter_match_a_sorted_scan(
    sandbox: AuthentikSandbox, client: httpx.AsyncClient
) -> None:
    rng = random.Random(7)
    names = [f"g{n:04d}" for n in rng.sample(range(10_000), 260)]
    for n, name in enumerate(names):
        sandbox.add_group(name, {"managed_by": "tenantry" if n % 3 else "other", "n": n})
    expected = sorted(name for n, name in enumerate(names) if n % 3)
    wanted = json.dumps({"managed_by": "tenantry"})
    pages = [await _names(client, attributes=wanted, page=p, page_size=100) for p in (1, 2)]
    assert pages[0] + pages[1] == expected
    body = (await client.get(GROUPS, params={"attributes": wanted, "page": "last", "page_size": 100})).json()
    assert body["pagination"]["count"] == len(expected)
    # Two conditions: the smallest bucket is walked and the other condition checked.
    assert await _names(client, attributes=json.dumps({"managed_by": "tenantry", "n": 1})) == [names[1]]
    assert await _names(client, attributes=json.dumps({"managed_by": "other", "n": 1})) == []


async def test_reparenting_moves_a_group_between_its_parents_children(
    sandbox: AuthentikSandbox, client: httpx.AsyncClient
) -> None:
    first, second = sandbox.add_group("first"), sandbox.add_group("second")
    child = (await client.post(GROUPS, json={"name": "child", "parents": [first["pk"]]})).json()
    await client.patch(f"{GROUPS}{child['pk']}/", json={"parents": [second["pk"]]})
    assert (await client.get(f"{GROUPS}{first['pk']}/")).json()["children"] == []
    assert (await client.get(f"{GROUPS}{second['pk']}/")).json()["children"] == [child["pk"]]
    await client.delete(f"{GROUPS}{second['pk']}/")
    assert (await client.get(f"{GROUPS}{child['pk']}/")).json()["parents"] == []
    assert_index_consistent(sandbox.directory)


async def test_a_renamed_or_deleted_user_leaves_the_member_filters_and_its_groups(
    sandbox: AuthentikSandbox, client: httpx.AsyncClient
) -> None:
    group = sandbox.add_group("team")
    alice = sandbox.add_user("alice", groups=[group["pk"]])
    assert await _names(client, members_by_username="alice") == ["team"]
    assert (await client.patch(f"{USERS}{alice}/", json={"username": "alicia"})).status_code == 200
    assert await _names(client, members_by_username="alicia") == ["team"]
    gone = await client.get(GROUPS, params={"members_by_username": "alice"})
    assert gone.json() == {"members_by_username": ["Select a valid choice. alice is not one of the available choices."]}
    assert (await client.delete(f"{USERS}{alice}/")).status_code == 204
    assert (await client.get(f"{GROUPS}{group['pk']}/")).json()["users"] == []
    assert_index_consistent(sandbox.directory)


async def test_a_user_shows_its_groups_in_creation_order(sandbox: AuthentikSandbox) -> None:
    late, early = sandbox.add_group("b-late"), sandbox.add_group("a-early")
    pk = sandbox.add_user("bob", groups=[early["pk"], late["pk"]])
    assert sandbox.user(pk)["groups"] == [late["pk"], early["pk"]]


def test_a_new_user_takes_the_highest_pk_in_use_plus_one(sandbox: AuthentikSandbox) -> None:
    first = sandbox.add_user("first")
    second = sandbox.add_user("second")
    sandbox.directory.delete_user(second)
    assert sandbox.add_user("third") == second
    sandbox.directory.delete_user(first)
    assert sandbox.add_user("fourth") == second + 1


async def test_random_edits_through_the_api_leave_the_index_as_a_rebuild_would(
    sandbox: AuthentikSandbox, client: httpx.AsyncClient
) -> None:
    rng = random.Random(11)
    users = [sandbox.add_user(f"u{n}") for n in range(6)]
    pks: list[str] = []
    for step in range(120):
        action = rng.choice(["create", "create", "rename", "attributes", "links", "delete"]) if pks else "create"
        if action == "create":
            body = {"name": f"g{rng.randrange(40)}", "attributes": {"k": rng.choice([1, "1", True, None, [1]])}}
            response = await client.post(GROUPS, json=body)
            if response.status_code == 201:
                pks.append(response.json()["pk"])
            continue
        pk = rng.choice(pks)
        if action == "rename":
            await client.patch(f"{GROUPS}{pk}/", json={"name": f"g{rng.randrange(40)}"})
        elif action == "attributes":
            await client.patch(f"{GROUPS}{pk}/", json={"attributes": {"k": rng.randrange(3), "step": step}})
        elif action == "links":
            parents = rng.sample(pks, min(len(pks), 2))
            await client.patch(f"{GROUPS}{pk}/", json={"parents": parents, "users": rng.sample(users, 3)})
        else:
            await client.delete(f"{GROUPS}{pk}/")
            pks.remove(pk)
        assert_index_consistent(sandbox.directory)
    listed = (await client.get(GROUPS, params={"page_size": 100})).json()["results"]
    assert [g["name"] for g in listed] == sorted(g.name for g in sandbox.directory.groups.values())
