"""Shared fixtures: a fresh migrated database per test on SQLite and, when configured, on PostgreSQL.

Both stores are migrated once per session: SQLite tests copy a migrated template file, PostgreSQL tests
share one migrated database that is emptied before each test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tenantry.config import Settings
from tenantry.db.base import Base
from tenantry.db.engine import create_engine
from tenantry.db.migrate import upgrade

PG_ENV = "TENANTRY_TEST_POSTGRES_URL"


def _pg_admin_url() -> str | None:
    return os.environ.get(PG_ENV)


async def _admin(url: str, sql: str) -> None:
    import asyncpg

    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _migrate(url: str) -> None:
    engine = create_engine(Settings(database_url=url, auth_enabled=False))
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def _tables() -> str:
    """Every table the models declare, for TRUNCATE; the migrations' env.py has imported the models by now."""
    names = [table.name for table in reversed(Base.metadata.sorted_tables)]
    assert names, "no tables in Base.metadata: migrate (which imports the models) before truncating"
    return ", ".join(names)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Tests that configure logging must not leave their configuration to the next test."""
    import logging

    import structlog

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test run, dropped at the end."""
    admin = _pg_admin_url()
    if not admin:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test)")
    name = f"tenantry_test_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(admin, f'CREATE DATABASE "{name}"'))
    url = admin.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(_migrate(url))
    yield url
    asyncio.run(_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per session; each test gets a copy of it."""
    path = tmp_path_factory.mktemp("template") / "tenantry.db"
    asyncio.run(_migrate(f"sqlite+aiosqlite:///{path}"))
    with contextlib.closing(sqlite3.connect(path)) as conn:  # the file alone must hold everything: fold the WAL in
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test runs once on a fresh SQLite file and once on the run's PostgreSQL database (emptied, ids reset)."""
    if request.param == "sqlite":
        path = tmp_path / "tenantry.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    asyncio.run(_admin(url, f"TRUNCATE {_tables()} RESTART IDENTITY CASCADE"))
    return url


@pytest.fixture
def make_settings(database_url: str) -> Callable[..., Settings]:
    """Settings for tests: fast retries, no API authentication unless a test turns it on."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "auth_enabled": False,
            "retry_base_seconds": 0.05,
            "retry_cap_seconds": 0.5,
            "resync_interval_seconds": 3600,
            "pending_poll_seconds": 0.05,
            "worker_poll_seconds": 0.05,
            "lease_seconds": 5,
            "create_wait_seconds": 5,
            "mail_domain_base": "mail.example.test",
            # No test may ask a public resolver: a loopback port nothing answers on, unless a test starts
            # its own DNS server and names it.
            "dns_resolvers": "127.0.0.1:9",
            "dns_timeout_seconds": 1,
            "domain_check_base_seconds": 0.05,
            "domain_check_cap_seconds": 0.5,
        }
        values.update(overrides)
        return Settings(**values)

    return make
