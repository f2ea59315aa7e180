"""API authentication and authorization end to end: real tokens from the sandbox issuer, the real validator.

The API trusts several providers, each an issuer with its own client ids, as authentik deploys them; all of
them sign with one key, so a token of a provider the API does not trust is refused on its ``iss``. Every
refused token answers 401 with a ``WWW-Authenticate: Bearer`` challenge; keys are fetched from the sandbox
issuer through the ``oidc`` transport, so rotation and issuer outages are the issuer's own.
Visibility: an ordinary user sees only the tenants they own (others are 404, not 403, so their existence
does not leak); a platform admin sees and manages all of them.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

import httpx
import jwt
import pytest
from asgi_lifespan import LifespanManager
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Request
from starlette.routing import BaseRoute, Route

from tenantry.app import ActorResolver, create_app
from tenantry.auth.dependencies import build_actor_resolver, build_validator
from tenantry.config import Settings
from tenantry.container import build_container
from tenantry.sandbox.oidc import OidcIssuer
from tenantry.sandbox.oidc_keys import ALGORITHM, SigningKey
from tenantry.sandbox.oidc_models import DemoUser, OidcClient
from tenantry.sandbox.suite import SandboxSuite
from tenantry.tenants.repository import TenantRepository
from tests.support.api import api_client
from tests.support.auth import (
    AUTHENTIK_URL,
    Callers,
    auth_settings,
    authed_api,
    bearer,
    sandbox_suite,
    scripted_steps,
)
from tests.support.clock import ManualClock

pytestmark = pytest.mark.slow  # the API with the sandbox OIDC issuer: an RSA key per test, JWKS refreshes

ISSUER_ROUTES = r"^/application/o/"
JWKS_PATH = r"^/application/o/[^/]+/jwks/$"
# The OpenAPI document and the pages that render it are public like the ops routes.
PUBLIC_PATHS = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/auth/config",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
}

Settings_ = Callable[..., Settings]


def jwks_fetches(suite: SandboxSuite) -> int:
    return len(suite.authentik.controls.requests("GET", JWKS_PATH))


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "unauthorized"
    challenge = response.headers.get("www-authenticate", "")
    assert challenge.startswith("Bearer "), challenge
    assert 'realm="tenantry"' in challenge


# -- crafted tokens -----------------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _segment(obj: dict[str, Any]) -> str:
    return _b64url(json.dumps(obj, separators=(",", ":")).encode())


def _claims(suite: SandboxSuite, sub: str) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": suite.issuer.issuer_for(suite.credentials.user_client_id),
        "sub": sub,
        "aud": suite.credentials.user_client_id,
        "iat": now,
        "exp": now + 600,
        "groups": ["tenantry-admins"],
    }


def unsigned_token(suite: SandboxSuite, sub: str) -> str:
    """``alg: none`` with the issuer's current kid and claims that would make the caller an admin."""
    header = {"alg": "none", "typ": "JWT", "kid": suite.issuer.current_kid}
    return f"{_segment(header)}.{_segment(_claims(suite, sub))}."


def hs256_with_public_key(suite: SandboxSuite, sub: str) -> str:
    """The algorithm-confusion attack: HMAC "signed" with the issuer's published RSA public key as secret."""
    jwk = next(k for k in suite.issuer.jwks()["keys"] if k["kid"] == suite.issuer.current_kid)
    public_key = jwt.algorithms.RSAAlgorithm.from_jwk(jwk)
    assert isinstance(public_key, rsa.RSAPublicKey)
    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{_segment({'alg': 'HS256', 'typ': 'JWT', 'kid': jwk['kid']})}.{_segment(_claims(suite, sub))}"
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(signature)}"


