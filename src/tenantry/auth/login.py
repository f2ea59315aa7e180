"""Access tokens for the CLI: discovery, machine logins, device login (RFC 8628), refresh.

LoginError                  the issuer refused; ``error`` is the OAuth error code when it sent one
├── LoginUnavailableError   the issuer could not be reached or answered with a 5xx
├── DeviceLoginExpiredError the device code expired before the person approved it
└── DeviceLoginDeniedError  the person declined the device login
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# Every client Tenantry configures asks for "profile": authentik's default profile scope mapping is what puts
# the groups claim in a token. Without it there is no groups claim and a platform admin is an ordinary user.
MACHINE_SCOPE = "openid profile email"
# authentik issues a refresh token only when offline_access was granted, and refreshes only while it is.
CLI_SCOPE = "openid profile email offline_access"
# A cached token this close to its expiry is not handed out: it could lapse on its way to the API.
EXPIRY_MARGIN = 30.0
# Used when a token response omits expires_in (RFC 6749 only recommends it); short, to stay safe.
_DEFAULT_EXPIRES_IN = 300.0
_SLOW_DOWN_STEP = 5.0
_MAX_POLL_INTERVAL = 60.0

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class LoginError(Exception):
    """The issuer refused a token request. The message never contains a secret or a token."""

    def __init__(self, message: str, *, error: str | None = None) -> None:
        super().__init__(message)
        self.error = error


class LoginUnavailableError(LoginError):
    """The issuer could not be reached or failed (5xx); trying again later may work."""


class DeviceLoginExpiredError(LoginError):
    """The device code expired before the login was approved; start a new one."""


class DeviceLoginDeniedError(LoginError):
    """The person declined the login on the verification page."""


@dataclass(frozen=True)
class ProviderMetadata:
    """The endpoints of an OIDC provider, from its discovery document."""

    issuer: str
    token_endpoint: str
    device_authorization_endpoint: str | None = None
    authorization_endpoint: str | None = None


@dataclass(frozen=True)
class TokenSet:
    """Tokens from one grant. Tokens are left out of ``repr`` so they cannot end up in a log line."""

    access_token: str = field(repr=False)
    expires_at: float
    refresh_token: str | None = field(default=None, repr=False)
    scope: str | None = None

    def usable(self, now: float, margin: float = EXPIRY_MARGIN) -> bool:
        """Whether the access token will still be valid ``margin`` seconds from ``now``."""
        return self.expires_at - margin > now


@dataclass(frozen=True)
class DeviceLogin:
    """A started device login: show ``user_code`` and ``verification_uri`` to the person, then poll."""

    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    interval: float
    expires_at: float


async def discover(issuer: str, http: httpx.AsyncClient) -> ProviderMetadata:
    """Read ``<issuer>.well-known/openid-configuration``; its ``issuer`` must be the one asked for."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    document = await _json_response(http, "GET", url)
    if document.get("issuer") != issuer:
        raise LoginError("the discovery document names a different issuer")
    token_endpoint = document.get("token_endpoint")
    if not isinstance(token_endpoint, str) or not token_endpoint:
        raise LoginError("the discovery document has no token_endpoint")
    return ProviderMetadata(
        issuer=issuer,
        token_endpoint=token_endpoint,
        device_authorization_endpoint=optional_str(document.get("device_authorization_endpoint")),
        authorization_endpoint=optional_str(document.get("authorization_endpoint")),
    )


async def client_credentials_token(
    metadata: ProviderMetadata,
    client_id: str,
    client_secret: str,
    scope: str,
    http: httpx.AsyncClient,
    *,
    clock: Clock = time.time,
) -> TokenSet:
    """A machine's access token from the client_credentials grant (no refresh token is issued).

    With the provider's own secret, authentik acts as the account it creates for that provider,
    ``ak-<provider name>-client_credentials``, which is in no group; with ``base64(username:app-password)``
    as the secret (see :func:`app_password_secret`) it acts as that service account, with its groups.
    """
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret, "scope": scope}
    return _token_set(await _json_response(http, "POST", metadata.token_endpoint, data=form), clock())


async def app_password_token(
    metadata: ProviderMetadata,
    client_id: str,
    username: str,
    app_password: str,
    scope: str,
    http: httpx.AsyncClient,
    *,
    clock: Clock = time.time,
) -> TokenSet:
    """A service account's access token: authentik's client_credentials grant with ``username`` and an app
    password (a token of intent ``app_password``) instead of the client secret. The token acts as that
    account, with its groups."""
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "username": username,
        "password": app_password,
        "scope": scope,
    }
    return _token_set(await _json_response(http, "POST", metadata.token_endpoint, data=form), clock())


def app_password_secret(username: str, app_password: str) -> str:
    """The client secret authentik also accepts for a service account: ``base64(username:app-password)``."""
    return base64.b64encode(f"{username}:{app_password}".encode()).decode("ascii")


