"""DKIM keys of the sandbox Stalwart: key pairs, upstream's selector templates, and checks of manual keys."""

from __future__ import annotations

import base64
import copy
import functools
import secrets
import string
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from tenantry.sandbox.stalwart_model import DKIM_DEFAULTS, SetError

# The k= of each DkimSignature @type (crates/registry/src/utils/dkim.rs `algorithm()`); DKIM2 keys are
# published as DKIM1 records too (crates/common/src/network/dkim.rs `generate_dkim_dns_record`).
ALGORITHM_NAMES = {
    "Dkim1Ed25519Sha256": "ed25519",
    "Dkim1RsaSha256": "rsa",
    "Dkim2Ed25519Sha256": "ed25519",
    "Dkim2RsaSha256": "rsa",
}
DEFAULT_ALGORITHM = "Dkim1Ed25519Sha256"  # `impl Default for DkimSignature`
_SELECTOR_CHARS = frozenset(string.ascii_letters + string.digits + ".-_")
_RANDOM_CHARS = string.ascii_lowercase + string.digits


class InvalidKeyError(ValueError):
    """A private key upstream could not build a signer from."""


@dataclass(frozen=True)
class DkimKey:
    private_pem: str
    public_b64: str


def generate_key(algorithm: str, *, fast: bool = False) -> DkimKey:
    """A new key pair for ``algorithm`` (a DkimSignature ``@type``).

    RSA-2048 generation costs tens to hundreds of milliseconds; with ``fast`` the RSA key is a 1024-bit one
    generated once per process and reused, which keeps test suites quick. Ed25519 keys are always fresh.
    """
    if ALGORITHM_NAMES.get(algorithm) == "rsa":
        return _cached_rsa_key() if fast else _rsa_key(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    key = ed25519.Ed25519PrivateKey.generate()
    return DkimKey(_pem(key), _public_b64(key))


@functools.cache
def _cached_rsa_key() -> DkimKey:
    return _rsa_key(rsa.generate_private_key(public_exponent=65537, key_size=1024))  # noqa: S505 - test speed only


def _rsa_key(key: rsa.RSAPrivateKey) -> DkimKey:
    # Upstream writes generated RSA keys as PKCS#1 ("RSA PRIVATE KEY") and Ed25519 keys as PKCS#8.
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
    return DkimKey(pem, _public_b64(key))


def _pem(key: ed25519.Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _public_b64(key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey) -> str:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    else:
        raw = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(raw).decode()


def public_key_of(algorithm: str, pem: str) -> str:
    """The ``p=`` value of a private key given as PEM, refusing what upstream's signer build refuses.

    Ed25519 keys are PKCS#8 (``simple_pem_parse`` then ``from_pkcs8``); RSA keys PKCS#1 or PKCS#8
    (``rsa_key_parse``), as ``DkimSigners::insert`` in crates/common/src/config/smtp/auth.rs reads them.
    """
    try:
        if ALGORITHM_NAMES.get(algorithm) == "rsa":
            key = serialization.load_pem_private_key(pem.encode(), password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise InvalidKeyError("Failed to build RSA key")
            return _public_b64(key)
        body = "".join(line for line in pem.splitlines() if not line.strip().startswith("-"))
        der = base64.b64decode("".join(body.split()), validate=True)
        key = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError) as err:
        if isinstance(err, InvalidKeyError):
            raise
        kind = "RSA" if ALGORITHM_NAMES.get(algorithm) == "rsa" else "ED25519"
        raise InvalidKeyError(f"Failed to build {kind} key") from err
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise InvalidKeyError("Failed to build ED25519 key")
    return _public_b64(key)


def expand_selector(template: str, algorithm: str, when: datetime) -> str:
    """Upstream's ``generate_dkim_selector``: fill ``{algorithm}``, ``{hash}``, ``{version}``, ``{epoch}``,
    ``{random}`` and ``{date-<strftime>}``, keep only ``[A-Za-z0-9._-]`` of the rest.

    Raises :class:`ValueError` with upstream's words for an unknown variable, an unclosed brace, an empty
    date format or an empty result.
    """
    out: list[str] = []
    rest = template
    while rest:
        start = rest.find("{")
        if start < 0:
            out.append(_clean(rest))
            break
        out.append(_clean(rest[:start]))
        end = rest.find("}", start + 1)
        if end < 0:
            raise ValueError("unclosed '{' in template")
        out.append(_variable(rest[start + 1 : end], algorithm, when))
        rest = rest[end + 1 :]
    selector = "".join(out)
    if not selector:
        raise ValueError("Selector cannot be empty")
    return selector


def _clean(text: str) -> str:
    return "".join(ch for ch in text if ch in _SELECTOR_CHARS)


def _variable(name: str, algorithm: str, when: datetime) -> str:
    if name == "algorithm":
        return ALGORITHM_NAMES.get(algorithm, "ed25519")
    if name == "hash":
        return "sha256"
    if name == "version":
        return "2" if algorithm.startswith("Dkim2") else "1"
    if name == "epoch":
        return str(int(when.timestamp()))
    if name == "random":
        return "".join(secrets.choice(_RANDOM_CHARS) for _ in range(8))
    if name.startswith("date-"):
        fmt = name[len("date-") :]
        if not fmt:
            raise ValueError("empty strftime format in {date-}")
        formatted = when.strftime(fmt)
        if not formatted:
            raise ValueError(f"date format '{fmt}' produced empty output")
        return _clean(formatted)
    raise ValueError(f"unrecognized variable '{{{name}}}'")


def refuse_unusable_key(record: Mapping[str, Any]) -> None:
    """What ``validate_dkim_signature`` refuses before storing a key: a missing domain or selector, or a
    private key no signer can be built from (crates/jmap/src/registry/mapping/dkim.rs)."""
    problems = [f"Required property {p}" for p in ("domainId", "selector") if not record.get(p)]
    private = record.get("privateKey") or {}
    if not problems:
        if private.get("@type") != "Text" or not isinstance(private.get("secret"), str):
            problems.append("the sandbox reads private keys given as Text only")
        else:
            try:
                public_key_of(str(record["@type"]), private["secret"])
            except InvalidKeyError as err:
                problems.append(str(err))
    if problems:
        raise SetError("invalidProperties", f"Failed to validate DKIM signature: {'; '.join(problems)}")


def automatic_keys(
    domain_id: str,
    domain: Mapping[str, Any],
    settings: Mapping[str, Any],
    have: Collection[str],
    *,
    when: datetime,
    fast: bool,
) -> list[dict[str, Any]]:
    """The keys the ``DkimManagement`` task creates: one active key per configured algorithm the domain has
    no active key for yet (crates/services/src/task_manager/dkim.rs). Without automatic DNS publishing it
    sets no ``nextTransitionAt``; a selector template that cannot be expanded makes no keys at all."""
    made: list[dict[str, Any]] = []
    for algorithm in settings["algorithms"]:
        if algorithm in have or algorithm not in ALGORITHM_NAMES:
            continue
        try:
            selector = expand_selector(settings["selectorTemplate"], algorithm, when)
        except ValueError:
            return made
        pair = generate_key(algorithm, fast=fast)
        record: dict[str, Any] = {
            "@type": algorithm,
            **copy.deepcopy(dict(DKIM_DEFAULTS)),
            "domainId": domain_id,
            "selector": selector,
            "privateKey": {"@type": "Text", "secret": pair.private_pem},
            "publicKey": pair.public_b64,
        }
        if domain.get("memberTenantId"):
            record["memberTenantId"] = domain["memberTenantId"]
        made.append(record)
    return made
