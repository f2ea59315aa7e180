"""HTTP routes for tenants: parse the request, call one service operation, present its result."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status
from fastapi.responses import PlainTextResponse

from tenantry.states import TenantStatus
from tenantry.tenants.domain_service import TenantDomains, current_claim
from tenantry.tenants.etags import etag
from tenantry.tenants.lifecycle import TenantLifecycle
from tenantry.tenants.listing import page_json
from tenantry.tenants.models import Tenant
from tenantry.tenants.presenter import (
    events_csv,
    present,
    present_dns,
    present_domain,
    present_plan,
    present_tenant_plan,
)
from tenantry.tenants.schemas import (
    DnsRecordsOut,
    DomainOut,
    DomainPlanOut,
    DomainSwitchIn,
    ErrorOut,
    TenantAdminOut,
    TenantAdminsOut,
    TenantCreate,
    TenantEventOut,
    TenantOut,
    TenantPage,
    TenantPlanOut,
    TenantUpdate,
    ValidationErrorOut,
)
from tenantry.tenants.service import Settling, TenantService
from tenantry.tenants.zone import render_zone
from tenantry.web import ActorDep, AfterCommit, SessionDep

router = APIRouter(prefix="/tenants", tags=["tenants"])

ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorOut, "description": "A body that cannot be read (not UTF-8 JSON)"},
    401: {"model": ErrorOut, "description": "Missing or invalid access token"},
    404: {"model": ErrorOut, "description": "No such tenant (or not visible to the caller)"},
    422: {"model": ValidationErrorOut, "description": "Invalid input; each problem names its field"},
}


# The dependencies are coroutines, though they never wait: FastAPI runs a plain function in a worker thread,
# a thread hand-off per dependency per request.
async def tenant_service(request: Request, session: SessionDep) -> TenantService:
    """The service every tenant route calls, working in the request's unit of work."""
    container = request.app.state.container
    return TenantService(
        session,
        container.settings,
        provisioner=request.app.state.runner,
        sessions=container.sessionmaker,
    )


ServiceDep = Annotated[TenantService, Depends(tenant_service)]


async def tenant_domains(request: Request, service: ServiceDep) -> TenantDomains:
    """The mail domain use cases, in the same unit of work, with the process's DNS resolver."""
    return TenantDomains(service, request.app.state.container.resolver)


DomainsDep = Annotated[TenantDomains, Depends(tenant_domains)]


