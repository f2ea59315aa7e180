"""The tenant lifecycle: suspension, deletion with a grace period and tombstones; idempotent creates.

A slug is unique among live tenants only (tombstones keep theirs); creates remember their Idempotency-Key.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from tenantry.db.base import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("lifecycle", sa.String(16), nullable=False, server_default="active"))
        batch.add_column(sa.Column("lifecycle_before", sa.String(16), nullable=True))
        batch.add_column(sa.Column("purge_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("deleted_at", UTCDateTime(), nullable=True))
        batch.drop_constraint("uq_tenants_slug", type_="unique")
        batch.create_index(batch.f("ix_tenants_slug"), ["slug"])
        batch.create_index(batch.f("ix_tenants_deleted_at"), ["deleted_at"])
    with op.batch_alter_table("tenants") as batch:
        batch.alter_column("lifecycle", server_default=None)
    op.create_index(
        "uq_tenants_live_slug",
        "tenants",
        ["slug"],
        unique=True,
        sqlite_where=sa.text("deleted_at IS NULL"),
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], ondelete="CASCADE", name=op.f("fk_idempotency_keys_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("actor", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index(op.f("ix_idempotency_keys_created_at"), "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_index("uq_tenants_live_slug", table_name="tenants")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_index(batch.f("ix_tenants_deleted_at"))
        batch.drop_index(batch.f("ix_tenants_slug"))
        batch.create_unique_constraint(batch.f("uq_tenants_slug"), ["slug"])
        for column in ("deleted_at", "purge_at", "lifecycle_before", "lifecycle"):
            batch.drop_column(column)
