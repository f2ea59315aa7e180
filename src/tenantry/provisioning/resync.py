"""The bulk resync: read each upstream's marked objects once per cycle, a page at a time, compare each page with
the store, and send the reconciler only to the tenants that drifted.

A healthy tenant costs no upstream request of its own: per cycle each upstream is listed once (authentik groups
by page, Stalwart domains many per JMAP request, oCIS project spaces in one streamed listing), and a step is made
due only when its object is missing, is not the one it stores, shows other values than desired, or has a twin
carrying the same tenant's marker. A pass holds one page of the listing (and its tenants' rows, read in one query)
at a time, besides the ids of the tenants whose object it has seen and the few objects that are not the one a
tenant stores; the healthy rows' tenant ids are then streamed once more to find the tenants whose object was not
listed. Nothing is concluded from a listing that failed part-way. A twin that the upstream reports empty is
removed; any other is reported on the step (``data.duplicates``) and in the timeline for an operator, never
deleted blindly.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tenantry.db.base import utcnow
from tenantry.integrations.errors import StepError
from tenantry.integrations.ports import MarkedObject, TenantSpec
from tenantry.provisioning.repository import EVENTS
from tenantry.provisioning.steps import Step, Survey
from tenantry.states import Lifecycle, StepName, StepStatus
from tenantry.tenants.models import Tenant, TenantStep

log = structlog.get_logger("tenantry.resync")
DUPLICATES = "duplicates"
_CHUNK = 500
_LOOKUP = 500  # tenant ids and slugs per query for a page's rows


@dataclass
class ResyncReport:
    """What one pass found: objects listed per upstream, tenant steps compared, and what it did about them."""

    listed: dict[str, int] = field(default_factory=dict)
    compared: int = 0
    drifted: list[tuple[str, str, str]] = field(default_factory=list)  # (tenant id, step, what differs)
    removed: list[tuple[str, str, str]] = field(default_factory=list)  # (tenant id, step, object id)
    kept: list[tuple[str, str, str]] = field(default_factory=list)  # duplicates left for a human
    failed: dict[str, str] = field(default_factory=dict)  # upstreams that could not be listed, and why


@dataclass(frozen=True)
class _Row:
    spec: TenantSpec
    step: StepName
    outputs: dict[str, Any]
    duplicates: list[str]


@dataclass
class _Seen:
    """What one step's listing showed of the healthy tenants, tied to them one way (by the tenant id an object's
    marker names, or only by the slug its name suggests): small per tenant, as the listing goes by."""

    owned: set[str] = field(default_factory=set)  # tenants whose stored object was listed
    drift: dict[str, str] = field(default_factory=dict)  # what that object shows differs, by tenant (rare)
    # Per tenant, its row and the listed objects that are not its stored one, in listing order (rare: twins and
    # replaced objects).
    others: dict[str, tuple[_Row, list[MarkedObject]]] = field(default_factory=dict)

    def __contains__(self, tenant_id: str) -> bool:
        return tenant_id in self.owned or tenant_id in self.others

    def add(self, step: Step, row: _Row, obj: MarkedObject) -> None:
        tenant_id = row.spec.id
        if tenant_id not in self.owned and _stores(row, obj):
            self.owned.add(tenant_id)
            why = step.drift(row.spec, obj) if step.drift is not None else None
            if why is not None:
                self.drift[tenant_id] = why
        else:
            self.others.setdefault(tenant_id, (row, []))[1].append(obj)

    def verdict(self, step: Step, tenant_id: str) -> tuple[str | None, tuple[_Row, list[MarkedObject]] | None]:
        """What differs between the step's stored object and the listing (None: in sync), and the twins found
        with the tenant's row (None: no twin)."""
        others = self.others.get(tenant_id)
        if tenant_id in self.owned:
            return self.drift.get(tenant_id), others
        if others is not None:
            return f"the {step.name} object it stores is gone; {others[1][0].id} carries its marker", None
        return f"no {step.name} object carrying this workspace's marker", None


