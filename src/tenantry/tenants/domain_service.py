"""Mail domain use cases: the ownership claim, live DNS checks, and switching domains by plan and apply."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from tenantry.auth.actor import Actor
from tenantry.db.base import utcnow
from tenantry.domains.checks import challenge_published, challenge_record, check_records
from tenantry.domains.resolver import DnsLookup, DnsLookupError
from tenantry.errors import ConflictError, NotFoundError
from tenantry.integrations.dns import DnsRecord
from tenantry.states import DomainProof, DomainStatus, StepName, StepStatus
from tenantry.tenants.models import DomainClaim, Tenant
from tenantry.tenants.service import Settling, TenantService, step_of

DNS_RECORDS = "dnsRecords"  # where the mail step keeps the records to publish, in its step data
DOMAIN_ID = "domainId"  # the Stalwart domain the mail step owns


@dataclass(frozen=True)
class TenantDns:
    """The records to publish (as the mail step stored them), the ownership challenge while the domain is
    unproven, and the last live check of them (``check``, as stored, or None if never checked)."""

    domain: str
    status: StepStatus
    records: list[DnsRecord]
    challenge: DnsRecord | None
    check: dict[str, Any] | None


@dataclass(frozen=True)
class DomainPlan:
    """What switching the tenant's mail domain to ``target`` would do, and what stands in the way."""

    current: str
    target: str
    claim: DomainClaim
    blockers: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return not self.blockers


class TenantDomains:
    """Works in the tenant service's unit of work, with a DNS resolver for proofs and checks."""

    def __init__(self, tenants: TenantService, lookup: DnsLookup) -> None:
        self._tenants = tenants
        self._lookup = lookup

    async def claim(self, slug: str, actor: Actor) -> DomainClaim:
        """The tenant's claim to its mail domain."""
        return current_claim(await self._tenants.get(slug, actor))

    async def dns(self, slug: str, actor: Actor, *, check_now: bool = False) -> TenantDns:
        """The DNS records to publish for the tenant's mail domain, as the mail step last stored them; with
        ``check_now``, each is looked up in DNS first and the result stored with when it was taken."""
        tenant = await self._tenants.get(slug, actor)
        step = step_of(tenant, StepName.STALWART)
        raw = (step.data or {}).get(DNS_RECORDS, []) if step is not None else []
        records = [DnsRecord.from_json(record) for record in raw]
        claim = tenant.claim_for(tenant.mail_domain)
        if check_now and claim is not None:
            checked = await check_records(self._lookup, tenant.mail_domain, records)
            claim.dns_check, claim.dns_checked_at = checked.to_json(), checked.checked_at
            await self._tenants.session.flush()
        unproven = claim is not None and claim.status != DomainStatus.VERIFIED
        return TenantDns(
            domain=tenant.mail_domain,
            status=step.status if step is not None else StepStatus.PENDING,
            records=records,
            challenge=challenge_record(claim.domain, claim.token) if claim is not None and unproven else None,
            check=claim.dns_check if claim is not None else None,
        )

    async def verify_and_wait(self, slug: str, actor: Actor) -> Settling:
        """Look for the ownership record now (and create the domain in Stalwart once it is found). An expired
        claim starts a new verification period with the same token."""
        tenants = self._tenants
        tenant = await tenants.get(slug, actor)
        claim = current_claim(tenant)
        if claim.status == DomainStatus.TAKEN:
            raise ConflictError(
                f"{claim.domain} was proven by another workspace first; choose another mail domain with PATCH"
            )
        now = utcnow()
        if claim.status == DomainStatus.EXPIRED:
            claim.status = DomainStatus.UNVERIFIED
            claim.expires_at = now + timedelta(seconds=tenants.settings.domain_verify_timeout_seconds)
            tenants.event(tenant, "tenant.domain", f"verification of {claim.domain} started again", actor, now)
        tenant.next_reconcile_at = tenants.worker_due(now)
        await tenants.session.flush()
        wait = max(tenants.settings.create_wait_seconds, tenants.settings.step_timeout_seconds)
        return tenants.settling(tenant, force=True, wait=wait)

    # -- switching domains ------------------------------------------------------------------------------
    async def plan(self, slug: str, target: str, actor: Actor) -> DomainPlan:
        """What a switch to ``target`` would do. The target gets a claim (and a token to publish) if it has
        none, and its proof is looked up now: a plan is always a fresh look."""
        tenants = self._tenants
        tenant = await tenants.get(slug, actor)
        domain = await tenants.domains.admissible(tenant.slug, target, tenant_id=tenant.id)
        now = utcnow()
        claim = tenant.claim_for(domain)
        if claim is None:
            new = tenants.domains.new_claim(tenant.slug, domain, actor, verify=None, now=now)
            claim = new.claim
            tenant.domain_claims.append(claim)
            for note in new.notes:
                tenants.event(tenant, "tenant.domain", note, actor, now)
            await tenants.session.flush()
        if claim.status in (DomainStatus.UNVERIFIED, DomainStatus.EXPIRED):
            await self._check_proof(tenant, claim, actor)
        return _plan(tenant, claim)

    async def apply_and_wait(self, slug: str, target: str, actor: Actor) -> Settling:
        """Switch to ``target`` as planned; 409 naming what stands in the way when the plan is not ready."""
        tenants = self._tenants
        plan = await self.plan(slug, target, actor)
        if not plan.ready:
            raise ConflictError({"message": "the domain switch cannot be applied yet", "blockers": plan.blockers})
        tenant = await tenants.get(slug, actor)
        now = utcnow()
        previous = current_claim(tenant)
        if _provisioned(tenant):
            previous.replaced_at = now  # stays an alias in Stalwart until released
        else:
            tenant.domain_claims.remove(previous)  # nothing was created under the old name
        plan.claim.replaced_at = None
        tenant.mail_domain = plan.target
        message = f"mail domain switched from {plan.current} to {plan.target}"
        return await tenants.new_generation_and_wait(tenant, actor, "tenant.domain", message, now=now)

    async def release_and_wait(self, slug: str, name: str, actor: Actor) -> Settling:
        """Stop keeping an earlier mail domain as an alias: Stalwart drops it, and the name is free again."""
        tenants = self._tenants
        tenant = await tenants.get(slug, actor)
        claim = tenant.claim_for(name)
        if claim is None or name not in tenant.mail_aliases:
            raise NotFoundError(f"{name} is not an alias of '{slug}'")
        tenant.domain_claims.remove(claim)
        message = f"{name} is no longer kept as an alias"
        return await tenants.new_generation_and_wait(tenant, actor, "tenant.domain", message, now=utcnow())

    async def _check_proof(self, tenant: Tenant, claim: DomainClaim, actor: Actor) -> None:
        now = utcnow()
        try:
            result = await challenge_published(self._lookup, claim.domain, claim.token)
        except DnsLookupError as err:
            claim.check_message = f"could not look up the ownership record: {err}"
            return
        claim.checks += 1
        claim.checked_at, claim.check_message = now, result.message
        if not result.found:
            return
        claim.status, claim.proof, claim.verified_domain = DomainStatus.VERIFIED, DomainProof.DNS, claim.domain
        claim.verified_at = now
        try:
            await self._tenants.session.flush()
        except IntegrityError as err:  # another tenant proved the name between our reads
            raise ConflictError(f"{claim.domain} was proven by another workspace first") from err
        self._tenants.event(tenant, "tenant.domain", f"{claim.domain} verified for a domain switch", actor, now)


