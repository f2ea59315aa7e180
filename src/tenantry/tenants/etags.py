"""ETags of single tenants, and ``If-Match`` on the writes that change them."""

from __future__ import annotations

from datetime import UTC, datetime

from tenantry.errors import PreconditionFailedError
from tenantry.tenants.models import Tenant


def etag(tenant: Tenant) -> str:
    """A strong validator of the tenant as the API shows it: changes with every change anyone makes."""
    return etag_of(tenant.generation, tenant.updated_at, tenant.lifecycle)


def etag_of(generation: int, updated_at: datetime, lifecycle: str) -> str:
    """The ETag of a tenant with these values (``updated_at`` naive means UTC, as SQLite gives it)."""
    if updated_at.tzinfo is None:
        updated_at = updated_at.replace(tzinfo=UTC)
    return f'"{generation}-{int(updated_at.timestamp() * 1_000_000)}-{lifecycle}"'


def check_if_match(tenant: Tenant, if_match: str | None) -> None:
    """``If-Match`` (RFC 9110 13.1.1): the write goes ahead only if the tenant is still what the caller read."""
    if if_match is None:
        return
    offered = [tag.strip() for tag in if_match.split(",")]
    if "*" in offered or etag(tenant) in offered:
        return
    raise PreconditionFailedError(
        f"the tenant changed since it was read (its ETag is now {etag(tenant)}); read it again and retry"
    )
