"""Async client for Stalwart's JMAP management API (>= 0.16); wire protocol only, never retries."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urljoin

import httpx
from pydantic import ValidationError

from .errors import (
    StalwartConnectionError,
    StalwartError,
    StalwartMethodError,
    StalwartProtocolError,
    StalwartTimeoutError,
    first_set_error,
    request_error,
)
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
    Session,
)

USING: tuple[str, ...] = ("urn:ietf:params:jmap:core", "urn:stalwart:jmap")
MANAGEMENT_CAPABILITY = "urn:stalwart:jmap"
_CREATE_KEY = "new"
# get_domain_with_dkim's default: what the mail step needs to judge a domain (whose it is, who makes its
# DKIM keys) and its zone, all in the one steady-state request.
DOMAIN_ZONE_PROPERTIES: tuple[str, ...] = ("id", "name", "description", "dkimManagement", "dnsZoneFile")


# --- request building -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One method call of a request: ``[name, args, id]``."""

    name: str
    args: Mapping[str, Any]
    id: str


@dataclass(frozen=True)
class ResultRef:
    """A back-reference to an earlier call's result (RFC 8620 3.7); used as an argument value."""

    result_of: str
    name: str
    path: str

    def to_wire(self) -> dict[str, str]:
        return {"resultOf": self.result_of, "name": self.name, "path": self.path}


def ref(call: Call, path: str) -> ResultRef:
    """Refer to ``path`` (a JSON pointer such as ``/ids``) in ``call``'s result."""
    return ResultRef(result_of=call.id, name=call.name, path=path)


def _encode_args(args: Mapping[str, Any]) -> dict[str, Any]:
    # A referenced argument is sent under "#<name>" so the server resolves it before running the call.
    encoded: dict[str, Any] = {}
    for key, value in args.items():
        if isinstance(value, ResultRef):
            encoded[f"#{key}"] = value.to_wire()
        else:
            encoded[key] = value
    return encoded


@dataclass
class JmapRequest:
    """Several method calls sent as one request; later calls may refer to earlier ones with :func:`ref`."""

    calls: list[Call] = field(default_factory=list)

    def call(self, name: str, args: Mapping[str, Any] | None = None) -> Call:
        made = Call(name=name, args=dict(args or {}), id=f"c{len(self.calls)}")
        self.calls.append(made)
        return made

    def to_wire(self, account_id: str | None = None) -> dict[str, Any]:
        method_calls = []
        for item in self.calls:
            args = _encode_args(item.args)
            if account_id is not None:
                args.setdefault("accountId", account_id)
            method_calls.append([item.name, args, item.id])
        return {"using": list(USING), "methodCalls": method_calls}


# --- response parsing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JmapResponse:
    """The method responses of one request, by call id; a call that failed raises its error when read."""

    results: Mapping[str, Mapping[str, Any]]
    errors: Mapping[str, StalwartMethodError] = field(default_factory=dict)

    def __getitem__(self, call: Call) -> Mapping[str, Any]:
        self.raise_for(call)
        try:
            return self.results[call.id]
        except KeyError:
            raise StalwartProtocolError(f"Stalwart sent no response for {call.name} ({call.id})") from None

    def raise_for(self, *calls: Call) -> None:
        """Raise the method-level error of the first of ``calls`` (in the order given) that failed."""
        for call in calls:
            error = self.errors.get(call.id)
            if error is not None:
                raise error


@dataclass(frozen=True)
class DomainWithDkim:
    """A domain read by id together with its DKIM signatures; ``domain`` is None when the id is gone."""

    domain: Domain | None
    dkim: tuple[DkimSignature, ...]


# --- the client -------------------------------------------------------------------------------------------


