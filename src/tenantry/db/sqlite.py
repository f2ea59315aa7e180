"""SQLite through aiosqlite with one trip to its thread per statement.

aiosqlite runs each connection on a thread of its own, and SQLAlchemy's adapter makes three or four trips
there per statement (open a cursor, execute, fetch the rows, close the cursor), each a hand-over between
threads that costs CPU and, on an idle machine, a wake-up. Here the whole statement runs in one trip: a
function executed on the connection's thread opens the cursor, executes, fetches the rows and closes the
cursor. The function is queued with aiosqlite's ``Connection._execute``, the way SQLAlchemy's own adapter
queues its isolation-level change; ``tests/unit/db/test_sqlite_trips.py`` holds the count.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)

Ran = tuple[Any, list[Any] | None, Any, int]  # description, rows, lastrowid, rowcount


def _run(conn: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> Ran:
    """One statement on the connection's thread, its cursor closed before the answer goes back."""
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        if cursor.description:
            return cursor.description, cursor.fetchall(), -1, -1
        return None, None, cursor.lastrowid, cursor.rowcount
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """SQLAlchemy's aiosqlite cursor, each statement one trip to the connection's thread."""

    __slots__ = ()

    def _one_trip(self, operation: str, parameters: Any, *, many: bool) -> None:
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        try:
            description, rows, lastrowid, rowcount = self.await_(
                connection._execute(_run, connection._conn, operation, parameters, many)  # type: ignore[no-untyped-call]
            )
        except Exception as error:  # noqa: BLE001 - every driver error goes to SQLAlchemy's translation, as in its cursor
            self._adapt_connection._handle_exception(error)
        self.description = description
        self.lastrowid, self.rowcount = lastrowid, rowcount
        self._rows = deque(rows) if rows is not None else deque()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        self._one_trip(operation, parameters, many=False)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        self._one_trip(operation, seq_of_parameters, many=True)


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()

    def cursor(self, server_side: bool = False) -> AsyncAdapt_aiosqlite_cursor:
        if server_side:  # a streamed read fetches in batches: it keeps SQLAlchemy's cursor
            return super().cursor(server_side=True)
        return OneTripCursor(self)


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI module the SQLite engine is given (``create_async_engine(..., module=...)``)."""

    def __init__(self) -> None:
        super().__init__(aiosqlite, sqlite3)

    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        adapted = super().connect(*arg, **kw)
        return OneTripConnection(self, adapted._connection)
