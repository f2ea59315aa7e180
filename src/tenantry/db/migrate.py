"""Alembic, driven from code: upgrade to head, and tell whether a database is at head."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine


class SchemaOutOfDateError(RuntimeError):
    """The database is not at the newest migration."""


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "tenantry.db:migrations")
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def head_revision(database_url: str) -> str:
    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    assert head is not None
    return head


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply every pending migration on ``engine``'s database (up to ``revision``)."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))

    def run(connection: Connection) -> None:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    async with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # SQLite alters a table by copying it and dropping the old one, and with foreign keys on, that
            # drop would cascade to every row referring to it (steps, events, claims). The pragma only
            # takes effect outside a transaction, so it is set before the migration's transaction begins.
            await conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            await conn.commit()
        try:
            async with conn.begin():
                await conn.run_sync(run)
                if sqlite:
                    broken = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).all()
                    if broken:
                        raise RuntimeError(f"the migration left rows referring to missing ones: {broken[:5]}")
        finally:
            if sqlite:
                await conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                await conn.commit()


async def current_revision(engine: AsyncEngine) -> str | None:
    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(read)


async def ensure_up_to_date(engine: AsyncEngine) -> None:
    """Raise :class:`SchemaOutOfDateError` naming the command to run when the schema is behind."""
    current = await current_revision(engine)
    url = engine.url.render_as_string(hide_password=False)
    head = head_revision(url)
    known = {script.revision for script in ScriptDirectory.from_config(alembic_config(url)).walk_revisions()}
    if current is not None and current not in known:
        raise SchemaOutOfDateError(
            f"the database schema is at revision {current}, which this version of Tenantry does not know "
            "(a newer version migrated it); run that version, or restore a backup made before the upgrade"
        )
    if current != head:
        raise SchemaOutOfDateError(
            f"the database schema is at {current or 'nothing (empty database)'} but this version needs {head}; "
            "run `tenantry db upgrade` first"
        )
