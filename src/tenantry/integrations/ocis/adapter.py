"""The files step on oCIS: one project space per tenant, with the tenant's quota, found again by our marker.

Authentication, chosen when the client is built (both act as a dedicated service user holding the oCIS
**Space Admin** role, which may create, list, re-quota, disable and purge project spaces):

* **App token** (documented by oCIS; needs the ``auth-app`` service and ``PROXY_ENABLE_APP_AUTH=true``):
  ``httpx.BasicAuth(<service user name>, <app token>)``. Tokens expire and must be rotated.
* **OAuth2 client credentials** from authentik (not an oCIS-documented path; oCIS accepts any JWT from its
  issuer, so test it on staging first): ``ClientCredentialsAuth(<authentik>/application/o/token/,
  client_id, client_secret, scope="openid profile", http)`` from :mod:`tenantry.integrations.oauth`; the
  token must resolve to that service user.

A space is ours when its description carries ``<marker_prefix><tenant id>``; its name is never trusted,
since oCIS space names are neither unique nor stable.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractContextManager, suppress

from tenantry.integrations.errors import (
    Reason,
    TransientStepError,
    translated,
)
from tenantry.integrations.oauth import OAuthError
from tenantry.integrations.ports import (
    UNKNOWN_PAST,
    CreateJournal,
    MarkedObject,
    PlannedChange,
    StepResult,
    TenantSpec,
)

from .client import OcisClient
from .errors import (
    OcisError,
    OcisNotFoundError,
    OcisResponseError,
)
from .inventory import is_empty, marked_space_pages, marked_spaces, purge_marked, space_drift
from .lookups import MarkerLookups
from .models import Drive
from .plan import plan_purge, plan_space
from .translation import translate_error

DRIVE_ID = "driveId"
# oCIS refuses these in space names (and names longer than 255 bytes, or empty after trimming).
_FORBIDDEN = re.compile(r'[/\\.:?*"><|\x00-\x1f\x7f]')
_MAX_NAME_BYTES = 255


def _truncate_utf8(text: str, limit: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", errors="ignore")


def _clean_name(text: str) -> str:
    text = unicodedata.normalize("NFC", text)
    text = " ".join(_FORBIDDEN.sub(" ", text).split())
    return _truncate_utf8(text, _MAX_NAME_BYTES).strip()


class OcisFileProvider:
    """:class:`~tenantry.integrations.ports.FileProvider` over an :class:`OcisClient`."""

    def __init__(
        self,
        client: OcisClient,
        *,
        marker_prefix: str = "tenantry:tenant:",
        credentials_hint: str = "TENANTRY_OCIS_USERNAME and TENANTRY_OCIS_APP_TOKEN",
    ) -> None:
        self._client = client
        self._lookups = MarkerLookups(client)  # lookups by marker made at the same time share one listing
        self.marker_prefix = marker_prefix
        self._credentials_hint = credentials_hint  # what an operator should check after a 401

    # -- naming and ownership -------------------------------------------------------------------------

    def space_name(self, tenant_name: str, *, fallback: str = "Workspace") -> str:
        """A name oCIS accepts: forbidden characters become spaces, whitespace collapsed, <= 255 bytes."""
        return _clean_name(tenant_name) or _clean_name(fallback) or "Workspace"

    def marker(self, tenant: TenantSpec) -> str:
        """The tag in a space's description that says the space belongs to ``tenant``."""
        return f"{self.marker_prefix}{tenant.id}"

    def description(self, tenant: TenantSpec) -> str:
        """The description a tenant's space is created with."""
        return f"Workspace files for {tenant.name} [{self.marker(tenant)}]"

    def is_ours(self, drive: Drive, tenant: TenantSpec) -> bool:
        """Whether ``drive`` carries the tenant's marker (a longer id sharing the prefix does not count)."""
        if drive.description is None:
            return False
        return _marker_pattern(self.marker(tenant)).search(drive.description) is not None

    # -- the port -------------------------------------------------------------------------------------

    def _translated(self) -> AbstractContextManager[None]:
        return translated(
            (OcisError, OAuthError), functools.partial(translate_error, credentials=self._credentials_hint)
        )

    async def ensure_tenant_space(
        self, tenant: TenantSpec, ids: Mapping[str, str], journal: CreateJournal = UNKNOWN_PAST
    ) -> StepResult:
        """Find the tenant's space by stored id, else (when an earlier attempt may have made one) by marker, else
        create it; then repair drift. While the tenant is suspended the space is disabled (its members no longer
        see it; nothing is deleted).

        oCIS does not refuse a second space of the same name, so a create whose outcome we did not see (a
        timeout, a dropped connection) must not simply be sent again: ``journal`` says whether an earlier
        attempt may have created the space, and while such a create may still be completing upstream this
        attempt waits for it instead of creating another.
        """
        events: list[str] = []
        with self._translated():
            drive, lost_id = await self._by_stored_id(ids, events, keep_disabled=tenant.suspended)
            reason = "Ready"
            if drive is None and (lost_id is not None or journal.in_doubt):
                drive = await self._adopt(tenant, events)
                reason = "Adopted"
                if drive is not None and lost_id is not None:
                    events.append(f"space {lost_id} no longer exists; adopted space {drive.id} carrying our marker")
            if drive is None:
                _refuse_while_settling(journal)
                await journal.begin()
                drive = await self._create(tenant, events, journal)
                reason = "Created"
                if lost_id is not None:
                    events.append(f"space {lost_id} was deleted out of band; recreated as {drive.id}")
            if not drive.disabled:
                drive = await self._repair(drive, tenant, events)
            if tenant.suspended and not drive.disabled:
                with _vanished(drive):
                    await self._client.disable_drive(drive.id)
                events.append(f"disabled space {drive.id} while the tenant is suspended")
        quota = drive.quota_total
        if tenant.suspended:
            reason, message = "Disabled", f"space {drive.name!r} ({drive.id}) is disabled while the tenant is suspended"
        else:
            message = f"space {drive.name!r} ({drive.id}) is ready with a quota of {quota} bytes"
        return StepResult(
            state="ok",
            reason=reason,
            message=message,
            ids={DRIVE_ID: drive.id},
            data={"quotaBytes": quota, "webUrl": drive.web_url},
            events=events,
        )

    async def disable_tenant_space(self, tenant: TenantSpec, ids: Mapping[str, str]) -> StepResult:
        """Disable the tenant's space (data kept); done when it is gone or already disabled."""
        events: list[str] = []
        with self._translated():
            targets = await self._teardown_targets(tenant, ids)
            for drive in targets:
                if drive.disabled:
                    continue
                try:
                    await self._client.disable_drive(drive.id)
                except OcisNotFoundError:
                    continue
                events.append(f"disabled space {drive.id}")
        kept = {DRIVE_ID: targets[0].id} if targets else {}
        if not targets:
            return StepResult(state="ok", reason="NotFound", message="the tenant has no space to disable", ids=kept)
        reason = "Disabled" if events else "AlreadyDisabled"
        return StepResult(
            state="ok", reason=reason, message=f"space {targets[0].id} is disabled", ids=kept, events=events
        )

    async def purge_tenant_space(self, tenant: TenantSpec, ids: Mapping[str, str]) -> StepResult:
        """Delete the tenant's space for good, disabling it first if needed; done when it is gone."""
        with self._translated():
            events = await self._purge(await self._teardown_targets(tenant, ids))
        reason = "Purged" if events else "NotFound"
        message = "the tenant's space is purged" if events else "the tenant has no space left to purge"
        return StepResult(state="ok", reason=reason, message=message, events=events)

    async def _purge(self, drives: list[Drive]) -> list[str]:
        """Disable (if needed) and purge each space; one already gone is skipped. Returns what was done."""
        events: list[str] = []
        for drive in drives:
            try:
                if not drive.disabled:
                    await self._client.disable_drive(drive.id)
                    events.append(f"disabled space {drive.id}")
                await self._client.purge_drive(drive.id)
            except OcisNotFoundError:
                continue
            events.append(f"purged space {drive.id}")
        return events

    async def list_tenant_spaces(self) -> list[MarkedObject]:
        """Every project space marked as a tenant's, whichever tenant it names; reads only."""
        with self._translated():
            return await marked_spaces(self, DRIVE_ID)

    async def tenant_space_pages(self) -> AsyncIterator[list[MarkedObject]]:
        """The spaces of ``list_tenant_spaces``, a few hundred at a time as the listing streams in (the bulk
        resync)."""
        with self._translated():
            async for page in marked_space_pages(self, DRIVE_ID):
                yield page

    async def purge_marked_space(self, space: MarkedObject) -> StepResult:
        """Disable and purge one listed space, only while it is still marked for the tenant it was listed with."""
        with self._translated():
            return await purge_marked(self, space)

    async def purge_empty_duplicate(self, space: MarkedObject) -> StepResult:
        """Purge a listed space like ``purge_marked_space``, only while oCIS still reports it uses zero bytes."""
        with self._translated():
            return await purge_marked(self, space, only_if_empty=True)

    @staticmethod
    def space_listed_empty(space: MarkedObject) -> bool:
        """Whether the listing showed the space empty (oCIS reported it uses zero bytes)."""
        return is_empty(space)

    def space_drift(self, tenant: TenantSpec, space: MarkedObject) -> str | None:
        """What a listing shows differs from the tenant's desired space (None when it matches)."""
        return space_drift(self, tenant, space)

    async def plan_tenant_space(
        self, tenant: TenantSpec, ids: Mapping[str, str], *, teardown: bool
    ) -> list[PlannedChange]:
        """What ensure (or, with ``teardown``, purge) would do, found by their own lookups, writing nothing."""
        with self._translated():
            return await (plan_purge(self, tenant, ids) if teardown else plan_space(self, tenant, ids))

    async def ping(self) -> None:
        """An authenticated ``/me``: proves reachability and credentials without listing every space."""
        with self._translated():
            await self._client.me()

    # -- steps of ensure ------------------------------------------------------------------------------

    async def _by_stored_id(
        self, ids: Mapping[str, str], events: list[str], *, keep_disabled: bool = False
    ) -> tuple[Drive | None, str | None]:
        """The space behind the stored id (restored if disabled, unless it is to stay so), or ``(None, lost id)``."""
        drive, lost_id = await self._stored_drive(ids)
        if drive is not None and drive.disabled and not keep_disabled:
            with _vanished(drive):
                drive = await self._client.restore_drive(drive.id)
            events.append(f"space {drive.id} was disabled; restored")
        return drive, lost_id

    async def _stored_drive(self, ids: Mapping[str, str]) -> tuple[Drive | None, str | None]:
        """The space behind the stored id as it is, or ``(None, lost id)`` when it no longer exists."""
        drive_id = ids.get(DRIVE_ID)
        if not drive_id:
            return None, None
        try:
            return await self._client.get_drive(drive_id), None
        except OcisNotFoundError:
            return None, drive_id

    async def _adopt(self, tenant: TenantSpec, events: list[str]) -> Drive | None:
        kept, duplicates = await self._marked_drives(tenant)
        if kept is None:
            return None
        events.append(f"adopted existing space {kept.id} carrying our marker")
        if duplicates:
            events.append(
                f"spaces {', '.join(duplicates)} also carry our marker; kept {kept.id}, "
                "left the others untouched for a human to remove"
            )
        if kept.disabled:
            with _vanished(kept):
                kept = await self._client.restore_drive(kept.id)
            events.append(f"space {kept.id} was disabled; restored")
        return kept

    async def _marked_drives(self, tenant: TenantSpec) -> tuple[Drive | None, list[str]]:
        """The space to adopt (the oldest carrying our marker) and the ids of the others carrying it."""
        listed = await self._lookups.find(self.marker(tenant))
        ours = [d for d in listed if self.is_ours(d, tenant)]
        if not ours:
            return None, []
        kept = _oldest(ours)
        return kept, [d.id for d in ours if d.id != kept.id]

    async def _create(self, tenant: TenantSpec, events: list[str], journal: CreateJournal) -> Drive:
        name = self.space_name(tenant.name, fallback=tenant.slug)
        try:
            drive = await self._client.create_drive(
                name, description=self.description(tenant), quota_total=tenant.quota_bytes
            )
        except OcisResponseError as err:
            # oCIS refused it: nothing was created. A gateway's 502/504 says nothing of what oCIS did behind it,
            # and neither do a timeout or a broken connection (not refusals): those keep the create in doubt.
            if err.status >= 400 and err.status not in (502, 504):
                journal.refused()
            raise
        events.append(f"created space {drive.id} {name!r} with a quota of {tenant.quota_bytes} bytes")
        return drive

    def _drift(self, drive: Drive, tenant: TenantSpec) -> tuple[str | None, int | None, str | None]:
        """The name, quota and description _repair would set on ``drive`` (None for each that is right)."""
        name = self.space_name(tenant.name, fallback=tenant.slug)
        new_name = name if drive.name != name else None
        new_quota = tenant.quota_bytes if drive.quota_total != tenant.quota_bytes else None
        # Someone may have edited the description; without the marker the space could not be found again.
        new_description = self.description(tenant) if not self.is_ours(drive, tenant) else None
        return new_name, new_quota, new_description

    async def _repair(self, drive: Drive, tenant: TenantSpec, events: list[str]) -> Drive:
        new_name, new_quota, new_description = self._drift(drive, tenant)
        if new_name is None and new_quota is None and new_description is None:
            return drive
        with _vanished(drive):
            updated = await self._client.update_drive(
                drive.id, name=new_name, description=new_description, quota_total=new_quota
            )
        if new_name is not None:
            events.append(f"space name changed from {drive.name!r} to {new_name!r}")
        if new_quota is not None:
            events.append(f"quota changed from {drive.quota_total} to {new_quota}")
        if new_description is not None:
            events.append(f"restored our marker in the description of space {drive.id}")
        return updated

    async def _teardown_targets(self, tenant: TenantSpec, ids: Mapping[str, str]) -> list[Drive]:
        """The stored space (if it still exists) and any other space carrying our marker, disabled or not."""
        targets: list[Drive] = []
        drive_id = ids.get(DRIVE_ID)
        if drive_id:
            with suppress(OcisNotFoundError):
                targets.append(await self._client.get_drive(drive_id))
        # A disabled space keeps its description (decomposedfs StorageSpaceFromNode), so the marker finds it too.
        listed = await self._lookups.find(self.marker(tenant))
        targets += [d for d in listed if d.id != drive_id and self.is_ours(d, tenant)]
        return targets


