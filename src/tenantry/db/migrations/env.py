"""Alembic environment: runs on the connection handed in by tenantry.db.migrate, or opens its own."""

from alembic import context
from sqlalchemy import Connection, create_engine

from tenantry.db.base import Base
from tenantry.portal import models as _portal_models  # noqa: F401  (registers the tables)
from tenantry.provisioning import locks as _locks  # noqa: F401  (registers the tables)
from tenantry.tenants import models as _tenant_models  # noqa: F401  (registers the tables)

target_metadata = Base.metadata
config = context.config


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _configure_and_run(connection)
else:  # `alembic` CLI use during development: a sync driver for the same URL
    url = config.get_main_option("sqlalchemy.url") or ""
    sync_url = url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")
    with create_engine(sync_url).connect() as conn:
        _configure_and_run(conn)