def tampered(token: str, **changes: Any) -> str:
    """A genuine token with its payload edited and the original signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    return f"{header}.{_segment(claims)}.{signature}"


def signed_with_unpublished_key(suite: SandboxSuite, sub: str) -> str:
    """Valid claims, signed by a key the issuer never published (its kid is unknown to the JWKS)."""
    key = SigningKey.generate()
    return jwt.encode(_claims(suite, sub), key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})


def second_issuer_token(sub: str) -> str:
    """A correctly signed token of another issuer (its own keys, its own ``iss``), for the same client id."""
    other = OidcIssuer(
        app_slug="elsewhere",
        public_url="http://other-idp.test",
        clients=[OidcClient(client_id="tenantry-user-machine", client_secret="x")],
        users=[DemoUser(username="mallory", password="pw", sub=sub, groups=["tenantry-admins"])],
    )
    return other.mint_token(sub=sub, audience="tenantry-user-machine")


BAD_TOKENS: dict[str, Callable[[SandboxSuite], str]] = {
    "garbage": lambda s: "not-a-jwt-at-all",
    "three_garbage_segments": lambda s: "aGVsbG8.d29ybGQ.Zm9v",
    "alg_none": lambda s: unsigned_token(s, s.plain_user.sub),
    "hs256_signed_with_the_rsa_public_key": lambda s: hs256_with_public_key(s, s.plain_user.sub),
    "expired": lambda s: s.issuer.mint_token(
        sub=s.plain_user.sub, audience=s.credentials.user_client_id, expires_in=-120
    ),
    "not_yet_valid": lambda s: s.issuer.mint_token(
        sub=s.plain_user.sub, audience=s.credentials.user_client_id, not_before=time.time() + 600
    ),
    "wrong_iss": lambda s: s.issuer.mint_token(
        sub=s.plain_user.sub,
        audience=s.credentials.user_client_id,
        extra_claims={"iss": "http://evil.test/application/o/tenantry/"},
    ),
    "wrong_aud": lambda s: s.issuer.mint_token(sub=s.plain_user.sub, audience="some-other-application"),
    "unknown_kid": lambda s: signed_with_unpublished_key(s, s.plain_user.sub),
    "tampered_payload": lambda s: tampered(
        s.issuer.mint_token(sub=s.plain_user.sub, audience=s.credentials.user_client_id), groups=["tenantry-admins"]
    ),
    "second_issuer": lambda s: second_issuer_token(s.plain_user.sub),
}


# -- who may call at all ------------------------------------------------------------------------------------


@pytest.mark.parametrize("authorization", [None, "Basic YWxpY2U6c2VjcmV0", "Bearer", "Bearer   "])
async def test_a_request_without_a_bearer_token_gets_401_with_a_bare_bearer_challenge(
    make_settings: Settings_, authorization: str | None
) -> None:
    suite = sandbox_suite()
    headers = {"Authorization": authorization} if authorization is not None else {}
    async with authed_api(make_settings, suite) as (client, _):
        response = await client.get("/tenants", headers=headers)
    assert_refused(response)
    # RFC 6750 §3.1: no error code when the request carried no credentials at all.
    assert response.headers["www-authenticate"] == 'Bearer realm="tenantry"'


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
async def test_an_invalid_token_is_refused_with_401_and_a_bearer_challenge(make_settings: Settings_, kind: str) -> None:
    suite = sandbox_suite()
    token = BAD_TOKENS[kind](suite)
    async with authed_api(make_settings, suite) as (client, container):
        # The same caller is let in with a genuine token, so the refusal is about the token alone.
        good = suite.issuer.mint_token(sub=suite.plain_user.sub, audience=suite.credentials.user_client_id)
        listed = await client.get("/tenants", headers=bearer(good))
        assert listed.status_code == 200, listed.text
        response = await client.get("/tenants", headers=bearer(token))
        created = await client.post("/tenants", headers=bearer(token), json={"slug": "forged", "name": "Forged"})
        async with container.sessionmaker() as session:
            stored = await TenantRepository(session).by_slug("forged")
    assert stored is None
    assert_refused(response)
    assert_refused(created)
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert token not in response.text


# -- which providers: each issuer with its own client ids ------------------------------------------------


def refusal_reason(response: httpx.Response) -> str:
    return response.headers["www-authenticate"].split('error_description="')[1].rstrip('"')


async def test_each_trusted_providers_tokens_are_accepted(make_settings: Settings_) -> None:
    suite = sandbox_suite()
    async with authed_api(make_settings, suite) as (client, _):
        answers = {}
        for client_id in suite.audiences:
            token = suite.issuer.mint_token(sub=suite.plain_user.sub, audience=client_id)
            assert jwt.decode(token, options={"verify_signature": False})["iss"] == suite.issuer.issuer_for(client_id)
            answers[client_id] = (await client.get("/tenants", headers=bearer(token))).status_code
    assert len(set(suite.trusted_providers)) == 4  # four providers, four issuers
    assert answers == dict.fromkeys(suite.audiences, 200)


async def test_a_token_of_an_untrusted_provider_signed_with_the_same_key_is_refused_on_its_issuer(
    make_settings: Settings_,
) -> None:
    suite = sandbox_suite()
    # oCIS's provider is one of the sandbox authentik's, signed by the very key the trusted ones use.
    token = suite.issuer.mint_token(sub=suite.plain_user.sub, audience=suite.credentials.ocis_client_id)
    jwk = jwt.PyJWKSet.from_dict(suite.issuer.jwks())[jwt.get_unverified_header(token)["kid"]]
    claims = jwt.decode(token, jwk.key, algorithms=["RS256"], audience=suite.credentials.ocis_client_id)
    async with authed_api(make_settings, suite) as (client, _):
        response = await client.get("/tenants", headers=bearer(token))
    assert claims["iss"] == suite.issuer.issuer_for(suite.credentials.ocis_client_id)
    assert_refused(response)
    assert refusal_reason(response) == "untrusted issuer"


async def test_a_trusted_issuer_does_not_vouch_for_another_providers_client_id(make_settings: Settings_) -> None:
    suite = sandbox_suite()
    c = suite.credentials
    portal_issuer = suite.issuer.issuer_for(c.portal_client_id)
    # Genuinely signed, but a CLI client id under the portal's issuer, or a foreign authorized party.
    aud_of_another = suite.issuer.mint_token(
        sub=suite.plain_user.sub, audience=c.cli_client_id, extra_claims={"iss": portal_issuer}
    )
    azp_of_another = suite.issuer.mint_token(
        sub=suite.plain_user.sub, audience=c.portal_client_id, extra_claims={"azp": c.ocis_client_id}
    )
    async with authed_api(make_settings, suite) as (client, _):
        by_aud = await client.get("/tenants", headers=bearer(aud_of_another))
        by_azp = await client.get("/tenants", headers=bearer(azp_of_another))
    assert_refused(by_aud)
    assert refusal_reason(by_aud) == "wrong audience"
    assert_refused(by_azp)
    assert refusal_reason(by_azp) == "wrong authorized party"


async def test_keys_are_fetched_and_cached_per_issuer(make_settings: Settings_) -> None:
    suite = sandbox_suite()
    c = suite.credentials
    async with authed_api(make_settings, suite) as (client, _):
        for _ in range(3):
            for client_id in (c.user_client_id, c.cli_client_id):
                token = suite.issuer.mint_token(sub=suite.plain_user.sub, audience=client_id)
                assert (await client.get("/tenants", headers=bearer(token))).status_code == 200
    fetched = sorted(r.path for r in suite.authentik.controls.requests("GET", JWKS_PATH))
    assert fetched == sorted(f"/application/o/{client_id}/jwks/" for client_id in (c.user_client_id, c.cli_client_id))


async def test_the_single_issuer_settings_trust_that_issuer_alone(make_settings: Settings_) -> None:
    suite = sandbox_suite()
    c = suite.credentials
    simple = {"oidc_providers": {}, "oidc_issuer": suite.issuer.issuer_for(c.portal_client_id)}
    portal = suite.issuer.mint_token(sub=suite.plain_user.sub, audience=c.portal_client_id)
    machine = suite.issuer.mint_token(sub=suite.plain_user.sub, audience=c.user_client_id)
    async with authed_api(make_settings, suite, **simple, oidc_audience=c.portal_client_id) as (client, _):
        accepted = await client.get("/tenants", headers=bearer(portal))
        refused = await client.get("/tenants", headers=bearer(machine))
        config = (await client.get("/auth/config")).json()
    assert accepted.status_code == 200, accepted.text
    assert_refused(refused)
    assert config["providers"] == [{"issuer": simple["oidc_issuer"], "clientIds": [c.portal_client_id]}]
    assert config["cliClientId"] is None  # the CLI's client is not trusted: the CLI cannot log in here


async def test_auth_config_names_the_clis_own_public_client_and_every_trusted_provider(
    make_settings: Settings_,
) -> None:
    suite = sandbox_suite()
    c = suite.credentials
    async with authed_api(make_settings, suite) as (client, _):
        config = (await client.get("/auth/config")).json()
    assert config["issuer"] == suite.issuer.issuer_for(c.cli_client_id)
    assert config["cliClientId"] == c.cli_client_id
    assert config["cliScope"].split()[:2] == ["openid", "profile"]
    assert {p["issuer"]: p["clientIds"] for p in config["providers"]} == suite.trusted_providers
    assert not any(secret in json.dumps(config) for secret in (c.admin_client_secret, c.user_client_secret))


# -- machine identities and scopes, with tokens from the sandbox token endpoint -------------------------


async def machine_token(suite: SandboxSuite, client_id: str, **form: str) -> str:
    async with httpx.AsyncClient(transport=suite.transports()["authentik"], base_url=AUTHENTIK_URL) as http:
        response = await http.post(
            "/application/o/token/", data={"grant_type": "client_credentials", "client_id": client_id, **form}
        )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def test_a_machine_is_an_admin_only_as_a_service_account_in_the_admin_group_asking_for_profile(
    make_settings: Settings_,
) -> None:
    suite = sandbox_suite()
    c = suite.credentials
    app_password = {"username": c.service_account, "password": c.service_account_app_password}
    as_service_account = await machine_token(suite, c.admin_client_id, scope="openid profile", **app_password)
    as_base64_secret = await machine_token(
        suite,
        c.admin_client_id,
        scope="openid profile",
        client_secret=base64.b64encode(f"{c.service_account}:{c.service_account_app_password}".encode()).decode(),
    )
    # The provider's own secret acts as ak-tenantry-admin-machine-client_credentials, in no group.
    as_provider = await machine_token(
        suite, c.admin_client_id, scope="openid profile", client_secret=c.admin_client_secret
    )
    # Without the profile scope there is no groups claim, so the service account is an ordinary caller.
    without_profile = await machine_token(suite, c.admin_client_id, scope="openid email", **app_password)
    user = await machine_token(suite, c.user_client_id, scope="openid profile", client_secret=c.user_client_secret)
    async with authed_api(make_settings, suite) as (client, _):
        assert (
            await client.post("/tenants", headers=bearer(user), json={"slug": "ants", "name": "Ants"})
        ).status_code == 201
        seen = {
            name: (await client.get("/tenants/ants", headers=bearer(token))).status_code
            for name, token in (
                ("service_account", as_service_account),
                ("base64_secret", as_base64_secret),
                ("provider_secret", as_provider),
                ("without_profile", without_profile),
            )
        }
    assert seen == {"service_account": 200, "base64_secret": 200, "provider_secret": 404, "without_profile": 404}


def served_routes(routes: Sequence[BaseRoute]) -> Iterator[Route]:
    """The app's routes, descending into included routers (which newer FastAPI keeps as one entry)."""
    for route in routes:
        if isinstance(route, Route):
            yield route
        nested = getattr(route, "original_router", None)
        if nested is not None:
            yield from served_routes(nested.routes)


