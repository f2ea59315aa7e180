"""Engine and session factory for the configured database (SQLite by default, PostgreSQL for scale)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from tenantry.config import Settings
from tenantry.db.sqlite import OneTripDBAPI

SQLITE_POOL_SIZE = 5


def create_engine(settings: Settings) -> AsyncEngine:
    """Build the engine. SQLite gets WAL, foreign keys and a busy timeout so API and worker can share it."""
    url = settings.database_url
    kwargs: dict[str, Any] = {"echo": settings.database_echo, "pool_timeout": settings.database_pool_timeout_seconds}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30}
        kwargs["module"] = OneTripDBAPI()  # one trip to the connection's thread per statement
        if ":memory:" in url or url.endswith("://"):
            raise ValueError("an in-memory SQLite database cannot be shared by API and worker; use a file")
        # A small pool without overflow: reusing connections spares a thread and a connect per session
        # (aiosqlite runs each connection on a thread of its own), and sessions queue for a connection in
        # order instead of all racing for SQLite's one write lock, where a loser could wait out the whole
        # busy timeout and fail with "database is locked".
        kwargs.update(pool_size=SQLITE_POOL_SIZE, max_overflow=0)
    else:
        kwargs.update(
            pool_size=settings.database_pool_size, max_overflow=settings.database_max_overflow, pool_pre_ping=True
        )
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
