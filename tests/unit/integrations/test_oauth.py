"""Client-credentials auth: token fetch, caching, early refresh, refresh on 401, shared fetches, errors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from urllib.parse import parse_qs

import httpx
import pytest

from tenantry.integrations.oauth import (
    ClientCredentialsAuth,
    OAuthRejectedError,
    OAuthTimeoutError,
    OAuthUnavailableError,
)
from tests.support.clock import ManualClock

TOKEN_URL = "https://idp.test/application/o/token/"
SECRET = "s3cr3t-value"


class TokenServer:
    """A token endpoint plus a resource server that accepts only the latest token (unless told otherwise)."""

    def __init__(self, *, expires_in: float | None = 300, delay: float = 0.0) -> None:
        self.expires_in = expires_in
        self.delay = delay
        self.forms: list[dict[str, list[str]]] = []
        self.resource_auth: list[str | None] = []
        self.token_answer: Callable[[int], httpx.Response] | None = None
        self.reject_tokens: set[str] = set()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/application/o/token/":
            self.forms.append(parse_qs(request.content.decode()))
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.token_answer is not None:
                return self.token_answer(len(self.forms))
            body: dict[str, object] = {"access_token": f"tok-{len(self.forms)}", "token_type": "Bearer"}
            if self.expires_in is not None:
                body["expires_in"] = self.expires_in
            return httpx.Response(200, json=body)
        header = request.headers.get("Authorization")
        self.resource_auth.append(header)
        token = (header or "").removeprefix("Bearer ")
        if token in self.reject_tokens:
            return httpx.Response(401)
        return httpx.Response(200, json={"ok": True, "body": request.content.decode()})


def make(
    server: TokenServer, clock: ManualClock | None = None, *, scope: str | None = "openid profile", margin: float = 30
) -> tuple[httpx.AsyncClient, ClientCredentialsAuth]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(server))
    auth = ClientCredentialsAuth(
        TOKEN_URL, "client-1", SECRET, scope, http, refresh_margin=margin, clock=clock or ManualClock()
    )
    return http, auth


async def test_token_request_is_a_client_credentials_form_post_with_credentials_in_the_body() -> None:
    server = TokenServer()
    http, auth = make(server)
    async with http:
        assert await auth.token() == "tok-1"
    assert server.forms == [
        {
            "grant_type": ["client_credentials"],
            "client_id": ["client-1"],
            "client_secret": [SECRET],
            "scope": ["openid profile"],
        }
    ]


async def test_no_scope_is_sent_when_none_is_configured() -> None:
    server = TokenServer()
    http, auth = make(server, scope=None)
    async with http:
        await auth.token()
    assert "scope" not in server.forms[0]


async def test_requests_carry_the_bearer_token_and_reuse_the_cached_one() -> None:
    server = TokenServer()
    http, auth = make(server)
    async with http:
        for _ in range(3):
            response = await http.get("https://files.test/graph/v1.0/drives", auth=auth)
            assert response.status_code == 200
    assert server.resource_auth == ["Bearer tok-1"] * 3
    assert len(server.forms) == 1


async def test_token_is_refreshed_once_the_refresh_margin_before_expiry_is_reached() -> None:
    clock = ManualClock()
    server = TokenServer(expires_in=300)
    http, auth = make(server, clock, margin=30)
    async with http:
        assert await auth.token() == "tok-1"
        clock.now += 269
        assert await auth.token() == "tok-1"
        clock.now += 1  # 270 s = expires_in - margin
        assert await auth.token() == "tok-2"
    assert len(server.forms) == 2


async def test_short_lived_token_is_still_reused_for_half_its_lifetime() -> None:
    clock = ManualClock()
    server = TokenServer(expires_in=20)
    http, auth = make(server, clock, margin=30)
    async with http:
        await auth.token()
        clock.now += 9
        assert await auth.token() == "tok-1"
        clock.now += 1
        assert await auth.token() == "tok-2"


async def test_token_without_lifetime_is_kept_until_a_401() -> None:
    clock = ManualClock()
    server = TokenServer(expires_in=None)
    http, auth = make(server, clock)
    async with http:
        await auth.token()
        clock.now += 10_000
        assert await auth.token() == "tok-1"
        server.reject_tokens.add("tok-1")
        response = await http.get("https://files.test/x", auth=auth)
    assert response.status_code == 200
    assert server.resource_auth == ["Bearer tok-1", "Bearer tok-2"]


async def test_a_401_refreshes_the_token_once_and_retries_the_request_with_its_body() -> None:
    server = TokenServer()
    http, auth = make(server)
    async with http:
        await auth.token()
        server.reject_tokens.add("tok-1")
        response = await http.post("https://files.test/graph/v1.0/drives", json={"name": "Mars"}, auth=auth)
    assert response.status_code == 200
    assert response.json()["body"] == '{"name":"Mars"}'
    assert server.resource_auth == ["Bearer tok-1", "Bearer tok-2"]


async def test_a_second_401_is_returned_without_another_refresh() -> None:
    server = TokenServer()
    http, auth = make(server)
    async with http:
        server.reject_tokens.update({"tok-1", "tok-2", "tok-3"})
        response = await http.get("https://files.test/x", auth=auth)
    assert response.status_code == 401
    assert len(server.forms) == 2
    assert len(server.resource_auth) == 2


async def test_concurrent_requests_share_one_token_fetch() -> None:
    server = TokenServer(delay=0.05)
    http, auth = make(server)
    async with http:
        responses = await asyncio.gather(*(http.get("https://files.test/x", auth=auth) for _ in range(10)))
    assert [r.status_code for r in responses] == [200] * 10
    assert len(server.forms) == 1


async def test_concurrent_401s_on_the_same_token_fetch_one_new_token() -> None:
    server = TokenServer(delay=0.01)
    http, auth = make(server)
    async with http:
        await auth.token()
        server.reject_tokens.add("tok-1")
        responses = await asyncio.gather(*(http.get("https://files.test/x", auth=auth) for _ in range(5)))
    assert [r.status_code for r in responses] == [200] * 5
    assert len(server.forms) == 2


async def test_invalid_client_raises_a_rejected_error_that_never_shows_the_secret() -> None:
    server = TokenServer()
    server.token_answer = lambda _n: httpx.Response(
        401, json={"error": "invalid_client", "error_description": f"Client authentication failed {SECRET}"}
    )
    http, auth = make(server)
    async with http:
        with pytest.raises(OAuthRejectedError) as info:
            await auth.token()
    assert info.value.error == "invalid_client"
    assert info.value.status == 401
    assert "invalid_client" in str(info.value)
    assert "client-1" in str(info.value)
    assert SECRET not in str(info.value)


async def test_invalid_grant_is_a_rejected_error() -> None:
    server = TokenServer()
    server.token_answer = lambda _n: httpx.Response(400, json={"error": "invalid_grant"})
    http, auth = make(server)
    async with http:
        with pytest.raises(OAuthRejectedError, match="invalid_grant"):
            await auth.token()


async def test_server_error_from_the_token_endpoint_is_unavailable_with_retry_after() -> None:
    server = TokenServer()
    server.token_answer = lambda _n: httpx.Response(503, text="down", headers={"Retry-After": "7"})
    http, auth = make(server)
    async with http:
        with pytest.raises(OAuthUnavailableError) as info:
            await auth.token()
    assert not isinstance(info.value, OAuthRejectedError)
    assert info.value.status == 503
    assert info.value.retry_after == 7.0


async def test_unreachable_token_endpoint_is_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        auth = ClientCredentialsAuth(TOKEN_URL, "client-1", SECRET, None, http)
        with pytest.raises(OAuthUnavailableError) as info:
            await auth.token()
    assert info.value.status is None
    assert SECRET not in str(info.value)


async def test_token_endpoint_timeout_is_a_timeout_error() -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(hang)) as http:
        auth = ClientCredentialsAuth(TOKEN_URL, "client-1", SECRET, None, http)
        with pytest.raises(OAuthTimeoutError):
            await auth.token()


async def test_answer_without_access_token_is_unavailable_not_cached() -> None:
    server = TokenServer()
    server.token_answer = lambda n: (
        httpx.Response(200, text="<html>")
        if n == 1
        else httpx.Response(200, json={"access_token": "late", "expires_in": 60})
    )
    http, auth = make(server)
    async with http:
        with pytest.raises(OAuthUnavailableError):
            await auth.token()
        assert await auth.token() == "late"


def test_auth_refuses_a_sync_client() -> None:
    auth = ClientCredentialsAuth(TOKEN_URL, "client-1", SECRET, None, httpx.AsyncClient())
    with (
        httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200))) as client,
        pytest.raises(RuntimeError, match="AsyncClient"),
    ):
        client.get("https://files.test/x", auth=auth)


def test_repr_does_not_show_the_secret() -> None:
    auth = ClientCredentialsAuth(TOKEN_URL, "client-1", SECRET, None, httpx.AsyncClient())
    assert SECRET not in repr(auth)
