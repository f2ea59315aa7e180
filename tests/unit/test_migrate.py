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
    from tenantry.portal import models as portal_models  # noqa: F401  (registers the tables)
    from tenantry.provisioning import locks  # noqa: F401  (registers the tables)
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


async def test_existing_tenants_keep_their_mail_domains_as_verified_claims_after_the_claims_migration(
    tmp_path: Path,
) -> None:
    engine = create_engine(Settings(auth_enabled=False, database_url=f"sqlite+aiosqlite:///{tmp_path}/t.db"))
    try:
        await upgrade(engine, "0002")
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO tenants (id, slug, name, status, generation, mail_domain, quota_bytes, created_at,"
                    " updated_at) VALUES ('t1', 'acme', 'Acme', 'active', 1, 'mail.acme.example', 1, :now, :now)"
                ),
                {"now": "2026-11-01 00:00:00"},
            )
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO tenant_steps (tenant_id, step, status, reason, message, retryable, attempts,"
                    " observed_generation, outputs, data) VALUES ('t1', 'stalwart', 'ok', 'Ready', '', 1, 1, 1,"
                    " '{}', '{}')"
                )
            )
            await conn.execute(
                sa.text("INSERT INTO tenant_events (tenant_id, at, kind, message) VALUES ('t1', :now, 'k', 'm')"),
                {"now": "2026-11-01 00:00:00"},
            )
        await upgrade(engine)
        async with engine.connect() as conn:
            # Migrations that rebuild the tenants table on SQLite must not cascade to the rows referring to it.
            kept = [
                (await conn.execute(sa.text(f"SELECT count(*) FROM {t}"))).scalar()
                for t in ("tenant_steps", "tenant_events")
            ]
            assert kept == [1, 1]
            rows = (
                await conn.execute(
                    sa.text("SELECT tenant_id, domain, status, verified_domain, proof, token FROM domain_claims")
                )
            ).all()
        assert [tuple(r[:5]) for r in rows] == [
            ("t1", "mail.acme.example", "verified", "mail.acme.example", "existing")
        ]
        assert len(rows[0][5]) >= 22  # a real random token, not a placeholder
        async with engine.begin() as conn:  # the mail domain itself is no longer unique
            await conn.execute(
                sa.text(
                    "INSERT INTO tenants (id, slug, name, status, generation, mail_domain, quota_bytes, created_at,"
                    " updated_at, lifecycle) VALUES ('t2', 'other', 'O', 'pending', 1, 'mail.acme.example', 1, :now,"
                    " :now, 'active')"
                ),
                {"now": "2026-11-01 00:00:00"},
            )
    finally:
        await engine.dispose()


async def test_the_listing_index_is_added_to_a_populated_database_keeping_every_row(tmp_path: Path) -> None:
    engine = create_engine(Settings(auth_enabled=False, database_url=f"sqlite+aiosqlite:///{tmp_path}/t.db"))
    try:
        await upgrade(engine, "0007")
        async with engine.begin() as conn:
            for i in range(3):
                await conn.execute(
                    sa.text(
                        "INSERT INTO tenants (id, slug, name, status, generation, mail_domain, quota_bytes,"
                        " created_at, updated_at, lifecycle)"
                        " VALUES (:id, :slug, 'T', 'active', 1, :domain, 1, :now, :now, 'active')"
                    ),
                    {"id": f"t{i}", "slug": f"t{i}", "domain": f"t{i}.example", "now": "2026-11-01 00:00:00"},
                )
            await conn.execute(
                sa.text(
                    "INSERT INTO tenant_steps (tenant_id, step, status, reason, message, retryable, attempts,"
                    " observed_generation, outputs, data) VALUES ('t0', 'ocis', 'ok', 'Ready', '', 1, 1, 1, '{}', '{}')"
                )
            )
        await upgrade(engine)
        async with engine.connect() as conn:
            indexes = await conn.run_sync(lambda sync: sa.inspect(sync).get_indexes("tenants"))
            kept = [
                (await conn.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar()
                for table in ("tenants", "tenant_steps")
            ]
    finally:
        await engine.dispose()
    assert {"name": "ix_tenants_created_at_id", "column_names": ["created_at", "id"]} in [
        {"name": i["name"], "column_names": i["column_names"]} for i in indexes
    ]
    assert kept == [3, 1]
