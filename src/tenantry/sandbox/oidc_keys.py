"""RSA signing keys of the sandbox OIDC issuer: the current key, older ones kept to verify, the JWKS."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

ALGORITHM = "RS256"
KEY_SIZE = 2048


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64uint(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8 or 1, "big"))


@dataclass(frozen=True)
class SigningKey:
    """One RSA key pair; its ``kid`` is the RFC 7638 thumbprint, so it is stable and collision-free."""

    kid: str
    private_key: rsa.RSAPrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
        numbers = private_key.public_key().public_numbers()
        canonical = json.dumps(
            {"e": _b64uint(numbers.e), "kty": "RSA", "n": _b64uint(numbers.n)}, separators=(",", ":"), sort_keys=True
        )
        return cls(kid=_b64url(hashlib.sha256(canonical.encode()).digest()), private_key=private_key)

    def public_jwk(self) -> dict[str, str]:
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "alg": ALGORITHM,
            "use": "sig",
            "kid": self.kid,
            "n": _b64uint(numbers.n),
            "e": _b64uint(numbers.e),
        }


class KeyRing:
    """The current signing key first, then the previous keys still published for verification."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: list[SigningKey] = [SigningKey.generate()]

    @property
    def current(self) -> SigningKey:
        with self._lock:
            return self._keys[0]

    def kids(self) -> list[str]:
        with self._lock:
            return [key.kid for key in self._keys]

    def rotate(self, *, keep_previous: bool = True) -> SigningKey:
        """Make a fresh key current; the old ones stay published only when ``keep_previous``."""
        fresh = SigningKey.generate()
        with self._lock:
            self._keys = [fresh, *self._keys] if keep_previous else [fresh]
        return fresh

    def retire_previous(self) -> list[str]:
        """Stop publishing every key but the current one; returns the retired kids."""
        with self._lock:
            retired = [key.kid for key in self._keys[1:]]
            self._keys = self._keys[:1]
        return retired

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            return {"keys": [key.public_jwk() for key in self._keys]}

    def sign(self, claims: Mapping[str, Any], *, kid: str | None = None) -> str:
        """Sign with the current key, or the published key ``kid`` (ValueError if it is not published)."""
        key = self.current if kid is None else self._find(kid)
        if key is None:
            raise ValueError(f"no published signing key with kid {kid!r}")
        return jwt.encode(dict(claims), key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})

    def verify(self, token: str) -> dict[str, Any] | None:
        """The claims of a token signed by a published key, or None; time and audience are the caller's."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            return None
        key = self._find(kid) if isinstance(kid, str) else None
        if key is None:
            return None
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.private_key.public_key(),
                algorithms=[ALGORITHM],
                options={
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                    "verify_iss": False,
                },
            )
        except jwt.PyJWTError:
            return None
        return claims

    def _find(self, kid: str) -> SigningKey | None:
        with self._lock:
            return next((key for key in self._keys if key.kid == kid), None)
