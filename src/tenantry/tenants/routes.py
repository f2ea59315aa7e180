"""HTTP routes for tenants: create, list, show, change, reconcile, events and DNS records."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from fastapi.responses import PlainTextResponse
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.integrations.dns import DnsRecord
from tenantry.provisioning.worker import ReconcileRunner
from tenantry.tenants.models import Tenant
from tenantry.tenants.presenter import present
from tenantry.tenants.schemas import (
    DnsRecordsOut,
    ErrorOut,
    TenantAdminOut,
    TenantAdminsOut,
    TenantCreate,
    TenantEventOut,
    TenantOut,
    TenantPage,
    TenantStatus,
    TenantUpdate,
    ValidationErrorOut,
)
from tenantry.tenants.service import Actor, TenantService
from tenantry.tenants.zone import render_zone

router = APIRouter(prefix="/tenants", tags=["tenants"])

ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorOut, "description": "A body that cannot be read (not UTF-8 JSON)"},
    401: {"model": ErrorOut, "description": "Missing or invalid access token"},
    404: {"model": ErrorOut, "description": "No such tenant (or not visible to the caller)"},
    422: {"model": ValidationErrorOut, "description": "Invalid input; each problem names its field"},
}


async def session_scope(request: Request) -> AsyncIterator[AsyncSession]:
    """One unit of work per request: committed when the handler returns, rolled back when it raises."""
    async with request.app.state.container.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise


async def current_actor(request: Request) -> Actor:
    resolver = request.app.state.actor_resolver
    actor: Actor = await resolver(request)
    return actor


SessionDep = Annotated[AsyncSession, Depends(session_scope)]
ActorDep = Annotated[Actor, Depends(current_actor)]


def _runner(request: Request) -> ReconcileRunner:
    runner: ReconcileRunner = request.app.state.runner
    return runner


async def _reconcile_and_reload(
    request: Request, session: AsyncSession, tenant_id: str, *, force: bool, wait: float
) -> TenantOut:
    """Reconcile (in the background), wait up to ``wait`` seconds, and answer with the tenant as it stands."""
    await _runner(request).reconcile_now(tenant_id, force=force, wait=wait)
    session.expire_all()
    service = TenantService(session, request.app.state.container.settings)
    tenant = await service.repo.by_id(tenant_id)
    assert tenant is not None
    await session.refresh(tenant, attribute_names=["steps"])
    return present(tenant)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TenantOut,
    responses={
        **ERRORS,
        409: {"model": ErrorOut, "description": "Slug or mail domain taken"},
    },
)
async def create_tenant(
    payload: TenantCreate, request: Request, response: Response, session: SessionDep, actor: ActorDep
) -> TenantOut:
    """Create a workspace and drive its provisioning; answers once the first reconcile finishes or after
    the configured wait, whichever comes first."""
    settings = request.app.state.container.settings
    service = TenantService(session, settings)
    tenant = await service.create(payload, actor)
    await session.commit()
    response.headers["Location"] = f"/tenants/{tenant.slug}"
    return await _reconcile_and_reload(request, session, tenant.id, force=False, wait=settings.create_wait_seconds)


@router.get("", response_model=TenantPage, responses=ERRORS)
async def list_tenants(
    request: Request,
    session: SessionDep,
    actor: ActorDep,
    status_filter: Annotated[TenantStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> TenantPage:
    """Tenants the caller may see, oldest first."""
    service = TenantService(session, request.app.state.container.settings)
    rows, total = await service.list(actor, status=status_filter, limit=limit, offset=offset)
    return TenantPage(items=[present(t) for t in rows], total=total, limit=limit, offset=offset)


@router.get("/{slug}", response_model=TenantOut, responses=ERRORS)
async def get_tenant(slug: str, request: Request, session: SessionDep, actor: ActorDep) -> TenantOut:
    service = TenantService(session, request.app.state.container.settings)
    return present(await service.get(slug, actor))


@router.patch(
    "/{slug}",
    response_model=TenantOut,
    responses={**ERRORS, 409: {"model": ErrorOut, "description": "Mail domain taken, or already provisioned"}},
)
async def update_tenant(
    slug: str, payload: TenantUpdate, request: Request, session: SessionDep, actor: ActorDep
) -> TenantOut:
    """Change the desired state (name, quota); the next reconcile applies it upstream."""
    settings = request.app.state.container.settings
    service = TenantService(session, settings)
    before = (await service.get(slug, actor)).generation
    tenant = await service.update(slug, payload, actor)
    await session.commit()
    if tenant.generation == before:
        return present(tenant)
    return await _reconcile_and_reload(request, session, tenant.id, force=False, wait=settings.create_wait_seconds)


@router.post("/{slug}/reconcile", response_model=TenantOut, responses=ERRORS)
async def reconcile_tenant(slug: str, request: Request, session: SessionDep, actor: ActorDep) -> TenantOut:
    """Run every step now, including ones stopped by a permanent error, and answer with the result."""
    settings = request.app.state.container.settings
    service = TenantService(session, settings)
    tenant = await service.request_reconcile(slug, actor)
    await session.commit()
    return await _reconcile_and_reload(
        request, session, tenant.id, force=True, wait=max(settings.create_wait_seconds, settings.step_timeout_seconds)
    )


@router.get("/{slug}/events", response_model=list[TenantEventOut], responses=ERRORS)
async def tenant_events(
    slug: str, request: Request, session: SessionDep, actor: ActorDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[TenantEventOut]:
    """The tenant's timeline, newest first."""
    service = TenantService(session, request.app.state.container.settings)
    tenant = await service.get(slug, actor)
    return [
        TenantEventOut(at=e.at, step=e.step, kind=e.kind, message=e.message, actor=e.actor)
        for e in await service.repo.events(tenant.id, limit=limit)
    ]


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
    request: Request,
    session: SessionDep,
    actor: ActorDep,
    fmt: Annotated[Literal["json", "zone"], Query(alias="format")] = "json",
) -> Response | DnsRecordsOut:
    """The DNS records to publish for the tenant's mail domain (from Stalwart), as JSON or a zone file."""
    service = TenantService(session, request.app.state.container.settings)
    tenant = await service.get(slug, actor)
    step = next((s for s in tenant.steps if s.step == "stalwart"), None)
    raw = (step.data or {}).get("dnsRecords", []) if step else []
    records = [
        DnsRecord(type=r["type"], name=r["name"], value=r["value"], ttl=int(r["ttl"]), purpose=r["purpose"])
        for r in raw
    ]
    if fmt == "zone":
        return PlainTextResponse(render_zone(records, tenant.mail_domain), media_type="text/dns")
    return DnsRecordsOut(
        domain=tenant.mail_domain, status=step.status if step else "pending", records=[r.to_json() for r in records]
    )


