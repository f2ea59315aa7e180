"""x:Account: users and groups, their addresses, credentials and links, and what they keep from being destroyed.

Sources (stalwartlabs/stalwart): tests/src/system/directory.rs (local-part normalisation, duplicate
addresses, group links, destroy order), tests/src/store/registry.rs (foreign keys, ``CannotDeleteLinked``),
crates/jmap/src/registry/mapping/principal.rs (credentials), crates/jmap/src/registry/set.rs
(``map_write_error``), crates/common/src/network/security.rs (password length and strength).
"""

from __future__ import annotations

import secrets

from tests.conformance.stalwart.conftest import Stalwart


def _password() -> str:
    return f"{secrets.token_urlsafe(18)}-Tc9!"


async def test_a_user_name_is_normalised_and_its_address_is_derived(stalwart: Stalwart) -> None:
    domain, domain_id = await stalwart.domain()
    credentials = {"0": {"@type": "Password", "secret": _password()}}
    user_id = await stalwart.user(domain_id, " John Doe", description="John 'Johnny-D' Doe", credentials=credentials)
    got = await stalwart.get("Account", user_id)
    assert (got["@type"], got["name"], got["emailAddress"]) == ("User", "johndoe", f"johndoe@{domain}")
    assert got["credentials"]["0"]["secret"] == "****"
    assert got["aliases"] == {}
    assert got["memberGroupIds"] == {}
    assert got["timeZone"] is None
    assert got["memberTenantId"] is None
    found = await stalwart.call(
        "x:Account/query", {"filter": {"name": "johndoe", "domainId": domain_id, "@type": "User", "text": "johnny"}}
    )
    assert found["ids"] == [user_id]


async def test_an_invalid_local_part_is_an_invalid_patch(stalwart: Stalwart) -> None:
    _, domain_id = await stalwart.domain()
    refused = await stalwart.refused("Account", {"@type": "User", "name": "inva..lid", "domainId": domain_id})
    assert (refused["type"], refused["description"]) == ("invalidPatch", "Invalid email local part")


async def test_an_address_in_use_by_any_account_or_alias_is_a_primary_key_violation(stalwart: Stalwart) -> None:
    _, domain_id = await stalwart.domain()
    alias = {"0": {"name": "jdoe", "domainId": domain_id, "enabled": True}}
    user_id = await stalwart.user(domain_id, "johndoe", aliases=alias)
    taken = {"type": "primaryKeyViolation", "properties": ["email"], "objectId": {"object": "Account", "id": user_id}}
    for kind, name in (("User", "johndoe"), ("User", "jdoe"), ("Group", "jdoe")):
        assert await stalwart.refused("Account", {"@type": kind, "name": name, "domainId": domain_id}) == taken


async def test_an_account_without_a_domain_fails_validation(stalwart: Stalwart) -> None:
    refused = await stalwart.refused("Account", {"@type": "User", "name": "nodomain"})
    assert refused == {"type": "validationFailed", "validationErrors": [{"type": "Required", "property": "domainId"}]}


async def test_links_to_missing_or_wrong_objects_are_invalid_foreign_keys(stalwart: Stalwart) -> None:
    _, domain_id = await stalwart.domain()
    user_id = await stalwart.user(domain_id)
    # A domain id that does not exist (the user's own id is certainly not a domain).
    refused = await stalwart.refused("Account", {"@type": "User", "name": "other", "domainId": user_id})
    assert refused == {"type": "invalidForeignKey", "objectId": {"object": "Domain", "id": user_id}}
    # memberGroupIds must name groups: a user is not one.
    result = await stalwart.call("x:Account/set", {"update": {user_id: {f"memberGroupIds/{user_id}": True}}})
    assert result["notUpdated"][user_id] == {
        "type": "invalidForeignKey",
        "objectId": {"object": "Account", "id": user_id},
    }


async def test_a_group_with_members_and_a_domain_with_accounts_are_not_destroyed(stalwart: Stalwart) -> None:
    _, domain_id = await stalwart.domain()
    group_id = await stalwart.create("Account", {"@type": "Group", "name": "sales", "domainId": domain_id})
    user_id = await stalwart.user(domain_id, memberGroupIds={group_id: True})

    group = await stalwart.call("x:Account/set", {"destroy": [group_id]})
    assert group["notDestroyed"] == {
        group_id: {
            "type": "objectIsLinked",
            "objectId": {"object": "Account", "id": group_id},
            "linkedObjects": [{"object": "Account", "id": user_id}],
        }
    }
    domain = await stalwart.call("x:Domain/set", {"destroy": [domain_id]})
    error = domain["notDestroyed"][domain_id]
    assert (error["type"], error["objectId"]) == ("objectIsLinked", {"object": "Domain", "id": domain_id})
    assert error["linkedObjects"] == [{"object": "Account", "id": i} for i in (group_id, user_id)]

    # Leaving the group (a false member is dropped) frees it.
    await stalwart.call("x:Account/set", {"update": {user_id: {"memberGroupIds": {group_id: False}}}})
    assert (await stalwart.get("Account", user_id, ["memberGroupIds"]))["memberGroupIds"] == {}
    assert (await stalwart.call("x:Account/set", {"destroy": [group_id]}))["destroyed"] == [group_id]


async def test_password_rules_one_password_and_no_secondary_credentials(stalwart: Stalwart) -> None:
    _, domain_id = await stalwart.domain()
    user = {"@type": "User", "name": "pw", "domainId": domain_id}
    short = await stalwart.refused("Account", {**user, "credentials": {"0": {"@type": "Password", "secret": "abc"}}})
    assert (short["type"], short["properties"]) == ("invalidProperties", ["secret"])
    assert short["description"] == "Password must be at least 8 characters long."
    two = {str(i): {"@type": "Password", "secret": _password()} for i in range(2)}
    refused = await stalwart.refused("Account", {**user, "credentials": two})
    assert refused == {
        "type": "invalidProperties",
        "description": "Only one password credential is allowed.",
        "properties": ["credentials"],
    }
    app = {"0": {"@type": "AppPassword", "secret": _password(), "description": "mail client"}}
    refused = await stalwart.refused("Account", {**user, "credentials": app})
    assert refused == {
        "type": "invalidProperties",
        "description": "Secondary credentials cannot be set directly.",
        "properties": ["credentials"],
    }
