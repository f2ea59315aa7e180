"""Tenants written straight into the store, for tests that need many of them or exact timestamps."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from tenantry.states import STEP_ORDER, TenantStatus
from tenantry.tenants.models import Tenant, TenantStep

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def tenant_row(
    slug: str,
    *,
    owner: str = "bob",
    name: str | None = None,
    status: TenantStatus = TenantStatus.ACTIVE,
    created_at: datetime = T0,
) -> Tenant:
    """A tenant with its steps not tried yet, as if created at ``created_at`` by ``owner``."""
    return Tenant(
        id=str(uuid.uuid4()),
        slug=slug,
        name=name or slug.title(),
        status=status,
        generation=1,
        mail_domain=f"{slug}.mail.example.test",
        quota_bytes=1,
        owner_sub=owner,
        created_at=created_at,
        updated_at=created_at,
        steps=[TenantStep.new(step) for step in STEP_ORDER],
    )
