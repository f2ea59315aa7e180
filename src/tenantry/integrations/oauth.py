"""OAuth2 client-credentials access tokens as an ``httpx.Auth``: fetched once, cached, refreshed early.

Errors from the token endpoint::

    OAuthError                      status, error (the OAuth error code), retry_after
    ├── OAuthRejectedError          the endpoint refused the client (invalid_client, invalid_grant, ...):
    │                               retrying will not help until the credentials are fixed
    └── OAuthUnavailableError       connection failure, 5xx, 429, an unreadable answer: worth retrying
        └── OAuthTimeoutError       the endpoint did not answer in time

No message ever carries the client secret or a token.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

# Refresh at the latest after this share of a token's lifetime, so a short-lived token (lifetime shorter
# than the refresh margin) is still reused for a while instead of being fetched for every request.
_MIN_LIFETIME_SHARE = 0.5


class OAuthError(Exception):
    """The token endpoint did not hand out an access token."""

    def __init__(
        self, message: str, *, status: int | None = None, error: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error = error
        self.retry_after = retry_after


class OAuthRejectedError(OAuthError):
    """The token endpoint refused these client credentials or this grant."""


class OAuthUnavailableError(OAuthError):
    """The token endpoint could not be reached or failed on its side."""


class OAuthTimeoutError(OAuthUnavailableError):
    """The token endpoint did not answer in time."""


@dataclass(frozen=True)
class _CachedToken:
    value: str
    refresh_at: float | None  # None: the endpoint gave no lifetime; keep it until a 401 says otherwise


class ClientCredentialsAuth(httpx.Auth):
    """Bearer auth with an access token from an OAuth2 ``client_credentials`` grant.

    The client id and secret are sent in the form body (authentik's ``/application/o/token/`` accepts
    them there). The token is cached until ``expires_in - refresh_margin``; a 401 from the resource
    server refreshes it once and retries the request. Concurrent requests share one fetch.
    Works with ``httpx.AsyncClient`` only.
    """

    # The request may be sent twice (after a 401), so its body must be replayable.
    requires_request_body = True

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str | None,
        http: httpx.AsyncClient,
        refresh_margin: float = 30,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._scope = scope
        self._http = http
        self._refresh_margin = refresh_margin
        self._clock = clock
        self._cached: _CachedToken | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"ClientCredentialsAuth(token_url={self._token_url!r}, client_id={self._client_id!r})"

    async def token(self) -> str:
        """A valid access token, fetched only when none is cached or it is close to expiry."""
        return await self._token(stale=None)

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("ClientCredentialsAuth needs an httpx.AsyncClient")

    async def async_auth_flow(
        self,
        request: httpx.Request,
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self._token(stale=None)
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401:
            return
        # The token may have been revoked or the server's clock may differ from ours: one fresh token,
        # one retry. A second 401 is the resource server's final answer.
        token = await self._token(stale=token)
        request.headers["Authorization"] = f"Bearer {token}"
        yield request

    async def _token(self, *, stale: str | None) -> str:
        async with self._lock:
            cached = self._cached
            if cached is not None and cached.value != stale and not self._due(cached):
                return cached.value
            self._cached = await self._fetch()
            return self._cached.value

    def _due(self, cached: _CachedToken) -> bool:
        return cached.refresh_at is not None and self._clock() >= cached.refresh_at

    async def _fetch(self) -> _CachedToken:
        form = {"grant_type": "client_credentials", "client_id": self._client_id, "client_secret": self._client_secret}
        if self._scope:
            form["scope"] = self._scope
        started = self._clock()
        try:
            response = await self._http.post(self._token_url, data=form, headers={"Accept": "application/json"})
        except httpx.TimeoutException as err:
            raise OAuthTimeoutError(f"the token endpoint {self._token_url} did not answer in time") from err
        except httpx.TransportError as err:
            raise OAuthUnavailableError(
                f"the token endpoint {self._token_url} is unreachable ({type(err).__name__})"
            ) from err
        return self._parse(response, started)

    def _parse(self, response: httpx.Response, started: float) -> _CachedToken:
        status = response.status_code
        body = _json_object(response)
        if status >= 400 or body is None or not isinstance(body.get("access_token"), str):
            raise self._error(response, body)
        lifetime = body.get("expires_in")
        refresh_at: float | None = None
        if isinstance(lifetime, int | float) and not isinstance(lifetime, bool):
            lead = max(float(lifetime) - self._refresh_margin, float(lifetime) * _MIN_LIFETIME_SHARE)
            refresh_at = started + lead
        return _CachedToken(value=body["access_token"], refresh_at=refresh_at)

    def _error(self, response: httpx.Response, body: dict[str, Any] | None) -> OAuthError:
        status = response.status_code
        code = body.get("error") if body is not None else None
        code = code if isinstance(code, str) else None
        description = body.get("error_description") if body is not None else None
        detail = f": {self._scrub(description)}" if isinstance(description, str) and description else ""
        where = f"the token endpoint {self._token_url}"
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), now=self._clock())
            return OAuthUnavailableError(
                f"{where} failed with HTTP {status}{detail}", status=status, error=code, retry_after=retry_after
            )
        if status < 400:
            return OAuthUnavailableError(f"{where} answered HTTP {status} without an access token", status=status)
        if code == "invalid_client" or status == 401:
            message = f"{where} rejected the client credentials of client {self._client_id!r} ({code or status})"
        else:
            message = f"{where} refused the client_credentials grant ({code or f'HTTP {status}'})"
        return OAuthRejectedError(message + detail, status=status, error=code)

    def _scrub(self, text: str) -> str:
        # An endpoint that echoes the request back must not get the secret into our logs.
        return text.replace(self._client_secret, "***")[:300] if self._client_secret else text[:300]


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent or bad.

    ``now`` is the current Unix time (the clock by default), for the date form. Repeated in each upstream
    package on purpose, so that the package depends on nothing else in the project.
    """
    text = (value or "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        # RFC 9110 dates are always GMT; a zone-less parse result means exactly that.
        when = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds) if math.isfinite(seconds) else None
