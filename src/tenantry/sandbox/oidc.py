"""The sandbox OIDC issuer: one authentik application's OAuth2/OIDC provider, its keys and grants in memory."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from starlette.routing import BaseRoute

from tenantry.sandbox.oidc_grants import GrantStore
from tenantry.sandbox.oidc_keys import ALGORITHM, KeyRing
from tenantry.sandbox.oidc_models import DEVICE_CODE_GRANT, Authorization, DemoUser, OidcClient

__all__ = ["DemoUser", "OidcClient", "OidcIssuer"]

ACR = "goauthentik.io/providers/oauth2/default"


def scope_claims(user: DemoUser, scope: Sequence[str]) -> dict[str, Any]:
    """The claims authentik's default scope mappings add for ``profile`` and ``email``."""
    claims: dict[str, Any] = {}
    if "profile" in scope:
        claims.update(
            name=user.name,
            given_name=user.name,
            preferred_username=user.username,
            nickname=user.username,
            groups=list(user.groups),
        )
    if "email" in scope:
        claims.update(email=user.email, email_verified=False)
    return claims


class OidcIssuer:
    """Issues and checks tokens for the clients of one application (``/application/o/<app_slug>/``).

    Follows authentik as the NOTES describe it: a per-application issuer with a trailing slash, RS256
    with a ``kid``, ``sub`` = the user's uuid, ``aud`` = ``azp`` = the client_id, scope claims (``groups``
    = group names) in both tokens, no refresh token for client_credentials. Refresh tokens are issued only
    when the granted scope holds ``offline_access`` and the client has the ``refresh_token`` grant; they
    rotate on every use (the presented one stops working). ``routes()`` serves it over HTTP.
    """

    def __init__(
        self,
        *,
        app_slug: str = "tenantry",
        public_url: str,
        clients: Sequence[OidcClient],
        users: Sequence[DemoUser],
        access_token_validity: float = 3600,
        clock: Callable[[], float] = time.time,
        refresh_token_validity: float = 30 * 86400,
        code_validity: float = 60,
        device_code_validity: float = 600,
        device_poll_interval: int = 5,
    ) -> None:
        self.app_slug = app_slug
        self.public_url = public_url.rstrip("/")
        self.access_token_validity = access_token_validity
        self.refresh_token_validity = refresh_token_validity
        self.code_validity = code_validity
        self.device_code_validity = device_code_validity
        self.device_poll_interval = device_poll_interval
        self._clock = clock
        self._clients = {client.client_id: client for client in clients}
        self._users = {user.username: user for user in users}
        self._keys = KeyRing()
        # authentik's ``uid`` claim is a salted hash of the user id; the salt plays its SECRET_KEY.
        self._uid_salt = secrets.token_hex(16)
        self._lock = threading.Lock()
        self._revoked: dict[str, float] = {}  # jti -> exp, forgotten once the token would expire anyway
        self.grants = GrantStore(self)

    # -- identity and discovery -----------------------------------------------------------------
    @property
    def issuer(self) -> str:
        return f"{self.public_url}/application/o/{self.app_slug}/"

    def url(self, path: str) -> str:
        return f"{self.public_url}{path}"

    def discovery(self) -> dict[str, Any]:
        scopes = sorted({"openid", *(s for c in self._clients.values() for s in c.scopes)})
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.url("/application/o/authorize/"),
            "token_endpoint": self.url("/application/o/token/"),
            "userinfo_endpoint": self.url("/application/o/userinfo/"),
            "revocation_endpoint": self.url("/application/o/revoke/"),
            "introspection_endpoint": self.url("/application/o/introspect/"),
            "device_authorization_endpoint": self.url("/application/o/device/"),
            "jwks_uri": self.url(f"/application/o/{self.app_slug}/jwks/"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", DEVICE_CODE_GRANT],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "scopes_supported": scopes,
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "acr",
                "amr",
                "nonce",
                "name",
                "given_name",
                "preferred_username",
                "nickname",
                "groups",
                "email",
                "email_verified",
            ],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "request_parameter_supported": False,
        }

    def routes(self) -> list[BaseRoute]:
        from tenantry.sandbox.oidc_endpoints import OidcEndpoints

        return OidcEndpoints(self).routes()

    # -- keys -----------------------------------------------------------------------------------
    @property
    def current_kid(self) -> str:
        return self._keys.current.kid

    def jwks(self) -> dict[str, Any]:
        return self._keys.jwks()

    def rotate_keys(self, keep_previous: bool = True) -> str:
        """Sign from now on with a fresh key; returns its kid. Old keys stay published if kept."""
        return self._keys.rotate(keep_previous=keep_previous).kid

    def retire_previous_keys(self) -> list[str]:
        """Unpublish every key but the current one: tokens they signed stop validating."""
        return self._keys.retire_previous()

    # -- directory ------------------------------------------------------------------------------
    def client(self, client_id: str) -> OidcClient | None:
        return self._clients.get(client_id)

    def user(self, username: str) -> DemoUser | None:
        return self._users.get(username)

    def add_client(self, client: OidcClient) -> None:
        with self._lock:
            self._clients[client.client_id] = client

    def add_user(self, user: DemoUser) -> None:
        """Add a user, or replace the one with that username (e.g. after a password or group change)."""
        with self._lock:
            self._users[user.username] = user

    def authenticate_user(self, username: str, password: str) -> DemoUser | None:
        user = self._users.get(username)
        return user if user is not None and user.password_matches(password) else None

    def service_account(self, client: OidcClient) -> DemoUser:
        """The ``ak-<name>-client_credentials`` account a confidential client acts as (NOTES §1 mode 3)."""
        return DemoUser(
            username=client.service_account_username,
            password="",
            name=client.service_account_username,
            email="",
            groups=list(client.service_account_groups),
            sub=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.issuer}#{client.client_id}")),
        )

    def _known_principal(self, sub: str) -> DemoUser | None:
        user = next((u for u in list(self._users.values()) if u.sub == sub), None)
        if user is not None:
            return user
        accounts = (self.service_account(c) for c in list(self._clients.values()) if not c.is_public)
        return next((account for account in accounts if account.sub == sub), None)

    # -- tokens for tests and the other simulators ----------------------------------------------
    def mint_token(
        self,
        *,
        sub: str,
        groups: Sequence[str] | None = None,
        audience: str | list[str] | None = None,
        expires_in: float | None = None,
        not_before: float | None = None,
        extra_claims: dict[str, Any] | None = None,
        kid: str | None = None,
        scope: str = "openid profile email",
    ) -> str:
        """A signed access token without any flow; ``extra_claims`` override anything (for bad tokens)."""
        now = int(self._clock())
        known = self._known_principal(sub)
        default_client = next(iter(self._clients), self.app_slug)
        aud = audience if audience is not None else default_client
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": sub,
            "aud": aud,
            "exp": now + int(self.access_token_validity if expires_in is None else expires_in),
            "iat": now,
            "auth_time": now,
            "acr": ACR,
            "azp": aud if isinstance(aud, str) else default_client,
            "uid": self._uid(sub),
            "jti": uuid.uuid4().hex,
            "scope": scope,
            "preferred_username": known.username if known else sub,
            "name": known.name if known else sub,
            "email": known.email if known else "",
            "groups": list(groups if groups is not None else (known.groups if known else [])),
        }
        if not_before is not None:
            claims["nbf"] = int(not_before)
        claims.update(extra_claims or {})
        return self._keys.sign(claims, kid=kid)

    def decode_access_token(self, token: str, *, audience: str | None = None) -> dict[str, Any] | None:
        """The claims of a live access token of this issuer (signature, iss, exp, nbf, not revoked)."""
        claims = self._keys.verify(token)
        if claims is None or claims.get("iss") != self.issuer or not isinstance(claims.get("jti"), str):
            return None
        now = self._clock()
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if not isinstance(exp, int | float) or exp <= now:
            return None
        if nbf is not None and (not isinstance(nbf, int | float) or nbf > now):
            return None
        aud = claims.get("aud")
        if audience is not None and audience != aud and not (isinstance(aud, list) and audience in aud):
            return None
        with self._lock:
            if claims["jti"] in self._revoked:
                return None
        return claims

    def principal(self, claims: dict[str, Any]) -> DemoUser:
        """Who a token speaks for: the registered user or service account, groups as the token says."""
        sub = str(claims.get("sub", ""))
        groups = claims.get("groups")
        known = self._known_principal(sub)
        if known is not None:
            return dataclasses.replace(known, groups=list(groups) if isinstance(groups, list) else known.groups)
        return DemoUser(
            username=str(claims.get("preferred_username") or sub),
            password="",
            name=str(claims.get("name") or ""),
            email=str(claims.get("email") or ""),
            groups=[str(g) for g in groups] if isinstance(groups, list) else [],
            sub=sub,
        )

    def validate_access_token(self, token: str, *, audience: str | None = None) -> DemoUser | None:
        """The principal of a live access token this issuer signed, or None."""
        claims = self.decode_access_token(token, audience=audience)
        return None if claims is None else self.principal(claims)

    def userinfo(self, claims: dict[str, Any]) -> dict[str, Any]:
        user = self.principal(claims)
        return {"sub": user.sub, **scope_claims(user, str(claims.get("scope", "")).split())}

    # -- grants (called by the endpoints) -------------------------------------------------------
    def now(self) -> float:
        return self._clock()

    def granted_scope(self, client: OidcClient, requested: str | None) -> tuple[str, ...]:
        """Requested scopes intersected with the client's; all of them when none are requested."""
        wanted = (requested or "").split()
        if not wanted:
            return tuple(client.scopes)
        return tuple(scope for scope in dict.fromkeys(wanted) if scope in client.scopes)

    def authorization(
        self, client: OidcClient, user: DemoUser, scope: tuple[str, ...], nonce: str | None = None
    ) -> Authorization:
        return Authorization(
            client=client,
            user=user,
            scope=scope,
            auth_time=int(self._clock()),
            sid=secrets.token_hex(16),
            nonce=nonce or None,
        )

    def issue_client_credentials(self, client: OidcClient, requested: str | None) -> dict[str, Any]:
        auth = Authorization(
            client=client,
            user=self.service_account(client),
            scope=self.granted_scope(client, requested),
            auth_time=int(self._clock()),
            sid=secrets.token_hex(16),
            password_login=False,
        )
        body, _ = self.issue_tokens(auth, refresh=False)
        return body

    def revoke_jti(self, jti: str, expires_at: float) -> None:
        with self._lock:
            now = self._clock()
            for stale in [j for j, exp in self._revoked.items() if exp <= now]:
                del self._revoked[stale]
            self._revoked[jti] = expires_at

    def revoke(self, client: OidcClient, token: str) -> None:
        """RFC 7009: forget a refresh token or deny an access token; unknown tokens are no error."""
        if self.grants.drop_refresh(client, token):
            return
        claims = self.decode_access_token(token, audience=client.client_id)
        if claims is not None:
            self.revoke_jti(claims["jti"], float(claims["exp"]))

    def introspect(self, client: OidcClient, token: str) -> dict[str, Any]:
        """RFC 7662, limited like authentik to tokens issued to the asking client."""
        grant = self.grants.live_refresh(client, token)
        if grant is not None:
            return {
                "active": True,
                "token_type": "refresh_token",
                "client_id": client.client_id,
                "scope": " ".join(grant.auth.scope),
                "sub": grant.auth.user.sub,
                "username": grant.auth.user.username,
                "exp": int(grant.expires_at),
            }
        claims = self.decode_access_token(token, audience=client.client_id)
        if claims is None:
            return {"active": False}
        return {
            **claims,
            "active": True,
            "token_type": "access_token",
            "client_id": client.client_id,
            "username": claims.get("preferred_username", claims.get("sub")),
        }

    def issue_tokens(
        self, auth: Authorization, *, access_scope: tuple[str, ...] | None = None, refresh: bool | None = None
    ) -> tuple[dict[str, Any], str]:
        """The token response for ``auth`` and the access token's jti.

        ``refresh=None`` issues a refresh token when the scope holds offline_access and the client may
        refresh; the refresh token always carries ``auth.scope``, the access token ``access_scope``.
        """
        scope = auth.scope if access_scope is None else access_scope
        now = int(self._clock())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": auth.user.sub,
            "aud": auth.client.client_id,
            "exp": now + int(self.access_token_validity),
            "iat": now,
            "auth_time": auth.auth_time,
            "acr": ACR,
            "sid": auth.sid,
            "azp": auth.client.client_id,
            "uid": self._uid(auth.user.sub),
        }
        if auth.password_login:
            claims["amr"] = ["pwd"]
        if auth.nonce:
            claims["nonce"] = auth.nonce
        claims.update(scope_claims(auth.user, scope))
        jti = uuid.uuid4().hex
        access_token = self._keys.sign({**claims, "jti": jti, "scope": " ".join(scope)})
        # at_hash (OIDC Core §3.1.3.6): left half of the SHA-256 of the access token, base64url.
        half = hashlib.sha256(access_token.encode()).digest()[:16]
        at_hash = base64.urlsafe_b64encode(half).rstrip(b"=").decode()
        body: dict[str, Any] = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": int(self.access_token_validity),
            "scope": " ".join(scope),
            "id_token": self._keys.sign({**claims, "at_hash": at_hash}),
        }
        if refresh is None:
            refresh = "offline_access" in auth.scope and "refresh_token" in auth.client.grant_types
        if refresh:
            body["refresh_token"] = self.grants.store_refresh(auth)
        return body, jti

    def _uid(self, sub: str) -> str:
        return hashlib.sha256(f"{sub}-{self._uid_salt}".encode()).hexdigest()
