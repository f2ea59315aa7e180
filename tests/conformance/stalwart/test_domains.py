"""x:Domain: defaults, normalisation, unique names and aliases, selector templates, the shapes of set and query.

Sources (stalwartlabs/stalwart): tests/src/system/directory.rs (duplicate names and aliases), tests/src/store/
registry.rs (linked objects, primary keys), crates/jmap/src/registry/mapping/domain.rs (``validate_domain``),
crates/common/src/network/dkim.rs (``generate_dkim_selector``), crates/jmap-proto/src/method/{set,query}.rs
and crates/jmap/src/api/query.rs (response shapes), crates/jmap/src/registry/query.rs (default sort, filters),
crates/registry/src/schema/structs_impl.rs (``impl Default for Domain``, ``IntoValue``).
"""

from __future__ import annotations

import secrets

import pytest

from tests.conformance.stalwart.conftest import Stalwart

DKIM_DEFAULTS = {
    "@type": "Automatic",
    "algorithms": {"Dkim1Ed25519Sha256": True, "Dkim1RsaSha256": True},
    "selectorTemplate": "v{version}-{algorithm}-{date-%Y%m%d}",
    "rotateAfter": 90 * 86_400_000,
    "retireAfter": 7 * 86_400_000,
    "deleteAfter": 30 * 86_400_000,
}


async def test_a_bare_domain_reads_back_with_every_default_and_nulls_for_what_is_unset(stalwart: Stalwart) -> None:
    name = stalwart.unique_domain()
    domain_id = await stalwart.create("Domain", {"name": name})
    got = await stalwart.get("Domain", domain_id)
    assert got["dkimManagement"] == DKIM_DEFAULTS
    expected = {
        "id": domain_id,
        "name": name,
        "aliases": {},
        "isEnabled": True,
        "description": None,
        "logo": None,
        "catchAllAddress": None,
        "memberTenantId": None,
        "directoryId": None,
        "allowRelaying": False,
        "reportAddressUri": "mailto:postmaster",
        "subAddressing": {"@type": "Enabled"},
        "certificateManagement": {"@type": "Manual"},
        "dnsManagement": {"@type": "Manual"},
    }
    assert {key: got[key] for key in expected} == expected
    assert isinstance(got["createdAt"], str)
    assert isinstance(got["dnsZoneFile"], str)


async def test_names_are_stored_lowercased_without_whitespace_and_refused_without_a_known_suffix(
    stalwart: Stalwart,
) -> None:
    name = stalwart.unique_domain()
    domain_id = await stalwart.create("Domain", {"name": f" {name.upper()} ", "dkimManagement": {"@type": "Manual"}})
    assert (await stalwart.get("Domain", domain_id, ["name"]))["name"] == name
    refused = await stalwart.refused("Domain", {"name": "tconf.notarealtld"})
    assert (refused["type"], refused["description"], refused["properties"]) == (
        "invalidPatch",
        "Invalid domain name",
        ["name"],
    )


async def test_a_name_or_alias_already_taken_is_a_primary_key_violation_naming_the_holder(stalwart: Stalwart) -> None:
    alias = stalwart.unique_domain()
    name, holder = await stalwart.domain(aliases={alias: True})
    taken = {"type": "primaryKeyViolation", "objectId": {"object": "Domain", "id": holder}}
    manual = {"dkimManagement": {"@type": "Manual"}}
    fresh = stalwart.unique_domain()
    assert await stalwart.refused("Domain", {"name": name, **manual}) == {**taken, "properties": ["name"]}
    # A name that is another domain's alias is refused on "name" too (validate_domain).
    assert await stalwart.refused("Domain", {"name": alias, **manual}) == {**taken, "properties": ["name"]}
    for clash in (name, alias):
        value = {"name": fresh, "aliases": {clash: True}, **manual}
        assert await stalwart.refused("Domain", value) == {**taken, "properties": ["aliases"]}


@pytest.mark.parametrize(
    ("template", "description"),
    [
        ("x-{nope}", "unrecognized variable '{nope}'"),
        ("v{version", "unclosed '{' in template"),
        ("{date-}", "empty strftime format in {date-}"),
        ("  ", "Selector cannot be empty"),
    ],
)
async def test_a_selector_template_that_cannot_be_expanded_is_invalid_properties(
    stalwart: Stalwart, template: str, description: str
) -> None:
    dkim = {"@type": "Automatic", "selectorTemplate": template}
    refused = await stalwart.refused("Domain", {"name": stalwart.unique_domain(), "dkimManagement": dkim})
    assert refused == {"type": "invalidProperties", "description": description, "properties": ["selectorTemplate"]}


