"""Who is looking at a page: the signed-in person's session, refreshed when due, and the Actor their token is.

The portal never acts as itself. The Actor comes from the person's own access token, through the very
resolver the API uses for a Bearer header, so every page sees exactly what that person's API calls would.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import structlog
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request as StarletteRequest

from tenantry.auth.actor import Actor
from tenantry.config import Settings
from tenantry.db.base import utcnow
from tenantry.errors import AppError, UnavailableError
from tenantry.portal.models import PortalSession
from tenantry.portal.oidc import IssuerDownError, PortalClient, SignInError, Tokens
from tenantry.portal.sessions import PortalSessions, TokenBox, cookie_name
from tenantry.web import own_unit_of_work

log = structlog.get_logger(__name__)

REFRESH_MARGIN = 60.0  # refresh an access token this long before it expires


class SignInRequiredError(Exception):
    """The page needs a signed-in person; they are sent to sign in and back to ``next_path``."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class NotConfiguredError(AppError):
    status_code = 503
    code = "portal_not_configured"


@dataclass(frozen=True)
class Visitor:
    """A signed-in person: the Actor their token stands for, their name, and their session's CSRF token."""

    actor: Actor
    name: str
    csrf: str

    @property
    def sub(self) -> str:
        return self.actor.sub or ""


