"""The whole product in-process against the sandboxes: the sandbox suite, and polling a tenant through the API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx

from tenantry.sandbox.suite import SandboxSuite

TenantBody = dict[str, Any]


def sandbox_suite(*, dkim_delay: float = 0.0) -> SandboxSuite:
    return SandboxSuite(
        authentik_url="http://authentik.test",
        stalwart_url="http://stalwart.test",
        ocis_url="http://ocis.test",
        dkim_delay=dkim_delay,
    )


async def wait_for_tenant(
    client: httpx.AsyncClient, slug: str, predicate: Callable[[TenantBody], bool], *, what: str, timeout: float = 15.0
) -> TenantBody:
    """Poll ``GET /tenants/{slug}`` until ``predicate`` holds; fail with the last body after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        response = await client.get(f"/tenants/{slug}")
        assert response.status_code == 200, response.text
        body: TenantBody = response.json()
        if predicate(body):
            return body
        if loop.time() > deadline:
            raise AssertionError(f"tenant {slug} never reached: {what}; last seen {body}")
        await asyncio.sleep(0.02)


async def tenant_events(client: httpx.AsyncClient, slug: str) -> list[dict[str, Any]]:
    """The tenant's timeline, oldest first."""
    response = await client.get(f"/tenants/{slug}/events")
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()
    return list(reversed(events))


def step_is(step: str, status: str) -> Callable[[TenantBody], bool]:
    return lambda body: bool(body["provisioningStatus"][step] == status)


def waits_for_a_human(condition: dict[str, Any]) -> bool:
    """A step stopped by a permanent error: not retried soon, only on the slow schedule (an hour by default)."""
    last = datetime.fromisoformat(condition["lastAttemptAt"].replace("Z", "+00:00"))
    upcoming = datetime.fromisoformat(condition["nextAttemptAt"].replace("Z", "+00:00"))
    return condition["retryable"] is False and upcoming - last >= timedelta(minutes=59)
