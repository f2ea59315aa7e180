"""The portal in-process: the app against the sandboxes, and a person signing in through the issuer's page."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa

from tenantry.config import Settings
from tenantry.container import Container
from tenantry.portal.models import PortalSession
from tenantry.portal.oidc import Tokens
from tenantry.portal.sessions import TokenBox
from tenantry.sandbox.suite import SandboxSuite
from tests.support.api import api_client

PORTAL = "http://tenantry.test"


def portal_suite() -> SandboxSuite:
    return SandboxSuite(
        authentik_url="http://authentik.test",
        stalwart_url="http://stalwart.test",
        ocis_url="http://ocis.test",
        portal_url=PORTAL,
        dkim_delay=0.0,
    )


@dataclass
class Portal:
    suite: SandboxSuite
    container: Container
    make_browser: Callable[[], httpx.AsyncClient]

    def password(self, username: str) -> str:
        c = self.suite.credentials
        return {"alice": c.admin_password, "bob": c.user_password}[username]

    async def sign_in(self, browser: httpx.AsyncClient, username: str, start: str = "/") -> httpx.Response:
        """Follow the portal to the issuer's sign-in page, sign in, and follow back; returns the last answer."""
        to_login = await browser.get(start)
        assert to_login.status_code == 303, to_login.text
        to_issuer = await browser.get(to_login.headers["location"])
        assert to_issuer.status_code == 303, to_issuer.text
        return await self.at_issuer(browser, to_issuer.headers["location"], username)

    async def at_issuer(self, browser: httpx.AsyncClient, authorize_url: str, username: str) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.suite.authentik.app)) as issuer:
            form_page = await issuer.get(authorize_url)
            fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', form_page.text))
            fields.update(username=username, password=self.password(username), action="login")
            back = await issuer.post("http://authentik.test/application/o/authorize/", data=fields)
        assert back.status_code == 302, back.text
        return await browser.get(back.headers["location"])

    async def sessions(self) -> list[PortalSession]:
        async with self.container.sessionmaker() as session:
            return list((await session.execute(sa.select(PortalSession))).scalars())

    async def update_sessions(self, **values: Any) -> None:
        async with self.container.sessionmaker() as session:
            await session.execute(sa.update(PortalSession).values(**values))
            await session.commit()

    def tokens(self, row: PortalSession) -> Tokens:
        box = TokenBox(self.suite.credentials.portal_client_secret)
        assert row.tokens is not None
        opened = box.open(row.tokens)
        assert opened is not None
        return opened


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


@contextlib.asynccontextmanager
async def running_portal(make_settings: Callable[..., Settings], **overrides: Any) -> AsyncIterator[Portal]:
    suite = portal_suite()
    settings = make_settings(**{**suite.settings(), "auth_enabled": True, "create_wait_seconds": 1, **overrides})
    async with api_client(settings, transports=suite.transports()) as (client, container):
        transport = client._transport

        def make_browser() -> httpx.AsyncClient:
            return httpx.AsyncClient(transport=transport, base_url=PORTAL)

        yield Portal(suite, container, make_browser)
