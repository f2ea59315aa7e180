"""The ports: one typing.Protocol per upstream kind, and the values that cross them.

Adapters (``integrations/<upstream>/adapter.py``) implement these over their wire clients and raise only
:mod:`tenantry.integrations.errors`; the reconciler never sees an upstream's own errors or payloads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from tenantry.integrations.dns import DnsRecord


@dataclass(frozen=True)
class TenantSpec:
    """The desired state of one tenant, as the steps need it."""

    id: str
    slug: str
    name: str
    generation: int
    mail_domain: str
    quota_bytes: int
    mail_aliases: tuple[str, ...] = ()  # earlier mail domains that still receive mail for this one
    suspended: bool = False  # access is cut: the group marked, the domain and the space disabled


@dataclass
class StepResult:
    """What an ``ensure_*``/teardown call achieved.

    ``ids`` are the upstream ids the step owns (stored on the tenant and passed back next time);
    ``dns_records`` the records the tenant must publish (mail); ``data`` other facts worth showing (quota,
    web URL); ``events`` are human-readable notes of
    what changed upstream (created, adopted, repaired drift) for the tenant's timeline.
    """

    state: Literal["ok", "pending", "skipped"]
    reason: str
    message: str
    ids: dict[str, str] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    dns_records: tuple[DnsRecord, ...] | None = None
    events: list[str] = field(default_factory=list)


ADOPT = "adopt"
"""A key in the ids an ensure is given: the id of an object a platform admin handed to this tenant (``POST
/orphans/…/adopt``). Ensure takes that object over and marks it as this tenant's even when its marker names
another tenant; the ids it answers with no longer carry the key."""


@dataclass(frozen=True, slots=True)
class MarkedObject:
    """An upstream object that carries Tenantry's marker, as ``list_tenant_*`` finds it without writing.

    ``id`` is the upstream id (group pk, domain id, drive id) and ``ids`` what a step stores to hold it;
    ``tenant_id`` is the tenant its marker names, None when only its name says it is Tenantry's (a default mail
    domain ``<slug>.<base>``); ``slug`` the tenant slug it suggests, if it suggests one. Each port's
    ``delete_marked_*`` removes one such object by its teardown path, checking first that it still carries the
    marker it was listed with (no marker, no deletion).
    """

    id: str
    name: str
    tenant_id: str | None
    ids: dict[str, str]
    slug: str | None = None
    # What the listing showed of the object, for a bulk resync to compare with the desired state without
    # reading it again (keys are the upstream's own: quotaBytes, disabled, usedBytes, ...).
    state: Mapping[str, Any] = field(default_factory=dict, compare=False)


PlanAction = Literal["create", "update", "delete", "unchanged"]


@dataclass(frozen=True)
class PlannedChange:
    """What an ``ensure`` (or a teardown) would do to one upstream object, found without writing anything.

    ``target`` names the object as a person would ("authentik group tenant-acme"); ``changes`` maps each
    field that differs to ``(now, wanted)`` (``now`` is None for a create, ``wanted`` None for a delete);
    ``note`` says anything else worth knowing (adopting an existing object, a conflict that would stop it).
    """

    target: str
    action: PlanAction
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    note: str = ""


class CreateJournal(Protocol):
    """What a step knows of its earlier attempts to create its upstream object, and where it notes a new one.

    An upstream that does not enforce unique names (oCIS spaces) can end up with two objects when a create
    times out on our side but completes upstream and the retry creates again. So an ensure that must create
    first calls :meth:`begin`, which records durably that a create is being sent; a later attempt that finds
    no stored id looks for the object by marker only when ``in_doubt`` (an earlier attempt may have created
    it), and while ``settling_seconds()`` is above zero an earlier create may still be completing upstream, so
    it waits rather than create a second object.
    """

    @property
    def in_doubt(self) -> bool: ...

    def settling_seconds(self) -> float: ...

    async def begin(self) -> None: ...

    def refused(self) -> None:
        """The upstream answered the create begun last with a refusal: it made nothing, so nothing is in doubt."""


class UnknownPast:
    """The journal of a caller that keeps none: every earlier attempt may have created, none is still settling."""

    in_doubt = True

    def settling_seconds(self) -> float:
        return 0.0

    async def begin(self) -> None:
        return None

    def refused(self) -> None:
        return None


UNKNOWN_PAST = UnknownPast()


class IdentityProvider(Protocol):
    """authentik: a group per tenant."""

    async def ensure_tenant_group(self, tenant: TenantSpec, ids: Mapping[str, str]) -> StepResult: ...

    async def delete_tenant_group(self, tenant: TenantSpec, ids: Mapping[str, str]) -> StepResult: ...

    async def plan_tenant_group(
        self, tenant: TenantSpec, ids: Mapping[str, str], *, teardown: bool
    ) -> list[PlannedChange]: ...

    async def list_tenant_groups(self) -> list[MarkedObject]: ...

    async def delete_marked_group(self, group: MarkedObject) -> StepResult: ...

    async def ping(self) -> None: ...


class MailProvider(Protocol):
    """Stalwart: the tenant's mail domain with DKIM keys and the DNS records to publish."""

    async def ensure_tenant_domain(self, tenant: TenantSpec, ids: Mapping[str, str]) -> StepResult: ...

    async def delete_tenant_domain(self, tenant: TenantSpec, ids: Mapping[str, str]) -> StepResult: ...

    async def plan_tenant_domain(
        self, tenant: TenantSpec, ids: Mapping[str, str], *, teardown: bool
    ) -> list[PlannedChange]: ...

    async def list_tenant_domains(self) -> list[MarkedObject]: ...

    async def delete_marked_domain(self, domain: MarkedObject) -> StepResult: ...

    async def ping(self) -> None: ...


class FileProvider(Protocol):
    """oCIS: a project space with a quota."""

    async def ensure_tenant_space(
        self, tenant: TenantSpec, ids: Mapping[str, str], journal: CreateJournal = UNKNOWN_PAST
    ) -> StepResult: ...

    async def disable_tenant_space(self, tenant: TenantSpec, ids: Mapping[str, str]) -> StepResult: ...

    async def purge_tenant_space(self, tenant: TenantSpec, ids: Mapping[str, str]) -> StepResult: ...

    async def plan_tenant_space(
        self, tenant: TenantSpec, ids: Mapping[str, str], *, teardown: bool
    ) -> list[PlannedChange]: ...

    async def list_tenant_spaces(self) -> list[MarkedObject]: ...

    async def purge_marked_space(self, space: MarkedObject) -> StepResult: ...

    async def ping(self) -> None: ...
