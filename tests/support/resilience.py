"""What the resilience suites share: sizes from the environment, random fault rules, and counting upstream objects
and step attempts per tenant."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tenantry.auth.actor import SYSTEM
from tenantry.config import Settings
from tenantry.sandbox.faults import FaultRule, SandboxControls
from tenantry.sandbox.suite import SandboxSuite
from tenantry.tenants.models import Tenant, TenantStep
from tenantry.tenants.schemas import TenantCreate
from tenantry.tenants.service import TenantService

MAIL_BASE = "mail.example.test"
# The marker Tenantry's adapters put in the description of the oCIS spaces they create.
SPACE_MARKER = re.compile(r"tenantry:tenant:([0-9A-Za-z-]+)")


def sized(variable: str, default: int) -> int:
    """A suite's size: ``variable`` from the environment when set (a large run by hand), else ``default``."""
    value = os.environ.get(variable, "").strip()
    if not value:
        return default
    size = int(value)
    if size < 1:
        raise ValueError(f"{variable} must be a positive integer, not {value!r}")
    return size


@dataclass(frozen=True)
class FaultMix:
    """Shares of requests answered by each kind of fault (the rest reach the sandbox as they are)."""

    server_errors: float = 0.08  # 500, 502 and 503 in equal parts
    rate_limited: float = 0.04  # 429 with Retry-After
    hangs: float = 0.05  # held past the client's timeout, then applied
    drops: float = 0.05  # connection broken mid-answer, not applied

    @property
    def total(self) -> float:
        return self.server_errors + self.rate_limited + self.hangs + self.drops

    def rules(self, *, hang_seconds: float, retry_after: float) -> list[FaultRule]:
        """Rules on every API path that together answer these shares of requests.

        The first matching rule wins, each drawing on its own, so each rule's probability is its share of
        the requests the rules before it let through.
        """
        third = self.server_errors / 3
        wanted = [
            (FaultRule(kind="status", status=500), third),
            (FaultRule(kind="status", status=502), third),
            (FaultRule(kind="status", status=503), third),
            (FaultRule(kind="status", status=429, retry_after=retry_after), self.rate_limited),
            (FaultRule(kind="timeout", hang_seconds=hang_seconds), self.hangs),
            (FaultRule(kind="drop"), self.drops),
        ]
        rules, left = [], 1.0
        for rule, share in wanted:
            rule.probability = share / left
            left -= share
            rules.append(rule)
        return rules


async def wait_for(
    predicate: Callable[[], Awaitable[bool]],
    what: str,
    *,
    timeout: float,
    explain: Callable[[], Awaitable[object]] | None = None,
) -> float:
    """Poll ``predicate`` until it holds; the seconds it took. Fails naming ``what`` after ``timeout``, with
    what ``explain`` says about the state then."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not await predicate():
        if loop.time() - started > timeout:
            detail = "" if explain is None else f": {await explain()}"
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        await asyncio.sleep(0.1)
    return loop.time() - started


async def create_tenants(sessionmaker: async_sessionmaker[AsyncSession], slugs: list[str]) -> dict[str, str]:
    """Create the tenants in one transaction, due for the workers at once (no API reconciles them); id -> slug."""
    settings = Settings(auth_enabled=False, mail_domain_base=MAIL_BASE, create_wait_seconds=0)
    async with sessionmaker() as session, session.begin():
        service = TenantService(session, settings)
        tenants = [await service.create(TenantCreate(slug=slug, name=f"Tenant {slug}"), SYSTEM) for slug in slugs]
    return {t.id: t.slug for t in tenants}


async def statuses(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, str]:
    """Every tenant's status by id."""
    async with sessionmaker() as session:
        rows = await session.execute(sa.select(Tenant.id, Tenant.status))
        return {tenant_id: str(status) for tenant_id, status in rows.tuples().all()}


async def unsettled_steps(sessionmaker: async_sessionmaker[AsyncSession]) -> list[str]:
    """Each step not ok of a tenant not active, with its status, attempts, reason, message and next attempt."""
    async with sessionmaker() as session:
        rows = await session.execute(
            sa.select(Tenant.slug, TenantStep)
            .join(TenantStep, TenantStep.tenant_id == Tenant.id)
            .where(Tenant.status != "active", TenantStep.status != "ok")
        )
        return [
            f"{slug} {step.step}: {step.status} after {step.attempts} attempts, {step.reason}: {step.message} "
            f"(next {step.next_attempt_at})"
            for slug, step in rows.tuples().all()
        ]


async def step_attempts(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, dict[str, tuple[str, int]]]:
    """Per step, per tenant id: the step's status and the attempts of its current streak."""
    async with sessionmaker() as session:
        rows = await session.execute(
            sa.select(TenantStep.step, TenantStep.tenant_id, TenantStep.status, TenantStep.attempts)
        )
        out: dict[str, dict[str, tuple[str, int]]] = {}
        for step, tenant_id, status, attempts in rows.tuples().all():
            out.setdefault(str(step), {})[tenant_id] = (str(status), attempts)
        return out


def upstream_objects(suite: SandboxSuite, tenants: Mapping[str, str]) -> dict[str, Counter[str]]:
    """Per upstream, how many objects each tenant (id -> slug) has there, found by what marks them as the
    tenant's: the group's ``tenant_id`` attribute, the domain's name, the space's description marker. Objects
    no tenant of ``tenants`` owns are counted under ``"<none>"``."""
    domains = {f"{slug}.{MAIL_BASE}": tenant_id for tenant_id, slug in tenants.items()}
    groups: Counter[str] = Counter()
    for group in suite.authentik.groups():
        owner = group["attributes"].get("tenant_id")
        groups[owner if owner in tenants else "<none>"] += 1
    mail: Counter[str] = Counter(domains.get(domain["name"], "<none>") for domain in suite.stalwart.domains())
    files: Counter[str] = Counter()
    for space in suite.ocis.spaces():
        if space.get("driveType") != "project":
            continue
        found = SPACE_MARKER.search(space.get("description") or "")
        files[found.group(1) if found and found.group(1) in tenants else "<none>"] += 1
    return {"authentik": groups, "stalwart": mail, "ocis": files}


def not_exactly_one(objects: Mapping[str, Counter[str]], tenants: Mapping[str, str]) -> dict[str, dict[str, int]]:
    """Per upstream, the tenants (by slug, and ``<none>`` for unowned objects) that do not hold exactly one object."""
    out: dict[str, dict[str, int]] = {}
    for upstream, counts in objects.items():
        wrong = {tenants.get(key, key): n for key, n in counts.items() if n != 1 or key not in tenants}
        wrong.update({slug: 0 for tenant_id, slug in tenants.items() if tenant_id not in counts})
        if wrong:
            out[upstream] = wrong
    return out


def requests_about(controls: SandboxControls, needle: str) -> list[str]:
    """The logged requests whose path, query or body mention ``needle``, one line each, for a failure message."""
    lines = []
    for r in controls.requests():
        if needle in r.path or needle in r.query or needle in json.dumps(r.body):
            answered = "no answer" if r.finished is None else f"answered after {r.finished - r.started:.2f}s"
            lines.append(f"{r.method} {r.path} at {r.started:.2f}: {r.status} {r.fault or ''} {answered}")
    return lines


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"