async def refresh(
    metadata: ProviderMetadata,
    client_id: str,
    refresh_token: str,
    http: httpx.AsyncClient,
    *,
    client_secret: str | None = None,
    clock: Clock = time.time,
) -> TokenSet:
    """New tokens for a refresh token; the old refresh token is kept when the issuer sends no new one."""
    form = {"grant_type": "refresh_token", "client_id": client_id, "refresh_token": refresh_token}
    if client_secret is not None:
        form["client_secret"] = client_secret
    tokens = _token_set(await _json_response(http, "POST", metadata.token_endpoint, data=form), clock())
    if tokens.refresh_token is None:
        tokens = TokenSet(
            access_token=tokens.access_token,
            expires_at=tokens.expires_at,
            refresh_token=refresh_token,
            scope=tokens.scope,
        )
    return tokens


async def start_device_login(
    metadata: ProviderMetadata, client_id: str, scope: str, http: httpx.AsyncClient, *, clock: Clock = time.time
) -> DeviceLogin:
    """Start a device authorization grant (RFC 8628 §3.1)."""
    if metadata.device_authorization_endpoint is None:
        raise LoginError("the issuer does not offer device login")
    body = await _json_response(
        http, "POST", metadata.device_authorization_endpoint, data={"client_id": client_id, "scope": scope}
    )
    device_code, user_code = body.get("device_code"), body.get("user_code")
    verification_uri, expires_in = body.get("verification_uri"), json_number(body.get("expires_in"))
    if not (
        isinstance(device_code, str)
        and isinstance(user_code, str)
        and isinstance(verification_uri, str)
        and expires_in is not None
    ):
        raise LoginError("the device authorization response is incomplete")
    interval = json_number(body.get("interval"))
    return DeviceLogin(
        device_code=device_code,
        user_code=user_code,
        verification_uri=verification_uri,
        verification_uri_complete=optional_str(body.get("verification_uri_complete")),
        interval=interval if interval is not None and interval > 0 else 5.0,  # RFC 8628 default
        expires_at=clock() + expires_in,
    )


async def poll_device_login(
    metadata: ProviderMetadata,
    client_id: str,
    login: DeviceLogin,
    http: httpx.AsyncClient,
    *,
    sleep: Sleep = asyncio.sleep,
    clock: Clock = time.time,
) -> TokenSet:
    """Poll the token endpoint until the person approves, declines, or the device code expires."""
    form = {"grant_type": DEVICE_CODE_GRANT, "device_code": login.device_code, "client_id": client_id}
    interval = login.interval
    while True:
        await sleep(interval)
        if clock() >= login.expires_at:
            raise DeviceLoginExpiredError("the device login expired before it was approved", error="expired_token")
        try:
            return _token_set(await _json_response(http, "POST", metadata.token_endpoint, data=form), clock())
        except LoginUnavailableError:
            # RFC 8628 §3.5: after a timeout or server error, poll less often before trying again.
            interval = min(interval * 2, _MAX_POLL_INTERVAL)
        except LoginError as err:
            if err.error == "authorization_pending":
                continue
            if err.error == "slow_down":
                interval += _SLOW_DOWN_STEP
                continue
            if err.error == "expired_token":
                raise DeviceLoginExpiredError(
                    "the device login expired before it was approved", error=err.error
                ) from err
            if err.error == "access_denied":
                raise DeviceLoginDeniedError("the device login was declined", error=err.error) from err
            raise


async def _json_response(
    http: httpx.AsyncClient, method: str, url: str, *, data: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The only place this module does HTTP: a JSON object back, or a LoginError saying why not."""
    try:
        response = await http.request(method, url, data=data, headers={"Accept": "application/json"})
    except httpx.HTTPError as err:
        raise LoginUnavailableError(f"cannot reach {url} ({type(err).__name__})") from err
    if response.status_code >= 500:
        raise LoginUnavailableError(f"{url} answered HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise LoginError(f"{url} answered HTTP {response.status_code} without a JSON object")
    if response.status_code != 200:
        error = optional_str(body.get("error"))
        description = optional_str(body.get("error_description"))
        detail = f"{error}: {description[:200]}" if error and description else (error or "no error code")
        raise LoginError(f"{url} refused the request (HTTP {response.status_code}, {detail})", error=error)
    return body


def _token_set(body: Mapping[str, Any], now: float) -> TokenSet:
    access_token = body.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise LoginError("the token response has no access_token")
    token_type = body.get("token_type")
    if isinstance(token_type, str) and token_type.lower() != "bearer":
        raise LoginError(f"the token response has an unsupported token_type {token_type[:20]!r}")
    expires_in = json_number(body.get("expires_in"))
    lifetime = _DEFAULT_EXPIRES_IN if expires_in is None else expires_in
    return TokenSet(
        access_token=access_token,
        expires_at=now + lifetime,
        refresh_token=optional_str(body.get("refresh_token")),
        scope=optional_str(body.get("scope")),
    )


def optional_str(value: object) -> str | None:
    """A JSON value as a non-empty string, or None."""
    return value if isinstance(value, str) and value else None


def json_number(value: object) -> float | None:
    """A JSON number (not a boolean) as a float, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
