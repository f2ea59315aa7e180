"""Portal pages: my workspaces, create one, a workspace with its steps, DNS, owned objects, timeline and admins.

Each handler reads the visitor, calls one use case of the same services the API calls, as that person, and
renders a page or redirects to one (post/redirect/get).
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from pydantic import ValidationError

from tenantry.errors import AppError, InvalidInputError
from tenantry.portal import workspace as ws
from tenantry.portal.pages import PortalRoute, ShowPageError, after_commit_redirect, checked_form, render
from tenantry.portal.signin import PortalAuth, Visitor
from tenantry.states import TenantStatus
from tenantry.tenants.directory import TenantDirectory, suggest_slug
from tenantry.tenants.routes import DomainsDep, ServiceDep
from tenantry.tenants.schemas import TenantCreate
from tenantry.tenants.zone import render_zone

router = APIRouter(route_class=PortalRoute, include_in_schema=False)
_SUB = re.compile(r"^\S{1,255}$")
GIB = 1024**3


async def current_visitor(request: Request) -> Visitor:
    visitor = await PortalAuth.build(request).visitor(request)
    request.state.portal_visitor = visitor  # so an error page still shows who is signed in
    return visitor


VisitorDep = Annotated[Visitor, Depends(current_visitor)]


def directory(service: ServiceDep) -> TenantDirectory:
    return TenantDirectory(service)


DirectoryDep = Annotated[TenantDirectory, Depends(directory)]


def _next_href(filters: dict[str, str], cursor: str | None) -> str:
    kept = {k: v for k, v in filters.items() if v}
    return "?" + urlencode({**kept, "after": cursor or ""})


def _cursor(value: str | None) -> str | None:
    return value if value and len(value) <= 2000 else None


@router.get("/", response_class=HTMLResponse)
async def my_workspaces(request: Request, visitor: VisitorDep, found: DirectoryDep) -> Response:
    """The workspaces this person may see, each with its status and what is not ready yet."""
    page = await found.browse(visitor.actor, after=_cursor(request.query_params.get("after")))
    context = {"page": page, "operators": False, "next_href": _next_href({}, page.next_cursor)}
    return render(request, "workspaces.html", context, visitor=visitor)


@router.get("/operators", response_class=HTMLResponse)
async def operators(request: Request, visitor: VisitorDep, found: DirectoryDep) -> Response:
    """Every workspace (platform admins): by status, with a step in error, or by slug or name."""
    query = request.query_params
    status = query.get("status") or None
    if status is not None and status not in TenantStatus:
        raise InvalidInputError([{"field": "status", "message": f"must be one of {', '.join(TenantStatus)}"}])
    troubled = query.get("trouble") == "1"
    text = query.get("q", "")
    page = await found.browse(
        visitor.actor,
        status=TenantStatus(status) if status else None,
        troubled=troubled,
        text=text,
        after=_cursor(query.get("after")),
        everyone=True,
    )
    filters = {"status": status or "", "trouble": troubled, "q": text}
    context = {
        "page": page,
        "operators": True,
        "filters": filters,
        "statuses": list(TenantStatus),
        "next_href": _next_href(
            {"q": text, "status": status or "", "trouble": "1" if troubled else ""}, page.next_cursor
        ),
    }
    return render(request, "workspaces.html", context, visitor=visitor)


def _new_form(
    request: Request, visitor: Visitor, values: dict[str, str], problems: dict[str, str], status: int = 200
) -> Response:
    return render(request, "new.html", {"values": values, "problems": problems}, visitor=visitor, status=status)


@router.get("/new", response_class=HTMLResponse)
async def new_workspace(request: Request, visitor: VisitorDep) -> Response:
    return _new_form(request, visitor, {}, {})


@router.get("/new/check")
async def check_new_workspace(request: Request, visitor: VisitorDep, found: DirectoryDep) -> Response:
    """What is wrong with the fields so far (for the form's checks as you type); writes nothing."""
    query = request.query_params
    name, slug = query.get("name", "")[:200], query.get("slug", "")[:100]
    problems = await found.availability(visitor.actor, slug=slug, name=name, mail_domain=query.get("mailDomain"))
    return JSONResponse({"problems": problems, "suggestedSlug": suggest_slug(name)})


def _problems(err: AppError | ValidationError) -> dict[str, str]:
    if isinstance(err, ValidationError):
        found: dict[str, str] = {}
        for e in err.errors():
            field = str(e["loc"][0]) if e["loc"] else "form"
            found.setdefault({"mail_domain": "mailDomain", "quota_bytes": "quota"}.get(field, field), str(e["msg"]))
        return {k: v.removeprefix("Value error, ") for k, v in found.items()}
    if isinstance(err, InvalidInputError) and isinstance(err.detail, list):
        return {str(p.get("field")): str(p.get("message")) for p in err.detail}
    message = str(err.detail)
    if "slug" in message:
        return {"slug": message}
    return {"mailDomain": message} if "domain" in message else {"form": message}


@router.post("/new")
async def create_workspace(request: Request, visitor: VisitorDep, service: ServiceDep) -> Response:
    """Create the workspace as this person (its owner) and go to its page, where it comes up live."""
    form = await checked_form(request, visitor)
    values = {k: str(form.get(k) or "").strip() for k in ("name", "slug", "mailDomain", "quota")}
    values["slug"] = values["slug"].lower() or suggest_slug(values["name"])
    body: dict[str, object] = {"name": values["name"], "slug": values["slug"]}
    body["mailDomain"] = values["mailDomain"] or None
    try:
        if values["quota"] and visitor.actor.is_admin:
            try:
                body["quotaBytes"] = int(float(values["quota"]) * GIB)
            except ValueError as err:
                raise InvalidInputError([{"field": "quota", "message": "must be a number of GiB"}]) from err
        payload = TenantCreate.model_validate(body)
        settling = await service.create_and_wait(payload, visitor.actor)
    except (AppError, ValidationError) as err:
        status = err.status_code if isinstance(err, AppError) else 422
        raise ShowPageError(_new_form(request, visitor, values, _problems(err), status)) from err
    return after_commit_redirect(f"/workspaces/{payload.slug}", settling.settle, notice="created")


@router.get("/workspaces/{slug}", response_class=HTMLResponse)
async def workspace_page(
    slug: str, request: Request, visitor: VisitorDep, service: ServiceDep, domains: DomainsDep
) -> Response:
    before = request.query_params.get("events_before", "")
    events_before = int(before) if before.isdigit() and 0 < len(before) < 19 else None
    loaded = await ws.load(service, domains, slug, visitor, events_before=events_before)
    settings = request.app.state.container.settings
    return render(request, "workspace.html", ws.context(loaded, visitor, settings), visitor=visitor)


@router.get("/workspaces/{slug}/zone")
async def zone_file(slug: str, visitor: VisitorDep, domains: DomainsDep) -> Response:
    """The records to publish as a zone file to download."""
    dns = await domains.dns(slug, visitor.actor)
    records = [*dns.records, dns.challenge] if dns.challenge else dns.records
    filename = re.sub(r"[^a-z0-9.-]", "", dns.domain) or "tenant"
    return PlainTextResponse(
        render_zone(records, dns.domain),
        media_type="text/dns",
        headers={"Content-Disposition": f'attachment; filename="{filename}.zone"'},
    )


@router.post("/workspaces/{slug}/reconcile")
async def reconcile(slug: str, request: Request, visitor: VisitorDep, service: ServiceDep) -> Response:
    await checked_form(request, visitor)
    settling = await service.reconcile_and_wait(slug, visitor.actor)
    return after_commit_redirect(f"/workspaces/{slug}", settling.settle, notice="reconcile")


async def _admin_sub(request: Request, visitor: Visitor) -> str:
    form = await checked_form(request, visitor)
    sub = str(form.get("sub") or "").strip()
    if not _SUB.match(sub):
        raise InvalidInputError([{"field": "sub", "message": "enter the person's ID (their token's sub), no spaces"}])
    return sub


@router.post("/workspaces/{slug}/admins")
async def add_admin(slug: str, request: Request, visitor: VisitorDep, service: ServiceDep) -> Response:
    await service.add_admin(slug, await _admin_sub(request, visitor), visitor.actor)
    return after_commit_redirect(f"/workspaces/{slug}#admins", None, notice="admin-added")


@router.post("/workspaces/{slug}/admins/remove")
async def remove_admin(slug: str, request: Request, visitor: VisitorDep, service: ServiceDep) -> Response:
    await service.remove_admin(slug, await _admin_sub(request, visitor), visitor.actor)
    return after_commit_redirect(f"/workspaces/{slug}#admins", None, notice="admin-removed")
