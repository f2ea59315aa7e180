"""Each step's create journal: the store's record of when an attempt began creating an upstream object.

See :class:`tenantry.integrations.ports.CreateJournal`. The note is written (and committed, under the
tenant's lease) before the create is sent, so that neither a timeout nor a worker killed mid-request can lead
the next attempt to create a second object blind.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tenantry.integrations.errors import TransientStepError
from tenantry.provisioning.repository import ProvisioningRepository
from tenantry.states import StepName


class StepJournal:
    """The journal of one step of one tenant, for one run held by ``owner``.

    ``started_at`` is what the store said when the run began: when an earlier attempt last began a create
    whose object the step does not own yet. ``succeeded_before`` (the step owned an object once, and its id
    has since been lost) also puts the past in doubt.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        tenant_id: str,
        step: StepName,
        owner: str,
        started_at: datetime | None,
        succeeded_before: bool,
        settle_seconds: float,
        clock: Callable[[], datetime],
        pre_noted: bool = False,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._tenant_id, self._step, self._owner = tenant_id, step, owner
        self.started_at = started_at
        self._succeeded_before = succeeded_before
        self._settle_seconds = settle_seconds
        self._clock = clock
        self.was_refused = False  # the create begun in this run was refused: the stored note can go
        # The run noted a create before it began (a step never tried: see ProvisioningRepository.pre_note), so
        # the first begin() needs no write of its own; if no create is sent after all, the note can go.
        self.pre_noted = pre_noted
        self.sent = False

    @property
    def note_can_go(self) -> bool:
        """The create this run began was refused, or the run noted one it then did not send."""
        return self.was_refused or (self.pre_noted and not self.sent)

    @property
    def in_doubt(self) -> bool:
        return self.started_at is not None or self._succeeded_before

    def settling_seconds(self) -> float:
        if self.started_at is None:
            return 0.0
        elapsed = (self._clock() - self.started_at).total_seconds()
        return max(0.0, self._settle_seconds - elapsed)

    async def begin(self) -> None:
        """Record, committed, that a create is about to be sent; refuses when the run no longer holds the lease
        (the new owner decides what to create)."""
        first, self.sent = not self.sent, True
        if first and self.pre_noted:
            return  # noted in the store when the run began, before anything was sent
        now = self._clock()
        async with self._sessionmaker() as session, session.begin():
            repo = ProvisioningRepository(session)
            if not await repo.fence(self._tenant_id, self._owner):
                raise TransientStepError(
                    "this run lost the tenant's lease before creating; the run that holds it now goes on",
                    reason="LeaseLost",
                )
            await repo.note_create(self._tenant_id, self._step, now=now)
        self.started_at = now
        self.was_refused = False

    def refused(self) -> None:
        self.was_refused = True
