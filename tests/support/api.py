"""Running the real app in-process for tests, with its lifespan, against fakes or sandboxes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence

import httpx
from asgi_lifespan import LifespanManager

from tenantry.app import ActorResolver, create_app
from tenantry.config import Settings
from tenantry.container import Container, build_container
from tenantry.provisioning.steps import Step


@contextlib.asynccontextmanager
async def api_client(
    settings: Settings,
    *,
    steps: Sequence[Step] | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    actor_resolver: ActorResolver | None = None,
) -> AsyncIterator[tuple[httpx.AsyncClient, Container]]:
    """An httpx client talking to a started app; yields it with the app's container."""
    holder: dict[str, Container] = {}

    def factory() -> Container:
        holder["c"] = build_container(settings, transports=transports, steps=steps)
        return holder["c"]

    app = create_app(settings, container_factory=factory, actor_resolver=actor_resolver)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tenantry.test") as client,
    ):
        yield client, holder["c"]
