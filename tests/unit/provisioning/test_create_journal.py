"""The create journal through the reconciler: noted before a create is sent, kept after an unanswered one,
cleared once the step owns its object; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from tenantry.auth.actor import SYSTEM
from tenantry.config import Settings
from tenantry.container import Container, build_container
from tenantry.db.base import utcnow
from tenantry.integrations.errors import PermanentStepError, TransientStepError
from tenantry.integrations.ports import UNKNOWN_PAST, CreateJournal, StepResult, TenantSpec
from tenantry.provisioning.steps import build_steps
from tenantry.states import StepName, StepStatus
from tenantry.tenants.models import Tenant, TenantStep
from tenantry.tenants.schemas import TenantCreate
from tenantry.tenants.service import Settling, TenantService
from tests.support.fakes import ScriptedProvider

OWNER = "worker:journal"


class Files(ScriptedProvider):
    """A files provider that creates only after begin(), and can lose the answer of a create it made."""

    def __init__(self, container_ref: list[Container]) -> None:
        super().__init__("drive")
        self.container_ref = container_ref
        self.lose_answer = False
        self.refuse = False
        self.fail_first = False  # fail before any create is sent
        self.seen: list[tuple[bool, float]] = []  # (in_doubt, settling) per attempt
        self.noted_before_create: list[bool] = []

    async def ensure_tenant_space(  # type: ignore[override]
        self, tenant: TenantSpec, ids: Mapping[str, str], journal: CreateJournal = UNKNOWN_PAST
    ) -> StepResult:
        self.seen.append((journal.in_doubt, journal.settling_seconds()))
        if self.fail_first:
            raise PermanentStepError("the service user lacks the Space Admin role", reason="Forbidden")
        if not ids and tenant.id not in self.objects:
            await journal.begin()
            self.noted_before_create.append(await started_at(self.container_ref[0], tenant.id) is not None)
            if self.refuse:
                journal.refused()
                raise TransientStepError("oCIS answered 503", reason="UpstreamError")
            self.objects[tenant.id] = f"drive-{tenant.slug}"
            if self.lose_answer:
                raise TransientStepError("no answer within 10s", reason="UpstreamTimeout")
        return StepResult(state="ok", reason="Ready", message="ok", ids={"driveId": self.objects[tenant.id]})


async def started_at(container: Container, tenant_id: str) -> object:
    async with container.sessionmaker() as session:
        row = await session.get(TenantStep, (tenant_id, StepName.OCIS))
        assert row is not None
        return row.create_started_at


def wired(make_settings: Callable[..., Settings], **overrides: object) -> tuple[Container, Files]:
    """A container whose files step is a :class:`Files`, the other two scripted."""
    ref: list[Container] = []
    files = Files(ref)
    container = build_container(
        make_settings(**overrides), steps=build_steps(ScriptedProvider("group"), ScriptedProvider("domain"), files)
    )
    ref.append(container)
    return container, files


async def setup(make_settings: Callable[..., Settings], **overrides: object) -> tuple[Container, Files, str]:
    container, files = wired(make_settings, **overrides)
    async with container.sessionmaker() as session, session.begin():
        tenant = await TenantService(session, container.settings).create(TenantCreate(slug="acme", name="Acme"), SYSTEM)
    return container, files, tenant.id


async def run(container: Container, tenant_id: str) -> None:
    assert await container.leases.claim(tenant_id, OWNER)
    assert await container.reconciler.reconcile(tenant_id, OWNER, force=True)


async def test_a_first_create_is_noted_before_it_is_sent_and_forgotten_once_owned(
    make_settings: Callable[..., Settings],
) -> None:
    container, files, tenant_id = await setup(make_settings)
    try:
        await run(container, tenant_id)
        after = await started_at(container, tenant_id)
    finally:
        await container.aclose()

    assert files.seen == [(False, 0.0)]  # a brand-new step: nothing earlier could have created
    assert files.noted_before_create == [True]
    assert after is None


async def test_after_an_unanswered_create_the_next_attempt_is_in_doubt_and_waits_the_window(
    make_settings: Callable[..., Settings],
) -> None:
    container, files, tenant_id = await setup(make_settings, create_settle_seconds=30.0)
    files.lose_answer = True
    try:
        before = utcnow()
        await run(container, tenant_id)
        noted = await started_at(container, tenant_id)
        files.lose_answer = False
        await run(container, tenant_id)  # finds the object the lost create made
        async with container.sessionmaker() as session:
            row = await session.get(TenantStep, (tenant_id, StepName.OCIS))
            assert row is not None
            status, outputs, cleared = row.status, row.outputs, row.create_started_at
    finally:
        await container.aclose()

    assert isinstance(noted, datetime)
    assert noted >= before - timedelta(seconds=1)
    in_doubt, settling = files.seen[1]
    assert in_doubt
    assert 25.0 < settling <= 30.0
    assert (status, outputs, cleared) == (StepStatus.OK, {"driveId": "drive-acme"}, None)


async def test_an_id_lost_after_success_puts_the_past_in_doubt(make_settings: Callable[..., Settings]) -> None:
    container, files, tenant_id = await setup(make_settings)
    try:
        await run(container, tenant_id)
        async with container.sessionmaker() as session, session.begin():
            row = await session.get(TenantStep, (tenant_id, StepName.OCIS))
            assert row is not None
            row.outputs = {}
        await run(container, tenant_id)
    finally:
        await container.aclose()

    assert files.seen[1] == (True, 0.0)  # look by marker first, but nothing is settling


async def test_a_refused_create_leaves_nothing_in_doubt(make_settings: Callable[..., Settings]) -> None:
    container, files, tenant_id = await setup(make_settings, create_settle_seconds=30.0)
    files.refuse = True
    try:
        await run(container, tenant_id)
        after_refusal = await started_at(container, tenant_id)
        files.refuse = False
        await run(container, tenant_id)
    finally:
        await container.aclose()

    assert after_refusal is None
    assert files.seen == [(False, 0.0), (False, 0.0)]  # the retry creates at once: nothing was made before


async def test_a_run_that_sends_no_create_leaves_nothing_in_doubt(make_settings: Callable[..., Settings]) -> None:
    container, files, tenant_id = await setup(make_settings)
    files.fail_first = True
    try:
        await run(container, tenant_id)
        after_failure = await started_at(container, tenant_id)
        files.fail_first = False
        await run(container, tenant_id)
    finally:
        await container.aclose()

    # The run noted a create as it began (a step never tried), but sent none: the next attempt creates at once.
    assert after_failure is None
    assert files.seen == [(False, 0.0), (False, 0.0)]
    assert files.noted_before_create == [True]


async def handed_off(container: Container) -> tuple[str, Settling]:
    """A tenant created as POST /tenants creates one: leased to the runner's next run in its own transaction."""
    runner = container.runner()
    async with container.sessionmaker() as session, session.begin():
        service = TenantService(session, container.settings, provisioner=runner, sessions=container.sessionmaker)
        settling = await service.create_and_wait(TenantCreate(slug="acme", name="Acme"), SYSTEM)
    return settling.tenant.id, settling


