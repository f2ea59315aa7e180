"""Async client for Stalwart's JMAP management API (>= 0.16): its object calls; wire protocol only, never retries."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import ValidationError

from .errors import StalwartProtocolError
from .jmap import JmapClient, JmapRequest, first_set_error, ref
from .models import (
    ACCOUNT_PROPERTIES,
    ACCOUNTS,
    DKIM_PROPERTIES,
    DOMAIN_PROPERTIES,
    Account,
    AccountCreate,
    AccountUpdate,
    DkimSignature,
    Domain,
    DomainCreate,
    DomainUpdate,
)

_CREATE_KEY = "new"
# Stalwart's default limits (x:Jmap): a query answers at most 5000 ids, a get reads at most 500 objects.
QUERY_PAGE = 5000
GET_BATCH = 500
# get_domain_with_dkim's default: what the mail step needs to judge a domain (whose it is, who makes its
# DKIM keys) and its zone, all in the one steady-state request.
DOMAIN_ZONE_PROPERTIES: tuple[str, ...] = (
    "id",
    "name",
    "aliases",
    "isEnabled",
    "description",
    "dkimManagement",
    "dnsZoneFile",
)


@dataclass(frozen=True)
class DomainWithDkim:
    """A domain read by id together with its DKIM signatures; ``domain`` is None when the id is gone."""

    domain: Domain | None
    dkim: tuple[DkimSignature, ...]


# --- the client -------------------------------------------------------------------------------------------


class StalwartClient(JmapClient):
    """Stalwart's management objects (domains, DKIM keys, accounts) over the JMAP envelope of :class:`JmapClient`."""

    # --- generic object methods ---------------------------------------------------------------------------

    async def query(self, object_name: str, filter_: Mapping[str, Any] | None = None) -> list[str]:
        """``x:<Object>/query``: the ids matching ``filter_`` (AND of exact matches)."""
        request = JmapRequest()
        call = request.call(f"x:{object_name}/query", {"filter": dict(filter_ or {})})
        return _ids((await self.execute(request))[call])

    async def _get(
        self, object_name: str, ids: Sequence[str], properties: Sequence[str] | None
    ) -> list[Mapping[str, Any]]:
        request = JmapRequest()
        args: dict[str, Any] = {"ids": list(ids)}
        if properties is not None:
            args["properties"] = list(properties)
        call = request.call(f"x:{object_name}/get", args)
        return _list((await self.execute(request))[call])

    async def _query_get(
        self, object_name: str, filter_: Mapping[str, Any], properties: Sequence[str] | None
    ) -> list[Mapping[str, Any]]:
        request = JmapRequest()
        query = request.call(f"x:{object_name}/query", {"filter": dict(filter_)})
        args: dict[str, Any] = {"ids": ref(query, "/ids")}
        if properties is not None:
            args["properties"] = list(properties)
        get = request.call(f"x:{object_name}/get", args)
        return _list((await self.execute(request))[get])

    async def _set(
        self,
        object_name: str,
        *,
        create: Mapping[str, Any] | None = None,
        update: Mapping[str, Any] | None = None,
        destroy: Sequence[str] | None = None,
    ) -> Mapping[str, Any]:
        method = f"x:{object_name}/set"
        args: dict[str, Any] = {}
        if create is not None:
            args["create"] = dict(create)
        if update is not None:
            args["update"] = dict(update)
        if destroy is not None:
            args["destroy"] = list(destroy)
        request = JmapRequest()
        call = request.call(method, args)
        result = (await self.execute(request))[call]
        failure = first_set_error(method, result)
        if failure is not None:
            raise failure
        return result

    async def _create(self, object_name: str, body: Mapping[str, Any]) -> str:
        return _created_id(await self._set(object_name, create={_CREATE_KEY: body}), object_name)

    # --- x:Domain -----------------------------------------------------------------------------------------

    async def query_domains(self, name: str | None = None) -> list[str]:
        return await self.query("Domain", {"name": _domain_name(name)} if name is not None else None)

    async def get_domains(self, ids: Sequence[str], properties: Sequence[str] | None = None) -> list[Domain]:
        """The domains among ``ids`` that exist (missing ones are simply absent from the result)."""
        raw = await self._get("Domain", ids, properties or DOMAIN_PROPERTIES)
        return _parse_each(Domain, raw)

    async def list_domains(self, properties: Sequence[str] | None = None) -> list[Domain]:
        """Every domain: the ids a page at a time (oldest first) until a page brings none that is new (a server
        may answer fewer than asked for), then read in batches the server accepts."""
        return [domain async for batch in self.domain_batches(properties) for domain in batch]

    async def domain_batches(self, properties: Sequence[str] | None = None) -> AsyncIterator[list[Domain]]:
        """Every domain as :meth:`list_domains` reads them, a batch at a time (a caller need not hold them all)."""
        ids: dict[str, None] = {}
        sort = [{"property": "id", "isAscending": True}]
        while True:
            request = JmapRequest()
            args = {"filter": {}, "sort": sort, "position": len(ids), "limit": QUERY_PAGE}
            call = request.call("x:Domain/query", args)
            fresh = [i for i in _ids((await self.execute(request))[call]) if i not in ids]
            if not fresh:
                break
            ids.update(dict.fromkeys(fresh))
        listed = list(ids)
        for start in range(0, len(listed), GET_BATCH):
            yield await self.get_domains(listed[start : start + GET_BATCH], properties)

    async def find_domain(self, name: str, properties: Sequence[str] | None = None) -> Domain | None:
        """The domain called ``name`` (query and get in one request), or None."""
        raw = await self._query_get("Domain", {"name": _domain_name(name)}, properties or DOMAIN_PROPERTIES)
        domains = _parse_each(Domain, raw)
        return domains[0] if domains else None

    async def create_domain(self, domain: DomainCreate) -> str:
        return await self._create("Domain", domain.to_wire())

    async def create_and_get_domain(
        self, domain: DomainCreate, properties: Sequence[str] = DOMAIN_PROPERTIES
    ) -> tuple[str, Domain | None]:
        """Create a domain and read it back in one request: its id and the domain as stored (None if it is
        already gone again). A refused create raises its :class:`StalwartSetError`.

        The get names the creation (``"#new"``), which the server resolves to the created id. Stalwart
        evaluates ``#ids`` result references into /get and /query results only, not /set ones, so that form
        cannot reach the created id.
        """
        method = "x:Domain/set"
        request = JmapRequest()
        create = request.call(method, {"create": {_CREATE_KEY: domain.to_wire()}})
        get = request.call("x:Domain/get", {"ids": [f"#{_CREATE_KEY}"], "properties": list(properties)})
        # The get fails whenever the create did: the create's own error says why.
        response = await self.execute(request, raise_first_error=False)
        result = response[create]
        failure = first_set_error(method, result)
        if failure is not None:
            raise failure
        domain_id = _created_id(result, "Domain")
        found = [item for item in _parse_each(Domain, _list(response[get])) if item.id == domain_id]
        return domain_id, found[0] if found else None

    async def update_domain(self, domain_id: str, patch: DomainUpdate) -> None:
        await self._set("Domain", update={domain_id: patch.to_wire()})

    async def destroy_domain(self, domain_id: str) -> None:
        await self._set("Domain", destroy=[domain_id])

    # --- x:DkimSignature ----------------------------------------------------------------------------------

    async def query_dkim(self, domain_id: str) -> list[DkimSignature]:
        """The DKIM signatures of a domain (query and get in one request)."""
        raw = await self._query_get("DkimSignature", {"domainId": domain_id}, DKIM_PROPERTIES)
        return _parse_each(DkimSignature, raw)

    async def get_domain_with_dkim(
        self, domain_id: str, properties: Sequence[str] = DOMAIN_ZONE_PROPERTIES
    ) -> DomainWithDkim:
        """A domain and its DKIM signatures in one request (``domain`` is None when the id is gone).

        The keys are queried before the domain is read, so a zone file read together with an active key
        already lists that key. A failure is raised as it would be from separate calls: the domain's first.
        """
        request = JmapRequest()
        query = request.call("x:DkimSignature/query", {"filter": {"domainId": domain_id}})
        keys = request.call("x:DkimSignature/get", {"ids": ref(query, "/ids"), "properties": list(DKIM_PROPERTIES)})
        domain = request.call("x:Domain/get", {"ids": [domain_id], "properties": list(properties)})
        response = await self.execute(request, raise_first_error=False)
        response.raise_for(domain, query, keys)
        domains = _parse_each(Domain, _list(response[domain]))
        signatures = _parse_each(DkimSignature, _list(response[keys]))
        found = next((item for item in domains if item.id == domain_id), None)
        return DomainWithDkim(domain=found, dkim=tuple(signatures))

    async def destroy_dkim(self, ids: Sequence[str]) -> None:
        await self._set("DkimSignature", destroy=list(ids))

    # --- x:Account ----------------------------------------------------------------------------------------

    async def get_accounts(self, ids: Sequence[str]) -> list[Account]:
        return _parse_accounts(await self._get("Account", ids, ACCOUNT_PROPERTIES))

    async def find_account(self, name: str, domain_id: str) -> Account | None:
        """The account (user or group) with local part ``name`` in the domain, or None."""
        filter_ = {"name": name.strip().lower(), "domainId": domain_id}
        accounts = _parse_accounts(await self._query_get("Account", filter_, ACCOUNT_PROPERTIES))
        return accounts[0] if accounts else None

    async def find_accounts(self, domain_id: str) -> list[Account]:
        """Every account (user or group) in the domain (query and get in one request)."""
        return _parse_accounts(await self._query_get("Account", {"domainId": domain_id}, ACCOUNT_PROPERTIES))

    async def create_account(self, account: AccountCreate) -> str:
        return await self._create("Account", account.to_wire())

    async def update_account(self, account_id: str, patch: AccountUpdate) -> None:
        await self._set("Account", update={account_id: patch.to_wire()})

    async def destroy_account(self, account_id: str) -> None:
        await self._set("Account", destroy=[account_id])


