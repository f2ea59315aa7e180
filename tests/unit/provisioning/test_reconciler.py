"""The reconciler on SQLite and PostgreSQL with scripted steps: roll-up, concurrency, failures, leases."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tenantry.auth.actor import SYSTEM
from tenantry.config import Settings
from tenantry.container import Container, build_container
from tenantry.db.base import utcnow
from tenantry.integrations.errors import PermanentStepError, TransientStepError
from tenantry.integrations.ports import UNKNOWN_PAST, CreateJournal, StepResult, TenantSpec
from tenantry.provisioning.outcomes import roll_up
from tenantry.provisioning.steps import Step, build_steps
from tenantry.states import Lifecycle, StepStatus
from tenantry.tenants.models import Tenant, TenantEvent
from tenantry.tenants.schemas import TenantCreate, TenantUpdate
from tenantry.tenants.service import TenantService
from tests.support.fakes import ScriptedProvider

OWNER = "worker:test"


class CrashingProvider:
    """A provider with a bug: every ensure raises something that is not a StepError."""

    calls = 0

    async def _ensure(self, tenant: TenantSpec, ids: Mapping[str, str], *_: object) -> StepResult:
        self.calls += 1
        raise KeyError("internal detail that must not reach the tenant's status")

    ensure_tenant_group = ensure_tenant_domain = ensure_tenant_space = _ensure
    delete_tenant_group = delete_tenant_domain = purge_tenant_space = _ensure
    plan_tenant_group = plan_tenant_domain = plan_tenant_space = _ensure
    delete_marked_group = delete_marked_domain = purge_marked_space = _ensure

    async def list_tenant_groups(self) -> list[object]:
        return []

    list_tenant_domains = list_tenant_spaces = list_tenant_groups

    async def ping(self) -> None:
        return None


class GatedProvider(ScriptedProvider):
    """Succeeds like ScriptedProvider, but only once the test opens the gate; says when a call is inside."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.inside = asyncio.Event()
        self.gate = asyncio.Event()

    async def _ensure(
        self, tenant: TenantSpec, ids: Mapping[str, str], journal: CreateJournal = UNKNOWN_PAST
    ) -> StepResult:
        self.inside.set()
        await self.gate.wait()
        return await super()._ensure(tenant, ids, journal)

    ensure_tenant_group = ensure_tenant_domain = ensure_tenant_space = _ensure


def steps(identity: Any = None, mail: Any = None, files: Any = None) -> list[Step]:
    return build_steps(
        identity or ScriptedProvider("group"), mail or ScriptedProvider("domain"), files or ScriptedProvider("drive")
    )


@pytest.fixture
def wire(make_settings: Callable[..., Settings]) -> Any:
    """``async with wire(steps, **settings) as container``: a container with these steps, closed afterwards."""

    @contextlib.asynccontextmanager
    async def build(step_list: Sequence[Step], **overrides: Any) -> AsyncIterator[Container]:
        container = build_container(make_settings(**overrides), steps=step_list)
        try:
            yield container
        finally:
            await container.aclose()

    return build


async def add_tenant(container: Container, slug: str = "acme") -> str:
    async with container.sessionmaker() as session, session.begin():
        tenant = await TenantService(session, container.settings).create(TenantCreate(slug=slug, name=slug), SYSTEM)
    return tenant.id


async def reconcile(container: Container, tenant_id: str, *, force: bool = False) -> bool:
    assert await container.leases.claim(tenant_id, OWNER)
    return await container.reconciler.reconcile(tenant_id, OWNER, force=force)


async def load(container: Container, tenant_id: str) -> Tenant:
    async with container.sessionmaker() as session:
        tenant = await session.get(Tenant, tenant_id)
        assert tenant is not None
        return tenant


def by_step(tenant: Tenant) -> dict[str, Any]:
    return {s.step: s for s in tenant.steps}


async def wait_inside(provider: GatedProvider) -> None:
    await asyncio.wait_for(provider.inside.wait(), timeout=10)


# -- roll-up ---------------------------------------------------------------------------------------------

