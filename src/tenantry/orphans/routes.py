"""HTTP routes for orphans (platform admins): list them, hand one to a tenant, delete one upstream."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response

from tenantry.orphans.schemas import AdoptIn, OrphanDeletedOut, OrphanOut, OrphansOut, UpstreamOrphansOut
from tenantry.orphans.service import Orphan, OrphanService
from tenantry.states import StepName
from tenantry.tenants.etags import etag
from tenantry.tenants.presenter import present
from tenantry.tenants.routes import tenant_service
from tenantry.tenants.schemas import ErrorOut, TenantOut, ValidationErrorOut
from tenantry.tenants.service import TenantService
from tenantry.web import ActorDep, AfterCommit

router = APIRouter(prefix="/orphans", tags=["orphans"])

ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorOut, "description": "Missing or invalid access token"},
    403: {"model": ErrorOut, "description": "Not a platform admin"},
}
ACTION_ERRORS: dict[int | str, dict[str, object]] = {
    **ERRORS,
    400: {"model": ErrorOut, "description": "A body that cannot be read (not UTF-8 JSON)"},
    404: {"model": ErrorOut, "description": "No such object marked as Tenantry's upstream (or no such tenant)"},
    409: {"model": ErrorOut, "description": "Not an orphan (any more), or the upstream refused"},
    422: {"model": ValidationErrorOut, "description": "Invalid input; each problem names its field"},
    503: {"model": ErrorOut, "description": "The upstream could not be reached; try again"},
}
ObjectId = Annotated[str, Path(min_length=1, max_length=255, description="The object's id upstream")]


def orphan_service(request: Request, tenants: Annotated[TenantService, Depends(tenant_service)]) -> OrphanService:
    """The orphan use cases in the request's unit of work, over the process's upstream adapters."""
    return OrphanService(tenants, request.app.state.container.inventory())


ServiceDep = Annotated[OrphanService, Depends(orphan_service)]


def _present(orphan: Orphan) -> OrphanOut:
    obj = orphan.object
    return OrphanOut(
        id=obj.id, name=obj.name, tenant_id=obj.tenant_id, tenant_slug=orphan.suggested_slug, reason=orphan.reason
    )


@router.get("", response_model=OrphansOut, responses=ERRORS)
async def list_orphans(service: ServiceDep, actor: ActorDep) -> OrphansOut:
    """Upstream objects that carry Tenantry's marker but that no tenant holds (for example after a restore
    from an older backup), per upstream. Reads only."""
    listed = await service.list(actor)
    return OrphansOut(
        upstreams=[
            UpstreamOrphansOut(
                upstream=u.upstream, configured=u.configured, error=u.error, orphans=[_present(o) for o in u.orphans]
            )
            for u in listed
        ]
    )


@router.post("/{upstream}/{object_id}/adopt", response_model=TenantOut, responses=ACTION_ERRORS)
async def adopt_orphan(
    upstream: StepName, object_id: ObjectId, payload: AdoptIn, service: ServiceDep, actor: ActorDep
) -> Response:
    """Hand the orphan to the live tenant ``slug``: the tenant's step stores it, and the reconcile that follows
    (answered here) marks it as the tenant's and repairs it. ``409`` while the tenant holds another object on
    that upstream."""
    settling = await service.adopt_and_wait(upstream, object_id, payload.slug, actor)

    async def render() -> tuple[TenantOut, dict[str, str]]:
        tenant = await settling.settle()
        return present(tenant), {"ETag": etag(tenant)}

    return AfterCommit(render)


@router.delete("/{upstream}/{object_id}", response_model=OrphanDeletedOut, responses=ACTION_ERRORS)
async def delete_orphan(
    upstream: StepName, object_id: ObjectId, service: ServiceDep, actor: ActorDep
) -> OrphanDeletedOut:
    """Delete the orphan upstream the way a tenant's teardown does (a mail domain's DKIM keys first); ``409``
    unless it is an orphan now, and never an object that has lost its marker."""
    deleted = await service.delete(upstream, object_id, actor)
    obj = deleted.orphan.object
    result = deleted.result
    return OrphanDeletedOut(upstream=upstream, id=obj.id, name=obj.name, message=result.message, events=result.events)
