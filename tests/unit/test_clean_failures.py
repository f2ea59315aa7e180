"""Clean failures: characters the store cannot hold, and a store that cannot be reached."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from tenantry.config import Settings
from tenantry.provisioning.steps import build_steps
from tests.support.api import api_client
from tests.support.fakes import ScriptedProvider


def steps() -> list:  # type: ignore[type-arg]
    return build_steps(ScriptedProvider("group"), ScriptedProvider("domain"), ScriptedProvider("drive"))


async def test_a_nul_or_a_control_character_in_a_path_is_a_4xx_on_both_stores(
    make_settings: Callable[..., Settings],
) -> None:
    async with api_client(make_settings(), steps=steps()) as (client, _):
        assert (await client.post("/tenants", json={"slug": "acme", "name": "Acme"})).status_code == 201
        for path in ("/tenants/%00", "/tenants/ac%00me", "/tenants/acme%00/events", "/tenants/%00/plan"):
            answer = await client.get(path)
            assert answer.status_code == 404, (path, answer.text)
            assert answer.json()["error"] == "not_found"
        for path in ("/tenants/acme/admins/a%00b", "/tenants/acme/admins/a%1bb"):
            answer = await client.put(path)
            assert answer.status_code == 422, (path, answer.text)
        # The connection is still good afterwards (PostgreSQL used to drop it after a NUL).
        assert (await client.get("/tenants/acme")).status_code == 200


async def test_an_unreachable_store_answers_503_with_retry_after_in_the_error_shape(
    make_settings: Callable[..., Settings],
) -> None:
    async with api_client(make_settings(), steps=steps()) as (client, container):
        # The store goes away after start: nothing listens on port 1.
        gone = create_async_engine("postgresql+asyncpg://postgres@127.0.0.1:1/tenantry", pool_size=1)
        container.sessionmaker = async_sessionmaker(gone, expire_on_commit=False)
        try:
            for answer in (await client.get("/tenants"), await client.get("/tenants/acme")):
                assert answer.status_code == 503, answer.text
                assert answer.headers["Retry-After"] == "5"
                assert answer.json() == {
                    "error": "unavailable",
                    "detail": "the database cannot be reached right now; retry shortly",
                }
        finally:
            await gone.dispose()
