"""What marks a Stalwart domain as a tenant's, every domain so marked, and deleting one of them on its own."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

from tenantry.integrations.errors import PermanentStepError, Reason
from tenantry.integrations.ports import MarkedObject, StepResult, TenantSpec

from .client import StalwartClient
from .models import Domain

MARKER_PREFIX = "tenantry:tenant:"
# A marker as a whole token (t1 is not t10), and the tenant id it names.
_MARKER = re.compile(rf"(?<![\w:-]){re.escape(MARKER_PREFIX)}([\w-]+)(?![\w-])", re.IGNORECASE)
_LISTED = ("id", "name", "description", "isEnabled")

Teardown = Callable[[TenantSpec, Mapping[str, str]], Awaitable[StepResult]]


def tenant_marker(tenant: TenantSpec) -> str:
    """What a domain's description carries to say it belongs to ``tenant``."""
    return f"{MARKER_PREFIX}{tenant.id}"


def domain_description(tenant: TenantSpec) -> str:
    """The description of a domain Tenantry creates: readable, and carrying the tenant's marker."""
    return f"Tenantry tenant {tenant.slug} [{tenant_marker(tenant)}]"


def marked_tenant(description: str | None) -> str | None:
    """The tenant id the marker in ``description`` names (the first, if several), or None."""
    found = _MARKER.search(description or "")
    return found.group(1).lower() if found else None


def carries_marker(description: str | None, tenant: TenantSpec) -> bool:
    """Whether ``description`` names ``tenant`` by its marker (as a whole token: t1 is not t10)."""
    return any(found.group(1).lower() == tenant.id.lower() for found in _MARKER.finditer(description or ""))


def remarked(description: str | None, tenant: TenantSpec) -> str:
    """``description`` with every marker naming ``tenant`` instead, or with the tenant's marker added."""
    if not description:
        return domain_description(tenant)
    if _MARKER.search(description):
        return _MARKER.sub(tenant_marker(tenant), description)
    return f"{description} [{tenant_marker(tenant)}]"


class DomainInventory:
    """The adapter's ``list_tenant_domains`` and ``delete_marked_domain``.

    A domain is Tenantry's when its description carries a tenant's marker, or when it is a default domain
    (``<slug>.<domain_base>``: the operator's base domain is the marker), whose tenant only its name suggests.
    """

    def __init__(self, client: StalwartClient, *, domain_base: str, key: str, teardown: Teardown) -> None:
        self._client = client
        self._base = domain_base
        self._key = key  # the id a step stores for its domain
        self._teardown = teardown  # the adapter's delete_tenant_domain: DKIM keys first, then the domain

    def _default_slug(self, name: str) -> str | None:
        label, dot, rest = name.partition(".")
        return label if self._base and dot and rest == self._base and label else None

    def _listed(self, domain: Domain) -> MarkedObject | None:
        tenant_id, slug = marked_tenant(domain.description), self._default_slug(domain.name)
        if tenant_id is None and slug is None:
            return None
        return MarkedObject(
            id=domain.id,
            name=domain.name,
            tenant_id=tenant_id,
            ids={self._key: domain.id},
            slug=slug,
            state={"isEnabled": domain.is_enabled},
        )

    async def marked(self) -> list[MarkedObject]:
        return [domain async for page in self.pages() for domain in page]

    async def pages(self) -> AsyncIterator[list[MarkedObject]]:
        """The marked domains, one batch of the listing at a time (a caller need not hold them all)."""
        async for batch in self._client.domain_batches(_LISTED):
            yield [item for item in map(self._listed, batch) if item is not None]

    async def delete(self, domain: MarkedObject) -> StepResult:
        """Delete ``domain`` by the teardown path, only while it is still marked as it was listed (the same
        tenant's marker; or, listed by its name alone, still a default domain without another's marker)."""
        what = f"Stalwart domain {domain.name} ({domain.id})"
        current = next(iter(await self._client.get_domains([domain.id], _LISTED)), None)
        if current is None:
            return StepResult(state="ok", reason="Deleted", message=f"{what} was already gone")
        now = self._listed(current)
        if now is None or now.tenant_id != domain.tenant_id or now.name != domain.name:
            raise PermanentStepError(
                f"{what} is no longer marked as it was listed (now {current.name!r}, description "
                f"{current.description!r}); left it alone",
                reason=Reason.NOT_MARKED,
            )
        spec = TenantSpec(
            id=domain.tenant_id or "",
            slug=domain.slug or "",
            name=domain.name,
            generation=0,
            mail_domain=current.name,
            quota_bytes=0,
        )
        return await self._teardown(spec, {self._key: domain.id})


def domain_drift(tenant: TenantSpec, listed: MarkedObject) -> str | None:
    """What a listed domain differs in from what ensure wants, as far as the listing shows (the bulk resync)."""
    if listed.name != tenant.mail_domain:
        return f"domain {listed.id} is named {listed.name}, not {tenant.mail_domain}"
    enabled = listed.state.get("isEnabled", True)
    if enabled == tenant.suspended:
        return f"domain {listed.name} is {'enabled' if enabled else 'disabled'} out of band"
    return None
