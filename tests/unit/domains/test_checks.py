"""Live checks of a tenant's records against a loopback DNS server holding right, missing, wrong, conflicting data."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tenantry.domains.checks import CheckState, DomainCheck, RecordCheck, Severity, check_records
from tenantry.domains.resolver import Resolver
from tenantry.integrations.dns import DnsRecord, classify
from tests.support.dns_server import DnsTestServer

DOMAIN = "acme.test"
MAIL_HOST = "mx.platform.test."
DKIM_KEY = "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE="
TLSA_HASH = "ab" * 32
NOW = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)


def _record(rdtype: str, name: str, value: str) -> DnsRecord:
    return DnsRecord(type=rdtype, name=name, value=value, ttl=3600, purpose=classify(rdtype, name, value))


MX = _record("MX", "acme.test.", f"10 {MAIL_HOST}")
SPF = _record("TXT", "acme.test.", "v=spf1 mx -all")
DKIM = _record("TXT", "202609e._domainkey.acme.test.", f"v=DKIM1; k=ed25519; h=sha256; p={DKIM_KEY}")
DMARC = _record("TXT", "_dmarc.acme.test.", "v=DMARC1; p=reject; rua=mailto:postmaster@acme.test")
TLS_RPT = _record("TXT", "_smtp._tls.acme.test.", "v=TLSRPTv1; rua=mailto:postmaster@acme.test")
MTA_STS = _record("TXT", "_mta-sts.acme.test.", "v=STSv1; id=12942536112359691423")
AUTOCONFIG = _record("CNAME", "autoconfig.acme.test.", MAIL_HOST)
IMAPS = _record("SRV", "_imaps._tcp.acme.test.", f"0 1 993 {MAIL_HOST}")
TLSA = _record("TLSA", "_25._tcp.mx.acme.test.", f"3 1 1 {TLSA_HASH}")
ZONE = [MX, SPF, DKIM, DMARC, TLS_RPT, MTA_STS, AUTOCONFIG, IMAPS, TLSA]


def publish(server: DnsTestServer, *records: DnsRecord) -> None:
    """Publish each record as the only one of its type at its name (same-name records are merged)."""
    merged: dict[tuple[str, str], list[str]] = {}
    for record in records:
        merged.setdefault((record.name, record.type), []).append(record.value)
    for (name, rdtype), values in merged.items():
        server.set(name, rdtype, values)


async def check(resolver: Resolver, *records: DnsRecord) -> DomainCheck:
    return await check_records(resolver, DOMAIN, records or ZONE, clock=lambda: NOW)


async def one(resolver: Resolver, record: DnsRecord) -> RecordCheck:
    [result] = (await check(resolver, record)).records
    return result


# -- the whole zone -----------------------------------------------------------------------------------------
async def test_a_fully_published_zone_is_ok_and_says_when_it_was_checked(
    dns_server: DnsTestServer, resolver: Resolver
) -> None:
    publish(dns_server, *ZONE)
    result = await check(resolver)
    assert [(r.record, r.state) for r in result.records] == [(r, CheckState.OK) for r in ZONE]
    assert (result.domain, result.checked_at, result.complete, result.mail_flows) == (DOMAIN, NOW, True, True)
    assert result.to_json()["checkedAt"] == "2026-09-01T12:00:00Z"


async def test_an_empty_zone_is_missing_everywhere_with_critical_mx_spf_dkim(resolver: Resolver) -> None:
    result = await check(resolver)
    assert {r.state for r in result.records} == {CheckState.MISSING}
    critical = {r.record.purpose for r in result.records if r.severity is Severity.CRITICAL}
    assert critical == {"MX", "SPF", "DKIM"}
    assert (result.complete, result.mail_flows) == (True, False)
    mx = result.records[0]
    assert (mx.found, mx.expected) == ((), f"10 {MAIL_HOST}")
    assert (
        mx.message == "No MX record at acme.test.: other servers cannot deliver mail to this domain. "
        f"Publish: acme.test. MX 10 {MAIL_HOST}"
    )


async def test_each_name_and_type_is_looked_up_once(dns_server: DnsTestServer, resolver: Resolver) -> None:
    publish(dns_server, *ZONE)
    await check(resolver, *ZONE, *ZONE)
    asked = [(q.name, q.rdtype) for q in dns_server.queries]
    assert sorted(asked) == sorted({(r.name, r.type) for r in ZONE})


async def test_the_result_serialises_for_the_api(dns_server: DnsTestServer, resolver: Resolver) -> None:
    dns_server.set("acme.test.", "MX", ["10 mx.old-provider.test."])
    body = (await check(resolver, MX)).to_json()
    assert body["records"] == [
        {
            "record": MX.to_json(),
            "state": "wrong",
            "severity": "critical",
            "found": ["10 mx.old-provider.test."],
            "expected": f"10 {MAIL_HOST}",
            "message": body["records"][0]["message"],
        }
    ]
    assert (body["domain"], body["complete"], body["mailFlows"]) == (DOMAIN, True, False)


# -- MX -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("published", "state", "says"),
    [
        ([f"10 {MAIL_HOST}"], CheckState.OK, "is published"),
        (["10 MX.Platform.TEST."], CheckState.OK, "is published"),
        ([f"20 {MAIL_HOST}"], CheckState.OK, "priority 20 instead of the suggested 10"),
        ([f"10 {MAIL_HOST}", "50 backup.other.test."], CheckState.OK, "is published"),
        (["10 mx.old-provider.test."], CheckState.WRONG, "point at mx.old-provider.test., not mx.platform.test."),
        (["0 ."], CheckState.WRONG, "accepts no mail (null MX"),
        ([f"10 {MAIL_HOST}", "5 mx.old-provider.test."], CheckState.CONFLICTING, "mx.old-provider.test. (priority 5)"),
        ([f"10 {MAIL_HOST}", "10 mx.old-provider.test."], CheckState.CONFLICTING, "larger priority number than 10"),
    ],
)
async def test_mx(
    dns_server: DnsTestServer, resolver: Resolver, published: list[str], state: CheckState, says: str
) -> None:
    dns_server.set("acme.test.", "MX", published)
    result = await one(resolver, MX)
    assert (result.state, result.severity) == (state, Severity.CRITICAL)
    assert says in result.message
    # Name compression may change the case of a name's tail (``TEST.`` after ``acme.test.``): DNS names are
    # case-insensitive.
    assert sorted(f.lower() for f in result.found) == sorted(p.lower() for p in published)


async def test_mx_with_two_expected_hosts_is_ok_when_both_are_published(
    dns_server: DnsTestServer, resolver: Resolver
) -> None:
    backup = _record("MX", "acme.test.", "20 mx2.platform.test.")
    dns_server.set("acme.test.", "MX", [f"10 {MAIL_HOST}", "20 mx2.platform.test."])
    result = await check(resolver, MX, backup)
    assert [r.state for r in result.records] == [CheckState.OK, CheckState.OK]


# -- SPF ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("published", "state", "says"),
    [
        (["v=spf1 mx -all"], CheckState.OK, "is published"),
        (["V=SPF1   MX  -ALL", "google-site-verification=abc"], CheckState.OK, "is published"),
        (["v=spf1 mx include:_spf.mailer.test ~all"], CheckState.OK, "authorises mx; its other terms differ"),
        (["google-site-verification=abc"], CheckState.MISSING, "No SPF record at acme.test."),
        (
            ["v=spf1 include:_spf.old-provider.test -all"],
            CheckState.WRONG,
            'does not authorise mx, so mail from this server fails SPF. Change it to: acme.test. TXT "v=spf1 '
            'include:_spf.old-provider.test mx -all"',
        ),
        (["v=spf1 -mx -all"], CheckState.WRONG, "does not authorise mx"),
        (
            ["v=spf1 mx -all", "v=spf1 include:_spf.old-provider.test ~all"],
            CheckState.CONFLICTING,
            "2 SPF records at acme.test.: receivers treat that as a permanent error (RFC 7208",
        ),
    ],
)
async def test_spf(
    dns_server: DnsTestServer, resolver: Resolver, published: list[str], state: CheckState, says: str
) -> None:
    dns_server.set("acme.test.", "TXT", published)
    result = await one(resolver, SPF)
    assert (result.state, result.severity) == (state, Severity.CRITICAL)
    assert says in result.message
    assert sorted(result.found) == sorted(published)


async def test_spf_of_the_mail_host_name_is_only_a_warning(resolver: Resolver) -> None:
    helo = _record("TXT", "mx.acme.test.", "v=spf1 a -all")
    result = await one(resolver, helo)
    assert (result.state, result.severity) == (CheckState.MISSING, Severity.WARNING)


# -- DKIM -----------------------------------------------------------------------------------------------------
SPLIT_KEY = f'"v=DKIM1; k=ed25519; h=sha256; p={DKIM_KEY[:20]}" "{DKIM_KEY[20:]}"'


@pytest.mark.parametrize(
    ("published", "state", "says"),
    [
        ([DKIM.value], CheckState.OK, "matches the signing key"),
        ([f"p={DKIM_KEY[:30]} {DKIM_KEY[30:]} ; k=ed25519;v=DKIM1"], CheckState.OK, "matches"),
        ([SPLIT_KEY], CheckState.OK, "matches"),
        (["some-verification=abc"], CheckState.MISSING, "No DKIM key at 202609e._domainkey.acme.test."),
        (["v=DKIM1; k=ed25519; p=MCowBQYDK2VwAyEAOLDKEY"], CheckState.WRONG, "not the key this server signs with"),
        (["v=DKIM1; k=rsa; p=" + DKIM_KEY], CheckState.WRONG, "not the key this server signs with"),
        (["v=DKIM1; p="], CheckState.WRONG, "revoked (empty p=)"),
        ([DKIM.value, "v=DKIM1; k=rsa; p=MIIBIjANOLD"], CheckState.CONFLICTING, "2 DKIM keys"),
    ],
)
async def test_dkim(
    dns_server: DnsTestServer, resolver: Resolver, published: list[str], state: CheckState, says: str
) -> None:
    dns_server.set(DKIM.name, "TXT", published)
    result = await one(resolver, DKIM)
    assert (result.state, result.severity) == (state, Severity.CRITICAL)
    assert says in result.message


# -- DMARC, TLS-RPT, MTA-STS ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("published", "state", "says"),
    [
        ([DMARC.value], CheckState.OK, "is published"),
        (["v=DMARC1;rua=mailto:postmaster@acme.test;  p=reject"], CheckState.OK, "is published"),
        (["v=DMARC1; p=none; rua=mailto:reports@dmarc.test"], CheckState.OK, "p=none (suggested: p=reject)"),
        (["v=spf1 mx -all"], CheckState.MISSING, "No v=DMARC1 record at _dmarc.acme.test."),
        (["v=DMARC1; rua=mailto:postmaster@acme.test"], CheckState.WRONG, "has no valid policy"),
        (["v=DMARC1; p=block"], CheckState.WRONG, "has no valid policy"),
        (["v=dmarc1; p=reject"], CheckState.WRONG, "version is case-sensitive"),
        ([DMARC.value, "v=DMARC1; p=none"], CheckState.CONFLICTING, "RFC 7489 section 6.6.3"),
    ],
)
async def test_dmarc(
    dns_server: DnsTestServer, resolver: Resolver, published: list[str], state: CheckState, says: str
) -> None:
    dns_server.set(DMARC.name, "TXT", published)
    result = await one(resolver, DMARC)
    assert (result.state, result.severity) == (state, Severity.WARNING)
    assert says in result.message


async def test_tls_rpt_with_its_own_report_address_is_ok_and_two_conflict(
    dns_server: DnsTestServer, resolver: Resolver
) -> None:
    dns_server.set(TLS_RPT.name, "TXT", ["v=TLSRPTv1; rua=https://reports.test/tlsrpt"])
    assert (await one(resolver, TLS_RPT)).state is CheckState.OK
    dns_server.set(TLS_RPT.name, "TXT", [TLS_RPT.value, "v=TLSRPTv1; rua=mailto:other@acme.test"])
    result = await one(resolver, TLS_RPT)
    assert (result.state, result.severity) == (CheckState.CONFLICTING, Severity.WARNING)
    assert "RFC 8460" in result.message


async def test_mta_sts_with_a_stale_policy_id_is_wrong(dns_server: DnsTestServer, resolver: Resolver) -> None:
    dns_server.set(MTA_STS.name, "TXT", ["v=STSv1; id=1"])
    result = await one(resolver, MTA_STS)
    assert (result.state, result.severity) == (CheckState.WRONG, Severity.WARNING)
    assert result.message.endswith(f'Replace it with: {MTA_STS.name} TXT "{MTA_STS.value}"')


# -- CNAME ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cname", "addresses", "state", "says"),
    [
        (["MX.platform.test"], {}, CheckState.OK, "is published"),
        (["mail.old-provider.test."], {}, CheckState.WRONG, "is an alias of mail.old-provider.test., not"),
        ([], {}, CheckState.MISSING, "No CNAME at autoconfig.acme.test."),
        ([], {"A": ["192.0.2.10"], "AAAA": ["2001:db8::10"]}, CheckState.OK, "instead of a CNAME"),
        ([], {"A": ["198.51.100.7"]}, CheckState.WRONG, "points at other addresses (A 198.51.100.7)"),
    ],
)
async def test_cname(
    dns_server: DnsTestServer,
    resolver: Resolver,
    cname: list[str],
    addresses: dict[str, list[str]],
    state: CheckState,
    says: str,
) -> None:
    dns_server.set(MAIL_HOST, "A", ["192.0.2.10"])
    dns_server.set(MAIL_HOST, "AAAA", ["2001:db8::10"])
    if cname:
        dns_server.set(AUTOCONFIG.name, "CNAME", cname)
    for rdtype, values in addresses.items():
        dns_server.set(AUTOCONFIG.name, rdtype, values)
    result = await one(resolver, AUTOCONFIG)
    assert (result.state, result.severity) == (state, Severity.WARNING)
    assert says in result.message


# -- SRV, TLSA ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("published", "state", "says"),
    [
        ([f"0 1 993 {MAIL_HOST}"], CheckState.OK, "is published"),
        ([f"5 10 993 {MAIL_HOST}"], CheckState.OK, "priority 5 instead of the suggested 0"),
        ([], CheckState.MISSING, "No SRV record at _imaps._tcp.acme.test.: clients cannot find it"),
        (["0 1 993 imap.old-provider.test."], CheckState.WRONG, "point at imap.old-provider.test."),
        ([f"0 1 143 {MAIL_HOST}"], CheckState.WRONG, "point at mx.platform.test."),
        ([f"0 1 993 {MAIL_HOST}", "0 1 993 imap.old-provider.test."], CheckState.CONFLICTING, "(priority 0)"),
    ],
)
async def test_srv(
    dns_server: DnsTestServer, resolver: Resolver, published: list[str], state: CheckState, says: str
) -> None:
    if published:
        dns_server.set(IMAPS.name, "SRV", published)
    result = await one(resolver, IMAPS)
    assert (result.state, result.severity) == (state, Severity.WARNING)
    assert says in result.message


async def test_a_tlsa_that_does_not_match_is_critical_and_a_missing_one_a_warning(
    dns_server: DnsTestServer, resolver: Resolver
) -> None:
    assert ((await one(resolver, TLSA)).state, (await one(resolver, TLSA)).severity) == (
        CheckState.MISSING,
        Severity.WARNING,
    )
    dns_server.set(TLSA.name, "TLSA", [f"3 1 1 {'cd' * 32}"])
    wrong = await one(resolver, TLSA)
    assert (wrong.state, wrong.severity) == (CheckState.WRONG, Severity.CRITICAL)
    dns_server.set(TLSA.name, "TLSA", [f"3 1 1 {'cd' * 32}", f"3 1 1 {TLSA_HASH.upper()}"])
    assert (await one(resolver, TLSA)).state is CheckState.OK


# -- lookup failures -------------------------------------------------------------------------------------------------
async def test_a_servfail_leaves_that_record_unknown_and_checks_the_rest(
    dns_server: DnsTestServer, resolver: Resolver
) -> None:
    publish(dns_server, *ZONE)
    dns_server.fail(DMARC.name)
    result = await check(resolver)
    states = {r.record: r.state for r in result.records}
    assert states.pop(DMARC) is CheckState.UNKNOWN
    assert set(states.values()) == {CheckState.OK}
    dmarc = result.records[ZONE.index(DMARC)]
    assert dmarc.found == ()
    assert dmarc.message.startswith(
        f"Could not check: TXT _dmarc.acme.test.: {dns_server.nameserver} answered SERVFAIL"
    )
    assert (result.complete, result.mail_flows) == (False, True)


@pytest.mark.slow
async def test_a_timeout_is_unknown_not_missing_and_mail_is_not_known_to_flow(
    dns_server: DnsTestServer, resolver: Resolver
) -> None:
    publish(dns_server, *ZONE)
    dns_server.drop("acme.test.")
    result = await check(resolver)
    unknown = [r.record for r in result.records if r.state is CheckState.UNKNOWN]
    assert unknown == [MX, SPF]
    assert "no answer from" in result.records[0].message
    assert (result.complete, result.mail_flows) == (False, False)


async def test_a_failing_cname_target_lookup_is_unknown(dns_server: DnsTestServer, resolver: Resolver) -> None:
    dns_server.set(AUTOCONFIG.name, "A", ["192.0.2.10"])
    dns_server.fail(MAIL_HOST)
    result = await one(resolver, AUTOCONFIG)
    assert result.state is CheckState.UNKNOWN
    assert "SERVFAIL" in result.message
