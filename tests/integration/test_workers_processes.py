"""Several `tenantry worker` processes on one PostgreSQL database against the sandbox served on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import signal
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tenantry.config import Settings
from tenantry.db.engine import create_engine, create_sessionmaker
from tenantry.sandbox.faults import FaultRule, LoggedRequest
from tenantry.sandbox.suite import SandboxSuite
from tenantry.tenants.models import Tenant
from tests.support import workers as worker_processes
from tests.support.resilience import MAIL_BASE, create_tenants, statuses
from tests.support.served import served_sandboxes
from tests.support.workers import WorkerProcess

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

GROUPS = r"/api/v3/core/groups/$"


@pytest.fixture
def suite() -> Iterator[SandboxSuite]:
    """The three sandboxes served from threads of this process, so their state and logs can be inspected."""
    with served_sandboxes() as served:
        yield served.suite


@pytest.fixture
async def db(postgres_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """The run's PostgreSQL database, emptied, with a session factory for this test."""
    engine = create_engine(Settings(database_url=postgres_url, auth_enabled=False))
    async with engine.begin() as conn:
        await conn.execute(sa.text("TRUNCATE tenant_events, tenant_steps, tenants CASCADE"))
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def start_worker(suite: SandboxSuite, postgres_url: str, tmp_path: Path) -> Iterator[Any]:
    """Starts `tenantry worker` processes pointed at the database and the sandbox; kills leftovers at the end."""
    started: list[WorkerProcess] = []

    def start(**overrides: Any) -> WorkerProcess:
        values: dict[str, Any] = {
            **suite.settings(),
            "database_url": postgres_url,
            "auth_enabled": "false",
            "log_json": "true",
            "log_level": "INFO",
            "worker_poll_seconds": 0.1,
            "worker_concurrency": 4,
            "worker_batch_size": 4,
            "retry_base_seconds": 0.2,
            "retry_cap_seconds": 1,
            "pending_poll_seconds": 0.1,
            "resync_interval_seconds": 3600,
            "mail_domain_base": MAIL_BASE,
        }
        values.update(overrides)
        worker = worker_processes.start_worker(values, tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.process.poll() is None:
            worker.process.kill()
        worker.process.wait(timeout=10)


async def wait_until(predicate: Any, what: str, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def wait_started(worker: WorkerProcess) -> None:
    def ready() -> bool:
        assert worker.process.poll() is None, worker.log_path.read_text()
        return any(e.get("event") == "worker.start" for e in worker.events())

    await wait_until(ready, "the worker to start")


def authentik_tenant(request: LoggedRequest, ids_to_slugs: dict[str, str]) -> str | None:
    """Which tenant an authentik groups request is about: by group name or by the tenant_id marker."""
    names = {f"tenant-{slug}": slug for slug in ids_to_slugs.values()}
    if isinstance(request.body, dict) and request.body.get("name") in names:
        return names[request.body["name"]]
    query = parse_qs(request.query)
    for name in query.get("name", []):
        if name in names:
            return names[name]
    for attributes in query.get("attributes", []):
        with contextlib.suppress(ValueError):
            marker = json.loads(attributes).get("tenant_id")
            if marker in ids_to_slugs:
                return ids_to_slugs[marker]
    return None


def overlapping_requests(requests: list[LoggedRequest], ids_to_slugs: dict[str, str]) -> dict[str, int]:
    """Per tenant, how many of its requests began before the previous one was answered.

    One reconcile sends a step's requests one after another, so two in flight at once for the same tenant
    mean two reconciles of it were running at the same time.
    """
    by_tenant: dict[str, list[LoggedRequest]] = defaultdict(list)
    for request in requests:
        slug = authentik_tenant(request, ids_to_slugs)
        if slug is not None:
            by_tenant[slug].append(request)
    overlaps: dict[str, int] = {}
    for slug, items in by_tenant.items():
        items.sort(key=lambda r: r.started)
        count = sum(1 for a, b in itertools.pairwise(items) if a.finished is None or b.started < a.finished)
        if count:
            overlaps[slug] = count
    return overlaps


async def test_three_workers_reconcile_thirty_tenants_to_active_each_group_created_once_and_never_two_at_a_time(
    suite: SandboxSuite, db: async_sessionmaker[AsyncSession], start_worker: Any
) -> None:
    suite.authentik.controls.latency_ms = 40  # every groups call takes a while, so reconciles overlap in time
    workers = [start_worker() for _ in range(3)]
    for worker in workers:
        await wait_started(worker)
    slugs = [f"co-{n:02d}" for n in range(30)]

    ids = {slug: tenant_id for tenant_id, slug in (await create_tenants(db, slugs)).items()}

    async def all_active() -> bool:
        return set((await statuses(db)).values()) == {"active"}

    await wait_until(all_active, "every tenant to become active", timeout=60)
    ids_to_slugs = {tenant_id: slug for slug, tenant_id in ids.items()}
    posts = suite.authentik.controls.requests("POST", GROUPS)
    assert Counter(r.body["name"] for r in posts) == Counter({f"tenant-{slug}": 1 for slug in slugs})
    assert sorted(g["name"] for g in suite.authentik.groups()) == sorted(f"tenant-{slug}" for slug in slugs)
    traffic = suite.authentik.controls.requests(path=GROUPS)
    assert {authentik_tenant(r, ids_to_slugs) for r in traffic} >= set(slugs)
    assert overlapping_requests(traffic, ids_to_slugs) == {}
    reconciled = [worker.reconciled() for worker in workers]
    assert set().union(*reconciled) == set(ids.values())
    assert sum(1 for tenants in reconciled if tenants) >= 2, "the work was not shared between processes"


async def test_a_worker_killed_mid_reconcile_leaves_nothing_stuck_another_finishes_after_the_lease_expires(
    suite: SandboxSuite, db: async_sessionmaker[AsyncSession], start_worker: Any
) -> None:
    suite.authentik.controls.add_fault(FaultRule(kind="timeout", path=GROUPS, method="POST", hang_seconds=60, times=1))
    doomed = start_worker(lease_seconds=2)
    await wait_started(doomed)
    ids = {slug: tenant_id for tenant_id, slug in (await create_tenants(db, ["crashco"])).items()}
    await wait_until(lambda: suite.authentik.controls.requests("POST", GROUPS), "the group create to arrive")
    async with db() as session:
        holder = await session.scalar(sa.select(Tenant.lease_owner).where(Tenant.id == ids["crashco"]))
    assert holder is not None
    assert f":{doomed.process.pid}:" in holder

    doomed.process.send_signal(signal.SIGKILL)
    assert doomed.process.wait(timeout=10) == -signal.SIGKILL
    rescuer = start_worker(lease_seconds=2)

    async def active() -> bool:
        return (await statuses(db)).get(ids["crashco"]) == "active"

    await wait_until(active, "another worker to finish the tenant", timeout=30)
    async with db() as session:
        tenant = await session.get(Tenant, ids["crashco"])
        assert tenant is not None
        assert (tenant.lease_owner, tenant.lease_expires_at) == (None, None)
        assert {s.step: s.status for s in tenant.steps} == {"authentik": "ok", "stalwart": "ok", "ocis": "ok"}
    assert ids["crashco"] in rescuer.reconciled()
    assert ids["crashco"] not in doomed.reconciled()
    posts = suite.authentik.controls.requests("POST", GROUPS)
    assert [r.status for r in posts] == [None, 201]  # the killed worker's create never got its answer
    assert [g["name"] for g in suite.authentik.groups()] == ["tenant-crashco"]
    assert [d["name"] for d in suite.stalwart.domains()] == [f"crashco.{MAIL_BASE}"]
    assert len(suite.ocis.spaces()) == 1
