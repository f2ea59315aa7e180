"""Tenant rules: validation beyond the schema, uniqueness, visibility, and what changes the generation."""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tenantry.auth.actor import Actor
from tenantry.config import Settings
from tenantry.db.base import utcnow
from tenantry.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError, RateLimitedError
from tenantry.hostnames import normalise_hostname
from tenantry.integrations.ports import PlannedChange
from tenantry.states import STEP_ORDER, Lifecycle, StepName, TenantStatus
from tenantry.tenants.cursors import decode_created_cursor, encode_created_cursor
from tenantry.tenants.domains import DomainPolicy
from tenantry.tenants.etags import check_if_match
from tenantry.tenants.listing import ListedTenant, ShownTenant, listed_tenants, shown_tenant
from tenantry.tenants.models import IdempotencyKey, Tenant, TenantAdmin, TenantEvent, TenantStep
from tenantry.tenants.repository import TenantRepository
from tenantry.tenants.schemas import SLUG_RE, TenantCreate, TenantUpdate


class StepPlanView(Protocol):
    """One step's part of a dry-run plan, as the provisioning side answers it."""

    @property
    def step(self) -> StepName: ...
    @property
    def changes(self) -> list[PlannedChange]: ...
    @property
    def note(self) -> str: ...
    @property
    def error(self) -> str | None: ...


class Provisioner(Protocol):
    """The provisioning runner: reconciles a tenant now (handing back the tenant as the run recorded it when
    it finished within ``wait`` seconds), and says what a reconcile would change without writing anything."""

    def hand_off(self, tenant: Tenant, now: datetime) -> object:
        """Lease a tenant being created (before it is added) to the run that will follow its commit; the
        handle goes to ``reconcile_now`` as ``fresh``."""
        ...

    async def reconcile_now(self, tenant_id: str, *, force: bool, wait: float, fresh: Any = None) -> Tenant | None: ...

    async def plan(self, tenant_id: str) -> Sequence[StepPlanView] | None: ...


@dataclass(frozen=True)
class TenantList:
    """A page of tenants, how many there are in all (when counted) and the cursor of the next page."""

    items: list[ListedTenant]
    total: int | None
    next_cursor: str | None


@dataclass(frozen=True)
class Settling:
    """A change the request's unit of work will commit, and how to wait for its first reconcile afterwards.

    ``tenant`` is the staged state; ``settle()``, called only once the change is committed (the reconciler
    reads committed state), reconciles and answers with the tenant as that run left it.
    """

    tenant: Tenant
    settle: Callable[[], Awaitable[Tenant]]
    replayed: bool = False  # an Idempotency-Key retry: answered with what the first request created


