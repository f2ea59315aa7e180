"""Live checks of the DNS records a tenant must publish, and of the TXT challenge that proves domain ownership."""

from __future__ import annotations

import asyncio
import hmac
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeAlias

from tenantry.domains.resolver import DnsLookup, DnsLookupError
from tenantry.domains.rules import CheckState, Verdict, evaluate, host, shown
from tenantry.hostnames import normalise_hostname
from tenantry.integrations.dns import DnsRecord, Purpose

__all__ = [
    "CHALLENGE_LABEL",
    "ChallengeResult",
    "CheckState",
    "DomainCheck",
    "RecordCheck",
    "Severity",
    "challenge_name",
    "challenge_published",
    "challenge_record",
    "check_records",
    "new_challenge_token",
    "severity",
]

CHALLENGE_LABEL = "_tenantry-challenge"
# Lookups in flight at once: a zone has about twenty records; a resolver should not see them as a burst.
MAX_CONCURRENT_LOOKUPS = 8


class Severity(StrEnum):
    """How bad a record's problem is: mail stops flowing, or deliverability and autoconfiguration suffer."""

    CRITICAL = "critical"
    WARNING = "warning"


def _utc_now() -> datetime:
    return datetime.now(tz=UTC)


@dataclass(frozen=True)
class RecordCheck:
    """One expected record against DNS: its state, how bad a problem is, what was found and what to do."""

    record: DnsRecord
    state: CheckState
    severity: Severity
    found: tuple[str, ...]
    expected: str
    message: str

    @property
    def ok(self) -> bool:
        return self.state is CheckState.OK

    def to_json(self) -> dict[str, Any]:
        return {
            "record": self.record.to_json(),
            "state": str(self.state),
            "severity": str(self.severity),
            "found": list(self.found),
            "expected": self.expected,
            "message": self.message,
        }


@dataclass(frozen=True)
class DomainCheck:
    """Every record of a domain checked at once; ``checked_at`` (UTC) is when the lookups started."""

    domain: str
    checked_at: datetime
    records: tuple[RecordCheck, ...]

    @property
    def complete(self) -> bool:
        """False when some lookup failed and those records are in state ``unknown``."""
        return all(r.state is not CheckState.UNKNOWN for r in self.records)

    @property
    def mail_flows(self) -> bool:
        """Every critical record is ok."""
        return all(r.ok for r in self.records if r.severity is Severity.CRITICAL)

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "checkedAt": self.checked_at.isoformat().replace("+00:00", "Z"),
            "complete": self.complete,
            "mailFlows": self.mail_flows,
            "records": [r.to_json() for r in self.records],
        }


def severity(record: DnsRecord, state: CheckState, domain: str) -> Severity:
    """Critical when a problem stops mail: MX; SPF at the domain itself; DKIM; a TLSA that does not match.

    Without SPF and DKIM, Gmail, Yahoo and Outlook.com reject or junk the mail; DKIM is the check that
    survives forwarding, and a wrong key fails every signature Stalwart makes. SPF at the mail host's own
    name only covers the HELO identity; a missing TLSA only means no DANE, but a wrong one makes DANE senders
    refuse delivery. Everything else (DMARC, TLS-RPT, MTA-STS, autoconfig, SRV, CAA) is a warning.
    """
    if record.purpose in {Purpose.MX, Purpose.DKIM} or record.type == "MX":
        return Severity.CRITICAL
    if record.purpose is Purpose.SPF:
        return Severity.CRITICAL if host(record.name) == host(domain) else Severity.WARNING
    if record.type == "TLSA" and state is not CheckState.MISSING:
        return Severity.CRITICAL
    return Severity.WARNING


_Answer: TypeAlias = list[str] | DnsLookupError


class _Lookups:
    """Each (name, type) asked once per check, a few at a time; a failure is kept as the answer."""

    def __init__(self, resolver: DnsLookup) -> None:
        self._resolver = resolver
        self._limit = asyncio.Semaphore(MAX_CONCURRENT_LOOKUPS)
        self.answers: dict[tuple[str, str], _Answer] = {}

    async def _one(self, key: tuple[str, str]) -> None:
        async with self._limit:
            try:
                self.answers[key] = await self._resolver.lookup(*key)
            except DnsLookupError as err:
                self.answers[key] = err

    async def fetch(self, keys: Sequence[tuple[str, str]]) -> None:
        todo = list(dict.fromkeys(k for k in keys if k not in self.answers))
        await asyncio.gather(*(self._one(k) for k in todo))


def _key(name: str, rdtype: str) -> tuple[str, str]:
    return host(name), rdtype.upper()