def safe_next(value: str | None) -> str:
    """A local path to return to after sign-in; anything else (another origin, a scheme, ``//host``) is ``/``."""
    if not value or len(value) > 2000 or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    if any(ord(ch) < 32 or ch == "\\" for ch in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def here(request: Request) -> str:
    """The current page as a local path with its query, to come back to."""
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


class PortalAuth:
    """The portal's sign-in machinery for one process: its client of the provider and its token box."""

    def __init__(self, settings: Settings, client: PortalClient | None, box: TokenBox | None) -> None:
        self.settings = settings
        self.client = client
        self.box = box

    @classmethod
    def build(cls, request: Request) -> PortalAuth:
        """The process's one instance, made on first use (it needs the container's HTTP clients)."""
        existing: PortalAuth | None = getattr(request.app.state, "portal_auth", None)
        if existing is not None:
            return existing
        container = request.app.state.container
        settings: Settings = container.settings
        client = box = None
        issuer = settings.portal_provider
        if settings.portal_client_id and settings.portal_client_secret is not None and issuer:
            secret = settings.portal_client_secret.get_secret_value()
            client = PortalClient(
                issuer=issuer,
                client_id=settings.portal_client_id,
                client_secret=secret,
                http=container.http_client("oidc"),
                leeway=settings.oidc_leeway_seconds,
            )
            box = TokenBox(secret)
        auth = cls(settings, client, box)
        request.app.state.portal_auth = auth
        return auth

    def configured(self) -> tuple[PortalClient, TokenBox]:
        if self.client is None or self.box is None:
            raise NotConfiguredError(
                "sign-in to the portal is not configured: set TENANTRY_PORTAL_CLIENT_ID and "
                "TENANTRY_PORTAL_CLIENT_SECRET (a confidential provider the API trusts)"
            )
        return self.client, self.box

    def base_url(self, request: Request) -> str:
        return self.settings.portal_url or str(request.base_url).rstrip("/")

    def redirect_uri(self, request: Request) -> str:
        return f"{self.base_url(request)}/auth/callback"

    def secure(self, request: Request) -> bool:
        return self.base_url(request).startswith("https://")

    def cookie(self, request: Request) -> str | None:
        return request.cookies.get(cookie_name(self.secure(request)))

    def sessions(self, session: AsyncSession) -> PortalSessions:
        _, box = self.configured()
        return PortalSessions(session, box, idle_seconds=self.settings.portal_session_seconds)

    async def visitor(self, request: Request) -> Visitor:
        """The signed-in person, or SignInRequiredError. Runs in a unit of work of its own, so a rotated
        refresh token is kept even when the page's own work fails."""
        cookie = self.cookie(request)
        ended: SignInRequiredError | None = None
        async with own_unit_of_work(request) as session:
            try:
                tokens, name, csrf = await self._current(request, self.sessions(session), cookie)
            except SignInRequiredError as err:
                ended = err  # raised once the session's end is committed
        if ended is not None:
            raise ended
        actor = await self.actor(request, tokens.access_token)
        if actor is None:
            await self.forget(request, cookie)
            raise SignInRequiredError(here(request))
        return Visitor(actor=actor, name=name, csrf=csrf)

    async def _current(self, request: Request, sessions: PortalSessions, cookie: str | None) -> tuple[Tokens, str, str]:
        """The session's tokens (refreshed when due), the person's name and the session's CSRF token."""
        client, _ = self.configured()
        row = await sessions.signed_in(cookie)
        if row is None:
            raise SignInRequiredError(here(request))
        tokens = sessions.tokens(row)
        if tokens is None:
            await sessions.end(row)
            raise SignInRequiredError(here(request))
        if _due(row):
            tokens = await self._refresh(request, sessions, row, client)
        await sessions.touch(row)
        return tokens, row.display_name or "", row.csrf_token

    async def actor(self, request: Request, access_token: str) -> Actor | None:
        """The Actor of a person's access token, as the API resolves a Bearer header; None if refused."""
        scope = dict(request.scope)
        scope["headers"] = [(b"authorization", f"Bearer {access_token}".encode())]
        try:
            actor: Actor = await request.app.state.actor_resolver(StarletteRequest(scope))
        except UnavailableError:
            raise
        except AppError as refused:
            log.info("portal.token_refused", status=refused.status_code)
            return None
        return actor

    async def still_signed_in(self, request: Request) -> bool:
        """Whether this browser's session still exists (it ends when the person signs out elsewhere)."""
        async with request.app.state.container.sessionmaker() as session:
            return await self.sessions(session).signed_in(self.cookie(request)) is not None

    async def forget(self, request: Request, cookie: str | None) -> None:
        async with own_unit_of_work(request) as session:
            sessions = self.sessions(session)
            row = await sessions.signed_in(cookie)
            if row is not None:
                await sessions.end(row)

    async def _refresh(
        self, request: Request, sessions: PortalSessions, row: PortalSession, client: PortalClient
    ) -> Tokens:
        """New tokens from the refresh token; when that fails, back to sign-in (and then to this page)."""
        locked = await sessions.signed_in(self.cookie(request), for_update=True)
        current = sessions.tokens(locked) if locked is not None else None
        if locked is None or current is None:
            raise SignInRequiredError(here(request))
        if not _due(locked):
            return current  # another request refreshed it while this one waited for the row
        if current.refresh_token is None:
            await sessions.end(locked)
            raise SignInRequiredError(here(request))
        try:
            fresh = await client.refresh(current.refresh_token)
        except IssuerDownError as err:
            if current.expires_at > time.time() and locked.access_expires_at and locked.access_expires_at > utcnow():
                return current  # still valid for a little while; refresh on a later page
            raise UnavailableError(err.message, headers={"Retry-After": "5"}) from err
        except SignInError as err:
            # On SQLite rows are not locked: a request running alongside may have used the refresh token
            # first (it rotates). Its commit is visible to a fresh read; if it stored new tokens, use them.
            again = await sessions.signed_in(self.cookie(request))
            newer = sessions.tokens(again) if again is not None else None
            if (
                again is not None
                and newer is not None
                and newer.access_token != current.access_token
                and not _due(again)
            ):
                return newer
            log.info("portal.refresh_refused", reason=err.message)
            await sessions.end(locked)
            raise SignInRequiredError(here(request)) from err
        if fresh.refresh_token is None:
            fresh = Tokens(fresh.access_token, fresh.expires_at, current.refresh_token, fresh.id_token)
        if fresh.id_token is None:
            fresh = Tokens(fresh.access_token, fresh.expires_at, fresh.refresh_token, current.id_token)
        await sessions.store(locked, fresh)
        log.info("portal.refreshed")
        return fresh


def _due(row: PortalSession) -> bool:
    """Whether the session's access token expires soon (its expiry is kept beside the sealed tokens)."""
    expires = row.access_expires_at
    return expires is None or (expires - utcnow()).total_seconds() < REFRESH_MARGIN