PORTAL = "tenantry.portal."
PORTAL_SIGN_IN = {"/auth/login", "/auth/callback", "/auth/signed-out"}  # the way in, open by nature


async def test_every_route_but_the_public_ones_requires_a_token(make_settings: Settings_) -> None:
    suite = sandbox_suite()
    settings = auth_settings(make_settings, suite)
    app = create_app(
        settings,
        container_factory=lambda: build_container(settings, transports=suite.transports(), steps=scripted_steps()),
    )
    # Every route the app serves, including any left out of the OpenAPI document.
    served = list(served_routes(app.routes))
    # The portal's pages need a signed-in session instead of a token: without one they lead to sign-in.
    portal = {route.path for route in served if getattr(route, "endpoint", None).__module__.startswith(PORTAL)}
    routes = [(route.path, sorted(route.methods or ())) for route in served if route.path not in portal]
    protected: list[tuple[str, str]] = []
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tenantry.test") as client,
    ):
        for path, methods in routes:
            url = path.replace("{slug}", "acme")
            for method in methods:
                if method == "HEAD":
                    continue
                body = {"slug": "acme", "name": "Acme"} if method in ("POST", "PATCH") else None
                response = await client.request(method, url, json=body)
                if path in PUBLIC_PATHS:
                    assert response.status_code == 200, (method, path, response.status_code)
                else:
                    assert_refused(response)
                    protected.append((method, path))
        documented = (await client.get("/openapi.json")).json()["paths"]
        for route in served:
            if route.path not in portal - PORTAL_SIGN_IN:
                continue
            for method in sorted((route.methods or set()) - {"HEAD"}):
                page = await client.request(method, route.path.replace("{slug}", "acme"), data={"slug": "acme"})
                # To sign in and back (an event stream just stops: 204), never the page itself.
                assert page.status_code in (303, 204), (method, route.path, page.status_code)
                assert page.status_code == 204 or page.headers["location"].startswith("/auth/login?next="), route.path
    # The walk over the routes missed nothing the OpenAPI document lists.
    assert {(m.upper(), p) for p, ops in documented.items() for m in ops} <= {(m, p) for p, ms in routes for m in ms}
    assert {
        ("POST", "/tenants"),
        ("GET", "/tenants"),
        ("GET", "/tenants/{slug}"),
        ("PATCH", "/tenants/{slug}"),
        ("POST", "/tenants/{slug}/reconcile"),
        ("GET", "/tenants/{slug}/events"),
        ("GET", "/tenants/{slug}/dns"),
    } <= set(protected)
    assert {path for path, _ in routes} >= PUBLIC_PATHS


