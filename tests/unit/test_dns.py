"""DNS records: zone text parsing (with Stalwart's output as the example), classification and rendering."""

from __future__ import annotations

import pytest

from tenantry.integrations.dns import DnsRecord, classify
from tenantry.integrations.stalwart.zone import DnsZoneError, parse_zone_file
from tenantry.tenants.zone import render_zone

TLSA_HASH = "ab" * 32
STALWART_ZONE = f"""\
example.org. IN MX 10 mx1.example.org.
example.org. IN TXT "v=spf1 mx -all"
mx1.example.org. IN TXT "v=spf1 a -all"
v1-ed25519-20260801._domainkey.example.org. IN TXT "v=DKIM1; k=ed25519; h=sha256; p=MCowBQYDK2VwAyEA"
v1-rsa-20260801._domainkey.example.org. IN TXT "v=DKIM1; k=rsa; h=sha256; " "p=MIIBIjANBgkqhkiG9w0B"
_dmarc.example.org. IN TXT "v=DMARC1; p=reject; rua=mailto:postmaster@example.org"
_smtp._tls.example.org. IN TXT "v=TLSRPTv1; rua=mailto:postmaster@example.org"
mta-sts.example.org. IN CNAME mail.example.org.
_mta-sts.example.org. IN TXT "v=STSv1; id=12942536112359691423"
autoconfig.example.org. IN CNAME mail.example.org.
autodiscover.example.org. IN CNAME mail.example.org.
ua-auto-config.example.org. IN CNAME mail.example.org.
_ua-auto-config.example.org. IN TXT "v=UAAC1; a=sha256; d=abc"
_imaps._tcp.example.org. IN SRV 0 1 993 imap.example.org.
_jmap._tcp.example.org. IN SRV 0 1 443 mail.example.org.
example.org. IN CAA 0 issue "letsencrypt.org"
_25._tcp.mx1.example.org. IN TLSA 3 1 1 {TLSA_HASH}
"""


def test_stalwart_zone_parses_every_record_in_order_with_its_purpose() -> None:
    records = parse_zone_file(STALWART_ZONE, "example.org")
    assert [(r.type, r.purpose) for r in records] == [
        ("MX", "MX"),
        ("TXT", "SPF"),
        ("TXT", "SPF"),
        ("TXT", "DKIM"),
        ("TXT", "DKIM"),
        ("TXT", "DMARC"),
        ("TXT", "TLS-RPT"),
        ("CNAME", "MTA-STS"),
        ("TXT", "MTA-STS"),
        ("CNAME", "AUTOCONFIG"),
        ("CNAME", "AUTODISCOVER"),
        ("CNAME", "AUTOCONFIG"),
        ("TXT", "AUTOCONFIG"),
        ("SRV", "SRV"),
        ("SRV", "SRV"),
        ("CAA", "CAA"),
        ("TLSA", "TLSA"),
    ]
    assert records[0] == DnsRecord(type="MX", name="example.org.", value="10 mx1.example.org.", ttl=3600, purpose="MX")
    assert records[-1].value == f"3 1 1 {TLSA_HASH}"


def test_txt_split_over_several_strings_is_joined_into_one_value() -> None:
    records = parse_zone_file(STALWART_ZONE, "example.org")
    assert records[4].value == "v=DKIM1; k=rsa; h=sha256; p=MIIBIjANBgkqhkiG9w0B"


def test_default_ttl_applies_only_to_records_without_their_own() -> None:
    text = 'a.example.org. 300 IN TXT "x"\nb.example.org. IN TXT "y"\n'
    assert [r.ttl for r in parse_zone_file(text, "example.org.", default_ttl=60)] == [300, 60]


def test_directives_relative_names_continuations_and_comments_are_understood() -> None:
    text = """\
$ORIGIN example.net.
$TTL 120
@ IN MX ( 10      ; priority
          mx.example.net. )
www CNAME @ ; a comment with "quotes"
    IN TXT "owner inherited; not a comment"
"""
    records = parse_zone_file(text, "ignored.example")
    assert [(r.name, r.type, r.value, r.ttl) for r in records] == [
        ("example.net.", "MX", "10 mx.example.net.", 120),
        ("www.example.net.", "CNAME", "example.net.", 120),
        ("www.example.net.", "TXT", "owner inherited; not a comment", 120),
    ]


