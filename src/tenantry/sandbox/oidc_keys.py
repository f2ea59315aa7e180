"""RSA signing keys of the sandbox OIDC issuer: the current key, older ones kept to verify, the JWKS."""

from __future__ import annotations

import base64
import datetime
import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

ALGORITHM = "RS256"
KEY_SIZE = 2048


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64uint(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8 or 1, "big"))


@dataclass(frozen=True)
class SigningKey:
    """One certificate-key pair, like authentik's self-signed certificate.

    Its ``kid`` is authentik's: the MD5 hex digest of the private key's PEM (32 hex digits; authentik
    ``crypto/models.py``), and its JWK carries the certificate as ``x5c``, ``x5t`` and ``x5t#S256``
    (``providers/oauth2/views/jwks.py``).
    """

    kid: str
    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @classmethod
    def generate(cls) -> SigningKey:
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
        pem = private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "authentik Self-signed Certificate")])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(private_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .sign(private_key, hashes.SHA256())
        )
        kid = hashlib.md5(pem, usedforsecurity=False).hexdigest()
        return cls(kid=kid, private_key=private_key, certificate=certificate)

    def public_jwk(self) -> dict[str, Any]:
        numbers = self.private_key.public_key().public_numbers()
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        return {
            "alg": ALGORITHM,
            "kid": self.kid,
            "kty": "RSA",
            "use": "sig",
            "n": _b64uint(numbers.n),
            "e": _b64uint(numbers.e),
            "x5c": [base64.b64encode(der).decode("ascii")],
            "x5t": _b64url(self.certificate.fingerprint(hashes.SHA1())),  # noqa: S303 -- x5t is SHA-1 by definition (RFC 7517 §4.8)
            "x5t#S256": _b64url(self.certificate.fingerprint(hashes.SHA256())),
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
