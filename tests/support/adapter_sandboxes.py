"""An adapter wired to its upstream's sandbox in process, and reading what the adapter sent there: shared by
the adapter test modules (listing, dry run) so each states only what it tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx

from tenantry.integrations.authentik.adapter import AuthentikIdentityProvider
from tenantry.integrations.authentik.client import AuthentikClient
from tenantry.integrations.stalwart.client import StalwartClient
from tenantry.sandbox.authentik import AuthentikSandbox
from tenantry.sandbox.stalwart import StalwartSandbox
from tests.support.clock import ManualClock

AUTHENTIK_TOKEN = "sandbox-api-token"
AUTHENTIK_URL = "http://authentik.sandbox"
STALWART_API_KEY = "sandbox-stalwart-api-key"
STALWART_URL = "http://stalwart.sandbox"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def authentik_sandbox() -> AuthentikSandbox:
    return AuthentikSandbox([AUTHENTIK_TOKEN])


@contextlib.asynccontextmanager
async def authentik_provider(sandbox: AuthentikSandbox) -> AsyncIterator[AuthentikIdentityProvider]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox.app)) as http:
        yield AuthentikIdentityProvider(AuthentikClient(http, AUTHENTIK_URL, AUTHENTIK_TOKEN))


def authentik_writes(sandbox: AuthentikSandbox) -> list[str]:
    """Every write the sandbox received, as ``METHOD path``."""
    return [f"{r.method} {r.path}" for r in sandbox.controls.requests() if r.method in WRITES]


def stalwart_sandbox() -> StalwartSandbox:
    """DKIM keys appear only when a test says so (``generate_dkim_now``), on a clock no test waits for."""
    return StalwartSandbox(api_keys=[STALWART_API_KEY], dkim_delay=30.0, clock=ManualClock(), fast_dkim=True)


@contextlib.asynccontextmanager
async def stalwart_client(sandbox: StalwartSandbox) -> AsyncIterator[StalwartClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox.app)) as http:
        yield StalwartClient(http, STALWART_URL, api_key=STALWART_API_KEY)


def jmap_methods(sandbox: StalwartSandbox) -> list[str]:
    """The JMAP methods the sandbox was asked to run, in order."""
    bodies = [r.body for r in sandbox.controls.requests("POST", r"^/jmap/?$")]
    return [name for body in bodies if isinstance(body, dict) for name, _, _ in body.get("methodCalls", [])]
