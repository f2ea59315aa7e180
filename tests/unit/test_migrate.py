"""Schema checks: an empty, a current, and a newer-than-known database."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from tenantry.config import Settings
from tenantry.db.engine import create_engine
from tenantry.db.migrate import SchemaOutOfDateError, ensure_up_to_date, upgrade


async def test_an_empty_database_is_refused_naming_the_upgrade_command_and_accepted_after_it(tmp_path: Path) -> None:
    engine = create_engine(Settings(auth_enabled=False, database_url=f"sqlite+aiosqlite:///{tmp_path}/t.db"))
    try:
        with pytest.raises(SchemaOutOfDateError, match="tenantry db upgrade"):
            await ensure_up_to_date(engine)
        await upgrade(engine)
        await ensure_up_to_date(engine)
        await upgrade(engine)  # idempotent
        await ensure_up_to_date(engine)
    finally:
        await engine.dispose()


async def test_a_database_migrated_by_a_newer_version_is_refused_without_suggesting_an_upgrade(tmp_path: Path) -> None:
    engine = create_engine(Settings(auth_enabled=False, database_url=f"sqlite+aiosqlite:///{tmp_path}/t.db"))
    try:
        await upgrade(engine)
        async with engine.begin() as conn:
            await conn.execute(sa.text("UPDATE alembic_version SET version_num = 'ffff99'"))
        with pytest.raises(SchemaOutOfDateError, match="does not know") as caught:
            await ensure_up_to_date(engine)
        assert "db upgrade" not in str(caught.value)
    finally:
        await engine.dispose()


async def test_the_migrations_create_exactly_the_schema_the_models_describe(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from tenantry.db.base import Base
    from tenantry.tenants import models  # noqa: F401  (registers the tables)

    engine = create_engine(Settings(auth_enabled=False, database_url=database_url))
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
                )
            )
    finally:
        await engine.dispose()
    assert diff == []
