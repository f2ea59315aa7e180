"""The worker loop, and the runner the API uses to reconcile one tenant now and wait a little for it."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import functools
import gc
import os
import socket
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from tenantry.provisioning.leases import LeaseManager
from tenantry.provisioning.reconciler import Reconciler, StepPlan
from tenantry.provisioning.resync import Resync, ResyncReport
from tenantry.provisioning.snapshots import FreshTenant
from tenantry.tenants.models import Tenant

log = structlog.get_logger("tenantry.worker")
RESYNC_LOCK = "resync"


def give_back_memory() -> None:
    """Collect garbage and, on glibc, return freed heap pages to the system (``malloc_trim``), so that a worker
    does not keep the peak of its last bulk pass as its resident size while idle."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        _libc().malloc_trim(0)


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def worker_identity(kind: str) -> str:
    """A lease owner name that says which process holds a tenant (host, pid) and is unique per start."""
    return f"{kind}:{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """Claims due tenants in batches and reconciles them, at most ``concurrency`` at a time."""

    def __init__(
        self,
        reconciler: Reconciler,
        leases: LeaseManager,
        *,
        poll_seconds: float,
        batch_size: int,
        concurrency: int,
        owner: str | None = None,
        shutdown_grace_seconds: float = 10.0,
        resync: Resync | None = None,
        resync_interval_seconds: float = 600.0,
    ) -> None:
        self._reconciler = reconciler
        self._leases = leases
        self._poll = poll_seconds
        self._batch = batch_size
        self._concurrency = concurrency
        self.owner = owner or worker_identity("worker")
        self._grace = shutdown_grace_seconds
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._resync_requested = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._resync = resync
        self._resync_interval = resync_interval_seconds

    def wake(self) -> None:
        """Look for due work now instead of at the next poll (called after a tenant changes)."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._resync_requested.set()

    def resync_soon(self) -> None:
        """Run a bulk resync pass now instead of at the end of the interval (``tenantry worker`` on SIGUSR1);
        the interval starts again after it. Nothing happens in a worker built without a resync."""
        log.info("worker.resync_requested", owner=self.owner)
        self._resync_requested.set()

    async def run(self) -> None:
        log.info("worker.start", owner=self.owner)
        resyncing = asyncio.create_task(self._resync_loop()) if self._resync is not None else None
        try:
            try:
                retried = await self._leases.retry_permanent_errors()
                if retried:
                    log.info("worker.retrying_permanent_errors", tenants=retried)
            except Exception:  # the loop must start even if this one update fails
                log.exception("worker.retry_permanent_errors_failed")
            while not self._stop.is_set():
                free = self._concurrency - len(self._tasks)
                claimed: list[str] = []
                if free > 0:
                    try:
                        claimed = await self._leases.claim_due(self.owner, min(free, self._batch))
                    except Exception:
                        log.exception("worker.claim_failed")
                for tenant_id in claimed:
                    task = asyncio.create_task(self._reconcile(tenant_id))
                    self._tasks.add(task)
                    task.add_done_callback(self._finished)
                if claimed and len(claimed) == min(free, self._batch):
                    await asyncio.sleep(0)  # more may be due: claim again without waiting
                    continue
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._poll)
        finally:
            if resyncing is not None:
                resyncing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await resyncing
            await self._drain()
            log.info("worker.stop", owner=self.owner)

    async def resync_once(self) -> ResyncReport | None:
        """One bulk resync pass, when this worker holds the resync lock (one worker of many does it)."""
        assert self._resync is not None
        hold = timedelta(seconds=self._resync_interval * 1.5)
        if not await self._leases.hold_lock(RESYNC_LOCK, self.owner, hold):
            return None
        try:
            report = await self._resync.run_once()
        finally:
            give_back_memory()  # a pass reads every upstream's listing: hand what it used back to the system
        if report.drifted:
            self._wake.set()
        return report

    async def _resync_loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._resync_requested.wait(), timeout=self._resync_interval)
            self._resync_requested.clear()
            if self._stop.is_set():
                return
            try:
                await self.resync_once()
            except Exception:  # a failed pass is logged and tried again at the next interval
                log.exception("worker.resync_failed")

    async def _drain(self) -> None:
        """On stop: let the runs in flight finish for a moment, then abandon the rest. Every run ends by
        releasing its lease (written or abandoned), so no tenant waits out a lease after a deploy."""
        if self._tasks:
            log.info("worker.draining", runs=len(self._tasks), grace_seconds=self._grace)
            await asyncio.wait(set(self._tasks), timeout=self._grace)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._wake.set()  # a slot is free: claim more now rather than at the next poll

    async def _reconcile(self, tenant_id: str) -> None:
        # At most `concurrency` of these run at once: the loop claims only as many tenants as slots are free.
        try:
            await self._reconciler.reconcile(tenant_id, self.owner)
        except asyncio.CancelledError:
            # Abandoned at shutdown: hand the tenant back now instead of leaving it leased. Whatever a
            # cancelled step created is found again by its marker on the next run.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._leases.release(tenant_id, self.owner))
            log.info("worker.run_abandoned", tenant_id=tenant_id)
            raise
        except Exception:
            log.exception("worker.reconcile_failed", tenant_id=tenant_id)
            await self._leases.release(tenant_id, self.owner)


