"""Crashes: `tenantry worker` processes on PostgreSQL, SIGKILLed and restarted at random while they provision.

The sandboxes are served over loopback from threads of this process, with latency, so runs are in flight when
a worker dies. Tenants arrive in batches, one before each kill. What must hold: every tenant converges, no
upstream object is made twice, and no two runs of one tenant overlap (from the workers' JSON logs: a run is
``reconcile.start`` to its end, and a run the kill cut short ends at the kill).

Sizes come from the environment for a run by hand: TENANTRY_CRASH_TENANTS (default 60), TENANTRY_CRASH_KILLS
(default 5), TENANTRY_CRASH_WORKERS (default 3), TENANTRY_CRASH_SEED (default random; printed with the
figures of the run under ``pytest -s``).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tenantry.config import Settings
from tenantry.db.engine import create_engine, create_sessionmaker
from tests.support.resilience import (
    MAIL_BASE,
    create_tenants,
    load_average,
    not_exactly_one,
    sized,
    statuses,
    step_attempts,
    unsettled_steps,
    upstream_objects,
    wait_for,
)
from tests.support.served import UPSTREAMS, served_sandboxes
from tests.support.workers import Run, WorkerProcess, overlapping_runs, start_worker

TENANTS = sized("TENANTRY_CRASH_TENANTS", 60)
KILLS = sized("TENANTRY_CRASH_KILLS", 5)
WORKERS = sized("TENANTRY_CRASH_WORKERS", 3)
LEASE = 3.0
LATENCY_MS = 80  # per upstream request: a run takes about half a second
# After the last kill, the tenants the dead worker held wait out its lease, then the workers finish the rest.
CONVERGE_BOUND_SECONDS = LEASE + 30 + 0.1 * TENANTS
# Each kill takes a second or so (a batch, a pause, a new process), and the workers' start-up up to a minute.
pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(90 + CONVERGE_BOUND_SECONDS + 5 * KILLS)]


def worker_settings(served: dict[str, Any], database_url: str) -> dict[str, Any]:
    return {
        **served,
        "database_url": database_url,
        "auth_enabled": "false",
        "log_json": "true",
        "log_level": "INFO",
        "worker_poll_seconds": 0.1,
        "worker_concurrency": 4,
        "worker_batch_size": 4,
        "retry_base_seconds": 0.2,
        "retry_cap_seconds": 1,
        # A create cut short by a kill is looked for again this long before another is sent (the sandbox
        # applies what it received within its latency).
        "create_settle_seconds": 1,
        "pending_poll_seconds": 0.1,
        "resync_interval_seconds": 3600,
        "lease_seconds": LEASE,
        "mail_domain_base": MAIL_BASE,
        "dns_resolvers": "127.0.0.1:9",
    }


def open_runs(worker: WorkerProcess) -> list[Run]:
    return [run for run in worker.runs() if run.end is None]


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_workers_killed_at_random_leave_every_tenant_active_with_one_object_each_and_no_overlapping_runs(
    database_url: str, tmp_path: Path
) -> None:
    seed = int(os.environ.get("TENANTRY_CRASH_SEED") or random.randrange(2**32))
    rng = random.Random(seed)
    print(f"\ncrash: {TENANTS} tenants, {WORKERS} workers, {KILLS} kills, seed {seed}")
    load_before = load_average()
    engine = create_engine(Settings(database_url=database_url, auth_enabled=False))
    store = create_sessionmaker(engine)
    workers: list[WorkerProcess] = []
    try:
        with served_sandboxes() as served:
            for controls in served.all_controls().values():
                controls.set_latency(LATENCY_MS)
            settings = worker_settings(served.suite.settings(), database_url)

            def launch() -> WorkerProcess:
                worker = start_worker(settings, tmp_path / f"worker-{len(workers):02d}.log")
                workers.append(worker)
                return worker

            def ready(worker: WorkerProcess) -> bool:
                assert worker.alive(), worker.log_path.read_text()
                return worker.started()

            async def all_ready() -> bool:
                return all(ready(w) for w in live)

            live = [launch() for _ in range(WORKERS)]
            await wait_for(all_ready, "the workers to start", timeout=60)
            started = time.monotonic()
            slugs = [f"crash-{n:05d}" for n in range(TENANTS)]
            batches = [slugs[i :: KILLS + 1] for i in range(KILLS + 1)]
            tenants: dict[str, str] = {}
            for batch in batches[:-1]:
                tenants.update(await create_tenants(store, batch))
                await asyncio.sleep(rng.uniform(0.0, 0.3))
                # A kill lands in the middle of a run: wait (briefly) for a worker to be in one. On a loaded
                # machine the batch may still be waiting for a worker, or already done; then any will do.
                busy: list[WorkerProcess] = []
                deadline = time.monotonic() + 5
                while not busy and time.monotonic() < deadline:
                    busy = [w for w in live if w.started() and open_runs(w)]
                    if not busy:
                        await asyncio.sleep(0.02)
                started_up = [w for w in live if w.started()]
                victim = rng.choice(busy or started_up or live)
                victim.kill()
                live.remove(victim)
                live.append(launch())
            tenants.update(await create_tenants(store, batches[-1]))

            async def all_active() -> bool:
                return set((await statuses(store)).values()) == {"active"}

            converged = await wait_for(
                all_active,
                "every tenant to become active",
                timeout=CONVERGE_BOUND_SECONDS,
                explain=lambda: unsettled_steps(store),
            )
            elapsed = time.monotonic() - started
            await wait_for(all_ready, "the last workers to start", timeout=60)  # a stop must find them running
            for worker in live:
                worker.process.send_signal(signal.SIGTERM)
            for worker in live:
                assert worker.process.wait(timeout=30) == 0, worker.log_path.read_text()[-2000:]
            attempts = await step_attempts(store)
            objects = upstream_objects(served.suite, tenants)
    finally:
        for worker in workers:
            if worker.alive():
                worker.process.kill()
                worker.process.wait(timeout=10)
        await engine.dispose()
    load_after = load_average()

    runs = [run for worker in workers for run in worker.runs()]
    killed = [run for run in runs if run.ended_by == "killed"]
    lost = [run for run in runs if run.ended_by == "reconcile.lease_lost"]
    takeovers = []  # from a kill to the next run of a tenant it cut short
    for run in killed:
        after = [later.start for later in runs if later.tenant_id == run.tenant_id and later.start > run.start]
        if after and run.end is not None:
            takeovers.append((min(after) - run.end).total_seconds())
    print(f"  all active {elapsed:.1f}s after the first batch, {converged:.1f}s after the last")
    print(f"  {len(runs)} runs, {len(killed)} cut short by the {KILLS} kills, {len(lost)} ended by a lost lease")
    if takeovers:
        print(f"  a killed run's tenant was taken up again after {min(takeovers):.2f}s to {max(takeovers):.2f}s")
    for name in UPSTREAMS:
        counts = Counter(n for _, n in attempts[name].values())
        print(f"  {name} attempts: {dict(sorted(counts.items()))}")
    print(f"  load average before {load_before}, after {load_after}")

    assert not_exactly_one(objects, tenants) == {}, "duplicate or missing upstream objects"
    assert [str(o) for o in overlapping_runs(runs)] == []
    assert [run for run in runs if run.end is None] == [], "runs that never ended in a worker that was not killed"
    # Every tenant was reconciled by the workers (a kill between a run's commit and its done line is why a
    # run that made a tenant active may have ended "killed").
    assert {run.tenant_id for run in runs} == set(tenants)
    assert killed, "no kill cut a run short: the kills tested nothing"
    # A dead worker's lease was renewed at most a third of a lease before the kill, so it holds for about two
    # thirds of a lease after it; nobody may take the tenant up before a third has passed.
    assert all(gap >= LEASE / 3 for gap in takeovers), sorted(takeovers)[:5]
    for name in UPSTREAMS:
        assert {status for status, _ in attempts[name].values()} == {"ok"}
