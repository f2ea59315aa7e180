"""The provisioning steps: one per upstream, each an idempotent ``ensure`` over its port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from tenantry.integrations.null import NotConfigured
from tenantry.integrations.ports import (
    FileProvider,
    IdentityProvider,
    MailProvider,
    MarkedObject,
    PlannedChange,
    StepResult,
    TenantSpec,
)
from tenantry.states import StepName

Ensure = Callable[..., Awaitable[StepResult]]  # (tenant, ids[, journal]) -> what it achieved
Plan = Callable[..., Awaitable[list[PlannedChange]]]  # (tenant, ids, *, teardown) -> what would change
Survey = Callable[[], Awaitable[list[MarkedObject]]]
SurveyPages = Callable[[], AsyncIterator[list[MarkedObject]]]  # the same listing, a page at a time
Discard = Callable[[MarkedObject], Awaitable[StepResult]]
Drift = Callable[[TenantSpec, MarkedObject], "str | None"]  # what a listed object shows differs, or None


@dataclass(frozen=True)
class EmptyDuplicates:
    """How the bulk resync removes a second object carrying one tenant's marker: only one whose listing shows it
    empty (``empty``), by ``discard``, which reads it again and removes it only while it is still empty."""

    empty: Callable[[MarkedObject], bool]
    discard: Discard


@dataclass(frozen=True)
class Step:
    """A named ``ensure`` over one upstream's adapter; ``configured`` is False for the null adapter.

    ``teardown`` removes what ``ensure`` made (after a deletion's grace period). ``survey`` lists every object
    of the upstream marked as any tenant's, and ``discard`` removes one of them by the teardown path (orphans).
    ``gated``: the step provisions the tenant's mail domain, so it waits until the tenant has proven it.
    ``survey_pages``, ``drift`` and ``duplicates`` serve the bulk resync (:mod:`tenantry.provisioning.resync`):
    the survey's listing a page at a time (without it the resync takes the survey as one page), what a listed
    object shows differs from the tenant's desired state, and removing a provably empty duplicate.
    ``journaled``: ensure takes a :class:`~tenantry.integrations.ports.CreateJournal` as its third argument (its
    upstream accepts duplicate names, so a create whose outcome was not seen must not simply be sent again).
    """

    name: StepName
    ensure: Ensure
    teardown: Ensure
    plan: Plan
    ping: Callable[[], Awaitable[None]]
    configured: bool
    survey: Survey
    discard: Discard
    gated: bool = False
    journaled: bool = False
    # The requests its ensure makes one after another for a new tenant: the longest chain starts first.
    round_trips: int = 1
    drift: Drift | None = None
    survey_pages: SurveyPages | None = None
    duplicates: EmptyDuplicates | None = None


def build_steps(identity: IdentityProvider, mail: MailProvider, files: FileProvider) -> list[Step]:
    """The steps in their order, over the adapters a process was given (null adapters where unconfigured)."""
    return [
        Step(
            StepName.AUTHENTIK,
            identity.ensure_tenant_group,
            identity.delete_tenant_group,
            identity.plan_tenant_group,
            identity.ping,
            _configured(identity),
            identity.list_tenant_groups,
            identity.delete_marked_group,
            drift=getattr(identity, "group_drift", None),
            survey_pages=getattr(identity, "tenant_group_pages", None),
        ),
        Step(
            StepName.STALWART,
            mail.ensure_tenant_domain,
            mail.delete_tenant_domain,
            mail.plan_tenant_domain,
            mail.ping,
            _configured(mail),
            mail.list_tenant_domains,
            mail.delete_marked_domain,
            gated=True,
            round_trips=2,  # the domain created and read back, then its DKIM keys and DNS zone
            drift=getattr(mail, "domain_drift", None),
            survey_pages=getattr(mail, "tenant_domain_pages", None),
        ),
        Step(
            StepName.OCIS,
            files.ensure_tenant_space,
            files.purge_tenant_space,
            files.plan_tenant_space,
            files.ping,
            _configured(files),
            files.list_tenant_spaces,
            files.purge_marked_space,
            journaled=True,
            drift=getattr(files, "space_drift", None),
            survey_pages=getattr(files, "tenant_space_pages", None),
            duplicates=_empty_duplicates(files),
        ),
    ]


def _empty_duplicates(files: FileProvider) -> EmptyDuplicates | None:
    empty, discard = getattr(files, "space_listed_empty", None), getattr(files, "purge_empty_duplicate", None)
    return EmptyDuplicates(empty, discard) if empty is not None and discard is not None else None


def _configured(provider: object) -> bool:
    return not isinstance(provider, NotConfigured)
