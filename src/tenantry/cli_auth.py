"""How the ``tenantry`` CLI gets tokens: ask the API which issuer it trusts, then log in and cache the result.

People use the device login (a code to approve in the browser); machines use client credentials. Tokens are
cached per issuer and client in ``$TENANTRY_CONFIG_DIR/tokens.json`` (default ``~/.config/tenantry``), mode
0600, and refreshed when they run out.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import httpx

from tenantry.auth.login import (
    ProviderMetadata,
    TokenCache,
    client_credentials_token,
    discover,
    poll_device_login,
    start_device_login,
)


def cache_path() -> Path:
    base = os.environ.get("TENANTRY_CONFIG_DIR") or os.path.join(os.path.expanduser("~"), ".config", "tenantry")
    return Path(base) / "tokens.json"


def _index_path() -> Path:
    return cache_path().with_name("logins.json")


async def _auth_config(http: httpx.AsyncClient, api_url: str) -> dict[str, Any]:
    response = await http.get(api_url.rstrip("/") + "/auth/config")
    response.raise_for_status()
    config: dict[str, Any] = response.json()
    return config


def _remember(api_url: str, client_id: str) -> None:
    path = _index_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        known = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        known = {}
    known[api_url.rstrip("/")] = client_id
    path.write_text(json.dumps(known))
    path.chmod(0o600)


def _remembered(api_url: str) -> str | None:
    try:
        value = json.loads(_index_path().read_text()).get(api_url.rstrip("/"))
    except (FileNotFoundError, ValueError):
        return None
    return str(value) if value else None


async def _metadata(http: httpx.AsyncClient, api_url: str) -> tuple[ProviderMetadata, dict[str, Any]]:
    config = await _auth_config(http, api_url)
    return await discover(str(config["issuer"]), http), config


async def login_device(api_url: str, *, announce: Any) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        metadata, config = await _metadata(http, api_url)
        client_id = str(config["cliClientId"])
        device = await start_device_login(metadata, client_id, "openid profile email offline_access", http)
        announce(device)
        tokens = await poll_device_login(metadata, client_id, device, http)
        TokenCache(cache_path()).put(metadata.issuer, client_id, tokens)
        _remember(api_url, client_id)


async def login_machine(api_url: str, client_id: str, client_secret: str) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        metadata, _ = await _metadata(http, api_url)
        tokens = await client_credentials_token(metadata, client_id, client_secret, "openid profile email", http)
        TokenCache(cache_path()).put(metadata.issuer, client_id, tokens)
        _remember(api_url, client_id)


def cached_token(api_url: str) -> str | None:
    """A valid cached token for the API at ``api_url`` (refreshed if needed), or None when not logged in."""
    client_id = _remembered(api_url)
    if client_id is None:
        return None

    async def get() -> str | None:
        async with httpx.AsyncClient(timeout=30) as http:
            metadata, _ = await _metadata(http, api_url)
            return await TokenCache(cache_path()).access_token(metadata, client_id, http)

    return asyncio.run(get())