@functools.lru_cache(maxsize=256)
def _marker_pattern(marker: str) -> re.Pattern[str]:
    # Compiled once per tenant: adopting lists every project space and tests each one against the marker.
    return re.compile(re.escape(marker) + r"(?![\w-])")


def _refuse_while_settling(journal: CreateJournal) -> None:
    """Wait out an earlier create that may still complete upstream: no space carries our marker yet."""
    settling = journal.settling_seconds()
    if settling > 0:
        raise TransientStepError(
            "an earlier request to create the space got no answer and may still complete in oCIS; no space "
            f"carrying our marker exists yet, so Tenantry looks again in {settling:.0f}s before creating one",
            reason=Reason.CREATE_UNSETTLED,
            retry_after=settling,
        )


def _oldest(drives: list[Drive]) -> Drive:
    """The earliest created space when oCIS reports creation times, else the first one listed."""
    dated = [(d.created_at, index) for index, d in enumerate(drives) if d.created_at is not None]
    if len(dated) == len(drives):
        return drives[min(dated)[1]]
    return drives[0]


def _vanished(drive: Drive) -> AbstractContextManager[None]:
    """A 404 from a space just read: it vanished meanwhile (or oCIS now hides it), so look again next time."""
    return translated(
        OcisNotFoundError,
        lambda _err: TransientStepError(
            f"space {drive.id} answered 404 while being changed: it was deleted meanwhile, or the service user "
            "may no longer change it; will look again",
            reason=Reason.UPSTREAM_CHANGED,
        ),
    )