class Resync:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        steps: Sequence[Step],
        *,
        list_timeout_seconds: float,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._steps = [s for s in steps if s.configured]
        self._timeout = list_timeout_seconds
        self._clock = clock

    async def run_once(self) -> ResyncReport:
        """One pass, one upstream after the other, each listing read a page at a time."""
        report = ResyncReport()
        for step in self._steps:
            await self._resync_step(step, report)
        log.info(
            "resync.done",
            listed=report.listed,
            compared=report.compared,
            drifted=len(report.drifted),
            removed=len(report.removed),
            kept=len(report.kept),
            failed=sorted(report.failed),
        )
        return report

    async def _resync_step(self, step: Step, report: ResyncReport) -> None:
        by_id, by_slug, listed = _Seen(), _Seen(), 0
        try:
            async with aclosing(self._listing(step)) as pages:
                async for page in pages:
                    listed += len(page)
                    await self._match(step, page, by_id, by_slug)
                    del page  # the next page is read without this one
        except (StepError, TimeoutError) as err:
            # Nothing is concluded from a listing that failed, even part-way: its tenants wait for the next cycle.
            report.failed[step.name] = getattr(err, "message", None) or f"no listing within {self._timeout:g}s"
            log.warning("resync.list_failed", step=step.name, error=report.failed[step.name])
            return
        report.listed[step.name] = listed
        drifted_before = len(report.drifted)
        duplicates: list[tuple[_Row, list[MarkedObject]]] = []
        async for tenant_ids in self._healthy(step.name):
            for tenant_id in tenant_ids:
                report.compared += 1
                # Objects whose marker names the tenant win over those only a name ties to it.
                seen = by_id if tenant_id in by_id else by_slug
                why, twins = seen.verdict(step, tenant_id)
                if why is not None:
                    report.drifted.append((tenant_id, step.name, why))
                if twins is not None:
                    duplicates.append(twins)
        await self._handle_duplicates(step, duplicates, report)
        await self._wake(report.drifted[drifted_before:])

    async def _listing(self, step: Step) -> AsyncGenerator[list[MarkedObject], None]:
        """The step's listing a page at a time; the timeout bounds the time spent waiting for the upstream, not
        the time spent on each page in between."""
        pages = step.survey_pages() if step.survey_pages is not None else _whole(step.survey)
        clock, left = asyncio.get_running_loop().time, self._timeout
        try:
            while True:
                began = clock()
                try:
                    async with asyncio.timeout(max(left, 0)):
                        page = await anext(pages)
                except StopAsyncIteration:
                    return
                left -= clock() - began
                yield page
                del page
        finally:
            if isinstance(pages, AsyncGenerator):  # left part-way (our own error): let it close its connection
                await pages.aclose()

    async def _match(self, step: Step, page: list[MarkedObject], by_id: _Seen, by_slug: _Seen) -> None:
        """Tie each listed object to the healthy row of the tenant it names (rows read in one query per page)."""
        ids = {obj.tenant_id for obj in page if obj.tenant_id is not None}
        slugs = {obj.slug for obj in page if obj.tenant_id is None and obj.slug is not None}
        rows = await self._rows(step.name, sorted(ids), sorted(slugs))
        slugged = {row.spec.slug: row for row in rows.values()}
        for obj in page:
            if obj.tenant_id is not None:
                row = rows.get(obj.tenant_id)
                if row is not None:
                    by_id.add(step, row, obj)
            elif obj.slug is not None:
                row = slugged.get(obj.slug)
                if row is not None:
                    by_slug.add(step, row, obj)

    async def _rows(self, name: StepName, ids: list[str], slugs: list[str]) -> dict[str, _Row]:
        """The healthy, settled rows of one step among the tenants with these ids or slugs, by tenant id."""
        found: dict[str, _Row] = {}
        for start in range(0, max(len(ids), len(slugs)), _LOOKUP):
            wanted = []
            if some_ids := ids[start : start + _LOOKUP]:
                wanted.append(Tenant.id.in_(some_ids))
            if some_slugs := slugs[start : start + _LOOKUP]:
                wanted.append(Tenant.slug.in_(some_slugs))
            async with self._sessionmaker() as session:
                result = await session.execute(_settled(_ROW, name).where(sa.or_(*wanted)))
                # Live tenants only, checked here: given deleted_at IS NULL, SQLite would walk that index (every
                # live tenant) for each page instead of looking the few hundred up by id.
                found.update((r.id, _row(r)) for r in result if r.deleted_at is None)
        return found

    async def _healthy(self, name: StepName) -> AsyncIterator[list[str]]:
        """The tenant ids of one step's healthy, settled rows of live tenants, in chunks (a streamed read)."""
        query = (
            _settled((Tenant.id,), name)
            .where(Tenant.deleted_at.is_(None))
            .order_by(Tenant.id)
            .execution_options(yield_per=_CHUNK)
        )
        async with self._sessionmaker() as session:
            result = await session.stream_scalars(query)
            async for chunk in result.partitions(_CHUNK):
                yield list(chunk)

    async def _handle_duplicates(
        self, step: Step, found: list[tuple[_Row, list[MarkedObject]]], report: ResyncReport
    ) -> None:
        if not found:
            return
        now = self._clock()
        notes: list[dict[str, Any]] = []
        kept: dict[tuple[str, StepName], list[str]] = {}
        for row, extra in found:
            left = []
            for obj in extra:
                removable = step.duplicates is not None and step.duplicates.empty(obj)
                if removable and await self._discard(step, obj):
                    report.removed.append((row.spec.id, row.step, obj.id))
                    notes.append(_note(row, now, "step.change", f"removed {obj.name!r} ({obj.id}): an empty duplicate"))
                    continue
                left.append(obj.id)
                report.kept.append((row.spec.id, row.step, obj.id))
            if sorted(left) != sorted(row.duplicates):
                kept[(row.spec.id, row.step)] = left
                if left:
                    message = (
                        f"{', '.join(left)} also carry this workspace's marker besides the object it owns and hold "
                        "data, so they were left in place: check them and remove them by hand"
                    )
                    notes.append(_note(row, now, "step.duplicate", message))
        async with self._sessionmaker() as session, session.begin():
            for (tenant_id, name), ids in kept.items():
                row_ = await session.get(TenantStep, (tenant_id, name))
                if row_ is not None:
                    data = {k: v for k, v in (row_.data or {}).items() if k != DUPLICATES}
                    row_.data = {**data, DUPLICATES: ids} if ids else data
            if notes:
                await session.execute(sa.insert(EVENTS), notes)

    async def _discard(self, step: Step, obj: MarkedObject) -> bool:
        assert step.duplicates is not None
        try:
            async with asyncio.timeout(self._timeout):
                await step.duplicates.discard(obj)
        except (StepError, TimeoutError) as err:
            log.warning("resync.duplicate_kept", step=step.name, object=obj.id, error=str(err))
            return False
        return True

    async def _wake(self, drifted: list[tuple[str, str, str]]) -> None:
        """Make every drifted step due now (its tenant's next run too), and say why in the timeline."""
        if not drifted:
            return
        now = self._clock()
        by_step: dict[str, list[str]] = defaultdict(list)
        for tenant_id, name, _ in drifted:
            by_step[name].append(tenant_id)
        events = [
            {"tenant_id": t, "at": now, "step": s, "kind": "step.drift", "message": f"resync found {why}; repairing"}
            for t, s, why in drifted
        ]
        async with self._sessionmaker() as session, session.begin():
            for name, ids in by_step.items():
                for start in range(0, len(ids), _CHUNK):
                    chunk = ids[start : start + _CHUNK]
                    await session.execute(
                        sa.update(TenantStep)
                        .where(TenantStep.tenant_id.in_(chunk), TenantStep.step == name)
                        .values(next_attempt_at=now)
                        .execution_options(synchronize_session=False)
                    )
                    await session.execute(
                        sa.update(Tenant)
                        .where(Tenant.id.in_(chunk))
                        .values(next_reconcile_at=now)
                        .execution_options(synchronize_session=False)
                    )
            await session.execute(sa.insert(EVENTS), events)


