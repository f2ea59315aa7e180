"""A list filtered by status is paged by the same (created_at, id) keyset: an index on (status, created_at, id),
which also serves every lookup the status index served, so that one goes.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_tenants_status_created_at_id", "tenants", ["status", "created_at", "id"])
    op.drop_index("ix_tenants_status", table_name="tenants")


def downgrade() -> None:
    op.create_index("ix_tenants_status", "tenants", ["status"])
    op.drop_index("ix_tenants_status_created_at_id", table_name="tenants")
