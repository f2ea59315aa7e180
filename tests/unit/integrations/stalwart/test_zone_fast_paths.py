"""The zone reader's shortcuts read exactly what the general path reads, and leave everything else to it.

Most of a zone Stalwart writes is one record a line, plain names and quoted TXT strings; the reader takes those
without the character loop or dnspython. Each shortcut is checked here against the general path it stands in
for, on the cases it takes and on the ones it must hand back (escapes, wildcards, long labels and names,
non-ASCII, unquoted TXT words, comments and quotes in awkward places).
"""

from __future__ import annotations

import random

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest

from tenantry.integrations.stalwart import zone
from tenantry.integrations.stalwart.zone import DnsZoneError, parse_zone_file

ORIGINS = ["example.org.", "t1.mail.example.com.", "."]

NAMES = [
    "@",
    "example.org.",
    "mail",
    "_dmarc",
    "_25._tcp.mail",
    "v1-ed25519-20260801._domainkey.example.org.",
    "UPPER.Case.Example.",
    "a" * 63 + ".example.org.",
    "a" * 64 + ".example.org.",  # a label too long: dnspython refuses it
    ".".join(["b" * 62] * 4) + ".",  # 252 characters
    ".".join(["b" * 63] * 4) + ".",  # 256 characters: too long
    ".".join(["c" * 63] * 3) + "." + "d" * 61 + ".",  # 254 characters: the longest absolute name
    ".".join(["c" * 63] * 3) + "." + "d" * 62 + ".",  # 255 characters: one too many
    "*.example.org.",
    "*",
    "a\\.b.example.org.",
    "a\\032b",
    "x..y.",
    "naïve.example.",
    "1.2.3.4",
    "-leading-hyphen",
]


def _reference_name(text: str, origin: str) -> str:
    at = dns.name.from_text(origin)
    return at.to_text() if text == "@" else dns.name.from_text(text, at).to_text()


@pytest.mark.parametrize("origin", ORIGINS)
@pytest.mark.parametrize("text", NAMES)
def test_an_owner_name_reads_as_dnspython_reads_it_or_fails_as_it_does(text: str, origin: str) -> None:
    try:
        expected: str | type[Exception] = _reference_name(text, origin)
    except (dns.exception.DNSException, ValueError) as err:
        expected = type(err)
    if isinstance(expected, str):
        assert zone._owner_name(text, dns.name.from_text(origin)) == expected
    else:
        with pytest.raises(expected):
            zone._owner_name(text, dns.name.from_text(origin))


def test_random_plain_names_read_as_dnspython_reads_them() -> None:
    rng = random.Random(20261207)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
    taken = 0
    for _ in range(2000):
        labels = ["".join(rng.choices(alphabet, k=rng.choice([1, 2, 5, 20, 62, 63]))) for _ in range(rng.randint(1, 6))]
        text = ".".join(labels) + rng.choice(["", "."])
        origin = rng.choice(ORIGINS)
        try:
            expected = _reference_name(text, origin)
        except dns.exception.DNSException:
            continue
        taken += 1
        assert zone._owner_name(text, dns.name.from_text(origin)) == expected, text
    assert taken > 500  # the generator makes mostly valid names: the comparison above ran


TXT_DATA = [
    '"v=spf1 mx -all"',
    '""',
    '"v=DKIM1; k=rsa; h=sha256; p=MIIB" "IjANBgkq"',
    '"a"\t"b"',
    '"' + "x" * 255 + '"',
    '"' + "x" * 256 + '"',  # over 255 octets: dnspython refuses it
    '"say \\"hi\\""',
    '"back\\\\slash"',
    '"\\065scaped"',
    "unquoted words",
    '"mixed" word',
    '"naïve"',
    '"' + "é" * 128 + '"',  # 128 characters, 256 octets
]


def _reference_txt(text: str) -> str:
    rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TXT, text)
    return zone._value(rdata)


@pytest.mark.parametrize("text", TXT_DATA)
def test_txt_data_reads_as_dnspython_reads_it_or_is_left_to_dnspython(text: str) -> None:
    value = zone._txt_value(text)
    if value is None:
        return  # left to dnspython (parse_zone_file then reads it the general way)
    assert value == _reference_txt(text)


def test_the_shortcut_takes_the_txt_data_stalwart_writes() -> None:
    for text in TXT_DATA[:5]:
        assert zone._txt_value(text) is not None, text
    for text in TXT_DATA[5:]:
        assert zone._txt_value(text) is None, text


LINES = [
    'example.org. IN TXT "v=spf1 mx -all"',
    'example.org. IN TXT "a; b" ; a comment',
    'example.org. IN TXT "a" ; a comment with "quotes" in it',
    'example.org. IN TXT "a" ; an odd " quote in a comment',
    "; a line of comment only",
    "   ",
    "",
    ' \tIN TXT "inherits the owner"',
    "example.org. IN MX 10 mail.example.org. ; (parenthesis in a comment)",
    'example.org. IN TXT ( "one"',
    '    "two" )',
    'x.example.org. IN TXT "spans',
    'two lines"',
    'x.example.org. IN TXT "escaped \\" quote"',
    "mail.example.org. IN A 192.0.2.1\r",
]


def test_logical_lines_are_those_of_the_character_loop() -> None:
    rng = random.Random(7)
    texts = ["\n".join(LINES[:9]), "\n".join(LINES) + "\n"]
    texts += ["\n".join(rng.sample(LINES, k=rng.randint(1, len(LINES)))) for _ in range(300)]
    for text in texts:
        try:
            expected: list[zone._Line] | type[Exception] = list(zone._characters(text, 1))
        except DnsZoneError as err:
            expected = type(err)
        if isinstance(expected, list):
            assert list(zone._logical_lines(text)) == expected, text
        else:
            with pytest.raises(expected):
                list(zone._logical_lines(text))


def test_a_zone_read_with_the_shortcuts_is_the_zone_read_without_them(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (
        'v1-ed25519._domainkey IN TXT "v=DKIM1; k=ed25519; h=sha256; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="\n'
        "v1-rsa._domainkey.example.org. 3600 IN TXT (\n"
        '    "' + "k" * 255 + '"\n'
        '    "tail" ) ; chunked\n'
        "@ IN MX 10 mail\n"
        '  IN TXT "v=spf1 mx -all"\n'
        "_imaps._tcp IN SRV 0 1 993 mail.example.org.\n"
        "*.wild IN CNAME mail\n"
        "$ORIGIN sub.example.org.\n"
        'x IN TXT "under sub" "joined"\n'
    )
    fast = parse_zone_file(text, "example.org")
    monkeypatch.setattr(zone, "_logical_lines", lambda text: zone._characters(text, 1))
    monkeypatch.setattr(zone, "_txt_value", lambda text: None)
    monkeypatch.setattr(zone, "_PLAIN_NAME", zone.re.compile(r"(?!)"))  # no name is plain: all go to dnspython
    slow = parse_zone_file(text, "example.org")
    assert fast == slow
    assert [r.name for r in fast][:3] == [
        "v1-ed25519._domainkey.example.org.",
        "v1-rsa._domainkey.example.org.",
        "example.org.",
    ]
    assert fast[1].value == "k" * 255 + "tail"
    assert fast[-1].name == "x.sub.example.org."
