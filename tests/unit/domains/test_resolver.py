"""DNS lookups through a chosen nameserver, against a real authoritative server on loopback."""

from __future__ import annotations

import socket

import pytest

from tenantry.domains.resolver import DnsLookupError, Nameserver, Resolver, parse_nameserver
from tests.support.dns_server import DnsTestServer


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.1", Nameserver("192.0.2.1", 53)),
        (" 192.0.2.1:5353 ", Nameserver("192.0.2.1", 5353)),
        ("2001:db8::1", Nameserver("2001:db8::1", 53)),
        ("[2001:db8::1]:5353", Nameserver("2001:db8::1", 5353)),
        ("[::1]", Nameserver("::1", 53)),
    ],
)
def test_nameservers_are_ip_literals_with_an_optional_port(text: str, expected: Nameserver) -> None:
    assert parse_nameserver(text) == expected


def test_a_nameserver_prints_as_it_is_written() -> None:
    assert [str(parse_nameserver(t)) for t in ("192.0.2.1", "192.0.2.1:5353", "[::1]:5353", "::1")] == [
        "192.0.2.1",
        "192.0.2.1:5353",
        "[::1]:5353",
        "[::1]",
    ]


@pytest.mark.parametrize("text", ["dns.example.com", "dns.example.com:53", "192.0.2.1:0", "192.0.2.1:dns", "[::1"])
def test_a_nameserver_that_is_not_an_address_and_port_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="nameserver"):
        parse_nameserver(text)


def test_a_resolver_needs_a_positive_timeout() -> None:
    with pytest.raises(ValueError, match="positive"):
        Resolver(["127.0.0.1"], timeout=0)


async def test_mx_answers_are_presentation_texts(dns_server: DnsTestServer, resolver: Resolver) -> None:
    dns_server.set("acme.test.", "MX", ["10 mx1.platform.test.", "20 mx2.platform.test."])
    assert sorted(await resolver.lookup("acme.test", "MX")) == ["10 mx1.platform.test.", "20 mx2.platform.test."]


async def test_txt_strings_are_joined_into_one_unquoted_text_per_record(
    dns_server: DnsTestServer, resolver: Resolver
) -> None:
    long_value = "v=DKIM1; k=rsa; p=" + "A" * 400  # stored as two character-strings
    dns_server.set("s._domainkey.acme.test.", "TXT", [long_value])
    dns_server.set("acme.test.", "TXT", ['"v=spf1 " "mx -all"', "other"])
    assert await resolver.lookup("s._domainkey.acme.test.", "TXT") == [long_value]
    assert sorted(await resolver.lookup("acme.test", "TXT")) == ["other", "v=spf1 mx -all"]


async def test_a_missing_name_or_type_is_an_empty_answer(dns_server: DnsTestServer, resolver: Resolver) -> None:
    dns_server.set("s._domainkey.acme.test.", "TXT", ["v=DKIM1; p=AAAA"])
    assert await resolver.lookup("nothing.acme.test", "TXT") == []  # NXDOMAIN
    assert await resolver.lookup("s._domainkey.acme.test", "MX") == []  # NOERROR, no data
    assert await resolver.lookup("_domainkey.acme.test", "TXT") == []  # empty non-terminal


async def test_a_cname_query_answers_the_cname_without_following_it(
    dns_server: DnsTestServer, resolver: Resolver
) -> None:
    dns_server.set("autoconfig.acme.test.", "CNAME", ["Mail.Platform.test."])
    dns_server.set("mail.platform.test.", "A", ["192.0.2.10"])
    assert await resolver.lookup("autoconfig.acme.test", "CNAME") == ["Mail.Platform.test."]
    assert [q.name for q in dns_server.queries] == ["autoconfig.acme.test."]


async def test_an_answer_too_large_for_udp_is_fetched_over_tcp(dns_server: DnsTestServer, resolver: Resolver) -> None:
    values = [f"record-{i}-" + "x" * 200 for i in range(10)]
    dns_server.set("big.acme.test.", "TXT", values)
    assert sorted(await resolver.lookup("big.acme.test", "TXT")) == sorted(values)
    assert [q.transport for q in dns_server.queries] == ["udp", "tcp"]


@pytest.mark.parametrize("rcode", ["SERVFAIL", "REFUSED"])
async def test_a_failing_nameserver_is_an_error_naming_it_and_the_answer(
    dns_server: DnsTestServer, resolver: Resolver, rcode: str
) -> None:
    dns_server.fail("_dmarc.acme.test.", rcode)
    with pytest.raises(DnsLookupError) as caught:
        await resolver.lookup("_dmarc.acme.test", "TXT")
    assert str(caught.value).startswith(f"TXT _dmarc.acme.test.: {dns_server.nameserver} answered {rcode} (")
    assert (caught.value.name, caught.value.rdtype) == ("_dmarc.acme.test.", "TXT")


@pytest.mark.slow
async def test_a_silent_nameserver_is_a_timeout_error_naming_it(dns_server: DnsTestServer, resolver: Resolver) -> None:
    dns_server.drop("acme.test.")
    with pytest.raises(DnsLookupError, match=rf"^MX acme\.test\.: no answer from {dns_server.nameserver} within"):
        await resolver.lookup("acme.test", "MX")


async def test_a_healed_name_answers_again(dns_server: DnsTestServer, resolver: Resolver) -> None:
    dns_server.set("acme.test.", "MX", ["10 mx.platform.test."])
    dns_server.fail("acme.test.")
    with pytest.raises(DnsLookupError):
        await resolver.lookup("acme.test", "MX")
    dns_server.heal("acme.test.")
    assert await resolver.lookup("acme.test", "MX") == ["10 mx.platform.test."]


async def test_a_malformed_name_is_a_value_error(resolver: Resolver) -> None:
    with pytest.raises(ValueError, match="cannot look up"):
        await resolver.lookup("a" * 64 + ".acme.test", "TXT")


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="this machine has no IPv6 loopback")
async def test_an_ipv6_nameserver_with_a_port_is_asked() -> None:
    async with DnsTestServer("::1") as server:
        server.set("acme.test.", "MX", ["10 mx.platform.test."])
        resolver = Resolver([f"[::1]:{server.port}"], timeout=0.4)
        assert await resolver.lookup("acme.test", "MX") == ["10 mx.platform.test."]
