"""A workspace's lifecycle from its page: suspend, resume, delete (after a confirmation) and restore.

Each form carries the ETag the page was rendered with, so acting on a page someone else's change has made
stale answers 412 instead of doing what the person did not see.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from tenantry.portal.pages import PortalRoute, ShowPageError, after_commit_redirect, checked_form, render
from tenantry.portal.routes import VisitorDep
from tenantry.portal.signin import Visitor
from tenantry.tenants.etags import etag
from tenantry.tenants.routes import LifecycleDep, ServiceDep

router = APIRouter(prefix="/workspaces/{slug}", route_class=PortalRoute, include_in_schema=False)


async def _if_match(request: Request, visitor: Visitor) -> str | None:
    form = await checked_form(request, visitor)
    value = form.get("etag")
    return value if isinstance(value, str) and value else None


@router.post("/suspend")
async def suspend(slug: str, request: Request, visitor: VisitorDep, lifecycle: LifecycleDep) -> Response:
    settling = await lifecycle.suspend_and_wait(slug, visitor.actor, if_match=await _if_match(request, visitor))
    return after_commit_redirect(f"/workspaces/{slug}", settling.settle, notice="suspended")


@router.post("/resume")
async def resume(slug: str, request: Request, visitor: VisitorDep, lifecycle: LifecycleDep) -> Response:
    settling = await lifecycle.resume_and_wait(slug, visitor.actor, if_match=await _if_match(request, visitor))
    return after_commit_redirect(f"/workspaces/{slug}", settling.settle, notice="resumed")


@router.post("/restore")
async def restore(slug: str, request: Request, visitor: VisitorDep, lifecycle: LifecycleDep) -> Response:
    settling = await lifecycle.restore_and_wait(slug, visitor.actor, if_match=await _if_match(request, visitor))
    return after_commit_redirect(f"/workspaces/{slug}", settling.settle, notice="restored")


@router.get("/delete", response_class=HTMLResponse)
async def confirm_delete(slug: str, request: Request, visitor: VisitorDep, service: ServiceDep) -> Response:
    """Deleting asks first: the person types the workspace's slug."""
    tenant = await service.get(slug, visitor.actor)
    grace = service.settings.delete_grace_seconds
    context = {"tenant": tenant, "etag": etag(tenant), "grace_seconds": grace, "problem": None}
    return render(request, "delete.html", context, visitor=visitor)


@router.post("/delete")
async def delete(
    slug: str, request: Request, visitor: VisitorDep, service: ServiceDep, lifecycle: LifecycleDep
) -> Response:
    form = await checked_form(request, visitor)
    tenant = await service.get(slug, visitor.actor)
    if str(form.get("confirm") or "").strip() != tenant.slug:
        context = {
            "tenant": tenant,
            "etag": str(form.get("etag") or etag(tenant)),
            "grace_seconds": service.settings.delete_grace_seconds,
            "problem": f"Type {tenant.slug} exactly to confirm; nothing was deleted.",
        }
        raise ShowPageError(render(request, "delete.html", context, visitor=visitor, status=422))
    if_match = form.get("etag")
    settling = await lifecycle.delete_and_wait(
        slug, visitor.actor, if_match=if_match if isinstance(if_match, str) and if_match else None
    )
    return after_commit_redirect(f"/workspaces/{slug}", settling.settle, notice="deleted")
