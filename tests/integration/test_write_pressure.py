"""Many creations at once against a small connection pool: the excess is told to come back (503 with
Retry-After), never answered 500, and every creation that was accepted is stored."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import sqlalchemy as sa

from tenantry.config import Settings
from tenantry.provisioning.steps import build_steps
from tenantry.tenants.models import Tenant
from tests.support.api import api_client
from tests.support.fakes import ScriptedProvider

IN_FLIGHT = 150


async def test_a_burst_of_creations_gets_201_or_503_with_retry_after_and_keeps_every_accepted_one(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(
        database_pool_size=2,
        database_max_overflow=1,
        database_pool_timeout_seconds=2,
        max_concurrent_writes=2,
        write_queue_seconds=1,
    )
    # A step that takes a while keeps each creation in flight, so the burst outlasts the queue's wait.
    steps = build_steps(ScriptedProvider("group", delay=0.3), ScriptedProvider("domain"), ScriptedProvider("drive"))
    async with api_client(settings, steps=steps) as (client, container):

        async def create(i: int) -> httpx.Response:
            return await client.post("/tenants", json={"slug": f"burst{i:03d}", "name": f"Burst {i}"})

        answers = await asyncio.gather(*(create(i) for i in range(IN_FLIGHT)))
        async with container.sessionmaker() as session:
            stored = set((await session.scalars(sa.select(Tenant.slug))).all())

    statuses = sorted({a.status_code for a in answers})
    assert set(statuses) <= {201, 503}, [a.text for a in answers if a.status_code not in (201, 503)][:3]
    accepted = {a.json()["slug"] for a in answers if a.status_code == 201}
    refused = [a for a in answers if a.status_code == 503]
    assert accepted, "nothing was created"
    assert refused, "the burst never outgrew the queue"
    for answer in refused:
        assert int(answer.headers["Retry-After"]) > 0
        assert answer.json()["error"] == "unavailable"
        assert answer.json()["detail"]
    assert stored == accepted  # what was accepted is stored, and what was refused left nothing behind
