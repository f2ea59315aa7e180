"""The provisioning steps: one per upstream, each an idempotent ``ensure`` over its port."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from tenantry.integrations.ports import FileProvider, IdentityProvider, MailProvider, StepResult, TenantSpec

StepName = Literal["authentik", "stalwart", "ocis"]
STEP_ORDER: tuple[StepName, ...] = ("authentik", "stalwart", "ocis")


class Step(Protocol):
    name: StepName

    @property
    def configured(self) -> bool: ...

    @property
    def not_configured_hint(self) -> str: ...

    async def ensure(self, tenant: TenantSpec, ids: Mapping[str, str]) -> StepResult: ...

    async def ping(self) -> None: ...


@dataclass
class IdentityStep:
    provider: IdentityProvider | None
    name: StepName = "authentik"
    not_configured_hint: str = "authentik is not configured (set TENANTRY_AUTHENTIK_URL and TENANTRY_AUTHENTIK_TOKEN)"

    @property
    def configured(self) -> bool:
        return self.provider is not None

    async def ensure(self, tenant: TenantSpec, ids: Mapping[str, str]) -> StepResult:
        assert self.provider is not None
        return await self.provider.ensure_tenant_group(tenant, ids)

    async def ping(self) -> None:
        assert self.provider is not None
        await self.provider.ping()


@dataclass
class MailStep:
    provider: MailProvider | None
    name: StepName = "stalwart"
    not_configured_hint: str = "Stalwart is not configured (set TENANTRY_STALWART_URL and an API key)"

    @property
    def configured(self) -> bool:
        return self.provider is not None

    async def ensure(self, tenant: TenantSpec, ids: Mapping[str, str]) -> StepResult:
        assert self.provider is not None
        return await self.provider.ensure_tenant_domain(tenant, ids)

    async def ping(self) -> None:
        assert self.provider is not None
        await self.provider.ping()


@dataclass
class FilesStep:
    provider: FileProvider | None
    name: StepName = "ocis"
    not_configured_hint: str = "oCIS is not configured (set TENANTRY_OCIS_URL and its credentials)"

    @property
    def configured(self) -> bool:
        return self.provider is not None

    async def ensure(self, tenant: TenantSpec, ids: Mapping[str, str]) -> StepResult:
        assert self.provider is not None
        return await self.provider.ensure_tenant_space(tenant, ids)

    async def ping(self) -> None:
        assert self.provider is not None
        await self.provider.ping()
