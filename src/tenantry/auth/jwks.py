"""One issuer's discovery document and signing keys (JWKS), cached with key rotation and a floor between fetches.

KeysUnavailableError   no keys can be had from the issuer and none are cached
FetchError             discovery or the JWKS could not be fetched (the message names the cause, never a secret)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import structlog

log = structlog.get_logger(__name__)

# The only algorithms a token may use, each with the key type (and curve) it needs. HMAC and "none" are
# absent on purpose: an HS* token "signed" with the issuer's public key must never verify.
ASYMMETRIC: dict[str, tuple[str, str | None]] = {
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


class KeysUnavailableError(Exception):
    """Discovery or the JWKS could not be fetched and there are no cached keys to fall back on."""


class FetchError(Exception):
    """Discovery or JWKS fetch failed; the message names the cause, never a credential."""


@dataclass(frozen=True)
class Jwk:
    """One public signing key from the JWKS, with the PyJWT key objects built for it so far (per alg)."""

    kid: str
    kty: str
    crv: str | None
    alg: str | None
    data: Mapping[str, Any]
    _prepared: dict[str, jwt.PyJWK] = field(default_factory=dict, repr=False, compare=False)

    def fits(self, alg: str) -> bool:
        kty, crv = ASYMMETRIC[alg]
        # A JWK that names its algorithm may only be used with that one (RFC 7517 §4.4).
        return self.kty == kty and (crv is None or self.crv == crv) and self.alg in (None, alg)

    def for_alg(self, alg: str) -> jwt.PyJWK:
        key = self._prepared.get(alg)
        if key is None:
            key = self._prepared[alg] = jwt.PyJWK(dict(self.data), algorithm=alg)
        return key


class IssuerKeys:
    """The keys of one issuer, from its discovery document's ``jwks_uri``, cached for ``cache_ttl`` seconds.

    An unknown ``kid`` triggers one refresh (key rotation), but refreshes never happen more often than every
    ``min_refresh_interval`` seconds so a flood of made-up key ids cannot hammer the issuer. When a refresh
    fails, the keys already cached keep being used.
    """

    def __init__(
        self,
        issuer: str,
        http: httpx.AsyncClient,
        *,
        cache_ttl: float = 3600,
        min_refresh_interval: float = 10,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._issuer = issuer
        self._http = http
        self._ttl = cache_ttl
        self._min_refresh = min_refresh_interval
        self._clock = clock
        self._discovery_url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        self._discovery: dict[str, Any] | None = None
        self._jwks_uri: str | None = None
        self._keys: dict[str, Jwk] | None = None
        self._fetched_at = 0.0
        self._last_attempt: float | None = None
        # Bumped after every fetch attempt, so callers queued on the lock can tell one just happened.
        self._generation = 0
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> Jwk | None:
        """The published key ``kid``, or None; raises KeysUnavailableError when no keys can be had at all."""
        seen = self._generation
        if self._keys is None or self._clock() - self._fetched_at >= self._ttl:
            await self._refresh(seen)
        if self._keys is None:
            raise KeysUnavailableError("the token issuer's signing keys cannot be fetched")
        jwk = self._keys.get(kid)
        if jwk is None and self._generation == seen:
            # Possibly a rotated key: look once more, unless a fetch already happened during this call.
            await self._refresh(seen)
            jwk = self._keys.get(kid)
        return jwk

    async def endpoint(self, name: str) -> str | None:
        """An endpoint the discovery document names (e.g. ``introspection_endpoint``); raises FetchError."""
        if self._discovery is None:
            await self._discover()
        assert self._discovery is not None
        value = self._discovery.get(name)
        return value if isinstance(value, str) and value else None

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
            except FetchError as err:
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

    async def _discover(self) -> str:
        discovery = await self._get_json(self._discovery_url)
        if discovery.get("issuer") != self._issuer:
            raise FetchError("the discovery document names a different issuer")
        jwks_uri = discovery.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri:
            raise FetchError("the discovery document has no jwks_uri")
        self._discovery = discovery
        return jwks_uri

    async def _fetch_keys(self) -> dict[str, Jwk]:
        if self._jwks_uri is None:
            self._jwks_uri = await self._discover()
        try:
            document = await self._get_json(self._jwks_uri)
        except FetchError:
            # The issuer may have moved its JWKS; discover again next time.
            self._jwks_uri = None
            raise
        return _parse_jwks(document)

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = await self._http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as err:
            raise FetchError(f"{url}: {type(err).__name__}") from err
        if response.status_code != 200:
            raise FetchError(f"{url}: HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError as err:
            raise FetchError(f"{url}: not JSON") from err
        if not isinstance(body, dict):
            raise FetchError(f"{url}: not a JSON object")
        return body


def _parse_jwks(document: Mapping[str, Any]) -> dict[str, Jwk]:
    entries = document.get("keys")
    if not isinstance(entries, list):
        # authentik publishes "{}" for a provider without a signing key (HS256 tokens, refused here).
        raise FetchError("the JWKS has no keys list; does the provider have a signing key?")
    keys: dict[str, Jwk] = {}
    for entry in entries:
        jwk = _parse_jwk(entry)
        if jwk is not None:
            keys[jwk.kid] = jwk
    return keys


def _parse_jwk(entry: object) -> Jwk | None:
    """A usable public signing key, or None for entries that can never verify a token of ours."""
    if not isinstance(entry, dict):
        return None
    kid, kty, crv, alg = entry.get("kid"), entry.get("kty"), entry.get("crv"), entry.get("alg")
    if not isinstance(kid, str) or not kid or entry.get("use", "sig") != "sig":
        return None
    if alg is not None and alg not in ASYMMETRIC:
        return None
    candidates = [alg] if alg is not None else [a for a, (t, c) in ASYMMETRIC.items() if t == kty and c in (None, crv)]
    if not candidates:
        return None  # symmetric ("oct") or unknown key types are ignored
    jwk = Jwk(kid=kid, kty=str(kty), crv=crv if isinstance(crv, str) else None, alg=alg, data=entry)
    try:
        jwk.for_alg(candidates[0])  # build once so a malformed key is dropped now, not per request
    except jwt.PyJWTError as err:
        log.warning("auth.jwks.key_skipped", kid=kid, cause=type(err).__name__)
        return None
    return jwk
