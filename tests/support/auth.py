"""Helpers for tests of API authentication: the app trusting the sandbox issuer, and callers' tokens."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from tenantry.app import ActorResolver
from tenantry.config import Settings
from tenantry.container import Container
from tenantry.provisioning.steps import Step, build_steps
from tenantry.sandbox.suite import SandboxSuite
from tests.support.api import api_client
from tests.support.fakes import ScriptedProvider

AUTHENTIK_URL = "http://authentik.test"
Settings_ = Callable[..., Settings]


def sandbox_suite() -> SandboxSuite:
    return SandboxSuite(
        authentik_url=AUTHENTIK_URL, stalwart_url="http://stalwart.test", ocis_url="http://ocis.test", dkim_delay=0.0
    )


def scripted_steps() -> list[Step]:
    return build_steps(ScriptedProvider("group"), ScriptedProvider("domain"), ScriptedProvider("drive"))


def auth_settings(make_settings: Settings_, suite: SandboxSuite, **overrides: Any) -> Settings:
    return make_settings(**{**suite.settings(), "auth_enabled": True, **overrides})


@contextlib.asynccontextmanager
async def authed_api(
    make_settings: Settings_, suite: SandboxSuite, *, actor_resolver: ActorResolver | None = None, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Container]]:
    """The app with API authentication on, trusting the suite's issuer, tenants provisioned by fakes."""
    settings = auth_settings(make_settings, suite, **overrides)
    async with api_client(
        settings, steps=scripted_steps(), transports=suite.transports(), actor_resolver=actor_resolver
    ) as pair:
        yield pair


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Callers:
    """Tokens for a platform admin and two ordinary users, as one of the API's trusted providers issues them."""

    def __init__(self, suite: SandboxSuite) -> None:
        aud = suite.credentials.user_client_id
        self.admin_sub = suite.admin_user.sub
        self.a_sub = suite.plain_user.sub
        self.b_sub = "b7d1a2c40000400080000000000000000000000000000000000000000000000b"  # 64 hex, as authentik's
        self.admin = bearer(suite.issuer.mint_token(sub=self.admin_sub, audience=aud))
        self.a = bearer(suite.issuer.mint_token(sub=self.a_sub, audience=aud))
        self.b = bearer(suite.issuer.mint_token(sub=self.b_sub, groups=["staff"], audience=aud))
