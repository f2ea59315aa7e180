"""Clean failures: a store that cannot be reached, and requests' control characters in logs (hostile input to
the API itself is in tests/integration/test_hostile_input.py)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from tenantry.config import Settings
from tenantry.provisioning.steps import build_steps
from tests.support.api import api_client
from tests.support.fakes import ScriptedProvider


def steps() -> list:  # type: ignore[type-arg]
    return build_steps(ScriptedProvider("group"), ScriptedProvider("domain"), ScriptedProvider("drive"))


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


def test_control_characters_from_requests_are_escaped_in_text_logs() -> None:
    from tenantry.logging import _escape_controls

    line = _escape_controls(None, "", {"event": "auth.rejected", "path": "/tenants/a\x1b[2Jb\x00\nfake line"})
    assert line["path"] == "/tenants/a\\x1b[2Jb\\x00\\x0afake line"
