"""Stalwart's JMAP envelope: request and response framing, method and set-error parsing, the one place doing HTTP."""

from __future__ import annotations

import asyncio
import base64
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin

import httpx
from pydantic import ValidationError

from .errors import (
    ObjectRef,
    SetOperation,
    StalwartAuthError,
    StalwartConnectionError,
    StalwartMethodError,
    StalwartProtocolError,
    StalwartRateLimitError,
    StalwartRequestError,
    StalwartServerError,
    StalwartSetError,
    StalwartTimeoutError,
    ValidationIssue,
)
from .models import Session

USING: tuple[str, ...] = ("urn:ietf:params:jmap:core", "urn:stalwart:jmap")
MANAGEMENT_CAPABILITY = "urn:stalwart:jmap"


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


# --- errors from what the server sent -------------------------------------------------------------------


def _object_name(method: str) -> str:
    # "x:Domain/set" -> "Domain", the name Stalwart uses in SetError objectId/linkedObjects.
    return method.split("/", 1)[0].removeprefix("x:")


def _as_str_tuple(value: Any) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(item) for item in value)
    return ()


def _object_ref(value: Any) -> ObjectRef | None:
    if isinstance(value, Mapping) and "object" in value and "id" in value:
        return ObjectRef(object=str(value["object"]), id=str(value["id"]))
    return None


def parse_set_error(method: str, operation: SetOperation, key: str, raw: Any) -> StalwartSetError:
    """A ``notCreated``/``notUpdated``/``notDestroyed`` entry as a :class:`StalwartSetError`."""
    body = raw if isinstance(raw, Mapping) else {}
    linked = body.get("linkedObjects")
    issues = body.get("validationErrors")
    existing = body.get("existingId")
    return StalwartSetError(
        object_type=_object_name(method),
        operation=operation,
        key=key,
        type_=str(body.get("type", "unknown")),
        description=str(body.get("description") or ""),
        properties=_as_str_tuple(body.get("properties")),
        object_id=_object_ref(body.get("objectId")),
        existing_id=str(existing) if existing is not None else None,
        linked_objects=tuple(r for r in map(_object_ref, linked if isinstance(linked, list) else []) if r),
        validation_errors=tuple(
            ValidationIssue(type=str(issue.get("type", "")), property=str(issue.get("property", "")))
            for issue in (issues if isinstance(issues, list) else [])
            if isinstance(issue, Mapping)
        ),
    )


_SET_FAILURES: tuple[tuple[SetOperation, str], ...] = (
    ("create", "notCreated"),
    ("update", "notUpdated"),
    ("destroy", "notDestroyed"),
)


def first_set_error(method: str, result: Mapping[str, Any]) -> StalwartSetError | None:
    """The first failure a ``/set`` response reports (Stalwart answers HTTP 200 even when all failed)."""
    for operation, key_name in _SET_FAILURES:
        failures = result.get(key_name)
        if isinstance(failures, Mapping) and failures:
            key, raw = next(iter(failures.items()))
            return parse_set_error(method, operation, str(key), raw)
    return None


def request_error(
    status: int, body: Any, *, reason_phrase: str = "", retry_after: str | None = None
) -> StalwartRequestError:
    """The error for an HTTP status >= 400 and its (problem+json, if any) body."""
    problem: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    kwargs: dict[str, Any] = {
        "status": status,
        "type_": str(problem.get("type") or "about:blank"),
        "title": str(problem.get("title") or reason_phrase or ""),
        "detail": str(problem.get("detail") or ""),
        "retry_after": parse_retry_after(retry_after),
    }
    if status in (401, 403):
        return StalwartAuthError(**kwargs)
    if status == 429:
        return StalwartRateLimitError(**kwargs)
    if status >= 500:
        return StalwartServerError(**kwargs)
    return StalwartRequestError(**kwargs)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent or bad.

    ``now`` is the current Unix time (the clock by default), for the date form. Repeated in each upstream
    package on purpose, so that the package depends on nothing else in the project.
    """
    text = (value or "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        # RFC 9110 dates are always GMT; a zone-less parse result means exactly that.
        when = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds) if math.isfinite(seconds) else None


# --- the transport ----------------------------------------------------------------------------------------


class JmapClient:
    """JMAP over one Stalwart server's session, authenticated with an API key (Bearer) or Basic credentials."""

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
            raise ValueError(f"{type(self).__name__} needs an api_key or a username and password")
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
        return _parse_response(request, body, raise_first_error=raise_first_error)


def _parse_response(request: JmapRequest, body: Any, *, raise_first_error: bool = True) -> JmapResponse:
    """The ``methodResponses`` of ``body`` by call id; method-level errors raised or kept (see ``execute``)."""
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
