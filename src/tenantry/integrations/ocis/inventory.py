"""Every oCIS project space Tenantry marked, whichever tenant it names, and purging one of them on its own."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from tenantry.integrations.errors import PermanentStepError, Reason
from tenantry.integrations.ports import MarkedObject, StepResult, TenantSpec

from .errors import OcisNotFoundError
from .models import Drive

if TYPE_CHECKING:
    from .adapter import OcisFileProvider

PAGE = 250  # marked spaces per page of marked_space_pages (oCIS answers one stream, read entry by entry)


def marked_tenant(provider: OcisFileProvider, drive: Drive) -> str | None:
    """The tenant id the marker in the space's description names (the first, if several), or None."""
    found = re.search(re.escape(provider.marker_prefix) + r"([\w-]+)(?![\w-])", drive.description or "")
    return found.group(1) if found else None


def _listed(provider: OcisFileProvider, drive: Drive, key: str) -> MarkedObject | None:
    tenant_id = marked_tenant(provider, drive)
    if tenant_id is None:
        return None
    used = drive.quota.used if drive.quota is not None else None
    state = {"quotaBytes": drive.quota_total, "disabled": drive.disabled, "usedBytes": used}
    return MarkedObject(id=drive.id, name=drive.name, tenant_id=tenant_id, ids={key: drive.id}, state=state)


async def marked_spaces(provider: OcisFileProvider, key: str) -> list[MarkedObject]:
    """Every project space whose description carries a tenant's marker, disabled ones included (one listing)."""
    return [space async for page in marked_space_pages(provider, key) for space in page]


async def marked_space_pages(
    provider: OcisFileProvider, key: str, *, size: int = PAGE
) -> AsyncIterator[list[MarkedObject]]:
    """The spaces of :func:`marked_spaces`, ``size`` at a time as the one listing streams in."""
    page: list[MarkedObject] = []
    async for drive in provider._client.project_drives(description_contains=provider.marker_prefix):
        item = _listed(provider, drive, key)
        if item is not None:
            page.append(item)
        if len(page) >= size:
            yield page
            page = []
    if page:
        yield page


def space_drift(provider: OcisFileProvider, tenant: TenantSpec, space: MarkedObject) -> str | None:
    """What differs between a listed space and what ensure would make of it (None: nothing a listing shows)."""
    wanted = provider.space_name(tenant.name, fallback=tenant.slug)
    if space.name != wanted:
        return f"space {space.id} is named {space.name!r}, not {wanted!r}"
    if space.state.get("quotaBytes") != tenant.quota_bytes:
        return f"space {space.id} has a quota of {space.state.get('quotaBytes')} bytes, not {tenant.quota_bytes}"
    if bool(space.state.get("disabled")) != tenant.suspended:
        return f"space {space.id} is {'disabled' if space.state.get('disabled') else 'enabled'} out of band"
    return None


def is_empty(space: MarkedObject) -> bool:
    """Whether the listing proves the space holds nothing: oCIS reported it uses zero bytes."""
    return space.state.get("usedBytes") == 0


async def purge_marked(provider: OcisFileProvider, space: MarkedObject, *, only_if_empty: bool = False) -> StepResult:
    """Disable and purge ``space`` as the teardown does, only while its description still names the tenant it
    was listed with (and, with ``only_if_empty``, while it still uses zero bytes); a space already gone counts
    as purged."""
    what = f"oCIS space {space.name!r} ({space.id})"
    try:
        drive = await provider._client.get_drive(space.id)
    except OcisNotFoundError:
        return StepResult(state="ok", reason="Purged", message=f"{what} was already gone")
    if space.tenant_id is None or marked_tenant(provider, drive) != space.tenant_id:
        raise PermanentStepError(
            f"{what} is no longer marked for tenant {space.tenant_id!r} (description {drive.description!r}); "
            "left it alone",
            reason=Reason.NOT_MARKED,
        )
    if only_if_empty and (drive.quota is None or drive.quota.used != 0):
        used = drive.quota.used if drive.quota is not None else "an unknown number of"
        raise PermanentStepError(f"{what} now holds {used} bytes; left it alone", reason=Reason.NOT_EMPTY)
    events = await provider._purge([drive])
    purged = any(event.startswith("purged") for event in events)
    message = f"purged {what}" if purged else f"{what} was already gone"
    return StepResult(state="ok", reason="Purged", message=message, events=events)
