"""CLI token acquisition: discovery, machine logins, device login, refresh, and the token cache (token_cache.py)."""

from __future__ import annotations

import base64
import stat
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from tenantry.auth.login import (
    CLI_SCOPE,
    DEVICE_CODE_GRANT,
    MACHINE_SCOPE,
    DeviceLogin,
    DeviceLoginDeniedError,
    DeviceLoginExpiredError,
    LoginError,
    LoginUnavailableError,
    ProviderMetadata,
    TokenSet,
    app_password_secret,
    app_password_token,
    client_credentials_token,
    discover,
    poll_device_login,
    refresh,
    start_device_login,
)
from tenantry.auth.token_cache import TokenCache
from tests.support.clock import ManualClock

ISSUER = "https://auth.example.test/application/o/tenantry/"
TOKEN_URL = "https://auth.example.test/application/o/token/"
DEVICE_URL = "https://auth.example.test/application/o/device/"
METADATA = ProviderMetadata(
    issuer=ISSUER,
    token_endpoint=TOKEN_URL,
    device_authorization_endpoint=DEVICE_URL,
    authorization_endpoint="https://auth.example.test/application/o/authorize/",
)
START = 1_800_000_000.0

Handler = Callable[[httpx.Request], httpx.Response]


class Sleeper:
    """Records requested sleeps and moves the clock instead of waiting."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.clock.now += seconds


class TokenEndpoint:
    """A token endpoint answering queued responses in order and keeping the forms it received."""

    def __init__(self, *responses: httpx.Response) -> None:
        self.responses = list(responses)
        self.forms: list[dict[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.forms.append({k: v[0] for k, v in parse_qs(request.content.decode()).items()})
        return self.responses.pop(0)


def oauth_error(code: str, status: int = 400) -> httpx.Response:
    return httpx.Response(status, json={"error": code})


def tokens_response(
    access: str = "access-1", refresh_token: str | None = None, expires_in: int = 600
) -> httpx.Response:
    body: dict[str, Any] = {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "scope": "openid goauthentik.io/api",
    }
    if refresh_token is not None:
        body["refresh_token"] = refresh_token
    return httpx.Response(200, json=body)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


def client_for(handler: Handler) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


@pytest.fixture
async def discovery_http() -> AsyncIterator[httpx.AsyncClient]:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/application/o/tenantry/.well-known/openid-configuration"
        return httpx.Response(
            200,
            json={
                "issuer": ISSUER,
                "token_endpoint": TOKEN_URL,
                "device_authorization_endpoint": DEVICE_URL,
                "authorization_endpoint": METADATA.authorization_endpoint,
                "jwks_uri": f"{ISSUER}jwks/",
            },
        )

    async with client_for(handler) as client:
        yield client


async def test_discover_reads_the_endpoints(discovery_http: httpx.AsyncClient) -> None:
    assert await discover(ISSUER, discovery_http) == METADATA


async def test_discover_refuses_a_document_naming_another_issuer(discovery_http: httpx.AsyncClient) -> None:
    with pytest.raises(LoginError, match="different issuer"):
        await discover("https://auth.example.test/application/o/tenantry", discovery_http)


async def test_client_credentials_posts_the_grant_and_returns_an_expiring_token(clock: ManualClock) -> None:
    endpoint = TokenEndpoint(tokens_response("machine-token", expires_in=3600))
    async with client_for(endpoint) as http:
        tokens = await client_credentials_token(METADATA, "cli", "s3cret", "goauthentik.io/api", http, clock=clock)

    assert endpoint.forms == [
        {
            "grant_type": "client_credentials",
            "client_id": "cli",
            "client_secret": "s3cret",
            "scope": "goauthentik.io/api",
        }
    ]
    assert tokens.access_token == "machine-token"
    assert tokens.refresh_token is None
    assert tokens.expires_at == START + 3600
    assert "machine-token" not in repr(tokens)


async def test_client_credentials_refusal_names_the_error_but_not_the_secret(clock: ManualClock) -> None:
    async with client_for(TokenEndpoint(oauth_error("invalid_client", 401))) as http:
        with pytest.raises(LoginError) as caught:
            await client_credentials_token(METADATA, "cli", "s3cret", "openid", http, clock=clock)

    assert caught.value.error == "invalid_client"
    assert "s3cret" not in str(caught.value)


async def test_a_service_account_logs_in_with_username_and_app_password(clock: ManualClock) -> None:
    endpoint = TokenEndpoint(tokens_response("svc-token", expires_in=3600), oauth_error("invalid_grant"))
    async with client_for(endpoint) as http:
        tokens = await app_password_token(METADATA, "machines", "svc", "app-pw", MACHINE_SCOPE, http, clock=clock)
        with pytest.raises(LoginError) as caught:
            await app_password_token(METADATA, "machines", "svc", "wrong-pw", MACHINE_SCOPE, http, clock=clock)

    assert endpoint.forms[0] == {
        "grant_type": "client_credentials",
        "client_id": "machines",
        "username": "svc",
        "password": "app-pw",
        "scope": "openid profile email",
    }
    assert tokens.access_token == "svc-token"
    assert caught.value.error == "invalid_grant"
    assert "wrong-pw" not in str(caught.value)


def test_the_app_password_secret_is_base64_of_username_colon_app_password() -> None:
    assert app_password_secret("svc", "p:w") == base64.b64encode(b"svc:p:w").decode()


def test_every_scope_tenantry_asks_for_holds_openid_and_profile() -> None:
    # authentik's profile scope mapping is what puts the groups claim in a token.
    for scope in (MACHINE_SCOPE, CLI_SCOPE):
        assert scope.split()[:2] == ["openid", "profile"]
    assert "offline_access" in CLI_SCOPE.split()  # authentik refreshes only with it


async def test_unreachable_token_endpoint_raises_login_unavailable(clock: ManualClock) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with client_for(handler) as http:
        with pytest.raises(LoginUnavailableError):
            await client_credentials_token(METADATA, "cli", "s3cret", "openid", http, clock=clock)


async def test_start_device_login_returns_the_code_to_show(clock: ManualClock) -> None:
    endpoint = TokenEndpoint(
        httpx.Response(
            200,
            json={
                "device_code": "dev-123",
                "user_code": "ABCD-EFGH",
                "verification_uri": "https://auth.example.test/device",
                "verification_uri_complete": "https://auth.example.test/device?code=ABCD-EFGH",
                "expires_in": 600,
                "interval": 5,
            },
        )
    )
    async with client_for(endpoint) as http:
        login = await start_device_login(METADATA, "cli", "openid profile", http, clock=clock)

    assert endpoint.forms == [{"client_id": "cli", "scope": "openid profile"}]
    assert (login.user_code, login.interval, login.expires_at) == ("ABCD-EFGH", 5.0, START + 600)
    assert login.verification_uri_complete == "https://auth.example.test/device?code=ABCD-EFGH"
    assert "dev-123" not in repr(login)


async def test_start_device_login_needs_a_device_endpoint(clock: ManualClock) -> None:
    metadata = ProviderMetadata(issuer=ISSUER, token_endpoint=TOKEN_URL)
    async with client_for(TokenEndpoint()) as http:
        with pytest.raises(LoginError, match="device login"):
            await start_device_login(metadata, "cli", "openid", http, clock=clock)


def device_login(clock: ManualClock, expires_in: float = 600) -> DeviceLogin:
    return DeviceLogin(
        device_code="dev-123",
        user_code="ABCD-EFGH",
        verification_uri="https://x/device",
        verification_uri_complete=None,
        interval=5,
        expires_at=clock.now + expires_in,
    )


async def test_device_poll_waits_through_pending_and_slow_down_then_returns_tokens(clock: ManualClock) -> None:
    endpoint = TokenEndpoint(
        oauth_error("authorization_pending"),
        oauth_error("slow_down"),
        oauth_error("authorization_pending"),
        tokens_response("person-token", "refresh-1"),
    )
    sleep = Sleeper(clock)
    async with client_for(endpoint) as http:
        tokens = await poll_device_login(METADATA, "cli", device_login(clock), http, sleep=sleep, clock=clock)

    assert sleep.calls == [5, 5, 10, 10]
    assert (tokens.access_token, tokens.refresh_token) == ("person-token", "refresh-1")
    assert endpoint.forms[0] == {"grant_type": DEVICE_CODE_GRANT, "device_code": "dev-123", "client_id": "cli"}


async def test_device_poll_backs_off_when_the_issuer_fails(clock: ManualClock) -> None:
    endpoint = TokenEndpoint(httpx.Response(503), tokens_response())
    sleep = Sleeper(clock)
    async with client_for(endpoint) as http:
        await poll_device_login(METADATA, "cli", device_login(clock), http, sleep=sleep, clock=clock)

    assert sleep.calls == [5, 10]


async def test_device_poll_raises_expired_when_the_issuer_says_so(clock: ManualClock) -> None:
    async with client_for(TokenEndpoint(oauth_error("expired_token"))) as http:
        with pytest.raises(DeviceLoginExpiredError):
            await poll_device_login(METADATA, "cli", device_login(clock), http, sleep=Sleeper(clock), clock=clock)


async def test_device_poll_stops_at_the_local_expiry_without_asking_again(clock: ManualClock) -> None:
    endpoint = TokenEndpoint(*[oauth_error("authorization_pending")] * 10)
    async with client_for(endpoint) as http:
        with pytest.raises(DeviceLoginExpiredError):
            await poll_device_login(
                METADATA, "cli", device_login(clock, expires_in=12), http, sleep=Sleeper(clock), clock=clock
            )

    assert len(endpoint.forms) == 2


async def test_device_poll_raises_denied_when_the_person_declines(clock: ManualClock) -> None:
    async with client_for(TokenEndpoint(oauth_error("access_denied"))) as http:
        with pytest.raises(DeviceLoginDeniedError):
            await poll_device_login(METADATA, "cli", device_login(clock), http, sleep=Sleeper(clock), clock=clock)


async def test_refresh_keeps_the_old_refresh_token_when_none_is_returned(clock: ManualClock) -> None:
    endpoint = TokenEndpoint(tokens_response("access-2"))
    async with client_for(endpoint) as http:
        tokens = await refresh(METADATA, "cli", "refresh-1", http, clock=clock)

    assert endpoint.forms == [{"grant_type": "refresh_token", "client_id": "cli", "refresh_token": "refresh-1"}]
    assert (tokens.access_token, tokens.refresh_token) == ("access-2", "refresh-1")


def test_token_cache_file_is_private_to_its_owner(tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "config" / "tenantry" / "tokens.json"
    cache = TokenCache(path, clock=clock)

    cache.put(ISSUER, "cli", TokenSet(access_token="a", expires_at=START + 600))

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    reread = TokenCache(path, clock=clock).get(ISSUER, "cli")
    assert reread == TokenSet(access_token="a", expires_at=START + 600)


def test_token_cache_keeps_entries_per_issuer_and_client(tmp_path: Path, clock: ManualClock) -> None:
    cache = TokenCache(tmp_path / "tokens.json", clock=clock)
    cache.put(ISSUER, "cli", TokenSet(access_token="a", expires_at=START + 600))
    cache.put(ISSUER, "robot", TokenSet(access_token="b", expires_at=START + 600))
    cache.put("https://other.example.test/", "cli", TokenSet(access_token="c", expires_at=START + 600))
    cache.put(ISSUER, "cli", TokenSet(access_token="a2", expires_at=START + 900))

    keys = [(ISSUER, "cli"), (ISSUER, "robot"), ("https://other.example.test/", "cli")]
    found = [cache.get(issuer, client_id) for issuer, client_id in keys]

    assert [t.access_token if t else None for t in found] == ["a2", "b", "c"]


async def test_token_cache_reuses_a_still_valid_token_without_calling_the_issuer(
    tmp_path: Path, clock: ManualClock
) -> None:
    cache = TokenCache(tmp_path / "tokens.json", clock=clock)
    cache.put(ISSUER, "cli", TokenSet(access_token="cached", expires_at=START + 31, refresh_token="r"))
    endpoint = TokenEndpoint()
    async with client_for(endpoint) as http:
        assert await cache.access_token(METADATA, "cli", http) == "cached"

    assert endpoint.forms == []


async def test_token_cache_refreshes_a_token_inside_the_margin_and_stores_the_result(
    tmp_path: Path, clock: ManualClock
) -> None:
    cache = TokenCache(tmp_path / "tokens.json", clock=clock)
    cache.put(ISSUER, "cli", TokenSet(access_token="old", expires_at=START + 29, refresh_token="refresh-1"))
    endpoint = TokenEndpoint(tokens_response("fresh", "refresh-2", expires_in=600))
    async with client_for(endpoint) as http:
        assert await cache.access_token(METADATA, "cli", http) == "fresh"

    assert endpoint.forms[0]["refresh_token"] == "refresh-1"
    stored = cache.get(ISSUER, "cli")
    assert stored is not None
    assert (stored.access_token, stored.refresh_token) == ("fresh", "refresh-2")
    assert stored.expires_at == START + 600


async def test_token_cache_forgets_tokens_whose_refresh_is_refused(tmp_path: Path, clock: ManualClock) -> None:
    cache = TokenCache(tmp_path / "tokens.json", clock=clock)
    cache.put(ISSUER, "cli", TokenSet(access_token="old", expires_at=START - 1, refresh_token="revoked"))
    async with client_for(TokenEndpoint(oauth_error("invalid_grant"))) as http:
        assert await cache.access_token(METADATA, "cli", http) is None

    assert cache.get(ISSUER, "cli") is None


async def test_token_cache_keeps_tokens_when_the_issuer_is_unreachable(tmp_path: Path, clock: ManualClock) -> None:
    cache = TokenCache(tmp_path / "tokens.json", clock=clock)
    cache.put(ISSUER, "cli", TokenSet(access_token="old", expires_at=START - 1, refresh_token="refresh-1"))
    async with client_for(TokenEndpoint(httpx.Response(502))) as http:
        with pytest.raises(LoginUnavailableError):
            await cache.access_token(METADATA, "cli", http)

    assert cache.get(ISSUER, "cli") is not None


async def test_token_cache_without_refresh_token_returns_none_once_expired(tmp_path: Path, clock: ManualClock) -> None:
    cache = TokenCache(tmp_path / "tokens.json", clock=clock)
    cache.put(ISSUER, "cli", TokenSet(access_token="old", expires_at=START + 10))
    async with client_for(TokenEndpoint()) as http:
        assert await cache.access_token(METADATA, "cli", http) is None


def test_unreadable_token_cache_counts_as_empty(tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "tokens.json"
    path.write_text("{not json")

    assert TokenCache(path, clock=clock).get(ISSUER, "cli") is None
