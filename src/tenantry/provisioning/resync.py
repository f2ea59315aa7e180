"""The bulk resync: read each upstream's marked objects once per cycle, compare them with the store in memory,
and send the reconciler only to the tenants that drifted.

A healthy tenant costs no upstream request of its own: per cycle each upstream is listed once (authentik groups
by page, Stalwart domains many per JMAP request, oCIS project spaces in one listing), and a step is made due
only when its object is missing, is not the one it stores, shows other values than desired, or has a twin
carrying the same tenant's marker. A twin that the upstream reports empty is removed; any other is reported
on the step (``data.duplicates``) and in the timeline for an operator, never deleted blindly.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Sequence
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
from tenantry.provisioning.steps import Step
from tenantry.states import Lifecycle, StepName, StepStatus
from tenantry.tenants.models import Tenant, TenantStep

log = structlog.get_logger("tenantry.resync")
DUPLICATES = "duplicates"
_CHUNK = 500


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
        """One pass, one upstream after the other: only one upstream's listing is held in memory at a time."""
        report = ResyncReport()
        for step in self._steps:
            try:
                async with asyncio.timeout(self._timeout):
                    objects = await step.survey()
            except (StepError, TimeoutError) as err:
                # Nothing is concluded from a listing that failed: its tenants wait for the next cycle.
                report.failed[step.name] = getattr(err, "message", None) or f"no listing within {self._timeout:g}s"
                log.warning("resync.list_failed", step=step.name, error=report.failed[step.name])
                continue
            report.listed[step.name] = len(objects)
            listing = _by_tenant(objects)
            del objects
            await self._compare_step(step, listing, report)
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

    async def _compare_step(self, step: Step, listing: dict[str, list[MarkedObject]], report: ResyncReport) -> None:
        drifted_before = len(report.drifted)
        duplicates: list[tuple[_Row, list[MarkedObject]]] = []
        async for rows in self._healthy(step.name):
            for row in rows:
                report.compared += 1
                found = listing.get(row.spec.id) or listing.get(f"slug:{row.spec.slug}", [])
                why, extra = _compare(step, row, found)
                if why is not None:
                    report.drifted.append((row.spec.id, row.step, why))
                if extra:
                    duplicates.append((row, extra))
        await self._handle_duplicates(step, duplicates, report)
        await self._wake(report.drifted[drifted_before:])

    async def _healthy(self, name: StepName) -> Any:
        """The healthy, settled rows of one step of live tenants, in chunks (a streamed read: memory stays flat)."""
        query = (
            sa.select(
                Tenant.id,
                Tenant.slug,
                Tenant.name,
                Tenant.generation,
                Tenant.mail_domain,
                Tenant.quota_bytes,
                Tenant.lifecycle,
                TenantStep.step,
                TenantStep.outputs,
                # Only the duplicates noted before, not the step's data (a mail step's DNS records are large).
                TenantStep.data[DUPLICATES].label("duplicates"),
            )
            .join(TenantStep, TenantStep.tenant_id == Tenant.id)
            .where(
                Tenant.deleted_at.is_(None),
                Tenant.lifecycle.in_([Lifecycle.ACTIVE, Lifecycle.SUSPENDED]),
                TenantStep.step == name,
                TenantStep.status == StepStatus.OK,
                TenantStep.observed_generation == Tenant.generation,
            )
            .order_by(Tenant.id)
            .execution_options(yield_per=_CHUNK)
        )
        async with self._sessionmaker() as session:
            result = await session.stream(query)
            async for chunk in result.partitions(_CHUNK):
                yield [_row(r) for r in chunk]

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


def _by_tenant(objects: list[MarkedObject]) -> dict[str, list[MarkedObject]]:
    """Objects by the tenant their marker names; those only a name ties to a tenant, under ``slug:<slug>``."""
    grouped: dict[str, list[MarkedObject]] = defaultdict(list)
    for obj in objects:
        if obj.tenant_id is not None:
            grouped[obj.tenant_id].append(obj)
        elif obj.slug is not None:
            grouped[f"slug:{obj.slug}"].append(obj)
    return grouped


def _compare(step: Step, row: _Row, found: list[MarkedObject]) -> tuple[str | None, list[MarkedObject]]:
    """What differs between the step's stored object and the listing (None: in sync), and the twins found."""
    owned = [obj for obj in found if obj.ids and all(row.outputs.get(k) == v for k, v in obj.ids.items())]
    if not owned:
        if not found:
            return f"no {step.name} object carrying this workspace's marker", []
        return f"the {step.name} object it stores is gone; {found[0].id} carries its marker", []
    extra = [obj for obj in found if obj is not owned[0]]
    drift = step.drift(row.spec, owned[0]) if step.drift is not None else None
    return drift, extra


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
