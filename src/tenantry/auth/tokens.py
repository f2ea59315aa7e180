"""Bearer access-token validation against trusted OIDC issuers' JWKS, with key caching and rotation.

InvalidTokenError        the token is refused; ``reason`` is short and safe to show (HTTP 401)
 └ MissingTokenError     there is no bearer token at all (HTTP 401 with a bare challenge)
IssuerUnavailableError   no keys can be had from the issuer and none are cached (HTTP 503)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import jwt
import structlog

from tenantry.auth.identity import Identity

log = structlog.get_logger(__name__)

# The only algorithms a token may use, each with the key type (and curve) it needs. HMAC and "none" are
# absent on purpose: an HS* token "signed" with the issuer's public key must never verify.
_ASYMMETRIC: dict[str, tuple[str, str | None]] = {
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "EdDSA": ("OKP", "Ed25519"),
}
# An Authorization header this long is an attack or a mistake; refuse before parsing anything.
_MAX_TOKEN_LENGTH = 64 * 1024

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
    """Discovery or the JWKS could not be fetched and there are no cached keys to fall back on."""


class _FetchError(Exception):
    """Discovery or JWKS fetch failed; the message names the cause, never a credential."""


@dataclass(frozen=True)
class _Jwk:
    """One public signing key from the JWKS, with the PyJWT key objects built for it so far (per alg)."""

    kid: str
    kty: str
    crv: str | None
    alg: str | None
    data: Mapping[str, Any]
    _prepared: dict[str, jwt.PyJWK] = field(default_factory=dict, repr=False, compare=False)

    def fits(self, alg: str) -> bool:
        kty, crv = _ASYMMETRIC[alg]
        # A JWK that names its algorithm may only be used with that one (RFC 7517 §4.4).
        return self.kty == kty and (crv is None or self.crv == crv) and self.alg in (None, alg)

    def for_alg(self, alg: str) -> jwt.PyJWK:
        key = self._prepared.get(alg)
        if key is None:
            key = self._prepared[alg] = jwt.PyJWK(dict(self.data), algorithm=alg)
        return key


class TokenVerifier(Protocol):
    """Anything that turns a bearer token into an Identity or refuses it."""

    async def validate(self, token: str) -> Identity: ...


class TokenValidator:
    """Validates access tokens of one issuer for its client ids (audiences) and turns them into an Identity.

    The token's ``aud`` must name one of the client ids, and so must its ``azp`` when present: authentik sets
    both to the provider's client id.

    Keys come from the issuer's discovery document and JWKS, cached for ``jwks_cache_ttl`` seconds. A token
    with an unknown ``kid`` triggers one refresh (key rotation), but refreshes never happen more often than
    every ``jwks_min_refresh_interval`` seconds so a flood of made-up key ids cannot hammer the issuer. When a
    refresh fails, the keys already cached keep being used.
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
    ) -> None:
        self._issuer = issuer
        self._audience = [audience] if isinstance(audience, str) else list(audience)
        if not self._audience:
            raise ValueError("at least one audience is required")
        # HS* and "none" are dropped even when configured: symmetric keys have no place on this side.
        self._algorithms = frozenset(a for a in algorithms if a in _ASYMMETRIC)
        if not self._algorithms:
            raise ValueError(f"no usable asymmetric algorithm among {list(algorithms)}")
        self._http = http
        self._leeway = leeway
        self._ttl = jwks_cache_ttl
        self._min_refresh = jwks_min_refresh_interval
        self._clock = clock
        self._discovery_url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        self._jwks_uri: str | None = None
        self._keys: dict[str, _Jwk] | None = None
        self._fetched_at = 0.0
        self._last_attempt: float | None = None
        # Bumped after every fetch attempt, so callers queued on the lock can tell one just happened.
        self._generation = 0
        self._lock = asyncio.Lock()

    @property
    def issuer(self) -> str:
        return self._issuer

    async def validate(self, token: str) -> Identity:
        """The identity a valid token stands for; raises InvalidTokenError or IssuerUnavailableError."""
        if not token or len(token) > _MAX_TOKEN_LENGTH:
            raise InvalidTokenError("malformed token")
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
        return Identity.from_claims(payload)

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

    async def _key(self, kid: str) -> _Jwk:
        seen = self._generation
        if self._keys is None or self._clock() - self._fetched_at >= self._ttl:
            await self._refresh(seen)
        if self._keys is None:
            raise IssuerUnavailableError("the token issuer's signing keys cannot be fetched")
        jwk = self._keys.get(kid)
        if jwk is None and self._generation == seen:
            # Possibly a rotated key: look once more, unless a fetch already happened during this call.
            await self._refresh(seen)
            jwk = self._keys.get(kid)
        if jwk is None:
            raise InvalidTokenError("unknown key")
        return jwk

    async def _refresh(self, seen_generation: int) -> None:
        async with self._lock:
            if self._generation != seen_generation:
                return  # another caller fetched while this one waited for the lock
            now = self._clock()
            if self._last_attempt is not None and now - self._last_attempt < self._min_refresh:
                return
            self._last_attempt = now
            try:
                keys = await self._fetch_keys()
            except _FetchError as err:
                log.warning(
                    "auth.jwks.refresh_failed",
                    issuer=self._issuer,
                    cause=str(err),
                    cached_keys=0 if self._keys is None else len(self._keys),
                )
                return
            finally:
                self._generation += 1
            self._keys = keys
            self._fetched_at = now
            if keys:
                log.info("auth.jwks.refreshed", issuer=self._issuer, keys=len(keys))
            else:
                log.warning("auth.jwks.no_usable_keys", issuer=self._issuer)

    async def _fetch_keys(self) -> dict[str, _Jwk]:
        if self._jwks_uri is None:
            discovery = await self._get_json(self._discovery_url)
            if discovery.get("issuer") != self._issuer:
                raise _FetchError("the discovery document names a different issuer")
            jwks_uri = discovery.get("jwks_uri")
            if not isinstance(jwks_uri, str) or not jwks_uri:
                raise _FetchError("the discovery document has no jwks_uri")
            self._jwks_uri = jwks_uri
        try:
            document = await self._get_json(self._jwks_uri)
        except _FetchError:
            # The issuer may have moved its JWKS; discover again next time.
            self._jwks_uri = None
            raise
        return _parse_jwks(document)

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = await self._http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as err:
            raise _FetchError(f"{url}: {type(err).__name__}") from err
        if response.status_code != 200:
            raise _FetchError(f"{url}: HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError as err:
            raise _FetchError(f"{url}: not JSON") from err
        if not isinstance(body, dict):
            raise _FetchError(f"{url}: not a JSON object")
        return body


class TrustedIssuers:
    """Validates tokens of several providers: the token's ``iss`` picks one, which must then accept it.

    authentik gives every OAuth2 provider its own issuer and one client id, and providers may share a signing
    key, so a token of a provider this API does not trust verifies against the same key and is refused only
    here, on its ``iss``. Each issuer has its own :class:`TokenValidator` (discovery and JWKS cached per
    issuer, fetched on first use).
    """

    def __init__(self, providers: Mapping[str, Sequence[str]], *, http: httpx.AsyncClient, **options: Any) -> None:
        if not providers:
            raise ValueError("at least one trusted issuer is required")
        self._validators = {
            issuer: TokenValidator(issuer=issuer, audience=list(client_ids), http=http, **options)
            for issuer, client_ids in providers.items()
        }

    @property
    def issuers(self) -> list[str]:
        return list(self._validators)

    async def validate(self, token: str) -> Identity:
        if not token or len(token) > _MAX_TOKEN_LENGTH:
            raise InvalidTokenError("malformed token")
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
    if any(c.isspace() for c in token):
        raise InvalidTokenError("missing bearer token")
    return token


def _parse_jwks(document: Mapping[str, Any]) -> dict[str, _Jwk]:
    entries = document.get("keys")
    if not isinstance(entries, list):
        # authentik publishes "{}" for a provider without a signing key (HS256 tokens, refused here).
        raise _FetchError("the JWKS has no keys list; does the provider have a signing key?")
    keys: dict[str, _Jwk] = {}
    for entry in entries:
        jwk = _parse_jwk(entry)
        if jwk is not None:
            keys[jwk.kid] = jwk
    return keys


def _parse_jwk(entry: object) -> _Jwk | None:
    """A usable public signing key, or None for entries that can never verify a token of ours."""
    if not isinstance(entry, dict):
        return None
    kid, kty, crv, alg = entry.get("kid"), entry.get("kty"), entry.get("crv"), entry.get("alg")
    if not isinstance(kid, str) or not kid or entry.get("use", "sig") != "sig":
        return None
    if alg is not None and alg not in _ASYMMETRIC:
        return None
    candidates = [alg] if alg is not None else [a for a, (t, c) in _ASYMMETRIC.items() if t == kty and c in (None, crv)]
    if not candidates:
        return None  # symmetric ("oct") or unknown key types are ignored
    jwk = _Jwk(kid=kid, kty=str(kty), crv=crv if isinstance(crv, str) else None, alg=alg, data=entry)
    try:
        jwk.for_alg(candidates[0])  # build once so a malformed key is dropped now, not per request
    except jwt.PyJWTError as err:
        log.warning("auth.jwks.key_skipped", kid=kid, cause=type(err).__name__)
        return None
    return jwk


def _reason(err: jwt.PyJWTError) -> str:
    for kind, reason in _REASONS:
        if isinstance(err, kind):
            return reason
    return "invalid token"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
