"""DKIM key generation, selector templates and the BIND zone text of the sandbox Stalwart's x:Domain."""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

# DKIM1 algorithms the sandbox generates keys for; DKIM2 variants are accepted in settings but not generated.
ALGORITHM_NAMES = {"Dkim1Ed25519Sha256": "ed25519", "Dkim1RsaSha256": "rsa"}
PUBLISHED_STAGES = frozenset({"active", "pending", "retiring"})
_TXT_CHUNK = 255  # longest character-string a TXT record holds; BIND splits longer values
_SRV = (
    ("_jmap._tcp", 443),
    ("_imaps._tcp", 993),
    ("_submissions._tcp", 465),
    ("_pop3s._tcp", 995),
    ("_caldavs._tcp", 443),
    ("_carddavs._tcp", 443),
)


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
        return _cached_rsa_key() if fast else _rsa_key(2048)
    key = ed25519.Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return DkimKey(_pkcs8(key), base64.b64encode(raw).decode())


def _rsa_key(bits: int) -> DkimKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return DkimKey(_pkcs8(key), base64.b64encode(der).decode())


@functools.cache
def _cached_rsa_key() -> DkimKey:
    return _rsa_key(1024)


def _pkcs8(key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def expand_selector(template: str, algorithm: str, when: datetime) -> str:
    """Fill ``{version}``, ``{algorithm}`` and ``{date-<strftime>}`` of a selector template."""
    version = "2" if algorithm.startswith("Dkim2") else "1"
    short = "rsa" if "Rsa" in algorithm else "ed25519"

    def field(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "version":
            return version
        if name == "algorithm":
            return short
        if name.startswith("date-"):
            return when.strftime(name[len("date-") :])
        return match.group(0)

    return re.sub(r"\{([^{}]+)\}", field, template)


def _quoted(text: str) -> str:
    chunks = [text[i : i + _TXT_CHUNK] for i in range(0, len(text), _TXT_CHUNK)] or [""]
    return " ".join(f'"{chunk}"' for chunk in chunks)


def _report_uri(uri: str, domain: str) -> str:
    # A bare mailbox ("mailto:postmaster") is completed with the domain itself.
    if uri.startswith("mailto:") and "@" not in uri:
        return f"{uri}@{domain}"
    return uri


def _mta_sts_id(domain: str, mail_host: str) -> int:
    # Stable per policy, like upstream's hash of the policy text.
    return int.from_bytes(hashlib.sha256(f"{domain}|{mail_host}".encode()).digest()[:8], "big")


def zone_file(domain: Mapping[str, Any], keys: Iterable[Mapping[str, Any]], mail_host: str) -> str:
    """The ``dnsZoneFile`` of a domain: the records to publish, one BIND line each, absolute names."""
    name = f"{domain['name']}."
    host = f"{mail_host.rstrip('.')}."
    lines = [f"{name} IN MX 10 {host}", f'{name} IN TXT "v=spf1 mx -all"', f'{host} IN TXT "v=spf1 a -all"']
    for key in keys:
        short = ALGORITHM_NAMES.get(str(key.get("@type")))
        if short is None or key.get("stage") not in PUBLISHED_STAGES or not key.get("publicKey"):
            continue
        value = f"v=DKIM1; k={short}; h=sha256; p={key['publicKey']}"
        lines.append(f"{key['selector']}._domainkey.{name} IN TXT {_quoted(value)}")
    report = domain.get("reportAddressUri")
    if isinstance(report, str) and report:
        rua = _report_uri(report, domain["name"])
        lines.append(f'_dmarc.{name} IN TXT "v=DMARC1; p=reject; rua={rua}"')
        lines.append(f'_smtp._tls.{name} IN TXT "v=TLSRPTv1; rua={rua}"')
    lines.append(f"mta-sts.{name} IN CNAME {host}")
    lines.append(f'_mta-sts.{name} IN TXT "v=STSv1; id={_mta_sts_id(domain["name"], mail_host)}"')
    lines.append(f"autoconfig.{name} IN CNAME {host}")
    lines.append(f"autodiscover.{name} IN CNAME {host}")
    lines.extend(f"{service}.{name} IN SRV 0 1 {port} {host}" for service, port in _SRV)
    return "\n".join(lines) + "\n"
