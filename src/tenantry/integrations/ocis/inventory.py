"""Every oCIS project space Tenantry marked, whichever tenant it names, and purging one of them on its own."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tenantry.integrations.errors import PermanentStepError, Reason
from tenantry.integrations.ports import MarkedObject, StepResult

from .errors import OcisNotFoundError
from .models import Drive

if TYPE_CHECKING:
    from .adapter import OcisFileProvider


def marked_tenant(provider: OcisFileProvider, drive: Drive) -> str | None:
    """The tenant id the marker in the space's description names (the first, if several), or None."""
    found = re.search(re.escape(provider.marker_prefix) + r"([\w-]+)(?![\w-])", drive.description or "")
    return found.group(1) if found else None


def _listed(provider: OcisFileProvider, drive: Drive, key: str) -> MarkedObject | None:
    tenant_id = marked_tenant(provider, drive)
    if tenant_id is None:
        return None
    return MarkedObject(id=drive.id, name=drive.name, tenant_id=tenant_id, ids={key: drive.id})


async def marked_spaces(provider: OcisFileProvider, key: str) -> list[MarkedObject]:
    """Every project space whose description carries a tenant's marker, disabled ones included."""
    listed = [_listed(provider, drive, key) for drive in await provider._client.list_project_drives()]
    return [item for item in listed if item is not None]


async def purge_marked(provider: OcisFileProvider, space: MarkedObject) -> StepResult:
    """Disable and purge ``space`` as the teardown does, only while its description still names the tenant it
    was listed with; a space already gone counts as purged."""
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
    events = await provider._purge([drive])
    purged = any(event.startswith("purged") for event in events)
    message = f"purged {what}" if purged else f"{what} was already gone"
    return StepResult(state="ok", reason="Purged", message=message, events=events)
