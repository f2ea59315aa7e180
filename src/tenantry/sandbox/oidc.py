"""The sandbox OIDC issuer: authentik's OAuth2 providers (one client id and one issuer each), keys and grants."""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

from starlette.routing import BaseRoute

from tenantry.sandbox.oidc_grants import GrantStore
from tenantry.sandbox.oidc_keys import KeyRing
from tenantry.sandbox.oidc_models import Authorization, DemoUser, OidcClient

__all__ = ["DemoUser", "OidcClient", "OidcIssuer"]

ACR = "goauthentik.io/providers/oauth2/default"
_UID_ALPHABET = string.ascii_letters + string.digits


def scope_claims(user: DemoUser, scope: Iterable[str]) -> dict[str, Any]:
    """The claims authentik's default scope mappings add: ``groups`` only with ``profile``."""
    claims: dict[str, Any] = {}
    if "email" in scope:
        claims.update(email=user.email, email_verified=False)
    if "profile" in scope:
        claims.update(
            name=user.name,
            given_name=user.name,
            preferred_username=user.username,
            nickname=user.username,
            groups=list(user.groups),
        )
    return claims


def _token_uid() -> str:
    # authentik's IDToken.to_access_token adds uid = generate_id(): 40 random letters and digits per token.
    return "".join(secrets.choice(_UID_ALPHABET) for _ in range(40))


