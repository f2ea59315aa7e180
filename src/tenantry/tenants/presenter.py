"""ORM tenant → API shape, including per-step conditions and the original service's status maps."""

from __future__ import annotations

from tenantry.states import STEP_ORDER, StepStatus
from tenantry.tenants.models import Tenant, TenantStep
from tenantry.tenants.schemas import StepCondition, TenantOut


def condition(step: TenantStep) -> StepCondition:
    return StepCondition(
        status=step.status,
        reason=step.reason,
        message=step.message,
        retryable=step.retryable,
        attempts=step.attempts,
        last_attempt_at=step.last_attempt_at,
        next_attempt_at=step.next_attempt_at,
        last_success_at=step.last_success_at,
        last_transition_at=step.last_transition_at,
        observed_generation=step.observed_generation,
        upstream_ids={k: str(v) for k, v in (step.outputs or {}).items()},
    )


def present(tenant: Tenant) -> TenantOut:
    steps = sorted(tenant.steps, key=lambda s: STEP_ORDER.index(s.step) if s.step in STEP_ORDER else 99)
    return TenantOut(
        id=tenant.id,
        slug=tenant.slug,
        name=tenant.name,
        status=tenant.status,
        generation=tenant.generation,
        mail_domain=tenant.mail_domain,
        quota_bytes=tenant.quota_bytes,
        provisioning_status={s.step: s.status for s in steps},
        provisioning_errors={s.step: s.message for s in steps if s.status == StepStatus.ERROR},
        conditions={s.step: condition(s) for s in steps},
        owner=tenant.owner_sub,
        created_at=tenant.created_at,
        created_by=tenant.created_by,
        updated_at=tenant.updated_at,
        updated_by=tenant.updated_by,
        activated_at=tenant.activated_at,
    )
