"""The tenant list straight from rows: the JSON of ``TenantPage`` without ORM objects or response models.

A page of 100 tenants holds about 1,600 dates and 300 step conditions. Presented through the ORM and
``TenantOut`` (see :func:`tenantry.tenants.presenter.present`), each date is converted to UTC on load and
again checked and formatted by pydantic, and each condition is a model validated and serialised again by the
response model: most of a page's CPU. Here each row becomes plain JSON values once (a date formatted as
pydantic formats an aware UTC one), and the page is serialised in one call; the bytes are those the response
model would produce for the same tenants (a test holds them to it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pydantic_core import to_json

from tenantry.states import STEP_ORDER, StepStatus

_RANK = {str(step): n for n, step in enumerate(STEP_ORDER)}
_ZERO = timedelta(0)
_ERROR = str(StepStatus.ERROR)


class ListedRow(Protocol):
    """One row of ``TenantRepository.listed``: a tenant's columns, its claim's state and one of its steps."""

    id: str
    slug: str
    name: str
    status: str
    generation: int
    mail_domain: str
    quota_bytes: int
    owner_sub: str | None
    created_at: datetime
    created_by: str | None
    updated_at: datetime
    updated_by: str | None
    activated_at: datetime | None
    claim_status: str | None
    step: str | None
    step_status: str
    reason: str
    message: str
    retryable: bool
    attempts: int
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    last_success_at: datetime | None
    last_transition_at: datetime | None
    observed_generation: int
    outputs: dict[str, Any] | None


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


def _condition(row: ListedRow) -> dict[str, Any]:
    return {
        "status": row.step_status,
        "reason": row.reason,
        "message": row.message,
        "retryable": row.retryable,
        "attempts": row.attempts,
        "lastAttemptAt": utc_text(row.last_attempt_at),
        "nextAttemptAt": utc_text(row.next_attempt_at),
        "lastSuccessAt": utc_text(row.last_success_at),
        "lastTransitionAt": utc_text(row.last_transition_at),
        "observedGeneration": row.observed_generation,
        "upstreamIds": {k: str(v) for k, v in (row.outputs or {}).items()},
    }


def _tenant(row: ListedRow, steps: list[ListedRow]) -> ListedTenant:
    steps.sort(key=lambda s: _RANK.get(s.step or "", 99))
    created_at = row.created_at
    return ListedTenant(
        created_at.replace(tzinfo=UTC) if created_at.tzinfo is None else created_at.astimezone(UTC),
        row.id,
        {
            "id": row.id,
            "slug": row.slug,
            "name": row.name,
            "status": row.status,
            "generation": row.generation,
            "mailDomain": row.mail_domain,
            "mailDomainStatus": row.claim_status,
            "quotaBytes": row.quota_bytes,
            "provisioningStatus": {s.step: s.step_status for s in steps},
            "provisioningErrors": {s.step: s.message for s in steps if s.step_status == _ERROR},
            "conditions": {s.step: _condition(s) for s in steps},
            "owner": row.owner_sub,
            "createdAt": utc_text(created_at),
            "createdBy": row.created_by,
            "updatedAt": utc_text(row.updated_at),
            "updatedBy": row.updated_by,
            "activatedAt": utc_text(row.activated_at),
        },
    )


def listed_tenants(rows: Iterable[ListedRow]) -> list[ListedTenant]:
    """The tenants of ``TenantRepository.listed`` rows (a tenant's rows are consecutive), in their order."""
    tenants: list[ListedTenant] = []
    first: ListedRow | None = None
    steps: list[ListedRow] = []
    for row in rows:
        if first is None or row.id != first.id:
            if first is not None:
                tenants.append(_tenant(first, steps))
            first, steps = row, []
        if row.step is not None:
            steps.append(row)
    if first is not None:
        tenants.append(_tenant(first, steps))
    return tenants


def page_json(
    tenants: Iterable[ListedTenant], *, total: int | None, limit: int, offset: int, next: str | None
) -> bytes:
    """The JSON of a ``TenantPage``, byte for byte as its response model writes it."""
    page = {"items": [t.body for t in tenants], "total": total, "limit": limit, "offset": offset, "next": next}
    return to_json(page)
