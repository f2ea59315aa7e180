"""Tenant rules: validation beyond the schema, uniqueness, visibility, and what changes the generation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.config import Settings
from tenantry.db.base import utcnow
from tenantry.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from tenantry.hostnames import normalise_hostname
from tenantry.provisioning.steps import STEP_ORDER
from tenantry.tenants.models import Tenant, TenantAdmin, TenantEvent, TenantStep
from tenantry.tenants.repository import TenantRepository
from tenantry.tenants.schemas import TenantCreate, TenantUpdate


@dataclass(frozen=True)
class Actor:
    """Who is asking: the token's ``sub`` and whether they are a platform admin."""

    sub: str | None
    is_admin: bool

    def can_manage(self, tenant: Tenant) -> bool:
        return self.is_admin or (self.sub is not None and tenant.is_managed_by(self.sub))


SYSTEM = Actor(sub=None, is_admin=True)


class TenantService:
    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.session = session
        self.repo = TenantRepository(session)
        self.settings = settings

    def _worker_due(self, now: datetime) -> datetime:
        """When workers should pick up a change the API itself reconciles at once: only after the API's
        wait, so the two do not race for the lease (if the API process dies, a worker still takes it)."""
        return now + timedelta(seconds=self.settings.create_wait_seconds)

    def default_mail_domain(self, slug: str) -> str:
        return normalise_hostname(f"{slug}.{self.settings.mail_domain_base}")

    async def create(self, payload: TenantCreate, actor: Actor) -> Tenant:
        """Store a new tenant as ``pending`` with its steps due now; raises on conflicts, writes nothing then."""
        if not actor.is_admin and not self.settings.self_service:
            raise ForbiddenError("self-service workspace creation is disabled; ask a platform admin")
        if payload.slug in self.settings.reserved_slugs:
            raise InvalidInputError([{"field": "slug", "message": f"'{payload.slug}' is reserved"}])
        try:
            domain = payload.mail_domain or self.default_mail_domain(payload.slug)
        except ValueError as err:  # the slug is valid, but <slug>.<base> is not a usable domain name
            raise InvalidInputError([{"field": "slug", "message": f"gives no valid mail domain: {err}"}]) from err
        if await self.repo.slug_taken(payload.slug):
            raise ConflictError(f"a tenant with slug '{payload.slug}' already exists")
        if await self.repo.domain_taken(domain):
            raise ConflictError(f"the mail domain '{domain}' already belongs to another tenant")
        now = utcnow()
        tenant = Tenant(
            id=str(uuid.uuid4()),
            slug=payload.slug,
            name=payload.name,
            status="pending",
            generation=1,
            mail_domain=domain,
            quota_bytes=payload.quota_bytes or self.settings.default_quota_bytes,
            owner_sub=actor.sub,
            created_at=now,
            created_by=actor.sub,
            updated_at=now,
            updated_by=actor.sub,
            next_reconcile_at=self._worker_due(now),
            steps=[
                TenantStep(
                    step=name,
                    status="pending",
                    reason="Created",
                    message="waiting for the first attempt",
                    retryable=True,
                    attempts=0,
                    observed_generation=0,
                    outputs={},
                    data={},
                    next_attempt_at=now,
                    last_transition_at=now,
                )
                for name in STEP_ORDER
            ],
        )
        try:
            await self.repo.add(tenant)
        except IntegrityError as err:  # lost a race with a concurrent create of the same slug or domain
            await self.session.rollback()
            raise ConflictError(
                f"a tenant with slug '{payload.slug}' or mail domain '{domain}' already exists"
            ) from err
        self.repo.record(
            TenantEvent(
                tenant_id=tenant.id,
                at=now,
                kind="tenant.created",
                actor=actor.sub,
                message=f"created '{tenant.name}' with mail domain {domain}",
            )
        )
        return tenant

    async def get(self, slug: str, actor: Actor) -> Tenant:
        """The tenant, or NotFound also when the actor may not see it (so its existence does not leak)."""
        tenant = await self.repo.by_slug(slug)
        if tenant is None or not actor.can_manage(tenant):
            raise NotFoundError(f"no tenant '{slug}'")
        return tenant

    async def update(self, slug: str, payload: TenantUpdate, actor: Actor) -> Tenant:
        tenant = await self.get(slug, actor)
        changes = payload.model_dump(exclude_unset=True, exclude_none=True)
        changed = {k: v for k, v in changes.items() if getattr(tenant, k) != v}
        if "mail_domain" in changed:
            await self._check_mail_domain_change(tenant, changed["mail_domain"])
        if changed:
            now = utcnow()
            for key, value in changed.items():
                setattr(tenant, key, value)
            tenant.generation += 1
            tenant.updated_at, tenant.updated_by = now, actor.sub
            tenant.next_reconcile_at = self._worker_due(now)
            self.repo.record(
                TenantEvent(
                    tenant_id=tenant.id,
                    at=now,
                    kind="tenant.updated",
                    actor=actor.sub,
                    message="changed " + ", ".join(sorted(changed)),
                )
            )
            try:
                await self.session.flush()
            except IntegrityError as err:  # another tenant took the domain between our check and this write
                await self.session.rollback()
                raise ConflictError(
                    f"the mail domain '{changed.get('mail_domain')}' already belongs to another tenant"
                ) from err
        return tenant

    async def _check_mail_domain_change(self, tenant: Tenant, domain: str) -> None:
        """A mail domain can be corrected only until one is provisioned: moving a live domain (its mailboxes,
        DKIM keys and published DNS records) is not something to do as a side effect of a PATCH."""
        mail = next((s for s in tenant.steps if s.step == "stalwart"), None)
        provisioned = mail.outputs.get("domainId") if mail is not None and mail.outputs else None
        if provisioned:
            raise ConflictError(
                f"the mail domain {tenant.mail_domain} is already provisioned in Stalwart "
                f"(domain {provisioned}); it cannot be changed"
            )
        if await self.repo.domain_taken(domain):
            raise ConflictError(f"the mail domain '{domain}' already belongs to another tenant")

    async def request_reconcile(self, slug: str, actor: Actor) -> Tenant:
        tenant = await self.get(slug, actor)
        now = utcnow()
        tenant.next_reconcile_at = self._worker_due(now)
        self.repo.record(
            TenantEvent(
                tenant_id=tenant.id,
                at=now,
                kind="tenant.reconcile_requested",
                actor=actor.sub,
                message="reconcile requested",
            )
        )
        await self.session.flush()
        return tenant

    async def add_admin(self, slug: str, sub: str, actor: Actor) -> tuple[Tenant, bool]:
        """Make ``sub`` an admin of the tenant; returns whether that changed anything."""
        tenant = await self.get(slug, actor)
        if tenant.owner_sub == sub or any(admin.sub == sub for admin in tenant.admins):
            return tenant, False
        now = utcnow()
        tenant.admins.append(TenantAdmin(sub=sub, added_at=now, added_by=actor.sub))
        tenant.updated_at, tenant.updated_by = now, actor.sub
        self.repo.record(
            TenantEvent(
                tenant_id=tenant.id,
                at=now,
                kind="tenant.admin_added",
                actor=actor.sub,
                message=f"{sub} may now manage this tenant",
            )
        )
        await self.session.flush()
        return tenant, True

    async def remove_admin(self, slug: str, sub: str, actor: Actor) -> None:
        tenant = await self.get(slug, actor)
        if tenant.owner_sub == sub:
            raise ConflictError("the owner is not an admin entry and cannot be removed")
        admin = next((a for a in tenant.admins if a.sub == sub), None)
        if admin is None:
            raise NotFoundError(f"{sub} is not an admin of '{slug}'")
        now = utcnow()
        tenant.admins.remove(admin)
        tenant.updated_at, tenant.updated_by = now, actor.sub
        self.repo.record(
            TenantEvent(
                tenant_id=tenant.id,
                at=now,
                kind="tenant.admin_removed",
                actor=actor.sub,
                message=f"{sub} no longer manages this tenant",
            )
        )
        await self.session.flush()

    async def list(self, actor: Actor, *, status: str | None, limit: int, offset: int) -> tuple[list[Tenant], int]:
        managed_by = None if actor.is_admin else (actor.sub or "")
        rows, total = await self.repo.page(status=status, managed_by=managed_by, limit=limit, offset=offset)
        return list(rows), total
