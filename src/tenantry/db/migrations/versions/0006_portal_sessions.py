"""Portal sessions: server-side, shared by every API process; the cookie holds only a random id.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-14
"""

import sqlalchemy as sa
from alembic import op

from tenantry.db.base import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "portal_sessions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("login_state", sa.String(64), nullable=True),
        sa.Column("login_nonce", sa.String(64), nullable=True),
        sa.Column("login_verifier", sa.String(128), nullable=True),
        sa.Column("next_path", sa.String(2000), nullable=True),
        sa.Column("sub", sa.String(255), nullable=True),
        sa.Column("display_name", sa.String(200), nullable=True),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("tokens", sa.Text(), nullable=True),
        sa.Column("access_expires_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_sessions")),
    )
    op.create_index(op.f("ix_portal_sessions_expires_at"), "portal_sessions", ["expires_at"])
    op.create_index(op.f("ix_portal_sessions_sub"), "portal_sessions", ["sub"])


def downgrade() -> None:
    op.drop_table("portal_sessions")