async def check_records(
    resolver: DnsLookup,
    domain: str,
    records: Sequence[DnsRecord],
    *,
    clock: Callable[[], datetime] = _utc_now,
) -> DomainCheck:
    """Check every expected record of ``domain`` against DNS, in order.

    A lookup that fails (timeout, SERVFAIL, REFUSED) is not ``missing``: those records come back ``unknown``
    with the resolver's error as their message, and the result is not ``complete``; nothing is raised.
    """
    checked_at = clock()
    lookups = _Lookups(resolver)
    await lookups.fetch([_key(r.name, r.type) for r in records])
    # A name with addresses instead of the expected CNAME works if they are the target's addresses.
    aliases = [r for r in records if r.type == "CNAME" and lookups.answers[_key(r.name, "CNAME")] == []]
    await lookups.fetch([_key(n, t) for r in aliases for n in (r.name, r.value) for t in ("A", "AAAA")])
    results = []
    for record in records:
        answer = lookups.answers[_key(record.name, record.type)]
        found: tuple[str, ...]
        if isinstance(answer, DnsLookupError):
            verdict, found = Verdict(CheckState.UNKNOWN, f"Could not check: {answer}"), ()
        elif record in aliases:
            verdict, found = _addresses_instead(record, lookups.answers)
        else:
            siblings = [r for r in records if _key(r.name, r.type) == _key(record.name, record.type)]
            verdict, found = evaluate(record, answer, siblings), tuple(answer)
        results.append(
            RecordCheck(
                record=record,
                state=verdict.state,
                severity=severity(record, verdict.state, domain),
                found=found,
                expected=record.value,
                message=verdict.message,
            )
        )
    return DomainCheck(domain=normalise_hostname(domain), checked_at=checked_at, records=tuple(results))


def _addresses_instead(record: DnsRecord, answers: dict[tuple[str, str], _Answer]) -> tuple[Verdict, tuple[str, ...]]:
    """The verdict for a CNAME that is not published, from the addresses at its name and at its target."""
    mine: set[str] = set()
    theirs: set[str] = set()
    for rdtype in ("A", "AAAA"):
        for owner, into in ((record.name, mine), (record.value, theirs)):
            answer = answers[_key(owner, rdtype)]
            if isinstance(answer, DnsLookupError):
                return Verdict(CheckState.UNKNOWN, f"Could not check: {answer}"), ()
            into |= {f"{rdtype} {address}" for address in answer}
    found = tuple(sorted(mine))
    if not mine:
        return Verdict(CheckState.MISSING, f"No CNAME at {record.name}. Publish: {shown(record)}"), found
    if mine == theirs:
        message = (
            f"{record.name} has the addresses of {host(record.value)} instead of a CNAME; that works until the "
            f"mail host moves. Publishing {shown(record)} keeps it right."
        )
        return Verdict(CheckState.OK, message), found
    message = (
        f"{record.name} points at other addresses ({', '.join(found)}) than {host(record.value)}. "
        f"Replace them with: {shown(record)}"
    )
    return Verdict(CheckState.WRONG, message), found


# -- the ownership challenge --------------------------------------------------------------------------------
def challenge_name(domain: str) -> str:
    """Where the ownership token is published: ``_tenantry-challenge.<domain>.`` (absolute, ASCII)."""
    return f"{CHALLENGE_LABEL}.{normalise_hostname(domain)}."


def new_challenge_token() -> str:
    """A fresh random token, 256 bits in URL-safe base64 (43 characters, safe in a TXT record)."""
    return secrets.token_urlsafe(32)


def challenge_record(domain: str, token: str, ttl: int = 300) -> DnsRecord:
    """The TXT record a tenant publishes to prove it controls ``domain``."""
    return DnsRecord(type="TXT", name=challenge_name(domain), value=token, ttl=ttl, purpose=Purpose.OTHER)


@dataclass(frozen=True)
class ChallengeResult:
    """Whether the token is published; ``values`` is what the TXT records at the challenge name hold."""

    name: str
    found: bool
    values: tuple[str, ...]
    checked_at: datetime
    message: str


async def challenge_published(
    resolver: DnsLookup, domain: str, token: str, *, clock: Callable[[], datetime] = _utc_now
) -> ChallengeResult:
    """Look for ``token`` in the TXT records at the challenge name of ``domain``.

    Raises DnsLookupError when DNS did not answer: "not found" always means DNS answered without the token,
    so a failing resolver is retried by the caller, never taken for a missing record.
    """
    if not token:
        raise ValueError("the challenge token must not be empty")
    name = challenge_name(domain)
    checked_at = clock()
    values = tuple(await resolver.lookup(name, "TXT"))
    expected = token.encode()
    found = False
    for value in values:
        # Every value is compared, in constant time, so the timing tells nothing about the token.
        found |= hmac.compare_digest(value.strip().encode(), expected)
    record = shown(challenge_record(domain, token))
    if found:
        message = f"The ownership token is published at {name}."
    elif values:
        message = f"The TXT records at {name} hold other values (an old token?). Replace them with: {record}"
    else:
        message = (
            f"No TXT record at {name} yet. Publish: {record} "
            "New records can take as long as the zone's negative-caching time to be seen."
        )
    return ChallengeResult(name=name, found=found, values=values, checked_at=checked_at, message=message)