WHEN = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("lifecycle", "deleted", "activated_at", "steps_now", "expected"),
    [
        ("active", False, None, ["ok", "ok", "ok"], "active"),
        ("active", False, None, ["ok", "skipped", "skipped"], "active"),
        ("active", False, None, ["skipped", "skipped", "skipped"], "active"),
        ("active", False, None, ["ok", "pending", "ok"], "pending"),
        ("active", False, None, ["ok", "error", "ok"], "pending"),  # never active yet: failing is still pending
        ("active", False, WHEN, ["ok", "error", "ok"], "degraded"),
        ("active", False, WHEN, ["ok", "pending", "ok"], "active"),  # slow, not failing
        ("active", False, WHEN, ["error", "pending", "ok"], "degraded"),
        ("suspended", False, WHEN, ["ok", "ok", "ok"], "suspended"),
        ("suspended", False, WHEN, ["ok", "error", "ok"], "suspended"),  # the step's condition tells
        ("deleting", False, WHEN, ["ok", "error", "ok"], "deleting"),
        ("deleting", True, None, ["ok", "ok", "ok"], "deleted"),
    ],
)
def test_roll_up(
    lifecycle: str, deleted: bool, activated_at: datetime | None, steps_now: list[str], expected: str
) -> None:
    statuses = [StepStatus(s) for s in steps_now]
    assert roll_up(Lifecycle(lifecycle), deleted, activated_at is not None, statuses) == expected


# -- runs ------------------------------------------------------------------------------------------------


async def test_a_run_makes_a_new_tenant_active_records_ids_and_schedules_the_resync(wire: Any) -> None:
    async with wire(steps(), resync_interval_seconds=600) as container:
        tenant_id = await add_tenant(container)
        before = utcnow()

        assert await reconcile(container, tenant_id) is True

        tenant = await load(container, tenant_id)
    assert tenant.status == "active"
    assert tenant.activated_at is not None
    assert (tenant.lease_owner, tenant.lease_expires_at) == (None, None)
    rows = by_step(tenant)
    assert {name: row.status for name, row in rows.items()} == {"authentik": "ok", "stalwart": "ok", "ocis": "ok"}
    assert rows["authentik"].outputs == {"groupId": "group-acme"}
    assert all(row.observed_generation == 1 and row.attempts == 1 for row in rows.values())
    assert tenant.next_reconcile_at is not None
    assert tenant.next_reconcile_at >= before + timedelta(seconds=599)


async def test_steps_run_concurrently(wire: Any) -> None:
    shared = ScriptedProvider("thing", delay=0.3)  # one provider behind all three steps counts them in flight
    async with wire(steps(shared, shared, shared)) as container:
        tenant_id = await add_tenant(container)

        await reconcile(container, tenant_id)

        tenant = await load(container, tenant_id)
    assert len(shared.calls) == 3
    assert shared.max_concurrent == 3
    assert tenant.status == "active"


async def test_a_crashing_step_is_a_retryable_internal_error_and_the_others_still_complete(wire: Any) -> None:
    crashing = CrashingProvider()
    async with wire(steps(mail=crashing)) as container:
        tenant_id = await add_tenant(container)

        assert await reconcile(container, tenant_id) is True

        tenant = await load(container, tenant_id)
    rows = by_step(tenant)
    assert (rows["authentik"].status, rows["ocis"].status) == ("ok", "ok")
    failed = rows["stalwart"]
    assert (failed.status, failed.reason, failed.retryable) == ("error", "InternalError", True)
    assert failed.message == "unexpected KeyError in the stalwart step; see the service log"
    assert failed.next_attempt_at is not None
    assert tenant.status == "pending"
    assert tenant.next_reconcile_at == failed.next_attempt_at
    assert (tenant.lease_owner, tenant.lease_expires_at) == (None, None)


async def test_a_step_exceeding_the_step_timeout_becomes_a_retryable_step_timeout(wire: Any) -> None:
    stuck = ScriptedProvider("drive", delay=60)
    async with wire(steps(files=stuck), step_timeout_seconds=0.2) as container:
        tenant_id = await add_tenant(container)

        assert await reconcile(container, tenant_id) is True

        tenant = await load(container, tenant_id)
    rows = by_step(tenant)
    assert (rows["ocis"].status, rows["ocis"].reason, rows["ocis"].retryable) == ("error", "StepTimeout", True)
    assert rows["ocis"].message == "ocis did not finish within 0.2s"
    assert rows["ocis"].next_attempt_at is not None
    assert (rows["authentik"].status, rows["stalwart"].status) == ("ok", "ok")


async def test_retry_after_from_the_upstream_is_a_floor_for_the_next_attempt(wire: Any) -> None:
    limited = ScriptedProvider("group", script=[TransientStepError("slow down", reason="RateLimited", retry_after=120)])
    async with wire(steps(identity=limited), retry_base_seconds=0.05, retry_cap_seconds=0.5) as container:
        tenant_id = await add_tenant(container)

        await reconcile(container, tenant_id)

        row = by_step(await load(container, tenant_id))["authentik"]
    assert (row.status, row.reason, row.retryable) == ("error", "RateLimited", True)
    assert row.last_attempt_at is not None
    assert row.next_attempt_at is not None
    assert row.next_attempt_at - row.last_attempt_at >= timedelta(seconds=120)