async def test_a_create_handed_to_its_first_run_is_stored_leased_and_noted_and_the_run_sends_it(
    make_settings: Callable[..., Settings],
) -> None:
    container, files = wired(make_settings, lease_seconds=30)
    try:
        tenant_id, settling = await handed_off(container)
        async with container.sessionmaker() as session:
            row = await session.get(Tenant, tenant_id)
            assert row is not None
            lease_owner, lease_expires_at = row.lease_owner, row.lease_expires_at
        noted = await started_at(container, tenant_id)
        # Nobody else may take it meanwhile: a worker's claim finds it held.
        assert await container.leases.claim_due("worker:other", 10) == []
        answered = await settling.settle()
    finally:
        await container.aclose()

    assert lease_owner is not None
    assert lease_owner.startswith("api:")
    assert lease_expires_at is not None
    assert lease_expires_at > utcnow() + timedelta(seconds=20)
    assert isinstance(noted, datetime)  # noted in the create's own transaction, before any run
    # The run knew the note was its own: a brand-new step, nothing in doubt, the create sent once.
    assert files.seen == [(False, 0.0)]
    assert files.objects == {tenant_id: "drive-acme"}
    assert answered.status == "active"
    assert answered.lease_owner is None


async def test_a_handed_off_create_whose_run_never_started_is_taken_by_a_worker_after_the_lease_in_doubt(
    make_settings: Callable[..., Settings],
) -> None:
    """The API process died between the commit and its run: the lease runs out, a worker takes the tenant and,
    seeing the note, treats the create as possibly made (it looks before it creates)."""
    container, files = wired(make_settings, lease_seconds=30, create_settle_seconds=0.0)
    try:
        tenant_id, _ = await handed_off(container)  # its settle (the run) never called
        held = await container.leases.claim(tenant_id, OWNER)
        async with container.sessionmaker() as session, session.begin():
            row = await session.get(Tenant, tenant_id)
            assert row is not None
            row.lease_expires_at = utcnow() - timedelta(seconds=1)  # the lease ran out
        await run(container, tenant_id)
        cleared = await started_at(container, tenant_id)
    finally:
        await container.aclose()

    assert not held  # before the lease ran out
    assert files.seen == [(True, 0.0)]
    assert files.objects == {tenant_id: "drive-acme"}
    assert cleared is None
