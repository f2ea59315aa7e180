"""The server under test: the oCIS sandbox in process, or a real oCIS named by the environment.

``TENANTRY_CONFORMANCE_OCIS_URL`` is the oCIS origin (``/graph`` is appended);
``TENANTRY_CONFORMANCE_OCIS_USERNAME`` and ``TENANTRY_CONFORMANCE_OCIS_APP_TOKEN`` an app token of a user
holding exactly the **Space Admin** role, as Tenantry's own service user does. The tests about ordinary
members need a second user with the default **User** role: ``TENANTRY_CONFORMANCE_OCIS_MEMBER_USERNAME`` and
``TENANTRY_CONFORMANCE_OCIS_MEMBER_APP_TOKEN`` (they are skipped without it). A deployment that changed
``GRAPH_SPACES_DEFAULT_QUOTA`` says so in ``TENANTRY_CONFORMANCE_OCIS_DEFAULT_QUOTA``.

Every space a test creates gets a fresh name under :attr:`Ocis.prefix` and is disabled and purged again
afterwards, whatever the test did to it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tenantry.sandbox.ocis import OcisSandbox
from tests.conformance.ocis.support import drive_path

URL_ENV = "TENANTRY_CONFORMANCE_OCIS_URL"
USERNAME_ENV = "TENANTRY_CONFORMANCE_OCIS_USERNAME"
TOKEN_ENV = "TENANTRY_CONFORMANCE_OCIS_APP_TOKEN"
MEMBER_USERNAME_ENV = "TENANTRY_CONFORMANCE_OCIS_MEMBER_USERNAME"
MEMBER_TOKEN_ENV = "TENANTRY_CONFORMANCE_OCIS_MEMBER_APP_TOKEN"
DEFAULT_QUOTA_ENV = "TENANTRY_CONFORMANCE_OCIS_DEFAULT_QUOTA"
UPSTREAM_DEFAULT_QUOTA = 1_000_000_000  # GRAPH_SPACES_DEFAULT_QUOTA's default
SANDBOX_ADMIN = ("conformance-space-admin", "conformance-admin-token")
SANDBOX_MEMBER = ("conformance-member", "conformance-member-token")


@dataclass
class Ocis:
    """The Graph API of the server under test, as its Space Admin and (if configured) as an ordinary user."""

    admin: httpx.AsyncClient
    admin_id: str
    member: httpx.AsyncClient | None
    member_id: str | None
    default_quota: int
    sandbox: OcisSandbox | None = None
    prefix: str = field(default_factory=lambda: f"Tenantry Conformance {secrets.token_hex(4)}")
    created: list[str] = field(default_factory=list)

    @property
    def is_sandbox(self) -> bool:
        return self.sandbox is not None

    def name(self, label: str = "Space") -> str:
        return f"{self.prefix} {label}"

    def as_member(self) -> tuple[httpx.AsyncClient, str]:
        """The ordinary user's client and oCIS id; the test is skipped when none is configured."""
        if self.member is None or self.member_id is None:
            pytest.skip(f"needs an ordinary user: set {MEMBER_USERNAME_ENV} and {MEMBER_TOKEN_ENV}")
        return self.member, self.member_id

    async def create(self, label: str = "Space", **body: Any) -> dict[str, Any]:
        """A new project space created by the Space Admin (removed again after the test)."""
        response = await self.admin.post("/graph/v1.0/drives", json={"name": self.name(label), **body})
        assert response.status_code == 201, response.text
        drive: dict[str, Any] = response.json()
        self.created.append(drive["id"])
        return drive

    def remember(self, response: httpx.Response) -> None:
        """Note a space a test created by hand, so that it is removed too."""
        if response.status_code == 201:
            self.created.append(response.json()["id"])

    async def cleanup(self) -> None:
        """Disable, then purge, every space the test created; a space already gone is fine."""
        for drive_id in reversed(self.created):
            path = drive_path(drive_id)
            disabled = await self.admin.delete(path)
            purged = await self.admin.delete(path, headers={"Purge": "T"})
            assert disabled.status_code in {204, 404}, disabled.text
            assert purged.status_code in {204, 404}, purged.text
        self.created.clear()


def _credentials(username_env: str, token_env: str) -> tuple[str, str] | None:
    username, token = os.environ.get(username_env, "").strip(), os.environ.get(token_env, "").strip()
    if bool(username) != bool(token):
        pytest.fail(f"set both {username_env} and {token_env}, or neither", pytrace=False)
    return (username, token) if username else None


async def _user_id(client: httpx.AsyncClient) -> str:
    me = await client.get("/graph/v1.0/me")
    assert me.status_code == 200, f"GET /graph/v1.0/me answered {me.status_code}: check the credentials"
    return str(me.json()["id"])


@pytest.fixture
async def ocis() -> AsyncIterator[Ocis]:
    url = os.environ.get(URL_ENV, "").strip().rstrip("/")
    admin_auth = _credentials(USERNAME_ENV, TOKEN_ENV)
    if bool(url) != bool(admin_auth):
        pytest.fail(f"set {URL_ENV}, {USERNAME_ENV} and {TOKEN_ENV} to test a real oCIS, or none", pytrace=False)
    default_quota = int(os.environ.get(DEFAULT_QUOTA_ENV, "").strip() or UPSTREAM_DEFAULT_QUOTA)
    sandbox: OcisSandbox | None = None
    if admin_auth is not None:
        member_auth = _credentials(MEMBER_USERNAME_ENV, MEMBER_TOKEN_ENV)
        options: dict[str, Any] = {"base_url": url, "timeout": 30.0}
    else:
        admin_auth, member_auth = SANDBOX_ADMIN, SANDBOX_MEMBER
        sandbox = OcisSandbox(
            app_tokens=dict([SANDBOX_ADMIN, SANDBOX_MEMBER]),
            space_admins={SANDBOX_ADMIN[0]},
            default_quota=default_quota,
            public_url="https://ocis.conformance.test",
        )
        options = {"base_url": "http://ocis.conformance.test", "transport": httpx.ASGITransport(app=sandbox.app)}
    async with httpx.AsyncClient(auth=admin_auth, **options) as admin:
        member_client = httpx.AsyncClient(auth=member_auth, **options) if member_auth else None
        try:
            member_id = await _user_id(member_client) if member_client else None
            server = Ocis(admin, await _user_id(admin), member_client, member_id, default_quota, sandbox)
            try:
                yield server
            finally:
                await server.cleanup()
        finally:
            if member_client is not None:
                await member_client.aclose()
    if sandbox is not None:
        # The cleanup a real server relies on must leave nothing behind.
        assert sandbox.spaces() == []