async def test_only_due_steps_run_and_a_forced_run_runs_them_all(wire: Any) -> None:
    identity = ScriptedProvider("group", script=[PermanentStepError("name taken", reason="NameConflict")])
    mail, files = ScriptedProvider("domain"), ScriptedProvider("drive")
    async with wire(steps(identity, mail, files)) as container:
        tenant_id = await add_tenant(container)
        await reconcile(container, tenant_id)
        stopped = by_step(await load(container, tenant_id))["authentik"]

        await reconcile(container, tenant_id)  # nothing is due: ok steps await the resync, the error is final
        calls_when_not_due = (len(identity.calls), len(mail.calls), len(files.calls))
        await reconcile(container, tenant_id, force=True)

        tenant = await load(container, tenant_id)
    assert (stopped.status, stopped.retryable) == ("error", False)
    assert stopped.next_attempt_at - stopped.last_attempt_at == timedelta(hours=1)  # only the slow retry
    assert calls_when_not_due == (1, 1, 1)
    assert (len(identity.calls), len(mail.calls), len(files.calls)) == (2, 2, 2)
    assert by_step(tenant)["authentik"].status == "ok"
    assert tenant.status == "active"


async def test_results_are_discarded_when_the_lease_was_lost_during_the_run(wire: Any) -> None:
    gated = GatedProvider("group")
    async with wire(steps(identity=gated)) as container:
        tenant_id = await add_tenant(container)
        run = asyncio.create_task(reconcile(container, tenant_id))
        await wait_inside(gated)
        async with container.sessionmaker() as session, session.begin():  # the lease expired and was taken
            await session.execute(
                sa.update(Tenant)
                .where(Tenant.id == tenant_id)
                .values(lease_owner="worker:other", lease_expires_at=utcnow() + timedelta(seconds=60))
            )
        gated.gate.set()

        written = await asyncio.wait_for(run, timeout=10)

        tenant = await load(container, tenant_id)
        async with container.sessionmaker() as session:
            step_events = await session.scalar(
                sa.select(sa.func.count())
                .select_from(TenantEvent)
                .where(TenantEvent.tenant_id == tenant_id, TenantEvent.step.is_not(None))
            )
    assert written is False
    assert tenant.lease_owner == "worker:other"
    assert tenant.status == "pending"
    assert {(s.status, s.reason, s.attempts) for s in tenant.steps} == {("pending", "Created", 0)}
    assert step_events == 0


async def test_a_generation_bump_during_a_run_schedules_an_immediate_rerun(wire: Any) -> None:
    gated = GatedProvider("group")
    async with wire(steps(identity=gated), resync_interval_seconds=3600) as container:
        tenant_id = await add_tenant(container)
        run = asyncio.create_task(reconcile(container, tenant_id))
        await wait_inside(gated)
        async with container.sessionmaker() as session, session.begin():
            service = TenantService(session, container.settings)
            await service.change(await service.get("acme", SYSTEM), TenantUpdate(name="Acme 2"), SYSTEM)
        gated.gate.set()
        assert await asyncio.wait_for(run, timeout=10) is True

        after_first = await load(container, tenant_id)
        due_now = await container.leases.claim_due("worker:next", limit=10)
        await container.leases.release(tenant_id, "worker:next")
        await reconcile(container, tenant_id)
        after_second = await load(container, tenant_id)

    assert after_first.generation == 2
    assert {s.observed_generation for s in after_first.steps} == {1}
    assert after_first.next_reconcile_at is not None
    assert after_first.next_reconcile_at <= utcnow()
    assert due_now == [tenant_id]
    assert {s.observed_generation for s in after_second.steps} == {2}
    assert after_second.next_reconcile_at is not None
    assert after_second.next_reconcile_at > utcnow() + timedelta(minutes=30)


async def test_a_tenant_deleted_before_its_run_is_a_no_op(wire: Any) -> None:
    identity = ScriptedProvider("group")
    async with wire(steps(identity=identity)) as container:
        tenant_id = await add_tenant(container)
        assert await container.leases.claim(tenant_id, OWNER)
        async with container.sessionmaker() as session, session.begin():
            await session.execute(sa.delete(Tenant).where(Tenant.id == tenant_id))

        assert await container.reconciler.reconcile(tenant_id, OWNER) is True
    assert identity.calls == []


