"""Hostile input on both stores: every answer is a 4xx in the API's error shape, and nothing is written."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tenantry.config import Settings
from tenantry.container import Container
from tenantry.tenants.models import Tenant, TenantAdmin, TenantEvent
from tenantry.web import MAX_JSON_BODY_BYTES
from tests.support.api import api_client
from tests.support.auth import Callers, authed_api, sandbox_suite, scripted_steps

JSON = {"Content-Type": "application/json"}


async def stored(container: Container) -> dict[str, Any]:
    """What the store holds that a request could have changed: the rows, and the tenant as it stands."""
    async with container.sessionmaker() as session:

        async def count(model: Any) -> int:
            return int(await session.scalar(sa.select(sa.func.count()).select_from(model)) or 0)

        tenant = await session.scalar(sa.select(Tenant).where(Tenant.slug == "acme"))
        return {
            "tenants": await count(Tenant),
            "events": await count(TenantEvent),
            "admins": await count(TenantAdmin),
            "acme": None if tenant is None else (tenant.name, tenant.quota_bytes, tenant.generation),
        }


@pytest.fixture
async def api(make_settings: Callable[..., Settings]) -> AsyncIterator[tuple[httpx.AsyncClient, Container]]:
    """The API with one tenant, acme, already created."""
    async with api_client(make_settings(create_wait_seconds=1), steps=scripted_steps()) as (client, container):
        created = await client.post("/tenants", json={"slug": "acme", "name": "Acme"})
        assert created.status_code == 201, created.text
        yield client, container


def refused(answer: httpx.Response, *statuses: int) -> dict[str, Any]:
    """The error body of ``answer``, which must have one of ``statuses`` and the API's error shape."""
    request = answer.request
    assert answer.status_code in statuses, (request.method, str(request.url), answer.status_code, answer.text)
    body: dict[str, Any] = answer.json()
    assert set(body) == {"error", "detail"}, body
    return body


async def test_nul_and_control_characters_in_paths_and_queries_are_404_or_422(
    api: tuple[httpx.AsyncClient, Container],
) -> None:
    client, container = api
    before = await stored(container)
    for path in ("/tenants/%00", "/tenants/ac%00me", "/tenants/acme%00/events", "/tenants/%00/plan", "/tenants/%1b"):
        assert refused(await client.get(path), 404)["error"] == "not_found"
    for method in ("PUT", "DELETE"):
        for path in ("/tenants/acme/admins/a%00b", "/tenants/acme/admins/a%1bb", "/tenants/acme/admins/%7f"):
            assert refused(await client.request(method, path), 422)["detail"][0]["field"] == "sub"
    for path in (
        "/tenants?status=%00",
        "/tenants?limit=%00",
        "/tenants/acme/events?cursor=%00",
        "/tenants/acme/events?format=csv%00",
        "/tenants/acme/dns?format=%00",
    ):
        assert refused(await client.get(path), 422)["error"] == "validation_error"
    refused(await client.delete("/tenants/acme/domain/aliases/a%00b.example"), 404, 422)
    for slug in ("other\n", "other\x00", "ot\x00her"):
        assert (
            refused(await client.post("/tenants", json={"slug": slug, "name": "x"}), 422)["detail"][0]["field"]
            == "slug"
        )
    refused(await client.patch("/tenants/%00", json={"name": "Evil"}), 404)
    refused(await client.post("/tenants/ac%00me/reconcile"), 404)
    assert await stored(container) == before
    # The connection is still good afterwards (PostgreSQL used to drop it after a NUL).
    assert (await client.get("/tenants/acme")).status_code == 200


async def test_an_admin_sub_that_is_not_utf8_is_422_and_not_stored_as_a_replacement_character(
    api: tuple[httpx.AsyncClient, Container],
) -> None:
    client, container = api
    before = await stored(container)
    for method in ("PUT", "DELETE"):
        for path in ("/tenants/acme/admins/%ff", "/tenants/acme/admins/ab%c3", "/tenants/acme/admins/%ed%a0%80"):
            problem = refused(await client.request(method, path), 422)["detail"][0]
            assert problem["field"] == "sub", problem
    assert await stored(container) == before
    assert (await client.get("/tenants/acme/admins")).json()["admins"] == []


