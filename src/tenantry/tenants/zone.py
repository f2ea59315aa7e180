"""A tenant's DNS records rendered as a BIND zone fragment to paste."""

from __future__ import annotations

from collections.abc import Iterable

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT

from tenantry.integrations.dns import DnsRecord

_TXT_CHUNK = 255  # the longest character-string a TXT record can hold (RFC 1035 3.3)


def _quoted_chunks(value: str) -> str:
    data = value.encode("utf-8")
    chunks = [data[i : i + _TXT_CHUNK] for i in range(0, len(data), _TXT_CHUNK)] or [b""]
    # dnspython quotes and escapes each character-string the way BIND expects.
    return dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, chunks).to_text()


def render_zone(records: Iterable[DnsRecord], origin: str, default_ttl: int = 3600) -> str:
    """A BIND zone fragment to paste: ``$ORIGIN``, ``$TTL``, then one record per line.

    Names inside the origin are written relative to it (``@`` for the apex); TXT values are re-split into
    quoted strings of at most 255 bytes.
    """
    zone_origin = dns.name.from_text(origin)
    lines = [f"$ORIGIN {zone_origin.to_text()}", f"$TTL {default_ttl}"]
    for record in records:
        owner = dns.name.from_text(record.name, zone_origin)
        owner_text = owner.relativize(zone_origin).to_text() if owner.is_subdomain(zone_origin) else owner.to_text()
        value = _quoted_chunks(record.value) if record.type.upper() in {"TXT", "SPF"} else record.value
        lines.append(f"{owner_text} {record.ttl} IN {record.type.upper()} {value}")
    return "\n".join(lines) + "\n"
