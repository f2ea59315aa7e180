"""ORM tenant → API shape, including per-step conditions and the original service's status maps."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from tenantry.domains.checks import challenge_record
from tenantry.integrations.dns import DnsRecord
from tenantry.states import STEP_ORDER, DomainStatus, StepStatus
from tenantry.tenants.domain_service import DomainPlan, TenantDns
from tenantry.tenants.models import DomainClaim, Tenant, TenantStep
from tenantry.tenants.schemas import (
    DnsCheckOut,
    DnsRecordOut,
    DnsRecordsOut,
    DomainOut,
    DomainPlanOut,
    FieldChangeOut,
    PlannedChangeOut,
    RecordCheckOut,
    StepCondition,
    StepPlanOut,
    TenantEventOut,
    TenantOut,
    TenantPlanOut,
)
from tenantry.tenants.service import StepPlanView


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
        mail_domain_status=claim.status if (claim := tenant.claim_for(tenant.mail_domain)) else None,
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


def record_out(record: DnsRecord) -> DnsRecordOut:
    return DnsRecordOut(type=record.type, name=record.name, value=record.value, ttl=record.ttl, purpose=record.purpose)


def present_domain(claim: DomainClaim) -> DomainOut:
    proven = claim.status == DomainStatus.VERIFIED
    return DomainOut(
        domain=claim.domain,
        status=claim.status,
        proof=claim.proof,
        challenge=None if proven else record_out(challenge_record(claim.domain, claim.token)),
        checks=claim.checks,
        checked_at=claim.checked_at,
        check_message=claim.check_message,
        expires_at=claim.expires_at,
        verified_at=claim.verified_at,
        verified_by=claim.verified_by,
    )


def present_dns(dns: TenantDns) -> DnsRecordsOut:
    check = None
    if dns.check is not None:
        check = DnsCheckOut(
            checked_at=dns.check["checkedAt"],
            complete=dns.check["complete"],
            mail_flows=dns.check["mailFlows"],
            records=[
                RecordCheckOut(
                    type=r["record"]["type"],
                    name=r["record"]["name"],
                    purpose=r["record"]["purpose"],
                    expected=r["expected"],
                    state=r["state"],
                    severity=r["severity"],
                    found=r["found"],
                    message=r["message"],
                )
                for r in dns.check["records"]
            ],
        )
    return DnsRecordsOut(
        domain=dns.domain,
        status=dns.status,
        records=[record_out(r) for r in dns.records],
        challenge=record_out(dns.challenge) if dns.challenge else None,
        check=check,
    )


def present_plan(plan: DomainPlan) -> DomainPlanOut:
    return DomainPlanOut(
        current=plan.current,
        target=plan.target,
        ready=plan.ready,
        blockers=plan.blockers,
        actions=plan.actions,
        target_claim=present_domain(plan.claim),
    )


def _cell(text: str) -> str:
    # A cell a spreadsheet would take for a formula (a tenant's name can be anything) is quoted as text.
    return "'" + text if text[:1] in {"=", "+", "-", "@", "\t", "\r"} else text


def events_csv(events: list[TenantEventOut]) -> str:
    """Events as CSV (RFC 4180), one row each, with a header row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["at", "kind", "step", "actor", "message"])
    for e in events:
        writer.writerow([e.at.isoformat(), e.kind, e.step or "", _cell(e.actor or ""), _cell(e.message)])
    return out.getvalue()


def present_tenant_plan(tenant: Tenant, plans: Sequence[StepPlanView]) -> TenantPlanOut:
    return TenantPlanOut(
        slug=tenant.slug,
        status=tenant.status,
        generation=tenant.generation,
        steps=[
            StepPlanOut(
                step=p.step,
                note=p.note,
                error=p.error,
                changes=[
                    PlannedChangeOut(
                        target=c.target,
                        action=c.action,
                        note=c.note,
                        changes={k: FieldChangeOut(now=v[0], wanted=v[1]) for k, v in c.changes.items()},
                    )
                    for c in p.changes
                ],
            )
            for p in plans
        ],
    )