class StalwartClient:
    """Talks JMAP to one Stalwart server, authenticated with an API key (Bearer) or Basic credentials."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        *,
        api_key: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float | None = None,
    ) -> None:
        if api_key:
            self._authorization = f"Bearer {api_key}"
        elif username and password is not None:
            token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
            self._authorization = f"Basic {token}"
        else:
            raise ValueError("StalwartClient needs an api_key or a username and password")
        self._http = http
        self.base_url = base_url.rstrip("/")
        # None keeps the timeout the injected client was built with (build_http_client sets one).
        self._timeout_kwargs: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        self._session: Session | None = None
        self._session_url: str | None = None
        self._session_lock = asyncio.Lock()

    # The only place that does HTTP and maps transport and status errors.
    async def _request(self, method: str, url: str, *, json: Any = None) -> Any:
        headers = {"Authorization": self._authorization, "Accept": "application/json"}
        try:
            response = await self._http.request(
                method, url, json=json, headers=headers, follow_redirects=True, **self._timeout_kwargs
            )
        except httpx.TimeoutException as err:
            raise StalwartTimeoutError(f"Stalwart did not answer {method} {url} in time") from err
        except httpx.TransportError as err:
            raise StalwartConnectionError(f"could not reach Stalwart at {url}: {type(err).__name__}") from err
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = None
            raise request_error(
                response.status_code,
                problem,
                reason_phrase=response.reason_phrase,
                retry_after=response.headers.get("retry-after"),
            )
        try:
            return response.json()
        except ValueError as err:
            raise StalwartProtocolError(
                f"Stalwart answered {method} {url} with HTTP {response.status_code}, not JSON"
            ) from err

    async def session(self, *, refresh: bool = False) -> Session:
        """The JMAP session (``/.well-known/jmap``, following its redirect), fetched once and cached."""
        async with self._session_lock:
            if self._session is None or refresh:
                url = f"{self.base_url}/.well-known/jmap"
                body = await self._request("GET", url)
                if not isinstance(body, Mapping) or not body.get("apiUrl"):
                    # Stalwart answers with capabilities only when the Authorization header did not arrive,
                    # e.g. because a redirect crossed to another origin.
                    raise StalwartProtocolError("the Stalwart JMAP session has no apiUrl (unauthenticated?)")
                try:
                    session = Session.model_validate(body)
                except ValidationError as err:
                    raise StalwartProtocolError(
                        f"unexpected Stalwart session shape: {err.error_count()} errors"
                    ) from err
                self._session_url = urljoin(url, session.api_url)
                self._session = session
            return self._session

    async def execute(self, request: JmapRequest, *, raise_first_error: bool = True) -> JmapResponse:
        """Send every call of ``request`` in one POST; raises the first method-level error, or with
        ``raise_first_error=False`` each call's error only when its result is read (the caller then picks
        which failure to report: a call that failed only because an earlier one did seldom says why)."""
        session = await self.session()
        assert self._session_url is not None
        body = await self._request(
            "POST", self._session_url, json=request.to_wire(session.primary_accounts.get(MANAGEMENT_CAPABILITY))
        )
        responses = body.get("methodResponses") if isinstance(body, Mapping) else None
        if not isinstance(responses, list):
            raise StalwartProtocolError("the Stalwart JMAP response has no methodResponses")
        results: dict[str, Mapping[str, Any]] = {}
        errors: dict[str, StalwartMethodError] = {}
        names = {item.id: item.name for item in request.calls}
        for entry in responses:
            if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[1], Mapping)):
                raise StalwartProtocolError("a Stalwart method response is not [name, arguments, callId]")
            name, args, call_id = entry
            if name == "error":
                error = StalwartMethodError(
                    method=names.get(str(call_id), "?"),
                    call_id=str(call_id),
                    type_=str(args.get("type", "unknown")),
                    description=str(args.get("description") or ""),
                )
                if raise_first_error:
                    raise error
                errors.setdefault(str(call_id), error)
                continue
            results.setdefault(str(call_id), args)
        return JmapResponse(results, errors)

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
        result = await self._set(object_name, create={_CREATE_KEY: body})
        created = result.get("created")
        entry = created.get(_CREATE_KEY) if isinstance(created, Mapping) else None
        if not isinstance(entry, Mapping) or not entry.get("id"):
            raise StalwartProtocolError(f"Stalwart did not report the id of the created {object_name}")
        return str(entry["id"])

    # --- x:Domain -----------------------------------------------------------------------------------------

    async def query_domains(self, name: str | None = None) -> list[str]:
        return await self.query("Domain", {"name": _domain_name(name)} if name is not None else None)

    async def get_domains(self, ids: Sequence[str], properties: Sequence[str] | None = None) -> list[Domain]:
        """The domains among ``ids`` that exist (missing ones are simply absent from the result)."""
        raw = await self._get("Domain", ids, properties or DOMAIN_PROPERTIES)
        return _parse_each(Domain, raw)

    async def find_domain(self, name: str, properties: Sequence[str] | None = None) -> Domain | None:
        """The domain called ``name`` (query and get in one request), or None."""
        raw = await self._query_get("Domain", {"name": _domain_name(name)}, properties or DOMAIN_PROPERTIES)
        domains = _parse_each(Domain, raw)
        return domains[0] if domains else None

    async def create_domain(self, domain: DomainCreate) -> str:
        return await self._create("Domain", domain.to_wire())

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

    async def create_account(self, account: AccountCreate) -> str:
        return await self._create("Account", account.to_wire())

    async def update_account(self, account_id: str, patch: AccountUpdate) -> None:
        await self._set("Account", update={account_id: patch.to_wire()})

    async def destroy_account(self, account_id: str) -> None:
        await self._set("Account", destroy=[account_id])


def _domain_name(name: str | None) -> str:
    # Stalwart lowercases names when storing them but matches query filters exactly.
    return (name or "").strip().lower()


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


__all__ = [
    "DOMAIN_ZONE_PROPERTIES",
    "USING",
    "Call",
    "DomainWithDkim",
    "JmapRequest",
    "JmapResponse",
    "ResultRef",
    "StalwartClient",
    "StalwartError",
    "ref",
]
