"""Every authentik group Tenantry marked, whichever tenant it names, and deleting one of them on its own."""

from __future__ import annotations

from collections.abc import AsyncIterator

from tenantry.integrations.errors import PermanentStepError, Reason
from tenantry.integrations.ports import MarkedObject, StepResult

from .client import AuthentikClient
from .errors import AuthentikNotFoundError
from .models import Group


class GroupInventory:
    """The adapter's ``list_tenant_groups`` and ``delete_marked_group``: groups whose attributes say
    ``managed_by`` Tenantry, and the deletion of one while it still names the tenant it was listed with."""

    def __init__(self, client: AuthentikClient, *, managed_by: str, key: str) -> None:
        self._client = client
        self._managed_by = managed_by
        self._key = key  # the id a step stores for its group

    async def marked(self) -> list[MarkedObject]:
        return [group async for page in self.pages() for group in page]

    async def pages(self) -> AsyncIterator[list[MarkedObject]]:
        """The marked groups, one page of authentik's listing at a time (a caller need not hold them all)."""
        async for page in self._client.group_pages(attributes={"managed_by": self._managed_by}):
            # authentik drops an attribute filter it cannot apply and returns everything: check each hit.
            yield [self._listed(group) for group in page if group.attributes.get("managed_by") == self._managed_by]

    def _listed(self, group: Group) -> MarkedObject:
        owner, slug = group.attributes.get("tenant_id"), group.attributes.get("tenant_slug")
        return MarkedObject(
            id=group.pk,
            name=group.name,
            tenant_id=str(owner) if owner else None,
            ids={self._key: group.pk},
            slug=str(slug) if slug else None,
            # The listed group's own attributes, not a copy: nothing else holds the group.
            state={"attributes": group.attributes, "is_superuser": group.is_superuser},
        )

    async def delete(self, group: MarkedObject) -> StepResult:
        """Delete ``group`` as a teardown does: only while its ``tenant_id`` attribute still names the tenant it
        was listed with (a group without one is never deleted); one already gone counts as deleted."""
        what = f"authentik group {group.name} ({group.id})"
        try:
            current = await self._client.get_group(group.id)
        except AuthentikNotFoundError:
            return StepResult(state="ok", reason="Deleted", message=f"{what} was already gone")
        owner = current.attributes.get("tenant_id")
        if group.tenant_id is None or owner != group.tenant_id:
            marker = f"is marked for tenant {owner!r}" if owner is not None else "has no tenant_id attribute"
            raise PermanentStepError(f"{what} {marker}; left it alone", reason=Reason.NOT_MARKED)
        try:
            await self._client.delete_group(current.pk)
        except AuthentikNotFoundError:
            return StepResult(state="ok", reason="Deleted", message=f"{what} was already gone")
        events = [f"deleted group {current.name} ({current.pk})"]
        return StepResult(state="ok", reason="Deleted", message=f"deleted {what}", events=events)
