"""The cache of verified tokens (no RSA for a repeat, exp honoured, bounded) and the introspection answers'."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
import structlog
from pydantic import SecretStr
from starlette.applications import Starlette

from tenantry.auth.introspection import IntrospectionUnavailableError, Introspector
from tenantry.auth.token_lru import TokenLru, token_digest
from tenantry.auth.tokens import InvalidTokenError, TokenValidator, TrustedIssuers, VerifiedToken
from tenantry.sandbox.oidc import OidcIssuer
from tenantry.sandbox.oidc_models import DemoUser, OidcClient
from tests.support.clock import ManualClock

START = 1_800_000_000.0
API, SECRET = "tenantry-api", "api-client-secret"
ALICE = DemoUser(username="alice", password="pw", groups=["staff"])


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def issuer(clock: ManualClock) -> OidcIssuer:
    return OidcIssuer(
        public_url="http://idp.test",
        clients=[OidcClient(client_id=API, client_secret=SECRET)],
        users=[ALICE],
        clock=clock,
    )


@pytest.fixture
async def http(issuer: OidcIssuer) -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=issuer.routes())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://idp.test") as client:
        yield client


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts RSA signature checks (PyJWT's RSAAlgorithm.verify, the expensive step)."""
    calls: list[int] = []
    real = jwt.algorithms.RSAAlgorithm.verify

    def counting(self: Any, msg: bytes, key: Any, sig: bytes) -> bool:
        calls.append(1)
        return bool(real(self, msg, key, sig))

    monkeypatch.setattr(jwt.algorithms.RSAAlgorithm, "verify", counting)
    return calls


def validator(
    http: httpx.AsyncClient, clock: ManualClock, *, size: int = 16, introspector: Introspector | None = None
) -> TokenValidator:
    return TokenValidator(
        issuer="http://idp.test/application/o/tenantry-api/",
        audience=API,
        http=http,
        clock=clock,
        leeway=30,
        verified=TokenLru[VerifiedToken](size),
        introspector=introspector,
    )


def token(issuer: OidcIssuer, *, expires_in: float = 300, sub: str | None = None) -> str:
    return issuer.mint_token(sub=sub or ALICE.sub, audience=API, expires_in=expires_in)


# -- verified tokens ------------------------------------------------------------------------------------------


async def test_a_repeated_token_costs_no_second_signature_check(
    http: httpx.AsyncClient, issuer: OidcIssuer, clock: ManualClock, verifications: list[int]
) -> None:
    check = validator(http, clock)
    bearer = token(issuer)

    first = await check.validate(bearer)
    second = await check.validate(bearer)

    assert first.sub == second.sub == ALICE.sub
    assert second.groups == frozenset({"staff"})
    assert len(verifications) == 1


async def test_a_cached_token_past_its_exp_is_refused(
    http: httpx.AsyncClient, issuer: OidcIssuer, clock: ManualClock, verifications: list[int]
) -> None:
    check = validator(http, clock)
    bearer = token(issuer, expires_in=60)
    await check.validate(bearer)
    clock.advance(60 + 29)  # within the leeway
    assert (await check.validate(bearer)).sub == ALICE.sub

    clock.advance(2)
    with pytest.raises(InvalidTokenError) as caught:
        await check.validate(bearer)

    assert caught.value.reason == "expired"
    assert len(verifications) == 1


async def test_the_cache_is_bounded_and_evicts_the_least_recently_used(
    http: httpx.AsyncClient, issuer: OidcIssuer, clock: ManualClock, verifications: list[int]
) -> None:
    check = validator(http, clock, size=2)
    first, second, third = (token(issuer, sub=f"{i:064x}") for i in range(3))
    await check.validate(first)
    await check.validate(second)
    await check.validate(first)  # first is now the most recently used
    await check.validate(third)  # evicts second
    assert len(verifications) == 3

    await check.validate(first)
    assert len(verifications) == 3
    await check.validate(second)
    assert len(verifications) == 4


async def test_a_cached_token_whose_key_was_retired_is_refused(
    http: httpx.AsyncClient, issuer: OidcIssuer, clock: ManualClock
) -> None:
    check = validator(http, clock)
    bearer = token(issuer, expires_in=7200)
    await check.validate(bearer)
    issuer.rotate_keys()
    issuer.retire_previous_keys()
    clock.advance(3600)  # the JWKS cache lifetime: the next use fetches the keys again

    with pytest.raises(InvalidTokenError) as caught:
        await check.validate(bearer)

    assert caught.value.reason == "unknown key"


async def test_trusted_issuers_share_one_bounded_cache(
    http: httpx.AsyncClient, issuer: OidcIssuer, clock: ManualClock, verifications: list[int]
) -> None:
    issuers = TrustedIssuers({issuer.issuer_for(API): [API]}, http=http, clock=clock, token_cache_size=1)
    first, second = token(issuer), token(issuer, sub="f" * 64)

    for bearer in (first, first, second, first):
        await issuers.validate(bearer)

    assert len(verifications) == 3  # the repeat was free; second evicted first