# -- keys: refresh, rotation, outages -----------------------------------------------------------------------

# The validator caches the JWKS for an hour; tokens in these tests outlive a jump past that.
PAST_JWKS_TTL = 3600 + 60
LONG_LIVED = 3 * 3600


@contextlib.asynccontextmanager
async def clocked_resolver(
    make_settings: Settings_, suite: SandboxSuite, clock: ManualClock
) -> AsyncIterator[ActorResolver]:
    """The production resolver around a validator on ``clock`` (still fetching keys via the sandbox)."""
    settings = auth_settings(make_settings, suite)
    async with httpx.AsyncClient(transport=suite.transports()["oidc"]) as http:
        validator = build_validator(settings, http, clock=clock)
        built: dict[str, ActorResolver] = {}

        async def resolve(request: Request) -> Any:
            if "resolver" not in built:
                built["resolver"] = build_actor_resolver(settings, request.app.state.container, validator)
            return await built["resolver"](request)

        yield resolve


async def test_an_unknown_kid_causes_one_jwks_refresh_then_401_and_repeats_cause_none(make_settings: Settings_) -> None:
    suite = sandbox_suite()
    clock = ManualClock(time.time())
    good = suite.issuer.mint_token(sub=suite.plain_user.sub, audience=suite.credentials.user_client_id)
    async with (
        clocked_resolver(make_settings, suite, clock) as resolver,
        authed_api(make_settings, suite, actor_resolver=resolver) as (client, _),
    ):
        assert (await client.get("/tenants", headers=bearer(good))).status_code == 200
        warm = jwks_fetches(suite)
        clock.advance(60)
        first = await client.get("/tenants", headers=bearer(signed_with_unpublished_key(suite, "x")))
        after_first = jwks_fetches(suite)
        for _ in range(5):
            assert_refused(await client.get("/tenants", headers=bearer(signed_with_unpublished_key(suite, "x"))))
        after_flood = jwks_fetches(suite)
    assert warm == 1
    assert_refused(first)
    assert after_first == warm + 1
    assert after_flood == after_first


