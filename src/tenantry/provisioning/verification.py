"""The mail step's gate: nothing is created in Stalwart for a domain its tenant has not proven it owns.

Before the mail step runs for an unproven domain, the gate looks for the tenant's token in DNS
(``_tenantry-challenge.<domain>`` TXT). Found: the claim becomes verified (the first tenant to get there
wins; the database refuses a second verified claim to one name) and the step runs. Not found: the step is
``pending`` with ``WaitingForDomainVerification`` and is checked again with back-off, until the claim's
deadline, when it stops with ``DomainVerificationExpired``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tenantry.domains.checks import challenge_published, challenge_record
from tenantry.domains.resolver import DnsLookup, DnsLookupError
from tenantry.domains.rules import shown
from tenantry.provisioning.outcomes import Outcome
from tenantry.provisioning.repository import ProvisioningRepository
from tenantry.states import DomainStatus, StepName, StepStatus

log = structlog.get_logger("tenantry.verification")


@dataclass(frozen=True)
class ClaimSnapshot:
    """What the gate needs of a claim, read with the tenant at the start of a run."""

    id: int
    tenant_id: str
    slug: str
    domain: str
    token: str
    status: DomainStatus
    expires_at: datetime | None
    checks: int


@dataclass
class Admission:
    """``outcome`` is None when the mail step may run now; ``events`` are notes for the timeline either way."""

    outcome: Outcome | None
    events: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CheckTiming:
    base_seconds: float
    cap_seconds: float

    def after(self, checks: int) -> float:
        """Wait before the next check after ``checks`` unsuccessful ones: doubling from the base, capped."""
        return float(min(self.cap_seconds, self.base_seconds * 2.0 ** min(max(checks - 1, 0), 32)))


class DomainGate:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        lookup: DnsLookup,
        timing: CheckTiming,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self._sessionmaker = sessionmaker
        self._lookup = lookup
        self._timing = timing
        self._clock = clock

    async def admit(self, claim: ClaimSnapshot | None) -> Admission:
        if claim is None:
            return Admission(_stopped("DomainNotClaimed", "the mail domain has no ownership claim; set it again"))
        if claim.status != DomainStatus.UNVERIFIED:
            return Admission(_SETTLED[claim.status](claim))
        now = self._clock()
        async with self._sessionmaker() as session, session.begin():
            repo = ProvisioningRepository(session)
            if await repo.held_by_another(claim.domain, claim.tenant_id):
                await repo.set_claim_status(claim.id, DomainStatus.TAKEN)
                return Admission(_taken(claim), [f"{claim.domain} was proven by another workspace first"])
            if claim.expires_at is not None and now >= claim.expires_at:
                await repo.set_claim_status(claim.id, DomainStatus.EXPIRED)
                return Admission(_expired(claim), [f"proof of ownership of {claim.domain} did not come in time"])
        return await self._check(claim, now)

    async def _check(self, claim: ClaimSnapshot, now: datetime) -> Admission:
        try:
            result = await challenge_published(self._lookup, claim.domain, claim.token, clock=self._clock)
        except DnsLookupError as err:
            message = f"could not look up the ownership record of {claim.domain}: {err}"
            await self._record_check(claim, now, message)
            return Admission(Outcome(StepName.STALWART, StepStatus.ERROR, "DnsLookupFailed", message, True))
        if not result.found:
            await self._record_check(claim, now, result.message)
            wait = self._timing.after(claim.checks + 1)
            deadline = f"; proof is needed by {claim.expires_at:%Y-%m-%d %H:%M} UTC" if claim.expires_at else ""
            message = f"{result.message} Next check in {wait:g} s{deadline}."
            return Admission(
                Outcome(
                    StepName.STALWART,
                    StepStatus.PENDING,
                    "WaitingForDomainVerification",
                    message,
                    True,
                    poll_after=wait,
                )
            )
        try:
            async with self._sessionmaker() as session, session.begin():
                await ProvisioningRepository(session).verify_claim(claim.id, now)
        except IntegrityError:  # another tenant's claim to the same name was verified between our reads
            async with self._sessionmaker() as session, session.begin():
                await ProvisioningRepository(session).set_claim_status(claim.id, DomainStatus.TAKEN)
            return Admission(_taken(claim), [f"{claim.domain} was proven by another workspace first"])
        log.info("domain.verified", tenant_id=claim.tenant_id, domain=claim.domain)
        return Admission(None, [f"{claim.domain} verified: the ownership record was found in DNS"])

    async def _record_check(self, claim: ClaimSnapshot, now: datetime, message: str) -> None:
        async with self._sessionmaker() as session, session.begin():
            await ProvisioningRepository(session).record_claim_check(claim.id, now, message)


def _stopped(reason: str, message: str) -> Outcome:
    return Outcome(StepName.STALWART, StepStatus.ERROR, reason, message, False)


def _taken(claim: ClaimSnapshot) -> Outcome:
    return _stopped(
        "DomainTaken",
        f"{claim.domain} was proven by another workspace first; choose another mail domain "
        f"(PATCH /tenants/{claim.slug} with mailDomain)",
    )


def _expired(claim: ClaimSnapshot) -> Outcome:
    record = shown(challenge_record(claim.domain, claim.token))
    return _stopped(
        "DomainVerificationExpired",
        f"proof of ownership of {claim.domain} was not found in time; publish {record} and ask again "
        f"with POST /tenants/{claim.slug}/domain/verify",
    )


_SETTLED: dict[DomainStatus, Callable[[ClaimSnapshot], Outcome | None]] = {
    DomainStatus.VERIFIED: lambda _claim: None,
    DomainStatus.TAKEN: _taken,
    DomainStatus.EXPIRED: _expired,
}
