"""The null adapter: an upstream Tenantry is not configured for answers every step with ``skipped``."""

from __future__ import annotations

from collections.abc import Mapping

from tenantry.integrations.errors import PermanentStepError
from tenantry.integrations.ports import UNKNOWN_PAST, CreateJournal, MarkedObject, PlannedChange, StepResult, TenantSpec


class NotConfiguredError(PermanentStepError):
    """Raised by a null adapter's ``ping``: there is nothing to reach; the message names the settings."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="NotConfigured")


class NotConfigured:
    """Stands in for any port (identity, mail, files) whose upstream has no settings.

    Every operation answers ``skipped`` with ``hint`` (which settings to set) and every plan and listing is
    empty (there is nothing to read or change), so the reconciler needs no special case; once the settings are
    given and the process restarts, the real adapter takes its place.
    """

    def __init__(self, hint: str) -> None:
        self.hint = hint

    def _skipped(self) -> StepResult:
        return StepResult(state="skipped", reason="NotConfigured", message=self.hint)

    async def ensure_tenant_group(self, tenant: TenantSpec, ids: Mapping[str, str]) -> StepResult:
        return self._skipped()

    async def delete_tenant_group(self, tenant: TenantSpec, ids: Mapping[str, str]) -> StepResult:
        return self._skipped()

    async def ensure_tenant_domain(self, tenant: TenantSpec, ids: Mapping[str, str]) -> StepResult:
        return self._skipped()

    async def delete_tenant_domain(self, tenant: TenantSpec, ids: Mapping[str, str]) -> StepResult:
        return self._skipped()

    async def ensure_tenant_space(
        self, tenant: TenantSpec, ids: Mapping[str, str], journal: CreateJournal = UNKNOWN_PAST
    ) -> StepResult:
        return self._skipped()

    async def disable_tenant_space(self, tenant: TenantSpec, ids: Mapping[str, str]) -> StepResult:
        return self._skipped()

    async def purge_tenant_space(self, tenant: TenantSpec, ids: Mapping[str, str]) -> StepResult:
        return self._skipped()

    async def plan_tenant_group(
        self, tenant: TenantSpec, ids: Mapping[str, str], *, teardown: bool
    ) -> list[PlannedChange]:
        return []

    async def plan_tenant_domain(
        self, tenant: TenantSpec, ids: Mapping[str, str], *, teardown: bool
    ) -> list[PlannedChange]:
        return []

    async def plan_tenant_space(
        self, tenant: TenantSpec, ids: Mapping[str, str], *, teardown: bool
    ) -> list[PlannedChange]:
        return []

    async def list_tenant_groups(self) -> list[MarkedObject]:
        return []

    async def list_tenant_domains(self) -> list[MarkedObject]:
        return []

    async def list_tenant_spaces(self) -> list[MarkedObject]:
        return []

    async def delete_marked_group(self, group: MarkedObject) -> StepResult:
        return self._skipped()

    async def delete_marked_domain(self, domain: MarkedObject) -> StepResult:
        return self._skipped()

    async def purge_marked_space(self, space: MarkedObject) -> StepResult:
        return self._skipped()

    async def ping(self) -> None:
        raise NotConfiguredError(self.hint)
