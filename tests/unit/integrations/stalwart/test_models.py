"""Stalwart wire models: set/list/duration encodings, variant parsing, and what create/update bodies hold."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from tenantry.integrations.stalwart.models import (
    ACCOUNTS,
    DkimManagement,
    DkimSignature,
    Domain,
    DomainCreate,
    DomainUpdate,
    EmailAlias,
    GroupAccount,
    GroupCreate,
    UserAccount,
    UserCreate,
    duration_to_ms,
    from_list_map,
    from_set_map,
    ms_to_duration,
    to_list_map,
    to_set_map,
)

SERVER_SET = {"id", "createdAt", "dnsZoneFile", "emailAddress", "usedDiskQuota", "publicKey"}


def test_set_map_round_trips_and_is_sorted() -> None:
    assert to_set_map({"b.test", "a.test"}) == {"a.test": True, "b.test": True}
    assert list(to_set_map({"b", "a"})) == ["a", "b"]
    assert from_set_map(to_set_map({"x", "y"})) == frozenset({"x", "y"})


def test_set_map_drops_false_and_null_entries_like_stalwart() -> None:
    assert from_set_map({"keep": True, "gone": False, "null": None}) == frozenset({"keep"})
    assert from_set_map(None) == frozenset()


def test_set_map_rejects_a_bare_string() -> None:
    with pytest.raises(ValueError, match="JSON object"):
        from_set_map("a.test")


def test_list_map_orders_by_numeric_key_not_text() -> None:
    encoded = {"10": "k", "2": "c", "0": "a", "1": "b"}
    assert from_list_map(encoded) == ["a", "b", "c", "k"]
    assert to_list_map(["a", "b"]) == {"0": "a", "1": "b"}
    assert from_list_map(to_list_map(["x", "y", "z"])) == ["x", "y", "z"]


def test_list_map_rejects_non_numeric_keys() -> None:
    with pytest.raises(ValueError, match="numeric keys"):
        from_list_map({"first": 1})


def test_durations_are_integer_milliseconds() -> None:
    assert duration_to_ms(timedelta(days=90)) == 7_776_000_000
    assert ms_to_duration(604_800_000) == timedelta(days=7)


def test_domain_parses_stalwart_encodings_and_ignores_unknown_properties() -> None:
    domain = Domain.model_validate(
        {
            "id": "b",
            "name": "acme.test",
            "aliases": {"alt.test": True, "old.test": False},
            "dkimManagement": {"@type": "Manual"},
            "certificateManagement": {"@type": "Manual"},
            "somethingNew": 1,
        }
    )
    assert domain.aliases == frozenset({"alt.test"})
    assert domain.dkim_management == DkimManagement(type_="Manual")
    assert domain.is_enabled is True
    assert not hasattr(domain, "somethingNew")


def test_domain_with_a_non_object_set_is_rejected() -> None:
    with pytest.raises(ValidationError):
        Domain.model_validate({"id": "b", "name": "a.test", "aliases": "alt.test"})


def test_domain_create_sends_only_what_was_given_and_no_server_set_property() -> None:
    body = DomainCreate(name="acme.test", description="Tenantry tenant acme").to_wire()
    assert body == {"name": "acme.test", "description": "Tenantry tenant acme"}
    full = DomainCreate(name="a.test", aliases={"b.test"}, is_enabled=True, dkim_management=DkimManagement()).to_wire()
    assert full == {
        "name": "a.test",
        "aliases": {"b.test": True},
        "isEnabled": True,
        "dkimManagement": {"@type": "Automatic"},
    }
    assert not SERVER_SET & (set(body) | set(full))


def test_domain_update_can_clear_the_description_and_omits_the_rest() -> None:
    assert DomainUpdate(description=None).to_wire() == {"description": None}
    assert DomainUpdate(dkim_management=DkimManagement(type_="Manual")).to_wire() == {
        "dkimManagement": {"@type": "Manual"}
    }


def test_accounts_are_parsed_into_user_or_group_by_type() -> None:
    accounts = ACCOUNTS.validate_python(
        [
            {
                "@type": "User",
                "id": "u",
                "name": "jdoe",
                "domainId": "b",
                "memberGroupIds": {"g": True},
                "aliases": {"1": {"name": "second", "domainId": "b"}, "0": {"name": "first", "domainId": "b"}},
            },
            {"@type": "Group", "id": "g", "name": "sales", "domainId": "b", "quotas": {"maxDiskQuota": 10}},
        ]
    )
    user, group = accounts
    assert isinstance(user, UserAccount)
    assert [alias.name for alias in user.aliases] == ["first", "second"]
    assert isinstance(group, GroupAccount)
    assert group.quotas == {"maxDiskQuota": 10}


def test_unknown_account_type_is_rejected() -> None:
    with pytest.raises(ValidationError):
        ACCOUNTS.validate_python([{"@type": "Robot", "id": "r", "name": "x", "domainId": "b"}])


def test_user_create_puts_the_password_in_a_password_credential_only_on_the_wire() -> None:
    user = UserCreate(
        name="jdoe",
        domain_id="b",
        password="correct horse battery",
        aliases=[EmailAlias(name="john", domain_id="b")],
        member_group_ids={"g"},
        quotas={"maxDiskQuota": 1024},
    )
    assert "correct horse" not in repr(user)
    assert user.to_wire() == {
        "@type": "User",
        "name": "jdoe",
        "domainId": "b",
        "aliases": {"0": {"name": "john", "domainId": "b", "enabled": True}},
        "memberGroupIds": {"g": True},
        "quotas": {"maxDiskQuota": 1024},
        "credentials": {"0": {"@type": "Password", "secret": "correct horse battery"}},
    }


def test_group_create_has_the_group_type() -> None:
    assert GroupCreate(name="sales", domain_id="b").to_wire() == {"@type": "Group", "name": "sales", "domainId": "b"}


def test_dkim_signature_defaults_to_active_and_reads_the_public_key() -> None:
    key = DkimSignature.model_validate(
        {"id": "k", "@type": "Dkim1RsaSha256", "domainId": "b", "selector": "v1-rsa", "publicKey": "MIIB"}
    )
    assert (key.stage, key.public_key, key.type_) == ("active", "MIIB", "Dkim1RsaSha256")
