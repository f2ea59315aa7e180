"""The loopback test DNS server answers like an authoritative server: AA, NXDOMAIN, NODATA, faults, TCP."""

from __future__ import annotations

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode

from tests.support.dns_server import DnsTestServer


async def _ask(server: DnsTestServer, name: str, rdtype: str, *, tcp: bool = False) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    send = dns.asyncquery.tcp if tcp else dns.asyncquery.udp
    return await send(query, server.host, port=server.port, timeout=1)


async def test_answers_are_authoritative_and_nonexistent_names_are_nxdomain(dns_server: DnsTestServer) -> None:
    dns_server.set("acme.test.", "MX", ["10 mx.platform.test."])
    found = await _ask(dns_server, "acme.test.", "MX")
    missing = await _ask(dns_server, "nope.acme.test.", "MX")
    nodata = await _ask(dns_server, "acme.test.", "TXT", tcp=True)
    assert found.flags & dns.flags.AA
    assert [rrset.to_text() for rrset in found.answer] == ["acme.test. 300 IN MX 10 mx.platform.test."]
    assert (missing.rcode(), bool(missing.flags & dns.flags.AA)) == (dns.rcode.NXDOMAIN, True)
    assert (nodata.rcode(), nodata.answer) == (dns.rcode.NOERROR, [])


async def test_a_cname_is_answered_for_any_type_and_not_followed(dns_server: DnsTestServer) -> None:
    dns_server.set("autoconfig.acme.test.", "CNAME", ["mail.platform.test."])
    dns_server.set("mail.platform.test.", "A", ["192.0.2.10"])
    answer = await _ask(dns_server, "autoconfig.acme.test.", "A")
    assert [rrset.to_text() for rrset in answer.answer] == ["autoconfig.acme.test. 300 IN CNAME mail.platform.test."]


async def test_faults_and_clear(dns_server: DnsTestServer) -> None:
    dns_server.set("acme.test.", "MX", ["10 mx.platform.test."])
    dns_server.fail("acme.test.", "REFUSED")
    assert (await _ask(dns_server, "acme.test.", "MX")).rcode() == dns.rcode.REFUSED
    dns_server.clear()
    assert (await _ask(dns_server, "acme.test.", "MX")).rcode() == dns.rcode.NXDOMAIN


async def test_records_can_be_deleted_by_type(dns_server: DnsTestServer) -> None:
    dns_server.set("acme.test.", "MX", ["10 mx.platform.test."])
    dns_server.set("acme.test.", "TXT", ["v=spf1 mx -all"])
    dns_server.delete("acme.test.", "MX")
    assert (await _ask(dns_server, "acme.test.", "MX")).answer == []
    dns_server.delete("acme.test.")
    assert (await _ask(dns_server, "acme.test.", "TXT")).rcode() == dns.rcode.NXDOMAIN