async def test_an_unknown_kid_on_a_cold_cache_fetches_the_jwks_once_and_is_refused(make_settings: Settings_) -> None:
    suite = sandbox_suite()
    async with authed_api(make_settings, suite) as (client, _):
        response = await client.get("/tenants", headers=bearer(signed_with_unpublished_key(suite, "x")))
    assert_refused(response)
    assert jwks_fetches(suite) == 1


async def test_rotated_signing_keys_are_accepted_without_a_restart(make_settings: Settings_) -> None:
    suite = sandbox_suite()
    clock = ManualClock(time.time())
    audience = suite.credentials.user_client_id
    async with (
        clocked_resolver(make_settings, suite, clock) as resolver,
        authed_api(make_settings, suite, actor_resolver=resolver) as (client, _),
    ):
        old = suite.issuer.mint_token(sub=suite.plain_user.sub, audience=audience, expires_in=LONG_LIVED)
        assert (await client.get("/tenants", headers=bearer(old))).status_code == 200
        clock.advance(60)
        suite.issuer.rotate_keys()
        new = suite.issuer.mint_token(sub=suite.plain_user.sub, audience=audience, expires_in=LONG_LIVED)
        with_new_key = await client.get("/tenants", headers=bearer(new))
        with_old_key = await client.get("/tenants", headers=bearer(old))
        # Once the old key is unpublished and the cache has expired, its tokens stop working.
        suite.issuer.retire_previous_keys()
        clock.advance(PAST_JWKS_TTL)
        after_retirement_new = await client.get("/tenants", headers=bearer(new))
        after_retirement_old = await client.get("/tenants", headers=bearer(old))
    assert with_new_key.status_code == 200, with_new_key.text
    assert with_old_key.status_code == 200, with_old_key.text
    assert after_retirement_new.status_code == 200, after_retirement_new.text
    assert_refused(after_retirement_old)


