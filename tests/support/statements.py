"""Counting what the app sends the store: every statement, and the transactions it begins and ends."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass
class Statements:
    """What one engine executed while recording: SQL text in order, and BEGIN/COMMIT/ROLLBACK."""

    sql: list[str] = field(default_factory=list)
    transactions: list[str] = field(default_factory=list)

    def of(self, verb: str) -> list[str]:
        """The statements starting with ``verb`` (SELECT, INSERT, UPDATE, DELETE), any case."""
        return [s for s in self.sql if s.lstrip().upper().startswith(verb.upper())]

    def touching(self, table: str) -> list[str]:
        """The statements naming ``table`` (as a whole word)."""
        pattern = re.compile(rf"\b{re.escape(table)}\b", re.IGNORECASE)
        return [s for s in self.sql if pattern.search(s)]

    def clear(self) -> None:
        self.sql.clear()
        self.transactions.clear()

    def summary(self) -> str:
        return "\n".join(self.sql)


@contextlib.contextmanager
def recording(engine: AsyncEngine) -> Iterator[Statements]:
    """Record every statement ``engine`` sends (``before_cursor_execute``) and every transaction it ends."""
    seen = Statements()
    sync = engine.sync_engine

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip().upper().startswith(("PRAGMA", "BEGIN", "COMMIT", "ROLLBACK")):
            seen.sql.append(statement)

    def on_begin(_conn: Any) -> None:
        seen.transactions.append("BEGIN")

    def on_commit(_conn: Any) -> None:
        seen.transactions.append("COMMIT")

    def on_rollback(_conn: Any) -> None:
        seen.transactions.append("ROLLBACK")

    listeners = [
        ("before_cursor_execute", on_execute),
        ("begin", on_begin),
        ("commit", on_commit),
        ("rollback", on_rollback),
    ]
    for name, listener in listeners:
        event.listen(sync, name, listener)
    try:
        yield seen
    finally:
        for name, listener in listeners:
            event.remove(sync, name, listener)
