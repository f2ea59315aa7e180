"""Lifecycle use cases: suspend, resume, delete with a grace period, restore; and ETags for safe edits."""

from __future__ import annotations

from datetime import timedelta

from tenantry.auth.actor import Actor
from tenantry.db.base import utcnow
from tenantry.errors import ConflictError, ForbiddenError
from tenantry.states import Lifecycle, TenantStatus
from tenantry.tenants.etags import check_if_match
from tenantry.tenants.models import Tenant
from tenantry.tenants.service import Settling, TenantService


class TenantLifecycle:
    """Works in the tenant service's unit of work; every change is a new generation the reconciler applies."""

    def __init__(self, tenants: TenantService) -> None:
        self._tenants = tenants

    async def suspend_and_wait(self, slug: str, actor: Actor, *, if_match: str | None = None) -> Settling:
        """Cut access in every upstream (the group marked suspended, the domain and the space disabled)."""
        tenant = await self._writable(slug, actor, if_match)
        if tenant.lifecycle == Lifecycle.SUSPENDED:
            return self._tenants.settled(tenant)
        if tenant.lifecycle == Lifecycle.DELETING:
            raise ConflictError(f"'{slug}' is being deleted; restore it first")
        return await self._change(tenant, Lifecycle.SUSPENDED, actor, "tenant.suspended", "suspended")

    async def resume_and_wait(self, slug: str, actor: Actor, *, if_match: str | None = None) -> Settling:
        """Give access back exactly as it was before the suspension."""
        tenant = await self._writable(slug, actor, if_match)
        if tenant.lifecycle == Lifecycle.ACTIVE:
            return self._tenants.settled(tenant)
        if tenant.lifecycle == Lifecycle.DELETING:
            raise ConflictError(f"'{slug}' is being deleted; restore it instead (POST /tenants/{slug}/restore)")
        return await self._change(tenant, Lifecycle.ACTIVE, actor, "tenant.resumed", "resumed")

    async def delete_and_wait(
        self, slug: str, actor: Actor, *, purge_now: bool = False, if_match: str | None = None
    ) -> Settling:
        """Mark the tenant deleting: everything is disabled at once and purged when the grace period ends
        (at once with ``purge_now``, platform admins only). Until then it can be restored."""
        tenants = self._tenants
        if purge_now and not actor.is_admin:
            raise ForbiddenError("only platform admins may purge a tenant without its grace period")
        tenant = await self._writable(slug, actor, if_match)
        now = utcnow()
        if tenant.lifecycle == Lifecycle.DELETING:
            if purge_now and tenant.purge_at is not None and tenant.purge_at > now:
                tenant.purge_at = now
                tenants.event(tenant, "tenant.purge_requested", "purge brought forward to now", actor, now)
                tenant.next_reconcile_at = now
                await tenants.session.flush()
            return tenants.settling(tenant, force=False, wait=tenants.settings.create_wait_seconds)
        grace = 0.0 if purge_now else tenants.settings.delete_grace_seconds
        tenant.lifecycle_before = tenant.lifecycle
        tenant.purge_at = now + timedelta(seconds=grace)
        message = f"deletion requested; purge at {tenant.purge_at:%Y-%m-%d %H:%M:%S} UTC unless restored"
        return await self._change(tenant, Lifecycle.DELETING, actor, "tenant.delete_requested", message)

    async def restore_and_wait(self, slug: str, actor: Actor, *, if_match: str | None = None) -> Settling:
        """Bring a deleting tenant back to what it was, while its grace period lasts."""
        tenant = await self._writable(slug, actor, if_match, tombstones=True)
        if tenant.deleted_at is not None:
            raise ConflictError(f"'{slug}' was purged on {tenant.deleted_at:%Y-%m-%d}; it cannot be restored")
        if tenant.lifecycle != Lifecycle.DELETING:
            raise ConflictError(f"'{slug}' is not being deleted")
        now = utcnow()
        if tenant.purge_at is not None and tenant.purge_at <= now:
            raise ConflictError(f"the grace period of '{slug}' is over and its purge has begun; it cannot be restored")
        previous = tenant.lifecycle_before or Lifecycle.ACTIVE
        tenant.lifecycle_before, tenant.purge_at = None, None
        return await self._change(tenant, previous, actor, "tenant.restored", f"restored ({previous})")

    async def _writable(self, slug: str, actor: Actor, if_match: str | None, *, tombstones: bool = False) -> Tenant:
        tenant = await self._tenants.get(slug, actor)
        if tenant.deleted_at is not None and not tombstones:
            raise ConflictError(f"'{slug}' was deleted")
        check_if_match(tenant, if_match)
        return tenant

    async def _change(self, tenant: Tenant, lifecycle: Lifecycle, actor: Actor, kind: str, message: str) -> Settling:
        tenant.lifecycle = lifecycle
        tenant.status = TenantStatus(lifecycle.value) if lifecycle != Lifecycle.ACTIVE else tenant.status
        return await self._tenants.new_generation_and_wait(tenant, actor, kind, message, now=utcnow())
