"""Many existing tenants at once: their objects in the sandbox stores and their rows in the product's store.

Creating 10,000 or 100,000 tenants through the API would take longer than the measurement, so both sides are
filled directly, exactly as provisioning leaves them. Tenant ``i`` of a seed is fully determined by the
seed's prefix and ``i`` (:func:`seed_spec`), so the sandbox process and the benchmark agree on it without
exchanging it. Upstream, every object is made with the adapters' own names and markers: the authentik group
``<group prefix><slug>`` with the attributes ``group_attributes`` gives (``tenant_id``, ``tenant_slug``,
``managed_by``), the Stalwart domain ``<slug>.<mail domain base>`` described by ``domain_description`` (the
``tenantry:tenant:<id>`` marker) with its DKIM keys, and the oCIS project space named after the tenant and
described by the adapter (``[tenantry:tenant:<id>]``), the service account its manager. The upstream ids
come back from the sandbox process (:func:`write_ids`), and the store gets the matching rows in bulk with
SQLAlchemy Core: the tenant, its three steps ``ok`` with those ids (or, for tenants to adopt, pending without
them), and its verified claim to its mail domain.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tenantry.db.base import utcnow
from tenantry.integrations.ports import TenantSpec
from tenantry.states import DomainProof, DomainStatus, Lifecycle, StepName, StepStatus, TenantStatus
from tenantry.tenants.models import DomainClaim, Tenant, TenantStep

NAMESPACE = uuid.UUID("6f0c1f5e-8e0a-4d53-9c0e-2b1d5c4a7e10")
MAIL_DOMAIN_BASE = "bench.example.test"
QUOTA_BYTES = 10 * 1024**3
GROUP_PREFIX = "tenant-"  # TENANTRY_AUTHENTIK_GROUP_PREFIX's default
OCIS_SERVICE_USER = "svc-tenantry"  # DemoCredentials.ocis_username: the user the product acts as in oCIS
_CHUNK = 2000
# A Stalwart step's data as provisioning records it: the DNS records to publish (18 for a default domain).
_DNS_RECORDS: list[tuple[str, str, str, str]] = [
    ("TXT", "v1-ed25519-20261207._domainkey.{d}.", "v=DKIM1; k=ed25519; h=sha256; p={ed}", "DKIM"),
    ("TXT", "v1-rsa-20261207._domainkey.{d}.", "v=DKIM1; k=rsa; h=sha256; p={rsa}", "DKIM"),
    ("TXT", "{d}.", "v=spf1 mx -all", "SPF"),
    ("MX", "{d}.", "10 mail.example.test.", "MX"),
    ("TXT", "_dmarc.{d}.", "v=DMARC1; p=reject; rua=mailto:postmaster@{d}", "DMARC"),
    ("SRV", "_caldavs._tcp.{d}.", "0 1 443 mail.example.test.", "SRV"),
    ("SRV", "_carddavs._tcp.{d}.", "0 1 443 mail.example.test.", "SRV"),
    ("SRV", "_imaps._tcp.{d}.", "0 1 993 mail.example.test.", "SRV"),
    ("SRV", "_jmap._tcp.{d}.", "0 1 443 mail.example.test.", "SRV"),
    ("SRV", "_pop3s._tcp.{d}.", "0 1 995 mail.example.test.", "SRV"),
    ("SRV", "_submissions._tcp.{d}.", "0 1 465 mail.example.test.", "SRV"),
    ("CNAME", "mta-sts.{d}.", "mail.example.test.", "MTA-STS"),
    ("TXT", "_mta-sts.{d}.", "v=STSv1; id=7707453851786248110", "MTA-STS"),
    ("TXT", "_smtp._tls.{d}.", "v=TLSRPTv1; rua=mailto:postmaster@{d}", "TLS-RPT"),
    ("CNAME", "ua-auto-config.{d}.", "mail.example.test.", "AUTOCONFIG"),
    ("TXT", "_ua-auto-config.{d}.", "v=UAAC1; a=sha256; d=OWHD2/1CaRTDxFeq945ZkcLBdUtJUIoTb6c9p3/URec=", "AUTOCONFIG"),
    ("CNAME", "autoconfig.{d}.", "mail.example.test.", "AUTOCONFIG"),
    ("CNAME", "autodiscover.{d}.", "mail.example.test.", "AUTODISCOVER"),
]
_ED = "A482DtNYybmHMVQ+r7NeJcQwEASUkIH0Xmicfyvj3PM="
_RSA = (
    "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC4EzX6V0VMTvLJQdWYSKuniVuDsJxyYPlJljDvfgPuPJ6bK1FMwvKwXX6zt8PGh5zI4GNpQ5sm"
    + ("1kmIzbgQ5nKGRj2Qr7zkdPML5uK+OAZ8onO/Ukv/wa85J56Cc358h7/F2JwkI5JaDoZM4qcZrt8E2lUPaUbAf3P+8c4mUytXfQIDAQAB")
)


def seed_slug(prefix: str, i: int) -> str:
    return f"{prefix}{i:06d}"


def seed_spec(prefix: str, i: int, *, base: str = MAIL_DOMAIN_BASE) -> TenantSpec:
    """Tenant ``i`` of the seed ``prefix``: the same in every process."""
    slug = seed_slug(prefix, i)
    return TenantSpec(
        id=str(uuid.uuid5(NAMESPACE, slug)),
        slug=slug,
        name=f"Seed {i:06d}",
        generation=1,
        mail_domain=f"{slug}.{base}",
        quota_bytes=QUOTA_BYTES,
    )


@dataclass
class SeededIds:
    """The upstream ids of each seeded tenant, in seed order."""

    group_pks: list[str]
    domain_ids: list[str]
    drive_ids: list[str]

    def __len__(self) -> int:
        return len(self.group_pks)


def write_ids(path: Path, ids: SeededIds) -> None:
    path.write_text(json.dumps({"authentik": ids.group_pks, "stalwart": ids.domain_ids, "ocis": ids.drive_ids}))


def read_ids(path: Path) -> SeededIds:
    raw = json.loads(path.read_text())
    return SeededIds(raw["authentik"], raw["stalwart"], raw["ocis"])


# -- upstream: in the sandbox process ---------------------------------------------------------------------


def seed_sandboxes(suite: Any, prefix: str, count: int, *, base: str = MAIL_DOMAIN_BASE) -> SeededIds:
    """Put ``count`` tenants' objects into a :class:`~tenantry.sandbox.suite.SandboxSuite`'s stores, as the
    adapters create them; returns their ids."""
    from tenantry.integrations.authentik.adapter import AuthentikIdentityProvider
    from tenantry.integrations.ocis.adapter import OcisFileProvider
    from tenantry.integrations.stalwart.inventory import domain_description

    ocis_naming = OcisFileProvider(client=None)  # type: ignore[arg-type]  # naming only: no request is sent
    directory, mail, files = suite.authentik.directory, suite.stalwart.store, suite.ocis
    ids = SeededIds([], [], [])
    for i in range(count):
        spec = seed_spec(prefix, i, base=base)
        group = directory.insert_group(
            {"name": f"{GROUP_PREFIX}{spec.slug}", "attributes": AuthentikIdentityProvider.group_attributes(spec)}
        )
        ids.group_pks.append(group.pk)
        domain_id = mail.create("Domain", {"name": spec.mail_domain, "description": domain_description(spec)}, str)
        mail.generate_dkim(domain_id)
        ids.domain_ids.append(domain_id)
        drive = files.add_space(
            ocis_naming.space_name(spec.name),
            ocis_naming.description(spec),
            spec.quota_bytes,
            manager=OCIS_SERVICE_USER,
        )
        ids.drive_ids.append(str(drive["id"]))
    return ids


# -- the store: in the benchmark process ------------------------------------------------------------------


def _step_rows(
    spec: TenantSpec, at: datetime, due: datetime, ids: tuple[str, str, str] | None, *, journaled: bool = True
) -> list[dict[str, Any]]:
    """The three step rows of a tenant: ``ok`` with its ids as provisioning leaves them, or (``ids`` None)
    pending and due now; ``journaled``: with a note that a create began long ago (so each step looks for its
    object by marker, as after a create whose answer was lost), else as a new tenant's."""
    rows = []
    for n, step in enumerate((StepName.AUTHENTIK, StepName.STALWART, StepName.OCIS)):
        base: dict[str, Any] = {
            "tenant_id": spec.id,
            "step": step,
            "retryable": True,
            "last_transition_at": at,
        }
        if ids is None:
            rows.append(
                {
                    **base,
                    "status": StepStatus.PENDING,
                    "reason": "Created",
                    "message": "",
                    "attempts": 0,
                    "last_attempt_at": None,
                    "next_attempt_at": at,
                    "last_success_at": None,
                    "observed_generation": 0,
                    "outputs": {},
                    "data": {},
                    "create_started_at": at - timedelta(hours=1) if journaled else None,
                }
            )
            continue
        outputs, data, message = _step_outputs(step, spec, ids[n])
        rows.append(
            {
                **base,
                "status": StepStatus.OK,
                "reason": "Created",
                "message": message,
                "attempts": 1,
                "last_attempt_at": at,
                "next_attempt_at": due,
                "last_success_at": at,
                "observed_generation": 1,
                "outputs": outputs,
                "data": data,
                "create_started_at": None,
            }
        )
    return rows


