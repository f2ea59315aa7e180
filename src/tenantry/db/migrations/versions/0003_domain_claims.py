"""Domain claims: a mail domain is held against other tenants only once its owner has proven it.

Tenants' mail domains stop being unique by themselves; a verified claim (its unique ``verified_domain``) is
what reserves a name. Every tenant that exists already keeps its domain, as a claim verified as "existing".

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from tenantry.db.base import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    claims = op.create_table(
        "domain_claims",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("domain", sa.String(253), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("verified_domain", sa.String(253), nullable=True),
        sa.Column("proof", sa.String(16), nullable=True),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("verified_at", UTCDateTime(), nullable=True),
        sa.Column("verified_by", sa.String(255), nullable=True),
        sa.Column("checks", sa.Integer(), nullable=False),
        sa.Column("checked_at", UTCDateTime(), nullable=True),
        sa.Column("check_message", sa.Text(), nullable=True),
        sa.Column("dns_check", sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("dns_checked_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], ondelete="CASCADE", name=op.f("fk_domain_claims_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_domain_claims")),
        sa.UniqueConstraint("tenant_id", "domain", name=op.f("uq_domain_claims_tenant_id")),
        sa.UniqueConstraint("verified_domain", name=op.f("uq_domain_claims_verified_domain")),
    )
    op.create_index(op.f("ix_domain_claims_tenant_id"), "domain_claims", ["tenant_id"])
    op.create_index(op.f("ix_domain_claims_domain"), "domain_claims", ["domain"])
    with op.batch_alter_table("tenants") as batch:
        batch.drop_constraint("uq_tenants_mail_domain", type_="unique")
        batch.create_index(batch.f("ix_tenants_mail_domain"), ["mail_domain"])

    connection = op.get_bind()
    tenants = connection.execute(sa.text("SELECT id, mail_domain FROM tenants")).all()
    now = datetime.now(UTC)
    if tenants:
        op.bulk_insert(
            claims,
            [
                {
                    "tenant_id": tenant_id,
                    "domain": domain,
                    "status": "verified",
                    "verified_domain": domain,
                    "proof": "existing",
                    "token": secrets.token_urlsafe(24),
                    "created_at": now,
                    "verified_at": now,
                    "checks": 0,
                }
                for tenant_id, domain in tenants
            ],
        )


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.drop_index(batch.f("ix_tenants_mail_domain"))
        batch.create_unique_constraint(batch.f("uq_tenants_mail_domain"), ["mail_domain"])
    op.drop_table("domain_claims")
