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


async def test_a_database_migrated_by_a_newer_version_is_refused_without_suggesting_an_upgrade(
        tmp_path: Path) -> None:
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
