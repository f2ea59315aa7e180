"""What the API accepts as an access token, end to end with the sandbox issuer: never its ID token, and with
TENANTRY_OIDC_INTROSPECT, no token the issuer has revoked (asked at its RFC 7662 introspection endpoint).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import Request

from tenantry.app import ActorResolver
from tenantry.auth.dependencies import build_actor_resolver, build_validator
from tenantry.config import Settings
from tenantry.sandbox.suite import SandboxSuite
from tests.support.api import api_client
from tests.support.auth import auth_settings, authed_api, bearer, sandbox_suite, scripted_steps
from tests.support.clock import ManualClock

pytestmark = pytest.mark.slow  # the API with the sandbox OIDC issuer: an RSA key per test

Settings_ = Callable[..., Settings]
INTROSPECT_PATH = r"^/application/o/introspect/$"


async def client_credentials(suite: SandboxSuite) -> dict[str, Any]:
    """The token response of the sandbox token endpoint for the user machine's own secret."""
    form = {
        "grant_type": "client_credentials",
        "client_id": suite.credentials.user_client_id,
        "client_secret": suite.credentials.user_client_secret,
        "scope": "openid profile email",
    }
    async with httpx.AsyncClient(transport=suite.transports()["oidc"], base_url="http://authentik.test") as idp:
        response = await idp.post("/application/o/token/", data=form)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def revoke(suite: SandboxSuite, token: str) -> None:
    form = {
        "token": token,
        "client_id": suite.credentials.user_client_id,
        "client_secret": suite.credentials.user_client_secret,
    }
    async with httpx.AsyncClient(transport=suite.transports()["oidc"], base_url="http://authentik.test") as idp:
        response = await idp.post("/application/o/revoke/", data=form)
    assert response.status_code == 200, response.text


def introspecting(suite: SandboxSuite, **overrides: Any) -> dict[str, Any]:
    """Settings overrides for introspection: the machines' secrets (the portal's is known), the CLI left out
    because the sandbox's public CLI client has no secret to introspect with."""
    c = suite.credentials
    trusted = [c.admin_client_id, c.user_client_id, c.portal_client_id]
    return {
        "oidc_providers": json.dumps({suite.issuer.issuer_for(cid): [cid] for cid in trusted}),
        "oidc_introspect": True,
        "oidc_introspect_cache_seconds": 0,
        "oidc_introspect_clients": {c.admin_client_id: c.admin_client_secret, c.user_client_id: c.user_client_secret},
        **overrides,
    }


def detail(response: httpx.Response) -> str:
    value = response.json()["detail"]
    assert isinstance(value, str)
    return value


# -- ID tokens ------------------------------------------------------------------------------------------------


async def test_the_issuers_id_token_is_refused_and_its_access_token_accepted(make_settings: Settings_) -> None:
    suite = sandbox_suite()
    tokens = await client_credentials(suite)
    async with authed_api(make_settings, suite) as (client, _):
        with_access = await client.get("/tenants", headers=bearer(tokens["access_token"]))
        with_id = await client.get("/tenants", headers=bearer(tokens["id_token"]))
    assert with_access.status_code == 200, with_access.text
    assert with_id.status_code == 401, with_id.text
    assert with_id.json()["error"] == "unauthorized"
    assert "an ID token is not accepted" in detail(with_id)
    assert "an ID token is not accepted" in with_id.headers["www-authenticate"]


async def test_a_signed_in_persons_id_token_is_refused_like_a_machines(make_settings: Settings_) -> None:
    suite = sandbox_suite()
    portal = suite.credentials.portal_client_id
    access = suite.issuer.mint_token(sub=suite.plain_user.sub, audience=portal, extra_claims={"nonce": "n-1"})
    id_token = suite.issuer.mint_token(
        sub=suite.plain_user.sub, audience=portal, kind="id", extra_claims={"nonce": "n-1"}
    )
    async with authed_api(make_settings, suite) as (client, _):
        accepted = await client.get("/tenants", headers=bearer(access))
        refused = await client.get("/tenants", headers=bearer(id_token))
    assert accepted.status_code == 200, accepted.text
    assert refused.status_code == 401
    assert "an ID token is not accepted" in detail(refused)


# -- revocation through introspection -------------------------------------------------------------------------