SubPath = Annotated[
    str, Path(min_length=1, max_length=255, pattern=r"^\S+$", description="The person's token subject (sub)")
]


def _admins(tenant: Tenant) -> TenantAdminsOut:
    return TenantAdminsOut(
        owner=tenant.owner_sub,
        admins=[TenantAdminOut(sub=a.sub, added_at=a.added_at, added_by=a.added_by) for a in tenant.admins],
    )


@router.get("/{slug}/admins", response_model=TenantAdminsOut, responses=ERRORS)
async def tenant_admins(slug: str, request: Request, session: SessionDep, actor: ActorDep) -> TenantAdminsOut:
    """Who manages the tenant: its owner and its admins."""
    service = TenantService(session, request.app.state.container.settings)
    return _admins(await service.get(slug, actor))


@router.put(
    "/{slug}/admins/{sub}",
    response_model=TenantAdminsOut,
    responses={**ERRORS, 201: {"model": TenantAdminsOut, "description": "Added"}},
)
async def add_tenant_admin(
    slug: str, sub: SubPath, request: Request, response: Response, session: SessionDep, actor: ActorDep
) -> TenantAdminsOut:
    """Let another person (by token ``sub``) manage the tenant; idempotent (201 when added, 200 if already)."""
    service = TenantService(session, request.app.state.container.settings)
    tenant, added = await service.add_admin(slug, sub, actor)
    await session.commit()
    response.status_code = status.HTTP_201_CREATED if added else status.HTTP_200_OK
    return _admins(tenant)


@router.delete(
    "/{slug}/admins/{sub}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**ERRORS, 409: {"model": ErrorOut, "description": "The owner cannot be removed"}},
)
async def remove_tenant_admin(
    slug: str, sub: SubPath, request: Request, session: SessionDep, actor: ActorDep
) -> Response:
    """Stop a person from managing the tenant."""
    service = TenantService(session, request.app.state.container.settings)
    await service.remove_admin(slug, sub, actor)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
