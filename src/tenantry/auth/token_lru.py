"""A bounded least-recently-used map keyed by a token's SHA-256, so no cache ever holds or logs a token itself."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")


def token_digest(token: str) -> str:
    """The key a token is cached under: its SHA-256 in hex (the token cannot be read back from it)."""
    return hashlib.sha256(token.encode()).hexdigest()


class TokenLru(Generic[V]):
    """At most ``max_entries`` values by token digest; adding one more evicts the least recently used.

    ``max_entries=0`` keeps nothing. Not shared across threads: one event loop uses it, without awaits between
    a lookup and the update it leads to.
    """

    def __init__(self, max_entries: int) -> None:
        if max_entries < 0:
            raise ValueError("max_entries must not be negative")
        self.max_entries = max_entries
        self._entries: OrderedDict[str, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, digest: str) -> V | None:
        value = self._entries.get(digest)
        if value is not None:
            self._entries.move_to_end(digest)
        return value

    def put(self, digest: str, value: V) -> None:
        if self.max_entries == 0:
            return
        self._entries[digest] = value
        self._entries.move_to_end(digest)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def pop(self, digest: str) -> None:
        self._entries.pop(digest, None)
