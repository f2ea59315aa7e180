"""The portal as an OIDC relying party: authorization code with PKCE (S256), state and nonce, refresh, sign-out.

SignInError             the issuer refused or answered something unusable; ``message`` says what to do
 └ IssuerDownError      the issuer could not be reached (or failed); trying again later may work
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import structlog

from tenantry.auth.tokens import InvalidTokenError, IssuerUnavailableError, TokenValidator

log = structlog.get_logger(__name__)

# "profile" carries the groups claim (platform admins); "offline_access" gets a refresh token.
PORTAL_SCOPE = "openid profile email offline_access"
_DEFAULT_EXPIRES_IN = 300.0


class SignInError(Exception):
    """Signing in or refreshing failed; the message is safe to show and never holds a token."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class IssuerDownError(SignInError):
    """The identity provider could not be reached or failed; retry later."""


@dataclass(frozen=True)
class Endpoints:
    """The provider's endpoints, from its discovery document."""

    issuer: str
    authorization: str
    token: str
    end_session: str | None
    revocation: str | None


@dataclass(frozen=True)
class LoginRequest:
    """What one sign-in attempt keeps server-side until the issuer sends the person back."""

    state: str
    nonce: str
    verifier: str

    @classmethod
    def new(cls) -> LoginRequest:
        return cls(state=secrets.token_urlsafe(32), nonce=secrets.token_urlsafe(32), verifier=secrets.token_urlsafe(64))

    @property
    def challenge(self) -> str:
        digest = hashlib.sha256(self.verifier.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class Tokens:
    """A token response. Tokens stay out of ``repr`` so they cannot reach a log line."""

    access_token: str = field(repr=False)
    expires_at: float
    refresh_token: str | None = field(default=None, repr=False)
    id_token: str | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"access": self.access_token, "exp": self.expires_at, "refresh": self.refresh_token, "id": self.id_token}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tokens:
        return cls(str(data["access"]), float(data["exp"]), data.get("refresh"), data.get("id"))


class PortalClient:
    """The portal's own confidential client of one provider (its issuer, client id and secret)."""

    def __init__(
        self, *, issuer: str, client_id: str, client_secret: str, http: httpx.AsyncClient, leeway: float = 30
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self._secret = client_secret
        self._http = http
        self._endpoints: Endpoints | None = None
        self._id_tokens = TokenValidator(issuer=issuer, audience=[client_id], http=http, leeway=leeway, expects="id")

    async def endpoints(self) -> Endpoints:
        """The discovery document's endpoints, fetched once (and again after a failure)."""
        if self._endpoints is None:
            url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
            doc = await self._json("GET", url)
            if doc.get("issuer") != self.issuer:
                raise SignInError("the identity provider's discovery document names another issuer")
            try:
                self._endpoints = Endpoints(
                    issuer=self.issuer,
                    authorization=str(doc["authorization_endpoint"]),
                    token=str(doc["token_endpoint"]),
                    end_session=_optional(doc.get("end_session_endpoint")),
                    revocation=_optional(doc.get("revocation_endpoint")),
                )
            except KeyError as err:
                raise SignInError(f"the identity provider's discovery document has no {err.args[0]}") from err
        return self._endpoints

    async def authorize_url(self, login: LoginRequest, redirect_uri: str) -> str:
        endpoints = await self.endpoints()
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": PORTAL_SCOPE,
            "state": login.state,
            "nonce": login.nonce,
            "code_challenge": login.challenge,
            "code_challenge_method": "S256",
        }
        return f"{endpoints.authorization}?{urlencode(query)}"

    async def redeem(self, code: str, login: LoginRequest, redirect_uri: str) -> tuple[Tokens, dict[str, Any]]:
        """Exchange the code (with the PKCE verifier); returns the tokens and the ID token's checked claims."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        tokens = await self._grant({**form, "code_verifier": login.verifier})
        if tokens.id_token is None:
            raise SignInError("the identity provider sent no ID token; does the provider grant the openid scope?")
        try:
            identity = await self._id_tokens.validate(tokens.id_token)
        except InvalidTokenError as err:
            raise SignInError(f"the ID token was refused ({err.reason})") from err
        except IssuerUnavailableError as err:
            raise IssuerDownError("the identity provider's signing keys cannot be fetched; try again shortly") from err
        nonce = identity.claims.get("nonce")
        if not isinstance(nonce, str) or not hmac.compare_digest(nonce, login.nonce):
            raise SignInError("the ID token does not answer this sign-in (nonce mismatch); sign in again")
        return tokens, dict(identity.claims)

    async def refresh(self, refresh_token: str) -> Tokens:
        return await self._grant({"grant_type": "refresh_token", "refresh_token": refresh_token})

    async def revoke(self, token: str) -> None:
        """Best effort: a revoked refresh token cannot outlive the session; failures are only logged."""
        try:
            endpoints = await self.endpoints()
            if endpoints.revocation is None:
                return
            form = {"token": token, "client_id": self.client_id, "client_secret": self._secret}
            await self._http.post(endpoints.revocation, data=form)
        except (httpx.HTTPError, SignInError) as err:
            log.info("portal.revoke_failed", cause=type(err).__name__)

    async def end_session_url(self, id_token: str | None, post_logout_redirect_uri: str) -> str | None:
        """Where to send the browser to end the issuer's own session, when the provider has an end-session endpoint."""
        try:
            endpoints = await self.endpoints()
        except SignInError:
            return None
        if endpoints.end_session is None:
            return None
        query = {"client_id": self.client_id, "post_logout_redirect_uri": post_logout_redirect_uri}
        if id_token:
            query["id_token_hint"] = id_token
        return f"{endpoints.end_session}?{urlencode(query)}"

    async def _grant(self, form: dict[str, str]) -> Tokens:
        endpoints = await self.endpoints()
        body = await self._json(
            "POST", endpoints.token, data={**form, "client_id": self.client_id, "client_secret": self._secret}
        )
        access = body.get("access_token")
        if not isinstance(access, str) or not access:
            raise SignInError("the identity provider answered without an access token")
        expires_in = body.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else _DEFAULT_EXPIRES_IN
        return Tokens(
            access_token=access,
            expires_at=time.time() + lifetime,
            refresh_token=_optional(body.get("refresh_token")),
            id_token=_optional(body.get("id_token")),
        )

    async def _json(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await self._http.request(method, url, headers={"Accept": "application/json"}, **kwargs)
        except httpx.HTTPError as err:
            self._endpoints = None
            raise IssuerDownError("the identity provider cannot be reached; try again in a minute") from err
        if response.status_code >= 500:
            self._endpoints = None
            raise IssuerDownError(f"the identity provider failed (HTTP {response.status_code}); try again shortly")
        try:
            body = response.json()
        except ValueError as err:
            raise SignInError(f"the identity provider answered HTTP {response.status_code} without JSON") from err
        if not isinstance(body, dict):
            raise SignInError("the identity provider answered something other than a JSON object")
        if response.status_code != 200:
            code = body.get("error", f"HTTP {response.status_code}")
            raise SignInError(f"the identity provider refused: {code}")
        return body


def _optional(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
