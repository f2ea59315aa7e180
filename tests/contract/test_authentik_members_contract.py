"""The member calls of a suspension and a resume, against the sandbox, each request and answer held to
authentik's OpenAPI document."""

from __future__ import annotations

import dataclasses

import httpx

from tenantry.integrations.authentik.adapter import AuthentikIdentityProvider
from tenantry.integrations.authentik.client import AuthentikClient
from tenantry.integrations.ports import TenantSpec
from tenantry.sandbox.authentik import AuthentikSandbox
from tests.support.openapi import authentik_spec, validate_request, validate_response

TOKEN = "sandbox-api-token"
TENANT = TenantSpec(
    id="7d1b7c4e-0000-4000-8000-0000000000aa",
    slug="acme",
    name="Acme",
    generation=1,
    mail_domain="acme.test",
    quota_bytes=1,
)


class SpecChecked(httpx.AsyncBaseTransport):
    """The sandbox behind a check that every request and every answer is one the spec describes."""

    def __init__(self, sandbox: AuthentikSandbox) -> None:
        self.inner = httpx.ASGITransport(sandbox.app)
        self.spec = authentik_spec()
        self.seen: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        validate_request(self.spec, request)
        response = await self.inner.handle_async_request(request)
        await response.aread()
        validate_response(self.spec, request, response)
        self.seen.append(f"{request.method} {request.url.path} {response.status_code}")
        return response


async def test_suspending_and_resuming_managed_accounts_speaks_the_spec() -> None:
    sandbox = AuthentikSandbox([TOKEN])
    checked = SpecChecked(sandbox)
    async with httpx.AsyncClient(transport=checked) as http:
        provider = AuthentikIdentityProvider(AuthentikClient(http, "http://authentik.test", TOKEN))
        created = await provider.ensure_tenant_group(TENANT, {})
        group = created.ids["groupPk"]
        sandbox.add_user("alice", email="alice@example.test", attributes={"managed_by": "tenantry"}, groups=[group])
        await provider.ensure_tenant_group(dataclasses.replace(TENANT, suspended=True), created.ids)
        await provider.ensure_tenant_group(TENANT, created.ids)
    patched_users = [s for s in checked.seen if s.startswith("PATCH /api/v3/core/users/")]
    assert len(patched_users) == 2  # deactivated, then reactivated: both validated against the spec
