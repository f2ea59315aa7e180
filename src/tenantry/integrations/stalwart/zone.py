"""Stalwart's DNS zone text (BIND format) read into typed records."""

from __future__ import annotations

import functools
import hashlib
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.txtbase
import dns.ttl

from tenantry.integrations.dns import DnsRecord, classify

_CLASSES = {"IN", "CH", "HS", "ANY", "NONE"}


class DnsZoneError(ValueError):
    """Zone text that cannot be read as BIND records; the message names the offending line."""


@dataclass(frozen=True)
class _Line:
    number: int
    text: str
    inherits_owner: bool


def _logical_lines(text: str) -> Iterator[_Line]:
    """Records one per item: comments dropped, ``( ... )`` continuations joined, quotes respected.

    A line with no parenthesis and no backslash, and with its quotes closed, is a record on its own and is read
    whole (most of a zone: a record a line); from the first other line on, the text is read a character at a time.
    """
    offset = 0
    for index, line in enumerate(text.split("\n")):
        record = _plain_line(line)
        if record is None:
            yield from _characters(text[offset:], index + 1)
            return
        offset += len(line) + 1
        if record.strip():
            yield _Line(index + 1, record.strip(), record[:1] in {" ", "\t"})


def _plain_line(line: str) -> str | None:
    """``line`` without its comment if it needs no character-by-character reading (see above), else None."""
    if "(" in line or ")" in line or "\\" in line:
        return None
    parts = line.split('"')
    if len(parts) % 2 == 0:  # an odd number of quotes: a quoted string runs on past the line
        return None
    for at in range(0, len(parts), 2):  # the parts outside quotes
        comment = parts[at].find(";")
        if comment >= 0:
            return '"'.join([*parts[:at], parts[at][:comment]])
    return line


def _characters(text: str, first_line: int) -> Iterator[_Line]:  # noqa: PLR0912 - one character loop reads best
    buffer: list[str] = []
    depth = 0
    start_line = first_line
    in_quote = escaped = in_comment = False
    line_no = first_line
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
    last_owner: str | None = None
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


# A name of letters, digits, hyphens and underscores only: dnspython writes it back as it was given (it escapes
# only other characters), so it needs no parsing. At most 254 characters absolute: 255 octets on the wire.
_PLAIN_NAME = re.compile(r"(?:[A-Za-z0-9_-]{1,63}\.)*[A-Za-z0-9_-]{1,63}\.?")
_MAX_NAME_TEXT = 254


def _owner_name(text: str, origin: dns.name.Name) -> str:
    """The absolute name ``text`` names in a zone at ``origin``, as :meth:`dns.name.Name.to_text` writes it."""
    if text == "@":
        return origin.to_text()
    if _PLAIN_NAME.fullmatch(text):
        if text.endswith("."):
            name = text
        else:
            suffix = origin.to_text()
            name = f"{text}{suffix}" if suffix == "." else f"{text}.{suffix}"
        if len(name) <= _MAX_NAME_TEXT:
            return name
    return dns.name.from_text(text, origin).to_text()


# TXT data that is only quoted strings with no escapes: its value is the strings joined (see _txt_value).
_QUOTED = re.compile(r'"([^"\\]*)"')
_QUOTED_ONLY = re.compile(r'"[^"\\]*"(?:[ \t]+"[^"\\]*")*')
_MAX_STRING = 255  # octets in one character-string (RFC 1035 3.3)


def _txt_value(text: str) -> str | None:
    """The value of TXT data such as Stalwart writes (quoted strings, no escapes), or None to leave it to
    dnspython: the same value dnspython reads (a string over 255 octets is for dnspython to refuse)."""
    if not (text.isascii() and _QUOTED_ONLY.fullmatch(text)):
        return None
    strings = _QUOTED.findall(text)
    return None if any(len(string) > _MAX_STRING for string in strings) else "".join(strings)


def _parse_record(
    line: _Line, origin: dns.name.Name, last_owner: str | None, default_ttl: int
) -> tuple[str, DnsRecord]:
    tokens = list(_TOKEN.finditer(line.text))
    index = 0
    if line.inherits_owner:
        if last_owner is None:
            raise DnsZoneError(f"line {line.number}: a record without an owner name comes first")
        name = last_owner
    else:
        name = _owner_name(tokens[0].group(), origin)
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
    value = _txt_value(rdata_text) if rdtype == dns.rdatatype.TXT else None
    if value is None:
        try:
            value = _absolute_value(rdclass, rdtype, rdata_text)
        except dns.name.NeedAbsoluteNameOrOrigin:  # a relative name in the data: it is read against the origin
            value = _value(dns.rdata.from_text(rdclass, rdtype, rdata_text, origin=origin, relativize=False))
    type_text = dns.rdatatype.to_text(rdtype)
    record = DnsRecord(
        type=type_text,
        name=name,
        value=value,
        ttl=default_ttl if ttl is None else ttl,
        purpose=classify(type_text, name, value),
    )
    return name, record


@functools.lru_cache(maxsize=4096)
def _absolute_value(rdclass: dns.rdataclass.RdataClass, rdtype: dns.rdatatype.RdataType, text: str) -> str:
    """The value of record data that names no relative name, so reads the same in every zone: most of a mail
    domain's records (MX, SRV, CNAME to the mail host, the SPF policy) are the same text in every tenant's zone."""
    rdata = dns.rdata.from_text(rdclass, rdtype, text, origin=None, relativize=False)
    rdata.to_wire()  # raises NeedAbsoluteNameOrOrigin when the data names a relative name
    return _value(rdata)


def _value(rdata: dns.rdata.Rdata) -> str:
    if isinstance(rdata, dns.rdtypes.txtbase.TXTBase):
        return b"".join(rdata.strings).decode("utf-8")
    return rdata.to_text()


ZoneParser = Callable[[str, str], list[DnsRecord]]


class ZoneCache:
    """The records of zone texts already read, keyed by a hash of the text and its origin, so that a zone that has
    not changed since the last ensure is not parsed again. Bounded: the least recently used entry goes first."""

    def __init__(self, *, size: int = 1024, parse: ZoneParser = parse_zone_file) -> None:
        if size < 1:
            raise ValueError("a zone cache needs room for at least one zone")
        self._size = size
        self._parse = parse
        self._records: OrderedDict[tuple[str, str], tuple[DnsRecord, ...]] = OrderedDict()

    def records(self, text: str, origin: str) -> tuple[DnsRecord, ...]:
        """What :func:`parse_zone_file` reads from ``text``; a text that fails is not kept (it raises each time)."""
        key = (hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(), origin)
        found = self._records.get(key)
        if found is not None:
            self._records.move_to_end(key)
            return found
        parsed = tuple(self._parse(text, origin))
        self._records[key] = parsed
        if len(self._records) > self._size:
            self._records.popitem(last=False)
        return parsed
