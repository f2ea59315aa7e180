"""All provisioning SQL: claiming tenants, the lease fence, and reading and writing what a run works on.

Repositories flush at most; the caller (the lease manager, the reconciler) owns the transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, noload
from sqlalchemy.orm.attributes import flag_modified

from tenantry.provisioning.outcomes import Note
from tenantry.states import DomainProof, DomainStatus, Lifecycle, StepName, StepStatus
from tenantry.tenants.models import DomainClaim, Tenant, TenantEvent, TenantStep

# The events table for Core inserts: many rows in one executemany, no ids read back.
EVENTS = cast("sa.Table", TenantEvent.__table__)
TENANTS = cast("sa.Table", Tenant.__table__)
STEPS = cast("sa.Table", TenantStep.__table__)


# The statements a run issues for every tenant are built once, their values bound when run, and the Core ones
# run on the session's connection: building a statement and its cache key, and the ORM's handling of a Core
# write, cost more than SQLite takes to run it (fence: 0.35-0.42 ms through the ORM, 0.18 ms so).
def _bound(column: sa.Column[Any], name: str) -> sa.BindParameter[Any]:
    """A value bound when run, of ``column``'s type (a name of its own: UPDATE reserves the columns' names)."""
    return sa.bindparam(name, type_=column.type)


def _free(now: datetime | sa.BindParameter[Any]) -> sa.ColumnElement[bool]:
    """Nobody holds the lease at ``now`` (a time, or a value bound when run)."""
    return sa.or_(Tenant.lease_owner.is_(None), Tenant.lease_expires_at < now)


@functools.cache
def _lease_update(kind: str) -> sa.Update:
    """Tenant ``tenant``'s lease: ``claim`` sets it (``owner``, ``expires``) where it is free at ``now`` or
    already the owner's; ``held`` sets it where ``holder`` holds it; ``fence`` writes the expiry it finds where
    ``holder`` holds it (see ``ProvisioningRepository.fence``)."""
    tenant = TENANTS.c
    owner = _bound(tenant.lease_owner, "owner")
    if kind == "claim":
        condition = sa.or_(_free(_bound(tenant.lease_expires_at, "now")), tenant.lease_owner == owner)
    else:
        condition = tenant.lease_owner == _bound(tenant.lease_owner, "holder")
    values = (
        {tenant.lease_expires_at: tenant.lease_expires_at}
        if kind == "fence"
        else {tenant.lease_owner: owner, tenant.lease_expires_at: _bound(tenant.lease_expires_at, "expires")}
    )
    return sa.update(TENANTS).where(tenant.id == _bound(tenant.id, "tenant"), condition).values(values)


@functools.cache
def _load_query(with_admins: bool) -> sa.Select[tuple[Tenant]]:
    admins = joinedload(Tenant.admins) if with_admins else noload(Tenant.admins)
    return (
        sa.select(Tenant)
        .options(joinedload(Tenant.steps), joinedload(Tenant.domain_claims), admins)
        .where(Tenant.id == _bound(TENANTS.c.id, "tenant"))
        .execution_options(populate_existing=True)
    )


@functools.cache
def _note_create() -> sa.Update:
    step = STEPS.c
    return (
        sa.update(STEPS)
        .where(step.tenant_id == _bound(step.tenant_id, "tenant"), step.step == _bound(step.step, "step_name"))
        .values({step.create_started_at: _bound(step.create_started_at, "at")})
    )


def same_columns(rows: Sequence[TenantStep]) -> None:
    """Mark stored step rows changed in the same columns (every column any of them changed), so that the flush
    writes them in one executemany UPDATE instead of a statement per row (a column written with the value it
    already holds is left as it is)."""
    stored = [row for row in rows if sa.inspect(row).persistent]
    changed = [{a.key for a in sa.inspect(row).attrs if a.history.has_changes()} for row in stored]
    every = set().union(*changed)
    for row, columns in zip(stored, changed, strict=True):
        for column in every - columns:
            flag_modified(row, column)


class ProvisioningRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim_due(self, owner: str, limit: int, *, now: datetime, lease: timedelta) -> list[str]:
        """Lease up to ``limit`` tenants whose reconcile is due and that nobody holds; returns their ids.

        On PostgreSQL the candidates are locked with ``SKIP LOCKED`` so workers polling at once skip each
        other's rows instead of queueing; the compare-and-set update is what makes the claim safe everywhere.
        """
        due = (
            sa.select(Tenant.id)
            .where(Tenant.next_reconcile_at <= now, _free(now))
            .order_by(Tenant.next_reconcile_at)
            .limit(limit)
        )
        if self.session.bind.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        result = await self.session.execute(
            sa.update(Tenant)
            .where(Tenant.id.in_(due.scalar_subquery()), _free(now))
            .values(lease_owner=owner, lease_expires_at=now + lease)
            .returning(Tenant.id)
            .execution_options(synchronize_session=False)
        )
        return list(result.scalars())

    async def claim(self, tenant_id: str, owner: str, *, now: datetime, lease: timedelta) -> bool:
        """Lease one tenant, due or not; False when someone else holds it."""
        return await self._lease("claim", tenant=tenant_id, now=now, owner=owner, expires=now + lease)

    async def renew(self, tenant_id: str, owner: str, *, now: datetime, lease: timedelta) -> bool:
        """Extend a lease ``owner`` holds; False means it was lost (expired and taken by someone else)."""
        return await self._lease("held", tenant=tenant_id, holder=owner, owner=owner, expires=now + lease)

    async def release(self, tenant_id: str, owner: str) -> None:
        await self._lease("held", tenant=tenant_id, holder=owner, owner=None, expires=None)

    async def _lease(self, kind: str, **values: Any) -> bool:
        result = await (await self.session.connection()).execute(_lease_update(kind), values)
        return bool(result.rowcount)

    async def retry_permanent_errors(self, now: datetime) -> int:
        """Make every step stopped by a permanent error due now (after a restart the configuration may have
        been fixed); returns how many tenants that touched."""
        stopped = sa.select(TenantStep.tenant_id).where(
            TenantStep.status == StepStatus.ERROR, TenantStep.retryable.is_(False)
        )
        await self.session.execute(
            sa.update(TenantStep)
            .where(TenantStep.status == StepStatus.ERROR, TenantStep.retryable.is_(False))
            .values(next_attempt_at=now)
            .execution_options(synchronize_session=False)
        )
        result = await self.session.execute(
            sa.update(Tenant)
            .where(Tenant.id.in_(stopped), Tenant.deleted_at.is_(None))
            .values(next_reconcile_at=now)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def fence(self, tenant_id: str, owner: str) -> bool:
        """Whether ``owner`` still holds the tenant's lease, checked with a write so that it also locks the row.

        As a transaction's first statement this takes the row lock on PostgreSQL and the database write lock
        on SQLite, so nobody can take the lease between this check and the commit.
        """
        return await self._lease("fence", tenant=tenant_id, holder=owner)

    async def pre_note(self, tenant_id: str, owner: str, steps: list[StepName], *, now: datetime) -> set[StepName]:
        """Note a create as begun, now, for each of ``steps`` never tried yet (no attempt, never owned an object),
        while ``owner`` holds a live tenant's lease; returns the steps noted.

        A run's first statement: on a new tenant it replaces a transaction of its own per create (the journal),
        and on SQLite it takes the write lock before the run's read, as a transaction that writes must.
        """
        if not steps:
            return set()
        leased = (
            sa.select(Tenant.id)
            .where(Tenant.id == tenant_id, Tenant.lease_owner == owner, Tenant.deleted_at.is_(None))
            .where(Tenant.lifecycle == Lifecycle.ACTIVE, Tenant.purge_at.is_(None))
        )
        noted = await self.session.execute(
            sa.update(TenantStep)
            .where(
                TenantStep.tenant_id == tenant_id,
                TenantStep.step.in_(steps),
                TenantStep.create_started_at.is_(None),
                TenantStep.attempts == 0,
                TenantStep.last_success_at.is_(None),
                sa.exists(leased),
            )
            .values(create_started_at=now)
            .returning(TenantStep.step)
            .execution_options(synchronize_session=False)
        )
        return {StepName(step) for step in noted.scalars()}

    async def note_create(self, tenant_id: str, step: StepName, *, now: datetime) -> None:
        """Note that a create of ``step``'s object begins now (the caller has fenced the lease first)."""
        await (await self.session.connection()).execute(
            _note_create(), {"tenant": tenant_id, "step_name": step, "at": now}
        )

    async def exists(self, tenant_id: str) -> bool:
        return bool(await self.session.scalar(sa.select(sa.func.count()).where(Tenant.id == tenant_id)))

    async def load(self, tenant_id: str, *, with_admins: bool = False) -> Tenant | None:
        """The tenant with its steps and domain claims, read afresh in one statement; its admins only when
        asked for (a run needs none; the state a run recorded, handed back to answer a request, does)."""
        result = await self.session.execute(_load_query(with_admins), {"tenant": tenant_id})
        return result.unique().scalar_one_or_none()

    def tombstone(self, tenant: Tenant, now: datetime) -> None:
        """Keep the tenant as a record (its events stay) and free its slug and mail domain for others."""
        tenant.deleted_at = now
        tenant.domain_claims.clear()
        for row in tenant.steps:
            row.next_attempt_at = None

    async def record(self, tenant_id: str, notes: list[Note], *, at: datetime) -> None:
        """The notes as timeline events, in one statement (an executemany, without reading ids back)."""
        if notes:
            rows = [
                {"tenant_id": tenant_id, "at": at, "step": n.step, "kind": n.kind, "message": n.message, "actor": None}
                for n in notes
            ]
            await (await self.session.connection()).execute(EVENTS.insert(), rows)

    # -- domain claims (the mail step's gate) ------------------------------------------------------------
    async def held_by_another(self, domain: str, tenant_id: str) -> bool:
        held = await self.session.scalar(
            sa.select(sa.func.count()).where(DomainClaim.verified_domain == domain, DomainClaim.tenant_id != tenant_id)
        )
        return bool(held)

    async def set_claim_status(self, claim_id: int, status: DomainStatus) -> None:
        await self.session.execute(
            sa.update(DomainClaim).where(DomainClaim.id == claim_id).values(status=status, verified_domain=None)
        )

    async def record_claim_check(self, claim_id: int, at: datetime, message: str) -> None:
        await self.session.execute(
            sa.update(DomainClaim)
            .where(DomainClaim.id == claim_id)
            .values(checks=DomainClaim.checks + 1, checked_at=at, check_message=message)
        )

    async def verify_claim(self, claim_id: int, at: datetime) -> None:
        """Mark a claim proven by DNS; raises IntegrityError when another tenant holds the name already."""
        await self.session.execute(
            sa.update(DomainClaim)
            .where(DomainClaim.id == claim_id)
            .values(
                status=DomainStatus.VERIFIED,
                verified_domain=DomainClaim.domain,
                proof=DomainProof.DNS,
                verified_at=at,
                checks=DomainClaim.checks + 1,
                checked_at=at,
                check_message="the ownership record was found",
            )
        )
        await self.session.flush()
