"""Which mail domain a tenant may claim, and the claim (with its proof) a tenant starts with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tenantry.auth.actor import Actor
from tenantry.config import Settings
from tenantry.domains.checks import new_challenge_token
from tenantry.domains.names import validate_mail_domain
from tenantry.errors import ConflictError, ForbiddenError, InvalidInputError
from tenantry.hostnames import normalise_hostname
from tenantry.states import DomainProof, DomainStatus
from tenantry.tenants.models import DomainClaim
from tenantry.tenants.repository import TenantRepository


def _invalid(field: str, message: str) -> InvalidInputError:
    return InvalidInputError([{"field": field, "message": message}])


@dataclass(frozen=True)
class NewClaim:
    claim: DomainClaim
    notes: list[str]


class DomainPolicy:
    """The platform namespace, the public-suffix rules and who already holds a name.

    - ``<slug>.<base>`` belongs to the tenant ``slug`` alone and needs no proof; the base itself and every
      other name under it belong to the platform.
    - Any other name must be one Stalwart accepts (under a public suffix, not a suffix itself), must not be
      held by another tenant, nor lie under a name another tenant holds, and must be proven by DNS unless a
      platform admin waives the proof.
    """

    def __init__(self, repo: TenantRepository, settings: Settings) -> None:
        self._repo = repo
        self._settings = settings

    @property
    def base(self) -> str:
        return self._settings.mail_domain_base

    def platform_domain(self, slug: str) -> str:
        try:
            return validate_mail_domain(normalise_hostname(f"{slug}.{self.base}"))
        except ValueError as err:  # the slug is valid, but <slug>.<base> is not a usable domain name
            raise _invalid("slug", f"gives no valid mail domain: {err}") from err

    async def admissible(
        self,
        slug: str,
        requested: str | None,
        *,
        tenant_id: str | None = None,
        field: str = "mailDomain",
        new_slug: bool = False,
    ) -> str:
        """The domain the tenant ``slug`` (``tenant_id`` once it exists) would use; 422 for a name it may not
        claim, 409 for one another tenant holds. ``new_slug``: the tenant is being created, so its slug must
        be free too (409 otherwise), which is looked up in the same round trip as the domain."""
        platform = self.platform_domain(slug)
        problem: InvalidInputError | None = None
        domain = platform
        if requested is not None:
            try:
                domain = validate_mail_domain(requested)
            except ValueError as err:
                problem = _invalid(field, str(err))
        if problem is None and domain != platform and (domain == self.base or domain.endswith("." + self.base)):
            owner = domain.removesuffix("." + self.base).rsplit(".", 1)[-1] if domain != self.base else None
            whose = f"the workspace '{owner}'" if owner else "the platform"
            problem = _invalid(
                field,
                f"{domain} is in the platform's namespace ({self.base}) and belongs to {whose}; "
                f"this workspace's own platform domain is {platform}, or use a domain you own",
            )
        labels = domain.split(".")
        parents = [".".join(labels[i:]) for i in range(1, len(labels) - 1)]
        names = [] if problem is not None else [domain, *parents]
        # A taken slug is told first, also when the domain is wrong too: it is the first thing to change.
        held = await self._repo.holders(names, slug=slug if new_slug else None) if names or new_slug else None
        if held is not None and held.slug_taken:
            raise ConflictError(f"a tenant with slug '{slug}' already exists")
        if problem is not None:
            raise problem
        assert held is not None  # names is not empty without a problem
        above = next((name for name in parents if held.claims.get(name, tenant_id) != tenant_id), None)
        if above is not None:
            raise _invalid(field, f"{domain} is under {above}, which another workspace has proven it owns")
        if held.claims.get(domain, tenant_id) != tenant_id:
            raise ConflictError(f"the mail domain '{domain}' already belongs to another workspace")
        return domain

    def new_claim(self, slug: str, domain: str, actor: Actor, *, verify: bool | None, now: datetime) -> NewClaim:
        """The claim a tenant starts with: proven by the platform for its own subdomain, waived by an admin
        who says ``verify: false``, otherwise waiting for the DNS challenge."""
        if verify is False and not actor.is_admin:
            raise ForbiddenError('only platform admins may skip the domain ownership check ("verify": false)')
        claim = DomainClaim(
            domain=domain, status=DomainStatus.UNVERIFIED, token=new_challenge_token(), created_at=now, checks=0
        )
        notes: list[str] = []
        if domain == self.platform_domain(slug):
            self._verified(claim, DomainProof.PLATFORM, now, by=None)
        elif verify is False:
            self._verified(claim, DomainProof.ADMIN, now, by=actor.sub)
            notes.append(f"ownership check of {domain} skipped by platform admin {actor.sub or 'system'}")
        else:
            claim.expires_at = now + timedelta(seconds=self._settings.domain_verify_timeout_seconds)
            notes.append(f"{domain} waits for proof of ownership: a TXT record at _tenantry-challenge.{domain}")
        return NewClaim(claim, notes)

    @staticmethod
    def _verified(claim: DomainClaim, proof: DomainProof, now: datetime, *, by: str | None) -> None:
        claim.status, claim.proof, claim.verified_domain = DomainStatus.VERIFIED, proof, claim.domain
        claim.verified_at, claim.verified_by = now, by
