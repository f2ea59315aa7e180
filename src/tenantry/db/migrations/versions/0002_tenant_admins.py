"""Tenant admins: people who manage a tenant besides its owner.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

from tenantry.db.base import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenant_admins",
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("sub", sa.String(255), nullable=False),
        sa.Column("added_at", UTCDateTime(), nullable=False),
        sa.Column("added_by", sa.String(255), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], ondelete="CASCADE", name=op.f("fk_tenant_admins_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "sub", name=op.f("pk_tenant_admins")),
    )
    op.create_index(op.f("ix_tenant_admins_sub"), "tenant_admins", ["sub"])


def downgrade() -> None:
    op.drop_table("tenant_admins")
