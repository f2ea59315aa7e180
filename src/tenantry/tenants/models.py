"""ORM models: a tenant (desired state + lease), its per-step status, and its event timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tenantry.db.base import Base, JSONType, StrEnumType, UTCDateTime, utcnow
from tenantry.states import DomainProof, DomainStatus, Lifecycle, StepName, StepStatus, TenantStatus


class Tenant(Base):
    __tablename__ = "tenants"
    # A slug names one live tenant; tombstones (deleted_at set) keep theirs for the record but free it.
    __table_args__ = (
        sa.Index(
            "uq_tenants_live_slug",
            "slug",
            unique=True,
            sqlite_where=sa.text("deleted_at IS NULL"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        ),
        # The order tenants are listed in, oldest first, and the keyset their pages are cut by; the same within
        # one status (a list filtered by status walks it in order and stops after a page).
        sa.Index("ix_tenants_created_at_id", "created_at", "id"),
        sa.Index("ix_tenants_status_created_at_id", "status", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(63), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[TenantStatus] = mapped_column(StrEnumType(TenantStatus, 16), default=TenantStatus.PENDING)
    generation: Mapped[int] = mapped_column(sa.Integer, default=1)
    # The desired mail domain. Not unique by itself: tenants may both try an unproven name; what holds a
    # name against everyone else is a verified DomainClaim.
    mail_domain: Mapped[str] = mapped_column(sa.String(253), index=True)
    quota_bytes: Mapped[int] = mapped_column(sa.BigInteger)

    owner_sub: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(sa.String(255))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(sa.String(255))
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # The lifecycle part of the desired state. While deleting, purge_at ends the grace period (restore is
    # possible until then) and lifecycle_before is what a restore returns to; deleted_at marks a tombstone.
    lifecycle: Mapped[Lifecycle] = mapped_column(StrEnumType(Lifecycle, 16), default=Lifecycle.ACTIVE)
    lifecycle_before: Mapped[Lifecycle | None] = mapped_column(StrEnumType(Lifecycle, 16))
    purge_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    # Scheduling and the one-writer lease. A tenant is due when next_reconcile_at has passed; a worker owns it
    # while lease_expires_at is in the future.
    next_reconcile_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    lease_owner: Mapped[str | None] = mapped_column(sa.String(100))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    steps: Mapped[list[TenantStep]] = relationship(
        back_populates="tenant", cascade="all, delete-orphan", lazy="selectin", order_by="TenantStep.step"
    )
    admins: Mapped[list[TenantAdmin]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="TenantAdmin.added_at"
    )
    domain_claims: Mapped[list[DomainClaim]] = relationship(
        back_populates="tenant", cascade="all, delete-orphan", lazy="selectin", order_by="DomainClaim.id"
    )

    def claim_for(self, domain: str) -> DomainClaim | None:
        """This tenant's claim to ``domain`` (its current mail domain, usually)."""
        return next((c for c in self.domain_claims if c.domain == domain), None)

    @property
    def mail_aliases(self) -> list[str]:
        """Previous mail domains kept as aliases of the current one, oldest first."""
        return [
            c.domain
            for c in self.domain_claims
            if c.replaced_at is not None and c.domain != self.mail_domain and c.status == DomainStatus.VERIFIED
        ]

    def is_managed_by(self, sub: str) -> bool:
        """Whether ``sub`` is this tenant's owner or one of its admins."""
        return self.owner_sub == sub or any(admin.sub == sub for admin in self.admins)


class TenantStep(Base):
    """Status and conditions of one provisioning step of one tenant, with the upstream ids it owns."""

    __tablename__ = "tenant_steps"

    tenant_id: Mapped[str] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    step: Mapped[StepName] = mapped_column(StrEnumType(StepName, 32), primary_key=True)
    status: Mapped[StepStatus] = mapped_column(StrEnumType(StepStatus, 16), default=StepStatus.PENDING)
    reason: Mapped[str] = mapped_column(sa.String(64), default="Created")
    message: Mapped[str] = mapped_column(sa.Text, default="")
    retryable: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_transition_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    observed_generation: Mapped[int] = mapped_column(sa.Integer, default=0)
    outputs: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # When an attempt last began creating the step's upstream object whose id is not stored yet (see
    # integrations.ports.CreateJournal); cleared once the step owns an object again.
    create_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    tenant: Mapped[Tenant] = relationship(back_populates="steps")

    @classmethod
    def new(cls, step: StepName, *, message: str = "", due: datetime | None = None) -> TenantStep:
        """A step not tried yet; ``due`` is when it should first run (and counts as its last transition)."""
        return cls(
            step=step,
            status=StepStatus.PENDING,
            reason="Created",
            message=message,
            retryable=True,
            attempts=0,
            observed_generation=0,
            outputs={},
            data={},
            next_attempt_at=due,
            last_transition_at=due,
        )


class TenantAdmin(Base):
    """A person (token ``sub``) who manages a tenant besides its owner."""

    __tablename__ = "tenant_admins"

    tenant_id: Mapped[str] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    sub: Mapped[str] = mapped_column(sa.String(255), primary_key=True, index=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    added_by: Mapped[str | None] = mapped_column(sa.String(255))


class TenantEvent(Base):
    """One entry of a tenant's timeline: created, step failed/recovered, drift repaired, ..."""

    __tablename__ = "tenant_events"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    step: Mapped[StepName | None] = mapped_column(StrEnumType(StepName, 32))
    kind: Mapped[str] = mapped_column(sa.String(64))
    message: Mapped[str] = mapped_column(sa.Text)
    actor: Mapped[str | None] = mapped_column(sa.String(255))


class DomainClaim(Base):
    """A tenant's claim to a mail domain and the proof of it.

    ``verified_domain`` equals ``domain`` exactly while the claim is verified and is NULL otherwise; its
    unique constraint is what lets only one tenant hold a name (NULLs never collide, on SQLite and
    PostgreSQL alike), so the first tenant to prove a name wins and nobody can take a verified one.
    """

    __tablename__ = "domain_claims"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "domain"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    domain: Mapped[str] = mapped_column(sa.String(253), index=True)
    status: Mapped[DomainStatus] = mapped_column(StrEnumType(DomainStatus, 16), default=DomainStatus.UNVERIFIED)
    verified_domain: Mapped[str | None] = mapped_column(sa.String(253), unique=True)
    proof: Mapped[DomainProof | None] = mapped_column(StrEnumType(DomainProof, 16))
    token: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verified_by: Mapped[str | None] = mapped_column(sa.String(255))
    checks: Mapped[int] = mapped_column(sa.Integer, default=0)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    check_message: Mapped[str | None] = mapped_column(sa.Text)
    dns_check: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    dns_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when the tenant switched its mail domain away from this name: it stays an alias in Stalwart (no
    # mail is lost while senders and DNS catch up) until the tenant releases it.
    replaced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    tenant: Mapped[Tenant] = relationship(back_populates="domain_claims")


class IdempotencyKey(Base):
    """A create made with an ``Idempotency-Key``: a retry with the same key and body is answered with the
    tenant it created, instead of creating another (kept a day)."""

    __tablename__ = "idempotency_keys"

    actor: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    tenant_id: Mapped[str] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
