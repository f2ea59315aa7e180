"""Domain switches: a tenant's previous mail domain stays an alias, marked by when it was replaced.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from tenantry.db.base import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("domain_claims") as batch:
        batch.add_column(sa.Column("replaced_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("domain_claims") as batch:
        batch.drop_column("replaced_at")
