"""All tenant queries. Repositories flush; the caller's unit of work commits."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from tenantry.states import DomainStatus, StepStatus, TenantStatus
from tenantry.tenants.models import DomainClaim, IdempotencyKey, Tenant, TenantAdmin, TenantEvent, TenantStep

# A tenant with everything a use case may touch, in the statement that finds it: one round trip instead of
# one SELECT per collection. The join multiplies rows (steps x claims x admins), which stay few per tenant.
WHOLE = (joinedload(Tenant.steps), joinedload(Tenant.admins), joinedload(Tenant.domain_claims))
# A tenant as a list presents it, as plain columns (no ORM objects): no step data (large, never listed), only
# the state of the claim to the current mail domain, no admins (visibility is decided in the query). Dates come
# as the driver reads them (naive UTC on SQLite) and states as their text: tenants.listing formats both once.
# The order is tenants.listing.ListedRow's: it unpacks rows by position.
_LISTED_TENANT = (
    Tenant.id,
    Tenant.slug,
    Tenant.name,
    sa.type_coerce(Tenant.status, sa.String()).label("status"),
    Tenant.generation,
    Tenant.mail_domain,
    Tenant.quota_bytes,
    Tenant.owner_sub,
    sa.type_coerce(Tenant.created_at, sa.DateTime()).label("created_at"),
    Tenant.created_by,
    sa.type_coerce(Tenant.updated_at, sa.DateTime()).label("updated_at"),
    Tenant.updated_by,
    sa.type_coerce(Tenant.activated_at, sa.DateTime()).label("activated_at"),
)
_LISTED_STEP = (
    sa.type_coerce(TenantStep.step, sa.String()).label("step"),
    sa.type_coerce(TenantStep.status, sa.String()).label("step_status"),
    TenantStep.reason,
    TenantStep.message,
    TenantStep.retryable,
    TenantStep.attempts,
    sa.type_coerce(TenantStep.last_attempt_at, sa.DateTime()).label("last_attempt_at"),
    sa.type_coerce(TenantStep.next_attempt_at, sa.DateTime()).label("next_attempt_at"),
    sa.type_coerce(TenantStep.last_success_at, sa.DateTime()).label("last_success_at"),
    sa.type_coerce(TenantStep.last_transition_at, sa.DateTime()).label("last_transition_at"),
    TenantStep.observed_generation,
    TenantStep.outputs,
)


@dataclass(frozen=True)
class Holders:
    """Who holds what a new name needs: whether a live tenant has the slug, and each verified claim's holder."""

    slug_taken: bool
    claims: dict[str, str]  # verified domain -> the tenant id holding it


class TenantRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_slug(self, slug: str) -> Tenant | None:
        """The live tenant with ``slug``, or else its most recent tombstone (which keeps its events)."""
        result = await self.session.execute(
            sa.select(Tenant)
            .options(*WHOLE)
            .where(Tenant.slug == slug)
            .order_by(Tenant.deleted_at.is_not(None), Tenant.deleted_at.desc())
            .limit(1)
        )
        return result.unique().scalar_one_or_none()

    async def by_id(self, tenant_id: str) -> Tenant | None:
        """The tenant as stored now (also when this session has read it before), in one statement."""
        result = await self.session.execute(
            sa.select(Tenant).options(*WHOLE).where(Tenant.id == tenant_id).execution_options(populate_existing=True)
        )
        return result.unique().scalar_one_or_none()

    async def slug_taken(self, slug: str) -> bool:
        return await self._exists(sa.and_(Tenant.slug == slug, Tenant.deleted_at.is_(None)))

    async def domain_taken(self, domain: str) -> bool:
        """Whether a tenant holds ``domain`` with a verified claim (an unproven one reserves nothing)."""
        return await self._exists(
            sa.and_(DomainClaim.verified_domain == domain, DomainClaim.status == DomainStatus.VERIFIED)
        )

    async def holders(self, domains: Sequence[str], *, slug: str | None = None) -> Holders:
        """In one round trip: which tenant holds each of ``domains`` with a verified claim (a name is held by
        one tenant at most) and, given a ``slug``, whether a live tenant has it."""
        query = _holders_query(slug is not None)
        params = {"domains": list(domains), "slug": slug}
        result = await (await self.session.connection()).execute(query, params)  # rows, no ORM handling
        rows = result.all()
        return Holders(
            slug_taken=any(kind == "slug" for kind, _, _ in rows),
            claims={name: holder for kind, name, holder in rows if kind == "domain" and name is not None},
        )

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

    async def listed(
        self,
        *,
        status: str | None,
        managed_by: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
        offset: int = 0,
    ) -> Sequence[sa.Row[Any]]:
        """Up to ``limit`` tenants oldest first, from just after the ``after`` (created_at, id) cursor, as a list
        presents them (see ``_LISTED_TENANT``), in one statement: one row per step of each tenant, in tenant
        order (a tenant without steps has one row, its step columns null), with ``claim_status``. Keyset paging
        on the (created_at, id) index, so a page costs the same wherever it starts; optionally only the tenants
        ``managed_by`` owns or administers."""
        sqlite = self.session.get_bind().dialect.name == "sqlite"
        tombstones = status == TenantStatus.DELETED
        query = _listed_query(
            status is not None and not tombstones, tombstones, managed_by is not None, after is not None, sqlite
        )
        at, after_id = after if after is not None else (None, None)
        params = {"status": status, "sub": managed_by, "at": at, "after_id": after_id, "limit": limit, "offset": offset}
        rows = await (await self.session.connection()).execute(query, params)  # rows, no ORM loading
        return rows.all()

    async def shown(self, slug: str, *, sub: str | None) -> Sequence[sa.Row[Any]]:
        """The tenant ``by_slug`` finds, in rows as ``listed`` gives them followed by its lifecycle and whether
        ``sub`` is one of its admins, in one statement; no rows when there is no such tenant."""
        rows = await (await self.session.connection()).execute(
            _shown_query(sub is not None), {"slug": slug, "sub": sub}
        )
        return rows.all()

    async def count(self, *, status: str | None, managed_by: str | None) -> int:
        """How many tenants ``page`` walks through with these filters."""
        total = await self.session.scalar(
            sa.select(sa.func.count()).select_from(Tenant).where(*_visible(status, managed_by))
        )
        return int(total or 0)

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
        conditions = _visible(status, managed_by)
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