class OidcIssuer:
    """The OAuth2 side of one sandbox authentik, following authentik 2025.12 (NOTES §6 and §10).

    Every client is a provider of its own application: its issuer is ``<host>/application/o/<slug>/`` (with
    the trailing slash) with its own discovery document and JWKS, while all providers sign with one shared
    key ring, as authentik's providers may share the self-signed certificate. The token endpoint is shared
    and the client id picks the provider. Access tokens are RS256 with a 32-hex ``kid``; ``sub`` is the
    user's 64-hex hashed id; ``aud`` = ``azp`` = the client id; a random ``uid`` per token; no ``jti``
    (authentik added one only in 2026.2), and ``sid`` only for a browser sign-in. Scope claims come from
    the granted scopes the provider maps: no ``profile``, no ``groups``. Refresh tokens are issued only
    with ``offline_access`` and rotate on every use. ``issuer`` names the ``app_slug`` application's issuer.
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
        device_code_validity: float = 60,
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
        # authentik hashes a user's id with its install id into the 64-hex uid; this salt plays that part.
        self._install_id = secrets.token_hex(16)
        self._lock = threading.Lock()
        self._revoked: dict[str, float] = {}  # token uid -> exp, forgotten once the token would expire anyway
        self.grants = GrantStore(self)

    # -- providers and their issuers ------------------------------------------------------------
    @property
    def issuer(self) -> str:
        return self.issuer_of_slug(self.app_slug)

    def issuer_of_slug(self, slug: str) -> str:
        return f"{self.public_url}/application/o/{slug}/"

    def issuer_for(self, client: OidcClient | str) -> str:
        """The issuer of the provider with this client id (the ``app_slug`` issuer for an unknown one)."""
        known = self._clients.get(client) if isinstance(client, str) else client
        return self.issuer if known is None else self.issuer_of_slug(known.slug)

    def provider(self, slug: str) -> OidcClient | None:
        """The provider of the application ``slug``."""
        return next((c for c in list(self._clients.values()) if c.slug == slug), None)

    def url(self, path: str) -> str:
        return f"{self.public_url}{path}"

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

    def authenticate_app_password(self, username: str, app_password: str) -> DemoUser | None:
        """The user whose app password (a token of intent ``app_password``) this is, or None."""
        user = self._users.get(username)
        return user if user is not None and user.app_password_matches(app_password) else None

    def service_account(self, client: OidcClient) -> DemoUser:
        """``ak-<name>-client_credentials``, the account authentik creates for a provider's own secret."""
        return DemoUser(
            username=client.service_account_username,
            password="",
            name=f"Autogenerated user from application {client.name} (client credentials)",
            email="",
            groups=list(client.service_account_groups),
            sub=hashlib.sha256(f"{client.service_account_username}-{self._install_id}".encode()).hexdigest(),
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
        kind: Literal["access", "id"] = "access",
    ) -> str:
        """A signed access token without any flow, from the provider of ``audience`` (its issuer).

        The profile claims (``groups`` among them) are present only when ``scope`` holds ``profile``;
        ``extra_claims`` override anything (for bad tokens). ``kind="id"`` makes the ID token authentik would
        send beside it: the same claims without ``azp``, ``uid`` and ``scope``.
        """
        now = int(self._clock())
        known = self._known_principal(sub)
        aud = audience if audience is not None else next(iter(self._clients), self.app_slug)
        principal = DemoUser(
            username=known.username if known else sub,
            password="",
            name=known.name if known else sub,
            email=known.email if known else "",
            groups=list(groups if groups is not None else (known.groups if known else [])),
            sub=sub,
        )
        claims: dict[str, Any] = {
            "iss": self.issuer_for(aud) if isinstance(aud, str) else self.issuer,
            "sub": sub,
            "aud": aud,
            "exp": now + int(self.access_token_validity if expires_in is None else expires_in),
            "iat": now,
            "auth_time": now,
            "acr": ACR,
            **scope_claims(principal, scope.split()),
            "azp": aud if isinstance(aud, str) else aud[0],
            "uid": _token_uid(),
            "scope": scope,
        }
        if not_before is not None:
            claims["nbf"] = int(not_before)
        if kind == "id":
            for access_only in ("azp", "uid", "scope"):
                del claims[access_only]
        claims.update(extra_claims or {})
        return self._keys.sign(claims, kid=kid)

    def decode_access_token(self, token: str, *, audience: str | None = None) -> dict[str, Any] | None:
        """The claims of a live access token of one of these providers (signature, iss, exp, nbf, not revoked)."""
        claims = self._keys.verify(token)
        if claims is None or not isinstance(claims.get("uid"), str):
            return None
        issuers = {self.issuer, *(self.issuer_for(c) for c in list(self._clients.values()))}
        now = self._clock()
        exp, nbf, aud = claims.get("exp"), claims.get("nbf"), claims.get("aud")
        live = (
            isinstance(exp, int | float)
            and exp > now
            and (nbf is None or (isinstance(nbf, int | float) and nbf <= now))
        )
        addressed = audience is None or audience == aud or (isinstance(aud, list) and audience in aud)
        if claims.get("iss") not in issuers or not live or not addressed:
            return None
        with self._lock:
            revoked = claims["uid"] in self._revoked
        return None if revoked else claims

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
        """The principal of a live access token these providers signed, or None."""
        claims = self.decode_access_token(token, audience=audience)
        return None if claims is None else self.principal(claims)

    def userinfo(self, claims: dict[str, Any]) -> dict[str, Any]:
        user = self.principal(claims)
        client = self._clients.get(str(claims.get("aud")))
        scope = str(claims.get("scope", "")).split()
        mapped = [s for s in scope if client is None or s in client.scopes]
        return {"sub": user.sub, **scope_claims(user, mapped)}

    # -- grants (called by the endpoints and the grant store) -----------------------------------
    def now(self) -> float:
        return self._clock()

    def granted_scope(self, client: OidcClient, requested: str | None, *, all_if_none: bool) -> tuple[str, ...]:
        """Requested scopes intersected with the provider's mappings.

        With none requested, the authorize endpoint grants every mapped scope (``all_if_none``), but the
        token endpoint (client_credentials) grants none: scope ``""`` and no scope claims at all.
        """
        wanted = (requested or "").split()
        if not wanted:
            return tuple(client.scopes) if all_if_none else ()
        return tuple(scope for scope in dict.fromkeys(wanted) if scope in client.scopes)

    def authorization(
        self, client: OidcClient, user: DemoUser, scope: tuple[str, ...], nonce: str | None = None
    ) -> Authorization:
        """A browser sign-in: it has a session, so its tokens carry ``sid`` (a hash of the session key)."""
        session_key = secrets.token_urlsafe(24)
        return Authorization(
            client=client,
            user=user,
            scope=scope,
            auth_time=int(self._clock()),
            sid=hashlib.sha256(session_key.encode()).hexdigest(),
            nonce=nonce or None,
        )

    def revoke_uid(self, uid: str, expires_at: float) -> None:
        with self._lock:
            now = self._clock()
            for stale in [u for u, exp in self._revoked.items() if exp <= now]:
                del self._revoked[stale]
            self._revoked[uid] = expires_at

    def revoke(self, client: OidcClient, token: str) -> None:
        """RFC 7009: forget a refresh token or deny an access token; unknown tokens are no error."""
        if self.grants.drop_refresh(client, token):
            return
        claims = self.decode_access_token(token, audience=client.client_id)
        if claims is not None:
            self.revoke_uid(claims["uid"], float(claims["exp"]))

    def introspect(self, client: OidcClient, token: str) -> dict[str, Any]:
        """RFC 7662 as authentik answers it: only about tokens issued to the asking client; a revoked, expired,
        unknown or foreign token is ``{"active": false}``."""
        grant = self.grants.live_refresh(client, token)
        if grant is not None:
            return {
                "iss": self.issuer_for(client),
                "sub": grant.auth.user.sub,
                "aud": client.client_id,
                "exp": int(grant.expires_at),
                "active": True,
                "scope": " ".join(grant.auth.scope),
                "client_id": client.client_id,
            }
        claims = self.decode_access_token(token, audience=client.client_id)
        if claims is None:
            return {"active": False}
        # authentik answers the token's ID-token claims with active, scope and client_id (views/introspection.py).
        id_claims = {k: v for k, v in claims.items() if k not in ("azp", "uid")}
        return {**id_claims, "active": True, "scope": claims.get("scope", ""), "client_id": client.client_id}

    def issue_tokens(self, auth: Authorization, *, refresh: bool | None = None) -> tuple[dict[str, Any], str]:
        """The token response for ``auth`` and the access token's ``uid``.

        Both tokens carry ``auth.scope`` (a refresh keeps the scope originally granted, as authentik does).
        ``refresh=None`` issues a refresh token when that scope holds offline_access and the client may
        refresh.
        """
        now = int(self._clock())
        claims: dict[str, Any] = {
            "iss": self.issuer_for(auth.client),
            "sub": auth.user.sub,
            "aud": auth.client.client_id,
            "exp": now + int(self.access_token_validity),
            "iat": now,
            "auth_time": auth.auth_time,
            "acr": ACR,
        }
        if auth.password_login:
            claims["amr"] = ["pwd"]
        if auth.nonce:
            claims["nonce"] = auth.nonce
        if auth.sid:
            claims["sid"] = auth.sid
        claims.update(scope_claims(auth.user, [s for s in auth.scope if s in auth.client.scopes]))
        uid = _token_uid()
        scope = " ".join(auth.scope)
        access_token = self._keys.sign({**claims, "azp": auth.client.client_id, "uid": uid, "scope": scope})
        body: dict[str, Any] = {
            "access_token": access_token,
            "token_type": "Bearer",
            "scope": scope,
            "expires_in": int(self.access_token_validity),
            # authentik's token endpoint answers the access token's own claim set as the ID token (IDToken.to_jwt):
            # no azp, uid or scope, and no at_hash (set only by the implicit and hybrid flows).
            "id_token": self._keys.sign(claims),
        }
        if refresh is None:
            refresh = "offline_access" in auth.scope and "refresh_token" in auth.client.grant_types
        if refresh:
            body["refresh_token"] = self.grants.store_refresh(auth)
        return body, uid