def _domain_name(name: str | None) -> str:
    # Stalwart lowercases names when storing them but matches query filters exactly.
    return (name or "").strip().lower()


def _created_id(result: Mapping[str, Any], object_name: str) -> str:
    created = result.get("created")
    entry = created.get(_CREATE_KEY) if isinstance(created, Mapping) else None
    if not isinstance(entry, Mapping) or not entry.get("id"):
        raise StalwartProtocolError(f"Stalwart did not report the id of the created {object_name}")
    return str(entry["id"])


def _ids(result: Mapping[str, Any]) -> list[str]:
    ids = result.get("ids")
    if not isinstance(ids, list):
        raise StalwartProtocolError("a Stalwart query response has no ids list")
    return [str(item) for item in ids]


def _list(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    items = result.get("list")
    if not isinstance(items, list):
        raise StalwartProtocolError("a Stalwart get response has no list")
    return [item for item in items if isinstance(item, Mapping)]


_M = TypeVar("_M", Domain, DkimSignature)


def _parse_each(model: type[_M], raw: list[Mapping[str, Any]]) -> list[_M]:
    try:
        return [model.model_validate(item) for item in raw]
    except ValidationError as err:
        raise StalwartProtocolError(f"unexpected Stalwart {model.__name__} shape: {err.error_count()} errors") from err


def _parse_accounts(raw: list[Mapping[str, Any]]) -> list[Account]:
    try:
        return ACCOUNTS.validate_python(raw)
    except ValidationError as err:
        raise StalwartProtocolError(f"unexpected Stalwart Account shape: {err.error_count()} errors") from err


__all__ = ["DOMAIN_ZONE_PROPERTIES", "DomainWithDkim", "StalwartClient"]