async def test_a_changed_template_of_an_automatic_domain_is_checked_too(stalwart: Stalwart) -> None:
    _, domain_id = await stalwart.domain(dkimManagement={"@type": "Automatic", "selectorTemplate": "s-{epoch}"})
    result = await stalwart.call(
        "x:Domain/set", {"update": {domain_id: {"dkimManagement/selectorTemplate": "s-{nope}"}}}
    )
    assert result["notUpdated"][domain_id]["type"] == "invalidProperties"
    assert result["notUpdated"][domain_id]["properties"] == ["selectorTemplate"]


async def test_set_responses_leave_out_every_empty_collection(stalwart: Stalwart) -> None:
    created = await stalwart.call(
        "x:Domain/set", {"create": {"d": {"name": stalwart.unique_domain(), "dkimManagement": {"@type": "Manual"}}}}
    )
    domain_id = created["created"]["d"]["id"]
    assert set(created) == {"accountId", "created"}
    updated = await stalwart.call("x:Domain/set", {"update": {domain_id: {"description": "conformance"}}})
    assert set(updated) == {"accountId", "updated"}
    assert updated["updated"] == {domain_id: None}
    refused = await stalwart.call("x:Domain/set", {"create": {"bad": {"name": "nope"}}})
    assert set(refused) == {"accountId", "notCreated"}
    nothing = await stalwart.call("x:Domain/set", {})
    assert set(nothing) == {"accountId"}


async def test_destroying_what_does_not_exist_is_not_found_without_a_description(stalwart: Stalwart) -> None:
    _, domain_id = await stalwart.domain()
    await stalwart.call("x:Domain/set", {"destroy": [domain_id]})
    again = await stalwart.call("x:Domain/set", {"destroy": [domain_id], "update": {domain_id: {"description": "x"}}})
    assert again["notDestroyed"] == {domain_id: {"type": "notFound"}}
    assert again["notUpdated"] == {domain_id: {"type": "willDestroy", "description": "ID will be destroyed."}}
    gone = await stalwart.call("x:Domain/set", {"update": {domain_id: {"description": "x"}}})
    assert gone["notUpdated"] == {domain_id: {"type": "notFound"}}
    assert (await stalwart.call("x:Domain/get", {"ids": [domain_id]}))["notFound"] == [domain_id]


async def test_server_set_properties_cannot_be_sent(stalwart: Stalwart) -> None:
    for prop, value in (("createdAt", "2026-01-01T00:00:00Z"), ("dnsZoneFile", "x")):
        refused = await stalwart.refused("Domain", {"name": stalwart.unique_domain(), prop: value})
        assert (refused["type"], refused["description"]) == ("invalidPatch", "Cannot modify server set property")


async def test_a_query_without_sort_lists_newest_first_and_totals_only_on_request(stalwart: Stalwart) -> None:
    token = f"tconforder{secrets.token_hex(4)}"
    made = [await stalwart.domain(description=f"{token} {i}") for i in range(3)]
    ids = [domain_id for _, domain_id in made]
    found = await stalwart.call("x:Domain/query", {"filter": {"text": token}})
    assert found["ids"] == ids[::-1]
    assert found["canCalculateChanges"] is True
    assert "total" not in found
    assert isinstance(found["queryState"], str)
    oldest_first = await stalwart.call("x:Domain/query", {"filter": {"text": token}, "sort": [{"property": "id"}]})
    assert oldest_first["ids"] == ids
    counted = await stalwart.call("x:Domain/query", {"filter": {"name": made[1][0]}, "calculateTotal": True})
    assert (counted["ids"], counted["total"], counted["canCalculateChanges"]) == ([ids[1]], 1, True)


async def test_filters_are_property_equality_joined_by_and_only(stalwart: Stalwart) -> None:
    unindexed = await stalwart.method_error("x:Domain/query", {"filter": {"isEnabled": True}})
    assert unindexed == {
        "type": "unsupportedFilter",
        "description": "Filter on property isEnabled is not supported or invalid",
    }
    either = {"operator": "OR", "conditions": [{"name": "a.example.com"}, {"name": "b.example.com"}]}
    assert await stalwart.method_error("x:Domain/query", {"filter": either}) == {
        "type": "unsupportedFilter",
        "description": "Only AND is supported in filters",
    }
