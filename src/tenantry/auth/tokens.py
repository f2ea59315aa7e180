"""Bearer access-token validation against trusted OIDC issuers' JWKS, with key caching and rotation.

InvalidTokenError        the token is refused; ``reason`` is short and safe to show (HTTP 401)
 └ MissingTokenError     there is no bearer token at all (HTTP 401 with a bare challenge)
IssuerUnavailableError   no keys, or no introspection answer, can be had from the issuer (HTTP 503)
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import httpx
import jwt
import structlog

from tenantry.auth.identity import Identity
from tenantry.auth.introspection import IntrospectionUnavailableError, Introspector
from tenantry.auth.jwks import ASYMMETRIC, FetchError, IssuerKeys, Jwk, KeysUnavailableError
from tenantry.auth.token_lru import TokenLru, token_digest

log = structlog.get_logger(__name__)

# An Authorization header this long is an attack or a mistake; refuse before parsing anything.
_MAX_TOKEN_LENGTH = 64 * 1024
_SPACE = re.compile(r"\s")  # what str.isspace() calls whitespace, found in C rather than a character at a time
ID_TOKEN_REFUSED = "an ID token is not accepted, only an access token"  # noqa: S105 -- a reason, not a secret
NOT_ACTIVE = "the token is no longer active (revoked, or its session ended)"

_REASONS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.InvalidSignatureError, "bad signature"),
    (jwt.InvalidAudienceError, "wrong audience"),
    (jwt.InvalidIssuerError, "wrong issuer"),
    (jwt.InvalidAlgorithmError, "algorithm not allowed"),
    (jwt.exceptions.InvalidSubjectError, "invalid subject"),
    (jwt.DecodeError, "malformed token"),
)


class InvalidTokenError(Exception):
    """The token is refused. ``reason`` never contains any part of the token."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MissingTokenError(InvalidTokenError):
    """The request carries no bearer token (no Authorization header, or another scheme)."""


class IssuerUnavailableError(Exception):
    """The issuer's keys (none cached) or its introspection answer cannot be had: fail closed."""


@dataclass(frozen=True)
class VerifiedToken:
    """A token whose signature and claims were verified: kept (by digest) until ``exp`` so a repeat skips RSA."""

    identity: Identity
    kid: str
    exp: float
    issuer: str = ""  # the issuer that verified it: a repeat goes straight to that issuer's validator


class TokenVerifier(Protocol):
    """Anything that turns a bearer token into an Identity or refuses it."""

    async def validate(self, token: str) -> Identity: ...