async def _whole(survey: Survey) -> AsyncIterator[list[MarkedObject]]:
    """A step's survey as one page, for a step that cannot list page by page."""
    yield await survey()


# What the resync reads of a row it compares. Only the duplicates noted before, not the step's data (a mail step's
# DNS records are large).
_ROW = (
    Tenant.id,
    Tenant.slug,
    Tenant.name,
    Tenant.generation,
    Tenant.mail_domain,
    Tenant.quota_bytes,
    Tenant.lifecycle,
    Tenant.deleted_at,
    TenantStep.step,
    TenantStep.outputs,
    TenantStep.data[DUPLICATES].label("duplicates"),
)


def _settled(columns: Sequence[Any], name: StepName) -> sa.Select[Any]:
    """``columns`` of one step's healthy, settled rows of active or suspended tenants; the caller adds that the
    tenant is live (not deleted)."""
    return (
        sa.select(*columns)
        .join(TenantStep, TenantStep.tenant_id == Tenant.id)
        .where(
            Tenant.lifecycle.in_([Lifecycle.ACTIVE, Lifecycle.SUSPENDED]),
            TenantStep.step == name,
            TenantStep.status == StepStatus.OK,
            TenantStep.observed_generation == Tenant.generation,
        )
    )


def _stores(row: _Row, obj: MarkedObject) -> bool:
    """Whether ``obj`` is the object the row stores: every id the listing gives for it is the stored one."""
    return bool(obj.ids) and all(row.outputs.get(k) == v for k, v in obj.ids.items())


def _row(r: Any) -> _Row:
    spec = TenantSpec(
        id=r.id,
        slug=r.slug,
        name=r.name,
        generation=r.generation,
        mail_domain=r.mail_domain,
        quota_bytes=r.quota_bytes,
        suspended=r.lifecycle != Lifecycle.ACTIVE,
    )
    noted = r.duplicates if isinstance(r.duplicates, list) else []
    return _Row(spec, StepName(r.step), dict(r.outputs or {}), [str(i) for i in noted])


def _note(row: _Row, at: datetime, kind: str, message: str) -> dict[str, Any]:
    return {"tenant_id": row.spec.id, "at": at, "step": row.step, "kind": kind, "message": message}