def _step_outputs(step: StepName, spec: TenantSpec, object_id: str) -> tuple[dict[str, str], dict[str, Any], str]:
    if step == StepName.AUTHENTIK:
        name = f"{GROUP_PREFIX}{spec.slug}"
        return {"groupPk": object_id}, {}, f"created authentik group {name} ({object_id})"
    if step == StepName.STALWART:
        records = [
            {
                "type": kind,
                "name": name.format(d=spec.mail_domain),
                "value": value.format(d=spec.mail_domain, ed=_ED, rsa=_RSA),
                "ttl": 3600,
                "purpose": purpose,
            }
            for kind, name, value, purpose in _DNS_RECORDS
        ]
        message = f"{spec.mail_domain} is ready in Stalwart; publish its {len(records)} DNS records"
        return {"domainId": object_id}, {"dnsRecords": records}, message
    data = {"quotaBytes": spec.quota_bytes, "webUrl": f"http://ocis.invalid/f/{object_id}"}
    return {"driveId": object_id}, data, f"space {spec.name!r} ({object_id}) is ready"


def store_rows(
    specs: Sequence[TenantSpec],
    ids: Sequence[tuple[str, str, str] | None],
    *,
    journaled: int | None = None,
    now: datetime | None = None,
) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]]:
    """Tenant, step and claim rows in chunks. A tenant with ids is active and next due a day later (as after
    a successful reconcile); one without (``None``) is pending and due now, and among those the ones before
    index ``journaled`` (default: all) carry the note that a create began long ago."""
    now = now or utcnow()
    due = now + timedelta(days=1)
    tenants: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    claims: list[dict[str, Any]] = []
    count = len(specs)
    for n, (spec, own) in enumerate(zip(specs, ids, strict=True)):
        created = now - timedelta(seconds=count - n)  # distinct, in seed order: the listing's order
        healthy = own is not None
        tenants.append(
            {
                "id": spec.id,
                "slug": spec.slug,
                "name": spec.name,
                "status": TenantStatus.ACTIVE if healthy else TenantStatus.PENDING,
                "generation": 1,
                "mail_domain": spec.mail_domain,
                "quota_bytes": spec.quota_bytes,
                "owner_sub": None,
                "created_at": created,
                "created_by": "bench",
                "updated_at": created,
                "updated_by": "bench",
                "activated_at": created if healthy else None,
                "lifecycle": Lifecycle.ACTIVE,
                "next_reconcile_at": due if healthy else created,
            }
        )
        steps += _step_rows(spec, created, due, own, journaled=journaled is None or n < journaled)
        claims.append(
            {
                "tenant_id": spec.id,
                "domain": spec.mail_domain,
                "status": DomainStatus.VERIFIED,
                "verified_domain": spec.mail_domain,
                "proof": DomainProof.PLATFORM,
                "token": uuid.uuid5(NAMESPACE, spec.id).hex,
                "created_at": created,
                "verified_at": created,
                "checks": 0,
            }
        )
        if len(tenants) >= _CHUNK:
            yield tenants, steps, claims
            tenants, steps, claims = [], [], []
    if tenants:
        yield tenants, steps, claims


async def seed_store(
    engine: AsyncEngine,
    prefix: str,
    ids: SeededIds,
    *,
    pending: int = 0,
    fresh: int = 0,
    base: str = MAIL_DOMAIN_BASE,
) -> int:
    """Insert the store rows of the seeded tenants: the first ``len(ids) - pending`` healthy, the last
    ``pending`` waiting to be adopted (their objects exist upstream, no id is stored), then ``fresh`` more
    tenants that exist nowhere upstream yet, due now as a new tenant is. Returns the tenants written."""
    count = len(ids)
    healthy = count - pending
    specs = [seed_spec(prefix, i, base=base) for i in range(count + fresh)]
    own: list[tuple[str, str, str] | None] = [
        (ids.group_pks[i], ids.domain_ids[i], ids.drive_ids[i]) if i < healthy else None for i in range(count)
    ]
    async with engine.begin() as conn:
        for tenants, steps, claims in store_rows(specs, [*own, *([None] * fresh)], journaled=count):
            await conn.execute(sa.insert(Tenant), tenants)
            await conn.execute(sa.insert(TenantStep), steps)
            await conn.execute(sa.insert(DomainClaim), claims)
    return count + fresh
