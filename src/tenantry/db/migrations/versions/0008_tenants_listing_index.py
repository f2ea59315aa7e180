"""Tenants are listed oldest first and paged by the (created_at, id) keyset: an index in that order.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-21
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_tenants_created_at_id", "tenants", ["created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_tenants_created_at_id", table_name="tenants")
