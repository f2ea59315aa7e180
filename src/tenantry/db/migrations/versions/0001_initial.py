"""Tenants, their per-step status and their event timeline.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from tenantry.db.base import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("slug", sa.String(63), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("mail_domain", sa.String(253), nullable=False),
        sa.Column("quota_bytes", sa.BigInteger(), nullable=False),
        sa.Column("owner_sub", sa.String(255), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=True),
        sa.Column("activated_at", UTCDateTime(), nullable=True),
        sa.Column("next_reconcile_at", UTCDateTime(), nullable=True),
        sa.Column("lease_owner", sa.String(100), nullable=True),
        sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
        sa.UniqueConstraint("slug", name=op.f("uq_tenants_slug")),
        sa.UniqueConstraint("mail_domain", name=op.f("uq_tenants_mail_domain")),
    )
    op.create_index(op.f("ix_tenants_status"), "tenants", ["status"])
    op.create_index(op.f("ix_tenants_owner_sub"), "tenants", ["owner_sub"])
    op.create_index(op.f("ix_tenants_next_reconcile_at"), "tenants", ["next_reconcile_at"])

    op.create_table(
        "tenant_steps",
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("step", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("retryable", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("last_success_at", UTCDateTime(), nullable=True),
        sa.Column("last_transition_at", UTCDateTime(), nullable=True),
        sa.Column("observed_generation", sa.Integer(), nullable=False),
        sa.Column("outputs", JSON, nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], ondelete="CASCADE", name=op.f("fk_tenant_steps_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "step", name=op.f("pk_tenant_steps")),
    )

    op.create_table(
        "tenant_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("step", sa.String(32), nullable=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(255), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], ondelete="CASCADE", name=op.f("fk_tenant_events_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenant_events")),
    )
    op.create_index(op.f("ix_tenant_events_tenant_id"), "tenant_events", ["tenant_id"])


def downgrade() -> None:
    op.drop_table("tenant_events")
    op.drop_table("tenant_steps")
    op.drop_table("tenants")
