"""Listing and reading groups: filters, search, pages and include flags (GroupFilter, authentik Pagination)."""

from __future__ import annotations

import json
import secrets

import pytest

from tests.conformance.authentik.conftest import GROUPS, Authentik


async def test_a_new_install_lists_its_superuser_group_so_lists_are_never_empty(authentik: Authentik) -> None:
    # blueprints/system/bootstrap.yaml creates "authentik Admins" (is_superuser) with akadmin in it.
    response = await authentik.request("GET", GROUPS)
    named = await authentik.listed(name="authentik Admins", search="")

    assert response.json()["pagination"]["count"] >= 1
    assert [(g["name"], g["is_superuser"]) for g in named] == [("authentik Admins", True)]


async def test_the_name_filter_is_exact_and_case_sensitive(authentik: Authentik) -> None:
    for label in ("Acme", "acme", "acme-2"):
        await authentik.create(label)

    assert await authentik.names(name=authentik.name("acme")) == [authentik.name("acme")]
    assert await authentik.names(name=authentik.name("Acme")) == [authentik.name("Acme")]
    assert await authentik.names(name=authentik.name("ACME")) == []


async def test_the_attributes_filter_matches_json_values_with_their_types(authentik: Authentik) -> None:
    key = f"tconf_{secrets.token_hex(4)}"  # no other group on the server carries it
    await authentik.create("int", attributes={key: 42, "flag": True})
    await authentik.create("str", attributes={key: "42", "flag": 1})
    await authentik.create("nested", attributes={key: {"tier": "gold", "tags": ["a", "b"]}})

    def matching(wanted: dict[str, object]) -> dict[str, str]:
        return {"attributes": json.dumps(wanted)}

    assert await authentik.names(**matching({key: 42})) == [authentik.name("int")]
    assert await authentik.names(**matching({key: "42"})) == [authentik.name("str")]
    assert await authentik.names(**matching({key: 42, "flag": 1})) == []
    assert await authentik.names(**matching({f"{key}__tier": "gold"})) == [authentik.name("nested")]
    assert await authentik.names(**matching({f"{key}__tags__1": "b"})) == [authentik.name("nested")]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("notjson", "filter: failed to parse JSON"),
        ("{nope", "filter: failed to parse JSON"),
        ("[1]", "filter: value must be key:value mapping"),
        ("42", "filter: value must be key:value mapping"),
    ],
)
async def test_an_attributes_filter_that_is_no_json_object_is_400_with_a_bare_list(
    authentik: Authentik, raw: str, message: str
) -> None:
    # GroupFilter.filter_attributes raises ValidationError(detail=<str>); DRF sends it as a list, unnamed.
    response = await authentik.request("GET", GROUPS, params={"attributes": raw})

    assert (response.status_code, response.json()) == (400, [message])


async def test_search_is_case_insensitive_and_every_term_must_match(authentik: Authentik) -> None:
    await authentik.create("Tenant-Alpha")
    await authentik.create("tenant-beta")

    assert await authentik.names(search=authentik.prefix.upper()) == [
        authentik.name("Tenant-Alpha"),
        authentik.name("tenant-beta"),
    ]
    assert await authentik.names(search=f"{authentik.prefix} BETA") == [authentik.name("tenant-beta")]


async def test_the_default_order_is_by_name_and_ordering_reverses_it(authentik: Authentik) -> None:
    for label in ("b", "c", "a"):
        await authentik.create(label)

    assert await authentik.names() == [authentik.name(x) for x in "abc"]
    assert await authentik.names(ordering="-name") == [authentik.name(x) for x in "cba"]


async def test_the_is_superuser_filter(authentik: Authentik) -> None:
    await authentik.create("plain")
    await authentik.create("root", is_superuser=True)

    assert await authentik.names(is_superuser="true") == [authentik.name("root")]
    assert await authentik.names(is_superuser="false") == [authentik.name("plain")]


async def test_pages_are_numbered_with_zero_for_none(authentik: Authentik) -> None:
    for label in ("p1", "p2", "p3"):
        await authentik.create(label)

    first = (await authentik.request("GET", GROUPS, params={"search": authentik.prefix, "page_size": 2})).json()
    last = (
        await authentik.request("GET", GROUPS, params={"search": authentik.prefix, "page_size": 2, "page": 2})
    ).json()
    beyond = await authentik.request("GET", GROUPS, params={"search": authentik.prefix, "page": 9})

    assert first["pagination"] == {
        "next": 2,
        "previous": 0,
        "count": 3,
        "current": 1,
        "total_pages": 2,
        "start_index": 1,
        "end_index": 2,
    }
    assert (last["pagination"]["next"], last["pagination"]["previous"], len(last["results"])) == (0, 1, 1)
    assert (beyond.status_code, beyond.json()) == (404, {"detail": "Invalid page."})


@pytest.mark.parametrize("page_size", ["0", "-1", "x"])
async def test_an_unusable_page_size_falls_back_to_the_default(authentik: Authentik, page_size: str) -> None:
    for label in ("s1", "s2", "s3"):
        await authentik.create(label)

    assert len(await authentik.listed(page_size=page_size)) == 3


@pytest.mark.parametrize(("flag", "included"), [("true", True), ("True", True), ("false", False), ("1", False)])
async def test_include_users_is_true_only_when_spelled_true(authentik: Authentik, flag: str, included: bool) -> None:
    # GroupSerializer compares str(value).lower() == "true"; nothing else counts and nothing is refused.
    group = await authentik.create("flags")

    listed = await authentik.listed(include_users=flag)
    fetched = (await authentik.request("GET", authentik.item(group["pk"]), params={"include_users": flag})).json()

    assert [g["users_obj"] is not None for g in listed] == [included]
    assert (fetched["users_obj"] is not None) is included