def _after_commit(settling: Settling, *, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Answer with the tenant as its first reconcile after the commit left it (see :class:`AfterCommit`)."""

    async def render() -> tuple[TenantOut, dict[str, str]]:
        tenant = await settling.settle()
        return present(tenant), {"ETag": etag(tenant)}

    return AfterCommit(render, status_code=status_code, headers=headers)


async def tenant_lifecycle(service: ServiceDep) -> TenantLifecycle:
    return TenantLifecycle(service)


LifecycleDep = Annotated[TenantLifecycle, Depends(tenant_lifecycle)]
IfMatch = Annotated[str | None, Header(description="Act only if the tenant's ETag is still this one (else 412)")]
CONFLICT: dict[int | str, dict[str, object]] = {
    409: {"model": ErrorOut, "description": "Not possible in the tenant's lifecycle state (the detail says why)"}
}
STALE: dict[int | str, dict[str, object]] = {
    412: {"model": ErrorOut, "description": "If-Match names an ETag the tenant no longer has"}
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TenantOut,
    responses={**ERRORS, 409: {"model": ErrorOut, "description": "Slug or mail domain taken"}},
)
async def create_tenant(
    payload: TenantCreate,
    service: ServiceDep,
    actor: ActorDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=255,
            description="Retries with the same key and body get the first answer and create nothing (kept a day)",
        ),
    ] = None,
) -> Response:
    """Create a workspace and drive its provisioning; answers once the first reconcile finishes or after
    the configured wait, whichever comes first."""
    settling = await service.create_and_wait(payload, actor, idempotency_key=idempotency_key)
    headers = {"Location": f"/tenants/{settling.tenant.slug}"}
    if settling.replayed:
        headers["Idempotent-Replayed"] = "true"
    return _after_commit(settling, status_code=status.HTTP_201_CREATED, headers=headers)


@router.get("", response_model=TenantPage, responses=ERRORS)
async def list_tenants(
    service: ServiceDep,
    actor: ActorDep,
    status_filter: Annotated[TenantStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="Tenants to skip (after the cursor, if any)")] = 0,
    cursor: Annotated[
        str | None, Query(min_length=1, max_length=500, description="From `next` of the previous page")
    ] = None,
    count: Annotated[bool, Query(description="true: also count every matching tenant (`total`)")] = False,
) -> Response:
    """Tenants the caller may see, oldest first, a page at a time: ``next`` is the cursor of the following
    page (null on the last). ``total`` is null unless ``count=true`` asks for it."""
    page = await service.list(actor, status=status_filter, limit=limit, offset=offset, cursor=cursor, count=count)
    # Written straight from the rows (the same JSON as TenantPage's); response_model documents the shape.
    body = page_json(page.items, total=page.total, limit=limit, offset=offset, next=page.next_cursor)
    return Response(body, media_type="application/json")


@router.get("/{slug}", response_model=TenantOut, responses=ERRORS)
async def get_tenant(slug: str, service: ServiceDep, actor: ActorDep) -> Response:
    """The tenant (or, once it is purged, its tombstone), with an ETag for ``If-Match``."""
    shown = await service.show(slug, actor)
    # Written straight from the rows (the same JSON as TenantOut's); response_model documents the shape.
    answer = Response(shown.json(), media_type="application/json")
    answer.headers["ETag"] = shown.etag
    return answer


@router.patch(
    "/{slug}",
    response_model=TenantOut,
    responses={
        **ERRORS,
        **STALE,
        409: {"model": ErrorOut, "description": "Mail domain taken, or already provisioned"},
    },
)
async def update_tenant(
    slug: str, payload: TenantUpdate, service: ServiceDep, actor: ActorDep, if_match: IfMatch = None
) -> Response:
    """Change the desired state (name, quota); the next reconcile applies it upstream."""
    return _after_commit(await service.update_and_wait(slug, payload, actor, if_match=if_match))


@router.post("/{slug}/suspend", response_model=TenantOut, responses={**ERRORS, **STALE, **CONFLICT})
async def suspend_tenant(slug: str, lifecycle: LifecycleDep, actor: ActorDep, if_match: IfMatch = None) -> Response:
    """Cut access in every upstream: the group is marked suspended, the mail domain and the space disabled."""
    return _after_commit(await lifecycle.suspend_and_wait(slug, actor, if_match=if_match))


@router.post("/{slug}/resume", response_model=TenantOut, responses={**ERRORS, **STALE, **CONFLICT})
async def resume_tenant(slug: str, lifecycle: LifecycleDep, actor: ActorDep, if_match: IfMatch = None) -> Response:
    """Give access back exactly as it was before the suspension."""
    return _after_commit(await lifecycle.resume_and_wait(slug, actor, if_match=if_match))


@router.delete(
    "/{slug}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TenantOut,
    responses={
        **ERRORS,
        **STALE,
        **CONFLICT,
        403: {"model": ErrorOut, "description": "purge=now without being a platform admin"},
    },
)
async def delete_tenant(
    slug: str,
    lifecycle: LifecycleDep,
    actor: ActorDep,
    if_match: IfMatch = None,
    purge: Annotated[Literal["now"] | None, Query(description="now (platform admins): skip the grace period")] = None,
) -> Response:
    """Delete the workspace: everything is disabled at once and removed when the grace period ends
    (``TENANTRY_DELETE_GRACE_SECONDS``); until then ``POST …/restore`` brings it back."""
    settling = await lifecycle.delete_and_wait(slug, actor, purge_now=purge == "now", if_match=if_match)
    return _after_commit(settling, status_code=status.HTTP_202_ACCEPTED)


@router.post("/{slug}/restore", response_model=TenantOut, responses={**ERRORS, **STALE, **CONFLICT})
async def restore_tenant(slug: str, lifecycle: LifecycleDep, actor: ActorDep, if_match: IfMatch = None) -> Response:
    """Bring a deleted workspace back to what it was, while its grace period lasts."""
    return _after_commit(await lifecycle.restore_and_wait(slug, actor, if_match=if_match))


@router.get("/{slug}/plan", response_model=TenantPlanOut, responses=ERRORS)
async def plan_tenant(slug: str, service: ServiceDep, actor: ActorDep) -> TenantPlanOut:
    """A dry run: what a reconcile would create, update or delete in each upstream, with the fields that
    differ; for a deleting tenant, what its purge removes. Reads only, writes nothing anywhere."""
    plans = await service.plan(slug, actor)
    return present_tenant_plan(await service.get(slug, actor), plans)


@router.post("/{slug}/reconcile", response_model=TenantOut, responses=ERRORS)
async def reconcile_tenant(slug: str, service: ServiceDep, actor: ActorDep) -> Response:
    """Run every step now, including ones stopped by a permanent error, and answer with the result."""
    return _after_commit(await service.reconcile_and_wait(slug, actor))


@router.get(
    "/{slug}/events",
    response_model=list[TenantEventOut],
    responses={**ERRORS, 200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "JSON or CSV"}},
)
async def tenant_events(
    slug: str,
    request: Request,
    response: Response,
    service: ServiceDep,
    actor: ActorDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="From the Link rel=next of the previous page")
    ] = None,
    fmt: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> Response | list[TenantEventOut]:
    """The tenant's timeline, newest first, a page at a time: a ``Link: <…>; rel="next"`` header points to
    the next page while there is one. ``?format=csv`` exports the page as CSV."""
    events = await service.events(slug, actor, limit=limit, before=cursor)
    page = [TenantEventOut(at=e.at, step=e.step, kind=e.kind, message=e.message, actor=e.actor) for e in events]
    headers = {}
    if len(events) == limit:
        following = request.url.include_query_params(cursor=events[-1].id)
        headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'
    if fmt == "csv":
        return PlainTextResponse(events_csv(page), media_type="text/csv; charset=utf-8", headers=headers)
    response.headers.update(headers)
    return page


@router.get(
    "/{slug}/dns",
    response_model=DnsRecordsOut,
    responses={
        **ERRORS,
        200: {
            "content": {"text/dns": {"schema": {"type": "string"}}},
            "description": "JSON, or with ?format=zone a zone file",
        },
    },
)
async def tenant_dns(
    slug: str,
    domains: DomainsDep,
    actor: ActorDep,
    fmt: Annotated[Literal["json", "zone"], Query(alias="format")] = "json",
    check: Annotated[
        Literal["now"] | None, Query(description="now: look every record up in DNS before answering")
    ] = None,
) -> Response | DnsRecordsOut:
    """The DNS records to publish for the tenant's mail domain (from Stalwart), as JSON or a zone file, with
    the ownership challenge while the domain is unproven and the last live check of each record."""
    dns = await domains.dns(slug, actor, check_now=check == "now")
    if fmt == "zone":
        records = [*dns.records, dns.challenge] if dns.challenge else dns.records
        return PlainTextResponse(render_zone(records, dns.domain), media_type="text/dns")
    return present_dns(dns)


@router.get("/{slug}/domain", response_model=DomainOut, responses=ERRORS)
async def tenant_domain(slug: str, domains: DomainsDep, actor: ActorDep) -> DomainOut:
    """The tenant's claim to its mail domain: the record that proves it, and where the proof stands."""
    return present_domain(await domains.claim(slug, actor))


@router.post(
    "/{slug}/domain/verify",
    response_model=DomainOut,
    responses={**ERRORS, 409: {"model": ErrorOut, "description": "Another workspace proved the domain first"}},
)
async def verify_tenant_domain(slug: str, domains: DomainsDep, actor: ActorDep) -> Response:
    """Look for the ownership record now; once found, the domain is created in Stalwart. An expired claim
    starts a new verification period."""
    settling = await domains.verify_and_wait(slug, actor)

    async def render() -> DomainOut:
        return present_domain(current_claim(await settling.settle()))

    return AfterCommit(render)


@router.post("/{slug}/domain/plan", response_model=DomainPlanOut, responses={**ERRORS, **CONFLICT})
async def plan_domain_switch(slug: str, payload: DomainSwitchIn, domains: DomainsDep, actor: ActorDep) -> DomainPlanOut:
    """What switching the mail domain to ``mailDomain`` would do and what stands in the way. The target's
    proof of ownership is looked up each time; nothing changes in Stalwart."""
    return present_plan(await domains.plan(slug, payload.mail_domain, actor))


@router.post(
    "/{slug}/domain/apply",
    response_model=TenantOut,
    responses={**ERRORS, 409: {"model": ErrorOut, "description": "The plan is not ready; its blockers are listed"}},
)
async def apply_domain_switch(slug: str, payload: DomainSwitchIn, domains: DomainsDep, actor: ActorDep) -> Response:
    """Switch the mail domain as planned: the Stalwart domain is renamed in place and the old name stays an
    alias until released."""
    return _after_commit(await domains.apply_and_wait(slug, payload.mail_domain, actor))


@router.delete("/{slug}/domain/aliases/{name}", response_model=TenantOut, responses=ERRORS)
async def release_domain_alias(slug: str, name: str, domains: DomainsDep, actor: ActorDep) -> Response:
    """Stop receiving mail for an earlier mail domain; the name is free for others again."""
    return _after_commit(await domains.release_and_wait(slug, name.lower().rstrip("."), actor))


SubPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=255,
        # No whitespace and no control characters (a NUL cannot even be stored), and no U+FFFD: what a
        # path that is not UTF-8 (%ff) decodes to, so it is refused rather than stored as a different sub.
        pattern=r"^[^\s\x00-\x1f\x7f\ufffd]+$",
        description="The person's token subject (sub)",
    ),
]


