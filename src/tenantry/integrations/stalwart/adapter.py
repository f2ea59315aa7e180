"""The mail step over Stalwart: a tenant's domain, its DKIM keys and the DNS records to publish."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractContextManager

from tenantry.hostnames import normalise_hostname
from tenantry.integrations.errors import (
    PermanentStepError,
    Reason,
    StepError,
    TransientStepError,
    translated,
)
from tenantry.integrations.ports import ADOPT, MarkedObject, PlannedChange, StepResult, TenantSpec

from .client import DomainWithDkim, StalwartClient
from .errors import (
    StalwartAuthError,
    StalwartConnectionError,
    StalwartError,
    StalwartMethodError,
    StalwartRateLimitError,
    StalwartRequestError,
    StalwartServerError,
    StalwartSetError,
    StalwartTimeoutError,
)
from .inventory import DomainInventory, carries_marker, domain_description, domain_drift, remarked, tenant_marker
from .models import Domain, DomainCreate, DomainUpdate
from .plan import DomainPlanner
from .zone import DnsZoneError, ZoneCache

DOMAIN_ID = "domainId"
_TRANSIENT_METHOD_ERRORS = {"serverUnavailable", "serverPartialFail", "serverFail"}
_OPERATION_PERMISSION = {"create": "Create", "update": "Update", "destroy": "Destroy"}
# SetErrors that Stalwart's own words explain, by type.
_SET_ERROR_REASONS = {"notFound": Reason.NOT_FOUND, "overQuota": "OverQuota", "objectIsLinked": "DomainInUse"}
_SUPPORTED = "Tenantry needs Stalwart >= 0.16 (JMAP management) reached directly at its configured URL"


def _permission(object_type: str, action: str) -> str:
    # Stalwart names its permissions sys<Object><Action>, e.g. sysDomainCreate.
    return f"sys{object_type}{action}"


def _method_permission(method: str) -> str | None:
    object_part, _, verb = method.partition("/")
    action = {"get": "Get", "query": "Query"}.get(verb)
    return _permission(object_part.removeprefix("x:"), action) if action else None


def translate_error(  # noqa: PLR0911 - one case per error class reads best
    err: StalwartError, *, credentials: str
) -> StepError:
    """The one place Stalwart client errors become step errors: what is retried, what a human must fix."""
    match err:
        case StalwartAuthError():
            what = "the API key" if credentials.endswith("_API_KEY") else "the credentials"
            return PermanentStepError(
                f"Stalwart rejected {what} ({err.status}): {err.detail or err.title}; check {credentials}",
                reason=Reason.AUTHENTICATION_FAILED,
            )
        case StalwartRateLimitError():
            return TransientStepError(str(err), reason=Reason.RATE_LIMITED, retry_after=err.retry_after)
        case StalwartServerError():
            return TransientStepError(str(err), reason=Reason.UPSTREAM_ERROR, retry_after=err.retry_after)
        case StalwartRequestError(status=404):
            return PermanentStepError(
                f"{err}; check that the configured Stalwart URL is the server's root", reason=Reason.NOT_FOUND
            )
        case StalwartTimeoutError():
            return TransientStepError(str(err), reason=Reason.UPSTREAM_TIMEOUT)
        case StalwartConnectionError():
            return TransientStepError(str(err), reason=Reason.UPSTREAM_UNREACHABLE)
        case StalwartMethodError():
            return _method_error(err)
        case StalwartSetError():
            return _set_error(err)
        case _:
            # A refused request, or an answer that is not JMAP (a proxy's login page, another server, an
            # older release): retrying the same call won't help.
            return PermanentStepError(f"{err}; {_SUPPORTED}", reason=Reason.UNEXPECTED_RESPONSE)


def _method_error(err: StalwartMethodError) -> StepError:
    if err.type in _TRANSIENT_METHOD_ERRORS:
        return TransientStepError(str(err), reason=Reason.UPSTREAM_ERROR)
    if err.type == "forbidden":
        permission = _method_permission(err.method)
        needed = f"; the API key needs the {permission} permission" if permission else ""
        return PermanentStepError(f"{err}{needed}", reason=Reason.FORBIDDEN)
    if err.type == "unknownMethod":
        return PermanentStepError(f"{err}; {_SUPPORTED}", reason=Reason.UNSUPPORTED_UPSTREAM)
    return PermanentStepError(f"{err}; {_SUPPORTED}", reason=Reason.UNEXPECTED_RESPONSE)


def _set_error(err: StalwartSetError) -> StepError:
    if err.is_forbidden:
        permission = _permission(err.object_type, _OPERATION_PERMISSION[err.operation])
        return PermanentStepError(f"{err}; the API key needs the {permission} permission", reason=Reason.FORBIDDEN)
    if err.is_primary_key_violation:
        owner = f" (owned by {err.object_id.object} {err.object_id.id})" if err.object_id else ""
        return PermanentStepError(f"{err}{owner}", reason="DomainConflict")
    if err.is_validation_error or err.type == "invalidForeignKey":
        properties = ", ".join(err.invalid_properties) or "unknown properties"
        return PermanentStepError(
            f"Stalwart refused {err.object_type} values ({properties}): {err}", reason=Reason.VALIDATION_FAILED
        )
    return PermanentStepError(str(err), reason=_SET_ERROR_REASONS.get(err.type, Reason.UNEXPECTED_RESPONSE))


class StalwartMailProvider:
    """:class:`~tenantry.integrations.ports.MailProvider` over a :class:`StalwartClient`.

    A domain found by name is adopted only if it is the tenant's default domain (``<slug>.<domain_base>``:
    the operator's base domain is the marker) or its description carries the tenant's marker; a custom
    domain is otherwise someone else's, and a self-service user must not be able to take it over. An
    empty ``domain_base`` means no default domain: every adoption needs the marker.
    """

    def __init__(
        self,
        client: StalwartClient,
        *,
        domain_base: str = "",
        credentials_setting: str = "TENANTRY_STALWART_API_KEY",
        zones: ZoneCache | None = None,
    ) -> None:
        self._client = client
        # A tenant's zone seldom changes between ensures: its records are read once per distinct text.
        self._zones = zones if zones is not None else ZoneCache()
        self._domain_base = domain_base.strip().strip(".").lower()
        self._credentials_setting = credentials_setting
        self._inventory = DomainInventory(
            client, domain_base=self._domain_base, key=DOMAIN_ID, teardown=self.delete_tenant_domain
        )

    def _default_domain(self, tenant: TenantSpec) -> str | None:
        if not self._domain_base:
            return None
        try:
            return normalise_hostname(f"{tenant.slug}.{self._domain_base}")
        except ValueError:
            return None

    def _is_ours(self, tenant: TenantSpec, name: str, domain: Domain) -> bool:
        return name == self._default_domain(tenant) or carries_marker(domain.description, tenant)

    def _claim(self, tenant: TenantSpec, name: str, domain: Domain) -> None:
        """Refuse to adopt ``domain`` (found by name) unless it is the tenant's by the rules above."""
        if self._is_ours(tenant, name, domain):
            return
        raise PermanentStepError(
            f"{name} already exists in Stalwart (domain {domain.id}) and is not marked as tenant "
            f'{tenant.slug}\'s; an operator who wants it adopted can add "{tenant_marker(tenant)}" to its '
            "description in Stalwart",
            reason="DomainConflict",
        )

    def _translated(self) -> AbstractContextManager[None]:
        return translated(StalwartError, functools.partial(translate_error, credentials=self._credentials_setting))

    async def ping(self) -> None:
        with self._translated():
            await self._client.session(refresh=True)

    def domain_drift(self, tenant: TenantSpec, listed: MarkedObject) -> str | None:
        """What a listed domain differs in from the tenant's (the bulk resync); None when it matches."""
        return domain_drift(tenant, listed)

    async def list_tenant_domains(self) -> list[MarkedObject]:
        """Every domain marked as a tenant's, or named as a default domain (see :mod:`.inventory`); reads only."""
        with self._translated():
            return await self._inventory.marked()

    async def tenant_domain_pages(self) -> AsyncIterator[list[MarkedObject]]:
        """The domains of ``list_tenant_domains``, one batch of the listing at a time (the bulk resync)."""
        with self._translated():
            async for page in self._inventory.pages():
                yield page

    async def delete_marked_domain(self, domain: MarkedObject) -> StepResult:
        """Delete one listed domain (its DKIM keys first), only while it is still marked as it was listed."""
        with self._translated():
            return await self._inventory.delete(domain)

    async def plan_tenant_domain(
        self, tenant: TenantSpec, ids: Mapping[str, str], *, teardown: bool
    ) -> list[PlannedChange]:
        """What ensure (or, with ``teardown``, delete) would do, found by reading only (see :mod:`.plan`)."""
        planner = DomainPlanner(self._client, claim=self._claim, description=domain_description)
        with self._translated():
            return await (planner.teardown if teardown else planner.ensure)(tenant, ids.get(DOMAIN_ID))

    async def ensure_tenant_domain(self, tenant: TenantSpec, ids: Mapping[str, str]) -> StepResult:
        name = tenant.mail_domain.strip().lower()
        events: list[str] = []
        with self._translated():
            # Steady state: the stored domain, its keys and its zone come back from one request.
            stored = await self._read_stored(tenant, name, ids.get(DOMAIN_ID), events)
            if stored is not None:
                domain_id, state = stored
            else:
                domain_id, state = await self._create_or_adopt(tenant, name, events)
            adopting = ids.get(ADOPT) == domain_id
            state = await self._keep_settings(tenant, domain_id, state, events, adopting=adopting)
        active = sorted(key.selector for key in state.dkim if key.stage == "active")
        if not active:
            management = state.domain.dkim_management if state.domain is not None else None
            if management is not None and management.type_ != "Automatic":
                # Stalwart generates keys only under Automatic management; waiting would be forever.
                raise PermanentStepError(
                    f"{name} has no active DKIM key and its DKIM management in Stalwart is "
                    f"{management.type_}, so Stalwart will not generate one; add a DKIM key for {name} in "
                    "Stalwart or switch its DKIM management to Automatic",
                    reason="DkimNotManaged",
                )
            return StepResult(
                state="pending",
                reason="WaitingForDkim",
                message=f"Stalwart has not generated DKIM keys for {name} yet",
                ids={DOMAIN_ID: domain_id},
                events=events,
            )
        zone_file = state.domain.dns_zone_file if state.domain is not None else None
        if not zone_file:
            return StepResult(
                state="pending",
                reason="WaitingForDnsRecords",
                message=f"Stalwart has no DNS records for {name} yet",
                ids={DOMAIN_ID: domain_id},
                events=events,
            )
        try:
            records = self._zones.records(zone_file, name)
        except DnsZoneError as err:
            raise PermanentStepError(
                f"could not read the DNS zone Stalwart gave for {name}: {err}", reason="InvalidDnsZone"
            ) from err
        if tenant.suspended:
            ready, message = "Disabled", f"{name} is disabled in Stalwart while the tenant is suspended"
        else:
            ready = "Ready"
            message = (
                f"{name} is ready in Stalwart with DKIM selector(s) {', '.join(active)}; "
                f"publish its {len(records)} DNS records"
            )
        return StepResult(
            state="ok",
            reason=ready,
            message=message,
            ids={DOMAIN_ID: domain_id},
            dns_records=tuple(records),
            events=events,
        )

    async def _read_stored(
        self, tenant: TenantSpec, name: str, stored_id: str | None, events: list[str]
    ) -> tuple[str, DomainWithDkim] | None:
        """The domain with the stored id and its keys, or None (saying why) if it is gone or renamed.

        A stored domain still named after one of the tenant's earlier mail domains is the tenant switching
        domains: it is renamed in place (its accounts, keys and mail move with it), keeping the old name
        as an alias so that mail sent to it still arrives.
        """
        if not stored_id:
            return None
        state = await self._client.get_domain_with_dkim(stored_id)
        found = state.domain
        if found is not None and found.name == name:
            return found.id, state
        if found is not None and found.name in tenant.mail_aliases:
            aliases = frozenset(tenant.mail_aliases)
            await self._client.update_domain(found.id, DomainUpdate(name=name, aliases=aliases))
            events.append(f"Renamed Stalwart domain {found.name} to {name}, keeping {found.name} as an alias")
            return found.id, await self._client.get_domain_with_dkim(found.id)
        if found is not None:
            events.append(
                f"Stalwart domain {stored_id} is now named {found.name}, not {name}; looking {name} up by name"
            )
        else:
            events.append(f"Stalwart domain {name} ({stored_id}) was deleted outside Tenantry")
        return None

    async def _keep_settings(
        self, tenant: TenantSpec, domain_id: str, state: DomainWithDkim, events: list[str], *, adopting: bool = False
    ) -> DomainWithDkim:
        """Make the domain's aliases the tenant's earlier mail domains, and the domain disabled exactly while
        the tenant is suspended (a disabled domain accepts no mail); drift either way is repaired. A domain an
        admin handed to the tenant (``adopting``) is marked as the tenant's."""
        domain = state.domain
        if domain is None:
            return state
        aliases, enabled = frozenset(tenant.mail_aliases), not tenant.suspended
        changes: dict[str, object] = {}
        if domain.aliases != aliases:
            changes["aliases"] = aliases
            shown = ", ".join(sorted(aliases)) or "none"
            events.append(f"Set the aliases of Stalwart domain {domain.name} to {shown}")
        if domain.is_enabled != enabled:
            changes["is_enabled"] = enabled
            events.append(f"{'Enabled' if enabled else 'Disabled'} Stalwart domain {domain.name}")
        if adopting and not carries_marker(domain.description, tenant):
            changes["description"] = remarked(domain.description, tenant)
            events.append(f"Marked Stalwart domain {domain.name} as this tenant's")
        if not changes:
            return state
        # Only what differs is sent: a field given as None would be sent as null (which clears it).
        await self._client.update_domain(domain_id, DomainUpdate.model_validate(changes))
        return await self._client.get_domain_with_dkim(domain_id)

    async def _create_or_adopt(self, tenant: TenantSpec, name: str, events: list[str]) -> tuple[str, DomainWithDkim]:
        """A new domain for the tenant (created and read back in one request, then its keys and zone read in
        the next); or, when Stalwart refuses the name as taken, the domain holding it if it is the tenant's
        (see the class). Creating first spares a lookup for every new tenant; a race needs no special case."""
        try:
            domain_id, _ = await self._client.create_and_get_domain(
                DomainCreate(name=name, description=domain_description(tenant))
            )
        except StalwartSetError as err:
            holder = await self._holder(name, err)
            state = await self._client.get_domain_with_dkim(holder)
            if state.domain is None:
                raise TransientStepError(
                    f"{name} was taken in Stalwart by domain {holder}, which is gone again; trying again",
                    reason=Reason.UPSTREAM_CHANGED,
                ) from err
            if state.domain.name != name:
                # Stalwart reports a name that is another domain's alias on "name" too (mapping/domain.rs).
                raise PermanentStepError(
                    f"{name} is already an alias of Stalwart domain {state.domain.name} ({holder}); "
                    "remove the alias or pick another",
                    reason="DomainConflict",
                ) from err
            # The read carries the description: a custom domain must be marked as the tenant's to be adopted.
            self._claim(tenant, name, state.domain)
            events.append(f"Adopted existing Stalwart domain {name} ({holder})")
            return holder, state
        events.append(f"Created Stalwart domain {name} ({domain_id})")
        # Stalwart makes DKIM keys in a background task after the create: they can only be read afterwards.
        return domain_id, await self._client.get_domain_with_dkim(domain_id)

    async def _holder(self, name: str, err: StalwartSetError) -> str:
        """The id of the domain that holds ``name``, from Stalwart's refusal of our create (re-raised unless
        it is the name being taken by a domain)."""
        if not err.is_primary_key_violation:
            raise err
        ref = err.object_id
        owner = f"{ref.object} {ref.id}" if ref else "another object"
        if list(err.properties) == ["aliases"]:
            # "aliases" names the aliases sent with the create, not the name (that is "name").
            raise PermanentStepError(
                f"an alias sent with {name} is already taken in Stalwart by {owner}", reason="DomainConflict"
            ) from err
        if ref is not None and ref.object == "Domain":
            # primaryKeyViolation names the holder (objectId): no lookup needed.
            return ref.id
        existing = await self._client.find_domain(name) if ref is None else None
        if existing is None:
            raise PermanentStepError(
                f"{name} is already taken in Stalwart by {owner}", reason="DomainConflict"
            ) from err
        return existing.id

    async def delete_tenant_domain(self, tenant: TenantSpec, ids: Mapping[str, str]) -> StepResult:
        name = tenant.mail_domain.strip().lower()
        with self._translated():
            domain_id = ids.get(DOMAIN_ID)
            if not domain_id:
                existing = await self._client.find_domain(name)
                if existing is not None and not self._is_ours(tenant, name, existing):
                    # Never adopted, so never ours to delete (e.g. a custom domain refused as a conflict).
                    return StepResult(
                        state="ok",
                        reason="Deleted",
                        message=f"{name} in Stalwart is not marked as this tenant's; left it alone",
                        events=[
                            f"Left Stalwart domain {name} ({existing.id}) alone: it is not marked as this tenant's"
                        ],
                    )
                domain_id = existing.id if existing is not None else None
            if domain_id is None:
                return StepResult(state="ok", reason="Deleted", message=f"{name} does not exist in Stalwart")
            try:
                await self._destroy(domain_id)
            except StalwartSetError as err:
                if err.is_not_found:
                    return StepResult(state="ok", reason="Deleted", message=f"{name} was already gone from Stalwart")
                if err.is_object_linked:
                    linked = ", ".join(f"{r.object} {r.id}" for r in err.linked_objects) or "other objects"
                    raise PermanentStepError(
                        f"Stalwart will not delete {name} while {linked} use it; delete the tenant's accounts first",
                        reason="DomainInUse",
                    ) from err
                raise
        return StepResult(
            state="ok",
            reason="Deleted",
            message=f"Deleted Stalwart domain {name}",
            events=[f"Deleted Stalwart domain {name} ({domain_id})"],
        )

    async def _destroy(self, domain_id: str) -> None:
        try:
            await self._client.destroy_domain(domain_id)
        except StalwartSetError as err:
            # The domain's own DKIM keys are no reason to keep it; anything else linked (accounts) is.
            keys = [r.id for r in err.linked_objects if r.object == "DkimSignature"]
            if not (err.is_object_linked and keys and len(keys) == len(err.linked_objects)):
                raise
            await self._client.destroy_dkim(keys)
            await self._client.destroy_domain(domain_id)