class TokenValidator:
    """Validates tokens of one issuer for its client ids (audiences) and turns them into an Identity.

    The token's ``aud`` must name one of the client ids, and so must its ``azp`` when present: authentik sets
    both to the provider's client id. ``expects="access"`` (the API) refuses ID tokens, see
    :func:`refuse_id_token`; ``"id"`` is for a client checking the ID token of its own sign-in.

    Keys come from :class:`~tenantry.auth.jwks.IssuerKeys`. ``verified``, when given, keeps tokens already
    verified (by digest) until they expire, so a repeated token costs no signature check; it is still refused
    once past its ``exp`` or when its key is no longer published. ``introspector``, when given, asks the
    issuer's introspection endpoint whether the token is still active on every use (its own short cache).
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str | Sequence[str],
        http: httpx.AsyncClient,
        algorithms: Sequence[str] = ("RS256", "ES256"),
        leeway: float = 30,
        jwks_cache_ttl: float = 3600,
        jwks_min_refresh_interval: float = 10,
        clock: Callable[[], float] = time.time,
        expects: Literal["access", "id"] = "access",
        verified: TokenLru[VerifiedToken] | None = None,
        introspector: Introspector | None = None,
    ) -> None:
        self._issuer = issuer
        self._audience = [audience] if isinstance(audience, str) else list(audience)
        if not self._audience:
            raise ValueError("at least one audience is required")
        # HS* and "none" are dropped even when configured: symmetric keys have no place on this side.
        self._algorithms = frozenset(a for a in algorithms if a in ASYMMETRIC)
        if not self._algorithms:
            raise ValueError(f"no usable asymmetric algorithm among {list(algorithms)}")
        self._leeway = leeway
        self._clock = clock
        self._expects = expects
        self._verified = verified
        self._introspector = introspector
        self._keys = IssuerKeys(
            issuer, http, cache_ttl=jwks_cache_ttl, min_refresh_interval=jwks_min_refresh_interval, clock=clock
        )

    @property
    def issuer(self) -> str:
        return self._issuer

    async def validate(self, token: str) -> Identity:
        """The identity a valid token stands for; raises InvalidTokenError or IssuerUnavailableError."""
        if not token or len(token) > _MAX_TOKEN_LENGTH:
            raise InvalidTokenError("malformed token")
        digest = token_digest(token)
        cached = self._verified.get(digest) if self._verified is not None else None
        if cached is None:
            verified = await self._verify(token)
            if self._verified is not None:
                self._verified.put(digest, verified)
        else:
            verified = await self._still_valid(digest, cached)
        if self._introspector is not None:
            await self._check_active(token, verified)
        return verified.identity

    async def _still_valid(self, digest: str, cached: VerifiedToken) -> VerifiedToken:
        expired = cached.exp <= self._clock() - self._leeway
        if expired or await self._key(cached.kid) is None:
            assert self._verified is not None
            self._verified.pop(digest)
            raise InvalidTokenError("expired" if expired else "unknown key")
        return cached

    async def _verify(self, token: str) -> VerifiedToken:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as err:
            raise InvalidTokenError("malformed token") from err
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise InvalidTokenError("algorithm not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidTokenError("missing key id")
        jwk = await self._key(kid)
        if jwk is None:
            raise InvalidTokenError("unknown key")
        if not jwk.fits(alg):
            raise InvalidTokenError("algorithm does not match key")
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                key=jwk.for_alg(alg),
                algorithms=[alg],
                audience=self._audience,
                issuer=self._issuer,
                # Time claims are checked below against the injected clock.
                options={
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "require": ["iss", "aud", "exp", "sub"],
                },
            )
        except jwt.MissingRequiredClaimError as err:
            raise InvalidTokenError(f"missing {err.claim} claim") from err
        except jwt.PyJWTError as err:
            raise InvalidTokenError(_reason(err)) from err
        self._check_times(payload)
        if not payload["sub"]:
            raise InvalidTokenError("invalid subject")
        if "azp" in payload and payload["azp"] not in self._audience:
            raise InvalidTokenError("wrong authorized party")
        if self._expects == "access":
            refuse_id_token(payload)
        return VerifiedToken(
            identity=Identity.from_claims(payload), kid=kid, exp=float(payload["exp"]), issuer=self._issuer
        )

    def _check_times(self, payload: Mapping[str, Any]) -> None:
        now = self._clock()
        exp = payload["exp"]
        if not _is_number(exp):
            raise InvalidTokenError("malformed exp claim")
        if exp <= now - self._leeway:
            raise InvalidTokenError("expired")
        for claim, reason in (("nbf", "not yet valid"), ("iat", "issued in the future")):
            value = payload.get(claim)
            if value is None:
                continue
            if not _is_number(value):
                raise InvalidTokenError(f"malformed {claim} claim")
            if value > now + self._leeway:
                raise InvalidTokenError(reason)

    async def _key(self, kid: str) -> Jwk | None:
        try:
            return await self._keys.key(kid)
        except KeysUnavailableError as err:
            raise IssuerUnavailableError(str(err)) from err

    async def _check_active(self, token: str, verified: VerifiedToken) -> None:
        assert self._introspector is not None
        try:
            endpoint = await self._keys.endpoint("introspection_endpoint")
        except FetchError as err:
            log.warning("auth.introspection.discovery_failed", issuer=self._issuer, cause=str(err))
            raise IssuerUnavailableError("the issuer's discovery document cannot be fetched") from err
        if endpoint is None:
            log.error("auth.introspection.no_endpoint", issuer=self._issuer)
            raise IssuerUnavailableError("the issuer names no introspection_endpoint")
        try:
            active = await self._introspector.active(
                token, endpoint=endpoint, client_id=self._client_id(verified.identity.claims), exp=verified.exp
            )
        except IntrospectionUnavailableError as err:
            raise IssuerUnavailableError(str(err)) from err
        if not active:
            raise InvalidTokenError(NOT_ACTIVE)

    def _client_id(self, claims: Mapping[str, Any]) -> str:
        """The client the token was issued to: ``azp``, else the one audience of ours it names."""
        azp, aud = claims.get("azp"), claims.get("aud")
        if isinstance(azp, str):
            return azp
        audiences = [aud] if isinstance(aud, str) else list(aud or [])
        return next((a for a in audiences if a in self._audience), self._audience[0])


def refuse_id_token(payload: Mapping[str, Any]) -> None:
    """Refuse an ID token presented as an access token.

    authentik signs both with the same key, ``iss`` and ``aud``; the ID token is the access token's claim set
    without ``azp``, ``uid`` and ``scope`` (``IDToken.to_jwt`` against ``to_access_token``). So:

    - ``at_hash`` marks an ID token: OIDC Core defines it for ID tokens only, and authentik computes it from the
      finished access token, which therefore never carries it;
    - ``scope`` marks an access token: authentik ≥ 2025.10 puts it in every access token (``""`` when no scope
      was granted; goauthentik/authentik#16454) and never in an ID token;
    - ``nonce`` and ``c_hash`` tell nothing: authentik copies ``nonce`` into the access token of a code flow that
      had one, and ``c_hash`` into the access token of a hybrid flow.
    """
    if "at_hash" in payload or "scope" not in payload:
        raise InvalidTokenError(ID_TOKEN_REFUSED)
    if not isinstance(payload["scope"], str):
        raise InvalidTokenError("malformed scope claim")


class TrustedIssuers:
    """Validates tokens of several providers: the token's ``iss`` picks one, which must then accept it.

    authentik gives every OAuth2 provider its own issuer and one client id, and providers may share a signing
    key, so a token of a provider this API does not trust verifies against the same key and is refused only
    here, on its ``iss``. Each issuer has its own :class:`TokenValidator` (discovery and JWKS cached per
    issuer, fetched on first use); they share one cache of verified tokens (``token_cache_size`` entries, LRU)
    and the ``introspector``, if any.
    """

    def __init__(
        self,
        providers: Mapping[str, Sequence[str]],
        *,
        http: httpx.AsyncClient,
        token_cache_size: int = 4096,
        introspector: Introspector | None = None,
        **options: Any,
    ) -> None:
        if not providers:
            raise ValueError("at least one trusted issuer is required")
        verified: TokenLru[VerifiedToken] = TokenLru(token_cache_size)
        self._verified = verified
        self._validators = {
            issuer: TokenValidator(
                issuer=issuer,
                audience=list(client_ids),
                http=http,
                verified=verified,
                introspector=introspector,
                **options,
            )
            for issuer, client_ids in providers.items()
        }

    @property
    def issuers(self) -> list[str]:
        return list(self._validators)

    async def validate(self, token: str) -> Identity:
        if not token or len(token) > _MAX_TOKEN_LENGTH:
            raise InvalidTokenError("malformed token")
        seen = self._verified.get(token_digest(token))
        if seen is not None and (known := self._validators.get(seen.issuer)) is not None:
            return await known.validate(token)  # verified before: its issuer is known without decoding it again
        try:
            # Read unverified only to pick the validator, which then checks the signature and iss exactly.
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as err:
            raise InvalidTokenError("malformed token") from err
        issuer = claims.get("iss")
        if issuer is None:
            raise InvalidTokenError("missing iss claim")
        validator = self._validators.get(issuer) if isinstance(issuer, str) else None
        if validator is None:
            raise InvalidTokenError("untrusted issuer")
        return await validator.validate(token)


def bearer_token(authorization_header: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive)."""
    scheme, _, token = (authorization_header or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise MissingTokenError("missing bearer token")
    if _SPACE.search(token):
        raise InvalidTokenError("missing bearer token")
    return token


def _reason(err: jwt.PyJWTError) -> str:
    for kind, reason in _REASONS:
        if isinstance(err, kind):
            return reason
    return "invalid token"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