def _admins(tenant: Tenant) -> TenantAdminsOut:
    return TenantAdminsOut(
        owner=tenant.owner_sub,
        admins=[TenantAdminOut(sub=a.sub, added_at=a.added_at, added_by=a.added_by) for a in tenant.admins],
    )


@router.get("/{slug}/admins", response_model=TenantAdminsOut, responses=ERRORS)
async def tenant_admins(slug: str, service: ServiceDep, actor: ActorDep) -> TenantAdminsOut:
    """Who manages the tenant: its owner and its admins."""
    return _admins(await service.get(slug, actor))


@router.put(
    "/{slug}/admins/{sub}",
    response_model=TenantAdminsOut,
    responses={**ERRORS, 201: {"model": TenantAdminsOut, "description": "Added"}},
)
async def add_tenant_admin(
    slug: str, sub: SubPath, response: Response, service: ServiceDep, actor: ActorDep
) -> TenantAdminsOut:
    """Let another person (by token ``sub``) manage the tenant; idempotent (201 when added, 200 if already)."""
    tenant, added = await service.add_admin(slug, sub, actor)
    response.status_code = status.HTTP_201_CREATED if added else status.HTTP_200_OK
    return _admins(tenant)


@router.delete(
    "/{slug}/admins/{sub}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**ERRORS, 409: {"model": ErrorOut, "description": "The owner cannot be removed"}},
)
async def remove_tenant_admin(slug: str, sub: SubPath, service: ServiceDep, actor: ActorDep) -> Response:
    """Stop a person from managing the tenant."""
    await service.remove_admin(slug, sub, actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
