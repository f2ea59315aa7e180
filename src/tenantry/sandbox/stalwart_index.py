"""Indexes of the sandbox Stalwart's tables: which ids hold each value of a property, kept in step with writes.

A query filter on an indexed property reads the ids of its value instead of testing every record; the store
still tests each candidate against every condition, so an index only ever narrows what is looked at.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Set
from typing import Any

from tenantry.sandbox.stalwart_model import FILTERS

ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz792013"
# The tokens a record is found by under one index; None when its value cannot be indexed (it is then a
# candidate of every lookup).
Extract = Callable[[Mapping[str, Any]], Iterable[Hashable] | None]


def decode_id(text: str) -> int:
    """The number behind an id of :func:`encode_id` (-1 for text that is not one)."""
    number = 0
    for char in text:
        digit = ID_ALPHABET.find(char)
        if digit < 0:
            return -1
        number = number * 32 + digit
    return number


def encode_id(number: int) -> str:
    """Upstream's id text: base32 over its own alphabet, most significant digit first (0 is ``a``)."""
    digits = ""
    while True:
        number, rest = divmod(number, 32)
        digits = ID_ALPHABET[rest] + digits
        if number == 0:
            return digits


def in_creation_order(ids: Iterable[str]) -> list[str]:
    """Ids in the order their objects were created (a table's own order): ids are numbers counted up."""
    return sorted(ids, key=decode_id)


def filter_tokens(prop: str) -> Extract:
    """How a query filter on ``prop`` finds a record (StalwartStore._matches): a set property by each of its
    members, any other property by its value, an unset one as None."""

    def tokens(record: Mapping[str, Any]) -> Iterable[Hashable] | None:
        stored = record.get(prop)
        if isinstance(stored, dict):
            return [("member", key) for key in stored]
        try:
            hash(stored)
        except TypeError:
            return None
        return [("value", stored)]

    return tokens


def wanted_tokens(value: Any) -> list[Hashable] | None:
    """The tokens of the records a filter value matches; None when the value cannot be looked up."""
    try:
        hash(value)
    except TypeError:
        return None
    return [("value", value), ("member", value)] if isinstance(value, str) else [("value", value)]


def account_domains(record: Mapping[str, Any]) -> list[Hashable]:
    """The domains an account's addresses (its own and its aliases') link it to."""
    return [record.get("domainId"), *(alias.get("domainId") for alias in record.get("aliases", {}).values())]


def account_addresses(record: Mapping[str, Any]) -> list[Hashable]:
    """An account's addresses as (local part, domain id) pairs: the registry's unique email key."""
    aliases = record.get("aliases", {}).values()
    return [(record.get("name"), record.get("domainId")), *((a.get("name"), a.get("domainId")) for a in aliases)]


class TableIndex:
    """Named indexes over one table, each mapping a token to the ids of the records holding it."""

    def __init__(self, extractors: Mapping[str, Extract]) -> None:
        self._extract = dict(extractors)
        self._ids: dict[str, dict[Hashable, set[str]]] = {name: {} for name in extractors}
        self._loose: dict[str, set[str]] = {name: set() for name in extractors}

    @classmethod
    def of(cls, obj: str) -> TableIndex:
        """The indexes of table ``obj``: every property a query may filter on (the text search aside) and,
        for accounts, what the link and address rules look them up by."""
        extractors = {prop: filter_tokens(prop) for prop in sorted(FILTERS[obj] - {"text"})}
        if obj == "Account":
            extractors |= {"domains": account_domains, "addresses": account_addresses}
        return cls(extractors)

    def covers(self, name: str) -> bool:
        return name in self._extract

    def add(self, object_id: str, record: Mapping[str, Any]) -> None:
        for name, extract in self._extract.items():
            tokens = extract(record)
            if tokens is None:
                self._loose[name].add(object_id)
                continue
            buckets = self._ids[name]
            for token in tokens:
                buckets.setdefault(token, set()).add(object_id)

    def remove(self, object_id: str, record: Mapping[str, Any]) -> None:
        for name, extract in self._extract.items():
            tokens = extract(record)
            if tokens is None:
                self._loose[name].discard(object_id)
                continue
            buckets = self._ids[name]
            for token in tokens:
                bucket = buckets.get(token)
                if bucket is not None:
                    bucket.discard(object_id)
                    if not bucket:  # a freed value leaves nothing behind
                        del buckets[token]

    def ids(self, name: str, tokens: Iterable[Hashable]) -> Set[str]:
        """The ids of the records holding any of ``tokens`` under index ``name``. Read it, never change it:
        it may be the index's own set."""
        found: list[set[str]] = [b for t in tokens if (b := self._ids[name].get(t))]
        if self._loose[name]:
            found.append(self._loose[name])
        if not found:
            return frozenset()
        if len(found) == 1:
            return found[0]
        return set().union(*found)

    def snapshot(self) -> dict[str, tuple[dict[Hashable, set[str]], set[str]]]:
        """A copy of every index and of its loose ids (for checks of its consistency)."""
        return {
            name: ({token: set(ids) for token, ids in buckets.items()}, set(self._loose[name]))
            for name, buckets in self._ids.items()
        }
