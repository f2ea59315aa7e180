"""Scriptable in-memory providers for reconciler and API tests that need no upstream at all."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from tenantry.integrations.errors import StepError
from tenantry.integrations.ports import UNKNOWN_PAST, CreateJournal, MarkedObject, PlannedChange, StepResult, TenantSpec


@dataclass
class ScriptedProvider:
    """Implements every port's ensure: raises the scripted errors in order, then succeeds.

    It records each call and keeps a store of objects keyed by tenant id, so a repeat run after success
    finds the object by its stored id (like a real upstream) instead of creating it again.
    """

    kind: str = "group"
    script: list[StepError | StepResult] = field(default_factory=list)
    delay: float = 0.0
    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    journals: list[CreateJournal] = field(default_factory=list)  # what each ensure was told of earlier creates
    objects: dict[str, str] = field(default_factory=dict)
    teardown_script: list[StepError] = field(default_factory=list)
    teardowns: list[str] = field(default_factory=list)
    suspended: dict[str, bool] = field(default_factory=dict)
    concurrent: int = 0
    max_concurrent: int = 0

    async def _ensure(
        self, tenant: TenantSpec, ids: Mapping[str, str], journal: CreateJournal = UNKNOWN_PAST
    ) -> StepResult:
        self.calls.append((tenant.slug, dict(ids)))
        self.journals.append(journal)
        self.concurrent += 1
        self.max_concurrent = max(self.max_concurrent, self.concurrent)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.script:
                item = self.script.pop(0)
                if isinstance(item, StepError):
                    raise item
                return item
            key = f"{self.kind}Id"
            self.suspended[tenant.id] = tenant.suspended
            created = tenant.id not in self.objects
            self.objects.setdefault(tenant.id, f"{self.kind}-{tenant.slug}")
            return StepResult(
                state="ok",
                reason="Created" if created else "Ready",
                message=f"{self.kind} {self.objects[tenant.id]} in place",
                ids={key: self.objects[tenant.id]},
            )
        finally:
            self.concurrent -= 1

    ensure_tenant_group = _ensure
    ensure_tenant_domain = _ensure
    ensure_tenant_space = _ensure

    async def _teardown(self, tenant: TenantSpec, ids: Mapping[str, str]) -> StepResult:
        """Removes the tenant's object: raises the scripted teardown errors in order first."""
        self.teardowns.append(tenant.slug)
        if self.teardown_script:
            raise self.teardown_script.pop(0)
        gone = self.objects.pop(tenant.id, None)
        return StepResult(state="ok", reason="Deleted", message=f"{self.kind} {gone or 'none'} deleted")

    delete_tenant_group = _teardown
    delete_tenant_domain = _teardown
    purge_tenant_space = _teardown

    async def _plan(self, tenant: TenantSpec, ids: Mapping[str, str], *, teardown: bool) -> list[PlannedChange]:
        target = f"{self.kind} of {tenant.slug}"
        if teardown:
            return [PlannedChange(target, "delete" if tenant.id in self.objects else "unchanged")]
        if tenant.id not in self.objects:
            return [PlannedChange(target, "create", {"name": (None, tenant.name)})]
        return [PlannedChange(target, "unchanged")]

    plan_tenant_group = _plan
    plan_tenant_domain = _plan
    plan_tenant_space = _plan

    async def _list(self) -> list[MarkedObject]:
        """Every object in the store, marked for the tenant it was made for."""
        key = f"{self.kind}Id"
        return [MarkedObject(oid, oid, tenant_id, {key: oid}) for tenant_id, oid in self.objects.items()]

    async def _discard(self, obj: MarkedObject) -> StepResult:
        gone = self.objects.pop(obj.tenant_id or "", None)
        return StepResult(state="ok", reason="Deleted", message=f"{self.kind} {gone or 'none'} deleted")

    list_tenant_groups = list_tenant_domains = list_tenant_spaces = _list
    delete_marked_group = delete_marked_domain = purge_marked_space = _discard

    async def ping(self) -> None:
        return None
