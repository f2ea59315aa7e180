"""The grant state machines of the sandbox OIDC issuer: codes, rotating refresh tokens, device codes, and
the client_credentials grant's three ways of naming who the machine is."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import secrets
import string
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tenantry.sandbox.oidc_models import (
    Authorization,
    CodeGrant,
    DemoUser,
    DeviceGrant,
    OAuthError,
    OidcClient,
    RefreshGrant,
    SpentCode,
    pkce_matches,
)

if TYPE_CHECKING:
    from tenantry.sandbox.oidc import OidcIssuer

USER_CODE_DIGITS = 9  # authentik's generate_code_fixed_length(): nine digits, zero-padded
# authentik's device code is generate_key(): 128 letters, digits and punctuation (quotes, '?', '+' ...).
_DEVICE_CODE_ALPHABET = string.ascii_letters + string.digits + string.punctuation


def normalize_user_code(raw: str) -> str:
    return "".join(ch for ch in raw if ch.isdigit())


class GrantStore:
    """Pending and redeemable grants of one issuer, in memory; every method is safe across threads."""

    def __init__(self, issuer: OidcIssuer) -> None:
        self._issuer = issuer
        self._lock = threading.RLock()
        self._codes: dict[str, CodeGrant] = {}
        self._spent_codes: dict[str, SpentCode] = {}
        self._refresh: dict[str, RefreshGrant] = {}
        self._devices: dict[str, DeviceGrant] = {}
        self._user_codes: dict[str, str] = {}

    def _now(self) -> float:
        return self._issuer.now()

    # -- authorization codes --------------------------------------------------------------------
    def create_code(self, auth: Authorization, redirect_uri: str, code_challenge: str | None) -> str:
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._prune()
            self._codes[code] = CodeGrant(auth, redirect_uri, code_challenge, self._now() + self._issuer.code_validity)
        return code

    def redeem_code(
        self, client: OidcClient, code: str, redirect_uri: str | None, verifier: str | None
    ) -> dict[str, Any]:
        # A code is good for one attempt: popping it first also stops guessing the PKCE verifier.
        with self._lock:
            grant = self._codes.pop(code, None)
            spent = self._spent_codes.pop(code, None) if grant is None else None
            if spent is not None and spent.refresh_token is not None:
                self._refresh.pop(spent.refresh_token, None)
        if spent is not None:
            # RFC 6749 §4.1.2: a replayed code revokes what it produced.
            self._issuer.revoke_uid(spent.uid, spent.expires_at)
            raise OAuthError("invalid_grant", "authorization code was already used")
        if grant is None or grant.expires_at <= self._now():
            raise OAuthError("invalid_grant", "authorization code is unknown or expired")
        if grant.auth.client.client_id != client.client_id:
            raise OAuthError("invalid_grant", "authorization code was issued to another client")
        if redirect_uri != grant.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
        if grant.code_challenge is not None and not pkce_matches(grant.code_challenge, verifier):
            raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
        body, uid = self._issuer.issue_tokens(grant.auth)
        with self._lock:
            self._spent_codes[code] = SpentCode(
                uid, body.get("refresh_token"), self._now() + self._issuer.access_token_validity
            )
        return body

    # -- refresh tokens -------------------------------------------------------------------------
    def store_refresh(self, auth: Authorization) -> str:
        token = secrets.token_urlsafe(48)
        with self._lock:
            self._refresh[token] = RefreshGrant(auth, self._now() + self._issuer.refresh_token_validity)
        return token

    def live_refresh(self, client: OidcClient, token: str) -> RefreshGrant | None:
        with self._lock:
            grant = self._refresh.get(token)
        if grant is None or grant.auth.client.client_id != client.client_id:
            return None
        return grant if grant.expires_at > self._now() else None

    def drop_refresh(self, client: OidcClient, token: str) -> bool:
        with self._lock:
            grant = self._refresh.get(token)
            if grant is None or grant.auth.client.client_id != client.client_id:
                return False
            del self._refresh[token]
            return True

    def redeem_refresh_token(self, client: OidcClient, token: str, requested: str | None) -> dict[str, Any]:
        """authentik's refresh: the requested scope (default: the original) must be within the original and
        hold offline_access; the new tokens keep the original scope; the presented token stops working."""
        with self._lock:
            grant = self._refresh.get(token)
            if grant is None or grant.auth.client.client_id != client.client_id:
                raise OAuthError("invalid_grant", "refresh token is unknown, used or revoked")
            if grant.expires_at <= self._now():
                raise OAuthError("invalid_grant", "refresh token has expired")
            wanted = set(requested.split()) if requested else set(grant.auth.scope)
            if not wanted <= set(grant.auth.scope) or "offline_access" not in wanted:
                raise OAuthError("invalid_scope", "the scope must hold offline_access and stay within the original")
            del self._refresh[token]  # rotation: the presented token never works again
        current = self._issuer.user(grant.auth.user.username)
        if current is None:
            raise OAuthError("invalid_grant", "the user of this refresh token no longer exists")
        # Fresh profile claims: groups may have changed since the sign-in.
        body, _ = self._issuer.issue_tokens(dataclasses.replace(grant.auth, user=current), refresh=True)
        return body

    # -- client_credentials (and password, which authentik treats the same) ----------------------
    def client_credentials(self, client: OidcClient, form: Mapping[str, str], secret: str) -> dict[str, Any]:
        """authentik's client_credentials grant (``views/token.py``, ``__post_init_client_credentials``).

        ``username`` + ``password`` (an app password of that user) acts as that user; the provider's own
        secret acts as ``ak-<provider>-client_credentials``; any other secret is read as
        ``base64(username:app-password)``. Every failure is ``invalid_grant``. No scope requested: none.
        """
        username = form.get("username", "")
        if username:
            user = self._app_password_user(username, form.get("password", ""))
        elif client.secret_matches(secret):
            user = self._issuer.service_account(client)
        else:
            try:
                decoded = base64.b64decode(secret).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError, ValueError) as err:
                raise OAuthError("invalid_grant", "client authentication failed") from err
            name, _, password = decoded.partition(":")
            user = self._app_password_user(name, password)
        auth = Authorization(
            client=client,
            user=user,
            scope=self._issuer.granted_scope(client, form.get("scope"), all_if_none=False),
            auth_time=int(self._now()),
            password_login=False,
        )
        body, _ = self._issuer.issue_tokens(auth, refresh=False)
        return body

    def _app_password_user(self, username: str, app_password: str) -> DemoUser:
        user = self._issuer.authenticate_app_password(username, app_password)
        if user is None:
            raise OAuthError("invalid_grant", "unknown user or app password")
        return user

    # -- device codes (RFC 8628) ----------------------------------------------------------------
    def start_device(self, client: OidcClient, scope: tuple[str, ...]) -> DeviceGrant:
        raw = str(secrets.randbelow(10**USER_CODE_DIGITS - 1) + 1).zfill(USER_CODE_DIGITS)
        grant = DeviceGrant(
            device_code="".join(secrets.choice(_DEVICE_CODE_ALPHABET) for _ in range(128)),
            user_code=raw,
            client=client,
            scope=scope,
            expires_at=self._now() + self._issuer.device_code_validity,
            interval=self._issuer.device_poll_interval,
        )
        with self._lock:
            self._prune()
            self._devices[grant.device_code] = grant
            self._user_codes[raw] = grant.device_code
        return grant

    def decide_device(self, user_code: str, user: DemoUser | None) -> DeviceGrant:
        """Approve (a signed-in ``user``) or deny (``None``) the device that shows ``user_code``."""
        key = normalize_user_code(user_code)
        with self._lock:
            grant = self._devices.get(self._user_codes.get(key, ""))
            if grant is None or grant.expires_at <= self._now():
                raise OAuthError("invalid_grant", "this code is unknown or has expired")
            del self._user_codes[key]
            grant.status = "denied" if user is None else "approved"
            grant.user, grant.auth_time = user, int(self._now())
        return grant

    def poll_device(self, client: OidcClient, device_code: str) -> dict[str, Any]:
        now = self._now()
        with self._lock:
            grant = self._devices.get(device_code)
            if grant is None or grant.client.client_id != client.client_id:
                raise OAuthError("invalid_grant", "device code is unknown or was already used")
            if grant.expires_at <= now:
                self._drop_device(grant)
                raise OAuthError("expired_token", "device code has expired")
            if grant.status == "denied":
                self._drop_device(grant)
                raise OAuthError("access_denied", "the user denied the request")
            if grant.status == "pending":
                too_soon = grant.last_poll is not None and now - grant.last_poll < grant.interval
                grant.last_poll = now
                if too_soon:
                    grant.interval += 5  # RFC 8628 §3.5: the client must add 5 seconds for good
                    raise OAuthError("slow_down", f"poll at most every {grant.interval} seconds")
                raise OAuthError("authorization_pending", "the user has not approved the request yet")
            self._drop_device(grant)
        assert grant.user is not None
        # A device token has no browser session of its own, so its tokens carry no sid.
        auth = Authorization(client=client, user=grant.user, scope=grant.scope, auth_time=grant.auth_time)
        body, _ = self._issuer.issue_tokens(auth)
        return body

    # -- housekeeping ---------------------------------------------------------------------------
    def _drop_device(self, grant: DeviceGrant) -> None:
        self._devices.pop(grant.device_code, None)
        self._user_codes.pop(normalize_user_code(grant.user_code), None)

    def _prune(self) -> None:
        # Runs under the lock on every new grant, so abandoned flows do not pile up in a long demo.
        now = self._now()
        for code in [c for c, g in self._codes.items() if g.expires_at <= now]:
            del self._codes[code]
        for code in [c for c, s in self._spent_codes.items() if s.expires_at <= now]:
            del self._spent_codes[code]
        for token in [t for t, g in self._refresh.items() if g.expires_at <= now]:
            del self._refresh[token]
        # Expired device codes linger a minute so a late poll hears expired_token, not invalid_grant.
        for grant in [g for g in self._devices.values() if g.expires_at <= now - 60]:
            self._drop_device(grant)
