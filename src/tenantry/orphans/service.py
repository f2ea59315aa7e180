"""Orphan rules: which marked upstream objects no tenant holds, adopting one into a tenant, deleting one.

An object is an orphan when it carries Tenantry's marker (or, for a default mail domain, its name) and no live
tenant stores its id, and either no live tenant is the one it names (the row is gone, after a restore from an
older backup; or the tenant was purged) or the tenant it names holds another object on that upstream (a
duplicate). An object named for a live tenant that stores nothing there yet is not one: that tenant's next
reconcile adopts it by its marker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from tenantry.auth.actor import Actor
from tenantry.db.base import utcnow
from tenantry.errors import ConflictError, ForbiddenError, NotFoundError, UnavailableError
from tenantry.integrations.errors import PermanentStepError, StepError
from tenantry.integrations.ports import ADOPT, MarkedObject, StepResult
from tenantry.orphans.repository import OrphanRepository
from tenantry.states import Lifecycle, StepName
from tenantry.tenants.models import Tenant, TenantEvent
from tenantry.tenants.service import Settling, TenantService

log = structlog.get_logger("tenantry.orphans")

LEASE_WAIT_SECONDS = 10.0  # the longest an adoption waits for a running reconcile of its tenant


class SurveyView(Protocol):
    """One upstream's marked objects, as the provisioning side lists them, or why it could not."""

    @property
    def step(self) -> StepName: ...
    @property
    def configured(self) -> bool: ...
    @property
    def objects(self) -> Sequence[MarkedObject]: ...
    @property
    def error(self) -> str | None: ...


class Upstreams(Protocol):
    """The upstreams as the provisioning side reaches them: every object marked as a tenant's, and deleting one
    by the adapter's teardown path (which checks the marker again)."""

    async def survey(self, only: StepName | None = None) -> Sequence[SurveyView]: ...

    async def discard(self, step: StepName, obj: MarkedObject) -> StepResult: ...


@dataclass(frozen=True)
class TenantRef:
    id: str
    slug: str
    live: bool


@dataclass(frozen=True)
class Orphan:
    """A marked object no tenant holds; ``tenant`` is the tenant it concerns (the one its marker names, live
    or purged, or the live one its name suggests), if there is one."""

    upstream: StepName
    object: MarkedObject
    reason: str
    tenant: TenantRef | None = None

    @property
    def suggested_slug(self) -> str | None:
        return self.tenant.slug if self.tenant is not None else self.object.slug


@dataclass(frozen=True)
class UpstreamOrphans:
    upstream: StepName
    configured: bool
    orphans: list[Orphan] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class Discarded:
    orphan: Orphan
    result: StepResult


@dataclass
class _Holder:
    id: str
    slug: str
    ids: dict[StepName, set[str]] = field(default_factory=dict)


class _Holdings:
    """Which live tenant stores which upstream id, from the step rows."""

    def __init__(self, rows: Sequence[tuple[str, str, StepName | None, dict[str, str]]]) -> None:
        self.by_id: dict[str, _Holder] = {}
        for tenant_id, slug, step, outputs in rows:
            holder = self.by_id.setdefault(tenant_id, _Holder(tenant_id, slug))
            if step is not None:
                holder.ids[step] = {str(v) for k, v in outputs.items() if k != ADOPT and v}
        self.by_slug = {holder.slug: holder for holder in self.by_id.values()}
        self.by_object = {(step, oid): h for h in self.by_id.values() for step, ids in h.ids.items() for oid in ids}


def _require_admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise ForbiddenError("only platform admins may see and act on orphaned upstream objects")