async def test_the_issuer_down_with_a_warm_cache_keeps_authenticating(make_settings: Settings_) -> None:
    suite = sandbox_suite()
    clock = ManualClock(time.time())
    token = suite.issuer.mint_token(
        sub=suite.plain_user.sub, audience=suite.credentials.user_client_id, expires_in=LONG_LIVED
    )
    async with (
        clocked_resolver(make_settings, suite, clock) as resolver,
        authed_api(make_settings, suite, actor_resolver=resolver) as (client, _),
    ):
        assert (await client.get("/tenants", headers=bearer(token))).status_code == 200
        suite.authentik.controls.fail(ISSUER_ROUTES, 503)
        within_ttl = await client.get("/tenants", headers=bearer(token))
        # Past the cache lifetime the refresh fails, and the keys already held keep being used.
        clock.advance(PAST_JWKS_TTL)
        failed_before = len(suite.authentik.controls.requests("GET", ISSUER_ROUTES))
        past_ttl = await client.get("/tenants", headers=bearer(token))
        failed_after = len(suite.authentik.controls.requests("GET", ISSUER_ROUTES))
    assert within_ttl.status_code == 200, within_ttl.text
    assert past_ttl.status_code == 200, past_ttl.text
    assert failed_after > failed_before  # a refresh was really attempted against the down issuer


async def test_the_issuer_down_with_a_cold_cache_answers_503_not_401(make_settings: Settings_) -> None:
    suite = sandbox_suite()
    token = suite.issuer.mint_token(sub=suite.plain_user.sub, audience=suite.credentials.user_client_id)
    suite.authentik.controls.fail(ISSUER_ROUTES, 503)
    async with authed_api(make_settings, suite) as (client, _):
        response = await client.get("/tenants", headers=bearer(token))
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "unavailable"
    assert suite.authentik.controls.requests("GET", ISSUER_ROUTES), "the issuer was never asked"


async def test_the_issuer_unreachable_with_a_cold_cache_answers_503(make_settings: Settings_) -> None:
    suite = sandbox_suite()
    token = suite.issuer.mint_token(sub=suite.plain_user.sub, audience=suite.credentials.user_client_id)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    transports = {**suite.transports(), "oidc": httpx.MockTransport(refuse)}
    settings = auth_settings(make_settings, suite)
    async with api_client(settings, steps=scripted_steps(), transports=transports) as (client, _):
        response = await client.get("/tenants", headers=bearer(token))
    assert response.status_code == 503, response.text


# -- who may see and change what ----------------------------------------------------------------------------


