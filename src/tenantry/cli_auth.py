"""How the ``tenantry`` CLI gets tokens: ask the API which providers it trusts, then log in and cache the result.

People use the device login (a code to approve in the browser) with the CLI's own public client, which the
API names in ``/auth/config``; its tokens are refreshed without a secret. Machines log in through a
confidential provider's client id, either with its client secret (acting as authentik's
``ak-<provider>-client_credentials`` account, in no group) or as a service account with an app password
(acting as that account, with its groups). Tokens are cached per issuer and client in
``$TENANTRY_CONFIG_DIR/tokens.json`` (default ``~/.config/tenantry``), mode 0600, and refreshed when they run
out; ``logins.json`` beside it remembers which issuer and client each API was logged in with.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx

from tenantry.auth.login import (
    CLI_SCOPE,
    MACHINE_SCOPE,
    LoginError,
    LoginUnavailableError,
    app_password_token,
    client_credentials_token,
    discover,
    poll_device_login,
    start_device_login,
)
from tenantry.auth.token_cache import TokenCache


def cache_path() -> Path:
    base = os.environ.get("TENANTRY_CONFIG_DIR") or os.path.join(os.path.expanduser("~"), ".config", "tenantry")
    return Path(base) / "tokens.json"


def _index_path() -> Path:
    return cache_path().with_name("logins.json")


async def _auth_config(http: httpx.AsyncClient, api_url: str) -> dict[str, Any]:
    url = api_url.rstrip("/") + "/auth/config"
    try:
        response = await http.get(url)
    except httpx.HTTPError as err:
        raise LoginUnavailableError(f"cannot reach {url} ({type(err).__name__})") from err
    if response.status_code != 200:
        raise LoginError(f"{url} answered HTTP {response.status_code}")
    try:
        config = response.json()
    except ValueError:
        config = None
    if not isinstance(config, dict):
        raise LoginError(f"{url} did not answer a JSON object")
    return config


def _machine_issuer(config: dict[str, Any], client_id: str) -> str:
    """The trusted provider that lists ``client_id``, else the CLI's (authentik has one token endpoint)."""
    for provider in config.get("providers") or []:
        if isinstance(provider, dict) and client_id in (provider.get("clientIds") or []):
            return str(provider["issuer"])
    if config.get("issuer"):
        return str(config["issuer"])
    raise LoginError(f"the API trusts no provider with client id {client_id!r}; pass --issuer")


def _remember(api_url: str, issuer: str, client_id: str) -> None:
    path = _index_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        known = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        known = {}
    known[api_url.rstrip("/")] = {"issuer": issuer, "clientId": client_id}
    path.write_text(json.dumps(known))
    path.chmod(0o600)


def _remembered(api_url: str) -> tuple[str, str] | None:
    try:
        entry = json.loads(_index_path().read_text()).get(api_url.rstrip("/"))
    except (FileNotFoundError, ValueError, AttributeError):
        return None
    if isinstance(entry, dict) and entry.get("issuer") and entry.get("clientId"):
        return str(entry["issuer"]), str(entry["clientId"])
    return None  # nothing, or an entry of an older CLI: log in again


async def login_device(api_url: str, *, announce: Any) -> None:
    """Log a person in with the CLI's public client named by the API (device login, refreshable)."""
    async with httpx.AsyncClient(timeout=30) as http:
        config = await _auth_config(http, api_url)
        issuer, client_id = config.get("issuer"), config.get("cliClientId")
        if not issuer or not client_id:
            raise LoginError("the API names no CLI client to log in with (TENANTRY_OIDC_CLI_CLIENT_ID)")
        metadata = await discover(str(issuer), http)
        scope = str(config.get("cliScope") or CLI_SCOPE)
        device = await start_device_login(metadata, str(client_id), scope, http)
        announce(device)
        tokens = await poll_device_login(metadata, str(client_id), device, http)
        TokenCache(cache_path()).put(metadata.issuer, str(client_id), tokens)
        _remember(api_url, metadata.issuer, str(client_id))


async def login_machine(
    api_url: str,
    client_id: str,
    *,
    client_secret: str | None = None,
    username: str | None = None,
    app_password: str | None = None,
    issuer: str | None = None,
) -> None:
    """Log a machine in: with the client secret, or as service account ``username`` with an app password."""
    async with httpx.AsyncClient(timeout=30) as http:
        if issuer is None:
            issuer = _machine_issuer(await _auth_config(http, api_url), client_id)
        metadata = await discover(issuer, http)
        if username is not None and app_password is not None:
            tokens = await app_password_token(metadata, client_id, username, app_password, MACHINE_SCOPE, http)
        elif client_secret is not None:
            tokens = await client_credentials_token(metadata, client_id, client_secret, MACHINE_SCOPE, http)
        else:
            raise LoginError("a machine login needs a client secret, or a username and an app password")
        TokenCache(cache_path()).put(metadata.issuer, client_id, tokens)
        _remember(api_url, metadata.issuer, client_id)


def cached_token(api_url: str) -> str | None:
    """A valid cached token for the API at ``api_url`` (refreshed if needed), or None when not logged in."""
    remembered = _remembered(api_url)
    if remembered is None:
        return None
    issuer, client_id = remembered
    cache = TokenCache(cache_path())
    tokens = cache.get(issuer, client_id)
    if tokens is None:
        return None
    if tokens.usable(time.time()):
        return tokens.access_token  # no network call while the cached token lasts

    async def renew() -> str | None:
        async with httpx.AsyncClient(timeout=30) as http:
            metadata = await discover(issuer, http)
            return await cache.access_token(metadata, client_id, http)

    try:
        return asyncio.run(renew())
    except LoginError:
        return None  # the call goes out without a token and the API says 401: log in again
