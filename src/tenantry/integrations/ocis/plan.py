"""The files step's dry run: what ensure or purge would do to the tenant's oCIS space, read without a write."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tenantry.integrations.ports import PlanAction, PlannedChange, TenantSpec

from .models import Drive

if TYPE_CHECKING:
    from .adapter import OcisFileProvider


async def plan_space(provider: OcisFileProvider, tenant: TenantSpec, ids: Mapping[str, str]) -> list[PlannedChange]:
    """What ``ensure_tenant_space`` would do: create the space, bring it in line, or leave it as it is.

    The lookups (stored id, then our marker) and the drift check are the adapter's own, private to this package,
    so the plan finds the space ensure would act on and names the fields ensure would set.
    """
    notes: list[str] = []
    drive, lost_id = await provider._stored_drive(ids)
    adopted = drive is None
    if drive is None:
        drive, duplicates = await provider._marked_drives(tenant)
        if lost_id is not None:
            notes.append(f"space {lost_id} no longer exists")
        if drive is not None:
            notes.append(f"would adopt space {drive.id} carrying our marker")
        if duplicates:
            notes.append(f"spaces {', '.join(duplicates)} also carry our marker and would be left untouched")
    if drive is None:
        return [_create(provider, tenant, notes)]
    changes: dict[str, tuple[Any, Any]] = {}
    # A stored space that is to stay disabled is not repaired; one being adopted is restored first, so it is.
    if adopted or not (drive.disabled and tenant.suspended):
        new_name, new_quota, new_description = provider._drift(drive, tenant)
        if new_name is not None:
            changes["name"] = (drive.name, new_name)
        if new_quota is not None:
            changes["quota"] = (drive.quota_total, new_quota)
        if new_description is not None:
            changes["description"] = (drive.description, new_description)
    if drive.disabled != tenant.suspended:
        changes["disabled"] = (drive.disabled, tenant.suspended)
    if adopted and drive.disabled and tenant.suspended:
        notes.append("adopting restores it, and it would be disabled again while the tenant is suspended")
    action: PlanAction = "update" if changes else "unchanged"
    return [PlannedChange(_target(drive), action, changes, "; ".join(notes))]


async def plan_purge(provider: OcisFileProvider, tenant: TenantSpec, ids: Mapping[str, str]) -> list[PlannedChange]:
    """What ``purge_tenant_space`` would delete: the stored space and every other one carrying our marker."""
    return [
        PlannedChange(
            _target(drive),
            "delete",
            {"name": (drive.name, None)},
            "already disabled; would be purged" if drive.disabled else "would be disabled, then purged",
        )
        for drive in await provider._teardown_targets(tenant, ids)
    ]


def _create(provider: OcisFileProvider, tenant: TenantSpec, notes: list[str]) -> PlannedChange:
    name = provider.space_name(tenant.name, fallback=tenant.slug)
    wanted = {
        "name": name,
        "quota": tenant.quota_bytes,
        "description": provider.description(tenant),
        "disabled": tenant.suspended,
    }
    changes = {field: (None, value) for field, value in wanted.items()}
    return PlannedChange(f"oCIS space {name!r}", "create", changes, "; ".join(notes))


def _target(drive: Drive) -> str:
    return f"oCIS space {drive.name!r} ({drive.id})"