@functools.cache
def _holders_query(with_slug: bool) -> sa.CompoundSelect[Any]:
    """``TenantRepository.holders``: the verified claims of the bound ``domains`` (expanding) and, ``with_slug``,
    the live tenant with the bound ``slug``."""
    claims = sa.select(sa.literal("domain"), DomainClaim.verified_domain, DomainClaim.tenant_id).where(
        DomainClaim.verified_domain.in_(sa.bindparam("domains", expanding=True, type_=sa.String()))
    )
    slug = sa.bindparam("slug", type_=sa.String())
    live = sa.select(sa.literal("slug"), Tenant.slug, Tenant.id).where(
        *((Tenant.slug == slug, Tenant.deleted_at.is_(None)) if with_slug else (sa.false(),))
    )
    return sa.union_all(claims, live)


# The statements of the read paths are built once per shape, their values bound when run: building one (and
# its cache key) costs more than running it.
@functools.cache
def _listed_query(by_status: bool, tombstones: bool, managed: bool, after: bool, sqlite: bool) -> sa.Select[Any]:
    """``by_status``: a live status, bound when run; ``tombstones``: the deleted ones (no status is bound)."""
    conditions = _visible(
        sa.bindparam("status", type_=sa.String()) if by_status else TenantStatus.DELETED if tombstones else None,
        sa.bindparam("sub", type_=sa.String()) if managed else None,
        sqlite=sqlite,
    )
    if after:
        at, after_id = sa.bindparam("at", type_=Tenant.created_at.type), sa.bindparam("after_id", type_=sa.String())
        conditions.append(sa.tuple_(Tenant.created_at, Tenant.id) > sa.tuple_(at, after_id))
    page = (
        sa.select(*_LISTED_TENANT)
        .where(*conditions)
        .order_by(Tenant.created_at, Tenant.id)
        .limit(sa.bindparam("limit", type_=sa.Integer()))
        .offset(sa.bindparam("offset", type_=sa.Integer()))
        .subquery("page")
    )
    return _as_listed(page)


@functools.cache
def _shown_query(for_a_person: bool) -> sa.Select[Any]:
    sub = sa.bindparam("sub", type_=sa.String())
    administers = sa.exists().where(TenantAdmin.tenant_id == Tenant.id, TenantAdmin.sub == sub)
    one = (
        sa.select(
            *_LISTED_TENANT,
            sa.type_coerce(Tenant.lifecycle, sa.String()).label("lifecycle"),
            (administers if for_a_person else sa.false()).label("administers"),
        )
        .where(Tenant.slug == sa.bindparam("slug", type_=sa.String()))
        .order_by(Tenant.deleted_at.is_not(None), Tenant.deleted_at.desc())
        .limit(1)
        .subquery("one")
    )
    return _as_listed(one).add_columns(one.c.lifecycle, one.c.administers)


def _as_listed(tenants: sa.Subquery) -> sa.Select[Any]:
    """The rows of ``tenants`` (a subquery of ``_LISTED_TENANT``) with their claim's state and their steps."""
    claim = sa.and_(DomainClaim.tenant_id == tenants.c.id, DomainClaim.domain == tenants.c.mail_domain)
    return (
        sa.select(
            *(tenants.c[column.name] for column in _LISTED_TENANT),
            sa.type_coerce(DomainClaim.status, sa.String()).label("claim_status"),
            *_LISTED_STEP,
        )
        .select_from(tenants)
        .outerjoin(DomainClaim, claim)
        .outerjoin(TenantStep, TenantStep.tenant_id == tenants.c.id)
        .order_by(tenants.c.created_at, tenants.c.id, TenantStep.step)
    )


def _visible(
    status: str | sa.BindParameter[str] | None,
    managed_by: str | sa.BindParameter[str] | None,
    *,
    sqlite: bool = False,
) -> list[sa.ColumnElement[bool]]:
    """Tenants in ``status`` (tombstones only when asked for), only those ``managed_by`` owns or administers.

    ``sqlite``: say that nearly every tenant is live. SQLite, without statistics (nothing runs ANALYZE), takes
    ``deleted_at IS NULL`` for a selective lookup in ix_tenants_deleted_at, reads every live tenant and sorts
    them; told the term is likely true, it walks the (created_at, id) index and stops after a page.
    """
    conditions: list[sa.ColumnElement[bool]] = []
    if status is not None:
        conditions.append(Tenant.status == status)
    if not (isinstance(status, str) and status == TenantStatus.DELETED):  # a bound status is a live one
        live = Tenant.deleted_at.is_(None)
        conditions.append(sa.func.likely(live, type_=sa.Boolean) if sqlite else live)
    if managed_by is not None:
        administered = sa.select(TenantAdmin.tenant_id).where(TenantAdmin.sub == managed_by)
        conditions.append(sa.or_(Tenant.owner_sub == managed_by, Tenant.id.in_(administered)))
    return conditions
