"""The BIND zone text of the sandbox Stalwart's x:Domain (``dnsZoneFile``), as upstream builds and writes it.

Upstream: ``build_bind_dns_records`` in crates/common/src/network/dns/records.rs lists the record kinds in a
fixed order (DKIM, TLSA, SPF, MX, DMARC, SRV, MTA-STS, TLS-RPT, CAA, ua-auto-config, autoconfig,
autodiscover) and dns-update's ``BindSerializer`` writes them one per line, a TXT value over 255 bytes as a
parenthesised list of 255-byte quoted chunks. The sandbox has no certificates and no ACME provider, so it
never lists TLSA or CAA records, like a server without them.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from tenantry.sandbox.stalwart_dkim import ALGORITHM_NAMES

_TXT_CHUNK = 255  # longest character-string a TXT record holds
# SystemSettings.services in upstream's default order (structs_impl.rs `impl Default for SystemSettings`):
# CalDAV, CardDAV, IMAP, JMAP, ManageSieve (no record), POP3, SMTP, WebDAV (no record); TLS ports only.
_SRV = (
    ("_caldavs._tcp", 443),
    ("_carddavs._tcp", 443),
    ("_imaps._tcp", 993),
    ("_jmap._tcp", 443),
    ("_pop3s._tcp", 995),
    ("_submissions._tcp", 465),
)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _txt(name: str, value: str) -> str:
    data = value.encode()
    if len(data) <= _TXT_CHUNK:
        return f'{name} IN TXT "{_escape(value)}"\n'
    chunks = [data[i : i + _TXT_CHUNK].decode(errors="replace") for i in range(0, len(data), _TXT_CHUNK)]
    return f"{name} IN TXT (\n" + "".join(f'    "{_escape(chunk)}"\n' for chunk in chunks) + ")\n"


def _report_uri(uri: str, domain: str) -> str:
    # A bare mailbox ("mailto:postmaster") is completed with the domain itself.
    if uri.startswith("mailto:") and "@" not in uri:
        return f"{uri}@{domain}"
    return uri


def _mta_sts_id(mail_host: str) -> int:
    # Upstream's id is a hash of the policy (mode, MX hosts, max age); stable while those stay the same.
    return int.from_bytes(hashlib.sha256(f"testing|{mail_host}|604800".encode()).digest()[:8], "big")


def _pacc_digest(mail_host: str) -> str:
    # ua-auto-config: the base64 SHA-256 of the provider auto-configuration document served for the domain.
    document = f'{{"version":"1.0","servers":{{"jmap":{{"url":"https://{mail_host}/.well-known/jmap"}}}}}}'
    return base64.b64encode(hashlib.sha256(document.encode()).digest()).decode()


def zone_file(domain: Mapping[str, Any], keys: Iterable[Mapping[str, Any]], mail_host: str) -> str:
    """The ``dnsZoneFile`` of a domain: the records to publish, absolute names, upstream's order and format.

    ``keys`` are the domain's DKIM signatures in id order; every one is listed, whatever its stage.
    """
    name = domain["name"]
    origin = f"{name}."
    host = mail_host.rstrip(".")
    target = f"{host}."
    out: list[str] = []
    for key in keys:
        short = ALGORITHM_NAMES.get(str(key.get("@type")))
        if short is None or not key.get("publicKey"):
            continue
        value = f"v=DKIM1; k={short}; h=sha256; p={key['publicKey']}"
        out.append(_txt(f"{key['selector']}._domainkey.{origin}", value))
    if host.endswith(f".{name}"):
        out.append(_txt(target, "v=spf1 a -all"))
    out.append(_txt(origin, "v=spf1 mx -all"))
    out.append(f"{origin} IN MX 10 {target}\n")
    report = domain.get("reportAddressUri")
    rua = _report_uri(report, name) if isinstance(report, str) else None
    if rua is not None:
        out.append(_txt(f"_dmarc.{origin}", f"v=DMARC1; p=reject; rua={rua}"))
    out.extend(f"{service}.{origin} IN SRV 0 1 {port} {target}\n" for service, port in _SRV)
    out.append(f"mta-sts.{origin} IN CNAME {target}\n")
    out.append(_txt(f"_mta-sts.{origin}", f"v=STSv1; id={_mta_sts_id(host)}"))
    if rua is not None:
        out.append(_txt(f"_smtp._tls.{origin}", f"v=TLSRPTv1; rua={rua}"))
    out.append(f"ua-auto-config.{origin} IN CNAME {target}\n")
    out.append(_txt(f"_ua-auto-config.{origin}", f"v=UAAC1; a=sha256; d={_pacc_digest(host)}"))
    out.append(f"autoconfig.{origin} IN CNAME {target}\n")
    out.append(f"autodiscover.{origin} IN CNAME {target}\n")
    return "".join(out)
