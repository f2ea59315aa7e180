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


async def test_input_means_what_it_says(make_settings: Callable[..., Settings]) -> None:
    async with api_client(make_settings(), steps=steps()) as (client, _):
        for quota in ("100", True, 1.0):
            answer = await client.post("/tenants", json={"slug": "acme", "name": "Acme", "quotaBytes": quota})
            assert answer.status_code == 422, (quota, answer.text)
            assert answer.json()["detail"][0]["field"] == "quotaBytes"
        duplicated = await client.post(
            "/tenants",
            content=b'{"slug": "acme", "name": "Acme", "name": "Evil"}',
            headers={"Content-Type": "application/json"},
        )
        assert duplicated.status_code == 422
        assert duplicated.json() == {
            "error": "validation_error",
            "detail": [{"field": "body", "message": "the key 'name' appears more than once"}],
        }
        for name in ("Acme\u202egnp.exe", "Ac\u200bme", "Acme\u2066x"):
            answer = await client.post("/tenants", json={"slug": "acme", "name": name})
            assert answer.status_code == 422, (name, answer.text)
            assert "invisible or text-direction" in answer.json()["detail"][0]["message"]
        huge = await client.post(
            "/tenants", content=b'{"slug": "' + b"a" * (2 << 20) + b'"}', headers={"Content-Type": "application/json"}
        )
        assert huge.status_code == 413
        assert (await client.get("/tenants")).json()["total"] == 0  # none of it wrote anything
        fine = await client.post("/tenants", json={"slug": "acme", "name": "Bücher & Co", "quotaBytes": 100})
        assert fine.status_code == 201, fine.text


def test_control_characters_from_requests_are_escaped_in_text_logs() -> None:
    from tenantry.logging import _escape_controls

    line = _escape_controls(None, "", {"event": "auth.rejected", "path": "/tenants/a\x1b[2Jb\x00\nfake line"})
    assert line["path"] == "/tenants/a\\x1b[2Jb\\x00\\x0afake line"


async def test_options_and_405_answers_name_every_method_the_path_accepts(
    make_settings: Callable[..., Settings],
) -> None:
    async with api_client(make_settings(), steps=steps()) as (client, _):
        options = await client.options("/tenants")
        assert (options.status_code, options.headers["Allow"]) == (204, "GET, OPTIONS, POST")
        refused = await client.put("/tenants/acme")
        assert refused.status_code == 405
        assert refused.headers["Allow"] == "DELETE, GET, OPTIONS, PATCH"
        assert refused.json()["error"] == "method_not_allowed"
        assert (await client.delete("/healthz")).headers["Allow"] == "GET, OPTIONS"
