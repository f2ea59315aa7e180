"""The upstreams as the orphans feature reaches them: every object marked as a tenant's, and deleting one."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from tenantry.integrations.errors import StepError, TransientStepError
from tenantry.integrations.ports import MarkedObject, StepResult
from tenantry.provisioning.steps import Step
from tenantry.states import StepName


@dataclass(frozen=True)
class Survey:
    """What one upstream holds that carries Tenantry's marker, or why it could not be listed."""

    step: StepName
    configured: bool
    objects: list[MarkedObject] = field(default_factory=list)
    error: str | None = None


class UpstreamInventory:
    """Lists and deletes marked objects through each step's adapter, with the step timeout on every call."""

    def __init__(self, steps: Sequence[Step], *, timeout: float) -> None:
        self._steps = {step.name: step for step in steps}
        self._timeout = timeout

    async def survey(self, only: StepName | None = None) -> list[Survey]:
        """Every upstream's marked objects (or just ``only``'s), read concurrently; an upstream that fails says
        why instead of failing the others."""
        steps = [s for s in self._steps.values() if only is None or s.name == only]
        return list(await asyncio.gather(*(self._survey(step) for step in steps)))

    async def _survey(self, step: Step) -> Survey:
        if not step.configured:
            return Survey(step.name, configured=False)
        try:
            async with asyncio.timeout(self._timeout):
                return Survey(step.name, configured=True, objects=await step.survey())
        except StepError as err:
            return Survey(step.name, configured=True, error=f"{err.reason}: {err.message}")
        except TimeoutError:
            return Survey(step.name, configured=True, error=f"{step.name} did not answer in {self._timeout:g}s")

    async def discard(self, step: StepName, obj: MarkedObject) -> StepResult:
        """Delete ``obj`` by the adapter's teardown path (which re-checks its marker); raises StepError."""
        try:
            async with asyncio.timeout(self._timeout):
                return await self._steps[step].discard(obj)
        except TimeoutError as err:
            raise TransientStepError(f"{step} did not answer in {self._timeout:g}s", reason="StepTimeout") from err
