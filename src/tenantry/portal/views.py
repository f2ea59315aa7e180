"""Tenants in plain words for the pages: what each step is doing, when it tries again, what is owned upstream."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tenantry.db.base import utcnow
from tenantry.states import STEP_ORDER, StepName, StepStatus, TenantStatus
from tenantry.tenants.models import Tenant, TenantStep

STEP_LABELS = {
    StepName.AUTHENTIK: ("Identity", "authentik"),
    StepName.STALWART: ("Mail", "Stalwart"),
    StepName.OCIS: ("Files", "oCIS"),
}
STATUS_WORDS = {
    TenantStatus.PENDING: "Setting up",
    TenantStatus.ACTIVE: "Active",
    TenantStatus.DEGRADED: "Needs attention",
    TenantStatus.SUSPENDED: "Suspended",
    TenantStatus.DELETING: "Being deleted",
    TenantStatus.DELETED: "Deleted",
}
STATUS_TONES = {
    TenantStatus.PENDING: "working",
    TenantStatus.ACTIVE: "ok",
    TenantStatus.DEGRADED: "failing",
    TenantStatus.SUSPENDED: "off",
    TenantStatus.DELETING: "off",
    TenantStatus.DELETED: "off",
}


def _units(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 60:
        return f"{int(seconds)} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 48 * 3600:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86400)} days"


def relative(at: datetime | None, now: datetime | None = None) -> str:
    """``in 12 s`` or ``3 min ago``; ``now`` for anything within a second."""
    if at is None:
        return ""
    delta = (at - (now or utcnow())).total_seconds()
    if abs(delta) < 1:
        return "just now"
    return f"in {_units(delta)}" if delta > 0 else f"{_units(delta)} ago"


def due(at: datetime | None, now: datetime | None = None) -> str:
    """When something scheduled happens: ``in 12 s``, or ``now`` once its time has come."""
    if at is None:
        return ""
    return "now" if at <= (now or utcnow()) else relative(at, now)


def stamp(at: datetime | None) -> str:
    return "" if at is None else at.strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(at: datetime | None) -> str:
    return "" if at is None else at.isoformat(timespec="seconds")


def status_words(status: TenantStatus) -> str:
    return STATUS_WORDS.get(status, str(status))


def status_tone(status: TenantStatus) -> str:
    return STATUS_TONES.get(status, "off")


@dataclass(frozen=True)
class StepView:
    """One step as a person reads it: ``state`` in plain words, ``tone`` for its colour and icon."""

    name: str
    label: str
    upstream: str
    state: str
    tone: str
    explanation: str
    reason: str
    message: str
    attempts: int
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    last_success_at: datetime | None
    retryable: bool

    @property
    def summary(self) -> str:
        """A one-line summary for lists: ``Mail: failing, retrying by itself (attempt 3, next try in 12 s)``."""
        line = f"{self.label}: {self.state.lower()}"
        details = []
        if self.attempts and self.tone in ("failing", "stopped"):
            details.append(f"attempt {self.attempts}")
        if self.next_attempt_at is not None and self.tone in ("failing", "stopped"):
            details.append(f"next try {due(self.next_attempt_at)}")
        if details:
            line += f" ({', '.join(details)})"
        return f"{line} — {self.message}" if self.message else line


def step_view(step: TenantStep) -> StepView:
    label, upstream = STEP_LABELS.get(step.step, (str(step.step), str(step.step)))
    if step.status == StepStatus.OK:
        state, tone = "Ready", "ok"
        explanation = "Done and checked" + (f" {relative(step.last_success_at)}." if step.last_success_at else ".")
    elif step.status == StepStatus.SKIPPED:
        state, tone, explanation = "Not configured", "off", "Tenantry is not connected to this service, so it skips it."
    elif step.status == StepStatus.PENDING and step.attempts == 0:
        state, tone, explanation = "Waiting to start", "working", "The first attempt is about to run."
    elif step.status == StepStatus.PENDING:
        state, tone = "In progress", "working"
        explanation = "Waiting for the service to finish; Tenantry looks again by itself."
    elif step.retryable:
        state, tone = "Failing, retrying by itself", "failing"
        explanation = "A temporary failure: Tenantry tries again by itself, waiting longer each time."
    else:
        state, tone = "Stopped, needs a fix", "stopped"
        explanation = "This will not fix itself: correct what the message says, then press Reconcile."
    return StepView(
        name=str(step.step),
        label=label,
        upstream=upstream,
        state=state,
        tone=tone,
        explanation=explanation,
        reason=step.reason,
        message=step.message,
        attempts=step.attempts,
        last_attempt_at=step.last_attempt_at,
        next_attempt_at=step.next_attempt_at if step.status != StepStatus.OK else None,
        last_success_at=step.last_success_at,
        retryable=step.retryable,
    )


def step_views(tenant: Tenant) -> list[StepView]:
    order = {name: i for i, name in enumerate(STEP_ORDER)}
    return [step_view(s) for s in sorted(tenant.steps, key=lambda s: order.get(s.step, 99))]


def troubles(tenant: Tenant) -> list[str]:
    """A one-line summary of every step that is not ``ok``."""
    return [view.summary for view in step_views(tenant) if view.tone != "ok"]


@dataclass(frozen=True)
class Owned:
    """An object Tenantry keeps upstream for the tenant, and the id it is known by there."""

    what: str
    upstream: str
    name: str
    ids: dict[str, str]
    extra: dict[str, str]


def owned(tenant: Tenant, group_prefix: str) -> list[Owned]:
    steps = {s.step: s for s in tenant.steps}

    def ids(name: StepName) -> dict[str, str]:
        step = steps.get(name)
        return {k: str(v) for k, v in (step.outputs or {}).items()} if step is not None else {}

    files = steps.get(StepName.OCIS)
    data = (files.data or {}) if files is not None else {}
    extra = {"quota": bytes_words(int(data.get("quotaBytes") or tenant.quota_bytes))}
    if isinstance(data.get("webUrl"), str):
        extra["web address"] = data["webUrl"]
    return [
        Owned("Group", "authentik", f"{group_prefix}{tenant.slug}", ids(StepName.AUTHENTIK), {}),
        Owned("Mail domain", "Stalwart", tenant.mail_domain, ids(StepName.STALWART), {}),
        Owned("Project space", "oCIS", tenant.name, ids(StepName.OCIS), extra),
    ]


def bytes_words(n: int) -> str:
    for unit, size in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"


TEMPLATE_HELPERS: dict[str, Any] = {
    "relative": relative,
    "due": due,
    "stamp": stamp,
    "iso": iso,
    "status_words": status_words,
    "status_tone": status_tone,
    "bytes_words": bytes_words,
    "troubles": troubles,
    "relative_span": _units,
}