async def test_trusted_issuers_take_a_repeated_token_to_the_issuer_that_verified_it_without_reading_it_again(
    http: httpx.AsyncClient, issuer: OidcIssuer, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    issuers = TrustedIssuers({issuer.issuer_for(API): [API]}, http=http, clock=clock)
    bearer = token(issuer, expires_in=60)
    first = await issuers.validate(bearer)
    decoded: list[int] = []
    real = jwt.decode

    def counting(*args: Any, **kwargs: Any) -> Any:
        decoded.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)

    again = await issuers.validate(bearer)
    clock.advance(60 + 31)  # past exp and the leeway: the issuer's validator refuses it, cached or not
    with pytest.raises(InvalidTokenError) as caught:
        await issuers.validate(bearer)

    assert again == first
    assert decoded == []
    assert caught.value.reason == "expired"
    assert await issuers.validate(token(issuer)) == first  # a new token is read and verified as before
    assert decoded


def test_the_cache_keys_on_a_digest_never_the_token() -> None:
    lru: TokenLru[str] = TokenLru(1)
    lru.put(token_digest("eyJ.secret.token"), "value")

    assert lru.get(token_digest("eyJ.secret.token")) == "value"
    assert all("secret" not in key for key in lru._entries)
    assert TokenLru[str](0).get(token_digest("x")) is None


# -- introspection --------------------------------------------------------------------------------------------


def introspector(http: httpx.AsyncClient, clock: ManualClock, **options: Any) -> Introspector:
    return Introspector({API: SecretStr(SECRET)}, http, clock=clock, **options)


async def test_a_cached_token_is_still_checked_for_revocation(
    http: httpx.AsyncClient, issuer: OidcIssuer, clock: ManualClock
) -> None:
    verified: TokenLru[VerifiedToken] = TokenLru(16)
    check = TokenValidator(
        issuer=issuer.issuer_for(API),
        audience=API,
        http=http,
        clock=clock,
        verified=verified,
        introspector=introspector(http, clock, cache_seconds=0),
    )
    bearer = token(issuer)
    await check.validate(bearer)
    assert verified.get(token_digest(bearer)) is not None  # the next use skips the signature
    client = issuer.client(API)
    assert client is not None
    issuer.revoke(client, bearer)

    with pytest.raises(InvalidTokenError) as caught:
        await check.validate(bearer)

    assert caught.value.reason == "the token is no longer active (revoked, or its session ended)"


async def test_an_active_answer_is_kept_for_the_cache_time_and_never_past_exp(
    http: httpx.AsyncClient, issuer: OidcIssuer, clock: ManualClock
) -> None:
    asked: list[str] = []
    http.event_hooks["request"].append(lambda request: _record(asked, request))
    ask = introspector(http, clock, cache_seconds=5)
    endpoint = "http://idp.test/application/o/introspect/"
    bearer = token(issuer, expires_in=3)

    assert await ask.active(bearer, endpoint=endpoint, client_id=API, exp=START + 3)
    clock.advance(2)
    assert await ask.active(bearer, endpoint=endpoint, client_id=API, exp=START + 3)
    assert len(asked) == 1
    clock.advance(2)  # past exp, well within the 5 s
    assert not await ask.active(bearer, endpoint=endpoint, client_id=API, exp=START + 3)
    assert len(asked) == 2


async def _record(asked: list[str], request: httpx.Request) -> None:
    asked.append(request.url.path)


@pytest.mark.parametrize(
    ("answer", "cause"),
    [
        (httpx.Response(401, json={"error": "invalid_client"}), "refused the client credentials"),
        (httpx.Response(503), "HTTP 503"),
        (httpx.Response(200, text="<html>"), "not JSON"),
        (httpx.Response(200, json={"active": "yes"}), "no boolean 'active'"),
        (httpx.Response(200, json=["active"]), "no boolean 'active'"),
    ],
)
async def test_no_trustworthy_answer_is_unavailable_and_nothing_logged_holds_a_secret(
    clock: ManualClock, answer: httpx.Response, cause: str
) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda _: answer)) as http:
        ask = introspector(http, clock)
        with structlog.testing.capture_logs() as logs, pytest.raises(IntrospectionUnavailableError) as caught:
            await ask.active("eyJ.the.token", endpoint="http://idp.test/introspect/", client_id=API, exp=START + 60)

    assert cause in str(caught.value)
    assert SECRET not in repr(logs) + str(caught.value) + repr(ask)
    assert "eyJ.the.token" not in repr(logs) + str(caught.value)


async def test_a_client_without_credentials_is_unavailable_not_inactive(clock: ManualClock) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda _: httpx.Response(200))) as http:
        with pytest.raises(IntrospectionUnavailableError, match="no introspection credentials for client other"):
            await introspector(http, clock).active("t", endpoint="http://idp.test/i/", client_id="other", exp=START + 9)