@pytest.mark.parametrize("quota", ["100", True, 1.0, 1.5, [1], {"bytes": 1}, 0, -1, 2**53 + 1])
async def test_a_quota_that_is_not_a_positive_json_integer_is_422(
    api: tuple[httpx.AsyncClient, Container], quota: object
) -> None:
    client, container = api
    before = await stored(container)
    created = await client.post("/tenants", json={"slug": "other", "name": "Other", "quotaBytes": quota})
    assert refused(created, 422)["detail"][0]["field"] == "quotaBytes"
    changed = await client.patch("/tenants/acme", json={"quotaBytes": quota})
    assert refused(changed, 422)["detail"][0]["field"] == "quotaBytes"
    assert await stored(container) == before


async def test_a_repeated_key_is_422_at_any_depth_and_in_every_body(api: tuple[httpx.AsyncClient, Container]) -> None:
    client, container = api
    before = await stored(container)
    for method, path, body in (
        ("POST", "/tenants", b'{"slug": "other", "name": "Other", "name": "Evil"}'),
        ("POST", "/tenants", b'{"slug": "other", "name": "Other", "extra": {"a": 1, "a": 2}}'),
        ("PATCH", "/tenants/acme", b'{"quotaBytes": 1, "quotaBytes": 2}'),
        ("POST", "/tenants/acme/domain/plan", b'{"mailDomain": "a.example", "mailDomain": "b.example"}'),
    ):
        detail = refused(await client.request(method, path, content=body, headers=JSON), 422)["detail"]
        assert detail[0]["field"] == "body"
        assert "appears more than once" in detail[0]["message"]
    assert await stored(container) == before


async def test_a_body_over_the_size_limit_is_413_whether_or_not_it_is_sent_in_one_piece(
    api: tuple[httpx.AsyncClient, Container],
) -> None:
    client, container = api
    before = await stored(container)
    huge = b'{"slug": "other", "name": "' + b"a" * MAX_JSON_BODY_BYTES + b'"}'

    async def in_pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(huge), 64 * 1024):
            yield huge[start : start + 64 * 1024]

    assert refused(await client.post("/tenants", content=huge, headers=JSON), 413)["error"] == "payload_too_large"
    refused(await client.patch("/tenants/acme", content=huge, headers=JSON), 413)
    refused(await client.post("/tenants", content=in_pieces(), headers=JSON), 413)
    assert await stored(container) == before