class TenantService:
    """The tenant use cases. Works in the caller's unit of work (``session``): flushes, never commits.

    ``provisioner`` and ``sessions`` are needed only by the operations that wait for a reconcile after the
    commit (create, update, reconcile); that wait reads the outcome in a session of its own.
    """

    def __init__(
        self,
        session: AsyncSession,
        settings: Settings,
        *,
        provisioner: Provisioner | None = None,
        sessions: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self.session = session
        self.repo = TenantRepository(session)
        self.settings = settings
        self.domains = DomainPolicy(self.repo, settings)
        self._provisioner = provisioner
        self._sessions = sessions

    def settling(self, tenant: Tenant, *, force: bool, wait: float, fresh: object | None = None) -> Settling:
        """The change's answer, made once committed: the tenant after the reconcile this starts (``fresh``: the
        hand-off of a tenant just created, see :meth:`Provisioner.hand_off`)."""
        provisioner, sessions = self._provisioner, self._sessions
        if provisioner is None or sessions is None:
            raise RuntimeError("this TenantService was built without a provisioner; it cannot wait for a reconcile")
        tenant_id = tenant.id

        async def settle() -> Tenant:
            recorded = await provisioner.reconcile_now(tenant_id, force=force, wait=wait, fresh=fresh)
            if recorded is not None:
                return recorded  # as the run recorded it: no need to read it again
            try:
                async with sessions() as session:
                    settled = await TenantRepository(session).by_id(tenant_id)
            except PoolTimeoutError:
                # The change is committed: with no connection free to read what the reconcile made of it, the
                # answer is the change as committed, not an error that would invite the caller to repeat it.
                return tenant
            if settled is None:
                raise NotFoundError("the tenant was deleted meanwhile")
            return settled

        return Settling(tenant, settle)

    @staticmethod
    def settled(tenant: Tenant) -> Settling:
        async def settle() -> Tenant:
            return tenant

        return Settling(tenant, settle)

    async def create_and_wait(
        self, payload: TenantCreate, actor: Actor, *, idempotency_key: str | None = None
    ) -> Settling:
        """Create a workspace; once committed, reconcile it and wait for that first run (at most the
        configured wait), so the answer shows how far provisioning got.

        With an ``idempotency_key``, a retry with the same body is answered with the tenant the first
        request created (nothing is created again); the same key with another body is refused (422).
        """
        if idempotency_key is None:
            tenant, fresh = await self._add(payload, actor, hand_off=True)
            return self.settling(tenant, force=False, wait=self.settings.create_wait_seconds, fresh=fresh)
        now = utcnow()
        who = actor.sub or ""
        await self.repo.forget_idempotency_keys(before=now - timedelta(seconds=self.settings.idempotency_key_seconds))
        digest = hashlib.sha256(payload.model_dump_json(by_alias=True).encode()).hexdigest()
        seen = await self.repo.idempotency_key(who, idempotency_key)
        if seen is not None:
            if seen.request_hash != digest:
                raise InvalidInputError(
                    [{"field": "Idempotency-Key", "message": "was used before with another body; use a new key"}]
                )
            first = await self.repo.by_id(seen.tenant_id)
            if first is None:
                raise NotFoundError("the tenant this Idempotency-Key created no longer exists")
            return Settling(first, self.settled(first).settle, replayed=True)
        tenant, fresh = await self._add(payload, actor, hand_off=True)
        self.repo.session.add(
            IdempotencyKey(actor=who, key=idempotency_key, request_hash=digest, tenant_id=tenant.id, created_at=now)
        )
        try:
            await self.session.flush()
        except IntegrityError as err:  # the same key in a request running at this moment
            raise ConflictError("a request with this Idempotency-Key is in progress; retry it shortly") from err
        return self.settling(tenant, force=False, wait=self.settings.create_wait_seconds, fresh=fresh)

    async def update_and_wait(
        self, slug: str, payload: TenantUpdate, actor: Actor, *, if_match: str | None = None
    ) -> Settling:
        """Change the desired state; a change that bumps the generation is reconciled and waited for."""
        tenant = await self.get(slug, actor)
        if tenant.lifecycle == Lifecycle.DELETING or tenant.deleted_at is not None:
            raise ConflictError(f"'{slug}' is being deleted; restore it before changing it")
        check_if_match(tenant, if_match)
        before = tenant.generation
        await self.change(tenant, payload, actor)
        if tenant.generation == before:
            return self.settled(tenant)
        return self.settling(tenant, force=False, wait=self.settings.create_wait_seconds)

    async def reconcile_and_wait(self, slug: str, actor: Actor) -> Settling:
        """Run every step now, including ones stopped by a permanent error, and wait for the run."""
        tenant = await self.request_reconcile(slug, actor)
        wait = max(self.settings.create_wait_seconds, self.settings.step_timeout_seconds)
        return self.settling(tenant, force=True, wait=wait)

    async def plan(self, slug: str, actor: Actor) -> Sequence[StepPlanView]:
        """What a reconcile of the tenant would change upstream, per step; reads only."""
        tenant = await self.get(slug, actor)
        if self._provisioner is None:
            raise RuntimeError("this TenantService was built without a provisioner; it cannot plan")
        plans = await self._provisioner.plan(tenant.id)
        if plans is None:
            raise NotFoundError(f"no tenant '{slug}'")
        return plans

    async def events(self, slug: str, actor: Actor, *, limit: int, before: int | None = None) -> Sequence[TenantEvent]:
        """A page of the tenant's timeline (append-only), newest first, from before the ``before`` cursor."""
        tenant = await self.get(slug, actor)
        return await self.repo.events(tenant.id, limit=limit, before=before)

    async def new_generation_and_wait(
        self, tenant: Tenant, actor: Actor, kind: str, message: str, *, now: datetime
    ) -> Settling:
        """Record a change of the tenant's desired state made by ``actor``: a new generation, the event, and
        the reconcile to wait for once committed."""
        tenant.generation += 1
        tenant.updated_at, tenant.updated_by = now, actor.sub
        tenant.next_reconcile_at = self.worker_due(now)
        self.event(tenant, kind, message, actor, now)
        await self.session.flush()
        return self.settling(tenant, force=False, wait=self.settings.create_wait_seconds)

    def worker_due(self, now: datetime) -> datetime:
        """When workers should pick up a change the API itself reconciles at once: only after the API's
        wait, so the two do not race for the lease (if the API process dies, a worker still takes it)."""
        return now + timedelta(seconds=self.settings.create_wait_seconds)

    def default_mail_domain(self, slug: str) -> str:
        return normalise_hostname(f"{slug}.{self.settings.mail_domain_base}")

    async def create(self, payload: TenantCreate, actor: Actor) -> Tenant:
        """Store a new tenant as ``pending`` with its steps due now; raises on conflicts, writes nothing then.
        Workers take it up (:meth:`create_and_wait` reconciles it at once instead)."""
        tenant, _ = await self._add(payload, actor, hand_off=False)
        return tenant

    async def _add(self, payload: TenantCreate, actor: Actor, *, hand_off: bool) -> tuple[Tenant, object | None]:
        """:meth:`create`; with ``hand_off`` (and a provisioner) the tenant is stored leased to its first
        reconcile, which starts after the commit from the returned hand-off without reading the tenant back."""
        if not actor.is_admin and not self.settings.self_service:
            raise ForbiddenError("self-service workspace creation is disabled; ask a platform admin")
        if payload.slug in self.settings.reserved_slugs:
            raise InvalidInputError([{"field": "slug", "message": f"'{payload.slug}' is reserved"}])
        if not actor.is_admin:
            await self._within_self_service_limits(actor)
        domain = await self.domains.admissible(payload.slug, payload.mail_domain, new_slug=True)
        now = utcnow()
        new = self.domains.new_claim(payload.slug, domain, actor, verify=payload.verify, now=now)
        tenant = Tenant(
            id=str(uuid.uuid4()),
            slug=payload.slug,
            name=payload.name,
            status=TenantStatus.PENDING,
            generation=1,
            mail_domain=domain,
            quota_bytes=payload.quota_bytes or self.settings.default_quota_bytes,
            owner_sub=actor.sub,
            created_at=now,
            created_by=actor.sub,
            updated_at=now,
            updated_by=actor.sub,
            next_reconcile_at=self.worker_due(now),
            domain_claims=[new.claim],
            steps=[TenantStep.new(name, message="waiting for the first attempt", due=now) for name in STEP_ORDER],
        )
        fresh = self._provisioner.hand_off(tenant, now) if hand_off and self._provisioner is not None else None
        try:
            await self.repo.add(tenant)
        except IntegrityError as err:  # lost a race with a concurrent create of the same slug or domain
            raise ConflictError(
                f"a tenant with slug '{payload.slug}' or mail domain '{domain}' already exists"
            ) from err
        self.event(tenant, "tenant.created", f"created '{tenant.name}' with mail domain {domain}", actor, now)
        for note in new.notes:
            self.event(tenant, "tenant.domain", note, actor, now)
        return tenant, fresh

    def event(self, tenant: Tenant, kind: str, message: str, actor: Actor, at: datetime) -> None:
        self.repo.record(TenantEvent(tenant_id=tenant.id, at=at, kind=kind, actor=actor.sub, message=message))

    async def _within_self_service_limits(self, actor: Actor) -> None:
        """An ordinary user may own only so many workspaces and create only so many per window."""
        settings = self.settings
        sub = actor.sub or ""
        owned = await self.repo.owned_count(sub)
        if owned >= settings.self_service_max_tenants:
            raise ForbiddenError(
                f"limit reached: you own {owned} workspaces, the most one person may own "
                f"(TENANTRY_SELF_SERVICE_MAX_TENANTS={settings.self_service_max_tenants}); "
                "delete one or ask a platform admin"
            )
        window = timedelta(seconds=settings.self_service_window_seconds)
        now = utcnow()
        recent = await self.repo.created_since(sub, now - window)
        if len(recent) >= settings.self_service_creations:
            retry_after = max(1, math.ceil((recent[0] + window - now).total_seconds()))
            raise RateLimitedError(
                f"limit reached: you created {len(recent)} workspaces in the last "
                f"{settings.self_service_window_seconds:g} s, the most allowed "
                f"(TENANTRY_SELF_SERVICE_CREATIONS={settings.self_service_creations}); "
                f"try again in {retry_after} s",
                headers={"Retry-After": str(retry_after)},
            )

    async def get(self, slug: str, actor: Actor) -> Tenant:
        """The tenant, or NotFound also when the actor may not see it (so its existence does not leak).

        A slug no tenant can have (a NUL, any character outside the slug rules) is not looked up at all.
        """
        tenant = await self.repo.by_slug(slug) if SLUG_RE.fullmatch(slug) else None
        if tenant is None or not actor.can_manage(tenant):
            raise NotFoundError(f"no tenant '{slug}'")
        return tenant

    async def show(self, slug: str, actor: Actor) -> ShownTenant:
        """What ``get`` finds, straight from its rows (as the list is): the same answer without ORM objects."""
        rows = await self.repo.shown(slug, sub=None if actor.is_admin else actor.sub) if SLUG_RE.fullmatch(slug) else []
        shown = shown_tenant(rows)
        if shown is None or not actor.can_manage(shown):
            raise NotFoundError(f"no tenant '{slug}'")
        return shown

    async def change(self, tenant: Tenant, payload: TenantUpdate, actor: Actor) -> None:
        """Apply a PATCH to a tenant the actor may manage: a new generation when anything changed."""
        changes = payload.model_dump(exclude_unset=True, exclude_none=True, exclude={"verify"})
        changed = {k: v for k, v in changes.items() if getattr(tenant, k) != v}
        if "mail_domain" in changed:
            changed["mail_domain"] = await self._change_mail_domain(tenant, changed["mail_domain"], payload, actor)
        if changed:
            now = utcnow()
            for key, value in changed.items():
                setattr(tenant, key, value)
            tenant.generation += 1
            tenant.updated_at, tenant.updated_by = now, actor.sub
            tenant.next_reconcile_at = self.worker_due(now)
            self.event(tenant, "tenant.updated", "changed " + ", ".join(sorted(changed)), actor, now)
            try:
                await self.session.flush()
            except IntegrityError as err:  # another tenant took the domain between our check and this write
                raise ConflictError(
                    f"the mail domain '{changed.get('mail_domain')}' already belongs to another tenant"
                ) from err

    async def _change_mail_domain(self, tenant: Tenant, requested: str, payload: TenantUpdate, actor: Actor) -> str:
        """A mail domain can be corrected only until one is provisioned: moving a live domain (its mailboxes,
        DKIM keys and published DNS records) is not something to do as a side effect of a PATCH. The new
        name starts its own claim; the old claim is dropped (the platform domain stays reserved by name)."""
        mail = step_of(tenant, StepName.STALWART)
        provisioned = mail.outputs.get("domainId") if mail is not None and mail.outputs else None
        if provisioned:
            raise ConflictError(
                f"the mail domain {tenant.mail_domain} is already provisioned in Stalwart "
                f"(domain {provisioned}); it cannot be changed"
            )
        domain = await self.domains.admissible(tenant.slug, requested, tenant_id=tenant.id)
        now = utcnow()
        new = self.domains.new_claim(tenant.slug, domain, actor, verify=payload.verify, now=now)
        tenant.domain_claims[:] = [c for c in tenant.domain_claims if c.domain == domain] or [new.claim]
        for note in new.notes:
            self.event(tenant, "tenant.domain", note, actor, now)
        return domain

    async def request_reconcile(self, slug: str, actor: Actor) -> Tenant:
        tenant = await self.get(slug, actor)
        now = utcnow()
        tenant.next_reconcile_at = self.worker_due(now)
        self.event(tenant, "tenant.reconcile_requested", "reconcile requested", actor, now)
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
        self.event(tenant, "tenant.admin_added", f"{sub} may now manage this tenant", actor, now)
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
        self.event(tenant, "tenant.admin_removed", f"{sub} no longer manages this tenant", actor, now)
        await self.session.flush()

    async def list(
        self,
        actor: Actor,
        *,
        status: TenantStatus | None,
        limit: int,
        offset: int = 0,
        cursor: str | None = None,
        count: bool = False,
    ) -> TenantList:
        """A page of the tenants the actor may see, oldest first, from just after ``cursor`` (then skipping
        ``offset``); counted only when asked (``count``), since counting reads every row."""
        managed_by = None if actor.is_admin else (actor.sub or "")
        after = decode_created_cursor(cursor) if cursor is not None else None
        rows = await self.repo.listed(status=status, managed_by=managed_by, after=after, limit=limit + 1, offset=offset)
        tenants = listed_tenants(rows)
        items = tenants[:limit]
        following = encode_created_cursor(items[-1].created_at, items[-1].id) if len(tenants) > limit else None
        total = await self.repo.count(status=status, managed_by=managed_by) if count else None
        return TenantList(items, total, following)


def step_of(tenant: Tenant, name: StepName) -> TenantStep | None:
    return next((s for s in tenant.steps if s.step == name), None)