def current_claim(tenant: Tenant) -> DomainClaim:
    claim = tenant.claim_for(tenant.mail_domain)
    if claim is None:
        raise NotFoundError(f"'{tenant.slug}' has no claim to its mail domain {tenant.mail_domain}")
    return claim


def _provisioned(tenant: Tenant) -> bool:
    mail = step_of(tenant, StepName.STALWART)
    return bool(mail is not None and (mail.outputs or {}).get(DOMAIN_ID))


def _plan(tenant: Tenant, claim: DomainClaim) -> DomainPlan:
    current, target = tenant.mail_domain, claim.domain
    plan = DomainPlan(current=current, target=target, claim=claim)
    if target == current:
        plan.blockers.append(f"{target} is already the mail domain")
        return plan
    if claim.status != DomainStatus.VERIFIED:
        record = challenge_record(claim.domain, claim.token)
        plan.blockers.append(
            f'{target} is not proven yet ({claim.status}): publish TXT {record.name} "{record.value}" and plan again'
        )
    if _provisioned(tenant):
        plan.actions.extend(
            [
                f"rename the Stalwart domain {current} to {target}: mailboxes, DKIM keys and settings move with it",
                f"keep {current} as an alias so mail sent to it still arrives, until you release it "
                f"(DELETE /tenants/{tenant.slug}/domain/aliases/{current})",
                f"publish the DNS records of {target} (GET /tenants/{tenant.slug}/dns once applied)",
            ]
        )
    else:
        plan.actions.append(f"provision {target} in Stalwart instead of {current} (nothing exists under it yet)")
    return plan
