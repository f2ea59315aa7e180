"""Indexes of the authentik sandbox's directory: groups in name order, by name and by attribute; their links.

Every list is kept sorted by :data:`SortKey` (the name, then the creation sequence: the listing's default
order, equal names in the order they were created), so a page of a filtered listing is a slice, not a sort.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, overload

if TYPE_CHECKING:
    from tenantry.sandbox.authentik_store import GroupRecord

# (name, creation sequence, pk); the sequence is unique, so the pk never takes part in a comparison.
SortKey = tuple[str, int, str]
# (attribute, JSON kind, value): equal tokens hold exactly the values the attributes filter finds equal.
Token = tuple[str, str, Any]


def attribute_token(key: str, value: Any) -> Token | None:
    """The token a top-level attribute is indexed under, or None for an object or a list (not indexed).

    The attributes filter compares JSON values by kind (a boolean is not a number, ``42`` is not ``"42"``)
    and numbers by value (``1`` is ``1.0``, as their hashes agree), so the kind goes into the token.
    """
    if isinstance(value, bool):
        return (key, "boolean", value)
    if isinstance(value, int | float):
        return (key, "number", value)
    if isinstance(value, str):
        return (key, "string", value)
    if value is None:
        return (key, "null", None)
    return None


def attribute_tokens(attributes: Mapping[str, Any]) -> Iterator[Token]:
    for key, value in attributes.items():
        token = attribute_token(key, value)
        if token is not None:
            yield token


def _insert(keys: list[SortKey], key: SortKey) -> None:
    bisect.insort(keys, key)


def _remove(keys: list[SortKey], key: SortKey) -> None:
    at = bisect.bisect_left(keys, key)
    if at < len(keys) and keys[at] == key:
        del keys[at]


class GroupIndex:
    """What the directory looks groups up by, besides their pk.

    ``ordered`` holds every group; ``named`` and ``by_attribute`` the groups of one name or one attribute
    value, each list sorted. ``children`` maps a group's pk to the pks of the groups naming it a parent,
    ``member_of`` a user's pk to the pks of the groups listing it among their users.
    """

    def __init__(self) -> None:
        self.ordered: list[SortKey] = []
        self.named: dict[str, list[SortKey]] = {}
        self.by_attribute: dict[Token, list[SortKey]] = {}
        self.children: dict[str, set[str]] = {}
        self.member_of: dict[int, set[str]] = {}

    # -- name and attributes ----------------------------------------------------------------------------
    def add(self, key: SortKey, attributes: Mapping[str, Any]) -> None:
        _insert(self.ordered, key)
        _insert(self.named.setdefault(key[0], []), key)
        for token in attribute_tokens(attributes):
            _insert(self.by_attribute.setdefault(token, []), key)

    def remove(self, key: SortKey, attributes: Mapping[str, Any]) -> None:
        _remove(self.ordered, key)
        self._drop(self.named, key[0], key)
        for token in attribute_tokens(attributes):
            self._drop(self.by_attribute, token, key)

    @staticmethod
    def _drop(buckets: dict[Any, list[SortKey]], bucket: Any, key: SortKey) -> None:
        keys = buckets.get(bucket)
        if keys is not None:
            _remove(keys, key)
            if not keys:  # an emptied bucket goes, so that a freed name or value leaves nothing behind
                del buckets[bucket]

    def with_name(self, name: str) -> Sequence[SortKey]:
        return self.named.get(name, ())

    def with_attribute(self, token: Token) -> Sequence[SortKey]:
        return self.by_attribute.get(token, ())

    # -- links ------------------------------------------------------------------------------------------
    def link_parents(self, pk: str, old: Iterable[str], new: Iterable[str]) -> None:
        for parent in old:
            self._unlink(self.children, parent, pk)
        for parent in new:
            self.children.setdefault(parent, set()).add(pk)

    def link_users(self, pk: str, old: Iterable[int], new: Iterable[int]) -> None:
        for user in old:
            self._unlink(self.member_of, user, pk)
        for user in new:
            self.member_of.setdefault(user, set()).add(pk)

    @staticmethod
    def _unlink(links: dict[Any, set[str]], owner: Any, pk: str) -> None:
        linked = links.get(owner)
        if linked is not None:
            linked.discard(pk)
            if not linked:
                del links[owner]


class GroupView(Sequence["GroupRecord"]):
    """A sorted key list read as the groups it names: a page is a slice of the keys, looked up."""

    def __init__(self, keys: Sequence[SortKey], records: Mapping[str, GroupRecord]) -> None:
        self._keys = keys
        self._records = records

    def __len__(self) -> int:
        return len(self._keys)

    @overload
    def __getitem__(self, index: int) -> GroupRecord: ...

    @overload
    def __getitem__(self, index: slice) -> list[GroupRecord]: ...

    def __getitem__(self, index: int | slice) -> GroupRecord | list[GroupRecord]:
        if isinstance(index, slice):
            return [self._records[key[2]] for key in self._keys[index]]
        return self._records[self._keys[index][2]]

    def __iter__(self) -> Iterator[GroupRecord]:
        return (self._records[key[2]] for key in self._keys)
