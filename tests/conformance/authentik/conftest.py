"""The server under test: the authentik sandbox in process, or a real authentik named by the environment.

``TENANTRY_CONFORMANCE_AUTHENTIK_URL`` is the server's root URL (``/api/v3`` is appended) and
``TENANTRY_CONFORMANCE_AUTHENTIK_TOKEN`` an API token (intent ``api``) of a superuser, such as the bootstrap
token of ``akadmin``. The tests of permission refusals need a valid API token of a user holding no
permission at all, ``TENANTRY_CONFORMANCE_AUTHENTIK_UNPRIVILEGED_TOKEN``; they are skipped without it.

Every group a test creates is named under :attr:`Authentik.prefix`, unique per test, and deleted again
afterwards, with a final sweep of that prefix for groups a test made without knowing their pk (the create
race).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tenantry.sandbox.authentik import AuthentikSandbox

URL_ENV = "TENANTRY_CONFORMANCE_AUTHENTIK_URL"
TOKEN_ENV = "TENANTRY_CONFORMANCE_AUTHENTIK_TOKEN"
UNPRIVILEGED_ENV = "TENANTRY_CONFORMANCE_AUTHENTIK_UNPRIVILEGED_TOKEN"
SANDBOX_TOKEN = "conformance-superuser-token"
SANDBOX_UNPRIVILEGED = "conformance-unprivileged-token"
GROUPS = "/api/v3/core/groups/"


@dataclass
class Authentik:
    """The groups API of the server under test, remembering the groups it created so they can be removed."""

    http: httpx.AsyncClient
    token: str
    unprivileged_token: str | None = None
    sandbox: AuthentikSandbox | None = None
    prefix: str = field(default_factory=lambda: f"tconf-{secrets.token_hex(4)}-")
    created: list[str] = field(default_factory=list)

    @property
    def is_sandbox(self) -> bool:
        return self.sandbox is not None

    def name(self, label: str = "group") -> str:
        return f"{self.prefix}{label}"

    @staticmethod
    def item(pk: str) -> str:
        return f"{GROUPS}{pk}/"

    # -- the wire ----------------------------------------------------------------------------------------
    async def request(self, method: str, path: str, *, token: str | None = "", **kwargs: Any) -> httpx.Response:
        """One request as the superuser; ``token`` another Bearer token, or None for no Authorization."""
        token = self.token if token == "" else token
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        response = await self.http.request(method, path, headers={**headers, **kwargs.pop("headers", {})}, **kwargs)
        if method == "POST" and path == GROUPS and response.status_code == 201:
            self.created.append(response.json()["pk"])
        return response

    async def create(self, label: str = "group", **fields: Any) -> dict[str, Any]:
        """A new group named ``prefix + label``; the create must succeed."""
        response = await self.request("POST", GROUPS, json={"name": self.name(label), **fields})
        assert response.status_code == 201, response.text
        group: dict[str, Any] = response.json()
        return group

    async def listed(self, **params: Any) -> list[dict[str, Any]]:
        """The first page of the groups list, scoped to this test's groups by ``search`` unless given."""
        params.setdefault("search", self.prefix)
        response = await self.request("GET", GROUPS, params=params)
        assert response.status_code == 200, response.text
        results: list[dict[str, Any]] = response.json()["results"]
        return results

    async def names(self, **params: Any) -> list[str]:
        return [group["name"] for group in await self.listed(**params)]

    def unprivileged(self) -> str:
        """A valid API token of a user holding no permission; the test is skipped when none is configured."""
        if self.unprivileged_token is None:
            pytest.skip(f"set {UNPRIVILEGED_ENV} to a valid API token of a user without permissions")
        return self.unprivileged_token

    # -- cleanup -----------------------------------------------------------------------------------------
    async def cleanup(self) -> None:
        """Delete what the test created, newest first, then anything else still under the prefix."""
        for pk in reversed(self.created):
            response = await self.request("DELETE", self.item(pk))
            assert response.status_code in (204, 404), f"could not delete group {pk}: {response.text}"
        self.created.clear()
        page = 1
        while page:
            response = await self.request("GET", GROUPS, params={"search": self.prefix, "page": page})
            body = response.json()
            left = [g for g in body["results"] if g["name"].startswith(self.prefix)]
            for group in left:
                deleted = await self.request("DELETE", self.item(group["pk"]))
                assert deleted.status_code in (204, 404), f"could not delete {group['name']}: {deleted.text}"
            # Deleting shifts the pages; start over while something was left behind.
            page = 1 if left else body["pagination"]["next"]


def _target() -> tuple[str, str] | None:
    url, token = os.environ.get(URL_ENV, "").strip(), os.environ.get(TOKEN_ENV, "").strip()
    if bool(url) != bool(token):
        pytest.fail(f"set both {URL_ENV} and {TOKEN_ENV} to test a real authentik, or neither", pytrace=False)
    return (url.rstrip("/"), token) if url else None


@pytest.fixture
async def authentik() -> AsyncIterator[Authentik]:
    target = _target()
    if target is not None:
        url, token = target
        unprivileged = os.environ.get(UNPRIVILEGED_ENV, "").strip() or None
        async with httpx.AsyncClient(base_url=url, timeout=30.0) as http:
            server = Authentik(http, token, unprivileged)
            try:
                yield server
            finally:
                await server.cleanup()
        return
    sandbox = AuthentikSandbox([SANDBOX_TOKEN], permissions={SANDBOX_UNPRIVILEGED: set()})
    transport = httpx.ASGITransport(app=sandbox.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://authentik.conformance") as http:
        server = Authentik(http, SANDBOX_TOKEN, SANDBOX_UNPRIVILEGED, sandbox)
        yield server
        await server.cleanup()
    # The cleanup a real server relies on must leave nothing behind, and the install's own group in place.
    assert sandbox.groups() == []
    assert [group["name"] for group in sandbox.groups(builtin=True)] == ["authentik Admins"]
