"""Creating, changing and deleting groups (authentik/core/api/groups.py GroupSerializer and GroupViewSet)."""

from __future__ import annotations

import uuid

import pytest

from tests.conformance.authentik.conftest import GROUPS, Authentik

DICT_ONLY = {"attributes": ["Value must be a dictionary, and not have any duplicate keys."]}
ABSENT = object()  # a field left out of the body


async def test_create_answers_201_with_the_group_and_only_users_obj_filled(authentik: Authentik) -> None:
    group = await authentik.create("shape", attributes={"tenant_slug": "acme", "seats": 5, "meta": {"a": [1]}})

    assert uuid.UUID(group["pk"])
    # Group.num_pk: the first five digits of the UUID as an integer (authentik/core/models.py).
    assert group["num_pk"] == int(str(uuid.UUID(group["pk"]).int)[:5])
    assert {k: group[k] for k in ("name", "is_superuser", "attributes")} == {
        "name": authentik.name("shape"),
        "is_superuser": False,
        "attributes": {"tenant_slug": "acme", "seats": 5, "meta": {"a": [1]}},
    }
    assert [group[k] for k in ("parents", "users", "users_obj", "roles", "roles_obj", "children")] == [[]] * 6
    # SerializerMethodFields behind include_* flags that default to false.
    assert [group[k] for k in ("parents_obj", "children_obj", "inherited_roles_obj")] == [None] * 3


async def test_a_duplicate_name_is_400_and_names_are_case_sensitive(authentik: Authentik) -> None:
    await authentik.create("Acme")

    duplicate = await authentik.request("POST", GROUPS, json={"name": authentik.name("Acme"), "attributes": {}})
    other_case = await authentik.request("POST", GROUPS, json={"name": authentik.name("acme")})

    # Group.name is unique since 2025.12; DRF's UniqueValidator words it after the model's verbose name.
    assert (duplicate.status_code, duplicate.json()) == (400, {"name": ["Group with this name already exists."]})
    assert other_case.status_code == 201


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"name": ABSENT, "attributes": {}}, {"name": ["This field is required."]}),
        ({"name": "   "}, {"name": ["This field may not be blank."]}),
        ({"name": None}, {"name": ["This field may not be null."]}),
        ({"is_superuser": "maybe"}, {"is_superuser": ["Must be a valid boolean."]}),
        ({"attributes": [1, 2]}, DICT_ONLY),
        ({"attributes": "text"}, DICT_ONLY),
        ({"attributes": 42}, DICT_ONLY),
    ],
)
async def test_a_create_with_a_bad_field_is_400_per_field_and_creates_nothing(
    authentik: Authentik, body: dict[str, object], errors: dict[str, list[str]]
) -> None:
    sent = {k: v for k, v in {"name": authentik.name("refused"), **body}.items() if v is not ABSENT}
    response = await authentik.request("POST", GROUPS, json=sent)

    assert (response.status_code, response.json()) == (400, errors)
    assert await authentik.names() == []


async def test_patch_replaces_attributes_wholesale_and_keeps_the_rest(authentik: Authentik) -> None:
    group = await authentik.create("patched", attributes={"tenant_id": "t1", "tenant_slug": "acme"})

    patched = await authentik.request("PATCH", authentik.item(group["pk"]), json={"attributes": {"tenant_id": "t1"}})
    fetched = await authentik.request("GET", authentik.item(group["pk"]))

    assert patched.status_code == 200
    for answer in (patched.json(), fetched.json()):
        assert (answer["name"], answer["attributes"]) == (authentik.name("patched"), {"tenant_id": "t1"})


@pytest.mark.parametrize("attributes", [[], "x", 7, None])
async def test_patch_with_attributes_that_are_not_an_object_is_refused(
    authentik: Authentik, attributes: object
) -> None:
    group = await authentik.create("kept", attributes={"a": 1})

    response = await authentik.request("PATCH", authentik.item(group["pk"]), json={"attributes": attributes})

    expected = {"attributes": ["This field may not be null."]} if attributes is None else DICT_ONLY
    assert (response.status_code, response.json()) == (400, expected)
    assert (await authentik.request("GET", authentik.item(group["pk"]))).json()["attributes"] == {"a": 1}


async def test_a_rename_onto_a_taken_name_is_400(authentik: Authentik) -> None:
    await authentik.create("taken")
    group = await authentik.create("mine")

    response = await authentik.request("PATCH", authentik.item(group["pk"]), json={"name": authentik.name("taken")})

    assert (response.status_code, response.json()) == (400, {"name": ["Group with this name already exists."]})


async def test_put_needs_a_name_and_empties_members_it_does_not_send(authentik: Authentik) -> None:
    [admins] = await authentik.listed(name="authentik Admins", search="")
    if not admins["users"]:
        pytest.skip("the server's authentik Admins group has no member to borrow")
    member = admins["users"][0]
    group = await authentik.create("put", users=[member], attributes={"a": 1})
    item = authentik.item(group["pk"])

    nameless = await authentik.request("PUT", item, json={"attributes": {}})
    replaced = await authentik.request("PUT", item, json={"name": authentik.name("put2")})

    assert (nameless.status_code, nameless.json()) == (400, {"name": ["This field is required."]})
    # ``users`` has a default (an empty list), so a PUT without it removes every member; attributes has none.
    assert replaced.status_code == 200
    assert (replaced.json()["name"], replaced.json()["users"], replaced.json()["attributes"]) == (
        authentik.name("put2"),
        [],
        {"a": 1},
    )


async def test_a_child_names_its_parents_and_the_parent_lists_it_on_request(authentik: Authentik) -> None:
    parent = await authentik.create("parent")
    child = await authentik.create("child", parents=[parent["pk"]])

    plain = (await authentik.request("GET", authentik.item(parent["pk"]))).json()
    full = await authentik.request(
        "GET", authentik.item(parent["pk"]), params={"include_children": "true", "include_users": "false"}
    )
    up = await authentik.request("GET", authentik.item(child["pk"]), params={"include_parents": "true"})

    assert (child["parents"], plain["children"], plain["children_obj"]) == ([parent["pk"]], [child["pk"]], None)
    assert full.json()["users_obj"] is None
    # RelatedGroupSerializer: pk, name, is_superuser, attributes and group_uuid.
    assert full.json()["children_obj"] == [
        {
            "pk": child["pk"],
            "group_uuid": child["pk"],
            "name": child["name"],
            "is_superuser": False,
            "attributes": {},
        }
    ]
    assert [p["pk"] for p in up.json()["parents_obj"]] == [parent["pk"]]


async def test_delete_is_204_with_no_body_then_the_group_is_gone(authentik: Authentik) -> None:
    group = await authentik.create("doomed")

    deleted = await authentik.request("DELETE", authentik.item(group["pk"]))
    again = await authentik.request("DELETE", authentik.item(group["pk"]))
    fetched = await authentik.request("GET", authentik.item(group["pk"]))

    assert (deleted.status_code, deleted.content) == (204, b"")
    assert (again.status_code, fetched.status_code) == (404, 404)
    assert fetched.json() == {"detail": "No Group matches the given query."}
