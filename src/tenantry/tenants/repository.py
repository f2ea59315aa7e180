"""All tenant queries. Repositories flush; the caller's unit of work commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.states import DomainStatus, StepStatus, TenantStatus
from tenantry.tenants.models import DomainClaim, IdempotencyKey, Tenant, TenantAdmin, TenantEvent, TenantStep


class TenantRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_slug(self, slug: str) -> Tenant | None:
        """The live tenant with ``slug``, or else its most recent tombstone (which keeps its events)."""
        result = await self.session.execute(
            sa.select(Tenant)
            .where(Tenant.slug == slug)
            .order_by(Tenant.deleted_at.is_not(None), Tenant.deleted_at.desc())
            .limit(1)
        )
        return result.scalar_one_or_none()

    async def by_id(self, tenant_id: str) -> Tenant | None:
        return await self.session.get(Tenant, tenant_id, populate_existing=True)

    async def slug_taken(self, slug: str) -> bool:
        return await self._exists(sa.and_(Tenant.slug == slug, Tenant.deleted_at.is_(None)))

    async def domain_taken(self, domain: str) -> bool:
        """Whether a tenant holds ``domain`` with a verified claim (an unproven one reserves nothing)."""
        return await self._exists(
            sa.and_(DomainClaim.verified_domain == domain, DomainClaim.status == DomainStatus.VERIFIED)
        )

    async def verified_holder(self, domains: Sequence[str]) -> DomainClaim | None:
        """The verified claim to any of ``domains``, if a tenant holds one (names are held by one tenant)."""
        if not domains:
            return None
        result = await self.session.execute(
            sa.select(DomainClaim).where(DomainClaim.verified_domain.in_(list(domains))).limit(1)
        )
        return result.scalar_one_or_none()

    async def claim(self, claim_id: int) -> DomainClaim | None:
        return await self.session.get(DomainClaim, claim_id, populate_existing=True)

    async def owned_count(self, sub: str) -> int:
        owned = sa.select(sa.func.count()).where(Tenant.owner_sub == sub, Tenant.deleted_at.is_(None))
        return int(await self.session.scalar(owned) or 0)

    async def created_since(self, sub: str, since: datetime) -> list[datetime]:
        """When ``sub`` created tenants after ``since`` (deleted ones too: deleting does not refill the
        allowance), oldest first."""
        rows = await self.session.execute(
            sa.select(Tenant.created_at)
            .where(Tenant.created_by == sub, Tenant.created_at > since)
            .order_by(Tenant.created_at)
        )
        return list(rows.scalars())

    async def idempotency_key(self, actor: str, key: str) -> IdempotencyKey | None:
        return await self.session.get(IdempotencyKey, (actor, key))

    async def forget_idempotency_keys(self, *, before: datetime) -> None:
        await self.session.execute(sa.delete(IdempotencyKey).where(IdempotencyKey.created_at < before))

    async def _exists(self, condition: sa.ColumnElement[bool]) -> bool:
        result = await self.session.execute(sa.select(sa.literal(1)).where(condition).limit(1))
        return result.first() is not None

    async def page(
        self, *, status: str | None, managed_by: str | None, limit: int, offset: int
    ) -> tuple[Sequence[Tenant], int]:
        """A page of tenants, optionally only those ``managed_by`` owns or administers."""
        conditions: list[sa.ColumnElement[bool]] = []
        if status is not None:
            conditions.append(Tenant.status == status)
        if status != TenantStatus.DELETED:
            conditions.append(Tenant.deleted_at.is_(None))  # tombstones only when asked for
        if managed_by is not None:
            administered = sa.select(TenantAdmin.tenant_id).where(TenantAdmin.sub == managed_by)
            conditions.append(sa.or_(Tenant.owner_sub == managed_by, Tenant.id.in_(administered)))
        total = await self.session.scalar(sa.select(sa.func.count()).select_from(Tenant).where(*conditions))
        rows = await self.session.execute(
            sa.select(Tenant).where(*conditions).order_by(Tenant.created_at, Tenant.slug).limit(limit).offset(offset)
        )
        return rows.scalars().all(), int(total or 0)

    async def browse(
        self,
        *,
        status: str | None,
        troubled: bool,
        text: str | None,
        managed_by: str | None,
        after: tuple[str, str] | None,
        limit: int,
    ) -> Sequence[Tenant]:
        """A page of tenants by slug, from just after the ``after`` (slug, id) cursor: keyset paging walks the
        slug index, so a page costs the same on the first page and the thousandth. ``troubled``: only those
        with a step in error (retrying or stopped); ``text``: slug or name containing it, any case."""
        conditions: list[sa.ColumnElement[bool]] = []
        if status is not None:
            conditions.append(Tenant.status == status)
        if status != TenantStatus.DELETED:
            conditions.append(Tenant.deleted_at.is_(None))
        if managed_by is not None:
            administered = sa.select(TenantAdmin.tenant_id).where(TenantAdmin.sub == managed_by)
            conditions.append(sa.or_(Tenant.owner_sub == managed_by, Tenant.id.in_(administered)))
        if troubled:
            failing = sa.select(TenantStep.tenant_id).where(
                TenantStep.tenant_id == Tenant.id, TenantStep.status == StepStatus.ERROR
            )
            conditions.append(failing.exists())
        if text:
            pattern = "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            conditions.append(
                sa.or_(
                    sa.func.lower(Tenant.slug).like(pattern, escape="\\"),
                    sa.func.lower(Tenant.name).like(pattern, escape="\\"),
                )
            )
        if after is not None:
            slug, tenant_id = after
            conditions.append(sa.or_(Tenant.slug > slug, sa.and_(Tenant.slug == slug, Tenant.id > tenant_id)))
        rows = await self.session.execute(
            sa.select(Tenant).where(*conditions).order_by(Tenant.slug, Tenant.id).limit(limit)
        )
        return rows.scalars().all()

    async def add(self, tenant: Tenant) -> None:
        self.session.add(tenant)
        await self.session.flush()

    def record(self, event: TenantEvent) -> None:
        self.session.add(event)

    async def events(self, tenant_id: str, *, limit: int, before: int | None = None) -> Sequence[TenantEvent]:
        """A page of the timeline, newest first; ``before`` is the id of the last event of the previous page."""
        query = sa.select(TenantEvent).where(TenantEvent.tenant_id == tenant_id)
        if before is not None:
            query = query.where(TenantEvent.id < before)
        rows = await self.session.execute(query.order_by(TenantEvent.id.desc()).limit(limit))
        return rows.scalars().all()