class OrphanService:
    """The orphan use cases, in the tenant service's unit of work (flushes, never commits)."""

    def __init__(self, tenants: TenantService, upstreams: Upstreams) -> None:
        self._tenants = tenants
        self._repo = OrphanRepository(tenants.session)
        self._upstreams = upstreams

    async def list(self, actor: Actor) -> list[UpstreamOrphans]:
        """Every upstream's orphans (an upstream that could not be listed says why)."""
        _require_admin(actor)
        surveys = await self._upstreams.survey()
        holdings, purged = await self._holdings([obj for survey in surveys for obj in survey.objects])
        listed = []
        for survey in surveys:
            verdicts = [self._verdict(survey.step, obj, holdings, purged) for obj in survey.objects]
            orphans = [v for v in verdicts if isinstance(v, Orphan)]
            listed.append(UpstreamOrphans(survey.step, survey.configured, orphans, survey.error))
        return listed

    async def adopt_and_wait(self, upstream: StepName, object_id: str, slug: str, actor: Actor) -> Settling:
        """Make the live tenant ``slug`` hold the orphan: its step stores the object's id, and the reconcile
        after the commit takes it over, marks it as the tenant's and repairs it. Refused (409) while the tenant
        holds another object on that upstream."""
        _require_admin(actor)
        tenant = await self._tenants.get(slug, actor)
        if tenant.deleted_at is not None:
            raise NotFoundError(f"no tenant '{slug}'")
        if tenant.lifecycle == Lifecycle.DELETING:
            raise ConflictError(f"'{slug}' is being deleted; restore it before it adopts anything")
        obj = await self._listed(upstream, object_id)
        if upstream == StepName.STALWART and obj.name != tenant.mail_domain:
            # The mail step looks its domain up by the tenant's mail domain; another name would be passed over.
            raise ConflictError(
                f"the Stalwart domain {obj.name} is not the mail domain of '{slug}' ({tenant.mail_domain}); "
                "switch the tenant's mail domain to it first"
            )
        await self._hold(tenant)
        orphan = await self._orphan(upstream, obj)
        row = await self._repo.step(tenant.id, upstream)
        if row is None:
            raise ConflictError(f"'{slug}' has no {upstream} step to hold the object")
        held = {str(v) for k, v in (row.outputs or {}).items() if k != ADOPT and v} - {obj.id}
        if held:
            raise ConflictError(
                f"'{slug}' already holds {', '.join(sorted(held))} on {upstream}; "
                "delete that object first if this one is to replace it"
            )
        now = utcnow()
        row.outputs = {**obj.ids, ADOPT: obj.id}
        row.next_attempt_at = now
        tenant.next_reconcile_at = self._tenants.worker_due(now)
        tenant.updated_at, tenant.updated_by = now, actor.sub
        what = _describe(orphan)
        self._event(tenant.id, upstream, "orphan.adopted", f"adopted {what}; {orphan.reason}", actor)
        if orphan.tenant is not None and orphan.tenant.id != tenant.id:
            self._event(orphan.tenant.id, upstream, "orphan.handed_over", f"{what} was adopted by '{slug}'", actor)
        await self._tenants.session.flush()
        log.info("orphan.adopted", upstream=str(upstream), object_id=obj.id, tenant_id=tenant.id, actor=actor.sub)
        wait = max(self._tenants.settings.create_wait_seconds, self._tenants.settings.step_timeout_seconds)
        return self._tenants.settling(tenant, force=True, wait=wait)

    async def delete(self, upstream: StepName, object_id: str, actor: Actor) -> Discarded:
        """Delete the orphan upstream by its adapter's teardown path; refused (409) unless it is one now."""
        _require_admin(actor)
        obj = await self._listed(upstream, object_id)
        orphan = await self._orphan(upstream, obj)
        try:
            result = await self._upstreams.discard(upstream, obj)
        except PermanentStepError as err:
            raise ConflictError(f"could not delete {_describe(orphan)}: {err.reason}: {err.message}") from err
        except StepError as err:
            raise UnavailableError(f"could not delete {_describe(orphan)} now: {err.reason}: {err.message}") from err
        if orphan.tenant is not None:
            self._event(orphan.tenant.id, upstream, "orphan.deleted", f"deleted {_describe(orphan)}", actor)
            await self._tenants.session.flush()
        log.info("orphan.deleted", upstream=str(upstream), object_id=obj.id, actor=actor.sub)
        return Discarded(orphan, result)

    # -- helpers ------------------------------------------------------------------------------------

    async def _listed(self, upstream: StepName, object_id: str) -> MarkedObject:
        """The marked object ``object_id`` as the upstream lists it now."""
        surveys = await self._upstreams.survey(upstream)
        survey = next((s for s in surveys if s.step == upstream), None)
        if survey is None or not survey.configured:
            raise NotFoundError(f"{upstream} is not configured")
        if survey.error is not None:
            raise UnavailableError(f"could not list {upstream}: {survey.error}")
        obj = next((o for o in survey.objects if o.id == object_id), None)
        if obj is None:
            raise NotFoundError(f"{upstream} has no object {object_id!r} marked as Tenantry's")
        return obj

    async def _orphan(self, upstream: StepName, obj: MarkedObject) -> Orphan:
        holdings, purged = await self._holdings([obj])
        verdict = self._verdict(upstream, obj, holdings, purged)
        if not isinstance(verdict, Orphan):
            raise ConflictError(f"{upstream} object {obj.name} ({obj.id}) is not an orphan: {verdict}")
        return verdict

    async def _holdings(self, objects: Sequence[MarkedObject]) -> tuple[_Holdings, dict[str, str]]:
        """Who holds what now, and the slugs of the purged tenants among those the objects name."""
        holdings = _Holdings(await self._repo.live_outputs())
        named = {o.tenant_id for o in objects if o.tenant_id is not None and o.tenant_id not in holdings.by_id}
        return holdings, await self._repo.purged_slugs(named)

    @staticmethod
    def _verdict(upstream: StepName, obj: MarkedObject, holdings: _Holdings, purged: dict[str, str]) -> Orphan | str:
        """The object as an orphan with the reason it is one, or why it is not."""
        holder = holdings.by_object.get((upstream, obj.id))
        if holder is not None:
            return f"tenant '{holder.slug}' holds it"
        if obj.tenant_id is not None:
            owner = holdings.by_id.get(obj.tenant_id)
        else:
            owner = holdings.by_slug.get(obj.slug) if obj.slug else None
        if owner is not None:
            held = sorted(owner.ids.get(upstream, set()))
            if not held:
                return f"tenant '{owner.slug}' has stored nothing there yet; its next reconcile adopts it"
            reason = f"tenant '{owner.slug}' holds {', '.join(held)} instead"
            return Orphan(upstream, obj, reason, TenantRef(owner.id, owner.slug, live=True))
        if obj.tenant_id is None:
            return Orphan(upstream, obj, f"no tenant has the slug '{obj.slug}' its name stands for")
        if obj.tenant_id in purged:
            slug = purged[obj.tenant_id]
            reason = f"its tenant '{slug}' ({obj.tenant_id}) was purged"
            return Orphan(upstream, obj, reason, TenantRef(obj.tenant_id, slug, live=False))
        return Orphan(upstream, obj, f"no tenant has the id {obj.tenant_id} its marker names (its row is gone)")

    async def _hold(self, tenant: Tenant) -> None:
        """Keep the tenant's reconciles out while its stored ids change: wait a while for a running one to end,
        then lock the tenant's row against a new claim until the commit."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(self._tenants.settings.lease_seconds, LEASE_WAIT_SECONDS)
        busy = ConflictError(f"'{tenant.slug}' is being reconciled right now; try again in a moment")
        while not await self._repo.lease_free(tenant.id, utcnow()):
            if loop.time() > deadline:
                raise busy
            await asyncio.sleep(0.05)
        if not await self._repo.fence(tenant.id, utcnow()):
            raise busy

    def _event(self, tenant_id: str, upstream: StepName, kind: str, message: str, actor: Actor) -> None:
        at = utcnow()
        self._tenants.repo.record(
            TenantEvent(tenant_id=tenant_id, at=at, step=upstream, kind=kind, message=message, actor=actor.sub)
        )


def _describe(orphan: Orphan) -> str:
    kind = {StepName.AUTHENTIK: "group", StepName.STALWART: "domain", StepName.OCIS: "space"}[orphan.upstream]
    return f"{orphan.upstream} {kind} {orphan.object.name} ({orphan.object.id})"
