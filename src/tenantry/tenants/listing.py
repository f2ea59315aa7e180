"""Tenants as the reads show them, straight from rows: TenantPage's and TenantOut's JSON, no ORM or models."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic_core import to_json

from tenantry.states import STEP_ORDER, StepStatus
from tenantry.tenants.etags import etag_of

# A page of 100 tenants holds about 1,600 dates and 300 step conditions. Through the ORM and TenantOut (see
# presenter.present) each date is converted to UTC on load, then checked and formatted by pydantic, and each
# condition is a model validated and serialised again by the response model: most of a page's CPU. Here each
# row becomes plain JSON values once (a date formatted as pydantic formats an aware UTC one) and the answer is
# serialised in one call; its bytes are those the response model writes for the same tenants (tests hold them).
_RANK = {str(step): n for n, step in enumerate(STEP_ORDER)}
_ZERO = timedelta(0)
_ERROR = str(StepStatus.ERROR)


# The columns of a ``TenantRepository.listed`` row, in its order: a tenant's, its claim's state, one of its steps.
# Rows are unpacked by position (reading a Row's column by name costs ten times as much).
ListedRow = tuple[
    str, str, str, str, int, str, int, str | None, datetime, str | None, datetime, str | None, datetime | None,
    str | None,
    str | None, str, str, str, bool, int, datetime | None, datetime | None, datetime | None, datetime | None, int,
    dict[str, Any] | None,
]  # fmt: skip
_STEP = 14  # where the step's columns begin
_END = _STEP + 12  # and end (a shown tenant's row goes on with its lifecycle and whether the caller administers it)


@dataclass(frozen=True)
class ListedTenant:
    """A listed tenant: its place in the (created_at, id) order, aware UTC, and its JSON values."""

    created_at: datetime
    id: str
    body: dict[str, Any]


def utc_text(at: datetime | None) -> str | None:
    """A stored date as the API writes it: ISO 8601 in UTC with ``Z`` (as pydantic writes an aware UTC
    datetime). A naive date is UTC (SQLite stores them so)."""
    if at is None:
        return None
    offset = at.utcoffset()
    if offset is None:
        return at.isoformat() + "Z"
    if offset != _ZERO:
        at = at.astimezone(UTC)
    return at.replace(tzinfo=None).isoformat() + "Z"


def _condition(step: Sequence[Any]) -> dict[str, Any]:
    _, status, reason, message, retryable, attempts, tried, due, succeeded, changed, observed, outputs = step
    return {
        "status": status,
        "reason": reason,
        "message": message,
        "retryable": retryable,
        "attempts": attempts,
        "lastAttemptAt": utc_text(tried),
        "nextAttemptAt": utc_text(due),
        "lastSuccessAt": utc_text(succeeded),
        "lastTransitionAt": utc_text(changed),
        "observedGeneration": observed,
        "upstreamIds": {k: str(v) for k, v in (outputs or {}).items()},
    }


def _tenant(row: Sequence[Any], steps: list[Sequence[Any]]) -> ListedTenant:
    tenant_id, slug, name, status, generation, domain, quota, owner, created_at, created_by, updated_at = row[:11]
    updated_by, activated_at, claim_status = row[11:_STEP]
    steps.sort(key=lambda s: _RANK.get(s[0], 99))
    return ListedTenant(
        created_at.replace(tzinfo=UTC) if created_at.tzinfo is None else created_at.astimezone(UTC),
        tenant_id,
        {
            "id": tenant_id,
            "slug": slug,
            "name": name,
            "status": status,
            "generation": generation,
            "mailDomain": domain,
            "mailDomainStatus": claim_status,
            "quotaBytes": quota,
            "provisioningStatus": {s[0]: s[1] for s in steps},
            "provisioningErrors": {s[0]: s[3] for s in steps if s[1] == _ERROR},
            "conditions": {s[0]: _condition(s) for s in steps},
            "owner": owner,
            "createdAt": utc_text(created_at),
            "createdBy": created_by,
            "updatedAt": utc_text(updated_at),
            "updatedBy": updated_by,
            "activatedAt": utc_text(activated_at),
        },
    )


def listed_tenants(rows: Iterable[Sequence[Any]]) -> list[ListedTenant]:
    """The tenants of ``TenantRepository.listed`` rows (see ``ListedRow``; a tenant's rows are consecutive), in
    their order."""
    tenants: list[ListedTenant] = []
    first: Sequence[Any] | None = None
    steps: list[Sequence[Any]] = []
    for row in rows:
        if first is None or row[0] != first[0]:
            if first is not None:
                tenants.append(_tenant(first, steps))
            first, steps = row, []
        if row[_STEP] is not None:
            steps.append(row[_STEP:_END])
    if first is not None:
        tenants.append(_tenant(first, steps))
    return tenants


@dataclass(frozen=True)
class ShownTenant:
    """One tenant as ``GET /tenants/{slug}`` shows it, its ETag, and who may see it."""

    tenant: ListedTenant
    etag: str
    owner: str | None
    administered: bool  # whether the caller the rows were read for is one of its admins

    def is_managed_by(self, sub: str) -> bool:
        return self.owner == sub or self.administered

    def json(self) -> bytes:
        """The JSON of its ``TenantOut``, byte for byte as the response model writes it."""
        return to_json(self.tenant.body)


def shown_tenant(rows: Sequence[Sequence[Any]]) -> ShownTenant | None:
    """The tenant of ``TenantRepository.shown`` rows, or None for none."""
    if not rows:
        return None
    first = rows[0]
    lifecycle, administered = first[_END:]
    return ShownTenant(listed_tenants(rows)[0], etag_of(first[4], first[10], lifecycle), first[7], bool(administered))


def page_json(
    tenants: Iterable[ListedTenant], *, total: int | None, limit: int, offset: int, next: str | None
) -> bytes:
    """The JSON of a ``TenantPage``, byte for byte as its response model writes it."""
    page = {"items": [t.body for t in tenants], "total": total, "limit": limit, "offset": offset, "next": next}
    return to_json(page)