async def test_a_failing_lease_renewal_does_not_discard_the_run(wire: Any) -> None:
    gated = GatedProvider("group")
    async with wire(steps(identity=gated), lease_seconds=0.15) as container:
        tenant_id = await add_tenant(container)
        renewals: list[float] = []
        twice = asyncio.Event()

        async def broken_renew(tenant_id: str, owner: str) -> bool:
            renewals.append(asyncio.get_running_loop().time())
            if len(renewals) >= 2:
                twice.set()
            raise OSError("store unreachable for a moment")

        container.leases.renew = broken_renew  # type: ignore[method-assign]
        run = asyncio.create_task(reconcile(container, tenant_id))
        await wait_inside(gated)
        await asyncio.wait_for(twice.wait(), timeout=10)  # renewal keeps being tried while the step runs
        gated.gate.set()
        written = await asyncio.wait_for(run, timeout=10)
        tenant = await load(container, tenant_id)
    assert written is True
    assert tenant.status == "active"


async def test_a_run_that_loses_its_lease_stops_its_steps_instead_of_racing_the_new_owner(wire: Any) -> None:
    gated = GatedProvider("group")  # would wait for ever: only losing the lease can end this run
    async with wire(steps(identity=gated), lease_seconds=0.3) as container:
        tenant_id = await add_tenant(container)
        run = asyncio.create_task(reconcile(container, tenant_id))
        await wait_inside(gated)
        async with container.sessionmaker() as session, session.begin():  # the lease expired and was taken
            await session.execute(
                sa.update(Tenant)
                .where(Tenant.id == tenant_id)
                .values(lease_owner="worker:other", lease_expires_at=utcnow() + timedelta(seconds=60))
            )

        written = await asyncio.wait_for(run, timeout=10)

        tenant = await load(container, tenant_id)
    assert written is False
    assert not gated.gate.is_set()
    assert tenant.lease_owner == "worker:other"
    assert {(s.status, s.attempts) for s in tenant.steps} == {("pending", 0)}


class OrderedProvider(ScriptedProvider):
    """Notes in ``began`` the order in which the steps' ensures began."""

    def __init__(self, kind: str, began: list[str]) -> None:
        super().__init__(kind)
        self.began = began

    async def _ensure(
        self, tenant: TenantSpec, ids: Mapping[str, str], journal: CreateJournal = UNKNOWN_PAST
    ) -> StepResult:
        self.began.append(self.kind)
        return await super()._ensure(tenant, ids, journal)

    ensure_tenant_group = ensure_tenant_domain = ensure_tenant_space = _ensure


async def test_the_step_with_the_longest_chain_of_round_trips_starts_first_and_outcomes_keep_step_order(
    wire: Any,
) -> None:
    began: list[str] = []
    providers = [OrderedProvider(kind, began) for kind in ("group", "domain", "drive")]
    async with wire(steps(*providers)) as container:
        tenant_id = await add_tenant(container)
        await reconcile(container, tenant_id)
        async with container.sessionmaker() as session:
            query = sa.select(TenantEvent).where(TenantEvent.tenant_id == tenant_id).order_by(TenantEvent.id)
            events = (await session.scalars(query)).all()

    assert [s.round_trips for s in steps()] == [1, 2, 1]  # Stalwart: created and read back, then keys and zone
    assert began == ["domain", "group", "drive"]
    assert [e.step for e in events if e.kind == "step.ok"] == ["authentik", "stalwart", "ocis"]


class TimedProvider(ScriptedProvider):
    """Succeeds like ScriptedProvider after ``seconds``; notes when each ensure began (time.monotonic)."""

    def __init__(self, kind: str, began: dict[str, list[float]], seconds: float = 0.0) -> None:
        super().__init__(kind)
        self.began, self.seconds = began, seconds

    async def _ensure(
        self, tenant: TenantSpec, ids: Mapping[str, str], journal: CreateJournal = UNKNOWN_PAST
    ) -> StepResult:
        self.began.setdefault(self.kind, []).append(time.monotonic())
        await asyncio.sleep(self.seconds)
        return await super()._ensure(tenant, ids, journal)

    ensure_tenant_group = ensure_tenant_domain = ensure_tenant_space = _ensure


async def test_once_the_longest_step_has_been_timed_the_others_start_half_its_round_trip_later(wire: Any) -> None:
    began: dict[str, list[float]] = {}
    providers = [TimedProvider("group", began), TimedProvider("domain", began, 0.2), TimedProvider("drive", began)]
    async with wire(steps(*providers)) as container:
        tenant_id = await add_tenant(container)
        await reconcile(container, tenant_id)  # the domain step is timed: 0.2 s for its 2 round trips
        await reconcile(container, tenant_id, force=True)
        tenant = await load(container, tenant_id)

    first, second = zip(began["domain"], began["group"], began["drive"], strict=True)
    domain, group, drive = first
    # Untimed: all at once, not after the domain's 0.2 s.
    assert max(group, drive) < domain + 0.15
    domain, group, drive = second
    assert min(group, drive) - domain >= 0.045  # half of 0.1 s, less a timer tick
    assert tenant.status == "active"
