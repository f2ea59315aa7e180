"""A DNS record a tenant must publish, typed, with what it is for: the vocabulary mail adapters and the API share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Purpose(StrEnum):
    """What a record is for; decides how it is checked and how bad it is when it is wrong."""

    MX = "MX"
    SPF = "SPF"
    DKIM = "DKIM"
    DMARC = "DMARC"
    TLS_RPT = "TLS-RPT"
    MTA_STS = "MTA-STS"
    AUTOCONFIG = "AUTOCONFIG"
    AUTODISCOVER = "AUTODISCOVER"
    SRV = "SRV"
    CAA = "CAA"
    TLSA = "TLSA"
    OTHER = "OTHER"


@dataclass(frozen=True)
class DnsRecord:
    """One resource record. ``name`` is absolute (trailing dot); a TXT ``value`` is its joined text."""

    type: str
    name: str
    value: str
    ttl: int
    purpose: Purpose

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "name": self.name,
            "value": self.value,
            "ttl": self.ttl,
            "purpose": str(self.purpose),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DnsRecord:
        purpose = str(data.get("purpose") or "")
        record_type, name, value = str(data["type"]).upper(), str(data["name"]), str(data["value"])
        known = purpose in {p.value for p in Purpose}
        return cls(
            type=record_type,
            name=name,
            value=value,
            ttl=int(data["ttl"]),
            purpose=Purpose(purpose) if known else classify(record_type, name, value),
        )


_NAME_PURPOSES: tuple[tuple[frozenset[str], Purpose], ...] = (
    (frozenset({"_dmarc"}), Purpose.DMARC),
    (frozenset({"mta-sts", "_mta-sts"}), Purpose.MTA_STS),
    (frozenset({"autodiscover", "_autodiscover"}), Purpose.AUTODISCOVER),
    (frozenset({"autoconfig", "_autoconfig", "ua-auto-config", "_ua-auto-config"}), Purpose.AUTOCONFIG),
)
_TYPE_PURPOSES: dict[str, Purpose] = {"MX": Purpose.MX, "SRV": Purpose.SRV, "CAA": Purpose.CAA, "TLSA": Purpose.TLSA}


def classify(record_type: str, name: str, value: str) -> Purpose:
    """What a record is for, from its type, owner name and value."""
    record_type = record_type.upper()
    labels = name.lower().rstrip(".").split(".")
    purpose = Purpose.OTHER
    if record_type == "MX":
        purpose = Purpose.MX
    elif record_type == "TXT" and value.strip().lower().startswith("v=spf1"):
        purpose = Purpose.SPF
    elif "_domainkey" in labels:
        purpose = Purpose.DKIM
    elif labels[:2] == ["_smtp", "_tls"]:
        purpose = Purpose.TLS_RPT
    else:
        # Owner-name conventions first (an _autodiscover SRV is about autodiscovery), then the bare type.
        by_name = [p for first_labels, p in _NAME_PURPOSES if labels[0] in first_labels]
        purpose = by_name[0] if by_name else _TYPE_PURPOSES.get(record_type, Purpose.OTHER)
    return purpose
