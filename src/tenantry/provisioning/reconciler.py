"""The level-triggered reconciler: make one tenant's upstreams match its desired state, step by step.

A run, with the tenant's lease held by the caller:

1. read the desired state (a snapshot; no transaction stays open while upstreams are called);
2. run every step that is due, concurrently and independently: a new generation, a forced run, a retry
   whose time has come, or the periodic resync of a healthy step (which is what repairs drift);
3. apply each outcome to the step's conditions (:mod:`tenantry.provisioning.outcomes`), roll the tenant status
   up, schedule the next run at the earliest step's next attempt, record events for every transition, and
   release the lease, all in one transaction guarded by the lease (a worker that lost its lease discards its
   results rather than overwrite the new owner's).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tenantry.config import Settings
from tenantry.db.base import utcnow
from tenantry.integrations.errors import PermanentStepError, StepError, TransientStepError
from tenantry.integrations.ports import PlannedChange, StepResult, TenantSpec
from tenantry.provisioning.journal import StepJournal
from tenantry.provisioning.leases import LeaseManager
from tenantry.provisioning.outcomes import Note, Outcome, Timing, apply_outcome, is_due, roll_up
from tenantry.provisioning.pacing import Pacing
from tenantry.provisioning.repository import ProvisioningRepository, same_columns
from tenantry.provisioning.snapshots import FreshTenant, claim_snapshot, next_run, tenant_spec
from tenantry.provisioning.steps import Step
from tenantry.provisioning.teardown import TORN_DOWN, is_purging, remaining, teardown_due
from tenantry.provisioning.verification import Admission, ClaimSnapshot, DomainGate
from tenantry.states import SETTLED_STEP_STATUSES, DomainStatus, Lifecycle, StepName, StepStatus, TenantStatus
from tenantry.tenants.models import Tenant, TenantStep

log = structlog.get_logger("tenantry.reconciler")

STEP_RUNS = Counter("tenantry_step_runs_total", "Step attempts by step and outcome", ["step", "outcome"])
STEP_SECONDS = Histogram("tenantry_step_duration_seconds", "Duration of one step attempt", ["step"])
RECONCILES = Counter("tenantry_reconciles_total", "Reconcile runs by outcome", ["outcome"])


class Reconciler:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        steps: Sequence[Step],
        leases: LeaseManager,
        settings: Settings,
        *,
        gate: DomainGate,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._gate = gate
        self._steps = list(steps)
        self._journaled = [step.name for step in self._steps if step.journaled and step.configured]
        self._leases = leases
        self._settings = settings
        self._clock = clock
        self._rng = rng or random.SystemRandom()
        self._pacing = Pacing()
        self._timing = Timing(
            retry_base_seconds=settings.retry_base_seconds,
            retry_cap_seconds=settings.retry_cap_seconds,
            resync_interval_seconds=settings.resync_interval_seconds,
            pending_poll_seconds=settings.pending_poll_seconds,
            permanent_retry_seconds=settings.permanent_retry_seconds,
            full_resync_seconds=settings.full_resync_seconds,
        )

    @property
    def steps(self) -> list[Step]:
        return self._steps

    def hand_off(self, tenant: Tenant, owner: str, now: datetime) -> FreshTenant:
        """Make a tenant being created (not flushed yet) start out leased to ``owner`` with its journaled
        creates noted, so that the create's own transaction does what a run's first transaction would.

        The run that :meth:`reconcile` starts with the returned :class:`FreshTenant` then reads nothing and
        writes nothing before it calls the upstreams. Should that run never start (its process died after the
        commit), a worker takes the tenant once the lease expires and, seeing the notes, looks for what a
        create may have made before it creates anything.
        """
        tenant.lease_owner = owner
        tenant.lease_expires_at = self._leases.expiry(now)
        noted = set(self._journaled)
        for row in tenant.steps:
            if row.step in noted:
                row.create_started_at = now
        return FreshTenant(tenant, owner, frozenset(noted))

    async def reconcile(
        self,
        tenant_id: str,
        owner: str,
        *,
        force: bool = False,
        keep: Callable[[Tenant], None] | None = None,
        fresh: FreshTenant | None = None,
    ) -> bool:
        """Run one reconcile of a tenant whose lease ``owner`` holds; releases the lease when done.

        Returns False when the results were discarded because the lease was lost meanwhile. ``keep`` is given
        the tenant as the run recorded it (steps, claims and admins loaded), so that a caller answering a
        request need not read it again. ``fresh``: the tenant as its create committed it (see
        :meth:`hand_off`), instead of a read of it.
        """
        run_id = uuid.uuid4().hex[:12]
        bound = log.bind(tenant_id=tenant_id, run_id=run_id)
        renewer = asyncio.create_task(self._keep_lease(tenant_id, owner))
        running: asyncio.Future[list[Outcome]] | None = None
        try:
            now = self._clock()
            if fresh is not None:
                tenant, pre_noted = fresh.tenant, set(fresh.pre_noted)
            else:
                async with self._sessionmaker() as session, session.begin():
                    repo = ProvisioningRepository(session)
                    pre_noted = await repo.pre_note(tenant_id, owner, self._journaled, now=now)
                    loaded = await repo.load(tenant_id)
                if loaded is None:
                    return True
                tenant = loaded
            spec = tenant_spec(tenant)
            stored = {s.step: s for s in tenant.steps}
            purging = is_purging(tenant, now)
            due = self._due(tenant, stored, now, force=force, purging=purging)
            ids = {step.name: dict(stored[step.name].outputs) if step.name in stored else {} for step in due}
            journals = {
                step.name: self._journal(tenant_id, owner, stored.get(step.name), step, step.name in pre_noted)
                for step in due
            }
            claim = claim_snapshot(tenant)
            bound = bound.bind(tenant_slug=spec.slug, generation=spec.generation)
            bound.info("reconcile.start", steps=[str(s.name) for s in due], force=force)
            work = (
                self._tear_down(due, spec, ids, bound)
                if purging
                else self._ensure_all(due, spec, ids, claim, bound, journals)
            )
            running = asyncio.ensure_future(work)
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
                bound.warning("reconcile.lease_lost", stopped_steps=[str(s.name) for s in due])
                return False
            outcomes = running.result()
        finally:
            # Also when this run is itself cancelled (a worker shutting down): no step keeps calling an
            # upstream behind the caller's back, and the lease renewal stops with the run.
            for pending in (running, renewer):
                if pending is not None and not pending.done():
                    pending.cancel()
            for pending in (running, renewer):
                if pending is not None:
                    with contextlib.suppress(asyncio.CancelledError):
                        await pending
        written, recorded = await self._record(
            tenant_id, owner, spec.generation, outcomes, purging=purging, with_admins=keep is not None
        )
        if keep is not None and recorded is not None:
            keep(recorded)
        RECONCILES.labels("ok" if written else "lease_lost").inc()
        bound.info(
            "reconcile.done" if written else "reconcile.lease_lost",
            outcomes={str(o.step): str(o.status) for o in outcomes},
        )
        return written

    def _due(
        self, tenant: Tenant, stored: dict[StepName, TenantStep], now: datetime, *, force: bool, purging: bool
    ) -> list[Step]:
        """The steps this run runs: a new generation's, a retry's or a resync's, or the next of a purge."""
        if tenant.deleted_at is not None:
            return []  # a tombstone: nothing upstream is ours any more
        if purging:
            # In reverse order, each only once the one before has confirmed (see _tear_down).
            assert tenant.purge_at is not None  # is_purging checked it
            due = remaining(self._steps, stored, tenant.purge_at)
            if due and not (force or teardown_due(stored.get(due[0].name), tenant.purge_at, now)):
                return []
            return due
        return [
            step
            for step in self._steps
            if force or is_due(stored.get(step.name), tenant.generation, now, configured=step.configured)
        ]

    async def plan(self, tenant_id: str) -> list[StepPlan] | None:
        """What a reconcile of the tenant would change upstream, per step, without writing anything (None when
        the tenant does not exist). A deleting tenant shows what its purge removes."""
        async with self._sessionmaker() as session:
            tenant = await ProvisioningRepository(session).load(tenant_id)
            if tenant is None:
                return None
            spec, claim = tenant_spec(tenant), claim_snapshot(tenant)
            ids = {s.step: dict(s.outputs or {}) for s in tenant.steps}
            teardown, tombstone = tenant.lifecycle == Lifecycle.DELETING, tenant.deleted_at is not None
        plans: list[StepPlan] = []
        for step in self._steps:
            if tombstone:
                plans.append(StepPlan(step.name, [], "purged: nothing upstream is the tenant's any more"))
                continue
            note = ""
            if step.gated and not teardown and claim is not None and claim.status != DomainStatus.VERIFIED:
                note = f"waits until {claim.domain} is proven ({claim.status}): nothing is created before"
            try:
                async with asyncio.timeout(self._settings.step_timeout_seconds):
                    changes = await step.plan(spec, ids.get(step.name, {}), teardown=teardown)
            except StepError as err:
                plans.append(StepPlan(step.name, [], note, error=f"{err.reason}: {err.message}"))
                continue
            except TimeoutError:
                plans.append(StepPlan(step.name, [], note, error=f"{step.name} did not answer in time"))
                continue
            plans.append(StepPlan(step.name, changes, note))
        return plans

    def _journal(self, tenant_id: str, owner: str, row: TenantStep | None, step: Step, pre_noted: bool) -> StepJournal:
        return StepJournal(
            self._sessionmaker,
            tenant_id=tenant_id,
            step=step.name,
            owner=owner,
            # What earlier attempts left: a note this run made itself says nothing of them.
            started_at=None if row is None or pre_noted else row.create_started_at,
            succeeded_before=row is not None and row.last_success_at is not None,
            settle_seconds=self._settings.create_settle_seconds,
            clock=self._clock,
            pre_noted=pre_noted,
        )

    @staticmethod
    async def _ensure(step: Step, spec: TenantSpec, ids: dict[str, str], journal: StepJournal | None) -> StepResult:
        if step.journaled and journal is not None:
            return await step.ensure(spec, ids, journal)
        return await step.ensure(spec, ids)

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

    def _ensure_all(
        self,
        due: Sequence[Step],
        spec: TenantSpec,
        ids: dict[StepName, dict[str, str]],
        claim: ClaimSnapshot | None,
        bound: structlog.typing.FilteringBoundLogger,
        journals: dict[StepName, StepJournal],
    ) -> asyncio.Future[list[Outcome]]:
        """The steps concurrently, outcomes in step order; the longest chain of round trips first, the others
        half a round trip later (see :mod:`tenantry.provisioning.pacing`)."""
        return self._pacing.start(
            due, lambda step: self._run_step(step, spec, ids[step.name], claim, bound, journals[step.name])
        )

    async def _tear_down(
        self,
        steps: Sequence[Step],
        spec: TenantSpec,
        ids: dict[StepName, dict[str, str]],
        bound: structlog.typing.FilteringBoundLogger,
    ) -> list[Outcome]:
        """Tear the steps down one after the other, stopping at the first that does not confirm: an upstream
        that is down holds the deletion there, and the steps before it keep their objects until it is back."""
        outcomes: list[Outcome] = []
        for step in steps:
            outcome = await self._run_step(step, spec, ids[step.name], None, bound, teardown=True)
            outcomes.append(outcome)
            if outcome.status not in SETTLED_STEP_STATUSES:
                break
        return outcomes

    async def _run_step(
        self,
        step: Step,
        spec: TenantSpec,
        ids: dict[str, str],
        claim: ClaimSnapshot | None,
        bound: structlog.typing.FilteringBoundLogger,
        journal: StepJournal | None = None,
        *,
        teardown: bool = False,
    ) -> Outcome:
        timeout = self._settings.step_timeout_seconds
        started = time.perf_counter()
        notes: list[str] = []
        answered = False  # by the upstream: the run's time is its round trips' (see Pacing)
        try:
            async with asyncio.timeout(timeout):
                if teardown:
                    outcome = _from_result(step, await step.teardown(spec, ids))
                    if outcome.status == StepStatus.OK:
                        outcome.reason = TORN_DOWN
                else:
                    gated = step.gated and step.configured
                    admission = await self._gate.admit(claim) if gated else Admission(None)
                    notes = admission.events
                    outcome = admission.outcome or _from_result(step, await self._ensure(step, spec, ids, journal))
                    answered = admission.outcome is None
        except StepError as err:
            retryable = not isinstance(err, PermanentStepError)
            retry_after = err.retry_after if isinstance(err, TransientStepError) else None
            outcome = Outcome(step.name, StepStatus.ERROR, err.reason, err.message, retryable, retry_after)
        except TimeoutError:
            outcome = Outcome(
                step.name, StepStatus.ERROR, "StepTimeout", f"{step.name} did not finish within {timeout:g}s", True
            )
        except Exception as err:  # noqa: BLE001 - a bug in one step must not stop the others; it is retried and logged
            bound.exception("step.crashed", step=step.name)
            message = f"unexpected {type(err).__name__} in the {step.name} step; see the service log"
            outcome = Outcome(step.name, StepStatus.ERROR, "InternalError", message, True)
        outcome.events[:0] = notes
        outcome.create_refused = journal is not None and journal.note_can_go
        elapsed = time.perf_counter() - started
        STEP_SECONDS.labels(step.name).observe(elapsed)
        if answered and outcome.status in {StepStatus.OK, StepStatus.PENDING}:
            self._pacing.observe(step, elapsed)
        fatal = outcome.status == StepStatus.ERROR and not outcome.retryable
        STEP_RUNS.labels(step.name, "fatal" if fatal else outcome.status).inc()
        event = "step.failed" if outcome.status == StepStatus.ERROR else f"step.{outcome.status}"
        bound.info(
            event,
            step=step.name,
            status=outcome.status,
            reason=outcome.reason,
            message=outcome.message,
            seconds=round(elapsed, 4),
        )
        return outcome

    async def _record(
        self,
        tenant_id: str,
        owner: str,
        generation: int,
        outcomes: Sequence[Outcome],
        *,
        purging: bool,
        with_admins: bool = False,
    ) -> tuple[bool, Tenant | None]:
        """Apply the outcomes under the lease; whether they were written, and the tenant as written."""
        now = self._clock()
        async with self._sessionmaker() as session, session.begin():
            repo = ProvisioningRepository(session)
            if not await repo.fence(tenant_id, owner):  # the transaction's first statement: see fence()
                return not await repo.exists(tenant_id), None  # a deleted tenant has nothing to record
            tenant = await repo.load(tenant_id, with_admins=with_admins)
            assert tenant is not None  # the fence matched its row in this same transaction
            stored = {s.step: s for s in tenant.steps}
            notes: list[Note] = []
            for outcome in outcomes:
                row = stored.get(outcome.step)
                if row is None:
                    row = stored[outcome.step] = TenantStep.new(outcome.step)
                    tenant.steps.append(row)
                notes += apply_outcome(row, outcome, generation=generation, now=now, timing=self._timing, rng=self._rng)
            if purging and tenant.purge_at and not remaining(self._steps, stored, tenant.purge_at):
                repo.tombstone(tenant, now)
                notes.append(Note("tenant.purged", "every upstream object is gone; the slug and mail domain are free"))
            tenant.status = roll_up(
                tenant.lifecycle,
                tenant.deleted_at is not None,
                tenant.activated_at is not None,
                [stored[s.name].status for s in self._steps if s.name in stored],
            )
            if tenant.status == TenantStatus.ACTIVE and tenant.activated_at is None:
                tenant.activated_at = now
                notes.append(Note("tenant.active", "every step is ok; the workspace is ready"))
            same_columns([stored[o.step] for o in outcomes])
            await repo.record(tenant.id, notes, at=now)
            tenant.next_reconcile_at = next_run(tenant, generation, now)
            tenant.lease_owner = None
            tenant.lease_expires_at = None
        return True, tenant


@dataclass(frozen=True)
class StepPlan:
    """One step's part of a plan: its upstream objects' changes, a note, or why it could not be planned."""

    step: StepName
    changes: list[PlannedChange]
    note: str = ""
    error: str | None = None


def _from_result(step: Step, result: StepResult) -> Outcome:
    status = StepStatus(result.state)
    return Outcome(
        step.name,
        status,
        result.reason,
        result.message,
        retryable=status != StepStatus.SKIPPED,
        ids=dict(result.ids) if status != StepStatus.SKIPPED else None,
        data=dict(result.data),
        dns_records=result.dns_records,
        events=list(result.events),
    )