def test_records_outside_the_origin_are_kept() -> None:
    records = parse_zone_file('mx1.provider.net. IN TXT "v=spf1 a -all"\n', "example.org")
    assert [(r.name, r.purpose) for r in records] == [("mx1.provider.net.", "SPF")]


@pytest.mark.parametrize(
    "text",
    [
        'example.org. IN TXT "unterminated\n',
        "example.org. IN BOGUS 1\n",
        "example.org. IN\n",
        "$INCLUDE other.zone\n",
        "example.org. IN MX notanumber mx.example.org.\n",
    ],
)
def test_malformed_zone_text_raises_a_zone_error(text: str) -> None:
    with pytest.raises(DnsZoneError):
        parse_zone_file(text, "example.org")


def test_render_is_a_pasteable_fragment_with_relative_names() -> None:
    records = parse_zone_file(STALWART_ZONE, "example.org")[:2]
    assert render_zone(records, "example.org") == (
        '$ORIGIN example.org.\n$TTL 3600\n@ 3600 IN MX 10 mx1.example.org.\n@ 3600 IN TXT "v=spf1 mx -all"\n'
    )


def test_long_txt_values_are_rendered_as_strings_of_at_most_255_bytes() -> None:
    key = "p=" + "A" * 600
    record = DnsRecord(type="TXT", name="s._domainkey.example.org.", value=key, ttl=3600, purpose="DKIM")
    line = render_zone([record], "example.org").splitlines()[-1]
    strings = line.split(" IN TXT ", 1)[1].split('" "')
    assert len(strings) == 3
    assert all(len(s.strip('"')) <= 255 for s in strings)


def test_render_then_parse_round_trips() -> None:
    records = parse_zone_file(STALWART_ZONE, "example.org")
    records.append(DnsRecord(type="TXT", name="q.example.org.", value='say "hi"; \\ok', ttl=60, purpose="OTHER"))
    records.append(
        DnsRecord(type="TXT", name="long._domainkey.example.org.", value="p=" + "B" * 700, ttl=3600, purpose="DKIM")
    )
    assert parse_zone_file(render_zone(records, "example.org."), "example.org.") == records


@pytest.mark.parametrize(
    ("record_type", "name", "value", "purpose"),
    [
        ("TXT", "example.org.", "v=spf1 include:_spf.example -all", "SPF"),
        ("TXT", "example.org.", "google-site-verification=x", "OTHER"),
        ("TXT", "sel._domainkey.sub.example.org.", "v=DKIM1; p=x", "DKIM"),
        ("TXT", "_DMARC.Example.org.", "v=DMARC1; p=none", "DMARC"),
        ("SRV", "_autodiscover._tcp.example.org.", "0 1 443 mail.example.org.", "AUTODISCOVER"),
        ("A", "www.example.org.", "192.0.2.1", "OTHER"),
        ("mx", "example.org", "10 mx.example.org.", "MX"),
    ],
)
def test_classify(record_type: str, name: str, value: str, purpose: str) -> None:
    assert classify(record_type, name, value) == purpose


def test_to_json_and_from_json_round_trip() -> None:
    record = parse_zone_file(STALWART_ZONE, "example.org")[3]
    data = record.to_json()
    assert set(data) == {"type", "name", "value", "ttl", "purpose"}
    assert DnsRecord.from_json(data) == record
    assert DnsRecord.from_json({**data, "purpose": "nonsense"}).purpose == "DKIM"


def test_record_data_naming_a_relative_name_is_read_against_each_zones_own_origin() -> None:
    """Data that names only absolute names reads the same in every zone (and is read once); data naming a
    relative name never takes the origin of another zone that had the same text."""
    first = parse_zone_file("www IN CNAME mail\n@ IN MX 10 mx.provider.net.\n", "a.example")
    second = parse_zone_file("www IN CNAME mail\n@ IN MX 10 mx.provider.net.\n", "b.example")

    assert [(r.name, r.value) for r in first] == [
        ("www.a.example.", "mail.a.example."),
        ("a.example.", "10 mx.provider.net."),
    ]
    assert [(r.name, r.value) for r in second] == [
        ("www.b.example.", "mail.b.example."),
        ("b.example.", "10 mx.provider.net."),
    ]
