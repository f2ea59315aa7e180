"""A step notes when it last began creating its upstream object, so a retry never creates a second one; and
a named lock lets one worker of many run the bulk resync.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from tenantry.db.base import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (no table rebuild on SQLite): a nullable column needs none.
    op.add_column("tenant_steps", sa.Column("create_started_at", UTCDateTime(), nullable=True))
    op.create_table(
        "worker_locks",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_worker_locks")),
    )


def downgrade() -> None:
    op.drop_table("worker_locks")
    with op.batch_alter_table("tenant_steps") as batch:
        batch.drop_column("create_started_at")
