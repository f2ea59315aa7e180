"""DNS records a tenant must publish: parsed from an upstream's BIND zone text, classified, rendered back."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rdtypes.txtbase
import dns.ttl

Purpose = Literal[
    "MX",
    "SPF",
    "DKIM",
    "DMARC",
    "TLS-RPT",
    "MTA-STS",
    "AUTOCONFIG",
    "AUTODISCOVER",
    "SRV",
    "CAA",
    "TLSA",
    "OTHER",
]
PURPOSES: tuple[str, ...] = get_args(Purpose)
_TXT_CHUNK = 255  # the longest character-string a TXT record can hold (RFC 1035 3.3)
_CLASSES = {"IN", "CH", "HS", "ANY", "NONE"}


class DnsZoneError(ValueError):
    """Zone text that cannot be read as BIND records; the message names the offending line."""


@dataclass(frozen=True)
class DnsRecord:
    """One resource record. ``name`` is absolute (trailing dot); a TXT ``value`` is its joined text."""

    type: str
    name: str
    value: str
    ttl: int
    purpose: Purpose

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "value": self.value, "ttl": self.ttl, "purpose": self.purpose}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DnsRecord:
        purpose = str(data.get("purpose") or "")
        record_type, name, value = str(data["type"]).upper(), str(data["name"]), str(data["value"])
        return cls(
            type=record_type,
            name=name,
            value=value,
            ttl=int(data["ttl"]),
            purpose=purpose if purpose in PURPOSES else classify(record_type, name, value),  # type: ignore[arg-type]
        )


_NAME_PURPOSES: tuple[tuple[frozenset[str], Purpose], ...] = (
    (frozenset({"_dmarc"}), "DMARC"),
    (frozenset({"mta-sts", "_mta-sts"}), "MTA-STS"),
    (frozenset({"autodiscover", "_autodiscover"}), "AUTODISCOVER"),
    (frozenset({"autoconfig", "_autoconfig", "ua-auto-config", "_ua-auto-config"}), "AUTOCONFIG"),
)
_TYPE_PURPOSES: dict[str, Purpose] = {"MX": "MX", "SRV": "SRV", "CAA": "CAA", "TLSA": "TLSA"}


def classify(record_type: str, name: str, value: str) -> Purpose:
    """What a record is for, from its type, owner name and value."""
    record_type = record_type.upper()
    labels = name.lower().rstrip(".").split(".")
    purpose: Purpose = "OTHER"
    if record_type == "MX":
        purpose = "MX"
    elif record_type == "TXT" and value.strip().lower().startswith("v=spf1"):
        purpose = "SPF"
    elif "_domainkey" in labels:
        purpose = "DKIM"
    elif labels[:2] == ["_smtp", "_tls"]:
        purpose = "TLS-RPT"
    else:
        # Owner-name conventions first (an _autodiscover SRV is about autodiscovery), then the bare type.
        by_name = [p for first_labels, p in _NAME_PURPOSES if labels[0] in first_labels]
        purpose = by_name[0] if by_name else _TYPE_PURPOSES.get(record_type, "OTHER")
    return purpose


# --- parsing ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    number: int
    text: str
    inherits_owner: bool


def _logical_lines(text: str) -> Iterator[_Line]:  # noqa: PLR0912 - one character loop reads best
    """Records one per item: comments dropped, ``( ... )`` continuations joined, quotes respected."""
    buffer: list[str] = []
    depth = 0
    start_line = 1
    in_quote = escaped = in_comment = False
    line_no = 1
    for char in text + "\n":
        if char == "\n":
            in_comment = False
            if depth == 0 and not in_quote:
                record = "".join(buffer)
                if record.strip():
                    yield _Line(start_line, record.strip(), record[:1] in {" ", "\t"})
                buffer = []
                start_line = line_no + 1
            else:
                buffer.append(" ")
            line_no += 1
            continue
        if in_comment:
            continue
        if in_quote:
            buffer.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_quote = False
            continue
        if char == ";":
            in_comment = True
        elif char == '"':
            in_quote = True
            buffer.append(char)
        elif char == "(":
            depth += 1
            buffer.append(" ")
        elif char == ")":
            depth = max(depth - 1, 0)
            buffer.append(" ")
        else:
            buffer.append(char)
    if in_quote or depth:
        raise DnsZoneError(f"line {start_line}: unterminated quote or parenthesis")


_TOKEN = re.compile(r"\S+")


def parse_zone_file(text: str, origin: str, default_ttl: int = 3600) -> list[DnsRecord]:
    """Every record of a BIND zone fragment, in order, each with its own TTL.

    The text may lack ``$ORIGIN``/``$TTL``/SOA (``origin`` and ``default_ttl`` stand in); relative names
    are made absolute against the origin; a TXT split into several quoted strings becomes one value.
    """
    try:
        current_origin = dns.name.from_text(origin)
    except dns.exception.DNSException as err:
        raise DnsZoneError(f"invalid origin {origin!r}: {err}") from err
    ttl_default = default_ttl
    last_owner: dns.name.Name | None = None
    records: list[DnsRecord] = []
    for line in _logical_lines(text):
        try:
            if line.text.startswith("$"):
                current_origin, ttl_default = _directive(line, current_origin, ttl_default)
                continue
            owner, record = _parse_record(line, current_origin, last_owner, ttl_default)
        except DnsZoneError:
            raise
        except (dns.exception.DNSException, ValueError, UnicodeDecodeError) as err:
            raise DnsZoneError(f"line {line.number}: {err}") from err
        last_owner = owner
        records.append(record)
    return records


def _directive(line: _Line, origin: dns.name.Name, default_ttl: int) -> tuple[dns.name.Name, int]:
    directive, _, argument = line.text.partition(" ")
    if directive.upper() == "$ORIGIN":
        return dns.name.from_text(argument.strip()), default_ttl
    if directive.upper() == "$TTL":
        return origin, dns.ttl.from_text(argument.strip())
    raise DnsZoneError(f"line {line.number}: unsupported directive {directive}")


def _parse_record(
    line: _Line, origin: dns.name.Name, last_owner: dns.name.Name | None, default_ttl: int
) -> tuple[dns.name.Name, DnsRecord]:
    tokens = list(_TOKEN.finditer(line.text))
    index = 0
    if line.inherits_owner:
        if last_owner is None:
            raise DnsZoneError(f"line {line.number}: a record without an owner name comes first")
        owner = last_owner
    else:
        owner_text = tokens[0].group()
        owner = origin if owner_text == "@" else dns.name.from_text(owner_text, origin)
        index = 1
    ttl: int | None = None
    rdclass = dns.rdataclass.IN
    # TTL and class may come in either order before the type (RFC 1035 5.1).
    while index < len(tokens):
        token = tokens[index].group()
        if token.upper() in _CLASSES:
            rdclass = dns.rdataclass.from_text(token)
        elif ttl is None and token[:1].isdigit():
            ttl = dns.ttl.from_text(token)
        else:
            break
        index += 1
    if index >= len(tokens):
        raise DnsZoneError(f"line {line.number}: no record type")
    rdtype = dns.rdatatype.from_text(tokens[index].group())
    rdata_text = line.text[tokens[index].end() :].strip()
    rdata = dns.rdata.from_text(rdclass, rdtype, rdata_text, origin=origin, relativize=False)
    type_text = dns.rdatatype.to_text(rdtype)
    if isinstance(rdata, dns.rdtypes.txtbase.TXTBase):
        value = b"".join(rdata.strings).decode("utf-8")
    else:
        value = rdata.to_text()
    name = owner.to_text()
    record = DnsRecord(
        type=type_text,
        name=name,
        value=value,
        ttl=default_ttl if ttl is None else ttl,
        purpose=classify(type_text, name, value),
    )
    return owner, record


# --- rendering --------------------------------------------------------------------------------------------


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