@pytest.mark.parametrize("depth", [1_000, 10_000, 100_000])
async def test_deeply_nested_json_is_a_4xx_not_a_recursion_error(
    api: tuple[httpx.AsyncClient, Container], depth: int
) -> None:
    client, container = api
    before = await stored(container)
    nested = b"[" * depth + b"]" * depth
    for method, path, body in (
        ("POST", "/tenants", b'{"slug": "other", "name": "Other", "mailDomain": ' + nested + b"}"),
        ("POST", "/tenants", nested),
        ("PATCH", "/tenants/acme", b'{"name": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"),
        ("POST", "/tenants/acme/domain/plan", b'{"mailDomain": ' + nested + b"}"),
    ):
        refused(await client.request(method, path, content=body, headers=JSON), 400, 422)
    assert await stored(container) == before


@pytest.mark.parametrize(
    "body",
    [
        b'{"slug": "ot\xffer", "name": "Other"}',
        b'{"slug": "other", "name": "Oth\xc3"}',
        b'{"slug": "other", "name": "\xed\xa0\x80"}',  # an encoded surrogate
        b'{"slug": "other", "name": "\\ud800"}',  # an escaped lone surrogate
        b"\xff\xfe{\x00}\x00",  # UTF-16, which the JSON parser would have guessed
        b'{"name": "Caf\xe9"}',  # Latin-1
    ],
)
async def test_a_body_that_is_not_utf8_json_is_a_4xx(api: tuple[httpx.AsyncClient, Container], body: bytes) -> None:
    client, container = api
    before = await stored(container)
    refused(await client.post("/tenants", content=body, headers=JSON), 400, 422)
    refused(await client.patch("/tenants/acme", content=body, headers=JSON), 400, 422)
    assert await stored(container) == before


@pytest.mark.parametrize(
    "name",
    [
        "Acme\u202egnp.exe",  # right-to-left override
        "Ac\u200bme",  # zero-width space
        "Acme\u2066x",  # left-to-right isolate
        "\u061cAcme",  # Arabic letter mark
        "Acme\ufeff",  # zero-width no-break space
        "Ac\u00adme",  # soft hyphen
        "Acme\u2028Evil",  # line separator
        "Acme\ue000",  # private use
        "Acme\U000e0041",  # tag letter
        "Acme\ufffe",  # a noncharacter
        "Acme\x85",  # a C1 control (that str.strip would have taken for white space)
        "Acme\n",
        "Ac\x00me",
        "\u3000",  # blank: ideographic space only
    ],
)
async def test_a_name_with_hidden_or_text_direction_characters_is_422(
    api: tuple[httpx.AsyncClient, Container], name: str
) -> None:
    client, container = api
    before = await stored(container)
    created = await client.post("/tenants", json={"slug": "other", "name": name})
    assert refused(created, 422)["detail"][0]["field"] == "name"
    assert refused(await client.patch("/tenants/acme", json={"name": name}), 422)["detail"][0]["field"] == "name"
    assert await stored(container) == before


async def test_names_in_any_script_and_with_emoji_newer_than_pythons_unicode_tables_are_accepted(
    api: tuple[httpx.AsyncClient, Container],
) -> None:
    client, _ = api
    for name in ("Bücher & Co", "שלום עולם", "株式会社", "Team \U0001fae8"):  # U+1FAE8: Unicode 15 (2022)
        changed = await client.patch("/tenants/acme", json={"name": name})
        assert changed.status_code == 200, (name, changed.text)
        assert changed.json()["name"] == name


async def test_options_and_405_answers_name_every_method_the_path_accepts(
    api: tuple[httpx.AsyncClient, Container],
) -> None:
    client, container = api
    before = await stored(container)
    for path, allowed in (
        ("/tenants", "GET, OPTIONS, POST"),
        ("/tenants/acme", "DELETE, GET, OPTIONS, PATCH"),
        ("/tenants/acme/admins/someone", "DELETE, OPTIONS, PUT"),
        ("/tenants/acme/reconcile", "OPTIONS, POST"),
        ("/healthz", "GET, OPTIONS"),
    ):
        options = await client.options(path)
        assert (options.status_code, options.headers["Allow"]) == (204, allowed), path
        wrong = next(m for m in ("PUT", "POST", "GET") if m not in allowed)
        answer = await client.request(wrong, path)
        assert refused(answer, 405)["error"] == "method_not_allowed"
        assert answer.headers["Allow"] == allowed, path
    assert await stored(container) == before


async def test_hostile_bodies_from_a_caller_without_a_valid_token_are_refused_as_unauthenticated_first(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    async with authed_api(make_settings, suite) as (client, container):
        who = Callers(suite)
        before = await stored(container)
        nested = b'{"name": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
        for body in (nested, b'{"slug": "ot\xffer", "name": "x"}', b'{"name": "a", "name": "b"}'):
            for headers in ({}, {"Authorization": "Bearer not-a-token"}):
                answer = await client.post("/tenants", content=body, headers={**JSON, **headers})
                assert refused(answer, 401)["error"] == "unauthorized", answer.text
                assert answer.headers["WWW-Authenticate"].startswith("Bearer")
            refused(await client.post("/tenants", content=body, headers={**JSON, **who.admin}), 400, 422)
        assert await stored(container) == before
