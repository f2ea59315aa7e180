"""Tenantry's zone parser reads Stalwart's ``dnsZoneFile`` exactly as Stalwart 0.16 writes it.

Stalwart builds the records in a fixed order (crates/common/src/network/dns/records.rs
``build_bind_dns_records``: DKIM, TLSA, SPF, MX, DMARC, SRV, MTA-STS, TLS-RPT, CAA, ua-auto-config,
autoconfig, autodiscover) and dns-update's ``BindSerializer`` writes one record a line, absolute names, and a
TXT value over 255 bytes as ``(`` on the record's line, each 255-byte chunk quoted on its own indented line,
then ``)`` alone.
"""

from __future__ import annotations

import pytest

from tenantry.integrations.dns import DnsRecord
from tenantry.integrations.stalwart.zone import DnsZoneError, ZoneCache, parse_zone_file

# An RSA-2048 public key as Stalwart publishes it (SubjectPublicKeyInfo, base64): 392 characters.
RSA_P = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" + "x" * 344 + "IDAQAB"
RSA_VALUE = f"v=DKIM1; k=rsa; h=sha256; p={RSA_P}"
ED_VALUE = "v=DKIM1; k=ed25519; h=sha256; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
TLSA_HASH = "ab" * 32


def _chunks(value: str) -> str:
    data = value.encode()
    return "".join(f'    "{data[i : i + 255].decode()}"\n' for i in range(0, len(data), 255))


ZONE = (
    f"v1-rsa-20260801._domainkey.example.org. IN TXT (\n{_chunks(RSA_VALUE)})\n"
    f'v1-ed25519-20260801._domainkey.example.org. IN TXT "{ED_VALUE}"\n'
    f"_25._tcp.mail.example.org. IN TLSA 3 1 1 {TLSA_HASH}\n"
    'mail.example.org. IN TXT "v=spf1 a -all"\n'
    'example.org. IN TXT "v=spf1 mx -all"\n'
    "example.org. IN MX 10 mail.example.org.\n"
    '_dmarc.example.org. IN TXT "v=DMARC1; p=reject; rua=mailto:postmaster@example.org"\n'
    "_caldavs._tcp.example.org. IN SRV 0 1 443 mail.example.org.\n"
    "_imaps._tcp.example.org. IN SRV 0 1 993 mail.example.org.\n"
    "mta-sts.example.org. IN CNAME mail.example.org.\n"
    '_mta-sts.example.org. IN TXT "v=STSv1; id=12942536112359691423"\n'
    '_smtp._tls.example.org. IN TXT "v=TLSRPTv1; rua=mailto:postmaster@example.org"\n'
    'example.org. IN CAA 0 issue "letsencrypt.org; accounturi=https://acme.example/acct/1"\n'
    'example.org. IN CAA 0 iodef "mailto:postmaster@example.org"\n'
    '_validation-persist.example.org. IN TXT "letsencrypt.org; accounturi=https://acme.example/acct/1"\n'
    "ua-auto-config.example.org. IN CNAME mail.example.org.\n"
    '_ua-auto-config.example.org. IN TXT "v=UAAC1; a=sha256; d=9X2mMgWAc10oSPuRKZSFBwPXEQpnxkS7SXPO8PC7euM="\n'
    "autoconfig.example.org. IN CNAME mail.example.org.\n"
    "autodiscover.example.org. IN CNAME mail.example.org.\n"
)


def test_the_zone_stalwart_writes_is_read_record_by_record_in_its_order() -> None:
    records = parse_zone_file(ZONE, "example.org")
    assert [(r.name, r.type, r.purpose) for r in records] == [
        ("v1-rsa-20260801._domainkey.example.org.", "TXT", "DKIM"),
        ("v1-ed25519-20260801._domainkey.example.org.", "TXT", "DKIM"),
        ("_25._tcp.mail.example.org.", "TLSA", "TLSA"),
        ("mail.example.org.", "TXT", "SPF"),
        ("example.org.", "TXT", "SPF"),
        ("example.org.", "MX", "MX"),
        ("_dmarc.example.org.", "TXT", "DMARC"),
        ("_caldavs._tcp.example.org.", "SRV", "SRV"),
        ("_imaps._tcp.example.org.", "SRV", "SRV"),
        ("mta-sts.example.org.", "CNAME", "MTA-STS"),
        ("_mta-sts.example.org.", "TXT", "MTA-STS"),
        ("_smtp._tls.example.org.", "TXT", "TLS-RPT"),
        ("example.org.", "CAA", "CAA"),
        ("example.org.", "CAA", "CAA"),
        ("_validation-persist.example.org.", "TXT", "OTHER"),
        ("ua-auto-config.example.org.", "CNAME", "AUTOCONFIG"),
        ("_ua-auto-config.example.org.", "TXT", "AUTOCONFIG"),
        ("autoconfig.example.org.", "CNAME", "AUTOCONFIG"),
        ("autodiscover.example.org.", "CNAME", "AUTODISCOVER"),
    ]
    assert all(r.ttl == 3600 for r in records)


