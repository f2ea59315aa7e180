"""The identity step over authentik: one group per tenant, found by stored pk, else created (adopted by our marker)."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractContextManager
from typing import Any

from tenantry.integrations.errors import (
    PermanentStepError,
    Reason,
    StepError,
    TransientStepError,
    translated,
)
from tenantry.integrations.ports import ADOPT, MarkedObject, PlanAction, PlannedChange, StepResult, TenantSpec

from .client import AuthentikClient
from .errors import (
    AuthentikAuthError,
    AuthentikConnectionError,
    AuthentikError,
    AuthentikForbiddenError,
    AuthentikNotFoundError,
    AuthentikRateLimitError,
    AuthentikServerError,
    AuthentikTimeoutError,
    AuthentikValidationError,
)
from .inventory import GroupInventory
from .models import Group

MANAGED_BY = "tenantry"
SUSPENDED = "suspended"  # the attribute that marks a suspended tenant's group
MEMBER_SUSPENDED = "tenantry_suspended"  # marks an account Tenantry deactivated for a suspension
GROUP_PK = "groupPk"
_GROUP_PERMISSIONS = (
    "authentik_core add_group, change_group, view_group and delete_group "
    "(and disable_group_superuser, to undo a superuser flag set on a tenant group)"
)


def translate_error(  # noqa: PLR0911 - one case per error class reads best
    err: AuthentikError, *, credentials: str = "TENANTRY_AUTHENTIK_TOKEN"
) -> StepError:
    """The one place authentik client errors become step errors: what is retried, what a human must fix."""
    match err:
        case AuthentikForbiddenError():
            return PermanentStepError(
                f"{err}; give the token's user a role with the permissions {_GROUP_PERMISSIONS}",
                reason=Reason.FORBIDDEN,
            )
        case AuthentikAuthError():
            return PermanentStepError(
                f"authentik rejected the API token ({err.status}): {err.detail}; check {credentials}",
                reason=Reason.AUTHENTICATION_FAILED,
            )
        case AuthentikValidationError():
            fields = "; ".join(f"{key}: {' '.join(msgs)}" for key, msgs in err.field_errors.items())
            return PermanentStepError(
                f"authentik refused the request (400): {fields or err.detail}", reason=Reason.VALIDATION_FAILED
            )
        case AuthentikNotFoundError():
            return PermanentStepError(
                f"authentik answered 404 where an object was expected: {err.detail}; "
                "check that the configured authentik URL is the server's root",
                reason=Reason.NOT_FOUND,
            )
        case AuthentikRateLimitError():
            hint = f"; retry after {err.retry_after:g}s" if err.retry_after is not None else ""
            return TransientStepError(
                f"authentik is rate limiting requests (429){hint}",
                reason=Reason.RATE_LIMITED,
                retry_after=err.retry_after,
            )
        case AuthentikServerError():
            return TransientStepError(
                f"authentik answered {err.status} ({err.detail}); will retry",
                reason=Reason.UPSTREAM_ERROR,
                retry_after=err.retry_after,
            )
        case AuthentikConnectionError():
            return TransientStepError(str(err), reason=Reason.UPSTREAM_UNREACHABLE)
        case AuthentikTimeoutError():
            return TransientStepError(str(err), reason=Reason.UPSTREAM_TIMEOUT)
        case _:
            # Another status, or a body that is not what the API documents: retrying the same call won't help.
            return PermanentStepError(
                f"{err}; check that the configured authentik URL is the server's root and its release is supported",
                reason=Reason.UNEXPECTED_RESPONSE,
            )


class AuthentikIdentityProvider:
    """``IdentityProvider`` over authentik: a group named ``<prefix><slug>`` whose attributes mark it ours.

    Names alone are never trusted (they are case-sensitive and anyone may create one); a group is ours when
    its ``attributes.tenant_id`` is the tenant's id. Attribute keys we do not own are left untouched.
    """

    def __init__(
        self,
        client: AuthentikClient,
        *,
        group_prefix: str = "tenant-",
        credentials_setting: str = "TENANTRY_AUTHENTIK_TOKEN",
    ) -> None:
        self._client = client
        self._prefix = group_prefix
        self._credentials = credentials_setting  # what an operator should check after a refused token
        self._inventory = GroupInventory(client, managed_by=MANAGED_BY, key=GROUP_PK)

    def group_name(self, tenant: TenantSpec) -> str:
        return f"{self._prefix}{tenant.slug}"

    @staticmethod
    def group_attributes(tenant: TenantSpec) -> dict[str, object]:
        """The attribute keys we own. ``suspended`` is there only while the tenant is suspended, so a resume
        leaves the group exactly as it was before."""
        owned: dict[str, object] = {"tenant_slug": tenant.slug, "tenant_id": tenant.id, "managed_by": MANAGED_BY}
        if tenant.suspended:
            owned[SUSPENDED] = True
        return owned

    def drift(self, group: Group, tenant: TenantSpec) -> dict[str, tuple[Any, Any]]:
        """What differs from what ensure wants: the name, our attribute keys (``None`` wanted: remove the
        key), and the superuser flag (a tenant group must never be one)."""
        changes: dict[str, tuple[Any, Any]] = {}
        name = self.group_name(tenant)
        if group.name != name:
            changes["name"] = (group.name, name)
        wanted = self.group_attributes(tenant)
        for key, value in wanted.items():
            if group.attributes.get(key) != value:
                changes[f"attributes.{key}"] = (group.attributes.get(key), value)
        if SUSPENDED not in wanted and SUSPENDED in group.attributes:
            changes[f"attributes.{SUSPENDED}"] = (group.attributes[SUSPENDED], None)
        if group.is_superuser:
            changes["is_superuser"] = (True, False)
        return changes

    def group_drift(self, tenant: TenantSpec, listed: MarkedObject) -> str | None:
        """What a listed group (its name, attributes and superuser flag as listed) differs in, for the bulk resync."""
        state = listed.state
        attributes = dict(state.get("attributes") or {})
        group = Group(
            pk=listed.id, name=listed.name, is_superuser=bool(state.get("is_superuser")), attributes=attributes
        )
        changes = self.drift(group, tenant)
        return f"group {listed.name} differs in {', '.join(sorted(changes))}" if changes else None

    def _translated(self) -> AbstractContextManager[None]:
        return translated(AuthentikError, functools.partial(translate_error, credentials=self._credentials))

    async def ensure_tenant_group(self, tenant: TenantSpec, ids: Mapping[str, str]) -> StepResult:
        with self._translated():
            return await self._ensure(tenant, ids)

    async def delete_tenant_group(self, tenant: TenantSpec, ids: Mapping[str, str]) -> StepResult:
        with self._translated():
            return await self._delete(tenant, ids)

    async def plan_tenant_group(
        self, tenant: TenantSpec, ids: Mapping[str, str], *, teardown: bool
    ) -> list[PlannedChange]:
        """What ensure (or, with ``teardown``, delete) would change, found by ensure's own lookups, writing nothing."""
        with self._translated():
            return await (self._plan_delete(tenant, ids) if teardown else self._plan_ensure(tenant, ids))

    async def list_tenant_groups(self) -> list[MarkedObject]:
        """Every group marked as Tenantry's, whichever tenant it names; reads only."""
        with self._translated():
            return await self._inventory.marked()

    async def tenant_group_pages(self) -> AsyncIterator[list[MarkedObject]]:
        """The groups of ``list_tenant_groups``, one page of the listing at a time (the bulk resync)."""
        with self._translated():
            async for page in self._inventory.pages():
                yield page

    async def delete_marked_group(self, group: MarkedObject) -> StepResult:
        """Delete one listed group, only while it is still marked for the tenant it was listed with."""
        with self._translated():
            return await self._inventory.delete(group)

    async def ping(self) -> None:
        with self._translated():
            await self._client.ping()

    # -- ensure -------------------------------------------------------------------------------------

    async def _ensure(self, tenant: TenantSpec, ids: Mapping[str, str]) -> StepResult:
        name = self.group_name(tenant)
        events: list[str] = []
        stored = ids.get(GROUP_PK)
        lost_pk: str | None = None
        if stored:
            try:
                current = await self._client.get_group(stored)
            except AuthentikNotFoundError:
                lost_pk = stored
            else:
                owner = current.attributes.get("tenant_id")
                # A stored pk is our own record of the group, so a missing marker is drift to repair; a
                # marker naming another tenant means the id is not ours to touch, unless an admin handed it over.
                if owner is None or owner == tenant.id or ids.get(ADOPT) == stored:
                    if owner not in (None, tenant.id):
                        events.append(f"took over group {current.name} ({current.pk}), marked for tenant {owner!r}")
                    current = await self._repair(current, tenant, events)
                    return self._result(
                        "Ready", f"authentik group {current.name} ({current.pk}) is in place", current, events
                    )
                events.append(
                    f"stored group {stored} is marked for tenant {owner!r}, not this one; "
                    "left it alone and looked for ours"
                )

        if stored:
            # The stored pk was no use: a group marked for this tenant may still exist under another name.
            group = await self._find_marked(tenant, events)
            if group is not None:
                gone = f"group {name} ({lost_pk}) was deleted out of band; " if lost_pk else ""
                events.append(f"{gone}adopted {group.name} ({group.pk}) marked for this tenant")
                return await self._adopt(group, tenant, events)

        # Create first: a fresh tenant's group costs one request; a taken name is looked at only when refused.
        group, adopted = await self._create(tenant, name)
        if adopted is not None:
            events.append(adopted)
            return await self._adopt(group, tenant, events)
        if lost_pk:
            events.append(f"group {name} ({lost_pk}) was deleted out of band; recreated as {group.pk}")
        else:
            events.append(f"created group {group.name} ({group.pk})")
        return self._result("Created", f"created authentik group {group.name} ({group.pk})", group, events)

    async def _marked_groups(self, tenant: TenantSpec) -> list[Group]:
        found = await self._client.find_groups(attributes={"tenant_id": tenant.id})
        # authentik drops an attribute filter it cannot apply and returns everything: check each hit.
        return [group for group in found if group.attributes.get("tenant_id") == tenant.id]

    async def _find_marked(self, tenant: TenantSpec, events: list[str]) -> Group | None:
        marked = await self._marked_groups(tenant)
        if not marked:
            return None
        name = self.group_name(tenant)
        # Releases before 2025.12 could end up with duplicates; pick one deterministically, touch none.
        marked.sort(key=lambda group: (group.name != name, group.pk))
        if len(marked) > 1:
            others = ", ".join(f"{group.name} ({group.pk})" for group in marked[1:])
            events.append(f"{len(marked)} groups are marked for this tenant; using {marked[0].pk}, not {others}")
        return marked[0]

    async def _find_by_name(self, tenant: TenantSpec, name: str) -> Group | None:
        """The group named ``name`` if ours; None if there is none; NameConflict if it is someone else's."""
        same = [group for group in await self._client.find_groups(name=name) if group.name == name]
        if not same:
            return None
        for group in same:
            if group.attributes.get("tenant_id") == tenant.id:
                return group
        other = same[0]
        owner = other.attributes.get("tenant_id")
        marker = f"is marked for tenant {owner!r}" if owner is not None else "has no tenant_id attribute"
        raise PermanentStepError(
            f"authentik already has a group named {name!r} (pk {other.pk}) that {marker}; rename or delete "
            f"that group, or set its attribute tenant_id to {tenant.id!r} if it belongs to this tenant",
            reason=Reason.NAME_CONFLICT,
        )

    async def _create(self, tenant: TenantSpec, name: str) -> tuple[Group, str | None]:
        """Create the group, or take the one holding its name if it carries our marker (else NameConflict).
        Returns the group and, when one was taken instead, the event saying so."""
        try:
            return await self._client.create_group(name, self.group_attributes(tenant)), None
        except AuthentikValidationError as err:
            # authentik refuses a taken name with 400 {"name": [...]}: "Group with this name already exists."
            # since 2025.12 (a unique column), "This field must be unique." before. Any other field is ours to fix.
            if "name" not in err.field_errors:
                raise
            group = await self._find_by_name(tenant, name)
            if group is None:
                raise
            return group, f"adopted existing group {group.name} ({group.pk}) marked for this tenant"
        except AuthentikServerError:
            # Since 2025.12 a lost create race crashes on the unique constraint, which authentik answers with a
            # 405 from its error page; any failure may also have created the group before it happened.
            # Re-read so that we never create twice; with nothing found, the step is retried later.
            group = await self._find_by_name(tenant, name)
            if group is None:
                raise
            return group, f"adopted group {group.name} ({group.pk}) created concurrently"

    async def _repair(self, group: Group, tenant: TenantSpec, events: list[str]) -> Group:
        """Bring name, our attribute keys and is_superuser back in line with one PATCH, if they drifted; and
        while the tenant is suspended (or just resumed), its managed members' accounts with it."""
        drift = self.drift(group, tenant)
        resuming = f"attributes.{SUSPENDED}" in drift and not tenant.suspended
        if drift:
            group = await self._patch(group, tenant, drift, events)
        if tenant.suspended or resuming:
            await self._suspend_members(group, suspended=tenant.suspended, events=events)
        return group

    async def _suspend_members(self, group: Group, *, suspended: bool, events: list[str]) -> None:
        """Deactivate the accounts Tenantry manages in the group (``attributes.managed_by``) while the tenant
        is suspended, marking each one it deactivated; on resume, reactivate exactly those. Accounts that
        were already inactive, and people Tenantry does not manage, are left as they are."""
        for member in await self._client.group_members(group.pk):
            if member.attributes.get("managed_by") != MANAGED_BY:
                continue
            marked = bool(member.attributes.get(MEMBER_SUSPENDED))
            if suspended and member.is_active:
                attributes = {**member.attributes, MEMBER_SUSPENDED: True}
                await self._client.update_user(member.pk, is_active=False, attributes=attributes)
                events.append(f"deactivated {member.username} while the tenant is suspended")
            elif not suspended and marked:
                attributes = {k: v for k, v in member.attributes.items() if k != MEMBER_SUSPENDED}
                await self._client.update_user(member.pk, is_active=True, attributes=attributes)
                events.append(f"reactivated {member.username}")

    async def _patch(
        self, group: Group, tenant: TenantSpec, drift: dict[str, tuple[Any, Any]], events: list[str]
    ) -> Group:
        new_name = drift["name"][1] if "name" in drift else None
        merged: dict[str, object] | None = None
        attributes = [key.removeprefix("attributes.") for key in drift if key.startswith("attributes.")]
        if attributes:
            merged = {**group.attributes, **self.group_attributes(tenant)}
            if SUSPENDED in attributes and not tenant.suspended:
                merged.pop(SUSPENDED, None)
        superuser = False if "is_superuser" in drift else None
        changes = [f"{key} {old!r} -> {new!r}" for key, (old, new) in drift.items()]
        try:
            updated = await self._client.update_group(
                group.pk, name=new_name, attributes=merged, is_superuser=superuser
            )
        except AuthentikNotFoundError as err:
            raise TransientStepError(
                f"group {group.name} ({group.pk}) disappeared while being repaired; will look again",
                reason=Reason.UPSTREAM_CHANGED,
            ) from err
        what = "marked the tenant suspended on" if tenant.suspended and SUSPENDED in attributes else "repaired drift on"
        events.append(f"{what} group {updated.name} ({updated.pk}): {'; '.join(changes)}")
        return updated

    async def _adopt(self, group: Group, tenant: TenantSpec, events: list[str]) -> StepResult:
        group = await self._repair(group, tenant, events)
        return self._result("Adopted", f"adopted authentik group {group.name} ({group.pk})", group, events)

    @staticmethod
    def _result(reason: str, message: str, group: Group, events: list[str]) -> StepResult:
        return StepResult(state="ok", reason=reason, message=message, ids={GROUP_PK: group.pk}, events=events)

    # -- delete -------------------------------------------------------------------------------------

    async def _teardown_targets(self, tenant: TenantSpec, ids: Mapping[str, str]) -> tuple[list[Group], list[str]]:
        """The groups a teardown deletes: the stored one if it still exists and carries this tenant's marker,
        else every group marked for the tenant. A group without our marker is never deleted."""
        stored = ids.get(GROUP_PK)
        if not stored:
            return await self._marked_groups(tenant), []
        try:
            group = await self._client.get_group(stored)
        except AuthentikNotFoundError:
            return [], [f"group {self.group_name(tenant)} ({stored}) was already gone"]
        if group.attributes.get("tenant_id") != tenant.id:
            return [], [f"left group {group.name} ({group.pk}) alone: it is not marked as this tenant's"]
        return [group], []

    async def _delete(self, tenant: TenantSpec, ids: Mapping[str, str]) -> StepResult:
        name = self.group_name(tenant)
        targets, events = await self._teardown_targets(tenant, ids)
        for group in targets:
            try:
                await self._client.delete_group(group.pk)
            except AuthentikNotFoundError:
                events.append(f"group {group.name} ({group.pk}) was already gone")
            else:
                events.append(f"deleted group {group.name} ({group.pk})")
        message = f"authentik group {name} is gone" if targets else f"no authentik group {name} of ours to delete"
        return StepResult(state="ok", reason="Deleted", message=message, events=events)

    # -- plan ---------------------------------------------------------------------------------------

    async def _plan_ensure(self, tenant: TenantSpec, ids: Mapping[str, str]) -> list[PlannedChange]:
        """_ensure's path (stored pk, then the marker if that pk was no use, then the name a create would be refused
        for), ending in a comparison instead of a write."""
        name = self.group_name(tenant)
        notes: list[str] = []
        stored = ids.get(GROUP_PK)
        if stored:
            try:
                current = await self._client.get_group(stored)
            except AuthentikNotFoundError:
                notes.append(f"group {stored} was deleted out of band")
            else:
                owner = current.attributes.get("tenant_id")
                if owner is None or owner == tenant.id or ids.get(ADOPT) == stored:
                    return [self._planned(current, tenant, notes)]
                notes.append(
                    f"stored group {stored} is marked for tenant {owner!r}, not this one; it would be left alone"
                )
        group = await self._find_marked(tenant, notes) if stored else None
        if group is None:
            try:
                group = await self._find_by_name(tenant, name)
            except PermanentStepError as err:
                notes.append(f"ensure would stop with {err.reason}: {err.message}")
        if group is not None:
            notes.append(f"would adopt group {group.name} ({group.pk}) marked for this tenant")
            return [self._planned(group, tenant, notes)]
        wanted = {"name": name, **{f"attributes.{key}": value for key, value in self.group_attributes(tenant).items()}}
        created = {field: (None, value) for field, value in wanted.items()}
        return [PlannedChange(f"authentik group {name}", "create", created, "; ".join(notes))]

    def _planned(self, group: Group, tenant: TenantSpec, notes: list[str]) -> PlannedChange:
        """What _repair would change on ``group``: the name, our attribute keys and the superuser flag."""
        changes = self.drift(group, tenant)
        action: PlanAction = "update" if changes else "unchanged"
        return PlannedChange(f"authentik group {group.name} ({group.pk})", action, changes, "; ".join(notes))

    async def _plan_delete(self, tenant: TenantSpec, ids: Mapping[str, str]) -> list[PlannedChange]:
        """What _delete would delete (see _teardown_targets)."""
        groups, _notes = await self._teardown_targets(tenant, ids)
        return [
            PlannedChange(f"authentik group {group.name} ({group.pk})", "delete", {"name": (group.name, None)})
            for group in groups
        ]
