"""Which mail domains a tenant may use: public-suffix rules, the four special-use TLDs, IDN normalisation."""

from __future__ import annotations

import pytest

from tenantry.domains.names import public_suffix, registrable_domain, validate_mail_domain


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("example.com", "example.com"),
        ("Mail.Example.COM.", "mail.example.com"),
        ("mail.acme.test", "mail.acme.test"),
        ("x.localhost", "x.localhost"),
        ("printer.office.local", "printer.office.local"),
        ("corp.internal", "corp.internal"),
        ("acme.co.uk", "acme.co.uk"),
        ("alice.github.io", "alice.github.io"),
        ("city.kobe.jp", "city.kobe.jp"),
        ("Mail.Bücher.de", "mail.xn--bcher-kva.de"),
        ("straß6.de", "xn--stra6-oqa.de"),
        ("例子.com", "xn--fsqu00a.com"),
        ("xn--fsqu00a.com", "xn--fsqu00a.com"),
    ],
)
def test_usable_mail_domains_are_accepted_in_ascii_lowercase(name: str, expected: str) -> None:
    assert validate_mail_domain(name) == expected


@pytest.mark.parametrize("name", ["com", "co.uk", "CO.UK.", "github.io", "kobe.jp", "xn--55qx5d.cn", "中国"])
def test_a_public_suffix_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match=r"public suffix|fully qualified"):
        validate_mail_domain(name)


def test_the_public_suffix_message_says_what_to_use_instead() -> None:
    with pytest.raises(ValueError, match=r"^co\.uk is a public suffix.*such as example\.co\.uk"):
        validate_mail_domain("co.uk")


@pytest.mark.parametrize("name", ["mail.notarealtld", "acme.example", "acme.invalid", "host.lan", "x.za"])
def test_a_name_under_no_known_suffix_is_refused_naming_the_tld(name: str) -> None:
    tld = name.rsplit(".", 1)[-1]
    with pytest.raises(ValueError, match=rf"'{tld}' is not on the public-suffix list.*\.test"):
        validate_mail_domain(name)


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("", "must not be empty"),
        ("localhost", "fully qualified"),
        ("exa mple.com", "not a valid domain name"),
        ("-acme.com", "not a valid domain name|labels"),
        ("acme.123", "not a number"),
    ],
)
def test_a_malformed_name_is_refused_with_the_reason(name: str, says: str) -> None:
    with pytest.raises(ValueError, match=rf"is not a usable mail domain: it .*({says})"):
        validate_mail_domain(name)


@pytest.mark.parametrize(
    ("name", "registrable"),
    [
        ("mail.acme.co.uk", "acme.co.uk"),
        ("acme.com", "acme.com"),
        ("a.b.alice.github.io", "alice.github.io"),
        ("deep.mail.acme.test", "acme.test"),
        ("Mail.Bücher.de.", "xn--bcher-kva.de"),
        ("co.uk", None),
        ("mail.notarealtld", None),
    ],
)
def test_registrable_domain_is_the_part_one_owner_registers(name: str, registrable: str | None) -> None:
    assert registrable_domain(name) == registrable


def test_public_suffix_knows_both_sections_of_the_list_and_the_special_tlds() -> None:
    assert public_suffix("mail.acme.co.uk") == "co.uk"
    assert public_suffix("alice.github.io") == "github.io"
    assert public_suffix("x.localhost") == "localhost"
    assert public_suffix("mail.notarealtld") is None