def test_a_txt_value_split_into_parenthesised_255_byte_chunks_is_one_value_again() -> None:
    assert len(RSA_VALUE) > 255
    assert ZONE.splitlines()[:4] == [
        "v1-rsa-20260801._domainkey.example.org. IN TXT (",
        f'    "{RSA_VALUE[:255]}"',
        f'    "{RSA_VALUE[255:]}"',
        ")",
    ]
    [rsa] = [r for r in parse_zone_file(ZONE, "example.org") if r.name.startswith("v1-rsa-")]
    assert rsa.value == RSA_VALUE


def test_a_value_of_exactly_255_bytes_stays_on_one_line_and_one_of_510_makes_two_chunks() -> None:
    exact = "v=DKIM1; p=" + "A" * 244
    double = "v=DKIM1; p=" + "B" * 499
    text = f'a._domainkey.example.org. IN TXT "{exact}"\nb._domainkey.example.org. IN TXT (\n{_chunks(double)})\n'
    assert [r.value for r in parse_zone_file(text, "example.org")] == [exact, double]


def test_escaped_quotes_and_backslashes_in_a_chunk_are_read_back() -> None:
    text = 'x.example.org. IN TXT (\n    "say \\"hi\\" \\\\ there"\n    "!"\n)\n'
    [record] = parse_zone_file(text, "example.org")
    assert record.value == 'say "hi" \\ there!'


@pytest.mark.parametrize(
    "text",
    [
        'x.example.org. IN TXT (\n    "never closed"\n',
        'x.example.org. IN TXT (\n    "unterminated\n)\n',
    ],
)
def test_a_chunk_list_left_open_is_an_error_naming_the_line(text: str) -> None:
    with pytest.raises(DnsZoneError, match="line 1"):
        parse_zone_file(text, "example.org")


class CountingParser:
    """parse_zone_file, counting the texts it was given."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def __call__(self, text: str, origin: str) -> list[DnsRecord]:
        self.texts.append(text)
        return parse_zone_file(text, origin)


def test_the_cache_reads_an_unchanged_zone_once_and_a_changed_one_again() -> None:
    parser = CountingParser()
    cache = ZoneCache(parse=parser)
    changed = ZONE.replace("id=12942536112359691423", "id=1")

    first, again, other = (
        cache.records(ZONE, "example.org"),
        cache.records(ZONE, "example.org"),
        cache.records(changed, "example.org"),
    )

    assert first == again == tuple(parse_zone_file(ZONE, "example.org"))
    assert [r.value for r in other if r.name == "_mta-sts.example.org."] == ["v=STSv1; id=1"]
    assert parser.texts == [ZONE, changed]


def test_the_same_text_under_another_origin_is_read_for_that_origin() -> None:
    cache = ZoneCache()
    text = '@ IN TXT "v=spf1 mx -all"\n'
    assert [r.name for r in cache.records(text, "a.test") + cache.records(text, "b.test")] == ["a.test.", "b.test."]


def test_the_cache_is_bounded_and_forgets_the_least_recently_used_zone() -> None:
    parser = CountingParser()
    cache = ZoneCache(size=2, parse=parser)
    zones = [f'example.org. IN TXT "v=spf1 include:{n}.example -all"\n' for n in "abc"]

    cache.records(zones[0], "example.org")
    cache.records(zones[1], "example.org")
    cache.records(zones[0], "example.org")  # now the most recently used
    cache.records(zones[2], "example.org")  # evicts zones[1]
    cache.records(zones[0], "example.org")
    cache.records(zones[1], "example.org")

    assert parser.texts == [zones[0], zones[1], zones[2], zones[1]]


def test_a_zone_that_fails_to_read_is_not_kept() -> None:
    parser = CountingParser()
    cache = ZoneCache(parse=parser)
    broken = 'x.example.org. IN TXT (\n    "never closed"\n'

    for _ in range(2):
        with pytest.raises(DnsZoneError, match="line 1"):
            cache.records(broken, "example.org")

    assert parser.texts == [broken, broken]
    with pytest.raises(ValueError, match="at least one zone"):
        ZoneCache(size=0)
