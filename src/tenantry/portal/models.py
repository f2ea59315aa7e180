"""ORM model of a portal session: a sign-in in progress, or a signed-in person's tokens (encrypted)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base, UTCDateTime, utcnow


class PortalSession(Base):
    """One browser's session, shared by every API process through the store.

    ``id`` is the SHA-256 of the random value in the cookie, so the table alone lets nobody pose as anyone.
    Until the issuer's callback, the row holds the sign-in request (``login_*``, ``next_path``); the
    callback replaces it with a new row (a new id at sign-in) holding ``sub`` and the tokens, which are
    encrypted with a key derived from the portal's client secret and never leave the server.
    """

    __tablename__ = "portal_sessions"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    login_state: Mapped[str | None] = mapped_column(sa.String(64))
    login_nonce: Mapped[str | None] = mapped_column(sa.String(64))
    login_verifier: Mapped[str | None] = mapped_column(sa.String(128))
    next_path: Mapped[str | None] = mapped_column(sa.String(2000))
    sub: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    display_name: Mapped[str | None] = mapped_column(sa.String(200))
    csrf_token: Mapped[str] = mapped_column(sa.String(64))
    tokens: Mapped[str | None] = mapped_column(sa.Text)
    access_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def signed_in(self) -> bool:
        return self.sub is not None and self.tokens is not None