async def test_without_introspection_a_revoked_token_is_accepted_until_it_expires(make_settings: Settings_) -> None:
    suite = sandbox_suite()
    token = (await client_credentials(suite))["access_token"]
    async with authed_api(make_settings, suite) as (client, _):
        await revoke(suite, token)
        response = await client.get("/tenants", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert not suite.authentik.controls.requests("POST", INTROSPECT_PATH)


async def test_with_introspection_a_revoked_token_is_refused(make_settings: Settings_) -> None:
    suite = sandbox_suite()
    token = (await client_credentials(suite))["access_token"]
    async with authed_api(make_settings, suite, **introspecting(suite)) as (client, _):
        before = await client.get("/tenants", headers=bearer(token))
        await revoke(suite, token)
        after = await client.get("/tenants", headers=bearer(token))
    assert before.status_code == 200, before.text
    assert after.status_code == 401, after.text
    assert "no longer active" in detail(after)
    assert len(suite.authentik.controls.requests("POST", INTROSPECT_PATH)) == 2


async def test_the_portals_own_secret_introspects_the_portals_tokens(make_settings: Settings_) -> None:
    suite = sandbox_suite()
    portal = suite.credentials.portal_client_id
    token = suite.issuer.mint_token(sub=suite.plain_user.sub, audience=portal)
    async with authed_api(make_settings, suite, **introspecting(suite)) as (client, _):
        response = await client.get("/tenants", headers=bearer(token))
    assert response.status_code == 200, response.text


async def test_a_wrong_introspection_secret_makes_every_token_look_revoked(make_settings: Settings_) -> None:
    # authentik answers {"active": false}, not 401, to client credentials it does not accept.
    suite = sandbox_suite()
    token = (await client_credentials(suite))["access_token"]
    c = suite.credentials
    wrong = {c.admin_client_id: c.admin_client_secret, c.user_client_id: "not-the-secret"}
    async with authed_api(make_settings, suite, **introspecting(suite, oidc_introspect_clients=wrong)) as (client, _):
        response = await client.get("/tenants", headers=bearer(token))
    assert response.status_code == 401
    assert "no longer active" in detail(response)


@contextlib.asynccontextmanager
async def clocked(make_settings: Settings_, suite: SandboxSuite, clock: ManualClock) -> AsyncIterator[ActorResolver]:
    """The production resolver with introspection answers kept 5 s on ``clock``."""
    settings = auth_settings(make_settings, suite, **introspecting(suite, oidc_introspect_cache_seconds=5))
    async with httpx.AsyncClient(transport=suite.transports()["oidc"]) as http:
        validator = build_validator(settings, http, clock=clock)
        built: dict[str, ActorResolver] = {}

        async def resolve(request: Request) -> Any:
            if "resolver" not in built:
                built["resolver"] = build_actor_resolver(settings, request.app.state.container, validator)
            return await built["resolver"](request)

        yield resolve


async def test_an_active_answer_is_trusted_for_the_cache_time_then_asked_again(make_settings: Settings_) -> None:
    suite = sandbox_suite()
    clock = ManualClock(time.time())
    token = (await client_credentials(suite))["access_token"]
    async with (
        clocked(make_settings, suite, clock) as resolver,
        authed_api(make_settings, suite, actor_resolver=resolver, **introspecting(suite)) as (client, _),
    ):
        first = await client.get("/tenants", headers=bearer(token))
        await revoke(suite, token)
        within = await client.get("/tenants", headers=bearer(token))
        asked_within = len(suite.authentik.controls.requests("POST", INTROSPECT_PATH))
        clock.advance(6)
        after = await client.get("/tenants", headers=bearer(token))
        again = await client.get("/tenants", headers=bearer(token))
    assert (first.status_code, within.status_code) == (200, 200)
    assert asked_within == 1
    assert (after.status_code, again.status_code) == (401, 401)
    # The inactive answer is kept until the token expires: the issuer is not asked again.
    assert len(suite.authentik.controls.requests("POST", INTROSPECT_PATH)) == 2


async def test_an_unreachable_introspection_endpoint_answers_503_with_retry_after(make_settings: Settings_) -> None:
    suite = sandbox_suite()
    token = (await client_credentials(suite))["access_token"]
    inner = suite.transports()["oidc"]

    async def cut_introspection(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/application/o/introspect/":
            raise httpx.ConnectError("connection refused", request=request)
        return await inner.handle_async_request(request)

    transports = {**suite.transports(), "oidc": httpx.MockTransport(cut_introspection)}
    settings = auth_settings(make_settings, suite, **introspecting(suite))
    async with api_client(settings, steps=scripted_steps(), transports=transports) as (client, _):
        response = await client.get("/tenants", headers=bearer(token))
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"].isdigit()
    assert set(response.json()) == {"error", "detail"}
    assert response.json()["error"] == "unavailable"
    assert suite.credentials.user_client_secret not in response.text


async def test_an_introspection_endpoint_answering_5xx_fails_closed(make_settings: Settings_) -> None:
    suite = sandbox_suite()
    token = (await client_credentials(suite))["access_token"]
    async with authed_api(make_settings, suite, **introspecting(suite)) as (client, _):
        suite.authentik.controls.fail(INTROSPECT_PATH, 502)
        response = await client.get("/tenants", headers=bearer(token))
    assert response.status_code == 503, response.text
    assert "retry-after" in response.headers