async def test_a_user_cannot_see_or_touch_another_users_tenant(make_settings: Settings_) -> None:
    suite = sandbox_suite()
    who = Callers(suite)
    async with authed_api(make_settings, suite) as (client, _):
        created = await client.post("/tenants", headers=who.b, json={"slug": "bees", "name": "Bees"})
        assert created.status_code == 201, created.text
        listed = await client.get("/tenants", headers=who.a, params={"count": "true"})
        shown = await client.get("/tenants/bees", headers=who.a)
        changed = await client.patch("/tenants/bees", headers=who.a, json={"name": "Taken over"})
        reconciled = await client.post("/tenants/bees/reconcile", headers=who.a)
        events = await client.get("/tenants/bees/events", headers=who.a)
        dns = await client.get("/tenants/bees/dns", headers=who.a)
        missing = await client.get("/tenants/no-such-tenant", headers=who.a)
        owner_view = await client.get("/tenants/bees", headers=who.b)
        owner_events = await client.get("/tenants/bees/events", headers=who.b)
    assert listed.status_code == 200
    assert listed.json()["items"] == []
    assert listed.json()["total"] == 0
    for response in (shown, changed, reconciled, events, dns):
        assert response.status_code == 404, response.text
        # Indistinguishable from a tenant that does not exist.
        assert response.json() == {**missing.json(), "detail": "no tenant 'bees'"}
    assert owner_view.json()["name"] == "Bees"
    assert owner_view.json()["generation"] == 1
    assert not [e for e in owner_events.json() if e["kind"] == "tenant.reconcile_requested"]


async def test_a_user_lists_only_their_own_tenants(make_settings: Settings_) -> None:
    suite = sandbox_suite()
    who = Callers(suite)
    async with authed_api(make_settings, suite) as (client, _):
        for caller, slug in ((who.a, "ants"), (who.b, "bees"), (who.b, "bugs"), (who.admin, "hive")):
            assert (await client.post("/tenants", headers=caller, json={"slug": slug, "name": slug})).status_code == 201
        a_list = (await client.get("/tenants", headers=who.a, params={"count": "true"})).json()
        b_list = (await client.get("/tenants", headers=who.b, params={"count": "true"})).json()
        admin_list = (await client.get("/tenants", headers=who.admin)).json()
    assert [t["slug"] for t in a_list["items"]] == ["ants"]
    assert a_list["total"] == 1
    assert sorted(t["slug"] for t in b_list["items"]) == ["bees", "bugs"]
    assert b_list["total"] == 2
    assert sorted(t["slug"] for t in admin_list["items"]) == ["ants", "bees", "bugs", "hive"]


async def test_a_platform_admin_can_read_change_and_reconcile_any_tenant(make_settings: Settings_) -> None:
    suite = sandbox_suite()
    who = Callers(suite)
    async with authed_api(make_settings, suite) as (client, _):
        assert (await client.post("/tenants", headers=who.b, json={"slug": "bees", "name": "Bees"})).status_code == 201
        shown = await client.get("/tenants/bees", headers=who.admin)
        changed = await client.patch("/tenants/bees", headers=who.admin, json={"name": "Bees Ltd"})
        reconciled = await client.post("/tenants/bees/reconcile", headers=who.admin)
        events = await client.get("/tenants/bees/events", headers=who.admin)
        dns = await client.get("/tenants/bees/dns", headers=who.admin)
        seen_by_owner = await client.get("/tenants/bees", headers=who.b)
    assert shown.status_code == 200
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "Bees Ltd"
    assert reconciled.status_code == 200, reconciled.text
    assert events.status_code == 200
    assert dns.status_code == 200
    # The tenant still belongs to its owner, who sees the admin's change.
    assert seen_by_owner.json()["owner"] == who.b_sub
    assert seen_by_owner.json()["name"] == "Bees Ltd"


async def test_with_self_service_off_an_ordinary_user_cannot_create_but_an_admin_can(make_settings: Settings_) -> None:
    suite = sandbox_suite()
    who = Callers(suite)
    async with authed_api(make_settings, suite, self_service=False) as (client, _):
        refused = await client.post("/tenants", headers=who.a, json={"slug": "ants", "name": "Ants"})
        after = await client.get("/tenants", headers=who.admin, params={"count": "true"})
        allowed = await client.post("/tenants", headers=who.admin, json={"slug": "hive", "name": "Hive"})
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"] == "forbidden"
    assert after.json()["total"] == 0
    assert allowed.status_code == 201, allowed.text


async def test_with_self_service_on_an_ordinary_user_creates_and_owns_a_tenant(make_settings: Settings_) -> None:
    suite = sandbox_suite()
    who = Callers(suite)
    async with authed_api(make_settings, suite) as (client, _):
        created = await client.post("/tenants", headers=who.a, json={"slug": "ants", "name": "Ants"})
    assert created.status_code == 201, created.text
    assert created.json()["owner"] == who.a_sub


