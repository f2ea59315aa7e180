"""The mail step's dry run: what ensure or delete would do to the tenant's Stalwart domain, read without a /set."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tenantry.integrations.errors import PermanentStepError
from tenantry.integrations.ports import PlanAction, PlannedChange, TenantSpec

from .client import StalwartClient
from .models import DOMAIN_PROPERTIES, Domain

Claim = Callable[[TenantSpec, str, Domain], None]
"""The adapter's rule for a domain found by name: returns if it is the tenant's, raises DomainConflict if not."""


class DomainPlanner:
    """The adapter's path (stored id, a rename to the new mail domain, adoption by name only when the domain is
    the tenant's, else a create) over ``/get`` and ``/query`` calls, with the adapter's ownership rule."""

    def __init__(self, client: StalwartClient, *, claim: Claim, description: Callable[[TenantSpec], str]) -> None:
        self._client = client
        self._claim = claim
        self._description = description

    async def ensure(self, tenant: TenantSpec, stored_id: str | None) -> list[PlannedChange]:
        """What ``ensure_tenant_domain`` would do: create, rename, adopt or bring the domain's settings in line."""
        name = tenant.mail_domain.strip().lower()
        notes: list[str] = []
        if stored_id:
            found = (await self._client.get_domain_with_dkim(stored_id, DOMAIN_PROPERTIES)).domain
            if found is not None and found.name == name:
                return [_settings(found, tenant, notes)]
            if found is not None and found.name in tenant.mail_aliases:
                notes.append(f"renamed in place to {name}, keeping {found.name} as an alias")
                return [_settings(found, tenant, notes, rename_to=name)]
            if found is not None:
                notes.append(
                    f"stored domain {stored_id} is now named {found.name}, not {name}; {name} looked up by name"
                )
            else:
                notes.append(f"stored domain {name} ({stored_id}) was deleted outside Tenantry")
        existing = await self._client.find_domain(name)
        if existing is None:
            return [self._create(tenant, name, notes)]
        try:
            self._claim(tenant, name, existing)
        except PermanentStepError as err:
            notes.append(f"ensure would stop with {err.reason}: {err.message}")
            return [self._create(tenant, name, notes)]
        notes.append(f"would adopt existing domain {name} ({existing.id})")
        return [_settings(existing, tenant, notes)]

    async def teardown(self, tenant: TenantSpec, domain_id: str | None) -> list[PlannedChange]:
        """What ``delete_tenant_domain`` would destroy: the domain with its DKIM keys, if the tenant's."""
        name = tenant.mail_domain.strip().lower()
        if not domain_id:
            existing = await self._client.find_domain(name)
            if existing is None:
                return []
            try:
                self._claim(tenant, name, existing)
            except PermanentStepError:
                note = "not marked as this tenant's: delete leaves it alone"
                return [PlannedChange(_target(existing), "unchanged", note=note)]
            domain_id = existing.id
        state = await self._client.get_domain_with_dkim(domain_id, DOMAIN_PROPERTIES)
        domain = state.domain
        if domain is None:
            return []
        notes: list[str] = []
        if state.dkim:
            selectors = ", ".join(sorted(key.selector for key in state.dkim))
            notes.append(f"its DKIM keys ({selectors}) would be destroyed first")
        accounts = await self._client.find_accounts(domain.id)
        if accounts:
            names = ", ".join(sorted(a.email_address or f"{a.name}@{domain.name}" for a in accounts))
            notes.append(
                f"Stalwart refuses while accounts link to it ({names}): delete would stop with DomainInUse "
                "until they are deleted"
            )
        return [PlannedChange(_target(domain), "delete", {"name": (domain.name, None)}, "; ".join(notes))]

    def _create(self, tenant: TenantSpec, name: str, notes: list[str]) -> PlannedChange:
        wanted = {
            "name": name,
            "description": self._description(tenant),
            "aliases": sorted(tenant.mail_aliases),
            "isEnabled": not tenant.suspended,
        }
        changes = {field: (None, value) for field, value in wanted.items()}
        return PlannedChange(f"Stalwart domain {name}", "create", changes, "; ".join(notes))


def _settings(domain: Domain, tenant: TenantSpec, notes: list[str], *, rename_to: str | None = None) -> PlannedChange:
    """The adapter's rename and settings check on ``domain``: its aliases, and disabled exactly while suspended."""
    changes: dict[str, tuple[Any, Any]] = {}
    if rename_to is not None:
        changes["name"] = (domain.name, rename_to)
    aliases = frozenset(tenant.mail_aliases)
    if domain.aliases != aliases:
        changes["aliases"] = (sorted(domain.aliases), sorted(aliases))
    if domain.is_enabled != (not tenant.suspended):
        changes["isEnabled"] = (domain.is_enabled, not tenant.suspended)
    action: PlanAction = "update" if changes else "unchanged"
    return PlannedChange(_target(domain), action, changes, "; ".join(notes))


def _target(domain: Domain) -> str:
    return f"Stalwart domain {domain.name} ({domain.id})"
