"""Server-side portal sessions: the cookie's random id, sign-ins in progress, encrypted tokens, CSRF tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.db.base import utcnow
from tenantry.portal.models import PortalSession
from tenantry.portal.oidc import LoginRequest, Tokens
from tenantry.portal.repository import SessionRepository

COOKIE = "tenantry_session"
# Over HTTPS the __Host- prefix makes the browser refuse the cookie unless it is Secure, for the whole
# origin (Path=/) and without a Domain, so no sibling host can plant or read it.
SECURE_COOKIE = "__Host-tenantry_session"
LOGIN_SECONDS = 600.0  # how long a sign-in may take at the issuer
TOUCH_SECONDS = 60.0  # a session's idle clock is moved on at most this often (one write a minute, not per page)


def cookie_name(secure: bool) -> str:
    return SECURE_COOKIE if secure else COOKIE


def session_key(cookie_value: str) -> str:
    """The row id of a cookie value: its SHA-256, so the store alone holds nothing a browser could present."""
    return hashlib.sha256(cookie_value.encode()).hexdigest()


def csrf_matches(expected: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(expected.encode(), (presented or "").encode())


class TokenBox:
    """Encrypts the tokens at rest with a key derived from the portal's client secret (rotating the secret
    signs everyone out, which is what rotating it is for)."""

    def __init__(self, client_secret: str) -> None:
        digest = hashlib.sha256(b"tenantry portal sessions\x00" + client_secret.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def seal(self, tokens: Tokens) -> str:
        return self._fernet.encrypt(json.dumps(tokens.to_json()).encode()).decode()

    def open(self, sealed: str) -> Tokens | None:
        try:
            return Tokens.from_json(json.loads(self._fernet.decrypt(sealed.encode())))
        except (InvalidToken, ValueError, KeyError, TypeError):
            return None


@dataclass(frozen=True)
class PendingLogin:
    row: PortalSession
    login: LoginRequest


class PortalSessions:
    """Portal session use cases; works in the caller's unit of work (flushes, never commits)."""

    def __init__(self, session: AsyncSession, box: TokenBox, *, idle_seconds: float) -> None:
        self.repo = SessionRepository(session)
        self._box = box
        self._idle = timedelta(seconds=idle_seconds)

    async def begin_login(self, next_path: str) -> tuple[str, LoginRequest]:
        """A new session holding only this sign-in request; returns its cookie value and the request."""
        now = utcnow()
        await self.repo.forget_expired(now=now)
        cookie, login = secrets.token_urlsafe(32), LoginRequest.new()
        await self.repo.add(
            PortalSession(
                id=session_key(cookie),
                created_at=now,
                last_seen_at=now,
                expires_at=now + timedelta(seconds=LOGIN_SECONDS),
                login_state=login.state,
                login_nonce=login.nonce,
                login_verifier=login.verifier,
                next_path=next_path,
                csrf_token=secrets.token_urlsafe(32),
            )
        )
        return cookie, login

    async def pending_login(self, cookie: str | None, state: str) -> PendingLogin | None:
        """The sign-in this browser started, if ``state`` is the one it was sent with and it is still fresh."""
        row = await self._live(cookie)
        if row is None or row.login_state is None or row.login_nonce is None or row.login_verifier is None:
            return None
        if not hmac.compare_digest(row.login_state.encode(), state.encode()):
            return None
        return PendingLogin(row, LoginRequest(row.login_state, row.login_nonce, row.login_verifier))

    async def complete_login(self, pending: PendingLogin, tokens: Tokens, *, sub: str, name: str) -> str:
        """Replace the sign-in's session by a new one (a new id at sign-in) holding the tokens."""
        await self.repo.delete(pending.row)
        now = utcnow()
        cookie = secrets.token_urlsafe(32)
        await self.repo.add(
            PortalSession(
                id=session_key(cookie),
                created_at=now,
                last_seen_at=now,
                expires_at=now + self._idle,
                sub=sub,
                display_name=name[:200],
                csrf_token=secrets.token_urlsafe(32),
                tokens=self._box.seal(tokens),
                access_expires_at=datetime.fromtimestamp(tokens.expires_at, UTC),
            )
        )
        return cookie

    async def signed_in(self, cookie: str | None, *, for_update: bool = False) -> PortalSession | None:
        row = await self._live(cookie, for_update=for_update)
        return row if row is not None and row.signed_in else None

    def tokens(self, row: PortalSession) -> Tokens | None:
        return None if row.tokens is None else self._box.open(row.tokens)

    async def store(self, row: PortalSession, tokens: Tokens) -> None:
        row.tokens = self._box.seal(tokens)
        row.access_expires_at = datetime.fromtimestamp(tokens.expires_at, UTC)
        await self.repo.session.flush()

    async def touch(self, row: PortalSession) -> None:
        """Move the idle deadline on (at most once a minute)."""
        now = utcnow()
        if now - row.last_seen_at >= timedelta(seconds=TOUCH_SECONDS):
            row.last_seen_at, row.expires_at = now, now + self._idle
            await self.repo.session.flush()

    async def end(self, row: PortalSession) -> None:
        await self.repo.delete(row)

    async def _live(self, cookie: str | None, *, for_update: bool = False) -> PortalSession | None:
        if not cookie or len(cookie) > 200:
            return None
        row = await self.repo.get(session_key(cookie), for_update=for_update)
        if row is None or row.expires_at <= utcnow():
            return None
        return row
