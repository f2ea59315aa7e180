"""Clients, demo users, the grants the sandbox OIDC issuer keeps in memory, and its OAuth error."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from starlette.responses import JSONResponse

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_SCOPES: tuple[str, ...] = ("openid", "profile", "email", "offline_access")
DEFAULT_GRANT_TYPES: tuple[str, ...] = ("authorization_code", "refresh_token")


@dataclass(frozen=True)
class OidcClient:
    """An authentik OAuth2 provider (one client id) and the application it is attached to.

    ``client_secret=None`` makes it public (PKCE, no secret on refresh). ``slug`` is the application's
    slug, so the provider's issuer is ``<host>/application/o/<slug>/`` (default: the client id).
    ``scopes`` are the scopes the provider has mappings for: requests are intersected with them.
    ``service_account_groups``: authentik creates the ``ak-<name>-client_credentials`` account the client
    secret acts as in no group; these are groups an operator has since put it in (none by default).
    """

    client_id: str
    client_secret: str | None = field(repr=False)
    redirect_uris: Sequence[str] = ()
    grant_types: Sequence[str] = DEFAULT_GRANT_TYPES
    name: str = ""
    scopes: Sequence[str] = DEFAULT_SCOPES
    service_account_groups: Sequence[str] = ()
    slug: str = ""

    def __post_init__(self) -> None:
        # Tuples keep a frozen client frozen even when callers hand in lists.
        object.__setattr__(self, "redirect_uris", tuple(self.redirect_uris))
        object.__setattr__(self, "grant_types", tuple(self.grant_types))
        object.__setattr__(self, "scopes", tuple(self.scopes))
        object.__setattr__(self, "service_account_groups", tuple(self.service_account_groups))
        if not self.name:
            object.__setattr__(self, "name", self.client_id)
        if not self.slug:
            object.__setattr__(self, "slug", self.client_id)

    @property
    def is_public(self) -> bool:
        return self.client_secret is None

    @property
    def service_account_username(self) -> str:
        return f"ak-{self.name}-client_credentials"

    def secret_matches(self, presented: str | None) -> bool:
        if self.client_secret is None or presented is None:
            return False
        return hmac.compare_digest(self.client_secret.encode(), presented.encode())


def hashed_user_id() -> str:
    """A ``sub`` as authentik's default ``sub_mode`` (``hashed_user_id``) makes it: 64 hex digits."""
    return hashlib.sha256(secrets.token_bytes(16)).hexdigest()


@dataclass(frozen=True)
class DemoUser:
    """A user of the sandbox authentik; ``sub`` is the user's ``uid`` (authentik's default ``hashed_user_id``).

    ``password`` signs in interactively (empty: never). ``app_passwords`` are the keys of the user's
    tokens of intent ``app_password``, which a service account presents to the client_credentials grant.
    """

    username: str
    password: str = field(repr=False)
    name: str = ""
    email: str = ""
    groups: list[str] = field(default_factory=list)
    sub: str = field(default_factory=hashed_user_id)
    app_passwords: Sequence[str] = field(default=(), repr=False)

    def password_matches(self, presented: str) -> bool:
        # An empty password never signs in: synthesised principals (service accounts) have one.
        return bool(self.password) and hmac.compare_digest(self.password.encode(), presented.encode())

    def app_password_matches(self, presented: str) -> bool:
        return bool(presented) and any(hmac.compare_digest(k.encode(), presented.encode()) for k in self.app_passwords)


@dataclass(frozen=True)
class Authorization:
    """What was granted to whom: shared by codes, refresh tokens and device grants."""

    client: OidcClient
    user: DemoUser
    scope: tuple[str, ...]
    auth_time: int
    sid: str | None = None  # authentik sets sid only for a grant made in a browser session
    nonce: str | None = None
    password_login: bool = True


@dataclass
class CodeGrant:
    auth: Authorization
    redirect_uri: str
    code_challenge: str | None
    expires_at: float


@dataclass
class SpentCode:
    """What a redeemed code produced, revoked if the code is presented again (RFC 6749 §4.1.2)."""

    uid: str
    refresh_token: str | None
    expires_at: float


@dataclass
class RefreshGrant:
    auth: Authorization
    expires_at: float


@dataclass
class DeviceGrant:
    device_code: str
    user_code: str
    client: OidcClient
    scope: tuple[str, ...]
    expires_at: float
    interval: int
    last_poll: float | None = None
    status: Literal["pending", "approved", "denied"] = "pending"
    user: DemoUser | None = None
    auth_time: int = 0


class OAuthError(Exception):
    """An RFC 6749 error answer; the description is for humans and never carries a credential."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def response(self) -> JSONResponse:
        headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="authentik"'
        return JSONResponse(
            {"error": self.error, "error_description": self.description}, status_code=self.status, headers=headers
        )


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of a verifier (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def pkce_matches(challenge: str, verifier: str | None) -> bool:
    if verifier is None or not 43 <= len(verifier) <= 128:
        return False
    return hmac.compare_digest(s256(verifier), challenge)