class ReconcileRunner:
    """Reconciles a tenant on request (create, PATCH, POST …/reconcile) in the API process.

    The run is a background task, so a client that disconnects does not cut it short; the caller waits
    at most ``wait`` seconds for it. Each run holds a lease of its own: when anyone else (another process,
    or another request in this one) holds the tenant, it waits for that lease and then runs itself.
    """

    def __init__(
        self,
        reconciler: Reconciler,
        leases: LeaseManager,
        *,
        lease_wait_seconds: float,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._reconciler = reconciler
        self._leases = leases
        self._lease_wait = lease_wait_seconds
        self._on_change = on_change
        self.owner = worker_identity("api")
        self._tasks: set[asyncio.Task[bool]] = set()

    def hand_off(self, tenant: Tenant, now: datetime) -> FreshTenant:
        """Lease a tenant being created to the run that will follow its commit (see :meth:`Reconciler.hand_off`):
        the create's transaction takes the lease and notes the creates, so the run starts without either."""
        return self._reconciler.hand_off(tenant, self._new_owner(), now)

    async def reconcile_now(
        self, tenant_id: str, *, force: bool, wait: float, fresh: FreshTenant | None = None
    ) -> Tenant | None:
        """Start a reconcile and wait up to ``wait`` seconds; the tenant as the run recorded it when it finished
        within that time (None otherwise: the caller reads the tenant as it is). ``fresh``: a tenant whose
        create :meth:`hand_off` leased to this run."""
        recorded: list[Tenant] = []
        task = asyncio.create_task(self._run(tenant_id, force=force, keep=recorded.append, fresh=fresh))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        done, _ = await asyncio.wait({task}, timeout=wait)
        finished = bool(done) and not task.cancelled() and task.exception() is None
        return recorded[-1] if finished and recorded else None

    def _new_owner(self) -> str:
        # Each run is its own lease owner: two requests for one tenant in this process (a create still
        # running and a reconcile, two reconciles) must queue for the lease like any two workers would.
        return f"{self.owner}:{uuid.uuid4().hex[:8]}"

    async def _run(
        self,
        tenant_id: str,
        *,
        force: bool,
        keep: Callable[[Tenant], None] | None = None,
        fresh: FreshTenant | None = None,
    ) -> bool:
        if fresh is not None:
            owner = fresh.owner  # leased by the create itself
        else:
            owner = self._new_owner()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._lease_wait
            delay = 0.05
            while not await self._leases.claim(tenant_id, owner):
                if loop.time() > deadline:
                    log.info("runner.lease_busy", tenant_id=tenant_id)
                    if self._on_change:
                        self._on_change()
                    return False
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
        try:
            return await self._reconciler.reconcile(tenant_id, owner, force=force, keep=keep, fresh=fresh)
        except Exception:
            await self._leases.release(tenant_id, owner)
            log.exception("runner.reconcile_failed", tenant_id=tenant_id)
            raise

    async def plan(self, tenant_id: str) -> list[StepPlan] | None:
        """What a reconcile would change, per step, without writing (see :meth:`Reconciler.plan`)."""
        return await self._reconciler.plan(tenant_id)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