async def test_the_admin_group_claim_decides_admin_rights_not_the_subject(make_settings: Settings_) -> None:
    suite = sandbox_suite()
    who = Callers(suite)
    aud = suite.credentials.user_client_id
    # The admin's own subject without the admin group in the token is an ordinary user.
    demoted = bearer(suite.issuer.mint_token(sub=who.admin_sub, groups=["staff"], audience=aud))
    # Group names are compared exactly, as authentik does.
    lookalike = bearer(
        suite.issuer.mint_token(sub="c0ffee00-0000-4000-8000-00000000000c", groups=["Tenantry-Admins"], audience=aud)
    )
    async with authed_api(make_settings, suite) as (client, _):
        assert (await client.post("/tenants", headers=who.b, json={"slug": "bees", "name": "Bees"})).status_code == 201
        as_demoted = await client.get("/tenants/bees", headers=demoted)
        as_lookalike = await client.get("/tenants/bees", headers=lookalike)
        as_admin = await client.get("/tenants/bees", headers=who.admin)
    assert as_demoted.status_code == 404
    assert as_lookalike.status_code == 404
    assert as_admin.status_code == 200


async def test_created_by_and_updated_by_record_the_callers_subject(make_settings: Settings_) -> None:
    suite = sandbox_suite()
    who = Callers(suite)
    async with authed_api(make_settings, suite) as (client, _):
        created = (await client.post("/tenants", headers=who.a, json={"slug": "ants", "name": "Ants"})).json()
        by_owner = (await client.patch("/tenants/ants", headers=who.a, json={"name": "Ants Inc"})).json()
        by_admin = (await client.patch("/tenants/ants", headers=who.admin, json={"quotaBytes": 1024**3})).json()
        events = (await client.get("/tenants/ants/events", headers=who.a)).json()
    assert created["createdBy"] == who.a_sub
    assert created["updatedBy"] == who.a_sub
    assert created["owner"] == who.a_sub
    assert by_owner["updatedBy"] == who.a_sub
    assert by_admin["createdBy"] == who.a_sub
    assert by_admin["updatedBy"] == who.admin_sub
    assert by_admin["owner"] == who.a_sub
    actors = {e["kind"]: e["actor"] for e in reversed(events)}  # oldest first, so the last of a kind wins
    assert actors["tenant.created"] == who.a_sub
    assert actors["tenant.updated"] == who.admin_sub


async def test_a_malformed_body_without_a_token_is_refused_as_unauthenticated_first(
    make_settings: Callable[..., Settings],
) -> None:
    suite = SandboxSuite(
        authentik_url="http://authentik.test", stalwart_url="http://stalwart.test", ocis_url="http://ocis.test"
    )
    settings = make_settings(auth_enabled=True, **suite.settings())
    async with api_client(settings, transports=suite.transports()) as (client, _):
        response = await client.post("/tenants", content=b"{not json", headers={"content-type": "application/json"})
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        token = suite.issuer.mint_token(sub="someone", audience=suite.audiences[0])
        authed = await client.post(
            "/tenants",
            content=b"{not json",
            headers={"content-type": "application/json", "authorization": f"Bearer {token}"},
        )
        assert authed.status_code == 422


async def test_with_no_refresh_floor_a_key_rotated_just_now_is_accepted_at_once(make_settings: Settings_) -> None:
    suite = sandbox_suite()
    who_aud = suite.credentials.user_client_id
    async with authed_api(make_settings, suite, oidc_jwks_min_refresh_seconds=0) as (client, _):
        first = suite.issuer.mint_token(sub=suite.plain_user.sub, audience=who_aud)
        assert (await client.get("/tenants", headers=bearer(first))).status_code == 200
        suite.issuer.rotate_keys()
        rotated = suite.issuer.mint_token(sub=suite.plain_user.sub, audience=who_aud)
        assert (await client.get("/tenants", headers=bearer(rotated))).status_code == 200
    async with authed_api(make_settings, suite) as (client, _):  # default floor of 10 s
        assert (await client.get("/tenants", headers=bearer(rotated))).status_code == 200
        suite.issuer.rotate_keys()
        again = suite.issuer.mint_token(sub=suite.plain_user.sub, audience=who_aud)
        assert (await client.get("/tenants", headers=bearer(again))).status_code == 401
