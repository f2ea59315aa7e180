"""The workspace page's content, loaded through the tenant services as the visitor, and its live parts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tenantry.config import Settings
from tenantry.portal import views
from tenantry.portal.pages import fragment
from tenantry.portal.signin import Visitor
from tenantry.states import Lifecycle
from tenantry.tenants.domain_service import TenantDns, TenantDomains
from tenantry.tenants.etags import etag
from tenantry.tenants.models import Tenant, TenantEvent
from tenantry.tenants.service import TenantService

EVENTS_PER_PAGE = 20
# The parts of the page that change as provisioning goes on, by element id, each rendered from a partial.
LIVE_PARTS = {
    "ws-status": "_status.html",
    "ws-actions": "_actions.html",
    "ws-steps": "_steps.html",
    "ws-dns": "_dns.html",
    "ws-owned": "_owned.html",
    "ws-events": "_events.html",
}


@dataclass(frozen=True)
class Workspace:
    tenant: Tenant
    dns: TenantDns
    events: Sequence[TenantEvent]
    events_before: int | None


async def load(
    service: TenantService, domains: TenantDomains, slug: str, visitor: Visitor, *, events_before: int | None = None
) -> Workspace:
    """Everything the page shows, each part read through its service as the visitor (404 if not theirs)."""
    tenant = await service.get(slug, visitor.actor)
    dns = await domains.dns(slug, visitor.actor)
    events = await service.events(slug, visitor.actor, limit=EVENTS_PER_PAGE, before=events_before)
    return Workspace(tenant, dns, events, events_before)


def context(workspace: Workspace, visitor: Visitor, settings: Settings) -> dict[str, Any]:
    tenant = workspace.tenant
    events = workspace.events
    may_manage_admins = visitor.actor.is_admin or tenant.owner_sub == visitor.sub
    return {
        "tenant": tenant,
        "visitor": visitor,
        "steps": views.step_views(tenant),
        "dns": workspace.dns,
        "owned": views.owned(tenant, settings.authentik_group_prefix),
        "events": events,
        "older_events": events[-1].id if len(events) == EVENTS_PER_PAGE else None,
        "events_before": workspace.events_before,
        "etag": etag(tenant),
        "deleting": tenant.lifecycle == Lifecycle.DELETING and tenant.deleted_at is None,
        "suspended": tenant.lifecycle == Lifecycle.SUSPENDED,
        "purged": tenant.deleted_at is not None,
        "may_manage_admins": may_manage_admins,
    }


def live_parts(workspace: Workspace, visitor: Visitor, settings: Settings) -> dict[str, str]:
    """The page's changing parts, rendered; the events only on the first page of the timeline."""
    ctx = context(workspace, visitor, settings)
    return {
        element: fragment(template, ctx)
        for element, template in LIVE_PARTS.items()
        if element != "ws-events" or workspace.events_before is None
    }
