"""The level-triggered reconciler: make one tenant's upstreams match its desired state, step by step.

A run, with the tenant's lease held by the caller:

1. read the desired state (a snapshot; no transaction stays open while upstreams are called);
2. run every step that is due, concurrently and independently: a new generation, a forced run, a retry
   whose time has come, or the periodic resync of a healthy step (which is what repairs drift);
3. record each outcome as conditions on the step (ok / pending / error, retryable or not, when next), roll
   the tenant status up, schedule the next run at the earliest step's next attempt, write events for every
   transition, and release the lease, all in one transaction guarded by the lease (a worker that lost its
   lease discards its results rather than overwrite the new owner's).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
import structlog
from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tenantry.config import Settings
from tenantry.db.base import utcnow
from tenantry.integrations.errors import PermanentStepError, StepError, TransientStepError
from tenantry.integrations.ports import StepResult, TenantSpec
from tenantry.provisioning.backoff import backoff_delay
from tenantry.provisioning.leases import LeaseManager
from tenantry.provisioning.steps import Step
from tenantry.tenants.models import Tenant, TenantEvent, TenantStep

log = structlog.get_logger("tenantry.reconciler")

STEP_RUNS = Counter("tenantry_step_runs_total", "Step attempts by step and outcome", ["step", "outcome"])
STEP_SECONDS = Histogram("tenantry_step_duration_seconds", "Duration of one step attempt", ["step"])
RECONCILES = Counter("tenantry_reconciles_total", "Reconcile runs by outcome", ["outcome"])

LIFECYCLE_STATUSES = frozenset({"suspended", "deleting", "deleted"})


@dataclass
class _Outcome:
    step: str
    status: str
    reason: str
    message: str
    retryable: bool
    next_in: float | None
    result: StepResult | None = None
    events: list[str] = field(default_factory=list)


def tenant_spec(tenant: Tenant) -> TenantSpec:
    return TenantSpec(
        id=tenant.id,
        slug=tenant.slug,
        name=tenant.name,
        generation=tenant.generation,
        mail_domain=tenant.mail_domain,
        quota_bytes=tenant.quota_bytes,
    )


def roll_up(tenant: Tenant, statuses: Sequence[str]) -> str:
    """pending until every step is ok/skipped, then active; an active tenant with a failing step is degraded."""
    if tenant.status in LIFECYCLE_STATUSES:
        return tenant.status
    if all(s in ("ok", "skipped") for s in statuses):
        return "active"
    if tenant.activated_at is not None:
        return "degraded" if "error" in statuses else "active"
    return "pending"


class Reconciler:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        steps: Sequence[Step],
        leases: LeaseManager,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._steps = list(steps)
        self._leases = leases
        self._settings = settings
        self._clock = clock
        self._rng = rng or random.SystemRandom()

    @property
    def steps(self) -> list[Step]:
        return self._steps

    async def reconcile(self, tenant_id: str, owner: str, *, force: bool = False) -> bool:
        """Run one reconcile of a tenant whose lease ``owner`` holds; releases the lease when done.

        Returns False when the results were discarded because the lease was lost meanwhile.
        """
        run_id = uuid.uuid4().hex[:12]
        bound = log.bind(tenant_id=tenant_id, run_id=run_id)
        renewer = asyncio.create_task(self._keep_lease(tenant_id, owner))
        try:
            async with self._sessionmaker() as session:
                tenant = await session.get(Tenant, tenant_id)
                if tenant is None:
                    return True
                spec = tenant_spec(tenant)
                now = self._clock()
                stored = {s.step: s for s in tenant.steps}
                due = [
                    step
                    for step in self._steps
                    if force or self._is_due(tenant, stored.get(step.name), now, step.configured)
                ]
                ids = {step.name: dict(stored[step.name].outputs) if step.name in stored else {} for step in due}
            bound = bound.bind(tenant_slug=spec.slug, generation=spec.generation)
            bound.info("reconcile.start", steps=[s.name for s in due], force=force)
            running: asyncio.Future[list[_Outcome]] = asyncio.ensure_future(
                asyncio.gather(*(self._run_step(step, spec, ids[step.name], bound) for step in due))
            )
            waiting: set[asyncio.Future[Any]] = {running, renewer}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if not running.done():
                # The lease is gone (expired and taken): the new owner is working on this tenant, so stop
                # calling upstreams now rather than race it. Whatever a cancelled step created is found
                # again by its marker on the next run.
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
                RECONCILES.labels("lease_lost").inc()
                bound.warning("reconcile.lease_lost", stopped_steps=[s.name for s in due])
                return False
            outcomes = running.result()
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        written = await self._record(tenant_id, owner, spec.generation, outcomes)
        RECONCILES.labels("ok" if written else "lease_lost").inc()
        bound.info(
            "reconcile.done" if written else "reconcile.lease_lost", outcomes={o.step: o.status for o in outcomes}
        )
        return written

    def _is_due(self, tenant: Tenant, step: TenantStep | None, now: datetime, configured: bool) -> bool:
        if step is None or step.observed_generation < tenant.generation:
            return True
        if step.status == "skipped" and configured:
            return True  # configured since it was skipped
        return step.next_attempt_at is not None and step.next_attempt_at <= now

    async def _keep_lease(self, tenant_id: str, owner: str) -> None:
        """Renew the lease while steps run. A failed renewal is retried at the next interval; the fence in
        _record decides in the end whether the results may be written."""
        interval = self._settings.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                if not await self._leases.renew(tenant_id, owner):
                    log.warning("reconcile.lease_lost", tenant_id=tenant_id)
                    return
            except Exception:  # a store hiccup must not discard the run; try again at the next interval
                log.warning("reconcile.lease_renewal_failed", tenant_id=tenant_id, exc_info=True)

    async def _run_step(
        self, step: Step, spec: TenantSpec, ids: dict[str, str], bound: structlog.typing.FilteringBoundLogger
    ) -> _Outcome:
        settings = self._settings
        if not step.configured:
            # Looked at again at resync: once the upstream is configured (a restart with new settings), the
            # step runs by itself instead of staying skipped for good.
            return _Outcome(
                step.name, "skipped", "NotConfigured", step.not_configured_hint, False, settings.resync_interval_seconds
            )
        started = time.perf_counter()
        try:
            async with asyncio.timeout(settings.step_timeout_seconds):
                result = await step.ensure(spec, ids)
        except TransientStepError as err:
            outcome = _Outcome(step.name, "error", err.reason, err.message, True, None)
            outcome.next_in = err.retry_after  # combined with backoff in _record, which knows the attempt count
        except PermanentStepError as err:
            outcome = _Outcome(step.name, "error", err.reason, err.message, False, None)
        except StepError as err:
            outcome = _Outcome(step.name, "error", err.reason, err.message, True, None)
        except TimeoutError:
            outcome = _Outcome(
                step.name,
                "error",
                "StepTimeout",
                f"{step.name} did not finish within {settings.step_timeout_seconds:g}s",
                True,
                None,
            )
        except Exception as err:  # noqa: BLE001 - a bug in one step must not stop the others; it is retried and logged
            bound.exception("step.crashed", step=step.name)
            outcome = _Outcome(
                step.name,
                "error",
                "InternalError",
                f"unexpected {type(err).__name__} in the {step.name} step; see the service log",
                True,
                None,
            )
        else:
            if result.state == "ok":
                outcome = _Outcome(
                    step.name,
                    "ok",
                    result.reason,
                    result.message,
                    True,
                    settings.resync_interval_seconds,
                    result,
                    list(result.events),
                )
            else:
                outcome = _Outcome(
                    step.name,
                    "pending",
                    result.reason,
                    result.message,
                    True,
                    settings.pending_poll_seconds,
                    result,
                    list(result.events),
                )
        elapsed = time.perf_counter() - started
        STEP_SECONDS.labels(step.name).observe(elapsed)
        STEP_RUNS.labels(step.name, outcome.status if outcome.retryable or outcome.status != "error" else "fatal").inc()
        event = {"ok": "step.ok", "pending": "step.pending", "skipped": "step.skipped"}.get(
            outcome.status, "step.failed"
        )
        bound.info(
            event,
            step=step.name,
            status=outcome.status,
            reason=outcome.reason,
            message=outcome.message,
            seconds=round(elapsed, 4),
        )
        return outcome

    async def _record(self, tenant_id: str, owner: str, generation: int, outcomes: Sequence[_Outcome]) -> bool:
        now = self._clock()
        async with self._sessionmaker() as session, session.begin():
            # The fence, as the transaction's first statement: a write that matches only while we hold the
            # lease. It takes the row lock on PostgreSQL and the database write lock on SQLite, so nobody can
            # take the lease between this check and the commit.
            fenced = await session.execute(
                sa.update(Tenant)
                .where(Tenant.id == tenant_id, Tenant.lease_owner == owner)
                .values(lease_expires_at=Tenant.lease_expires_at)
                .execution_options(synchronize_session=False)
            )
            if not fenced.rowcount:  # type: ignore[attr-defined]
                exists = await session.scalar(sa.select(sa.func.count()).where(Tenant.id == tenant_id))
                return not exists  # a deleted tenant has nothing to record; otherwise the lease was lost
            tenant = (await session.execute(sa.select(Tenant).where(Tenant.id == tenant_id))).scalar_one()
            stored = {s.step: s for s in tenant.steps}
            for outcome in outcomes:
                row = stored.get(outcome.step)
                if row is None:
                    row = TenantStep(
                        step=outcome.step,
                        status="pending",
                        reason="Created",
                        message="",
                        retryable=True,
                        attempts=0,
                        observed_generation=0,
                        outputs={},
                        data={},
                    )
                    tenant.steps.append(row)
                    stored[outcome.step] = row
                self._apply(tenant, row, outcome, generation, now, session)
            tenant.status = roll_up(tenant, [stored[s.name].status for s in self._steps if s.name in stored])
            if tenant.status == "active" and tenant.activated_at is None:
                tenant.activated_at = now
                session.add(
                    TenantEvent(
                        tenant_id=tenant.id,
                        at=now,
                        kind="tenant.active",
                        message="every step is ok; the workspace is ready",
                    )
                )
            pending_times = [s.next_attempt_at for s in tenant.steps if s.next_attempt_at is not None]
            if tenant.generation != generation:  # changed while we ran: go again at once
                pending_times.append(now)
            tenant.next_reconcile_at = min(pending_times) if pending_times else None
            tenant.lease_owner = None
            tenant.lease_expires_at = None
        return True

    def _apply(
        self, tenant: Tenant, row: TenantStep, outcome: _Outcome, generation: int, now: datetime, session: AsyncSession
    ) -> None:
        settings = self._settings
        previous = (row.status, row.reason)
        fresh_streak = row.status in ("ok", "skipped") or row.observed_generation < generation
        row.attempts = 1 if fresh_streak else row.attempts + 1
        if outcome.status == "skipped":
            row.attempts = 0
        row.last_attempt_at = now if outcome.status != "skipped" else row.last_attempt_at
        row.status, row.reason, row.message, row.retryable = (
            outcome.status,
            outcome.reason,
            outcome.message,
            outcome.retryable,
        )
        row.observed_generation = generation
        if outcome.status == "error" and outcome.retryable:
            delay = backoff_delay(
                row.attempts,
                base=settings.retry_base_seconds,
                cap=settings.retry_cap_seconds,
                retry_after=outcome.next_in,
                rng=self._rng,
            )
            row.next_attempt_at = now + timedelta(seconds=delay)
        elif outcome.next_in is not None:
            row.next_attempt_at = now + timedelta(seconds=outcome.next_in)
        else:
            row.next_attempt_at = None
        if outcome.result is not None:
            row.outputs = dict(outcome.result.ids)  # the ids the step owns now (replaced, not merged)
            if outcome.result.data:
                row.data = {**row.data, **outcome.result.data}
        if outcome.status == "ok":
            row.last_success_at = now
        if (row.status, row.reason) != previous:
            row.last_transition_at = now
            kind = {"ok": "step.ok", "pending": "step.pending", "error": "step.failed", "skipped": "step.skipped"}
            session.add(
                TenantEvent(
                    tenant_id=tenant.id,
                    at=now,
                    step=row.step,
                    kind=kind[row.status],
                    message=f"{row.reason}: {row.message}",
                )
            )
        for note in outcome.events:
            session.add(TenantEvent(tenant_id=tenant.id, at=now, step=row.step, kind="step.change", message=note))
